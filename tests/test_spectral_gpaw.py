"""Spectral function with the GPAW (PAW LCAO) model: the PAW form of the unfolding (Eq. S28).

Oracles on bcc Li (dzp, 5 orbitals per atom, 2-atom supercells; every GPAW calculation takes
about a second):
* a static diagonal and a non-diagonal supercell unfold onto the bands of a separate
  primitive-cell GPAW calculation at the path k (weights 0/1 to 1e-8, energies to 1e-5 eV); the
  non-diagonal one S = {1,1,0; 0,1,0; 0,0,2} = D·U is compared with the primitive cell in the
  basis U·a, whose real-space grid and finite-difference axes are the supercell's own;
* a genuinely non-diagonal supercell (the conventional cubic cell of bcc, its grid commensurate
  with the primitive translations): weights 0/1 to 1e-8 wherever levels are non-degenerate;
* sum rules Σ_k W_N(k) = 1 and Σ_N W_N(k) = 5 (bands per primitive cell) for the static lattice;
  a displaced configuration: weights unchanged by a primitive lattice translation of the ions,
  Σ_k W_N ≤ 1 (Bessel; paw_overlap's X keeps it), and Σ_N W_N(k) = tr[G_k⁻¹ B_k†X S⁻¹ X†B_k] (completeness, computed without eigenvectors);
* the unfolded and the Green's routes agree in the static limit; the Green's route from the
  complete generalized spectrum equals a dense LU solve of Q†[zS − H]⁻¹Q with Q = X†P;
* `spia_mpi spectral` with kind = gpaw: 1 rank = 2 ranks, the file's static bands are GPAW's.
"""
import numpy as np
import pytest
from ase.build import bulk
from scipy.linalg import eigh

from spia_mpi.engine import spectral, unfolding
from spia_mpi.lattice.supercells import folded_kpoints
from prerequisites import require_gpaw, BCC_LI_A as A_LI

N_ORB = 5                                       # dzp orbitals of Li: bands per primitive cell
PATH_K = np.array([[0.1, 0.2, 0.05], [0.3, -0.1, 0.2], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])


def path_model(folder, matrix, kpts, h_ang=0.25, density="frozen"):
    """A prepared GpawModel of bcc Li wrapped for path K-points."""
    require_gpaw()
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    from spia_mpi.models.gpaw_path import GpawPathModel
    settings = GpawSettings(density=density, basis="dzp", kpts=kpts, smearing_ev=0.1, h_ang=h_ang,
                            convergence_density=1e-8)
    base = GpawModel(bulk("Li", "bcc", a=A_LI), matrix, settings, [[0, 0, 0]])
    base.prepare(None, 1, folder)
    return GpawPathModel(base)


def primitive_bands(model, rebase, gpts, kpath):
    """Independent oracle: a primitive-cell GPAW SCF on the supercell's k-set unfolded (cell
    ``rebase`` @ a, grid ``gpts``), then GPAW's fixed-density eigenvalues at ``kpath`` (reduced in
    the basis a); float [n_k, n_bands] eV."""
    from gpaw import GPAW
    S = model.supercell_matrix
    kpts = model.base.settings.kpts
    grid = np.array(np.meshgrid(*[np.arange(n) / n for n in kpts], indexing="ij")).reshape(3, -1).T
    U = np.asarray(rebase, float)
    prim_k = np.concatenate([folded_kpoints(S, K) for K in grid]) @ U.T       # k' = U k
    params = model.base.settings.calculator_parameters()
    params.pop("h")
    params.update(kpts=prim_k.tolist(), gpts=list(gpts), convergence={"density": 1e-8})
    atoms = bulk("Li", "bcc", a=A_LI)
    atoms.set_cell(U @ atoms.cell[:], scale_atoms=False)
    atoms.calc = GPAW(**params, txt=None)
    atoms.get_potential_energy()
    bs = atoms.calc.fixed_density(kpts=(np.asarray(kpath) @ U.T).tolist(), symmetry="off", txt=None)
    return np.array([bs.get_eigenvalues(kpt=i) for i in range(len(kpath))])


def static_weights(model, K, kpoints):
    """(ε, W [n_k, n_states]) of the reference structure at K, generalized eigenpairs."""
    pos = model.reference_positions
    e, c = eigh(model.hamiltonian_dense(pos, K), model.overlap_dense(pos, K))
    return e, unfolding.unfolding_weights(model, c, K, kpoints, pos)


@pytest.mark.parametrize("matrix, kpts, h_ang, rebase, gpts", [
    ([2, 1, 1], (2, 1, 1), 0.25, np.eye(3), (10, 8, 8)),
    ([[1, 1, 0], [0, 1, 0], [0, 0, 2]], (1, 1, 2), 0.3, [[1, 1, 0], [0, 1, 0], [0, 0, 1]], (8, 8, 8))])
def test_static_supercell_unfolds_onto_the_primitive_gpaw_bands(tmp_path, matrix, kpts, h_ang, rebase, gpts):
    model = path_model(tmp_path, matrix, kpts, h_ang)
    expect = primitive_bands(model, rebase, gpts, PATH_K)
    K, k_of_K = unfolding.group_by_supercell_k(model.supercell_matrix, PATH_K)
    for iK, KK in enumerate(K):
        everything = folded_kpoints(model.supercell_matrix, KK)
        e, w_all = static_weights(model, KK, everything)
        assert np.abs(w_all - np.round(w_all)).max() < 1e-8                 # 0/1
        assert np.abs(w_all.sum(axis=0) - 1).max() < 1e-8                    # Σ_k W_N = 1
        assert np.abs(w_all.sum(axis=1) - N_ORB).max() < 1e-8               # Σ_N W_N(k) = bands per cell
        for ip in np.flatnonzero(k_of_K == iK):
            _, w = static_weights(model, KK, PATH_K[ip:ip + 1])
            mine = np.sort(e[w[0] > 0.5])
            assert mine.size == N_ORB
            n = expect.shape[1]
            assert np.abs(mine[:n] - expect[ip]).max() < 1e-5, (PATH_K[ip], mine[:n], expect[ip])


def test_conventional_cubic_supercell_unfolds_to_0_or_1(tmp_path):
    """S = {0,1,1; 1,0,1; 1,1,0}: the cubic cell of bcc, axes not those of the primitive cell. Its
    12³ grid is commensurate with the primitive translations, so the supercell Hamiltonian is
    exactly translation invariant and every non-degenerate level unfolds onto one k."""
    S = [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    from gpaw import GPAW
    model = path_model(tmp_path, S, (1, 1, 1))
    calc = GPAW(str(model.base._reference_file), txt=None)
    calc.get_atoms()
    assert unfolding.grid_is_commensurate(calc.wfs.gd.N_c, S)
    n_single = []
    for k in PATH_K[:2]:                         # the second k is degenerate with its folded partner
        K = unfolding.supercell_kpoint(S, k)
        e, w = static_weights(model, K, folded_kpoints(S, K))
        assert np.abs(w.sum(axis=0) - 1).max() < 1e-8 and np.abs(w.sum(axis=1) - N_ORB).max() < 1e-8
        levels = np.split(np.arange(e.size), np.flatnonzero(np.diff(e) > 1e-6) + 1)
        for lev in levels:                       # a degenerate level's summed weight is an integer
            assert np.abs(w[:, lev].sum(axis=1) - np.round(w[:, lev].sum(axis=1))).max() < 1e-8
        single = np.concatenate([lev for lev in levels if lev.size == 1] + [np.zeros(0, int)])
        assert np.abs(w[:, single] - np.round(w[:, single])).max(initial=0) < 1e-8
        n_single.append(single.size)
    assert n_single[0] == 2 * N_ORB


@pytest.fixture(scope="module")
def li(tmp_path_factory):
    return path_model(tmp_path_factory.mktemp("li"), [2, 1, 1], (2, 1, 1))


def displaced(model, seed=1, amplitude=0.1):
    rng = np.random.default_rng(seed)
    return model.reference_positions + amplitude * rng.standard_normal(model.reference_positions.shape)


def test_displaced_weights_translation_invariant_and_complete(li):
    pos = displaced(li)
    a1 = np.asarray(li.primitive.cell[0])
    K = unfolding.supercell_kpoint(li.supercell_matrix, PATH_K[0])
    ks = folded_kpoints(li.supercell_matrix, K)
    out = []
    for p in (pos, pos + a1):                    # a primitive translation permutes the supercell atoms
        h, s, x = (m.copy() for m in li.matrices(p, K))
        e, c = eigh(h, s)
        out.append((e, unfolding.unfolding_weights(li, c, K, ks, p), s, x))
    (e0, w0, s, x), (e1, w1, _, x1) = out
    assert np.abs(e1 - e0).max() < 1e-8
    assert np.abs(w1 - w0).max() < 1e-8
    assert np.abs(x1 - x).max() > 1e-3                                      # really another cross overlap
    # Σ_k W_N ≤ 1 (Bessel's inequality) for X = ⟨T̂(R⁽⁰⁾)Φ̃(R⁽⁰⁾)|T̂(R)Φ̃(R)⟩ between actual vectors;
    # paw_overlap's X is that under PAW completeness: max 0.993 here (the earlier form with the
    # augmentation spheres at R on both sides exceeded 1 by 5e-4)
    total = w0.sum(axis=0)
    assert total.max() < 1 + 1e-6 and total.min() > 0.9                     # the reference basis holds most
    s0 = li.reference_matrices(K)[1]
    for i, k in enumerate(ks):                   # completeness: Σ_N c_N c_N† = S⁻¹
        b = li.bloch_sums(k)
        a = b.conj().T @ x
        expect = np.trace(np.linalg.solve(b.conj().T @ s0 @ b, a @ np.linalg.solve(s, a.conj().T))).real
        assert abs(w0[i].sum() - expect) < 1e-8
    assert np.abs(w0 - np.round(w0)).max() > 1e-3                           # really displaced


def _setup(model, n_bands=0, states_per_k=N_ORB):
    grid = np.linspace(-8, 20, 281)
    ef = model.fermi_level_ev
    return spectral.make_setup(model, PATH_K[:2], grid, 0.2, ef, n_bands=n_bands, z=ef + 0.3j,
                               states_per_k=states_per_k)


def test_static_limit_unfolded_and_greens_routes_agree(li):
    setup = _setup(li)
    pos = np.broadcast_to(li.reference_positions, (2, 1) + li.reference_positions.shape)
    res = spectral.compute_spectral(li, pos, setup, n_blocks=2)
    g = res.greens
    assert np.abs(res.weight - N_ORB).max() < 1e-8                          # sum rule
    assert np.abs(g["half_width"]).max() < 1e-8
    assert np.abs(g["bands"] - g["reference"]).max() < 1e-8
    assert np.abs(np.sort(res.static_bands, axis=1) - g["reference"]).max() < 1e-8
    assert np.abs(res.rho - g["rho"]).max() < 1e-8 * res.rho.max()
    lor = (0.2 / np.pi) / ((setup.grid_ev[None, None, :] - g["reference"][:, :, None]) ** 2 + 0.04)
    assert np.abs(res.rho - lor.sum(axis=1)).max() < 1e-8


def test_greens_route_spectral_sum_equals_dense_solve_on_displaced_beads(li):
    pos = np.stack([[displaced(li, seed)] for seed in (3, 4)])            # 2 configurations × 1 bead
    full = spectral.compute_spectral(li, pos, _setup(li), n_blocks=2)
    lu = spectral.compute_spectral(li, pos, _setup(li, n_bands=li.n_basis - 1), n_blocks=2)
    for key in ("bands", "half_width"):
        assert np.abs(full.greens[key] - lu.greens[key]).max() < 1e-9
    assert np.abs(full.greens["half_width"]).max() > 1e-3                  # a real broadening


CLI_TOML = """
[model]
kind = "gpaw"
[model.gpaw]
structure = "li.xyz"
basis = "dzp"
kpts = [2, 1, 1]
h_ang = 0.25
density = "frozen"
[supercell]
matrix = [2, 1, 1]
kpoints = [[0, 0, 0]]
[configurations.einstein]
hbar_omega_ev = 0.05
temperature_k = 300
n_samples = 2
n_beads = 2
seed = 5
[spia]
matsubara_j = 4
states_per_k = 2
n_blocks = 2
[spectral]
path = "GH"
n_kpoints = 3
energy_min_ev = -6
energy_max_ev = 6
n_energies = 61
broadening_ev = 0.2
file = "spec.h5"
[output]
plots = false
"""


def test_cli_gpaw_two_ranks_equal_one_rank(tmp_path, spia_cli):
    import h5py
    require_gpaw()
    files = []
    for name, ranks in (("one", 1), ("two", 2)):
        d = tmp_path / name
        d.mkdir()
        bulk("Li", "bcc", a=A_LI).write(d / "li.xyz")
        (d / "in.toml").write_text(CLI_TOML)
        r = spia_cli(["spectral", d / "in.toml"], ranks=ranks, cwd=d, timeout=600)
        assert r.returncode == 0, r
        assert "GPAW" not in r.stdout
        files.append(d / "spec.h5")
    with h5py.File(files[0]) as a, h5py.File(files[1]) as b:
        for name in ("rho", "weight", "static_bands_eV", "greens/bands_eV", "greens/half_width_eV"):
            assert np.allclose(a["spectral"][name][...], b["spectral"][name][...], atol=1e-9), name
        w = a["spectral/weight"][...]
        assert np.all(w < N_ORB + 1e-8) and np.all(w > N_ORB - 0.5)
        static = a["spectral/static_bands_eV"][...]
        assert np.isfinite(static[:, :N_ORB]).all()


@pytest.mark.slow
def test_scf_density_is_solved_once_per_configuration_bead_for_all_path_k(tmp_path):
    """density = 'scf': every path K of a configuration–bead reuses that bead's SCF (one
    scf_*.gpw per configuration–bead, not per K), and the spectrum differs from the frozen one."""
    pos = np.stack([[displaced(path_model(tmp_path / "f", [2, 1, 1], (2, 1, 1)), seed, 0.15)] for seed in (5, 6)])
    out = {}
    for density in ("scf", "frozen"):
        model = path_model(tmp_path / density, [2, 1, 1], (2, 1, 1), density=density)
        setup = _setup(model)
        assert setup.K.shape[0] == 2
        out[density] = spectral.compute_spectral(model, pos, setup, n_blocks=2)
    assert len(list((tmp_path / "scf").glob("scf_*.gpw"))) == 2
    assert not list((tmp_path / "frozen").glob("scf_*.gpw"))
    assert np.abs(out["scf"].greens["bands"] - out["frozen"].greens["bands"]).max() > 1e-4
    for res in out.values():                    # 0.15 Å: the displaced basis holds most of each k space
        assert np.all(res.weight < N_ORB + 1e-2) and np.all(res.weight > N_ORB - 1)
