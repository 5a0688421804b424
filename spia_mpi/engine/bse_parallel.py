"""The Bethe–Salpeter equation over the MPI ranks of a communicator.

After the FFT over m, every bead slice b is an independent n_s × n_s linear system
(:func:`spia.bse_slice`). This layer, which receives its communicator explicitly, shares
that work over the ranks of ``comm`` (in the workflow: a configuration group,
``spia.ranks_per_group`` ranks) in one of two ways:

* **by slices** (n_s < ``distributed_min_states``): rank r solves the slices
  ``partition(N_b, size, r)`` serially (any N_b, also N_b < size: ranks without a slice wait);
  the rank holding Γ(m) sends each rank its slices and collects W(b);
* **by rows** (n_s ≥ ``distributed_min_states``): every slice is one distributed LU over all
  ranks of ``comm`` (PETSc, ScaLAPACK or MUMPS), in the row form (1 − Γ D) W = Γ of the slice
  equation, so rank r needs only its rows ``partition(n_s, size, r)`` of Γ(m) and produces the
  same rows of W(m) (the FFTs over m act row by row): :func:`bethe_salpeter_rows`, which never
  forms Γ or W whole on one rank. The workflow then keeps every big array of that K-point
  row-distributed over the group (:mod:`spia_mpi.engine.grouprows`).

Both give W(m) equal to the serial :func:`spia.bethe_salpeter` to round-off
(tests/test_bse_distributed.py). Units: Γ, W in eV; |Ḡ|² in 1/eV²; β in 1/eV.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from spia_mpi.engine import spia
from spia_mpi.errors import InputError
from spia_mpi.parallel.mpi import agree_on_failure, partition

logger = logging.getLogger(__name__)

#: PETSc packages for the distributed LU of one slice (MATSOLVERSCALAPACK on a MATSCALAPACK
#: copy, or MATSOLVERMUMPS on an MPIAIJ copy holding every entry)
PACKAGES = ("scalapack", "mumps")

_TAG = 7301          # point-to-point messages of this module (completed before each call returns)


@dataclass(frozen=True)
class BseParallel:
    """How the slices are solved: ``solver`` — the serial slice solver ('dense' or 'petsc');
    ``distributed_min_states`` — slices of at least this many states are solved by a distributed
    LU over the ranks (when there are several); ``package`` — that LU's PETSc package."""

    solver: str = "dense"
    distributed_min_states: int = 4096
    package: str = "scalapack"

    def check(self):
        spia.check_bse_solver(self.solver)
        if self.package not in PACKAGES:
            raise InputError(f"distributed Bethe–Salpeter package '{self.package}' is not one of: "
                             f"{', '.join(PACKAGES)}")
        if self.distributed_min_states < 1:
            raise InputError(f"spia.bse_distributed_min_states = {self.distributed_min_states} must be ≥ 1")

    def by_rows(self, n_states: int, size: int) -> bool:
        """Whether a slice of ``n_states`` on ``size`` ranks is solved by a distributed LU."""
        return size > 1 and n_states >= self.distributed_min_states


def bethe_salpeter_on(comm, gamma_mss, gbar_abs2, beta: float, how: BseParallel = BseParallel(),
                      root: int = 0):
    """W(m) of the Γ(m) held by rank ``root`` of ``comm``, its bead slices shared over the ranks of
    ``comm`` (whatever n_s: a slice large enough for a distributed LU is the row layout's,
    :func:`bethe_salpeter_rows`); collective over ``comm``.

    ``gamma_mss``: real or complex [N_b, n_s, n_s] (eV) on ``root`` (ignored elsewhere); None on
    ``root`` makes every rank return None at once (the caller failed before the solve and
    raises its own error). ``gbar_abs2``: float [n_s] |Ḡ_s|² (1/eV², taken from ``root``).
    Returns W(m), complex [N_b, n_s, n_s] (eV), on ``root`` and None on the other ranks.
    ``comm`` None or of one rank: :func:`spia.bethe_salpeter`.
    """
    how.check()
    if comm is None or comm.size == 1:
        return None if gamma_mss is None else spia.bethe_salpeter(gamma_mss, gbar_abs2, beta, how.solver)
    head = None
    if comm.rank == root and gamma_mss is not None:
        head = (gamma_mss.shape, np.asarray(gbar_abs2, float))
    head = comm.bcast(head, root=root)
    if head is None:
        return None
    (n_b, n, _), abs2 = head
    return _by_slices(comm, gamma_mss, abs2 / beta, n_b, n, how.solver, root)


def bethe_salpeter_rows(comm, gamma_rows, gbar_abs2, beta: float, package: str = "scalapack"):
    """This rank's rows of W(m) from its rows of Γ(m); collective over ``comm``.

    ``gamma_rows``: complex [N_b, n_rows, n_s] (eV), the rows ``partition(n_s, comm.size,
    comm.rank)`` of Γ(m) for every m; ``gbar_abs2``: float [n_s] (1/eV², the same on every
    rank). Returns the same rows of W(m), complex [N_b, n_rows, n_s] (eV). No rank holds more
    than its rows (plus PETSc's copies of its part of one slice).
    """
    if package not in PACKAGES:
        raise InputError(f"distributed Bethe–Salpeter package '{package}' is not one of: {', '.join(PACKAGES)}")
    n = gamma_rows.shape[2]
    rows = partition(n, comm.size, comm.rank)
    if gamma_rows.shape[1] != len(rows):
        raise ValueError(f"rank {comm.rank} holds {gamma_rows.shape[1]} rows of Γ, expected {len(rows)}")
    return _rows_solve(comm, gamma_rows, rows.start, np.asarray(gbar_abs2, float) / beta, package)


def _rows_solve(comm, gam_rows, first_row: int, d, package: str) -> np.ndarray:
    """W(m) rows from Γ(m) rows (the FFTs over m are row by row; one distributed LU per slice)."""
    gam_b = spia.bead_slices(gam_rows)
    n_b = gam_b.shape[0]
    for b in range(n_b):
        t0 = time.perf_counter()
        gam_b[b] = petsc_distributed_solve(comm, spia.bse_rows_matrix(gam_b[b], first_row, d), gam_b[b], package)
        if comm.rank == 0:
            logger.info("Bethe–Salpeter slice %d/%d: %d states, distributed LU (%s) on %d ranks, %.1f s",
                        b + 1, n_b, d.size, package, comm.size, time.perf_counter() - t0)
    return spia.from_bead_slices(gam_b)


def petsc_distributed_solve(comm, a_rows: np.ndarray, rhs_rows: np.ndarray, package: str = "scalapack"):
    """This rank's rows of X with A X = RHS by PETSc's distributed LU over ``comm`` (collective).

    ``a_rows``: complex [n_rows, n], ``rhs_rows``: complex [n_rows, k]: the rows
    ``partition(n, comm.size, comm.rank)`` of A and RHS. Returns complex [n_rows, k].
    ``package``: 'scalapack' (A and RHS copied to MATSCALAPACK, block-cyclic) or 'mumps'
    (A copied to MPIAIJ with every entry stored): :func:`spia_mpi.engine.direct.solve_dense_rows`,
    the resolvent's direct solver (same packages, same MUMPS settings).
    """
    from spia_mpi.engine.direct import solve_dense_rows
    return solve_dense_rows(comm, a_rows, rhs_rows, package)


def _by_slices(comm, gamma_mss, d, n_b: int, n: int, solver: str, root: int):
    """Rank r solves the slices partition(N_b, size, r); W(m) on ``root``."""
    mine = partition(n_b, comm.size, comm.rank)
    if comm.rank == root:
        slices = spia.bead_slices(gamma_mss)           # W(b) replaces Γ(b) in place below
        for r in range(comm.size):
            part = partition(n_b, comm.size, r)
            if r != root and len(part):
                comm.Send(np.ascontiguousarray(slices[part.start:part.stop]), dest=r, tag=_TAG)
        local = slices[mine.start:mine.stop]
    else:
        local = np.empty((len(mine), n, n), dtype=complex)
        if len(mine):
            comm.Recv(local, source=root, tag=_TAG)
    with agree_on_failure(comm, "the Bethe–Salpeter slices"):
        for i in range(len(mine)):
            local[i] = spia.bse_slice(local[i], d, solver)
    if comm.rank != root:
        if len(mine):
            comm.Send(local, dest=root, tag=_TAG + 1)
        return None
    for r in range(comm.size):
        part = partition(n_b, comm.size, r)
        if r != root and len(part):
            buf = np.empty((len(part), n, n), dtype=complex)
            comm.Recv(buf, source=r, tag=_TAG + 1)
            slices[part.start:part.stop] = buf
    return spia.from_bead_slices(slices)
