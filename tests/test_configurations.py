"""Configurations: exact ring-polymer statistics, readers, HDF5 layout (analysis: test_analysis.py)."""
import numpy as np
import pytest

from spia_mpi import units
from spia_mpi.ions import configurations as cf
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


# A non-orthogonal triclinic cell, deliberately not in i-PI's standard orientation (a not ∥ x),
# so that its matrix is neither symmetric nor triangular: a transposition error shows.
CELLPAR = [5.1, 6.2, 7.3, 79.0, 95.0, 113.0]
FRAC = np.array([[0.0, 0.0, 0.0], [0.25, 0.5, 0.125], [0.9, 0.3, 0.6]])


def rotation(axis, angle_deg):
    """Rodrigues rotation matrix for row vectors (r' = r @ R)."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.radians(angle_deg)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return (np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K).T


def triclinic_cell():
    from ase.geometry import cellpar_to_cell
    cell = cellpar_to_cell(CELLPAR) @ rotation([1.0, -2.0, 0.5], 37.0)
    assert not np.allclose(cell, cell.T) and not np.allclose(cell, np.tril(cell))
    return cell


def fmt(numbers):
    return " ".join(f"{x:.12f}" for x in np.ravel(numbers))


@pytest.mark.parametrize("kind", ["H", "GENH"])
@pytest.mark.parametrize("unit", ["angstrom", "atomic_unit"])
@pytest.mark.parametrize("prop,order", [("positions", "step"), ("x_centroid", "cell_first")])
def test_ipi_comment_cell_h_and_genh(tmp_path, kind, unit, prop, order):
    """CELL(H) lists i-PI's h row by row (lattice vectors = its columns); CELL(GENH) lists the
    lattice vectors as rows (i-PI read_xyz: positions = fractional @ genh). Expected cell and
    positions come from ASE's cellpar_to_cell and ase.units.Bohr, not from our reader."""
    from ase.units import Bohr
    cell = triclinic_cell()                                  # Å, rows
    pos = FRAC @ cell                                        # Å
    to_file = {"angstrom": 1.0, "atomic_unit": 1.0 / Bohr}[unit]
    listed = cell.T if kind == "H" else cell                 # the 3×3 matrix written row by row
    cellstr = f"# CELL({kind}): {fmt(listed * to_file)}"
    if order == "step":
        comment = f"{cellstr}  Step: 4  Bead: 1 {prop}{{{unit}}}  cell{{{unit}}}"
    else:                                                    # cell{} before the property, no Step:
        comment = f"{cellstr}  cell{{{unit}}}  {prop}{{{unit}}}"
    atoms = "\n".join(f"{s} {fmt(r * to_file)}" for s, r in zip(["Li", "H", "H"], pos))
    p = tmp_path / "sim.pos_0.xyz"
    p.write_text(f"3\n{comment}\n{atoms}\n3\n{comment}\n{atoms}\n")
    got_pos, got_cells, sym = cf.read_ipi_xyz(p)
    assert sym == ["Li", "H", "H"] and got_pos.shape == (2, 3, 3)
    assert np.allclose(got_cells[0], cell, atol=1e-9), (got_cells[0], cell)
    assert np.allclose(got_pos[1], pos, atol=1e-9)
    assert np.allclose(got_pos[0] @ np.linalg.inv(got_cells[0]), FRAC, atol=1e-10)


def test_ipi_comment_literal_lines(tmp_path):
    """Hand-written comment lines as i-PI prints them: an upper-triangular h in bohr (columns
    are the vectors a = (10, 0, 0), b = (−3, 9, 0), c = (1.5, −2, 11) bohr), and abcABC."""
    from ase.geometry import cellpar_to_cell
    from ase.units import Bohr
    p = tmp_path / "a.xyz"
    p.write_text("1\n# CELL(H): 10.0 -3.0 1.5  0.0 9.0 -2.0  0.0 0.0 11.0 cell{atomic_unit} positions{atomic_unit}\n"
                 "H 1.0 2.0 3.0\n")
    pos, cells, _ = cf.read_ipi_xyz(p)
    assert np.allclose(cells[0], np.array([[10.0, 0.0, 0.0], [-3.0, 9.0, 0.0], [1.5, -2.0, 11.0]]) * Bohr)
    assert np.allclose(pos[0, 0], np.array([1.0, 2.0, 3.0]) * Bohr)
    # abcABC: lengths in the cell unit, angles in degrees; positions in their own unit
    p.write_text("1\n# bead: 0 CELL(abcABC):  10.0 11.0 12.0 79.0 95.0 113.0  Step: 7 x_centroid{angstrom}"
                 "  cell{atomic_unit}\nH 0.5 -0.25 1.0\n")
    pos, cells, _ = cf.read_ipi_xyz(p)
    assert np.allclose(cells[0], cellpar_to_cell([10.0 * Bohr, 11.0 * Bohr, 12.0 * Bohr, 79.0, 95.0, 113.0]))
    assert np.allclose(pos[0, 0], [0.5, -0.25, 1.0])
    # not a coordinate file / too few cell numbers
    p.write_text("1\n# CELL(abcABC): 10 10 10 90 90 90 Step: 0 forces{ev/ang} cell{angstrom}\nH 0 0 0\n")
    with pytest.raises(InputError, match="holds 'forces', not coordinates"):
        cf.read_ipi_xyz(p)
    p.write_text("1\n# CELL(GENH): 1 0 0 0 1 0 0 0 Step: 0 positions{angstrom}\nH 0 0 0\n")
    with pytest.raises(InputError, match=r"CELL\(GENH\) needs 9 numbers, found 8"):
        cf.read_ipi_xyz(p)


def test_ipi_writer_rotates_into_the_abcabc_frame(tmp_path):
    """CELL(abcABC) fixes only the cell's shape: a cell in a general orientation is written
    rigidly rotated into i-PI's frame, so lengths, angles, fractional coordinates and
    interatomic vectors' lengths are preserved (the cell read back is the original times a
    proper rotation)."""
    from ase.geometry import cell_to_cellpar
    cell = triclinic_cell()
    pos = np.broadcast_to(FRAC @ cell, (2, 1, 3, 3))
    conf = cf.Configurations(pos, cell, [3, 1, 1], [6.94, 1.008, 1.008], 300.0)
    cf.write_ipi_xyz(conf, tmp_path / "w")
    back = cf.read_trajectories(str(tmp_path / "w.pos_*.xyz"), 300.0, 1.0)
    R = np.linalg.solve(cell, back.cell)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
    assert np.allclose(cell_to_cellpar(back.cell), CELLPAR, atol=1e-8)
    assert np.allclose(back.positions[0, 0] @ np.linalg.inv(back.cell), FRAC, atol=1e-9)
    assert np.allclose(back.positions[0, 0], FRAC @ cell @ R, atol=1e-8)
    assert abs(back.cell[0, 1]) < 1e-9 and abs(back.cell[0, 2]) < 1e-9 and abs(back.cell[1, 2]) < 1e-9
    with pytest.raises(InputError, match="left-handed"):
        cf.ipi_standard_frame(cell[[1, 0, 2]])


def ipi_frame(symbols, positions, cell_h):
    lines = [str(len(symbols)), f"# CELL(H): {fmt(np.asarray(cell_h).T)} Step: 0 positions{{angstrom}} "
             "cell{angstrom}"]
    return "\n".join(lines + [f"{s} {fmt(r)}" for s, r in zip(symbols, positions)]) + "\n"


def test_bead_files_must_agree_on_cell_and_species(tmp_path):
    cell = np.diag([5.0, 6.0, 7.0])
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    (tmp_path / "s.pos_0.xyz").write_text(ipi_frame(["H", "Li"], pos, cell) * 2)
    (tmp_path / "s.pos_1.xyz").write_text(ipi_frame(["H", "Li"], pos, cell * 1.01) * 2)
    with pytest.raises(InputError, match="cells differ between beads"):
        cf.read_trajectories(str(tmp_path / "s.pos_*.xyz"), 300.0, 1.0)
    (tmp_path / "s.pos_1.xyz").write_text(ipi_frame(["H", "H"], pos, cell) * 2)
    with pytest.raises(InputError, match=r"s\.pos_1\.xyz: species differ from .*s\.pos_0\.xyz"):
        cf.read_trajectories(str(tmp_path / "s.pos_*.xyz"), 300.0, 1.0)
    # the same cell in every bead but changing in time (variable-cell run)
    (tmp_path / "s.pos_1.xyz").write_text(ipi_frame(["H", "Li"], pos, cell) + ipi_frame(["H", "Li"], pos, cell * 1.01))
    (tmp_path / "s.pos_0.xyz").write_text(ipi_frame(["H", "Li"], pos, cell) + ipi_frame(["H", "Li"], pos, cell * 1.01))
    with pytest.raises(InputError, match="cell changes between frames"):
        cf.read_trajectories(str(tmp_path / "s.pos_*.xyz"), 300.0, 1.0)
    # consistent files are accepted (the checks are not trigger-happy)
    (tmp_path / "s.pos_1.xyz").write_text(ipi_frame(["H", "Li"], pos + 0.1, cell) * 2)
    (tmp_path / "s.pos_0.xyz").write_text(ipi_frame(["H", "Li"], pos, cell) * 2)
    conf = cf.read_trajectories(str(tmp_path / "s.pos_*.xyz"), 300.0, 1.0)
    assert np.allclose(conf.positions[1, 1], pos + 0.1) and np.allclose(conf.cell, cell)


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


# --------------------------------------------------------------------------
# force-constant sampler: independent references built from the action itself
# --------------------------------------------------------------------------

def ring_polymer_precision(n_beads, temperature_k, masses, phi):
    """Precision matrix P of the primitive N_b-bead path integral, built directly from the action
    S = (β/N_b) Σ_b [½ Σ_i m_i ω_N² (u_{b+1,i} − u_{b,i})² + ½ u_bᵀ Φ u_b], ω_N = N_b k_BT/ħ:
    p(u) ∝ exp(−½ uᵀPu), index b·3N + i. Float [N_b·3N, N_b·3N] in Å⁻²."""
    kt = units.KB_EV_PER_K * temperature_k
    m3 = np.repeat(np.asarray(masses, float), 3)
    k_spring = m3 * (n_beads * kt) ** 2 / units.HBAR2_OVER_AMU_A2_EV       # m ω_N², eV/Å²
    ring = np.zeros((n_beads, n_beads))
    for b in range(n_beads):                                              # Σ_b (u_{b+1} − u_b)²
        d = np.zeros(n_beads)
        d[(b + 1) % n_beads] += 1.0
        d[b] -= 1.0
        ring += np.outer(d, d)
    return (np.kron(ring, np.diag(k_spring)) + np.kron(np.eye(n_beads), phi)) / (n_beads * kt)


def constrained_covariance(precision, constraints):
    """Covariance of exp(−½ uᵀPu) restricted to the subspace C u = 0: B (BᵀPB)⁻¹ Bᵀ, B an
    orthonormal basis of the null space of C (from an SVD)."""
    _, sv, vt = np.linalg.svd(constraints)
    B = vt[np.sum(sv > 1e-12 * sv.max()):].T
    return B @ np.linalg.inv(B.T @ precision @ B) @ B.T


def assert_covariance_matches(samples, reference, n_sigma=5.0):
    """Sample covariance (known zero mean) against a reference, element by element, with the
    Gaussian standard error of a covariance estimate, sqrt((Σ_ii Σ_jj + Σ_ij²)/n)."""
    n = samples.shape[0]
    cov = samples.T @ samples / n
    se = np.sqrt((np.outer(np.diag(reference), np.diag(reference)) + reference ** 2) / n)
    z = (cov - reference) / se
    assert np.abs(z).max() < n_sigma, (np.abs(z).max(), np.unravel_index(np.abs(z).argmax(), z.shape))
    return np.abs(z).max()


def diatomic_ring(m1, m2, k1, k2, kt):
    """Φ (eV/Å²) of a 1D diatomic chain, two primitive cells (atoms m1 m2 m1 m2) closed into a
    ring, bonds alternating k1, k2 along x and kt across (y, z). Obeys the acoustic sum rule."""
    phi = np.zeros((12, 12))
    bonds = [(0, 1, k1), (1, 2, k2), (2, 3, k1), (3, 0, k2)]
    for i, j, k in bonds:
        for v, kv in ((0, k), (1, kt), (2, kt)):
            a, b = 3 * i + v, 3 * j + v
            phi[a, a] += kv
            phi[b, b] += kv
            phi[a, b] -= kv
            phi[b, a] -= kv
    return phi, np.array([m1, m2, m1, m2])


def chain_frequencies_squared(m1, m2, k1, k2):
    """ω² (eV/(Å² amu)) of the diatomic chain at q = 0 and q = π/a (textbook dispersion)."""
    s, p = (k1 + k2) * (m1 + m2), m1 * m2
    root = np.sqrt(s ** 2 - 16 * k1 * k2 * p)
    return [0.0, (k1 + k2) * (1 / m1 + 1 / m2), (s - root) / (2 * p), (s + root) / (2 * p)]


def test_harmonic_modes_of_the_diatomic_chain():
    phi, masses = diatomic_ring(1.008, 6.94, 10.0, 6.0, 3.0)
    modes = cf.harmonic_modes(phi, masses)
    expected = sorted(chain_frequencies_squared(1.008, 6.94, 10.0, 6.0)
                      + 2 * chain_frequencies_squared(1.008, 6.94, 3.0, 3.0))
    assert np.allclose(modes.eigenvalues, expected, rtol=1e-10, atol=1e-12)
    assert modes.zero.sum() == 3
    assert np.allclose(modes.hbar_omega ** 2, np.array(expected) * units.HBAR2_OVER_AMU_A2_EV)


@pytest.mark.parametrize("masses", [[2.0, 2.0], [1.008, 6.94]])
def test_force_constant_sampler_reproduces_einstein(masses):
    """Φ = diag(κ_a) with κ_a = M_a Ω² (for equal masses Φ = κ·1) is the Einstein crystal: both
    samplers' bead covariances (all atoms, directions and beads) agree with each other and with
    the exact bead_covariance, within 5 standard errors (fixed seeds, 20000 samples each)."""
    nb, n = 4, 20000
    masses = np.array(masses)
    kappa = cf.einstein_spring(masses, HW)
    phi = np.diag(np.repeat(kappa, 3))
    ref = np.zeros((2, 3))
    xh = cf.sample_harmonic_ring_polymers(n, nb, masses, phi, T, ref, np.random.default_rng(7))
    xe = cf.sample_einstein_ring_polymers(n, nb, masses, HW, T, ref, np.random.default_rng(8))
    exact = np.zeros((nb, 2, 3, nb, 2, 3))
    for a, m in enumerate(masses):
        for v in range(3):
            exact[:, a, v, :, a, v] = cf.bead_covariance(nb, T, m, float(kappa[a]))
    exact = exact.reshape(nb * 6, nb * 6)
    assert_covariance_matches(xh.reshape(n, -1), exact)
    assert_covariance_matches(xe.reshape(n, -1), exact)
    # the two samplers against each other, element by element
    ch, ce = (x.reshape(n, -1).T @ x.reshape(n, -1) / n for x in (xh, xe))
    se = np.sqrt(2 * (np.outer(np.diag(exact), np.diag(exact)) + exact ** 2) / n)
    assert np.abs((ch - ce) / se).max() < 5


def test_force_constant_sampler_random_phi_matches_precision_matrix():
    """A random positive-definite Φ (3 atoms, unequal masses): the sampled covariance of all
    N_b·3N bead coordinates equals the inverse of the ring-polymer precision matrix."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(9, 9))
    phi = a @ a.T + 2.0 * np.eye(9)                            # eV/Å², positive definite
    masses = np.array([1.008, 6.94, 24.305])
    nb, n = 4, 20000
    x = cf.sample_harmonic_ring_polymers(n, nb, masses, phi, T, np.zeros((3, 3)), np.random.default_rng(5))
    reference = np.linalg.inv(ring_polymer_precision(nb, T, masses, phi))
    assert_covariance_matches(x.reshape(n, -1), reference)
    # resolving power: treating the masses as equal (a plausible bug) is rejected
    wrong = np.linalg.inv(ring_polymer_precision(nb, T, np.full(3, masses.mean()), phi))
    with pytest.raises(AssertionError):
        assert_covariance_matches(x.reshape(n, -1), wrong)


def test_force_constant_sampler_acoustic_modes_fixed_centroid():
    """Periodic diatomic chain (3 zero modes): the centre of mass of all beads stays at the
    reference exactly, and the covariance equals the precision-matrix Gaussian restricted to
    that constraint; zero_modes='error' refuses."""
    phi, masses = diatomic_ring(1.008, 6.94, 10.0, 6.0, 3.0)
    nb, n = 4, 20000
    ref = np.arange(12.0).reshape(4, 3)
    x = cf.sample_harmonic_ring_polymers(n, nb, masses, phi, T, ref, np.random.default_rng(3)) - ref
    com = np.einsum("cbav,a->cv", x, masses) / (nb * masses.sum())
    assert np.abs(com).max() < 1e-12
    constraints = np.array([np.tile(np.kron(masses, np.eye(3)[v]), nb) for v in range(3)])
    reference = constrained_covariance(ring_polymer_precision(nb, T, masses, phi), constraints)
    assert_covariance_matches(x.reshape(n, -1), reference)
    with pytest.raises(InputError, match="3 zero mode"):
        cf.sample_harmonic_ring_polymers(2, nb, masses, phi, T, ref, np.random.default_rng(3), zero_modes="error")


def test_force_constant_sampler_quantum_limit():
    """N_b → ∞: ⟨u_i²⟩ = Σ_k e_ik²/m_i · ħ²/(2ħω_k) coth(βħω_k/2) over the vibrational modes, plus
    for each zero mode (centroid fixed) the free-particle spread e_ik²/m_i · βħ²/12. The chain
    has βħω up to ≈ 10, so the classical k_BT/ω² values are far off (resolving power)."""
    phi, masses = diatomic_ring(1.008, 6.94, 10.0, 6.0, 3.0)
    nb, n = 128, 2000
    kt = units.KB_EV_PER_K * T
    modes = cf.harmonic_modes(phi, masses)
    e2 = modes.vectors ** 2 / np.repeat(masses, 3)[:, None]            # e_ik²/m_i
    hw = np.where(modes.zero, 1.0, modes.hbar_omega)
    per_mode = np.where(modes.zero, units.HBAR2_OVER_AMU_A2_EV / (12 * kt),
                        units.HBAR2_OVER_AMU_A2_EV / (2 * hw) / np.tanh(hw / (2 * kt)))
    quantum = e2 @ per_mode                                             # Å², [3N]
    classical = e2 @ np.where(modes.zero, 0.0, kt / np.where(modes.zero, 1.0, modes.eigenvalues))
    assert np.all(quantum > 1.5 * classical)
    x = cf.sample_harmonic_ring_polymers(n, nb, masses, phi, T, np.zeros((4, 3)), np.random.default_rng(9))
    u2 = (x.reshape(n, nb, 12) ** 2).mean(axis=1)                       # bead average per configuration
    mean, sem = u2.mean(axis=0), u2.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(mean - quantum) < 4.5 * sem), (mean / quantum, sem / quantum)
    assert np.all(sem < 0.05 * quantum)


def test_force_constant_validation(tmp_path):
    phi, masses = diatomic_ring(1.008, 6.94, 10.0, 6.0, 3.0)
    with pytest.raises(InputError, match=r"expected a \[12, 12\] matrix"):
        cf.validate_force_constants(phi[:9, :9], 4)
    bad = phi.copy()
    bad[0, 4] += 0.1
    with pytest.raises(InputError, match="not symmetric"):
        cf.validate_force_constants(bad, 4)
    unstable = phi - 0.5 * np.eye(12)                                  # imaginary acoustic modes
    with pytest.raises(InputError, match="not positive semidefinite"):
        cf.harmonic_modes(unstable, masses)
    # phonopy layout [N, N, 3, 3] is the same matrix
    fc4 = phi.reshape(4, 3, 4, 3).transpose(0, 2, 1, 3)
    assert np.array_equal(cf.validate_force_constants(fc4, 4), phi)
    np.save(tmp_path / "fc.npy", fc4)
    np.savetxt(tmp_path / "fc.txt", phi)
    assert np.allclose(cf.load_force_constants(tmp_path / "fc.npy", masses), phi)
    assert np.allclose(cf.load_force_constants(tmp_path / "fc.txt", masses), phi)
    np.savetxt(tmp_path / "bad.txt", unstable)
    with pytest.raises(InputError, match=r"bad\.txt: not positive semidefinite"):
        cf.load_force_constants(tmp_path / "bad.txt", masses)
    with pytest.raises(InputError, match="does not exist"):
        cf.load_force_constants(tmp_path / "none.npy", masses)


def test_sample_harmonic_cli_force_constants(tmp_path, spia_cli):
    """`sample harmonic --force-constants`: Einstein springs written as Φ = diag(M_a Ω²) give the
    exact Einstein ⟨u²⟩ (the bead-averaged mean over all atoms, within 5 standard errors)."""
    from spia_mpi.lattice.structures import load_structure
    atoms = load_structure("li2mgh16-solid")
    phi = np.diag(np.repeat(cf.einstein_spring(atoms.get_masses(), 0.15), 3))
    np.save(tmp_path / "fc.npy", phi)
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--force-constants", tmp_path / "fc.npy",
                  "--temperature", 290, "--beads", 4, "--samples", 200, "--out", tmp_path / "c.h5"])
    assert r.returncode == 0, r
    conf = cf.read_h5(tmp_path / "c.h5")
    u = conf.positions - atoms.get_positions()[None, None]
    exact = np.array([cf.bead_covariance(4, 290.0, m, float(cf.einstein_spring(m, 0.15)))[0, 0]
                      for m in atoms.get_masses()])
    ratio = (u ** 2).mean(axis=(1, 3)) / exact[None, :]                # [conf, atom], mean 1
    assert abs(ratio.mean() - 1) < 5 * ratio.mean(axis=1).std() / np.sqrt(ratio.shape[0])
    np.save(tmp_path / "wrong.npy", phi[:6, :6])
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--force-constants", tmp_path / "wrong.npy",
                  "--temperature", 290, "--out", tmp_path / "d.h5"])
    assert r.returncode == 2 and "expected a [114, 114] matrix" in r.stderr, r
    r = spia_cli(["sample", "harmonic", "--structure", "li2mgh16-solid", "--temperature", 290,
                  "--out", tmp_path / "d.h5"])
    assert r.returncode == 2 and "exactly one of --einstein" in r.stderr, r


def _random_configurations(n_conf=6, n_beads=4, seed=3):
    from spia_mpi.ions.configurations import Configurations
    rng = np.random.default_rng(seed)
    cell = np.diag([3.0, 3.2, 3.4])
    return Configurations(rng.uniform(0, 3, size=(n_conf, n_beads, 3, 3)), cell, [1, 3, 12],
                          [1.008, 6.94, 24.305], 290.0, 0.5, "random test data", {"note": "x"})


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("axis", [0, 1])
def test_collective_write_in_slices_and_per_rank_reads(tmp_path_factory, axis):
    """Each of 2 ranks holds only its slice (configurations or beads, uneven split) and writes it
    collectively; the file equals the whole data, and read_h5(selection) on each rank returns
    exactly its slice."""
    from spia_mpi.ions.configurations import read_h5, write_h5
    from spia_mpi.parallel.mpi import partition, world
    comm = world()
    folder = comm.bcast(str(tmp_path_factory.mktemp("cf")) if comm.rank == 0 else None)
    full = _random_configurations(n_conf=7, n_beads=5)
    mine = partition(full.positions.shape[axis], comm.size, comm.rank)
    where = (slice(mine.start, mine.stop),) if axis == 0 else (slice(None), slice(mine.start, mine.stop))
    part = _random_configurations(n_conf=7, n_beads=5)
    part.positions = full.positions[where]
    path = f"{folder}/c{axis}.h5"
    write_h5(part, path, comm, axis=axis)
    back = read_h5(path)
    assert np.array_equal(back.positions, full.positions)
    assert np.array_equal(back.numbers, full.numbers) and np.array_equal(back.cell, full.cell)
    assert back.extra["note"] == "x" and back.temperature_k == 290.0 and back.time_step_fs == 0.5
    assert np.array_equal(read_h5(path, where).positions, full.positions[where])


def test_ipi_convert_on_two_ranks_equals_one_rank(tmp_path, spia_cli):
    """`sample convert` under mpirun -n 2 (bead files split over the ranks, written collectively)
    writes the same file as on one rank, and both hold the trajectories written."""
    from spia_mpi.ions.configurations import read_h5, write_ipi_xyz
    conf = _random_configurations(n_conf=9, n_beads=3)
    write_ipi_xyz(conf, str(tmp_path / "sim"))
    out = {}
    for ranks in (1, 2):
        out[ranks] = tmp_path / f"c{ranks}.h5"
        r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 290,
                      "--time-step", 0.5, "--skip-fs", 1.0, "--stride", 2, "--out", out[ranks]], ranks=ranks)
        assert r.returncode == 0, r
    assert "written by 2 ranks" in r.stdout and r.stdout.count("configurations ×") == 1
    one, two = read_h5(out[1]), read_h5(out[2])
    assert np.array_equal(one.positions, two.positions)
    import h5py
    with h5py.File(out[1], "r") as f1, h5py.File(out[2], "r") as f2:
        assert dict(f1["configurations"].attrs) == dict(f2["configurations"].attrs)
    assert np.allclose(two.positions, conf.positions[2::2], atol=1e-9)      # skip 2 frames, stride 2
    r = spia_cli(["sample", "convert", str(tmp_path / "sim.pos_*.xyz"), "--temperature", 290,
                  "--time-step", 0.5, "--out", tmp_path / "c4.h5"], ranks=4)
    assert r.returncode != 0 and "at most 3 ranks" in r.stderr, r
