"""Nonlinear anisotropic Eliashberg equations below T_c (spia_mpi.eliashberg.anisotropic_gap).

Oracles computed here: the isotropic solver (bins with equal couplings must carry its solution),
the T = 0 two-band BCS gap equations (solved in the test), T_c^aniso of the linearised
anisotropic solver (test_gap.py checks it against Suhl–Matthias–Walker), 1 rank = 2 ranks.
"""
import math

import numpy as np
import pytest
from scipy.optimize import fsolve

from spia_mpi.eliashberg import anisotropic as an
from spia_mpi.eliashberg import anisotropic_gap as ag
from spia_mpi.eliashberg import linearised as el
from spia_mpi.eliashberg import nonlinear as nl
from spia_mpi.units import KB_EV_PER_K

OMEGA = 0.05            # Einstein phonon energy (eV)
EULER_GAMMA = 0.5772156649015329
V = np.array([[0.75, 0.1], [0.1, 0.35]])     # two-band couplings W_ij = V_ij λ_E(ν)/λ_E(0)
W8 = np.array([0.4, 0.6])                     # band weights


def two_band_solver(t0=50.0):
    W = V[:, :, None] * el.einstein_lambda(1.0, OMEGA, t0, 200)[None, None, :]
    return an.AnisotropicSolver.from_bins(W, W8, t0, omega2_ev=OMEGA)


def test_uniform_coupling_gives_the_isotropic_gap():
    """W_ij = λ (Einstein λ0 = 1.2, μ* = 0.1) in three bins of weights 0.2/0.3/0.5: every bin's Δ_i(iω_n)
    and Z_i(iω_n) equal the isotropic solver's to 1e-8 at T = 0.3 and 0.9 T_c."""
    t0 = 60.0
    lam = el.einstein_lambda(1.2, OMEGA, t0, 200)
    solver = an.AnisotropicSolver.from_bins(np.broadcast_to(lam, (3, 3, lam.size)).copy(), [0.2, 0.3, 0.5], t0)
    iso = el.EliashbergSolver(el.LambdaOfNu(lam, t0))
    tc = iso.tc(0.1)
    for frac in (0.3, 0.9):
        t = frac * tc
        a = ag.solve_anisotropic_gap(solver, t, 0.1, nl.bcs_guess_ev(t, tc))
        b = nl.solve_gap(iso, t, 0.1, nl.bcs_guess_ev(t, tc))
        assert a.superconducting and b.superconducting
        assert np.max(np.abs(a.delta_ev - b.delta_ev[None])) < 1e-8 * b.delta0_ev
        assert np.max(np.abs(a.z - b.z[None])) < 1e-8
        assert a.mean_delta0_ev == pytest.approx(b.delta0_ev, rel=1e-8)


def bcs_two_band_zero_t():
    """T = 0 two-band BCS limit, μ* = 0: Z_iΔ_i = Σ_j Λ_ij Δ_j ln(2ω_c/Δ_j), Λ_ij = V_ij w_j,
    Z_i = 1 + Σ_j Λ_ij. With X = ln(2ω_c/Δ_1), r = Δ_2/Δ_1 two equations fix (X, r) without ω_c;
    T_c: Z Δ = Λ X_c Δ with X_c = ln(2e^γ ω_c/πT_c) = 1/η (η the largest eigenvalue of Z⁻¹Λ), so
    2Δ_1/k_BT_c = 2π e^{−γ} e^{X_c − X}. Returns (r, 2Δ_1/k_BT_c, 2Δ_2/k_BT_c)."""
    lam = V * W8[None, :]
    z = np.diag(1 + lam.sum(axis=1))
    eta = float(np.max(np.linalg.eigvals(np.linalg.solve(z, lam)).real))

    def equations(p):
        x, log_r = p
        d = np.array([1.0, math.exp(log_r)])
        return z @ d - lam @ (np.array([x, x - log_r]) * d)
    x, log_r = fsolve(equations, [1 / eta, 0.0], xtol=1e-14)
    r1 = 2 * math.pi * math.exp(-EULER_GAMMA) * math.exp(1 / eta - x)
    return math.exp(log_r), r1, r1 * math.exp(log_r)


def test_two_band_weak_coupling_gap_ratios_are_bcs():
    """Two bands (Λ = [[0.3, 0.06], [0.04, 0.21]]), μ* = 0, T = 0.1 T_c^aniso: Δ_2/Δ_1 and 2Δ_i/k_BT_c^aniso
    from Δ_i(iω_0) equal the analytic two-band BCS limit within 2 % (measured 0.6 %, 0.5 %, 0.1 %)."""
    solver = two_band_solver()
    tc = solver.tc(0.0)
    g = ag.solve_anisotropic_gap(solver, 0.1 * tc, 0.0, nl.bcs_guess_ev(0.1 * tc, tc))
    r, ratio1, ratio2 = bcs_two_band_zero_t()
    d = g.delta0_ev
    assert abs((d[1] / d[0]) / r - 1) < 0.02, (d, r)
    got = 2 * d / (KB_EV_PER_K * tc)
    assert abs(got[0] / ratio1 - 1) < 0.02 and abs(got[1] / ratio2 - 1) < 0.02, (got, ratio1, ratio2)
    assert d[0] > 1.5 * d[1]               # a genuinely two-gap state


def test_gaps_vanish_at_anisotropic_tc():
    """Δ_i(iω_0)² at 0.97–0.99 T_c^aniso extrapolates (Ginzburg–Landau) to zero at the linearised T_c^aniso
    within 0.5 % in every bin; at 1.01 T_c^aniso the solution is the normal state. The isotropic average's
    T_c lies lower (T_c^aniso > T_c^iso), so the two-band gap survives above T_c^iso."""
    solver = two_band_solver()
    tc = solver.tc(0.0)
    tc_iso = el.EliashbergSolver(solver.lam).tc(0.0)
    assert tc > 1.05 * tc_iso
    c = ag.anisotropic_gap_curve(solver, 0.0, np.array([0.97, 0.98, 0.99, 1.01]) * tc, tc)
    for i in range(2):
        assert abs(nl.tc_from_gap(c.temperature_k[:3], c.delta0_ev[:3, i]) / tc - 1) < 0.005
    assert not c.solutions[3].superconducting and np.all(c.delta0_ev[3] == 0)
    above_iso = ag.solve_anisotropic_gap(solver, 1.02 * tc_iso, 0.0, nl.bcs_guess_ev(1.02 * tc_iso, tc))
    assert above_iso.superconducting and np.all(above_iso.delta0_ev > 0)


@pytest.mark.mpi(ranks=2)
def test_anisotropic_gap_curve_two_ranks_equal_one():
    from spia_mpi.parallel.mpi import world
    solver = two_band_solver()
    temps = np.array([2.0, 4.0, 6.0])
    par = ag.anisotropic_gap_curve(solver, 0.0, temps, 6.86, comm=world())
    ser = ag.anisotropic_gap_curve(solver, 0.0, temps, 6.86)
    assert np.array_equal(par.delta0_ev, ser.delta0_ev) and np.array_equal(par.z0, ser.z0)


def test_cli_gap_anisotropic_writes_bin_gaps_and_plot_reads_them(tmp_path, spia_cli):
    """`gap --anisotropic` on 2 ranks writes Δ_i(T) of every bin equal to the library's (1e-9) with units;
    `plot gap.h5` draws Δ(T), Δ(ω), N_s(ω), the gap histograms and Δ_i(T) from the file alone."""
    import json

    import h5py
    t0 = 50.0
    W = V[:, :, None] * el.einstein_lambda(1.0, OMEGA, t0, 64)[None, None, :]
    path = tmp_path / "bins.h5"
    with h5py.File(path, "w") as h:
        h["w_ij_m"] = W
        h["weights"] = W8
        h.attrs["temperature_K"] = t0
    r = spia_cli(["gap", "--anisotropic", path, "--mustar", 0.0, "--fractions", "0.2,0.8", "--n-omega", 50,
                  "--omega2", OMEGA, "--output", tmp_path / "g.h5", "--json"], ranks=2)
    assert r.returncode == 0, r
    o = json.loads(r.stdout)["states"][0]
    ref = ag.solve_anisotropic_state(W, W8, t0, 0.0, [0.2, 0.8], omega2_ev=OMEGA)
    assert np.allclose(o["aniso_delta0_eV"], ref.curve.delta0_ev[0], rtol=1e-9)
    with h5py.File(tmp_path / "g.h5", "r") as h:
        g = h["mustar_0/anisotropic"]
        assert np.allclose(g["delta0_eV"][...], ref.curve.delta0_ev, rtol=1e-9)
        assert g["delta0_eV"].shape == (2, 2) and g["matsubara_delta_eV"].shape[0] == 2
        for name in g:
            assert "units" in g[name].attrs, name
    p = spia_cli(["plot", tmp_path / "g.h5", "--out", tmp_path / "figs"])
    assert p.returncode == 0, p
    for stem in ("g_gap_T", "g_gap_omega", "g_dos", "g_gap_histogram_0", "g_gap_T_bins_0"):
        assert (tmp_path / "figs" / f"{stem}.png").stat().st_size > 1000, stem


def test_batched_pair_sums_equal_direct_sums():
    """BinnedToeplitzHankel (all bin pairs by one FFT contraction) equals the sums Σ_j Σ_m W_ij(|n−m|) x_jm
    and Σ_j Σ_m W_ij(n+m+1) x_jm written out here, for a non-symmetric W too."""
    rng = np.random.default_rng(4)
    nb, n = 3, 11
    w = rng.normal(size=(nb, nb, 2 * n))
    x = rng.normal(size=(nb, n))
    t, h = an.BinnedToeplitzHankel(w, n)(x)
    idx = np.arange(n)
    t_direct = np.einsum("ijnm,jm->in", w[:, :, np.abs(idx[:, None] - idx[None, :])], x)
    h_direct = np.einsum("ijnm,jm->in", w[:, :, idx[:, None] + idx[None, :] + 1], x)
    assert np.allclose(t, t_direct, atol=1e-12) and np.allclose(h, h_direct, atol=1e-12)
