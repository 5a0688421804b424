"""Atom order of configurations versus a model's supercell: the permutation, found by position.

The models order a supercell's atoms lattice point by lattice point
(:func:`spia_mpi.lattice.supercells.build_supercell`); PIMD codes keep the order of their input
file, e.g. species grouped as in the POSCAR `supercells` writes. A PIMD never relabels atoms, so
one permutation holds for every configuration and bead: it is found once, per species, as the
assignment of configuration atoms to the model's reference sites with the least total squared
minimum-image distance (Hungarian algorithm), from bead 0 of the first configuration (one bead:
no average over beads that a code may have wrapped into the cell separately).
"""
from __future__ import annotations

import logging

import numpy as np

from spia_mpi.errors import InputError

logger = logging.getLogger(__name__)


def _mic_distances(a, b, cell) -> np.ndarray:
    """Minimum-image distances |a_i − b_j| (Å), float [len(a), len(b)], for a periodic ``cell`` [3, 3]."""
    inv = np.linalg.inv(cell)
    d = (a[:, None, :] - b[None, :, :]) @ inv
    d -= np.round(d)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], float)
    return np.min(np.linalg.norm((d[:, :, None, :] + shifts) @ cell, axis=-1), axis=-1)


def model_permutation(positions, numbers, sites, site_numbers, cell, source: str = "configurations"):
    """perm int [n_atoms] with configuration atom perm[i] ↔ model atom i, and the largest
    matched distance per species {Z: Å}.

    ``positions`` float [n_atoms, 3] (Å): one frame of the configurations; ``numbers``: their atomic numbers; ``sites``, ``site_numbers``: the model's
    reference positions and atomic numbers; ``cell`` [3, 3] Å. InputError if the species counts differ.
    """
    from scipy.optimize import linear_sum_assignment
    numbers, site_numbers = np.asarray(numbers), np.asarray(site_numbers)
    if not np.array_equal(np.sort(numbers), np.sort(site_numbers)):
        raise InputError(f"{source}: the species ({_formula(numbers)}) differ from the model supercell's "
                         f"({_formula(site_numbers)})")
    perm = np.empty(len(numbers), dtype=int)
    worst = {}
    for z in np.unique(site_numbers):
        mine, theirs = np.flatnonzero(site_numbers == z), np.flatnonzero(numbers == z)
        dist = _mic_distances(np.asarray(sites)[mine], np.asarray(positions)[theirs], np.asarray(cell, float))
        rows, cols = linear_sum_assignment(dist ** 2)
        perm[mine[rows]] = theirs[cols]
        worst[int(z)] = float(dist[rows, cols].max())
    return perm, worst


def _formula(numbers) -> str:
    from ase.data import chemical_symbols
    z, n = np.unique(numbers, return_counts=True)
    return " ".join(f"{chemical_symbols[a]}{c}" for a, c in zip(z, n))


def to_model_order(conf, model_atoms, sites):
    """``conf`` (:class:`~spia_mpi.ions.configurations.Configurations`) with its atoms in the
    model's order: itself when the species already match atom by atom, else permuted by
    :func:`model_permutation` (logged; a warning when a matched distance exceeds half the shortest
    distance between two model sites of that species, where the match is ambiguous)."""
    from ase.data import chemical_symbols
    want = np.asarray(model_atoms.numbers)
    if np.array_equal(conf.numbers, want):
        return conf
    cell = np.asarray(model_atoms.cell[:], float)
    perm, worst = model_permutation(conf.positions[0, 0], conf.numbers, sites, want, cell, conf.source)
    logger.info("%s: atoms in another order than the model's (e.g. species grouped as in a POSCAR); matched to "
                "the model's sites by position (largest distance %s)", conf.source,
                ", ".join(f"{chemical_symbols[z]} {d:.3f} Å" for z, d in worst.items()))
    for z, d in worst.items():
        idx = np.flatnonzero(want == z)
        if len(idx) > 1:
            sep = _mic_distances(np.asarray(sites)[idx], np.asarray(sites)[idx], cell)
            half = 0.5 * np.min(sep[~np.eye(len(idx), dtype=bool)])
            if d > half:
                logger.warning("%s: a %s atom of the first configuration is %.3f Å from its matched model site, "
                               "more than half the %s–%s site distance (%.3f Å): the atom order may be matched "
                               "wrongly", conf.source, chemical_symbols[z], d, chemical_symbols[z],
                               chemical_symbols[z], 2 * half)
    from spia_mpi.ions.configurations import Configurations
    return Configurations(conf.positions[:, :, perm], conf.cell, conf.numbers[perm], conf.masses[perm],
                          conf.temperature_k, conf.time_step_fs, conf.source, dict(conf.extra))
