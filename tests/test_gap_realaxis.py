"""Iterative real-axis Eliashberg equations (Marsiglio–Schossmann–Carbotte; spia_mpi.eliashberg.realaxis).

Oracles: Padé continuation of the same imaginary-axis solution (independent method, tested in
test_gap.py), the weak-coupling BCS density of states, the phonon-emission threshold of an
Einstein spectrum at low T (Im Δ(ω) = 0 below Ω + Δ₀), λ(z) of the mode sum at z = iν.
"""
import json

import numpy as np
import pytest

from spia_mpi.eliashberg import linearised as el
from spia_mpi.eliashberg import nonlinear as nl
from spia_mpi.eliashberg import pade
from spia_mpi.eliashberg import realaxis as ra
from spia_mpi.units import KB_EV_PER_K

OMEGA = 0.05          # Einstein phonon energy (eV)
T0 = 100.0


def low_t_solution(lambda0, mustar, frac=0.2):
    lam = el.LambdaOfNu(el.einstein_lambda(lambda0, OMEGA, T0, 400), T0, omega2_ev=OMEGA)
    solver = el.EliashbergSolver(lam)
    tc = solver.tc(mustar)
    return lam, nl.solve_gap(solver, frac * tc, mustar, nl.bcs_guess_ev(frac * tc, tc))


def test_mode_sum_coupling_on_the_imaginary_axis():
    """λ(z = iν) of α²F = (λ0Ω/2) δ(ν − Ω) is the Einstein λ0Ω²/(Ω² + ν²); the fit to λ(m) reproduces λ(m)."""
    nu = np.array([0.0, 0.01, 0.2])
    sp = ra.Spectrum.einstein(1.3, OMEGA)
    assert np.allclose(sp.coupling(1j * nu), 1.3 * OMEGA ** 2 / (OMEGA ** 2 + nu ** 2), rtol=1e-13)
    lam_m = el.einstein_lambda(1.3, OMEGA, T0, 40)
    fit = ra.Spectrum.from_lambda(lam_m, T0)
    nu_m = 2 * np.pi * KB_EV_PER_K * T0 * np.arange(40)
    assert np.allclose(fit.coupling(1j * nu_m).real, lam_m, rtol=1e-3)


@pytest.mark.parametrize("lambda0,mustar", [(0.5, 0.0), (1.0, 0.1)])
def test_iterative_agrees_with_pade(lambda0, mustar):
    """Einstein λ0 = 0.5 and 1.0, T = 0.2 T_c: Δ(ω) for ω < Δ₀/2 agrees with Padé within 3 % of Δ₀
    (measured 0.23 % and 0.35 %), the gap edges within 3 % (measured 0.2 % and 0.4 %); the α²F fitted
    to λ(m) gives the same edge as the exact Einstein α²F within 0.1 %."""
    lam, sol = low_t_solution(lambda0, mustar)
    w = np.linspace(0, 3 * OMEGA, 1500)
    p = pade.continue_gap(sol, w, 120, 1e-4 * sol.delta0_ev)
    r = ra.continue_gap_iterative(sol, ra.Spectrum.einstein(lambda0, OMEGA), w)
    low = w < 0.5 * sol.delta0_ev
    assert np.max(np.abs(r.delta_ev[low] - p.delta_ev[low])) < 0.03 * sol.delta0_ev
    assert abs(r.gap_edge_ev / p.gap_edge_ev - 1) < 0.03, (r.gap_edge_ev, p.gap_edge_ev)
    fit = ra.continue_gap_iterative(sol, ra.Spectrum.from_lambda(lam.lambda_m, T0), w)
    assert abs(fit.gap_edge_ev / r.gap_edge_ev - 1) < 1e-3


def test_weak_coupling_bcs_dos_and_einstein_emission_threshold():
    """λ0 = 0.3, μ* = 0, T = 0.2 T_c: N_s(ω)/N(0) at ω ≈ 1.5 Δ₀ equals BCS ω/√(ω² − Δ₀²) within 1 % (Δ₀ the
    computed edge; measured 0.02 %); Im Δ(ω) vanishes (< 1e-3 Δ₀) between the edge and 0.9(Ω + Δ₀) and
    is large (> Δ₀/2) just above Ω + Δ₀, where a quasiparticle can emit an Einstein phonon."""
    _, sol = low_t_solution(0.3, 0.0)
    w = np.linspace(0, 3 * OMEGA, 3000)
    r = ra.continue_gap_iterative(sol, ra.Spectrum.einstein(0.3, OMEGA), w)
    e = r.gap_edge_ev
    assert abs(e / sol.delta0_ev - 1) < 0.01
    i = int(np.argmin(np.abs(w - 1.5 * e)))
    assert r.dos[i] == pytest.approx(w[i] / np.sqrt(w[i] ** 2 - e ** 2), rel=0.01)
    below = (w > 1.05 * e) & (w < 0.9 * (OMEGA + e))
    above = (w > OMEGA + 1.1 * e) & (w < OMEGA + 3 * e)
    assert np.max(np.abs(r.delta_ev[below].imag)) < 1e-3 * e
    assert np.max(np.abs(r.delta_ev[above].imag)) > 0.5 * e


def test_cli_gap_real_axis_iterative(tmp_path, spia_cli):
    """`gap --real-axis iterative` writes the iterative real axis (attrs['method']) and its edge, which
    agrees with the Padé run's within 3 %."""
    import h5py
    f = tmp_path / "lam.dat"
    f.write_text("\n".join(f"{x:.15e}" for x in el.einstein_lambda(1.0, OMEGA, T0, 64)) + "\n")
    base = ["gap", "--lambda", f, "--temperature", T0, "--mustar", 0.1, "--fractions", "0.2,0.9",
            "--n-omega", 600, "--json"]
    it = spia_cli(base + ["--real-axis", "iterative", "--output", tmp_path / "i.h5"])
    pa = spia_cli(base + ["--output", tmp_path / "p.h5"])
    assert it.returncode == 0 and pa.returncode == 0, (it, pa)
    e_it = json.loads(it.stdout)["states"][0]["delta0_edge_eV"]
    e_pa = json.loads(pa.stdout)["states"][0]["delta0_edge_eV"]
    assert abs(e_it / e_pa - 1) < 0.03
    with h5py.File(tmp_path / "i.h5", "r") as h:
        assert h["mustar_0/real_axis"].attrs["method"] == "iterative"
        assert h["mustar_0/real_axis/dos"].attrs["units"] == "1"
