"""Output paths of the commands: an existing file is never replaced unless the user asks."""
from __future__ import annotations

from pathlib import Path

from spia_mpi.errors import InputError


def refuse_overwrite(path, force: bool, option: str = "--out"):
    """InputError naming ``option`` if ``path`` exists and ``force`` is not set."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{option} {path} exists: give another name or --force to replace it")


def check_new_output(path, force: bool, option: str = "--out"):
    """:func:`refuse_overwrite`, then InputError unless ``path``'s folder is writable."""
    from spia_mpi.io.hdf5 import check_writable
    refuse_overwrite(path, force, option)
    problem = check_writable(path)
    if problem:
        raise InputError(f"{option}: {problem}")
