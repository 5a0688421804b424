"""Tight-binding models on sites that follow the ions, and the Holstein model.

* :class:`TightBindingModel` — orbitals on sites (one per atom), hoppings
  t(|d|) (function or table) on the reference positions, on-site energies that
  may depend linearly on the displacement (Holstein: ε_i = ε0 + g (R_i − R_i⁰)·ê);
  only for non-diffusing ions (atom i stays attached to site i).
* :func:`holstein_cubic` — the Holstein model of METHOD.md §8 on a simple cubic
  lattice, ready to use.
"""
from __future__ import annotations

import math

import numpy as np

from spia_mpi.errors import InputError
from spia_mpi.lattice import supercells
from spia_mpi.models.base import ElectronicModel, ReferenceStates


class TightBindingModel(ElectronicModel):
    """One orbital per atom; hoppings on reference bonds; Holstein on-site coupling.

    Parameters
    ----------
    primitive : ase.Atoms
        Reference (equilibrium) primitive cell, positions in Å.
    supercell_matrix : int [3, 3]
    hopping : callable(d_Å) -> eV, or dict {rounded distance Å: eV}
        Hopping t(|d|) between orbitals a distance d apart in the reference
        structure (the Hamiltonian element is −t... no sign is imposed: the
        element is exactly ``hopping(d)``).
    cutoff : float (Å)
        Bonds longer than this are ignored.
    onsite : float or float [n_primitive_atoms] (eV)
    coupling : float (eV/Å)
        Holstein coupling g: ε_i = onsite + g (R_i − R_i⁰)·``axis``.
    axis : float [3]
        Unit vector ê of the displacement component that couples.
    electrons_per_site : float
        Filling, both spins (1 = half filling).
    """

    def __init__(self, primitive, supercell_matrix, hopping, cutoff: float, onsite=0.0,
                 coupling: float = 0.0, axis=(0.0, 0.0, 1.0), electrons_per_site: float = 1.0):
        self.primitive = primitive.copy()
        self.supercell_matrix = supercells.as_supercell_matrix(supercell_matrix)
        self.atoms, self.lattice_index, self.primitive_index = supercells.build_supercell(
            self.primitive, self.supercell_matrix)
        self.reference_positions = self.atoms.get_positions()
        self.n_basis = len(self.atoms)
        if cutoff <= 0:
            raise InputError(f"hopping cutoff {cutoff} Å must be positive")
        self.cutoff = float(cutoff)
        if isinstance(hopping, dict):
            table = {round(float(k), 6): float(v) for k, v in hopping.items()}
            self.hopping = lambda d: table.get(round(float(d), 6), 0.0)
        else:
            self.hopping = hopping
        onsite = np.broadcast_to(np.asarray(onsite, dtype=float), (len(self.primitive),))
        self.onsite = onsite[self.primitive_index]
        self.coupling = float(coupling)
        ax = np.asarray(axis, dtype=float)
        self.axis = ax / np.linalg.norm(ax)
        if not 0 < electrons_per_site <= 2:
            raise InputError(f"electrons_per_site = {electrons_per_site} must be in (0, 2]")
        self.n_electrons = float(electrons_per_site) * self.n_basis
        # primitive bonds (reference structure), mapped onto the supercell: O(M · bonds)
        self._prim_bonds = self._find_bonds(self.primitive, self.cutoff)
        self._bonds = self._supercell_bonds()
        self._bi = np.array([b[0] for b in self._bonds], dtype=np.int64)
        self._bj = np.array([b[1] for b in self._bonds], dtype=np.int64)
        self._bimg = np.array([b[2] for b in self._bonds], dtype=float).reshape(-1, 3)
        self._bt = np.array([b[3] for b in self._bonds], dtype=float)

    def _find_bonds(self, atoms, cutoff):
        """(i, j, n_L [3] ints, t) with R_i − R_j − L within cutoff, L = n_L @ cell."""
        cell = np.asarray(atoms.cell[:], float)
        pos = atoms.get_positions()
        # images needed: enough cells along each direction to reach the cutoff
        inv = np.linalg.inv(cell)
        reach = np.ceil(cutoff * np.linalg.norm(inv, axis=0)).astype(int) + 1
        rng = [np.arange(-r, r + 1) for r in reach]
        images = np.array(np.meshgrid(*rng, indexing="ij")).reshape(3, -1).T
        bonds = []
        for nL in images:
            L = nL @ cell
            d = pos[:, None, :] - pos[None, :, :] - L[None, None, :]
            dist = np.linalg.norm(d, axis=-1)
            ii, jj = np.nonzero((dist < cutoff) & (dist > 1e-8))
            for i, j in zip(ii, jj):
                t = self.hopping(dist[i, j])
                if t != 0.0:
                    bonds.append((int(i), int(j), nL.astype(int), float(t)))
        return bonds

    def _supercell_bonds(self):
        """Bonds (i, j, image, t) of the supercell from the primitive bonds.

        Atom i = (lattice point n, primitive atom p); its neighbour is primitive atom
        q at lattice point n + n_L, which is supercell atom j at n_rep plus the
        supercell lattice vector ``image`` (supercell reduced coordinates).
        """
        S = self.supercell_matrix
        sinv = np.linalg.inv(S)
        npts = supercells.lattice_points(S)
        index = {tuple(v): k for k, v in enumerate(npts)}
        nprim = len(self.primitive)
        bonds = []
        for k, n in enumerate(npts):
            for p, q, nL, t in self._prim_bonds:
                target = n + nL
                image = np.floor(target @ sinv + 1e-9).astype(int)
                rep = tuple(np.round(target - image @ S).astype(int))
                j = index[rep] * nprim + q
                bonds.append((k * nprim + p, j, image, t))
        return bonds

    def onsite_energies(self, positions_av) -> np.ndarray:
        """ε_i = onsite + g (R_i − R_i⁰)·ê (eV), float [n_basis]; u taken by minimum image."""
        pos = np.asarray(positions_av, dtype=float)
        if pos.shape != (self.n_basis, 3):
            raise InputError(f"positions have shape {pos.shape}, the model has {self.n_basis} atoms")
        u = pos - self.reference_positions
        cell = np.asarray(self.atoms.cell[:], float)
        frac = u @ np.linalg.inv(cell)
        u = (frac - np.round(frac)) @ cell
        return self.onsite + self.coupling * (u @ self.axis)

    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        K = np.asarray(kpoint, dtype=float).reshape(3)
        H = np.zeros((self.n_basis, self.n_basis), dtype=complex)
        np.add.at(H, (self._bi, self._bj), self._bt * np.exp(2j * np.pi * (self._bimg @ K)))
        H[np.diag_indices(self.n_basis)] += self.onsite_energies(positions_av)
        return H

    def hamiltonian_rows(self, positions_av, kpoint, r0, r1):
        """CSR arrays (indptr, indices, data) of rows r0 … r1−1 of H(K)."""
        from scipy.sparse import coo_matrix
        K = np.asarray(kpoint, dtype=float).reshape(3)
        eps = self.onsite_energies(positions_av)
        sel = (self._bi >= r0) & (self._bi < r1)
        ii = np.concatenate([self._bi[sel] - r0, np.arange(r1 - r0)])
        jj = np.concatenate([self._bj[sel], np.arange(r0, r1)])
        vv = np.concatenate([self._bt[sel] * np.exp(2j * np.pi * (self._bimg[sel] @ K)), eps[r0:r1]])
        m = coo_matrix((vv.astype(complex), (ii, jj)), shape=(r1 - r0, self.n_basis)).tocsr()
        m.sum_duplicates()
        m.sort_indices()
        return m.indptr, m.indices, m.data

    def primitive_hamiltonian(self, kpoint_prim) -> np.ndarray:
        """Reference Bloch Hamiltonian of the primitive cell at k (reduced), [n_prim, n_prim].

        Basis: Bloch sums with the phase exp(ik·R_s) of each site included, so the
        supercell vector of band n is ψ(i) = exp(ik·R_i) u_n(s_i)/√M.
        """
        k = np.asarray(kpoint_prim, dtype=float)
        a = np.asarray(self.primitive.cell[:], float)
        kc = 2 * np.pi * k @ np.linalg.inv(a).T
        pos = self.primitive.get_positions()
        n = len(self.primitive)
        H = np.zeros((n, n), dtype=complex)
        for i, j, nL, t in self._prim_bonds:
            d = pos[i] - pos[j] - nL @ a
            H[i, j] += t * np.exp(-1j * kc @ d)
        onsite = np.broadcast_to(self.onsite[:n], (n,))
        H[np.diag_indices(n)] += onsite
        return H

    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        nprim = len(self.primitive)
        if not 1 <= n_per_k <= nprim:
            raise InputError(f"states per k = {n_per_k}: this model has {nprim} band(s) per k")
        kpts = supercells.folded_kpoints(self.supercell_matrix, kpoint)
        a = np.asarray(self.primitive.cell[:], float)
        M = len(kpts)
        vecs, kidx, bidx, ens = [], [], [], []
        R = self.reference_positions
        for ik, k in enumerate(kpts):
            e, u = np.linalg.eigh(self.primitive_hamiltonian(k))
            kc = 2 * np.pi * k @ np.linalg.inv(a).T
            phase = np.exp(1j * R @ kc) / math.sqrt(M)
            for nb in range(n_per_k):
                vecs.append(phase * u[self.primitive_index, nb])
                kidx.append(ik)
                bidx.append(nb)
                ens.append(e[nb])
        return ReferenceStates(np.array(vecs).T, np.array(kidx), np.array(bidx), kpts, np.array(ens))


def holstein_cubic(supercell_matrix, lattice_constant: float = 1.0, hopping: float = 1.0,
                   coupling: float = 0.1, electrons_per_site: float = 1.0, mass_amu: float = 1.0,
                   axis=(0.0, 0.0, 1.0)) -> TightBindingModel:
    """Holstein model on a simple cubic lattice (METHOD.md §8).

    One orbital per site, nearest-neighbour hopping element −t (so the band is
    ε_k = −2t Σ_α cos(k_α a)), on-site energy g·u_z. ``lattice_constant`` in Å,
    ``hopping`` t and the coupling g in eV and eV/Å; ``mass_amu`` is stored on the
    atoms (used by samplers).
    """
    from ase import Atoms
    if lattice_constant <= 0:
        raise InputError(f"lattice constant {lattice_constant} Å must be positive")
    prim = Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * lattice_constant, pbc=True)
    prim.set_masses([mass_amu])
    a = lattice_constant
    return TightBindingModel(prim, supercell_matrix,
                             hopping=lambda d: -hopping if abs(d - a) < 1e-6 * a else 0.0,
                             cutoff=1.01 * a, onsite=0.0, coupling=coupling, axis=axis,
                             electrons_per_site=electrons_per_site)
