"""The GPAW (PAW LCAO) model: GPAW's own eigenvalues, folding onto primitive bands, the
common-pseudo-space resolvent (static lattice, lattice translation), dense = PETSc,
the pipeline on a static lattice, 1 rank = 2 ranks, and its errors.

System: bcc Li (a = 3.44 Å), dzp basis (5 orbitals per atom), 2-atom supercells, tiny
k-point grids: every GPAW calculation here takes seconds.
"""
import re
import sys

import numpy as np
import pytest
from ase.build import bulk
from scipy.linalg import eigh

from spia_mpi.engine.resolvent import ResolventSolver, projected_resolvent_dense
from spia_mpi.errors import ConvergenceError, InputError, StackError
from prerequisites import require_gpaw, BCC_LI_A as A_LI, BCC_LI_SETTINGS as SETTINGS

SUPERCELL = [2, 1, 1]
KPOINTS = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]


def make_model(tmp, density="frozen", supercell=SUPERCELL, kpoints=KPOINTS, **over):
    require_gpaw()
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    model = GpawModel(bulk("Li", "bcc", a=A_LI), supercell, GpawSettings(density=density, **{**SETTINGS, **over}),
                      kpoints)
    model.prepare(None, 1, tmp)
    return model


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("gpaw_ref")


@pytest.fixture(scope="module")
def li(workdir):
    return make_model(workdir)


def displaced(model, seed=1, amplitude=0.08):
    rng = np.random.default_rng(seed)
    return model.reference_positions + amplitude * rng.standard_normal(model.reference_positions.shape)


def test_generalized_eigenvalues_equal_gpaw_at_every_k(li):
    from gpaw import GPAW
    calc = GPAW(str(li._reference_file), txt=None)
    calc.get_atoms()
    kk = np.asarray(calc.wfs.kd.ibzk_kc)
    for K in KPOINTS:
        e = eigh(li.hamiltonian_dense(li.reference_positions, K), li.overlap_dense(li.reference_positions, K),
                 eigvals_only=True)
        index = int(np.flatnonzero(np.all(np.abs(kk - K) < 1e-10, axis=1))[0])
        own = calc.get_eigenvalues(kpt=index)
        assert np.abs(e[:len(own)] - own).max() < 1e-6


def test_reference_states_are_the_supercell_bands_split_by_primitive_k(li):
    for K in KPOINTS:
        h, s = li.hamiltonian_dense(li.reference_positions, K), li.overlap_dense(li.reference_positions, K)
        ref = li.reference_states(K, 5)
        assert np.allclose(np.sort(ref.energies), eigh(h, s, eigvals_only=True), atol=1e-8)
        c = ref.vectors
        assert np.allclose(c.conj().T @ s @ c, np.eye(c.shape[1]), atol=1e-10)       # S-orthonormal
        assert np.allclose(h @ c, s @ c * ref.energies, atol=1e-8)                    # eigenvectors


@pytest.mark.parametrize("matrix, kpts, tol", [([2, 1, 1], (2, 1, 1), 1e-4),
                                               ([[1, 1, 0], [0, 1, 0], [0, 0, 2]], (1, 1, 2), None)])
def test_supercell_bands_are_primitive_bands_at_folded_k(tmp_path, matrix, kpts, tol):
    """Against a separate primitive-cell GPAW calculation on the equivalent k-grid: energies, and
    the primitive eigenvectors mapped into the supercell are eigenvectors there (which also pins
    the k label of each reference state: −k would fail). The diagonal supercell's real-space grid
    is commensurate with the primitive one (gpts set to match); the non-diagonal one's is not, and
    its tolerance is the grid (egg-box) error of h = 0.25 Å, measured in the primitive calculation
    itself as the splitting of the Γ p triplet that cubic symmetry makes degenerate."""
    from gpaw import GPAW
    from spia_mpi.lattice.supercells import folded_kpoints
    model = make_model(tmp_path / "sc", supercell=matrix, kpoints=[[0, 0, 0]], kpts=kpts)
    sc_calc = GPAW(str(model._reference_file), txt=None)
    sc_calc.get_atoms()
    S = np.asarray(matrix) if np.ndim(matrix) == 2 else np.diag(matrix)
    grid = np.array(np.meshgrid(*[np.arange(n) / n for n in kpts], indexing="ij")).reshape(3, -1).T
    prim_k = np.concatenate([folded_kpoints(S, K) for K in grid])     # the supercell SCF's k-set, unfolded
    params = model.settings.calculator_parameters()
    params["kpts"] = prim_k.tolist()
    if np.ndim(matrix) == 1:
        params.pop("h")
        params["gpts"] = (np.asarray(sc_calc.wfs.gd.N_c) // np.asarray(matrix)).tolist()
    atoms = bulk("Li", "bcc", a=A_LI)
    atoms.calc = GPAW(**params, txt=None)
    atoms.get_potential_energy()
    prim = atoms.calc
    if tol is None:
        gamma = int(np.flatnonzero(np.all(np.abs(prim.wfs.kd.ibzk_kc) < 1e-10, axis=1))[0])
        tol = np.ptp(prim.get_eigenvalues(kpt=gamma)[1:4])
        assert 1e-4 < tol < 5e-2
    h, s = model.hamiltonian_dense(model.reference_positions, [0, 0, 0]), \
        model.overlap_dense(model.reference_positions, [0, 0, 0])
    ref = model.reference_states([0, 0, 0], 5)
    for j, k in enumerate(ref.kpoints_frac):
        ik = int(np.flatnonzero(np.all(np.abs(np.mod(prim.wfs.kd.ibzk_kc - k + 0.5, 1) - 0.5) < 1e-8, axis=1))[0])
        eps = prim.get_eigenvalues(kpt=ik)
        assert np.abs(ref.energies[ref.k_index == j][:len(eps)] - eps).max() < tol
        v = model.bloch_sums(k) @ prim.wfs.kpt_u[ik].C_nM[:len(eps)].T
        assert np.abs(h @ v - s @ v * eps).max() < 10 * tol


def test_static_lattice_resolvent_is_diagonal_dense_and_petsc(li):
    """At R = R⁽⁰⁾ the cross overlap is S(R⁽⁰⁾), so g = c†S(zS−H)⁻¹Sc = diag 1/(z − ε_n) exactly."""
    from spia_mpi.parallel.mpi import self_comm
    z = li.fermi_level_ev + 0.6j
    for K in KPOINTS:
        ref = li.reference_states(K, 5)
        expect = np.diag(1.0 / (z - ref.energies))
        h, s, q = li.projected_problem_dense(li.reference_positions, K, ref.vectors)
        assert np.abs(projected_resolvent_dense(h, z, q, s) - expect).max() < 1e-10
        hp, sp, q = li.projected_problem_petsc(li.reference_positions, K, ref.vectors, self_comm())
        g, _ = ResolventSolver(self_comm(), {"ksp_rtol": 1e-14, "ksp_atol": 1e-16}).solve(hp, z, q, s_mat=sp)
        hp.destroy(), sp.destroy()
        assert np.abs(g - expect).max() < 1e-10


def test_cross_overlap_at_reference_positions_is_gpaw_overlap(li):
    for ik, K in enumerate(KPOINTS):
        x = li.matrices(li.reference_positions)[2][ik]
        assert np.abs(x - li._reference_matrices[1][ik]).max() < 1e-12


def test_dense_equals_petsc_on_a_displaced_configuration(li):
    from spia_mpi.parallel.mpi import self_comm
    pos = displaced(li)
    z = li.fermi_level_ev + 0.6j
    for K in KPOINTS:
        ref = li.reference_states(K, 5)
        h, s, q = li.projected_problem_dense(pos, K, ref.vectors)
        g_dense = projected_resolvent_dense(h, z, q, s)
        hp, sp, q = li.projected_problem_petsc(pos, K, ref.vectors, self_comm())
        g, _ = ResolventSolver(self_comm(), {"ksp_rtol": 1e-14, "ksp_atol": 1e-16}).solve(hp, z, q, s_mat=sp)
        hp.destroy(), sp.destroy()
        assert np.abs(g - g_dense).max() < 1e-10
        assert np.abs(g_dense - np.diag(np.diag(g_dense))).max() > 1e-4       # really displaced


def test_lattice_translation_changes_the_resolvent_only_by_its_phase(li):
    """R' + a for a primitive lattice vector a (it permutes the supercell atoms): with
    |ψ_nk(r − a)⟩ = e^{−ik·a}|ψ_nk⟩, g(R' + a)_nm = e^{−ik_n·a} g(R')_nm e^{ik_m·a}. Tests the cross
    overlaps (orbitals at R' + a against those at R⁽⁰⁾) with the PAW corrections."""
    pos = displaced(li, seed=4)
    a1 = np.asarray(li.primitive.cell[0])
    z = li.fermi_level_ev + 0.6j
    for K in KPOINTS:
        ref = li.reference_states(K, 5)
        g0 = resolvent(li, pos, K, ref.vectors, z)
        g1 = resolvent(li, pos + a1, K, ref.vectors, z)
        phase = np.exp(-2j * np.pi * ref.kpoints_frac[ref.k_index] @ np.array([1.0, 0.0, 0.0]))
        assert np.abs(g1 - phase[:, None] * g0 * phase.conj()[None, :]).max() < 1e-8
        if K[0] == 0.5:                                   # the phases really differ there
            assert np.abs(g1 - g0).max() > 1e-3


def resolvent(model, pos, K, p, z):
    h, s, q = model.projected_problem_dense(pos, K, p)
    return projected_resolvent_dense(h, z, q, s)


def test_static_lattice_through_the_pipeline_gives_zero(li):
    from spia_mpi.engine.workflow import compute_lambda
    pos = np.broadcast_to(li.reference_positions, (3, 2) + li.reference_positions.shape).copy()
    res = compute_lambda(li, pos, KPOINTS, 300.0, J=4, n_per_k=5, gammas=(0.3,), n_blocks=3,
                         fermi_level_ev=li.fermi_level_ev)
    assert np.abs(res.lambda_m).max() < 1e-12
    assert np.abs(res.gamma_fs).max() < 1e-12


@pytest.mark.slow
def test_scf_configuration_is_self_consistent_and_differs_from_frozen(workdir):
    """density = 'scf' reproduces GPAW's own eigenvalues of that configuration's SCF; 'frozen'
    (the reference density) differs from it by the response of the density to the displacement;
    the SCF is checkpointed (a second model on the same folder reuses it, bit-identical)."""
    scf = make_model(workdir, density="scf")
    frozen = make_model(workdir, density="frozen")
    pos = displaced(scf, seed=2, amplitude=0.15)
    from gpaw import GPAW
    atoms = scf.atoms.copy()
    atoms.set_positions(pos)
    atoms.calc = GPAW(**scf.settings.calculator_parameters(), txt=None)
    atoms.get_potential_energy()
    kk = np.asarray(atoms.calc.wfs.kd.ibzk_kc)
    e_scf = eigh(scf.hamiltonian_dense(pos, [0, 0, 0]), scf.overlap_dense(pos, [0, 0, 0]), eigvals_only=True)
    e_frozen = eigh(frozen.hamiltonian_dense(pos, [0, 0, 0]), frozen.overlap_dense(pos, [0, 0, 0]),
                    eigvals_only=True)
    own = atoms.calc.get_eigenvalues(kpt=int(np.flatnonzero(np.all(np.abs(kk) < 1e-10, axis=1))[0]))
    assert np.abs(e_scf[:len(own)] - own).max() < 1e-4            # two SCFs from different starts
    assert np.abs(e_frozen[:len(own)] - own).max() > 1e-3
    # checkpoint per configuration–bead: a new model (a resumed run) finds the SCF and skips it
    again = make_model(workdir, density="scf")
    assert all(np.array_equal(a, b) for a, b in zip(again.matrices(pos), scf.matrices(pos)))
    log = (workdir / "gpaw_group0.txt").read_text().split("=====")[-1]
    assert not re.search(r"^iter:", log, re.M)                 # no SCF iteration in the reload
    assert len(list(workdir.glob("scf_*.gpw"))) == 1


def test_scf_failure_names_configuration_and_bead(workdir, li):
    """maxiter = 1: the reference (made by ``li``, reused) is fine, a displaced bead is not."""
    model = make_model(workdir, density="scf", maxiter=1)
    pos = np.stack([np.stack([model.reference_positions, displaced(model, seed=3)])] * 2)
    model._configurations = pos
    with pytest.raises(ConvergenceError, match="configuration 0, bead 1"):
        model.matrices(pos[0, 1])


def test_unknown_element_and_offgrid_kpoint_are_input_errors(tmp_path):
    require_gpaw()
    from ase import Atoms
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    la = Atoms("La", cell=np.eye(3) * 3.0, pbc=True)
    with pytest.raises(InputError, match="element La"):
        GpawModel(la, [1, 1, 1], GpawSettings(), [[0, 0, 0]])
    with pytest.raises(InputError, match="not on the Γ-centred"):
        GpawModel(bulk("Li", "bcc", a=A_LI), [2, 1, 1], GpawSettings(kpts=(1, 1, 1)), [[0.5, 0, 0]])


def test_missing_gpaw_says_how_to_install(monkeypatch):
    from spia_mpi.models import gpaw as gm
    monkeypatch.setitem(sys.modules, "gpaw", None)
    with pytest.raises(StackError, match="apt-get install gpaw"):
        gm.require_gpaw()
    assert not gm.gpaw_status()[0]


RUN = """
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
kpoints = [[0, 0, 0], [0.5, 0, 0]]
[configurations.einstein]
hbar_omega_ev = 0.05
temperature_k = 300
n_samples = 4
n_beads = 2
seed = 5
[spia]
matsubara_j = 4
states_per_k = 5
gamma_ev = [0.3]
n_blocks = 4
resolvent = "{resolvent}"
ranks_per_group = {rpg}
[eliashberg]
mustar = [0.1]
tc_errors = false
[output]
file = "res.h5"
plots = false
"""


def _run(tmp_path, spia_cli, name, ranks, resolvent="dense", rpg=1):
    import h5py
    d = tmp_path / name
    d.mkdir()
    bulk("Li", "bcc", a=A_LI).write(d / "li.xyz")
    (d / "in.toml").write_text(RUN.format(resolvent=resolvent, rpg=rpg))
    r = spia_cli(["run", d / "in.toml"], ranks=ranks, timeout=600)
    assert r.returncode == 0, r
    assert "GPAW" not in r.stdout                     # GPAW's text goes to the work folder
    assert (d / "res.h5.ckpt" / "gpaw" / "gpaw_group0.txt").exists()
    with h5py.File(d / "res.h5", "r") as f:
        assert f["timings"].attrs["gpaw_density"] > 0 and f["timings"].attrs["gpaw_cross_overlap"] > 0
        return f["lambda/lambda_m"][...]


@pytest.mark.slow
def test_run_one_rank_equals_two_groups_and_one_group_of_two(tmp_path, spia_cli):
    """The same run on 1 rank, 2 one-rank groups and 1 group of 2 ranks (GPAW and PETSc on
    the group's two ranks); frozen density, so every rank count does the same arithmetic up
    to the order of GPAW's domain sums."""
    lam1 = _run(tmp_path, spia_cli, "one", 1)
    lam2 = _run(tmp_path, spia_cli, "two", 2)
    lam3 = _run(tmp_path, spia_cli, "group", 2, resolvent="petsc", rpg=2)
    assert np.abs(lam1).max() > 1e-4
    assert np.abs(lam2 - lam1).max() < 1e-10
    assert np.abs(lam3 - lam1).max() < 1e-10 * max(1.0, np.abs(lam1).max())


def test_shipped_li2mgh16_example_input_builds_its_model():
    """spia_mpi/data/li2mgh16_gpaw.toml: valid schema, a 76-atom non-diagonal supercell of Table S1."""
    require_gpaw()
    from importlib.resources import files
    from spia_mpi.commands.run import build_model
    from spia_mpi.io.runinput import load_run_input
    path = files("spia_mpi") / "data" / "li2mgh16_gpaw.toml"
    inp, folder = load_run_input(path)
    model = build_model(inp, folder)
    assert inp.model.kind == "gpaw" and len(model.atoms) == 76
    assert sorted(set(model.atoms.get_chemical_symbols())) == ["H", "Li", "Mg"]
