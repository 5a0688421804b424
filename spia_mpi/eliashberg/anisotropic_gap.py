"""Nonlinear anisotropic (Fermi-surface-binned) Eliashberg equations below T_c: Z_i(iω_n), Δ_i(iω_n).

The bins i, weights w_i and couplings W_ij(ν) are those of :mod:`spia_mpi.eliashberg.anisotropic`
(λ_ij = W_ij w_j is the coupling of bin i to bin j, the same μ* for every pair). With
R_{j,m} = √(ω_m² + Δ_{j,m}²) and an even gap in ω the isotropic equations of
:mod:`spia_mpi.eliashberg.nonlinear` become, bin by bin (Allen & Mitrović 1982, multiband form),

    Z_{i,n} ω_n = ω_n + πT Σ_j w_j {[W_ij(0) + 2Σ_{l=1}^{n} W_ij(l)]
                  − Σ_{m=0}^{N−1} [W_ij(|n−m|) − W_ij(n+m+1)] (1 − ω_m/R_{j,m})},
    Z_{i,n} Δ_{i,n} = πT Σ_j w_j Σ_{m=0}^{N−1} [W_ij(|n−m|) + W_ij(n+m+1) − 2μ*_N] Δ_{j,m}/R_{j,m}.

The first bracket is the exact infinite sgn ω sum (the diagonal d_{i,n} of the linearised
anisotropic kernel), so for Δ → 0 the equations become that kernel and Δ_i vanishes at
T_c^aniso. If W_ij = λ for all i, j every bin carries the isotropic solution. Each sum is
Toeplitz + Hankel per bin pair (all pairs in one batched FFT product,
:class:`~spia_mpi.eliashberg.anisotropic.BinnedToeplitzHankel`);
the fixed point Δ = G(Δ) on the [n_b·N] vector uses the Anderson mixing of the isotropic solver.
Internally in units of πk_BT; results in eV and K.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import InputError
from spia_mpi.eliashberg.anisotropic import (AnisotropicOperator, AnisotropicSolver, AnisotropicTc,
                                             solve_anisotropic_tc)
from spia_mpi.eliashberg.nonlinear import MixingOptions, anderson, bcs_guess_ev, solve_over_temperatures

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnisotropicGap:
    """Solution at one temperature: omega_ev [N] (ω_n, eV); z, delta_ev [n_b, N] (Z_i(iω_n), Δ_i(iω_n)
    in eV, all zero in the normal state); weights [n_b]."""

    temperature_k: float
    mustar: float
    omega_ev: np.ndarray
    z: np.ndarray
    delta_ev: np.ndarray
    weights: np.ndarray
    iterations: int
    residual: float
    superconducting: bool

    @property
    def delta0_ev(self) -> np.ndarray:
        """Δ_i(iω_0) per bin (eV), [n_b]."""
        return self.delta_ev[:, 0]

    @property
    def mean_delta0_ev(self) -> float:
        """⟨Δ(iω_0)⟩ = Σ_i w_i Δ_i(iω_0) (eV)."""
        return float(self.weights @ self.delta_ev[:, 0])


class AnisotropicGapMap:
    """Δ ↦ G(Δ) for the binned equations at one T, on [n_b·N] vectors in units of πk_BT."""

    def __init__(self, op: AnisotropicOperator, weights: np.ndarray):
        self.op = op
        self.w = np.asarray(weights, float)
        self.freq = 2.0 * np.arange(op.N) + 1.0          # ω̃_n

    def _pair_sums(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ_j w_j Σ_m W_ij(|n−m|) x_{j,m}, Σ_j w_j Σ_m W_ij(n+m+1) x_{j,m}) for x [n_b, N]."""
        return self.op.pairs(self.w[:, None] * x)

    def z(self, d: np.ndarray) -> np.ndarray:
        """Z_{i,n} [n_b, N] for the gap d [n_b, N] (units of πT)."""
        r = np.hypot(self.freq, d)
        t, h = self._pair_sums(d * d / (r * (r + self.freq)))     # 1 − ω/R without cancellation
        return (self.op.diag - (t - h)) / self.freq

    def __call__(self, dflat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(G(d) flattened, Z [n_b, N]) for the flattened gap d [n_b·N]."""
        d = dflat.reshape(self.op.nb, self.op.N)
        s = d / np.hypot(self.freq, d)
        t, h = self._pair_sums(s)
        z = self.z(d)
        coulomb = 2.0 * self.op.mustar_n * float(self.w @ s.sum(axis=1))
        return ((t + h - coulomb) / z).ravel(), z


def solve_anisotropic_gap(solver: AnisotropicSolver, temperature_k: float, mustar: float,
                          delta_guess_ev: float, opts: MixingOptions = MixingOptions()) -> AnisotropicGap:
    """Z_i, Δ_i at T (K) for μ*, on the solver's grid (N(T), μ*_N of the isotropic average).

    The start is the same in every bin: ``delta_guess_ev`` (> 0) times λ(|n|)/λ(0) of the
    average. A converged gap below 1e-9 of the start is reported as the normal state.
    """
    if delta_guess_ev <= 0:
        raise InputError(f"starting gap {delta_guess_ev} eV must be positive")
    op = solver.operator(temperature_k, mustar)
    gmap = AnisotropicGapMap(op, solver.weights)
    pit = math.pi * units.KB_EV_PER_K * temperature_k
    lam = solver.lam.on_grid(temperature_k, op.N)
    d0 = np.tile(delta_guess_ev / pit * lam / lam[0], op.nb)
    d, iters, res = anderson(gmap, d0, opts)
    d = d.reshape(op.nb, op.N)
    sc = float(np.max(np.abs(d))) > 1e-9 * float(np.max(d0))
    if not sc:
        d = np.zeros_like(d)
    return AnisotropicGap(temperature_k, mustar, gmap.freq * pit, gmap.z(d), d * pit, solver.weights,
                          iters, res, sc)


@dataclass(frozen=True)
class AnisotropicGapCurve:
    """Δ_i(T) for one μ*: temperature_k [n_T], delta0_ev [n_T, n_b] (Δ_i(iω_0)), z0 [n_T, n_b],
    iterations [n_T]; ``solutions`` the full :class:`AnisotropicGap` per T (on every rank)."""

    mustar: float
    tc_k: float
    temperature_k: np.ndarray
    delta0_ev: np.ndarray
    z0: np.ndarray
    iterations: np.ndarray
    solutions: list


def anisotropic_gap_curve(solver: AnisotropicSolver, mustar: float, temperatures_k, tc_k: float,
                          opts: MixingOptions = MixingOptions(), comm=None) -> AnisotropicGapCurve:
    """Δ_i(T) on ``temperatures_k`` (K), each T from the BCS-shaped start of ``tc_k`` (T_c^aniso);
    the temperatures are spread over the ranks of ``comm`` and gathered on all of them (the result
    does not depend on the rank count)."""
    def one(t):
        sol = solve_anisotropic_gap(solver, t, mustar, bcs_guess_ev(t, tc_k), opts)
        logger.debug("Δ_i(T = %.4g K): ⟨Δ⟩ = %.5g meV after %d iterations", t,
                     sol.mean_delta0_ev * 1e3, sol.iterations)
        return sol

    temps, sols = solve_over_temperatures(temperatures_k, one, "Δ_i(T)", comm)
    return AnisotropicGapCurve(mustar, tc_k, temps, np.array([s.delta0_ev for s in sols]),
                               np.array([s.z[:, 0] for s in sols]), np.array([s.iterations for s in sols]), sols)


@dataclass(frozen=True)
class AnisotropicState:
    """What `gap --anisotropic` reports for one μ*: the linearised T_c^aniso, T_c^iso and gap shape at
    T_c⁻ (``linear``) and the nonlinear Δ_i(T) at T/T_c^aniso = ``fractions`` (``curve``)."""

    linear: AnisotropicTc
    curve: AnisotropicGapCurve

    @property
    def low_t_ratio(self) -> np.ndarray:
        """Δ_i(iω_0)/⟨Δ(iω_0)⟩ per bin at the lowest T, [n_b]."""
        low = self.curve.solutions[0]
        return low.delta0_ev / low.mean_delta0_ev


def solve_anisotropic_state(w_ij_m, weights, temperature_k: float, mustar: float, fractions,
                            omega2_ev: float | None = None, n_freq: int | None = None,
                            opts: MixingOptions = MixingOptions(), comm=None) -> AnisotropicState:
    """T_c^aniso (linearised) and Δ_i(T) below it for W_ij(m) [n_b, n_b, n_m] at T0 = ``temperature_k``."""
    fr = np.asarray(sorted(float(x) for x in fractions))
    if fr.size == 0 or fr[0] <= 0 or fr[-1] >= 1:
        raise InputError(f"T/T_c fractions must lie in (0, 1), got {list(fr)}")
    linear = solve_anisotropic_tc(w_ij_m, weights, temperature_k, mustar, omega2_ev, n_freq, comm)
    solver = AnisotropicSolver.from_bins(w_ij_m, weights, temperature_k, omega2_ev, n_freq)
    curve = anisotropic_gap_curve(solver, mustar, fr * linear.tc_aniso_k, linear.tc_aniso_k, opts, comm)
    if not curve.solutions[0].superconducting:
        raise InputError(f"no anisotropic gap at T = {curve.temperature_k[0]:.4g} K below T_c^aniso = "
                         f"{linear.tc_aniso_k:.4g} K")
    return AnisotropicState(linear, curve)
