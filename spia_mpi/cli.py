"""Command-line interface: ``python -m spia_mpi <command> [options]``.

Subcommands live in :mod:`spia_mpi.commands`, one module each, discovered at
start-up. A command module defines::

    NAME = "tc"                       # the subcommand
    HELP = "one line for --help"
    ORDER = 10                        # position in --help (small first)
    def add_arguments(parser): ...    # argparse options
    def run(args, comm) -> int: ...   # the work; comm is MPI.COMM_WORLD

Error policy (the same for every command): a :class:`~spia_mpi.errors.SpiaError`
is an expected failure — ``spia_mpi <command>: error: <message>`` is printed once
and every rank exits with the error's code. Commands raise it on all ranks
(:func:`spia_mpi.parallel.mpi.on_root` for validation, :func:`~spia_mpi.parallel.mpi.agree_on_failure`
around per-rank compute phases); every rank then ends in
:func:`~spia_mpi.parallel.mpi.settle_exit`, which exchanges the outcomes so rank 0
prints the one message (also when only another rank has it). A rank whose error
its peers never learn (they wait for it in a collective) prints its own message
and aborts the job after a grace period (``$SPIA_FAILURE_GRACE_S``, 30 s). Any
other exception is a bug: the rank that hit it prints its traceback and the whole
MPI job is aborted at once. SIGTERM and Ctrl-C abort the job too. So an
allocation never hangs, and finished checkpoint tasks are kept in every case.

Commands with ``NEEDS_MPI = False`` started under ``mpirun -n N`` run on rank 0
only (the other ranks wait for its outcome), so they print and write once.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import traceback

from spia_mpi import __version__
from spia_mpi.errors import SpiaError

logger = logging.getLogger("spia_mpi")


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (scheduler time limit, scancel, kill)."""


def _command_modules():
    import spia_mpi.commands as pkg
    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"spia_mpi.commands.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="python -m spia_mpi",
        description=("spia_mpi: electron–ion coupling λ(m) and superconducting T_c from "
                     "path-integral configurations (stochastic path-integral approach). "
                     "Run under `mpirun -n N` for parallel execution."),
        epilog="Units: eV, Å, amu, K. `python -m spia_mpi COMMAND --help` for details.")
    parser.add_argument("--version", action="version", version=f"spia_mpi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output on rank 0")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    # the same two flags after the subcommand (`spia_mpi run -q in.toml`); SUPPRESS keeps the
    # value given before it when they are absent here
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug output on rank 0")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only warnings and errors")
    parser.add_argument("--debug-log", metavar="PATTERN",
                        help="also write a DEBUG log per rank, e.g. 'debug.{rank}.log'")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registry = {}
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
        mod.add_arguments(p)
        registry[mod.NAME] = mod
    return parser, registry


def main(argv=None) -> int:
    parser, registry = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    mod = registry[args.command]
    from spia_mpi.parallel.mpi import running_under_mpirun, self_comm, settle_exit, world
    needs_mpi = getattr(mod, "NEEDS_MPI", True)
    wcomm = world() if needs_mpi or running_under_mpirun() else None
    comm = wcomm if needs_mpi else self_comm()
    root_only = not needs_mpi and wcomm is not None and wcomm.size > 1
    from spia_mpi.io.log import setup_logging
    level = "DEBUG" if args.verbose else ("WARNING" if args.quiet else "INFO")
    setup_logging(wcomm if root_only else comm, level, args.debug_log)
    # the end-of-run agreement gets its own communicator: it must never match a
    # collective that another rank is still blocked in
    guard = wcomm.Dup() if wcomm is not None and wcomm.size > 1 else None
    import signal

    def _terminated(signum, frame):
        raise Terminated(signum)
    signal.signal(signal.SIGTERM, _terminated)
    code, message = 0, None
    try:
        if not (root_only and wcomm.rank != 0):
            code = int(mod.run(args, comm) or 0)
    except Terminated as exc:
        if guard is None or guard.rank == 0:
            print(f"spia_mpi {args.command}: terminated by signal {exc.args[0]}; finished work is kept "
                  "in the checkpoint: rerun the same command to resume", file=sys.stderr)
            sys.stderr.flush()
        if guard is not None:
            guard.Abort(128 + exc.args[0])
        return 128 + exc.args[0]
    except SpiaError as exc:
        code, message = exc.exit_code, f"spia_mpi {args.command}: error: {exc}"
    except KeyboardInterrupt:
        if guard is not None:
            guard.Abort(130)
        return 130
    except Exception:  # noqa: BLE001 - a bug: show it once and stop every rank
        rank = wcomm.rank if wcomm is not None else 0
        sys.stderr.write(f"spia_mpi {args.command}: internal error on rank {rank}:\n")
        traceback.print_exc()
        sys.stderr.flush()
        if guard is not None:
            guard.Abort(70)
        return 70
    if guard is None:
        if message is not None:
            print(message, file=sys.stderr)
            sys.stderr.flush()
        return code
    try:
        code, text = settle_exit(guard, code, message)
    except (Terminated, KeyboardInterrupt):
        guard.Abort(143)
    if text is not None:
        print(text, file=sys.stderr)
        sys.stderr.flush()
    guard.Free()
    return code


if __name__ == "__main__":
    sys.exit(main())
