"""Free energy difference and specific-heat jump from the imaginary-axis solution.

Bardeen & Stephen, Phys. Rev. 136, A1485 (1964) (Carbotte, Rev. Mod. Phys. 62, 1027
(1990)), per density of states N(0) at the Fermi level:

    ΔF/N(0) = −πk_BT Σ_{n=−∞}^{∞} (R_n − |ω_n|) (Z^S_n − Z^N_n |ω_n|/R_n),   R_n = √(ω_n² + Δ_n²)

(sum over both signs of n = twice the sum over n ≥ 0). Near T_c, ΔF = a (T_c − T)² + …,
and ΔC(T_c) = −T ∂²ΔF/∂T² = −2aT_c; with the normal-state Sommerfeld coefficient
γ = (2π²/3) N(0) k_B² (1 + λ(0)),

    ΔC/γT_c = −2a / [(2π²/3)(1 + λ(0)) k_B²]     (BCS: 12/(7ζ(3)) = 1.426).

Energies in eV, temperatures in K; ΔF/N(0) is in eV².
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import InputError


def free_energy_difference(solution) -> float:
    """ΔF/N(0) (eV²) of a :class:`~spia_mpi.eliashberg.nonlinear.GapSolution` (0 if normal)."""
    if not solution.superconducting:
        return 0.0
    w = solution.omega_ev
    d = solution.delta_ev
    r = np.hypot(w, d)
    r_minus_w = d * d / (r + w)
    pit = math.pi * units.KB_EV_PER_K * solution.temperature_k
    return float(-2.0 * pit * np.sum(r_minus_w * (solution.z - solution.z_normal * w / r)))


@dataclass(frozen=True)
class SpecificHeatJump:
    """ΔC/γT_c from a quadratic fit ΔF/N(0) = a (T_c − T)² + b (T_c − T)³ (T in K, ΔF in eV²)."""

    ratio: float              # ΔC/γT_c
    a_ev2_per_k2: float
    temperature_k: np.ndarray
    free_energy_ev2: np.ndarray


def specific_heat_jump(temperature_k, free_energy_ev2, tc_k: float, lambda0: float) -> SpecificHeatJump:
    """ΔC/γT_c from ΔF/N(0) at temperatures below and near T_c (K), at least 2 points.

    The fit uses ΔF = a x² + b x³ with x = T_c − T (b dropped with only 2 points).
    """
    t = np.asarray(temperature_k, float)
    f = np.asarray(free_energy_ev2, float)
    if t.size < 2 or np.any(t >= tc_k):
        raise InputError("ΔC/γT_c needs ΔF at ≥ 2 temperatures below T_c")
    x = tc_k - t
    cols = [x ** 2, x ** 3] if t.size >= 3 else [x ** 2]
    coef = np.linalg.lstsq(np.vstack(cols).T, f, rcond=None)[0]
    a = float(coef[0])
    kb = units.KB_EV_PER_K
    gamma_n = (2.0 * math.pi ** 2 / 3.0) * (1.0 + lambda0) * kb ** 2
    return SpecificHeatJump(-2.0 * a / gamma_n, a, t, f)
