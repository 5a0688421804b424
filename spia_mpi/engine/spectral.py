"""Spectral function ρ(k, E) on a k-path: configuration × bead average of unfolded spectra.

Quasi-static approximation of the paper (Supplement Eqs. S26–S27):

    ρ(k, E) = ⟨ Σ_N W_N(k; R) δ_γ(E − ε_N(R)) ⟩_{c, b},   δ_γ(x) = (γ/π)/(x² + γ²),

with ε_N, ψ_N the eigenpairs of the supercell Hamiltonian H(R_cb, K) at the K onto which k
folds and W_N(k) the unfolding weights (:mod:`spia_mpi.engine.unfolding`); units: states per
eV per primitive cell per spin; E relative to ε_F. Alongside, the Green's-function route:
Ḡ(k) = ⟨P†[z − H(R)]⁻¹P⟩ at z = ε_F + iη (η the J-th fermionic Matsubara frequency) on the
reference Bloch states P of the path k, its renormalised bands ε_nk and half widths γ_nk
(:func:`spia_mpi.engine.spia.renormalised_bands`, the SPIA quasi-particles) and
ρ_G(k, E) = −Im Ḡ(k, E + iγ)/π = Σ_n δ_{γ + γ_nk}(E − ε_nk), the quasi-particle poles
continued to the real axis and broadened like the unfolded ρ.

Work decomposition (:func:`compute_spectral`): the path k-points are grouped by their
supercell K; a *unit* is one (K, configuration block, bead group); units are distributed over the
ranks of ``comm`` (contiguous, balanced), each rank solves its units serially and stores
each finished unit in the checkpoint (``store``). Unit sums are gathered on rank 0 (which
writes the file) and added in unit order, so the result is bit-identical for any number of
ranks and after a restart; the other ranks get None. Errors:
delete-one-block jackknife (:func:`spia_mpi.engine.stats.jackknife_error`).

Index letters: ``k`` path point, ``e`` energy grid point, ``n`` band (Green's route) or
supercell state, ``j`` configuration block.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from spia_mpi.engine import spia, unfolding
from spia_mpi.engine.stats import jackknife_error
from spia_mpi.errors import InputError
from spia_mpi.io.log import progress
from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, gather_dict, partition

logger = logging.getLogger(__name__)


def lorentzian_spectrum(energies_n, weights_kn, grid_e, gamma) -> np.ndarray:
    """Σ_n W_kn (γ_n/π)/((E_e − ε_n)² + γ_n²): float [n_k, n_e] (1/eV).

    energies_n float [n] (eV); weights_kn float [n_k, n]; grid_e float [n_e] (eV);
    gamma: half width (eV), a scalar or float [n_k, n] per weight.
    """
    e = np.asarray(energies_n, float)
    w = np.asarray(weights_kn, float)
    g = np.broadcast_to(np.asarray(gamma, float), w.shape)
    x = np.asarray(grid_e, float)[None, None, :] - e[None, :, None]
    lor = (g[..., None] / np.pi) / (x ** 2 + g[..., None] ** 2)                # [n_k, n, n_e]
    return np.einsum("kn,kne->ke", w, lor)


@dataclass(frozen=True)
class SpectralSetup:
    """What every unit needs (energies eV; k reduced primitive).

    kpath_frac   float [n_k, 3] path points; K float [n_K, 3]; k_of_K int [n_k] (index into K)
    grid_ev      float [n_e] energies relative to ε_F
    broadening   δ half width γ (eV); fermi_level ε_F (eV)
    n_bands      supercell eigenpairs per K (lowest); eigensolver 'dense' or 'slepc'
    z            complex, ε_F + iη of the Green's route, or None (no Green's route)
    states_per_k reference states per path k of the Green's route
    resolvent    'dense' or 'petsc' (Green's route when not all eigenpairs are computed)
    """

    kpath_frac: np.ndarray
    K: np.ndarray
    k_of_K: np.ndarray
    grid_ev: np.ndarray
    broadening: float
    fermi_level: float
    n_bands: int
    eigensolver: str = "dense"
    z: complex | None = None
    states_per_k: int = 1
    resolvent: str = "dense"
    resolvent_options: dict | None = None

    def path_points(self, iK: int) -> np.ndarray:
        """Indices of the path points folding onto K number ``iK``, int [n_k(K)]."""
        return np.flatnonzero(self.k_of_K == iK)


def eigenpairs(model, setup: SpectralSetup, K, positions_av):
    """(ε float [n_bands] eV, ψ complex [n_basis, n_bands]) of H(R, K), serial.

    A model with an overlap (``overlap_dense``: a basis that moves with the ions, GPAW) gives
    the generalized problem H c = ε S c, c†Sc = 1 (dense LAPACK)."""
    overlap = getattr(model, "overlap_dense", None)
    if overlap is not None:
        from scipy.linalg import eigh
        return eigh(model.hamiltonian_dense(positions_av, K), overlap(positions_av, K),
                    subset_by_index=[0, setup.n_bands - 1])
    from spia_mpi.models.bands import lowest_eigenpairs
    return lowest_eigenpairs(model, K, setup.n_bands, positions_av=positions_av, method=setup.eigensolver)


def path_reference_states(model, setup: SpectralSetup, iK: int):
    """Reference Bloch states of the path points of K number ``iK``.

    Returns (P complex [n_basis, n_s], path point of each state int [n_s], band int [n_s],
    reference energies float [n_s] eV).
    """
    K = setup.K[iK]
    ref = model.reference_states(K, setup.states_per_k)
    cols, where = [], []
    for ip in setup.path_points(iK):
        d = ref.kpoints_frac - setup.kpath_frac[ip][None, :]
        ik = np.flatnonzero(np.all(np.abs(d - np.round(d)) < 1e-8, axis=1))
        sel = np.flatnonzero(ref.k_index == ik[0])
        cols.append(sel)
        where.append(np.full(sel.size, ip))
    cols = np.concatenate(cols)
    return ref.vectors[:, cols], np.concatenate(where), ref.band_index[cols], ref.energies[cols]


class _Resolvent:
    """Q†[zS − H(R)]⁻¹Q of one K (S = 1, Q = P unless the model has an overlap, see
    :meth:`ElectronicModel.projected_problem_dense`): from the eigenpairs when all are computed
    (S-orthonormal: [zS − H]⁻¹ = Σ_N c_N c_N†/(z − ε_N)), else a dense or PETSc solve."""

    def __init__(self, model, setup: SpectralSetup):
        self.model, self.setup = model, setup
        self.ksp = None
        if setup.resolvent == "petsc" and setup.n_bands < model.n_basis:
            from spia_mpi.engine.resolvent import ResolventSolver
            from spia_mpi.parallel.mpi import self_comm
            self.ksp = ResolventSolver(self_comm(), setup.resolvent_options)

    def __call__(self, K, positions_av, p, e, v) -> np.ndarray:
        z = self.setup.z
        if self.setup.n_bands == self.model.n_basis:          # complete spectrum: exact spectral sum
            cross = getattr(self.model, "cross_overlap", None)      # Q = X†P for a moving basis (GPAW)
            q = p if cross is None else cross(positions_av, K).conj().T @ p
            a = v.conj().T @ q
            return a.conj().T @ (a / (z - e)[:, None])
        if self.ksp is None:
            from spia_mpi.engine.resolvent import projected_resolvent_dense
            h, s, q = self.model.projected_problem_dense(positions_av, K, p)
            return projected_resolvent_dense(h, z, q, s)
        h, s, q = self.model.projected_problem_petsc(positions_av, K, p, self.ksp.comm)
        make_pc = getattr(self.model, "resolvent_preconditioner", None)
        try:
            g, _ = self.ksp.solve(h, z, q, make_pc(K) if make_pc else None, s_mat=s)
        finally:
            h.destroy()
            if s is not None:
                s.destroy()
        return g


def unit_sums(model, setup: SpectralSetup, iK: int, positions_ncav, resolvent=None, refs=None) -> dict:
    """Sums over the configuration-beads of one unit (K number ``iK``).

    ``positions_ncav``: float [n, n_atoms, 3] (Å), the unit's configuration-beads.
    Returns arrays (k = the path points of K, in path order):
    rho float [n_k, n_e] Σ_c ρ_c(k, E); m0, m1, m2 float [n_k] Σ_c Σ_N W_N ε_Nⁱ (ε relative
    to ε_F, eV^i); count int; and with the Green's route g complex [n_s, n_s] Σ_c g_c.
    """
    K = setup.K[iK]
    kp = setup.kpath_frac[setup.path_points(iK)]
    nk = kp.shape[0]
    out = {"rho": np.zeros((nk, setup.grid_ev.size)), "m0": np.zeros(nk), "m1": np.zeros(nk),
           "m2": np.zeros(nk), "count": np.array(len(positions_ncav))}
    if refs is not None:
        out["g"] = np.zeros((refs[0].shape[1],) * 2, dtype=complex)
    for pos in positions_ncav:
        pos = np.asarray(pos, float)
        e, v = eigenpairs(model, setup, K, pos)
        w = unfolding.unfolding_weights(model, v, K, kp, pos)
        er = e - setup.fermi_level
        out["rho"] += lorentzian_spectrum(er, w, setup.grid_ev, setup.broadening)
        out["m0"] += w.sum(axis=1)
        out["m1"] += w @ er
        out["m2"] += w @ er ** 2
        if refs is not None:
            out["g"] += resolvent(K, pos, refs[0], e, v)
    return out


def static_spectrum(model, setup: SpectralSetup, comm=None) -> np.ndarray:
    """The static band structure on the path: the unfolded eigenpairs of the reference structure.

    A perfect crystal unfolds with weight 1 or 0 per state; a degenerate level may mix folded k,
    but the weights summed over the level are integers, so each level appears with multiplicity
    round(Σ W). Returns float [n_k, n_max] (eV relative to ε_F, ascending, NaN-padded).
    """
    n_K = setup.K.shape[0]
    local = {}
    with agree_on_failure(comm, "the static bands"):
        for iK in partition(n_K, 1 if comm is None else comm.size, 0 if comm is None else comm.rank):
            e, v = eigenpairs(model, setup, setup.K[iK], model.reference_positions)
            w = unfolding.unfolding_weights(model, v, setup.K[iK], setup.kpath_frac[setup.path_points(iK)])
            local[iK] = [_levels(e - setup.fermi_level, row) for row in w]
    parts = allgather_dict(local, comm)
    bands = [None] * setup.kpath_frac.shape[0]
    for iK in range(n_K):
        for ip, levels in zip(setup.path_points(iK), parts[iK]):
            bands[ip] = levels
    out = np.full((len(bands), max(1, max(len(b) for b in bands))), np.nan)
    for ip, b in enumerate(bands):
        out[ip, :len(b)] = b
    return out


def _levels(energies, weights, tol_ev: float = 1e-7) -> np.ndarray:
    """Energies of the degenerate levels (|Δε| < tol) repeated round(Σ W) times, ascending."""
    e = np.asarray(energies, float)
    edges = np.flatnonzero(np.diff(e) > tol_ev) + 1
    out = []
    for grp in np.split(np.arange(e.size), edges):
        out += [float(e[grp].mean())] * int(round(float(np.sum(weights[grp]))))
    return np.array(out)


@dataclass
class SpectralResult:
    """ρ(k, E) with jackknife errors and the Green's-route bands (energies relative to ε_F, eV).

    rho, rho_error        float [n_k, n_e]  (states / eV / primitive cell / spin)
    weight, weight_error  float [n_k]  ⟨Σ_N W_N(k)⟩ (bands in the computed window)
    centroid, centroid_error  float [n_k]  ⟨Σ W ε⟩/⟨Σ W⟩ (eV)
    spread, spread_error  float [n_k]  √(⟨Σ W ε²⟩/⟨Σ W⟩ − centroid²) (eV)
    static_bands          float [n_k, n_max]  reference structure unfolded (NaN-padded, :func:`static_spectrum`)
    greens: dict or None — bands/half_width/reference and their errors float [n_k, n_s],
        rho/rho_error float [n_k, n_e], band_index int [n_s_per_k], eta (eV), offdiag float [n_K]
    """

    rho: np.ndarray
    rho_error: np.ndarray
    weight: np.ndarray
    weight_error: np.ndarray
    centroid: np.ndarray
    centroid_error: np.ndarray
    spread: np.ndarray
    spread_error: np.ndarray
    static_bands: np.ndarray
    n_samples: int
    n_blocks: int
    greens: dict | None = None


def compute_spectral(model, positions_cbav, setup: SpectralSetup, *, n_blocks: int = 8, bead_groups: int = 1,
                     comm=None, store=None) -> SpectralResult | None:
    """ρ(k, E) on the path from configurations ``positions_cbav`` float [n_c, n_b, n_atoms, 3] (Å;
    an h5py dataset is fine: each rank reads its units' configurations only).

    A unit is (K, configuration block, bead group): the beads are cut into ``bead_groups``
    contiguous groups (1: all beads in one unit; n_b: one bead per unit — more units to spread
    over many ranks, more checkpoint files). ``store``: a
    :class:`spia_mpi.io.checkpoint.TaskStore` with n_K · n_blocks · bead_groups tasks
    (task = (iK · n_blocks + block) · bead_groups + group), or None. ``comm``: communicator
    (None: serial). The result depends on ``bead_groups`` only through the order of sums.
    Under MPI the result is on rank 0 only (None elsewhere): only rank 0 writes it.
    """
    from spia_mpi.engine.workflow import block_of
    n_conf, n_beads = int(positions_cbav.shape[0]), int(positions_cbav.shape[1])
    n_blocks = int(min(n_blocks, n_conf))
    if n_blocks < 2:
        raise InputError(f"need at least 2 configurations (and blocks) for error bars, got {n_conf}")
    n_K = setup.K.shape[0]
    blk_of = block_of(n_conf, n_blocks)
    if not 1 <= bead_groups <= n_beads:
        raise InputError(f"spectral.bead_groups = {bead_groups} must be between 1 and the number of beads ({n_beads})")
    units = [(iK, j, bg) for iK in range(n_K) for j in range(n_blocks) for bg in range(bead_groups)]
    size, rank = (1, 0) if comm is None else (comm.size, comm.rank)
    mine = list(partition(len(units), size, rank))
    refs = {}
    local = {}
    with agree_on_failure(comm, "the spectral pass"):
        resolvent = _Resolvent(model, setup) if setup.z is not None else None
        for u in progress(mine, label="spectral: work units (K × block × bead group) on rank 0", logger=logger):
            iK, j, bg = units[u]
            got = store.load(u) if store is not None else None
            if got is None:
                if setup.z is not None and iK not in refs:
                    refs[iK] = path_reference_states(model, setup, iK)
                confs = np.flatnonzero(blk_of == j)
                beads = partition(n_beads, bead_groups, bg)
                pos = np.stack([np.asarray(positions_cbav[int(c), b], float) for c in confs for b in beads])
                got = unit_sums(model, setup, iK, pos, resolvent, refs.get(iK))
                if store is not None:
                    store.save(u, **got)
            local[u] = got
    static = static_spectrum(model, setup, comm)                 # collective: before the gather
    parts = gather_dict(local, comm)
    if comm is not None and comm.rank != 0:
        return None
    return _assemble(model, setup, parts, units, n_blocks, n_K, static)


def _assemble(model, setup, parts, units, n_blocks, n_K, static) -> SpectralResult:
    """Per-block sums in unit order → means, jackknife errors, the Green's route."""
    n_k, n_e = setup.kpath_frac.shape[0], setup.grid_ev.size
    rho = np.zeros((n_blocks, n_k, n_e))
    mom = np.zeros((3, n_blocks, n_k))
    count = np.zeros((n_K, n_blocks))
    gsum = {}
    for u, (iK, j, _) in enumerate(units):
        p = parts[u]
        idx = setup.path_points(iK)
        rho[j, idx] += p["rho"]
        for i in range(3):
            mom[i, j, idx] += p[f"m{i}"]
        count[iK, j] += int(p["count"])
        if "g" in p:
            gsum[(iK, j)] = gsum.get((iK, j), 0) + p["g"]
    n = count[0]                                         # samples per block (the same for every K)
    total_n = n.sum()
    rep_n = total_n - n                                  # [n_blocks]: samples without block j

    def mean_and_error(x):                               # x [n_blocks, ...] block sums
        tot = x.sum(axis=0)
        reps = (tot[None] - x) / rep_n.reshape((-1,) + (1,) * (x.ndim - 1))
        return tot / total_n, jackknife_error(reps), reps

    rho_m, rho_e, _ = mean_and_error(rho)
    (m0, m0_e, m0_r), (m1, _, m1_r), (m2, _, m2_r) = (mean_and_error(mom[i]) for i in range(3))
    centroid, spread = _centroid_spread(m0, m1, m2)
    c_r, s_r = _centroid_spread(m0_r, m1_r, m2_r)
    greens = _greens_route(model, setup, gsum, count, n_K, n_blocks) if setup.z is not None else None
    return SpectralResult(rho_m, rho_e, m0, m0_e, centroid, jackknife_error(c_r), spread, jackknife_error(s_r),
                          static, int(total_n), n_blocks, greens)


def _centroid_spread(m0, m1, m2):
    """First moment and standard deviation of the spectral weight: (⟨ε⟩, σ) (eV)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        c = m1 / m0
        return c, np.sqrt(np.maximum(m2 / m0 - c ** 2, 0.0))


def _greens_route(model, setup, gsum, count, n_K, n_blocks) -> dict:
    """Ḡ per K (full sample and jackknife replicas) → bands ε_nk, γ_nk and ρ_G on the path."""
    n_k = setup.kpath_frac.shape[0]
    nspk = setup.states_per_k
    out = {name: np.full((n_blocks + 1, n_k, nspk), np.nan) for name in ("bands", "half_width")}
    reference = np.full((n_k, nspk), np.nan)
    offdiag = np.zeros(n_K)
    for iK in range(n_K):
        _, where, band, ref_e = path_reference_states(model, setup, iK)
        tot = sum(gsum[(iK, j)] for j in range(n_blocks))
        for r in range(n_blocks + 1):                     # r = 0: full sample; r = j + 1: without block j
            g = tot if r == 0 else tot - gsum[(iK, r - 1)]
            c = count[iK].sum() - (0 if r == 0 else count[iK, r - 1])
            gbar, off = spia.average_greens(g, int(c), where)
            qp = spia.renormalised_bands(gbar, setup.z, where)
            if r == 0:
                offdiag[iK] = off
            for ip in np.unique(where):
                sel = np.flatnonzero(where == ip)
                order = np.argsort(qp.energies[sel])
                out["bands"][r, ip] = qp.energies[sel][order] - setup.fermi_level
                out["half_width"][r, ip] = qp.half_width[sel][order]
                reference[ip] = np.sort(ref_e[sel]) - setup.fermi_level
    rho = np.array([_greens_rho(out["bands"][r], out["half_width"][r], setup)
                    for r in range(n_blocks + 1)])
    return {"bands": out["bands"][0], "bands_error": jackknife_error(out["bands"][1:]),
            "half_width": out["half_width"][0], "half_width_error": jackknife_error(out["half_width"][1:]),
            "reference": reference, "rho": rho[0], "rho_error": jackknife_error(rho[1:]),
            "eta": float(np.imag(setup.z)), "offdiag": offdiag}


def _greens_rho(bands_kn, half_width_kn, setup) -> np.ndarray:
    """−Im Ḡ(k, E + iγ)/π = Σ_n δ_{γ + γ_nk}(E − ε_nk), float [n_k, n_e] (negative γ_nk floored at 0)."""
    out = np.zeros((bands_kn.shape[0], setup.grid_ev.size))
    for ik in range(bands_kn.shape[0]):
        g = setup.broadening + np.maximum(half_width_kn[ik], 0.0)
        out[ik] = lorentzian_spectrum(bands_kn[ik], np.ones((1, g.size)), setup.grid_ev, g[None, :])[0]
    return out


def make_setup(model, kpath_frac, grid_ev, broadening: float, fermi_level: float, n_bands: int = 0,
               eigensolver: str = "dense", z=None, states_per_k: int = 1, resolvent: str = "dense",
               resolvent_options=None) -> SpectralSetup:
    """A :class:`SpectralSetup` for ``model`` (K-points of the path found here); ``n_bands`` 0: all."""
    kp = np.atleast_2d(np.asarray(kpath_frac, float))
    K, k_of_K = unfolding.group_by_supercell_k(model.supercell_matrix, kp)
    n = model.n_basis if n_bands == 0 else int(n_bands)
    if not 1 <= n <= model.n_basis:
        raise InputError(f"spectral.n_bands = {n_bands}: the supercell Hamiltonian has {model.n_basis} states")
    if eigensolver != "dense" and hasattr(model, "overlap_dense"):
        raise InputError(f"spectral.eigensolver = '{eigensolver}': the {type(model).__name__} model has an "
                         f"overlap (generalized eigenproblem), use 'dense'")
    if broadening <= 0:
        raise InputError(f"spectral broadening {broadening} eV must be positive")
    if z is not None:                        # the Green's route's reference states exist (clear error early)
        model.reference_states(K[0], int(states_per_k))
    return SpectralSetup(kp, K, k_of_K, np.asarray(grid_ev, float), float(broadening), float(fermi_level), n,
                         eigensolver, z, int(states_per_k), resolvent, resolvent_options)
