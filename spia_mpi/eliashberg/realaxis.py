"""Real-axis gap by the iterative method of Marsiglio, Schossmann & Carbotte (PRB 37, 4965 (1988)).

An alternative to Padé (:mod:`spia_mpi.eliashberg.pade`): the exact analytic continuation of
the imaginary-axis solution, given the spectral function α²F. With φ = ZΔ, ω real (ω + iη),
N(ν) = 1/(e^{ν/T} − 1), f(x) = 1/(e^{x/T} + 1), the Matsubara solution Δ_m, R_m = √(ω_m² + Δ_m²) on
the solver's 2N frequencies ω_m (m = −N … N−1, Δ even) and λ(z) = ∫dν α²F(ν) 2ν/(ν² − z²):

    φ(ω) = πT Σ_m [λ(ω − iω_m) − μ*_N] Δ_m/R_m
           + iπ ∫dν α²F(ν) {[N(ν) + f(ν − ω)] φ(ω−ν)/D(ω−ν) + [N(ν) + f(ν + ω)] φ(ω+ν)/D(ω+ν)},
    ωZ(ω) = ω + iπT Σ_m λ(ω − iω_m) ω_m/R_m
           + iπ ∫dν α²F(ν) {[N(ν) + f(ν − ω)] (ω−ν)Z(ω−ν)/D(ω−ν) + [N(ν) + f(ν + ω)] (ω+ν)Z(ω+ν)/D(ω+ν)},
    D(x) = √(x²Z(x)² − φ(x)²),  Im D ≥ 0 (the retarded branch).

At ω = iω_n the α²F terms vanish (N(ν) + f(ν − iω_n) = 0) and the Matsubara equations are
recovered. The Matsubara sums are fixed; the α²F terms couple ω to ω ± ν and are iterated
to self-consistency (linear mixing) on a uniform grid ω_k = (k + ½)δω, k = 0 … K−1, using
φ(−ω) = φ(ω)*, Z(−ω) = Z(ω)* and linear interpolation (values beyond the grid: those at its
end). α²F is a set of modes (Ω_j, a_j): α²F = Σ_j a_j δ(ν − Ω_j), exact for Einstein spectra;
from λ(m) alone it comes from the non-negative fit of
:func:`~spia_mpi.eliashberg.linearised.fit_spectral_moments` (c_j = 2a_j/Ω_j), whose moments
are robust but whose shape is not (the continuation of λ itself is ill-posed) — documented as
such. Energies in eV, temperatures in K.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import ConvergenceError, InputError
from spia_mpi.eliashberg.pade import RealAxisGap, gap_edge, quasiparticle_dos


@dataclass(frozen=True)
class Spectrum:
    """α²F(ν) = Σ_j a_j δ(ν − Ω_j): modes omega_ev [n_j] (> 0, eV) and weights a_j [n_j] (eV), so that
    λ(iν) = Σ_j 2a_jΩ_j/(Ω_j² + ν²)."""

    omega_ev: np.ndarray
    weight_ev: np.ndarray

    @classmethod
    def einstein(cls, lambda0: float, omega_ev: float) -> "Spectrum":
        """One Einstein mode with λ(0) = lambda0: a = λ0 Ω/2."""
        return cls(np.array([omega_ev]), np.array([0.5 * lambda0 * omega_ev]))

    @classmethod
    def from_lambda(cls, lambda_m, temperature_k: float) -> "Spectrum":
        """The non-negative fit of λ(ν_m) at T0 (:func:`fit_spectral_moments`), zero modes dropped."""
        from spia_mpi.eliashberg.linearised import fit_spectral_moments
        fit = fit_spectral_moments(lambda_m, temperature_k)
        keep = fit.weights > 0
        return cls(fit.omega_grid_ev[keep], 0.5 * fit.weights[keep] * fit.omega_grid_ev[keep])

    def coupling(self, z) -> np.ndarray:
        """λ(z) = Σ_j 2a_jΩ_j/(Ω_j² − z²) at complex z (any shape)."""
        z = np.asarray(z, dtype=complex)
        return np.einsum("j,j...->...", 2.0 * self.weight_ev * self.omega_ev,
                         1.0 / (self.omega_ev[(slice(None),) + (None,) * z.ndim] ** 2 - z[None] ** 2))


@dataclass(frozen=True)
class IterationOptions:
    """Self-consistency control: linear mixing β, tolerance on max |Δφ|/max |φ|, iteration cap."""

    beta: float = 0.5
    tol: float = 1e-10
    max_iter: int = 2000


def _retarded_root(q: np.ndarray) -> np.ndarray:
    """√q with Im ≥ 0 (the retarded branch of √(x²Z² − φ²))."""
    r = np.sqrt(q)
    return np.where(r.imag < 0, -r, r)


class _RealAxisMap:
    """(φ, Z) ↦ (φ', Z') on the grid ω_k for fixed Matsubara sums."""

    def __init__(self, omega, eta, temperature_k, spectrum: Spectrum, sum_phi, sum_zw):
        self.omega, self.eta = omega, eta
        self.dw = float(omega[1] - omega[0])
        kt = units.KB_EV_PER_K * temperature_k
        self.modes = []
        for om, a in zip(spectrum.omega_ev, spectrum.weight_ev):
            bose = 1.0 / math.expm1(om / kt) if om / kt < 700 else 0.0
            fm = 0.5 * (1.0 - np.tanh(0.5 * (om - omega) / kt))      # f(Ω − ω), overflow-free
            fp = 0.5 * (1.0 - np.tanh(0.5 * (om + omega) / kt))      # f(Ω + ω)
            self.modes.append((om, a, bose + fm, bose + fp))
        self.sum_phi, self.sum_zw = sum_phi, sum_zw

    def _at(self, values, x):
        """values (on ω_k, complex) at real points x (any sign): linear interpolation, conj for x < 0."""
        ax = np.abs(x)
        idx = (ax - self.omega[0]) / self.dw
        i0 = np.clip(np.floor(idx).astype(int), 0, self.omega.size - 2)
        t = np.clip(idx - i0, 0.0, 1.0)
        v = (1 - t) * values[i0] + t * values[i0 + 1]
        return np.where(x < 0, v.conj(), v)

    def _kernels(self, phi, z, x):
        """(φ/D, xZ/D) at the points x."""
        p, zz = self._at(phi, x), self._at(z, x)
        xz = (x + 1j * self.eta) * zz
        d = _retarded_root(xz * xz - p * p)
        return p / d, xz / d

    def __call__(self, phi, z):
        w = self.omega
        acc_phi = np.zeros_like(phi)
        acc_zw = np.zeros_like(phi)
        for om, a, wm, wp in self.modes:
            pm, zm = self._kernels(phi, z, w - om)
            pp, zp = self._kernels(phi, z, w + om)
            acc_phi += a * (wm * pm + wp * pp)
            acc_zw += a * (wm * zm + wp * zp)
        new_phi = self.sum_phi + 1j * math.pi * acc_phi
        new_z = (w + self.sum_zw + 1j * math.pi * acc_zw) / w
        return new_phi, new_z


def matsubara_sums(solution, spectrum: Spectrum, omega_ev):
    """(πT Σ_m [λ(ω − iω_m) − μ*_N] Δ_m/R_m, iπT Σ_m λ(ω − iω_m) ω_m/R_m) on real ω [K] over the
    solution's 2N Matsubara frequencies (m ≥ 0 and their mirrors −ω_m with the same Δ)."""
    wm, dm = solution.omega_ev, solution.delta_ev
    r = np.hypot(wm, dm)
    pit = math.pi * units.KB_EV_PER_K * solution.temperature_k
    w = np.asarray(omega_ev, float)[:, None]
    lam_minus = spectrum.coupling(w - 1j * wm[None, :])          # λ(ω − iω_m), m ≥ 0
    lam_plus = spectrum.coupling(w + 1j * wm[None, :])           # λ(ω + iω_m) = λ(ω − iω_{−m−1})
    s_phi = pit * ((lam_minus + lam_plus) @ (dm / r) - 2.0 * solution.mustar_n * np.sum(dm / r))
    s_zw = 1j * pit * ((lam_minus - lam_plus) @ (wm / r))
    return s_phi, s_zw


def iterate_real_axis(solution, spectrum: Spectrum, omega_max_ev: float, n_omega: int = 2000,
                      eta_ev: float | None = None, opts: IterationOptions = IterationOptions()):
    """φ(ω), Z(ω) on ω_k = (k + ½)δω up to ``omega_max_ev`` from a superconducting
    :class:`~spia_mpi.eliashberg.nonlinear.GapSolution`; returns (ω [K], Δ [K], Z [K], iterations)."""
    if not solution.superconducting:
        raise InputError(f"no gap to continue at T = {solution.temperature_k:g} K (normal state)")
    if omega_max_ev <= 0 or n_omega < 10:
        raise InputError("the real-axis grid needs omega_max > 0 and at least 10 points")
    dw = omega_max_ev / n_omega
    omega = (np.arange(n_omega) + 0.5) * dw
    eta = eta_ev if eta_ev is not None else 1e-4 * abs(solution.delta0_ev)
    s_phi, s_zw = matsubara_sums(solution, spectrum, omega)
    fmap = _RealAxisMap(omega, eta, solution.temperature_k, spectrum, s_phi, s_zw)
    phi, z = s_phi.copy(), (omega + s_zw) / omega
    for it in range(1, opts.max_iter + 1):
        new_phi, new_z = fmap(phi, z)
        change = float(np.max(np.abs(new_phi - phi))) / max(float(np.max(np.abs(new_phi))), 1e-300)
        phi = phi + opts.beta * (new_phi - phi)
        z = z + opts.beta * (new_z - z)
        if change <= opts.tol:
            return omega, phi / z, z, it
    raise ConvergenceError(f"real-axis iteration did not converge in {opts.max_iter} iterations "
                           f"(relative change {change:.2e} > {opts.tol:g})")


def continue_gap_iterative(solution, spectrum: Spectrum, omega_ev, eta_ev: float | None = None,
                           opts: IterationOptions = IterationOptions()) -> RealAxisGap:
    """The real-axis gap on ``omega_ev`` (uniform, from 0; eV) by the iterative method, as a
    :class:`~spia_mpi.eliashberg.pade.RealAxisGap` (``n_pade`` = 0). The grid is extended by the
    largest mode Ω_max so that ω + Ω stays on it (at most 8 times the points of ``omega_ev``, else a
    coarser step); results are interpolated back to ``omega_ev``."""
    w_out = np.asarray(omega_ev, float)
    top = float(w_out.max()) + float(np.max(spectrum.omega_ev))
    step = max(float(w_out[1] - w_out[0]) if w_out.size > 1 else 0.0, top / (8 * max(w_out.size, 250)))
    n = int(math.ceil(top / step))
    eta = eta_ev if eta_ev is not None else 1e-4 * abs(solution.delta0_ev)
    grid, delta, z, _ = iterate_real_axis(solution, spectrum, n * step, n, eta, opts)

    def interp(v, x):
        return np.interp(x, grid, v.real) + 1j * np.interp(x, grid, v.imag)
    d_out, z_out = interp(delta, w_out), interp(z, w_out)
    edge = gap_edge(lambda x: interp(delta, np.asarray(x, float)), min(4.0 * abs(solution.delta0_ev), grid[-1]))
    return RealAxisGap(w_out, d_out, z_out, quasiparticle_dos(w_out + 1j * eta, d_out), edge, 0, eta)
