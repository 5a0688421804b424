"""Import PETSc/SLEPc (complex scalars) and h5py (MPI build) with clear checks.

Every module that needs PETSc calls :func:`petsc` (or :func:`slepc`) instead of
importing petsc4py itself, so the stack check runs at the first import and
fails with instructions rather than with wrong numbers:

* PETSc must be built with complex scalars (resolvents are complex);
* h5py must be built with MPI when more than one rank writes a file.
"""
from __future__ import annotations

import os
import sys

from spia_mpi.errors import StackError

_FIX = ("Install the complex builds (Debian: python3-petsc4py-complex "
        "python3-slepc4py-complex, selected by `make env`; conda-forge: "
        "petsc=*=*complex* slepc=*=*complex* petsc4py slepc4py; see docs/install.md).")

_petsc = None
_slepc = None
# Python (the CLI) handles SIGTERM/SIGINT itself: a killed job must stop at once and
# leave its checkpoint consistent, not run PETSc's handler.
_PETSC_INIT_OPTIONS = ["-no_signal_handler"]


def slepc():
    """Return the ``slepc4py.SLEPc`` module (initialised once, complex checked)."""
    global _slepc
    if _slepc is None:
        try:
            import slepc4py
            slepc4py.init(sys.argv[:1] + _PETSC_INIT_OPTIONS)
            from slepc4py import SLEPc
        except ImportError as exc:
            raise StackError(f"slepc4py is not importable ({exc}). {_FIX}") from exc
        petsc()
        _slepc = SLEPc
    return _slepc


def petsc():
    """Return the ``petsc4py.PETSc`` module, checking that scalars are complex."""
    global _petsc
    if _petsc is None:
        try:
            import petsc4py
            if "slepc4py" not in sys.modules:
                try:
                    import slepc4py
                    slepc4py.init(sys.argv[:1] + _PETSC_INIT_OPTIONS)
                except ImportError:
                    petsc4py.init(sys.argv[:1] + _PETSC_INIT_OPTIONS)
            from petsc4py import PETSc
        except ImportError as exc:
            raise StackError(f"petsc4py is not importable ({exc}). {_FIX}") from exc
        import numpy as np
        if not np.issubdtype(PETSc.ScalarType, np.complexfloating):
            raise StackError(
                f"PETSc at {_petsc_dir(PETSc)} uses real scalars ({PETSc.ScalarType.__name__}); "
                f"spia_mpi needs complex scalars. {_FIX}")
        _petsc = PETSc
    return _petsc


def _petsc_dir(PETSc) -> str:
    try:
        import petsc4py
        return petsc4py.get_config().get("PETSC_DIR", "?")
    except Exception:  # noqa: BLE001 - only for the message
        return os.environ.get("PETSC_DIR", "?")


def h5py(need_mpi: bool = False):
    """Return h5py; with ``need_mpi`` check that it is the MPI build.

    Debian's h5py loads its MPI variant only under mpirun or with
    ``H5PY_ALWAYS_USE_MPI=1``; we set that variable before the first import so a
    serial run gets the same (MPI-capable) build.
    """
    if "h5py" not in sys.modules:
        os.environ.setdefault("H5PY_ALWAYS_USE_MPI", "1")
    try:
        import h5py as _h5py
    except ImportError as exc:
        raise StackError(f"h5py is not importable ({exc}); install h5py built with MPI "
                         "(Debian: python3-h5py-mpi).") from exc
    if need_mpi and not _h5py.get_config().mpi:
        raise StackError(
            f"h5py {_h5py.__version__} at {os.path.dirname(_h5py.__file__)} is not built with MPI, "
            "but more than one rank writes this file. Install an MPI build "
            "(Debian: python3-h5py-mpi; conda-forge: h5py=*=mpi_openmpi*) or run on one rank.")
    return _h5py


def versions() -> dict:
    """Versions of the numerical stack, for provenance (strings; '-' if absent)."""
    out = {}
    import numpy
    out["numpy"] = numpy.__version__
    for name in ("scipy", "ase", "mpi4py", "spglib"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "-"
    try:
        P = petsc()
        out["petsc"] = ".".join(map(str, P.Sys.getVersion()))
        out["petsc_scalar"] = P.ScalarType.__name__
    except Exception:  # noqa: BLE001
        out["petsc"] = "-"
    try:
        S = slepc()
        out["slepc"] = ".".join(map(str, S.Sys.getVersion()))
    except Exception:  # noqa: BLE001
        out["slepc"] = "-"
    try:
        h = h5py()
        out["h5py"] = h.__version__
        out["hdf5"] = h.version.hdf5_version
        out["h5py_mpi"] = str(bool(h.get_config().mpi))
    except Exception:  # noqa: BLE001
        out["h5py"] = "-"
    try:
        from mpi4py import MPI
        out["mpi"] = MPI.Get_library_version().replace("\x00", "").splitlines()[0].strip()
    except Exception:  # noqa: BLE001
        out["mpi"] = "-"
    out["python"] = sys.version.split()[0]
    return out
