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

from dataclasses import dataclass

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


def fold_kpoint(matrix, kpoint):
    """Primitive k (reduced, primitive reciprocal) → (K, G): K in supercell reduced
    coordinates wrapped into [0, 1), and the integer supercell reciprocal vector G
    (supercell reduced coordinates) with k·S = K + G, i.e. k = (K + G) S⁻ᵀ."""
    S = as_supercell_matrix(matrix)
    x = np.asarray(kpoint, float) @ S.T
    G = np.floor(x + 1e-9).astype(int)
    K = x - G
    K[np.isclose(K, 1.0, atol=1e-9)] = 0.0
    return K, G


def supercell_kgrid(matrix, kmesh) -> np.ndarray:
    """The supercell K-points (reduced, unique, sorted) whose folded primitive k cover the
    Γ-centred primitive grid ``kmesh`` exactly once: float [n_K, 3]."""
    S = as_supercell_matrix(matrix)
    mesh = np.asarray(kmesh, int)
    g = np.array(np.meshgrid(*[np.arange(n) for n in mesh], indexing="ij")).reshape(3, -1).T / mesh
    Ks = np.array([fold_kpoint(S, k)[0] for k in g])
    Ks = np.round(Ks, 10) % 1.0
    uniq = np.unique(Ks, axis=0)
    return uniq


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


def species_grouped(atoms):
    """The atoms reordered with each species in one contiguous run (the VASP POSCAR convention),
    species in order of first appearance, atoms of a species in their original order.

    ``build_supercell`` orders atoms lattice point by lattice point (the models' order); a
    trajectory computed from the grouped file comes back in the grouped order, and
    :func:`spia_mpi.ions.atomorder.to_model_order` maps it back by position when `run` reads it.
    """
    numbers = np.asarray(atoms.numbers)
    first = {z: i for i, z in reversed(list(enumerate(numbers)))}
    return atoms[np.argsort([first[z] for z in numbers], kind="stable")]


# --------------------------------------------------------------------------
# q-grids, symmetry and minimal commensurate supercells
# (Lloyd-Williams & Monserrat, PRB 92, 184301 (2015))
# --------------------------------------------------------------------------

def spglib_cell(atoms):
    """(lattice, scaled positions, numbers) for spglib."""
    return (np.asarray(atoms.cell[:], float), atoms.get_scaled_positions(), atoms.numbers)


def primitive_cell(atoms, symprec: float = 1e-4):
    """The primitive cell of ``atoms`` found by spglib (``standardize_cell(to_primitive=True,
    no_idealize=True)``: lattice and positions as found, not symmetrised), as ASE Atoms with
    periodic boundaries; ``atoms`` itself (unchanged) if it is primitive already."""
    import spglib
    from ase import Atoms
    found = spglib.standardize_cell(spglib_cell(atoms), to_primitive=True, no_idealize=True, symprec=symprec)
    if found is None:
        raise InputError(f"spglib could not find the symmetry of the structure (symprec = {symprec})")
    lattice, scaled, numbers = found
    if len(numbers) == len(atoms):
        return atoms
    return Atoms(numbers=numbers, scaled_positions=scaled, cell=lattice, pbc=True)


def check_mesh(mesh) -> np.ndarray:
    mesh = np.asarray(mesh)
    if mesh.shape != (3,) or not np.all(np.equal(np.round(mesh), mesh)) or np.any(mesh < 1):
        raise InputError(f"q-grid must be three positive integers, got {list(np.ravel(mesh))}")
    return mesh.astype(int)


@dataclass(frozen=True)
class QGrid:
    """A Γ-centred q-grid n1×n2×n3 reduced by symmetry.

    qpoints     float [N, 3]  every grid point (reduced, in [0, 1))
    irreducible int [n_irr]   grid indices of the irreducible representatives
    weights     int [n_irr]   star sizes (sum = N)
    rep         int [N]       index into ``irreducible`` of each grid point's representative
    rotation    int [N, 3, 3] real-space reduced rotation R with q ≡ ±(q_rep R⁻¹)
    time_reversal bool [N]    True where the minus sign (time reversal) is needed
    spacegroup  str
    """

    mesh: np.ndarray
    qpoints: np.ndarray
    irreducible: np.ndarray
    weights: np.ndarray
    rep: np.ndarray
    rotation: np.ndarray
    time_reversal: np.ndarray
    spacegroup: str

    @property
    def irreducible_qpoints(self) -> np.ndarray:
        return self.qpoints[self.irreducible]


def _wrap(q):
    q = np.mod(q, 1.0)
    q[np.isclose(q, 1.0, atol=1e-9)] = 0.0
    q[np.isclose(q, 0.0, atol=1e-9)] = 0.0
    return q


def _grid_index(q, mesh):
    g = np.round(_wrap(q) * mesh).astype(int) % mesh
    return (g[..., 0] * mesh[1] + g[..., 1]) * mesh[2] + g[..., 2]


def irreducible_qgrid(atoms, mesh, symprec: float = 1e-5, time_reversal: bool = True) -> QGrid:
    """Irreducible q-points of a Γ-centred grid, with the star map (spglib symmetry)."""
    import spglib
    mesh = check_mesh(mesh)
    cell = spglib_cell(atoms)
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        raise InputError(f"spglib could not find the symmetry of the structure (symprec = {symprec})")
    sg = spglib.get_spacegroup(cell, symprec=symprec) or "?"
    rots = np.unique(sym["rotations"], axis=0)
    g = np.array(np.meshgrid(*[np.arange(n) for n in mesh], indexing="ij")).reshape(3, -1).T
    q = g / mesh
    N = q.shape[0]
    rep = -np.ones(N, dtype=int)
    rot = np.zeros((N, 3, 3), dtype=int)
    trev = np.zeros(N, dtype=bool)
    irr = []
    # reciprocal reduced coordinates transform as row vectors q' = q R⁻¹
    rinv = [np.round(np.linalg.inv(R)).astype(int) for R in rots]
    for i in range(N):
        if rep[i] >= 0:
            continue
        irr.append(i)
        for R, Ri in zip(rots, rinv):
            for sign in ((1, -1) if time_reversal else (1,)):
                qr = sign * (q[i] @ Ri)
                if not np.allclose(qr * mesh, np.round(qr * mesh), atol=1e-8):
                    continue          # this operation does not map the grid onto itself
                j = int(_grid_index(qr, mesh))
                if rep[j] < 0:
                    rep[j] = len(irr) - 1
                    rot[j] = R
                    trev[j] = sign < 0
    irr = np.array(irr)
    weights = np.bincount(rep, minlength=irr.size)
    return QGrid(mesh, q, irr, weights, rep, rot, trev, sg)


def hnf_matrices(det: int):
    """All lower-triangular Hermite normal forms with determinant ``det`` (int [3, 3])."""
    out = []
    for a in range(1, det + 1):
        if det % a:
            continue
        for c in range(1, det // a + 1):
            if (det // a) % c:
                continue
            f = det // (a * c)
            # off-diagonal entries reduced modulo the diagonal entry of their column
            for b in range(a):
                for d in range(a):
                    for e in range(c):
                        out.append(np.array([[a, 0, 0], [b, c, 0], [d, e, f]]))
    return out


def commensurate(matrix, q, tol: float = 1e-8) -> bool:
    """True when exp(iq·L) = 1 for every lattice vector L of the supercell S (S @ q ∈ Z³)."""
    x = np.asarray(matrix) @ np.asarray(q, float)
    return bool(np.all(np.abs(x - np.round(x)) < tol))


def minimal_size(q, mesh) -> int:
    """Smallest supercell size for q = (m1/n1, m2/n2, m3/n3): lcm of the reduced denominators."""
    from fractions import Fraction
    from math import lcm
    dens = [Fraction(int(round(x * n)), int(n)).denominator for x, n in zip(_wrap(np.asarray(q, float)), mesh)]
    return lcm(*dens)


@dataclass(frozen=True)
class Supercell:
    """One supercell of a coverage: matrix S (HNF), size M, covered irreducible q (indices).

    ``qpoints[i]`` is the member of the star of irreducible q number ``covers[i]`` that is
    commensurate with S (exp(2πi q·L) = 1 for every supercell vector L, S·q ∈ Z³): the q
    this supercell actually samples. ``representatives[i]`` is the irreducible
    representative of that star (as in :class:`QGrid`), which need not be commensurate.
    """

    matrix: np.ndarray
    size: int
    covers: tuple
    qpoints: np.ndarray          # float [n, 3] commensurate star members (reduced, in [0, 1))
    reduced_cell: np.ndarray     # Minkowski-reduced lattice vectors (Å), rows
    representatives: np.ndarray = None   # float [n, 3] irreducible representatives of the same stars


def covering_supercells(atoms, qgrid: QGrid) -> list:
    """A small set of minimal supercells covering every irreducible q of ``qgrid``.

    For each uncovered irreducible q (largest minimal size first) all HNF
    matrices of its minimal size that are commensurate with it are tried; the
    one that also covers the most other uncovered irreducible q (any member of
    their stars) is kept (greedy set cover). Each supercell reports, per covered
    star, the star member it is commensurate with (the representative itself
    when it fits, else the first fitting member in grid order) and the
    representative (:class:`Supercell`).
    """
    from ase.geometry import minkowski_reduce
    mesh = qgrid.mesh
    irr_q = qgrid.irreducible_qpoints
    stars = [qgrid.qpoints[qgrid.rep == k] for k in range(irr_q.shape[0])]
    sizes = np.array([minimal_size(q, mesh) for q in irr_q])
    uncovered = set(range(irr_q.shape[0]))
    result = []
    hnf_cache = {}
    for k in sorted(range(irr_q.shape[0]), key=lambda i: (-sizes[i], i)):
        if k not in uncovered:
            continue
        n = int(sizes[k])
        cands = hnf_cache.setdefault(n, hnf_matrices(n))
        best, best_cov = None, None
        for S in cands:
            if not commensurate(S, irr_q[k]):
                continue
            cov = [j for j in uncovered if sizes[j] <= n and
                   any(commensurate(S, qq) for qq in stars[j])]
            if best is None or len(cov) > len(best_cov):
                best, best_cov = S, cov
        assert best is not None, "no commensurate HNF found (should not happen)"
        uncovered -= set(best_cov)
        A = best @ np.asarray(atoms.cell[:], float)
        red, _ = minkowski_reduce(A)
        covers = tuple(sorted(best_cov))
        fitting = np.array([_commensurate_member(best, irr_q[j], stars[j]) for j in covers])
        result.append(Supercell(best, n, covers, fitting, np.asarray(red), irr_q[list(covers)]))
    return result


def _commensurate_member(S, representative, star) -> np.ndarray:
    """The representative if S is commensurate with it, else the first star member that is."""
    for q in (representative, *star):
        if commensurate(S, q):
            return _wrap(np.array(q, dtype=float))
    raise AssertionError(f"no member of the star of {representative} is commensurate with {S.tolist()}")
