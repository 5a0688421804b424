"""Linearised Eliashberg equation on the imaginary axis and T_c.

Conventions (METHOD.md §9; paper Eqs. S8–S9; Allen & Dynes, PRB 12, 905 (1975)):

* λ(l) is the electron–ion coupling at the bosonic Matsubara frequency
  ν_l = 2π l k_B T (dimensionless, l = 0, 1, 2, …);
* with N positive fermionic frequencies ω_n = (2n+1)πk_BT, n = 0 … N−1, and an
  even gap Δ_{−n−1} = Δ_n, the symmetric kernel is

      K_nn' = λ(|n−n'|) + λ(n+n'+1) − 2μ*_N
              − δ_nn' [ (2n+1) + λ(0) + 2 Σ_{l=1}^{n} λ(l) ];

  T_c is the temperature where its largest eigenvalue ρ(T) crosses zero;
* μ* is renormalised to the cutoff so T_c does not depend on N:
  1/μ*_N = 1/μ* + ln(ω̄₂/ω_c) with ω_c = (2N−1)πk_BT, the highest fermionic
  frequency kept (the paper's ref. [47] writes 2πNk_BT: equal to O(1/N));
* λ computed at T0 on ν_m(T0) is treated as one function of ν
  (:class:`LambdaOfNu`: monotone PCHIP interpolation, and beyond the last
  computed frequency the asymptote λ(ν) ≈ λ(0) ω̄₂²/ν²).

The kernel is Toeplitz + Hankel + rank one + diagonal, so its product with a
vector costs O(N log N) by FFT: the SLEPc path uses that matrix-free operator
(a PETSc "python" Mat whose rows are distributed over the communicator), the
dense path builds the matrix and calls LAPACK. All energies are in eV (ħ = 1),
temperatures in K.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq, nnls

from spia_mpi import units
from spia_mpi.errors import ConvergenceError, InputError

logger = logging.getLogger(__name__)

#: Largest N for which ``method='auto'`` uses the dense LAPACK path on one rank.
DENSE_MAX_N = 1200
#: Default cutoff ω_c in units of ω̄₂ when the number of frequencies is automatic.
DEFAULT_CUTOFF_OMEGA2 = 12.0
#: Fewest and most fermionic frequencies chosen automatically.
MIN_NFREQ, MAX_NFREQ = 16, 40000


# --------------------------------------------------------------------------
# μ* and ω̄₂
# --------------------------------------------------------------------------

def renormalised_mustar(mustar: float, omega2_ev: float, omega_c_ev: float) -> float:
    """μ*_N from 1/μ*_N = 1/μ* + ln(ω̄₂/ω_c) (energies in eV); 0 stays 0."""
    if mustar == 0.0:
        return 0.0
    inv = 1.0 / mustar + math.log(omega2_ev / omega_c_ev)
    if inv <= 0.0:
        raise InputError(
            f"μ* = {mustar} cannot be renormalised to the cutoff ω_c = {omega_c_ev:.4g} eV "
            f"(1/μ*_N = {inv:.3g} ≤ 0): use fewer frequencies or a smaller μ*")
    return 1.0 / inv


@dataclass(frozen=True)
class Omega2Fit:
    """ω̄₂ from the tail of λ(m): ν²λ(ν)/λ(0) = ω̄₂² − b/ν² fitted on the last points."""

    omega2_ev: float
    error_ev: float
    m_used: np.ndarray
    omega2_m_ev: np.ndarray   # ω̄₂(m) = ν_m √(λ(m)/λ(0)), m = 1 … (nan where λ(m) ≤ 0)


def fit_omega2(lambda_m, temperature_k: float, tail_fraction: float = 0.5) -> Omega2Fit:
    """Fit the asymptote ω̄₂ (eV) of ω̄₂(m) = ν_m √(λ(m)/λ(0)) from the high-m tail.

    For any spectrum λ(ν) = ∫ 2α²F(Ω) Ω/(Ω²+ν²) dΩ one has
    ν²λ(ν)/λ(0) = ω̄₂² − ⟨Ω⁴⟩/ν² + O(ν⁻⁴); a least-squares line in 1/ν² over the
    last ``tail_fraction`` of the positive points (at least 3) gives ω̄₂² as
    the intercept. The error is the intercept's standard error.
    """
    lam = np.asarray(lambda_m, dtype=float)
    if lam.ndim != 1 or lam.size < 3:
        raise InputError("fitting ω̄₂ needs λ(m) for at least m = 0, 1, 2")
    if lam[0] <= 0:
        raise InputError(f"λ(0) = {lam[0]:.4g} must be positive to fit ω̄₂")
    m = np.arange(lam.size)
    nu = units.bosonic_frequency_ev(m, temperature_k)
    with np.errstate(invalid="ignore"):
        om2_m = np.where(lam > 0, nu * np.sqrt(np.clip(lam, 0, None) / lam[0]), np.nan)
    good = np.flatnonzero((m >= 1) & (lam > 0))
    if good.size < 2:
        raise InputError("fitting ω̄₂ needs at least two positive λ(m) with m ≥ 1; give --omega2")
    n_tail = max(3, int(math.ceil(tail_fraction * good.size)))
    use = good[-min(n_tail, good.size):]
    y = nu[use] ** 2 * lam[use] / lam[0]
    x = 1.0 / nu[use] ** 2
    if use.size >= 3:
        A = np.vstack([np.ones_like(x), x]).T
        coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
        a = coef[0]
        dof = use.size - 2
        resid = y - A @ coef
        s2 = float(resid @ resid) / dof if dof > 0 else 0.0
        cov = s2 * np.linalg.inv(A.T @ A)
        da = math.sqrt(max(cov[0, 0], 0.0))
    else:
        a, da = float(y[-1]), float(abs(y[-1] - y[0]))
    if a <= 0:  # the tail is too noisy for the linear model: use the last value
        a, da = float(np.nanmax(y)), float(np.nanstd(y))
    om2 = math.sqrt(a)
    return Omega2Fit(om2, 0.5 * da / om2, use, om2_m)


# --------------------------------------------------------------------------
# λ as one function of ν
# --------------------------------------------------------------------------

@dataclass
class LambdaOfNu:
    """λ(ν) from values on ν_m(T0) (eV): monotone interpolation inside, λ(0)ω̄₂²/ν² beyond.

    Inside the computed range 1/λ is interpolated by PCHIP in ν² (exact for an
    Einstein spectrum λ0Ω²/(Ω²+ν²), monotone for monotone data); if some λ(m) ≤ 0
    (statistical noise in the tail) λ itself is interpolated by PCHIP in ν.

    Parameters
    ----------
    lambda_m : float [n_m]
        λ(m) at ν_m = 2πm k_B T0, m = 0 … n_m−1.
    temperature_k : float
        T0 in K.
    omega2_ev : float or None
        ω̄₂ in eV; fitted from the tail when None.
    """

    lambda_m: np.ndarray
    temperature_k: float
    omega2_ev: float | None = None
    omega2_error_ev: float = 0.0
    _interp: PchipInterpolator = field(init=False, repr=False)

    def __post_init__(self):
        lam = np.asarray(self.lambda_m, dtype=float)
        if lam.ndim != 1 or lam.size < 2:
            raise InputError("λ(m) needs at least two values (m = 0, 1)")
        if not np.all(np.isfinite(lam)):
            raise InputError("λ(m) contains NaN or infinite values")
        if lam[0] <= 0:
            raise InputError(f"λ(0) = {lam[0]:.4g} must be positive")
        if self.temperature_k <= 0:
            raise InputError(f"temperature T0 = {self.temperature_k} K must be positive")
        self.lambda_m = lam
        if self.omega2_ev is None:
            fit = fit_omega2(lam, self.temperature_k)
            self.omega2_ev, self.omega2_error_ev = fit.omega2_ev, fit.error_ev
        elif self.omega2_ev <= 0:
            raise InputError(f"ω̄₂ = {self.omega2_ev} eV must be positive")
        self.nu_ev = units.bosonic_frequency_ev(np.arange(lam.size), self.temperature_k)
        # 1/λ is linear in ν² for one Einstein mode and smooth for any sum of them:
        # interpolate it monotonically in ν² (exact for Einstein, PCHIP keeps the
        # monotonicity of the data). Noisy data with λ ≤ 0 fall back to λ(ν).
        self._inverse = bool(np.all(lam > 0))
        if self._inverse:
            self._interp = PchipInterpolator(self.nu_ev ** 2, 1.0 / lam, extrapolate=False)
        else:
            self._interp = PchipInterpolator(self.nu_ev, lam, extrapolate=False)

    @property
    def nu_max_ev(self) -> float:
        return float(self.nu_ev[-1])

    def __call__(self, nu_ev) -> np.ndarray:
        """λ at bosonic frequencies ``nu_ev`` (eV, ≥ 0; any shape)."""
        nu = np.abs(np.asarray(nu_ev, dtype=float))
        out = np.empty_like(nu)
        inside = nu <= self.nu_max_ev
        if self._inverse:
            out[inside] = 1.0 / self._interp(nu[inside] ** 2)
        else:
            out[inside] = self._interp(nu[inside])
        far = ~inside
        out[far] = self.lambda_m[0] * self.omega2_ev ** 2 / nu[far] ** 2
        return out

    def on_grid(self, temperature_k: float, n_values: int) -> np.ndarray:
        """λ(l) for l = 0 … n_values−1 at ν_l = 2πl k_B T (T in K)."""
        return self(units.bosonic_frequency_ev(np.arange(n_values), temperature_k))


# --------------------------------------------------------------------------
# the kernel
# --------------------------------------------------------------------------

def kernel_diagonal(lambda_l: np.ndarray, n_freq: int) -> np.ndarray:
    """d_n = (2n+1) + λ(0) + 2Σ_{l=1}^{n} λ(l), n = 0 … N−1 (the ω̃ term)."""
    lam = np.asarray(lambda_l, dtype=float)
    n = np.arange(n_freq)
    partial = np.concatenate([[0.0], np.cumsum(lam[1:n_freq])])[:n_freq]
    return (2 * n + 1) + lam[0] + 2.0 * partial


def kernel_dense(lambda_l: np.ndarray, mustar_n: float, n_freq: int, rows=None) -> np.ndarray:
    """Rows ``rows`` (default all) of the symmetric kernel K, float [len(rows), N].

    ``lambda_l`` needs at least 2N values: λ(0) … λ(2N−1).
    """
    lam = np.asarray(lambda_l, dtype=float)
    if lam.size < 2 * n_freq:
        raise ValueError(f"kernel with N = {n_freq} needs λ(0…{2 * n_freq - 1}), got {lam.size}")
    rows = np.arange(n_freq) if rows is None else np.asarray(rows)
    cols = np.arange(n_freq)
    K = lam[np.abs(rows[:, None] - cols[None, :])] + lam[rows[:, None] + cols[None, :] + 1]
    K -= 2.0 * mustar_n
    d = kernel_diagonal(lam, n_freq)
    K[np.arange(rows.size), rows] -= d[rows]
    return K


class KernelOperator:
    """y = K x in O(N log N): Toeplitz + Hankel by FFT, minus rank one and diagonal."""

    def __init__(self, lambda_l: np.ndarray, mustar_n: float, n_freq: int):
        lam = np.asarray(lambda_l, dtype=float)
        if lam.size < 2 * n_freq:
            raise ValueError(f"kernel with N = {n_freq} needs λ(0…{2 * n_freq - 1})")
        N = n_freq
        self.n = N
        self.mustar_n = mustar_n
        self.diag = kernel_diagonal(lam, N)
        self.L = 1 << int(math.ceil(math.log2(3 * N)))
        # Toeplitz t(k) = λ(|k|), k = −(N−1) … N−1, as a circulant of length L
        c = np.zeros(self.L)
        c[:N] = lam[:N]
        c[self.L - N + 1:] = lam[1:N][::-1]
        self._ft = np.fft.rfft(c)
        # Hankel h(s) = λ(s+1), s = 0 … 2N−2; y_n = Σ_k h(n+N−1−k) x̃_k with x̃ reversed
        h = np.zeros(self.L)
        h[:2 * N - 1] = lam[1:2 * N]
        self._fh = np.fft.rfft(h)

    def toeplitz_hankel(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ_m λ(|n−m|) x_m, Σ_m λ(n+m+1) x_m) for a real vector x [N], by FFT."""
        N, L = self.n, self.L
        xp = np.zeros(L)
        xp[:N] = x
        t = np.fft.irfft(self._ft * np.fft.rfft(xp), L)[:N]
        xp[:N] = x[::-1]
        h = np.fft.irfft(self._fh * np.fft.rfft(xp), L)[N - 1:2 * N - 1]
        return t, h

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """K @ x for a real or complex vector x [N]."""
        if np.iscomplexobj(x):
            return self.matvec(x.real) + 1j * self.matvec(x.imag)
        t, h = self.toeplitz_hankel(x)
        y = t + h
        y -= 2.0 * self.mustar_n * x.sum()
        y -= self.diag * x
        return y


class _PetscShell:
    """Context of a PETSc python Mat: each rank applies its rows of ``op`` (any object
    with ``matvec(x)`` on the full vector, e.g. :class:`KernelOperator`)."""

    def __init__(self, op, PETSc):
        self.op = op
        self.PETSc = PETSc
        self._scatter = None
        self._full = None

    def mult(self, mat, x, y):
        if self._scatter is None:
            self._scatter, self._full = self.PETSc.Scatter.toAll(x)
        self._scatter.scatter(x, self._full, addv=self.PETSc.InsertMode.INSERT_VALUES,
                              mode=self.PETSc.ScatterMode.FORWARD)
        full = self._full.getArray(readonly=True)
        r0, r1 = y.getOwnershipRange()
        y.getArray()[:] = self.op.matvec(full)[r0:r1]

    def multHermitian(self, mat, x, y):   # K is real symmetric
        self.mult(mat, x, y)


def leading_eigenvalue(lambda_l, mustar_n: float, n_freq: int, method: str = "auto",
                       comm=None, tol: float = 1e-13) -> float:
    """Largest eigenvalue ρ of the kernel (dimensionless).

    method: ``'dense'`` (LAPACK, one rank's memory: N² doubles), ``'slepc'``
    (Krylov–Schur on the matrix-free FFT operator, rows distributed over
    ``comm``; options prefix ``spia_eliashberg_``), ``'slepc-assembled'`` (the
    same with an explicitly assembled dense PETSc matrix, for checks), or
    ``'auto'`` (dense for N ≤ DENSE_MAX_N on one rank, SLEPc otherwise).
    """
    size = 1 if comm is None else comm.size
    if method == "auto":
        method = "dense" if (size == 1 and n_freq <= DENSE_MAX_N) else "slepc"
    if method == "dense":
        from scipy.linalg import eigh
        K = kernel_dense(lambda_l, mustar_n, n_freq)
        return float(eigh(K, eigvals_only=True, subset_by_index=[n_freq - 1, n_freq - 1])[0])
    if method in ("slepc", "slepc-assembled"):
        return _leading_eigenvalue_slepc(lambda_l, mustar_n, n_freq, comm,
                                         assembled=(method == "slepc-assembled"), tol=tol)
    raise InputError(f"unknown eigenvalue method '{method}' (dense, slepc, slepc-assembled, auto)")


def _leading_eigenvalue_slepc(lambda_l, mustar_n, n_freq, comm, assembled, tol):
    from spia_mpi.parallel import stack
    from spia_mpi.parallel.mpi import self_comm
    PETSc = stack.petsc()
    comm = comm if comm is not None else self_comm()
    N = n_freq
    if not assembled:
        return slepc_largest_eigenpair(KernelOperator(lambda_l, mustar_n, N), N, comm, tol)[0]
    pcomm = PETSc.Comm(comm)
    A = PETSc.Mat().createDense([N, N], comm=pcomm)
    A.setUp()
    r0, r1 = A.getOwnershipRange()
    local = kernel_dense(lambda_l, mustar_n, N, rows=np.arange(r0, r1))
    A.getDenseArray()[:, :] = local
    A.assemble()
    return _solve_largest(A, N, comm, tol, want_vector=False)[0]


def slepc_largest_eigenpair(op, n: int, comm, tol: float = 1e-13, want_vector: bool = False):
    """(ρ, x or None): the largest eigenvalue (and its eigenvector [n], on every rank) of
    the real symmetric operator ``op`` (``op.matvec`` on full vectors), by SLEPc on a
    matrix-free PETSc matrix whose rows are distributed over ``comm``."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    A = PETSc.Mat().createPython([[PETSc.DECIDE, n], [PETSc.DECIDE, n]],
                                 context=_PetscShell(op, PETSc), comm=PETSc.Comm(comm))
    A.setUp()
    return _solve_largest(A, n, comm, tol, want_vector)


def _solve_largest(A, N, comm, tol, want_vector):
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    SLEPc = stack.slepc()
    pcomm = PETSc.Comm(comm)
    eps = SLEPc.EPS().create(comm=pcomm)
    try:
        rho = _leading_eigenvalue_eps(eps, A, N, tol, SLEPc)
        return rho, (_leading_eigenvector(eps, A, PETSc) if want_vector else None)
    finally:                                   # also on a ConvergenceError: no leaked PETSc objects
        eps.destroy()
        A.destroy()


def _leading_eigenvalue_eps(eps, A, N, tol, SLEPc):
    """Largest real eigenvalue of the symmetric ``A`` (N × N) with ``eps`` (Krylov–Schur)."""
    eps.setOperators(A)
    eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
    eps.setType(SLEPc.EPS.Type.KRYLOVSCHUR)
    eps.setWhichEigenpairs(SLEPc.EPS.Which.LARGEST_REAL)
    eps.setDimensions(nev=1, ncv=min(N, 32))
    eps.setTolerances(tol=tol, max_it=5000)
    eps.setOptionsPrefix("spia_eliashberg_")
    eps.setFromOptions()
    eps.solve()
    nconv = eps.getConverged()
    if nconv < 1:
        raise ConvergenceError(f"SLEPc found no eigenvalue of the Eliashberg kernel (N = {N}, "
                               f"reason {eps.getConvergedReason()})")
    return complex(eps.getEigenvalue(0)).real


def _leading_eigenvector(eps, A, PETSc) -> np.ndarray:
    """The converged leading eigenvector of ``eps``, real part, gathered on every rank."""
    xr = A.createVecRight()
    scatter, full = None, None
    try:
        eps.getEigenvector(0, xr)
        scatter, full = PETSc.Scatter.toAll(xr)
        scatter.scatter(xr, full, addv=PETSc.InsertMode.INSERT_VALUES,
                        mode=PETSc.ScatterMode.FORWARD)
        return np.array(full.getArray(readonly=True).real)
    finally:
        for obj in (scatter, full, xr):
            if obj is not None:
                obj.destroy()


# --------------------------------------------------------------------------
# ρ(T) and T_c
# --------------------------------------------------------------------------

def n_freq_for(temperature_k: float, omega2_ev: float, cutoff_omega2: float = DEFAULT_CUTOFF_OMEGA2) -> int:
    """Number N of positive fermionic frequencies so that ω_c = (2N−1)πk_BT ≥ cutoff·ω̄₂."""
    x = cutoff_omega2 * omega2_ev / (math.pi * units.KB_EV_PER_K * temperature_k)
    return int(min(max(MIN_NFREQ, math.ceil((x + 1) / 2)), MAX_NFREQ))


@dataclass
class EliashbergSolver:
    """Linearised Eliashberg equation for one λ(ν).

    Parameters
    ----------
    lam : LambdaOfNu
    n_freq : int or None
        Fixed number of positive fermionic frequencies; None chooses it per T so
        that ω_c ≥ ``cutoff_omega2`` · ω̄₂.
    method, comm : see :func:`leading_eigenvalue`.
    """

    lam: LambdaOfNu
    n_freq: int | None = None
    cutoff_omega2: float = DEFAULT_CUTOFF_OMEGA2
    method: str = "auto"
    comm: object = None

    def nfreq_at(self, temperature_k: float) -> int:
        if self.n_freq is not None:
            return self.n_freq
        return n_freq_for(temperature_k, self.lam.omega2_ev, self.cutoff_omega2)

    def grid(self, temperature_k: float, mustar: float) -> tuple[int, float, np.ndarray]:
        """(N, μ*_N, λ(l) for l = 0 … 2N−1) at T (K): the discretisation at that T."""
        if temperature_k <= 0:
            raise InputError(f"temperature {temperature_k} K must be positive")
        N = self.nfreq_at(temperature_k)
        omega_c = (2 * N - 1) * math.pi * units.KB_EV_PER_K * temperature_k
        mu_n = renormalised_mustar(mustar, self.lam.omega2_ev, omega_c)
        return N, mu_n, self.lam.on_grid(temperature_k, 2 * N)

    def rho(self, temperature_k: float, mustar: float) -> float:
        """Largest eigenvalue ρ(T) of the kernel at T (K) for μ* (cutoff-renormalised)."""
        N, mu_n, lam_l = self.grid(temperature_k, mustar)
        return leading_eigenvalue(lam_l, mu_n, N, self.method, self.comm)

    def tc(self, mustar: float, t_min_k: float | None = None, t_max_k: float | None = None,
           xtol_k: float = 1e-6, t_guess_k: float | None = None) -> float:
        """T_c in K: the zero of ρ(T), bracketed then refined by Brent's method.

        The bracket search starts from ``t_guess_k`` (e.g. the Allen–Dynes
        estimate; default 0.1 ω̄₂/k_B) and walks geometrically (factor 1.5); ``t_min_k`` (default ω̄₂/(2000 k_B)) is the lowest
        temperature tried. Raises :class:`InputError` when ρ < 0 down to t_min_k
        (no superconductivity in range) or ρ > 0 up to t_max_k.
        """
        w2_k = self.lam.omega2_ev / units.KB_EV_PER_K
        t_min = t_min_k if t_min_k is not None else w2_k / 2000.0
        t_max = t_max_k if t_max_k is not None else 20.0 * w2_k * math.sqrt(1 + self.lam.lambda_m[0])
        if self.n_freq is None:   # keep the automatic N within its bound
            t_min = max(t_min, self.cutoff_omega2 * self.lam.omega2_ev
                        / (math.pi * units.KB_EV_PER_K * (2 * MAX_NFREQ - 1)))
        f = lambda t: self.rho(t, mustar)  # noqa: E731
        guess = t_guess_k if (t_guess_k and t_guess_k > 0) else 0.1 * w2_k
        t = min(max(guess, t_min), t_max)
        ft = f(t)
        if ft > 0:     # superconducting here: go up until ρ < 0
            lo, flo = t, ft
            while True:
                hi = min(lo * 1.5, t_max)
                fhi = f(hi)
                if fhi <= 0:
                    break
                if hi >= t_max:
                    raise InputError(f"ρ(T) > 0 up to T = {t_max:.4g} K: T_c above the search range")
                lo, flo = hi, fhi
        else:          # not superconducting here: go down until ρ > 0
            hi, fhi = t, ft
            while True:
                lo = max(hi / 1.5, t_min)
                flo = f(lo)
                if flo > 0:
                    break
                if lo <= t_min:
                    raise InputError(
                        f"no T_c above {t_min:.4g} K for μ* = {mustar}: ρ(T) < 0 over the whole "
                        f"range (coupling too weak for this μ*)")
                hi, fhi = lo, flo
        try:
            return brentq(f, lo, hi, xtol=xtol_k, rtol=1e-12)
        except ValueError as exc:
            raise ConvergenceError(f"T_c root finding failed in [{lo}, {hi}] K: {exc}") from exc


# --------------------------------------------------------------------------
# α²F estimate and the empirical formulas
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class SpectralMoments:
    """Moments of an α²F(Ω) estimate fitted to λ(ν_m) (energies in eV)."""

    lambda0: float
    omega_log_ev: float
    omega2_ev: float
    omega_grid_ev: np.ndarray   # Ω_j
    weights: np.ndarray         # c_j ≥ 0, λ(ν) = Σ_j c_j Ω_j²/(Ω_j² + ν²)
    residual: float


def fit_spectral_moments(lambda_m, temperature_k: float, n_grid: int = 400) -> SpectralMoments:
    """Non-negative fit λ(ν_m) = Σ_j c_j Ω_j²/(Ω_j²+ν_m²) on a log grid of Ω_j.

    c_j = 2α²F(Ω_j)ΔΩ_j/Ω_j, so λ = Σc_j, ω_log = exp(Σc_j lnΩ_j/Σc_j) and
    ω̄₂² = Σc_jΩ_j²/Σc_j. Continuing λ from the imaginary axis is ill-posed:
    the moments are robust, the shape of α²F is not. Only used for the
    Allen–Dynes and McMillan estimates.
    """
    lam = np.asarray(lambda_m, dtype=float)
    m = np.arange(lam.size)
    nu = units.bosonic_frequency_ev(m, temperature_k)
    nu1 = nu[1]
    omega = np.geomspace(nu1 / 50.0, 5.0 * nu[-1], n_grid)
    A = omega[None, :] ** 2 / (omega[None, :] ** 2 + nu[:, None] ** 2)
    c, res = nnls(A, lam)
    total = c.sum()
    if total <= 0:
        raise InputError("λ(m) admits no non-negative spectral fit (all λ ≤ 0?)")
    w_log = math.exp(float(c @ np.log(omega)) / total)
    w2 = math.sqrt(float(c @ omega ** 2) / total)
    return SpectralMoments(float(total), w_log, w2, omega, c, float(res))


def allen_dynes_tc(lambda0: float, mustar: float, omega_log_ev: float, omega2_ev: float) -> float:
    """Allen–Dynes T_c (K) with the strong-coupling and shape factors f1, f2.

    T_c = f1 f2 (ω_log/1.2) exp[−1.04(1+λ)/(λ − μ*(1+0.62λ))],
    f1 = [1 + (λ/Λ1)^{3/2}]^{1/3}, Λ1 = 2.46(1+3.8μ*),
    f2 = 1 + (ω̄₂/ω_log − 1)λ²/(λ² + Λ2²), Λ2 = 1.82(1+6.3μ*)(ω̄₂/ω_log).
    Returns 0 when the exponent's denominator is ≤ 0.
    """
    den = lambda0 - mustar * (1 + 0.62 * lambda0)
    if den <= 0:
        return 0.0
    lam1 = 2.46 * (1 + 3.8 * mustar)
    lam2 = 1.82 * (1 + 6.3 * mustar) * (omega2_ev / omega_log_ev)
    f1 = (1 + (lambda0 / lam1) ** 1.5) ** (1.0 / 3.0)
    f2 = 1 + (omega2_ev / omega_log_ev - 1) * lambda0 ** 2 / (lambda0 ** 2 + lam2 ** 2)
    return f1 * f2 * omega_log_ev / 1.2 * math.exp(-1.04 * (1 + lambda0) / den) / units.KB_EV_PER_K


def mcmillan_tc(lambda0: float, mustar: float, omega_log_ev: float) -> float:
    """McMillan T_c (K) in the Allen–Dynes form (ω_log/1.2 prefactor, f1 = f2 = 1)."""
    den = lambda0 - mustar * (1 + 0.62 * lambda0)
    if den <= 0:
        return 0.0
    return omega_log_ev / 1.2 * math.exp(-1.04 * (1 + lambda0) / den) / units.KB_EV_PER_K


# --------------------------------------------------------------------------
# one call for everything the CLI and the SPIA driver report
# --------------------------------------------------------------------------

@dataclass
class TcResult:
    """Everything reported for one λ(m) (temperatures in K, energies in eV)."""

    temperature_k: float
    mustar: list
    tc_k: list
    leading_eigenvalue: float     # ρ(T0) for mustar[0]
    nfreq_t0: int
    omega2_ev: float
    omega2_error_ev: float
    omega2_fitted: bool
    omega_log_ev: float
    lambda0: float
    allen_dynes_k: list
    mcmillan_k: list
    errors: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "temperature_K": self.temperature_k,
            "mustar": list(self.mustar),
            "tc_K": list(self.tc_k),
            "leading_eigenvalue": self.leading_eigenvalue,
            "nfreq_at_T0": self.nfreq_t0,
            "lambda0": self.lambda0,
            "omega2_eV": self.omega2_ev,
            "omega2_error_eV": self.omega2_error_ev,
            "omega2_fitted": self.omega2_fitted,
            "omega_log_eV": self.omega_log_ev,
            "allen_dynes_K": list(self.allen_dynes_k),
            "mcmillan_K": list(self.mcmillan_k),
            "tc_errors": dict(self.errors),
        }


def solve_tc(lambda_m, temperature_k: float, mustars, n_freq: int | None = None,
             omega2_ev: float | None = None, method: str = "auto", comm=None,
             cutoff_omega2: float = DEFAULT_CUTOFF_OMEGA2) -> TcResult:
    """T_c for each μ* in ``mustars`` from λ(m) computed at T0 = ``temperature_k``.

    A μ* for which no T_c exists in range gives ``nan`` in ``tc_k`` and the
    reason in ``errors``. Other failures raise.
    """
    mustars = [float(x) for x in mustars]
    if not mustars:
        raise InputError("give at least one μ*")
    for mu in mustars:
        if not 0.0 <= mu < 1.0:
            raise InputError(f"μ* = {mu} out of range [0, 1)")
    if n_freq is not None and n_freq < 2:
        raise InputError(f"--nfreq {n_freq}: need at least 2 fermionic frequencies")
    lam = LambdaOfNu(np.asarray(lambda_m, float), temperature_k, omega2_ev)
    solver = EliashbergSolver(lam, n_freq, cutoff_omega2, method, comm)
    rho0 = solver.rho(temperature_k, mustars[0])
    mom = fit_spectral_moments(lam.lambda_m, temperature_k)
    w2 = lam.omega2_ev
    ad = [allen_dynes_tc(lam.lambda_m[0], mu, mom.omega_log_ev, w2) for mu in mustars]
    mc = [mcmillan_tc(lam.lambda_m[0], mu, mom.omega_log_ev) for mu in mustars]
    tcs, errors = [], {}
    for mu, guess in zip(mustars, ad):
        try:
            tcs.append(solver.tc(mu, t_guess_k=guess))
        except InputError as exc:
            tcs.append(float("nan"))
            errors[str(mu)] = str(exc)
    return TcResult(temperature_k, mustars, tcs, rho0, solver.nfreq_at(temperature_k), w2,
                    lam.omega2_error_ev, omega2_ev is None, mom.omega_log_ev,
                    float(lam.lambda_m[0]), ad, mc, errors)


@dataclass
class TcJackknife:
    """Jackknife error of T_c (K) propagated from delete-one-block replicas of λ(m).

    tc_replicas_k  float [n_blocks, n_mustar]  T_c of each replica (NaN: not solved / failed)
    tc_error_k     float [n_mustar]  σ_Tc = √((n−1)/n Σ_i (T_i − T̄)²) (NaN if any replica failed)
    errors         dict μ* → reason, for every μ* whose error is NaN
    """

    mustar: list
    tc_replicas_k: np.ndarray
    tc_error_k: np.ndarray
    errors: dict = field(default_factory=dict)


def jackknife_tc(lambda_m_replicas, temperature_k: float, mustars, tc_central_k=None,
                 n_freq: int | None = None, omega2_ev: float | None = None,
                 cutoff_omega2: float = DEFAULT_CUTOFF_OMEGA2, comm=None) -> TcJackknife:
    """Statistical error of T_c from the jackknife replicas of λ(m).

    Each replica i (λ(m) computed with configuration block i deleted, float
    [n_blocks, n_m], e.g. ``SpiaResult.lambda_m_jackknife[:, gamma]``) is treated
    exactly like the full estimate — its own ω̄₂ fit (unless ``omega2_ev`` is
    fixed), its own λ(ν) interpolation — and T_c is solved for every μ*; then
    σ_Tc = √((n−1)/n Σ_i (T_i − T̄)²), the same delete-one jackknife as λ(m)'s
    error (:func:`spia_mpi.engine.stats.jackknife_error`). ``tc_central_k`` (T_c of
    the full λ per μ*, K) starts each root search; a μ* whose central T_c is NaN
    is skipped. The n_blocks × n_mustar solves are distributed over the ranks of
    ``comm`` (each on one rank, so the result does not depend on the rank count)
    and gathered on all ranks.
    """
    from spia_mpi.parallel.mpi import allgather_dict, partition, self_comm
    from spia_mpi.engine.stats import jackknife_error
    reps = np.atleast_2d(np.asarray(lambda_m_replicas, dtype=float))
    mustars = [float(x) for x in mustars]
    n_b = reps.shape[0]
    if n_b < 2:
        raise InputError(f"the jackknife needs at least 2 replicas of λ(m), got {n_b}")
    central = ([math.nan] * len(mustars) if tc_central_k is None
               else [float(t) for t in tc_central_k])
    rank = 0 if comm is None else comm.rank
    size = 1 if comm is None else comm.size
    jobs = [(b, j) for b in range(n_b) for j in range(len(mustars))]
    mine = {}
    for i in partition(len(jobs), size, rank):
        b, j = jobs[i]
        if tc_central_k is not None and not math.isfinite(central[j]):
            mine[(b, j)] = (math.nan, "no central T_c")
            continue
        try:
            lam = LambdaOfNu(reps[b], temperature_k, omega2_ev)
            solver = EliashbergSolver(lam, n_freq, cutoff_omega2, "auto", self_comm())
            guess = central[j] if math.isfinite(central[j]) else None
            mine[(b, j)] = (solver.tc(mustars[j], t_guess_k=guess), "")
        except (InputError, ConvergenceError) as exc:
            mine[(b, j)] = (math.nan, f"replica {b}: {exc}")
    mine = allgather_dict(mine, comm)
    tc_rep = np.array([[mine[(b, j)][0] for j in range(len(mustars))] for b in range(n_b)])
    sigma = jackknife_error(tc_rep)
    errors = {}
    for j, mu in enumerate(mustars):
        why = [mine[(b, j)][1] for b in range(n_b) if mine[(b, j)][1]]
        if why:
            errors[str(mu)] = why[0] if why[0] == "no central T_c" else \
                f"{len(why)} of {n_b} replicas without T_c ({why[0]})"
    return TcJackknife(mustars, tc_rep, sigma, errors)


def einstein_lambda(lambda0: float, omega_ev: float, temperature_k: float, n_m: int) -> np.ndarray:
    """λ(ν_m) = λ0 Ω²/(Ω² + ν_m²) for m = 0 … n_m−1 (an Einstein spectrum; tests, demos)."""
    nu = units.bosonic_frequency_ev(np.arange(n_m), temperature_k)
    return lambda0 * omega_ev ** 2 / (omega_ev ** 2 + nu ** 2)
