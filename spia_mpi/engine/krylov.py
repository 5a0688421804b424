"""Batched right-preconditioned GMRES: many independent linear systems A x_c = b_c advanced together.

Every column c has its own Krylov space (the same mathematics as one GMRES per column), but each
step applies the operator, the preconditioner and the Gram–Schmidt projections to all columns
at once, so that a model can apply them as batched FFTs or a fused operator, and a distributed
run needs one reduction per Arnoldi step for all columns. A block of vectors is an array
complex [n_cols, n_local] (one vector per row: this rank's rows of the grid function or basis
function); ``reduce`` sums a small array over the ranks that hold the other rows. The Krylov
bases of all columns are one array [n_cols, k, n_local]; the projections are BLAS matrix–vector
products per column, the subtraction in place.

Right preconditioning: GMRES runs on A M⁻¹ y = r₀ and x = x₀ + M⁻¹ y. Convergence: the true
residual ‖b − A x‖ ≤ max(rtol ‖b‖, atol) per column, checked with ``apply_a`` once the restart
cycles (whose residuals are Arnoldi updates, no ``apply_a``) say every column has converged, so
the result satisfies the tolerance whatever rounding the updates carry. Because the kinetic
preconditioner leaves A M⁻¹ close to the identity, short cycles (restart 2–4) converge in nearly
as few iterations as unrestarted GMRES and keep the Gram–Schmidt work (k² vector operations for
k steps) small: then the FFTs are the cost (docs/benchmarks.md, "Blocks of right-hand sides").

The Arnoldi process runs on A M⁻¹ − 1, which has the same Krylov spaces as A M⁻¹ (the Hessenberg
matrices differ by the identity): its vectors are not dominated by the previous basis vector, so
classical Gram–Schmidt cancels little, and the new vector's norm follows from Pythagoras in the
same reduction as its projections (one synchronisation per step on a group of ranks; recomputed
where it would cancel). An optional recycled subspace (:class:`Recycled`) deflates the operator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from spia_mpi.errors import ConvergenceError


@dataclass
class BatchedOperators:
    """The operators of :func:`batched_gmres`, each complex [c, n_local] → [c, n_local].

    apply_a : the matrix A (true residuals).
    apply_am : A M⁻¹ (the GMRES operator; may be a fused form of the two).
    apply_m_inv : the preconditioner M⁻¹.
    reduce : sum of a numpy array over the ranks holding the other rows (identity on one rank).
    m_inv_and_am : v → (M⁻¹v, A M⁻¹v) from one preconditioner application, or None (then
        ``apply_a(apply_m_inv(v))``; see :meth:`both`).
    apply_am_minus_1 : v → A M⁻¹v − v (a fused form without the subtraction), or None (see :meth:`shifted`).
    single : v → A M⁻¹v − v in single precision (complex64 [c, n_local] → complex64), or None: the
        operator of the inner sweeps of ``batched_gmres(..., mixed=True)``.
    """

    apply_a: object
    apply_am: object
    apply_m_inv: object
    reduce: object
    m_inv_and_am: object = None
    apply_am_minus_1: object = None
    single: object = None

    def shifted(self, v: np.ndarray) -> np.ndarray:
        """A M⁻¹v − v, complex [c, n_local]: the Arnoldi operator (see :func:`_cycle`)."""
        if self.apply_am_minus_1 is not None:
            return self.apply_am_minus_1(v)
        out = self.apply_am(v)
        out -= v
        return out

    def both(self, v: np.ndarray) -> tuple:
        """(M⁻¹v, A M⁻¹v), complex [c, n_local] each."""
        if self.m_inv_and_am is not None:
            return self.m_inv_and_am(v)
        d = self.apply_m_inv(v)
        return d, self.apply_a(d)


@dataclass
class Recycled:
    """A recycled subspace for :func:`batched_gmres` (deflation, GCRO-style), shared by all columns.

    u : complex [k, n_local], k vectors of the unpreconditioned (y) space, this rank's entries.
    c : complex [k, n_local], c = A M⁻¹ u row by row, with orthonormal rows over all ranks.
    """

    u: np.ndarray
    c: np.ndarray

    def __post_init__(self):
        self.c_conj = self.c.conj()                             # for C^H w as one matrix product
        self._single = None

    def single(self) -> "Recycled":
        """The same space in single precision (complex64; made once)."""
        if self._single is None:
            self._single = Recycled(self.u.astype(np.complex64), self.c.astype(np.complex64))
        return self._single


def orthonormalise(v: np.ndarray, reduce) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal rows spanning the rows of ``v`` (complex [k, n_local], summed over the ranks by
    ``reduce``): returns (T v, T), T [k', k] from the eigenvectors of the Gram matrix, dropping
    directions below 1e-10 of the largest (k' ≤ k)."""
    gram = reduce(v.conj() @ v.T)                               # G_ij = <v_i, v_j>
    lam, q = np.linalg.eigh(gram)
    keep = lam > 1e-10 * lam[-1]
    t = (q[:, keep] / np.sqrt(lam[keep])).T                     # conj(T) G T^T = 1
    return t @ v, t


def _norms(v: np.ndarray, reduce) -> np.ndarray:
    """Euclidean norm of every column over all ranks, float [c]."""
    return np.sqrt(reduce(np.array([np.vdot(row, row).real for row in v])))          # BLAS, no temporaries


#: mixed precision: the largest reduction of a column's residual one single-precision sweep is asked
#: for (complex64 resolves ≈ 1e-7 of it); a sweep that does not reach 1e-2 hands the solve to double precision
SINGLE_FLOOR = 1e-6
#: iterations of one single-precision sweep at most (then the true residual decides)
SINGLE_MAX_IT = 60


def batched_gmres(ops: BatchedOperators, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float,
                  atol: float, max_it: int, restart: int, r0: np.ndarray | None = None,
                  recycle: Recycled | None = None, mixed: bool = False,
                  return_residual: bool = False) -> tuple:
    """Solve A x = b for every vector (row) of ``b`` (complex [c, n_local]); returns (x, iterations int [c]),
    and the final residual b − A x (complex [c, n_local]) as a third item with ``return_residual``.

    ``x0``: initial guess of the same shape, or None (zero); ``r0``: its residual b − A x0 when the
    caller has it (saves one A; the final true residual is computed all the same, unless r0 already
    meets the tolerance).
    Raises :class:`ConvergenceError` when a column has not converged after ``max_it`` iterations.

    Restarted GMRES(``restart``) in which a restart costs no operator application: the residual
    of the next cycle is the Arnoldi image r − V_{k+1} H y (no A x), and the corrections stay
    unpreconditioned, u = Σ_cycles V y, until every column's residual has met its target; then
    x += M⁻¹u (one preconditioner application for all cycles) and the true residual b − A x is
    checked — a column that misses its target (rounding drift) runs again from it. When ``ops`` has
    the fused ``m_inv_and_am``, the next residual is r − A M⁻¹u from the FFTs of M⁻¹u (no ``apply_a``),
    and ``apply_a`` only confirms convergence.

    ``recycle`` (:class:`Recycled` U, C = A M⁻¹U): the residuals are first projected off span C
    (u += U C^H r, r −= C C^H r) and every Arnoldi vector too, so GMRES runs on (1 − CC^H) A M⁻¹,
    whose spectrum lacks the part that C captures (deflation: GCRO with a fixed recycled space);
    the correction V y − U E y (E = C^H A M⁻¹ V) keeps the residual relation exact.

    ``mixed`` (with ``ops.single``): iterative refinement — the cycles run in single precision
    (complex64 FFTs and Krylov bases: half the memory traffic) until each residual has fallen by
    at most ``SINGLE_FLOOR`` (:func:`_sweep_target`), then x += M⁻¹u and the new residual (fused, or
    b − A x) in double precision start the next sweep; convergence is confirmed by b − A x, so the
    result meets the same tolerance. Should a sweep reduce the residual by less than 1e-2, the
    remaining sweeps run in double precision.
    """
    x = np.zeros(b.shape, dtype=complex) if x0 is None else np.array(x0, dtype=complex)
    target = np.maximum(rtol * _norms(b, ops.reduce), atol)
    its = np.zeros(b.shape[0], dtype=int)
    fresh = x0 is None
    single = mixed and ops.single is not None
    work = None
    before = None                                              # residual norms before the last sweep
    updated = None                                             # b − A x by the fused operator (unverified)
    while True:
        verified = updated is None and r0 is None               # a given r0 is confirmed by A, as the fused one
        if r0 is not None:
            r, r0 = np.array(r0, dtype=complex), None
        elif updated is not None:
            r, updated = updated, None
        else:
            r = np.array(b, dtype=complex) if fresh else b - ops.apply_a(x)
        fresh = False
        beta = _norms(r, ops.reduce)
        active = np.flatnonzero(beta > target)
        if active.size == 0:
            if verified:
                return (x, its, r) if return_residual else (x, its)
            continue                                           # the matrix's residual decides
        if single and before is not None and np.any(beta[active] > 1e-2 * before[active]):
            single = False                                     # single precision stagnates: double
        before = beta.copy()
        dtype = np.complex64 if single else np.complex128
        if work is None or work.dtype != dtype:                # Krylov bases, reused by all cycles
            work = np.empty((b.shape[0], restart + 1, b.shape[1]), dtype=dtype)
        u = np.zeros_like(r)
        start = r.copy() if ops.m_inv_and_am is not None else None
        rows = slice(None) if active.size == r.shape[0] else active     # no fancy-index copies when all are
        if recycle is not None:
            _deflate(ops, recycle, r, u, rows)
            beta[rows] = _norms(r[rows], ops.reduce)
        live = active[beta[active] > target[active]]
        if single:
            _sweep(ops.single, ops.reduce, r.astype(np.complex64), u, beta, _sweep_target(beta, target),
                   live, its, max_it, restart, work, None if recycle is None else recycle.single(), SINGLE_MAX_IT,
                   exact=r)
        else:
            _sweep(ops.shifted, ops.reduce, r, u, beta, target, live, its, max_it, restart, work, recycle)
        if start is None:
            x[rows] += ops.apply_m_inv(u[rows])
        else:                                                  # the next residual from the same FFTs:
            d, a = ops.m_inv_and_am(u[rows])                   # r − A M⁻¹u, checked by A once it converges
            x[rows] += d
            start[rows] -= a
            updated = start


def _sweep_target(beta: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Residual norms one single-precision sweep aims at: the target itself when it is within a factor
    ``SINGLE_FLOOR`` of the residual beta (the last sweep), else √(target·beta), at least SINGLE_FLOOR·beta
    (two sweeps of equal reduction: rtol 1e-11 from zero takes two sweeps of ≈ 3e-6)."""
    last = target >= SINGLE_FLOOR * beta
    return np.where(last, target, np.maximum(np.sqrt(target * beta), SINGLE_FLOOR * beta))


def _sweep(shifted, reduce, r, u, beta, target, live, its, max_it, restart, work, recycle, limit=None,
           exact=None):
    """Restarted GMRES cycles on ``shifted`` (A M⁻¹ − 1, in r's precision) for the columns ``live``
    until each residual estimate beta (updated) is ≤ ``target``; the corrections are added to u.
    ``limit``: stop a column after that many iterations of this sweep (instead of raising at ``max_it``);
    ``exact``: r in double precision when r is its single-precision copy (see :func:`_cycle`)."""
    start = its.copy()
    while live.size:
        if limit is not None:
            live = live[its[live] - start[live] < limit]
            if not live.size:
                return
        _check_budget(its, live, beta[live], target[live], max_it)
        steps = min(restart, max_it - int(its[live].min()))
        whole = live.size == r.shape[0]                        # no fancy-index copies in the usual case
        du, r_live = _cycle(shifted, reduce, r if whole else r[live], beta[live], target[live], steps, its,
                            live, work[:live.size, :steps + 1], recycle,
                            None if exact is None else exact if whole else exact[live])
        exact = None                                           # later cycles start from Arnoldi residuals
        if whole:
            u += du
            r = r_live
        else:
            u[live] += du
            r[live] = r_live
        beta[live] = _norms(r_live, reduce)
        live = live[beta[live] > target[live]]


def _deflate(ops, recycle: Recycled, r: np.ndarray, u: np.ndarray, rows: np.ndarray):
    """r −= C C^H r and u += U C^H r for the vectors ``rows`` (an index array or a slice; in place): the
    part of the residual in span C is solved exactly, since A M⁻¹ U = C."""
    e = ops.reduce(recycle.c_conj @ r[rows].T)                  # C^H r, [k, len(rows)]
    r[rows] -= e.T @ recycle.c
    u[rows] += e.T @ recycle.u


def _check_budget(its, active, beta, target, max_it):
    """Raise :class:`ConvergenceError` when an unconverged column has used its ``max_it`` iterations."""
    if its[active].max() >= max_it:
        worst = active[np.argmax(beta / target)]
        raise ConvergenceError(f"batched GMRES: column {worst} not converged after {its[worst]} iterations "
                               f"(residual {np.max(beta / target):.3g} × its target)")


def _orthogonalise(reduce, w, v, recycle) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classical Gram–Schmidt of every new vector w[i] against its basis v[i] ([c, j, n]) and the
    recycled C, in place, with ONE reduction: (C^H w, V^H w, ‖w‖²) are summed together and the
    new norm follows from Pythagoras, ‖w − C e − V h‖² = ‖w‖² − ‖e‖² − ‖h‖² (C, V orthonormal).
    Returns (e [c, k], h [c, j], norm [c]); a column whose norm cancels to below 1e-6 ‖w‖² (1e-2
    in single precision) gets it recomputed (a second reduction; rounding would otherwise dominate it)."""
    c, j = w.shape[0], v.shape[1]
    gemv = get_blas_funcs("gemv", dtype=w.dtype)
    k = 0 if recycle is None else recycle.c.shape[0]
    local = np.empty((c, k + j + 1), dtype=complex)
    if k:
        np.matmul(w, recycle.c_conj.T, out=local[:, :k])
    for i in range(c):
        local[i, k:k + j] = gemv(1.0, v[i].T, w[i], trans=2)
        local[i, -1] = np.vdot(w[i], w[i])
    coef = reduce(local)
    e, h, ww = coef[:, :k], coef[:, k:k + j], coef[:, -1].real
    if k:
        w -= e.astype(w.dtype) @ recycle.c
    for i in range(c):
        gemv(-1.0, v[i].T, h[i], beta=1.0, y=w[i], overwrite_y=True)          # w −= V h, in place
    norm2 = ww - np.sum(np.abs(coef[:, :-1]) ** 2, axis=1)
    if np.any(norm2 < (1e-6 if w.dtype == np.complex128 else 1e-2) * ww):
        return e, h, _norms(w, reduce)
    return e, h, np.sqrt(norm2)


def _cycle(shifted, reduce, r, beta, target, steps, its, active, basis, recycle=None,
           exact=None) -> tuple[np.ndarray, np.ndarray]:
    """One GMRES cycle of at most ``steps`` iterations from residuals r [c, n] (vectors ``active``)
    on (1 − CC^H) A M⁻¹ (C of ``recycle``, or none; ``shifted``: v → A M⁻¹v − v), its Krylov basis stored in ``basis`` (complex
    [c, steps + 1, n], overwritten); returns (V y − U E y, r − A M⁻¹(V y − U E y)) [c, n] each — the
    unpreconditioned correction and the new residual, both from the Arnoldi basis without applying
    A — and adds the iterations each vector needed to ``its``. ``exact``: r in double precision when
    ``r`` is its single-precision copy; the correction's part along the first basis vector r/β (most
    of it, A M⁻¹ being close to 1) is then taken from ``exact`` and returned in double precision, so a
    single-precision cycle loses nothing of what it does not change (a constant potential, where
    A M⁻¹ = 1, is still solved exactly in one iteration)."""
    c, n = r.shape
    k = 0 if recycle is None else recycle.c.shape[0]
    _scaled(r, beta, basis[:, 0])
    h = np.zeros((steps + 1, steps, c), dtype=complex)         # rotated into R by Givens rotations
    arnoldi = np.zeros((c, steps + 1, steps), dtype=complex)   # the Hessenberg matrix as computed
    e_all = np.zeros((c, k, steps), dtype=complex)             # E = C^H A M⁻¹ V
    g = np.zeros((steps + 1, c), dtype=complex)
    g[0] = beta
    cs = np.zeros((steps, c))
    sn = np.zeros((steps, c), dtype=complex)
    converged = np.zeros(c, dtype=bool)
    k_steps = 0
    for j in range(steps):
        w = np.ascontiguousarray(shifted(basis[:, j]))          # (A M⁻¹ − 1)v: rows updated in place
        e_all[:, :, j], proj, hn = _orthogonalise(reduce, w, basis[:, :j + 1], recycle)
        proj[:, j] += 1.0                                      # A M⁻¹ v_j = v_j + (A M⁻¹ − 1) v_j
        h[:j + 1, j] = proj.T
        h[j + 1, j] = hn
        arnoldi[:, :j + 2, j] = h[:j + 2, j].T
        _scaled(w, hn, basis[:, j + 1])
        for i in range(j):                                     # earlier rotations on the new column
            top = cs[i] * h[i, j] + sn[i] * h[i + 1, j]
            h[i + 1, j] = -sn[i].conj() * h[i, j] + cs[i] * h[i + 1, j]
            h[i, j] = top
        a = h[j, j]
        rho = np.sqrt(np.abs(a) ** 2 + hn ** 2)
        rho = np.where(rho > 0, rho, 1.0)                      # an exactly solved vector: no rotation
        phase = np.where(np.abs(a) > 0, a / np.where(np.abs(a) > 0, np.abs(a), 1.0), 1.0)
        cs[j] = np.where(np.abs(a) + hn > 0, np.abs(a) / rho, 1.0)
        sn[j] = phase * hn / rho
        h[j, j] = cs[j] * a + sn[j] * hn
        h[j + 1, j] = 0.0
        g[j + 1] = -sn[j].conj() * g[j]
        g[j] = cs[j] * g[j]
        its[active[~converged]] += 1
        converged |= np.abs(g[j + 1]) <= target
        k_steps = j + 1
        if converged.all():
            break
    m = k_steps
    y = np.zeros((m, c), dtype=complex)
    for i in range(m - 1, -1, -1):                              # back substitution, all vectors
        diag = np.where(h[i, i] != 0, h[i, i], 1.0)
        y[i] = (g[i] - np.einsum("kc,kc->c", h[i, i + 1:m], y[i + 1:m])) / diag
    coef = np.zeros((c, 2, m + 1), dtype=complex)               # rows: y (correction), βe₁ − H y (residual)
    coef[:, 0, :m] = y.T
    coef[:, 1, 0] = beta
    coef[:, 1] -= np.matmul(arnoldi[:, :m + 1, :m], y.T[:, :, None])[:, :, 0]
    both = np.empty((2, c, n), dtype=basis.dtype)
    coef = coef.astype(basis.dtype)
    if exact is not None:
        coef[:, 0, 0] = 0.0                                     # v₀'s part from ``exact`` below
    for i in range(c):                                          # one pass over each basis
        np.matmul(coef[i], basis[i, :m + 1], out=both[:, i])
    if k:
        both[0] -= np.einsum("ckm,mc->ck", e_all[:, :, :m], y).astype(basis.dtype) @ recycle.u
    if exact is None:
        return both[0], both[1]
    du = exact * (y[0] / beta)[:, None]                         # y₀ v₀ = (y₀/β) r, in double precision
    du += both[0]
    return du, both[1]


def _scaled(v: np.ndarray, norms: np.ndarray, out: np.ndarray):
    """out[i] = v[i] / norms[i] (0 stays 0), row by row: a scalar times a vector is several times
    faster in numpy than a complex array times a broadcast real column."""
    for i, nrm in enumerate(norms):
        np.multiply(v[i], 1.0 / nrm if nrm > 0 else 1.0, out=out[i])
