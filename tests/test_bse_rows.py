"""Row-distributed kernels of the Γ/W stage (spia_mpi.engine.grouprows and the ``rows`` /
``first_row`` forms of the spia, replicas and anisotropy kernels), serial.

Oracle: for a row split of the subspace over p "ranks" that cuts through k blocks, each part's
rows computed from that part's inputs alone (the rows ``needed`` of g) equal the same rows of
the whole computation, and the parts' Fermi-surface sums add up to the whole sums. Ḡ is a
random k-block-diagonal matrix (far from diagonal, so U mixes the states of each k block and a
part that missed a g row of its k block would be wrong at O(1)). The ``needed`` rows are
checked against a list built here from the k labels.
"""
import numpy as np
import pytest

from spia_mpi.engine import anisotropy, replicas, spia
from spia_mpi.engine.grouprows import GroupRows

Z = 0.3 + 0.7j


def random_bands(k_index, seed):
    """RenormalisedBands of a random k-block-diagonal Ḡ (complex, well conditioned)."""
    rng = np.random.default_rng(seed)
    n = len(k_index)
    g = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    g = 0.3 * g / np.sqrt(n) + np.diag(rng.uniform(1.0, 2.0, n) - 0.5j)
    gbar, _ = spia.average_greens(g, 1, k_index)
    return spia.renormalised_bands(gbar, Z, k_index)


def random_g(n_b, n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_b, n, n)) + 1j * rng.normal(size=(n_b, n, n))


K_INDEX = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4])      # 11 states: blocks of 3, 2, 3, 1, 2


@pytest.mark.parametrize("size", [2, 3])
def test_needed_rows_are_the_k_blocks_of_the_own_rows(size):
    for rank in range(size):
        rows = GroupRows.of(K_INDEX, size, rank)
        ks = set(K_INDEX[rows.own.start:rows.own.stop].tolist())
        expected = [s for s in range(K_INDEX.size) if K_INDEX[s] in ks]
        assert rows.needed.tolist() == expected and rows.first == rows.own.start and rows.n_states == 11
    assert GroupRows.of(K_INDEX, 2, 0).needed.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]     # rows 0-5 cut block 2


@pytest.mark.parametrize("size", [2, 3])
def test_t_matrix_rows_equal_the_rows_of_the_whole(size):
    bands = random_bands(K_INDEX, 1)
    g = random_g(4, K_INDEX.size, 2)
    g_hat = spia.bead_transform(g)
    whole, whole_m = spia.t_matrices(g, bands), spia.t_matrices_m(g_hat, bands)
    for rank in range(size):
        rows = GroupRows.of(K_INDEX, size, rank)
        own = slice(rows.own.start, rows.own.stop)
        part = spia.t_matrices(g[:, rows.needed], bands, rows)
        part_m = spia.t_matrices_m(g_hat[:, rows.needed], bands, rows)
        assert np.allclose(part, whole[:, own], rtol=0, atol=1e-12 * np.abs(whole).max())
        assert np.allclose(part_m, whole_m[:, own], rtol=0, atol=1e-12 * np.abs(whole_m).max())
        # without the g rows of the rest of its k blocks a part is wrong at O(1): the oracle can fail
        if rows.needed.size > len(rows.own):
            own_only = GroupRows(rows.own, np.arange(rows.own.start, rows.own.stop), rows.n_states)
            bad = spia.t_matrices(g[:, own_only.needed], bands, own_only)
            assert np.abs(bad - whole[:, own]).max() > 1e-3 * np.abs(whole).max()


def test_one_state_replica_sums_by_rows_equal_the_whole():
    k = np.arange(9)                                           # one state per k
    bands = random_bands(k, 3)
    shift = np.diag(bands.gbar_band) * 1.01
    g_hats = [spia.bead_transform(random_g(3, 9, 10 + c)) for c in range(4)]
    whole = replicas.t_moments(replicas.shifted_moments(g_hats, shift), shift, bands)
    for rank in range(2):
        rows = GroupRows.of(k, 2, rank)
        own = slice(rows.own.start, rows.own.stop)
        part = replicas.t_moments(replicas.shifted_moments([g[:, own] for g in g_hats], shift, rows.first),
                                  shift, bands, rows.first)
        assert part.count == whole.count == 4
        assert np.allclose(part.s1, whole.s1[:, own], rtol=0, atol=1e-12 * np.abs(whole.s1).max())
        assert np.allclose(part.s2, whole.s2[:, own], rtol=0, atol=1e-12 * np.abs(whole.s2).max())


def test_fermi_surface_sums_of_row_parts_add_up_to_the_whole():
    rng = np.random.default_rng(4)
    n, n_m = K_INDEX.size, 3
    w = rng.normal(size=(n_m, n, n)) + 1j * rng.normal(size=(n_m, n, n))
    weights = rng.uniform(0.1, 1.0, size=(2, n))
    q_of_pair = rng.integers(0, 4, size=(5, 5))
    bins = rng.integers(0, 3, size=n)
    parts = [slice(0, 4), slice(4, 9), slice(9, 11)]            # three uneven parts
    for fn, args in ((spia.fermi_surface_sums, (weights,)), (spia.pair_sums_by_q, (weights, K_INDEX, q_of_pair)),
                     (anisotropy.pair_sums_by_bin, (weights, bins, 3)), (spia.diagonal_abs_sum, ())):
        whole = fn(w, *args)
        total = sum(fn(w[:, p], *args, p.start) for p in parts)
        assert np.allclose(total, whole, rtol=0, atol=1e-12 * np.abs(whole).max()), fn.__name__
    # the q-resolved sums: explicit loops here
    ref = np.zeros((2, int(q_of_pair.max()) + 1, n_m))
    for s in range(n):
        for t in range(n):
            ref[:, q_of_pair[K_INDEX[s], K_INDEX[t]]] += weights[:, s, None] * w[:, s, t].real * weights[:, t, None]
    assert np.allclose(spia.pair_sums_by_q(w, weights, K_INDEX, q_of_pair), ref, rtol=0, atol=1e-12)
    assert np.allclose(spia.diagonal_abs_sum(w), np.abs(np.diagonal(w, axis1=1, axis2=2)).sum(axis=1), atol=1e-13)
