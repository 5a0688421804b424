"""Real-space grid model: free-electron limit and its convergence order, folding, Hermiticity,
PETSc assembly on 2 ranks, grid convergence for a small hydride, SPIA on the grid model."""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.errors import InputError
from spia_mpi.gridmodel import GridModel, fermi_level_of_reference
from spia_mpi.units import HBAR2_OVER_2ME_EV_A2

EMPTY = {"H": {"Z": 0.0, "rc": 0.0, "qs": 3.0}}       # a ghost atom: V = 0


def cubic(a=2.0, symbol="H"):
    return Atoms(symbol, positions=[[0, 0, 0]], cell=np.diag([a, a, a]), pbc=True)


@pytest.mark.parametrize("order", [2, 4, 6])
def test_free_electrons_converge_at_stencil_order(order):
    """V = 0: lowest band at k is ħ²k²/2m up to O(h^order); the error ratio for h → h/2 is 2^order."""
    errs = []
    k = 0.3
    for n in (8, 16):   # k along x: the lowest band is constant along y, z, so 4 points suffice there
        m = GridModel(cubic(), np.eye(3, dtype=int), (n, 4, 4), order, pseudopotentials=EMPTY)
        ev = np.linalg.eigvalsh(m.hamiltonian_dense(m.reference_positions, [k, 0, 0]))
        errs.append(abs(ev.min() - HBAR2_OVER_2ME_EV_A2 * (2 * np.pi * k / 2.0) ** 2))
    assert np.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.1)


def test_plane_waves_are_eigenstates_when_v_is_zero():
    m = GridModel(cubic(), np.diag([2, 1, 1]), (8, 8, 8), 4, pseudopotentials=EMPTY)
    K = [0.25, 0.1, 0.0]
    H = m.hamiltonian_dense(m.reference_positions, K)
    ref = m.reference_states(K, 3)
    hv = H @ ref.vectors
    rayleigh = np.real(np.sum(ref.vectors.conj() * hv, axis=0))
    assert np.allclose(hv, ref.vectors * rayleigh[None, :], atol=1e-10)
    assert np.allclose(ref.vectors.conj().T @ ref.vectors, np.eye(ref.n_states), atol=1e-12)
    # FD energies approach ħ²|k+G|²/2m (4th order, h = 0.25 Å): within 1 %
    assert np.allclose(rayleigh, ref.energies, rtol=0.01)


def test_supercell_bands_are_folded_primitive_bands():
    """With the ions present: H(K) of a 2×1×1 supercell has the union of the primitive
    spectra at the two folded k (same grid spacing, same potential)."""
    prim = Atoms("LiH", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([2.2, 2.2, 2.2]), pbc=True)
    sup = GridModel(prim, np.diag([2, 1, 1]), (6, 6, 6), 4)
    K = [0.3, 0.2, 0.0]
    ev_s = np.linalg.eigvalsh(sup.hamiltonian_dense(sup.reference_positions, K))
    p = GridModel(prim, np.eye(3, dtype=int), (6, 6, 6), 4)
    ks = sup.reference_states(K, 1).kpoints_frac
    assert len(ks) == 2
    ev_p = np.sort(np.concatenate([np.linalg.eigvalsh(p.hamiltonian_dense(p.reference_positions, k)) for k in ks]))
    # the screening uses the same mean density in both cells, so the spectra agree to round-off
    assert np.allclose(np.sort(ev_s), ev_p, atol=1e-9)


def test_hermitian_and_translation_of_ions():
    prim = Atoms("H2", positions=[[0, 0, 0], [1.0, 1.0, 1.0]], cell=np.diag([2.0, 2.0, 2.0]), pbc=True)
    m = GridModel(prim, np.eye(3, dtype=int), (8, 8, 8), 4)
    H = m.hamiltonian_dense(m.reference_positions, [0.1, 0.2, 0.3])
    assert np.max(np.abs(H - H.conj().T)) < 1e-12
    # moving every ion by one grid step shifts V by one grid step exactly
    v0 = m.potential(m.reference_positions)
    v1 = m.potential(m.reference_positions + np.array([m.h[0], 0, 0]))
    assert np.allclose(np.roll(v0, 1, axis=0), v1, atol=1e-10)
    # an ion diffusing across the boundary is allowed (no attachment to sites)
    v2 = m.potential(m.reference_positions + np.array([2.0, 0, 0]))
    assert np.allclose(v0, v2, atol=1e-10)


def test_grid_convergence_small_hydride():
    """Band energies near ε_F of a 2-atom LiH-like cell converge with the grid (h → h/2)."""
    prim = Atoms("LiH", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([2.2, 2.2, 2.2]), pbc=True)
    levels = []
    from scipy.sparse.linalg import eigsh
    for n in (6, 12, 18):
        m = GridModel(prim, np.eye(3, dtype=int), (n, n, n), 4)
        h = m._sparse(m.reference_positions, [0.25, 0.0, 0.0])
        ev = np.sort(eigsh(h, k=4, which="SA", tol=1e-10)[0])
        levels.append(ev)
    d1 = np.max(np.abs(levels[1] - levels[0]))
    d2 = np.max(np.abs(levels[2] - levels[1]))
    assert d2 < 0.3 * d1 and d2 < 0.05, (d1, d2)


def test_bad_inputs():
    with pytest.raises(InputError, match="diagonal supercell"):
        GridModel(cubic(), [[1, 1, 0], [0, 1, 0], [0, 0, 1]], (4, 4, 4))
    with pytest.raises(InputError, match="fd_order"):
        GridModel(cubic(), np.eye(3, dtype=int), (4, 4, 4), 3)
    with pytest.raises(InputError, match="no pseudopotential for Xe"):
        GridModel(cubic(symbol="Xe"), np.eye(3, dtype=int), (4, 4, 4))
    with pytest.raises(InputError, match="3D cell"):
        GridModel(Atoms("H", cell=[[2, 0, 0], [2, 0, 0], [0, 0, 2]], pbc=True), np.eye(3, dtype=int))


@pytest.mark.parametrize("order", [2, 4, 6])
def test_non_orthogonal_cell_free_electrons_converge(order):
    """fcc cell (60° angles, mixed derivatives): lowest band → ħ²|k|²/2m at the stencil order."""
    from ase.build import bulk
    prim = bulk("H", "fcc", a=3.0)
    b = 2 * np.pi * np.linalg.inv(prim.cell[:]).T
    k = np.array([0.1, 0.2, 0.05])
    errs = []
    for n in (6, 12):
        m = GridModel(prim, np.eye(3, dtype=int), (n, n, n), order, pseudopotentials=EMPTY)
        H = m.hamiltonian_dense(m.reference_positions, k)
        assert np.max(np.abs(H - H.conj().T)) < 1e-12
        errs.append(abs(np.linalg.eigvalsh(H).min() - HBAR2_OVER_2ME_EV_A2 * np.sum((k @ b) ** 2)))
    assert np.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.1)


def test_non_orthogonal_supercell_folding():
    """fcc LiH-like cell: the 1×1×2 supercell spectrum at K is the union of the primitive
    spectra at the two folded k (Bloch phases of the mixed-derivative stencil included)."""
    from ase.build import bulk
    prim = bulk("LiH", "rocksalt", a=3.6)
    sup = GridModel(prim, np.diag([1, 1, 2]), (5, 5, 5), 4)
    K = [0.1, 0.3, 0.2]
    ev_s = np.linalg.eigvalsh(sup.hamiltonian_dense(sup.reference_positions, K))
    p = GridModel(prim, np.eye(3, dtype=int), (5, 5, 5), 4)
    ks = sup.reference_states(K, 1).kpoints_frac
    ev_p = np.sort(np.concatenate([np.linalg.eigvalsh(p.hamiltonian_dense(p.reference_positions, k)) for k in ks]))
    assert np.allclose(np.sort(ev_s), ev_p, atol=1e-9)


def test_li2mgh16_cell_builds_with_40_valence_electrons():
    """The 38-atom Fd-3m primitive cell on a 0.3 Å grid: 4 Li + 2 Mg + 32 H = 40 valence electrons,
    and the lowest SLEPc band is the bottom of a free-electron-like valence band."""
    from spia_mpi import bands
    from spia_mpi.structures import li2mgh16_solid
    m = GridModel(li2mgh16_solid(), np.eye(3, dtype=int), (16, 16, 16), 4)
    assert m.n_electrons == 40.0 and m.n_basis == 4096
    e, _ = bands.lowest_eigenpairs(m, [0, 0, 0], 4)
    assert e[0] < e[1] - 5.0            # a single deep s-like state at Γ below the next shell


@pytest.mark.mpi(ranks=2)
def test_petsc_assembly_two_ranks_equals_dense():
    from scipy.sparse import csr_matrix

    from spia_mpi.parallel import world
    comm = world()
    prim = Atoms("LiH", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([2.2, 2.2, 2.2]), pbc=True)
    m = GridModel(prim, np.diag([2, 1, 1]), (4, 4, 4), 4)
    pos = m.reference_positions + 0.05
    A = m.hamiltonian_petsc(pos, [0.25, 0, 0], comm)
    r0, r1 = A.getOwnershipRange()
    ia, ja, a = A.getValuesCSR()
    local = csr_matrix((a, ja, ia), shape=(r1 - r0, m.n_basis)).toarray()
    dense = m.hamiltonian_dense(pos, [0.25, 0, 0])
    assert np.allclose(local, dense[r0:r1], atol=1e-12)
    assert comm.allreduce(r1 - r0) == m.n_basis


@pytest.mark.slow
def test_spia_on_grid_model_static_and_moving():
    """The SPIA engine on the grid model: frozen ions give λ = 0; quantum H ions give λ(0) > 0
    decreasing with m, with finite error bars."""
    from spia_mpi.configurations import sample_einstein_ring_polymers
    from spia_mpi.workflow import compute_lambda
    prim = cubic(1.6)
    m = GridModel(prim, np.eye(3, dtype=int) * 2, (4, 4, 4), 4)
    ef = fermi_level_of_reference(m, [[0, 0, 0]], 300.0)
    frozen = np.broadcast_to(m.reference_positions, (4, 4) + m.reference_positions.shape)
    res = compute_lambda(m, frozen, [[0, 0, 0]], 300.0, n_per_k=4, gammas=(0.5,), n_blocks=2,
                         fermi_level_ev=ef, solver="petsc")
    assert np.max(np.abs(res.lambda_m)) < 1e-10
    pos = sample_einstein_ring_polymers(24, 4, np.full(8, 1.008), 0.15, 300.0, m.reference_positions,
                                        np.random.default_rng(0))
    res = compute_lambda(m, pos, [[0, 0, 0]], 300.0, n_per_k=4, gammas=(0.5,), n_blocks=4,
                         fermi_level_ev=ef, solver="petsc")
    lam, err = res.lambda_m[0], res.lambda_m_error[0]
    assert lam[0] > 3 * err[0] > 0
    assert lam[0] > lam[1] > lam[2]
