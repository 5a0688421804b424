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

# One BLAS/OpenMP thread per process (or $SPIA_THREADS), as `python -m spia_mpi` gives its ranks, by the
# same function (spia_mpi.parallel.threads): set before numpy loads, so it holds for the in-process tests and is inherited
# by every mpirun the tests start. With the default (one thread per core) the OpenMP threads of
# GPAW's extension, once a GPAW test has run, and OpenBLAS's threads oversubscribe the cores for the
# rest of the session: test_reduction_grid_model after a GPAW test took 41 s instead of 11 s.
from spia_mpi.parallel.threads import default_threads  # imports no numpy

default_threads()

import pytest

from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix

os.environ.update({k: v for k, v in mpirun_env({}).items()})
# OpenMPI's mpirun waits odls_base_sigkill_timeout (1 s) before it reaps a job in which a rank
# exited non-zero, even when every rank has already exited: ≈ 1 s more per failing 2-rank run,
# and the suite checks many expected failures. The grace only delays the SIGKILL that follows
# mpirun's SIGTERM, which no test relies on (kill tests signal the ranks or the group directly).
os.environ.setdefault("OMPI_MCA_odls_base_sigkill_timeout", "0")
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


# ---------------------------------------------------------------------------
# The small Holstein run inputs shared by test_run, test_faults, test_tc_cli, test_cli, test_scan,
# test_jobscripts
# ---------------------------------------------------------------------------

SMALL_RUN_TOML = """
[model.holstein]
coupling_ev_per_ang = 4.0
[supercell]
matrix = [2, 2, 2]
kpoints = [[0, 0, 0], [0.5, 0, 0]]
[configurations.einstein]
n_samples = 24
n_beads = 8
seed = 3
[spia]
gamma_ev = [0.5]
n_blocks = 6
resolvent = "{resolvent}"
[eliashberg]
mustar = [0.1]
[output]
file = "{out}"
plots = false
"""


#: the tiny Holstein input (2×2×2, 8 configurations × 4 beads, no [model] or [output] table) of the
#: CLI, scan and job-script tests; they append the tables they need
TINY_RUN_TOML = """
[supercell]
matrix = [2, 2, 2]
[configurations.einstein]
n_samples = 8
n_beads = 4
[spia]
gamma_ev = [0.5]
n_blocks = 4
[eliashberg]
mustar = [0.1]
"""


class SmallRun:
    """The small run input: ``toml`` (with ``{out}`` and ``{resolvent}`` fields), ``write`` it into a
    folder, ``read`` a finished results file's main datasets, resolved input and provenance;
    ``tiny``: the tiny input (:data:`TINY_RUN_TOML`)."""

    toml = SMALL_RUN_TOML
    tiny = TINY_RUN_TOML

    @staticmethod
    def write(folder, out="res.h5", resolvent="dense", extra=""):
        p = Path(folder) / "in.toml"
        p.write_text(SMALL_RUN_TOML.format(out=out, resolvent=resolvent) + extra)
        return p

    @staticmethod
    def read(path):
        import json

        import h5py
        with h5py.File(path, "r") as f:
            assert f.attrs["complete"]
            return {k: f[k][...] for k in ("lambda/lambda_m", "lambda/lambda_m_error", "eliashberg/tc_K",
                                            "lambda_q/lambda_qm")}, json.loads(f["input"].attrs["json"]), \
                dict(f["provenance"].attrs)


@pytest.fixture(scope="session")
def small_run():
    return SmallRun


def pytest_collection_modifyitems(config, items):
    """Tests marked ``reduction`` (the GPAW reduction oracle, many minutes) run only when asked for
    with ``-m reduction`` (any -m expression naming it): deselected otherwise, also by ``make test``."""
    if "reduction" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("reduction") is None]
    if len(chosen) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("reduction")])
        items[:] = chosen
