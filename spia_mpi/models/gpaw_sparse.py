"""Row-distributed sparse LCAO matrices of a GPAW state: H(R, K), S(R, K) and X(R, K)† as
this rank's rows only, built from GPAW's real-space pieces (no dense n × n array anywhere).

GPAW's LCAO Hamiltonian at a wavevector K (Hartree; ``DirectLCAO.calculate_hamiltonian_matrix``)
is the sum of

* the kinetic and overlap two-centre integrals T_μν(K), O_μν(K) — per atom pair, zero beyond
  the sum of the two basis cutoffs (``gpaw.lcao.tci.TCICalculator.O_T``);
* the potential matrix of the effective pseudo potential on the real-space grid,
  V(K) = Y + Y†, Y = ½ V₀ + Σ_{x≥1} e^{2πi K·d_x} V_x, with V_x the lower triangle (μ ≥ ν) of
  ⟨Φ̃_μ(cell 0)|ṽ|Φ̃_ν(cell d_x)⟩ (``BasisFunctions.calculate_potential_matrices``; exactly zero
  for non-overlapping pairs, and K-independent: any K on any rank);
* the PAW one-centre terms Σ_a P^a ΔH^a P^a† (and Σ_a P^a ΔS^a P^a† for the overlap), with
  P^a_μi = ⟨Φ̃_μ|p̃^a_i⟩ from ``TCICalculator.P`` — non-zero only where orbital μ reaches the
  augmentation sphere of atom a.

Each rank of a configuration group owns the orbitals of a contiguous block of atoms
(:func:`atom_row_blocks`, balanced by orbital count); it evaluates only the atom-pair blocks
with a row in its block, and only pairs within the cutoffs exist, so its memory is
O(n_local × neighbours), not O(n²). The potential rows are integrated on every rank's grid
domain and summed onto their owner; the Hermitian half Y† is exchanged between the ranks.
The PAW cross overlap X = ⟨Φ̃(R⁽⁰⁾)|T̂†(R⁽⁰⁾)T̂(R)|Φ̃(R)⟩ is built the same way as rows of X†, i.e.
the columns of X that belong to this rank's atoms at R, which is what Q = X†c needs: its terms
(pseudo overlap, one-centre terms with the projectors of either set, two-centre overlaps of the
spheres at R⁽⁰⁾ and at R) are written once, in :mod:`spia_mpi.models.paw_overlap`
(``adjoint_terms``, ``adjoint_rows``), and its dense X is these rows for a block of every atom
summed into a :class:`DenseCollector`.

All functions are kernels on GPAW objects and scipy/numpy arrays; the communicators
(GPAW's grid-domain communicator, an mpi4py group communicator) are arguments.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class RowBlock:
    """The rows of one rank: the orbitals ``rows`` = [r0, r1) of the atoms ``atoms``."""

    atoms: range
    rows: range


@dataclass
class SparseRows:
    """One configuration–bead: this rank's rows of H (eV), S and X† (CSR [n_local, n] per K)."""

    block: RowBlock
    h: list
    s: list
    xh: list

    def nonzero_fraction(self, comm) -> tuple:
        """(H, S, X†) stored non-zeros over n² at the first K, summed over the group ``comm``."""
        n = self.h[0].shape[1]
        local = np.array([self.h[0].nnz, self.s[0].nnz, self.xh[0].nnz], float)
        total = comm.allreduce(local) if comm.size > 1 else local
        return tuple(float(v) / n ** 2 for v in total)


def atom_row_blocks(orbital_offsets, size: int) -> list[RowBlock]:
    """Contiguous atom blocks, one per rank, with about n/size orbitals each.

    ``orbital_offsets``: int [N + 1], atom a has orbitals offsets[a]:offsets[a + 1]. Block j
    ends at the first atom boundary at or past (j + 1) n / size, so every orbital of an atom
    is on one rank. Needs N ≥ size (a rank may still get no atoms for very uneven atoms).
    """
    off = np.asarray(orbital_offsets, int)
    n_atoms, n = len(off) - 1, int(off[-1])
    if n_atoms < size:
        raise ValueError(f"{n_atoms} atoms cannot give rows to {size} ranks")
    cuts = [0]
    for j in range(1, size):
        a = int(np.searchsorted(off, j * n / size, side="left"))
        cuts.append(min(max(a, cuts[-1]), n_atoms))
    cuts.append(n_atoms)
    return [RowBlock(range(cuts[j], cuts[j + 1]), range(int(off[cuts[j]]), int(off[cuts[j + 1]])))
            for j in range(size)]


class BlockCollector:
    """Dense atom-pair blocks (for every K) gathered into one CSR matrix per K.

    ``add(r0, c0, block)`` with ``block`` complex [n_K, n_r, n_c] at local row r0 and column
    c0, or ``add_indexed(rows, cols, block)`` at index vectors; duplicates are summed. Pending
    entries are folded into the CSR sums whenever they exceed the size of the result, so the
    memory stays O(n_local × n) even when many blocks overlap (the PAW terms of every atom).
    ``shape``: (n_local, n_columns)."""

    def __init__(self, n_k: int, shape):
        self.n_k, self.shape = n_k, shape
        self.rows, self.cols, self.vals = [], [], []
        self.pending = 0
        self.sums = None

    def add(self, r0: int, c0: int, block: np.ndarray):
        nr, nc = block.shape[-2:]
        self.add_indexed(np.arange(r0, r0 + nr), np.arange(c0, c0 + nc), block)

    def add_indexed(self, rows: np.ndarray, cols: np.ndarray, block: np.ndarray):
        r, c = np.meshgrid(rows, cols, indexing="ij")
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.vals.append(block.reshape(self.n_k, -1))
        self.pending += r.size
        if self.pending > max(self.shape[0] * self.shape[1], 1 << 16):
            self._fold()

    def _fold(self):
        if not self.rows:
            return
        r, c = np.concatenate(self.rows), np.concatenate(self.cols)
        v = np.concatenate(self.vals, axis=1)
        self.rows, self.cols, self.vals, self.pending = [], [], [], 0
        part = [sparse.coo_matrix((v[k], (r, c)), shape=self.shape).tocsr() for k in range(self.n_k)]
        self.sums = part if self.sums is None else [a + b for a, b in zip(self.sums, part)]

    def result(self) -> list:
        """One ``scipy.sparse.csr_matrix`` per K (complex)."""
        self._fold()
        if self.sums is None:
            return [sparse.csr_matrix(self.shape, dtype=complex) for _ in range(self.n_k)]
        return self.sums


class DenseCollector:
    """The same interface as :class:`BlockCollector`, summing into one dense array: for rows of every
    atom (the dense matrices), where CSR would only add cost. ``result()``: complex [n_K, *shape]."""

    def __init__(self, n_k: int, shape):
        self.array = np.zeros((n_k, *shape), complex)

    def add(self, r0: int, c0: int, block: np.ndarray):
        nr, nc = block.shape[-2:]
        self.array[:, r0:r0 + nr, c0:c0 + nc] += block

    def add_indexed(self, rows: np.ndarray, cols: np.ndarray, block: np.ndarray):
        self.array[:, rows[:, None], cols[None, :]] += block        # rows, cols: distinct indices

    def result(self) -> np.ndarray:
        return self.array


def two_centre_rows(tci, offsets, block: RowBlock, col_atom_shift: int = 0, kinetic: bool = True,
                    collector=BlockCollector):
    """Rows of O(K) (and T(K)) for this rank's atoms (rows) against all N atoms (columns).

    ``tci``: a ``TCICalculator`` at the wanted K (complex); ``col_atom_shift``: the column atoms
    are tci atoms ``shift + b`` (N for the reference copies of :mod:`paw_overlap`'s 2N
    calculator), the row atoms always ``a``. Returns (O, T), one [n_local, n] matrix per K each, CSR
    (or dense with ``collector`` :class:`DenseCollector`); T is None when ``kinetic`` is False. Only
    pairs within the basis cutoffs are evaluated.
    """
    n_atoms = len(offsets) - 1
    n_k = len(tci.ibzk_qc)
    shape = (len(block.rows), int(offsets[-1]))
    o_rows, t_rows = collector(n_k, shape), collector(n_k, shape)
    for a in block.atoms:
        r0 = offsets[a] - block.rows.start
        for b in range(n_atoms):
            if tci.a1a2.get(a, col_atom_shift + b) is None:
                continue
            o, t = tci.O_T(a, col_atom_shift + b)
            if o is None:
                continue
            o_rows.add(r0, offsets[b], o)
            if kinetic:
                t_rows.add(r0, offsets[b], t)
    return o_rows.result(), (t_rows.result() if kinetic else None)


def projector_rows(tci, offsets, block: RowBlock, terms, collector=BlockCollector) -> list:
    """Rows of Σ_pq P_p M_pq P'_q† for this rank's atoms, for each of ``terms``: a list (one per term)
    of complex [n_local, n] matrices per K, CSR (or dense with ``collector`` :class:`DenseCollector`).

    ``terms``: [(col_atom_shift, pairs)]; ``pairs`` maps a projector p (a tci atom) to
    [(q, M_pq)], M_pq complex [n_K or 1, ni_p, ni_q] (ΔH^a in Hartree, ΔS^a = ``setup.dO_ii``,
    the cross overlap's ``paw_overlap.adjoint_terms``, ...). P_p,μi = ⟨Φ̃_μ|p̃_i^p⟩ for the row
    orbitals (tci atoms in ``block``), P'_q,νi the same for the column orbitals (tci atoms
    ``col_atom_shift + b``). Every projection is evaluated once: those of a row projector p for
    all terms, then dropped; those of a column projector q kept from its first to its last use.
    The row projectors go atom by atom (tci atoms a and N + a, an atom's two copies, together), so
    a column lives while the row projectors paired with it (its own atom's, and the atoms whose
    spheres overlap its sphere) are processed. Only columns paired with a row projector reaching
    the block are evaluated: memory O(n_local × neighbours), the order of the rows themselves
    (76-atom Li₂MgH₁₆, rank 0 of 2: peak 0.95 MiB of columns next to 5.4 MiB of H, S, X† projector
    rows; 24 of its 228 columns live at once; docs/benchmarks.md has the CPU time saved).
    """
    n_atoms = len(offsets) - 1
    n_k = len(tci.ibzk_qc)
    out = [collector(n_k, (len(block.rows), int(offsets[-1]))) for _ in terms]
    order = sorted(set().union(*(pairs.keys() for _, pairs in terms)), key=lambda p: (p % n_atoms, p))
    last_use = {(shift, q): i for i, p in enumerate(order) for shift, pairs in terms for q, _ in pairs.get(p, ())}
    columns = {}
    for i, p in enumerate(order):
        rows = _projections(tci, p, block.atoms, 0)
        if rows:
            p_r = np.concatenate([x for _, x in rows], axis=1)                     # [n_k, n_r, ni]
            r_at = np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b, _ in rows]) - block.rows.start
            for (shift, pairs), sink in zip(terms, out):
                for q, m_pq in pairs.get(p, ()):
                    if (shift, q) not in columns:
                        columns[shift, q] = _column_projections(tci, offsets, q, shift)
                    p_c_h, c_at = columns[shift, q]
                    if p_c_h is not None:
                        sink.add_indexed(r_at, c_at, p_r @ np.asarray(m_pq, complex) @ p_c_h)
        for key in [key for key in columns if last_use[key] <= i]:
            del columns[key]
    return [c.result() for c in out]


def _column_projections(tci, offsets, q: int, shift: int) -> tuple:
    """(P'_q† complex [n_k, ni, n_c], the n_c column orbitals int [n_c]) of projector ``q`` for the
    basis atoms (tci atoms ``shift + b``) that reach it; (None, None) when none does."""
    cols = _projections(tci, q, range(len(offsets) - 1), shift)
    if not cols:
        return None, None
    return (np.concatenate([x for _, x in cols], axis=1).conj().swapaxes(-1, -2),
            np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b, _ in cols]))


def one_centre_pairs(m_aii) -> dict:
    """``pairs`` of :func:`projector_rows` for one-centre terms Σ_a P_a M^a P_a†: {a: [(a, M^a)]}."""
    return {a: [(a, np.asarray(m)[None])] for a, m in enumerate(m_aii)}


def _projections(tci, a_proj: int, basis_atoms, shift: int) -> list:
    """[(b, ⟨Φ̃_b|p̃^a⟩ complex [n_k, n_orb(b), ni])] for the basis atoms b (tci atoms shift + b)
    that reach the projectors of atom ``a_proj``."""
    out = []
    for b in basis_atoms:
        if tci.a1a2.get(a_proj, shift + b) is None:
            continue
        p = tci.P(a_proj, shift + b)
        if p is not None:
            out.append((b, p.swapaxes(-1, -2).conj()))
    return out


def potential_lower_rows(bfs, vt_g, gd_comm, owner_rows: list, kpts_kc, gamma_real: bool,
                         chunk_bytes: int = 64 * 2**20) -> list:
    """Y(K) of this rank's rows, CSR [n_local, n] per K, with Y + Y† GPAW's potential matrix at K
    (Hartree; :func:`potential_lower`).

    ``bfs``: GPAW's ``BasisFunctions`` (positions set); ``vt_g``: this domain's part of the
    effective pseudo potential; ``owner_rows``: the row range of the rank at each position of
    ``gd_comm``. Every rank integrates its grid domain for every owner's rows, in chunks of at
    most ``chunk_bytes`` of V_x, and the owner gets their sum (GPAW's V_x are n_x × rows × n).
    """
    n = int(bfs.Mmax)
    n_x = 1 if gamma_real else len(bfs.sdisp_xc)
    step = max(1, chunk_bytes // (16 * n_x * max(n, 1)))
    saved = (bfs.Mstart, bfs.Mstop)
    parts = []
    try:
        for j, rows in enumerate(owner_rows):
            for r0 in range(rows.start, rows.stop, step):
                r1 = min(r0 + step, rows.stop)
                bfs.set_matrix_distribution(r0, r1)
                v = np.ascontiguousarray(bfs.calculate_potential_matrices(vt_g))
                if gd_comm.size > 1:
                    gd_comm.sum(v, j)
                if j == gd_comm.rank:
                    parts.append(potential_lower(v, getattr(bfs, "sdisp_xc", None), kpts_kc, r0, gamma_real))
    finally:
        bfs.set_matrix_distribution(*saved)
    mine = owner_rows[gd_comm.rank]
    if not parts:
        return [sparse.csr_matrix((len(mine), n), dtype=complex) for _ in np.atleast_2d(kpts_kc)]
    return [sparse.vstack([p[k] for p in parts], format="csr") for k in range(len(parts[0]))]


def potential_lower(v_xml: np.ndarray, sdisp_xc, kpts_kc, first_row: int, gamma_real: bool) -> list:
    """Y(K) with Y + Y† GPAW's potential matrix at K, CSR [n_rows, n] per K (exact zeros dropped).

    ``v_xml``: GPAW's V_x of the rows from ``first_row`` on; ``gamma_real``: GPAW's real Γ-only
    calculation (one V₀, all images folded in, of which GPAW uses the lower triangle μ ≥ ν):
    Y = V₀ below the diagonal + ½ its diagonal. Otherwise (Bloch phases, ``sdisp_xc`` the cell
    of each V_x) Y = ½ V₀ + Σ_{x≥1} e^{2πi K·d_x} V_x, as GPAW sums them.
    """
    if gamma_real:
        v0 = np.asarray(v_xml[0])
        rows = np.arange(v0.shape[0])[:, None] + first_row
        cols = np.arange(v0.shape[1])[None, :]
        y = np.where(cols < rows, v0, np.where(cols == rows, 0.5 * v0, 0.0)).astype(complex)
        return [sparse.csr_matrix(y) for _ in np.atleast_2d(kpts_kc)]
    out = []
    for k in np.atleast_2d(kpts_kc):
        y = 0.5 * v_xml[0].astype(complex)
        if len(v_xml) > 1:
            phase = np.exp(2j * np.pi * (np.asarray(sdisp_xc)[1:] @ k))
            y += np.einsum("x,xmn->mn", phase, v_xml[1:])
        out.append(sparse.csr_matrix(y))
    return out


def hermitian_part(y_local, blocks: list, comm):
    """Rows of Y + Y† for this rank (``comm``: mpi4py, one rank per block, in order), CSR.

    Y† of this rank's rows is the conjugate of other ranks' columns: each rank sends every
    other rank its columns, transposed (an all-to-all of sparse pieces)."""
    me = comm.rank
    send = [y_local[:, b.rows.start:b.rows.stop].conj().T.tocsr() for b in blocks]
    got = comm.alltoall(send) if comm.size > 1 else send
    yh = sparse.hstack([got[j] for j in range(len(blocks))], format="csr")   # [n_local, n]
    assert yh.shape == y_local.shape, (yh.shape, y_local.shape, me)
    return (y_local + yh).tocsr()


def atomic_hamiltonians(dh_asp, setups, gd_comm) -> list:
    """ΔH^a_ij (Hartree, spin 0, unpacked [ni, ni]) of every atom on every rank of ``gd_comm``
    (GPAW distributes them over the grid domains)."""
    from gpaw.utilities import unpack
    sizes = [s.ni * (s.ni + 1) // 2 for s in setups]
    off = np.concatenate([[0], np.cumsum(sizes)])
    packed = np.zeros(int(off[-1]))
    for a in dh_asp:
        packed[off[a]:off[a + 1]] = dh_asp[a][0]
    if gd_comm.size > 1:
        gd_comm.sum(packed)
    return [unpack(packed[off[a]:off[a + 1]]) for a in range(len(setups))]


def gather_dense(rows_local, comm) -> np.ndarray:
    """The full dense matrix from every rank's CSR rows (in rank order) on every rank of ``comm``."""
    parts = comm.allgather(rows_local) if comm.size > 1 else [rows_local]
    return sparse.vstack(parts, format="csr").toarray()


def to_aij(rows_local, comm):
    """A complex MPIAIJ Mat on ``comm`` (mpi4py) with this rank's CSR rows [n_local, n] as its
    local rows (and the same local column size, so vectors share the row layout)."""
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    m = rows_local.shape[0]
    n = rows_local.shape[1]
    rows_local = rows_local.tocsr()
    rows_local.sort_indices()
    a = PETSc.Mat().createAIJ([[m, n], [m, n]],
                              csr=(rows_local.indptr.astype(PETSc.IntType),
                                   rows_local.indices.astype(PETSc.IntType),
                                   rows_local.data.astype(PETSc.ScalarType)), comm=PETSc.Comm(comm))
    a.assemble()
    return a
