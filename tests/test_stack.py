"""The installed stack is the one the code needs; the launcher works for real."""
import json

import numpy as np
import pytest

from spia_mpi.parallel import stack
from spia_mpi import units
from spia_mpi.parallel.mpi import partition


def test_petsc_is_complex():
    PETSc = stack.petsc()
    assert np.issubdtype(PETSc.ScalarType, np.complexfloating)


def test_h5py_has_mpi():
    assert stack.h5py(need_mpi=True).get_config().mpi


def test_units_are_codata_2018():
    assert units.KB_EV_PER_K == pytest.approx(8.617333262e-5, rel=1e-12)
    assert units.HBAR_EV_S == pytest.approx(6.582119569e-16, rel=1e-9)


@pytest.mark.parametrize("n,size", [(0, 3), (7, 3), (8, 2), (2, 5), (100, 7)])
def test_partition_covers_range_once(n, size):
    parts = [partition(n, size, r) for r in range(size)]
    flat = [i for p in parts for i in p]
    assert flat == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_cli_help_and_version(spia_cli):
    res = spia_cli(["--help"])
    assert res.returncode == 0, res
    assert "check-stack" in res.stdout
    res = spia_cli(["--version"])
    assert res.returncode == 0 and "spia_mpi" in res.stdout, res


def test_check_stack_under_mpirun_two_ranks(spia_cli):
    res = spia_cli(["check-stack", "--json"], ranks=2)
    assert res.returncode == 0, res
    info = json.loads(res.stdout)          # only rank 0 printed: one JSON object
    assert info["petsc_scalar"] == "complex128"
    assert info["h5py_mpi"] == "True"
    # i-PI is optional: its version when installed (from the package metadata, not from ipi
    # itself), otherwise the documented "missing" message — never a failure
    import importlib.metadata
    try:
        want = importlib.metadata.version("ipi")
    except importlib.metadata.PackageNotFoundError:
        want = "missing — needed only for `sample pimd`"
    assert info["ipi"] == want, info


def test_check_stack_reports_missing_ipi_without_failing(monkeypatch, capsys):
    """With i-PI made unimportable (sys.modules['ipi'] = None), check-stack still succeeds and
    says i-PI is missing and only needed for `sample pimd` (JSON and text)."""
    import argparse
    import sys

    from spia_mpi.commands import check_stack
    from spia_mpi.parallel.mpi import self_comm
    monkeypatch.setitem(sys.modules, "ipi", None)
    assert check_stack.ipi_status() == (False, "missing — needed only for `sample pimd`")
    assert check_stack.run(argparse.Namespace(json=True), self_comm()) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ipi"] == "missing — needed only for `sample pimd`"
    assert info["petsc_scalar"] == "complex128"
    assert check_stack.run(argparse.Namespace(json=False), self_comm()) == 0
    out = capsys.readouterr().out
    assert "missing — needed only for `sample pimd`" in out and "stack OK" in out


def _python(code, env_extra=None, drop=()):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in drop and not k.startswith(("OMPI_COMM_WORLD", "PMIX_"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_real_scalar_petsc_is_refused_clearly(tmp_path):
    """A petsc4py built with real scalars first on the path (here a stand-in package whose
    PETSc.ScalarType is float64) is refused with a message saying what is wrong and how to fix it."""
    pkg = tmp_path / "petsc4py"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("def init(*a, **k):\n    pass\n"
                                     "def get_config():\n    return {'PETSC_DIR': '/fake/real-build'}\n")
    (pkg / "PETSc.py").write_text("import numpy\nScalarType = numpy.float64\n")
    r = _python("import sys; sys.modules['slepc4py'] = None\n"
                "from spia_mpi.parallel import stack\n"
                "try:\n    stack.petsc()\nexcept stack.StackError as e:\n    print('REFUSED', e)\n",
                {"PYTHONPATH": str(tmp_path)})
    assert "REFUSED" in r.stdout, r
    assert "real scalars" in r.stdout and "/fake/real-build" in r.stdout and "complex" in r.stdout, r.stdout


def test_serial_h5py_refused_for_parallel_writes():
    """Debian's h5py imported outside mpirun without H5PY_ALWAYS_USE_MPI is the serial build:
    asking for a parallel file then fails with a clear StackError naming the fix."""
    r = _python("import h5py\nfrom spia_mpi.parallel import stack\n"
                "assert not h5py.get_config().mpi\n"
                "try:\n    stack.h5py(need_mpi=True)\nexcept stack.StackError as e:\n    print('REFUSED', e)\n",
                drop=("H5PY_ALWAYS_USE_MPI",))
    assert "REFUSED" in r.stdout and "not built with MPI" in r.stdout and "python3-h5py-mpi" in r.stdout, r
