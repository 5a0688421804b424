"""Shared test fixtures.

* ``spia_cli``: run ``python -m spia_mpi ...`` in a fresh process, optionally
  under ``mpirun -n N`` — the real launcher, as users run it.
* MPI unit tests use ``@pytest.mark.mpi(ranks=2)`` (pytest-isolate-mpi runs each
  in its own ``mpirun``); the environment below lets OpenMPI run as root and
  oversubscribe the two cores of a CI machine.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix

os.environ.update({k: v for k, v in mpirun_env({}).items()})
os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")

REPO = Path(__file__).resolve().parents[1]


class CliResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def __repr__(self):
        return f"<exit {self.returncode}>\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_cli(args, ranks: int = 1, timeout: float = 300, cwd=None, env_extra=None) -> CliResult:
    """Run ``python -m spia_mpi ARGS`` (under ``mpirun -n ranks`` if ranks > 1)."""
    cmd = [sys.executable, "-m", "spia_mpi", *map(str, args)]
    if ranks > 1:
        cmd = [*mpirun_prefix(), "-n", str(ranks), *cmd]
    env = mpirun_env()
    if env_extra:
        env.update(env_extra)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or REPO, env=env)
    return CliResult(proc)


@pytest.fixture
def spia_cli():
    return run_cli
