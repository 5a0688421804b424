"""Real-space grid model: finite-difference kinetic energy + screened local pseudopotentials.

H = −(ħ²/2m_e)∇² + V(r; R) on a periodic grid spanning the supercell, with the
Bloch condition ψ(r + L) = e^{iK·L} ψ(r) across the supercell boundary, so the
basis (grid points) never moves with the ions and diffusing ions need no special
treatment (METHOD.md §2, the "common pseudo space" with no projectors).

* Kinetic energy: central finite differences of order 2, 4, 6 or 8 in the
  reduced grid coordinates u_α (r = Σ u_α A_α), ∇² = Σ_αβ (B_α·B_β) ∂²/∂u_α∂u_β
  with B the reciprocal vectors (B_α·A_β = δ_αβ): second-derivative stencils on
  the diagonal, products of first-derivative stencils for the mixed terms of a
  non-orthogonal cell. Diagonal supercell matrices only (the supercell grid is
  the primitive grid repeated).
* Potential: V(r) = Σ_G V(G) e^{iG·r}, V(G) = (1/Ω) Σ_a v_a(|G|) e^{−iG·R_a}
  over the supercell reciprocal vectors resolved by the grid, with
  v_a(q) = −(4π Z_a e²/q²) cos(q r_c,a) e^{−(q/q_s,a)²} / ε(q): Ashcroft's
  empty core (radius r_c) with a Gaussian smoothing q_s, screened by the
  Lindhard (or Thomas–Fermi) dielectric function of the mean valence density.
  The G = 0 term is dropped (it only shifts energies).
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

import numpy as np

from spia_mpi import supercells
from spia_mpi.errors import InputError
from spia_mpi.models import ElectronicModel, ReferenceStates
from spia_mpi.units import BOHR_ANG, HBAR2_OVER_2ME_EV_A2

E2_EV_A = 2.0 * 13.605693122994 * BOHR_ANG    # e²/(4πε0) in eV·Å (= 2 Ry · a0 = 14.3996)

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


class GridModel(ElectronicModel):
    """Real-space grid model of a supercell of ``primitive`` (see the module docstring).

    Parameters
    ----------
    primitive : ase.Atoms — reference structure (positions in Å), any cell.
    supercell_matrix : diagonal int [3, 3].
    grid_per_cell : 3 ints — grid points per primitive cell along each axis.
    fd_order : 2, 4, 6 or 8.
    screening : 'lindhard' (default), 'thomas-fermi' or 'none'.
    pseudopotentials : dict symbol → {"Z", "rc", "qs"} overriding ``PSEUDOPOTENTIALS``.
    external_potential : callable(positions_av) → float [N1, N2, N3] (eV) replacing the
        pseudopotential sum (e.g. V read from cube/LOCPOT files per configuration).
    """

    def __init__(self, primitive, supercell_matrix, grid_per_cell=(8, 8, 8), fd_order: int = 4,
                 screening: str = "lindhard", pseudopotentials: dict | None = None,
                 external_potential=None):
        S = supercells.as_supercell_matrix(supercell_matrix)
        if np.count_nonzero(S - np.diag(np.diag(S))):
            raise InputError(f"the grid model needs a diagonal supercell matrix, got {S.tolist()}")
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
        self.shape = tuple(int(x) for x in g * np.diag(S))
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
    def _kinetic_coo(self, kpoint):
        """(rows, cols, values) of the FD kinetic operator with Bloch phases."""
        K = np.asarray(kpoint, float).reshape(3)
        N = np.array(self.shape)
        grid = np.array(np.meshgrid(*[np.arange(n) for n in self.shape], indexing="ij")).reshape(3, -1).T
        flat = np.arange(self.n_basis)
        c2 = FD_COEFFS[self.fd_order]
        c1 = FD_FIRST[self.fd_order]
        terms = {}                                                # offset (3 ints) → coefficient (eV)
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
        rows, cols, vals = [], [], []
        for off, coef in terms.items():
            if coef == 0.0:
                continue
            j = grid + np.array(off)
            wraps = np.floor_divide(j, N)                         # supercell images crossed
            jj = np.mod(j, N)
            cols.append((jj[:, 0] * N[1] + jj[:, 1]) * N[2] + jj[:, 2])
            rows.append(flat)
            vals.append(coef * np.exp(2j * np.pi * (wraps @ K)))
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def _sparse(self, positions_av, kpoint):
        from scipy.sparse import coo_matrix
        r, c, v = self._kinetic_coo(kpoint)
        r = np.concatenate([r, np.arange(self.n_basis)])
        c = np.concatenate([c, np.arange(self.n_basis)])
        v = np.concatenate([v, self.potential(positions_av).ravel().astype(complex)])
        m = coo_matrix((v, (r, c)), shape=(self.n_basis,) * 2).tocsr()
        m.sum_duplicates()
        return m

    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        return self._sparse(positions_av, kpoint).toarray()

    def hamiltonian_rows(self, positions_av, kpoint, r0, r1):
        m = self._sparse(positions_av, kpoint)[r0:r1]
        m.sort_indices()
        return m.indptr, m.indices, m.data

    # ------------------------------------------------------------ reference states
    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        """The n_per_k lowest plane waves e^{i(k+G)·r}/√N at every folded primitive k."""
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
            order = np.argsort(e, kind="stable")[:n_per_k]
            for nb, gi in enumerate(order):
                vecs.append(np.exp(1j * grid @ kg[gi]) / math.sqrt(self.n_basis))
                kidx.append(ik)
                bidx.append(nb)
                ens.append(e[gi])
        return ReferenceStates(np.array(vecs).T, np.array(kidx), np.array(bidx), kpts, np.array(ens))


def fermi_level_of_reference(model, kpoints, temperature_k: float) -> float:
    """ε_F of the reference structure from all eigenvalues of H(K) (dense; small grids)."""
    from spia_mpi.workflow import reference_fermi_level
    ev = np.concatenate([np.linalg.eigvalsh(model.hamiltonian_dense(model.reference_positions, K))
                         for K in np.atleast_2d(kpoints)])
    return reference_fermi_level(ev, 0.5 * model.n_electrons * len(np.atleast_2d(kpoints)), temperature_k)
