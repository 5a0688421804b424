"""Band structure, DOS and Fermi level of a model's reference structure.

* :func:`lowest_eigenpairs` — the n lowest eigenpairs of H(K) with SLEPc
  (Krylov–Schur, smallest real part; distributed over ``comm``; options prefix
  ``spia_bands_``) or dense LAPACK (``method='dense'``) for checks;
* :func:`fermi_level` — ε_F from the electron count (Fermi–Dirac at T).
"""
from __future__ import annotations

import numpy as np

from spia_mpi.errors import ConvergenceError, InputError


def lowest_eigenpairs(model, kpoint, n: int, positions_av=None, method: str = "slepc", comm=None,
                      tol: float = 1e-10):
    """(energies float [n] eV ascending, vectors complex [n_basis, n]) of H(K) at ``positions_av``
    (default: the reference structure)."""
    pos = model.reference_positions if positions_av is None else positions_av
    if not 1 <= n <= model.n_basis:
        raise InputError(f"asked for {n} eigenpairs of a {model.n_basis}-dimensional Hamiltonian")
    if method == "dense":
        e, v = np.linalg.eigh(model.hamiltonian_dense(pos, kpoint))
        return e[:n], v[:, :n]
    if method != "slepc":
        raise InputError(f"method '{method}' is not one of: slepc, dense")
    from spia_mpi.parallel import stack
    from spia_mpi.parallel.mpi import self_comm
    PETSc, SLEPc = stack.petsc(), stack.slepc()
    comm = comm if comm is not None else self_comm()
    A = model.hamiltonian_petsc(pos, kpoint, comm)
    eps = SLEPc.EPS().create(comm=A.getComm())
    try:
        return _solve_lowest(eps, A, model, kpoint, n, tol, comm, PETSc, SLEPc)
    finally:                                   # also on a ConvergenceError: no leaked PETSc objects
        eps.destroy()
        A.destroy()


def _solve_lowest(eps, A, model, kpoint, n, tol, comm, PETSc, SLEPc):
    """Configure and run ``eps`` on ``A``; (energies [n] ascending, vectors [n_basis, n])."""
    eps.setOperators(A)
    eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
    eps.setWhichEigenpairs(SLEPc.EPS.Which.SMALLEST_REAL)
    eps.setDimensions(nev=n, ncv=max(2 * n + 10, 32) if model.n_basis > 2 * n + 10 else PETSc.DECIDE)
    eps.setTolerances(tol=tol, max_it=10000)
    eps.setOptionsPrefix("spia_bands_")
    eps.setFromOptions()
    eps.solve()
    if eps.getConverged() < n:
        raise ConvergenceError(f"SLEPc converged {eps.getConverged()} of {n} eigenpairs at K = {list(kpoint)}")
    x, _ = A.createVecs()
    r0, r1 = A.getOwnershipRange()
    vals, vecs = [], np.zeros((model.n_basis, n), dtype=complex)
    try:
        for i in range(n):
            vals.append(complex(eps.getEigenpair(i, x)).real)
            vecs[r0:r1, i] = x.getArray(readonly=True)
    finally:
        x.destroy()
    if comm.size > 1:
        vecs = comm.allreduce(vecs)
    order = np.argsort(vals)
    return np.array(vals)[order], vecs[:, order]


def fermi_level(energies, n_electrons_per_spin: float, temperature_k: float) -> float:
    """ε_F (eV) with Σ Fermi–Dirac occupations = N per spin over ``energies`` (eV, all bands
    and k, any shape); InputError if the states cannot hold that many electrons."""
    from scipy.optimize import brentq

    from spia_mpi import units
    e = np.asarray(energies, float).ravel()
    kt = units.KB_EV_PER_K * temperature_k

    def count(mu):
        x = np.clip((e - mu) / kt, -700, 700)
        return float(np.sum(1.0 / (np.exp(x) + 1.0))) - n_electrons_per_spin

    lo, hi = e.min() - 50 * kt - 1.0, e.max() + 50 * kt + 1.0
    if not count(lo) < 0 < count(hi):
        raise InputError(f"cannot place {n_electrons_per_spin} electrons per spin in {e.size} reference states")
    return brentq(count, lo, hi, xtol=1e-12)
