"""Resolvent performance features keep the numbers: warm starts along the ring polymer,
blocks of right-hand sides, and the distributed kinetic FFT preconditioner.

Timings are not tested here (noisy on a shared machine): they are in docs/benchmarks.md
(``drivers/bench_perf.py``). These tests check that each faster path gives the same
numbers as the plain one, against independent references.
"""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta, projected_resolvent_dense
from spia_mpi.engine.workflow import _ResolventEngine, compute_lambda
from spia_mpi.ions.configurations import sample_einstein_ring_polymers
from spia_mpi.models.grid import GridModel
from spia_mpi.parallel.mpi import self_comm

T = 300.0


def _hydrogen_grid_model(supercell=(1, 1, 2), grid=(6, 6, 6)):
    prim = Atoms("H2", positions=[[0, 0, 0], [0.9, 0.8, 1.1]], cell=np.diag([1.8, 1.8, 1.8]), pbc=True)
    return GridModel(prim, np.diag(supercell), grid, 4)


def _ring_polymers(model, n_conf, n_beads, seed):
    """Exact Einstein ring polymers of the H atoms (ħΩ = 0.15 eV) at 300 K, [n_conf, n_beads, n_atoms, 3] Å."""
    return sample_einstein_ring_polymers(n_conf, n_beads, model.atoms.get_masses(), 0.15, T,
                                         model.reference_positions, np.random.default_rng(seed))


@pytest.mark.parametrize("block_size", [1, 4])
def test_warm_start_same_resolvents_fewer_iterations(block_size):
    """Bead b started from bead b − 1's solution, plain or improved by the minimal-residual
    projection (PETSc KSP column by column, and batched GMRES): every bead's g equals the dense LU
    resolvent to the KSP tolerance (as the cold start does), and the mean iteration count is
    lower, with the projection lower still."""
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 1, 8, seed=3)[0]
    K = [0.0, 0.0, 0.5]
    p = model.reference_states(K, 2).vectors
    z = 4.0 + 1j * matsubara_eta(16, T)
    dense = np.array([projected_resolvent_dense(model.hamiltonian_dense(x, K), z, p) for x in pos])
    modes = {"cold": {"warm_start": False}, "warm": {}, "projected": {"warm_projection": True}}
    engines = {m: _ResolventEngine(model, "petsc", {**o, "block_size": block_size}) for m, o in modes.items()}
    for mode, engine in engines.items():
        g = engine(pos, K, z, p)
        assert np.max(np.abs(g - dense)) < 1e-9 * np.max(np.abs(dense)), mode
    cold, warm, projected = (np.mean(engines[m].iterations) for m in modes)
    assert projected < warm < cold, (projected, warm, cold)
    assert engines["cold"].iterations[0] == engines["warm"].iterations[0]       # bead 0 starts from zero


def test_warm_start_lambda_equals_cold_and_checkpoints_reused(tmp_path):
    """λ(m) with warm starts = λ(m) with cold starts within 1e-8 relative (KSP rtol 1e-11), and a
    rerun on the warm run's checkpoint reuses every task and reproduces λ(m) bit for bit."""
    from spia_mpi.io.checkpoint import TaskStore
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 4, 8, seed=5)
    kw = dict(n_per_k=2, gammas=(0.5, 1.0), n_blocks=2, solver="petsc", fermi_level_ev=4.0)
    cold = compute_lambda(model, pos, [[0, 0, 0]], T, solver_options={"warm_start": False}, **kw)
    store = TaskStore.open(tmp_path / "ck", 4, "warm-test")
    warm = compute_lambda(model, pos, [[0, 0, 0]], T, store=store, **kw)
    scale = np.max(np.abs(cold.lambda_m))
    assert scale > 1e-3
    assert np.max(np.abs(warm.lambda_m - cold.lambda_m)) < 1e-8 * scale
    assert warm.iterations["ksp_iterations_mean"] < cold.iterations["ksp_iterations_mean"]
    again = compute_lambda(model, pos, [[0, 0, 0]], T, store=TaskStore.open(tmp_path / "ck", 4, "warm-test"), **kw)
    assert np.array_equal(again.lambda_m, warm.lambda_m)
    assert not again.iterations                                   # nothing was solved again


def test_warm_start_residual_from_the_previous_bead_without_the_matrix():
    """Batched solves with the grid model's fused operator keep A X = B − (final residual); the next
    bead's starting residual B' − A'X is then B' − A X + (d − d') ⊙ X (A' − A diagonal, d the
    diagonals): equal to the dense matrix's residual to 1e-12, and the warm-started solve gives the
    dense g and the same iterations as a guess that is not the previous solution (whose residual
    is computed with the matrix)."""
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 1, 2, seed=4)[0]
    K = [0.0, 0.0, 0.5]
    p = model.reference_states(K, 2).vectors
    z = 4.0 + 1j * matsubara_eta(16, T)
    pc = model.resolvent_preconditioner(K)
    a = [z * np.eye(model.n_basis) - model.hamiltonian_dense(x, K) for x in pos]
    results = {}
    for name in ("pointwise", "matrix"):
        solver = ResolventSolver(self_comm(), {"block_size": 4})
        h = model.hamiltonian_petsc(pos[0], K, self_comm())
        _, info = solver.solve(h, z, p, pc)
        h.destroy()
        x0, step = info["solution"], solver._previous
        scale = np.max(np.abs(p))
        assert np.max(np.abs(p.T - step.ax - (p - a[0] @ x0).T)) < 1e-12 * scale       # B − A X: the residual
        b1 = np.ascontiguousarray((2 * p).T)
        assert step.follows(x0, pc, b1) and not step.follows(x0.copy(), pc, b1)
        assert np.max(np.abs(step.residual_for(b1, np.diag(a[1])).T - (2 * p - a[1] @ x0))) < 1e-12 * scale
        h = model.hamiltonian_petsc(pos[1], K, self_comm())
        results[name] = solver.solve(h, z, p, pc, guess=x0 if name == "pointwise" else x0.copy())
        h.destroy()
    dense = projected_resolvent_dense(model.hamiltonian_dense(pos[1], K), z, p)
    for g, info in results.values():
        assert np.max(np.abs(g - dense)) < 1e-9 * np.max(np.abs(dense))
    assert results["pointwise"][1]["iterations_mean"] == results["matrix"][1]["iterations_mean"]


@pytest.mark.parametrize("name", ["warm_start", "warm_projection"])
def test_warm_start_options_must_be_boolean(name):
    from spia_mpi.errors import InputError
    with pytest.raises(InputError, match=name):
        ResolventSolver(self_comm(), {name: "yes"})


def test_minimal_residual_guess_is_the_least_squares_solution():
    """The projected guess equals the least-squares combination of [X_prev, M⁻¹R] computed
    independently with dense matrices (Jacobi M), and its residual is no larger than X_prev's."""
    from spia_mpi.engine.krylov import BatchedOperators
    from spia_mpi.engine.resolvent import minimal_residual_guess
    rng = np.random.default_rng(4)
    n, m = 40, 3
    a = np.diag(3.0 + 1j + rng.standard_normal(n)) + 0.3 * rng.standard_normal((n, n))
    b = rng.standard_normal((n, m)) + 0j
    x_prev = np.linalg.solve(a + 0.2 * np.diag(rng.standard_normal(n)), b)          # a neighbour's solution
    d = np.diag(a)
    ops = BatchedOperators(lambda v: (a @ v.T).T, lambda v: (a @ (v / d).T).T, lambda v: v / d, lambda v: v)
    got, res = minimal_residual_guess(ops, np.ascontiguousarray(b.T), np.ascontiguousarray(x_prev.T))
    got = got.T
    s = np.hstack([x_prev, (b - a @ x_prev) / d[:, None]])
    y = np.linalg.lstsq(a @ s, b, rcond=None)[0]                # one least-squares problem for all columns
    assert np.max(np.abs(got - s @ y)) < 1e-10 * np.max(np.abs(s @ y))
    assert np.linalg.norm(b - a @ got) <= np.linalg.norm(b - a @ x_prev)
    assert np.max(np.abs(res.T - (b - a @ got))) < 1e-10 * np.max(np.abs(b))    # the residual it returns


def _dense_ops(a):
    """BatchedOperators of a dense matrix a without preconditioner (M = 1), vectors as rows."""
    from spia_mpi.engine.krylov import BatchedOperators
    return BatchedOperators(lambda v: (a @ v.T).T, lambda v: (a @ v.T).T, lambda v: v.copy(), lambda v: v)


def _recycled_of(a, u_cols):
    """Recycled(U R⁻¹, C R⁻¹) with C = a U = Q R (numpy QR): an orthonormal C independent of the code's
    own orthonormalisation; rows are vectors."""
    from spia_mpi.engine.krylov import Recycled
    q, r = np.linalg.qr(a @ u_cols)
    return Recycled(np.ascontiguousarray(np.linalg.solve(r.T, u_cols.T)), np.ascontiguousarray(q.T))


def test_recycled_gmres_deflates_outliers_and_keeps_the_solution():
    """A = 1 + K with K = Q diag(μ) Q⁻¹: 150 eigenvalues μ in a disc of radius 0.02 and 6 outliers
    (|μ| 0.3–0.6). Batched GMRES from the space of the outliers' eigenvectors (Q's columns, known by
    construction) needs fewer iterations than plain GMRES, and with it, with a random recycled space,
    and plain, the solution equals numpy's dense solve to the tolerance (deflation never changes the
    answer) after a single true-residual check (the correction V y − U E y is consistent with the
    Arnoldi residual)."""
    from spia_mpi.engine.krylov import batched_gmres
    rng = np.random.default_rng(21)
    n = 156
    mu = 0.02 * np.sqrt(rng.uniform(size=n)) * np.exp(2j * np.pi * rng.uniform(size=n))
    mu[:6] = [0.6, -0.5, 0.4j, -0.35j, 0.3 + 0.3j, -0.3 + 0.2j]
    q = np.eye(n) + 0.05 * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(n)
    a = np.eye(n) + q @ np.diag(mu) @ np.linalg.inv(q)
    b = rng.standard_normal((4, n)) + 1j * rng.standard_normal((4, n))
    exact = np.linalg.solve(a, b.T).T
    kw = dict(rtol=1e-11, atol=1e-30, max_it=200, restart=40)
    ops = _dense_ops(a)
    calls = []
    apply_a = ops.apply_a
    ops.apply_a = lambda v: calls.append(1) or apply_a(v)
    spaces = {"none": None, "outliers": _recycled_of(a, q[:, :6]),
              "random": _recycled_of(a, rng.standard_normal((n, 6)) + 1j * rng.standard_normal((n, 6)))}
    its = {}
    for name, rec in spaces.items():
        calls.clear()
        x, its[name] = batched_gmres(ops, b, rtol=kw["rtol"], atol=kw["atol"], max_it=kw["max_it"],
                                     restart=kw["restart"], recycle=rec)
        assert np.max(np.abs(x - exact)) < 1e-9 * np.max(np.abs(exact)), name
        assert np.max(np.linalg.norm(b - (a @ x.T).T, axis=1) / np.linalg.norm(b, axis=1)) <= 1e-11, name
        assert len(calls) == 1, name           # the Arnoldi residual is exact: one true-residual check
    # the bulk alone: ‖r_m‖ ≲ 0.02^m, so ≈ 7 iterations; each outlier costs about one more
    assert np.all(its["outliers"] <= its["none"] - 3), its
    assert np.all(its["outliers"] <= 9), its


def _mixed_case(single_error: float):
    """A = 1 + K (K: eigenvalues in a disc of radius 0.2), dense ops in double with a single-precision
    A − 1 that is off by ``single_error`` (relative, a fixed random matrix; 0: just rounding), counting
    the double and single applications."""
    from spia_mpi.engine.krylov import BatchedOperators
    rng = np.random.default_rng(8)
    n = 120
    a = np.eye(n) + 0.2 * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2 * n)
    wrong = ((a - np.eye(n)) * (1 + single_error * rng.standard_normal((n, n)))).astype(np.complex64)
    calls = {"double": 0, "single": 0}

    def shifted(v):
        calls["double"] += 1
        return (a @ v.T).T - v

    def single(v):
        assert v.dtype == np.complex64
        calls["single"] += 1
        return (wrong @ v.T).T

    ops = BatchedOperators(lambda v: (a @ v.T).T, lambda v: (a @ v.T).T, lambda v: v.copy(), lambda v: v,
                           apply_am_minus_1=shifted, single=single)
    b = rng.standard_normal((3, n)) + 1j * rng.standard_normal((3, n))
    return ops, a, b, calls


@pytest.mark.parametrize("single_error", [0.0, 1.0])
def test_mixed_precision_gmres_meets_the_double_tolerance(single_error):
    """mixed = True: sweeps in single precision refined by double-precision true residuals give the
    dense solution with a true residual ≤ rtol = 1e-11 (far below single precision's 1e-7), with no
    double-precision Arnoldi step when single precision is accurate; a single-precision A − 1 off by
    100 % entry by entry (sweeps that reduce the true residual by less than 1e-2) hands the solve to
    double precision, which still converges."""
    from spia_mpi.engine.krylov import batched_gmres
    ops, a, b, calls = _mixed_case(single_error)
    x, its = batched_gmres(ops, b, rtol=1e-11, atol=1e-30, max_it=300, restart=4, mixed=True)
    assert np.max(np.abs(x - np.linalg.solve(a, b.T).T)) < 1e-9 * np.max(np.abs(x))
    assert np.max(np.linalg.norm(b - (a @ x.T).T, axis=1) / np.linalg.norm(b, axis=1)) <= 1e-11
    assert calls["single"] > 0
    if single_error == 0:
        assert calls["double"] == 0, calls
    else:
        assert calls["double"] > 0, calls


def test_batched_gmres_exact_breakdown():
    """A = 1 + a rank-2 matrix: the Krylov space is exhausted after ≤ 3 steps (the new vector's norm
    cancels to rounding, where the one-reduction Pythagorean norm is recomputed): exact solution, no NaN."""
    from spia_mpi.engine.krylov import batched_gmres
    rng = np.random.default_rng(5)
    n = 50
    lo = rng.standard_normal((n, 2)) @ rng.standard_normal((2, n)) / n
    a = np.eye(n) + lo
    b = rng.standard_normal((3, n)) + 0j
    x, its = batched_gmres(_dense_ops(a), b, rtol=1e-12, atol=1e-30, max_it=20, restart=10)
    assert np.all(np.isfinite(x)) and np.all(its <= 3), its
    assert np.max(np.abs(x - np.linalg.solve(a, b.T).T)) < 1e-10 * np.max(np.abs(x))


def test_recycled_space_along_the_ring_polymer():
    """Option ``recycle``: every bead's g equals the dense LU resolvent to the KSP tolerance, the
    recycled space carried along the beads (warm starts too) lowers the mean iteration count below
    warm starts alone, and a task's result does not depend on the task before it (the engine
    forgets the space at the start of a task: bit-identical g when the same task runs again)."""
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 2, 8, seed=3)
    K = [0.0, 0.0, 0.5]
    p = model.reference_states(K, 2).vectors
    z = 4.0 + 1j * matsubara_eta(16, T)
    dense = np.array([projected_resolvent_dense(model.hamiltonian_dense(x, K), z, p) for x in pos[0]])
    warm = _ResolventEngine(model, "petsc", {"block_size": 4})
    recycled = _ResolventEngine(model, "petsc", {"block_size": 4, "recycle": 8})
    warm(pos[0], K, z, p)
    g = recycled(pos[0], K, z, p)
    assert np.max(np.abs(g - dense)) < 1e-9 * np.max(np.abs(dense))
    assert np.mean(recycled.iterations) < np.mean(warm.iterations) - 0.5, (recycled.iterations, warm.iterations)
    recycled(pos[1], K, z, p)                                     # another task in between
    assert np.array_equal(recycled(pos[0], K, z, p), g)


# ---------------------------------------------------------------- distributed kinetic FFT preconditioner
EMPTY = {"H": {"Z": 0.0, "rc": 0.0, "qs": 3.0}}


def _preconditioner_case(cell, grid):
    """A free-electron grid model (V = 0, so H = T exactly) on ``cell``, K, z − V̄ and 3 random vectors."""
    prim = Atoms("H", positions=[[0, 0, 0]], cell=cell, pbc=True)
    model = GridModel(prim, np.eye(3, dtype=int), (2, 2, 2), 4, pseudopotentials=EMPTY, grid_shape=grid)
    K = [0.3, -0.2, 0.45]
    z_minus_vbar = 6.0 + 1j * matsubara_eta(16, T)
    rng = np.random.default_rng(17)
    r = rng.standard_normal((model.n_basis, 3)) + 1j * rng.standard_normal((model.n_basis, 3))
    return model, K, z_minus_vbar, r


CELLS = {"orthorhombic": np.diag([1.7, 1.9, 2.1]),
         "triclinic": np.array([[1.8, 0.0, 0.0], [0.5, 1.7, 0.0], [0.3, 0.4, 1.9]])}


def _splits(n, size):
    """Row layouts of n grid points over ``size`` ranks: PETSc's default, x-slab aligned and lopsided."""
    petsc = np.concatenate([[0], np.cumsum([n // size + (q < n % size) for q in range(size)])])
    lopsided = np.concatenate([[0], np.cumsum([n // (2 * size)] * (size - 1)), [n]])
    return {"petsc": petsc, "lopsided": lopsided}


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("grid", [(5, 6, 7), (9, 5, 3)])
def test_kinetic_preconditioner_is_the_inverse_of_z_minus_t(cell, grid):
    """One rank: M⁻¹R equals the dense solve (z − V̄ − T)⁻¹R with T the stencil matrix itself
    (the grid model's H with every potential switched off) — odd grids, a non-orthogonal cell,
    a general K."""
    from spia_mpi.engine.preconditioners import KineticPreconditioner
    model, K, zv, r = _preconditioner_case(CELLS[cell], grid)
    t = model.hamiltonian_dense(model.reference_positions, K)
    expected = np.linalg.solve(zv * np.eye(model.n_basis) - t, r)
    pc = KineticPreconditioner(model.shape, model._stencil(), K)
    pc.configure(self_comm(), (0, model.n_basis), zv)
    got = pc.apply_block(np.ascontiguousarray(r.T)).T
    assert np.max(np.abs(got - expected)) < 1e-12 * np.max(np.abs(expected))
    single = pc.apply_block(np.ascontiguousarray(r.T, dtype=np.complex64)).T      # single precision
    assert single.dtype == np.complex64
    assert 1e-10 < np.max(np.abs(single - expected)) / np.max(np.abs(expected)) < 1e-5


def _distributed_equals_serial(grid):
    from spia_mpi.engine.preconditioners import KineticPreconditioner, SlabFFT, slab_bounds
    from spia_mpi.parallel.mpi import world
    comm = world()
    for cell in CELLS.values():
        model, K, zv, r = _preconditioner_case(cell, grid)
        serial = KineticPreconditioner(model.shape, model._stencil(), K)
        serial.configure(self_comm(), (0, model.n_basis), zv)
        expected = serial.apply_block(np.ascontiguousarray(r.T))          # [3, n]
        plane = model.shape[1] * model.shape[2]
        layouts = {**_splits(model.n_basis, comm.size), "slabs": slab_bounds(model.shape[0], comm.size) * plane}
        for name, bounds in layouts.items():
            r0, r1 = bounds[comm.rank], bounds[comm.rank + 1]
            pc = KineticPreconditioner(model.shape, model._stencil(), K)
            pc.configure(comm, (r0, r1), zv)
            assert pc.fft.aligned == (name == "slabs" or np.array_equal(bounds, layouts["slabs"]))
            got = pc.apply_block(np.ascontiguousarray(r[r0:r1].T))
            err = comm.allreduce(float(np.max(np.abs(got - expected[:, r0:r1]), initial=0.0)), op=_mpi_max())
            assert err < 1e-12 * np.max(np.abs(expected)), (name, err)
            # one column at a time (the PETSc path) gives the same numbers as the block
            one = pc.apply_block(np.ascontiguousarray(r[r0:r1, 1:2].T))
            assert np.max(np.abs(one[0] - got[1]), initial=0.0) < 1e-14 * np.max(np.abs(expected))
            # ranks of one node transpose through shared memory; a larger block regrows the window,
            # a released window is allocated again, and the Alltoallv transport gives the same numbers
            assert pc.fft._shared == (comm.size > 1)
            six = pc.apply_block(np.ascontiguousarray(np.concatenate([r[r0:r1].T, r[r0:r1].T])))
            pc.release()
            again = pc.apply_block(np.ascontiguousarray(r[r0:r1].T))
            singles = [pc.apply_block(np.ascontiguousarray(r[r0:r1].T, dtype=np.complex64))]   # same window
            pc.fft = SlabFFT(comm, model.shape, (r0, r1), shared=False)
            mpi = pc.apply_block(np.ascontiguousarray(r[r0:r1].T))
            singles.append(pc.apply_block(np.ascontiguousarray(r[r0:r1].T, dtype=np.complex64)))
            for other in (six[:3], six[3:], again, mpi):
                assert np.max(np.abs(other - got), initial=0.0) < 1e-14 * np.max(np.abs(expected))
            for single in singles:                 # single precision (mixed-precision GMRES), both transports
                assert single.dtype == np.complex64
                assert np.max(np.abs(single - got), initial=0.0) < 1e-5 * np.max(np.abs(expected))
            pc.release()


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX


@pytest.mark.mpi(ranks=2)
def test_distributed_kinetic_preconditioner_equals_serial_two_ranks():
    """2 ranks, PETSc's row layout, x-slab aligned rows and a lopsided split: = serial to 1e-12
    (odd 5×6×7 grid; orthorhombic and triclinic cells; general K), with the shared-memory and
    with the Alltoallv transposes."""
    _distributed_equals_serial((5, 6, 7))


@pytest.mark.mpi(ranks=3)
def test_distributed_kinetic_preconditioner_equals_serial_three_ranks():
    """3 ranks on grids whose axes do not divide by 3, (7×5×3)
    and one with fewer x-planes than ranks (2×7×5): = serial to 1e-12."""
    _distributed_equals_serial((7, 5, 3))
    _distributed_equals_serial((2, 7, 5))


@pytest.mark.mpi(ranks=2)
def test_two_rank_grid_resolvent_with_distributed_preconditioner_equals_dense():
    """The whole PETSc path on 2 ranks (N1 = 7 odd: H's rows split in x-slabs 3 + 4 planes, not
    PETSc's 105 + 105 rows; the preconditioner sees an aligned layout): H's rows equal the dense
    matrix's exactly, and the resolvent equals dense LU to 1e-9 relative, in as few iterations as
    on one rank."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    model = _hydrogen_grid_model(supercell=(1, 1, 1), grid=(7, 6, 5))
    pos = _ring_polymers(model, 1, 1, seed=2)[0, 0]
    K = [0.25, 0.0, 0.5]
    p = model.reference_states(K, 4).vectors
    z = 3.0 + 1j * matsubara_eta(16, T)
    hd = model.hamiltonian_dense(pos, K)
    gd = projected_resolvent_dense(hd, z, p)
    h2 = model.hamiltonian_petsc(pos, K, comm)
    r0, r1 = h2.getOwnershipRange()
    assert (r0, r1) == ((0, 90), (90, 210))[comm.rank]             # 3 and 4 planes of 6 × 5 points
    rows = np.array([h2.getValues([r], range(model.n_basis))[0] for r in range(r0, r1)])
    assert np.array_equal(rows, hd[r0:r1])
    pc = model.resolvent_preconditioner(K)
    g2, info2 = ResolventSolver(comm).solve(h2, z, p, pc)
    assert pc.fft.aligned
    g1, info1 = ResolventSolver(self_comm()).solve(model.hamiltonian_petsc(pos, K, self_comm()), z, p,
                                                   _hydrogen_grid_model((1, 1, 1), (7, 6, 5)).resolvent_preconditioner(K))
    assert np.max(np.abs(g2 - gd)) < 1e-9 * np.max(np.abs(gd))
    assert np.max(np.abs(g1 - gd)) < 1e-9 * np.max(np.abs(gd))
    assert abs(info2["iterations_mean"] - info1["iterations_mean"]) <= 1


# ---------------------------------------------------------------- blocks of right-hand sides
def _grid_case():
    model = _hydrogen_grid_model(supercell=(1, 1, 2))
    pos = _ring_polymers(model, 1, 1, seed=9)[0, 0]
    K = [0.1, 0.0, 0.5]
    p = model.reference_states(K, 5).vectors                      # 10 plane waves
    z = 2.0 + 1j * matsubara_eta(16, T)
    return model, pos, K, p, z


@pytest.mark.parametrize("block_size, restart", [(3, 4), (16, 4), (16, 1), (4, 100)])
def test_block_solves_equal_single_solves_and_dense(block_size, restart):
    """Batched GMRES (blocks of 3: a ragged last block; 16 > n_states: one block; restarts every
    iteration, every 4 and never) with the grid model's fused A M⁻¹: g equals dense LU and the
    one-by-one PETSc KSP solves to the KSP tolerance (with restarts ≥ 4 in about the same number
    of iterations); a warm start from the solution reproduces it at once."""
    model, pos, K, p, z = _grid_case()
    gd = projected_resolvent_dense(model.hamiltonian_dense(pos, K), z, p)
    h = model.hamiltonian_petsc(pos, K, self_comm())
    g1, i1 = ResolventSolver(self_comm(), {"block_size": 1}).solve(h, z, p, model.resolvent_preconditioner(K))
    solver = ResolventSolver(self_comm(), {"block_size": block_size, "block_restart": restart})
    gb, ib = solver.solve(h, z, p, model.resolvent_preconditioner(K))
    scale = np.max(np.abs(gd))
    assert np.max(np.abs(gb - gd)) < 1e-9 * scale
    assert np.max(np.abs(gb - g1)) < 1e-9 * scale
    if restart >= 4:                                           # GMRES(1) needs more (12 vs 8 here)
        assert abs(ib["iterations_mean"] - i1["iterations_mean"]) <= 2, (ib, i1)
    # the restarted cycles' residuals are Arnoldi updates: the true residual of the result meets
    # the tolerance (rtol 1e-11) all the same
    a = z * np.eye(model.n_basis) - model.hamiltonian_dense(pos, K)
    res = np.linalg.norm(a @ ib["solution"] - p, axis=0) / np.linalg.norm(p, axis=0)
    assert np.max(res) <= 1e-11, res
    gw, iw = solver.solve(h, z, p, model.resolvent_preconditioner(K), guess=ib["solution"])
    assert iw["iterations_max"] == 0 and np.array_equal(gw, gb)


def test_block_solves_without_the_fused_operator():
    """A matrix that is not z − T − V(r) (an extra random hopping added): the fused A M⁻¹ check fails,
    the batched solver falls back to the matrix and still gives the dense resolvent; so does the
    Jacobi-preconditioned batched solve of a tight-binding model (no model preconditioner)."""
    from spia_mpi.models.tightbinding import holstein_cubic
    model, pos, K, p, z = _grid_case()
    from spia_mpi.engine.resolvent import _batched_operators, shifted_operator

    def fused_in_use(h):
        ops = _batched_operators(shifted_operator(h, z), model.resolvent_preconditioner(K))
        return "preconditioned_operator" in ops.apply_am.__qualname__

    h = model.hamiltonian_petsc(pos, K, self_comm())
    assert fused_in_use(h)
    extra = model.hamiltonian_dense(pos, K)
    rng = np.random.default_rng(3)
    i, j = rng.integers(0, model.n_basis, 2)
    extra[i, j] += 0.7
    extra[j, i] += 0.7
    h.setOption(h.Option.NEW_NONZERO_ALLOCATION_ERR, False)
    for r, c in ((i, j), (j, i)):
        h.setValue(r, c, extra[r, c])
    h.assemble()
    assert not fused_in_use(h)
    gd = projected_resolvent_dense(extra, z, p)
    gb, _ = ResolventSolver(self_comm(), {"block_size": 4}).solve(h, z, p, model.resolvent_preconditioner(K))
    assert np.max(np.abs(gb - gd)) < 1e-9 * np.max(np.abs(gd))
    tb = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 0.5)
    pos_tb = tb.reference_positions + 0.05 * rng.standard_normal(tb.reference_positions.shape)
    ref = tb.reference_states([0.25, 0, 0.5], 1)
    z_tb = 0.3 + 1j * matsubara_eta(16, T)
    gd = projected_resolvent_dense(tb.hamiltonian_dense(pos_tb, [0.25, 0, 0.5]), z_tb, ref.vectors)
    gb, _ = ResolventSolver(self_comm(), {"block_size": 8}).solve(
        tb.hamiltonian_petsc(pos_tb, [0.25, 0, 0.5], self_comm()), z_tb, ref.vectors)
    assert np.max(np.abs(gb - gd)) < 1e-9 * np.max(np.abs(gd))


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("options", [{"block_size": 4}, {"block_size": 4, "recycle": 6}])
def test_block_solves_two_ranks_equal_dense(options):
    """Batched GMRES on 2 ranks (PETSc's row split, distributed FFTs, the one combined reduction per
    Arnoldi step over both, a recycled space orthonormalised over both; two solves, the second with
    the space the first left): = dense."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos, K, p, z = _grid_case()
    solver = ResolventSolver(comm, options)
    for x in (pos, pos + 0.02):
        gd = projected_resolvent_dense(model.hamiltonian_dense(x, K), z, p)
        gb, _ = solver.solve(model.hamiltonian_petsc(x, K, comm), z, p, model.resolvent_preconditioner(K))
        assert np.max(np.abs(gb - gd)) < 1e-9 * np.max(np.abs(gd))


def test_default_block_size_is_automatic():
    """block_size = 'auto' (the default): batched GMRES in blocks of AUTO_BLOCK when the model's
    preconditioner is used with GMRES, else PETSc's KSP column by column. On the grid model
    (10 states: a block of 8 and a ragged one of 2) the default gives the single solves' and the
    dense resolvent to the KSP tolerance with true residuals ≤ rtol; on a tight-binding model
    (no model preconditioner) it is the single-solve path itself, bit for bit."""
    from spia_mpi.models.tightbinding import holstein_cubic
    model, pos, K, p, z = _grid_case()
    pc = model.resolvent_preconditioner(K)
    auto = ResolventSolver(self_comm())
    assert auto.block_size_for(pc) == ResolventSolver.AUTO_BLOCK == 8
    assert auto.block_size_for(None) == 1
    for options in ({"pc_type": "jacobi"}, {"ksp_type": "bcgs"}, {"block_size": 1}):
        assert ResolventSolver(self_comm(), options).block_size_for(pc) == 1, options
    assert ResolventSolver(self_comm(), {"block_size": 3}).block_size_for(None) == 3
    h = model.hamiltonian_petsc(pos, K, self_comm())
    ga, ia = auto.solve(h, z, p, model.resolvent_preconditioner(K))
    g1, _ = ResolventSolver(self_comm(), {"block_size": 1}).solve(h, z, p, model.resolvent_preconditioner(K))
    gd = projected_resolvent_dense(model.hamiltonian_dense(pos, K), z, p)
    assert np.max(np.abs(ga - gd)) < 1e-9 * np.max(np.abs(gd))
    assert np.max(np.abs(ga - g1)) < 1e-9 * np.max(np.abs(gd))
    a = z * np.eye(model.n_basis) - model.hamiltonian_dense(pos, K)
    assert np.max(np.linalg.norm(a @ ia["solution"] - p, axis=0) / np.linalg.norm(p, axis=0)) <= 1e-11
    tb = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 0.5)
    ref = tb.reference_states([0.25, 0, 0.5], 1)
    h_tb = tb.hamiltonian_petsc(tb.reference_positions + 0.03, [0.25, 0, 0.5], self_comm())
    z_tb = 0.3 + 1j * matsubara_eta(16, T)
    g_auto, _ = ResolventSolver(self_comm()).solve(h_tb, z_tb, ref.vectors)
    g_one, _ = ResolventSolver(self_comm(), {"block_size": 1}).solve(h_tb, z_tb, ref.vectors)
    assert np.array_equal(g_auto, g_one)


@pytest.mark.parametrize("options, needle", [({"block_size": 0}, "block_size"), ({"block_size": 2.5}, "block_size"),
                                             ({"block_size": "big"}, "or 'auto'"),
                                             ({"block_restart": 0}, "block_restart"),
                                             ({"recycle": -1}, "recycle"), ({"recycle": True}, "recycle"),
                                             ({"recycle": 2.0}, "recycle"),
                                             ({"recycle": 4, "block_size": 1}, "batched GMRES only"),
                                             ({"block_size": 4, "ksp_type": "bcgs"}, "ksp_type"),
                                             ({"block_size": 4, "pc_type": "ilu"}, "pc_type")])
def test_block_options_checked(options, needle):
    from spia_mpi.errors import InputError
    with pytest.raises(InputError, match=needle):
        ResolventSolver(self_comm(), options)
