"""Supercells of a primitive cell and the folding of wavevectors.

Conventions: lattice vectors are the *rows* of a 3×3 array (Å). A supercell is
given by an integer matrix S (det S = M ≠ 0) with supercell lattice A = S @ a.
Wavevectors are in reduced coordinates of the reciprocal lattice they refer to:
``K`` of the supercell reciprocal lattice, ``k`` of the primitive one; the
Cartesian wavevector is k_frac @ (2π a⁻ᵀ).

* :func:`lattice_points` — the M primitive lattice vectors inside the supercell;
* :func:`folded_kpoints` — the M primitive k ≡ K modulo the supercell
  reciprocal lattice (k_frac = (K + n) @ S⁻ᵀ mod 1);
* :func:`build_supercell` — the supercell as :class:`ase.Atoms`, atoms ordered
  lattice point by lattice point, with the map back to primitive atoms.
"""
from __future__ import annotations

import numpy as np

from spia_mpi.errors import InputError


def as_supercell_matrix(matrix) -> np.ndarray:
    """Validate a supercell matrix: 3×3 integers with non-zero determinant."""
    S = np.asarray(matrix)
    if S.shape == (3,):
        S = np.diag(S)
    if S.shape != (3, 3):
        raise InputError(f"supercell matrix must be 3×3 (or 3 diagonal entries), got shape {S.shape}")
    if not np.all(np.equal(np.round(S), S)):
        raise InputError(f"supercell matrix must have integer entries, got {S.tolist()}")
    S = np.round(S).astype(int)
    if round(abs(np.linalg.det(S))) == 0:
        raise InputError(f"supercell matrix {S.tolist()} is singular")
    return S


def _adjugate(S: np.ndarray) -> np.ndarray:
    """Integer adjugate adj(S) = det(S) S⁻¹."""
    det = int(round(np.linalg.det(S)))
    return np.round(det * np.linalg.inv(S)).astype(np.int64)


def _group_closure(generators: np.ndarray, modulus: int) -> np.ndarray:
    """All sums of integer ``generators`` (rows) modulo ``modulus``, sorted, unique."""
    seen = {(0, 0, 0)}
    frontier = [np.zeros(3, dtype=np.int64)]
    gens = [g % modulus for g in np.asarray(generators, dtype=np.int64)]
    while frontier:
        nxt = []
        for v in frontier:
            for g in gens:
                w = (v + g) % modulus
                key = tuple(int(x) for x in w)
                if key not in seen:
                    seen.add(key)
                    nxt.append(w)
        frontier = nxt
    return np.array(sorted(seen), dtype=np.int64)


def lattice_points(matrix) -> np.ndarray:
    """The M = |det S| primitive lattice vectors n (integers, int [M, 3]) in the supercell.

    n ranges over Z³ modulo the supercell lattice Z³S; each n satisfies
    n @ S⁻¹ ∈ [0, 1)³ (reduced supercell coordinates), sorted by those.
    """
    S = as_supercell_matrix(matrix)
    M = abs(int(round(np.linalg.det(S))))
    adj = _adjugate(S)
    det = int(round(np.linalg.det(S)))
    # rows of S⁻¹ = adj/det generate the lattice points in supercell-reduced coords
    v = _group_closure(adj * np.sign(det), M)          # reduced coords × M, in [0, M)
    n = np.round(v @ S / M).astype(np.int64)
    assert n.shape[0] == M
    return n


def folded_kpoints(matrix, kpoint) -> np.ndarray:
    """Primitive wavevectors k ≡ K (mod supercell reciprocal lattice), float [M, 3].

    ``kpoint``: K in reduced coordinates of the supercell reciprocal lattice.
    Returns k in reduced coordinates of the primitive reciprocal lattice, wrapped
    into [0, 1), sorted lexicographically (a deterministic order). For every
    supercell lattice vector L, exp(ik·L) = exp(iK·L).
    """
    S = as_supercell_matrix(matrix)
    M = abs(int(round(np.linalg.det(S))))
    K = np.asarray(kpoint, dtype=float).reshape(3)
    adj = _adjugate(S)
    det = int(round(np.linalg.det(S)))
    # supercell reciprocal vectors in primitive reduced coords: rows of S⁻ᵀ = adjᵀ/det
    v = _group_closure(adj.T * np.sign(det), M)
    k = (K @ np.linalg.inv(S).T)[None, :] + v / M
    k = np.mod(k, 1.0)
    k[np.isclose(k, 1.0, atol=1e-12)] = 0.0
    order = np.lexsort((k[:, 2], k[:, 1], k[:, 0]))
    return k[order]


def build_supercell(primitive, matrix):
    """Supercell of ``primitive`` (ase.Atoms) for matrix S.

    Returns ``(atoms, lattice_index, primitive_index)``: the supercell
    :class:`ase.Atoms` (cell S @ a, atoms ordered lattice point by lattice
    point, primitive atoms in order inside each), and for each supercell atom
    the index into :func:`lattice_points` and into the primitive atoms.
    """
    from ase import Atoms
    S = as_supercell_matrix(matrix)
    a = np.asarray(primitive.cell[:], dtype=float)
    n = lattice_points(S)
    frac = primitive.get_scaled_positions(wrap=False)
    nat = len(primitive)
    pos = ((n[:, None, :] + frac[None, :, :]) @ a).reshape(-1, 3)
    numbers = np.tile(primitive.numbers, len(n))
    atoms = Atoms(numbers=numbers, positions=pos, cell=S @ a, pbc=True)
    if primitive.has("masses"):
        atoms.set_masses(np.tile(primitive.get_masses(), len(n)))
    lattice_index = np.repeat(np.arange(len(n)), nat)
    primitive_index = np.tile(np.arange(nat), len(n))
    return atoms, lattice_index, primitive_index
