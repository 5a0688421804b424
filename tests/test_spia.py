"""SPIA engine against physics: the harmonic (Holstein–Einstein) oracle of METHOD.md §8,
the static lattice, dense = PETSc resolvents, 1 rank = 2 ranks, restart."""
import numpy as np
import pytest

from spia_mpi import spia
from spia_mpi.configurations import einstein_spring, sample_einstein_ring_polymers
from spia_mpi.models import holstein_cubic
from spia_mpi.resolvent import ResolventSolver, matsubara_eta, projected_resolvent_dense
from spia_mpi.workflow import compute_lambda

MASS, HW, T, NB = 1.0, 0.1, 300.0, 8        # amu, ħΩ (eV), K, beads
SUPERCELL = np.diag([3, 3, 3])


def holstein_run(g, mode, n_conf=240, seed=7, gammas=(0.3, 1.0), **kw):
    model = holstein_cubic(SUPERCELL, 1.0, 1.0, g, mass_amu=MASS)
    rng = np.random.default_rng(seed)
    pos = sample_einstein_ring_polymers(n_conf, NB, np.full(model.n_basis, MASS), HW, T,
                                        model.reference_positions, rng)
    return model, pos, compute_lambda(model, pos, [[0, 0, 0]], T, gammas=gammas, mode=mode,
                                      n_blocks=12, **kw)


def exact(res, ig, g):
    return spia.born_lambda(res.n_gamma_per_cell[ig], g, float(einstein_spring(MASS, HW)),
                            MASS, NB, T, NB // 2 + 1)


def test_born_oracle_within_three_sigma():
    """Born mode: λ(m) = N_γ g²/(κ + MΩ_m²) for every m ≤ N_b/2, within 3 standard errors."""
    g = 0.05
    _, _, res = holstein_run(g, "born")
    for ig in range(len(res.gamma_ev)):
        ex = exact(res, ig, g)
        z = (res.lambda_m[ig] - ex) / res.lambda_m_error[ig]
        assert np.all(np.abs(z) < 3.0), (res.gamma_ev[ig], res.lambda_m[ig], ex, z)
        assert np.all(res.lambda_m_error[ig] < 0.1 * ex)        # the test has resolving power
    # λ(m) decreases with m as 1/(κ + MΩ_m²): quantum ions, not a flat classical λ
    assert res.lambda_m[0, 0] > 3 * res.lambda_m[0, 1]


def test_bse_approaches_oracle_and_deviation_grows_with_g():
    devs = []
    for g in (0.05, 1.0, 3.0):
        _, _, born = holstein_run(g, "born", n_conf=120, gammas=(0.5,))
        _, _, bse = holstein_run(g, "bse", n_conf=120, gammas=(0.5,))
        if g == 0.05:      # weak coupling: full T-matrix + BSE within the oracle's error + 3 %
            ex = exact(bse, 0, g)
            assert np.all(np.abs(bse.lambda_m[0] - ex) < 3 * bse.lambda_m_error[0] + 0.03 * ex)
        devs.append(np.max(np.abs(bse.lambda_m[0] / born.lambda_m[0] - 1)))
    assert devs[0] < 1e-3
    assert devs[0] < devs[1] < devs[2], devs           # multiple scattering grows with g


def test_static_lattice_gives_zero():
    """All beads and configurations at the same (displaced) positions: Γ = 0, λ = 0."""
    model = holstein_cubic(SUPERCELL, 1.0, 1.0, 0.5)
    rng = np.random.default_rng(3)
    frozen = model.reference_positions + 0.05 * rng.standard_normal(model.reference_positions.shape)
    pos = np.broadcast_to(frozen, (6, NB) + frozen.shape)
    res = compute_lambda(model, pos, [[0, 0, 0]], T, gammas=(0.5,), mode="bse", n_blocks=3)
    assert np.max(np.abs(res.lambda_m)) < 1e-12


def test_undisplaced_bands_and_translation_invariance():
    model = holstein_cubic(SUPERCELL, 1.0, 1.0, 0.5)
    ref = model.reference_states([0, 0, 0], 1)
    z = 0.0 + 1j * matsubara_eta(16, T)
    g = projected_resolvent_dense(model.hamiltonian_dense(model.reference_positions, [0, 0, 0]), z, ref.vectors)
    gbar, off = spia.average_greens(g, 1, ref.k_index)
    assert off < 1e-12                                  # translation invariant: k-diagonal
    bands = spia.renormalised_bands(gbar, z, ref.k_index)
    assert np.allclose(bands.energies, ref.energies, atol=1e-10)
    assert np.allclose(bands.half_width, 0.0, atol=1e-10)
    t = np.ones((NB, 2, 2))
    tm = spia.bead_transform(t)
    assert np.allclose(tm[0], 1) and np.allclose(tm[1:], 0)


def test_dense_and_petsc_resolvents_agree():
    from spia_mpi.parallel import self_comm
    model = holstein_cubic(np.diag([4, 4, 2]), 1.0, 1.0, 0.7)
    ref = model.reference_states([0.25, 0, 0.5], 1)
    rng = np.random.default_rng(0)
    pos = model.reference_positions + 0.1 * rng.standard_normal((model.n_basis, 3))
    z = 0.3 + 1j * matsubara_eta(16, T)
    gd = projected_resolvent_dense(model.hamiltonian_dense(pos, [0.25, 0, 0.5]), z, ref.vectors)
    solver = ResolventSolver(self_comm())
    gp, info = solver.solve(model.hamiltonian_petsc(pos, [0.25, 0, 0.5], self_comm()), z, ref.vectors)
    assert np.max(np.abs(gp - gd)) <= 1e-8 * np.max(np.abs(gd))
    assert 0 < info["iterations_max"] < 200


def test_restart_is_bit_identical(tmp_path):
    from spia_mpi.checkpoint import TaskStore, fingerprint
    model = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 0.5)
    rng = np.random.default_rng(5)
    pos = sample_einstein_ring_polymers(12, 4, np.full(8, MASS), HW, T, model.reference_positions, rng)
    fp = fingerprint({"pos": pos})
    full = compute_lambda(model, pos, [[0, 0, 0], [0.5, 0, 0]], T, n_blocks=4)
    store = TaskStore.open(tmp_path / "ck", 24, fp)
    for task in (0, 5, 13, 22):            # a "killed" run finished only these tasks
        ik, c = divmod(task, 12)
        from spia_mpi.resolvent import projected_resolvent_dense as prd
        K = [[0, 0, 0], [0.5, 0, 0]][ik]
        ref = model.reference_states(K, 1)
        from spia_mpi.workflow import reference_fermi_level
        g = np.array([prd(model.hamiltonian_dense(p, K), 0.0 + 1j * matsubara_eta(16, T), ref.vectors)
                      for p in pos[c]])
        store.save(task, g=g)
    resumed = compute_lambda(model, pos, [[0, 0, 0], [0.5, 0, 0]], T, n_blocks=4, store=store)
    assert np.array_equal(resumed.lambda_m, full.lambda_m)
    assert np.array_equal(resumed.lambda_m_error, full.lambda_m_error)
    assert len(store.finished()) == 24


@pytest.mark.mpi(ranks=2)
def test_two_ranks_bit_identical_to_one():
    from spia_mpi.parallel import world
    comm = world()
    model = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 0.5)
    rng = np.random.default_rng(11)
    pos = sample_einstein_ring_polymers(16, 4, np.full(8, MASS), HW, T, model.reference_positions, rng)
    par = compute_lambda(model, pos, [[0, 0, 0], [0, 0, 0.5]], T, n_blocks=5, comm=comm)
    ser = compute_lambda(model, pos, [[0, 0, 0], [0, 0, 0.5]], T, n_blocks=5, comm=None)
    assert np.array_equal(par.lambda_m, ser.lambda_m)
    assert np.array_equal(par.lambda_m_error, ser.lambda_m_error)
    assert np.array_equal(par.lambda_q, ser.lambda_q)
