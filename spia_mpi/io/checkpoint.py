"""Crash-safe, rank-count-independent storage of finished work units.

A long SPIA run is a list of independent *tasks* (one configuration × one
supercell wavevector: the projected resolvents of all its beads). Each finished
task is stored as one small ``.npz`` file in a checkpoint folder, written to a
temporary name and renamed into place, with a SHA-256 of its arrays inside:

* a killed run (SIGTERM, SIGKILL, node failure) loses at most the tasks in
  flight; everything renamed into place is complete;
* resuming with any number of ranks just asks which tasks are present — tasks
  are identified by their global index, not by the rank that made them;
* a corrupt or truncated task file fails its checksum, is reported and
  recomputed, never trusted;
* a folder written by a different run (other model, configurations, K-points,
  J, …) is refused: ``manifest.json`` holds a fingerprint of everything that
  determines the stored numbers.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError, SpiaError

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def fingerprint(data) -> str:
    """SHA-256 of a JSON-serialisable description of what determines the results."""
    text = json.dumps(data, sort_keys=True, default=_default)
    return hashlib.sha256(text.encode()).hexdigest()


def _default(x):
    if isinstance(x, np.ndarray):
        return {"sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
                "shape": list(x.shape), "dtype": str(x.dtype)}
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"cannot fingerprint {type(x).__name__}")


def _array_digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class TaskStore:
    """A checkpoint folder of finished tasks (see module docstring).

    Create it collectively with :meth:`open` (rank 0 checks/creates the folder
    and manifest; all ranks get the same answer). ``save``/``load``/``done`` are
    local file operations any rank can do for any task.
    """

    def __init__(self, folder: Path, n_tasks: int):
        self.folder = Path(folder)
        self.n_tasks = n_tasks
        self.recomputed = []        # tasks whose file was found damaged by load() on this rank

    @classmethod
    def open(cls, folder, n_tasks: int, fp: str, comm=None, restart: bool = True) -> "TaskStore":
        """Open (or create) the store; refuse one made by a different run."""
        from spia_mpi.parallel.mpi import on_root
        folder = Path(folder)

        def prepare():
            from spia_mpi.io.hdf5 import check_writable
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create the checkpoint folder {folder}: "
                                 f"{exc.strerror or exc}") from None
            problem = check_writable(folder / MANIFEST)      # a real write (os.access lies to root)
            if problem:
                raise InputError(f"checkpoint folder {folder}: {problem}")
            man = folder / MANIFEST
            if man.exists():
                try:
                    old = json.loads(man.read_text())
                except (OSError, ValueError):
                    old = None
                if old is None:
                    logger.warning("checkpoint %s: unreadable manifest, starting afresh", folder)
                    _clear(folder)
                elif old.get("fingerprint") != fp or old.get("n_tasks") != n_tasks:
                    raise InputError(
                        f"checkpoint folder {folder} belongs to a different run (its inputs "
                        f"differ from this one's); delete it or set another output path")
                elif not restart:
                    _clear(folder)
            tmp = folder / (MANIFEST + ".tmp")
            tmp.write_text(json.dumps({"fingerprint": fp, "n_tasks": n_tasks}))
            os.replace(tmp, man)
            return None

        if comm is None:
            prepare()
        else:
            on_root(comm, prepare)
        return cls(folder, n_tasks)

    def path(self, task: int) -> Path:
        return self.folder / f"task_{task:07d}.npz"

    def save(self, task: int, **arrays):
        """Store the arrays of a finished task atomically (temporary file + rename)."""
        digest = _array_digest(arrays)
        final = self.path(task)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, __sha256__=np.array(digest), **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:       # full disk, quota, a stray directory in the way, ...
            _unlink(tmp)
            raise SpiaError(f"cannot store checkpoint task {task} as {final}: {exc.strerror or exc} "
                            f"(the tasks finished before are kept)") from exc

    def load(self, task: int) -> dict | None:
        """The arrays of ``task``, or None if absent or corrupt (corrupt files are removed)."""
        p = self.path(task)
        if not p.exists():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "__sha256__"}
                stored = str(z["__sha256__"])
        except Exception as exc:  # noqa: BLE001 - any read failure means corrupt
            logger.warning("checkpoint task %d (%s) unreadable (%s): recomputing", task, p, exc)
            _unlink(p)
            self.recomputed.append(task)
            return None
        if _array_digest(arrays) != stored:
            logger.warning("checkpoint task %d (%s) fails its checksum: recomputing", task, p)
            _unlink(p)
            self.recomputed.append(task)
            return None
        return arrays

    def finished(self) -> list[int]:
        """Indices of tasks with a file present (not yet verified)."""
        out = []
        for p in self.folder.glob("task_*.npz"):
            try:
                i = int(p.stem.split("_")[1])
            except (IndexError, ValueError):
                continue
            if 0 <= i < self.n_tasks:
                out.append(i)
        return sorted(out)


def _unlink(p: Path):
    try:
        p.unlink()
    except OSError:
        pass


def _clear(folder: Path):
    for p in folder.glob("task_*.npz"):
        _unlink(p)
    for p in folder.glob(".task_*.tmp"):
        _unlink(p)
