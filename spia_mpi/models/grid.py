"""Real-space grid model: finite-difference kinetic energy + screened local pseudopotentials.

H = −(ħ²/2m_e)∇² + V(r; R) on a periodic grid spanning the supercell, with the
Bloch condition ψ(r + L) = e^{iK·L} ψ(r) across the supercell boundary, so the
basis (grid points) never moves with the ions and diffusing ions need no special
treatment (METHOD.md §2, the "common pseudo space" with no projectors).

* Kinetic energy: central finite differences of order 2, 4, 6 or 8 in the
  reduced grid coordinates u_α (r = Σ u_α A_α), ∇² = Σ_αβ (B_α·B_β) ∂²/∂u_α∂u_β
  with B the reciprocal vectors (B_α·A_β = δ_αβ): second-derivative stencils on
  the diagonal, products of first-derivative stencils for the mixed terms of a
  non-orthogonal cell. Any supercell matrix: a diagonal one repeats the primitive
  grid; a non-diagonal one gets its own grid along the supercell vectors at the
  finest primitive spacing (``grid_per_cell`` docs), commensurate with the primitive
  translations, so the paper's non-diagonal supercells run on the material model too
  and a perfect crystal keeps its primitive periodicity exactly.
* Potential: V(r) = Σ_G V(G) e^{iG·r}, V(G) = (1/Ω) Σ_a v_a(|G|) e^{−iG·R_a}
  over the supercell reciprocal vectors resolved by the grid, with
  v_a(q) = −(4π Z_a e²/q²) cos(q r_c,a) e^{−(q/q_s,a)²} / ε(q): Ashcroft's
  empty core (radius r_c) with a Gaussian smoothing q_s, screened by the
  Lindhard (or Thomas–Fermi) dielectric function of the mean valence density.
  The G = 0 term is dropped (it only shifts energies).
  Or V(r) read per configuration/bead from a DFT local potential (VASP LOCPOT,
  cube): :class:`PotentialFiles`, an ``external_potential``.
* Distributed assembly: :meth:`GridModel.hamiltonian_rows` generates only the
  requested rows of the stencil; V(r) is computed on the whole grid (FFT) by
  every caller and sliced (O(N) floats; the matrix is O(rows · stencil)).
* Reference states: plane waves e^{i(k+G)·r}/√N on the grid, the lowest
  ½|k+G|² for every primitive k folded onto K.

Parameters (``PSEUDOPOTENTIALS``; eV, Å): Z = valence; r_c = empty-core radius;
q_s = smoothing wavevector. H: bare proton (r_c = 0) smoothed with q_s = 3 Å⁻¹;
Li: r_c = 1.06 Å, Mg: r_c = 0.74 Å — empty-core radii of the size of the
classic fits to alkali/alkaline-earth metals (Ashcroft, Phys. Lett. 23, 48 (1966)
and later tabulations); treat them as a model, not as ab initio potentials.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spia_mpi.lattice import supercells
from spia_mpi.errors import InputError
from spia_mpi.models.base import ElectronicModel, ReferenceStates
from spia_mpi.units import BOHR_ANG, COULOMB_EV_A, HARTREE_EV, HBAR2_OVER_2ME_EV_A2

E2_EV_A = COULOMB_EV_A                        # e²/(4πε0) in eV·Å

PSEUDOPOTENTIALS = {
    "H": {"Z": 1.0, "rc": 0.0, "qs": 3.0},
    "Li": {"Z": 1.0, "rc": 1.06, "qs": 3.0},
    "Mg": {"Z": 2.0, "rc": 0.74, "qs": 3.0},
}

#: central first-derivative coefficients d/dx at offsets +1, +2, … (antisymmetric)
FD_FIRST = {
    2: [1 / 2],
    4: [2 / 3, -1 / 12],
    6: [3 / 4, -3 / 20, 1 / 60],
    8: [4 / 5, -1 / 5, 4 / 105, -1 / 280],
}

#: central finite-difference coefficients of d²/dx² (offsets 0, 1, 2, …)
FD_COEFFS = {
    2: [-2.0, 1.0],
    4: [-5 / 2, 4 / 3, -1 / 12],
    6: [-49 / 18, 3 / 2, -3 / 20, 1 / 90],
    8: [-205 / 72, 8 / 5, -1 / 5, 8 / 315, -1 / 560],
}


def lindhard(q, kf: float, ktf2: float, kind: str = "lindhard"):
    """Static dielectric function ε(q) of the electron gas (q, k_F in 1/Å, k_TF² in 1/Å²)."""
    q = np.asarray(q, float)
    if kind == "none":
        return np.ones_like(q)
    if kind == "thomas-fermi":
        F = np.ones_like(q)
    else:
        x = np.clip(q / (2 * kf), 1e-12, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            F = 0.5 + (1 - x ** 2) / (4 * x) * np.log(np.abs((1 + x) / (1 - x)))
        F = np.where(np.isclose(x, 1.0), 0.5, F)
    with np.errstate(divide="ignore"):
        return 1.0 + ktf2 / np.where(q > 0, q ** 2, np.inf) * F


def grid_for_spacing(cell, spacing_ang: float) -> tuple:
    """Grid points per primitive cell for a target spacing h (Å): ⌈|a_i|/h⌉ (≥ 2) along each
    lattice vector a_i (rows of ``cell``, Å), so the spacing along each a_i is at most h."""
    if not spacing_ang > 0:
        raise InputError(f"grid spacing {spacing_ang} Å must be positive")
    lengths = np.linalg.norm(np.asarray(cell, float), axis=1)
    return tuple(max(2, int(math.ceil(L / spacing_ang - 1e-9))) for L in lengths)


def commensurate_shape(supercell_matrix, shape) -> tuple:
    """The smallest supercell grid ≥ ``shape`` that every primitive translation maps onto itself.

    A primitive vector a_i = Σ_β (S⁻¹)_iβ A_β moves the grid point Σ_β (j_β/N_β) A_β by
    N_β (S⁻¹)_iβ steps along A_β: an integer for every i exactly when N_β is a multiple of d_β,
    the common denominator of column β of S⁻¹ (d_β = |det S| / gcd(|det S|, column β of adj S)).
    On such a grid the Hamiltonian of a perfect crystal commutes with the primitive translations,
    so its eigenstates have one primitive k each (exact band unfolding). Each N_β is rounded up
    to a multiple of d_β (for a diagonal S, d_β = S_ββ: the repeated primitive grid g_β S_ββ is).
    """
    S = np.asarray(supercell_matrix, float)
    det = int(round(abs(np.linalg.det(S))))
    adj = np.rint(np.linalg.inv(S) * np.linalg.det(S)).astype(int)
    out = []
    for beta, n in enumerate(shape):
        d = det // math.gcd(det, *(abs(int(c)) for c in adj[:, beta]))
        out.append(int(d * math.ceil(int(n) / d)))
    return tuple(out)


class GridModel(ElectronicModel):
    """Real-space grid model of a supercell of ``primitive`` (see the module docstring).

    Parameters
    ----------
    primitive : ase.Atoms — reference structure (positions in Å), any cell.
    supercell_matrix : int [3, 3], det ≠ 0 (diagonal or not).
    grid_per_cell : 3 ints — grid points per primitive cell along each axis. For a diagonal
        supercell the supercell grid is this grid repeated (N_α = g_α S_αα). For a
        non-diagonal one the grid runs along the supercell vectors A_β with the finest
        primitive spacing h = min_α |a_α|/g_α: N_β = ⌈|A_β|/h⌉ (spacing ≤ h along each A_β),
        rounded up to the next grid that the primitive translations map onto itself
        (:func:`commensurate_shape`), so a perfect crystal unfolds exactly.
    grid_shape : 3 ints or None — the supercell grid (N1, N2, N3) directly, overriding
        grid_per_cell.
    fd_order : 2, 4, 6 or 8.
    screening : 'lindhard' (default), 'thomas-fermi' or 'none'.
    pseudopotentials : dict symbol → {"Z", "rc", "qs"} overriding ``PSEUDOPOTENTIALS``.
    external_potential : callable(positions_av) → float [N1, N2, N3] (eV) replacing the
        pseudopotential sum (e.g. V read from cube/LOCPOT files per configuration).
    """

    def __init__(self, primitive, supercell_matrix, grid_per_cell=(8, 8, 8), fd_order: int = 4,
                 screening: str = "lindhard", pseudopotentials: dict | None = None,
                 external_potential=None, grid_shape=None):
        S = supercells.as_supercell_matrix(supercell_matrix)
        a = np.asarray(primitive.cell[:], float)
        if abs(np.linalg.det(a)) < 1e-8:
            raise InputError(f"the grid model needs a 3D cell, got {a.round(4).tolist()}")
        if fd_order not in FD_COEFFS:
            raise InputError(f"fd_order {fd_order} is not one of {sorted(FD_COEFFS)}")
        if screening not in ("lindhard", "thomas-fermi", "none"):
            raise InputError(f"screening '{screening}' is not one of lindhard, thomas-fermi, none")
        g = np.asarray(grid_per_cell, int)
        if g.shape != (3,) or np.any(g < 2):
            raise InputError(f"grid_per_cell must be 3 integers ≥ 2, got {grid_per_cell}")
        self.primitive = primitive.copy()
        self.supercell_matrix = S
        self.atoms, _, _ = supercells.build_supercell(self.primitive, S)
        self.reference_positions = self.atoms.get_positions()
        if grid_shape is not None:
            shape = np.asarray(grid_shape, int)
            if shape.shape != (3,) or np.any(shape < 2):
                raise InputError(f"grid_shape must be 3 integers ≥ 2, got {grid_shape}")
        elif np.count_nonzero(S - np.diag(np.diag(S))) == 0:
            shape = g * np.abs(np.diag(S))
        else:
            h = np.min(np.linalg.norm(a, axis=1) / g)
            shape = np.array(commensurate_shape(S, grid_for_spacing(S @ a, h)))
        self.shape = tuple(int(x) for x in shape)
        self.n_basis = int(np.prod(self.shape))
        self.cell = np.asarray(self.atoms.cell[:], float)
        self.recip = np.linalg.inv(self.cell).T                  # B: rows with B_α·A_β = δ
        self.metric = self.recip @ self.recip.T                  # M_αβ = B_α·B_β (1/Å²)
        self.lengths = np.linalg.norm(self.cell, axis=1)
        self.h = self.lengths / np.array(self.shape)              # grid spacing along each A_α (Å)
        self.steps = self.cell / np.array(self.shape)[:, None]    # grid step vectors (Å)
        self.fd_order = fd_order
        self.volume = float(abs(np.linalg.det(self.cell)))
        pps = {**PSEUDOPOTENTIALS, **(pseudopotentials or {})}
        syms = self.atoms.get_chemical_symbols()
        missing = sorted(set(syms) - set(pps))
        if missing:
            raise InputError(f"no pseudopotential for {', '.join(missing)} (have {', '.join(sorted(pps))})")
        self.pp = [pps[s] for s in syms]
        self.n_electrons = float(sum(p["Z"] for p in self.pp))
        # electron gas of the mean valence density → Lindhard screening
        n = self.n_electrons / self.volume
        self.kf = (3 * math.pi ** 2 * n) ** (1 / 3) if n > 0 else 0.0
        self.ktf2 = 4 * self.kf / (math.pi * BOHR_ANG) if n > 0 else 0.0
        self.screening = screening if n > 0 else "none"
        self.external_potential = external_potential
        self._setup_reciprocal()

    # ------------------------------------------------------------ potential
    def _setup_reciprocal(self):
        shape = self.shape
        freqs = [np.fft.fftfreq(n, d=1.0 / n) for n in shape]           # integer G components
        m = np.array(np.meshgrid(*freqs, indexing="ij"))                  # [3, N1, N2, N3]
        self.gvec = 2 * np.pi * np.tensordot(self.recip.T, m, axes=(1, 0))  # Cartesian G (1/Å)
        q = np.sqrt(np.sum(self.gvec ** 2, axis=0))
        self.qnorm = q
        eps = lindhard(q, self.kf, self.ktf2, self.screening)
        self.form = {}
        for p in self.pp:
            key = (p["Z"], p["rc"], p["qs"])
            if key in self.form:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                v = -4 * math.pi * p["Z"] * E2_EV_A / q ** 2 * np.cos(q * p["rc"]) * np.exp(-(q / p["qs"]) ** 2) / eps
            v[0, 0, 0] = 0.0
            self.form[key] = v

    def potential(self, positions_av) -> np.ndarray:
        """V(r) on the grid (eV), float [N1, N2, N3]."""
        pos = np.asarray(positions_av, float)
        if pos.shape != (len(self.pp), 3):
            raise InputError(f"positions have shape {pos.shape}, the supercell has {len(self.pp)} atoms")
        if self.external_potential is not None:
            v = np.asarray(self.external_potential(pos), float)
            if v.shape != self.shape:
                raise InputError(f"external potential has grid {v.shape}, the model grid is {self.shape}")
            return v
        vg = np.zeros(self.shape, dtype=complex)
        for p, r in zip(self.pp, pos):
            phase = np.exp(-1j * np.tensordot(r, self.gvec, axes=(0, 0)))
            vg += self.form[(p["Z"], p["rc"], p["qs"])] * phase
        vg /= self.volume
        return np.real(np.fft.ifftn(vg) * self.n_basis)

    # ------------------------------------------------------------ Hamiltonian
    def _stencil(self):
        """The FD kinetic operator as {grid offset (3 ints): coefficient (eV)} (K-independent)."""
        if getattr(self, "_stencil_terms", None) is not None:
            return self._stencil_terms
        N = np.array(self.shape)
        c2 = FD_COEFFS[self.fd_order]
        c1 = FD_FIRST[self.fd_order]
        terms = {}
        pref = -HBAR2_OVER_2ME_EV_A2
        for a in range(3):
            scale = pref * self.metric[a, a] * N[a] ** 2
            for s_, c in enumerate(c2):
                for sign in ((1,) if s_ == 0 else (1, -1)):
                    off = [0, 0, 0]
                    off[a] = sign * s_
                    terms[tuple(off)] = terms.get(tuple(off), 0.0) + scale * c
            for b in range(a + 1, 3):
                if abs(self.metric[a, b]) < 1e-14:
                    continue
                scale = pref * 2 * self.metric[a, b] * N[a] * N[b]
                for sa, ca in enumerate(c1, start=1):
                    for sb, cb in enumerate(c1, start=1):
                        for ga in (1, -1):
                            for gb in (1, -1):
                                off = [0, 0, 0]
                                off[a], off[b] = ga * sa, gb * sb
                                terms[tuple(off)] = terms.get(tuple(off), 0.0) + scale * ga * ca * gb * cb
        self._stencil_terms = {k: v for k, v in terms.items() if v != 0.0}
        return self._stencil_terms

    def hamiltonian_petsc(self, positions_av, kpoint, comm):
        """H(K) as a PETSc Mat on ``comm`` with its rows split in whole x-planes, ⌊q N1/P⌋ …
        ⌊(q+1) N1/P⌋ − 1 on rank q: the slabs of the kinetic preconditioner's distributed FFT
        (:class:`spia_mpi.engine.preconditioners.SlabFFT`), which then needs no redistribution of
        the rows before and after its FFTs (PETSc's own split agrees only when P divides N1)."""
        from spia_mpi.engine.preconditioners import slab_bounds
        from spia_mpi.models.base import dense_rows_to_petsc
        planes = slab_bounds(self.shape[0], comm.Get_size())
        rank = comm.Get_rank()
        n_local = int(planes[rank + 1] - planes[rank]) * self.shape[1] * self.shape[2]
        return dense_rows_to_petsc(self, positions_av, kpoint, comm, n_local)

    def hamiltonian_rows(self, positions_av, kpoint, r0, r1):
        """CSR arrays (indptr, indices, data) of rows r0 … r1−1 of H(K), generated locally.

        Only this row range of the kinetic stencil is built (memory O((r1 − r0) · stencil
        size)); the diagonal takes the slice r0:r1 of V(r) from :meth:`potential`, which
        is evaluated on the whole grid on every caller (FFT; O(N) floats, transient).
        Rows are ordered like the flattened grid, index (i1·N2 + i2)·N3 + i3.
        """
        from scipy.sparse import csr_matrix
        K = np.asarray(kpoint, float).reshape(3)
        N = np.array(self.shape)
        r0, r1 = int(r0), int(r1)
        if not 0 <= r0 <= r1 <= self.n_basis:
            raise ValueError(f"row range {r0}:{r1} outside 0:{self.n_basis}")
        n_loc = r1 - r0
        terms = self._stencil()
        offsets = np.array(list(terms), dtype=np.int64)                 # [n_terms, 3]
        coefs = np.array(list(terms.values()), dtype=float)
        grid = np.stack(np.unravel_index(np.arange(r0, r1, dtype=np.int64), self.shape), axis=1)
        n_cols = len(offsets) + 1
        cols = np.empty((n_loc, n_cols), dtype=np.int64)
        vals = np.empty((n_loc, n_cols), dtype=complex)
        for t, (off, coef) in enumerate(zip(offsets, coefs)):
            j = grid + off
            wraps = np.floor_divide(j, N)                                 # supercell images crossed
            jj = j - wraps * N
            cols[:, t] = (jj[:, 0] * N[1] + jj[:, 1]) * N[2] + jj[:, 2]
            vals[:, t] = coef * np.exp(2j * np.pi * (wraps @ K))
        del grid
        cols[:, -1] = np.arange(r0, r1)
        vals[:, -1] = self.potential(positions_av).reshape(-1)[r0:r1]
        m = csr_matrix((vals.ravel(), cols.ravel(), np.arange(n_loc + 1, dtype=np.int64) * n_cols),
                       shape=(n_loc, self.n_basis))
        m.sum_duplicates()                                                # small grids: offsets may alias
        m.sort_indices()
        return m.indptr, m.indices, m.data

    def kinetic_symbol(self, kpoint) -> np.ndarray:
        """Eigenvalues of the FD kinetic operator on the grid's plane waves (eV), float [N1, N2, N3].

        The Bloch plane wave ψ_j = e^{2πi Σ_α (K_α + n_α) j_α / N_α} (K in reduced supercell
        coordinates, n_α = 0 … N_α−1 in numpy FFT order) is an exact eigenvector of the stencil
        with eigenvalue t(n) = Σ_offsets c_off cos(2π Σ_α off_α (K_α + n_α)/N_α) (the stencil is
        symmetric, so the sine terms cancel). This is ½|K+G|²'s finite-difference analogue.
        """
        from spia_mpi.engine.preconditioners import stencil_symbol
        return stencil_symbol(self._stencil(), self.shape, kpoint)

    def resolvent_preconditioner(self, kpoint):
        """PETSc python-PC context approximating (z − H)⁻¹ by (z − V̄ − T)⁻¹, diagonal in plane
        waves and applied by FFTs distributed over the operator's ranks
        (:class:`spia_mpi.engine.preconditioners.KineticPreconditioner`); cached per K, so that its set-up
        and shared memory serve every bead (a new K releases the previous one's: collective, as every rank
        of a group solves the same task)."""
        from spia_mpi.engine.preconditioners import KineticPreconditioner
        key = tuple(np.round(np.asarray(kpoint, float).reshape(3), 12))
        cached = getattr(self, "_kinetic_pc", None)           # the current K only (tasks go K by K)
        if cached is None or cached[0] != key:
            if cached is not None:
                cached[1].release()
            self._kinetic_pc = (key, KineticPreconditioner(self.shape, self._stencil(), kpoint))
        return self._kinetic_pc[1]

    def _sparse(self, positions_av, kpoint):
        """The whole H(K) as a scipy CSR matrix (serial use: tests, dense paths)."""
        from scipy.sparse import csr_matrix
        indptr, indices, data = self.hamiltonian_rows(positions_av, kpoint, 0, self.n_basis)
        return csr_matrix((data, indices, indptr), shape=(self.n_basis,) * 2)

    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        return self._sparse(positions_av, kpoint).toarray()

    # ------------------------------------------------------------ reference states
    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        """The n_per_k lowest plane waves e^{i(k+G)·r}/√N at every folded primitive k (of the |G| ≤ 3
        shells, distinct on the grid: a k + G that equals a lower one on every grid point is skipped)."""
        if n_per_k < 1:
            raise InputError(f"states per k = {n_per_k} must be ≥ 1")
        kpts = supercells.folded_kpoints(self.supercell_matrix, kpoint)
        a = np.asarray(self.primitive.cell[:], float)
        b = 2 * np.pi * np.linalg.inv(a).T
        nmax = 3
        rng = np.arange(-nmax, nmax + 1)
        G = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T @ b
        grid = (np.array(np.meshgrid(*[np.arange(n) / n for n in self.shape], indexing="ij"))
                .reshape(3, -1).T @ self.cell)
        vecs, kidx, bidx, ens = [], [], [], []
        for ik, k in enumerate(kpts):
            kc = k @ b
            kg = kc[None, :] + G
            e = HBAR2_OVER_2ME_EV_A2 * np.sum(kg ** 2, axis=1)
            order = _distinct_on_grid(kg[np.argsort(e, kind="stable")], e, self.cell, self.shape)[:n_per_k]
            for nb, gi in enumerate(order):
                vecs.append(np.exp(1j * grid @ kg[gi]) / math.sqrt(self.n_basis))
                kidx.append(ik)
                bidx.append(nb)
                ens.append(e[gi])
        return ReferenceStates(np.array(vecs).T, np.array(kidx), np.array(bidx), kpts, np.array(ens))


def _distinct_on_grid(kg_sorted, energies, cell, shape) -> np.ndarray:
    """Indices (into ``energies``, by rising energy) of the wavevectors whose plane waves differ on
    the grid: k + G and k + G' coincide on every grid point when (G − G')·A_β/2π is a multiple of
    N_β along every supercell vector A_β."""
    order = np.argsort(energies, kind="stable")
    c = kg_sorted @ np.asarray(cell, float).T / (2 * np.pi)            # same k: integer differences
    m = np.rint(c - c[0]).astype(int) % np.asarray(shape, int)
    _, first = np.unique(m, axis=0, return_index=True)
    return order[np.sort(first)]


# ---------------------------------------------------------------- DFT local potentials
#: energy unit of the values in a potential file → eV
POTENTIAL_UNITS = {"ev": 1.0, "hartree": HARTREE_EV, "rydberg": 0.5 * HARTREE_EV}


def potential_file_format(path, fmt: str = "auto") -> str:
    """'vasp' (LOCPOT/CHGCAR-format) or 'cube', from ``fmt`` or the file name."""
    if fmt in ("vasp", "cube"):
        return fmt
    if fmt != "auto":
        raise InputError(f"potential file format '{fmt}' is not one of auto, vasp, cube")
    name = Path(path).name.lower()
    if name.endswith(".cube") or name.endswith(".cub"):
        return "cube"
    if any(s in name for s in ("locpot", "chgcar", "chg", ".vasp")):
        return "vasp"
    raise InputError(f"{path}: cannot tell the format from the name (a '.cube' file, or 'LOCPOT'/'CHGCAR' "
                     "in the name for VASP); set the format explicitly")


def read_potential_file(path, fmt: str = "auto", units: str = "auto"):
    """Raw V(r) of a VASP LOCPOT/CHGCAR-format or Gaussian cube file, converted to eV.

    Returns (v [n1, n2, n3] float (eV), atoms (ase.Atoms, Å), origin [3] (Å)); v[i1, i2, i3]
    is the value at r = Σ_α (i_α/n_α) A_α + origin. ``units='auto'``: eV for VASP (LOCPOT holds
    the potential energy of an electron in eV), Hartree for cube files (atomic units; the cell
    and positions of a cube file are in Bohr and converted to Å by ASE). No sign change is made
    here. ASE's readers are called on open files (never ``ase.io.read``, which would broadcast
    over ASE's own MPI communicator).
    """
    path = Path(path)
    kind = potential_file_format(path, fmt)
    if units == "auto":
        units = "ev" if kind == "vasp" else "hartree"
    if units not in POTENTIAL_UNITS:
        raise InputError(f"potential units '{units}' are not one of auto, {', '.join(POTENTIAL_UNITS)}")
    if not path.is_file():
        raise InputError(f"potential file {path} does not exist")
    try:
        if kind == "vasp":
            from ase.calculators.vasp import VaspChargeDensity
            d = VaspChargeDensity(str(path))
            if not d.chg:
                raise ValueError("no volumetric data block")
            if d.chgdiff:
                raise InputError(f"{path}: spin-polarised file (two data blocks); the grid model is "
                                 "spin-degenerate and needs one potential")
            atoms = d.atoms[-1]
            v = d.chg[-1] * atoms.get_volume()        # ASE divides every block by the cell volume
            origin = np.zeros(3)
        else:
            from ase.io.cube import read_cube
            with open(path) as fh:
                dct = read_cube(fh, read_data=True)
            atoms, v, origin = dct["atoms"], dct["data"], np.asarray(dct["origin"], float)
    except InputError:
        raise
    except Exception as exc:     # a truncated or foreign file: one clear message
        raise InputError(f"{path}: cannot read as a {kind} potential file ({type(exc).__name__}: {exc})") from exc
    return np.asarray(v, float) * POTENTIAL_UNITS[units], atoms, origin


class PotentialFiles:
    """``external_potential`` of a :class:`GridModel`: V(r) of every (configuration, bead) from a file.

    Parameters
    ----------
    model : GridModel — supplies the supercell, grid shape and atomic numbers.
    files : str or sequence of str
        A pattern with ``{c}`` (configuration) and ``{b}`` (bead) fields (Python format, e.g.
        ``"pot/conf{c:03d}_b{b}.LOCPOT"``), or one path per (configuration, bead) in
        configuration-major order (index c·N_b + b).
    positions_cbav : float [n_conf, n_beads, n_atoms, 3] (Å) — the configurations in use.
    conf_index : int [n_conf] — the number c of each configuration in the files' numbering
        (default 0 … n_conf−1; ``run`` passes skip + stride·i).
    reference_file : path or None — V of the reference structure (``model.reference_positions``).
    fmt, units : see :func:`read_potential_file`.
    sign : +1 if the file holds the electron's potential energy (VASP LOCPOT), −1 if it holds
        the electrostatic potential φ (V = −eφ; e.g. a Gaussian ``cubegen potential`` cube).
    zero_mean : drop the G = 0 component (grid average), as the pseudopotential model does, so
        the absolute potential reference of each DFT run does not shift the spectrum.

    Checks, with an :class:`InputError` naming the file: the cell equals the model supercell
    (1e-4 Å), the grid origin is 0, the grid equals the model grid or is an integer multiple of it
    along every axis (then V is Fourier-truncated onto the model grid: the components with the
    model grid's G-vectors are kept, as in the pseudopotential model), and the file's atoms are
    the configuration's atoms (same numbers, every atom within 1e-3 Å modulo the supercell).

    Calls are matched to (c, b) by the exact positions (a SHA-1 of the float64 array), so the
    model interface stays ``H(positions)``. Each read takes the whole file on the calling rank
    (O(N_file) transient memory); the potentials of the last ``n_beads`` (configuration, bead)
    pairs are kept (n_beads grids), so the resolvent pass — configuration-major, every K of a
    configuration's beads in turn — reads each file once.
    """

    CELL_ATOL = 1e-4
    POSITION_ATOL = 1e-3

    def __init__(self, model, files, positions_cbav, conf_index=None, reference_file=None,
                 fmt: str = "auto", units: str = "auto", sign: float = 1.0, zero_mean: bool = True):
        pos = np.asarray(positions_cbav, float)
        if pos.ndim != 4 or pos.shape[2:] != (len(model.atoms), 3):
            raise InputError(f"positions have shape {pos.shape}, expected [n_conf, n_beads, {len(model.atoms)}, 3]")
        n_conf, n_beads = pos.shape[:2]
        conf_index = np.arange(n_conf) if conf_index is None else np.asarray(conf_index, int)
        if conf_index.shape != (n_conf,):
            raise InputError(f"conf_index has {conf_index.shape} entries for {n_conf} configurations")
        if sign not in (1, -1):
            raise InputError(f"potential sign {sign} must be +1 or −1")
        if units != "auto" and units not in POTENTIAL_UNITS:
            raise InputError(f"potential units '{units}' are not one of auto, {', '.join(POTENTIAL_UNITS)}")
        self.model, self.fmt, self.units, self.sign, self.zero_mean = model, fmt, units, float(sign), zero_mean
        self._paths = {}
        for i, c in enumerate(conf_index):
            for b in range(n_beads):
                if isinstance(files, (str, Path)):
                    try:
                        path = str(files).format(c=int(c), b=b)
                    except (KeyError, IndexError, ValueError) as exc:
                        raise InputError(f"potential file pattern '{files}': only the fields {{c}} and {{b}} "
                                         f"are allowed ({exc})") from exc
                else:
                    if len(files) <= int(c) * n_beads + b:
                        raise InputError(f"potential file list has {len(files)} entries; configuration {c}, "
                                         f"bead {b} needs entry {int(c) * n_beads + b}")
                    path = str(files[int(c) * n_beads + b])
                self._paths[self._key(pos[i, b])] = (Path(path), f"configuration {c}, bead {b}")
        if reference_file:
            self._paths.setdefault(self._key(model.reference_positions), (Path(reference_file), "reference structure"))
        self._cache = {}                     # positions key → V, the last n_beads in insertion order
        self._cache_size = n_beads

    @staticmethod
    def _key(positions_av):
        import hashlib
        return hashlib.sha1(np.ascontiguousarray(positions_av, dtype=np.float64).tobytes()).hexdigest()

    def paths(self):
        """Every file this provider may read (for an existence check before a run)."""
        return sorted({p for p, _ in self._paths.values()})

    def check(self, positions_av):
        """Before a run: every file exists, and the one for ``positions_av`` is fully valid."""
        missing = [str(p) for p in self.paths() if not p.is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise InputError(f"{len(missing)} potential file(s) missing: {', '.join(missing[:3])}{more}")
        path, what = self.path_for(positions_av)
        self.load(path, positions_av, what)

    def path_for(self, positions_av):
        hit = self._paths.get(self._key(positions_av))
        if hit is None:
            raise InputError("no potential file for these positions: they are neither one of the configurations "
                             "given to the potential files nor (with a reference file) the reference structure")
        return hit

    def __call__(self, positions_av) -> np.ndarray:
        key = self._key(positions_av)          # cache by positions: one file may serve two beads only if valid for both
        if key not in self._cache:
            path, what = self.path_for(positions_av)
            v = self.load(path, positions_av, what)
            while len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]       # the oldest
            self._cache[key] = v
        return self._cache[key]

    def load(self, path, positions_av, what: str = "") -> np.ndarray:
        """V on the model grid (eV), float [N1, N2, N3], from ``path`` checked against ``positions_av``."""
        m = self.model
        v, atoms, origin = read_potential_file(path, self.fmt, self.units)
        where = f"{path}" + (f" ({what})" if what else "")
        cell = np.asarray(atoms.cell[:], float)
        if not np.allclose(cell, m.cell, atol=self.CELL_ATOL):
            raise InputError(f"{where}: cell {cell.round(5).tolist()} Å differs from the model supercell "
                             f"{m.cell.round(5).tolist()} Å")
        frac = np.linalg.solve(m.cell.T, origin)                      # origin in cell fractions
        if np.max(np.abs(frac - np.round(frac)) * np.array(v.shape)) > 1e-3:   # > 1e-3 grid steps
            raise InputError(f"{where}: grid origin {origin.round(5).tolist()} Å is not 0 (the model grid starts "
                             "at the cell origin)")
        self.check_atoms(atoms, positions_av, where)
        v = fourier_resample(v, m.shape, where)
        if self.zero_mean:
            v = v - v.mean()
        return self.sign * v

    def check_atoms(self, atoms, positions_av, where):
        m = self.model
        pos = np.asarray(positions_av, float)
        if len(atoms) != len(pos):
            raise InputError(f"{where}: {len(atoms)} atoms in the file, the configuration has {len(pos)}")
        if sorted(atoms.numbers) != sorted(m.atoms.numbers):
            raise InputError(f"{where}: the file's elements differ from the model's")
        inv = np.linalg.inv(m.cell)
        d = (pos[:, None, :] - atoms.get_positions()[None, :, :]) @ inv
        d = (d - np.round(d)) @ m.cell
        dist = np.linalg.norm(d, axis=-1)
        dist[m.atoms.numbers[:, None] != atoms.numbers[None, :]] = np.inf
        worst = np.max(np.min(dist, axis=1))
        if worst > self.POSITION_ATOL:
            raise InputError(f"{where}: the file's atoms are not at the configuration's positions "
                             f"(an atom is {worst:.3g} Å from any file atom of its element; tolerance "
                             f"{self.POSITION_ATOL} Å) — wrong file for this configuration/bead?")


def fourier_resample(v, shape, where: str = "potential") -> np.ndarray:
    """V on a grid of ``shape`` from V on a grid that is an integer multiple of it along every axis.

    Keeps the Fourier components of the target grid's integer frequencies (``numpy.fft.fftfreq``
    order, so the Nyquist component of an even grid is −N/2, as in :class:`GridModel`); the real
    part is returned. The same shape is returned unchanged.
    """
    v = np.asarray(v, float)
    shape = tuple(int(n) for n in shape)
    if v.shape == shape:
        return v
    if v.ndim != 3 or any(nf % n for nf, n in zip(v.shape, shape)):
        raise InputError(f"{where}: grid {list(v.shape)} is neither the model grid {list(shape)} nor an "
                         "integer multiple of it along every axis")
    vg = np.fft.fftn(v) / v.size
    idx = [np.mod(np.fft.fftfreq(n, d=1.0 / n).astype(int), nf) for n, nf in zip(shape, v.shape)]
    sub = vg[np.ix_(*idx)]
    return np.real(np.fft.ifftn(sub) * np.prod(shape))


def fermi_level_of_reference(model, kpoints, temperature_k: float, dense_max: int = 3000) -> float:
    """ε_F of the reference structure from the eigenvalues of H(K) at every K (eV).

    Small grids (≤ ``dense_max`` points): all eigenvalues (LAPACK). Larger grids: the
    lowest N/2 + 8 eigenvalues per K with SLEPc (Krylov–Schur), doubling the count until
    the highest one lies 40 k_BT above ε_F, so the occupations are complete.
    """
    from spia_mpi.models import bands
    from spia_mpi import units
    kpoints = np.atleast_2d(kpoints)
    n_per_spin = 0.5 * model.n_electrons * len(kpoints)
    if model.n_basis <= dense_max:
        ev = np.concatenate([np.linalg.eigvalsh(model.hamiltonian_dense(model.reference_positions, K))
                             for K in kpoints])
        return bands.fermi_level(ev, n_per_spin, temperature_k)
    n = min(model.n_basis, int(math.ceil(0.5 * model.n_electrons)) + 8)
    while True:
        ev = [bands.lowest_eigenpairs(model, K, n)[0] for K in kpoints]
        ef = bands.fermi_level(np.concatenate(ev), n_per_spin, temperature_k)
        if n == model.n_basis or min(e[-1] for e in ev) - ef > 40 * units.KB_EV_PER_K * temperature_k:
            return ef
        n = min(model.n_basis, 2 * n)
