"""Electronic models: H(R) of a supercell in a basis that does not move with the ions.

Interface (:class:`ElectronicModel`), shared by every model:

* ``n_basis`` — dimension of the supercell Hamiltonian;
* ``n_electrons`` — electrons per supercell (both spins);
* ``supercell_matrix`` — S, supercell lattice A = S @ a (rows);
* ``hamiltonian_dense(positions_av, kpoint)`` → complex [n_basis, n_basis] (eV);
* ``hamiltonian_petsc(positions_av, kpoint, comm)`` → complex MPIAIJ PETSc Mat on
  ``comm``, each rank assembling its own rows (the same matrix);
* ``reference_states(kpoint, n_per_k)`` → :class:`ReferenceStates`: orthonormal
  Bloch states of the reference structure for every primitive k folded onto K.

``positions_av`` are the Cartesian positions (Å) of all supercell atoms for one
bead, float [n_atoms, 3]; ``kpoint`` is the supercell wavevector K in reduced
coordinates of the supercell reciprocal lattice. Bloch boundary condition:
ψ(r + L) = exp(iK·L) ψ(r) for supercell lattice vectors L, so
H_ij(K) = Σ_L h(R_i − R_j − L) exp(iK·L).

Models here:

* :class:`TightBindingModel` — orbitals on sites (one per atom), hoppings
  t(|d|) (function or table) on the reference positions, on-site energies that
  may depend linearly on the displacement (Holstein: ε_i = ε0 + g (R_i − R_i⁰)·ê);
  only for non-diffusing ions (atom i stays attached to site i).
* :func:`holstein_cubic` — the Holstein model of METHOD.md §8 on a simple cubic
  lattice, ready to use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class ReferenceStates:
    """Bloch states of the reference structure, as columns in the supercell basis.

    vectors      complex [n_basis, n_states], orthonormal columns
    k_index      int [n_states], index into ``kpoints_frac``
    band_index   int [n_states], band at that k (0 = lowest)
    kpoints_frac float [M, 3], primitive k (reduced coordinates of the primitive reciprocal lattice)
    energies     float [n_states], reference band energies (eV)
    """

    vectors: np.ndarray
    k_index: np.ndarray
    band_index: np.ndarray
    kpoints_frac: np.ndarray
    energies: np.ndarray

    @property
    def n_states(self) -> int:
        return self.vectors.shape[1]


class ElectronicModel:
    """Base class; see the module docstring for the interface."""

    #: True when the basis functions move with the ions (overlap S ≠ 1, projections Q ≠ P: GPAW)
    moving_basis = False

    n_basis: int
    n_electrons: float
    supercell_matrix: np.ndarray

    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        raise NotImplementedError

    def hamiltonian_petsc(self, positions_av, kpoint, comm):
        """Default: assemble the rows of the dense matrix owned by this rank (sparse)."""
        return dense_rows_to_petsc(self, positions_av, kpoint, comm)

    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        raise NotImplementedError

    def projected_problem_dense(self, positions_av, kpoint, p):
        """(H, S, Q) with g = Q†[zS − H]⁻¹Q for reference vectors ``p``; here S = 1 (None), Q = P.

        Models whose basis moves with the ions (GPAW) return their overlap and the
        projection of ``p`` into the basis at these positions."""
        return self.hamiltonian_dense(positions_av, kpoint), None, p

    def projected_problem_petsc(self, positions_av, kpoint, p, comm):
        """As :meth:`projected_problem_dense` with PETSc matrices on ``comm``."""
        return self.hamiltonian_petsc(positions_av, kpoint, comm), None, p


def dense_rows_to_petsc(model, positions_av, kpoint, comm, n_local=None):
    """A complex MPIAIJ Mat on ``comm`` holding ``model``'s Hamiltonian (sparse rows);
    ``n_local``: this rank's number of rows (and columns), default PETSc's split."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    n = model.n_basis
    rows_fn = getattr(model, "hamiltonian_rows", None)
    A = PETSc.Mat().create(comm=PETSc.Comm(comm))
    local = PETSc.DECIDE if n_local is None else n_local
    A.setSizes([[local, n], [local, n]])
    A.setType(PETSc.Mat.Type.AIJ)
    A.setUp()
    r0, r1 = A.getOwnershipRange()
    if rows_fn is not None:
        indptr, indices, data = rows_fn(positions_av, kpoint, r0, r1)
    else:
        from scipy.sparse import csr_matrix
        block = csr_matrix(model.hamiltonian_dense(positions_av, kpoint)[r0:r1])
        indptr, indices, data = block.indptr, block.indices, block.data
    A.destroy()
    A = PETSc.Mat().createAIJ([[r1 - r0, n], [r1 - r0, n]],
                              csr=(indptr.astype(PETSc.IntType), indices.astype(PETSc.IntType),
                                   data.astype(PETSc.ScalarType)), comm=PETSc.Comm(comm))
    A.assemble()
    return A
