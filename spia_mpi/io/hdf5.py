"""HDF5 input/output shared by all stages.

Conventions for every file spia_mpi writes:

* one group per pipeline stage (``/input``, ``/provenance``, ``/eliashberg``, …);
* every dataset carries ``attrs['units']`` (``'1'`` for dimensionless);
* the root group has ``attrs['spia_mpi_file']`` (the file kind) and
  ``attrs['complete']`` — set last, after everything else was written and the
  file was atomically renamed into place, so a killed run never leaves a file
  that looks finished;
* with more than one rank the file is opened with the ``mpio`` driver (all
  ranks take part in every metadata operation); with one rank, plain h5py.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from spia_mpi import __version__
from spia_mpi.parallel import stack
from spia_mpi.errors import InputError


def open_h5(path, mode: str, comm=None):
    """Open ``path`` with h5py, collectively with ``mpio`` when ``comm.size > 1``."""
    parallel = comm is not None and comm.size > 1
    h5py = stack.h5py(need_mpi=parallel)
    if parallel:
        return h5py.File(path, mode, driver="mpio", comm=comm)
    return h5py.File(path, mode)


@contextmanager
def atomic_h5(path, comm=None, kind: str = "results"):
    """Write an HDF5 file atomically: a temporary name, then rename + complete flag.

    Yields the open ``h5py.File`` (collective when ``comm.size > 1``). On a
    normal exit the file gets ``attrs['complete'] = True`` and is renamed to
    ``path``; on an exception the temporary file is removed and ``path`` is
    untouched. Fails early with :class:`InputError` if the folder is not writable.
    """
    path = Path(path)
    rank = comm.rank if comm is not None else 0
    tmp = path.with_name(f".{path.name}.partial")
    error = None
    if rank == 0:
        error = check_writable(path)
    if comm is not None and comm.size > 1:
        error = comm.bcast(error, root=0)
    if error:
        raise InputError(error)
    f = open_h5(tmp, "w", comm)
    try:
        f.attrs["spia_mpi_file"] = kind
        f.attrs["complete"] = False
        yield f
        f.attrs["complete"] = True
    except BaseException as exc:
        from spia_mpi.parallel.mpi import raised_on_all_ranks
        if comm is None or comm.size == 1 or raised_on_all_ranks(exc):
            f.close()                      # collective: safe, every rank is here
            if comm is not None and comm.size > 1:
                comm.Barrier()
            if rank == 0 and tmp.exists():
                tmp.unlink()
        else:
            # Possibly raised on this rank only (SIGTERM, a bug, a full disk): the others
            # may be blocked in a collective HDF5 call, so no collective clean-up here
            # (it would hang); the CLI aborts the job. The partial temporary file is
            # unlinked (no collective needed); it never appears under the final name.
            _unlink_quietly(tmp)
        raise
    f.close()
    if comm is not None and comm.size > 1:
        comm.Barrier()
    if rank == 0:
        os.replace(tmp, path)
    if comm is not None and comm.size > 1:
        comm.Barrier()


def check_writable(path) -> str | None:
    """Why ``path`` cannot be written (a message naming it), or None if it can.

    Tries for real: creates and removes a probe file next to ``path``
    (``os.access`` says yes to root even on a read-only file system or a folder
    that is really a file). Does not create or touch ``path`` itself.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        return f"output folder {folder} does not exist (for output file {path})"
    if not folder.is_dir():
        return f"output folder {folder} is a file, not a folder (for output file {path})"
    if path.exists() and path.is_dir():
        return f"output path {path} is a directory, expected a file name"
    probe = folder / f".{path.name}.{os.getpid()}.probe"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"x")
    except OSError as exc:
        return f"output folder {folder} is not writable (for output file {path}): {exc.strerror or exc}"
    finally:
        _unlink_quietly(probe)
    return None          # an existing file is replaced by rename: the folder is what counts


def _unlink_quietly(p: Path):
    try:
        Path(p).unlink()
    except OSError:
        pass


def open_existing(path, what: str = "results"):
    """Open an existing HDF5 file read-only (serial); a missing or non-HDF5 file is an
    :class:`InputError` naming it (``what`` names the kind of file in the message)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist")
    try:
        return open_h5(path, "r", None)
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc})") from exc


def open_finished(path, kind: str):
    """Open an existing spia_mpi HDF5 file of ``kind`` read-only (serial), with clear errors
    for a missing file, a non-HDF5 file, an unfinished run or a file of another kind."""
    f = open_existing(path, kind)
    try:
        require_complete(f, path, kind)
    except InputError:
        f.close()
        raise
    return f


def require_complete(f, path, kind: str | None = None):
    """Raise :class:`InputError` unless ``f`` is a finished spia_mpi file of ``kind``."""
    found = f.attrs.get("spia_mpi_file")
    if found is None:
        raise InputError(f"{path}: not a spia_mpi HDF5 file (no 'spia_mpi_file' attribute)")
    if kind is not None and _s(found) != kind:
        raise InputError(f"{path}: is a spia_mpi '{_s(found)}' file, expected '{kind}'")
    if not bool(f.attrs.get("complete", False)):
        raise InputError(f"{path}: the run that wrote this file did not finish (complete=False)")


def _s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def write_dataset(group, name: str, data, units: str, description: str = "", **kwargs):
    """Create ``group[name]`` from ``data`` with ``units`` (and a description)."""
    ds = group.create_dataset(name, data=np.asarray(data), **kwargs)
    ds.attrs["units"] = units
    if description:
        ds.attrs["description"] = description
    return ds


def git_hash() -> str:
    """The git commit of the spia_mpi source tree ('unknown' outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def provenance(comm=None, command: str = "", extra: dict | None = None) -> dict:
    """Who/what/where made a result: versions, ranks, host, date, git hash."""
    info = {
        "spia_mpi_version": __version__,
        "git_commit": git_hash(),
        "command": command,
        "mpi_ranks": comm.size if comm is not None else 1,
        "host": platform.node(),
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    info.update({f"version_{k}": v for k, v in stack.versions().items()})
    if extra:
        info.update(extra)
    return info


def write_provenance(f, info: dict, resolved_input: dict | None = None):
    """Store ``info`` as attributes of ``/provenance`` and the input as ``/input``.

    The resolved input (every parameter after defaults were applied) is stored
    as a JSON string attribute ``/input.attrs['json']`` plus one attribute per
    top-level scalar, so both humans (h5dump) and programs can read it.
    """
    g = f.require_group("provenance")
    for k, v in info.items():
        g.attrs[k] = v if isinstance(v, (int, float)) else str(v).replace("\x00", "")
    if resolved_input is not None:
        gi = f.require_group("input")
        gi.attrs["json"] = json.dumps(resolved_input, default=_json_default, sort_keys=True)
        for k, v in resolved_input.items():
            if isinstance(v, (int, float, str, bool)):
                gi.attrs[k] = v


def _json_default(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
