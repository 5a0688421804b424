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
@pytest.mark.parametrize("n_b", [5, 1])       # slices shared 3 + 2 (N_b odd); one slice: rank 1 has none
def test_slices_over_ranks_equal_serial_numpy(n_b):
    """bethe_salpeter_on over 2 ranks (Γ(m) on rank 1, the root) = the serial reference to 1e-10;
    W on the root only."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    gam, abs2 = random_gamma(n_b, 24, 10 + n_b)
    w = bethe_salpeter_on(comm, gam if comm.rank == 1 else None, abs2 if comm.rank == 1 else None, BETA,
                          BseParallel(), root=1)
    if comm.rank == 1:
        assert w.shape == (n_b, 24, 24)
        assert max_rel(w, reference_w(gam, abs2, BETA)) < 1e-10
        assert max_rel(w, gam) > 1e-3              # the ladder is not negligible: the test can fail
    else:
        assert w is None


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("n_b, n, package, real", [
    (4, 29, "scalapack", False),           # rows 15 + 14
    (4, 31, "scalapack", True),            # a real Γ(m) (the workflow's dtype)
    (3, 31, "mumps", False),
])
def test_rows_api_holds_only_own_rows(n_b, n, package, real):
    """bethe_salpeter_rows: each rank gives only its rows of Γ(m) and gets the same rows of the
    reference W(m) to 1e-10 (every slice one distributed LU); a wrong row count is refused."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    gam, abs2 = random_gamma(n_b, n, 3 + n, real)
    rows = partition(n, comm.size, comm.rank)
    w_rows = bethe_salpeter_rows(comm, gam[:, rows.start:rows.stop].copy(), abs2, BETA, package)
    assert w_rows.shape == (n_b, len(rows), n)
    ref = reference_w(gam, abs2, BETA)[:, rows.start:rows.stop]
    assert max_rel(w_rows, ref) < 1e-10
    assert max_rel(w_rows, gam[:, rows.start:rows.stop]) > 1e-3
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


def _holstein_inputs(cells=(2, 2, 3)):
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    model = holstein_cubic(np.diag(cells), 1.0, 1.0, 2.0, mass_amu=1.0)
    pos = sample_einstein_ring_polymers(10, 5, np.full(model.n_basis, 1.0), 0.1, 300.0,
                                        model.reference_positions, np.random.default_rng(5))
    return model, pos


def _two_band_inputs():
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from tests.test_gap_engine import two_band_model
    model = two_band_model()
    pos = sample_einstein_ring_polymers(12, 4, np.full(model.n_basis, 1.0), 0.1, 300.0,
                                        model.reference_positions, np.random.default_rng(3))
    return model, pos


#: what must agree between the layouts: every rank's (λ, its errors and replicas, the Γ/W summaries)
_SHARED = ("lambda_m", "lambda_m_error", "lambda_m_jackknife", "gamma_fs", "gamma_fs_error", "w_fs", "w_fs_error",
           "gamma_diag_abs", "gamma_diag_abs_error")


def _compared(res, rank0: bool) -> dict:
    out = {name: getattr(res, name) for name in _SHARED}
    out["raw"] = res.raw.value
    if rank0:                                         # rank 0 alone holds the q-resolved sums (and writes them)
        out["pair_sums_q"], out["pair_sums_q_jackknife"] = res.pair_sums_q, res.pair_sums_q_jackknife
        if res.anisotropy is not None:
            out["w_ij_m"], out["w_ij_m_error"] = res.anisotropy.w_ij_m, res.anisotropy.w_ij_m_error
    return out


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("case, min_states, mode", [
    ("holstein-9", 5, "bse"),          # rows 5 + 4 (uneven), one state per k: the one-state replicas
    ("holstein-9", 5, "born"),         # rows without a Bethe–Salpeter solve
    ("holstein-12", 4096, "bse"),      # below the threshold: Γ whole on the leader, slices shared
    ("two-band", 4, "bse"),            # 15 states, 2 per k, rows 8 + 7 cut a k block: general replicas, bins
])
def test_workflow_one_rank_equals_two_ranks(tmp_path, monkeypatch, case, min_states, mode):
    """λ(m), its jackknife error and replicas, the Γ/W summaries (with errors) and, on rank 0, the
    q-resolved pair sums (and W_ij binned by band) of one configuration group of 2 ranks = one rank
    to 1e-10, both runs reading the same checkpointed resolvents so only the Γ/W layout differs.
    With n_s ≥ bse_distributed_min_states each rank of the group holds only its rows of the moment
    sums and of Γ/W (checked on what reaches the Γ/W stage: rows partition(n_s, 2, rank), never all);
    below it the leader holds them whole. The two-band case (a window drops one state, so the row
    split falls inside a k block) also checks that T rows take the g rows of their whole k block.
    BSE ≠ Born checks that the ladder is really there."""
    from spia_mpi.engine import workflow
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.io.checkpoint import TaskStore
    from spia_mpi.parallel.mpi import world
    comm = world()
    if case == "two-band":
        model, pos = _two_band_inputs()
        kpts = [[0, 0, 0]]
        kw = dict(n_per_k=2, gammas=(0.3, 0.6), n_blocks=4, fermi_level="reference", window_ev=(-5.0, 8.0),
                  anisotropy_bins="band")
    else:
        model, pos = _holstein_inputs((3, 3, 1) if case == "holstein-9" else (2, 2, 3))
        kpts = [[0, 0, 0], [0, 0, 0.5]]
        kw = dict(n_per_k=1, gammas=(0.5, 1.0), n_blocks=5, fermi_level_ev=0.0)
    kw.update(solver="petsc", bse_distributed_min_states=min_states, mode=mode)
    seen = []
    rows_stage = workflow._contribution_rows

    def spy(sums, *args):
        seen.append(None if sums is None else sums.s1.shape)
        return rows_stage(sums, *args)
    monkeypatch.setattr(workflow, "_contribution_rows", spy)
    n_tasks = len(kpts) * pos.shape[0]
    folder = comm.bcast(str(tmp_path / "ckpt"), root=0)
    store = TaskStore.open(folder, n_tasks, "bse-test", comm)
    two = compute_lambda(model, pos, kpts, 300.0, comm=comm, store=store, ranks_per_group=2, **kw)
    comm.barrier()
    one = other = None
    if comm.rank == 0:
        serial = compute_lambda(model, pos, kpts, 300.0, comm=None, store=TaskStore.open(folder, n_tasks, "bse-test"),
                                **kw)
        other = compute_lambda(model, pos, kpts, 300.0, comm=None, store=TaskStore.open(folder, n_tasks, "bse-test"),
                               **{**kw, "mode": "born" if mode == "bse" else "bse"})
        one, other = _compared(serial, True), other.lambda_m
        n_s = serial.bands[0]["energies"].size
    one, other = comm.bcast((one, other), root=0)
    n_states = comm.bcast(n_s if comm.rank == 0 else None, root=0)
    mine = _compared(two, comm.rank == 0)
    assert set(mine) == set(one) if comm.rank == 0 else set(mine) <= set(one)
    for name, value in mine.items():
        scale = np.max(np.abs(one[name]))
        assert scale > 0, name
        assert np.max(np.abs(value - one[name])) < 1e-10 * scale, name
    assert np.max(np.abs(one["lambda_m"] - other)) > 1e-6 * np.max(np.abs(other))
    if n_states >= min_states:
        own = len(partition(n_states, 2, comm.rank))
        assert own < n_states and seen and all(shape[1:] == (own, n_states) for shape in seen), seen
        assert n_states % 2 == 1                       # uneven rows
    else:
        assert not seen


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


@pytest.mark.mpi(ranks=2)
def test_failure_on_one_rank_of_the_row_layout_stops_both(monkeypatch):
    """Row layout: Γ of rank 1's rows fails (a forced error in MomentSums.gamma on rank 1 only); rank 0
    must not enter the distributed LU alone — both ranks raise (rank 1 its own error, rank 0 the peer
    failure naming it) instead of hanging."""
    from spia_mpi.engine import spia as spia_mod
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos = _holstein_inputs((3, 3, 1))
    gamma = spia_mod.MomentSums.gamma

    def failing(self, beta, symmetrize_m=False):
        if comm.rank == 1:
            raise FloatingPointError("forced failure of rank 1's rows")
        return gamma(self, beta, symmetrize_m)
    monkeypatch.setattr(spia_mod.MomentSums, "gamma", failing)
    with pytest.raises(Exception, match="forced failure of rank 1's rows"):
        compute_lambda(model, pos, [[0, 0, 0]], 300.0, comm=comm, ranks_per_group=2, solver="petsc", n_per_k=1,
                       gammas=(0.5,), n_blocks=5, fermi_level_ev=0.0, bse_distributed_min_states=5, mode="bse")
