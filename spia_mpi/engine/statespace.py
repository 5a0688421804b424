"""The default state space of a run: an energy window around ε_F and a pool of reference states
that holds it (docs/spia.md, "The default state space").

λ(m) = −Σ_st w_s W_st w_t / N_γ weighs every reference state s by its Lorentzian
w_s = (γ/π) / ((ε_s − ε_F)² + γ²). For a locally constant density of states the fraction of
the Lorentzian weight beyond |ε − ε_F| > W is (2/π) arctan(γ/W) < 2γ/(πW), and λ's truncation
error follows the dropped weight to first order (N_γ and the pair sums lose the same tails).
W = 20 γ_max bounds it by 3.2 % at the widest γ (flat band; a finite band converges faster:
−0.06 % at 20γ on the two-band test model). Intermediate pairs of the Bethe–Salpeter equation
enter with |Ḡ|² ≈ 1/((ε − ε_F)² + η²), η = (2J+1)πk_BT the resolvents' broadening, so the same
bound with η in place of γ applies to the (few-percent) BSE correction: W ≥ 4η keeps ≥ 84 % of
it. Hence W = max(20 γ_max, 4η).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spia_mpi.engine import spia
from spia_mpi.errors import InputError
from spia_mpi.models.base import ReferenceStates

#: the automatic window half width is W = max(WINDOW_PER_GAMMA · γ_max, WINDOW_PER_ETA · η)
WINDOW_PER_GAMMA = 20.0
WINDOW_PER_ETA = 4.0
#: the first pool holds the occupied bands plus this many
POOL_MARGIN = 8


def automatic_window_ev(gammas, eta_ev: float) -> tuple:
    """(−W, W) in eV relative to ε_F, W = max(20 γ_max, 4η) (module docstring); ``gammas`` the
    Lorentzian half widths (eV), ``eta_ev`` = (2J+1)πk_BT (eV)."""
    w = max(WINDOW_PER_GAMMA * float(np.max(gammas)), WINDOW_PER_ETA * float(eta_ev))
    return (-w, w)


def bands_per_k(model) -> int:
    """Bands of ``model`` at one primitive k: its supercell basis over the primitive cells."""
    cells = int(round(abs(np.linalg.det(np.asarray(model.supercell_matrix, float)))))
    return model.n_basis // cells


def initial_pool_per_k(model) -> int:
    """The first automatic pool: the occupied bands per k plus :data:`POOL_MARGIN`, at most every band."""
    cells = int(round(abs(np.linalg.det(np.asarray(model.supercell_matrix, float)))))
    occupied = math.ceil(0.5 * float(model.n_electrons) / cells)
    return max(1, min(bands_per_k(model), occupied + POOL_MARGIN))


def pool_top_ev(refs) -> float:
    """The lowest, over every K and folded k, of the highest pool state at that k (eV)."""
    return float(min(r.energies[r.k_index == k].max() for r in refs for k in np.unique(r.k_index)))


def grow_pool(model, kpoints, refs, upper_ev: float):
    """Double the states per k of ``refs`` (the pool of every K) until the pool's top lies above
    ``upper_ev`` at every k or the pool holds every band.

    Returns (reference states per K, states per k, whether the pool holds every band).
    InputError if the model offers no state above ``upper_ev`` at some k.
    """
    n_max = bands_per_k(model)
    n = refs[0].n_states // len(refs[0].kpoints_frac)
    while True:
        complete = all(r.n_states == model.n_basis for r in refs)
        if complete or pool_top_ev(refs) > upper_ev:
            return refs, n, complete
        if n >= n_max:
            raise InputError(f"the automatic energy window reaches {upper_ev:.3f} eV, above the highest reference "
                             f"state the model offers at some k ({pool_top_ev(refs):.3f} eV): give spia.window_ev "
                             "(and spia.states_per_k)")
        n = min(n_max, 2 * n)
        refs = [model.reference_states(K, n) for K in kpoints]


@dataclass(frozen=True)
class StateSpace:
    """The reference states that span Ḡ, T, the BSE and the Fermi-surface sums (N_γ included).

    window_ev        [lower, upper] relative to ε_F (eV), or None (the n_per_k lowest per k)
    pool_per_k       states per k they were selected from (spia.states_per_k)
    pool_complete    whether that pool holds every band
    n_states         int [n_K] states kept per K
    captured         float [n_gamma]: Σ w over the kept states / Σ w over the pool, with the
                     reference energies (the fraction of the pool's — with a complete pool the
                     full-band — Lorentzian Fermi-surface weight the window keeps)
    """

    window_ev: tuple | None
    pool_per_k: int
    pool_complete: bool
    n_states: np.ndarray
    captured: np.ndarray


def select_window(refs, fermi_level_ev: float, window_ev, gammas, n_per_k: int, complete: bool):
    """(reference states with ε − ε_F in ``window_ev`` per K, :class:`StateSpace`); ``window_ev``
    None keeps every state. InputError if a K keeps no state, or if the window reaches beyond the
    highest state of the pool at some k (raise spia.states_per_k)."""
    pool_w = sum(spia.lorentzian_weights(r.energies, fermi_level_ev, gammas).sum(axis=1) for r in refs)
    if window_ev is None:
        return refs, StateSpace(None, n_per_k, complete, np.array([r.n_states for r in refs]), np.ones(len(gammas)))
    lo, hi = fermi_level_ev + window_ev[0], fermi_level_ev + window_ev[1]
    out = []
    for r in refs:
        top = np.array([r.energies[r.k_index == k].max() for k in np.unique(r.k_index)])
        if not complete and np.any(top < hi):
            raise InputError(f"spia.window_ev reaches {hi:.3f} eV, above the highest of the {n_per_k} reference "
                             f"states per k at some k ({top.min():.3f} eV): raise spia.states_per_k")
        keep = np.flatnonzero((r.energies >= lo) & (r.energies <= hi))
        if keep.size == 0:
            raise InputError(f"spia.window_ev = {list(window_ev)} eV around ε_F = {fermi_level_ev:.3f} eV keeps no "
                             "reference state at one K-point: widen the window")
        out.append(ReferenceStates(r.vectors[:, keep], r.k_index[keep], r.band_index[keep], r.kpoints_frac,
                                   r.energies[keep]))
    kept_w = sum(spia.lorentzian_weights(r.energies, fermi_level_ev, gammas).sum(axis=1) for r in out)
    return out, StateSpace(tuple(window_ev), n_per_k, complete, np.array([r.n_states for r in out]),
                           kept_w / pool_w)


def choose(model, kpoints, refs, fermi_level_ev: float, gammas, eta_ev: float, n_per_k: int | None,
           window_ev, complete: bool):
    """The reference states of a calculation and its :class:`StateSpace`: :func:`select_window` on
    the chosen pool. ``refs``: the first pool per K (``n_per_k`` states per k, or
    :func:`initial_pool_per_k` when ``n_per_k`` is None), ``complete``: whether it holds every
    band. Given ``n_per_k`` (spia.states_per_k): that pool, cut by ``window_ev`` if given.
    Automatic (``n_per_k`` None, the default): the window ``window_ev`` or ±W
    (:func:`automatic_window_ev` of ``gammas`` and ``eta_ev``), the pool grown until it holds
    the window (:func:`grow_pool`); a pool that holds every band is kept whole (the exact state
    space) unless ``window_ev`` is given. Used by ``run``, ``harmonic`` and ``spectral``."""
    if n_per_k is not None:
        return select_window(refs, fermi_level_ev, window_ev, gammas, n_per_k, complete)
    window = window_ev or automatic_window_ev(gammas, eta_ev)
    refs, n_per_k, complete = grow_pool(model, kpoints, refs, fermi_level_ev + window[1])
    cut = None if complete and window_ev is None else window
    return select_window(refs, fermi_level_ev, cut, gammas, n_per_k, complete)


def first_pool(model, kpoints, n_per_k: int | None) -> list:
    """Reference states per K of the first pool: ``n_per_k`` per k, or :func:`initial_pool_per_k`."""
    return [model.reference_states(K, n_per_k or initial_pool_per_k(model)) for K in np.atleast_2d(kpoints)]


def pool_for_window(model, kpoints, fermi_level_ev: float, gammas, eta_ev: float, window_ev=None) -> int:
    """States per k of the automatic pool at ``kpoints`` (the first pool grown by :func:`grow_pool`)
    that holds the window ``window_ev`` or ±W (:func:`automatic_window_ev`) around
    ``fermi_level_ev``: ``spectral``'s Green's route keeps that whole pool (every band up to the
    window's top) when spia.states_per_k is not given."""
    window = window_ev or automatic_window_ev(gammas, eta_ev)
    _, n_per_k, _ = grow_pool(model, np.atleast_2d(kpoints), first_pool(model, kpoints, None),
                              fermi_level_ev + window[1])
    return n_per_k
