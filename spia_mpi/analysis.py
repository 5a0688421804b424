"""Trajectory analysis of PIMD configurations (paper Fig. 1, Table S1, Eq. 4).

* :func:`unwrap` — continuous trajectories across periodic boundaries;
* :func:`msd` / :func:`diffusion_coefficient` — centroid mean squared displacement
  per species and D from a linear fit in a time window, with an error estimate;
* :func:`density_histogram` / :func:`density_peaks` — ion density on a grid of
  fractional coordinates, peaks refined as Gaussian centres (weighted moments),
  optionally symmetrised with spglib into an effective crystal structure;
* :func:`moving_average_split` — R = R_dif + ΔR_vib with a centred moving average
  of window w (fs) on the unwrapped trajectories (Eq. 4).

Units: Å, fs; D in Å²/fs (1 Å²/fs = 0.1 cm²/s).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError

A2_PER_FS_TO_CM2_PER_S = 0.1


def unwrap(traj_tav: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Unwrap positions [n_t, n_atoms, 3] (Å) by minimum-image steps between frames."""
    cell = np.asarray(cell, float)
    inv = np.linalg.inv(cell)
    frac = np.asarray(traj_tav, float) @ inv
    step = np.diff(frac, axis=0)
    step -= np.round(step)
    out = np.concatenate([frac[:1], frac[:1] + np.cumsum(step, axis=0)], axis=0)
    return out @ cell


def msd(traj_tav: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Mean squared displacement (Å²) vs lag, averaged over atoms and time origins, [n_lag]."""
    n = traj_tav.shape[0]
    max_lag = n // 2 if max_lag is None else min(max_lag, n - 1)
    out = np.zeros(max_lag + 1)
    for lag in range(1, max_lag + 1):
        d = traj_tav[lag:] - traj_tav[:-lag]
        out[lag] = np.mean(np.sum(d * d, axis=-1))
    return out


@dataclass(frozen=True)
class Diffusion:
    """D = slope/6 of MSD(t) fitted in [t_start, t_end] (fs)."""

    species: str
    d_a2_per_fs: float
    error_a2_per_fs: float
    t_start_fs: float
    t_end_fs: float

    @property
    def d_cm2_per_s(self) -> float:
        return self.d_a2_per_fs * A2_PER_FS_TO_CM2_PER_S

    @property
    def error_cm2_per_s(self) -> float:
        return self.error_a2_per_fs * A2_PER_FS_TO_CM2_PER_S


def diffusion_coefficient(t_fs, msd_a2, window=None, species: str = "") -> Diffusion:
    """Least-squares line MSD = a + 6Dt in ``window`` = (t0, t1) fs (default: middle half).

    The error is the slope's standard error from the fit residuals; MSD points are
    correlated, so treat it as a lower bound (block over independent runs for more).
    """
    t = np.asarray(t_fs, float)
    y = np.asarray(msd_a2, float)
    if window is None:
        window = (t[-1] * 0.25, t[-1] * 0.75)
    sel = (t >= window[0]) & (t <= window[1])
    if sel.sum() < 3:
        raise InputError(f"diffusion fit window {window} fs holds fewer than 3 MSD points")
    A = np.vstack([np.ones(sel.sum()), t[sel]]).T
    coef, *_ = np.linalg.lstsq(A, y[sel], rcond=None)
    resid = y[sel] - A @ coef
    dof = max(sel.sum() - 2, 1)
    cov = (resid @ resid / dof) * np.linalg.inv(A.T @ A)
    return Diffusion(species, coef[1] / 6.0, np.sqrt(max(cov[1, 1], 0.0)) / 6.0, float(window[0]), float(window[1]))


def species_msd(conf, max_lag: int | None = None):
    """{symbol: (t_fs [n_lag], MSD Å² [n_lag])} of the unwrapped centroids, per species."""
    from ase.data import chemical_symbols
    if conf.time_step_fs <= 0:
        raise InputError(f"{conf.source}: time step between samples is unknown (0): MSD needs it")
    cent = unwrap(conf.centroids(), conf.cell)
    out = {}
    for z in np.unique(conf.numbers):
        m = msd(cent[:, conf.numbers == z], max_lag)
        out[chemical_symbols[z]] = (np.arange(m.size) * conf.time_step_fs, m)
    return out


def moving_average_split(conf, window_fs: float):
    """(R_dif, ΔR_vib), each [n_conf, n_beads, n_atoms, 3] Å: centred moving average of the
    unwrapped bead trajectories over ``window_fs`` (edges: the window shrinks)."""
    if conf.time_step_fs <= 0:
        raise InputError(f"{conf.source}: time step between samples is unknown (0)")
    w = max(1, int(round(window_fs / conf.time_step_fs)))
    half = w // 2
    pos = conf.positions
    un = np.stack([unwrap(pos[:, b], conf.cell) for b in range(conf.n_beads)], axis=1)
    c = np.cumsum(np.concatenate([np.zeros_like(un[:1]), un], axis=0), axis=0)
    n = un.shape[0]
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    avg = (c[hi] - c[lo]) / (hi - lo)[:, None, None, None]
    return avg, un - avg


def density_histogram(conf, numbers_mask, bins=(40, 40, 40)) -> np.ndarray:
    """Histogram of all bead positions of the selected atoms in fractional coordinates,
    normalised to atoms per bin per configuration, float [b1, b2, b3]."""
    frac = (conf.positions[:, :, numbers_mask] @ np.linalg.inv(conf.cell)) % 1.0
    h, _ = np.histogramdd(frac.reshape(-1, 3), bins=bins, range=[(0, 1)] * 3)
    return h / (conf.n_conf * conf.n_beads)


def density_peaks(hist: np.ndarray, threshold: float = 0.2, radius: int = 2):
    """Local maxima of a periodic density above ``threshold``·max, refined to Gaussian centres.

    Returns (centres float [n_peak, 3] fractional, widths float [n_peak] in bins,
    weights float [n_peak] atoms). Centre and width are the first and second moments of
    the density in a (2·radius+1)³ periodic neighbourhood.
    """
    from scipy.ndimage import maximum_filter
    size = 2 * radius + 1
    peaks = (hist == maximum_filter(hist, size=size, mode="wrap")) & (hist > threshold * hist.max())
    shape = np.array(hist.shape)
    offs = np.array(np.meshgrid(*[np.arange(-radius, radius + 1)] * 3, indexing="ij")).reshape(3, -1).T
    centres, widths, weights = [], [], []
    for p in np.argwhere(peaks):
        idx = (p[None, :] + offs) % shape
        w = hist[idx[:, 0], idx[:, 1], idx[:, 2]]
        tot = w.sum()
        mean = (w @ offs) / tot
        var = (w @ np.sum((offs - mean) ** 2, axis=1)) / tot / 3
        centres.append(((p + mean + 0.5) / shape) % 1.0)
        widths.append(np.sqrt(var))
        weights.append(tot)
    return np.array(centres).reshape(-1, 3), np.array(widths), np.array(weights)


def symmetrise_structure(cell, frac_positions, numbers, symprec: float = 0.1):
    """Effective crystal from density peaks: spglib's refined (symmetrised) cell.

    Returns (ase.Atoms, space group symbol). ``symprec`` in Å is the tolerance with
    which peaks are considered symmetry-equivalent.
    """
    import spglib
    from ase import Atoms
    ds = spglib.get_symmetry_dataset((np.asarray(cell), np.asarray(frac_positions), np.asarray(numbers)),
                                     symprec=symprec)
    if ds is None:
        raise InputError(f"spglib found no symmetry for the density peaks (symprec = {symprec} Å)")
    lat, pos, num = spglib.refine_cell((np.asarray(cell), np.asarray(frac_positions), np.asarray(numbers)),
                                       symprec=symprec)
    return Atoms(numbers=num, scaled_positions=pos, cell=lat, pbc=True), ds["international"]
