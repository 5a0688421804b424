"""Trajectory analysis (paper Fig. 1, Table S1, Eq. 4): MSD and D, Gaussian density peaks,
effective structure with spglib, moving-average diffusion paths, analysis HDF5 and figures."""
import numpy as np
import pytest
from ase.geometry import cellpar_to_cell

from spia_mpi.ions import analysis
from spia_mpi.ions import configurations as cf
from spia_mpi.errors import InputError

TRICLINIC = cellpar_to_cell([5.0, 5.6, 6.2, 76, 82, 68])


def rotated_cov(sigmas, angles):
    """Σ = R diag(σ²) Rᵀ with R the rotation about x, y, z by ``angles`` (rad), Å²."""
    from scipy.spatial.transform import Rotation
    R = Rotation.from_euler("xyz", angles).as_matrix()
    return R @ np.diag(np.square(sigmas)) @ R.T


def test_random_walk_diffusion_coefficient():
    """3D Gaussian random walk with step variance σ² per direction per Δt: D = σ²/(2Δt)."""
    rng = np.random.default_rng(4)
    n_t, n_at, sigma, dt = 2000, 200, 0.05, 1.0
    traj = np.cumsum(rng.normal(0, sigma, size=(n_t, n_at, 3)), axis=0)
    m = analysis.msd(traj, max_lag=200)
    t = np.arange(m.size) * dt
    d = analysis.diffusion_coefficient(t, m, (20, 180))
    exact = sigma ** 2 / (2 * dt)
    assert abs(d.d_a2_per_fs - exact) < max(5 * d.error_a2_per_fs, 0.03 * exact)


# --------------------------------------------------------------------------
# task 1: 3D Gaussian fits of density peaks, non-orthogonal periodic cell
# --------------------------------------------------------------------------

SITES = np.array([[0.98, 0.50, 0.02],            # across the cell boundary (a₁ and a₃ faces)
                  [0.40, 0.30, 0.55], [0.70, 0.75, 0.25], [0.15, 0.80, 0.60]])
COVS = [rotated_cov((0.25, 0.15, 0.10), (0.3, 0.7, 1.1)), rotated_cov((0.20, 0.20, 0.12), (1.0, 0.2, 0.4)),
        rotated_cov((0.18, 0.13, 0.10), (0.5, 1.3, 0.2)), rotated_cov((0.12, 0.10, 0.09), (0.1, 0.1, 0.9))]
# (species Z, occupancy): H atom 0 sits at site 0 with probability 0.7 and at site 1 otherwise,
# H atom 1 always at site 2, Li always at site 3
TRUTH = [(1, 0.7), (1, 0.3), (1, 1.0), (3, 1.0)]


def test_gaussian_fit_of_density_peaks_triclinic_cell():
    """Samples from known anisotropic Gaussians at known sites of a triclinic cell (one peak cut
    by the cell faces) → fitted centres, covariances and occupancies equal the truth within
    5 standard errors of an N_k-sample estimate: centre σ_i/√N_k per Cartesian direction,
    covariance √((Σ_iiΣ_jj + Σ_ij²)/N_k), occupancy √(w/N) (Poisson count of the peak)."""
    rng = np.random.default_rng(0)
    n = 4000
    where = [np.where(rng.random(n) < 0.7, 0, 1), np.full(n, 2), np.full(n, 3)]
    pos = np.empty((n, 1, 3, 3))
    for a, site in enumerate(where):
        for k in np.unique(site):
            m = site == k
            pos[m, 0, a] = SITES[k] @ TRICLINIC + rng.multivariate_normal(np.zeros(3), COVS[k], size=m.sum())
    conf = cf.Configurations(pos, TRICLINIC, [1, 1, 3], [1.008, 1.008, 6.94], 300.0)
    hists, peaks = analysis.fit_species_peaks(conf, (40, 40, 40))
    assert sorted(hists) == [1, 3] and np.isclose(hists[1].sum(), 2.0) and np.isclose(hists[3].sum(), 1.0)
    assert len(peaks) == 4 and sorted(peaks.numbers.tolist()) == [1, 1, 1, 3]
    for k, (z, w) in enumerate(TRUTH):
        d = peaks.centres_frac - SITES[k]
        d -= np.round(d)
        dist = np.linalg.norm(d @ TRICLINIC, axis=1) + 100.0 * (peaks.numbers != z)
        j = int(np.argmin(dist))
        n_k = w * n
        sig = COVS[k]
        err_mu = (d[j] @ TRICLINIC) / np.sqrt(np.diag(sig) / n_k)
        assert np.abs(err_mu).max() < 5, (k, err_mu)
        se_cov = np.sqrt((np.outer(np.diag(sig), np.diag(sig)) + sig ** 2) / n_k)
        err_cov = (peaks.covariances_a2[j] - sig) / se_cov
        assert np.abs(err_cov).max() < 5, (k, err_cov)
        assert abs(peaks.weights[j] - w) < 5 * np.sqrt(w / n), (k, peaks.weights[j], w)
    assert np.all(peaks.centres_frac >= 0) and np.all(peaks.centres_frac < 1)


def test_density_maxima_refuse_a_grid_smaller_than_the_window():
    with pytest.raises(InputError, match="smaller than the peak window"):
        analysis.density_maxima(np.ones((6, 6, 6)), radius=4)


def test_species_of_very_different_spreads_give_fd3m_with_default_bins():
    """Harmonic Li₂MgH₁₆ (N_b = 1, 400 samples) with isotropic spreads σ = 0.02 Å for Li and Mg
    (far below the default bin of ≈ 0.17 Å) and 0.15 Å for H: with the default 40 bins the peaks
    are 38 = 4 Li + 2 Mg + 32 H, the effective structure Fd-3m, every occupancy 1 within 3 %,
    and every fitted RMS width within 5 standard errors (σ/√(2·400)) of its σ."""
    from spia_mpi import units
    from spia_mpi.lattice.structures import li2mgh16_solid
    atoms = li2mgh16_solid(True)
    t_k, n = 290.0, 400
    sigma = np.where(atoms.numbers == 1, 0.15, 0.02)
    kappa = np.repeat(units.KB_EV_PER_K * t_k / sigma ** 2, 3)
    pos = cf.sample_harmonic_ring_polymers(n, 1, atoms.get_masses(), np.diag(kappa), t_k, atoms.positions,
                                           np.random.default_rng(7))
    conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), t_k)
    _, peaks = analysis.fit_species_peaks(conf, (40, 40, 40))
    assert len(peaks) == 38 and peaks.liquid_like == ()
    assert sorted(np.bincount(peaks.numbers)[[1, 3, 12]].tolist()) == [2, 4, 32]
    assert np.abs(peaks.weights - 1).max() < 0.03, peaks.weights
    want = np.where(peaks.numbers == 1, 0.15, 0.02)
    width = np.sqrt(np.linalg.eigvalsh(peaks.covariances_a2))            # [peak, 3] principal RMS widths
    assert np.abs(width / want[:, None] - 1).max() < 5 / np.sqrt(2 * n), width
    eff = analysis.effective_structure(conf.cell, peaks, symprec=0.1)
    assert eff.international == "Fd-3m"
    assert np.abs(eff.atoms.arrays["occupancy"] - 1).max() < 0.03


def test_a_diffusing_sublattice_is_reported_liquid_like(caplog):
    """Rock-salt LiH (conventional cell, 4 Li + 4 H) with Li on its sites (σ = 0.1 Å) and H spread
    uniformly over the cell (a diffusing sublattice, 300 samples × 4 beads): H has no density
    peaks and is named in a warning; Li keeps its 4 peaks of occupancy 1 and the effective
    structure of the Li sublattice is fcc (Fm-3m)."""
    import logging
    a = 4.0
    cell = a * np.eye(3)
    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]]) * a
    rng = np.random.default_rng(2)
    n, nb = 300, 4
    li = fcc[None, None] + rng.normal(0, 0.1, (n, nb, 4, 3))
    h = rng.random((n, nb, 4, 3)) @ cell
    conf = cf.Configurations(np.concatenate([li, h], axis=2), cell, [3] * 4 + [1] * 4, [6.94] * 4 + [1.008] * 4,
                             300.0)
    with caplog.at_level(logging.WARNING):
        _, peaks = analysis.fit_species_peaks(conf, (40, 40, 40))
    assert peaks.liquid_like == (1,)
    assert any("H:" in r.message and "liquid-like" in r.message for r in caplog.records)
    assert peaks.numbers.tolist() == [3] * 4
    assert np.abs(peaks.weights - 1).max() < 0.03
    eff = analysis.effective_structure(cell, peaks)
    assert eff.international == "Fm-3m"


# --------------------------------------------------------------------------
# task 2: effective crystal structure (Table S1) of harmonic Li₂MgH₁₆
# --------------------------------------------------------------------------

def test_effective_structure_of_li2mgh16_is_fd3m():
    """Exact harmonic samples (Φ = κ·1, N_b = 1: isotropic σ = √(k_BT/κ) = 0.1 Å) of the shipped
    primitive Fd-3m Li₂MgH₁₆ → density peaks → spglib: space group 227, Wyckoff letters of
    Table S1 (Li 16c, Mg 8b, H 32e + 96g), 16 Li / 8 Mg / 128 H in the conventional cell, sites
    within 0.02 Å (≈ 3 standard errors of a 1000-sample centre, 0.1/√1000 · √3 Å) of spglib's
    standardisation of the input structure, occupancies 1 within 5 %."""
    import spglib

    from spia_mpi import units
    from spia_mpi.lattice.structures import li2mgh16_solid
    atoms = li2mgh16_solid(True)
    t_k, sigma = 290.0, 0.1
    kappa = units.KB_EV_PER_K * t_k / sigma ** 2
    pos = cf.sample_harmonic_ring_polymers(1000, 1, atoms.get_masses(), kappa * np.eye(3 * len(atoms)), t_k,
                                           atoms.positions, np.random.default_rng(1))
    conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), t_k)
    _, peaks = analysis.fit_species_peaks(conf, (48, 48, 48))
    assert len(peaks) == 38
    eff = analysis.effective_structure(conf.cell, peaks, symprec=0.1)
    assert eff.number == 227 and eff.international == "Fd-3m"
    sym = eff.atoms.get_chemical_symbols()
    assert (sym.count("Li"), sym.count("Mg"), sym.count("H")) == (16, 8, 128)
    letters = {(s, w) for s, w, _, _ in eff.sites}
    assert letters == {("Li", "16c"), ("Mg", "8b"), ("H", "32e"), ("H", "96g")}
    lat, ref, num = spglib.standardize_cell((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                            symprec=1e-5)
    assert np.allclose(eff.atoms.cell[:], lat, atol=1e-8)
    d = eff.atoms.get_scaled_positions()[:, None] - ref[None]
    d -= np.round(d)
    dist = np.linalg.norm(d @ lat, axis=2)
    j = dist.argmin(axis=1)
    assert sorted(j.tolist()) == list(range(len(num))) and np.all(num[j] == eff.atoms.numbers)
    assert dist.min(axis=1).max() < 0.02, dist.min(axis=1).max()
    assert np.abs(eff.atoms.arrays["occupancy"] - 1).max() < 0.05


# --------------------------------------------------------------------------
# task 3: moving-average split (Eq. 4) and diffusion-path configurations
# --------------------------------------------------------------------------

DT, N_T = 1.0, 600                                # fs, frames
VEL = np.array([0.011, -0.007, 0.004])            # Å/fs: crosses cell faces
START = np.array([3.0, 2.0, 1.0])
# (amplitude Å, period fs, direction, bead sign): slow part of the diffusion path, fast centroid
# vibration, faster ring-polymer internal oscillation (opposite on the two beads)
WAVES = [(0.3, 400.0, np.array([1.0, 0.5, -0.5]), False), (0.2, 10.0, np.array([0.3, 1.0, 0.6]), False),
         (0.1, 4.0, np.array([1.0, 0.0, 0.0]), True)]


def drift_trajectory(cell, n_beads=2, n_w=None):
    """Bead positions [N_T, n_beads, 1, 3] Å = linear drift + Σ waves, wrapped into the cell.
    With ``n_w``: instead the exact centred n_w-frame moving average, unwrapped: the drift is
    unchanged and each wave A sin(ωt) is multiplied by g = sin(n_w ωΔt/2)/(n_w sin(ωΔt/2))."""
    t = np.arange(N_T) * DT
    pos = np.zeros((N_T, n_beads, 1, 3)) + (START + VEL * t[:, None])[:, None, None, :]
    for amp, period, direction, alternate in WAVES:
        w = 2 * np.pi / period
        g = 1.0 if n_w is None else np.sin(n_w * w * DT / 2) / (n_w * np.sin(w * DT / 2))
        for b in range(n_beads):
            sign = (-1) ** b if alternate else 1
            pos[:, b, 0] += sign * g * amp * np.sin(w * t)[:, None] * direction
    if n_w is None:
        pos = ((pos @ np.linalg.inv(cell)) % 1.0) @ cell
    return pos, t


def min_image_error(a, b, cell):
    d = (a - b) @ np.linalg.inv(cell)
    d -= np.round(d)
    return np.abs(d @ cell).max()


def test_moving_average_recovers_the_diffusion_path():
    """Drift + slow wave + fast vibrations, wrapped into a triclinic cell: R_dif equals the exact
    moving average (drift kept, each wave scaled by its analytic gain; the fast ones nearly
    vanish, the 400-fs one keeps 97 %) to 1e-9 Å; R_dif + ΔR_vib = R; edges and wrapping."""
    cell = TRICLINIC
    pos, t = drift_trajectory(cell)
    conf = cf.Configurations(pos, cell, [1], [1.008], 300.0, DT)
    dif, vib, frames = analysis.moving_average_split(conf, 50.0)
    assert np.array_equal(frames, np.arange(25, N_T - 25))               # 51 frames, trimmed
    ref = drift_trajectory(cell, n_w=51)[0][frames]
    assert np.abs(dif - ref).max() < 1e-9                                 # unwrapped: no lattice shifts
    no_vib = drift_trajectory(cell, n_w=10**9)[0][frames]                 # drift alone (g → 0)
    assert np.abs(dif - no_vib).max() > 0.2                               # the slow wave is kept
    assert min_image_error(dif + vib, pos[frames], cell) < 1e-9           # Eq. 4
    dif_s, _, fr = analysis.moving_average_split(conf, 50.0, edges="shrink")
    assert fr.size == N_T and min_image_error(dif_s[0], pos[0], cell) < 1e-9   # centred: no average at t=0
    assert min_image_error(dif_s[25:N_T - 25], ref, cell) < 1e-9
    confs = analysis.diffusion_path_configurations(conf, 50.0)
    assert confs.n_conf == N_T - 50 and confs.extra["split_window_fs"] == 51.0
    cen = confs.positions.mean(axis=1) @ np.linalg.inv(cell)
    assert np.all((cen >= 0) & (cen < 1))                                 # polymers wrapped by centroid
    assert min_image_error(confs.positions, ref, cell) < 1e-9
    assert np.abs(np.diff(confs.positions[:, :, 0], axis=1)).max() < 0.01   # polymer kept whole


def test_moving_average_validation():
    conf = cf.Configurations(np.zeros((20, 1, 1, 3)), np.eye(3) * 4, [1], [1.0], 300.0, 2.0)
    with pytest.raises(InputError, match="shorter than 3 stored frames"):
        analysis.moving_average_split(conf, 3.0)
    with pytest.raises(InputError, match="longer than the trajectory"):
        analysis.moving_average_split(conf, 50.0)
    with pytest.raises(InputError, match="must be positive"):
        analysis.moving_average_split(conf, -5.0)
    independent = cf.Configurations(np.zeros((20, 1, 1, 3)), np.eye(3) * 4, [1], [1.0], 300.0, 0.0)
    with pytest.raises(InputError, match="time step between stored frames is 0"):
        analysis.moving_average_split(independent, 10.0)


def test_convert_writes_diffusion_paths(tmp_path, spia_cli):
    cell = np.diag([4.0, 4.5, 5.0])                                      # i-PI abcABC frame
    pos, t = drift_trajectory(cell)
    conf = cf.Configurations(pos, cell, [1], [1.008], 300.0, DT)
    cf.write_ipi_xyz(conf, tmp_path / "sim")
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 300, "--time-step", DT,
                  "--skip-fs", 10, "--stride", 2, "--diffusion-path-window", 50, "--out", tmp_path / "c.h5"])
    assert r.returncode == 0, r
    raw, dif = cf.read_h5(tmp_path / "c.h5"), cf.read_h5(tmp_path / "c_dif.h5")
    assert raw.n_conf == (N_T - 10) // 2 and raw.time_step_fs == 2 * DT
    frames = 10 + 25 + 2 * np.arange(dif.n_conf)                       # skip, trim, stride
    assert dif.n_conf == (N_T - 10 - 50 + 1) // 2 and dif.time_step_fs == 2 * DT
    assert dif.extra["split_window_frames"] == 51 and dif.extra["split_edges"] == "trim"
    ref = drift_trajectory(cell, n_w=51)[0][frames]
    assert min_image_error(dif.positions, ref, cell) < 1e-8                # xyz written to 1e-10 Å
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 300, "--time-step", DT,
                  "--diffusion-path-window", 1.5, "--out", tmp_path / "bad.h5"])
    assert r.returncode == 2 and "shorter than 3 stored frames" in r.stderr, r
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 300, "--time-step", DT,
                  "--diffusion-path-window", 5000, "--out", tmp_path / "bad.h5"])
    assert r.returncode == 2 and "longer than the trajectory" in r.stderr, r
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "bad_dif.h5").exists()


# --------------------------------------------------------------------------
# task 4: analyze → /analysis HDF5 → plot
# --------------------------------------------------------------------------

def msd_relative_sd(lag, n_frames, n_walkers):
    """Relative standard deviation of the time-origin-averaged MSD of a Gaussian random walk
    (Qian, Sheetz & Elson, Biophys. J. 60, 910 (1991), per dimension, n ≤ K = N − n:
    σ²/MSD² = (4n²K + 2K + n − n³)/(6nK²)), for 3 dimensions and n_walkers independent walkers."""
    n, k = lag, n_frames - 1 - lag
    return np.sqrt((4 * n ** 2 * k + 2 * k + n - n ** 3) / (6 * n * k ** 2) / (3 * n_walkers))


def test_analyze_writes_hdf5_and_plot_draws_it(tmp_path, spia_cli):
    """40 H atoms random-walking (σ = 0.05 Å per direction per 2-fs frame: D = σ²/(2Δt) =
    6.25e-4 Å²/fs), wrapped into the cell, plus 4 Li on Gaussian sites: the /analysis datasets
    hold MSD = 6Dt within 5 standard deviations (analytic, above), D (Å²/fs and cm²/s), the
    density normalised to the atom counts and the 4 Li peaks; `plot` draws non-blank figures."""
    import h5py
    from matplotlib.image import imread
    rng = np.random.default_rng(7)
    n_t, dt, sigma = 400, 2.0, 0.05
    cell = np.diag([6.0, 6.5, 7.0])
    walk = rng.uniform(0, 6, size=(1, 40, 3)) + np.cumsum(rng.normal(0, sigma, size=(n_t, 40, 3)), axis=0)
    li_sites = np.array([[0.1, 0.1, 0.1], [0.6, 0.1, 0.6], [0.1, 0.6, 0.6], [0.6, 0.6, 0.1]]) @ cell
    li = li_sites[None] + rng.normal(0, 0.12, size=(n_t, 4, 3))
    pos = ((np.concatenate([walk, li], axis=1) @ np.linalg.inv(cell)) % 1.0) @ cell
    conf = cf.Configurations(pos[:, None], cell, [1] * 40 + [3] * 4, [1.008] * 40 + [6.94] * 4, 300.0, dt)
    cf.write_h5(conf, tmp_path / "rw.h5")
    r = spia_cli(["analyze", tmp_path / "rw.h5", "--bins", 24, "--out", tmp_path / "an"])
    assert r.returncode == 0, r
    d_exact = sigma ** 2 / (2 * dt)
    with h5py.File(tmp_path / "an" / "analysis.h5", "r") as f:
        assert f.attrs["spia_mpi_file"] == "analysis" and f.attrs["complete"]
        a = f["analysis"]
        species = [s.decode() for s in a["species"][...]]
        assert species == ["H", "Li"]
        t, msd = a["time_fs"][...], a["msd_A2"][...]
        assert a["time_fs"].attrs["units"] == "fs" and a["msd_A2"].attrs["units"] == "Å²"
        assert np.allclose(t, dt * np.arange(t.size)) and t.size == n_t // 2 + 1
        for lag in (5, 20, 60, 150):
            rel = msd_relative_sd(lag, n_t, 40)
            assert abs(msd[0, lag] / (6 * d_exact * t[lag]) - 1) < 5 * rel, (lag, msd[0, lag], rel)
        d = a["diffusion_A2_per_fs"][...]
        win = a["fit_window_fs"][...]
        assert np.allclose(win, [0.25 * t[-1], 0.75 * t[-1]])
        rel_d = msd_relative_sd(int(win[1] / dt), n_t, 40)
        assert abs(d[0] / d_exact - 1) < 5 * rel_d, (d[0], d_exact, rel_d)
        assert abs(d[1]) < 0.05 * d_exact                                # Li does not diffuse
        assert np.allclose(a["diffusion_cm2_per_s"][...], 0.1 * d)
        assert a["diffusion_cm2_per_s"].attrs["units"] == "cm²/s"
        assert np.isclose(a["density/H"][...].sum(), 40) and np.isclose(a["density/Li"][...].sum(), 4)
        p = a["peaks"]
        li_peaks = p["centres_A"][...][p["numbers"][...] == 3]
        assert li_peaks.shape == (4, 3)
        dist = np.linalg.norm(li_peaks[:, None] - li_sites[None], axis=2).min(axis=1)
        assert dist.max() < 5 * 0.12 / np.sqrt(n_t)
        assert np.allclose(p["weight"][...][p["numbers"][...] == 3], 1.0, atol=5 / np.sqrt(n_t))
        assert p["covariance_A2"].attrs["units"] == "Å²"
    r = spia_cli(["plot", tmp_path / "an" / "analysis.h5", "--out", tmp_path / "figs"])
    assert r.returncode == 0, r
    for stem in ("msd", "density_slices"):
        for ext in ("png", "pdf"):
            assert (tmp_path / "figs" / f"{stem}.{ext}").stat().st_size > 2000
        img = imread(tmp_path / "figs" / f"{stem}.png")
        assert img.shape[0] > 200 and img[..., :3].std() > 0.02, stem     # not blank


def test_sample_and_analyze_cli(tmp_path, spia_cli):
    from tests.test_configurations import make_conf
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--einstein", 0.15,
                  "--temperature", 290, "--beads", 4, "--samples", 6, "--out", tmp_path / "c.h5"])
    assert r.returncode == 0, r
    assert cf.read_h5(tmp_path / "c.h5").positions.shape == (6, 4, 38, 3)
    r = spia_cli(["analyze", tmp_path / "c.h5", "--out", tmp_path / "an"])
    assert r.returncode == 0, r
    again = spia_cli(["analyze", tmp_path / "c.h5", "--out", tmp_path / "an"])      # kept unless --force
    assert again.returncode == 2 and "analysis.h5 exists" in again.stderr and "--force" in again.stderr, again
    assert "MSD skipped" in r.stdout and (tmp_path / "an" / "density_slices.png").stat().st_size > 5000
    paths = cf.write_ipi_xyz(make_conf(n_conf=40), tmp_path / "sim")
    assert len(paths) == 4
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 290,
                  "--time-step", 2, "--skip-fs", 4, "--stride", 2, "--out", tmp_path / "t.h5"])
    assert r.returncode == 0, r
    assert cf.read_h5(tmp_path / "t.h5").n_conf == 19
    r = spia_cli(["analyze", tmp_path / "t.h5", "--out", tmp_path / "an2", "--split-window", 10,
                  "--out-diffusion", tmp_path / "t_dif.h5"])
    assert r.returncode == 0 and "D (cm²/s)" in r.stdout, r
    assert cf.read_h5(tmp_path / "t_dif.h5").n_conf == 19 - 2      # 10 fs / 4 fs → 3-frame window, trimmed
    r = spia_cli(["analyze", tmp_path / "t.h5", "--bins", 4])
    assert r.returncode == 2 and "--bins 4" in r.stderr, r


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_analyze_reports_the_tutorials_diffusing_yukawa_hydrogen_as_liquid_like(tmp_path, spia_cli):
    """The tutorial's i-PI PIMD of Yukawa hydrogen (hydrogen-sc 2×2×2, 8 beads, 300 K; 1400 steps of
    0.5 fs instead of 4000 of 0.25 fs, ≈ 1 min): the H move ≈ 1.5 Å from their start (mean spacing
    1.6 Å) and the density maxima of 60 frames are ≈ 5 per atom — paths, not sites. `analyze` must
    report H liquid-like with no density peaks (the paper's R^density-peaks = ∅), no effective
    structure, and no peak fitted from them; before, it reported 42–62 H "sites" in P1."""
    try:
        import ipi.scripting  # noqa: F401
    except ImportError as exc:
        from prerequisites import missing
        missing("i-PI (ipi.scripting)", f"{exc}; install it into the venv: pip install ipi (docs/install.md)")
    import json

    import h5py
    conf = tmp_path / "conf_pimd.h5"
    r = spia_cli(["sample", "pimd", "--structure", "hydrogen-sc", "--supercell", 2, 2, 2, "--beads", 8,
                  "--temperature", 300, "--timestep", 0.5, "--steps", 1400, "--skip-fs", 100, "--stride", 20,
                  "--seed", 1, "--out", conf], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r
    r = spia_cli(["analyze", conf, "--out", tmp_path / "an"], cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r
    assert "H: liquid-like (diffusing) — no density peaks (8 atoms)" in r.stdout, r.stdout
    assert "no effective structure" in r.stdout and "density peaks:" not in r.stdout, r.stdout
    assert "H: the atoms diffuse" in r.stderr or "H: the density has no Gaussian peaks" in r.stderr, r.stderr
    with h5py.File(tmp_path / "an" / "analysis.h5", "r") as f:
        assert json.loads(f["analysis/peaks"].attrs["liquid_like"]) == ["H"]
        assert f["analysis/peaks/weight"].shape == (0,)
