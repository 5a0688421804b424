"""Analytic continuation of Z(iω_n), Δ(iω_n) to the real axis by Padé approximants.

The N-point Padé approximant through (z_i = iω_i, u_i) is the continued fraction
(Vidberg & Serene, J. Low Temp. Phys. 29, 179 (1977))

    C(z) = a_0 / (1 + a_1 (z − z_0) / (1 + a_2 (z − z_1) / (1 + …))),
    a_i = g_i(z_i),  g_0(z_j) = u_j,
    g_p(z) = [g_{p−1}(z_{p−1}) − g_{p−1}(z)] / [(z − z_{p−1}) g_{p−1}(z)],

computed in extended precision (numpy's long double) since the recursion loses
digits with the number of points. The quasiparticle density of states is
N_s(ω)/N(0) = Re[ω / √(ω² − Δ(ω)²)] on ω + i0⁺ (the branch with Re ≥ 0), and the gap
edge Δ₀ is the lowest ω > 0 where Re Δ(ω) = ω. Energies in eV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from spia_mpi.errors import ConvergenceError, InputError

#: Default number of Matsubara points used for the Padé approximant.
DEFAULT_NPADE = 120


def pade_coefficients(z, u) -> np.ndarray:
    """Continued-fraction coefficients a_i for points z [M] and values u [M] (complex)."""
    z = np.asarray(z, dtype=np.clongdouble)
    g = np.array(u, dtype=np.clongdouble)
    if z.shape != g.shape or z.ndim != 1 or z.size < 2:
        raise InputError("Padé needs ≥ 2 points and as many values as points")
    a = np.empty(z.size, dtype=np.clongdouble)
    a[0] = g[0]
    for p in range(1, z.size):
        g[p:] = (g[p - 1] - g[p:]) / ((z[p:] - z[p - 1]) * g[p:])
        a[p] = g[p]
    return a


def pade_evaluate(a: np.ndarray, z_points, z) -> np.ndarray:
    """C(z) at complex ``z`` (any shape) from the coefficients of :func:`pade_coefficients`."""
    zp = np.asarray(z_points, dtype=np.clongdouble)
    zz = np.asarray(z, dtype=np.clongdouble)
    f = np.ones_like(zz)
    for i in range(a.size - 1, 0, -1):
        f = 1 + a[i] * (zz - zp[i - 1]) / f
    return np.asarray(a[0] / f, dtype=complex)


@dataclass(frozen=True)
class RealAxisGap:
    """Z(ω), Δ(ω) and N_s(ω)/N(0) on real frequencies ω + iη (eV).

    omega_ev [n_ω], delta_ev [n_ω] complex, z [n_ω] complex, dos [n_ω] (N_s/N(0));
    gap_edge_ev: Δ₀ (NaN if Re Δ(ω) = ω has no root on the grid); n_pade points used.
    """

    omega_ev: np.ndarray
    delta_ev: np.ndarray
    z: np.ndarray
    dos: np.ndarray
    gap_edge_ev: float
    n_pade: int
    eta_ev: float


def quasiparticle_dos(omega_ev, delta_ev) -> np.ndarray:
    """N_s(ω)/N(0) = Re[ω/√(ω² − Δ²)] with the root of non-negative real part."""
    w = np.asarray(omega_ev, dtype=complex)
    root = np.sqrt(w * w - np.asarray(delta_ev, dtype=complex) ** 2)
    ratio = w / root
    return np.abs(ratio.real)


def gap_edge(pade_delta, omega_max_ev: float, n_grid: int = 4000) -> float:
    """Lowest ω in (0, omega_max] with Re Δ(ω) = ω (eV), NaN if none.

    ``pade_delta`` maps real ω (array, eV) to complex Δ(ω).
    """
    w = np.linspace(omega_max_ev / n_grid, omega_max_ev, n_grid)
    f = w - pade_delta(w).real
    sign = np.flatnonzero(np.diff(np.sign(f)) > 0)
    if sign.size == 0 or f[0] > 0:
        return float("nan")
    i = sign[0]
    return brentq(lambda x: x - float(pade_delta(np.array([x]))[0].real), w[i], w[i + 1], xtol=1e-14)


def continue_gap(solution, omega_ev, n_pade: int = DEFAULT_NPADE, eta_ev: float = 0.0,
                 edge_max_ev: float | None = None) -> RealAxisGap:
    """Padé continuation of a :class:`~spia_mpi.eliashberg.nonlinear.GapSolution`.

    Uses the lowest ``n_pade`` Matsubara points (fewer if the solution has fewer).
    ``omega_ev`` (real, eV) is evaluated at ω + i·eta. The gap edge is searched
    on (0, edge_max] (default 4 Δ(iω_0)).
    """
    if not solution.superconducting:
        raise InputError(f"no gap to continue at T = {solution.temperature_k:g} K (normal state)")
    m = min(int(n_pade), solution.omega_ev.size)
    if m < 4:
        raise InputError(f"Padé continuation needs at least 4 Matsubara points, got {m}")
    zi = 1j * solution.omega_ev[:m]
    a_d = pade_coefficients(zi, solution.delta_ev[:m].astype(complex))
    a_z = pade_coefficients(zi, solution.z[:m].astype(complex))
    w = np.asarray(omega_ev, dtype=float)
    zc = w + 1j * eta_ev
    delta = pade_evaluate(a_d, zi, zc)
    z = pade_evaluate(a_z, zi, zc)
    if not (np.all(np.isfinite(delta)) and np.all(np.isfinite(z))):
        raise ConvergenceError("Padé approximant has a pole on the requested real frequencies; "
                               "change the number of Padé points")

    def on_axis(x):
        return pade_evaluate(a_d, zi, np.asarray(x) + 0j)

    edge = gap_edge(on_axis, edge_max_ev if edge_max_ev else 4.0 * abs(solution.delta0_ev))
    return RealAxisGap(w, delta, z, quasiparticle_dos(zc, delta), edge, m, eta_ev)
