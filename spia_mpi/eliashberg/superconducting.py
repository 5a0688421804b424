"""The superconducting state below T_c for one λ(ν) and μ*: everything `spia_mpi gap` reports.

T_c (linearised), Δ(T) and Z(T) at iω_0 on a grid of T/T_c, the low-T gap Δ₀ on the
imaginary axis and at the real-axis gap edge (Padé), 2Δ₀/k_BT_c, the T where Δ(T)
vanishes (consistency with T_c), ΔC/γT_c (Bardeen–Stephen), and the real-axis
Δ(ω), Z(ω), N_s(ω)/N(0) at the lowest T. Temperatures in K, energies in eV.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import InputError
from spia_mpi.eliashberg import nonlinear, pade, realaxis, thermodynamics
from spia_mpi.eliashberg.linearised import DEFAULT_CUTOFF_OMEGA2, EliashbergSolver, LambdaOfNu

logger = logging.getLogger(__name__)

#: Default T/T_c grid for Δ(T) (the lowest one gives Δ₀ and the real-axis gap).
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99)
#: Real-axis continuations offered.
REAL_AXIS_METHODS = ("pade", "iterative")
#: T/T_c used for the specific-heat jump fit (one fixed N for all of them).
JUMP_FRACTIONS = (0.94, 0.96, 0.98, 0.99)
#: T/T_c used to locate the zero of Δ(T).
ZERO_FRACTIONS = (0.97, 0.98, 0.99)


@dataclass
class SuperconductingState:
    """Results for one μ* (see module docstring); arrays over the T grid or ω grid."""

    mustar: float
    lambda0: float
    omega2_ev: float
    tc_k: float
    curve: nonlinear.GapCurve
    delta0_imag_ev: float        # Δ(iω_0) at the lowest T
    delta0_edge_ev: float        # real-axis gap edge at the lowest T (NaN: not found)
    tc_from_gap_k: float
    jump: thermodynamics.SpecificHeatJump
    real_axis: pade.RealAxisGap

    @property
    def ratio_imag(self) -> float:
        """2Δ(iω_0)/k_BT_c at the lowest T."""
        return 2.0 * self.delta0_imag_ev / (units.KB_EV_PER_K * self.tc_k)

    @property
    def ratio_edge(self) -> float:
        """2Δ₀/k_BT_c with Δ₀ the real-axis gap edge."""
        return 2.0 * self.delta0_edge_ev / (units.KB_EV_PER_K * self.tc_k)


def solve_state(lam: LambdaOfNu, mustar: float, fractions=DEFAULT_FRACTIONS,
                n_pade: int = pade.DEFAULT_NPADE, omega_max_ev: float | None = None,
                n_omega: int = 2000, eta_ev: float | None = None,
                cutoff_omega2: float = DEFAULT_CUTOFF_OMEGA2, n_freq: int | None = None,
                opts: nonlinear.MixingOptions = nonlinear.MixingOptions(),
                comm=None, real_axis: str = "pade") -> SuperconductingState:
    """Solve everything for λ(ν) and μ* (see :class:`SuperconductingState`).

    ``fractions``: T/T_c for the Δ(T) curve (each in (0, 1)); ``omega_max_ev``: top of the
    real-axis grid (default 3 ω̄₂); ``eta_ev``: height above the real axis (default
    10⁻⁴ Δ(iω_0)); ``real_axis``: 'pade' (Vidberg–Serene) or 'iterative' (Marsiglio–Schossmann–
    Carbotte with the α²F fitted to λ(m), :mod:`spia_mpi.eliashberg.realaxis`). The Δ(T)
    temperatures are spread over the ranks of ``comm``.
    """
    if real_axis not in REAL_AXIS_METHODS:
        raise InputError(f"real-axis method '{real_axis}' is not one of: {', '.join(REAL_AXIS_METHODS)}")
    fr = np.asarray(sorted(float(x) for x in fractions))
    if fr.size == 0 or fr[0] <= 0 or fr[-1] >= 1:
        raise InputError(f"T/T_c fractions must lie in (0, 1), got {list(fr)}")
    solver = EliashbergSolver(lam, n_freq, cutoff_omega2)
    tc = solver.tc(mustar)
    logger.info("μ* = %g: linearised T_c = %.4f K; solving Δ(T) at %d temperatures",
                mustar, tc, fr.size + len(ZERO_FRACTIONS) + len(JUMP_FRACTIONS))
    curve = nonlinear.gap_curve(solver, mustar, fr * tc, tc, opts, comm)
    zero = nonlinear.gap_curve(solver, mustar, np.array(ZERO_FRACTIONS) * tc, tc, opts, comm)
    tc_gap = nonlinear.tc_from_gap(zero.temperature_k, zero.delta0_ev)
    jump = _jump(lam, mustar, tc, solver, cutoff_omega2, opts, comm)
    low = curve.solutions[0]
    if not low.superconducting:
        raise InputError(f"no gap at T = {low.temperature_k:.4g} K below T_c = {tc:.4g} K")
    d0 = low.delta0_ev
    w_max = omega_max_ev if omega_max_ev else 3.0 * lam.omega2_ev
    omega = np.linspace(0.0, w_max, n_omega)
    eta = eta_ev if eta_ev is not None else 1e-4 * d0
    if real_axis == "pade":
        real = pade.continue_gap(low, omega, n_pade, eta)
    else:
        spectrum = realaxis.Spectrum.from_lambda(lam.lambda_m, lam.temperature_k)
        real = realaxis.continue_gap_iterative(low, spectrum, omega, eta)
    return SuperconductingState(mustar, float(lam.lambda_m[0]), lam.omega2_ev, tc, curve, d0,
                                real.gap_edge_ev, tc_gap, jump, real)


def _jump(lam, mustar, tc, solver, cutoff_omega2, opts, comm) -> thermodynamics.SpecificHeatJump:
    """ΔC/γT_c on one fixed grid (N of the lowest T) so ΔF(T) is smooth in T."""
    temps = np.array(JUMP_FRACTIONS) * tc
    fixed = EliashbergSolver(lam, solver.nfreq_at(float(temps[0])), cutoff_omega2)
    tc_fixed = fixed.tc(mustar, t_guess_k=tc)
    temps = np.array(JUMP_FRACTIONS) * tc_fixed
    curve = nonlinear.gap_curve(fixed, mustar, temps, tc_fixed, opts, comm)
    free = [thermodynamics.free_energy_difference(s) for s in curve.solutions]
    return thermodynamics.specific_heat_jump(temps, free, tc_fixed, float(lam.lambda_m[0]))


def carbotte_gap_ratio(tc_k: float, omega_log_ev: float) -> float:
    """2Δ₀/k_BT_c = 3.53[1 + 12.5 (T_c/ω_ln)² ln(ω_ln/2T_c)] (Carbotte, RMP 62, 1027 (1990))."""
    x = units.KB_EV_PER_K * tc_k / omega_log_ev
    return 3.53 * (1.0 + 12.5 * x * x * math.log(1.0 / (2.0 * x)))


def carbotte_jump_ratio(tc_k: float, omega_log_ev: float) -> float:
    """ΔC/γT_c = 1.43[1 + 53 (T_c/ω_ln)² ln(ω_ln/3T_c)] (Carbotte, RMP 62, 1027 (1990))."""
    x = units.KB_EV_PER_K * tc_k / omega_log_ev
    return 1.43 * (1.0 + 53.0 * x * x * math.log(1.0 / (3.0 * x)))
