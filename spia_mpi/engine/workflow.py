"""The parallel SPIA driver: configurations × K-points over MPI ranks, checkpointed.

Work decomposition. Configurations are cut into ``n_blocks`` fixed blocks
(block of c = ⌊c·n_blocks/n_conf⌋); a *unit* is one (K-point, block). The ranks
form configuration groups of ``ranks_per_group`` consecutive ranks
(:class:`ConfigurationGroups`; default one rank each); units are distributed over
the groups (contiguous, balanced) and the ranks of a group solve each resolvent
together on one distributed PETSc matrix. A group computes, for the
configurations of its units, the projected resolvents of every bead (pass 1,
checkpointed per (K, configuration) task by the group's leader), reduces its
partial sums of g to Ḡ (allgather of per-unit sums, added in unit order), and
then, from the same resolvents kept in memory, the T-matrices and their
fluctuation sums (pass 2). The fluctuation sums are the large arrays
(n_b·n_s² per unit): per K they are added in block order along the chain of
group leaders that own the blocks (:func:`spia_mpi.parallel.mpi.chain_sum`), the
last leader forms Γ, W and their Fermi-surface sums for the full sample, every
owner of block k those of the jackknife replica without k, and only those small
sums are gathered. Memory per rank is therefore its own units plus two totals,
whatever the number of ranks.

Because blocks do not depend on the layout and every reduction adds per-unit
partial sums in a fixed order, results are bit-identical for any number of
one-rank groups and after any restart (the dense and single-rank PETSc
resolvents are deterministic); groups of several ranks agree to the KSP
tolerance. Ranks without units take part in the collectives only.

The fixed blocks also give the statistical errors: every λ(m) is reported with
a jackknife error over blocks (delete one block, recompute Γ, W and λ).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from spia_mpi.engine import spia
from spia_mpi import units
from spia_mpi.errors import InputError
from spia_mpi.io.log import progress
from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, chain_sum, on_root, partition
from spia_mpi.engine.resolvent import matsubara_eta, projected_resolvent_dense
from spia_mpi.engine.stats import jackknife_error

logger = logging.getLogger(__name__)


@dataclass
class SpiaResult:
    """Everything a SPIA run reports (energies eV, temperatures K).

    lambda_m          float [n_gamma, n_m]  λ(m), m = 0 … N_b/2
    lambda_m_error    float [n_gamma, n_m]  jackknife standard error over blocks
    lambda_q          float [n_gamma, n_q, n_m]  q-resolved contributions (sum over q = λ)
    qpoints_frac      float [n_q, 3]  primitive reduced transfer q = k' − k
    gamma_ev          float [n_gamma]
    n_gamma           float [n_gamma]  N_γ = Σ_nk w_nk per spin over all k (1/eV)
    n_gamma_per_cell  float [n_gamma]  N_γ per primitive cell per spin (1/eV)
    bands             dict per K: energies, half_width, k_index, kpoints_frac, reference energies
    """

    temperature_k: float
    n_beads: int
    n_conf: int
    mode: str
    fermi_level_ev: float
    fermi_level_renormalised_ev: float
    eta_ev: float
    gamma_ev: np.ndarray
    lambda_m: np.ndarray
    lambda_m_error: np.ndarray
    lambda_q: np.ndarray
    qpoints_frac: np.ndarray
    n_gamma: np.ndarray
    n_gamma_per_cell: np.ndarray
    bands: list
    offdiag_ratio: list
    iterations: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    pair_sums_q: np.ndarray | None = None          # Σ_{pairs with q} w W w, [n_gamma, n_q, n_m] (eV⁻¹)
    pair_sums_q_jackknife: np.ndarray | None = None  # the same with one block deleted, [n_blocks, ...]
    cells_per_supercell: int = 1                   # M
    n_kpoints: int = 1                             # supercell K-points (N_cells = M · n_K)
    lambda_m_jackknife: np.ndarray | None = None   # λ(m) with one block deleted, [n_blocks, n_gamma, n_m]
    # Γ/W summaries for m = 0 … N_b/2 (eV), each with its jackknife error (same shape):
    # ⟨X(m)⟩_FS = Σ_K Σ_st w_s X_st(m) w_t / Σ_K (Σ_s w_s)², the Fermi-surface average over the
    # sampled pairs (λ = −N_γ (M/N_cells) ⟨W⟩_FS); gamma_diag_abs = mean over all states s of |Γ_ss(m)|.
    gamma_fs: np.ndarray | None = None             # float [n_gamma, n_m]
    gamma_fs_error: np.ndarray | None = None
    w_fs: np.ndarray | None = None                 # float [n_gamma, n_m] (= gamma_fs in Born mode)
    w_fs_error: np.ndarray | None = None
    gamma_diag_abs: np.ndarray | None = None       # float [n_m]
    gamma_diag_abs_error: np.ndarray | None = None


def block_of(n_conf: int, n_blocks: int) -> np.ndarray:
    """Block index of each configuration, int [n_conf] (contiguous, balanced)."""
    return (np.arange(n_conf) * n_blocks) // n_conf


def reference_fermi_level(energies_all: np.ndarray, n_electrons_per_spin: float, temperature_k: float) -> float:
    """μ with Σ Fermi–Dirac occupations = N per spin over the given reference energies."""
    from scipy.optimize import brentq
    e = np.asarray(energies_all, float)
    kt = units.KB_EV_PER_K * temperature_k

    def count(mu):
        x = np.clip((e - mu) / kt, -700, 700)
        return float(np.sum(1.0 / (np.exp(x) + 1.0))) - n_electrons_per_spin

    lo, hi = e.min() - 50 * kt - 1.0, e.max() + 50 * kt + 1.0
    if not count(lo) < 0 < count(hi):
        raise InputError(f"cannot place {n_electrons_per_spin} electrons per spin in {e.size} reference states")
    return brentq(count, lo, hi, xtol=1e-12)


def transfer_index(kpoints_frac: np.ndarray):
    """q = k_t − k_s (mod 1) for all pairs: (q list float [n_q, 3], index int [n_k, n_k])."""
    k = np.asarray(kpoints_frac)
    dq = np.mod(k[None, :, :] - k[:, None, :], 1.0)
    dq = np.round(dq * 1e8) / 1e8
    dq[dq >= 1.0] = 0.0
    flat = dq.reshape(-1, 3)
    qs, inv = np.unique(flat, axis=0, return_inverse=True)
    return qs, inv.reshape(k.shape[0], k.shape[0])


@dataclass(frozen=True)
class ConfigurationGroups:
    """The ranks of ``comm`` in groups of ``ranks_per_group`` consecutive ranks.

    Work units go to groups; the ranks of a group share one distributed PETSc
    resolvent (``group_comm``); the group's first rank (its *leader*) reads and
    writes the checkpoint, holds the group's sums and speaks for it in the
    reductions. With one rank per group (the default) every rank is a leader and
    ``group_comm`` is ``COMM_SELF``.
    """

    comm: object
    ranks_per_group: int
    n_groups: int
    group: int
    group_comm: object
    leader: bool

    @staticmethod
    def check(size: int, ranks_per_group: int, solver: str):
        """InputError unless ``ranks_per_group`` divides ``size`` (and > 1 goes with PETSc)."""
        if ranks_per_group > 1 and solver != "petsc":
            raise InputError("spia.ranks_per_group > 1 shares one distributed resolvent per group: it needs "
                             "spia.resolvent = 'petsc'")
        if ranks_per_group < 1 or size % ranks_per_group:
            raise InputError(f"spia.ranks_per_group = {ranks_per_group} must divide the number of MPI ranks "
                             f"({size})")

    @classmethod
    def split(cls, comm, ranks_per_group: int = 1, solver: str = "petsc") -> "ConfigurationGroups":
        size = 1 if comm is None else comm.size
        cls.check(size, ranks_per_group, solver)
        if ranks_per_group == 1:
            from spia_mpi.parallel.mpi import self_comm
            return cls(comm, 1, size, 0 if comm is None else comm.rank, self_comm(), True)
        from spia_mpi.parallel.mpi import RankLayout
        layout = RankLayout.split(comm, size // ranks_per_group)
        return cls(comm, ranks_per_group, layout.n_groups, layout.group, layout.group_comm,
                   layout.group_comm.rank == 0)

    def unit_owners(self, n_units: int) -> list:
        """World rank of the leader of the group that owns each unit, list [n_units]."""
        owner = [0] * n_units
        for g in range(self.n_groups):
            for i in partition(n_units, self.n_groups, g):
                owner[i] = g * self.ranks_per_group
        return owner

    def free(self):
        """Release the group communicator (made by ``Split``; COMM_SELF is left alone)."""
        if self.ranks_per_group > 1:
            self.group_comm.Free()


class _ResolventEngine:
    def __init__(self, model, solver: str, options=None, comm=None):
        self.model = model
        self.solver = solver
        self.iterations = []
        if solver == "petsc":
            from spia_mpi.parallel.mpi import self_comm
            from spia_mpi.engine.resolvent import ResolventSolver
            self.comm = comm if comm is not None else self_comm()
            self.ksp = ResolventSolver(self.comm, options)
        elif solver != "dense":
            raise InputError(f"resolvent solver '{solver}' is not one of: dense, petsc")

    def __call__(self, positions_bav, kpoint, z, p) -> np.ndarray:
        """g for every bead: complex [n_b, n_s, n_s]."""
        out = np.empty((positions_bav.shape[0], p.shape[1], p.shape[1]), dtype=complex)
        for b, pos in enumerate(positions_bav):
            if self.solver == "dense":
                out[b] = projected_resolvent_dense(self.model.hamiltonian_dense(pos, kpoint), z, p)
            else:
                h = self.model.hamiltonian_petsc(pos, kpoint, self.comm)
                make_pc = getattr(self.model, "resolvent_preconditioner", None)
                try:
                    out[b], info = self.ksp.solve(h, z, p, make_pc(kpoint) if make_pc else None)
                finally:
                    h.destroy()
                self.iterations.append(info["iterations_mean"])
        return out


def compute_lambda(model, positions_cbav, kpoints, temperature_k: float, *, J: int = 16,
                   n_per_k: int = 1, gammas=(0.8,), mode: str = "bse", solver: str = "dense",
                   n_blocks: int = 8, fermi_level_ev: float | None = None, comm=None,
                   store=None, solver_options=None, ranks_per_group: int = 1,
                   bse_solver: str = "dense") -> SpiaResult:
    """λ(m) from PIMD configurations of one supercell (see the module docstring).

    Parameters
    ----------
    model : ElectronicModel
    positions_cbav : float [n_conf, n_beads, n_atoms, 3] (Å) — may be an h5py dataset;
        only the configurations of this rank's units are read.
    kpoints : float [n_K, 3] supercell wavevectors (reduced).
    temperature_k : PIMD temperature (K).
    J : Matsubara index of z = ε_F + i(2J+1)πk_BT.
    n_per_k : reference states per primitive k.
    gammas : Lorentzian half widths (eV).
    mode : 'bse' (Bethe–Salpeter) or 'born' (W = Γ).
    solver : 'dense' or 'petsc' resolvents.
    n_blocks : configuration blocks (work units and jackknife error bars).
    fermi_level_ev : ε_F of z; default from the electron count of the reference bands.
    comm : MPI communicator (None: serial).
    store : :class:`spia_mpi.io.checkpoint.TaskStore` with n_K·n_conf tasks, or None.
    solver_options : PETSc options of the resolvent KSP (see :class:`ResolventSolver`).
    ranks_per_group : MPI ranks that share one distributed PETSc resolvent (a
        configuration group); ``comm.size`` must be a multiple of it. 1 (default): every
        rank is its own group and solves serially.
    bse_solver : 'dense' (LAPACK) or 'petsc' (PETSc dense LU) for the Bethe–Salpeter slices.
    """
    groups = ConfigurationGroups.split(comm, ranks_per_group, solver)
    try:
        return _compute_lambda(model, positions_cbav, kpoints, temperature_k, groups, J=J, n_per_k=n_per_k,
                               gammas=gammas, mode=mode, solver=solver, n_blocks=n_blocks,
                               fermi_level_ev=fermi_level_ev, comm=comm, store=store,
                               solver_options=solver_options, bse_solver=bse_solver)
    finally:
        groups.free()


def _compute_lambda(model, positions_cbav, kpoints, temperature_k: float, groups, *, J, n_per_k, gammas,
                    mode, solver, n_blocks, fermi_level_ev, comm, store, solver_options,
                    bse_solver) -> SpiaResult:
    """The body of :func:`compute_lambda` on a given rank layout ``groups``."""
    t_start = time.perf_counter()
    timings = {}
    if mode not in ("bse", "born"):
        raise InputError(f"mode '{mode}' is not one of: bse, born")
    rank = 0 if comm is None else comm.rank
    kpoints = np.atleast_2d(np.asarray(kpoints, float))
    n_conf, n_beads = int(positions_cbav.shape[0]), int(positions_cbav.shape[1])
    if n_conf < 2:
        raise InputError(f"need at least 2 configurations, got {n_conf}")
    n_blocks = int(min(n_blocks, n_conf))
    if n_blocks < 2:
        raise InputError("need at least 2 configuration blocks for error bars")
    beta = units.beta_per_ev(temperature_k)
    eta = matsubara_eta(J, temperature_k)
    gammas = np.atleast_1d(np.asarray(gammas, float))

    # reference subspace of every K, and the Fermi level of z
    # Every per-rank phase runs inside agree_on_failure, so an exception on one rank
    # (a KSP that does not converge, a bug) is raised on every rank before the next
    # collective instead of leaving the others waiting in it. Tasks finished before the
    # failure stay in the checkpoint (saved one by one).
    with agree_on_failure(comm, "the resolvent pass"):
        refs = [model.reference_states(K, n_per_k) for K in kpoints]
        complete = all(r.n_states == model.n_basis for r in refs)
        if fermi_level_ev is None:
            if not complete:
                raise InputError("the reference subspace does not hold every band: give the Fermi level "
                                 "(spia.fermi_level_ev) explicitly")
            fermi_level_ev = reference_fermi_level(np.concatenate([r.energies for r in refs]),
                                                   0.5 * model.n_electrons * len(kpoints), temperature_k)
        z = fermi_level_ev + 1j * eta

        units_all = [(ik, blk) for ik in range(len(kpoints)) for blk in range(n_blocks)]
        owner = groups.unit_owners(len(units_all))            # unit index → leader rank
        mine = [units_all[i] for i in partition(len(units_all), groups.n_groups, groups.group)]
        if groups.n_groups > len(units_all) and rank == 0:
            logger.warning("%d configuration groups but only %d work units (K-points × blocks): %d groups idle "
                           "(raise spia.n_blocks or spia.ranks_per_group)",
                           groups.n_groups, len(units_all), groups.n_groups - len(units_all))
        blk_of = block_of(n_conf, n_blocks)
        engine = _ResolventEngine(model, solver, solver_options, groups.group_comm)

        # ---------------- pass 1: projected resolvents (checkpointed) -------------
        t0 = time.perf_counter()
        g_store = {}          # (ik, c) -> complex [n_b, n_s, n_s]
        my_tasks = [(ik, c) for ik, blk in mine for c in np.flatnonzero(blk_of == blk)]
        n_done_before = 0
        for ik, c in progress(my_tasks, label="resolvents: configuration tasks on rank 0", logger=logger):
            task = ik * n_conf + int(c)
            # the group leader alone reads and writes the checkpoint, and tells its group,
            # so all ranks of a group enter the same collective PETSc solves
            got = on_root(groups.group_comm, store.load, task) if store is not None else None
            if got is not None:
                g_store[(ik, int(c))] = got["g"]
                n_done_before += groups.leader
                continue
            pos = np.asarray(positions_cbav[int(c)], dtype=float)
            g = engine(pos, kpoints[ik], z, refs[ik].vectors)
            g_store[(ik, int(c))] = g
            if store is not None:
                on_root(groups.group_comm, store.save, task, g=g)
        timings["resolvents"] = time.perf_counter() - t0

        # ---------------- Ḡ: per-unit sums, combined in unit order -----------------
        unit_g = {}
        for ik, blk in mine:
            s = np.zeros((refs[ik].n_states,) * 2, dtype=complex)
            for c in np.flatnonzero(blk_of == blk):
                s += g_store[(ik, int(c))].sum(axis=0)
            unit_g[(ik, blk)] = s
        if not groups.leader:                       # the leader speaks for its group
            unit_g, engine.iterations = {}, []
    unit_g = allgather_dict(unit_g, comm)
    # checkpoint report of all ranks (only rank 0 logs): reused and corrupt-and-recomputed tasks
    # and the KSP iteration counts of all ranks: every rank must write the same attributes
    # to the collectively written results file (differing metadata corrupts it)
    recomputed = list(getattr(store, "recomputed", []))
    all_iterations = list(engine.iterations)
    if comm is not None and comm.size > 1:
        counts = comm.allgather((n_done_before, recomputed, all_iterations))
        n_done_before = sum(c[0] for c in counts)
        recomputed = sorted(t for c in counts for t in c[1])
        all_iterations = [i for c in counts for i in c[2]]
    if n_done_before:
        logger.info("reused %d finished tasks from the checkpoint", n_done_before)
    if recomputed:
        logger.warning("checkpoint: %d damaged task file(s) recomputed (tasks %s)", len(recomputed),
                       ", ".join(map(str, recomputed)))
    with agree_on_failure(comm, "the bands and T-matrix pass"):
        bands, offdiag = [], []
        for ik in range(len(kpoints)):
            total = np.zeros((refs[ik].n_states,) * 2, dtype=complex)
            for blk in range(n_blocks):
                total += unit_g[(ik, blk)]
            gbar, off = spia.average_greens(total, n_conf * n_beads, refs[ik].k_index)
            bands.append(spia.renormalised_bands(gbar, z, refs[ik].k_index))
            offdiag.append(off)

        # renormalised Fermi level (only with a complete subspace)
        if complete:
            ef_ren = spia.fermi_level_lorentzian(np.concatenate([b.energies for b in bands]),
                                                 np.concatenate([b.half_width for b in bands]),
                                                 0.5 * model.n_electrons * len(kpoints))
        else:
            ef_ren = fermi_level_ev

        # ---------------- pass 2: T-matrices and fluctuation sums -----------------
        t0 = time.perf_counter()
        unit_sums = {}
        for ik, blk in (mine if groups.leader else []):
            ns = refs[ik].n_states
            s1 = np.zeros((n_beads, ns, ns), dtype=complex)
            s2 = np.zeros((n_beads, ns, ns))
            cnt = 0
            for c in np.flatnonzero(blk_of == blk):
                tm = spia.bead_transform(spia.t_matrices(g_store[(ik, int(c))], bands[ik]))
                s1 += tm
                s2 += tm.real ** 2 + tm.imag ** 2
                cnt += 1
            unit_sums[(ik, blk)] = (s1, s2, cnt)
        g_store.clear()
    timings["t_matrices"] = time.perf_counter() - t0

    # ---------------- Γ, W, λ (all ranks, identical) -------------------------
    t0 = time.perf_counter()
    n_report = n_beads // 2 + 1
    qsets = [transfer_index(r.kpoints_frac) for r in refs]
    all_q = np.unique(np.round(np.concatenate([q for q, _ in qsets]), 8), axis=0)
    weights = [spia.lorentzian_weights(b.energies, ef_ren, gammas) for b in bands]
    n_gamma_k = np.array([w.sum(axis=1) for w in weights])             # [n_K, n_gamma]
    n_gamma = n_gamma_k.sum(axis=0)                                     # N_γ over all k
    m_cells = len(refs[0].kpoints_frac)                                 # primitive cells per supercell
    n_cells = m_cells * len(kpoints)
    # Pairs (k, k') are sampled only inside each K (transfers q of the supercell).
    # Ratio estimator: the Fermi-surface average of W over the sampled pairs,
    # ⟨W⟩ = Σ_K Σ_st w_s W_st w_t / Σ_K (Σ_s w_s)², times the pair weight of the
    # whole grid, N_γ² · M/N_cells (W of an M-cell supercell is M/N_cells times the
    # W of the N_cells-cell crystal). With one K this is exactly −Σ wWw/N_γ; with
    # several K it stays unbiased when the weights differ between K-sets.
    pair_weight = (n_gamma_k ** 2).sum(axis=0)                          # [n_gamma]
    scale = n_gamma * m_cells / n_cells / pair_weight                   # λ = −scale · Σ wWw

    def contribution(ik, s1, s2, n):
        """Γ, W and their Fermi-surface sums of K-point ``ik`` from fluctuation sums."""
        gam = spia.gamma_from_moments(s1, s2, n, beta)
        if mode == "bse":
            w = spia.bethe_salpeter(gam, np.abs(np.diag(bands[ik].gbar_band)) ** 2, beta, bse_solver)
        else:
            w = gam
        qs, qidx = qsets[ik]
        remap = np.array([np.flatnonzero(np.all(np.isclose(all_q, q), axis=1))[0] for q in qs])
        return (spia.fermi_surface_sums(w, weights[ik]),
                spia.pair_sums_by_q(w, weights[ik], refs[ik].k_index, remap[qidx]),
                spia.fermi_surface_sums(gam, weights[ik]),
                np.abs(np.diagonal(gam, axis1=1, axis2=2)).sum(axis=1), gam.shape[1])

    # Per K, the blocks' fluctuation sums are added in block order along the chain of
    # group leaders that own them (each adds its own blocks to the partial sum it
    # receives and passes it on), so the total is the same sum in the same order for
    # any layout, and no rank ever holds more than its own blocks plus two totals.
    # The last leader of the chain computes the full-sample Γ, W; every owner of a
    # block k computes the jackknife replica (total − block k); only the small
    # Fermi-surface sums travel.
    parts = {}          # (ik, exclude) → contribution(...)
    failure = None      # a failure here (e.g. a singular BSE system) must not skip later chain sums
    for ik in range(len(kpoints)):
        chain = sorted({owner[ik * n_blocks + b] for b in range(n_blocks)})
        if rank not in chain or not groups.leader:
            continue
        own = [b for b in range(n_blocks) if owner[ik * n_blocks + b] == rank]
        s1, s2, n = chain_sum(comm, chain, [unit_sums[(ik, b)] for b in own], tag=ik)
        try:
            if rank == chain[-1]:
                parts[(ik, None)] = contribution(ik, s1, s2, n)
            for b in own:
                u1, u2, cnt = unit_sums.pop((ik, b))
                parts[(ik, b)] = contribution(ik, s1 - u1, s2 - u2, n - cnt)
        except Exception as exc:  # noqa: BLE001 - raised on every rank just below
            failure = failure or exc
        del s1, s2
    with agree_on_failure(comm, "the Γ/W stage"):
        if failure is not None:
            raise failure
    parts = allgather_dict(parts, comm)

    summaries = {}      # exclude → (⟨Γ⟩_FS, ⟨W⟩_FS [n_gamma, n_m], mean_s |Γ_ss| [n_m]) (eV)

    def lam_for(exclude):
        pair = np.zeros((gammas.size, n_beads))
        pair_q = np.zeros((gammas.size, all_q.shape[0], n_beads))
        pair_gam = np.zeros((gammas.size, n_beads))
        diag_abs, n_diag = np.zeros(n_beads), 0
        for ik in range(len(kpoints)):              # fixed K order: identical on every rank
            p_w, p_q, p_gam, d_abs, n_s = parts[(ik, exclude)]
            pair += p_w
            pair_q += p_q
            pair_gam += p_gam
            diag_abs += d_abs
            n_diag += n_s
        summaries[exclude] = ((pair_gam / pair_weight[:, None])[:, :n_report],
                              (pair / pair_weight[:, None])[:, :n_report], (diag_abs / n_diag)[:n_report])
        lam = -scale[:, None] * pair
        lam_q = -scale[:, None, None] * pair_q
        return lam[:, :n_report], lam_q[:, :, :n_report], pair_q[:, :, :n_report]

    lam, lam_q, pair_q = lam_for(None)
    replicas = [lam_for(k) for k in range(n_blocks)]
    jk = np.array([r[0] for r in replicas])
    pair_q_jk = np.array([r[2] for r in replicas])
    err = jackknife_error(jk)
    fs_summary = {name: (summaries[None][i], jackknife_error([summaries[k][i] for k in range(n_blocks)]))
                  for i, name in enumerate(("gamma_fs", "w_fs", "gamma_diag_abs"))}
    timings["lambda"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    band_info = [dict(energies=b.energies, half_width=b.half_width, k_index=b.k_index,
                      kpoints_frac=r.kpoints_frac, reference_energies=r.energies,
                      band_index=r.band_index) for b, r in zip(bands, refs)]
    its = {}
    if all_iterations:
        its = {"ksp_iterations_mean": float(np.mean(all_iterations)),
               "ksp_iterations_max": float(np.max(all_iterations))}
    return SpiaResult(temperature_k, n_beads, n_conf, mode, float(fermi_level_ev), float(ef_ren), eta,
                      gammas, lam, err, lam_q, all_q, n_gamma, n_gamma / n_cells, band_info, offdiag,
                      its, timings, pair_q, pair_q_jk, m_cells, len(kpoints), lambda_m_jackknife=jk,
                      gamma_fs=fs_summary["gamma_fs"][0], gamma_fs_error=fs_summary["gamma_fs"][1],
                      w_fs=fs_summary["w_fs"][0], w_fs_error=fs_summary["w_fs"][1],
                      gamma_diag_abs=fs_summary["gamma_diag_abs"][0],
                      gamma_diag_abs_error=fs_summary["gamma_diag_abs"][1])
