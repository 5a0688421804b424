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

import numpy as np

from spia_mpi.errors import InputError

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
