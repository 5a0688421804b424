"""Batched right-preconditioned GMRES: many independent linear systems A x_c = b_c advanced together.

Every column c has its own Krylov space (the same mathematics as one GMRES per column), but each
step applies the operator, the preconditioner and the Gram–Schmidt projections to all columns
at once, so that a model can apply them as batched FFTs or a fused operator, and a distributed
run needs one reduction per projection for all columns. A block of vectors is an array
complex [n_cols, n_local] (one vector per row: this rank's rows of the grid function or basis
function); ``reduce`` sums a small array over the ranks that hold the other rows. The Krylov
bases of all columns are one array [n_cols, k, n_local], so the projections are batched
matrix–vector products (BLAS).

Right preconditioning: GMRES runs on A M⁻¹ y = r₀ and x = x₀ + M⁻¹ y. Convergence: the true
residual ‖b − A x‖ ≤ max(rtol ‖b‖, atol) per column, checked with ``apply_a`` at the end of every
restart cycle (the GMRES estimate only decides when a cycle ends), so the result satisfies the
tolerance whatever rounding the estimates carry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import ConvergenceError


@dataclass
class BatchedOperators:
    """The operators of :func:`batched_gmres`, each complex [c, n_local] → [c, n_local].

    apply_a : the matrix A (true residuals).
    apply_am : A M⁻¹ (the GMRES operator; may be a fused form of the two).
    apply_m_inv : the preconditioner M⁻¹.
    reduce : sum of a numpy array over the ranks holding the other rows (identity on one rank).
    """

    apply_a: object
    apply_am: object
    apply_m_inv: object
    reduce: object


def _norms(v: np.ndarray, reduce) -> np.ndarray:
    """Euclidean norm of every column over all ranks, float [c]."""
    return np.sqrt(reduce(np.einsum("cn,cn->c", v.real, v.real) + np.einsum("cn,cn->c", v.imag, v.imag)))


def batched_gmres(ops: BatchedOperators, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float,
                  atol: float, max_it: int, restart: int) -> tuple[np.ndarray, np.ndarray]:
    """Solve A x = b for every vector (row) of ``b`` (complex [c, n_local]); returns (x, iterations int [c]).

    ``x0``: initial guess of the same shape, or None (zero). Raises :class:`ConvergenceError`
    when a column has not converged after ``max_it`` iterations.
    """
    x = np.zeros(b.shape, dtype=complex) if x0 is None else np.array(x0, dtype=complex)
    target = np.maximum(rtol * _norms(b, ops.reduce), atol)
    its = np.zeros(b.shape[0], dtype=int)
    while True:
        r = b - ops.apply_a(x) if x0 is not None or its.any() else np.array(b, dtype=complex)
        beta = _norms(r, ops.reduce)
        active = np.flatnonzero(beta > target)
        if active.size == 0:
            return x, its
        if its[active].max() >= max_it:
            worst = active[np.argmax(beta[active] / target[active])]
            raise ConvergenceError(f"batched GMRES: column {worst} not converged after {its[worst]} iterations "
                                   f"(residual {beta[worst]:.3g}, target {target[worst]:.3g})")
        steps = min(restart, max_it - int(its[active].min()))
        x[active] += _cycle(ops, r[active], beta[active], target[active], steps, its, active)


def _cycle(ops, r, beta, target, steps, its, active) -> np.ndarray:
    """One GMRES cycle of at most ``steps`` iterations from residuals r [c, n] (vectors ``active``);
    returns the correction M⁻¹ V y and adds the iterations each vector needed to ``its``."""
    c, n = r.shape
    basis = np.empty((c, min(steps + 1, 16), n), dtype=complex)       # grows by doubling
    basis[:, 0] = r / beta[:, None]
    h = np.zeros((steps + 1, steps, c), dtype=complex)
    g = np.zeros((steps + 1, c), dtype=complex)
    g[0] = beta
    cs = np.zeros((steps, c))
    sn = np.zeros((steps, c), dtype=complex)
    converged = np.zeros(c, dtype=bool)
    k = 0
    for j in range(steps):
        w = ops.apply_am(basis[:, j])
        v = basis[:, :j + 1]
        proj = ops.reduce(np.matmul(v, w.conj()[:, :, None])[:, :, 0].conj())      # [c, j+1]
        w -= np.matmul(proj[:, None, :], v)[:, 0]              # classical Gram–Schmidt (as PETSc's)
        h[:j + 1, j] = proj.T
        hn = _norms(w, ops.reduce)
        h[j + 1, j] = hn
        if j + 1 == basis.shape[1]:
            basis = np.concatenate([basis, np.empty_like(basis)[:, :min(basis.shape[1], steps + 1 - j - 1)]], axis=1)
        basis[:, j + 1] = w / np.where(hn > 0, hn, 1.0)[:, None]
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
    update = np.matmul(y.T[:, None, :], basis[:, :k])[:, 0]
    return ops.apply_m_inv(update)
