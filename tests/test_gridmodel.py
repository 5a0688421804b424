"""Real-space grid model: free-electron limit and its convergence order, folding, Hermiticity,
PETSc assembly on 2 ranks, grid convergence for a small hydride, SPIA on the grid model;
row-local assembly against an independent Kronecker-product H; DFT local-potential files (LOCPOT, cube)."""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.errors import InputError
from spia_mpi.models.grid import GridModel, fermi_level_of_reference
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
    with pytest.raises(InputError, match="grid_shape"):
        GridModel(cubic(), [[1, 1, 0], [0, 1, 0], [0, 0, 1]], (4, 4, 4), grid_shape=(4, 1, 4))
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
    from spia_mpi.models import bands
    from spia_mpi.lattice.structures import li2mgh16_solid
    m = GridModel(li2mgh16_solid(), np.eye(3, dtype=int), (16, 16, 16), 4)
    assert m.n_electrons == 40.0 and m.n_basis == 4096
    e, _ = bands.lowest_eigenpairs(m, [0, 0, 0], 4)
    assert e[0] < e[1] - 5.0            # a single deep s-like state at Γ below the next shell


@pytest.mark.mpi(ranks=2)
def test_petsc_assembly_two_ranks_equals_dense():
    from scipy.sparse import csr_matrix

    from spia_mpi.parallel.mpi import world
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
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.engine.workflow import compute_lambda
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


# ------------------------------------------------------------------ distributed assembly
def fd_weights(order, deriv):
    """Central FD weights at offsets −order/2 … order/2 from the Taylor conditions
    Σ_s w_s s^k = k! δ_k,deriv (k < order + 1) — independent of gridmodel's tables."""
    from math import factorial
    s = np.arange(-(order // 2), order // 2 + 1)
    A = np.vander(s, increasing=True).T.astype(float)           # A[k, j] = s_j^k
    rhs = np.zeros(len(s))
    rhs[deriv] = factorial(deriv)
    return s, np.linalg.solve(A, rhs)


def kron_reference_hamiltonian(m, v, K, order):
    """H = −(ħ²/2m)Σ_αβ (B_α·B_β) ∂²/∂u_α∂u_β + diag(V), built as Kronecker products of 1D
    Bloch-periodic FD matrices (reduced coordinates u_α, step 1/N_α), flat index C-order."""
    cell = np.asarray(m.atoms.cell[:], float)
    B = np.linalg.inv(cell).T
    metric = B @ B.T
    N = m.shape

    def fd1d(n, deriv, k):
        s, w = fd_weights(order, deriv)
        D = np.zeros((n, n), dtype=complex)
        for i in range(n):
            for sj, wj in zip(s, w):
                j = i + sj
                D[i, j % n] += wj * np.exp(2j * np.pi * k * (j // n))
        return D

    def embed(ops):   # ops: {axis: 1D matrix}
        mats = [ops.get(a, np.eye(N[a])) for a in range(3)]
        return np.kron(mats[0], np.kron(mats[1], mats[2]))

    T = np.zeros((m.n_basis, m.n_basis), dtype=complex)
    for a in range(3):
        T += metric[a, a] * N[a] ** 2 * embed({a: fd1d(N[a], 2, K[a])})
        for b in range(a + 1, 3):
            T += 2 * metric[a, b] * N[a] * N[b] * embed({a: fd1d(N[a], 1, K[a]), b: fd1d(N[b], 1, K[b])})
    return -HBAR2_OVER_2ME_EV_A2 * T + np.diag(v.ravel())


@pytest.mark.parametrize("order", [2, 4, 8])
def test_local_rows_equal_kronecker_reference_non_orthogonal(order):
    """fcc LiH 1×1×2 supercell (mixed derivatives, Bloch phases on every axis): every row block
    generated locally (ranges not aligned with grid planes, empty, single row) equals the rows of
    the independently built dense Hamiltonian. Order 8 on a 5-point axis: aliased offsets add up."""
    from ase.build import bulk
    from scipy.sparse import csr_matrix
    m = GridModel(bulk("LiH", "rocksalt", a=3.6), np.diag([1, 1, 2]), (5, 4, 3), order)
    pos = m.reference_positions + np.random.default_rng(3).normal(0, 0.1, m.reference_positions.shape)
    K = np.array([0.1, 0.3, 0.2])
    ref = kron_reference_hamiltonian(m, m.potential(pos), K, order)
    n = m.n_basis
    for r0, r1 in [(0, n), (0, 37), (37, 38), (37, 37), (38, n - 11), (n - 11, n)]:
        indptr, indices, data = m.hamiltonian_rows(pos, K, r0, r1)
        assert len(indptr) == r1 - r0 + 1 and indices.max(initial=0) < n
        block = csr_matrix((data, indices, indptr), shape=(r1 - r0, n)).toarray()
        assert np.allclose(block, ref[r0:r1], atol=1e-9 * np.abs(ref).max()), (r0, r1)


def test_row_block_memory_scales_with_the_block():
    """A rank's assembly allocates memory for its own rows only: building 1/8 of the rows of a
    20³ non-orthogonal grid peaks at well under 1/3 of building all rows (V(r) on the whole grid
    is the only O(N) part, ≈ 100 B per point vs ≈ 3 kB per row of stencil)."""
    import tracemalloc

    from ase.build import bulk
    m = GridModel(bulk("LiH", "rocksalt", a=3.6), np.eye(3, dtype=int), (20, 20, 20), 4)
    peaks = []
    for r1 in (m.n_basis, m.n_basis // 8):
        tracemalloc.start()
        out = m.hamiltonian_rows(m.reference_positions, [0.1, 0.2, 0.3], 0, r1)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del out
    assert peaks[1] < peaks[0] / 3, peaks


@pytest.mark.mpi(ranks=2)
def test_petsc_rows_two_ranks_non_orthogonal_equal_kronecker_reference():
    """Each of 2 ranks generates only its own rows; they equal the dense reference rows (fcc cell)."""
    from ase.build import bulk
    from scipy.sparse import csr_matrix

    from spia_mpi.parallel.mpi import world
    comm = world()
    m = GridModel(bulk("LiH", "rocksalt", a=3.6), np.diag([1, 1, 2]), (5, 4, 3), 4)
    pos = m.reference_positions + 0.05
    K = [0.25, 0.1, 0.4]
    A = m.hamiltonian_petsc(pos, K, comm)
    r0, r1 = A.getOwnershipRange()
    ia, ja, a = A.getValuesCSR()
    local = csr_matrix((a, ja, ia), shape=(r1 - r0, m.n_basis)).toarray()
    ref = kron_reference_hamiltonian(m, m.potential(pos), np.asarray(K), 4)
    assert 0 < r1 - r0 < m.n_basis
    assert np.allclose(local, ref[r0:r1], atol=1e-9 * np.abs(ref).max())
    assert comm.allreduce(r1 - r0) == m.n_basis


# ------------------------------------------------------------------ DFT local-potential files
def write_locpot(path, atoms, v_ev):
    """A VASP LOCPOT-format file (values in eV) with ASE's own writer."""
    from ase.calculators.vasp import VaspChargeDensity
    d = VaspChargeDensity(None)
    d.atoms = [atoms]
    d.chg = [np.asarray(v_ev) / atoms.get_volume()]     # ASE's writer multiplies by the volume
    d.write(str(path), format="chgcar")


def write_cube_file(path, atoms, values):
    """A Gaussian cube file (cell and positions converted to Bohr by ASE; values as given)."""
    from ase.io.cube import write_cube
    with open(path, "w") as fh:
        write_cube(fh, atoms, values)


def fcc_lih_model(grid=(6, 5, 5), a=3.6):
    from ase.build import bulk
    return GridModel(bulk("LiH", "rocksalt", a=a), np.diag([1, 1, 2]), grid, 4)


def displaced(m, n_conf, n_beads, seed=0):
    rng = np.random.default_rng(seed)
    return m.reference_positions + rng.normal(0, 0.15, (n_conf, n_beads) + m.reference_positions.shape)


def atoms_at(m, pos):
    at = m.atoms.copy()
    at.positions = pos
    return at


@pytest.mark.parametrize("fmt", ["LOCPOT", "cube"])
def test_hamiltonian_from_potential_files_equals_pseudopotential(tmp_path, fmt):
    """V(r) of our pseudopotential model at known positions, written with ASE's writers (LOCPOT in
    eV; cube in Hartree, cell in Bohr), read back per (configuration, bead): H from the files equals
    H from the positions to the files' precision (LOCPOT 11 digits, cube 6). A non-orthogonal cell
    with three different grid lengths pins units, axis order and the (c, b) → file mapping."""
    from spia_mpi.models.grid import PotentialFiles
    from spia_mpi.units import HARTREE_EV
    m = fcc_lih_model()
    assert len(set(m.shape)) == 3
    pos = displaced(m, 2, 2)
    conf_index = [3, 5]                                   # numbering in the configuration source
    pattern = str(tmp_path / ("c{c}_b{b}." + fmt))
    for i, c in enumerate(conf_index):
        for b in range(2):
            v = m.potential(pos[i, b])
            path = pattern.format(c=c, b=b)
            if fmt == "LOCPOT":
                write_locpot(path, atoms_at(m, pos[i, b]), v)
            else:
                write_cube_file(path, atoms_at(m, pos[i, b]), v / HARTREE_EV)
    pot = PotentialFiles(m, pattern, pos, conf_index)
    pot.check(pos[0, 0])
    mf = fcc_lih_model()
    mf.external_potential = pot
    tol = 1e-8 if fmt == "LOCPOT" else 1e-5          # eV; |V| up to ≈ 8 eV
    K = [0.1, 0.2, 0.3]
    for i in range(2):
        for b in range(2):
            v = m.potential(pos[i, b])
            assert np.ptp(v) > 5.0
            assert np.max(np.abs(mf.potential(pos[i, b]) - v)) < tol
            assert np.allclose(mf.hamiltonian_dense(pos[i, b], K), m.hamiltonian_dense(pos[i, b], K), atol=tol, rtol=0)
    # the four files hold four different potentials: a swapped mapping could not pass
    assert np.max(np.abs(m.potential(pos[0, 0]) - m.potential(pos[1, 1]))) > 100 * tol


def test_cube_electrostatic_potential_sign_and_offset(tmp_path):
    """A cube holding φ = −V/e in Hartree plus an arbitrary constant (DFT potential reference):
    sign = −1 and the zero-mean convention recover V (the pseudopotential V has zero mean)."""
    from spia_mpi.models.grid import PotentialFiles
    from spia_mpi.units import HARTREE_EV
    m = fcc_lih_model()
    pos = displaced(m, 1, 1, seed=4)
    v = m.potential(pos[0, 0])
    assert abs(v.mean()) < 1e-10
    write_cube_file(tmp_path / "phi.cube", atoms_at(m, pos[0, 0]), -v / HARTREE_EV + 0.37)
    pot = PotentialFiles(m, [str(tmp_path / "phi.cube")], pos, sign=-1)
    assert np.max(np.abs(pot(pos[0, 0]) - v)) < 1e-5
    raw = PotentialFiles(m, [str(tmp_path / "phi.cube")], pos, sign=-1, zero_mean=False)
    assert np.allclose(raw(pos[0, 0]) - v, -0.37 * HARTREE_EV, atol=1e-5)


def test_potential_file_on_a_finer_grid_is_fourier_truncated(tmp_path):
    """A LOCPOT on a 2×1×2 finer grid of the same cell (V from a finer pseudopotential model) is
    Fourier-truncated onto the model grid: equal to the model's own V, which keeps exactly the
    components of the model grid's G-vectors."""
    from spia_mpi.models.grid import PotentialFiles
    m = fcc_lih_model()
    fine = fcc_lih_model(grid=(12, 5, 10))
    pos = displaced(m, 1, 1, seed=2)
    write_locpot(tmp_path / "fine.LOCPOT", atoms_at(m, pos[0, 0]), fine.potential(pos[0, 0]))
    pot = PotentialFiles(m, [str(tmp_path / "fine.LOCPOT")], pos)
    v = m.potential(pos[0, 0])
    assert np.max(np.abs(pot(pos[0, 0]) - v)) < 1e-8
    assert np.max(np.abs(fine.potential(pos[0, 0])[::2, :, ::2] - v)) > 1e-3   # plain subsampling would not do


def test_potential_file_errors_name_the_file(tmp_path):
    import re

    from spia_mpi.models.grid import PotentialFiles
    m = fcc_lih_model()
    pos = displaced(m, 1, 2, seed=5)
    # wrong cell (a = 3.7 Å instead of 3.6 Å), same grid
    other = fcc_lih_model(a=3.7)
    p = tmp_path / "cell.LOCPOT"
    write_locpot(p, atoms_at(other, pos[0, 0] * 3.7 / 3.6), other.potential(pos[0, 0] * 3.7 / 3.6))
    with pytest.raises(InputError, match=re.escape(str(p)) + r".*cell .* differs from the model supercell"):
        PotentialFiles(m, [str(p), str(p)], pos)(pos[0, 0])
    # wrong grid, not a multiple: both shapes named
    coarse = fcc_lih_model(grid=(7, 5, 5))
    p = tmp_path / "grid.cube"
    write_cube_file(p, atoms_at(m, pos[0, 0]), coarse.potential(pos[0, 0]))
    with pytest.raises(InputError, match=re.escape(str(p)) + r".*grid \[7, 5, 10\] is neither the model grid \[6, 5, 10\]"):
        PotentialFiles(m, [str(p), str(p)], pos)(pos[0, 0])
    # bead 1 pointed at the file written for bead 0
    p = tmp_path / "b0.LOCPOT"
    write_locpot(p, atoms_at(m, pos[0, 0]), m.potential(pos[0, 0]))
    pot = PotentialFiles(m, [str(p), str(p)], pos)
    assert np.allclose(pot(pos[0, 0]), m.potential(pos[0, 0]), atol=1e-8)
    with pytest.raises(InputError, match=re.escape(str(p)) + r" \(configuration 0, bead 1\).*not at the configuration's positions"):
        pot(pos[0, 1])
    # missing files, positions that belong to no configuration, unreadable file
    pot = PotentialFiles(m, str(tmp_path / "none_c{c}_b{b}.LOCPOT"), pos)
    with pytest.raises(InputError, match=r"2 potential file\(s\) missing: .*none_c0_b0.LOCPOT"):
        pot.check(pos[0, 0])
    with pytest.raises(InputError, match="no potential file for these positions"):
        pot(pos[0, 0] + 0.01)
    bad = tmp_path / "junk.cube"
    bad.write_text("not a cube\n")
    with pytest.raises(InputError, match=re.escape(str(bad)) + ": cannot read as a cube potential file"):
        PotentialFiles(m, [str(bad), str(bad)], pos)(pos[0, 0])


def test_run_input_potential_files_wired_through_build_model(tmp_path):
    """`run`'s model building: model.grid.potential_files (pattern, numbered as the configuration
    source before skip/stride) and reference_potential_file give H equal to the pseudopotential H
    at every selected (c, b) and at the reference structure; without a reference file or
    spia.fermi_level_ev the input is rejected."""
    from ase.build import bulk
    from ase.io import write

    from spia_mpi.commands.run import attach_potential_files, build_model, load_configurations
    from spia_mpi.io.runinput import load_run_input
    write(tmp_path / "prim.vasp", bulk("LiH", "rocksalt", a=3.6), format="vasp")
    (tmp_path / "pot").mkdir()
    text = """
[model]
kind = "grid"
[model.grid]
structure = "prim.vasp"
grid_per_cell = [6, 5, 5]
potential_files = "pot/c{c:02d}_b{b}.LOCPOT"
%s
[supercell]
matrix = [1, 1, 2]
[configurations]
skip = 1
stride = 2
[configurations.einstein]
n_samples = 5
n_beads = 2
hbar_omega_ev = 0.2
"""
    (tmp_path / "noref.toml").write_text(text % "")
    inp, folder = load_run_input(tmp_path / "noref.toml")
    model = build_model(inp, folder)
    conf = load_configurations(inp, folder, model)
    with pytest.raises(InputError, match="reference_potential_file"):
        attach_potential_files(inp, folder, model, conf)
    (tmp_path / "in.toml").write_text(text % 'reference_potential_file = "pot/ref.LOCPOT"')
    inp, folder = load_run_input(tmp_path / "in.toml")
    model = build_model(inp, folder)
    conf = load_configurations(inp, folder, model)
    assert conf.n_conf == 2
    pp = build_model(inp, folder)                         # the pseudopotential model, for reference
    for i, c in enumerate((1, 3)):                        # skip 1, stride 2 of 5 samples
        for b in range(2):
            write_locpot(tmp_path / f"pot/c{c:02d}_b{b}.LOCPOT", atoms_at(pp, conf.positions[i, b]),
                         pp.potential(conf.positions[i, b]))
    write_locpot(tmp_path / "pot/ref.LOCPOT", pp.atoms, pp.potential(pp.reference_positions))
    pot = attach_potential_files(inp, folder, model, conf)
    assert model.external_potential is pot and len(pot.paths()) == 5
    K = [0.0, 0.1, 0.2]
    for i in range(2):
        for b in range(2):
            assert np.allclose(model.hamiltonian_dense(conf.positions[i, b], K),
                               pp.hamiltonian_dense(conf.positions[i, b], K), atol=1e-8, rtol=0)
    assert np.allclose(model.potential(model.reference_positions), pp.potential(pp.reference_positions), atol=1e-8)


# ---------------------------------------------------------------- kinetic FFT preconditioner

def _fcc_lih():
    from ase.build import bulk
    return bulk("LiH", "rocksalt", a=3.6)


@pytest.mark.parametrize("order", [2, 4, 8])
def test_kinetic_symbol_is_the_spectrum_of_the_free_stencil(order):
    """With V = 0 the grid Hamiltonian is the bare stencil: its dense eigenvalues (LAPACK, an
    independent route) equal the plane-wave symbol t(K + G) for a non-orthogonal cell at K ≠ 0."""
    from ase.build import bulk
    m = GridModel(bulk("H", "fcc", a=3.0), np.diag([1, 1, 2]), (5, 4, 3), order, pseudopotentials=EMPTY)
    K = [0.13, -0.27, 0.41]
    ev = np.linalg.eigvalsh(m.hamiltonian_dense(m.reference_positions, K))
    assert np.allclose(np.sort(m.kinetic_symbol(K).ravel()), ev, atol=1e-9 * np.abs(ev).max())


def test_kinetic_preconditioner_is_exact_for_a_constant_potential():
    """V = const ⇒ M = z − V̄ − T is z − H itself: GMRES converges in one iteration and gives the
    dense resolvent."""
    from spia_mpi.parallel.mpi import self_comm
    from spia_mpi.engine.resolvent import ResolventSolver, projected_resolvent_dense
    m = GridModel(_fcc_lih(), np.diag([1, 2, 1]), (6, 6, 6), 4, pseudopotentials={
        "Li": {"Z": 0.0, "rc": 0.0, "qs": 3.0}, "H": {"Z": 0.0, "rc": 0.0, "qs": 3.0}})
    K = [0.2, 0.25, 0.0]
    ref = m.reference_states(K, 3)
    rng = np.random.default_rng(3)
    p = np.linalg.qr(rng.standard_normal((m.n_basis, 4)) + 1j * rng.standard_normal((m.n_basis, 4)))[0]
    z = 5.0 + 2.0j
    for vectors in (ref.vectors, p):
        g, info = ResolventSolver(self_comm()).solve(m.hamiltonian_petsc(m.reference_positions, K, self_comm()),
                                                     z, vectors, m.resolvent_preconditioner(K))
        gd = projected_resolvent_dense(m.hamiltonian_dense(m.reference_positions, K), z, vectors)
        assert info["iterations_max"] <= 1
        assert np.max(np.abs(g - gd)) < 1e-10 * np.max(np.abs(gd))


def test_kinetic_preconditioner_with_ions_agrees_with_dense_in_few_iterations():
    """Displaced ions (LiH, fcc, 1×1×2 supercell, 10³-point-per-cell grid): the kinetic-FFT
    preconditioned resolvent equals dense LU to 1e-8 relative, in far fewer GMRES iterations than
    Jacobi (measured: see docs/benchmarks.md)."""
    from spia_mpi.parallel.mpi import self_comm
    from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta, projected_resolvent_dense
    m = GridModel(_fcc_lih(), np.diag([1, 1, 2]), (10, 10, 10), 4)
    K = [0.0, 0.1, 0.5]
    rng = np.random.default_rng(11)
    pos = m.reference_positions + 0.1 * rng.standard_normal(m.reference_positions.shape)
    ref = m.reference_states(K, 4)
    z = 3.0 + 1j * matsubara_eta(16, 300.0)
    gd = projected_resolvent_dense(m.hamiltonian_dense(pos, K), z, ref.vectors)
    h = m.hamiltonian_petsc(pos, K, self_comm())
    g_model, i_model = ResolventSolver(self_comm()).solve(h, z, ref.vectors, m.resolvent_preconditioner(K))
    g_jac, i_jac = ResolventSolver(self_comm(), {"pc_type": "jacobi"}).solve(h, z, ref.vectors,
                                                                              m.resolvent_preconditioner(K))
    for g in (g_model, g_jac):
        assert np.max(np.abs(g - gd)) < 1e-8 * np.max(np.abs(gd))
    assert 3 * i_model["iterations_max"] < i_jac["iterations_mean"], (i_model, i_jac)
    with pytest.raises(InputError, match="supplies no preconditioner"):
        ResolventSolver(self_comm(), {"pc_type": "model"}).solve(h, z, ref.vectors)


@pytest.mark.mpi(ranks=2)
def test_kinetic_preconditioner_two_ranks_equals_dense():
    """The preconditioner on a matrix split over 2 ranks (gather → FFT → own rows)."""
    from spia_mpi.parallel.mpi import world
    from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta, projected_resolvent_dense
    comm = world()
    m = GridModel(_fcc_lih(), np.diag([1, 1, 2]), (6, 6, 6), 4)
    K = [0.5, 0.0, 0.25]
    pos = m.reference_positions + 0.08 * np.random.default_rng(5).standard_normal(m.reference_positions.shape)
    ref = m.reference_states(K, 3)
    z = 1.0 + 1j * matsubara_eta(16, 300.0)
    g, info = ResolventSolver(comm).solve(m.hamiltonian_petsc(pos, K, comm), z, ref.vectors,
                                          m.resolvent_preconditioner(K))
    gd = projected_resolvent_dense(m.hamiltonian_dense(pos, K), z, ref.vectors)
    assert np.max(np.abs(g - gd)) < 1e-8 * np.max(np.abs(gd))
    assert info["iterations_max"] < 40


def test_reference_fermi_level_slepc_path_equals_dense():
    """The SLEPc route of the reference Fermi level (grids above dense_max) gives the dense one
    (a metal: dense hydrogen, so ε_F is pinned by a partly filled band, not floating in a gap)."""
    from spia_mpi.lattice.structures import dense_hydrogen_sc
    m = GridModel(dense_hydrogen_sc(), np.diag([2, 1, 2]), (6, 6, 6), 4)
    K = [[0, 0, 0], [0, 0, 0.5]]
    dense = fermi_level_of_reference(m, K, 300.0)
    slepc = fermi_level_of_reference(m, K, 300.0, dense_max=0)
    assert slepc == pytest.approx(dense, abs=1e-7)


def test_grid_spacing_option():
    """model.grid.spacing_ang: ⌈|a_i|/h⌉ points per primitive vector (spacing ≤ h), in run's model."""
    from spia_mpi.commands.run import build_model
    from spia_mpi.models.grid import grid_for_spacing
    from spia_mpi.io.runinput import RunInput
    from spia_mpi.lattice.structures import li2mgh16_solid
    prim = li2mgh16_solid()
    h = 0.3
    n = grid_for_spacing(prim.cell[:], h)
    lengths = np.linalg.norm(prim.cell[:], axis=1)
    assert np.all(lengths / np.array(n) <= h + 1e-12) and np.all(lengths / (np.array(n) - 1) > h)
    assert grid_for_spacing(np.eye(3) * 1.0, 5.0) == (2, 2, 2)
    from spia_mpi.io.inputs import build
    inp = build(RunInput, {"model": {"kind": "grid", "grid": {"structure": "hydrogen-sc", "spacing_ang": 0.25}},
                           "supercell": {"matrix": [2, 1, 1]}})
    m = build_model(inp)
    assert m.shape == (2 * 7, 7, 7)                      # ⌈1.6/0.25⌉ = 7 per cell
    with pytest.raises(InputError, match="must be positive"):
        grid_for_spacing(np.eye(3), 0.0)



NONDIAG = [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]                 # det 2, neither diagonal nor a permutation


@pytest.mark.parametrize("order", [2, 4])
def test_non_diagonal_supercell_free_electrons_converge(order):
    """V = 0 in a non-diagonal supercell of fcc H: the lowest levels at K converge to
    ħ²|k + G|²/2m over the primitive k folded onto K, at the stencil's order."""
    from ase.build import bulk
    from spia_mpi.lattice.supercells import folded_kpoints
    prim = bulk("H", "fcc", a=3.0)
    K = [0.1, 0.3, 0.2]
    b = 2 * np.pi * np.linalg.inv(prim.cell[:]).T
    G = np.array(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij")).reshape(3, -1).T @ b
    exact = np.sort(np.concatenate([HBAR2_OVER_2ME_EV_A2 * np.sum((k @ b + G) ** 2, axis=1)
                                    for k in folded_kpoints(NONDIAG, K)]))[:6]
    errs = []
    for g in (5, 10):
        m = GridModel(prim, NONDIAG, (g, g, g), order, pseudopotentials=EMPTY)
        H = m.hamiltonian_dense(m.reference_positions, K)
        assert np.max(np.abs(H - H.conj().T)) < 1e-12
        errs.append(np.max(np.abs(np.linalg.eigvalsh(H)[:6] - exact)))
    assert np.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.3), errs


def test_non_diagonal_supercell_bands_converge_to_folded_primitive_bands():
    """LiH (rocksalt) with its pseudopotentials: the bands of a non-diagonal 2-cell supercell at K
    and the union of the primitive bands at the two folded k come from different grids (different
    discretisations), so they differ at a finite grid — by less and less as both grids are refined."""
    from spia_mpi.lattice.supercells import folded_kpoints
    prim = _fcc_lih()
    K = [0.2, 0.1, 0.35]
    diffs = []
    for g in (6, 10):
        sup = GridModel(prim, NONDIAG, (g, g, g), 4)
        ev_s = np.linalg.eigvalsh(sup.hamiltonian_dense(sup.reference_positions, K))[:6]
        p = GridModel(prim, np.eye(3, dtype=int), (g, g, g), 4)
        ev_p = np.sort(np.concatenate([np.linalg.eigvalsh(p.hamiltonian_dense(p.reference_positions, k))[:6]
                                       for k in folded_kpoints(NONDIAG, K)]))[:6]
        diffs.append(np.max(np.abs(ev_s - ev_p)))
    assert diffs[1] < 0.4 * diffs[0] and diffs[1] < 0.05, diffs
    assert sup.n_electrons == 2 * p.n_electrons and len(sup.atoms) == 4


def test_potential_files_read_once_per_configuration_bead_in_a_run(tmp_path, monkeypatch):
    """The resolvent pass over 2 K-points × 4 configurations × 2 beads reads each of the 8 files
    exactly once (not once per K), and λ equals that of the pseudopotential model the files hold."""
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.models import grid
    m = fcc_lih_model(grid=(5, 5, 5))
    pos = displaced(m, 4, 2, seed=4)
    pattern = str(tmp_path / "c{c}_b{b}.LOCPOT")
    for c in range(4):
        for b in range(2):
            write_locpot(pattern.format(c=c, b=b), atoms_at(m, pos[c, b]), m.potential(pos[c, b]))
    reads = []
    real = grid.read_potential_file
    monkeypatch.setattr(grid, "read_potential_file", lambda path, *a: reads.append(str(path)) or real(path, *a))
    mf = fcc_lih_model(grid=(5, 5, 5))
    mf.external_potential = grid.PotentialFiles(mf, pattern, pos)
    K = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]
    kw = dict(J=4, n_per_k=2, gammas=[0.5], mode="born", n_blocks=2, fermi_level_ev=0.0)
    files = compute_lambda(mf, pos, K, 2000.0, **kw)
    assert sorted(reads) == sorted(pattern.format(c=c, b=b) for c in range(4) for b in range(2))
    direct = compute_lambda(m, pos, K, 2000.0, **kw)
    assert np.allclose(files.lambda_m, direct.lambda_m, rtol=1e-6, atol=1e-10)
    assert np.all(np.abs(direct.lambda_m) > 0)
