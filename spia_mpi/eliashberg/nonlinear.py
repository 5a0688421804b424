"""Nonlinear isotropic Eliashberg equations on the imaginary axis: Z(iω_n), Δ(iω_n) at T < T_c.

Conventions are those of :mod:`spia_mpi.eliashberg.linearised` (Allen & Dynes 1975;
Carbotte, Rev. Mod. Phys. 62, 1027 (1990)). With N positive fermionic
frequencies ω_n = (2n+1)πk_BT, an even gap Δ_{−n−1} = Δ_n and R_n = √(ω_n² + Δ_n²):

    Z_n ω_n = ω_n + πT Σ_{all m} λ(n−m) ω_m/R_m
            = ω_n + πT [λ(0) + 2Σ_{l=1}^{n} λ(l)] − πT Σ_{m=0}^{N−1} [λ(|n−m|) − λ(n+m+1)] (1 − ω_m/R_m),
    Z_n Δ_n = πT Σ_{m=0}^{N−1} [λ(|n−m|) + λ(n+m+1) − 2μ*_N] Δ_m/R_m.

The first line is exact for the infinite sum of sgn ω_m (the Z of the normal state,
the diagonal of the linearised kernel) and truncates only the correction 1 − ω_m/R_m,
which vanishes where Δ_m ≪ ω_m; at Δ → 0 the equations become the linearised kernel
exactly, so Δ(T) vanishes at the linearised T_c. Both sums are Toeplitz + Hankel and
cost O(N log N) through :class:`~spia_mpi.eliashberg.linearised.KernelOperator`.

The gap is found as a fixed point Δ = G(Δ) by Anderson mixing (type II, a short
history of residual differences; restarts on a growing residual). Everything runs
in units of πk_BT internally; the public results are in eV and K.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import ConvergenceError, InputError
from spia_mpi.eliashberg.linearised import EliashbergSolver, KernelOperator, kernel_diagonal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GapSolution:
    """Solution of the imaginary-axis equations at one temperature.

    omega_ev  float [N]  ω_n = (2n+1)πk_BT (eV), n = 0 … N−1
    z         float [N]  Z(iω_n) in the superconducting state
    z_normal  float [N]  Z(iω_n) of the normal state (Δ = 0)
    delta_ev  float [N]  Δ(iω_n) (eV); all zero in the normal state (``superconducting`` False)
    """

    temperature_k: float
    mustar: float
    mustar_n: float
    omega_ev: np.ndarray
    z: np.ndarray
    z_normal: np.ndarray
    delta_ev: np.ndarray
    iterations: int
    residual: float
    superconducting: bool

    @property
    def delta0_ev(self) -> float:
        """Δ(iω_0) in eV, the lowest-frequency gap."""
        return float(self.delta_ev[0])


@dataclass(frozen=True)
class MixingOptions:
    """Fixed-point control: Anderson depth, linear mixing β, tolerance and iteration cap.

    The iteration stops when max_n |G(Δ)_n − Δ_n| ≤ tol · max_n |Δ_n|.
    """

    depth: int = 6
    beta: float = 0.6
    tol: float = 1e-11
    max_iter: int = 3000


class GapMap:
    """The map Δ ↦ G(Δ) at one T, in units of πk_BT (Δ̃ = Δ/πk_BT, ω̃_n = 2n+1)."""

    def __init__(self, lambda_l: np.ndarray, mustar_n: float, n_freq: int):
        self.op = KernelOperator(lambda_l, mustar_n, n_freq)
        self.w = 2.0 * np.arange(n_freq) + 1.0
        self.zw_normal = kernel_diagonal(lambda_l, n_freq)   # Z^N_n ω̃_n
        self.mustar_n = mustar_n

    def z(self, d: np.ndarray) -> np.ndarray:
        """Z_n for the gap d (units of πT)."""
        r = np.hypot(self.w, d)
        c = d * d / (r * (r + self.w))          # 1 − ω/R without cancellation
        t, h = self.op.toeplitz_hankel(c)
        return (self.zw_normal - (t - h)) / self.w

    def __call__(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(G(d), Z) for the gap d (units of πT)."""
        s = d / np.hypot(self.w, d)
        t, h = self.op.toeplitz_hankel(s)
        z = self.z(d)
        return (t + h - 2.0 * self.mustar_n * s.sum()) / z, z


def anderson(fmap, x0: np.ndarray, opts: MixingOptions) -> tuple[np.ndarray, int, float]:
    """Fixed point x = fmap(x) by Anderson mixing; returns (x, iterations, relative residual).

    ``fmap`` returns a tuple whose first element is G(x). Raises ConvergenceError
    after ``opts.max_iter`` iterations.
    """
    x = np.array(x0, dtype=float)
    dx_hist, df_hist = [], []
    x_prev = f_prev = None
    best = math.inf
    for it in range(1, opts.max_iter + 1):
        g = fmap(x)[0]
        f = g - x
        scale = max(float(np.max(np.abs(x))), 1e-300)
        res = float(np.max(np.abs(f))) / scale
        if res <= opts.tol or not np.any(x):
            return x, it, res
        if res > 10.0 * best:            # diverging: forget the history
            dx_hist.clear()
            df_hist.clear()
        best = min(best, res)
        if x_prev is not None:
            dx_hist.append(x - x_prev)
            df_hist.append(f - f_prev)
            if len(dx_hist) > opts.depth:
                dx_hist.pop(0)
                df_hist.pop(0)
        x_prev, f_prev = x, f
        if dx_hist:
            dF = np.array(df_hist).T
            dX = np.array(dx_hist).T
            gamma = np.linalg.lstsq(dF, f, rcond=1e-12)[0]
            x = x + opts.beta * f - (dX + opts.beta * dF) @ gamma
        else:
            x = x + opts.beta * f
    raise ConvergenceError(f"Eliashberg gap iteration did not converge in {opts.max_iter} "
                           f"iterations (relative residual {res:.2e} > {opts.tol:g})")


def solve_gap_grid(lambda_l, mustar_n: float, n_freq: int, temperature_k: float,
                   delta_guess_ev: float, opts: MixingOptions = MixingOptions(),
                   mustar: float | None = None) -> GapSolution:
    """Z(iω_n), Δ(iω_n) on a given grid: λ(l) for l = 0 … 2N−1, μ*_N already renormalised.

    ``delta_guess_ev`` (> 0) scales the starting gap Δ_n = δ · ω_0²/… (a Lorentzian in
    ω_n of width ~ the first frequencies where λ is large). A converged gap below
    1e-9 of the guess is reported as the normal state (Δ = 0).
    """
    if delta_guess_ev <= 0:
        raise InputError(f"starting gap {delta_guess_ev} eV must be positive")
    pit = math.pi * units.KB_EV_PER_K * temperature_k
    gmap = GapMap(np.asarray(lambda_l, float), mustar_n, n_freq)
    lam = np.asarray(lambda_l, float)
    # start: the guess times λ(|n|)/λ(0) — large at low frequency, decaying like the coupling
    d0 = delta_guess_ev / pit * lam[:n_freq] / lam[0]
    d, iters, res = anderson(gmap, d0, opts)
    sc = float(np.max(np.abs(d))) > 1e-9 * float(np.max(d0))
    if not sc:
        d = np.zeros_like(d)
    z = gmap.z(d)
    return GapSolution(temperature_k, mustar if mustar is not None else mustar_n, mustar_n,
                       gmap.w * pit, z, gmap.zw_normal / gmap.w, d * pit, iters, res, sc)


def solve_gap(solver: EliashbergSolver, temperature_k: float, mustar: float,
              delta_guess_ev: float, opts: MixingOptions = MixingOptions()) -> GapSolution:
    """Z, Δ at T (K) for μ*, on the linearised solver's grid (same N(T), same μ*_N)."""
    N, mu_n, lam_l = solver.grid(temperature_k, mustar)
    return solve_gap_grid(lam_l, mu_n, N, temperature_k, delta_guess_ev, opts, mustar)


def bcs_guess_ev(temperature_k: float, tc_k: float, ratio: float = 4.0) -> float:
    """A starting gap (eV): (ratio/2) k_BT_c tanh(1.74 √(T_c/T − 1)) — the BCS shape.

    The default ratio 4 sits between weak (3.53) and strong coupling, above the gap
    so the iteration approaches from above; 1 % of k_BT_c at or above T_c.
    """
    kt = units.KB_EV_PER_K * tc_k
    if temperature_k >= tc_k:
        return 0.01 * kt
    return 0.5 * ratio * kt * max(math.tanh(1.74 * math.sqrt(tc_k / temperature_k - 1.0)), 0.01)


@dataclass(frozen=True)
class GapCurve:
    """Δ(T) for one μ* (temperatures in K, energies in eV).

    temperature_k [n_T], delta0_ev [n_T] (Δ(iω_0)), z0 [n_T] (Z(iω_0)),
    iterations [n_T]; ``solutions`` holds the full GapSolution per T (on every rank).
    """

    mustar: float
    tc_k: float
    temperature_k: np.ndarray
    delta0_ev: np.ndarray
    z0: np.ndarray
    iterations: np.ndarray
    solutions: list


def solve_over_temperatures(temperatures_k, solve_one, what: str, comm=None):
    """``solve_one(T)`` for every T (K) of ``temperatures_k``, the temperatures spread over the
    ranks of ``comm`` (contiguous blocks, each T on one rank) and gathered on all of them, so
    the result does not depend on the rank count. Returns (temperatures [n_T], solutions in
    their order); ``what`` names the curve in the error for a bad temperature list."""
    from spia_mpi.parallel.mpi import allgather_dict, partition
    temps = np.asarray(temperatures_k, dtype=float)
    if temps.ndim != 1 or temps.size == 0 or np.any(temps <= 0):
        raise InputError(f"temperatures for {what} must be a non-empty list of positive values (K)")
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    mine = {i: solve_one(float(temps[i])) for i in partition(temps.size, size, rank)}
    solved = allgather_dict(mine, comm)
    return temps, [solved[i] for i in range(temps.size)]


def gap_curve(solver: EliashbergSolver, mustar: float, temperatures_k, tc_k: float,
              opts: MixingOptions = MixingOptions(), comm=None) -> GapCurve:
    """Δ(T) on ``temperatures_k`` (K), each T solved independently from the BCS guess.

    The temperatures are spread over the ranks of ``comm`` (contiguous blocks, each T
    on one rank) and gathered on all ranks, so the result does not depend on the
    rank count. ``tc_k`` (the linearised T_c) only shapes the starting gap.
    """
    def one(t):
        sol = solve_gap(solver, t, mustar, bcs_guess_ev(t, tc_k), opts)
        logger.debug("Δ(T = %.4g K) = %.5g meV after %d iterations", t, sol.delta0_ev * 1e3,
                     sol.iterations)
        return sol

    temps, sols = solve_over_temperatures(temperatures_k, one, "Δ(T)", comm)
    return GapCurve(mustar, tc_k, temps, np.array([s.delta0_ev for s in sols]),
                    np.array([s.z[0] for s in sols]), np.array([s.iterations for s in sols]), sols)


def tc_from_gap(temperature_k, delta0_ev) -> float:
    """T (K) where Δ vanishes: Δ² = a(T* − T) + b(T* − T)² fitted to the points given.

    Near T_c, Δ(iω_0)² is analytic in T − T_c (Ginzburg–Landau); the quadratic in T
    fitted to Δ² (≥ 3 points, all superconducting, close to T_c) has its root T*
    nearest the points' upper end.
    """
    t = np.asarray(temperature_k, float)
    d2 = np.asarray(delta0_ev, float) ** 2
    if t.size < 3 or np.any(d2 <= 0):
        raise InputError("extrapolating T_c from Δ(T) needs ≥ 3 superconducting temperatures")
    c = np.polyfit(t, d2, 2)
    roots = np.roots(c)
    roots = roots[np.isreal(roots)].real
    if roots.size == 0:
        raise ConvergenceError("Δ²(T) fit has no real root")
    return float(roots[np.argmin(np.abs(roots - t.max()))])
