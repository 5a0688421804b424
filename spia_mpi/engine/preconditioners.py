"""The kinetic-energy FFT preconditioner of the grid resolvent, distributed over a group's ranks.

z − H = z − T − V is approximated by M = z − V̄ − T, with V̄ the grid average of V. M is
diagonal in the grid's Bloch plane waves, so

    M⁻¹r = e^{iK·r} IFFT[ FFT(e^{−iK·r} r) / (z − V̄ − t) ],

two 3D FFTs per application, t the finite-difference kinetic symbol (:func:`stencil_symbol`).
Because Im z = η > 0 and t is real, |z − V̄ − t| ≥ η: M⁻¹ is bounded, and it removes the
stencil's large kinetic eigenvalues that make Jacobi-preconditioned GMRES need hundreds of
iterations on fine grids (docs/benchmarks.md: ≈ 10–14 iterations, independent of the grid).

Distribution (:class:`SlabFFT`): the vector arrives in PETSc's row layout — rank q owns the
contiguous flattened grid indices [r0_q, r1_q), index (i1·N2 + i2)·N3 + i3, any split. One
``Alltoallv`` moves it into x-slabs (rank q: planes i1 ∈ [a_q, a_{q+1}), a_q = ⌊q N1/P⌋; a
pure local copy when PETSc's rows already are those slabs), the FFTs along i3 and i2 are local,
a transpose moves them to y-slabs (i2 ∈ [b_q, b_{q+1})), where the FFT along i1 and the
division by the symbol are local; the way back mirrors it. The transposes are a second
``Alltoallv``, or, when all ranks share one node (the usual configuration group), no data
movement at all: the block's whole grid lies in an MPI-3 shared-memory window, each rank
transforms its x-planes there, and after a barrier the columns of its y-slab through a strided
view of every rank's planes (docs/spia.md). Memory per rank is O(N/P) for
the symbol, the twist factors (separable, O(N1 + N2 + N3)) and the work arrays, instead of the
O(N) every rank held when it gathered the whole vector. Several right-hand sides (columns)
travel and transform together (:meth:`KineticPreconditioner.apply_block`).
"""
from __future__ import annotations

import numpy as np
import scipy.fft


def slab_bounds(n: int, parts: int) -> np.ndarray:
    """Boundaries ⌊q n/parts⌋, q = 0 … parts, of ``parts`` contiguous slabs of n planes, int [parts + 1]."""
    return (np.arange(parts + 1) * n) // parts


def stencil_symbol(stencil: dict, shape, kpoint, axis1=None) -> np.ndarray:
    """Eigenvalues t of a symmetric grid stencil on the Bloch plane waves (eV), float [N1, n2, N3].

    ``stencil``: {grid offset (3 ints): coefficient (eV)}; the plane wave
    ψ_j = e^{2πi Σ_α (K_α + n_α) j_α / N_α} (K reduced, n_α = 0 … N_α−1 in numpy FFT order) has
    t(n) = Σ_off c_off cos(2π Σ_α off_α (K_α + n_α)/N_α). ``axis1``: (start, stop) of n_2 to
    compute only that slab (default: all, n2 = N2).
    """
    K = np.asarray(kpoint, float).reshape(3)
    n_axes = [np.arange(n) for n in shape]
    if axis1 is not None:
        n_axes[1] = n_axes[1][axis1[0]:axis1[1]]
    ka = [2 * np.pi * (K[a] + n_axes[a]) / shape[a] for a in range(3)]
    t = np.zeros(tuple(len(x) for x in n_axes))
    for off, coef in stencil.items():
        t += coef * np.cos(off[0] * ka[0][:, None, None] + off[1] * ka[1][None, :, None]
                           + off[2] * ka[2][None, None, :])
    return t


class SlabFFT:
    """3D FFTs of grid functions held in PETSc's row layout on the ranks of ``comm``.

    ``shape`` (N1, N2, N3); ``rows`` (r0, r1): this rank's flattened grid indices (contiguous,
    ranks in order). A block of c grid functions is an array [c, n_rows_local] (one function per
    row, each contiguous). :meth:`filter` applies a Fourier multiplier given on this rank's
    y-slab (FFT, product, inverse FFT; scipy's normalisation). When all ranks are on one node the
    two transposes are barriers in a shared-memory window that holds the whole grid (no copy, no
    ``Alltoallv``; ``shared = False`` forces the ``Alltoallv``s, None chooses); the window is kept
    from call to call, :meth:`release` frees it (collective).
    """

    def __init__(self, comm, shape, rows, shared: bool | None = None):
        self.comm = comm
        self.shape = tuple(int(n) for n in shape)
        n1, n2, n3 = self.shape
        size, rank = comm.Get_size(), comm.Get_rank()
        all_rows = np.array(comm.allgather(tuple(int(r) for r in rows)) if size > 1 else [tuple(rows)])
        self.x_bounds = slab_bounds(n1, size)
        self.y_bounds = slab_bounds(n2, size)
        self.x_range = tuple(int(x) for x in self.x_bounds[rank:rank + 2])
        self.y_range = tuple(int(y) for y in self.y_bounds[rank:rank + 2])
        x_rows = self.x_bounds * (n2 * n3)                # flattened extent of every x-slab
        r0, r1 = all_rows[rank]
        # rows → x-slab: this rank sends to q its rows ∩ q's slab and receives from p p's rows ∩
        # its own slab (contiguous intervals, in grid points, ordered by rank)
        self.to_slab_send = _overlaps(r0, r1, x_rows[:-1], x_rows[1:])
        self.to_slab_recv = _overlaps(all_rows[:, 0], all_rows[:, 1], x_rows[rank], x_rows[rank + 1])
        self.aligned = bool(np.all(all_rows[:, 0] == x_rows[:-1]) and np.all(all_rows[:, 1] == x_rows[1:]))
        self.n_local = int(r1 - r0)
        # ranks of one node transpose through a shared-memory window instead of Alltoallv: the block's
        # whole grid lies in it, and each rank transforms its y-slab in place (:meth:`_filter_shared`)
        self._shared = size > 1 and (_one_node(comm) if shared is None else bool(shared))
        self._win, self._memory, self._capacity = None, None, 0        # capacity: bytes per function

    # ------------------------------------------------------------ redistribution
    def _exchange(self, pieces: list, recv_shapes: list) -> list:
        """Send ``pieces[q]`` to rank q and receive an array of ``recv_shapes[p]`` from every rank p
        (one ``Alltoallv``; complex)."""
        from mpi4py import MPI
        sc = np.array([p.size for p in pieces], dtype=np.int64)
        rc = np.array([int(np.prod(s)) for s in recv_shapes], dtype=np.int64)
        send = np.concatenate([p.reshape(-1) for p in pieces])
        recv = np.empty(int(rc.sum()), dtype=send.dtype)
        sd = np.concatenate([[0], np.cumsum(sc)[:-1]])
        rd = np.concatenate([[0], np.cumsum(rc)[:-1]])
        kind = MPI.C_FLOAT_COMPLEX if send.dtype == np.complex64 else MPI.C_DOUBLE_COMPLEX
        self.comm.Alltoallv([send, (sc, sd), kind], [recv, (rc, rd), kind])
        return [recv[d:d + n].reshape(s) for d, n, s in zip(rd, rc, recv_shapes)]

    @staticmethod
    def _split(a: np.ndarray, counts, axis: int) -> list:
        return np.split(a, np.cumsum(counts)[:-1], axis=axis)

    def rows_to_xslab(self, r: np.ndarray) -> np.ndarray:
        """[c, n_local] in PETSc rows → this rank's x-slab [c, na, N2, N3]."""
        c = r.shape[0]
        na = self.x_range[1] - self.x_range[0]
        if not self.aligned:
            got = self._exchange(self._split(r, self.to_slab_send, 1), [(c, n) for n in self.to_slab_recv])
            r = np.concatenate(got, axis=1)
        return r.reshape(c, na, self.shape[1], self.shape[2])

    def xslab_to_rows(self, s: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`rows_to_xslab`: [c, na, N2, N3] → [c, n_local]."""
        c = s.shape[0]
        s = s.reshape(c, -1)
        if not self.aligned:
            got = self._exchange(self._split(s, self.to_slab_recv, 1), [(c, n) for n in self.to_slab_send])
            s = np.concatenate(got, axis=1)
        return s

    def xslab_to_yslab(self, s: np.ndarray) -> np.ndarray:
        """[c, na, N2, N3] → [c, N1, nb, N3] (the pieces from ranks p stack along i1 in order)."""
        if self.comm.Get_size() == 1:
            return s
        c, na, _, n3 = s.shape
        nb = self.y_range[1] - self.y_range[0]
        got = self._exchange(self._split(s, np.diff(self.y_bounds), 2),
                             [(c, n, nb, n3) for n in np.diff(self.x_bounds)])
        return np.concatenate(got, axis=1)

    def yslab_to_xslab(self, s: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`xslab_to_yslab`: [c, N1, nb, N3] → [c, na, N2, N3]."""
        if self.comm.Get_size() == 1:
            return s
        c, _, nb, n3 = s.shape
        na = self.x_range[1] - self.x_range[0]
        got = self._exchange(self._split(s, np.diff(self.x_bounds), 1),
                             [(c, na, n, n3) for n in np.diff(self.y_bounds)])
        return np.concatenate(got, axis=2)

    # ------------------------------------------------------------ transforms
    def filter(self, r: np.ndarray, multiplier: np.ndarray, phase: np.ndarray | None = None,
               post: np.ndarray | None = None) -> np.ndarray:
        """post ⊙ phase ⊙ IFFT[multiplier ⊙ FFT(phase̅ ⊙ r)] for a block of grid functions in PETSc rows.

        ``r`` complex [c, n_local] (complex128, or complex64: the transforms then run in single
        precision); ``multiplier`` this rank's y-slab of the Fourier multiplier, [N1, nb, N3];
        ``phase`` and ``post`` (optional) factors per row, [n_local] (of ``r``'s precision; ``post``
        is applied to the result only, with the copy off the shared window). Returns a new array
        [c, n_local]. Collective: every rank of ``comm`` calls it with the same c and precision.
        """
        if self._shared:
            return self._filter_shared(r, multiplier, phase, post)
        local_phase = phase is not None and self.aligned               # rows are the x-slab itself
        src = self.rows_to_xslab(r * phase.conj() if phase is not None and not local_phase else r)
        if local_phase:
            xs = _fft(src * phase.conj().reshape(src.shape[1:]), (2, 3), inverse=False)
        else:                                                   # out of place: no copy of the input
            xs = scipy.fft.fftn(src, axes=(2, 3))
        ys = _fft(self.xslab_to_yslab(xs), (1,), inverse=False)
        ys *= multiplier
        ys = _fft(ys, (1,), inverse=True)
        out = _fft(self.yslab_to_xslab(ys), (2, 3), inverse=True).reshape(r.shape[0], -1)
        out = out if local_phase else self.xslab_to_rows(out)
        out = out * phase if phase is not None else out
        if post is not None:
            out *= post
        return out

    def _filter_shared(self, r, multiplier, phase, post):
        """:meth:`filter` with the transposes in shared memory: the whole grid of the block is one
        array [N1, c, N2, N3] in the window, rank p owning the planes of its x-slab; a rank
        transforms its planes along i2, i3, and — after a barrier — the columns of its y-slab along
        i1 straight in the window (a strided view of all ranks' planes: no copy), then, after a
        second barrier, its planes back. The barriers order the accesses: a rank writes its planes
        only after all ranks have finished the previous call's y-slab phase (past its second barrier)."""
        c = r.shape[0]
        grid = self._grid(c, r.dtype)
        xs = grid[self.x_range[0]:self.x_range[1]]                      # [na, c, N2, N3], this rank's planes
        local_phase = phase is not None and self.aligned
        src = self.rows_to_xslab(r * phase.conj() if phase is not None and not local_phase else r)
        if local_phase:
            np.multiply(src.transpose(1, 0, 2, 3), phase.conj().reshape(src.shape[1:])[:, None], out=xs)
        else:
            np.copyto(xs, src.transpose(1, 0, 2, 3))
        _fft(xs, (2, 3), inverse=False)
        self.comm.Barrier()
        ys = grid[:, :, self.y_range[0]:self.y_range[1]]                # [N1, c, nb, N3], strided
        _fft(ys, (0,), inverse=False)
        ys *= multiplier[:, None]
        _fft(ys, (0,), inverse=True)
        self.comm.Barrier()
        _fft(xs, (2, 3), inverse=True)
        out = np.empty(src.shape, dtype=r.dtype)                        # [c, na, N2, N3], off the window
        factor = phase if post is None else post if phase is None else phase * post
        if self.aligned and factor is not None:                         # the factors with the copy
            np.multiply(xs.transpose(1, 0, 2, 3), factor.reshape(src.shape[1:]), out=out)
            return out.reshape(c, -1)
        np.copyto(out, xs.transpose(1, 0, 2, 3))
        out = self.xslab_to_rows(out.reshape(c, -1))
        if factor is not None:
            out *= factor
        return out

    # ------------------------------------------------------------ shared memory
    def _grid(self, c: int, dtype) -> np.ndarray:
        """The shared-memory array [N1, c, N2, N3] of ``dtype`` (complex128 or 64) that holds a block of c
        functions during :meth:`filter` (one window, allocated by rank 0, mapped by all). Every x-plane has
        a fixed place in the window whatever c and dtype (room for its capacity in bytes), so a rank that
        starts the next call early writes only its own planes; the window grows when c functions exceed
        its capacity (collective: every rank asks for the same c and dtype)."""
        n1, n2, n3 = self.shape
        item = np.dtype(dtype).itemsize
        if c * item > self._capacity:
            self.release()
            from mpi4py import MPI
            size = c * item * n1 * n2 * n3 if self.comm.Get_rank() == 0 else 0
            self._win = MPI.Win.Allocate_shared(size, 16, comm=self.comm)
            self._memory = np.frombuffer(self._win.Shared_query(0)[0], dtype=np.uint8)
            self._capacity = c * item
        return self._memory.view(dtype).reshape(n1, self._capacity // item, n2, n3)[:, :c]

    def reserve(self, c: int):
        """Size the shared-memory window for blocks of c complex128 (or 2c complex64) functions now,
        so that a solve does not regrow it block by block (collective; nothing without a window)."""
        if self._shared:
            self._grid(c, np.complex128)

    def release(self):
        """Free the shared-memory window (collective; a later :meth:`filter` allocates a new one)."""
        if self._win is not None:
            self._win.Free()
            self._win, self._memory, self._capacity = None, None, 0


def _fft(a: np.ndarray, axes: tuple, inverse: bool) -> np.ndarray:
    """FFT (or inverse, scipy's normalisation) of complex ``a`` along ``axes``, in place in ``a``'s
    memory (pocketfft transforms a complex array in place when allowed to overwrite it)."""
    out = (scipy.fft.ifftn if inverse else scipy.fft.fftn)(a, axes=axes, overwrite_x=True)
    if not np.may_share_memory(out, a):
        np.copyto(a, out)
    return a


def _one_node(comm) -> bool:
    """True when all ranks of ``comm`` share one node's memory (MPI-3 shared windows work)."""
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size() == comm.Get_size()
    finally:
        node.Free()


def _overlaps(lo, hi, slab_lo, slab_hi) -> np.ndarray:
    """Lengths of the intersections of [lo, hi) with [slab_lo, slab_hi) (broadcast), int."""
    return np.maximum(0, np.minimum(hi, slab_hi) - np.maximum(lo, slab_lo)).astype(np.int64)


class KineticPreconditioner:
    """(z − V̄ − T)⁻¹ by FFT (see the module docstring), a petsc4py python-PC context.

    ``shape`` (N1, N2, N3) the grid; ``stencil`` the kinetic stencil {offset: coefficient (eV)}
    (its (0, 0, 0) entry t₀ is the diagonal of T); ``kpoint`` K reduced (3,). V̄ is read from
    the operator's diagonal at set-up: diag(z − H) = z − t₀ − V(r). The FFTs run over the ranks
    of the operator's communicator, on its row layout (:class:`SlabFFT`).

    :meth:`configure` sets it up without PETSc (communicator, rows, z − V̄), and
    :meth:`apply_block` applies it to several vectors at once, [n_cols, n_local].
    """

    def __init__(self, shape, stencil: dict, kpoint):
        self.shape = tuple(int(n) for n in shape)
        self.stencil = dict(stencil)
        self.t0 = float(self.stencil.get((0, 0, 0), 0.0))
        self.kpoint = np.asarray(kpoint, float).reshape(3)
        self.fft = self.inverse = None
        self._twist_rows = None

    def setUp(self, pc):                                          # noqa: N802 - petsc4py API
        A, _ = pc.getOperators()
        d = A.getDiagonal()
        z_minus_vbar = d.sum() / d.getSize() + self.t0            # z − V̄
        d.destroy()
        self.configure(A.getComm().tompi4py(), A.getOwnershipRange(), z_minus_vbar)

    def configure(self, comm, rows, z_minus_vbar: complex):
        """Set up for rows ``rows`` = (r0, r1) of a vector on ``comm`` and the shift z − V̄ (eV)."""
        same_layout = (self.fft is not None and self.fft.comm == comm
                       and tuple(self._rows) == tuple(int(r) for r in rows))
        if not same_layout:
            self.release()
            self.fft = SlabFFT(comm, self.shape, rows)
            self._rows = tuple(int(r) for r in rows)
            self._twist_rows = self._twist(*self._rows)
            self._symbol = stencil_symbol(self.stencil, self.shape, self.kpoint, self.fft.y_range)
        self.inverse = 1.0 / (z_minus_vbar - self._symbol)
        self._single = None                                       # (multiplier, twist) in complex64, on demand

    def _twist(self, r0: int, r1: int) -> np.ndarray | None:
        """e^{iK·r} at the flattened grid points r0 … r1−1, complex [r1 − r0] (None at K = 0)."""
        if not np.any(self.kpoint):
            return None
        idx = np.unravel_index(np.arange(r0, r1), self.shape)
        phase = sum(self.kpoint[a] * idx[a] / self.shape[a] for a in range(3))
        return np.exp(2j * np.pi * phase)

    def apply_block(self, r: np.ndarray, post: np.ndarray | None = None) -> np.ndarray:
        """M⁻¹R for this rank's rows of several vectors, complex [n_cols, n_local] → same shape and
        precision (complex64 input: FFTs, symbol and twist in single precision); ``post`` (optional,
        [n_local], r's precision): D M⁻¹R with D = diag(post) instead, the product fused with the FFTs' last
        copy (the fused operator's −(V − V̄) M⁻¹, :meth:`preconditioned_operator`)."""
        if r.dtype == np.complex64:
            if self._single is None:
                self._single = tuple(None if a is None else a.astype(np.complex64)
                                     for a in (self.inverse, self._twist_rows))
            return self.fft.filter(r, *self._single, post=post)
        return self.fft.filter(r, self.inverse, self._twist_rows, post=post)

    def reserve(self, c: int):
        """Allocate the distributed FFT's shared memory for blocks of c vectors (collective)."""
        self.fft.reserve(c)

    def release(self):
        """Free the distributed FFT's shared memory (collective; the next application allocates it again)."""
        if self.fft is not None:
            self.fft.release()

    def destroy(self, pc):                                        # petsc4py API: the KSP's PC is destroyed
        self.release()

    def apply(self, pc, x, y):                                    # petsc4py API
        y.getArray()[:] = self.apply_block(x.getArray(readonly=True)[None, :])[0]

    def preconditioned_operator(self, diagonal: np.ndarray, diagonal_mean: complex):
        """A M⁻¹ without the matrix, for A = z − T − V(r) with this stencil's T and a local V.

        Then A = M − (V − V̄) with M = z − V̄ − T, so A M⁻¹ v = v + (d − d̄) ⊙ M⁻¹v, where d is A's
        diagonal (z − t₀ − V(r); this rank's rows, [n_local]) and d̄ its mean over the grid: two FFTs
        and one product per application. Returns a function [n_cols, n_local] → same shape.
        The caller checks it against the matrix (any other A makes it wrong).
        """
        shift = np.asarray(diagonal) - diagonal_mean

        def apply(v):
            out = self.apply_block(v, post=shift)
            out += v
            return out
        return apply
