"""Reading ``spia_mpi analyze`` results (the ``/analysis`` group, docs/configurations.md)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError


@dataclass(frozen=True)
class PeaksFile:
    """The density peaks of an analysis file.

    cell          float [3, 3]  analysed (configurations') supercell, Å, rows
    numbers       int [n]       atomic number of each peak
    centres_frac  float [n, 3]  peak centres, fractional coordinates of ``cell``
    weights       float [n]     occupancies (atoms)
    liquid_like   tuple         atomic numbers of the species without peaks
    """

    cell: np.ndarray
    numbers: np.ndarray
    centres_frac: np.ndarray
    weights: np.ndarray
    liquid_like: tuple


def read_peaks(path) -> PeaksFile:
    """:class:`PeaksFile` of the analysis file ``path`` (InputError naming the file if it has none)."""
    from ase.data import atomic_numbers

    from spia_mpi.io.hdf5 import open_finished
    with open_finished(path, "analysis") as f:
        g = f["analysis"]
        if "peaks" not in g:
            raise InputError(f"{path}: the analysis has no density peaks (/analysis/peaks): every sublattice "
                             "was liquid-like")
        p = g["peaks"]
        return PeaksFile(g["cell"][...], p["numbers"][...].astype(int), p["centres_frac"][...], p["weight"][...],
                         tuple(atomic_numbers[s] for s in json.loads(p.attrs.get("liquid_like", "[]"))))
