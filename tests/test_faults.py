"""Reliability under bad input and faults (issue 8): a 2-rank job never hangs and never
loses finished work.

* a failure on ONE rank inside a per-rank compute phase fails every rank (no rank is
  left in a collective), under a real ``mpirun -n 2``, with the finished checkpoint
  tasks of both ranks kept and reused;
* bad inputs through the CLI under ``mpirun -n 2``: non-zero exit, exactly one
  ``error:`` naming the file/key and what was expected, no output that looks finished;
* a corrupt checkpoint is detected, recomputed, and gives the uninterrupted result.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spia_mpi.errors import ConvergenceError


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _holstein_conf(n_conf=6, n_beads=4, seed=5):
    """A 2×2×2 Holstein supercell and exact Einstein ring-polymer samples of it."""
    from spia_mpi.ions.configurations import Configurations, sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    model = holstein_cubic(np.diag([2, 2, 2]), coupling=4.0)
    pos = sample_einstein_ring_polymers(n_conf, n_beads, model.atoms.get_masses(), 0.1, 300.0,
                                        model.reference_positions, np.random.default_rng(seed))
    conf = Configurations(pos, model.atoms.cell[:], model.atoms.numbers, model.atoms.get_masses(), 300.0)
    return model, conf


def assert_one_clean_error(r, *needles, code=None):
    """Non-zero exit, exactly one 'error:' line holding every needle, no traceback."""
    assert r.returncode != 0 and (code is None or r.returncode == code), r
    assert r.stderr.count("error:") == 1, r
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r
    line = next(ln for ln in r.stderr.splitlines() if "error:" in ln)
    for n in needles:
        assert n in line, (n, r)


def assert_no_finished_output(path):
    """Nothing at ``path`` that a reader would take for a finished result."""
    import h5py
    path = Path(path)
    complete = False
    if path.exists():
        with h5py.File(path, "r") as f:
            complete = bool(f.attrs.get("complete", False))
    assert not complete, f"{path} looks complete"


def assert_reproduced(first: dict, second: dict, rtol=1e-10):
    """Every array of ``second`` equals ``first``'s to ``rtol`` (relative to the array's largest
    magnitude). A resumed run adds the same numbers in the same order as an uninterrupted one
    and agreed bit for bit on the developers' machine, but CI once saw the jackknife error
    differ in its last digits (a run's floating-point results may depend on where its arrays
    lie in memory, e.g. in BLAS kernels); a task that was lost, reused wrongly or recomputed
    differently moves λ and its error by far more than 1e-10."""
    assert first.keys() == second.keys()
    for k in first:
        a, b = np.asarray(first[k]), np.asarray(second[k])
        assert a.shape == b.shape, k
        scale = np.max(np.abs(a)) if a.size else 0.0
        assert np.max(np.abs(a - b), initial=0.0) <= rtol * scale, (k, a, b)


def _unwritable_folder(tmp_path):
    """A folder in which creating a file really fails (checked by trying), or skip."""
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    candidates = [d, Path("/sys")]           # /sys: read-only even for root in containers
    for c in candidates:
        try:
            with open(c / ".spia_probe", "w"):
                pass
            os.unlink(c / ".spia_probe")
        except OSError:
            return c
    pytest.skip("no folder here refuses writes (root on a writable file system)")


# --------------------------------------------------------------------------
# 1. a failure on one rank fails every rank (real mpirun -n 2)
# --------------------------------------------------------------------------

@pytest.mark.mpi(ranks=2, timeout=120)
@pytest.mark.parametrize("kind", ["convergence", "bug"])
def test_one_rank_resolvent_failure_raises_on_every_rank(tmp_path_factory, monkeypatch, kind):
    """Rank 1's resolvent fails on its 3rd task (a KSP that does not converge, or a bug).
    Before the fix rank 0 waited forever in the Ḡ allgather. Now both ranks raise (the
    mpi timeout turns a hang into a failure), rank 0 names rank 1, every task finished
    before the failure is in the checkpoint, and a rerun from it gives exactly the
    result of an uninterrupted serial run."""
    from spia_mpi.engine import workflow
    from spia_mpi.io.checkpoint import TaskStore
    from spia_mpi.parallel.mpi import PeerFailure, world
    comm = world()
    assert comm.size == 2
    folder = comm.bcast(str(tmp_path_factory.mktemp("ckpt")) if comm.rank == 0 else None)
    model, conf = _holstein_conf()
    kpts = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    kw = dict(J=4, gammas=(0.5,), n_blocks=3, solver="dense")
    n_tasks = len(kpts) * conf.n_conf
    store = TaskStore.open(folder, n_tasks, "fp", comm)

    real_call = workflow._ResolventEngine.__call__
    calls = []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 3:
            if kind == "convergence":
                raise ConvergenceError("resolvent KSP diverged (reason -3) after 10000 iterations")
            raise ZeroDivisionError("injected bug")
        return real_call(self, *args)
    if comm.rank == 1:
        monkeypatch.setattr(workflow._ResolventEngine, "__call__", failing)

    expected = {"convergence": ConvergenceError, "bug": ZeroDivisionError}[kind] if comm.rank == 1 else \
        {"convergence": ConvergenceError, "bug": PeerFailure}[kind]
    with pytest.raises(expected) as info:
        workflow.compute_lambda(model, conf.positions, kpts, conf.temperature_k, comm=comm, store=store, **kw)
    # rank 0 hears of rank 1's failure by name and phase; rank 1 raises its own exception
    want = ["rank 1", "resolvent pass", "diverged" if kind == "convergence" else "ZeroDivisionError"] \
        if comm.rank == 0 else ["diverged" if kind == "convergence" else ""]
    assert all(w in str(info.value) for w in want), (comm.rank, str(info.value))
    comm.Barrier()
    # rank 0 owns the Γ tasks 0..5, rank 1 the K=(½,0,0) tasks 6..11 and stored 2 of them
    assert store.finished() == list(range(conf.n_conf)) + [conf.n_conf, conf.n_conf + 1]
    comm.Barrier()

    monkeypatch.undo()
    resumed = workflow.compute_lambda(model, conf.positions, kpts, conf.temperature_k, comm=comm,
                                      store=store, **kw)
    fresh = workflow.compute_lambda(model, conf.positions, kpts, conf.temperature_k, comm=None, **kw)
    assert_reproduced({"lambda_m": resumed.lambda_m, "lambda_m_error": resumed.lambda_m_error},
                      {"lambda_m": fresh.lambda_m, "lambda_m_error": fresh.lambda_m_error})


def test_agree_on_failure_serial_is_transparent():
    """Without a communicator (serial runs) the block's exception passes unchanged."""
    from spia_mpi.parallel.mpi import agree_on_failure, self_comm
    for comm in (None, self_comm()):
        with pytest.raises(ConvergenceError, match="KSP"):
            with agree_on_failure(comm, "x"):
                raise ConvergenceError("KSP")


@pytest.mark.mpi(ranks=2, timeout=60)
def test_agree_on_failure_keeps_the_error_class_on_every_rank():
    """An InputError on rank 1 is an InputError on rank 0 too, so an ``except InputError``
    (as around the Eliashberg solve) takes the same branch on every rank."""
    from spia_mpi.errors import InputError
    from spia_mpi.parallel.mpi import agree_on_failure, raised_on_all_ranks, world
    comm = world()
    try:
        with agree_on_failure(comm, "setup"):
            if comm.rank == 1:
                raise InputError("conf.h5: key 'cell' must be 3×3")
        branch = "none"
    except InputError as exc:
        branch = "input"
        assert raised_on_all_ranks(exc)
        assert "'cell'" in str(exc) and (comm.rank == 1 or "on rank 1 during setup" in str(exc))
        assert exc.exit_code == 2
    assert comm.allgather(branch) == ["input", "input"]


_STUCK_SCRIPT = textwrap.dedent("""
    import sys
    from spia_mpi.parallel.mpi import settle_exit, world
    comm = world()
    guard = comm.Dup()
    if comm.rank == 1:
        # an error nobody agreed on (raised outside agree_on_failure) ...
        code, text = settle_exit(guard, 3, "spia_mpi run: error: only rank 1 knows this")
    else:
        comm.bcast(None, root=1)        # ... while rank 0 waits for rank 1 in a collective
        print("rank 0 got past the collective", flush=True)
    sys.exit(0)
""")


def test_error_unknown_to_the_other_ranks_aborts_instead_of_hanging(tmp_path):
    """The CLI's last line of defence: a rank with an error whose peers are stuck in a
    collective prints its own message once and aborts the job after the grace period."""
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    script = tmp_path / "stuck.py"
    script.write_text(_STUCK_SCRIPT)
    env = mpirun_env()
    env["SPIA_FAILURE_GRACE_S"] = "2"
    proc = subprocess.run([*mpirun_prefix(), "-n", "2", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=90, env=env)
    assert proc.returncode != 0, proc.stderr
    assert proc.stderr.count("only rank 1 knows this") == 1, proc.stderr
    assert "aborting the MPI job" in proc.stderr
    assert "got past" not in proc.stdout


@pytest.mark.mpi(ranks=2, timeout=60)
def test_settle_exit_rank0_prints_the_error_of_rank_1():
    """All ranks arrive: one message (rank 1's, printed by rank 0) and one exit code."""
    from spia_mpi.parallel.mpi import settle_exit, world
    comm = world().Dup()
    code, text = settle_exit(comm, 3 if comm.rank == 1 else 0, "error: KSP" if comm.rank == 1 else None)
    assert code == 3
    assert (text == "error: KSP (on rank 1)") if comm.rank == 0 else text is None
    code, text = settle_exit(comm, 0, None)
    assert (code, text) == (0, None)


def test_checkpoint_write_failure_on_one_rank_keeps_work(tmp_path, spia_cli, small_run):
    """A task file of rank 1 cannot be written (a directory is in its way — as a full disk
    would): the 2-rank run stops with one error naming the file, every task finished by
    either rank is kept, and the rerun reproduces an uninterrupted run to rounding (:func:`assert_reproduced`)."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir(), run.mkdir()
    assert spia_cli(["run", small_run.write(ref)], ranks=2).returncode == 0
    ckpt = run / "res.h5.ckpt"
    blocker = ckpt / "task_0000030.npz"        # K = (½,0,0), configuration 6: a rank-1 task
    (blocker / "x").mkdir(parents=True)
    r = spia_cli(["run", small_run.write(run)], ranks=2, timeout=180)
    assert_one_clean_error(r, "task_0000030.npz", "rank 1", code=1)
    assert_no_finished_output(run / "res.h5")
    done = {int(p.stem.split("_")[1]) for p in ckpt.glob("task_*.npz") if p.is_file()}
    assert set(range(24)) <= done                 # rank 0: every Γ task
    assert set(range(24, 30)) <= done             # rank 1: what it finished before the failure
    (blocker / "x").rmdir(), blocker.rmdir()
    r = spia_cli(["run", small_run.write(run)], ranks=2, timeout=180)
    assert r.returncode == 0, r
    a, _, _ = small_run.read(ref / "res.h5")
    b, _, _ = small_run.read(run / "res.h5")
    assert_reproduced(a, b)


def test_ksp_failing_on_one_rank_only_fails_cleanly_and_resumes(tmp_path, spia_cli, small_run):
    """A real one-rank failure from input: with the KSP capped at 6 iterations the
    K = (½,0,0) resolvents (≈5 iterations, rank 0's units) converge and the Γ ones
    (≈8 iterations, rank 1's units) do not. Before the fix rank 0 hung in the Ḡ
    allgather; now: exit 3 (ConvergenceError), one message naming rank 1, no result
    file, rank 0's 24 tasks kept — and without the cap the rerun reuses them and gives
    the uninterrupted result to rounding (:func:`assert_reproduced`)."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    ref.mkdir(), run.mkdir()
    for d in (ref, run):
        p = small_run.write(d, resolvent="petsc")
        p.write_text(p.read_text().replace("kpoints = [[0, 0, 0], [0.5, 0, 0]]",
                                           "kpoints = [[0.5, 0, 0], [0, 0, 0]]"))
    assert spia_cli(["run", ref / "in.toml"], ranks=2).returncode == 0
    capped = run / "capped.toml"
    capped.write_text((run / "in.toml").read_text().replace(
        'resolvent = "petsc"', 'resolvent = "petsc"\nresolvent_options = { ksp_max_it = 6 }'))
    r = spia_cli(["run", capped], ranks=2, timeout=180)
    assert_one_clean_error(r, "on rank 1 during the resolvent pass", "did not converge", code=3)
    assert not (run / "res.h5").exists()
    done = sorted(int(p.stem.split("_")[1]) for p in (run / "res.h5.ckpt").glob("task_*.npz"))
    assert done == list(range(24)), done
    r = spia_cli(["run", run / "in.toml"], ranks=2, timeout=180)
    assert r.returncode == 0, r
    assert "reused 24 finished tasks" in r.stderr, r
    a, _, _ = small_run.read(ref / "res.h5")
    b, _, _ = small_run.read(run / "res.h5")
    assert_reproduced(a, b)


# --------------------------------------------------------------------------
# 2. bad input through the CLI under mpirun -n 2
# --------------------------------------------------------------------------

def _conf_h5(path, change=None):
    """A configurations file for the SMALL input's 2×2×2 Holstein supercell, optionally altered."""
    from spia_mpi.ions.configurations import write_h5
    _, conf = _holstein_conf(n_conf=6, n_beads=8)
    write_h5(conf, path)
    if change is not None:
        import h5py
        with h5py.File(path, "r+") as f:
            change(f)
    return path


def _set(name, value):
    def change(f):
        del f[name]
        f[name] = value
    return change


def _nan_position(f):
    pos = f["configurations/positions"][...]
    pos[4, 3, 7, 1] = np.nan
    del f["configurations/positions"]
    f["configurations/positions"] = pos


def _not_spia(f):
    for k in list(f.attrs):
        del f.attrs[k]


def _unfinished(f):
    f.attrs["complete"] = False


def _drop_masses(f):
    del f["configurations/masses"]


@pytest.mark.parametrize("change,needles", [
    (_set("configurations/numbers", np.array([1] * 7 + [0], np.int32)),
     ["conf.h5", "/configurations/numbers", "not an atomic number"]),
    (_set("configurations/numbers", np.array([3] * 8, np.int32)),
     ["conf.h5", "species (Li8) differ", "supercell's (H8)"]),
    (_set("configurations/cell", np.eye(3) * 3.0), ["conf.h5", "cell", "differs from the model supercell"]),
    (_nan_position, ["conf.h5", "non-finite position", "configuration 4, bead 3, atom 7"]),
    (_not_spia, ["conf.h5", "not a spia_mpi HDF5 file"]),
    (_unfinished, ["conf.h5", "did not finish"]),
    (_drop_masses, ["conf.h5", "/configurations/masses"]),
], ids=["unknown-species", "other-species", "wrong-cell", "nan-position", "foreign-hdf5", "unfinished",
        "missing-dataset"])
def test_bad_configurations_file(tmp_path, spia_cli, change, needles, small_run):
    _conf_h5(tmp_path / "conf.h5", change)
    p = small_run.write(tmp_path, extra="")
    p.write_text(p.read_text().replace("[spia]", "[configurations]\nsource = 'file'\nfile = 'conf.h5'\n[spia]"))
    r = spia_cli(["run", p], ranks=2, timeout=120)
    assert_one_clean_error(r, *needles, code=2)
    assert_no_finished_output(tmp_path / "res.h5")
    assert not (tmp_path / "res.h5").exists()


def test_good_configurations_file_runs(tmp_path, spia_cli, small_run):
    """The unaltered file of the cases above is accepted (so they fail for their defect only)."""
    _conf_h5(tmp_path / "conf.h5")
    p = small_run.write(tmp_path)
    p.write_text(p.read_text().replace("[spia]", "[configurations]\nsource = 'file'\nfile = 'conf.h5'\n[spia]"))
    r = spia_cli(["run", p], ranks=2, timeout=180)
    assert r.returncode == 0, r
    small_run.read(tmp_path / "res.h5")


def _ipi_files(folder, n_beads=4, n_frames=3):
    from spia_mpi.ions.configurations import write_ipi_xyz
    _, conf = _holstein_conf(n_conf=n_frames, n_beads=n_beads)
    return [Path(p) for p in write_ipi_xyz(conf, folder / "sim")]


def _cut_mid_line(files):
    text = files[2].read_text()
    files[2].write_text(text[: text.rindex("\n", 0, len(text) - 1) + 9])      # kill during a write


def _cut_frame(files):
    lines = files[1].read_text().splitlines(keepends=True)
    files[1].write_text("".join(lines[:-3]))


def _unknown_symbol(files):
    for f in files:
        f.write_text(f.read_text().replace("\nH ", "\nXx "))


def _dummy_symbol(files):
    for f in files:
        f.write_text(f.read_text().replace("\nH ", "\nX "))


def _nan(files):
    lines = files[3].read_text().splitlines(keepends=True)
    parts = lines[5].split()
    lines[5] = f"{parts[0]} nan {parts[2]} {parts[3]}\n"
    files[3].write_text("".join(lines))


def _short_bead(files):
    lines = files[2].read_text().splitlines(keepends=True)
    files[2].write_text("".join(lines[: 2 * (len(lines) // 3)]))      # one whole frame fewer


def _missing_bead(files):
    files[2].unlink()


@pytest.mark.parametrize("damage,needles", [
    (_cut_mid_line, ["sim.pos_2.xyz", "line"]),
    (_cut_frame, ["sim.pos_1.xyz", "frame 2", "truncated"]),
    (_unknown_symbol, ["sim.pos_0.xyz", "Xx"]),
    (_dummy_symbol, ["sim.pos_0.xyz", "'X'"]),
    (_nan, ["sim.pos_3.xyz", "non-finite position in frame 0, atom 3"]),
    (_short_bead, ["sim.pos_2.xyz: 2", "different lengths"]),
    (_missing_bead, ["bead 2", "missing"]),
], ids=["cut-mid-line", "cut-frame", "unknown-symbol", "dummy-symbol", "nan", "short-bead", "missing-bead"])
def test_bad_ipi_trajectories(tmp_path, spia_cli, damage, needles):
    files = _ipi_files(tmp_path)
    damage(files)
    out = tmp_path / "conf.h5"
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", "300",
                  "--time-step", "1", "--out", out], ranks=2, timeout=120)
    assert_one_clean_error(r, *needles, code=2)
    assert "aborting the MPI job" not in r.stderr, r        # every rank learnt the error: no grace wait
    assert not out.exists()


def test_ipi_conversion_under_mpirun_writes_once(tmp_path, spia_cli):
    """The undamaged trajectories convert (one rank does it, one summary line) and run."""
    _ipi_files(tmp_path)
    out = tmp_path / "conf.h5"
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", "300",
                  "--time-step", "1", "--out", out], ranks=2, timeout=120)
    assert r.returncode == 0, r
    assert r.stdout.count("configurations ×") == 1, r
    from spia_mpi.ions.configurations import read_h5
    c = read_h5(out)
    assert (c.n_conf, c.n_beads, c.n_atoms) == (3, 4, 8)


def test_output_folder_not_writable(tmp_path, spia_cli, small_run):
    """A folder that refuses writes for real (root ignores permission bits, so this is
    tested by creating a file, not with os.access)."""
    ro = _unwritable_folder(tmp_path)
    out = ro / "res.h5"
    r = spia_cli(["run", small_run.write(tmp_path, out=str(out))], ranks=2, timeout=120)
    assert_one_clean_error(r, "output.file", str(ro), "not writable", code=2)
    assert not out.exists()


def test_output_folder_is_a_file(tmp_path, spia_cli, small_run):
    (tmp_path / "results").write_text("not a folder")
    r = spia_cli(["run", small_run.write(tmp_path, out="results/res.h5")], ranks=2, timeout=120)
    assert_one_clean_error(r, "output.file", "results", "is a file, not a folder", code=2)


def test_checkpoint_folder_not_writable(tmp_path, spia_cli, small_run):
    ro = _unwritable_folder(tmp_path)
    p = small_run.write(tmp_path, extra=f"checkpoint = '{ro / 'ckpt'}'\n")
    r = spia_cli(["run", p], ranks=2, timeout=120)
    assert_one_clean_error(r, "checkpoint folder", str(ro / "ckpt"), code=2)
    assert_no_finished_output(tmp_path / "res.h5")


def test_sample_output_not_writable(tmp_path, spia_cli):
    ro = _unwritable_folder(tmp_path)
    _ipi_files(tmp_path)
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", "300",
                  "--time-step", "1", "--out", ro / "conf.h5"], ranks=2, timeout=120)
    assert_one_clean_error(r, str(ro), "not writable", code=2)


# --------------------------------------------------------------------------
# 3. faults in the checkpoint
# --------------------------------------------------------------------------

def test_corrupt_checkpoint_tasks_are_recomputed(tmp_path, spia_cli, small_run):
    """Three finished task files damaged three ways (truncated, one flipped byte, zero
    bytes): the rerun reports each, recomputes it, and reproduces the first run to rounding
    (:func:`assert_reproduced`)."""
    p = small_run.write(tmp_path)
    assert spia_cli(["run", p], ranks=2).returncode == 0
    first, _, _ = small_run.read(tmp_path / "res.h5")
    (tmp_path / "res.h5").unlink()
    ckpt = tmp_path / "res.h5.ckpt"
    t3, t17, t40 = (ckpt / f"task_{i:07d}.npz" for i in (3, 17, 40))
    data = t3.read_bytes()
    t3.write_bytes(data[: len(data) // 2])
    data = bytearray(t17.read_bytes())
    data[len(data) // 2] ^= 0x40                   # inside the stored g array
    t17.write_bytes(bytes(data))
    t40.write_bytes(b"")
    r = spia_cli(["run", p], ranks=2)
    assert r.returncode == 0, r
    # rank 0 reports the damage found by both ranks (task 40 belongs to rank 1)
    assert "checkpoint: 3 damaged task file(s) recomputed (tasks 3, 17, 40)" in r.stderr, r
    assert "reused 45 finished tasks" in r.stderr, r
    second, _, _ = small_run.read(tmp_path / "res.h5")
    assert_reproduced(first, second)
