"""Spectral function ρ(k, E) by band unfolding (paper Supplement Eqs. S25–S27).

Oracles: a perfect crystal unfolds onto its primitive bands exactly (weights 0/1 to 1e-10, a
diagonal and two non-diagonal supercells, a two-band tight-binding model with independent
primitive Bloch Hamiltonians, and the real-space grid model); the sum rule Σ_N W_N(k) = bands
per primitive cell at every k; the Holstein moment sum rules for any configuration; ρ(k, E)
of a static crystal is the sum of Lorentzians at the primitive bands (also at degeneracies).
"""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.engine import unfolding
from spia_mpi.lattice.supercells import folded_kpoints
from spia_mpi.models.tightbinding import TightBindingModel, holstein_cubic

DIAGONAL = np.diag([2, 2, 1])
NON_DIAGONAL = [[2, 0, -1], [0, 1, 0], [0, 0, 1]]        # the paper's test supercell
NON_DIAGONAL_3 = [[1, 1, 0], [0, 1, 1], [1, 0, 2]]      # det 3, no axis left alone
GENERIC_K = [0.137, 0.291, 0.413]


def two_band_primitive():
    """A two-site orthorhombic cell: distance-dependent hoppings, different on-site energies."""
    return Atoms("HLi", positions=[[0.0, 0.0, 0.0], [0.55, 0.35, 0.6]], cell=np.diag([1.1, 1.3, 1.2]), pbc=True)


def hop(d):
    return -np.exp(-1.5 * d)


CUTOFF = 2.0
ONSITE = [0.0, 0.7]


def primitive_bands(prim, k_frac):
    """Independent oracle: eigenvalues of the primitive Bloch Hamiltonian H_pq(k) =
    ε_p δ_pq + Σ_L t(|R_p − R_q − L|) e^{−ik·(R_p − R_q − L)} by direct image sums."""
    a = prim.cell[:]
    pos = prim.get_positions()
    kc = 2 * np.pi * np.asarray(k_frac) @ np.linalg.inv(a).T
    H = np.diag(np.array(ONSITE, complex))
    r = range(-3, 4)
    for n1 in r:
        for n2 in r:
            for n3 in r:
                L = np.array([n1, n2, n3]) @ a
                for p in range(2):
                    for q in range(2):
                        d = pos[p] - pos[q] - L
                        dist = np.linalg.norm(d)
                        if 1e-8 < dist < CUTOFF:
                            H[p, q] += hop(dist) * np.exp(-1j * kc @ d)
    return np.linalg.eigvalsh(H)


def two_band_model(S):
    return TightBindingModel(two_band_primitive(), S, hop, CUTOFF, onsite=ONSITE)


@pytest.mark.parametrize("S", [DIAGONAL, NON_DIAGONAL, NON_DIAGONAL_3], ids=["diag", "nondiag", "nondiag3"])
def test_perfect_crystal_unfolds_to_primitive_bands(S):
    """Generic K (no degeneracies): every eigenstate has weight 1 on one folded k, 0 on the others,
    its energy is a primitive band at that k, and Σ_N W_N(k) = 2 bands at every k."""
    m = two_band_model(S)
    e, v = np.linalg.eigh(m.hamiltonian_dense(m.reference_positions, GENERIC_K))
    ks = folded_kpoints(S, GENERIC_K)
    w = unfolding.unfolding_weights(m, v, GENERIC_K, ks)
    assert w.shape == (len(ks), m.n_basis)
    assert np.allclose(w.sum(axis=0), 1.0, atol=1e-10)
    assert np.allclose(np.minimum(w, 1 - w), 0.0, atol=1e-10)              # 0 or 1
    assert np.allclose(w.sum(axis=1), 2.0, atol=1e-10)                     # sum rule per k
    for ik, k in enumerate(ks):
        mine = np.sort(e[w[ik] > 0.5])
        assert np.allclose(mine, primitive_bands(m.primitive, k), atol=1e-10)


def test_grid_model_perfect_crystal_weights_are_0_or_1():
    """The grid model (plane-wave form, FFT): a 2×1×1 LiH supercell on a commensurate grid."""
    from spia_mpi.models.grid import GridModel
    prim = Atoms("LiH", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([2.2, 2.2, 2.2]), pbc=True)
    m = GridModel(prim, np.diag([2, 1, 1]), (4, 4, 4), 4)
    assert unfolding.grid_is_commensurate(m.shape, m.supercell_matrix)
    K = [0.3, 0.2, 0.1]
    e, v = np.linalg.eigh(m.hamiltonian_dense(m.reference_positions, K))
    ks = folded_kpoints(m.supercell_matrix, K)
    w = unfolding.unfolding_weights(m, v, K, ks)
    assert np.allclose(w.sum(axis=0), 1.0, atol=1e-10)
    assert np.allclose(np.minimum(w, 1 - w), 0.0, atol=1e-10)
    assert np.allclose(w.sum(axis=1), m.n_basis / 2, atol=1e-9)            # grid points per primitive cell
    p = GridModel(prim, np.eye(3, dtype=int), (4, 4, 4), 4)                # the primitive cell's own bands
    for ik, k in enumerate(ks):
        ev_p = np.linalg.eigvalsh(p.hamiltonian_dense(p.reference_positions, k))
        assert np.allclose(np.sort(e[w[ik] > 0.5]), ev_p, atol=1e-9)


def translation_phases(psi, shape, S, K):
    """⟨ψ|T_i|ψ⟩ for the primitive translations a_i, computed on the grid directly: a_i moves grid
    index j by s = N ⊙ (S⁻¹)_i steps (an integer vector on a commensurate grid), and leaving the
    supercell by the lattice vector L = Σ w_β A_β multiplies by e^{2πi K·w} (Bloch gauge).
    Returns complex [3, n_states]; a state of primitive k has e^{2πi k_i} (reduced k)."""
    N = np.array(shape)
    j = np.stack(np.unravel_index(np.arange(N.prod()), shape), axis=1)
    out = []
    for i in range(3):
        step = N * np.linalg.inv(np.asarray(S, float))[i]
        assert np.allclose(step, np.round(step))
        jj = j + np.round(step).astype(int)
        w = np.floor_divide(jj, N)
        idx = np.ravel_multi_index((jj - w * N).T, shape)
        shifted = np.exp(2j * np.pi * (w @ np.asarray(K)))[:, None] * psi[idx]
        out.append(np.sum(psi.conj() * shifted, axis=0))
    return np.array(out)


@pytest.mark.parametrize("S", [NON_DIAGONAL, [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]], ids=["paper", "rotated"])
def test_grid_model_non_diagonal_supercell_unfolds_exactly(S):
    """The grid model picks a grid commensurate with the primitive translations for any supercell:
    fcc LiH in non-diagonal supercells, weights 0/1 to 1e-10, and each state's primitive k is the
    one its translation eigenvalues e^{2πi k_i} (computed on the grid in the test) say."""
    from ase.build import bulk
    from spia_mpi.models.grid import GridModel
    prim = bulk("LiH", "rocksalt", a=3.6)
    m = GridModel(prim, S, (4, 4, 4), 4)
    assert unfolding.grid_is_commensurate(m.shape, S)
    K = [0.23, 0.11, 0.37]
    e, v = np.linalg.eigh(m.hamiltonian_dense(m.reference_positions, K))
    ks = folded_kpoints(S, K)
    w = unfolding.unfolding_weights(m, v, K, ks)
    assert np.abs(w.sum(axis=0) - 1).max() < 1e-10
    assert np.abs(np.minimum(w, 1 - w)).max() < 1e-10                       # 0 or 1
    assert np.abs(w.sum(axis=1) - m.n_basis / len(ks)).max() < 1e-8        # grid points per primitive cell
    phases = translation_phases(v, m.shape, S, K)
    assert np.abs(np.abs(phases) - 1).max() < 1e-10                         # translation eigenstates
    for ik, k in enumerate(ks):
        mine = w[ik] > 0.5
        assert np.abs(phases[:, mine] - np.exp(2j * np.pi * k)[:, None]).max() < 1e-8


def test_grid_unfolding_refuses_an_incommensurate_grid():
    from spia_mpi.errors import InputError
    from spia_mpi.models.grid import GridModel
    prim = Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * 2.0, pbc=True)
    m = GridModel(prim, NON_DIAGONAL, (4, 4, 4), 2, grid_shape=(5, 4, 4))
    with pytest.raises(InputError, match="not commensurate"):
        unfolding.unfolding_weights(m, np.eye(m.n_basis)[:, :2], [0, 0, 0], [[0, 0, 0]])


@pytest.mark.parametrize("S", [np.diag([2, 2, 2]), NON_DIAGONAL_3], ids=["diag", "nondiag"])
def test_holstein_moment_sum_rules(S):
    """One-band Holstein, any configuration (V_i = g u_i,z): with |k⟩ the Bloch sum,
    Σ_N W_N ε_N = ⟨k|H|k⟩ = ε_k + mean V and Σ_N W_N ε_N² = ‖H|k⟩‖² = (ε_k + mean V)² + var V,
    because the hopping part T|k⟩ = ε_k|k⟩ is exact and V is diagonal in the site basis."""
    t, g = 1.0, 0.8
    m = holstein_cubic(S, 1.0, t, g)
    rng = np.random.default_rng(7)
    u = 0.3 * rng.standard_normal((m.n_basis, 3))
    v_site = g * u[:, 2]                                           # computed here, not by the model
    for K in ([0.0, 0.0, 0.0], GENERIC_K):
        e, vec = np.linalg.eigh(m.hamiltonian_dense(m.reference_positions + u, K))
        ks = folded_kpoints(S, K)
        w = unfolding.unfolding_weights(m, vec, K, ks)
        eps_k = -2 * t * np.cos(2 * np.pi * ks).sum(axis=1)
        first = eps_k + v_site.mean()
        assert np.allclose(w.sum(axis=1), 1.0, atol=1e-10)
        assert np.allclose(w @ e, first, atol=1e-10)
        assert np.allclose(w @ e ** 2, first ** 2 + v_site.var(), atol=1e-10)


def test_group_by_supercell_k():
    """Path points that fold onto the same K share it; K = frac(S k)."""
    S = np.diag([2, 1, 1])
    ks = np.array([[0.0, 0, 0], [0.5, 0, 0], [0.25, 0, 0], [0.75, 0.0, 0.0]])
    K, idx = unfolding.group_by_supercell_k(S, ks)
    assert idx.tolist() == [0, 0, 1, 1]
    assert np.allclose(K, [[0, 0, 0], [0.5, 0, 0]])
    with pytest.raises(Exception, match="does not fold"):
        unfolding.plane_wave_weights(np.ones((8, 1)), (2, 2, 2), S, [0.1, 0, 0], [[0.3, 0, 0]])


# ------------------------------------------------------------------ averaged spectra (engine)
from spia_mpi.engine import spectral                           # noqa: E402
from spia_mpi.engine.stats import jackknife_error              # noqa: E402
from spia_mpi.lattice.kpath import bandpath                    # noqa: E402


def lorentz(x, g):
    return (g / np.pi) / (x ** 2 + g ** 2)


def test_static_crystal_rho_is_lorentzians_at_primitive_bands():
    """Reference positions in every configuration and bead: ρ(k, E) = Σ_n δ_γ(E − ε_n(k)) on an ASE
    path through Γ (degenerate folded states included), no error; the Green's route gives the
    reference bands with zero half width, so ρ_G = ρ."""
    m = two_band_model(NON_DIAGONAL)
    path = bandpath(m.primitive.cell[:], "GXSY", 9)
    grid = np.linspace(-4, 3, 141)
    gam = 0.1
    z = 0.0 + 0.5j
    setup = spectral.make_setup(m, path.kpoints_frac, grid, gam, 0.0, z=z, states_per_k=2)
    pos = np.broadcast_to(m.reference_positions, (4, 2) + m.reference_positions.shape)
    res = spectral.compute_spectral(m, pos, setup, n_blocks=2)
    for ik, k in enumerate(path.kpoints_frac):
        eps = primitive_bands(m.primitive, k)
        want = lorentz(grid[:, None] - eps[None, :], gam).sum(axis=1)
        assert np.allclose(res.rho[ik], want, atol=1e-10, rtol=0)
        assert np.allclose(res.greens["bands"][ik], eps, atol=1e-10)
        assert np.allclose(res.greens["reference"][ik], eps, atol=1e-10)
        assert np.allclose(res.static_bands[ik], eps, atol=1e-10)
    assert np.allclose(res.greens["half_width"], 0.0, atol=1e-10)
    assert np.allclose(res.greens["rho"], res.rho, atol=1e-10)
    assert np.allclose(res.weight, 2.0, atol=1e-10)
    assert np.max(res.rho_error) < 1e-12


def holstein_configurations(model, n_conf, n_beads, amplitude=0.25, seed=3):
    rng = np.random.default_rng(seed)
    u = amplitude * rng.standard_normal((n_conf, n_beads, model.n_basis, 3))
    return model.reference_positions[None, None] + u, u


def test_holstein_weight_centroid_and_spread_with_jackknife():
    """Averaged moment sum rules: Σ_N W = 1, centroid = ⟨ε_k + mean V⟩ − ε_F, spread² = ⟨(ε_k + mean V)²
    + var V⟩ − ⟨ε_k + mean V⟩² (relative to ε_F), the centroid's jackknife error equals the jackknife
    of block means of ε_k + mean V computed here; ∫ρ dE = 1 up to the Lorentzian tails."""
    t, g, ef = 1.0, 0.6, 0.3
    m = holstein_cubic(np.diag([2, 2, 2]), 1.0, t, g)
    n_conf, n_b, n_blocks = 6, 2, 3
    pos, u = holstein_configurations(m, n_conf, n_b)
    kpts = np.array([[0, 0, 0], [0.5, 0, 0], [0.25, 0.25, 0], [0.5, 0.5, 0.5]])
    grid = np.linspace(-40, 40, 8001)
    gam = 0.1
    res = spectral.compute_spectral(m, pos, spectral.make_setup(m, kpts, grid, gam, ef), n_blocks=n_blocks)
    vbar = g * u[..., 2].mean(axis=-1)                                   # [c, b]
    vvar = (g * u[..., 2]).var(axis=-1)
    eps_k = -2 * t * np.cos(2 * np.pi * kpts).sum(axis=1)
    x = eps_k[None, None, :] + vbar[..., None] - ef                     # [c, b, k]
    centroid = x.mean(axis=(0, 1))
    spread = np.sqrt((x ** 2 + vvar[..., None]).mean(axis=(0, 1)) - centroid ** 2)
    assert np.allclose(res.weight, 1.0, atol=1e-10)
    assert np.allclose(res.centroid, centroid, atol=1e-10)
    assert np.allclose(res.spread, spread, atol=1e-10)
    blocks = x.reshape(n_blocks, -1, n_b, len(kpts))                    # contiguous blocks of configurations
    reps = np.array([np.delete(blocks, j, axis=0).mean(axis=(0, 1, 2)) for j in range(n_blocks)])
    assert np.allclose(res.centroid_error, jackknife_error(reps), atol=1e-10)
    assert np.all(res.rho_error > 0)
    integral = np.trapz(res.rho, grid, axis=1)
    assert np.allclose(integral, 1.0, atol=2 * gam / (np.pi * 30))        # tails beyond |E| ≈ 30 eV


def _holstein_case():
    m = holstein_cubic(np.diag([2, 1, 1]), 1.0, 1.0, 0.6)
    pos, _ = holstein_configurations(m, 5, 2, seed=9)
    kpts = bandpath(m.primitive.cell[:], "GXM", 7).kpoints_frac
    setup = spectral.make_setup(m, kpts, np.linspace(-6, 6, 61), 0.2, 0.1, z=0.1 + 0.4j)
    return m, pos, setup


def _same(a, b):
    assert np.array_equal(a.rho, b.rho) and np.array_equal(a.rho_error, b.rho_error)
    assert np.array_equal(a.centroid_error, b.centroid_error)
    for key in ("bands", "bands_error", "half_width", "half_width_error", "rho"):
        assert np.array_equal(a.greens[key], b.greens[key]), key


def test_restart_from_checkpoint_is_bit_identical(tmp_path):
    """A run that stored only some units resumes to exactly the uninterrupted result."""
    from spia_mpi.io.checkpoint import TaskStore
    m, pos, setup = _holstein_case()
    full = spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=2)
    n_units = setup.K.shape[0] * 3 * 2
    store = TaskStore.open(tmp_path / "ck", n_units, "fp")
    spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=2, store=store)
    for p in sorted(store.folder.glob("task_*.npz"))[::2]:                 # "killed": half the units lost
        p.unlink()
    resumed = spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=2, store=store)
    _same(resumed, full)
    assert len(store.finished()) == n_units


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("bead_groups", [1, 2])
def test_two_ranks_bit_identical_to_one(bead_groups):
    """Rank 0 holds the result (it writes the file), bit-identical to the serial one; rank 1 none."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    m, pos, setup = _holstein_case()
    par = spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=bead_groups, comm=comm)
    assert (par is None) == (comm.rank != 0)
    _same(comm.bcast(par, root=0), spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=bead_groups,
                                                             comm=None))


def test_bead_groups_change_only_the_order_of_sums():
    m, pos, setup = _holstein_case()
    one = spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=1)
    two = spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=2)
    assert np.allclose(one.rho, two.rho, atol=1e-12) and np.allclose(one.rho_error, two.rho_error, atol=1e-12)
    assert np.allclose(one.greens["bands"], two.greens["bands"], atol=1e-12)
    with pytest.raises(Exception, match="bead_groups"):
        spectral.compute_spectral(m, pos, setup, n_blocks=3, bead_groups=3)


# ------------------------------------------------------------------ the command
SPECTRAL_TOML = """
[model]
kind = "holstein"
[model.holstein]
coupling_ev_per_ang = 1.0
[supercell]
matrix = [2, 2, 1]
[configurations.einstein]
n_samples = 6
n_beads = 2
temperature_k = 300
[spia]
n_blocks = 3
[spectral]
path = "GXM"
n_kpoints = 9
energy_min_ev = -7
energy_max_ev = 7
n_energies = 141
broadening_ev = 0.1
summary_points = ["G", "M"]
file = "spec.h5"
[output]
plots = {plots}
"""


def _spectral_input(folder, plots="false", extra=""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in.toml").write_text(SPECTRAL_TOML.format(plots=plots) + extra)
    return folder / "in.toml"


def test_cli_two_ranks_equal_one_rank_and_file_layout(tmp_path, spia_cli):
    import h5py
    one = _spectral_input(tmp_path / "one", plots="true")
    two = _spectral_input(tmp_path / "two")
    r1 = spia_cli(["spectral", one], cwd=tmp_path / "one")
    assert r1.returncode == 0, r1
    r2 = spia_cli(["spectral", two], ranks=2, cwd=tmp_path / "two")
    assert r2.returncode == 0, r2
    assert "Γ" in r1.stdout and "M" in r1.stdout
    with h5py.File(tmp_path / "one" / "spec.h5") as a, h5py.File(tmp_path / "two" / "spec.h5") as b:
        assert a.attrs["spia_mpi_file"] == "spectral" and a.attrs["complete"]
        for name in ("rho", "rho_error", "centroid_eV", "static_bands_eV", "greens/bands_eV", "greens/rho"):
            assert np.array_equal(a["spectral"][name][...], b["spectral"][name][...]), name
            assert a["spectral"][name].attrs["units"]
        g = a["spectral"]
        assert g["rho"].shape == (9, 141)
        assert list(g["summary"]["k_index"][...]) == [0, 8]                 # Γ and M of the path
        # the path's static bands are the cosine band −2t(cos 2πk_x + cos 2πk_y + cos 2πk_z) − ε_F
        k = g["kpoints_frac"][...]
        eps = -2 * np.cos(2 * np.pi * k).sum(axis=1) - g.attrs["fermi_level_eV"]
        assert np.allclose(g["static_bands_eV"][:, 0], eps, atol=1e-10)
    figs = sorted(p.name for p in (tmp_path / "one" / "spec_plots").iterdir())
    assert {"spectral_function.png", "bands.png", "spectral_summary.png"} <= set(figs)


def test_cli_bad_spectral_input_is_a_clean_error(tmp_path, spia_cli):
    bad = _spectral_input(tmp_path / "a", extra="")
    bad.write_text(bad.read_text().replace('summary_points = ["G", "M"]', 'summary_points = ["Q"]'))
    r = spia_cli(["spectral", bad], cwd=tmp_path / "a")
    assert r.returncode == 2 and "spectral.summary_points" in r.stderr and "Traceback" not in r.stderr, r
    bad.write_text(bad.read_text().replace("energy_min_ev = -7", "energy_min_ev = 9"))
    r = spia_cli(["spectral", bad], cwd=tmp_path / "a")
    assert r.returncode == 2 and "spectral.energy_min_ev" in r.stderr, r
    bad.write_text(SPECTRAL_TOML.format(plots="false") + "\n[spia]\nstates_per_k = 2\n")
    bad.write_text(bad.read_text().replace("[spia]\nn_blocks = 3\n", ""))
    r = spia_cli(["spectral", bad], cwd=tmp_path / "a")
    assert r.returncode == 2 and "1 band(s) per k" in r.stderr and "Traceback" not in r.stderr, r
    bad.write_text(SPECTRAL_TOML.format(plots="false"))
    r = spia_cli(["spectral", bad, "--dry-run"], cwd=tmp_path / "a")
    k = bandpath(np.eye(3), "GXM", 9).kpoints_frac
    n_K = len({tuple(np.round((x @ np.diag([2, 2, 1]).T) % 1.0, 8) % 1.0) for x in k})
    assert r.returncode == 0 and f'"work_units": {n_K * 3}' in r.stdout, r     # K × 3 blocks × 1 bead group
    bad.write_text(SPECTRAL_TOML.format(plots="false").replace('path = "GXM"', 'path = "GQ"'))
    r = spia_cli(["spectral", bad], cwd=tmp_path / "a", ranks=2)
    assert r.returncode == 2 and "k-path 'GQ'" in r.stderr and "Traceback" not in r.stderr, r


def test_greens_route_agrees_with_the_run_renormalised_bands():
    """Path points on the run's k-grid: the Green's-route bands and half widths equal those of
    `run` (compute_lambda) from the same configurations, z and reference states."""
    from spia_mpi.engine.resolvent import matsubara_eta
    from spia_mpi.engine.workflow import compute_lambda
    T, ef = 300.0, -0.4
    m = holstein_cubic(np.diag([2, 2, 1]), 1.0, 1.0, 1.2)
    pos, _ = holstein_configurations(m, 6, 2, amplitude=0.3, seed=21)
    run = compute_lambda(m, pos, [[0, 0, 0]], T, n_blocks=3, fermi_level_ev=ef, gammas=(0.5,))
    b = run.bands[0]
    kpts = np.array([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0]])
    z = ef + 1j * matsubara_eta(16, T)
    res = spectral.compute_spectral(m, pos, spectral.make_setup(m, kpts, np.linspace(-5, 5, 11), 0.1, ef, z=z),
                                    n_blocks=3)
    for ik, k in enumerate(kpts):
        s = int(np.flatnonzero(np.all(np.isclose(b["kpoints_frac"][b["k_index"]], k), axis=1))[0])
        assert np.isclose(res.greens["bands"][ik, 0] + ef, b["energies"][s], atol=1e-10)
        assert np.isclose(res.greens["half_width"][ik, 0], b["half_width"][s], atol=1e-10)
    assert np.all(res.greens["half_width"] > 0) and np.all(res.greens["half_width_error"] > 0)


def test_slepc_window_and_resolvent_routes_agree_with_dense():
    """A window of the lowest states by SLEPc equals the dense one; the Green's route from the
    complete eigen-decomposition equals dense-LU and PETSc-KSP resolvents; in a static crystal the
    window holds an integer number of bands at every k (the window sum rule)."""
    m = holstein_cubic(np.diag([3, 3, 1]), 1.0, 1.0, 0.8)
    pos, _ = holstein_configurations(m, 4, 2, seed=5)
    kpts = bandpath(m.primitive.cell[:], "GXM", 7).kpoints_frac
    grid = np.linspace(-6, 6, 49)
    z = 0.2 + 0.5j
    run = {}
    for name, kw in {"all": dict(), "dense": dict(n_bands=4), "slepc": dict(n_bands=4, eigensolver="slepc"),
                     "petsc": dict(n_bands=4, resolvent="petsc",
                                   resolvent_options={"ksp_rtol": 1e-13, "ksp_atol": 1e-15})}.items():
        setup = spectral.make_setup(m, kpts, grid, 0.2, 0.2, z=z, **kw)
        run[name] = spectral.compute_spectral(m, pos, setup, n_blocks=2)
    assert np.allclose(run["slepc"].rho, run["dense"].rho, atol=1e-8)
    assert np.allclose(run["slepc"].static_bands, run["dense"].static_bands, atol=1e-8, equal_nan=True)
    for name in ("dense", "petsc"):
        for key in ("bands", "half_width"):
            assert np.allclose(run[name].greens[key], run["all"].greens[key], atol=1e-9), (name, key)
    assert np.all(run["dense"].weight < 1.0) and np.all(run["all"].weight > 1 - 1e-10)
    static = spectral.compute_spectral(m, np.broadcast_to(m.reference_positions, (2, 1) + pos.shape[2:]),
                                       spectral.make_setup(m, kpts, grid, 0.2, 0.2, n_bands=4), n_blocks=2)
    eps_k = -2 * np.cos(2 * np.pi * kpts).sum(axis=1)
    checked = 0
    for ik in range(len(kpts)):
        K = unfolding.supercell_kpoint(m.supercell_matrix, kpts[ik])
        e = np.linalg.eigvalsh(m.hamiltonian_dense(m.reference_positions, K))
        if e[4] - e[3] > 1e-8:             # no degenerate level cut by the window edge: an integer count
            assert static.weight[ik] == pytest.approx(float(eps_k[ik] <= e[3] + 1e-10), abs=1e-10)
            checked += 1
    assert checked >= 2


def test_holstein_einstein_ions_spread_is_g_times_bead_rms_displacement():
    """Quantum Einstein ions (exact ring-polymer samples): at every k the unfolded weight has
    centroid ε_k − ε_F + g⟨u_z⟩ = ε_k − ε_F and spread² = Var(mean V) + ⟨var V⟩ = g²⟨u_z²⟩ in
    expectation, with the N_b-bead variance ⟨u_z²⟩ = k_BT Σ_j 1/(mΩ² + 4m ω_N² sin²(πj/N_b)),
    ħω_N = N_b k_BT, written here from the ring-polymer normal modes; within 4 jackknife σ."""
    from spia_mpi import units
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    g, mass, hw, T, nb = 0.7, 1.0, 0.1, 300.0, 4
    m = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, g, mass_amu=mass)
    pos = sample_einstein_ring_polymers(48, nb, np.full(m.n_basis, mass), hw, T, m.reference_positions,
                                        np.random.default_rng(17))
    kpts = np.array([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0.5]])
    res = spectral.compute_spectral(m, pos, spectral.make_setup(m, kpts, np.linspace(-1, 1, 3), 0.1, 0.0),
                                    n_blocks=8)
    kt = units.KB_EV_PER_K * T
    m_omega2 = hw ** 2 * mass / units.HBAR2_OVER_AMU_A2_EV                # mΩ² (eV/Å²)
    m_omegan2 = (nb * kt) ** 2 * mass / units.HBAR2_OVER_AMU_A2_EV         # mω_N² (eV/Å²)
    u2 = kt * sum(1.0 / (m_omega2 + 4 * m_omegan2 * np.sin(np.pi * j / nb) ** 2) for j in range(nb))
    eps_k = -2 * np.cos(2 * np.pi * kpts).sum(axis=1)
    assert np.all(np.abs(res.centroid - eps_k) < 4 * res.centroid_error)
    assert np.all(np.abs(res.spread - g * np.sqrt(u2)) < 4 * res.spread_error)
    assert np.all(res.spread_error < 0.1 * res.spread)                     # the test has teeth


GRID_SPECTRAL = """
[model]
kind = "grid"
[model.grid]
structure = "hydrogen-sc"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 2, 2]
[configurations]
source = "file"
file = "{conf}"
[spia]
states_per_k = 2
n_blocks = 2
rigid_translations = "{choice}"
[spectral]
path = "GX"
n_kpoints = 3
n_bands = 4
energy_min_ev = -12
energy_max_ev = 4
n_energies = 81
broadening_ev = 0.3
file = "{out}"
[output]
plots = false
"""


def test_cli_rigid_translations_removed_as_in_run(tmp_path, spia_cli):
    """`spectral` follows run's spia.rigid_translations: Einstein samples of an 8-atom hydrogen grid
    model and the same samples rigidly translated per bead by 0.15–0.3 Å (not lattice vectors) and
    wrapped into the cell give the same ρ(k, E) and Green's-route bands with the grid model's default
    ('auto' = remove; the translated file on 2 ranks) to 1e-9, and different ones with 'keep' (the
    translation moves the ions against the fixed reference states and the real-space grid). The file
    records the choice and the removed shifts (the applied translation + the samples' own centre shift)."""
    import h5py

    from samples import removed_shift, write_translated_samples
    from spia_mpi.commands.run import build_model
    from spia_mpi.io.runinput import load_run_input
    (tmp_path / "probe.toml").write_text(GRID_SPECTRAL.format(conf="x.h5", choice="auto", out="x.h5"))
    model = build_model(*load_run_input(tmp_path / "probe.toml"))
    atoms, ref = model.atoms, model.reference_positions
    pos, t = write_translated_samples(tmp_path, atoms, ref, 4, 2, seed=5)
    got = {}
    for conf, choice, ranks in (("plain", "auto", 1), ("moved", "auto", 2), ("moved", "keep", 1)):
        out = f"{conf}_{choice}.h5"
        (tmp_path / f"{out}.toml").write_text(GRID_SPECTRAL.format(conf=f"{conf}.h5", choice=choice, out=out))
        r = spia_cli(["-q", "spectral", tmp_path / f"{out}.toml"], ranks=ranks, cwd=tmp_path)
        assert r.returncode == 0, r
        with h5py.File(tmp_path / out, "r") as f:
            g = f["spectral"]
            got[conf, choice] = np.concatenate([g["rho"][...].ravel(), g["greens/bands_eV"][...].ravel()])
            assert g.attrs["rigid_translations"] == ("kept" if choice == "keep" else "removed")
            assert ("rigid_translation_ang" in g) == (choice != "keep")
            if (conf, choice) == ("moved", "auto"):
                want = removed_shift(t, pos, ref, atoms.get_masses())
                np.testing.assert_allclose(g["rigid_translation_ang"][...], want, atol=1e-10)
    scale = np.abs(got["plain", "auto"]).max()
    np.testing.assert_allclose(got["moved", "auto"], got["plain", "auto"], rtol=0, atol=1e-9 * scale)
    diff = np.abs(got["moved", "keep"] - got["plain", "auto"]).max()
    print(f"translated samples kept: largest change {diff / scale:.3g} of the largest value")
    assert diff > 1e-5 * scale, diff                # 1.6e-3 measured: far from the 1e-9 above
