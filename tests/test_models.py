"""Tight-binding models against analytic bands: non-diagonal supercell folding, a non-orthogonal
(fcc) primitive cell, hopping tables, Hermiticity, PETSc on 2 ranks; the Lorentzian DOS sum rule."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from spia_mpi.engine.spia import lorentzian_weights
from spia_mpi.models.tightbinding import TightBindingModel, holstein_cubic
from spia_mpi.lattice.supercells import folded_kpoints

NON_DIAGONAL = [[1, 1, 0], [0, 1, 1], [1, 0, 2]]          # det 3, no axis left alone


def cosine_band(k_frac):
    """−2t Σ cos(2π k_α) of the simple cubic lattice (t = 1 eV, k in reduced units)."""
    return -2.0 * np.cos(2 * np.pi * np.asarray(k_frac)).sum(axis=-1)


@pytest.mark.parametrize("K", [[0, 0, 0], [0.2, -0.1, 0.35]])
def test_non_diagonal_supercell_bands_are_the_folded_cosine_band(K):
    m = holstein_cubic(NON_DIAGONAL, 1.0, 1.0, 0.4)
    assert m.n_basis == 3
    ev = np.linalg.eigvalsh(m.hamiltonian_dense(m.reference_positions, K))
    ks = folded_kpoints(NON_DIAGONAL, K)
    assert np.allclose(ev, np.sort(cosine_band(ks)), atol=1e-12)
    ref = m.reference_states(K, 1)                          # exact Bloch states of those k
    H = m.hamiltonian_dense(m.reference_positions, K)
    assert np.allclose(H @ ref.vectors, ref.vectors * ref.energies[None, :], atol=1e-12)
    assert np.allclose(np.sort(ref.energies), ev, atol=1e-12)


def test_fcc_nearest_neighbour_band_in_the_primitive_cell():
    """fcc, one orbital, hopping −t to the 12 nearest neighbours of the (non-orthogonal) primitive
    cell: ε(k) = −4t [cos(k_x a/2)cos(k_y a/2) + cos(k_y a/2)cos(k_z a/2) + cos(k_z a/2)cos(k_x a/2)]
    in Cartesian k, both for the 2×2×2 supercell at K = Γ and through reference states."""
    a, t = 3.0, 0.7
    prim = bulk("H", "fcc", a=a)
    d_nn = a / np.sqrt(2)
    m = TightBindingModel(prim, np.diag([2, 2, 2]), lambda d: -t if abs(d - d_nn) < 1e-6 else 0.0,
                          cutoff=1.01 * d_nn)
    ks = folded_kpoints(np.diag([2, 2, 2]), [0, 0, 0])
    kc = 2 * np.pi * ks @ np.linalg.inv(prim.cell[:]).T
    c = np.cos(kc * a / 2)
    exact = -4 * t * (c[:, 0] * c[:, 1] + c[:, 1] * c[:, 2] + c[:, 2] * c[:, 0])
    ev = np.linalg.eigvalsh(m.hamiltonian_dense(m.reference_positions, [0, 0, 0]))
    assert np.allclose(ev, np.sort(exact), atol=1e-12)


def test_hopping_table_equals_hopping_function():
    a = 1.5
    prim = Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)
    f = TightBindingModel(prim, np.diag([3, 2, 2]), lambda d: -1.0 if abs(d - a) < 1e-6 else -0.1,
                          cutoff=1.01 * a * np.sqrt(2))
    table = TightBindingModel(prim, np.diag([3, 2, 2]), {a: -1.0, round(a * np.sqrt(2), 6): -0.1},
                              cutoff=1.01 * a * np.sqrt(2))
    K = [0.1, 0.2, 0.3]
    assert np.allclose(f.hamiltonian_dense(f.reference_positions, K),
                       table.hamiltonian_dense(table.reference_positions, K), atol=1e-14)
    ev = np.linalg.eigvalsh(f.hamiltonian_dense(f.reference_positions, [0, 0, 0]))
    # nearest + next-nearest (12 neighbours at a√2) cosine band at the folded k
    kc = 2 * np.pi * folded_kpoints(np.diag([3, 2, 2]), [0, 0, 0])
    cx, cy, cz = np.cos(kc).T
    exact = -2 * (cx + cy + cz) - 0.4 * (cx * cy + cy * cz + cz * cx)
    assert np.allclose(ev, np.sort(exact), atol=1e-12)


def test_hamiltonian_is_hermitian_with_displaced_ions_and_bloch_phases():
    m = holstein_cubic(NON_DIAGONAL, 1.0, 1.0, 0.8)
    pos = m.reference_positions + 0.2 * np.random.default_rng(0).standard_normal(m.reference_positions.shape)
    H = m.hamiltonian_dense(pos, [0.31, 0.12, -0.4])
    assert np.max(np.abs(H - H.conj().T)) < 1e-14
    # the Holstein coupling moves only the on-site energies, by g·u_z
    H0 = m.hamiltonian_dense(m.reference_positions, [0.31, 0.12, -0.4])
    u = pos - m.reference_positions
    assert np.allclose(np.diag(H - H0).real, 0.8 * u[:, 2], atol=1e-12)
    assert np.allclose(H - H0 - np.diag(np.diag(H - H0)), 0.0)


@pytest.mark.mpi(ranks=2)
def test_tight_binding_petsc_rows_two_ranks_equal_dense():
    from scipy.sparse import csr_matrix

    from spia_mpi.parallel.mpi import world
    comm = world()
    m = holstein_cubic(np.diag([3, 2, 2]), 1.0, 1.0, 0.5)
    pos = m.reference_positions + 0.1
    A = m.hamiltonian_petsc(pos, [0.25, 0.5, 0.0], comm)
    r0, r1 = A.getOwnershipRange()
    ia, ja, a = A.getValuesCSR()
    local = csr_matrix((a, ja, ia), shape=(r1 - r0, m.n_basis)).toarray()
    assert np.allclose(local, m.hamiltonian_dense(pos, [0.25, 0.5, 0.0])[r0:r1], atol=1e-14)
    assert comm.allreduce(r1 - r0) == m.n_basis and 0 < r1 - r0 < m.n_basis


def test_lorentzian_dos_sum_rule_and_peak():
    """The Lorentzian weights w_s(ε_F) = N_γ's terms, read as a DOS in ε_F: ∫ Σ_s w_s dε_F over a
    wide window counts the states (minus the Lorentzian tails outside it), and a single level
    gives the peak height 1/(πγ) at its energy."""
    e = np.array([-1.0, 0.0, 0.0, 2.5])
    grid = np.linspace(-200, 200, 400001)
    # w depends on ε_s − ε_F only: every (grid point, state) pair at once, with ε_F = 0
    dos = lorentzian_weights((e[None, :] - grid[:, None]).ravel(), 0.0, 0.1).reshape(grid.size, e.size).sum(1)
    tails = sum(np.arctan(0.1 / (200 - x)) + np.arctan(0.1 / (200 + x)) for x in e) / np.pi  # beyond ±200 eV
    assert np.trapz(dos, grid) == pytest.approx(len(e) - tails, rel=1e-6)
    one = lorentzian_weights([0.3], 0.3, [0.05, 0.2])
    assert one[:, 0] == pytest.approx(1 / (np.pi * np.array([0.05, 0.2])), rel=1e-12)
