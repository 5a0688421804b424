"""Row-distributed sparse H, S and X† of the GPAW model (spia_mpi/models/gpaw_sparse.py).

Oracles: GPAW's own dense LCAO matrices (``DirectLCAO.calculate_hamiltonian_matrix``, its
S_qMM) and the dense cross overlap of paw_overlap.py, to 1e-10 (for X the same term list,
``paw_overlap.adjoint_terms``, summed for a block of every atom: this checks the row blocks and
their distribution; the terms' physics is tests/test_paw_overlap.py's); the resolvent from the
PETSc AIJ rows (GMRES, and the GPAW model's default direct LU: engine/direct.py) equal to the
dense LAPACK one to 1e-10; a group of 2 ranks (grid domains split
at Γ, k-points split on a k-grid) equal to 1 rank to 1e-10; and on a cell longer than twice
the orbital range, orbital pairs beyond the basis cutoffs are not stored.

Systems (seconds each): bcc Li 2×1×1 at K = 0 and ½ (complex, Bloch phases), and a
10-atom simple-cubic hydrogen row (a = 2 Å, 20 Å long, frozen density), whose H dzp orbitals
reach 3.4 Å, so atom pairs 8 Å and 10 Å apart have no matrix element.
"""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from spia_mpi.engine.resolvent import ResolventSolver, projected_resolvent_dense
from prerequisites import require_gpaw, BCC_LI_A, BCC_LI_SETTINGS

TIGHT = {"ksp_rtol": 1e-14, "ksp_atol": 1e-16}
H_ROW_CUTOFF_ANG = 3.4           # longest H dzp orbital (Debian gpaw-data), checked in the test


def li_model():
    from spia_mpi.models.gpaw import GpawSettings
    return (bulk("Li", "bcc", a=BCC_LI_A), [2, 1, 1], GpawSettings(density="frozen", aij_min_orbitals=0,
                                                                     **BCC_LI_SETTINGS),
            [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])


def h_row_model(kpts=(1, 1, 1)):
    from spia_mpi.models.gpaw import GpawSettings
    kpoints = [[0.0, 0.0, 0.0]] + ([[0.5, 0.0, 0.0]] if kpts[0] == 2 else [])
    return (Atoms("H", cell=[2.0, 2.0, 2.0], pbc=True), [10, 1, 1],
            GpawSettings(density="frozen", aij_min_orbitals=0, kpts=kpts, h_ang=0.25), kpoints)


SYSTEMS = {"li": li_model, "h_row_gamma": h_row_model, "h_row_k": lambda: h_row_model((2, 1, 1))}


def prepared(name, folder, ranks_per_group=1, comm=None):
    require_gpaw()
    from spia_mpi.models.gpaw import GpawModel
    prim, supercell, settings, kpoints = SYSTEMS[name]()
    model = GpawModel(prim, supercell, settings, kpoints)
    model.prepare(comm, ranks_per_group, folder)
    return model


def displaced(model, seed=1, amplitude=0.08):
    rng = np.random.default_rng(seed)
    return model.reference_positions + amplitude * rng.standard_normal(model.reference_positions.shape)


def test_atom_row_blocks_cover_the_orbitals_in_order_and_balance_them():
    from spia_mpi.models.gpaw_sparse import atom_row_blocks
    counts = [13, 5, 5, 1, 1, 1, 1, 9, 13, 5, 1, 1]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for size in (1, 2, 3, 5):
        blocks = atom_row_blocks(offsets, size)
        assert len(blocks) == size
        assert [b.atoms.start for b in blocks] == [0] + [b.atoms.stop for b in blocks[:-1]]
        assert blocks[-1].atoms.stop == len(counts)
        for b in blocks:
            assert b.rows == range(offsets[b.atoms.start], offsets[b.atoms.stop])
            assert abs(len(b.rows) - offsets[-1] / size) <= max(counts)
    with pytest.raises(ValueError):
        atom_row_blocks(offsets[:3], 3)


@pytest.fixture(scope="module", params=sorted(SYSTEMS))
def system(request, tmp_path_factory):
    return request.param, prepared(request.param, tmp_path_factory.mktemp(request.param))


def test_sparse_rows_equal_gpaws_dense_matrices(system):
    """H (eV), S and X† from the atom-pair blocks = GPAW's dense H, S and the dense cross overlap."""
    from spia_mpi.models.gpaw_sparse import gather_dense
    name, model = system
    pos = displaced(model)
    h, s, x = model.matrices(pos)
    rows = model.sparse_rows(pos)
    for ik in range(len(model.kpoints)):
        assert np.abs(gather_dense(rows.h[ik], model._mpi_group) - h[ik]).max() < 1e-10
        assert np.abs(gather_dense(rows.s[ik], model._mpi_group) - s[ik]).max() < 1e-10
        assert np.abs(gather_dense(rows.xh[ik], model._mpi_group) - x[ik].conj().T).max() < 1e-10
    assert np.abs(x[0] - s[0]).max() > 1e-3                  # X really differs from S(R): displaced


def test_pairs_beyond_the_basis_cutoff_are_not_stored(tmp_path):
    """H row, 20 Å: atom pairs ≥ 8 Å apart (> 2 × 3.4 Å) are skipped, so at most 7 of 10 atom
    pairs per row are stored; every stored pattern covers GPAW's own non-zeros."""
    from gpaw.setup import Setups
    from gpaw.xc import XC
    from ase.units import Bohr
    model = prepared("h_row_gamma", tmp_path)
    setup = Setups([1], "paw", "dzp", XC("PBE"))[0]
    assert max(f.get_cutoff() for f in setup.phit_j) * Bohr <= H_ROW_CUTOFF_ANG + 1e-3
    distances = 2.0 * np.minimum(np.arange(10), 10 - np.arange(10))      # ring of 10, min image (Å)
    bound = np.mean(distances < 2 * H_ROW_CUTOFF_ANG)                      # atom pairs within reach
    assert bound == pytest.approx(0.7)
    rows = model.sparse_rows(model.reference_positions)
    h, s, _ = model.matrices(model.reference_positions)
    fraction = model.nonzero_fraction
    assert all(0.3 < f <= bound for f in fraction)
    assert rows.h[0].nnz >= np.count_nonzero(h[0]) and rows.s[0].nnz >= np.count_nonzero(s[0])


def test_aij_resolvent_equals_dense(system):
    """g = Q†(zS − H)⁻¹Q from the PETSc AIJ rows (Krylov) = dense LAPACK on GPAW's dense matrices."""
    from spia_mpi.parallel.mpi import self_comm
    name, model = system
    pos = displaced(model, seed=2)
    z = model.fermi_level_ev + 0.6j
    assert model.uses_sparse_rows(self_comm())
    for K in model.kpoints:
        ref = model.reference_states(K, 3)
        h, s, q = model.projected_problem_dense(pos, K, ref.vectors)
        expect = projected_resolvent_dense(h, z, q, s)
        hp, sp, q = model.projected_problem_petsc(pos, K, ref.vectors, self_comm())
        try:
            g, _ = ResolventSolver(self_comm(), TIGHT).solve(hp, z, q, s_mat=sp)
        finally:
            hp.destroy(), sp.destroy()
        assert np.abs(g - expect).max() < 1e-10
        assert np.abs(expect - np.diag(np.diag(expect))).max() > 1e-4


DIRECT_PACKAGES = ({"pc_factor_mat_solver_type": "mumps"}, {}, {"pc_factor_mat_solver_type": "petsc"})


def test_gpaw_default_direct_resolvent_equals_dense(system):
    """The GPAW model's default PETSc resolvent (one direct LU of the sparse rows' zS − H; ScaLAPACK
    by default at these fills, MUMPS and PETSc's LU by option) = LAPACK on GPAW's dense matrices, at every K (real Γ
    and complex K = ½); one factor application per column (GMRES + Jacobi takes more)."""
    from spia_mpi.engine.direct import DirectSolve
    from spia_mpi.parallel.mpi import self_comm
    name, model = system
    pos = displaced(model, seed=2)
    z = model.fermi_level_ev + 0.6j
    model.sparse_rows(pos)                          # sets the logged fill: 1.0 (Li), ≈ 0.68 (H row)
    fill = model.nonzero_fraction[0]
    assert model.resolvent_preconditioner(model.kpoints[0]) == DirectSolve("mumps" if fill < 0.5 else "scalapack")
    for K in model.kpoints:
        ref = model.reference_states(K, 3)
        h, s, q = model.projected_problem_dense(pos, K, ref.vectors)
        expect = projected_resolvent_dense(h, z, q, s)
        for options in DIRECT_PACKAGES:
            hp, sp, q = model.projected_problem_petsc(pos, K, ref.vectors, self_comm())
            try:
                g, info = ResolventSolver(self_comm(), options).solve(hp, z, q, model.resolvent_preconditioner(K),
                                                                      s_mat=sp)
            finally:
                hp.destroy(), sp.destroy()
            assert info["iterations_max"] == 1, options
            assert np.abs(g - expect).max() < 1e-10, (name, K, options)


def test_threshold_keeps_small_cells_dense_and_reference_states_agree(system, tmp_path):
    """Below aij_min_orbitals (default 1000) the model is dense (reference H, S on every rank); the
    reference states and a configuration's generalized eigenvalues from the sparse rows equal the
    dense ones (energies, and S-orthonormal)."""
    from dataclasses import replace
    from spia_mpi.models.gpaw import GpawModel
    from spia_mpi.parallel.mpi import self_comm
    name, sparse_model = system
    assert sparse_model.uses_sparse_rows(self_comm()) and sparse_model._reference_matrices is None
    dense = GpawModel(sparse_model.primitive, sparse_model.supercell_matrix,
                      replace(sparse_model.settings, aij_min_orbitals=1000), sparse_model.kpoints)
    dense.prepare(None, 1, sparse_model._workdir)                     # reuses the reference file
    assert dense.n_basis < 1000 and not dense.uses_sparse_rows(self_comm())
    for K in dense.kpoints:
        a, b = dense.reference_states(K, 3), sparse_model.reference_states(K, 3)
        assert np.abs(a.energies - b.energies).max() < 1e-10
        s0 = dense._reference_matrices[1][dense._k_index(K)]
        assert np.abs(b.vectors.conj().T @ s0 @ b.vectors - np.eye(b.vectors.shape[1])).max() < 1e-10
        pos = displaced(dense, seed=5)                   # ensemble Fermi level: eigenvalues from the rows
        assert np.abs(sparse_model.generalized_eigenvalues(pos, K) - dense.generalized_eigenvalues(pos, K)).max() \
            < 1e-10


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("name", ["li", "h_row_gamma", "h_row_k"])
def test_group_of_two_ranks_equals_one_rank(tmp_path_factory, name):
    """One group of 2 ranks (each builds only its atoms' rows; at Γ GPAW splits the grid into
    2 domains, on the 2×1×1 k-grids the k-points) = 1 rank alone: matrices and resolvents, by GMRES
    and by the model's distributed LU (MUMPS, and ScaLAPACK, its default here)."""
    from spia_mpi.models.gpaw_sparse import gather_dense
    from spia_mpi.parallel.mpi import self_comm, world
    comm = world()
    folder = comm.bcast(str(tmp_path_factory.mktemp("pair")) if comm.rank == 0 else None)
    pair = prepared(name, folder, ranks_per_group=2, comm=comm)
    single = prepared(name, folder, ranks_per_group=1, comm=comm)      # reuses the reference file
    group = pair._mpi_group
    assert group.size == 2
    pos = displaced(pair, seed=3)
    rows = pair.sparse_rows(pos)
    assert 0 < len(rows.block.rows) < pair.n_basis
    h1, s1, x1 = single.matrices(pos)
    z = pair.fermi_level_ev + 0.6j
    for ik, K in enumerate(pair.kpoints):
        assert np.abs(gather_dense(rows.h[ik], group) - h1[ik]).max() < 1e-10
        assert np.abs(gather_dense(rows.s[ik], group) - s1[ik]).max() < 1e-10
        assert np.abs(gather_dense(rows.xh[ik], group) - x1[ik].conj().T).max() < 1e-10
        ref = single.reference_states(K, 3)
        h, s, q = single.projected_problem_dense(pos, K, ref.vectors)
        expect = projected_resolvent_dense(h, z, q, s)
        assert pair.uses_sparse_rows(group) and not pair.uses_sparse_rows(self_comm())
        hp, sp, q = pair.projected_problem_petsc(pos, K, ref.vectors, group)
        try:
            assert hp.getOwnershipRange() == (rows.block.rows.start, rows.block.rows.stop)
            g, _ = ResolventSolver(group, TIGHT).solve(hp, z, q, s_mat=sp)
        finally:
            hp.destroy(), sp.destroy()
        assert np.abs(g - expect).max() < 1e-10
        for options in DIRECT_PACKAGES[:2]:
            hp, sp, q = pair.projected_problem_petsc(pos, K, ref.vectors, group)
            try:
                g, info = ResolventSolver(group, options).solve(hp, z, q, pair.resolvent_preconditioner(K), s_mat=sp)
            finally:
                hp.destroy(), sp.destroy()
            assert info["iterations_max"] == 1
            assert np.abs(g - expect).max() < 1e-10, (name, K, options)


def test_potential_rows_in_small_chunks_equal_one_chunk(system):
    """The grid potential rows integrated a few rows at a time (bounded memory) = in one piece."""
    from spia_mpi.models import gpaw_sparse as gs
    name, model = system
    calc = model._density_state(displaced(model), model._group_comm, None)
    bfs, gd = calc.wfs.basis_functions, calc.wfs.gd
    gamma_real = bool(bfs.gamma and calc.wfs.dtype == float)
    args = (bfs, calc.hamiltonian.vt_sG[0], gd.comm, [range(0, model.n_basis)], model.kpoints, gamma_real)
    whole = gs.potential_lower_rows(*args)
    n_x = 1 if gamma_real else len(bfs.sdisp_xc)
    pieces = gs.potential_lower_rows(*args, chunk_bytes=3 * 16 * n_x * model.n_basis)      # 3 rows a chunk
    for a, b in zip(whole, pieces):
        assert a.nnz > 0 and abs(a - b).max() == 0.0


def test_block_collector_folds_overlapping_blocks_into_their_sum():
    """Many overlapping blocks (as the PAW terms of every atom) folded on the way = their dense sum."""
    from spia_mpi.models.gpaw_sparse import BlockCollector
    rng = np.random.default_rng(4)
    shape, expect = (6, 300), np.zeros((2, 6, 300), complex)
    out = BlockCollector(2, shape)
    for _ in range(200):                                      # 200 × 6 × 90 entries: folds several times
        cols = rng.choice(300, 90, replace=False)
        block = rng.standard_normal((2, 6, 90)) + 1j * rng.standard_normal((2, 6, 90))
        out.add_indexed(np.arange(6), cols, block)
        expect[:, :, cols] += block
    assert out.sums is not None                               # it did fold before the end
    for k, m in enumerate(out.result()):
        assert np.abs(m.toarray() - expect[k]).max() < 1e-12
