"""The PAW cross overlap X(R⁽⁰⁾, R) = ⟨Φ̃(R⁽⁰⁾)|T̂†(R⁽⁰⁾)T̂(R)|Φ̃(R)⟩ of models/paw_overlap.py against the
properties that make SPIA's common-space projection consistent (docs/models.md, "GPAW"):

* ∂X + ∂X† = ∂S at R = R⁽⁰⁾ (central differences of the model's own X and S): the projection adds no
  overlap change of its own — the projector motion counted once, as in S(R);
* X(R⁽⁰⁾, R)† = X(R, R⁽⁰⁾) (the two position sets enter symmetrically) and X(R⁽⁰⁾, R⁽⁰⁾) = S(R⁽⁰⁾);
* the physics statement: the generalised vertex of SPIA's resolvent (engine/harmonic.py) does not depend
  on z = ε_F + iη, i.e. on the Matsubara index J. It is V_st = c†∂Hc − ε_s c†∂Xc − ε_t c†∂X†c +
  z c†(∂X + ∂X† − ∂S)c for generalised eigenvectors c: the last term must vanish;
* the spheres' own data: A + A† + ⟨Δφ|Δφ⟩ = GPAW's ΔS, and the first-order change of the two-centre
  sphere overlap ⟨Δφ(R⁽⁰⁾)|Δφ(R)⟩ is −⟨Δφ|∇Δφ⟩ from GPAW's radial derivative integrals (another code path);
* a run's checkpoint made with another form of X (``paw_overlap.FORM``) is refused.

These test the one term list of X (``paw_overlap.adjoint_terms`` + ``adjoint_rows``) that both the dense X
used here and the row-distributed sparse X† evaluate (tests/test_gpaw_sparse.py: the two equal to 1e-10).

System: bcc Li (a = 3.44 Å), dzp, 2-atom supercell, K = 0 and ½ (and ¼), frozen density (seconds).
"""
import numpy as np
import pytest
from ase.build import bulk
from ase.units import Bohr

from spia_mpi.engine import harmonic as hm
from spia_mpi.engine.resolvent import matsubara_eta
from prerequisites import require_gpaw, BCC_LI_A as A_LI, BCC_LI_SETTINGS as SETTINGS

KPOINTS = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]
GENERAL_K = [[0.25, 0.0, 0.0]]       # where Bloch phases e^{±iπ/2} tell their signs apart
STEP = 0.005                               # Å, central differences (O(δ²) ≈ 1e-5 relative)
DIRECTIONS = (0, 2, 4)                     # atom 0 (at the origin: crosses cell faces) x, z; atom 1 y


def make_model(tmp, kpoints, kpts=SETTINGS["kpts"]):
    require_gpaw()
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    model = GpawModel(bulk("Li", "bcc", a=A_LI), (2, 1, 1),
                      GpawSettings(density="frozen", **{**SETTINGS, "kpts": kpts}), kpoints)
    model.prepare(None, 1, tmp)
    return model


@pytest.fixture(scope="module")
def li(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("paw_overlap"), KPOINTS)


@pytest.fixture(scope="module")
def li_general_k(tmp_path_factory):
    """K = ¼ on a 4×1×1 SCF grid."""
    return make_model(tmp_path_factory.mktemp("paw_overlap_k"), GENERAL_K, kpts=(4, 1, 1))


def gauged_matrices(model, positions):
    """(H, S, X) at every K in the Bloch gauge continuous in the positions (model.bloch_gauge)."""
    h, s, x = model.matrices(positions)
    out = []
    for ik, K in enumerate(model.kpoints):
        d = model.bloch_gauge(positions, K)
        out.append((d.conj()[:, None] * h[ik] * d, d.conj()[:, None] * s[ik] * d, x[ik] * d))
    return out


@pytest.mark.parametrize("which", ["K = 0, ½", "K = ¼"])
def test_overlap_change_is_counted_once(which, request):
    """∂X + ∂X† = ∂S: X's first-order change is the overlap's change, nothing more (with the
    projectors at the current ions on both sides, X counts their motion twice). At K = ¼ atom 0
    (at the origin) crossing a cell face tests the Bloch phases of the wrapped positions in both
    the model's continuous gauge (S alone) and the pairing of the spheres (X)."""
    li = request.getfixturevalue("li" if which == "K = 0, ½" else "li_general_k")
    for i in (0, 1, 2) if which == "K = ¼" else DIRECTIONS:
        derivatives = []                     # central differences at δ and δ/2 for every K
        for step in (STEP, STEP / 2):
            plus, minus = (gauged_matrices(li, p) for p in hm.displaced(li.reference_positions, i, step))
            derivatives.append([tuple((plus[ik][j] - minus[ik][j]) / (2 * step) for j in (1, 2))
                                for ik in range(len(li.kpoints))])
        for ik in range(len(li.kpoints)):
            # Richardson: the overlaps of the small augmentation spheres curve sharply (O(δ²) error
            # 1.5e-5/Å at δ = 0.005 Å, 3.7e-6 at δ/2); the double-counted projector motion is 0.11/Å here
            ds, dx = ((4 * derivatives[1][ik][j] - derivatives[0][ik][j]) / 3 for j in range(2))
            assert 0.01 < np.abs(ds).max() < 10                  # the overlap really changes (1/Å), continuously
            err = np.abs(dx + dx.conj().T - ds).max()
            assert err < 1e-6, (i, ik, err, np.abs(ds).max())


def test_cross_overlap_is_hermitian_in_its_two_position_sets(li):
    """X(R⁽⁰⁾, R)† = X(R, R⁽⁰⁾) for a random displacement, from the dense kernel with the two sets
    exchanged (GPAW's wrapped scaled positions), and X(R⁽⁰⁾, R⁽⁰⁾) = S(R⁽⁰⁾) (GPAW's own overlap)."""
    rng = np.random.default_rng(5)
    pos = li.reference_positions + 0.1 * rng.standard_normal(li.reference_positions.shape)
    atoms = li.atoms.copy()
    atoms.set_positions(pos)
    spos = atoms.get_scaled_positions() % 1.0
    cell = np.asarray(li.atoms.cell[:], float) / Bohr
    pbc = np.ones(3, bool)
    forward = li._cross(cell, pbc, li._spos_ref, spos, np.asarray(KPOINTS))
    backward = li._cross(cell, pbc, spos, li._spos_ref, np.asarray(KPOINTS))
    x_model = li.matrices(pos)[2]
    assert np.abs(forward - x_model).max() < 1e-10                         # the kernel is the model's X
    for ik in range(len(KPOINTS)):
        asym = np.abs(forward[ik].conj().T - backward[ik]).max()
        assert asym < 1e-10 * np.abs(forward[ik]).max(), (ik, asym)
        assert np.abs(forward[ik] - li._reference_matrices[1][ik]).max() > 1e-3      # really displaced
        x0 = li._cross(cell, pbc, li._spos_ref, li._spos_ref, np.asarray(KPOINTS))[ik]
        assert np.abs(x0 - li._reference_matrices[1][ik]).max() < 1e-12


def test_generalised_vertex_does_not_depend_on_z(li):
    """SPIA's first-order vertex (engine/harmonic.moving_basis_vertex on the model's own ∂H, ∂S, ∂Q) at
    z = ε_F + iη for J = 4 and J = 16 (300 K: η = 0.73 and 2.68 eV): equal for every state pair. With
    every band in the reference space the states are exact generalised eigenvectors and
    V(z₁) − V(z₂) = (z₁ − z₂) c†(∂X + ∂X† − ∂S)c, which a consistent X makes zero. Compared in a
    fixed gauge: the states' own basis c, V_c = U V U† with the band rotation U = diag(z − ε)⁻¹ E_r
    (exact eigenstates: Ḡ = diag(z − ε)⁻¹, E_r = U Ḡ_b⁻¹ = Ḡ⁻¹U)."""
    z = [li.fermi_level_ev + 1j * matsubara_eta(J, 300.0) for J in (4, 16)]
    for K in KPOINTS:
        refs = li.reference_states(K, 5)                      # every band: 10 states in 10 orbitals
        assert refs.vectors.shape[1] == li.n_basis
        bands = [hm.static_bands(li, K, refs, zz) for zz in z]
        rotations = [b.ends_right / (zz - refs.energies)[:, None] for b, zz in zip(bands, z)]
        for u in rotations:
            assert np.abs(u.conj().T @ u - np.eye(len(u))).max() < 1e-8
        for i in DIRECTIONS:
            d = hm.problem_derivatives(li, [K], [refs], i, STEP)[0]
            v = [u @ hm.moving_basis_vertex(b, *d) @ u.conj().T for b, u in zip(bands, rotations)]
            scale = np.abs(v[0]).max()
            assert scale > 0.1
            assert np.abs(v[0] - v[1]).max() < 1e-4 * scale, (K, i, np.abs(v[0] - v[1]).max(), scale)


def test_sphere_data_against_the_setups_radial_integrals(li):
    """A + A† + ⟨Δφ|Δφ⟩ = ΔS (GPAW's dO_ii) to rounding, and d/du ⟨Δφ_i(r)|Δφ_j(r − u)⟩ at u = 0 from
    the two-centre expansion used for X = −⟨Δφ_i|∂_v Δφ_j⟩ from GPAW's radial nabla integrals
    (``Setup.get_derivative_integrals`` — the routine behind ``nabla_iiv`` — applied to Δφ): the
    anti-Hermitian first-order sphere motion the earlier cross-overlap forms left out (0.005/Bohr)."""
    from types import SimpleNamespace
    from gpaw.lcao.tci import TCIExpansions
    from gpaw.setup import Setup
    from spia_mpi.models import paw_overlap as po
    setup = li._cross.setups[0]
    spheres = li._cross.spheres
    l_j = list(setup.l_j)
    phi, phit = (np.asarray(f)[:len(l_j)] for f in (setup.data.phi_jg, setup.data.phit_jg))
    rgd = setup.data.rgd
    own = SimpleNamespace(ni=setup.ni, nj=len(l_j), l_j=l_j)
    assert np.abs(Setup.get_derivative_integrals(own, rgd, phi, phit) - setup.nabla_iiv).max() < 1e-10
    nabla = Setup.get_derivative_integrals(own, rgd, phi - phit, np.zeros_like(phi))        # ⟨Δφ|∇Δφ⟩ [i, j, v]
    assert np.abs(nabla).max() > 1e-3
    splines = po.augmentation_splines(setup)
    box, step = 4 * splines[0].get_cutoff(), 1e-3                                            # Bohr
    tci_exp = TCIExpansions([splines], [setup.pt_j], [0, 0])

    def overlap(u_c):
        spos = np.array([0.5 + np.asarray(u_c) / box, [0.5, 0.5, 0.5]])            # atom 0 at u, atom 1 at 0
        return tci_exp.get_tci_calculator(np.eye(3) * box, spos, np.zeros(3, bool), np.zeros((1, 3)),
                                          complex).O_T(1, 0)[0][0].real            # ⟨Δφ(0)|Δφ(u)⟩ [i, j]
    o0 = overlap(np.zeros(3))
    a = np.asarray(spheres.a_ii[0])
    assert np.abs(a + a.T + o0 - setup.dO_ii).max() < 1e-12
    for v in range(3):
        du = np.eye(3)[v] * step
        derivative = (overlap(du) - overlap(-du)) / (2 * step)
        assert np.abs(derivative + nabla[:, :, v]).max() < 1e-3 * np.abs(nabla).max(), v


def test_checkpoint_of_another_cross_overlap_form_is_refused(tmp_path, monkeypatch):
    """A GPAW run's checkpoint holds resolvents of one form of X: `run` with the same input but another
    ``paw_overlap.FORM`` must refuse it (never mix old and new g), and accept it again with the same form.
    In-process on one rank: 2-atom cell, K = Γ, frozen density, 4 configurations × 2 beads."""
    require_gpaw()
    from mpi4py import MPI
    from spia_mpi.commands.run import execute
    from spia_mpi.errors import InputError
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.models import paw_overlap
    bulk("Li", "bcc", a=A_LI).write(tmp_path / "li.xyz")
    (tmp_path / "in.toml").write_text("""
[model]
kind = "gpaw"
[model.gpaw]
structure = "li.xyz"
kpts = [2, 1, 1]
h_ang = 0.3
density = "frozen"
[supercell]
matrix = [2, 1, 1]
kpoints = [[0, 0, 0]]
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
n_blocks = 2
[eliashberg]
mustar = [0.1]
tc_errors = false
[output]
file = "res.h5"
plots = false
""")

    def run():
        inp, folder = load_run_input(tmp_path / "in.toml")
        return execute(inp, folder, MPI.COMM_SELF)
    assert run() == 0
    assert any((tmp_path / "res.h5.ckpt").glob("task_*.npz"))
    monkeypatch.setattr(paw_overlap, "FORM", paw_overlap.FORM + "-other")
    with pytest.raises(InputError, match="belongs to a different run"):
        run()
    monkeypatch.undo()
    assert run() == 0
