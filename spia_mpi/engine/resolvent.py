"""Projected quasi-static resolvents g = P† [z S − H]⁻¹ P (paper Eq. S1, METHOD §3).

z = ε_F + iη with η = (2J+1)πk_BT a large fermionic Matsubara frequency; P holds
the reference Bloch states as columns (float/complex [n_basis, n_states]); S = 1 for the
model Hamiltonians, the PAW overlap S(R) for the GPAW model (whose P is then the
common-pseudo-space projection Q = S(R, R⁽⁰⁾)c, :mod:`spia_mpi.models.gpaw`).

Two paths that give the same numbers:

* :func:`projected_resolvent_dense` — LAPACK LU of the dense matrix (small systems);
* :class:`ResolventSolver` — one PETSc KSP solve per column of P on a distributed
  sparse H (options prefix ``spia_resolvent_``; defaults in
  ``ResolventSolver.defaults``). Because η is large, z − H is well conditioned
  and GMRES with a Jacobi/block-Jacobi preconditioner converges in tens of
  iterations; the iteration counts are reported. A solve may start from an initial
  guess (``guess``: the workflow passes the previous bead's solution, a warm start
  along the ring polymer) and returns this rank's rows of the solution X = (z − H)⁻¹P.
  :meth:`ResolventSolver.solve_operator` solves A X = B for any PETSc operator A
  (z − H, or zS − H);
* its direct variant (:mod:`spia_mpi.engine.direct`, the GPAW model's default): one distributed
  LU of zS − H (MUMPS or ScaLAPACK) for all columns.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.errors import ConvergenceError, InputError

logger = logging.getLogger(__name__)


def matsubara_eta(J: int, temperature_k: float) -> float:
    """η = (2J+1)πk_BT in eV for the J-th fermionic Matsubara frequency."""
    if J < 0:
        raise InputError(f"Matsubara index J = {J} must be ≥ 0")
    return float(units.fermionic_frequency_ev(J, temperature_k))


def projected_resolvent_dense(h: np.ndarray, z: complex, p: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
    """P†(zS − H)⁻¹P for a dense H (and overlap S, default 1), complex [n_states, n_states]."""
    from scipy.linalg import lu_factor, lu_solve
    n = h.shape[0]
    a = -np.asarray(h, dtype=complex)
    if s is None:
        a[np.diag_indices(n)] += z
    else:
        a += z * np.asarray(s)
    x = lu_solve(lu_factor(a, check_finite=False), p, check_finite=False)
    return p.conj().T @ x


class ResolventSolver:
    """Distributed P†(z − H)⁻¹P with PETSc KSP.

    Parameters
    ----------
    comm : MPI communicator of the PETSc objects (a configuration group).
    options : dict of PETSc options (without the prefix) overriding ``defaults``,
        e.g. ``{"ksp_type": "bcgs", "pc_type": "bjacobi", "ksp_rtol": 1e-12}``, and
        options of ours: ``warm_start`` (bool, default true): :class:`spia_mpi.engine.workflow`
        starts the Krylov solves of bead b from the solution of bead b − 1 of the same
        configuration (``guess`` of :meth:`solve`) instead of from zero (on the batched path with the
        grid model's fused operator the guess's residual costs no application of A: consecutive beads'
        matrices differ only on the diagonal, so it follows pointwise from the previous solve's final
        residual, :class:`_Step`); ``warm_projection`` (bool,
        default false): that guess is first improved by :func:`minimal_residual_guess` (fewer
        Krylov iterations, but it costs about as many operator applications as it saves:
        docs/benchmarks.md); ``block_size`` (int or
        ``"auto"``, the default): 1 solves the columns one by one with PETSc's KSP; n > 1 solves them n at a
        time with the batched GMRES of :mod:`spia_mpi.engine.krylov` (right-preconditioned,
        ksp_rtol/ksp_atol/ksp_max_it apply; pc_type auto, model or jacobi), restarted every
        ``block_restart`` iterations (int, default 4: short cycles cost little Gram–Schmidt work and
        converge almost as fast as long ones with the kinetic preconditioner). With
        the grid model's kinetic preconditioner M = z − V̄ − T the batched solver applies
        A M⁻¹ = 1 − (V − V̄) M⁻¹ by FFTs alone, without the sparse matrix (checked against the matrix
        at set-up; the final residuals are always the matrix's). ``"auto"``
        (:meth:`block_size_for`): ``AUTO_BLOCK`` when the solve uses the model's preconditioner with
        GMRES (the grid model: 1.75–2.1× the single solves' throughput, docs/benchmarks.md), else 1.
        ``recycle`` (int, default 0 = off; batched GMRES only): k > 0 deflates every solve by a
        recycled subspace U of k vectors with C = A M⁻¹U (:class:`spia_mpi.engine.krylov.Recycled`),
        U carried from solve to solve (bead to bead) by one subspace-iteration step on A M⁻¹ − 1 per
        solve, so that it tracks the eigenvectors of A M⁻¹ farthest from 1 (the few outlying
        eigenvalues that the deep ionic potentials leave; ≈ 2 per atom): k applications of A M⁻¹
        per solve, shared by all columns, and ``RECYCLE_START`` · k more when a new space starts
        (:meth:`forget`: the workflow starts one per task). ``mixed_precision`` (bool, default true;
        batched GMRES with the grid model's fused operator): the Krylov cycles run in single precision
        (complex64 FFTs and bases) between double-precision true residuals (iterative refinement,
        ``batched_gmres(..., mixed=True)``): same tolerance, ≈ 1.3× faster (docs/benchmarks.md).

    ``pc_type`` takes PETSc's preconditioner names and two of ours: ``"model"``, the
    preconditioner the electronic model supplies (the grid model's kinetic-energy FFT
    preconditioner, :class:`spia_mpi.engine.preconditioners.KineticPreconditioner`), and ``"auto"``
    (default): ``"model"`` when the model has one, else ``"jacobi"``.

    The convergence test is PETSc's default, ‖r‖ ≤ max(rtol·‖b‖, atol) (preconditioned norms),
    relative to the right-hand side and not to the initial residual, so a warm start stops at
    the same accuracy as a cold one, in fewer iterations.
    """

    prefix = "spia_resolvent_"
    defaults = {"ksp_type": "gmres", "pc_type": "auto", "ksp_rtol": 1e-11,
                "ksp_atol": 1e-14, "ksp_max_it": 2000, "ksp_gmres_restart": 100, "warm_start": True,
                "warm_projection": False, "block_size": "auto", "block_restart": 4, "recycle": 0,
                "mixed_precision": True}
    #: block size of ``block_size = "auto"`` when the model's preconditioner is used
    AUTO_BLOCK = 8
    #: options read by this class, never passed to PETSc
    own_options = ("warm_start", "warm_projection", "block_size", "block_restart", "recycle", "mixed_precision")
    #: subspace iterations that start a recycled space (on the first solve after :meth:`forget`)
    RECYCLE_START = 3

    def __init__(self, comm, options: dict | None = None):
        from spia_mpi.parallel import stack
        self.PETSc = stack.petsc()
        self.comm = comm
        self.options = {**self.defaults, **(options or {})}
        self.warm_start = _as_bool(self.options["warm_start"], "warm_start")
        self.warm_projection = _as_bool(self.options["warm_projection"], "warm_projection")
        self.mixed_precision = _as_bool(self.options["mixed_precision"], "mixed_precision")
        block = self.options["block_size"]
        if isinstance(block, str) and block != "auto":
            raise InputError(f"resolvent option block_size = {block!r} must be an integer ≥ 1 or 'auto'")
        self.block_size = block if block == "auto" else _as_count(block, "block_size")
        _as_count(self.options["block_restart"], "block_restart")
        self.recycle = self.options["recycle"]
        if isinstance(self.recycle, bool) or not isinstance(self.recycle, int) or self.recycle < 0:
            raise InputError(f"resolvent option recycle = {self.recycle!r} must be an integer ≥ 0")
        if self.recycle and self.block_size == 1:
            raise InputError("resolvent option recycle is used by the batched GMRES only: it needs "
                             "block_size > 1 or 'auto'")
        self._recycle_u = None                     # this rank's rows of the next solve's U, [k, n_local]
        self._previous = None                      # the last batched solve (:class:`_Step`), for the next guess
        if self.block_size != "auto" and self.block_size > 1:
            if self.options["ksp_type"] != "gmres":
                raise InputError(f"resolvent block_size = {self.block_size} uses batched GMRES: ksp_type "
                                 f"'{self.options['ksp_type']}' cannot be combined with it")
            if self.options["pc_type"] not in ("auto", "model", "jacobi"):
                raise InputError(f"resolvent block_size = {self.block_size} supports pc_type auto, model or "
                                 f"jacobi, not '{self.options['pc_type']}'")
        self.iterations = []

    def _configure(self, ksp, preconditioner=None):
        """Apply this solver's options to ``ksp`` only: they are put in PETSc's global options
        database just for ``setFromOptions`` and removed again, so solvers with different
        options in one process do not see each other's values."""
        options = {k: v for k, v in self.options.items() if k not in self.own_options}
        pc_type = options.get("pc_type", "auto")
        if pc_type in ("auto", "model"):
            if pc_type == "model" and preconditioner is None:
                raise InputError("resolvent pc_type = 'model': this electronic model supplies no "
                                 "preconditioner (use a PETSc one, e.g. 'jacobi')")
            options.pop("pc_type")
            if preconditioner is None:
                options["pc_type"] = "jacobi"
        opts = self.PETSc.Options()
        for k, v in options.items():
            opts.setValue(self.prefix + k, v)
        try:
            ksp.setOptionsPrefix(self.prefix)
            ksp.setFromOptions()
        finally:
            for k in options:
                opts.delValue(self.prefix + k)
        if "pc_type" not in options:
            pc = ksp.getPC()
            pc.setType(self.PETSc.PC.Type.PYTHON)
            pc.setPythonContext(preconditioner)

    def solve(self, h_mat, z: complex, p: np.ndarray, preconditioner=None,
              guess: np.ndarray | None = None, s_mat=None) -> tuple[np.ndarray, dict]:
        """g = P†(zS − H)⁻¹P (every rank of ``comm`` gets all of g) and solver info.

        ``h_mat`` is a PETSc Mat on ``comm`` (it is not modified), ``s_mat`` the overlap S
        on the same rows (None: S = 1); ``p`` is the
        full [n_basis, n_states] array (each rank uses its own rows);
        ``preconditioner``: a petsc4py python-PC context from the model (or None);
        ``guess``: this rank's rows of an initial guess for X = (z − H)⁻¹P, complex
        [n_local, n_states] (e.g. ``info["solution"]`` of a neighbouring bead), or None (zero).
        ``info``: ``iterations_mean``, ``iterations_max`` and ``solution`` (this rank's rows of X).
        """
        A = shifted_operator(h_mat, z, s_mat)
        try:
            r0, r1 = A.getOwnershipRange()
            local, its = self.solve_operator(A, p[r0:r1], preconditioner, guess)
        finally:
            A.destroy()
        g_local = p[r0:r1].conj().T @ local
        g = self.comm.allreduce(g_local) if self.comm.size > 1 else g_local
        self.iterations += its
        return g, {"iterations_mean": float(np.mean(its)), "iterations_max": int(np.max(its)),
                   "solution": local}

    def solve_operator(self, A, b_local: np.ndarray, preconditioner=None,
                       guess: np.ndarray | None = None) -> tuple[np.ndarray, list]:
        """X = A⁻¹B column by column for a PETSc Mat A (e.g. z − H or zS − H) on ``comm``.

        ``b_local``: this rank's rows of B, complex [n_local, n_rhs]; ``guess``: the same shape
        or None. Returns this rank's rows of X, complex [n_local, n_rhs], and the iteration
        count of every column. Raises :class:`ConvergenceError` if a column does not converge.
        A :class:`~spia_mpi.engine.direct.DirectSolve` ``preconditioner`` (the GPAW model's) or
        ksp_type preonly with pc_type lu: one LU of A for all columns (:mod:`spia_mpi.engine.direct`).
        """
        from spia_mpi.engine import direct
        package = direct.package_for(self.options, preconditioner)
        if package is not None:
            return direct.solve_columns(A, b_local, package, self.options)
        block = self.block_size_for(preconditioner)
        if block > 1:
            return self._solve_blocks(A, b_local, preconditioner, guess, block)
        if guess is not None and self.warm_projection:
            guess = self._projected_guess(A, b_local, preconditioner, guess)
        PETSc = self.PETSc
        ksp = PETSc.KSP().create(comm=A.getComm())
        x, b = A.createVecs()
        try:
            ksp.setOperators(A)
            self._configure(ksp, preconditioner)
            ksp.setInitialGuessNonzero(guess is not None)
            n_rhs = b_local.shape[1]
            local = np.empty(b_local.shape, dtype=complex)
            its = []
            for j in range(n_rhs):
                b.getArray()[:] = b_local[:, j]
                if guess is None:
                    x.set(0.0)
                else:
                    x.getArray()[:] = guess[:, j]
                ksp.solve(b, x)
                reason = ksp.getConvergedReason()
                if reason <= 0:
                    raise ConvergenceError(
                        f"resolvent KSP did not converge (reason {reason}, {ksp.getIterationNumber()} "
                        f"iterations, column {j}); try spia.resolvent_options = {{ pc_type = 'bjacobi' }} "
                        f"(input file) or a larger J (spia.matsubara_j)")
                its.append(ksp.getIterationNumber())
                local[:, j] = x.getArray(readonly=True)
        finally:                                  # also on a ConvergenceError: no leaked PETSc objects
            ksp.destroy()
            x.destroy()
            b.destroy()
        return local, its


    def _projected_guess(self, A, b_local, preconditioner, guess) -> np.ndarray:
        """:func:`minimal_residual_guess` for this rank's rows (complex [n_local, n_rhs], as ``guess``)."""
        ops = _batched_operators(A, self._model_preconditioner(preconditioner))
        x, _ = minimal_residual_guess(ops, np.ascontiguousarray(b_local.T), np.ascontiguousarray(guess.T))
        return np.ascontiguousarray(x.T)

    def _model_preconditioner(self, preconditioner):
        """The model's preconditioner when ``pc_type`` selects it (auto, model), else None (Jacobi)."""
        if self.options["pc_type"] == "model" and preconditioner is None:
            raise InputError("resolvent pc_type = 'model': this electronic model supplies no "
                             "preconditioner (use a PETSc one, e.g. 'jacobi')")
        return preconditioner if self.options["pc_type"] in ("auto", "model") else None

    def block_size_for(self, preconditioner) -> int:
        """Columns solved together with this model ``preconditioner`` (or None): the ``block_size``
        option, or for ``"auto"`` ``AUTO_BLOCK`` when ksp_type is gmres and pc_type (auto or model)
        selects a model preconditioner, else 1 (PETSc's KSP, whatever PETSc options are given)."""
        if self.block_size != "auto":
            return self.block_size
        o = self.options
        batched = o["ksp_type"] == "gmres" and o["pc_type"] in ("auto", "model") and preconditioner is not None
        return self.AUTO_BLOCK if batched else 1

    def _solve_blocks(self, A, b_local, preconditioner, guess, block: int) -> tuple[np.ndarray, list]:
        """:meth:`solve_operator` by batched GMRES, ``block`` columns at a time."""
        pc = self._model_preconditioner(preconditioner)
        ops = _batched_operators(A, pc, min(block, b_local.shape[1]))
        recycled = self._recycled_space(ops, A) if self.recycle else None
        b = np.ascontiguousarray(b_local.T)
        previous, self._previous = self._previous, None
        if ops.m_inv_and_am is None:                           # not the fused operator: A' − A unknown
            return self._batched_solves(ops, b, guess, block, recycled)
        d = A.getDiagonal()
        diag = d.getArray().copy()
        d.destroy()
        r0 = None
        if guess is not None and previous is not None and previous.follows(guess, pc, b):
            r0 = previous.residual_for(b, diag)
        previous = None                                        # not held during the solve (memory)
        x, its, residual = self._batched_solves(ops, b, guess, block, recycled, r0, keep_residual=True)
        self._previous = _Step(pc, diag, np.subtract(b, residual, out=residual), x)
        return x, its

    def forget(self):
        """Drop the recycled subspace (option ``recycle``) and the previous solve's residual: the next
        solve starts anew. The workflow calls it at the start of every task, so that a task's result
        depends on that task alone."""
        self._recycle_u = None
        self._previous = None

    def _recycled_space(self, ops, A):
        """The :class:`~spia_mpi.engine.krylov.Recycled` space of this solve: U from the previous
        solve (or, after :meth:`forget`, ``RECYCLE_START`` subspace iterations from random vectors),
        C = A M⁻¹U orthonormalised (``recycle`` applications of A M⁻¹, shared by all columns); and
        U for the next solve, one subspace-iteration step (A M⁻¹ − 1)U (free: C − U)."""
        from spia_mpi.engine.krylov import Recycled, orthonormalise
        r0, r1 = A.getOwnershipRange()
        u = self._recycle_u
        if u is None or u.shape[1] != r1 - r0:
            full = np.random.default_rng(11).standard_normal((2, self.recycle, A.getSize()[0]))
            u = orthonormalise(full[0, :, r0:r1] + 1j * full[1, :, r0:r1], ops.reduce)[0]
            for _ in range(self.RECYCLE_START):
                u = orthonormalise(ops.shifted(u), ops.reduce)[0]
        shifted = ops.shifted(u)
        c, t = orthonormalise(shifted + u, ops.reduce)
        u = t @ u
        self._recycle_u = orthonormalise(t @ shifted, ops.reduce)[0]
        return Recycled(u, c)

    def _batched_solves(self, ops, b, guess, block: int, recycled=None, r0=None,
                        keep_residual: bool = False) -> tuple:
        """Batched GMRES on :class:`~spia_mpi.engine.krylov.BatchedOperators` ``ops``, block by block:
        B = ``b`` (complex [n_rhs, n_local]), ``r0`` the residual of ``guess`` when known (or None).
        Returns (X [n_local, n_rhs], iterations), and with ``keep_residual`` the final B − A X
        [n_rhs, n_local] as a third item (allocated after the first block, not during its solve)."""
        from spia_mpi.engine.krylov import batched_gmres
        o = self.options
        x0 = None if guess is None else np.ascontiguousarray(guess.T)
        if x0 is not None and self.warm_projection:            # its residual comes with it: no A
            x0, r0 = minimal_residual_guess(ops, b, x0, r0)
        x = np.empty(b.shape, dtype=complex)
        its = np.empty(b.shape[0], dtype=int)
        residual = None
        for s in range(0, b.shape[0], block):
            part = slice(s, s + block)
            out = batched_gmres(ops, b[part], None if x0 is None else x0[part], rtol=float(o["ksp_rtol"]),
                                atol=float(o["ksp_atol"]), max_it=int(o["ksp_max_it"]),
                                restart=o["block_restart"], r0=None if r0 is None else r0[part],
                                recycle=recycled, mixed=self.mixed_precision, return_residual=keep_residual)
            x[part], its[part] = out[:2]
            if keep_residual:
                residual = np.empty_like(b) if residual is None else residual
                residual[part] = out[2]
        x, its = np.ascontiguousarray(x.T), [int(i) for i in its]
        return (x, its, residual) if keep_residual else (x, its)


def minimal_residual_guess(ops, b: np.ndarray, x_prev: np.ndarray,
                           r_prev: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A better initial guess than ``x_prev`` (e.g. the previous bead's solution) for A X = B, and its residual.

    X₀ = S Y with S = [X_prev, M⁻¹R] (R = B − A X_prev, M the preconditioner of ``ops``) and Y
    minimising ‖B − A S Y‖_F over all 2n columns of S together (a minimal-residual / one
    block-GMRES step shared by the right-hand sides). Cost: one A and one M⁻¹ per column (no A when
    the caller gives ``r_prev`` = B − A X_prev; one more A when ``ops`` cannot give A M⁻¹ with M⁻¹,
    :meth:`BatchedOperators.both`).
    ``b``, ``x_prev``: complex [n_rhs, n_local] (vectors as rows, this rank's entries); the
    normal equations of the small least-squares problem are summed over the ranks by ``ops.reduce``.
    Returns (X₀, B − A X₀), each [n_rhs, n_local] (the residual from the projection, A S Y).
    """
    from scipy.linalg import lstsq
    ax = ops.apply_a(x_prev) if r_prev is None else b - r_prev
    d, ad = ops.both(b - ax)
    s = np.concatenate([x_prev, d])
    c = np.concatenate([ax, ad])                                # A S
    gram = ops.reduce(c.conj() @ c.T)                          # (A S)^H (A S), [2n, 2n]
    rhs = ops.reduce(c.conj() @ b.T)                           # (A S)^H B, [2n, n_rhs]
    y = lstsq(gram, rhs, check_finite=False)[0]
    return y.T @ s, b - y.T @ c


@dataclass
class _Step:
    """One batched solve with the grid model's fused operator, A = t₀ − T + diag(d) (T the stencil of
    the preconditioner ``pc``, d A's diagonal), kept so that the next solve can start from its solution
    without applying A: for A' = t₀ − T + diag(d') (the next bead: same T, another potential), B' − A'X =
    B' − A X + (d − d') ⊙ X, pointwise.

    pc : the model preconditioner object (its stencil and K define T).
    diag : A's diagonal, this rank's rows, complex [n_local].
    ax : A X = B − (the final residual), complex [n_rhs, n_local] (vectors as rows).
    solution : X as returned to the caller, complex [n_local, n_rhs].
    """

    pc: object
    diag: np.ndarray
    ax: np.ndarray
    solution: np.ndarray

    def follows(self, guess, pc, b: np.ndarray) -> bool:
        """True when ``guess`` is this step's solution and the next solve (model preconditioner ``pc``,
        B = ``b`` [n_rhs, n_local]) has the same T and shape."""
        return guess is self.solution and pc is self.pc and b.shape == self.ax.shape

    def residual_for(self, b: np.ndarray, diag: np.ndarray) -> np.ndarray:
        """B' − A'X for the next solve's B' = ``b`` [n_rhs, n_local] and diagonal d' = ``diag`` [n_local]
        and this step's X, complex [n_rhs, n_local]."""
        r = b - self.ax
        r += (self.diag - diag) * self.solution.T
        return r


def _batched_operators(A, preconditioner=None, block: int = 1):
    """:class:`~spia_mpi.engine.krylov.BatchedOperators` of a PETSc Mat A on this rank's rows:
    the model's preconditioner (its fused A M⁻¹ when it matches A) or Jacobi (``None``), set up
    for blocks of ``block`` vectors."""
    from spia_mpi.engine.krylov import BatchedOperators
    comm = A.getComm().tompi4py()
    x, y = A.createVecs()
    d = A.getDiagonal()
    diag = d.getArray().copy()
    d_mean = d.sum() / d.getSize()
    d.destroy()

    def apply_a(v):
        out = np.empty_like(v)
        for i, row in enumerate(v):
            x.getArray()[:] = row
            A.mult(x, y)
            out[i] = y.getArray(readonly=True)
        return out

    def reduce(a):
        if comm.Get_size() == 1:
            return a
        out = np.empty_like(a)
        comm.Allreduce(np.ascontiguousarray(a), out)
        return out

    if preconditioner is None:
        def apply_m_inv(v):
            return v / diag
        return BatchedOperators(apply_a, lambda v: apply_a(apply_m_inv(v)), apply_m_inv, reduce)
    preconditioner.configure(comm, A.getOwnershipRange(), d_mean + preconditioner.t0)
    if hasattr(preconditioner, "reserve"):
        preconditioner.reserve(block)
    apply_m_inv = preconditioner.apply_block
    fused = preconditioner.preconditioned_operator(diag, d_mean)
    probe = np.random.default_rng(1).standard_normal((1, diag.size)) + 0j      # one random vector
    exact = apply_a(apply_m_inv(probe))
    mismatch = reduce(np.array([np.sum(np.abs(fused(probe) - exact) ** 2), np.sum(np.abs(exact) ** 2)]))
    if mismatch[0] > 1e-20 * mismatch[1]:                       # A is not M − (V − V̄): use the matrix
        return BatchedOperators(apply_a, lambda v: apply_a(apply_m_inv(v)), apply_m_inv, reduce)
    shift = diag - d_mean

    def m_inv_and_am(v):                                        # the fused form, keeping M⁻¹v
        d = apply_m_inv(v)
        return d, v + shift * d

    def am_minus_1(v):                                          # A M⁻¹ − 1 = −(V − V̄) M⁻¹
        return preconditioner.apply_block(v, post=shift)
    shift_single = shift.astype(np.complex64)

    def am_minus_1_single(v):                                   # the same in single precision
        return preconditioner.apply_block(v, post=shift_single)
    return BatchedOperators(apply_a, fused, apply_m_inv, reduce, m_inv_and_am, am_minus_1, am_minus_1_single)


def shifted_operator(h_mat, z: complex, s_mat=None):
    """A new PETSc Mat zS − H (S = 1 when ``s_mat`` is None; the inputs are not modified, the
    caller destroys the result)."""
    A = h_mat.duplicate(copy=True)
    A.scale(-1.0)
    if s_mat is None:
        A.shift(z)
    else:
        from spia_mpi.parallel import stack
        A.axpy(z, s_mat, structure=stack.petsc().Mat.Structure.DIFFERENT_NONZERO_PATTERN)
    return A


def _as_count(value, name: str) -> int:
    """A resolvent option that must be an integer ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"resolvent option {name} = {value!r} must be an integer ≥ 1")
    return value


def _as_bool(value, name: str) -> bool:
    """A resolvent option that must be a boolean (TOML true/false)."""
    if not isinstance(value, bool):
        raise InputError(f"resolvent option {name} = {value!r} must be true or false")
    return value
