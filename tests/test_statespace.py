"""The default (automatic) state space: spia.states_per_k and spia.window_ev not given."""
import numpy as np
import pytest
from ase.units import kB

from spia_mpi.engine import statespace
from spia_mpi.engine.workflow import compute_lambda
from spia_mpi.errors import InputError
from spia_mpi.ions.configurations import sample_einstein_ring_polymers
from spia_mpi.lattice.structures import load_structure
from spia_mpi.models.grid import GridModel, fermi_level_of_reference
from spia_mpi.models.tightbinding import holstein_cubic

T = 300.0


def _grid_hydrogen():
    """Simple cubic H (a = 1.6 Å) in a 2×2×2 supercell, 4³ grid points per cell (512 in all)."""
    return GridModel(load_structure("hydrogen-sc"), np.diag([2, 2, 2]), (4, 4, 4), 4)


def test_one_band_model_keeps_its_old_state_space_exactly():
    """Holstein (one band): the automatic pool is that band (complete, no window), so λ, its error,
    the raw λ and N_γ are those of states_per_k = 1 to 1e-12."""
    model = holstein_cubic([2, 2, 2], coupling=3.0)
    pos = sample_einstein_ring_polymers(12, 4, np.full(8, 1.0), 0.1, T, model.reference_positions,
                                        np.random.default_rng(5))
    kw = dict(gammas=(0.05, 0.5), n_blocks=4)          # γ = 0.05 alone would give W < the band width
    old = compute_lambda(model, pos, [[0, 0, 0], [0.5, 0, 0]], T, n_per_k=1, **kw)
    new = compute_lambda(model, pos, [[0, 0, 0], [0.5, 0, 0]], T, n_per_k=None, **kw)
    assert new.state_space.window_ev is None and new.state_space.pool_complete
    for a, b in ((old.lambda_m, new.lambda_m), (old.lambda_m_error, new.lambda_m_error),
                 (old.raw.value, new.raw.value), (old.n_gamma, new.n_gamma)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_automatic_window_is_20_gamma_or_4_eta_around_the_fermi_level():
    """Grid model (many bands): the automatic run keeps exactly the reference states with
    |ε − ε_F| ≤ W, W = max(20 γ_max, 4η), η = (2J+1)πk_BT computed here, and equals the run with
    that window given explicitly on a larger pool to 1e-12."""
    model = _grid_hydrogen()
    pos = sample_einstein_ring_polymers(6, 2, np.full(8, 1.0), 0.15, T, model.reference_positions,
                                        np.random.default_rng(2))
    ef = fermi_level_of_reference(model, [[0, 0, 0]], T)
    for J, gammas in ((4, (0.1, 0.3)), (16, (0.1,))):
        w = max(20 * max(gammas), 4 * (2 * J + 1) * np.pi * kB * T)
        assert statespace.automatic_window_ev(gammas, (2 * J + 1) * np.pi * kB * T) == pytest.approx((-w, w))
        kw = dict(J=J, gammas=gammas, n_blocks=3, fermi_level_ev=ef)
        auto = compute_lambda(model, pos, [[0, 0, 0]], T, n_per_k=None, **kw)
        e27 = model.reference_states([0, 0, 0], 27).energies   # 27 plane waves per k: no alias on 4³
        assert e27.reshape(8, 27).max(axis=1).min() > ef + w                    # it holds the window
        inside = int(np.sum(np.abs(e27 - ef) <= w))
        assert auto.state_space.window_ev == pytest.approx((-w, w))
        assert auto.state_space.n_states.tolist() == [inside] and 0 < inside < e27.size
        given = compute_lambda(model, pos, [[0, 0, 0]], T, n_per_k=27, window_ev=(-w, w), **kw)
        np.testing.assert_allclose(auto.lambda_m, given.lambda_m, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(auto.lambda_m_error, given.lambda_m_error, rtol=1e-10, atol=1e-14)
        assert np.all(auto.lambda_m[:, 0] > 0)


def test_pool_doubles_until_it_holds_the_window():
    """grow_pool: from the first pool (occupied bands + 8 = 9 per k) to 18 per k when the window's
    top lies just above the 9-state pool's top; the 18-state pool reaches above it at every k and
    holds every state below it (checked against a 27-state pool)."""
    model = _grid_hydrogen()
    n0 = statespace.initial_pool_per_k(model)
    assert n0 == 1 + 8 and statespace.bands_per_k(model) == 64
    K = [[0, 0, 0]]
    refs = [model.reference_states(K[0], n0)]
    top9 = statespace.pool_top_ev(refs)
    same, n, complete = statespace.grow_pool(model, K, refs, top9 - 0.1)
    assert n == 9 and same is refs and not complete
    grown, n, complete = statespace.grow_pool(model, K, refs, top9 + 0.1)
    assert n == 18 and not complete and statespace.pool_top_ev(grown) > top9 + 0.1
    e27 = model.reference_states(K[0], 27).energies
    assert np.sum(grown[0].energies <= top9 + 0.1) == np.sum(e27 <= top9 + 0.1)
    everything, n, complete = statespace.grow_pool(model, K, refs, 1e4)    # 64 distinct plane waves per k
    assert n == 64 and complete
    p = everything[0].vectors
    np.testing.assert_allclose(p.conj().T @ p, np.eye(512), atol=1e-10)       # orthonormal: no aliases


def test_window_above_every_state_of_the_model_is_refused():
    """A model whose pool cannot grow past the window's top (the grid model offers the |G| ≤ 3 shells:
    343 plane waves per k on a 8³ grid of 512) stops with a message naming spia.window_ev."""
    model = GridModel(load_structure("hydrogen-sc"), np.eye(3, dtype=int), (8, 8, 8), 4)
    refs = [model.reference_states([0, 0, 0], statespace.initial_pool_per_k(model))]
    with pytest.raises(InputError, match="automatic energy window.*spia.window_ev"):
        statespace.grow_pool(model, [[0, 0, 0]], refs, 1e4)


def test_newcomer_li2mgh16_grid_run_with_defaults(spia_cli, tmp_path):
    """The newcomer's path of issue 17: `sample harmonic --structure li2mgh16-solid` then `run` with the
    grid model of the same structure (1×1×1, K = Γ, a coarse 6³ grid per cell, 8 configurations × 4
    beads, ħΩ = 0.06 eV) and no [spia] table, on 2 ranks: the automatic window ±16 eV (20 × 0.8 eV)
    keeps tens of states around ε_F with > 99 % of the Lorentzian weight of its pool, λ(0) is
    positive by more than 3σ at every γ, T_c is finite, and nothing is printed as a warning."""
    import json

    import h5py
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--einstein", "0.06", "--temperature",
                  "290", "--beads", "4", "--samples", "8", "--out", "conf.h5"], cwd=tmp_path)
    assert r.returncode == 0, r
    (tmp_path / "grid.toml").write_text('[model]\nkind = "grid"\n[model.grid]\nstructure = "li2mgh16-solid"\n'
                                        'grid_per_cell = [6, 6, 6]\n[supercell]\nmatrix = [1, 1, 1]\n'
                                        '[configurations]\nsource = "file"\nfile = "conf.h5"\n')
    r = spia_cli(["run", "grid.toml"], ranks=2, cwd=tmp_path)
    assert r.returncode == 0, r
    assert "warning" not in (r.stdout + r.stderr).lower(), r
    w = max(20 * 0.8, 4 * 33 * np.pi * kB * 290.0)
    with h5py.File(tmp_path / "spia_results.h5", "r") as f:
        lam, err = f["lambda/lambda_m"][...], f["lambda/lambda_m_error"][...]
        assert np.allclose(json.loads(f["lambda"].attrs["window_eV"]), [-w, w])
        assert 10 < f["lambda/n_states_per_kpoint"][0] < f["lambda"].attrs["states_pool_per_k"]
        assert np.all(f["lambda/window_captured_fraction"][...] > 0.99)
        tc = f["eliashberg/tc_K"][...]
    assert np.all(lam[:, 0] > 3 * err[:, 0]), (lam[:, 0], err[:, 0])
    assert np.all(np.isfinite(tc)) and np.all(tc > 0), tc


def test_harmonic_default_state_space_carries_the_fermi_surface_weight():
    """`harmonic` without spia.states_per_k (grid model, many bands): the automatic window ±W
    around ε_F gives N_γ within the window's tail bound 2γ/(πW) of the exact N_γ of the whole
    spectrum (all 512 eigenvalues of H at the reference positions, computed here); the old
    default (the lowest plane wave per k) misses it."""
    from spia_mpi.engine.harmonic import compute_harmonic
    model = _grid_hydrogen()
    ef = fermi_level_of_reference(model, [[0, 0, 0]], T)
    gammas = np.array([0.1, 0.3])
    J = 4
    w = max(20 * gammas.max(), 4 * (2 * J + 1) * np.pi * kB * T)
    spectrum = np.linalg.eigvalsh(model.hamiltonian_dense(model.reference_positions, [0, 0, 0]))
    exact = (gammas / np.pi)[:, None] / ((spectrum[None, :] - ef) ** 2 + gammas[:, None] ** 2)
    exact = exact.sum(axis=1) / 8                                                 # per primitive cell
    phi = 10.0 * np.eye(24)                                                       # Einstein springs, eV/Å²
    kw = dict(J=J, gammas=tuple(gammas), fermi_level_ev=ef)
    auto = compute_harmonic(model, phi, [[0, 0, 0]], T, 4, n_per_k=None, **kw)
    assert np.all(np.abs(auto.n_gamma_per_cell / exact - 1) < 2 * gammas / (np.pi * w))
    assert np.all(np.abs(auto.energies[0] - ef) < w)
    assert np.all(auto.lambda0 > 0)
    lowest = compute_harmonic(model, phi, [[0, 0, 0]], T, 4, n_per_k=1, **kw)
    assert np.max(np.abs(lowest.n_gamma_per_cell / exact - 1)) > 0.3


def test_spectral_default_pool_holds_the_window_at_every_path_k():
    """`spectral`'s Green's route without spia.states_per_k: the pool of the path's K-points holds the
    window — automatic (±16 eV at γ = 0.8 eV: the first pool, 9 plane waves per k, already reaches
    above it on this cell) or spia.window_ev reaching 1 eV above the 9-pool's top (grown to 18):
    its top lies above ε_F + W at every folded k of every K, and it holds every plane wave within
    the window (counted from a 27-state pool, large enough on the 4³ grid)."""
    model = _grid_hydrogen()
    ef = fermi_level_of_reference(model, [[0, 0, 0]], T)
    eta = 9 * np.pi * kB * T                                                      # J = 4
    K = np.array([[0, 0, 0], [0.5, 0, 0], [0.25, 0.25, 0]])
    top9 = statespace.pool_top_ev([model.reference_states(k, 9) for k in K])
    for window, expected in ((None, 9), ((-5.0, top9 - ef + 1.0), 18)):
        n = statespace.pool_for_window(model, K, ef, (0.1, 0.8), eta, window)
        lo, hi = window or (-max(20 * 0.8, 4 * eta), max(20 * 0.8, 4 * eta))
        assert n == expected
        for k in K:
            pool, big = model.reference_states(k, n), model.reference_states(k, 27)
            assert min(pool.energies[pool.k_index == i].max() for i in range(8)) > ef + hi
            inside = (lo <= pool.energies - ef) & (pool.energies - ef <= hi)
            assert inside.sum() == np.sum((lo <= big.energies - ef) & (big.energies - ef <= hi)) > 0


def test_dry_run_reports_the_grown_pool_and_the_kept_states(spia_cli, tmp_path):
    """`run --dry-run` with the automatic state space (Li₂MgH₁₆ grid model, 1×1×1, K = Γ, 6³ grid):
    the pool it reports is the first pool (occupied bands + 8) doubled until its top lies above
    ε_F + W, and the states per K are those within ±W of ε_F — both counted here from the plane-wave
    energies and the reference spectrum's ε_F — not the first pool; the memory estimate follows."""
    import json
    import math

    from spia_mpi.models.bands import fermi_level
    (tmp_path / "grid.toml").write_text(
        '[model]\nkind = "grid"\n[model.grid]\nstructure = "li2mgh16-solid"\ngrid_per_cell = [6, 6, 6]\n'
        '[supercell]\nmatrix = [1, 1, 1]\n[configurations.einstein]\nhbar_omega_ev = 0.08\ntemperature_k = 290.0\n'
        'n_samples = 4\nn_beads = 4\n')
    r = spia_cli(["run", "grid.toml", "--dry-run"], cwd=tmp_path)
    assert r.returncode == 0, r
    info = json.loads(r.stdout)
    model = GridModel(load_structure("li2mgh16-solid"), np.eye(3, dtype=int), (6, 6, 6), 4)
    spectrum = np.linalg.eigvalsh(model.hamiltonian_dense(model.reference_positions, [0, 0, 0]))
    ef = fermi_level(spectrum, 0.5 * model.n_electrons, 290.0)
    w = max(20 * 0.8, 4 * 33 * np.pi * kB * 290.0)                    # default γ up to 0.8 eV, J = 16
    plane_waves = np.sort(model.reference_states([0, 0, 0], model.n_basis).energies)
    pool = math.ceil(0.5 * model.n_electrons) + 8
    first = pool
    while plane_waves[pool - 1] <= ef + w:
        pool *= 2
    assert pool > first                                                # the case the brief describes
    assert info["fermi_level_eV"] == pytest.approx(ef, abs=1e-6)
    assert info["window_eV"] == pytest.approx([-w, w])
    assert info["states_pool_per_k"] == pool
    assert info["states_per_K"] == np.sum(np.abs(plane_waves - ef) <= w) != first
