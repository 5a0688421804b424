"""Anisotropic (Fermi-surface-binned) linearised Eliashberg equations and T_c^aniso.

The Fermi surface is divided into bins i = 1 … n_b (bands, k regions or clusters of
states) with weights w_i (fractions of the density of states, Σ w_i = 1). The
state-pair interaction averaged over bins i, j gives W_ij(m) (dimensionless, the
λ-like coupling at ν_m = 2πm k_BT0, symmetric in i, j) with the isotropic average
λ(m) = Σ_ij w_i W_ij(m) w_j. Bin i feels the coupling λ_ij = W_ij w_j from bin j, so
(Allen & Mitrović, Solid State Phys. 37, 1 (1982); the multiband form of
:mod:`spia_mpi.eliashberg.linearised`) with x_{i,n} = Δ_i(iω_n)/|ω_n| the linearised
equations read ρ x = K x,

    (Kx)_{i,n} = Σ_j w_j Σ_m [W_ij(|n−m|) + W_ij(n+m+1) − 2μ*_N] x_{j,m} − d_{i,n} x_{i,n},
    d_{i,n} = (2n+1) + Σ_j w_j [W_ij(0) + 2Σ_{l=1}^{n} W_ij(l)].

With y_i = √w_i x_i the matrix is real symmetric: √(w_i w_j)[…] − δ_ij d_i. If W_ij = λ
for all i, j its leading eigenvector is √w ⊗ (the isotropic one) with the isotropic
eigenvalue, so T_c^aniso = T_c^iso; otherwise T_c^aniso ≥ T_c^iso (variational).
Each W_ij(ν) is the isotropic λ(ν) (:class:`LambdaOfNu`) times its share W_ij/λ, interpolated
linearly in ν, so that the binned kernel averages to the isotropic one at every T
(:class:`_PairCouplings`). μ* is the same for all bins, with the same cutoff renormalisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spia_mpi.errors import InputError
from spia_mpi.eliashberg.linearised import (EliashbergSolver, LambdaOfNu,
                                            kernel_diagonal, slepc_largest_eigenpair)

#: Largest n_b · N for the dense (LAPACK) eigen solver on one rank.
DENSE_MAX_DIM = 600


def isotropic_average(w_ij_m, weights) -> np.ndarray:
    """λ(m) = Σ_ij w_i W_ij(m) w_j for W [n_b, n_b, n_m] and weights [n_b]."""
    return np.einsum("i,ijm,j->m", weights, w_ij_m, weights)


def check_inputs(w_ij_m, weights) -> tuple[np.ndarray, np.ndarray]:
    """Validated (W [n_b, n_b, n_m], w [n_b] normalised to Σ w = 1)."""
    W = np.asarray(w_ij_m, dtype=float)
    w = np.asarray(weights, dtype=float)
    if W.ndim != 3 or W.shape[0] != W.shape[1] or W.shape[2] < 2:
        raise InputError(f"W_ij(m) must have shape [n_bins, n_bins, n_m ≥ 2], got {list(W.shape)}")
    if w.shape != (W.shape[0],) or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise InputError(f"bin weights must be {W.shape[0]} positive numbers")
    if not np.all(np.isfinite(W)):
        raise InputError("W_ij(m) contains NaN or infinite values")
    if not np.allclose(W, W.transpose(1, 0, 2), rtol=1e-10, atol=1e-14):
        raise InputError("W_ij(m) must be symmetric in the bins i, j")
    return W, w / w.sum()


class _PairCouplings:
    """W_ij(ν) = R_ij(ν) λ(ν) for every bin pair, with λ(ν) the isotropic :class:`LambdaOfNu` and the
    shares R_ij(ν_m) = W_ij(m)/λ(m) interpolated linearly in ν (constant beyond the computed
    frequencies, and beyond the first m with λ(m) ≤ 0). Linear interpolation is linear in the data,
    so Σ_ij w_i R_ij(ν) w_j = 1 and Σ_ij w_i W_ij(ν) w_j = λ(ν) at every ν, not only on the grid of
    T0: the anisotropic kernel averages exactly to the isotropic one at any T."""

    def __init__(self, W: np.ndarray, iso: LambdaOfNu):
        lam = iso.lambda_m
        good = int(np.argmax(lam <= 0)) if np.any(lam <= 0) else lam.size
        self.iso = iso
        self.nu = iso.nu_ev[:good]
        self.share = W[:, :, :good] / lam[None, None, :good]

    def on_grid(self, temperature_k: float, n_values: int) -> np.ndarray:
        """W_ij(l) [n_b, n_b, n_values] at ν_l = 2πl k_BT."""
        from spia_mpi import units
        nu = units.bosonic_frequency_ev(np.arange(n_values), temperature_k)
        nb = self.share.shape[0]
        share = np.array([[np.interp(nu, self.nu, self.share[i, j]) for j in range(nb)] for i in range(nb)])
        return share * self.iso.on_grid(temperature_k, n_values)[None, None, :]


class BinnedToeplitzHankel:
    """(Σ_j Σ_m W_ij(|n−m|) x_{j,m}, Σ_j Σ_m W_ij(n+m+1) x_{j,m}) for x [n_b, N], all bin pairs at once.

    The Toeplitz and Hankel parts of every pair are circulants of length L ≥ 3N (as in
    :class:`~spia_mpi.eliashberg.linearised.KernelOperator`); their transforms are kept, so one product costs 2 n_b FFTs of x,
    2 n_b inverse FFTs and an n_b² (L/2+1) contraction — instead of 4 FFTs per bin pair.
    """

    def __init__(self, w_ij_l: np.ndarray, n_freq: int):
        W = np.asarray(w_ij_l, dtype=float)
        N = n_freq
        if W.shape[2] < 2 * N:
            raise ValueError(f"binned kernel with N = {N} needs W_ij(0…{2 * N - 1})")
        self.N = N
        self.L = 1 << int(math.ceil(math.log2(3 * N)))
        c = np.zeros(W.shape[:2] + (self.L,))
        c[..., :N] = W[..., :N]
        c[..., self.L - N + 1:] = W[..., 1:N][..., ::-1]
        self._ft = np.fft.rfft(c)
        c[:] = 0.0
        c[..., :2 * N - 1] = W[..., 1:2 * N]
        self._fh = np.fft.rfft(c)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        N, L = self.N, self.L
        xp = np.zeros((x.shape[0], L))
        xp[:, :N] = x
        t = np.fft.irfft(np.einsum("ijk,jk->ik", self._ft, np.fft.rfft(xp)), L)[:, :N]
        xp[:, :N] = x[:, ::-1]
        h = np.fft.irfft(np.einsum("ijk,jk->ik", self._fh, np.fft.rfft(xp)), L)[:, N - 1:2 * N - 1]
        return t, h


class AnisotropicOperator:
    """y = K̃ y for the symmetrised kernel K̃ on vectors [n_b · N] (bin-major), by FFT."""

    def __init__(self, w_ij_l: np.ndarray, weights: np.ndarray, mustar_n: float, n_freq: int):
        nb = weights.size
        self.w_ij_l = w_ij_l
        self.nb, self.N, self.n = nb, n_freq, nb * n_freq
        self.sq = np.sqrt(weights)
        self.mustar_n = mustar_n
        self.pairs = BinnedToeplitzHankel(w_ij_l, n_freq)
        self.diag = np.array([(2 * np.arange(n_freq) + 1.0)
                              + sum(weights[j] * (kernel_diagonal(w_ij_l[i, j], n_freq)
                                                  - (2 * np.arange(n_freq) + 1.0))
                                    for j in range(nb)) for i in range(nb)])

    def matvec(self, y: np.ndarray) -> np.ndarray:
        """K̃ @ y for a real or complex vector y [n_b · N]."""
        if np.iscomplexobj(y):
            return self.matvec(y.real) + 1j * self.matvec(y.imag)
        Y = np.asarray(y).reshape(self.nb, self.N)
        out = -self.diag * Y
        out -= 2.0 * self.mustar_n * self.sq[:, None] * (self.sq @ Y.sum(axis=1))
        t, h = self.pairs(self.sq[:, None] * Y)
        out += self.sq[:, None] * (t + h)
        return out.ravel()

    def dense(self) -> np.ndarray:
        """The matrix K̃ [n_b·N, n_b·N] built from the definition (LAPACK path, checks)."""
        nb, N = self.nb, self.N
        n = np.arange(N)
        toep, hank = np.abs(n[:, None] - n[None, :]), n[:, None] + n[None, :] + 1
        K = np.empty((nb, N, nb, N))
        for i in range(nb):
            for j in range(nb):
                lam = self.w_ij_l[i, j]
                K[i, :, j, :] = self.sq[i] * self.sq[j] * (lam[toep] + lam[hank] - 2.0 * self.mustar_n)
            K[i, n, i, n] -= self.diag[i]
        return K.reshape(self.n, self.n)


@dataclass
class AnisotropicSolver(EliashbergSolver):
    """Linearised anisotropic equations; ``lam`` is the isotropic average λ(ν) (for ω̄₂,
    N(T) and the T_c search range), ``couplings``/``weights`` the binned W_ij(ν), w_i."""

    couplings: _PairCouplings = None
    weights: np.ndarray = field(default=None)

    @classmethod
    def from_bins(cls, w_ij_m, weights, temperature_k: float, omega2_ev: float | None = None,
                  n_freq: int | None = None, comm=None, **kwargs) -> "AnisotropicSolver":
        """Solver for W_ij(m) [n_b, n_b, n_m] at T0 (K) and bin weights [n_b]."""
        W, w = check_inputs(w_ij_m, weights)
        iso = LambdaOfNu(isotropic_average(W, w), temperature_k, omega2_ev)
        return cls(iso, n_freq, comm=comm, couplings=_PairCouplings(W, iso),
                   weights=w, **kwargs)

    def operator(self, temperature_k: float, mustar: float) -> AnisotropicOperator:
        N, mu_n, _ = self.grid(temperature_k, mustar)
        return AnisotropicOperator(self.couplings.on_grid(temperature_k, 2 * N), self.weights, mu_n, N)

    def eigenpair(self, temperature_k: float, mustar: float) -> tuple[float, np.ndarray]:
        """(ρ, x [n_b, N]): the leading eigenvalue and gap shape x_{i,n} = Δ_i(iω_n)/|ω_n|
        (arbitrary scale, sign such that Σ_i w_i x_{i,0} > 0)."""
        op = self.operator(temperature_k, mustar)
        size = 1 if self.comm is None else self.comm.size
        if size == 1 and op.n <= DENSE_MAX_DIM and self.method in ("auto", "dense"):
            from scipy.linalg import eigh
            vals, vecs = eigh(op.dense(), subset_by_index=[op.n - 1, op.n - 1])
            rho, y = float(vals[0]), vecs[:, 0]
        else:
            from spia_mpi.parallel.mpi import self_comm
            rho, y = slepc_largest_eigenpair(op, op.n, self.comm or self_comm(), want_vector=True)
        x = y.reshape(op.nb, op.N) / op.sq[:, None]
        if self.weights @ x[:, 0] < 0:
            x = -x
        return rho, x

    def rho(self, temperature_k: float, mustar: float) -> float:
        return self.eigenpair(temperature_k, mustar)[0]


@dataclass(frozen=True)
class AnisotropicTc:
    """T_c^aniso, T_c^iso (K) and the gap distribution at T_c⁻.

    gap_ratio [n_b]: Δ_i(iω_0)/⟨Δ(iω_0)⟩ with ⟨·⟩ = Σ_i w_i ·, from the leading
    eigenvector at T_c (the shape of the gap just below T_c); weights [n_b].
    """

    mustar: float
    tc_aniso_k: float
    tc_iso_k: float
    gap_ratio: np.ndarray
    weights: np.ndarray


def solve_anisotropic_tc(w_ij_m, weights, temperature_k: float, mustar: float,
                         omega2_ev: float | None = None, n_freq: int | None = None,
                         comm=None) -> AnisotropicTc:
    """T_c^aniso and T_c^iso of the isotropic average, and the gap distribution at T_c⁻."""
    if not 0.0 <= mustar < 1.0:
        raise InputError(f"μ* = {mustar} out of range [0, 1)")
    solver = AnisotropicSolver.from_bins(w_ij_m, weights, temperature_k, omega2_ev, n_freq, comm)
    iso = EliashbergSolver(solver.lam, n_freq, comm=comm)
    tc_iso = iso.tc(mustar)
    tc = solver.tc(mustar, t_guess_k=tc_iso)
    _, x = solver.eigenpair(tc, mustar)
    ratio = x[:, 0] / float(solver.weights @ x[:, 0])
    return AnisotropicTc(mustar, tc, tc_iso, ratio, solver.weights)


def gap_histogram(gap_ratio, weights, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(density [bins], edges [bins+1]) of the DOS-weighted distribution of Δ_i/⟨Δ⟩."""
    r = np.asarray(gap_ratio, float)
    lo, hi = float(r.min()), float(r.max())
    if math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-12):
        lo, hi = lo - 0.05, hi + 0.05
    return np.histogram(r, bins=bins, range=(lo, hi), weights=np.asarray(weights, float), density=True)
