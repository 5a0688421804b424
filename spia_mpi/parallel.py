"""The one home of MPI in spia_mpi.

Kernels never touch ``COMM_WORLD``: they receive a communicator. This module
provides the pieces every parallel layer needs:

* :func:`world` / :func:`self_comm` — the only places that name MPI's globals;
* :func:`partition` — balanced contiguous blocks (works when n % size != 0 and
  when some ranks get nothing);
* :func:`on_root` — run input validation once on rank 0 and give every rank the
  same result *or the same exception* (so all ranks fail together, no hang);
* :func:`agree_on_failure` — turn an exception raised on some ranks into the same
  exception on every rank, at a point all ranks reach;
* :class:`RankLayout` — split ranks into configuration groups × ranks per group;
* :func:`mpirun_prefix` — the launcher command with the flags this machine needs.
"""
from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass

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
    """
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
        raise error
    return result


@contextmanager
def agree_on_failure(comm):
    """Make a failure inside the block a failure on every rank.

    All ranks must reach the end of the block (no collective may be inside it
    that a failing rank would skip). If any rank raised, every rank raises: the
    failing ranks re-raise their own exception, the others a :class:`SpiaError`
    naming the first failing rank and its message.
    """
    error = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised below on every rank
        error = exc
    reports = comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    failed = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
    if error is not None:
        raise error
    if failed:
        rank, msg = failed[0]
        raise SpiaError(f"rank {rank} failed: {msg}")


@dataclass(frozen=True)
class RankLayout:
    """Ranks split into ``n_groups`` groups (e.g. one per configuration batch).

    ``group_comm`` holds the ranks of one group (they share one distributed
    PETSc problem); ``cross_comm`` holds the ranks with the same position in
    every group (used to reduce results across groups).
    """

    comm: object
    n_groups: int
    group: int
    group_comm: object
    cross_comm: object

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
        cross_comm = comm.Split(color=comm.rank % per_group, key=comm.rank)
        return cls(comm, n_groups, group, group_comm, cross_comm)


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
    print("usage: python -m spia_mpi.parallel --mpirun-prefix", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
