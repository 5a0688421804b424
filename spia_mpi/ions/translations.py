"""Rigid translations of ring-polymer configurations: every bead's mass-weighted centre shift.

In a periodic supercell of N atoms the three rigid translations are zero modes of the ionic
motion; the ring polymer still samples their bead-internal part (each bead's centre of mass
wanders by ∝ 1/√N of an atom's spread while the centroid stays put). A translation by a
non-lattice vector carries no coupling in the infinite crystal, but in the finite supercell it
rotates the states projected on the reference (V_st = (ε_t − ε_s)⟨ψ_s|∂ψ_t⟩, docs/harmonic.md),
which the Bethe–Salpeter ladder mistreats. :func:`remove_rigid_translations` takes it out:

    t_cb = Σ_a∈K M_a u_cb,a / Σ_a∈K M_a,        r_cb,a → r_cb,a − t_cb   (every atom a),

u_cb,a the minimum-image displacement of atom a in configuration c, bead b from its reference
site (Å), K the atoms *on their site*: |u_cb,a − t_cb| ≤ r_a, r_a half the distance from site a
to the nearest other site of its species (or to its own periodic image). An atom beyond r_a from
its translated site has left it (a hop of a diffusing ion in a superionic phase, or in flight
between sites): it does not define the translation (its site displacement would count the hop
as a shift of the whole crystal) but is translated with the rest. t_cb and K are found together
by iteration from the mean over all atoms (K ← atoms within r_a of their site moved by t_cb,
t_cb ← the mean over K, until K stays the same). With every atom on its site, t_cb is the exact
projection onto the zero modes of a Φ with the acoustic sum rule (mass-weighted they are √M_a
per direction). Positions keep their own periodic image (a wrapped atom stays wrapped).

Units: Å, amu. Shapes: positions float [n_conf, n_beads, N, 3], reference [N, 3], cell [3, 3].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

def site_displacements(positions_cbav, reference_positions, cell=None) -> np.ndarray:
    """u = r − R⁰ (Å), float like ``positions_cbav``; with ``cell`` [3, 3] the minimum image of it
    (ASE's :func:`ase.geometry.find_mic`, one leading index at a time)."""
    u = np.asarray(positions_cbav, float) - np.asarray(reference_positions, float)
    if cell is None:
        return u
    from ase.geometry import find_mic
    flat = u.reshape(-1, *u.shape[-2:])
    for i, ui in enumerate(flat):
        flat[i] = find_mic(ui, cell)[0]
    return flat.reshape(u.shape)


def site_radii(reference_positions, numbers, cell) -> np.ndarray:
    """r_a (Å), float [N]: half the distance from site a to the nearest other site of its species,
    periodic images (also a's own) included."""
    ref = np.asarray(reference_positions, float)
    numbers = np.asarray(numbers)
    cell = np.asarray(cell, float)
    d = site_displacements(ref[None, :, :], ref[:, None, :], cell)          # [N, N, 3]: r_b − r_a
    dist = np.linalg.norm(d, axis=-1)
    dist[numbers[:, None] != numbers[None, :]] = np.inf
    np.fill_diagonal(dist, np.inf)
    return 0.5 * np.minimum(dist.min(axis=1), _shortest_lattice_vector(cell))


def _shortest_lattice_vector(cell) -> float:
    """|shortest non-zero lattice vector| (Å): the length of the reduced cell's shortest vector."""
    from ase.geometry import minkowski_reduce
    return float(np.linalg.norm(minkowski_reduce(np.asarray(cell, float))[0], axis=1).min())


MAX_ITERATIONS = 50        # of the on-site set K (each step only moves atoms across r_a; 2–3 in practice)


@dataclass(frozen=True)
class RigidShifts:
    """The removed translations: ``shift_ang`` float [n_conf, n_beads, 3] (Å) and
    ``off_site`` int [n_conf, n_beads], the atoms left out of each bead's average."""

    shift_ang: np.ndarray
    off_site: np.ndarray

    def applied(self, positions_cbav) -> np.ndarray:
        """The positions (Å, float [n_conf, n_beads, N, 3]) with every bead's shift subtracted from all its atoms."""
        return np.asarray(positions_cbav, float) - self.shift_ang[:, :, None, :]

    @property
    def rms_ang(self) -> float:
        """√⟨|t_cb|²⟩ over configurations and beads (Å)."""
        return float(np.sqrt((self.shift_ang ** 2).sum(axis=-1).mean()))


def rigid_shifts(positions_cbav, reference_positions, masses_amu, cell=None, numbers=None) -> RigidShifts:
    """t_cb of the module docstring. Without ``cell`` the displacements are taken as they are and
    every atom counts (samples drawn around R⁰, e.g. the exact harmonic sampler); with ``cell`` and
    ``numbers`` [N] minimum images and the on-site criterion |u| ≤ r_a. A bead with no atom on its
    site gets no shift."""
    u = site_displacements(positions_cbav, reference_positions, cell)
    m = np.asarray(masses_amu, float)
    on = np.ones(u.shape[:-1], bool)
    shift = _mean_shift(u, m, on)
    if cell is not None:
        radii = site_radii(reference_positions, numbers, cell)
        for _ in range(MAX_ITERATIONS):
            new = np.linalg.norm(u - shift[..., None, :], axis=-1) <= radii
            if np.array_equal(new, on):
                break
            on, shift = new, _mean_shift(u, m, new)
    return RigidShifts(shift, (~on).sum(axis=-1))


def _mean_shift(u, masses, on) -> np.ndarray:
    """Σ_a∈K M_a u_a / Σ_a∈K M_a per bead, float [n_conf, n_beads, 3] (0 where K is empty)."""
    w = on * masses                                              # [c, b, N]
    total = w.sum(axis=-1)
    return np.einsum("cba,cbax->cbx", w, u) / np.where(total > 0, total, 1.0)[..., None]


def remove_rigid_translations(positions_cbav, reference_positions, masses_amu, cell=None,
                              numbers=None) -> np.ndarray:
    """Positions (Å, float [n_conf, n_beads, N, 3]) with every bead's rigid shift
    (:func:`rigid_shifts`) subtracted from all its atoms."""
    return rigid_shifts(positions_cbav, reference_positions, masses_amu, cell, numbers).applied(positions_cbav)
