"""Nonlinear Eliashberg gap, Padé real axis, ΔC/γT_c and anisotropic T_c against physics oracles.

Every expected value is computed here independently of the code under test: the BCS
gap equation and its universal numbers, analytic two-band (BCS-limit) eigenproblems,
brute-force Matsubara sums, and the linearised solver (tested in test_eliashberg.py).
"""
import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from spia_mpi.eliashberg import anisotropic as an
from spia_mpi.eliashberg import linearised as el
from spia_mpi.eliashberg import nonlinear as nl
from spia_mpi.eliashberg import pade
from spia_mpi.eliashberg import superconducting as sc
from spia_mpi.errors import InputError
from spia_mpi.units import KB_EV_PER_K

OMEGA = 0.05          # Einstein phonon energy (eV)
EULER_GAMMA = 0.5772156649015329
ZETA3 = 1.2020569031595942


def einstein_solver(lambda0, t0=100.0, n_freq=None):
    lam = el.LambdaOfNu(el.einstein_lambda(lambda0, OMEGA, t0, 400), t0, omega2_ev=OMEGA)
    return el.EliashbergSolver(lam, n_freq=n_freq)


def gap_at(solver, t, mustar, tc):
    return nl.solve_gap(solver, t, mustar, nl.bcs_guess_ev(t, tc))


def bcs_gap_ratio(t):
    """Δ(T)/Δ₀ of weak-coupling BCS at t = T/T_c from ln(T_c/T) = 2πT Σ_n [1/ω_n − 1/√(ω_n²+Δ²)]
    (k_BT_c = 1, Δ₀ = π e^{−γ_E}); the n-sum to 4·10⁶ terms (tail < 1e-10)."""
    w = (2 * np.arange(4_000_000) + 1) * math.pi * t
    f = lambda d: 2 * math.pi * t * np.sum(1 / w - 1 / np.sqrt(w * w + d * d)) - math.log(1 / t)  # noqa: E731
    return brentq(f, 1e-8, 3.0, xtol=1e-13) / (math.pi * math.exp(-EULER_GAMMA))


# ------------------------------------------------------------------ the equations

def test_gap_map_z_equals_brute_force_sum():
    """Z_n ω_n = ω_n + πT Σ_{all m} λ(n−m) ω_m/R_m, summed directly over ±m up to a far
    cutoff (Δ_m = 0 beyond N), equals the rewritten form used by GapMap."""
    rng = np.random.default_rng(3)
    N, M = 24, 20000
    lam = 0.8 / (1 + (np.arange(2 * M + 2) / 3.0) ** 2)
    d = np.zeros(M)
    d[:N] = np.abs(rng.normal(size=N)) * 2.0          # Δ̃_m (units πT), zero beyond N
    w = 2 * np.arange(M) + 1.0
    s = w / np.hypot(w, d)                            # ω_m/R_m, m ≥ 0; odd in ω
    n = np.arange(N)
    direct = w[:N] + np.array([np.sum(lam[np.abs(k - np.arange(M))] * s)
                               - np.sum(lam[k + np.arange(M) + 1] * s) for k in n])
    gmap = nl.GapMap(lam[:2 * N], 0.0, N)
    assert np.allclose(gmap.z(d[:N]) * w[:N], direct, rtol=1e-4, atol=0), \
        "only the λ tail beyond 2N differs (λ ~ 1/l², summed sgn part is exact)"


def test_gap_map_linearises_to_kernel():
    """For Δ → 0, Z·G(Δ) → (K + D)(Δ/ω̃) with K the linearised kernel, D its diagonal."""
    lam = el.einstein_lambda(1.3, OMEGA, 60.0, 2 * 40)
    K = el.kernel_dense(lam, 0.07, 40)
    D = el.kernel_diagonal(lam, 40)
    gmap = nl.GapMap(lam, 0.07, 40)
    x = np.cos(np.arange(40) / 5.0)
    eps = 1e-7
    g, z = gmap(eps * x)
    assert np.allclose(z * (2 * np.arange(40) + 1), D, rtol=1e-12)
    expect = (K + np.diag(D)) @ (x / (2 * np.arange(40) + 1))
    assert np.allclose(z * g / eps, expect, rtol=1e-9, atol=1e-12)


def test_anderson_rejects_too_few_iterations():
    solver = einstein_solver(1.0)
    tc = solver.tc(0.1)
    with pytest.raises(Exception, match="did not converge"):
        nl.solve_gap(solver, 0.99 * tc, 0.1, nl.bcs_guess_ev(0.99 * tc, tc),
                     nl.MixingOptions(max_iter=3))


# ------------------------------------------------------------------ weak coupling (BCS)

@pytest.fixture(scope="module")
def weak():
    solver = einstein_solver(0.3, t0=10.0)
    tc = solver.tc(0.0)
    return solver, tc


def test_weak_coupling_gap_ratio(weak):
    """λ = 0.3 Einstein, μ* = 0: 2Δ₀/k_BT_c → 2π e^{−γ_E} = 3.528 within 1.5 %."""
    solver, tc = weak
    bcs = 2 * math.pi * math.exp(-EULER_GAMMA)
    g = gap_at(solver, 0.15 * tc, 0.0, tc)
    ratio = 2 * g.delta0_ev / (KB_EV_PER_K * tc)
    assert abs(ratio / bcs - 1) < 0.015, ratio      # measured 3.5385 (+0.3 %)


def test_weak_coupling_gap_curve_is_bcs(weak):
    """Δ(T)/Δ₀ at T/T_c = 0.5, 0.8, 0.95 within 2 % of the BCS gap equation.

    The BCS values solved here are 0.9569, 0.7110, 0.3803 (Mühlschlegel's tabulated
    curve; the GL limit 1.7367√(1−t) checks the solver near T_c). The issue's example
    numbers 0.9518/0.6934/0.3559 are not the BCS curve (0.5 %/2.5 %/6.4 % low)."""
    solver, tc = weak
    assert bcs_gap_ratio(0.999) == pytest.approx(1.7367 * math.sqrt(0.001), rel=2e-3)
    d0 = gap_at(solver, 0.15 * tc, 0.0, tc).delta0_ev
    for t in (0.5, 0.8, 0.95):
        ratio = gap_at(solver, t * tc, 0.0, tc).delta0_ev / d0
        assert abs(ratio / bcs_gap_ratio(t) - 1) < 0.02, (t, ratio, bcs_gap_ratio(t))


def test_weak_coupling_specific_heat_jump(weak):
    """ΔC/γT_c from the Bardeen–Stephen ΔF → 12/(7ζ(3)) = 1.426 within 1.5 %."""
    solver, tc = weak
    jump = sc._jump(solver.lam, 0.0, tc, solver, el.DEFAULT_CUTOFF_OMEGA2, nl.MixingOptions(), None)
    assert abs(jump.ratio / (12 / (7 * ZETA3)) - 1) < 0.015, jump.ratio     # measured 1.442


def test_weak_coupling_real_axis_bcs_dos(weak):
    """Padé at low T: the gap edge equals Δ(iω_0) (3 %), N_s(1.5Δ₀) = 1.5/√1.25 (1 %), no states
    below the gap."""
    solver, tc = weak
    g = gap_at(solver, 0.15 * tc, 0.0, tc)
    d0 = g.delta0_ev
    r = pade.continue_gap(g, np.array([0.5 * d0, 1.5 * d0]), eta_ev=1e-6 * d0)
    assert abs(r.gap_edge_ev / d0 - 1) < 0.03
    assert r.dos[1] == pytest.approx(1.5 / math.sqrt(1.25), rel=0.01)
    assert r.dos[0] < 1e-2


# ------------------------------------------------------------------ strong coupling

@pytest.mark.parametrize("lambda0", [1.0, 2.0])
def test_gap_vanishes_at_linearised_tc(lambda0):
    """Δ(T)² extrapolated from T/T_c = 0.97–0.99 vanishes at the linearised T_c (0.5 %),
    and above T_c the iteration finds the normal state."""
    solver = einstein_solver(lambda0)
    tc = solver.tc(0.1)
    curve = nl.gap_curve(solver, 0.1, tc * np.array([0.97, 0.98, 0.99]), tc)
    assert np.all(curve.delta0_ev > 0)
    assert abs(nl.tc_from_gap(curve.temperature_k, curve.delta0_ev) / tc - 1) < 0.005
    above = gap_at(solver, 1.01 * tc, 0.1, tc)
    assert not above.superconducting and np.all(above.delta_ev == 0)


@pytest.mark.parametrize("lambda0", [1.0, 1.5, 2.0])
def test_strong_coupling_ratio_carbotte(lambda0):
    """2Δ₀/k_BT_c (real-axis gap edge, T = 0.1 T_c) against Carbotte's strong-coupling fit
    3.53[1 + 12.5 x² ln(1/2x)], x = T_c/ω_ln ≤ 0.2 (ω_ln = Ω), within 3 %
    (measured −1.4 % at λ = 1, +2.2 % at λ = 2)."""
    solver = einstein_solver(lambda0)
    tc = solver.tc(0.1)
    x = KB_EV_PER_K * tc / OMEGA
    assert x <= 0.2
    fit = 3.53 * (1 + 12.5 * x * x * math.log(1 / (2 * x)))
    g = gap_at(solver, 0.1 * tc, 0.1, tc)
    r = pade.continue_gap(g, np.array([g.delta0_ev]))
    ratio = 2 * r.gap_edge_ev / (KB_EV_PER_K * tc)
    assert abs(ratio / fit - 1) < 0.03, (ratio, fit)
    assert ratio > 2 * math.pi * math.exp(-EULER_GAMMA)      # strong coupling raises it


@pytest.mark.parametrize("lambda0", [0.5, 1.0, 2.0])
def test_pade_continuation_consistent_with_matsubara(lambda0):
    """Re Δ(ω → 0) from Padé equals Δ(iω → 0) extrapolated on the imaginary axis (quadratic in
    ω_n through n = 0, 1, 2) to 0.5 %; the approximant reproduces Matsubara points it did not
    use (1e-6); the gap edge is within 3 % of Δ(iω_0) for λ ≤ 1 (T_c/ω_ln ≤ 0.07)."""
    solver = einstein_solver(lambda0)
    tc = solver.tc(0.1)
    g = gap_at(solver, 0.1 * tc, 0.1, tc)
    c = np.polyfit(g.omega_ev[:3] ** 2, g.delta_ev[:3], 2)
    r = pade.continue_gap(g, np.array([1e-9]), n_pade=60)
    assert abs(r.delta_ev[0].real / c[-1] - 1) < 0.005
    zi = 1j * g.omega_ev[:60]
    a = pade.pade_coefficients(zi, g.delta_ev[:60].astype(complex))
    odd = pade.pade_evaluate(a, zi, 1j * g.omega_ev[60:70])
    assert np.allclose(odd.real, g.delta_ev[60:70], rtol=1e-6, atol=1e-9 * g.delta0_ev)
    if lambda0 <= 1.0:
        assert abs(r.gap_edge_ev / g.delta0_ev - 1) < 0.03


def test_solve_state_summary_is_consistent():
    """The `gap` driver: Δ(T) decreasing to 0 at T_c, edge ratio near Carbotte, ΔC > BCS."""
    lam = el.LambdaOfNu(el.einstein_lambda(1.5, OMEGA, 100.0, 64), 100.0)
    s = sc.solve_state(lam, 0.1, fractions=(0.1, 0.5, 0.9), n_omega=200)
    assert np.all(np.diff(s.curve.delta0_ev) < 0)
    assert abs(s.tc_from_gap_k / s.tc_k - 1) < 0.005
    assert abs(s.ratio_edge / sc.carbotte_gap_ratio(s.tc_k, lam.omega2_ev) - 1) < 0.03
    assert s.jump.ratio > 12 / (7 * ZETA3)
    assert s.real_axis.dos.shape == (200,)


@pytest.mark.mpi(ranks=2)
def test_gap_curve_two_ranks_equal_one():
    from spia_mpi.parallel.mpi import world
    comm = world()
    solver = einstein_solver(1.0)
    tc = solver.tc(0.1)
    temps = tc * np.array([0.2, 0.5, 0.8, 0.95, 0.99])
    two = nl.gap_curve(solver, 0.1, temps, tc, comm=comm)
    one = nl.gap_curve(solver, 0.1, temps, tc)
    assert np.array_equal(two.delta0_ev, one.delta0_ev)
    assert comm.allgather(float(two.delta0_ev.sum()))[0] == comm.allgather(float(two.delta0_ev.sum()))[1]


# ------------------------------------------------------------------ anisotropic

def test_anisotropic_operator_equals_dense():
    rng = np.random.default_rng(5)
    nb, N = 3, 17
    A = np.abs(rng.normal(size=(nb, nb, 2 * N))) + 0.1
    W = 0.5 * (A + A.transpose(1, 0, 2))
    w = np.array([0.2, 0.5, 0.3])
    op = an.AnisotropicOperator(W, w, 0.05, N)
    K = op.dense()
    assert np.allclose(K, K.T, atol=1e-13)
    y = rng.normal(size=nb * N)
    assert np.allclose(op.matvec(y), K @ y, atol=1e-12)
    # one entry by hand: (i, n) = (1, 2), (j, m) = (2, 4)
    assert K[1 * N + 2, 2 * N + 4] == pytest.approx(math.sqrt(0.5 * 0.3) * (W[1, 2, 2] + W[1, 2, 7] - 0.1))


def test_anisotropic_uniform_coupling_equals_isotropic():
    """W_ij = λ for all bins: T_c^aniso = T_c^iso to 1e-8 and a uniform gap."""
    t0 = 60.0
    lam = el.einstein_lambda(1.2, OMEGA, t0, 200)
    W = np.broadcast_to(lam, (3, 3, lam.size)).copy()
    r = an.solve_anisotropic_tc(W, [0.2, 0.3, 0.5], t0, 0.1)
    iso = el.EliashbergSolver(el.LambdaOfNu(lam, t0)).tc(0.1)
    assert abs(r.tc_aniso_k / iso - 1) < 1e-8
    assert np.allclose(r.gap_ratio, 1.0, atol=1e-8)


def test_two_band_bcs_limit():
    """Two bands, one Einstein Ω, couplings V_ij, weights w_j, μ* = 0. In the BCS limit the
    linearised equations Z_iΔ_i = Σ_j Λ_ij L Δ_j (Λ_ij = V_ij w_j, Z_i = 1 + Σ_j Λ_ij, L = ln(AΩ/T))
    give T_c = AΩ exp(−1/η), η the largest root of det(Λ − ηZ) = 0 (Suhl–Matthias–Walker with mass
    renormalisation), and the gap ratio Δ_1/Δ_2 of its eigenvector. The one-band λ_eq = η/(1−η)
    has the same η, so T_c^(2 band) = T_c^(1 band)(λ_eq) within 2 %; T_c^aniso > T_c^iso."""
    t0 = 50.0
    V = np.array([[0.8, 0.1], [0.1, 0.3]])
    w = np.array([0.4, 0.6])
    Lam = V * w[None, :]
    Z = np.diag(1 + Lam.sum(axis=1))
    vals, vecs = np.linalg.eig(np.linalg.solve(Z, Lam))
    k = int(np.argmax(vals.real))
    eta, vec = vals[k].real, vecs[:, k].real
    lam_eq = eta / (1 - eta)
    W = V[:, :, None] * el.einstein_lambda(1.0, OMEGA, t0, 200)[None, None, :]
    r = an.solve_anisotropic_tc(W, w, t0, 0.0, omega2_ev=OMEGA)
    one = el.EliashbergSolver(el.LambdaOfNu(el.einstein_lambda(lam_eq, OMEGA, t0, 200), t0,
                                            omega2_ev=OMEGA)).tc(0.0)
    assert abs(r.tc_aniso_k / one - 1) < 0.02, (r.tc_aniso_k, one)      # measured 0.24 %
    assert r.tc_aniso_k > r.tc_iso_k
    assert abs((r.gap_ratio[0] / r.gap_ratio[1]) / (vec[0] / vec[1]) - 1) < 0.02
    assert r.weights @ r.gap_ratio == pytest.approx(1.0)


@pytest.mark.mpi(ranks=2)
def test_anisotropic_slepc_two_ranks_equals_dense():
    from spia_mpi.parallel.mpi import world
    comm = world()
    t0 = 60.0
    V = np.array([[1.0, 0.2], [0.2, 0.5]])
    W = V[:, :, None] * el.einstein_lambda(1.0, OMEGA, t0, 100)[None, None, :]
    dense = an.AnisotropicSolver.from_bins(W, [0.5, 0.5], t0)
    par = an.AnisotropicSolver.from_bins(W, [0.5, 0.5], t0, comm=comm)
    r1, x1 = dense.eigenpair(40.0, 0.1)
    r2, x2 = par.eigenpair(40.0, 0.1)
    assert abs(r2 - r1) < 1e-9 * abs(r1)
    assert np.allclose(x2 / np.linalg.norm(x2), x1 / np.linalg.norm(x1), atol=1e-7)


def test_anisotropic_bad_input():
    W = np.ones((2, 2, 10))
    bad = W.copy()
    bad[0, 1] *= 2.0
    with pytest.raises(InputError, match="symmetric"):
        an.check_inputs(bad, [1, 1])
    with pytest.raises(InputError, match="weights"):
        an.check_inputs(W, [1, -1])
    with pytest.raises(InputError, match="shape"):
        an.check_inputs(np.ones((2, 3, 10)), [1, 1])


def test_gap_histogram_weights():
    density, edges = an.gap_histogram([0.5, 1.5], [0.5, 0.5], bins=4)
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)


# ------------------------------------------------------------------ command line

def write_lambda(path, lam):
    path.write_text("# lambda(m)\n" + "\n".join(f"{x:.15e}" for x in lam) + "\n")
    return path


def test_cli_gap_one_and_two_ranks(tmp_path, spia_cli):
    import h5py
    f = write_lambda(tmp_path / "lam.dat", el.einstein_lambda(1.5, OMEGA, 100.0, 64))
    base = ["gap", "--lambda", f, "--temperature", 100, "--mustar", 0.1, "--fractions", "0.1,0.5,0.9",
            "--n-omega", 100, "--json"]
    r1 = spia_cli(base + ["--output", tmp_path / "g1.h5", "--plots"])
    assert r1.returncode == 0, r1
    r2 = spia_cli(base + ["--output", tmp_path / "g2.h5"], ranks=2)
    assert r2.returncode == 0, r2
    o1, o2 = json.loads(r1.stdout)["states"][0], json.loads(r2.stdout)["states"][0]
    for key in ("tc_K", "delta0_imag_eV", "delta0_edge_eV", "specific_heat_jump_ratio"):
        assert o1[key] == pytest.approx(o2[key], rel=1e-10), key
    tc = el.EliashbergSolver(el.LambdaOfNu(el.einstein_lambda(1.5, OMEGA, 100.0, 64), 100.0)).tc(0.1)
    assert o1["tc_K"] == pytest.approx(tc, rel=1e-9)
    with h5py.File(tmp_path / "g1.h5", "r") as h:
        assert h.attrs["spia_mpi_file"] == "gap" and h.attrs["complete"]
        g = h["mustar_0"]
        for name in ("temperature_K", "delta0_eV", "z0", "real_axis/delta_eV", "real_axis/dos",
                     "specific_heat/free_energy_eV2", "matsubara_delta_eV"):
            assert "units" in g[name].attrs, name
        assert g["delta0_eV"].shape == (3,)
        assert g.attrs["delta0_edge_eV"] == pytest.approx(o1["delta0_edge_eV"])
    for stem in ("g1_gap_T", "g1_gap_omega", "g1_dos"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000


def test_cli_gap_bad_input(tmp_path, spia_cli):
    f = write_lambda(tmp_path / "lam.dat", el.einstein_lambda(1.5, OMEGA, 100.0, 64))
    r = spia_cli(["gap", "--lambda", f, "--temperature", 100, "--fractions", "0.5,1.2",
                  "--output", tmp_path / "g.h5"], ranks=2)
    assert r.returncode == 2, r
    assert r.stderr.count("--fractions") == 1 and "Traceback" not in r.stderr
    r = spia_cli(["gap", "--lambda", f, "--output", tmp_path / "g.h5"])
    assert r.returncode == 2 and "--temperature" in r.stderr


def test_cli_gap_anisotropic(tmp_path, spia_cli):
    """`gap --anisotropic`: T_c^aniso and the gap ratios equal the library's on the same bins;
    the isotropic part is solved for λ = Σ w W w; 2 ranks = 1 rank; bad files refused."""
    import h5py
    t0 = 50.0
    V = np.array([[2.0, 0.5], [0.5, 1.0]])
    w = np.array([0.4, 0.6])
    W = V[:, :, None] * el.einstein_lambda(1.0, OMEGA, t0, 64)[None, None, :]
    path = tmp_path / "bins.h5"
    with h5py.File(path, "w") as h:
        h["w_ij_m"] = W
        h["weights"] = w
        h.attrs["temperature_K"] = t0
    args = ["gap", "--anisotropic", path, "--mustar", 0.1, "--fractions", "0.2,0.9", "--n-omega", 50,
            "--json"]
    r1 = spia_cli(args + ["--output", tmp_path / "a1.h5", "--plots"])
    assert r1.returncode == 0, r1
    r2 = spia_cli(args + ["--output", tmp_path / "a2.h5"], ranks=2)
    assert r2.returncode == 0, r2
    o1, o2 = json.loads(r1.stdout)["states"][0], json.loads(r2.stdout)["states"][0]
    ref = an.solve_anisotropic_tc(W, w, t0, 0.1)
    assert o1["tc_aniso_K"] == pytest.approx(ref.tc_aniso_k, rel=1e-9)
    assert o2["tc_aniso_K"] == pytest.approx(ref.tc_aniso_k, rel=1e-8)
    assert o1["tc_K"] == pytest.approx(ref.tc_iso_k, rel=1e-9) and o1["tc_aniso_K"] > o1["tc_K"]
    with h5py.File(tmp_path / "a1.h5", "r") as h:
        g = h["mustar_0/anisotropic"]
        assert np.allclose(g["gap_ratio"][...], ref.gap_ratio, rtol=1e-6)
        assert g["gap_ratio"].attrs["units"] == "1"
    assert (tmp_path / "a1_gap_histogram_0.png").stat().st_size > 1000
    with h5py.File(tmp_path / "bad.h5", "w") as h:
        h["w_ij_m"] = W
    r = spia_cli(["gap", "--anisotropic", tmp_path / "bad.h5", "--output", tmp_path / "b.h5"])
    assert r.returncode == 2 and "/weights" in r.stderr, r
    r = spia_cli(["gap", "--anisotropic", path, "--lambda", path, "--output", tmp_path / "b.h5"])
    assert r.returncode == 2 and "exactly one" in r.stderr, r


def test_cli_gap_from_results_file(tmp_path, spia_cli):
    """A `run` results file as input: the γ row is chosen as in `tc` and T_c equals the
    file's /eliashberg/tc_K of that row."""
    import h5py
    from tests.test_plotting import results_file
    path = tmp_path / "res.h5"
    results_file(path)
    r = spia_cli(["gap", "--lambda", path, "--gamma", 0.8, "--mustar", 0.1, "--fractions", "0.2,0.9",
                  "--n-omega", 50, "--output", tmp_path / "g.h5", "--json"])
    assert r.returncode == 0, r
    o = json.loads(r.stdout)
    with h5py.File(path, "r") as h:
        assert o["states"][0]["tc_K"] == pytest.approx(h["eliashberg/tc_K"][1, 0], rel=1e-8)
    assert o["gamma_eV"] == 0.8
