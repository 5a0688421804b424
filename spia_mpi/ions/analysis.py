"""Trajectory analysis of PIMD configurations (paper Fig. 1, Table S1, Eq. 4).

* :func:`unwrap` — continuous trajectories across periodic boundaries;
* :func:`msd` / :func:`diffusion_coefficient` — centroid mean squared displacement
  per species and D from a linear fit in a time window, with an error estimate;
* :func:`density_histogram` / :func:`fit_species_peaks` — ion density on a grid of
  fractional coordinates (any cell); density peaks of every species found from the atoms'
  sites or the density maxima and fitted from the positions themselves by periodic k-means
  (:func:`cluster_peaks`: centre, covariance, occupancy of each peak, any width); a diffusing
  sublattice is reported as liquid-like (no peaks);
* :func:`effective_structure` — the peaks symmetrised with spglib into an effective
  crystal structure with space group and Wyckoff letters (Table S1);
* :func:`moving_average_split` / :func:`diffusion_path_configurations` —
  R = R_dif + ΔR_vib with a centred moving average of window w (fs) on the unwrapped
  bead trajectories (Eq. 4).

Units: Å, fs; D in Å²/fs (1 Å²/fs = 0.1 cm²/s).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError

logger = logging.getLogger(__name__)

A2_PER_FS_TO_CM2_PER_S = 0.1


def _unwrap_fractional(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates [n_t, …, 3] made continuous in time (axis 0) by minimum-image
    steps between consecutive frames."""
    step = np.diff(frac, axis=0)
    step -= np.round(step)
    return np.concatenate([frac[:1], frac[:1] + np.cumsum(step, axis=0)], axis=0)


def unwrap(traj_tav: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Unwrap positions [n_t, n_atoms, 3] (Å) by minimum-image steps between frames."""
    cell = np.asarray(cell, float)
    return _unwrap_fractional(np.asarray(traj_tav, float) @ np.linalg.inv(cell)) @ cell


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


def unwrap_ring_polymers(conf) -> np.ndarray:
    """Continuous bead trajectories, float [n_conf, n_beads, n_atoms, 3] (Å).

    In every frame each atom's ring polymer is made whole (bead b moved to the image of
    bead 0 nearest in fractional coordinates), then bead 0 is unwrapped in time by
    minimum-image steps between consecutive frames and the whole polymer follows it.
    Valid when bead spreads and frame-to-frame moves are shorter than half the spacing
    of every family of lattice planes (|Δs_i| < ½ in fractional coordinates).
    """
    inv = np.linalg.inv(conf.cell)
    frac = conf.positions @ inv                                   # [c, b, a, 3]
    rel = frac - frac[:, :1]
    rel -= np.round(rel)
    f0 = frac[:, 0]
    step = np.diff(f0, axis=0)
    step -= np.round(step)
    if step.size and np.abs(step).max() > 0.25:
        logger.warning("%s: an atom moves %.2f of a lattice-plane spacing between stored frames: unwrapping "
                       "may be ambiguous (store frames more often)", conf.source, np.abs(step).max())
    return (_unwrap_fractional(f0)[:, None] + rel) @ conf.cell


def moving_average_window(time_step_fs: float, window_fs: float, n_frames: int | None = None,
                          edges: str = "trim") -> int:
    """Half width h (frames) of the centred moving average of n_w = 2h + 1 frames, the odd
    frame count nearest to ``window_fs``/Δt. InputError for an unknown time step, a window
    shorter than 3 frames, an unknown ``edges`` or (``edges='trim'``) a trajectory shorter
    than the window."""
    if not time_step_fs > 0:
        raise InputError(f"time step between stored frames is {time_step_fs} fs: a moving average needs a "
                         "trajectory (independent samples have no time order)")
    if not (np.isfinite(window_fs) and window_fs > 0):
        raise InputError(f"moving-average window {window_fs} fs must be positive")
    if edges not in ("trim", "shrink"):
        raise InputError(f"moving-average edges must be 'trim' or 'shrink', got '{edges}'")
    h = int(np.floor((window_fs / time_step_fs - 1) / 2 + 0.5))
    if h < 1:
        raise InputError(f"moving-average window {window_fs} fs is shorter than 3 stored frames "
                         f"(3 × {time_step_fs} fs = {3 * time_step_fs} fs)")
    if n_frames is not None and edges == "trim" and n_frames < 2 * h + 1:
        raise InputError(f"moving-average window {window_fs} fs = {2 * h + 1} frames of {time_step_fs} fs is longer "
                         f"than the trajectory ({n_frames} frames)")
    return h


def moving_average_split(conf, window_fs: float, edges: str = "trim"):
    """Paper Eq. 4, R(t, τ) = R_dif(t, τ) + ΔR_vib(t, τ), by a centred moving average in time.

    With R̃ the continuous bead trajectories (:func:`unwrap_ring_polymers`), Δt the time
    between stored frames and n_w = 2h + 1 the odd frame count nearest to ``window_fs``/Δt:
    R_dif(t, τ) = (1/(2h_t + 1)) Σ_{s=−h_t}^{h_t} R̃(t + sΔt, τ), for every bead τ and atom;
    ``edges='trim'``: h_t = h and only frames h … n−1−h are returned (every one a full
    window); ``'shrink'``: all frames, h_t = min(h, t, n−1−t) (centred, narrower at the ends).
    The filter is linear, so the centroid of R_dif is the moving average of the centroid
    trajectory, and the bead spread (fast ring-polymer modes) is averaged away.

    Returns (R_dif, ΔR_vib, frames): float [n_out, n_beads, n_atoms, 3] Å each (unwrapped),
    and the int [n_out] indices of the frames of ``conf`` they belong to.
    """
    h = moving_average_window(conf.time_step_fs, window_fs, conf.n_conf, edges)
    un = unwrap_ring_polymers(conf)
    n = un.shape[0]
    c = np.concatenate([np.zeros_like(un[:1]), np.cumsum(un, axis=0)], axis=0)
    frames = np.arange(h, n - h) if edges == "trim" else np.arange(n)
    ht = np.minimum(h, np.minimum(frames, n - 1 - frames))
    avg = (c[frames + ht + 1] - c[frames - ht]) / (2 * ht + 1)[:, None, None, None]
    return avg, un[frames] - avg, frames


def diffusion_path_configurations(conf, window_fs: float, edges: str = "trim"):
    """Configurations of the diffusion paths R_dif (:func:`moving_average_split`), each atom's
    ring polymer shifted by a lattice vector so that its centroid lies in the cell; attrs
    ``split_*`` record the window (fs and frames), the edge treatment and the first frame."""
    from spia_mpi.ions.configurations import Configurations
    dif, _, frames = moving_average_split(conf, window_fs, edges)
    inv = np.linalg.inv(conf.cell)
    shift = np.floor(dif.mean(axis=1) @ inv)                        # [c, a, 3] lattice vectors
    dif = dif - (shift @ conf.cell)[:, None]
    h = moving_average_window(conf.time_step_fs, window_fs)
    extra = dict(conf.extra)
    extra.update({"split_window_fs": (2 * h + 1) * conf.time_step_fs, "split_window_frames": 2 * h + 1,
                  "split_requested_window_fs": float(window_fs), "split_edges": edges,
                  "split_first_frame": int(frames[0]),
                  "split_definition": "R_dif(t,tau) = centred moving average over 2h+1 frames of the unwrapped "
                                      "bead trajectory R(t,tau) (paper Eq. 4)"})
    return Configurations(dif, conf.cell, conf.numbers, conf.masses, conf.temperature_k, conf.time_step_fs,
                          f"diffusion path ({(2 * h + 1) * conf.time_step_fs:g} fs moving average) of {conf.source}",
                          extra)


def density_histogram(conf, numbers_mask, bins=(40, 40, 40)) -> np.ndarray:
    """Histogram of all bead positions of the selected atoms in fractional coordinates,
    normalised to atoms per bin per configuration (bin i covers [i, i+1)/n), float [b1, b2, b3]."""
    frac = (conf.positions[:, :, numbers_mask] @ np.linalg.inv(conf.cell)) % 1.0
    h, _ = np.histogramdd(frac.reshape(-1, 3), bins=bins, range=[(0, 1)] * 3)
    return h / (conf.n_conf * conf.n_beads)


def species_density(conf, bins=(40, 40, 40)) -> dict:
    """{atomic number: :func:`density_histogram` of that species} for every species."""
    return {int(z): density_histogram(conf, conf.numbers == z, bins) for z in np.unique(conf.numbers)}


@dataclass
class DensityPeaks:
    """3D Gaussian peaks of the ion density (all species), n = number of peaks.

    numbers         int [n]          atomic number of the species
    centres_frac    float [n, 3]     centres, fractional coordinates in [0, 1)
    covariances_a2  float [n, 3, 3]  covariance Σ of the positions in the peak (Å², Cartesian)
    weights         float [n]        mean number of atoms in the peak (the site occupancy)
    liquid_like     tuple            atomic numbers of species with no peaks: a diffusing
                                     (liquid-like) sublattice, the paper's R^density-peaks = ∅
    """

    numbers: np.ndarray
    centres_frac: np.ndarray
    covariances_a2: np.ndarray
    weights: np.ndarray
    liquid_like: tuple = ()

    def __len__(self):
        return int(self.numbers.size)

    def centres_cart(self, cell) -> np.ndarray:
        """Centres in Å, float [n, 3]."""
        return self.centres_frac @ np.asarray(cell, float)

    @staticmethod
    def concatenate(parts) -> "DensityPeaks":
        parts = list(parts)
        if not parts:
            return DensityPeaks(np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0))
        return DensityPeaks(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                              ("numbers", "centres_frac", "covariances_a2", "weights")),
                            tuple(z for p in parts for z in p.liquid_like))


_IMAGES = np.array(np.meshgrid(*[(-1.0, 0.0, 1.0)] * 3, indexing="ij")).reshape(3, -1).T     # [27, 3]
LOCALISED = 0.4        # an atom is on a site if its RMS spread < this × the distance to the nearest other atom
GAUSSIAN_KURTOSIS = 13.0   # Mardia's kurtosis: 15 for a 3D Gaussian, ≈ 11.4 for a uniform (Voronoi) cell
MAX_SITES_PER_ATOM = 4.0   # a diffusing species has sites only if its peaks are at most this many per atom


def diffusion_extent(conf, mask) -> tuple[float, float]:
    """(largest RMS displacement of the bead centroids from the first configuration over the
    trajectory, mean spacing (V/N)^{1/3} of the N atoms selected by ``mask``), both Å: an atom that
    moves farther than half the spacing has left its own cell (meaningful for trajectories only)."""
    cen = unwrap(conf.centroids()[:, mask], conf.cell)
    rms = np.sqrt(((cen - cen[0]) ** 2).sum(-1).mean(-1))
    return float(rms.max()), float((abs(np.linalg.det(conf.cell)) / int(np.sum(mask))) ** (1 / 3))


def density_maxima(hist, threshold: float = 0.1, radius: int = 2, smooth: float = 1.0) -> np.ndarray:
    """Peak positions of a periodic density histogram, float [n, 3] fractional (bin centres).

    The periodic local maxima of the histogram smoothed by a Gaussian of ``smooth`` bins,
    above ``threshold`` × its maximum, more than ``radius`` bins apart (largest first).
    """
    from scipy.ndimage import gaussian_filter, maximum_filter
    hist = np.asarray(hist, float)
    shape = np.array(hist.shape)
    if hist.ndim != 3 or np.any(shape < 2 * radius + 1):
        raise InputError(f"density grid {list(hist.shape)} is smaller than the peak window of {2 * radius + 1} bins")
    det = gaussian_filter(hist, smooth, mode="wrap") if smooth > 0 else hist
    if det.max() <= 0:
        return np.zeros((0, 3))
    cand = np.argwhere((det == maximum_filter(det, size=2 * radius + 1, mode="wrap")) & (det > threshold * det.max()))
    cand = cand[np.argsort(-det[tuple(cand.T)], kind="stable")]
    seeds = []
    for p in cand:                                                # non-maximum suppression
        if all(np.abs((p - q + shape // 2) % shape - shape // 2).max() > radius for q in seeds):
            seeds.append(p)
    return (np.array(seeds).reshape(-1, 3) + 0.5) / shape


def _nearest_image(points_frac, seeds_frac, cell):
    """Nearest seed (any periodic image) of every point: (seed index [n], displacement Å [n, 3])."""
    from scipy.spatial import cKDTree
    cell = np.asarray(cell, float)
    images = (seeds_frac[:, None, :] + _IMAGES[None]).reshape(-1, 3) @ cell
    pts = (points_frac % 1.0) @ cell
    _, idx = cKDTree(images).query(pts)
    return idx // len(_IMAGES), pts - images[idx]


def atom_sites(frac_cat, cell):
    """Sites of localised atoms: (circular-mean positions float [n_atoms, 3] fractional, RMS spread
    Å [n_atoms], distance Å from each mean to the nearest other mean or periodic self-image [n_atoms]).

    ``frac_cat``: fractional positions [n_samples, n_atoms, 3] of one species (any image).
    """
    cell = np.asarray(cell, float)
    ang = 2 * np.pi * frac_cat
    mean = (np.arctan2(np.sin(ang).mean(0), np.cos(ang).mean(0)) / (2 * np.pi)) % 1.0      # [a, 3]
    d = frac_cat - mean
    d -= np.round(d)
    spread = np.sqrt(((d @ cell) ** 2).sum(-1).mean(0))
    rel = mean[None, :, None, :] - mean[:, None, None, :] + _IMAGES[None, None]              # [a, b, 27, 3]
    rel -= np.round(rel - _IMAGES[None, None])
    dist = np.linalg.norm(rel @ cell, axis=-1)
    n = len(mean)
    dist[np.arange(n), np.arange(n), 13] = np.inf                 # image 13 is (0, 0, 0): the atom itself
    return mean, spread, dist.min(axis=(1, 2))


def cluster_peaks(frac_samples, seeds_frac, cell, n_frames: int, number: int = 0, iterations: int = 5):
    """Gaussian peaks from positions by periodic k-means (no histogram, so any width).

    frac_samples: float [n, 3] fractional positions of one species (all configurations and beads);
    seeds_frac: float [n_seed, 3] starting centres; n_frames: configurations × beads (the
    occupancy of a peak is its sample count / n_frames). Every sample joins the nearest centre
    (minimum image, Å); centres move to the mean of their samples; ``iterations`` rounds.
    Returns (:class:`DensityPeaks`, Mardia's kurtosis b₂ of the whitened displacements pooled over
    the peaks (15 for Gaussian peaks)).
    """
    cell = np.asarray(cell, float)
    centres = np.asarray(seeds_frac, float) % 1.0
    inv = np.linalg.inv(cell)
    empty = DensityPeaks(np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0))
    for _ in range(max(1, iterations)):
        if len(centres) == 0:                 # no seeds, or every cluster too small to be a peak
            return empty, np.nan
        owner, disp = _nearest_image(frac_samples, centres, cell)
        counts = np.bincount(owner, minlength=len(centres))
        keep = counts > 3
        shift = np.zeros((len(centres), 3))
        np.add.at(shift, owner, disp)
        centres = (centres + (shift / np.maximum(counts, 1)[:, None]) @ inv) % 1.0
        centres = centres[keep]
    if len(centres) == 0:
        return empty, np.nan
    owner, disp = _nearest_image(frac_samples, centres, cell)
    counts = np.bincount(owner, minlength=len(centres))
    covs, b2, total = np.zeros((len(centres), 3, 3)), 0.0, 0
    for j in range(len(centres)):
        x = disp[owner == j]
        if len(x) < 4:
            continue
        x = x - x.mean(0)
        covs[j] = x.T @ x / len(x)
        y = np.linalg.solve(covs[j] + 1e-12 * np.eye(3), x.T).T
        b2 += ((x * y).sum(1) ** 2).sum()
        total += len(x)
        centres[j] = (centres[j] + (disp[owner == j].mean(0)) @ inv) % 1.0
    ok = counts >= 4
    peaks = DensityPeaks(np.full(int(ok.sum()), number, int), centres[ok], covs[ok], counts[ok] / n_frames)
    return peaks, (b2 / total if total else np.nan)


def fit_species_peaks(conf, bins=(40, 40, 40), threshold: float = 0.1, min_weight: float = 0.05):
    """Density histograms and Gaussian density peaks of every species of ``conf``.

    Per species: if every atom stays on a site (RMS spread around its own circular mean <
    LOCALISED × the distance to the nearest other atom), the atoms' mean positions seed the
    peaks; otherwise the maxima of the density histogram do (:func:`density_maxima`, so sites
    shared by hopping atoms are found). The peaks are then fitted from the positions themselves
    (:func:`cluster_peaks`: centres, covariances, occupancies — exact moments, whatever the width
    compared to a histogram bin). A species whose peaks are not Gaussian-shaped (Mardia's
    kurtosis < GAUSSIAN_KURTOSIS: the density fills the cell like a liquid) is reported as
    liquid-like with no peaks; peaks of weight < ``min_weight`` atoms are dropped; a peak holding
    more than one atom or wider than half the distance to its neighbour is warned about.

    Returns ({atomic number: hist [b1, b2, b3]}, :class:`DensityPeaks` of all species).
    """
    from ase.data import chemical_symbols
    hists = species_density(conf, bins)
    inv = np.linalg.inv(conf.cell)
    n_frames = conf.n_conf * conf.n_beads
    parts = []
    for z, h in hists.items():
        name = chemical_symbols[z]
        frac = conf.positions[:, :, conf.numbers == z] @ inv                     # [c, b, a, 3]
        per_atom = frac.reshape(-1, frac.shape[2], 3)
        mean, spread, nearest = atom_sites(per_atom, conf.cell)
        localised = bool(np.all(spread < LOCALISED * nearest))
        seeds = mean if localised else density_maxima(h, threshold)
        peaks, b2 = cluster_peaks(per_atom.reshape(-1, 3), seeds, conf.cell, n_frames, number=z)
        keep = peaks.weights >= min_weight
        peaks = DensityPeaks(peaks.numbers[keep], peaks.centres_frac[keep], peaks.covariances_a2[keep],
                             peaks.weights[keep])
        why = None if localised else _liquid_like(conf, conf.numbers == z, peaks, b2)
        if why:
            logger.warning("%s: %s (atoms move %.2f Å RMS around their mean, nearest neighbour %.2f Å): a diffusing, "
                           "liquid-like sublattice — no density peaks reported for it", name, why, np.median(spread),
                           np.median(nearest))
            parts.append(DensityPeaks(np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0), (int(z),)))
            continue
        _check_peaks(name, peaks, conf.cell)
        parts.append(peaks)
    return hists, DensityPeaks.concatenate(parts)


def _liquid_like(conf, mask, peaks: DensityPeaks, b2: float) -> str | None:
    """Why a species that is not localised has no density peaks, or None if its peaks are sites.

    (1) The peaks are not Gaussian-shaped (Mardia's kurtosis b₂ < GAUSSIAN_KURTOSIS: the density
    fills space). (2) In a trajectory the atoms move farther than half their mean spacing (out of
    their own cell: they diffuse, :func:`diffusion_extent`)
    and the density maxima number more than MAX_SITES_PER_ATOM per atom (mean occupancy below
    1/MAX_SITES_PER_ATOM): the maxima are segments of the atoms' own paths, too few samples of a
    flat density, not sites that atoms return to (a superionic sublattice hops between a few sites
    per atom, each with a sizeable occupancy).
    """
    if not b2 >= GAUSSIAN_KURTOSIS:
        return (f"the density has no Gaussian peaks (kurtosis {b2:.1f} < {GAUSSIAN_KURTOSIS:g})" if np.isfinite(b2)
                else "no density maximum gathers 4 samples")
    n_atoms = int(np.sum(mask))
    if conf.time_step_fs > 0 and conf.n_conf > 1 and len(peaks) > MAX_SITES_PER_ATOM * n_atoms:
        moved, spacing = diffusion_extent(conf, mask)
        if moved > 0.5 * spacing:
            return (f"the atoms diffuse ({moved:.2f} Å RMS from their start in {conf.time_step_fs * (conf.n_conf - 1):g} "
                    f"fs, more than half their mean spacing {spacing:.2f} Å) and the {len(peaks)} density maxima are "
                    f"more than {MAX_SITES_PER_ATOM:g} per atom ({n_atoms} atoms): they trace the paths, not sites")
    return None


def _check_peaks(name: str, peaks: DensityPeaks, cell):
    """Warnings naming the species for peaks outside sane bounds (occupancy > 1.05 atoms, RMS
    width above half the distance to the nearest other peak of the species)."""
    over = peaks.weights > 1.05
    if over.any():
        logger.warning("%s: %d density peak(s) hold more than one atom (up to %.2f): two sites merged or atoms "
                       "sharing a site — check the structure", name, int(over.sum()), peaks.weights.max())
    if len(peaks) > 1:
        _, _, nearest = atom_sites(peaks.centres_frac[None], cell)
        width = np.sqrt(np.linalg.eigvalsh(peaks.covariances_a2).max(axis=1))
        wide = width > 0.5 * nearest
        if wide.any():
            logger.warning("%s: %d density peak(s) are wider (RMS up to %.2f Å) than half the distance to the "
                           "nearest peak: the sites overlap, positions and occupancies are unreliable", name,
                           int(wide.sum()), width[wide].max())


@dataclass
class EffectiveStructure:
    """Effective crystal structure from density peaks (paper Table S1).

    atoms          ase.Atoms: spglib's standardised conventional cell, symmetrised
                   (idealised) positions; ``atoms.arrays['occupancy']`` (atoms per site,
                   averaged over each orbit), ``atoms.info['wyckoffs']``, ``['spacegroup']``
    number         space-group number; international: its Hermann–Mauguin symbol
    wyckoffs       Wyckoff letter per atom of ``atoms``
    sites          one row per orbit: (symbol, multiplicity + letter, frac xyz, occupancy)
    """

    atoms: object
    number: int
    international: str
    wyckoffs: list
    sites: list


def effective_structure(cell, peaks: DensityPeaks, symprec: float = 0.1) -> EffectiveStructure:
    """Sites at the peak centres of all species, symmetrised with spglib (``symprec`` in Å:
    peaks that far from symmetric positions still count as equivalent)."""
    import spglib
    from ase import Atoms
    from ase.data import chemical_symbols
    if len(peaks) == 0:
        raise InputError("no density peaks: cannot build an effective structure")
    cell = np.asarray(cell, float)
    ds = spglib.get_symmetry_dataset((cell, peaks.centres_frac, peaks.numbers), symprec=symprec)
    if ds is None:
        raise InputError(f"spglib found no symmetry for the density peaks (symprec = {symprec} Å)")
    orbit = np.asarray(ds["equivalent_atoms"])
    occ_in = np.array([peaks.weights[orbit == orbit[a]].mean() for a in range(len(peaks))])
    prim_to_input = {int(p): a for a, p in enumerate(ds["mapping_to_primitive"])}
    std_occ = np.array([occ_in[prim_to_input[int(p)]] for p in ds["std_mapping_to_primitive"]])
    lat, pos, num = np.asarray(ds["std_lattice"]), np.asarray(ds["std_positions"]) % 1.0, np.asarray(ds["std_types"])
    ds_std = spglib.get_symmetry_dataset((lat, pos, num), symprec=1e-5)
    wy = list(ds_std["wyckoffs"])
    atoms = Atoms(numbers=num, scaled_positions=pos, cell=lat, pbc=True)
    atoms.set_array("occupancy", std_occ)
    atoms.info.update({"spacegroup": ds_std["international"], "spacegroup_number": int(ds_std["number"]),
                       "wyckoffs": "".join(wy), "symprec_A": symprec})
    sites = []
    std_orbit = np.asarray(ds_std["equivalent_atoms"])
    for r in np.unique(std_orbit):
        mult = int((std_orbit == r).sum())
        sites.append((chemical_symbols[num[r]], f"{mult}{wy[r]}", pos[r].copy(), float(std_occ[r])))
    return EffectiveStructure(atoms, int(ds_std["number"]), str(ds_std["international"]), wy, sites)
