"""The installed stack is the one the code needs; the launcher works for real."""
import json

import numpy as np
import pytest

from spia_mpi import backend, units
from spia_mpi.parallel import partition


def test_petsc_is_complex():
    PETSc = backend.petsc()
    assert np.issubdtype(PETSc.ScalarType, np.complexfloating)


def test_h5py_has_mpi():
    assert backend.h5py(need_mpi=True).get_config().mpi


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
    from spia_mpi.parallel import self_comm
    monkeypatch.setitem(sys.modules, "ipi", None)
    assert check_stack.ipi_status() == (False, "missing — needed only for `sample pimd`")
    assert check_stack.run(argparse.Namespace(json=True), self_comm()) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ipi"] == "missing — needed only for `sample pimd`"
    assert info["petsc_scalar"] == "complex128"
    assert check_stack.run(argparse.Namespace(json=False), self_comm()) == 0
    out = capsys.readouterr().out
    assert "missing — needed only for `sample pimd`" in out and "stack OK" in out
