"""The state-pair coupling W_st(m) binned on the Fermi surface: input of the anisotropic Eliashberg equations.

Every reference state s of every supercell K-point gets a bin i(s) (:func:`assign_bins`):

* ``band``   — its band: within each primitive k the j-th lowest renormalised state gets the
  j-th lowest reference band index of that k;
* ``kpoint`` — its primitive k-point (one supercell K only, :func:`check_bins`);
* ``energy`` — a clustering by renormalised energy: the states of all K sorted by ε_s and cut
  into ``n_bins`` groups of (nearly) equal size.

The engine sums w_s W_st(m) w_t over the pairs of every bin pair (:func:`pair_sums_by_bin`, one
K-point at a time, the same Lorentzian weights as λ); with N_i = Σ_{s∈i} w_s (all K) and
N = Σ_i N_i = N_γ the binned coupling (:func:`binned_coupling`) is

    W_ij(m) = −f(m) N P_ij(m) / (N_i N_j),     w_i = N_i / N,

f(m) the finite-bead correction of λ; its symmetric part is kept (W_st and W_ts agree in
expectation, not sample by sample), and its DOS-weighted average is the
isotropic coupling, Σ_ij w_i W_ij(m) w_j = −f(m) Σ_ij P_ij(m)/N_γ = λ(m); the coupling bin i
feels from bin j is λ_ij = W_ij w_j. Plain functions on numpy arrays (no I/O, no MPI).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError

#: Values of ``spia.anisotropy_bins``.
KINDS = ("none", "band", "kpoint", "energy")


@dataclass(frozen=True)
class Bins:
    """Bin of every reference state of every K, and what the bins are.

    kind          one of :data:`KINDS` (not 'none')
    of_state      list per K of int [n_s]: bin index of each state (band basis of that K)
    labels        float [n_bins, d]: band index (d = 1), reduced primitive k (d = 3) or the
                  [lowest, highest] renormalised energy − ε_F of the bin's states (d = 2, eV)
    """

    kind: str
    of_state: list
    labels: np.ndarray

    @property
    def n_bins(self) -> int:
        return int(self.labels.shape[0])


def check_bins(kind: str, n_kpoints: int):
    """InputError for an unknown kind, or 'kpoint' with several supercell K-points: a supercell
    couples only the states of one K (its transfers q), so k-bins of different K would form
    uncoupled blocks of the anisotropic equations (each with its own gap and sign); 'band' and
    'energy' bins collect states of every K and are coupled through each K's pairs."""
    if kind not in KINDS:
        raise InputError(f"spia.anisotropy_bins = '{kind}' is not one of: {', '.join(KINDS)}")
    if kind == "kpoint" and n_kpoints > 1:
        raise InputError(f"spia.anisotropy_bins = 'kpoint' needs one supercell K-point, the run has {n_kpoints}: "
                         "states of different K are never paired in a supercell, so their k-bins would not "
                         "couple; use 'band' or 'energy', or one K with a larger supercell")


def assign_bins(kind: str, energies, k_index, band_index, kpoints_frac, fermi_level_ev: float,
                n_bins: int = 4) -> Bins | None:
    """Bins of ``kind`` (None for 'none').

    Arguments are lists over the K-points: renormalised energies float [n_s] (eV, band basis,
    ascending within each primitive k), primitive k index int [n_s], reference band index int
    [n_s], reduced primitive k-points float [n_k, 3]. ``n_bins``: clusters of ``energy``.
    """
    check_bins(kind, len(energies))
    if kind == "none":
        return None
    if kind == "band":
        bands = [_band_of_state(e, k, b) for e, k, b in zip(energies, k_index, band_index)]
        labels, inv = np.unique(np.concatenate(bands), return_inverse=True)
        return Bins(kind, _split(inv, bands), labels[:, None].astype(float))
    if kind == "kpoint":
        kf = [np.round(np.mod(np.asarray(kp, float)[np.asarray(k)], 1.0), 8) % 1.0
              for kp, k in zip(kpoints_frac, k_index)]
        labels, inv = np.unique(np.concatenate(kf), axis=0, return_inverse=True)
        return Bins(kind, _split(inv.ravel(), kf), labels)
    e = np.concatenate([np.asarray(x, float) for x in energies])
    if not 1 <= n_bins <= e.size:
        raise InputError(f"spia.anisotropy_n_bins = {n_bins} must lie in [1, {e.size}] (the number of states)")
    order = np.argsort(e, kind="stable")
    inv = np.empty(e.size, dtype=int)
    inv[order] = (np.arange(e.size) * n_bins) // e.size
    labels = np.array([[e[inv == i].min(), e[inv == i].max()] for i in range(n_bins)]) - fermi_level_ev
    return Bins(kind, _split(inv, energies), labels)


def _band_of_state(energies, k_index, band_index) -> np.ndarray:
    """Reference band index of each renormalised state: by energy order within each k."""
    k = np.asarray(k_index)
    out = np.empty(k.size, dtype=int)
    for kk in np.unique(k):
        idx = np.flatnonzero(k == kk)
        out[idx[np.argsort(np.asarray(energies)[idx], kind="stable")]] = np.sort(np.asarray(band_index)[idx])
    return out


def _split(flat: np.ndarray, like: list) -> list:
    """``flat`` cut into pieces as long as the arrays of ``like``."""
    cuts = np.cumsum([len(x) for x in like])[:-1]
    return [np.asarray(p, dtype=int) for p in np.split(flat, cuts)]


def pair_sums_by_bin(w_mss: np.ndarray, weights_gs: np.ndarray, bin_of_state: np.ndarray,
                     n_bins: int, first_row: int = 0) -> np.ndarray:
    """P_ij(m) = Σ_{s∈i, t∈j} w_s W_st(m) w_t (real part): float [n_gamma, n_bins, n_bins, n_m] (1/eV).
    ``w_mss`` may hold only the rows ``first_row`` … of W (s over those rows: a rank's share)."""
    onehot = np.zeros((bin_of_state.size, n_bins))
    onehot[np.arange(bin_of_state.size), bin_of_state] = 1.0
    a = weights_gs[:, :, None] * onehot[None]                    # [g, s, i]
    left = a[:, first_row:first_row + w_mss.shape[1]]
    return np.einsum("gsi,mst,gtj->gijm", left, w_mss, a, optimize=True).real


def bin_weights(weights_k, bins: Bins) -> np.ndarray:
    """N_i = Σ_{s∈i} w_s over all K: float [n_gamma, n_bins] (1/eV); ``weights_k`` per K [n_gamma, n_s]."""
    out = np.zeros((weights_k[0].shape[0], bins.n_bins))
    for w, b in zip(weights_k, bins.of_state):
        for g in range(w.shape[0]):
            out[g] += np.bincount(b, weights=w[g], minlength=bins.n_bins)
    return out


def binned_coupling(pair_bins: np.ndarray, n_bin: np.ndarray, factor) -> tuple[np.ndarray, np.ndarray]:
    """(W_ij(m) float [n_gamma, n_b, n_b, n_m], w_i float [n_gamma, n_b]) from the bin-pair sums
    P_ij(m) [n_gamma, n_b, n_b, n_m] (1/eV, summed over K), N_i [n_gamma, n_b] (1/eV) and the
    bead-correction factor f(m) [n_m] (see the module docstring)."""
    n = n_bin.sum(axis=1)
    w = -np.asarray(factor)[None, None, None, :] * pair_bins * n[:, None, None, None] \
        / (n_bin[:, :, None, None] * n_bin[:, None, :, None])
    # W_st and W_ts agree in expectation only (finite sample): keep the symmetric part, which
    # leaves every Σ_ij (and so λ) unchanged
    w = 0.5 * (w + w.transpose(0, 2, 1, 3))
    return w, n_bin / n[:, None]
