"""The one home of MPI in spia_mpi.

Kernels never touch ``COMM_WORLD``: they receive a communicator. This module
provides the pieces every parallel layer needs:

* :func:`world` / :func:`self_comm` — the only places that name MPI's globals;
* :func:`partition` — balanced contiguous blocks (works when n % size != 0 and
  when some ranks get nothing);
* :func:`on_root` — run input validation once on rank 0 and give every rank the
  same result *or the same exception* (so all ranks fail together, no hang); also
  how a configuration group's leader reads and writes the checkpoint for its group;
* :func:`allgather_dict` — every rank gets the union of the ranks' keyed pieces;
  :func:`gather_dict` — only rank 0 does (results that only rank 0 writes);
* :func:`chain_sum` — an ordered sum of arrays passed along a chain of ranks (the
  same additions in the same order for any layout: bit-identical totals);
* :func:`agree_on_failure` — turn an exception raised on some ranks into the same
  exception on every rank, at a point all ranks reach;
* :func:`settle_exit` — the last word of a CLI run: every rank learns every rank's
  outcome (one message, one exit code), and a failed rank whose peers never arrive
  (they wait for it in a collective) aborts the job instead of hanging it;
* :class:`RankLayout` — split ranks into configuration groups × ranks per group;
* :func:`mpirun_prefix` — the launcher command with the flags this machine needs.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError, SpiaError


def world():
    """``MPI.COMM_WORLD`` (imports mpi4py; only drivers and the CLI call this)."""
    from mpi4py import MPI
    return MPI.COMM_WORLD


def self_comm():
    """``MPI.COMM_SELF``: the communicator of serial kernels and tests."""
    from mpi4py import MPI
    return MPI.COMM_SELF


def partition(n: int, size: int, rank: int) -> range:
    """Indices of ``range(n)`` owned by ``rank`` of ``size`` (contiguous, balanced).

    The first ``n % size`` ranks get one item more; ranks beyond ``n`` get an
    empty range. The union over ranks is ``range(n)`` in order.
    """
    if n < 0 or size < 1 or not 0 <= rank < size:
        raise ValueError(f"bad partition request n={n} size={size} rank={rank}")
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def on_root(comm, func, *args, **kwargs):
    """Call ``func`` on rank 0 only and broadcast its result to every rank.

    If ``func`` raises, every rank raises an exception of the same type (a
    :class:`SpiaError` subclass keeps its class and message), so validation
    errors surface identically everywhere and no rank is left in a collective.
    With ``comm`` None or of size 1, ``func`` is simply called.
    """
    if comm is None or comm.size == 1:
        return func(*args, **kwargs)
    result, error = None, None
    if comm.rank == 0:
        try:
            result = func(*args, **kwargs)
        except SpiaError as exc:
            error = exc
        except Exception as exc:  # unexpected: re-raised as such on all ranks
            error = exc
    result, error = comm.bcast((result, error), root=0)
    if error is not None:
        _mark_all_ranks(error)
        raise error
    return result


def allgather_dict(local: dict, comm) -> dict:
    """The union of every rank's ``local`` dict on every rank (keys unique to one rank;
    ``comm`` None or of size 1: ``local`` itself)."""
    if comm is None or comm.size == 1:
        return local
    merged = {}
    for part in comm.allgather(local):
        merged.update(part)
    return merged


def gather_dict(local: dict, comm) -> dict:
    """The union of every rank's ``local`` dict on rank 0, an empty dict on the other ranks
    (``comm`` None or of size 1: ``local`` itself)."""
    if comm is None or comm.size == 1:
        return local
    merged = {}
    for part in comm.gather(local, root=0) or []:
        merged.update(part)
    return merged


def chain_sum(comm, chain: list, own: list, tag: int):
    """Ordered sum of (a complex array, b float array, count) triples along ``chain``.

    ``chain``: the ranks holding terms, increasing (the order of the sum); ``own``: this
    rank's terms in order, each (a, b, n) with arrays of the same shapes on every rank.
    Each rank receives the partial sum from its predecessor, adds its own terms and sends
    it on; the last rank sends the total back to the others. Returns the total (a, b, n)
    on every rank of the chain; no other rank of ``comm`` takes part. Messages use tags
    3·tag … 3·tag + 2 (distinct ``tag`` for chains that may overlap in time).
    """
    pos = chain.index(0 if comm is None else comm.rank)
    s1 = np.zeros_like(own[0][0])
    s2 = np.zeros_like(own[0][1])
    count = 0
    if pos > 0:
        comm.Recv(s1, source=chain[pos - 1], tag=3 * tag)
        comm.Recv(s2, source=chain[pos - 1], tag=3 * tag + 1)
        count = comm.recv(source=chain[pos - 1], tag=3 * tag + 2)
    for u1, u2, cnt in own:
        s1 += u1
        s2 += u2
        count += cnt
    if pos < len(chain) - 1:
        comm.Send(s1, dest=chain[pos + 1], tag=3 * tag)
        comm.Send(s2, dest=chain[pos + 1], tag=3 * tag + 1)
        comm.send(count, dest=chain[pos + 1], tag=3 * tag + 2)
        comm.Recv(s1, source=chain[-1], tag=3 * tag)
        comm.Recv(s2, source=chain[-1], tag=3 * tag + 1)
        count = comm.recv(source=chain[-1], tag=3 * tag + 2)
    else:
        for r in chain[:-1]:
            comm.Send(s1, dest=r, tag=3 * tag)
            comm.Send(s2, dest=r, tag=3 * tag + 1)
            comm.send(count, dest=r, tag=3 * tag + 2)
    return s1, s2, count


def raised_on_all_ranks(exc: BaseException) -> bool:
    """True if ``exc`` came out of :func:`on_root` / :func:`agree_on_failure`, i.e. every
    rank of the communicator raises it at the same point (collective clean-up is safe)."""
    return bool(getattr(exc, "spia_all_ranks", False))


def _mark_all_ranks(exc: BaseException):
    try:
        exc.spia_all_ranks = True
    except AttributeError:       # exceptions with __slots__: leave unmarked (treated as local)
        pass


class PeerFailure(SpiaError):
    """Raised on the healthy ranks when another rank hit an unexpected (non-SpiaError)
    exception inside :func:`agree_on_failure`; that rank prints its own traceback."""

    exit_code = 70


@contextmanager
def agree_on_failure(comm, what: str = ""):
    """Make a failure inside the block a failure on every rank.

    All ranks must reach the end of the block (no collective may be inside it
    that a failing rank would skip). If any rank raised an ``Exception``, every
    rank raises: the failing ranks re-raise their own exception, the others an
    exception of the *same* :class:`SpiaError` class (so ``except InputError``
    takes the same branch everywhere) whose message names the first failing rank
    and repeats its message; an unexpected exception (a bug) becomes
    :class:`PeerFailure` on the other ranks. ``what`` names the phase in those
    messages. With ``comm`` None or of size 1 the block runs unchanged.
    ``BaseException`` (SIGTERM → ``Terminated``, KeyboardInterrupt) is not
    caught: the CLI aborts the job for those.
    """
    if comm is None or comm.size == 1:
        yield
        return
    error = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised below on every rank
        error = exc
    report = None
    if error is not None:
        cls = type(error) if isinstance(error, SpiaError) else None
        report = (cls, type(error).__name__, str(error))
    reports = comm.allgather(report)
    failed = [(r, rep) for r, rep in enumerate(reports) if rep is not None]
    if not failed:
        return
    if error is not None:
        _mark_all_ranks(error)
        raise error
    rank, (cls, name, msg) = failed[0]
    where = f" during {what}" if what else ""
    more = f" (and {len(failed) - 1} more rank(s))" if len(failed) > 1 else ""
    if cls is None:
        peer = PeerFailure(f"rank {rank} failed{where}{more} with an unexpected {name}: {msg}")
    else:
        text = f"on rank {rank}{where}{more}: {msg}"
        try:
            peer = cls(text)
        except Exception:  # noqa: BLE001 - a SpiaError subclass with another signature
            peer = SpiaError(text)
            peer.exit_code = getattr(cls, "exit_code", SpiaError.exit_code)
    _mark_all_ranks(peer)
    raise peer


def settle_exit(comm, code: int, message: str | None, grace_s: float | None = None,
                poll_s: float = 0.02) -> tuple[int, str | None]:
    """Agree on how a run ends; returns (exit code, text this rank must print or None).

    Called once by every rank as its last act, on a communicator used for nothing
    else (a ``Dup`` of COMM_WORLD made at start-up, so it cannot be confused with a
    collective some other rank is stuck in). ``code`` is this rank's exit status
    and ``message`` its error text (None on success).

    * Everyone arrives (the normal case, also when all ranks failed together): the
      outcomes are exchanged; rank 0 prints the first error message (its own if it
      has one, else that of the lowest failing rank, naming it), every rank exits
      with the first non-zero code.
    * A failed rank waits at most ``grace_s`` seconds (default ``$SPIA_FAILURE_GRACE_S``
      or 30) for the others: if they do not arrive they are blocked in a collective
      that waits for this rank, so it prints its own message and calls ``Abort``
      — a non-zero exit of the whole job instead of a hang. Healthy ranks wait
      without limit (they are only early).
    Waiting polls a non-blocking barrier with sleeps, so idle ranks do not burn a core.
    """
    if grace_s is None:
        grace_s = float(os.environ.get("SPIA_FAILURE_GRACE_S", "30"))
    failed = code != 0
    req = comm.Ibarrier()
    deadline = time.monotonic() + grace_s
    while not req.Test():
        if failed and time.monotonic() > deadline:
            text = message or f"exit status {code}"
            sys.stderr.write(f"{text}\n(rank {comm.rank} of {comm.size}: the other ranks did not reach "
                             f"the end within {grace_s:g} s; aborting the MPI job)\n")
            sys.stderr.flush()
            comm.Abort(code)
        time.sleep(poll_s)
    outcomes = comm.allgather((int(code), message))
    bad = [(r, c, m) for r, (c, m) in enumerate(outcomes) if c != 0]
    if not bad:
        return 0, None
    final = bad[0][1]
    if comm.rank != 0:
        return final, None
    if outcomes[0][1] is not None:
        return final, outcomes[0][1]
    for r, c, m in bad:
        if m is not None:
            return final, f"{m} (on rank {r})"
    return final, None


@dataclass(frozen=True)
class RankLayout:
    """Ranks split into ``n_groups`` groups (e.g. one per configuration batch).

    ``group_comm`` holds the ranks of one group (they share one distributed
    PETSc problem); the caller frees it. Results across groups are reduced on
    ``comm`` by the group leaders (see ``workflow.ConfigurationGroups``).
    """

    comm: object
    n_groups: int
    group: int
    group_comm: object

    @classmethod
    def split(cls, comm, n_groups: int) -> "RankLayout":
        """Split ``comm`` into ``n_groups`` equal groups of consecutive ranks."""
        if n_groups < 1 or comm.size % n_groups:
            raise InputError(
                f"cannot split {comm.size} MPI ranks into {n_groups} equal groups: "
                f"choose a number of groups that divides {comm.size}")
        per_group = comm.size // n_groups
        group = comm.rank // per_group
        group_comm = comm.Split(color=group, key=comm.rank)
        return cls(comm, n_groups, group, group_comm)


def running_under_mpirun() -> bool:
    """True when this process was started by an MPI launcher."""
    hints = ("OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
    return any(h in os.environ for h in hints)


def mpirun_prefix(launcher: str | None = None) -> list[str]:
    """The MPI launcher with the flags this machine needs, without ``-n``.

    OpenMPI refuses to run as root without ``--allow-run-as-root`` and refuses
    more ranks than cores without ``--oversubscribe``; MPICH needs neither.
    """
    launcher = launcher or os.environ.get("SPIA_MPIRUN") or shutil.which("mpirun") or "mpiexec"
    cmd = [launcher]
    if _is_openmpi(launcher):
        cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    return cmd


def mpirun_env(base: dict | None = None) -> dict:
    """Environment for launching ``mpirun`` from Python (see docs/install.md).

    Starts from the *process start* environment (``os.environ``), which does
    not carry the variables an already-initialised MPI added in-process; an
    ``mpirun`` started with those exits silently.
    """
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_ess"))]:
        env.pop(key)
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def _is_openmpi(launcher: str) -> bool:
    path = shutil.which(launcher) or launcher
    try:
        real = os.path.realpath(path)
    except OSError:
        return False
    return "openmpi" in real or "orterun" in real or os.path.basename(real) == "orterun"


def _main(argv):
    if argv[:1] == ["--mpirun-prefix"]:
        print(" ".join(mpirun_prefix()))
        return 0
    print("usage: python -m spia_mpi.parallel.mpi --mpirun-prefix", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
