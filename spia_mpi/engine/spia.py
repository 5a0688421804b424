"""SPIA kernels: Ḡ, renormalised bands, T-matrices, Γ(m), Bethe–Salpeter, λ(m).

Plain functions on numpy arrays (no I/O, no MPI); the parallel driver in
:mod:`spia_mpi.engine.workflow` distributes and checkpoints the loops around them.
Energies in eV with ħ = 1, β in 1/eV. Index letters: ``c`` configuration, ``b``
bead, ``m`` bosonic Matsubara index, ``s``/``t`` states of the projected subspace
(one (n, k) pair each), ``g`` Lorentzian half width.

Pipeline for one supercell wavevector K with subspace states s = (n, k):

1. g_cb = P†[z − H(R_cb)]⁻¹P for every configuration c and bead b (resolvent module);
2. Ḡ = mean_cb g_cb, keeping only the k-diagonal blocks (:func:`average_greens`);
3. per k: H_eff = Herm(z − Ḡ_k⁻¹) → ε_nk, U_k; γ_nk = Im(Ḡ_nk⁻¹) − η (:func:`renormalised_bands`);
4. in the band basis, T_cb = Ḡ⁻¹(g_cb − Ḡ)Ḡ⁻¹ (:func:`t_matrices`);
5. T_c(m) = (1/N_b) Σ_b T_cb e^{2πimb/N_b} (:func:`bead_transform`);
6. Γ_st(m) = −β[⟨|T_c,st(m)|²⟩_c − |⟨T_c,st(m)⟩_c|²] (unbiased variance, :func:`gamma_from_moments`);
7. W(m) from the quasi-static Bethe–Salpeter equation, solved on the bead grid
   (:func:`bethe_salpeter`), or W = Γ (``born``);
8. λ(m) = −(1/N_γ) Σ_st w_s W_st(m) w_t with Lorentzian weights (:func:`lambda_from_pair_sums`,
   the estimator shared with ``combine``), then the finite-bead correction (:func:`bead_correction_factor`).

Sign and normalisation of step 7 (derivation in docs/spia.md): expanding the
T-matrix T(τ) = V(τ) + V(τ)Ḡ T(τ) to fourth order in a Gaussian V, Wick's theorem
gives Γ = W₀ − (1/β) W₀ |Ḡ|² W₀ + … where the Matsubara sum over the
intermediate frequency is a convolution over one period of m. The Bethe–Salpeter
equation W = Γ + (1/β) W |Ḡ|² Γ removes that ladder term, so W = W₀ + O(W₀³):
with f(b) = Σ_m f(m) e^{−2πimb/N_b} the convolution is a product,
W(b) = Γ(b) [1 − (1/β) D Γ(b)]⁻¹ with D = diag |Ḡ_s|², then W(m) = (1/N_b) Σ_b W(b) e^{2πimb/N_b}.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError


# --------------------------------------------------------------------------
# 2–3: average Green's function and renormalised bands
# --------------------------------------------------------------------------

def k_block_mask(k_index: np.ndarray) -> np.ndarray:
    """bool [n_s, n_s]: True where both states belong to the same primitive k."""
    k = np.asarray(k_index)
    return k[:, None] == k[None, :]


def average_greens(g_sum: np.ndarray, count: int, k_index: np.ndarray) -> tuple[np.ndarray, float]:
    """Ḡ = g_sum / count restricted to k-diagonal blocks, and the relative size
    ‖off-diagonal blocks‖/‖Ḡ‖ (a check: it must vanish with more sampling)."""
    if count <= 0:
        raise InputError("no configurations to average")
    gbar = g_sum / count
    mask = k_block_mask(k_index)
    off = np.linalg.norm(np.where(mask, 0.0, gbar))
    full = np.linalg.norm(gbar)
    return np.where(mask, gbar, 0.0), float(off / full) if full > 0 else 0.0


@dataclass(frozen=True)
class RenormalisedBands:
    """Quasi-particle bands from Ḡ (all arrays over subspace states s).

    energies     float [n_s]  ε_s (eV), eigenvalues of H_eff = Herm(z − Ḡ_k⁻¹)
    half_width   float [n_s]  γ_s = Im(Ḡ_s⁻¹) − η (eV), Ḡ_s = (U†ḠU)_ss
    rotation     complex [n_s, n_s]  U: block-diagonal in k, columns = band states in the P basis
    gbar_band    complex [n_s, n_s]  U†ḠU (k-block diagonal)
    k_index      int [n_s]
    """

    energies: np.ndarray
    half_width: np.ndarray
    rotation: np.ndarray
    gbar_band: np.ndarray
    k_index: np.ndarray


def renormalised_bands(gbar: np.ndarray, z: complex, k_index: np.ndarray) -> RenormalisedBands:
    """Diagonalise H_eff(k) = Hermitian part of (z − Ḡ_k⁻¹) in every k block."""
    n = gbar.shape[0]
    k_index = np.asarray(k_index)
    U = np.zeros((n, n), dtype=complex)
    energies = np.empty(n)
    for k in np.unique(k_index):
        idx = np.flatnonzero(k_index == k)
        gk = gbar[np.ix_(idx, idx)]
        heff = z * np.eye(idx.size) - np.linalg.inv(gk)
        heff = 0.5 * (heff + heff.conj().T)
        e, u = np.linalg.eigh(heff)
        energies[idx] = e
        U[np.ix_(idx, idx)] = u
    gband = U.conj().T @ gbar @ U
    gband = np.where(k_block_mask(k_index), gband, 0.0)
    half = np.imag(1.0 / np.diag(gband)) - np.imag(z)
    return RenormalisedBands(energies, half, U, gband, k_index)


def fermi_level_lorentzian(energies, half_width, n_electrons_per_spin: float,
                           floor_ev: float = 1e-3) -> float:
    """μ with Σ_s f_s = N (per spin), f = ½ − arctan((ε − μ)/γ)/π (Lorentzian occupation).

    Only meaningful when the subspace contains every occupied band; half widths
    are floored at ``floor_ev`` so a sharp band still gives a continuous count.
    """
    from scipy.optimize import brentq
    e = np.asarray(energies, float)
    g = np.maximum(np.asarray(half_width, float), floor_ev)

    def count(mu):
        return float(np.sum(0.5 - np.arctan((e - mu) / g) / np.pi)) - n_electrons_per_spin

    lo, hi = e.min() - 1e3 * g.max(), e.max() + 1e3 * g.max()
    if not count(lo) < 0 < count(hi):
        raise InputError(f"cannot place {n_electrons_per_spin} electrons per spin in {e.size} states")
    return brentq(count, lo, hi, xtol=1e-12)


# --------------------------------------------------------------------------
# 4–6: T-matrices, bead transform, fluctuations
# --------------------------------------------------------------------------

def t_matrices(g_bss: np.ndarray, bands: RenormalisedBands, rows=None) -> np.ndarray:
    """T_b = Ḡ⁻¹(g_b − Ḡ)Ḡ⁻¹ in the band basis, complex [n_b, n_s, n_s].

    ``g_bss``: the projected resolvents of all beads of one configuration, in the
    P basis, complex [n_b, n_s, n_s]. ``rows``: a :class:`grouprows.GroupRows` — then ``g_bss``
    holds only the rows ``rows.needed`` of g, [n_b, n_needed, n_s], and the rows ``rows.own`` of
    T are returned, [n_b, n_own, n_s] (U and Ĝ are block-diagonal in k); None: all rows.
    """
    U = bands.rotation
    ginv = np.linalg.inv(bands.gbar_band)
    if rows is None:
        gb = np.einsum("ij,bjk,kl->bil", U.conj().T, g_bss, U, optimize=True)
        return np.einsum("ij,bjk,kl->bil", ginv, gb - bands.gbar_band[None], ginv, optimize=True)
    need = rows.needed
    own = np.arange(rows.own.start, rows.own.stop)
    gb = np.einsum("ij,bjk,kl->bil", U.conj().T[np.ix_(need, need)], g_bss, U, optimize=True)
    return np.einsum("ij,bjk,kl->bil", ginv[np.ix_(own, need)], gb - bands.gbar_band[need][None], ginv,
                     optimize=True)


def t_matrices_m(g_hat_mss: np.ndarray, bands: RenormalisedBands, rows=None) -> np.ndarray:
    """T(m) of one configuration from the bead transform of its resolvents, complex [n_b, n_s, n_s].

    ``g_hat_mss``: ĝ(m) = (1/N_b) Σ_b g_b e^{2πimb/N_b} (P basis, :func:`bead_transform` of g).
    T is linear in g, so with Ĝ = U†ḠU, T(m) = Ĝ⁻¹U† ĝ(m) U Ĝ⁻¹ − Ĝ⁻¹ δ_m0 — the same as
    ``bead_transform(t_matrices(g, bands))`` to round-off, for the Ḡ of any configuration set;
    the jackknife replicas recompute T with their own Ḡ from ĝ stored once per configuration.
    ``rows``: as in :func:`t_matrices` (ĝ rows ``rows.needed`` in, T rows ``rows.own`` out).
    """
    ginv = np.linalg.inv(bands.gbar_band)
    left, right = ginv @ bands.rotation.conj().T, bands.rotation @ ginv
    if rows is not None:
        own = slice(rows.own.start, rows.own.stop)
        left, ginv = left[own][:, rows.needed], ginv[own]
    t = left @ g_hat_mss @ right                     # batched BLAS over m (≈ 1.6× einsum's time)
    t[0] -= ginv
    return t


def bead_transform(t_bss: np.ndarray) -> np.ndarray:
    """T(m) = (1/N_b) Σ_b T_b e^{2πimb/N_b} for m = 0 … N_b−1, complex [n_b, n_s, n_s]."""
    nb = t_bss.shape[0]
    return np.fft.ifft(t_bss, axis=0) if nb > 1 else t_bss.copy()


@dataclass
class MomentSums:
    """Σ_c T_c(m), Σ_c |T_c(m)|² and the number of configurations c of one set (a block, or
    the sum of blocks): the sufficient statistics of Γ for one Ḡ (T depends on Ḡ, so a jackknife
    replica with its own Ḡ needs its own sums: :func:`t_matrices_m`).

    s1 complex [n_m, n_s, n_s], s2 float [n_m, n_s, n_s], count int (or only a rank's rows of s1 and
    s2, [n_m, n_rows, n_s], when a configuration group holds them row-distributed:
    :mod:`grouprows`). Sums of blocks added in a fixed order are layout independent.
    """

    s1: np.ndarray
    s2: np.ndarray
    count: int = 0

    @classmethod
    def zeros(cls, n_m: int, n_s: int, n_rows: int | None = None) -> "MomentSums":
        """Empty sums over ``n_s`` states, of ``n_rows`` rows (a rank's rows; None: all n_s)."""
        shape = (n_m, n_s if n_rows is None else n_rows, n_s)
        return cls(np.zeros(shape, dtype=complex), np.zeros(shape), 0)

    def add(self, t_mss: np.ndarray):
        """Add one configuration's T(m), complex [n_m, n_s, n_s]."""
        self.s1 += t_mss
        self.s2 += t_mss.real ** 2 + t_mss.imag ** 2
        self.count += 1

    def __add__(self, other: "MomentSums") -> "MomentSums":
        return MomentSums(self.s1 + other.s1, self.s2 + other.s2, self.count + other.count)

    def gamma(self, beta: float, symmetrize_m: bool = False) -> np.ndarray:
        """Γ(m) of this set (:func:`gamma_from_moments`, then optionally :func:`symmetrize_bead_reversal`)."""
        gam = gamma_from_moments(self.s1, self.s2, self.count, beta)
        return symmetrize_bead_reversal(gam) if symmetrize_m else gam


def gamma_from_moments(s1: np.ndarray, s2: np.ndarray, n: int, beta: float) -> np.ndarray:
    """Γ(m) = −β · (unbiased variance of T(m) over n configurations), [n_m, n_s, n_s] (eV).

    n/(n−1) [⟨|T|²⟩ − |⟨T⟩|²]: subtracting the mean removes the disconnected part;
    the factor makes the estimate unbiased for independent samples.
    """
    if n < 2:
        raise InputError(f"need at least 2 configurations for fluctuations, got {n}")
    mean = s1 / n
    var = s2 / n - (mean.real ** 2 + mean.imag ** 2)
    return -beta * var * (n / (n - 1.0))


# --------------------------------------------------------------------------
# 7–8: Bethe–Salpeter and λ(m)
# --------------------------------------------------------------------------

def bethe_salpeter(gamma_mss: np.ndarray, gbar_abs2: np.ndarray, beta: float,
                   solver: str = "dense") -> np.ndarray:
    """W(m) from W = Γ + (1/β) W D Γ on the bead grid, D = diag(|Ḡ_s|²) (1/eV²).

    ``gamma_mss``: Γ(m) for all m = 0 … N_b−1, [n_m, n_s, n_s] (eV). Returns W(m),
    same shape (complex; its imaginary part is noise). ``solver``: 'dense' (numpy/LAPACK)
    or 'petsc' (PETSc dense LU, :func:`petsc_dense_solve`) for the linear system of every
    bead slice (:func:`bse_slice`); they agree to round-off. The slices are independent:
    :mod:`spia_mpi.engine.bse_parallel` shares them (or the rows of each) over MPI ranks.
    """
    check_bse_solver(solver)
    gam_b = bead_slices(gamma_mss)
    d = np.asarray(gbar_abs2, float) / beta
    w_b = np.empty_like(gam_b, dtype=complex)
    for b in range(gam_b.shape[0]):
        w_b[b] = bse_slice(gam_b[b], d, solver)
    return from_bead_slices(w_b)


def check_bse_solver(solver: str):
    """InputError unless ``solver`` is a serial Bethe–Salpeter slice solver ('dense' or 'petsc')."""
    if solver not in ("dense", "petsc"):
        raise InputError(f"Bethe–Salpeter solver '{solver}' is not one of: dense, petsc")


def bead_slices(gamma_mss: np.ndarray) -> np.ndarray:
    """Γ(b) = Σ_m Γ(m) e^{−2πimb/N_b} along axis 0, complex (any trailing shape, e.g. rows only)."""
    return np.fft.fft(gamma_mss, axis=0)


def from_bead_slices(w_bss: np.ndarray) -> np.ndarray:
    """W(m) = (1/N_b) Σ_b W(b) e^{2πimb/N_b} along axis 0: the inverse of :func:`bead_slices`."""
    return np.fft.ifft(w_bss, axis=0)


def bse_slice(gam_b: np.ndarray, d: np.ndarray, solver: str = "dense") -> np.ndarray:
    """W(b) of one bead slice: W (1 − D Γ) = Γ with D = diag(d), d = |Ḡ_s|²/β (1/eV);
    ``gam_b`` complex [n_s, n_s] (eV), returns complex [n_s, n_s] (eV)."""
    # W (1 − D Γ) = Γ  ⇔  (1 − D Γ)ᵀ Wᵀ = Γᵀ
    a = np.eye(d.size) - d[:, None] * gam_b
    solve = np.linalg.solve if solver == "dense" else petsc_dense_solve
    return solve(a.T, gam_b.T).T


def bse_rows_matrix(gam_rows: np.ndarray, first_row: int, d: np.ndarray) -> np.ndarray:
    """Rows ``first_row`` … of 1 − Γ D for the rows ``gam_rows`` (complex [n_rows, n_s]) of one
    slice Γ(b): the row form (1 − Γ D) W = Γ of the slice equation (the same W, since
    Γ (1 − D Γ)⁻¹ = (1 − Γ D)⁻¹ Γ), in which every row of the system needs only the same row of Γ."""
    a = -gam_rows * d[None, :]
    rows = np.arange(gam_rows.shape[0])
    a[rows, first_row + rows] += 1.0
    return a


def petsc_dense_solve(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """X with a X = rhs by PETSc's dense LU on one rank: ``a`` complex [n, n], ``rhs`` [n, k]."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    n, k = rhs.shape
    comm = PETSc.COMM_SELF
    # PETSc uses these buffers in place: own copies, kept alive until the matrices are destroyed
    a_buf = np.array(a, dtype=complex, order="F")
    b_buf = np.array(rhs, dtype=complex, order="F")
    x_buf = np.zeros((n, k), dtype=complex, order="F")
    A = PETSc.Mat().createDense([n, n], array=a_buf, comm=comm)
    B = PETSc.Mat().createDense([n, k], array=b_buf, comm=comm)
    X = PETSc.Mat().createDense([n, k], array=x_buf, comm=comm)
    orderings = ()
    try:
        for m in (A, B, X):
            m.assemble()
        orderings = rows, cols = A.getOrdering("natural")
        A.factorLU(rows, cols)
        A.matSolve(B, X)
        return x_buf.copy()
    finally:
        for obj in (A, B, X, *orderings):
            obj.destroy()


def lorentzian_weights(energies, fermi_level: float, gamma_ev) -> np.ndarray:
    """w_s = (γ/π)/((ε_s − ε_F)² + γ²) for each γ: float [n_gamma, n_s] (1/eV)."""
    g = np.atleast_1d(np.asarray(gamma_ev, float))
    if np.any(g <= 0):
        raise InputError(f"Lorentzian half widths must be > 0, got {g.tolist()}")
    de = np.asarray(energies, float)[None, :] - fermi_level
    return (g[:, None] / np.pi) / (de ** 2 + g[:, None] ** 2)


def _row_part(n_rows: int, first_row: int) -> slice:
    return slice(first_row, first_row + n_rows)


def fermi_surface_sums(w_mss: np.ndarray, weights_gs: np.ndarray, first_row: int = 0) -> np.ndarray:
    """Σ_st w_s W_st(m) w_t for every γ: float [n_gamma, n_m] (real part).

    ``w_mss`` [n_m, n_rows, n_s] may be the rows ``first_row`` … of W only: then s runs over
    those rows (a rank's share of the sum; the shares add up to the whole)."""
    left = weights_gs[:, _row_part(w_mss.shape[1], first_row)]
    return np.einsum("gs,mst,gt->gm", left, w_mss, weights_gs, optimize=True).real


def pair_sums_by_q(w_mss, weights_gs, k_index, q_of_pair, first_row: int = 0):
    """Σ over pairs (s, t) with transfer q: float [n_gamma, n_q, n_m].

    ``q_of_pair(k_s, k_t) -> q index``; given as an int array [n_k, n_k]. ``w_mss`` and
    ``first_row`` as in :func:`fermi_surface_sums` (rows: s over those rows only). One
    [n_rows, n_s] term matrix at a time (per γ and m).
    """
    k = np.asarray(k_index)
    rows = _row_part(w_mss.shape[1], first_row)
    kk = q_of_pair[k[rows][:, None], k[None, :]].ravel()
    nq = int(q_of_pair.max()) + 1
    w = np.asarray(weights_gs, float)
    n_g, n_m = w.shape[0], w_mss.shape[0]
    out = np.empty((n_g, nq, n_m))
    for g in range(n_g):
        for m in range(n_m):
            terms = w[g, rows, None] * np.real(w_mss[m]) * w[g, None, :]
            out[g, :, m] = np.bincount(kk, weights=terms.ravel(), minlength=nq)
    return out


def diagonal_abs_sum(gamma_mss: np.ndarray, first_row: int = 0) -> np.ndarray:
    """Σ_s |Γ_ss(m)| over the rows of ``gamma_mss`` ([n_m, n_rows, n_s], rows ``first_row`` …;
    all rows: the whole trace of |Γ|): float [n_m]."""
    i = np.arange(gamma_mss.shape[1])
    return np.abs(gamma_mss[:, i, first_row + i]).sum(axis=1)


def lambda_q(pair_sums, n_gamma, weight=1.0) -> np.ndarray:
    """Contributions −c_q P_q(m)/N_γ of the transfers q to λ(m): the one λ estimator of run and combine.

    ``pair_sums``: P_q(m) = Σ over pairs (s, t) with transfer q of w_s W_st(m) w_t, float
    [..., n_gamma, n_q, n_m] (1/eV), with W of the supercell the pairs were computed in;
    ``n_gamma``: N_γ = Σ_s w_s over every state of the k-grid (1/eV), [n_gamma] (or [..., n_gamma]
    matching the leading axes of ``pair_sums``, e.g. one N_γ per jackknife replica);
    ``weight``: c_q, a number or float [n_q]. Returns the same shape as ``pair_sums``.

    Derivation (docs/spia.md, "One λ estimator"): the crystal of N_k cells has
    λ = −(1/N_γ) Σ_(k,k') w_k W⁽ᴺᵏ⁾_kk' w_k'; W of an M-cell supercell is N_k/M times the
    crystal's, so each fine transfer q contributes −(M/N_k) P_q/N_γ; a q of a grid of N_q ≤ N_k
    points stands for N_k/N_q fine ones, so c_q = M/N_q per q (times the star size when one
    member stands for its star). A run sums its own M transfers (N_q = M): c_q = 1.
    """
    p = np.asarray(pair_sums, float)
    c = np.asarray(weight, float)
    c = c[:, None] if c.ndim == 1 else c
    return -c * p / np.asarray(n_gamma, float)[..., None, None]


def lambda_from_pair_sums(pair_sums, n_gamma, weight=1.0) -> np.ndarray:
    """λ(m) = −Σ_q c_q P_q(m)/N_γ, float [..., n_gamma, n_m] (:func:`lambda_q` summed over q);
    with the default c_q = 1 the paper's λ = −Σ_K Σ_st w_s W_st w_t / N_γ of one run."""
    return lambda_q(pair_sums, n_gamma, weight).sum(axis=-2)


BEAD_CORRECTIONS = ("interpolate", "harmonic", "none")


def bead_correction_factor(n_m: int, n_beads: int, method: str = "interpolate", tau_refine: int = 16) -> np.ndarray:
    """Factor f(m), float [n_m], that removes the finite-bead (Trotter) error of λ(m), m = 0 … n_m−1.

    The bead transform of N_b points gives λ at the ring-polymer frequencies Ω_m, not at ν_m
    (a harmonic tail is too high by (ν_m/Ω_m)²). ``'interpolate'``: W(τ) interpolated linearly
    onto r = ``tau_refine`` points per bead interval before transforming back, which multiplies
    the m-th coefficient (m ≤ N_b/2) by the Fejér kernel [sin(πm/N_b)/(r sin(πm/(rN_b)))]²
    (the authors' correction); ``'harmonic'``: (Ω_m/ν_m)² = [sin(πm/N_b)/(πm/N_b)]², exact for
    a harmonic tail and the r → ∞ limit of 'interpolate'; ``'none'``: 1. f(0) = 1 always.
    """
    if method not in BEAD_CORRECTIONS:
        raise InputError(f"bead correction '{method}' is not one of: {', '.join(BEAD_CORRECTIONS)}")
    if tau_refine < 1:
        raise InputError(f"tau_refine = {tau_refine} must be ≥ 1")
    x = np.pi * np.arange(n_m) / n_beads
    f = np.ones(n_m)
    if method == "none":
        return f
    nz = x > 0
    if method == "harmonic":
        f[nz] = (np.sin(x[nz]) / x[nz]) ** 2
    else:
        f[nz] = (np.sin(x[nz]) / (tau_refine * np.sin(x[nz] / tau_refine))) ** 2
    return f


def symmetrize_bead_reversal(gamma_mss: np.ndarray) -> np.ndarray:
    """½[Γ(m) + Γ(−m)] with −m ≡ N_b − m, [n_m, n_s, n_s] (all m = 0 … N_b−1).

    The ring-polymer distribution is invariant under reversing the bead order (b → −b), which
    maps T_c(m) → T_c(−m); Γ(m) = −β var T(m) therefore has the same expectation at m and −m,
    and their average has (up to) half the variance. W, λ(m) and λ(−m) stay consistent.
    """
    nb = gamma_mss.shape[0]
    return 0.5 * (gamma_mss + gamma_mss[(-np.arange(nb)) % nb])


def born_lambda(n_gamma_per_site: float, coupling: float, spring: float, mass_amu: float,
                n_beads: int, temperature_k: float, n_m: int) -> np.ndarray:
    """Exact Born-limit λ(m) of the Holstein model with Einstein ions (METHOD.md §8).

    λ(m) = N_γ g² / (κ + M Ω_m²), Ω_m = 2 N_b k_BT sin(πm/N_b) (ħ = 1, eV);
    g in eV/Å, κ in eV/Å², M in amu, N_γ per site per spin (1/eV).
    """
    from spia_mpi import units
    omega_m = units.ring_polymer_frequency_ev(np.arange(n_m), n_beads, temperature_k)
    m_omega2 = mass_amu * omega_m ** 2 / units.HBAR2_OVER_AMU_A2_EV
    return n_gamma_per_site * coupling ** 2 / (spring + m_omega2)
