"""Direct resolvent solves: one distributed LU of A = z S − H, all right-hand sides at once.

The PETSc resolvent (:class:`spia_mpi.engine.resolvent.ResolventSolver`) solves A X = P with a
Krylov method. That fails for the GPAW model's LCAO matrices: the overlap S of an overcomplete
basis (dzp) makes A badly conditioned, and GMRES with Jacobi or block-Jacobi + LU blocks does not
converge in 2000 iterations on the 76-atom Li₂MgH₁₆ cell even at η = 2.7 eV (docs/benchmarks.md,
"GPAW"). Those matrices are also nearly dense at the paper's cell sizes (fill 1.0 up to 304 atoms),
so a direct factorisation costs what GMRES would cost in a few hundred iterations, and its
accuracy does not depend on the conditioning beyond the usual backward-stable bound.

Here A (a distributed PETSc Mat, e.g. the row-distributed AIJ of the GPAW sparse-rows mode) is
factorised once by one of PETSc's LU packages and all columns of P are solved together by one
``MatMatSolve`` with a dense right-hand-side block:

* ``"mumps"`` — MUMPS on the AIJ matrix as it is (any fill, any number of ranks);
* ``"scalapack"`` — A and P copied to MATSCALAPACK (dense, 2-D block-cyclic over the ranks), LU
  with partial pivoting by ScaLAPACK;
* ``"petsc"`` — PETSc's own sequential LU (one rank only).

When it is used: a model asks for it by returning a :class:`DirectSolve` from
``resolvent_preconditioner(K)`` (the GPAW model does) and ``pc_type`` is ``"auto"``/``"model"``;
or the resolvent options say so in PETSc's own words, ``ksp_type = "preonly"`` with
``pc_type = "lu"`` (the package from ``pc_factor_mat_solver_type``, default MUMPS). Options whose
names start with ``mat_`` or ``pc_factor_`` (e.g. ``mat_mumps_icntl_14``) reach the factorisation.
The relative residual max_j ‖A x_j − b_j‖ / ‖b_j‖ is checked after the solve
(:data:`RESIDUAL_TOL`): a singular or badly pivoted factorisation raises
:class:`~spia_mpi.errors.ConvergenceError` instead of returning wrong numbers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import ConvergenceError, InputError

logger = logging.getLogger(__name__)

#: LU packages of Debian's PETSc usable here ("petsc": one rank only)
PACKAGES = ("mumps", "scalapack", "petsc")
#: largest accepted relative residual ‖A x − b‖ / ‖b‖ of a column after the direct solve
RESIDUAL_TOL = 1e-8
#: MUMPS settings of ours (resolvent options override them): ICNTL(20) = 0, the right-hand sides
#: centralised on the host for the solve. PETSc 3.18's default with MUMPS ≥ 5.3 on several ranks is the
#: distributed dense RHS (10), and Debian's MUMPS 5.5 segfaults in zmumps_scatter_dist_rhs with it on
#: the 76-atom Li₂MgH₁₆ zS − H and ≥ 120 columns on 2 ranks (80 pass; docs/benchmarks.md, "GPAW");
#: Q is on every rank anyway, so the centralised RHS costs no memory of note
MUMPS_DEFAULTS = {"mat_mumps_icntl_20": 0}
#: options prefix of the factorisation (as :class:`ResolventSolver`'s KSP)
PREFIX = "spia_resolvent_"


@dataclass(frozen=True)
class DirectSolve:
    """A model's request to factorise z S − H instead of preconditioning a Krylov method.

    Returned by ``model.resolvent_preconditioner(K)`` in place of a python-PC context.
    ``package``: one of :data:`PACKAGES` (the resolvent option ``pc_factor_mat_solver_type``
    overrides it)."""
    package: str = "mumps"


def package_for(options: dict, preconditioner) -> str | None:
    """The LU package of a direct solve with these resolvent ``options`` and the model's
    ``preconditioner`` (a :class:`DirectSolve`, a python-PC context or None), or None for a
    Krylov solve. Raises InputError for an unknown package."""
    pc_type = options.get("pc_type", "auto")
    if pc_type in ("auto", "model") and isinstance(preconditioner, DirectSolve):
        package = options.get("pc_factor_mat_solver_type", preconditioner.package)
    elif pc_type == "lu" and options.get("ksp_type") == "preonly":
        package = options.get("pc_factor_mat_solver_type", "mumps")
    else:
        return None
    if package not in PACKAGES:
        raise InputError(f"resolvent option pc_factor_mat_solver_type = {package!r} is not one of: "
                         f"{', '.join(PACKAGES)}")
    return package


def solve_columns(A, b_local: np.ndarray, package: str = "mumps", options: dict | None = None,
                  check: bool = True) -> tuple[np.ndarray, list]:
    """X = A⁻¹B by one LU of the PETSc Mat ``A`` (not modified) and one MatMatSolve (collective).

    ``A``: AIJ for MUMPS and PETSc's LU, AIJ or dense for ScaLAPACK;
    ``b_local``: this rank's rows (A's ownership range) of B, complex [n_local, n_rhs];
    ``options``: resolvent options, of which those starting with ``mat_`` or ``pc_factor_`` are
    given to the factorisation; ``check``: verify the relative residual (one more product A X).
    Returns this rank's rows of X, complex [n_local, n_rhs], and one "iteration" (one application
    of the factors) per column.
    """
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    comm = A.getComm()
    if package == "petsc" and comm.getSize() > 1:
        raise InputError("resolvent pc_factor_mat_solver_type = 'petsc' (PETSc's sequential LU) needs one rank "
                         "per group: use 'mumps' or 'scalapack'")
    r0, r1 = A.getOwnershipRange()
    made = []
    try:
        b = PETSc.Mat().createDense(((r1 - r0, A.getSize()[0]), (PETSc.DECIDE, b_local.shape[1])), comm=comm)
        made.append(b)
        b.setUp()
        b.getDenseArray()[:] = b_local
        b.assemble()
        try:
            x = (_scalapack_solve if package == "scalapack" else _factor_solve)(PETSc, A, b, package, options or {},
                                                                               made)
        except PETSc.Error as exc:                   # e.g. a zero pivot: the packages' errors are collective
            raise ConvergenceError(f"direct LU solve ({package}) failed: {str(exc).splitlines()[-1]} "
                                   f"(singular matrix?)") from exc
        if x.getOwnershipRange() != (r0, r1):
            raise RuntimeError(f"direct solve: solution rows {x.getOwnershipRange()} ≠ A's rows {(r0, r1)}")
        local = np.array(x.getDenseArray(), dtype=complex)
    finally:
        for obj in made:
            obj.destroy()
    if not check:
        return local, [1] * local.shape[1]
    residual = relative_residual(A, b_local, local)
    logger.debug("direct resolvent (%s): %d columns, max relative residual %.1e", package, local.shape[1], residual)
    if not residual <= RESIDUAL_TOL:
        raise ConvergenceError(f"direct resolvent solve ({package}): relative residual {residual:.1e} > "
                               f"{RESIDUAL_TOL:g} (singular or badly pivoted z S − H)")
    return local, [1] * local.shape[1]


def solve_dense_rows(comm, a_rows: np.ndarray, rhs_rows: np.ndarray, package: str = "scalapack",
                     check: bool = False) -> np.ndarray:
    """This rank's rows of X with A X = RHS, A given as dense rows (collective on the mpi4py ``comm``).

    ``a_rows``: complex [n_rows, n], ``rhs_rows``: complex [n_rows, k]: this rank's consecutive rows
    of A and RHS (any split adding up to n). ``package``: 'scalapack' (A copied to MATSCALAPACK)
    or 'mumps' (A copied to MPIAIJ holding every entry, MUMPS' input format); :func:`solve_columns`
    does the rest. Returns complex [n_rows, k]."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    n_rows, n = a_rows.shape
    made = []
    try:
        a = PETSc.Mat().createDense(((n_rows, n), (PETSc.DECIDE, n)), comm=comm)
        made.append(a)
        a.setUp()
        a.getDenseArray()[:] = a_rows
        a.assemble()
        if package == "mumps":
            a = a.convert("aij", PETSc.Mat())
            made.append(a)
        return solve_columns(a, rhs_rows, package, check=check)[0]
    finally:
        for obj in made:
            obj.destroy()


def _factor_solve(PETSc, A, b, package: str, options: dict, made: list):
    """LU of AIJ ``A`` by ``package`` through a preonly KSP; the solution Mat of A X = ``b``."""
    ksp = PETSc.KSP().create(comm=A.getComm())
    made.append(ksp)
    ksp.setOperators(A)
    ksp.setType("preonly")
    pc = ksp.getPC()
    pc.setType("lu")
    pc.setFactorSolverType(package)
    factor_options = {**(MUMPS_DEFAULTS if package == "mumps" else {}),
                      **{k: v for k, v in options.items()
                         if k.startswith(("mat_", "pc_factor_")) and k != "pc_factor_mat_solver_type"}}
    db = PETSc.Options()
    for k, v in factor_options.items():
        db.setValue(PREFIX + k, v)
    try:
        ksp.setOptionsPrefix(PREFIX)
        ksp.setFromOptions()
        ksp.setUp()                                   # the factorisation
    finally:
        for k in factor_options:
            db.delValue(PREFIX + k)
    x = b.duplicate()
    made.append(x)
    pc.getFactorMatrix().matSolve(b, x)
    return x


def _scalapack_solve(PETSc, A, b, package: str, options: dict, made: list):
    """A and ``b`` copied to MATSCALAPACK (new matrices: petsc4py's convert without a target would
    convert A in place), LU with partial pivoting; the solution as a dense Mat on A's rows."""
    a = A.convert("scalapack", PETSc.Mat())
    made.append(a)
    bs = b.convert("scalapack", PETSc.Mat())
    made.append(bs)
    order = a.getOrdering("natural")
    made.extend(order)
    a.factorLU(*order)
    xs = bs.duplicate()
    made.append(xs)
    a.matSolve(bs, xs)
    x = xs.convert("dense", PETSc.Mat())
    made.append(x)
    return x


def relative_residual(A, b_local: np.ndarray, x_local: np.ndarray) -> float:
    """max over columns j of ‖A x_j − b_j‖ / ‖b_j‖ (2-norms over all ranks; collective on A's comm).
    A X is one MatMatMult with X as a dense Mat on A's rows."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    r0, r1 = A.getOwnershipRange()
    x = PETSc.Mat().createDense(((r1 - r0, A.getSize()[1]), (PETSc.DECIDE, x_local.shape[1])), comm=A.getComm())
    ax = None
    try:
        x.setUp()
        x.getDenseArray()[:] = x_local
        x.assemble()
        ax = A.matMult(x)
        r2 = np.sum(np.abs(ax.getDenseArray() - b_local) ** 2, axis=0)
    finally:
        x.destroy()
        if ax is not None:
            ax.destroy()
    comm = A.getComm().tompi4py()
    b2 = np.sum(np.abs(b_local) ** 2, axis=0)
    r2, b2 = (comm.allreduce(r2), comm.allreduce(b2)) if comm.Get_size() > 1 else (r2, b2)
    return float(np.max(np.sqrt(r2 / np.where(b2 > 0, b2, 1.0)))) if r2.size else 0.0
