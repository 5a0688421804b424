"""Moment sums of T(m) for jackknife replicas without touching every configuration again.

A delete-one-block replica k recomputes T with its own Ḡ (:func:`spia.t_matrices_m`):
T_c(m) = L ĝ_c(m) R − Ĝ⁻¹ δ_m0 with L = Ĝ⁻¹U†, R = UĜ⁻¹ block-diagonal in k. When every
primitive k holds one state (``states_per_k = 1``: Holstein, one-band models) L and R are
diagonal, so T_c,st(m) = a_st ĝ_c,st(m) + e_st with a_st = L_s R_t and a constant e, and the
replica's moment sums Σ_c T, Σ_c |T|² over a block follow exactly from the block's own sums
of ĝ and |ĝ|² — one pass over the configurations for all replicas instead of one per replica.

To keep the m = 0 diagonal free of cancellation (ĝ_ss(0) ≈ Ḡ_ss is large next to its
fluctuation), the block sums are taken of ĝ' = ĝ − C δ_m0 with a constant shift C (the
full sample's Ḡ diagonal); the replica then sees e_ss = L_s C_s R_s − 1/Ĝ_s at m = 0, the
small difference of the two Ḡ. Plain functions on numpy arrays; shapes as in :mod:`spia`.
"""
from __future__ import annotations

import numpy as np

from spia_mpi.engine import spia


def one_state_per_k(k_index) -> bool:
    """True when every primitive k of the subspace holds exactly one state (L, R diagonal)."""
    k = np.asarray(k_index)
    return np.unique(k).size == k.size


def shifted_moments(g_hat_list, shift_s: np.ndarray, first_row: int = 0) -> spia.MomentSums:
    """Σ_c ĝ'_c(m), Σ_c |ĝ'_c(m)|² and the count over configurations, ĝ' = ĝ − diag(shift) δ_m0.

    ``g_hat_list``: ĝ_c(m) of the configurations of one block, each complex [n_m, n_s, n_s]
    (P basis, :func:`spia.bead_transform` of the resolvents), or only the rows ``first_row`` …
    of each, [n_m, n_rows, n_s] (the sums are then of those rows); ``shift_s`` complex [n_s] (1/eV).
    """
    n_m, n_rows, n_s = g_hat_list[0].shape
    sums = spia.MomentSums.zeros(n_m, n_s, n_rows)
    rows = np.arange(n_rows)
    for g in g_hat_list:
        gp = g.copy()
        gp[0, rows, first_row + rows] -= shift_s[first_row + rows]
        sums.add(gp)
    return sums


def t_moments(g_moments: spia.MomentSums, shift_s: np.ndarray, bands: spia.RenormalisedBands,
              first_row: int = 0) -> spia.MomentSums:
    """Σ_c T_c(m), Σ_c |T_c(m)|² over one block with T from the Ḡ of ``bands`` (one state per k).

    ``g_moments``: the block's :func:`shifted_moments` with the same ``shift_s`` (and rows
    ``first_row`` …: the T sums of the same rows follow). Equal to the moment sums of
    :func:`spia.t_matrices_m` of every configuration to round-off.
    """
    u = np.diag(bands.rotation)                          # a unit phase per state (1×1 eigenvectors)
    gb = np.diag(bands.gbar_band)                        # Ĝ_s
    left, right = u.conj() / gb, u / gb
    rows = np.arange(g_moments.s1.shape[1])
    own = first_row + rows
    a = left[own, None] * right[None, :]                 # [n_rows, n_s]
    e0 = left[own] * shift_s[own] * right[own] - 1.0 / gb[own]     # constant part of T_ss(0)
    n = g_moments.count
    s1 = a[None] * g_moments.s1
    s2 = (a.real ** 2 + a.imag ** 2)[None] * g_moments.s2
    cross = s1[0, rows, own]                             # Σ_c a ĝ'_ss(0) (the diagonal of the rows)
    s2[0, rows, own] += 2.0 * (e0.conj() * cross).real + n * (e0.real ** 2 + e0.imag ** 2)
    s1[0, rows, own] += n * e0
    return spia.MomentSums(s1, s2, n)
