"""k-paths through the primitive Brillouin zone from ASE (``atoms.cell.bandpath``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError


@dataclass(frozen=True)
class KPath:
    """A band-structure path.

    kpoints_frac  float [n_k, 3]  reduced coordinates of the primitive reciprocal lattice
    x             float [n_k]  distance along the path (1/Å: Σ|Δk|, Cartesian k including 2π, as ASE)
    special_x     float [n_special]  positions of the labelled points on ``x``
    labels        list[str] [n_special]  their names ('G' is written Γ)
    path          str  ASE path string, e.g. 'GXMGR,X'
    """

    kpoints_frac: np.ndarray
    x: np.ndarray
    special_x: np.ndarray
    labels: list
    path: str


def bandpath(cell, path: str = "", npoints: int = 60) -> KPath:
    """The ASE band path of ``cell`` (float [3, 3], Å; any cell: ASE maps it to its standard
    form and back). ``path`` '' takes ASE's default path of the lattice; ``npoints`` ≥ 2."""
    from ase.cell import Cell
    if npoints < 2:
        raise InputError(f"a k-path needs at least 2 points, got {npoints}")
    c = Cell(np.asarray(cell, float))
    try:
        bp = c.bandpath(path or None, npoints=npoints)
    except (ValueError, KeyError) as exc:
        special = "".join(sorted(c.bandpath(npoints=0).special_points))
        raise InputError(f"k-path '{path}': {exc} (special points of this lattice: {special})") from None
    x, sx, labels = bp.get_linear_kpoint_axis()
    labels = ["Γ" if lab == "G" else lab for lab in labels]
    return KPath(np.asarray(bp.kpts, float), np.asarray(x, float), np.asarray(sx, float), labels, bp.path)
