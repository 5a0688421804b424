"""Batched right-preconditioned GMRES: many independent linear systems A x_c = b_c advanced together.

Every column c has its own Krylov space (the same mathematics as one GMRES per column), but each
step applies the operator, the preconditioner and the Gram–Schmidt projections to all columns
at once, so that a model can apply them as batched FFTs or a fused operator, and a distributed
run needs one reduction per projection for all columns. A block of vectors is an array
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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import zgemv

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
    """

    apply_a: object
    apply_am: object
    apply_m_inv: object
    reduce: object
    m_inv_and_am: object = None

    def both(self, v: np.ndarray) -> tuple:
        """(M⁻¹v, A M⁻¹v), complex [c, n_local] each."""
        if self.m_inv_and_am is not None:
            return self.m_inv_and_am(v)
        d = self.apply_m_inv(v)
        return d, self.apply_a(d)


def _norms(v: np.ndarray, reduce) -> np.ndarray:
    """Euclidean norm of every column over all ranks, float [c]."""
    return np.sqrt(reduce(np.array([np.vdot(row, row).real for row in v])))          # BLAS, no temporaries


def batched_gmres(ops: BatchedOperators, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float,
                  atol: float, max_it: int, restart: int, r0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Solve A x = b for every vector (row) of ``b`` (complex [c, n_local]); returns (x, iterations int [c]).

    ``x0``: initial guess of the same shape, or None (zero); ``r0``: its residual b − A x0 when the
    caller has it (saves one A; the final true residual is computed all the same). Raises :class:`ConvergenceError`
    when a column has not converged after ``max_it`` iterations.

    Restarted GMRES(``restart``) in which a restart costs no operator application: the residual
    of the next cycle is the Arnoldi image r − V_{k+1} H y (no A x), and the corrections stay
    unpreconditioned, u = Σ_cycles V y, until every column's residual has met its target; then
    x += M⁻¹u (one preconditioner application for all cycles) and the true residual b − A x is
    checked — a column that misses its target (rounding drift) runs again from it.
    """
    x = np.zeros(b.shape, dtype=complex) if x0 is None else np.array(x0, dtype=complex)
    target = np.maximum(rtol * _norms(b, ops.reduce), atol)
    its = np.zeros(b.shape[0], dtype=int)
    fresh = x0 is None
    work = np.empty((b.shape[0], restart + 1, b.shape[1]), dtype=complex)   # Krylov bases, reused by all cycles
    while True:
        if r0 is not None:
            r, r0 = np.array(r0, dtype=complex), None
        else:
            r = np.array(b, dtype=complex) if fresh else b - ops.apply_a(x)
        fresh = False
        beta = _norms(r, ops.reduce)
        active = np.flatnonzero(beta > target)
        if active.size == 0:
            return x, its
        u = np.zeros_like(r)
        live = active
        while live.size:
            _check_budget(its, live, beta[live], target[live], max_it)
            steps = min(restart, max_it - int(its[live].min()))
            whole = live.size == r.shape[0]                    # no fancy-index copies in the usual case
            du, r_live = _cycle(ops, r if whole else r[live], beta[live], target[live], steps, its, live,
                                work[:live.size, :steps + 1])
            if whole:
                u += du
                r = r_live
            else:
                u[live] += du
                r[live] = r_live
            beta[live] = _norms(r_live, ops.reduce)
            live = live[beta[live] > target[live]]
        x[active] += ops.apply_m_inv(u if active.size == r.shape[0] else u[active])


def _check_budget(its, active, beta, target, max_it):
    """Raise :class:`ConvergenceError` when an unconverged column has used its ``max_it`` iterations."""
    if its[active].max() >= max_it:
        worst = active[np.argmax(beta / target)]
        raise ConvergenceError(f"batched GMRES: column {worst} not converged after {its[worst]} iterations "
                               f"(residual {np.max(beta / target):.3g} × its target)")


def _cycle(ops, r, beta, target, steps, its, active, basis) -> tuple[np.ndarray, np.ndarray]:
    """One GMRES cycle of at most ``steps`` iterations from residuals r [c, n] (vectors ``active``)
    on A M⁻¹, its Krylov basis stored in ``basis`` (complex [c, steps + 1, n], overwritten); returns (V y, r − A M⁻¹ V y) [c, n] each — the unpreconditioned correction and the
    new residual, both from the Arnoldi basis without applying A — and adds the iterations each
    vector needed to ``its``."""
    c, n = r.shape
    _scaled(r, beta, basis[:, 0])
    h = np.zeros((steps + 1, steps, c), dtype=complex)         # rotated into R by Givens rotations
    arnoldi = np.zeros((c, steps + 1, steps), dtype=complex)   # the Hessenberg matrix as computed
    g = np.zeros((steps + 1, c), dtype=complex)
    g[0] = beta
    cs = np.zeros((steps, c))
    sn = np.zeros((steps, c), dtype=complex)
    converged = np.zeros(c, dtype=bool)
    k = 0
    for j in range(steps):
        w = np.ascontiguousarray(ops.apply_am(basis[:, j]))     # rows updated in place by zgemv
        v = basis[:, :j + 1]
        proj = ops.reduce(np.array([zgemv(1.0, v[i].T, w[i], trans=2) for i in range(c)]))   # V^H w, [c, j+1]
        for i in range(c):                                     # classical Gram–Schmidt (as PETSc's), in
            zgemv(-1.0, v[i].T, proj[i], beta=1.0, y=w[i], overwrite_y=True)   # place: w −= V proj
        hn = _norms(w, ops.reduce)
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
        k = j + 1
        if converged.all():
            break
    y = np.zeros((k, c), dtype=complex)
    for i in range(k - 1, -1, -1):                              # back substitution, all vectors
        diag = np.where(h[i, i] != 0, h[i, i], 1.0)
        y[i] = (g[i] - np.einsum("kc,kc->c", h[i, i + 1:k], y[i + 1:k])) / diag
    coef = np.zeros((c, 2, k + 1), dtype=complex)               # rows: y (correction), βe₁ − H y (residual)
    coef[:, 0, :k] = y.T
    coef[:, 1, 0] = beta
    coef[:, 1] -= np.matmul(arnoldi[:, :k + 1, :k], y.T[:, :, None])[:, :, 0]
    both = np.empty((2, c, n), dtype=complex)
    for i in range(c):                                          # one pass over each basis
        np.matmul(coef[i], basis[i, :k + 1], out=both[:, i])
    return both[0], both[1]


def _scaled(v: np.ndarray, norms: np.ndarray, out: np.ndarray):
    """out[i] = v[i] / norms[i] (0 stays 0), row by row: a scalar times a vector is several times
    faster in numpy than a complex array times a broadcast real column."""
    for i, nrm in enumerate(norms):
        np.multiply(v[i], 1.0 / nrm if nrm > 0 else 1.0, out=out[i])
