"""Which rows of one K-point's subspace arrays a rank of a configuration group holds.

When the Bethe–Salpeter slices of a K-point are solved by a distributed LU over a group of
p ranks (:meth:`bse_parallel.BseParallel.by_rows`), the big n_s × n_s arrays of that K are kept
row-distributed over the group from the resolvents on: rank r holds the rows
``own = partition(n_s, p, r)`` of T(m), of their moment sums Σ T and Σ |T|², of Γ(m) and of W(m)
(the rows :func:`bse_parallel.bethe_salpeter_rows` solves), and reduces its rows' Fermi-surface
sums with the group's other ranks. T = Ĝ⁻¹U†(g − Ḡ)UĜ⁻¹ with U and Ĝ block-diagonal in the
primitive k, so the rows ``own`` of T need the rows of the resolvent g of every state whose k
also occurs among ``own`` (``needed``; equal to ``own`` with one state per k).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi.parallel.mpi import partition


@dataclass(frozen=True)
class GroupRows:
    """This rank's rows of one K-point's arrays over ``n_states`` subspace states.

    own     range: the rows of T, the moment sums, Γ and W (contiguous: ``partition``)
    needed  int [n_needed], increasing: the rows of g that the ``own`` rows of T need
    """

    own: range
    needed: np.ndarray
    n_states: int

    @classmethod
    def of(cls, k_index, size: int, rank: int) -> "GroupRows":
        """The rows of rank ``rank`` of a group of ``size`` ranks for states with primitive k ``k_index``
        (int [n_s])."""
        k = np.asarray(k_index)
        own = partition(k.size, size, rank)
        needed = np.flatnonzero(np.isin(k, k[own.start:own.stop]))
        return cls(own, needed, int(k.size))

    @property
    def first(self) -> int:
        """The index of the first own row (the row arrays start there)."""
        return self.own.start
