"""The Bethe–Salpeter equation over MPI ranks (engine.bse_parallel) against a serial numpy
solve built here from the written equation, and 1 rank = 2 ranks for λ(m) in the workflow.

The reference W(m) of every test is computed independently of spia's FFT route: the bead
transform as an explicit sum, W(b) = Γ(b) [1 − D Γ(b)]⁻¹ by numpy's inverse (the column form;
the distributed path solves the row form (1 − Γ D) W = Γ), and the explicit back transform.
"""
import numpy as np
import pytest

from spia_mpi.engine import bse_parallel, spia
from spia_mpi.engine.bse_parallel import BseParallel, bethe_salpeter_on, bethe_salpeter_rows
from spia_mpi.errors import InputError
from spia_mpi.parallel.mpi import partition

BETA = 2.5     # 1/eV


def random_gamma(n_b: int, n: int, seed: int, real: bool = False):
    """Γ(m) complex (or ``real``, like the workflow's Γ) [n_b, n, n] (eV) and |Ḡ|² [n] (1/eV²) with
    ‖D Γ(b)‖ ≲ 0.5: well conditioned."""
    rng = np.random.default_rng(seed)
    gam = rng.normal(size=(n_b, n, n)) + (0 if real else 1j * rng.normal(size=(n_b, n, n)))
    gam /= 4 * np.sqrt(n * n_b)
    abs2 = rng.uniform(0.5, 1.0, n) * BETA
    return gam, abs2


def reference_w(gam_mss, abs2, beta):
    """W(m) by explicit sums and numpy's inverse, complex [n_b, n, n]."""
    n_b, n, _ = gam_mss.shape
    d = np.diag(abs2 / beta)
    phase = np.exp(-2j * np.pi * np.outer(np.arange(n_b), np.arange(n_b)) / n_b)      # [b, m]
    gam_b = np.einsum("bm,mst->bst", phase, gam_mss)
    w_b = np.array([g @ np.linalg.inv(np.eye(n) - d @ g) for g in gam_b])
    return np.einsum("bm,bst->mst", phase.conj(), w_b) / n_b


def max_rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def test_serial_kernels_equal_the_reference_and_row_form():
    """One rank: spia.bethe_salpeter (column form) and the row-form matrix of one slice
    (spia.bse_rows_matrix) give the reference W; bethe_salpeter_on without a communicator is the
    serial solve."""
    gam, abs2 = random_gamma(3, 20, 1)
    ref = reference_w(gam, abs2, BETA)
    assert max_rel(spia.bethe_salpeter(gam, abs2, BETA), ref) < 1e-12
    assert max_rel(bethe_salpeter_on(None, gam, abs2, BETA), ref) < 1e-12
    g0 = spia.bead_slices(gam)[0]
    d = abs2 / BETA
    a = np.vstack([spia.bse_rows_matrix(g0[:7], 0, d), spia.bse_rows_matrix(g0[7:], 7, d)])
    assert np.allclose(a, np.eye(20) - g0 @ np.diag(d), rtol=0, atol=1e-15)
    w_row = np.linalg.solve(a, g0)
    w_col = np.linalg.solve((np.eye(20) - np.diag(d) @ g0).T, g0.T).T
    assert max_rel(w_row, w_col) < 1e-12


def test_bad_package_and_threshold_are_input_errors():
    with pytest.raises(InputError, match="not one of: scalapack, mumps"):
        BseParallel(package="elemental").check()
    with pytest.raises(InputError, match="must be ≥ 1"):
        BseParallel(distributed_min_states=0).check()
    with pytest.raises(InputError, match="not one of: dense, petsc"):
        BseParallel(solver="cholesky").check()


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("package", ["scalapack", "mumps"])
def test_petsc_distributed_solve_equals_numpy(package):
    """A X = B by PETSc's distributed LU over 2 ranks, each rank holding its rows, = numpy's
    solve of the whole system (n = 37: uneven rows; 5 right-hand sides) to 1e-10."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    rng = np.random.default_rng(4)
    n, k = 37, 5
    a = np.eye(n) + (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / (3 * np.sqrt(n))
    b = rng.normal(size=(n, k)) + 1j * rng.normal(size=(n, k))
    rows = partition(n, comm.size, comm.rank)
    x = bse_parallel.petsc_distributed_solve(comm, a[rows.start:rows.stop], b[rows.start:rows.stop], package)
    assert max_rel(x, np.linalg.solve(a, b)[rows.start:rows.stop]) < 1e-10


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("n_b, n, min_states, package, real", [
    (5, 24, 1000, "scalapack", False),     # below the threshold: slices shared 3 + 2 (N_b odd)
    (1, 24, 1000, "scalapack", False),     # one slice for two ranks: rank 1 has none
    (5, 31, 30, "scalapack", False),       # above: every slice one distributed LU, rows 16 + 15
    (4, 31, 30, "scalapack", True),        # above, a real Γ(m) (the workflow's dtype)
    (3, 31, 31, "mumps", False),           # at the threshold, MUMPS
])
def test_distributed_equals_serial_numpy(n_b, n, min_states, package, real):
    """bethe_salpeter_on over 2 ranks (Γ(m) on rank 1, the root) = the serial reference to 1e-10;
    W on the root only."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    gam, abs2 = random_gamma(n_b, n, 10 + n_b, real)
    how = BseParallel(distributed_min_states=min_states, package=package)
    assert how.by_rows(n, comm.size) == (n >= min_states)
    w = bethe_salpeter_on(comm, gam if comm.rank == 1 else None, abs2 if comm.rank == 1 else None, BETA, how, root=1)
    if comm.rank == 1:
        assert w.shape == (n_b, n, n)
        assert max_rel(w, reference_w(gam, abs2, BETA)) < 1e-10
        assert max_rel(w, gam) > 1e-3              # the ladder is not negligible: the test can fail
    else:
        assert w is None


@pytest.mark.mpi(ranks=2)
def test_rows_api_holds_only_own_rows():
    """bethe_salpeter_rows: each rank gives only its rows of Γ(m) and gets the same rows of the
    reference W(m) to 1e-10; a wrong row count is refused."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    gam, abs2 = random_gamma(4, 29, 3)
    rows = partition(29, comm.size, comm.rank)
    w_rows = bethe_salpeter_rows(comm, gam[:, rows.start:rows.stop].copy(), abs2, BETA)
    assert w_rows.shape == (4, len(rows), 29)
    assert max_rel(w_rows, reference_w(gam, abs2, BETA)[:, rows.start:rows.stop]) < 1e-10
    with pytest.raises(ValueError, match="rows of Γ"):
        bethe_salpeter_rows(comm, gam[:, :3], abs2, BETA)


@pytest.mark.mpi(ranks=2)
def test_failures_reach_every_rank():
    """Γ absent on the root (its caller failed): both ranks return None at once. A singular slice
    on rank 1 only (1 − D Γ(b) = 0 for b = 1): both ranks raise, nobody hangs."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    assert bethe_salpeter_on(comm, None, None, BETA) is None
    n_b, n = 2, 6
    abs2 = np.full(n, BETA)                                  # D = 1
    gam_b = np.array([0.1 * np.eye(n), np.eye(n)], dtype=complex)   # slice 1: 1 − Γ = 0
    gam_m = np.fft.ifft(gam_b, axis=0)
    with pytest.raises(Exception):
        bethe_salpeter_on(comm, gam_m if comm.rank == 0 else None, abs2, BETA)


def _holstein_inputs():
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    model = holstein_cubic(np.diag([2, 2, 3]), 1.0, 1.0, 2.0, mass_amu=1.0)
    pos = sample_einstein_ring_polymers(10, 5, np.full(model.n_basis, 1.0), 0.1, 300.0,
                                        model.reference_positions, np.random.default_rng(5))
    return model, pos


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("min_states", [5, 4096])
def test_workflow_one_rank_equals_two_ranks_in_bse_mode(tmp_path, min_states):
    """λ(m) in BSE mode of a 12-site Holstein model, 10 configurations × 5 beads, 2 K-points:
    one group of 2 ranks (the group's ranks share the BSE slices: by rows with min_states = 5 <
    12 states, by slices (5 slices over 2 ranks) with 4096) = one rank to 1e-10. Both runs read the
    same checkpointed resolvents, so only the Bethe–Salpeter layout differs; BSE ≠ Born checks the
    BSE stage is really there."""
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.io.checkpoint import TaskStore
    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos = _holstein_inputs()
    kpts = [[0, 0, 0], [0, 0, 0.5]]
    kw = dict(n_per_k=1, gammas=(0.5, 1.0), n_blocks=5, solver="petsc", fermi_level_ev=0.0,
              bse_distributed_min_states=min_states, mode="bse")
    folder = comm.bcast(str(tmp_path / "ckpt"), root=0)
    store = TaskStore.open(folder, 2 * 10, "bse-test", comm)
    two = compute_lambda(model, pos, kpts, 300.0, comm=comm, store=store, ranks_per_group=2, **kw)
    comm.barrier()
    one = None
    if comm.rank == 0:
        one = compute_lambda(model, pos, kpts, 300.0, comm=None, store=TaskStore.open(folder, 2 * 10, "bse-test"),
                             **kw)
        born = compute_lambda(model, pos, kpts, 300.0, comm=None, store=TaskStore.open(folder, 2 * 10, "bse-test"),
                              **{**kw, "mode": "born"})
    one = comm.bcast(None if one is None else (one.lambda_m, one.lambda_m_error, born.lambda_m), root=0)
    scale = np.max(np.abs(one[0]))
    assert scale > 0
    assert np.max(np.abs(two.lambda_m - one[0])) < 1e-10 * scale
    assert np.max(np.abs(two.lambda_m_error - one[1])) < 1e-10 * scale
    assert np.max(np.abs(one[0] - one[2])) > 1e-6 * scale


def test_cli_run_distributed_bse_equals_one_rank(tmp_path, spia_cli, small_run):
    """The TOML keys reach the workflow: `spia.ranks_per_group = 2` with `bse_distributed_min_states
    = 4` (8 states per K) under 2 ranks solves every slice by ScaLAPACK's distributed LU (the log
    says so); the same folder rerun on 1 rank (the checkpointed resolvents reused, so only the BSE
    layout differs) gives λ(m), its error and T_c to 1e-10; a bad package is one clear error."""
    inp = small_run.write(tmp_path, resolvent="petsc")
    serial = inp.read_text()
    inp.write_text(serial.replace('resolvent = "petsc"', 'resolvent = "petsc"\nranks_per_group = 2\n'
                                                         'bse_distributed_min_states = 4'))
    r2 = spia_cli(["run", inp], ranks=2)
    assert r2.returncode == 0, r2
    assert "distributed LU (scalapack) on 2 ranks" in r2.stderr, r2
    d2, inp2, _ = small_run.read(tmp_path / "res.h5")
    assert inp2["spia"]["bse_distributed_min_states"] == 4 and inp2["spia"]["ranks_per_group"] == 2
    inp.write_text(serial)
    r1 = spia_cli(["run", inp])
    assert r1.returncode == 0 and "reused" in r1.stderr and "distributed LU" not in r1.stderr, r1
    d1, _, _ = small_run.read(tmp_path / "res.h5")
    for key in ("lambda/lambda_m", "lambda/lambda_m_error", "eliashberg/tc_K"):
        assert np.max(np.abs(d2[key] - d1[key])) <= 1e-10 * np.max(np.abs(d1[key])), key
    inp.write_text(serial.replace('resolvent = "petsc"', 'resolvent = "petsc"\nbse_distributed_solver = "elemental"'))
    r = spia_cli(["run", inp])
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "spia.bse_distributed_solver" in r.stderr, r
    assert "Traceback" not in r.stderr, r
