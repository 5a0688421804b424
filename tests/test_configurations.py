"""Configurations: exact ring-polymer statistics, readers, HDF5 layout, analysis."""
import numpy as np
import pytest

from spia_mpi import analysis, units
from spia_mpi import configurations as cf
from spia_mpi.errors import InputError

M, HW, T = 1.0, 0.1, 300.0


def test_bead_covariance_limits():
    kt = units.KB_EV_PER_K * T
    kappa = float(cf.einstein_spring(M, HW))
    # N_b = 1: classical ⟨u²⟩ = k_BT/κ; N_b → ∞: ħ/(2MΩ) coth(βħΩ/2)
    assert cf.bead_covariance(1, T, M, kappa)[0, 0] == pytest.approx(kt / kappa, rel=1e-12)
    quantum = units.HBAR2_OVER_AMU_A2_EV / (2 * M * HW) / np.tanh(HW / (2 * kt))
    c = cf.bead_covariance(512, T, M, kappa)[0, 0]
    assert c == pytest.approx(quantum, rel=1e-4)
    assert cf.bead_covariance(512, T, M, kappa)[0, 0] > cf.bead_covariance(8, T, M, kappa)[0, 0]


def test_sampler_normal_modes_have_exact_variance():
    """⟨|ũ_m|²⟩ = k_BT/(κ + MΩ_m²) for every bead normal mode m, within 4 standard errors."""
    nb, n = 8, 6000
    rng = np.random.default_rng(123)
    x = cf.sample_einstein_ring_polymers(n, nb, [M], HW, T, np.zeros((1, 3)), rng)[:, :, 0, :]
    um = np.fft.ifft(x, axis=1)                         # (1/N_b) Σ_b u_b e^{2πimb/N_b}
    power = np.abs(um) ** 2                             # [n, m, v]
    kt = units.KB_EV_PER_K * T
    om = cf.ring_polymer_frequencies_ev(nb, T)
    expected = kt / (float(cf.einstein_spring(M, HW)) + M * om ** 2 / units.HBAR2_OVER_AMU_A2_EV)
    mean = power.mean(axis=(0, 2))
    sem = power.std(axis=(0, 2)) / np.sqrt(power.shape[0] * 3)
    assert np.all(np.abs(mean - expected) < 4 * sem), (mean, expected, sem)
    # reproducible with a fixed seed
    y = cf.sample_einstein_ring_polymers(3, nb, [M], HW, T, np.zeros((1, 3)), np.random.default_rng(123))
    assert np.array_equal(y[:, :, 0, :], x[:3])


def make_conf(n_conf=10, nb=4, n_atoms=3, dt=2.0):
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 5, size=(n_conf, nb, n_atoms, 3))
    return cf.Configurations(pos, np.diag([5.0, 5.5, 6.0]), [1, 1, 3], [1.008, 1.008, 6.94], 290.0, dt, "test")


def test_hdf5_roundtrip_and_slices(tmp_path):
    conf = make_conf()
    cf.write_h5(conf, tmp_path / "c.h5")
    back = cf.read_h5(tmp_path / "c.h5")
    assert np.array_equal(back.positions, conf.positions) and back.temperature_k == 290.0
    part = cf.read_h5(tmp_path / "c.h5", slice(3, 7))
    assert np.array_equal(part.positions, conf.positions[3:7])


def test_ipi_roundtrip_and_validation(tmp_path):
    conf = make_conf()
    paths = cf.write_ipi_xyz(conf, tmp_path / "sim")
    back = cf.read_trajectories(str(tmp_path / "sim.pos_*.xyz"), 290.0, 2.0, "ipi")
    assert np.allclose(back.positions, conf.positions, atol=1e-9)
    assert np.allclose(back.cell, conf.cell, atol=1e-8) and list(back.numbers) == [1, 1, 3]
    sel = back.select(skip=2, stride=3)
    assert sel.n_conf == 3 and sel.time_step_fs == 6.0
    # truncated bead file
    text = open(paths[1]).read().splitlines()
    open(paths[1], "w").write("\n".join(text[:-2]) + "\n")
    with pytest.raises(InputError, match="truncated"):
        cf.read_trajectories(str(tmp_path / "sim.pos_*.xyz"), 290.0, 2.0, "ipi")
    # different lengths
    open(paths[1], "w").write("\n".join(text[:-5]) + "\n")
    with pytest.raises(InputError, match="different lengths|truncated"):
        cf.read_trajectories(str(tmp_path / "sim.pos_*.xyz"), 290.0, 2.0, "ipi")
    with pytest.raises(InputError, match="no trajectory file"):
        cf.read_trajectories(str(tmp_path / "nothing_*.xyz"), 290.0, 2.0, "ipi")


def test_ipi_units_bohr(tmp_path):
    p = tmp_path / "x.pos_0.xyz"
    p.write_text("1\n# CELL(abcABC): 10.0 10.0 10.0 90 90 90 Step: 0 Bead: 0 positions{atomic_unit} cell{atomic_unit}\n"
                 "H 1.0 0.0 0.0\n")
    pos, cells, sym = cf.read_ipi_xyz(p)
    assert pos[0, 0, 0] == pytest.approx(units.BOHR_ANG)
    assert cells[0, 0, 0] == pytest.approx(10 * units.BOHR_ANG)
    p.write_text("1\n# CELL(abcABC): 10 10 10 90 90 90 positions{furlong}\nH 1 0 0\n")
    with pytest.raises(InputError, match="unknown i-PI unit"):
        cf.read_ipi_xyz(p)


def test_xdatcar_per_bead(tmp_path):
    import ase.io
    from ase import Atoms
    conf = make_conf(n_conf=4, nb=2)
    for b in range(2):
        frames = [Atoms(numbers=conf.numbers, positions=conf.positions[c, b], cell=conf.cell, pbc=True)
                  for c in range(4)]
        ase.io.write(tmp_path / f"XDATCAR_{b}", frames, format="vasp-xdatcar")
    back = cf.read_trajectories([str(tmp_path / "XDATCAR_0"), str(tmp_path / "XDATCAR_1")], 290.0, 2.0, "xdatcar")
    wrapped = (conf.positions @ np.linalg.inv(conf.cell)) % 1 @ conf.cell
    assert np.allclose(back.positions, wrapped, atol=1e-6)


def test_nan_and_bad_temperature():
    conf = make_conf()
    pos = conf.positions.copy()
    pos[2, 1, 0, 1] = np.nan
    with pytest.raises(InputError, match="configuration 2, bead 1, atom 0"):
        cf.Configurations(pos, conf.cell, conf.numbers, conf.masses, 290.0)
    with pytest.raises(InputError, match="temperature"):
        cf.Configurations(conf.positions, conf.cell, conf.numbers, conf.masses, -1.0)


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


def test_unwrap_and_moving_average_recovers_drift():
    cell = np.diag([4.0, 4.0, 4.0])
    t = np.arange(400) * 1.0                                     # fs
    drift = 0.01 * t                                             # Å: crosses the box
    vib = 0.1 * np.sin(2 * np.pi * t / 10.0)                     # 10 fs period
    x = np.zeros((400, 1, 1, 3))
    x[:, 0, 0, 0] = (drift + vib) % 4.0
    conf = cf.Configurations(x, cell, [1], [1.0], 300.0, 1.0)
    dif, vibr = analysis.moving_average_split(conf, 20.0)
    inner = slice(20, 380)
    assert np.allclose(dif[inner, 0, 0, 0] - dif[20, 0, 0, 0], drift[inner] - drift[20], atol=0.02)
    assert np.allclose(vibr[inner, 0, 0, 0], vib[inner], atol=0.02)


def test_density_peaks_of_gaussian_sites():
    rng = np.random.default_rng(2)
    sites = np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.75]])
    pos = (sites[None, None] + rng.normal(0, 0.02, size=(400, 2, 2, 3))) * 6.0
    conf = cf.Configurations(pos, np.eye(3) * 6.0, [1, 1], [1.0, 1.0], 300.0)
    hist = analysis.density_histogram(conf, np.array([True, True]), (30, 30, 30))
    centres, widths, weights = analysis.density_peaks(hist, threshold=0.3)
    assert centres.shape[0] == 2
    order = np.argsort(centres[:, 0])
    assert np.allclose(centres[order], sites, atol=0.01)
    atoms, sg = analysis.symmetrise_structure(np.eye(3) * 6.0, centres, [1, 1], symprec=0.1)
    assert "Im-3m" in sg                                       # two sites at ¼ and ¾: bcc


def test_sample_and_analyze_cli(tmp_path, spia_cli):
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--einstein", 0.15,
                  "--temperature", 290, "--beads", 4, "--samples", 6, "--out", tmp_path / "c.h5"])
    assert r.returncode == 0, r
    conf = cf.read_h5(tmp_path / "c.h5")
    assert conf.positions.shape == (6, 4, 38, 3)
    r = spia_cli(["analyze", tmp_path / "c.h5", "--out", tmp_path / "an"])
    assert r.returncode == 0, r
    assert (tmp_path / "an" / "density.png").stat().st_size > 5000
    # trajectory conversion with equilibration skip
    paths = cf.write_ipi_xyz(make_conf(n_conf=40), tmp_path / "sim")
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 290,
                  "--time-step", 2, "--skip-fs", 4, "--stride", 2, "--out", tmp_path / "t.h5"])
    assert r.returncode == 0, r
    assert cf.read_h5(tmp_path / "t.h5").n_conf == 19
    r = spia_cli(["analyze", tmp_path / "t.h5", "--out", tmp_path / "an2"])
    assert r.returncode == 0 and "D (cm²/s)" in r.stdout, r
