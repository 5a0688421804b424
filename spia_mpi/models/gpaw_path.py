"""The GPAW model at the supercell wavevectors of a k-path (``spia_mpi spectral`` with kind = gpaw).

:class:`spia_mpi.models.gpaw.GpawModel` gives H, S and the cross overlap X only at the K of
its SCF k-grid; a band path needs them at arbitrary K. :class:`GpawPathModel` wraps a
prepared GpawModel and asks it for the matrices of one configuration–bead at one K
(:meth:`GpawModel.matrices_at`: the configuration's density, scf or frozen, kept fixed and
GPAW's Hamiltonian built at that K). Everything is in the LCAO basis of the model:

* H(R, K) (eV) and S(R, K) of the basis at R, generalized eigenproblem H c = ε S c with
  c† S(R) c = 1;
* X(R, K) = ⟨Φ̃(R⁽⁰⁾)|T̂†T̂|Φ̃(R)⟩, the PAW cross overlap into the common pseudo space of the
  reference structure R⁽⁰⁾ (:mod:`spia_mpi.models.paw_overlap`), X(R⁽⁰⁾) = S(R⁽⁰⁾);
* S⁰(K) = S(R⁽⁰⁾, K) and the primitive Bloch sums B_k (:meth:`GpawModel.bloch_sums`) that
  span the reference states of primitive wavevector k.

The last (positions, K) asked for is kept, so the eigenpairs, the unfolding weights and the
Green's route of one configuration–bead cost one GPAW evaluation.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from spia_mpi.lattice import supercells
from spia_mpi.models.base import ElectronicModel, ReferenceStates


class GpawPathModel(ElectronicModel):
    """A prepared :class:`GpawModel` (``base``) evaluated at any supercell K (reduced)."""

    def __init__(self, base):
        self.base = base
        self.primitive = base.primitive
        self.supercell_matrix = base.supercell_matrix
        self.reference_positions = base.reference_positions
        self.n_basis = base.n_basis
        self.n_electrons = base.n_electrons
        self.fermi_level_ev = base.fermi_level_ev
        self._last = (None, None)
        self._reference = {}

    def matrices(self, positions_av, kpoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(H eV, S, X) of one configuration–bead at K, complex [n_basis, n_basis] each (at the
        reference positions the cached reference matrices, X = S⁰)."""
        pos = np.ascontiguousarray(positions_av, dtype=float)
        K = np.asarray(kpoint, float).reshape(3)
        if np.array_equal(pos, self.reference_positions):
            h, s = self.reference_matrices(K)
            return h, s, s
        key = pos.tobytes() + K.tobytes()
        if self._last[0] != key:
            h, s, x = self.base.matrices_at(pos, K[None, :])
            self._last = (key, (h[0], s[0], x[0]))
        return self._last[1]

    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        return self.matrices(positions_av, kpoint)[0]

    def overlap_dense(self, positions_av, kpoint) -> np.ndarray:
        return self.matrices(positions_av, kpoint)[1]

    def cross_overlap(self, positions_av, kpoint) -> np.ndarray:
        """X(R, K): rows the reference basis at R⁽⁰⁾, columns the basis at R."""
        return self.matrices(positions_av, kpoint)[2]

    def projected_problem_dense(self, positions_av, kpoint, p):
        """(H, S, Q = X†p): the common-pseudo-space resolvent is Q†[zS − H]⁻¹Q."""
        h, s, x = self.matrices(positions_av, kpoint)
        return h, s, x.conj().T @ p

    def projected_problem_petsc(self, positions_av, kpoint, p, comm):
        """As :meth:`projected_problem_dense`, H and S as PETSc AIJ matrices on ``comm``."""
        from spia_mpi.models.gpaw import dense_to_aij
        h, s, q = self.projected_problem_dense(positions_av, kpoint, p)
        return dense_to_aij(h, comm), dense_to_aij(s, comm), q

    def reference_matrices(self, kpoint) -> tuple[np.ndarray, np.ndarray]:
        """(H⁰ eV, S⁰) of the reference structure at K (cached per K)."""
        K = tuple(np.round(np.asarray(kpoint, float).reshape(3), 12))
        if K not in self._reference:
            h, s, _ = self.base.matrices_at(self.reference_positions, np.array([K]))
            self._reference[K] = (h[0], s[0])
        return self._reference[K]

    def bloch_sums(self, kpoint_prim) -> np.ndarray:
        """B_k complex [n_basis, n_orbitals per primitive cell] (see :meth:`GpawModel.bloch_sums`)."""
        return self.base.bloch_sums(kpoint_prim)

    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        """The lowest ``n_per_k`` reference states of every primitive k folded onto K: eigenpairs of
        (B_k†H⁰B_k, B_k†S⁰B_k), as supercell LCAO coefficients with c†S⁰c = 1."""
        from spia_mpi.errors import InputError
        n_orb = self.bloch_sums(np.zeros(3)).shape[1]
        if not 1 <= n_per_k <= n_orb:
            raise InputError(f"states per k = {n_per_k}: the GPAW primitive cell has {n_orb} orbitals")
        h, s = self.reference_matrices(kpoint)
        kpts = supercells.folded_kpoints(self.supercell_matrix, np.asarray(kpoint, float))
        vecs, ens, k_index, band = [], [], [], []
        for j, k in enumerate(kpts):
            b = self.bloch_sums(k)
            e, u = eigh(b.conj().T @ h @ b, b.conj().T @ s @ b)
            vecs.append(b @ u[:, :n_per_k])
            ens.append(e[:n_per_k])
            k_index += [j] * n_per_k
            band += list(range(n_per_k))
        return ReferenceStates(np.concatenate(vecs, axis=1), np.array(k_index), np.array(band), kpts,
                               np.concatenate(ens))
