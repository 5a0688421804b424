"""The reference structure R⁽⁰⁾ of a superionic phase from the ion-density peaks (paper Sec. S-D).

R⁽⁰⁾ = {R^solid-like, R^density-peaks}: the sites of the solid-like ions and the density peaks
of the diffusing ions, as fitted by ``spia_mpi analyze`` (its ``/analysis/peaks``). The PAW
backend needs one site per ion of the primitive cell (its LCAO basis and its reference SCF live
on R⁽⁰⁾), so every primitive atom takes the mean position of the peaks that belong to it: the
peaks of the analysed supercell are folded into the primitive cell and each is given to the
nearest primitive atom of its species; every atom must receive exactly one peak per primitive
cell of the analysed supercell. A liquid-like sublattice (no peaks: R^density-peaks = ∅) has no
such sites and is refused.

Units: Å; fractional coordinates are reduced to the cell rows.
"""
from __future__ import annotations

import numpy as np

from spia_mpi.errors import InputError

_IMAGES = np.array(np.meshgrid(*[(-1.0, 0.0, 1.0)] * 3, indexing="ij")).reshape(3, -1).T    # [27, 3]


def primitive_from_peaks(primitive, cell, numbers, centres_frac, liquid_like=(), source: str = "peaks"):
    """``primitive`` (ase.Atoms) with every atom moved to the mean of its density peaks.

    Parameters
    ----------
    primitive : ase.Atoms — the static primitive cell (defines the lattice and the atom order)
    cell : float [3, 3] — the analysed supercell (Å, rows); an integer multiple of primitive.cell
    numbers : int [n] — atomic number of each peak
    centres_frac : float [n, 3] — peak centres, fractional coordinates of ``cell``
    liquid_like : atomic numbers of the species without peaks
    source : name of the peaks' file, for the error messages

    Returns a new ase.Atoms (same cell, numbers and order as ``primitive``).
    """
    a_prim = np.asarray(primitive.cell[:], float)
    n_cells = _cells_in(np.asarray(cell, float), a_prim, source)
    prim_numbers = np.asarray(primitive.numbers)
    from ase.data import chemical_symbols
    fluid = sorted(set(int(z) for z in liquid_like) & set(prim_numbers.tolist()))
    if fluid:
        raise InputError(f"{source}: {', '.join(chemical_symbols[z] for z in fluid)} is liquid-like (no density "
                         "peaks, R^density-peaks = ∅): the GPAW model needs one reference site per ion")
    peaks_cart = np.asarray(centres_frac, float) @ np.asarray(cell, float)
    static = primitive.get_positions()
    out = primitive.copy()
    new = static.copy()
    numbers = np.asarray(numbers)
    for z in np.unique(prim_numbers):
        atoms = np.flatnonzero(prim_numbers == z)
        mine = peaks_cart[numbers == z]
        shifts = [[] for _ in atoms]
        for r in mine:
            d = _minimum_image(r - static[atoms], a_prim)                  # [n_atoms_z, 3]
            j = int(np.argmin(np.linalg.norm(d, axis=1)))
            shifts[j].append(d[j])
        for j, a in enumerate(atoms):
            if len(shifts[j]) != n_cells:
                raise InputError(f"{source}: {chemical_symbols[z]} atom {a} of the primitive cell has "
                                 f"{len(shifts[j])} density peaks nearest to it, expected {n_cells} (one per "
                                 f"primitive cell of the analysed supercell): the peaks do not form one site per ion")
            new[a] = static[a] + np.mean(shifts[j], axis=0)
    out.set_positions(new)
    return out


def _cells_in(cell, a_prim, source) -> int:
    """Primitive cells in ``cell`` (an integer matrix times the primitive cell), else InputError."""
    n = cell @ np.linalg.inv(a_prim)
    if not np.allclose(n, np.round(n), atol=1e-4) or round(abs(np.linalg.det(np.round(n)))) < 1:
        raise InputError(f"{source}: the analysed cell {np.round(cell, 6).tolist()} is not a supercell of the "
                         f"structure's primitive cell {np.round(a_prim, 6).tolist()}")
    return int(round(abs(np.linalg.det(np.round(n)))))


def _minimum_image(d, a_prim) -> np.ndarray:
    """Shortest periodic images of the Cartesian vectors ``d`` [n, 3] in the lattice ``a_prim``."""
    frac = d @ np.linalg.inv(a_prim)
    frac -= np.round(frac)
    cand = (frac[:, None, :] + _IMAGES[None]) @ a_prim                     # [n, 27, 3]
    best = np.argmin(np.linalg.norm(cand, axis=2), axis=1)
    return cand[np.arange(len(d)), best]
