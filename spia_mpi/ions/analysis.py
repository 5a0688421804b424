"""Trajectory analysis of PIMD configurations (paper Fig. 1, Table S1, Eq. 4).

* :func:`unwrap` — continuous trajectories across periodic boundaries;
* :func:`msd` / :func:`diffusion_coefficient` — centroid mean squared displacement
  per species and D from a linear fit in a time window, with an error estimate;
* :func:`density_histogram` / :func:`fit_density_peaks` / :func:`fit_species_peaks` —
  ion density on a grid of fractional coordinates (any cell), every peak fitted with a
  3D Gaussian by least squares (centre, covariance, occupancy), all species;
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
    covariances_a2  float [n, 3, 3]  Gaussian covariance Σ (Å², Cartesian, bin size removed)
    weights         float [n]        integral of the Gaussian: mean number of atoms in the peak
                                     (the site occupancy)
    background      float [n]        constant density fitted under the peak (atoms per bin)
    """

    numbers: np.ndarray
    centres_frac: np.ndarray
    covariances_a2: np.ndarray
    weights: np.ndarray
    background: np.ndarray

    def __len__(self):
        return int(self.numbers.size)

    def centres_cart(self, cell) -> np.ndarray:
        """Centres in Å, float [n, 3]."""
        return self.centres_frac @ np.asarray(cell, float)

    @staticmethod
    def concatenate(parts) -> "DensityPeaks":
        parts = list(parts)
        if not parts:
            return DensityPeaks(np.zeros(0, int), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0), np.zeros(0))
        return DensityPeaks(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                              ("numbers", "centres_frac", "covariances_a2", "weights", "background")))


_VARIANCE_FLOOR = 0.02        # × max smoothed density: keeps empty bins' weight finite
_IMAGES = np.array(np.meshgrid(*[(-1.0, 0.0, 1.0)] * 3, indexing="ij")).reshape(3, -1).T     # [27, 3]


def _gaussian(x, cov):
    """Normalised 3D Gaussian N(x; 0, cov) (1/Å³) at x float [..., 3] Å."""
    inv = np.linalg.inv(cov)
    q = ((x @ inv) * x).sum(axis=-1)
    return np.exp(-0.5 * q) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))


_TRIL = np.tril_indices(3)


def _cov_from(lvec):
    L = np.zeros((3, 3))
    L[_TRIL] = lvec
    return L @ L.T


def fit_density_peaks(hist, cell, threshold: float = 0.1, radius: int = 4, smooth: float = 1.0,
                      min_weight: float = 0.05, sweeps: int = 3, number: int = 0) -> DensityPeaks:
    """Fit every peak of a periodic density histogram with a 3D Gaussian (least squares).

    hist: float [n1, n2, n3], atoms per bin (:func:`density_histogram`: bin i spans
    [i, i+1)/n_v in fractional coordinates); cell: float [3, 3] Å, lattice vectors as rows,
    any shape. Peaks are the periodic local maxima of the histogram smoothed by a Gaussian of
    ``smooth`` bins, above ``threshold`` × its maximum, at least ``radius`` + 1 bins apart
    (largest first). Each peak is fitted in the (2·radius+1)³ periodic window of bins around
    its maximum with the model, per bin,

        n(x) = w V_bin N(x − μ; Σ + Σ_bin) + c,   Σ_bin = Σ_v h_v h_vᵀ / 12,

    (h_v = a_v/n_v the bin edges, Σ_bin the covariance of a uniform bin, so Σ is the
    density's own covariance to first order in the bin size; Σ = L Lᵀ keeps it positive
    definite), parameters w (atoms), μ (Å), L (Å), c (atoms per bin), by
    ``scipy.optimize.least_squares`` (Levenberg–Marquardt) with Poisson-like residual weights
    1/√(smoothed density + 0.02 × its maximum). The fitted Gaussians of the other peaks (summed over
    the 27 nearest periodic images) are subtracted from each window, in ``sweeps``
    Gauss–Seidel passes. Peaks of weight < ``min_weight`` atoms are dropped; peaks whose
    centres lie within one combined standard deviation are merged.
    Assumes peaks narrower than about a sixth of the cell and at least ~1 bin wide.
    """
    from scipy.ndimage import gaussian_filter, maximum_filter
    from scipy.optimize import least_squares
    hist = np.asarray(hist, float)
    cell = np.asarray(cell, float)
    shape = np.array(hist.shape)
    if hist.ndim != 3 or np.any(shape < 2 * radius + 1):
        raise InputError(f"density grid {list(hist.shape)} is smaller than the fit window of {2 * radius + 1} bins")
    H = cell / shape[:, None]                                     # bin edge vectors (rows), Å
    v_bin = abs(np.linalg.det(cell)) / shape.prod()
    sig_bin = H.T @ H / 12.0
    inv_cell = np.linalg.inv(cell)
    det = gaussian_filter(hist, smooth, mode="wrap") if smooth > 0 else hist
    if det.max() <= 0:
        return DensityPeaks.concatenate([])
    cand = np.argwhere((det == maximum_filter(det, size=2 * radius + 1, mode="wrap")) & (det > threshold * det.max()))
    cand = cand[np.argsort(-det[tuple(cand.T)], kind="stable")]
    seeds = []
    for p in cand:                                                # non-maximum suppression
        if all(np.abs((p - q + shape // 2) % shape - shape // 2).max() > radius for q in seeds):
            seeds.append(p)
    offs = np.array(np.meshgrid(*[np.arange(-radius, radius + 1)] * 3, indexing="ij")).reshape(3, -1).T
    X = offs @ H                                                  # bin centres relative to the seed bin, Å
    r_win = np.linalg.norm(np.abs(radius) * np.abs(H).sum(axis=0))
    data = [hist[tuple(((p + offs) % shape).T)] for p in seeds]
    big = [j for j, y in enumerate(data) if y.sum() >= min_weight]        # noise maxima: skip the fit
    seeds, data = [seeds[j] for j in big], [data[j] for j in big]
    # Poisson-like weights 1/√(variance), variance ∝ the smoothed density (+ a floor)
    sigma = [np.sqrt(det[tuple(((p + offs) % shape).T)] + _VARIANCE_FLOOR * det.max()) for p in seeds]

    def model(par):
        return par[0] * v_bin * _gaussian(X - par[1:4], _cov_from(par[4:10]) + sig_bin) + par[10]

    def centre_frac(j, par):
        return ((seeds[j] + 0.5) / shape + par[1:4] @ inv_cell) % 1.0

    def others(j, pars):
        """Fitted Gaussians of the other peaks in window j (periodic images summed)."""
        out = np.zeros(len(offs))
        fj = (seeds[j] + 0.5) / shape
        for k, par in enumerate(pars):
            if k == j or par is None:
                continue
            cov = _cov_from(par[4:10]) + sig_bin
            d = fj - centre_frac(k, par)
            d -= np.round(d)
            dc = np.linalg.norm((d + _IMAGES) @ cell, axis=1).min()
            if dc > r_win + 6 * np.sqrt(np.linalg.eigvalsh(cov).max()):
                continue
            x = (X[:, None, :] + ((d + _IMAGES) @ cell)[None])    # [window, image, 3]
            out += par[0] * v_bin * _gaussian(x, cov).sum(axis=1)
        return out

    def start(y):
        w = max(y.sum(), 1e-12)
        mu = (y @ X) / w
        dx = X - mu
        cov = (dx * y[:, None]).T @ dx / w - sig_bin
        lam, vec = np.linalg.eigh(0.5 * (cov + cov.T))
        floor = (0.3 * np.linalg.norm(H, axis=1).min()) ** 2
        cov = (vec * np.maximum(lam, floor)) @ vec.T
        return np.concatenate([[w], mu, np.linalg.cholesky(cov)[_TRIL], [0.0]])

    pars = [None] * len(seeds)
    for _ in range(max(1, sweeps)):
        for j, y in enumerate(data):
            target = y - others(j, pars)
            p0 = pars[j] if pars[j] is not None else start(np.clip(target, 0, None))
            res = least_squares(lambda par: (model(par) - target) / sigma[j], p0, method="lm", x_scale="jac",
                                max_nfev=400)
            pars[j] = res.x
    keep = [j for j, par in enumerate(pars) if par[0] >= min_weight]
    cen = np.array([centre_frac(j, pars[j]) for j in keep]).reshape(-1, 3)
    cov = np.array([_cov_from(pars[j][4:10]) for j in keep]).reshape(-1, 3, 3)
    w = np.array([pars[j][0] for j in keep])
    bg = np.array([pars[j][10] for j in keep])
    # merge duplicates (one peak seeded twice): centres within one combined standard deviation
    alive = np.ones(len(keep), bool)
    for a in np.argsort(-w):
        if not alive[a]:
            continue
        for b in range(len(keep)):
            if b == a or not alive[b]:
                continue
            d = cen[b] - cen[a]
            d -= np.round(d)
            dx = d @ cell
            if dx @ np.linalg.solve(cov[a] + cov[b], dx) < 1.0:
                tot = w[a] + w[b]
                cen[a] = (cen[a] + (w[b] / tot) * d) % 1.0
                w[a] = tot
                alive[b] = False
    return DensityPeaks(np.full(int(alive.sum()), number, int), cen[alive], cov[alive], w[alive], bg[alive])


def fit_species_peaks(conf, bins=(40, 40, 40), **kwargs):
    """Density histograms and Gaussian peaks of every species of ``conf``.

    Returns ({atomic number: hist [b1, b2, b3]}, :class:`DensityPeaks` of all species);
    ``kwargs`` go to :func:`fit_density_peaks`."""
    hists = species_density(conf, bins)
    return hists, DensityPeaks.concatenate(fit_density_peaks(h, conf.cell, number=z, **kwargs)
                                           for z, h in hists.items())


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
