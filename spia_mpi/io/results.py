"""The results file (``spia_mpi_file = 'results'``): its content and how it is written.

Whoever computes a result collects it in a :class:`ResultsContent` — datasets
(:class:`Entry`: ``group/name``, array, units, description) and group attributes —
and :func:`write_results` writes it in one go. Adding a dataset is one line::

    content.add("lambda/lambda_m_raw", lam_raw, "1", "λ(m) before … [gamma, m]")

How the file is written (chosen by measurement, docs/benchmarks.md "Writing the
results file"): rank 0 alone, serial h5py, atomically (temporary name, rename,
``complete`` flag last). The other ranks take no part in any HDF5 call; they wait
and receive rank 0's outcome, so a failed write raises the same error on every rank.
The arrays are only needed on rank 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spia_mpi.io import hdf5


@dataclass(frozen=True)
class Entry:
    """One dataset: ``path`` 'group/name' (groups nest with '/'), ``units`` ('1' dimensionless)."""

    path: str
    data: np.ndarray
    units: str
    description: str = ""


@dataclass
class ResultsContent:
    """Datasets and group attributes of a results file, in the order they were added."""

    entries: list = field(default_factory=list)       # list[Entry]
    attrs: dict = field(default_factory=dict)         # group path → {attribute: value}

    def add(self, path: str, data, units: str, description: str = ""):
        """Add the dataset ``path`` (e.g. 'lambda/lambda_m') holding ``data`` in ``units``."""
        if any(e.path == path for e in self.entries):
            raise ValueError(f"results dataset {path} added twice")
        self.entries.append(Entry(path, np.asarray(data), units, description))

    def set_attrs(self, group: str, **attrs):
        """Attributes of ``group`` (created if it holds no dataset)."""
        self.attrs.setdefault(group, {}).update(attrs)

    def __getitem__(self, path: str) -> np.ndarray:
        for e in self.entries:
            if e.path == path:
                return e.data
        raise KeyError(path)


def write_results(path, content: ResultsContent, comm=None, command: str = "", resolved_input=None,
                  kind: str = "results"):
    """Write ``content`` (plus ``/provenance`` and the resolved ``/input``) to ``path``.

    Rank 0 of ``comm`` writes (serial h5py, atomic); every rank returns when the file is
    complete, or raises the same exception (e.g. :class:`InputError` for an unwritable
    folder). ``content`` is only read on rank 0.
    """
    from spia_mpi.parallel.mpi import on_root

    # on every rank: the version report may import libraries whose import is collective
    # under mpirun (GPAW); rank 0 alone would leave the others waiting in its broadcast
    info = hdf5.provenance(comm, command)

    def write():
        with hdf5.atomic_h5(path, None, kind=kind) as f:
            hdf5.write_provenance(f, info, resolved_input)
            for group, attrs in content.attrs.items():
                g = f.require_group(group)
                for k, v in attrs.items():
                    g.attrs[k] = v
            for e in content.entries:
                group, _, name = e.path.rpartition("/")
                hdf5.write_dataset(f.require_group(group) if group else f, name, e.data, e.units, e.description)

    on_root(comm, write)
