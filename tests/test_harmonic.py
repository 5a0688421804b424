"""Harmonic baseline (`spia_mpi harmonic`) against physics: the Holstein–Einstein oracle,
force constants against analytic pair sums and spring chains, the acoustic sum rule,
1 rank = 2 ranks, and the reduction oracle (SPIA on exact harmonic samples of the grid
model reproduces the discrete-bead λ_harm(m))."""
import math

import numpy as np
import pytest

from spia_mpi import units
from spia_mpi.engine import harmonic as hm
from spia_mpi.errors import InputError
from spia_mpi.ions import forceconstants as fc
from spia_mpi.ions.calculators import EinsteinHarmonic, YukawaPair
from spia_mpi.ions.configurations import sample_harmonic_ring_polymers
from spia_mpi.ions.translations import remove_rigid_translations
from spia_mpi.lattice.supercells import build_supercell, folded_kpoints, lattice_points, supercell_kgrid
from spia_mpi.models.tightbinding import holstein_cubic

G, M, HW, T, NB, HOP = 2.0, 2.0, 0.1, 300.0, 8, 1.0       # eV/Å, amu, eV, K, beads, eV
C = units.HBAR2_OVER_AMU_A2_EV


def cosine_band_n_gamma(kpoints_frac, gamma):
    """N_γ per cell per spin of ε_k = −2t Σ cos 2πk_α at half filling (ε_F = 0 by particle–hole
    symmetry of the even grid), computed here from the analytic band."""
    e = -2 * HOP * np.cos(2 * np.pi * np.asarray(kpoints_frac)).sum(axis=1)
    return float(np.sum((gamma / np.pi) / (e ** 2 + gamma ** 2)) / len(e))


def holstein_exact(n_gamma, freqs_ev):
    kappa = M * HW ** 2 / C
    return n_gamma * G ** 2 / (kappa + M * np.asarray(freqs_ev) ** 2 / C)


def ring_frequencies(n_m):
    m = np.arange(n_m)
    return 2 * NB * units.KB_EV_PER_K * T * np.sin(np.pi * m / NB)


HOLSTEIN_TOML = f"""
[model]
kind = "holstein"
[model.holstein]
coupling_ev_per_ang = {G}
mass_amu = {M}
hopping_ev = {HOP}
[supercell]
matrix = [4, 4, 2]
kpoints = [[0.0, 0.0, 0.5]]
[configurations.einstein]
hbar_omega_ev = {HW}
temperature_k = {T}
n_beads = {NB}
[spia]
gamma_ev = [0.2, 0.5]
[eliashberg]
mustar = [0.0]
[harmonic]
output_file = "harm.h5"
samples_file = "samples.h5"
n_samples = 4
seed = 5
plots = false
"""


@pytest.fixture(scope="module")
def holstein_cli_runs(tmp_path_factory):
    """`harmonic` on the Holstein input under 1 and 2 ranks: {ranks: (folder, result)}."""
    from tests.conftest import run_cli
    out = {}
    for ranks in (1, 2):
        d = tmp_path_factory.mktemp(f"holstein{ranks}")
        (d / "in.toml").write_text(HOLSTEIN_TOML)
        out[ranks] = (d, run_cli(["harmonic", d / "in.toml"], ranks=ranks, cwd=d))
    return out


def _read(path):
    import h5py
    with h5py.File(path, "r") as f:
        return {k: f[k][...] for k in ("lambda/lambda_m_bead", "lambda/lambda_m", "lambda/gamma_eV",
                                       "alpha2f/lambda", "alpha2f/omega_log_eV", "alpha2f/omega2_eV",
                                       "phonons/hbar_omega_q_eV", "eliashberg/tc_K")}


def test_holstein_oracle_cli_1e10(holstein_cli_runs):
    """Oracle 3: `harmonic` on the Holstein model (4×4×2 supercell at K = (0, 0, ½)) gives
    N_γ g²/(κ + MΩ_m²) (bead form) and N_γ g²/(κ + Mν_m²) (continuum) to 1e-10, N_γ from the
    analytic cosine band on the same k."""
    d, r = holstein_cli_runs[2]
    assert r.returncode == 0, r
    got = _read(d / "harm.h5")
    k = folded_kpoints(np.diag([4, 4, 2]), [0, 0, 0.5])
    n_m = NB // 2 + 1
    nu = units.bosonic_frequency_ev(np.arange(n_m), T)
    for ig, gam in enumerate(got["lambda/gamma_eV"]):
        n_g = cosine_band_n_gamma(k, gam)
        np.testing.assert_allclose(got["lambda/lambda_m_bead"][ig], holstein_exact(n_g, ring_frequencies(n_m)),
                                   rtol=1e-10, atol=0)
        np.testing.assert_allclose(got["lambda/lambda_m"][ig], holstein_exact(n_g, nu), rtol=1e-10, atol=0)
        assert abs(got["alpha2f/omega_log_eV"][ig] - HW) < 1e-12 and abs(got["alpha2f/omega2_eV"][ig] - HW) < 1e-12
    # Einstein phonons: ħω_qν = ħΩ on every q of the supercell
    np.testing.assert_allclose(got["phonons/hbar_omega_q_eV"], HW, rtol=1e-12)
    assert "λ_harm(m) bead" in r.stdout


def test_one_and_two_ranks_identical_and_samples_written(holstein_cli_runs):
    (d1, r1), (d2, r2) = holstein_cli_runs[1], holstein_cli_runs[2]
    assert r1.returncode == 0, r1
    a, b = _read(d1 / "harm.h5"), _read(d2 / "harm.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the samples are the exact sampler's draws with the same Φ (Einstein springs) and seed
    from spia_mpi.ions.configurations import read_h5
    conf = read_h5(d1 / "samples.h5")
    model = holstein_cubic(np.diag([4, 4, 2]), 1.0, HOP, G, mass_amu=M)
    want = sample_harmonic_ring_polymers(4, NB, np.full(model.n_basis, M), fc.einstein_force_constants(
        np.full(model.n_basis, M), HW), T, model.reference_positions, np.random.default_rng(5))
    np.testing.assert_allclose(conf.positions, want, atol=1e-12)
    assert conf.temperature_k == T and conf.n_beads == NB


def test_holstein_non_diagonal_supercell_and_kgrid():
    """A non-diagonal (fcc-shaped, 16-cell) supercell over a 4³ primitive k-grid (4 K): run's
    estimator λ = −Σ_K Σ_st w_s W_st w_t / N_γ with W_st = −g²/(M(κ + MΩ_m²)) for every pair
    inside a K gives λ(m) = Σ_K N_K² g²/(M N_γ (κ + MΩ_m²)), N_K = Σ_(k∈K) w_k, N_γ = Σ_K N_K
    (= N_γ/M per cell for one K)."""
    S = [[0, 2, 2], [2, 0, 2], [2, 2, 0]]
    model = holstein_cubic(S, 1.0, HOP, G, mass_amu=M)
    Ks = supercell_kgrid(S, (4, 4, 4))
    res = hm.compute_harmonic(model, fc.einstein_force_constants(model.atoms.get_masses(), HW), Ks, T, NB,
                              gammas=(0.3,))
    ks = [folded_kpoints(S, K) for K in Ks]
    assert len(np.unique(np.round(np.concatenate(ks), 8), axis=0)) == 64
    n_k = np.array([cosine_band_n_gamma(k, 0.3) * len(k) for k in ks])
    n_m = NB // 2 + 1
    want = holstein_exact(1.0, ring_frequencies(n_m)) * np.sum(n_k ** 2) / (len(ks[0]) * n_k.sum())
    np.testing.assert_allclose(res.lambda_bead[0], want, rtol=1e-10)
    # both vertex forms agree when the reference states are eigenstates (tight binding)
    proj = hm.compute_harmonic(model, fc.einstein_force_constants(model.atoms.get_masses(), HW), Ks, T, NB,
                               gammas=(0.3,), vertex="projected")
    np.testing.assert_allclose(proj.lambda_bead, res.lambda_bead, rtol=1e-10)


def test_alpha2f_integrates_to_lambda_and_einstein_limits():
    model = holstein_cubic(np.diag([3, 3, 3]), 1.0, HOP, G, mass_amu=M)
    res = hm.compute_harmonic(model, fc.einstein_force_constants(model.atoms.get_masses(), HW), [[0, 0, 0]], T,
                              NB, gammas=(0.2, 0.6))
    w = np.linspace(1e-4, 0.3, 30001)
    a2f = res.alpha2f(w, 0.002)
    lam_int = 2 * np.trapz(a2f / w[None, :], w, axis=1)
    np.testing.assert_allclose(lam_int, res.lambda0, rtol=1e-3)
    np.testing.assert_allclose(res.lambda_continuum[:, 0], res.lambda0, rtol=1e-12)
    with pytest.raises(InputError):
        res.alpha2f(w, 0.0)


def test_born_interaction_is_the_holstein_pair_interaction():
    """W₀_st(Ω_m) = −Σ_k |G_k,st|²/(ω_k² + Ω_m²) of the kept couplings (the interaction the
    Bethe–Salpeter check of docs/harmonic.md feeds to the BSE) is, for Holstein–Einstein ions and
    Bloch states of a 4×4×2 supercell at K = (0, 0, ½), −g²/(N(κ + MΩ_m²)) for every pair (s, t)
    (each state has weight 1/N on every site), and its Fermi-surface sum is λ_bead."""
    model = holstein_cubic(np.diag([4, 4, 2]), 1.0, HOP, G, mass_amu=M)
    K = [[0.0, 0.0, 0.5]]
    res = hm.compute_harmonic(model, fc.einstein_force_constants(model.atoms.get_masses(), HW), K, T, NB,
                              gammas=(0.2, 0.5), keep_couplings=True)
    n = len(model.atoms)
    omega = ring_frequencies(NB)
    w0 = hm.born_interaction(res.couplings[0], res.hbar_omega ** 2, omega)
    assert w0.shape == (NB, n, n)
    want = -holstein_exact(1.0, omega) / n
    np.testing.assert_allclose(w0, np.broadcast_to(want[:, None, None], w0.shape), rtol=1e-10)
    wts = hm.spia.lorentzian_weights(res.energies[0], res.fermi_level_ev, res.gamma_ev)
    lam = -np.einsum("gs,mst,gt->gm", wts, w0, wts) / wts.sum(axis=1)[:, None]
    np.testing.assert_allclose(lam[:, : NB // 2 + 1], res.lambda_bead, rtol=1e-10)
    np.testing.assert_allclose(res.gbar_abs2[0], 1 / np.abs(res.z_fermi_level_ev + 1j * res.eta_ev
                                                           - res.energies[0]) ** 2, rtol=1e-8)
    assert hm.compute_harmonic(model, fc.einstein_force_constants(model.atoms.get_masses(), HW), K, T, NB,
                               gammas=(0.2,)).couplings is None


def test_zero_modes_drop_removes_exactly_their_share():
    """zero_modes = 'drop' (samples without rigid translations): λ_bead loses exactly the zero modes'
    share of 'keep' (nonzero here: a rigid shift of the Holstein ions shifts every site energy), the
    continuum form and λ_k are unchanged. Φ: first- and second-neighbour springs with the sum rule."""
    model = holstein_cubic(np.diag([2, 2, 2]), 1.0, HOP, G, mass_amu=M)
    phi = fc.central_spring_force_constants(model.atoms, lambda r: 2.0 if r < 1.1 else 1.0, 1.5)
    keep, drop = (hm.compute_harmonic(model, phi, [[0, 0, 0]], T, NB, gammas=(0.3,), zero_modes=z)
                  for z in ("keep", "drop"))
    assert keep.zero.sum() == 3 and keep.lambda_zero_bead[0, 1] > 0.1 * keep.lambda_bead[0, 1]
    np.testing.assert_allclose(drop.lambda_bead, keep.lambda_bead - keep.lambda_zero_bead, rtol=1e-12, atol=1e-15)
    assert np.all(drop.lambda_zero_bead == 0) and drop.zero_modes == "drop"
    np.testing.assert_allclose(drop.lambda_q_bead.sum(axis=1), drop.lambda_bead, rtol=1e-12)
    np.testing.assert_allclose(drop.lambda_continuum, keep.lambda_continuum, rtol=1e-12)
    with pytest.raises(InputError):
        hm.compute_harmonic(model, phi, [[0, 0, 0]], T, NB, zero_modes="fix")


def test_removing_rigid_translations_drops_exactly_the_zero_modes():
    """remove_rigid_translations on exact samples of a Φ with the acoustic sum rule (springs between
    unequal masses on a 2×2×2 simple-cubic supercell, first and second neighbours): every bead's
    centre of mass is at the reference, the mass-weighted coordinates of the non-zero modes are
    unchanged, those of the three zero modes vanish."""
    from spia_mpi.ions.configurations import harmonic_modes
    from ase import Atoms
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], float)
    atoms = Atoms("H8", positions=grid, cell=[2.0, 2.0, 2.0], pbc=True)
    masses = np.arange(1.0, 9.0)
    phi = fc.central_spring_force_constants(atoms, lambda r: 5.0 if r < 1.1 else 2.5, 1.5)
    modes = harmonic_modes(phi, masses)
    assert modes.zero.sum() == 3
    ref = atoms.get_positions()
    pos = sample_harmonic_ring_polymers(5, 4, masses, phi, 300.0, ref, np.random.default_rng(2))
    out = remove_rigid_translations(pos, ref, masses)
    u, v = (pos - ref).reshape(5, 4, 24), (out - ref).reshape(5, 4, 24)
    assert np.abs(np.einsum("a,cbax->cbx", masses, out - ref)).max() < 1e-12
    sq = np.repeat(np.sqrt(masses), 3)
    x_in, x_out = (u * sq) @ modes.vectors, (v * sq) @ modes.vectors
    np.testing.assert_allclose(x_out[..., ~modes.zero], x_in[..., ~modes.zero], atol=1e-12)
    assert np.abs(x_in[..., modes.zero]).max() > 1e-3 and np.abs(x_out[..., modes.zero]).max() < 1e-12


# --------------------------------------------------------------------------
# force constants
# --------------------------------------------------------------------------

def test_finite_displacements_of_einstein_calculator_are_exact():
    model = holstein_cubic(np.diag([2, 2, 1]), 1.0, HOP, G, mass_amu=M)
    atoms = model.atoms
    kappa = M * HW ** 2 / C
    phi = fc.finite_displacement_force_constants(
        atoms.positions, fc.calculator_forces(atoms, EinsteinHarmonic(kappa, atoms.positions)), 0.02)
    np.testing.assert_allclose(phi, fc.einstein_force_constants(atoms.get_masses(), HW), atol=1e-9 * kappa)


def _yukawa_pair_phi(atoms, lam, rc, z=1.0):
    """Analytic Φ of the shifted-force Yukawa pair sum: Φ_ab = −Σ_L [φ'' r̂r̂ + (φ'/r)(1 − r̂r̂)], a ≠ b
    (φ'' of the shifted-force potential equals the bare one; φ' is shifted by −V'(r_c)); Φ_aa by
    translation invariance (written here independently of the code's sum rule)."""
    e2 = units.COULOMB_EV_A * z * z

    def d1(r):
        return -e2 * np.exp(-r / lam) * (1 / r ** 2 + 1 / (lam * r))

    def d2(r):
        return e2 * np.exp(-r / lam) * (2 / r ** 3 + 2 / (lam * r ** 2) + 1 / (lam ** 2 * r))

    pos, cell, n = atoms.positions, atoms.cell[:], len(atoms)
    reach = int(math.ceil(rc / min(np.linalg.norm(cell, axis=1)))) + 1
    rng = range(-reach, reach + 1)
    phi = np.zeros((n, 3, n, 3))
    for a in range(n):
        for b in range(n):
            for i in rng:
                for j in rng:
                    for k in rng:
                        d = pos[b] + np.array([i, j, k]) @ cell - pos[a]
                        r = np.linalg.norm(d)
                        if r < 1e-9 or r >= rc:
                            continue
                        rr = np.outer(d, d) / r ** 2
                        blk = d2(r) * rr + (d1(r) - d1(rc)) / r * (np.eye(3) - rr)
                        phi[a, :, b, :] -= blk
                        phi[a, :, a, :] += blk
    return phi.reshape(3 * n, 3 * n)


def test_yukawa_force_constants_match_analytic_pair_sum():
    from ase.build import bulk
    prim = bulk("H", "fcc", a=2.2)
    atoms, _, _ = build_supercell(prim, np.diag([2, 1, 1]))
    lam, rc = 0.6, 3.5
    phi = fc.finite_displacement_force_constants(atoms.positions,
                                                 fc.calculator_forces(atoms, YukawaPair(lam, None, rc)), 1e-3)
    ref = _yukawa_pair_phi(atoms, lam, rc)
    np.testing.assert_allclose(phi, ref, atol=2e-5 * np.abs(ref).max())
    assert fc.acoustic_sum_rule_violation(phi) < 1e-4 * np.abs(ref).max()
    fixed = fc.enforce_acoustic_sum_rule(phi)
    assert fc.acoustic_sum_rule_violation(fixed) < 1e-10 * np.abs(ref).max()
    np.testing.assert_allclose(fixed, ref, atol=2e-5 * np.abs(ref).max())


def test_acoustic_sum_rule_projection():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((12, 12))
    fixed = fc.enforce_acoustic_sum_rule(a)
    assert np.abs(fixed - fixed.T).max() < 1e-10
    assert fc.acoustic_sum_rule_violation(fixed) < 1e-10
    np.testing.assert_allclose(fc.enforce_acoustic_sum_rule(fixed), fixed, atol=1e-12)   # a projection
    # it is the nearest such matrix: the removed part is orthogonal to any symmetric ASR matrix
    b = fc.enforce_acoustic_sum_rule(rng.standard_normal((12, 12)))
    assert abs(np.sum((a - fixed) * b)) < 1e-9 * np.abs(a).sum()


def test_phonons_of_a_spring_chain_and_phonopy_round_trip(tmp_path):
    """sc lattice, nearest-neighbour central springs k: along q = (q, 0, 0) the branches are
    0, 0 and ω² = (2k/M)(1 − cos 2πq) (the transverse ones are floppy)."""
    model = holstein_cubic(np.diag([4, 1, 1]), 1.0, HOP, G, mass_amu=M)
    k = 3.0
    phi = fc.central_spring_force_constants(model.atoms, lambda r: k, 1.01)
    path = tmp_path / "FORCE_CONSTANTS"
    fc.write_phonopy_force_constants(phi, path)
    back = fc.read_phonopy_force_constants(path, len(model.atoms))
    np.testing.assert_allclose(back, phi, atol=1e-13)
    qs = np.array([[q, 0, 0] for q in (0, 0.25, 0.5, 0.75)])
    _, li, pi = build_supercell(model.primitive, model.supercell_matrix)
    w = fc.phonons_at_q(phi, model.atoms.get_masses(), lattice_points(model.supercell_matrix), li, pi, qs)
    want = np.sqrt(2 * k / M * (1 - np.cos(2 * np.pi * qs[:, 0])) * C)
    np.testing.assert_allclose(w[:, 2], want, atol=1e-9)
    np.testing.assert_allclose(w[:, :2], 0, atol=1e-6)
    with pytest.raises(InputError, match="4 atoms"):
        fc.read_phonopy_force_constants(path, 5)


def test_cli_errors_are_clean(tmp_path, spia_cli):
    bad = HOLSTEIN_TOML.replace('output_file = "harm.h5"', 'output_file = "harm.h5"\nforce_constants = "file"')
    (tmp_path / "in.toml").write_text(bad)
    r = spia_cli(["harmonic", tmp_path / "in.toml"], cwd=tmp_path)
    assert r.returncode != 0 and "force_constants_file" in r.stderr and "Traceback" not in r.stderr, r
    unstable = HOLSTEIN_TOML.replace('output_file = "harm.h5"',
                                     'output_file = "harm.h5"\nforce_constants = "calculator"')
    (tmp_path / "in2.toml").write_text(unstable)
    r = spia_cli(["harmonic", tmp_path / "in2.toml"], cwd=tmp_path)
    assert r.returncode != 0 and "imaginary mode" in r.stderr and "Traceback" not in r.stderr, r
    gpaw = HOLSTEIN_TOML.replace('kind = "holstein"', 'kind = "gpaw"\n[model.gpaw]\nstructure = "hydrogen-sc"')
    gpaw = gpaw.replace('output_file = "harm.h5"', 'output_file = "harm.h5"\nvertex = "projected"')
    (tmp_path / "in3.toml").write_text(gpaw)
    r = spia_cli(["harmonic", tmp_path / "in3.toml"], cwd=tmp_path)
    assert r.returncode != 0 and "orthonormal basis only" in r.stderr and "Traceback" not in r.stderr, r


# --------------------------------------------------------------------------
# oracle 1: reduction on the grid model
# --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("S", [np.diag([2, 1, 1]), [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]],
                         ids=["diagonal-2x1x1", "non-diagonal-det2"])
def test_reduction_grid_model(S, tmp_path):
    """SPIA (Born and BSE) on exact harmonic samples of a dispersive Φ agrees with the
    discrete-bead λ_harm(m) within 3σ + 3 % at every m ≤ N_b/2 (σ < 15 % of λ: the test can fail).
    Both modes use the same resolvents (one checkpoint store, as `run` shares it between modes).

    Dense simple-cubic hydrogen (a = 1.6 Å) on the grid model, 4³ points per cell, 4 plane
    waves per k, ions of 4 amu; Φ = central springs to first and second neighbours plus an
    on-site spring (ħω = 0.10–0.30 eV). Weak coupling (λ ≈ 0.01): with 1-amu ions (twice the
    ⟨u²⟩) the high-m values fall 5–10 % below λ_harm (higher-order terms), see docs/harmonic.md."""
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.io.checkpoint import TaskStore
    from spia_mpi.lattice.structures import load_structure
    from spia_mpi.models.grid import GridModel, fermi_level_of_reference
    model = GridModel(load_structure("hydrogen-sc"), S, (4, 4, 4), 4, "lindhard")
    model.atoms.set_masses(np.full(len(model.atoms), 4.0))
    k1 = 4.0 * 0.1 ** 2 / C
    phi = fc.central_spring_force_constants(model.atoms, lambda r: k1 if r < 1.1 * 1.6 else 0.5 * k1, 1.5 * 1.6, k1)
    kp = [[0, 0, 0]]
    ef = fermi_level_of_reference(model, kp, T)
    harm = hm.compute_harmonic(model, phi, kp, T, NB, n_per_k=4, gammas=(0.4, 0.8), fermi_level_ev=ef)
    pos = sample_harmonic_ring_polymers(512, NB, model.atoms.get_masses(), phi, T, model.reference_positions,
                                        np.random.default_rng(3))
    store = TaskStore.open(tmp_path / "resolvents", len(kp) * pos.shape[0], "reduction-grid")
    for mode in ("born", "bse"):
        res = compute_lambda(model, pos, kp, T, n_per_k=4, gammas=(0.4, 0.8), mode=mode, n_blocks=16,
                             fermi_level_ev=ef, store=store)
        raw = res.raw                                       # before the finite-bead correction (Ω_m)
        dev = np.abs(raw.value - harm.lambda_bead)
        assert np.all(dev <= 3 * raw.error + 0.03 * harm.lambda_bead), (mode, raw.value, harm.lambda_bead)
        assert np.all(raw.error < 0.15 * harm.lambda_bead), (mode, raw.error)


def test_cli_grid_model_with_phonopy_file_matches_the_kernels(tmp_path, spia_cli):
    """`harmonic` on the grid model with Φ from a phonopy FORCE_CONSTANTS file (no sum rule:
    pinned springs) stores that Φ and the λ_harm of the kernels called directly."""
    import h5py

    from spia_mpi.lattice.structures import load_structure
    from spia_mpi.models.grid import GridModel, fermi_level_of_reference
    model = GridModel(load_structure("hydrogen-sc"), np.diag([2, 1, 1]), (4, 4, 4), 4, "lindhard")
    k1 = model.atoms.get_masses()[0] * 0.2 ** 2 / C
    phi = fc.central_spring_force_constants(model.atoms, lambda r: k1, 1.7, k1)
    fc.write_phonopy_force_constants(phi, tmp_path / "FORCE_CONSTANTS")
    (tmp_path / "in.toml").write_text(f"""
[model]
kind = "grid"
[model.grid]
structure = "hydrogen-sc"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 1, 1]
[configurations.einstein]
temperature_k = {T}
n_beads = {NB}
[spia]
states_per_k = 4
gamma_ev = [0.4]
[eliashberg]
mustar = [0.0]
[harmonic]
force_constants = "file"
force_constants_file = "FORCE_CONSTANTS"
acoustic_sum_rule = false
plots = false
""")
    r = spia_cli(["harmonic", tmp_path / "in.toml"], cwd=tmp_path)
    assert r.returncode == 0, r
    ef = fermi_level_of_reference(model, [[0, 0, 0]], T)
    want = hm.compute_harmonic(model, phi, [[0, 0, 0]], T, NB, n_per_k=4, gammas=(0.4,), fermi_level_ev=ef)
    with h5py.File(tmp_path / "harmonic_results.h5", "r") as f:
        np.testing.assert_allclose(f["phonons/force_constants_eV_A2"][...], phi, atol=1e-12)
        np.testing.assert_allclose(f["lambda/lambda_m_bead"][...], want.lambda_bead, rtol=1e-10)
        assert f["lambda"].attrs["vertex"] == "quasi_static"
    assert np.all(want.lambda_bead > 0)
