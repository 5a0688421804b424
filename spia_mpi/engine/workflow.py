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
last leader forms Γ, W and their Fermi-surface sums for the full sample, and only
those small sums are gathered — on rank 0 alone, which forms λ(m), its q-resolved
parts and their jackknife replicas (it writes the results file) and broadcasts λ(m)
with its replicas and errors (every rank takes part in the T_c solves); the other
ranks' :class:`SpiaResult` has None for the rank-0-only arrays. Memory per rank is
therefore its own units plus two totals, whatever the number of ranks (rank 0: plus
the Fermi-surface sums of every K and replica).

For a K-point whose Bethe–Salpeter slices are solved by a distributed LU (n_s ≥
``spia.bse_distributed_min_states`` on groups of several ranks: :func:`row_layouts`) the big
arrays of that K are instead row-distributed over each group from the resolvents on: every rank
keeps the rows of g its T rows need, forms its rows of the moment sums (chained between the
groups rank by rank), of Γ and of W, and the group reduces the Fermi-surface sums of its rows
on its leader (:func:`_contribution_rows`); the jackknife replicas likewise.

Because blocks do not depend on the layout and every reduction adds per-unit
partial sums in a fixed order, results are bit-identical for any number of
one-rank groups and after any restart (the dense and single-rank PETSc
resolvents are deterministic); groups of several ranks agree to the KSP
tolerance. Ranks without units take part in the collectives only.

The fixed blocks also give the statistical errors: every λ(m) is reported with
a delete-one-block jackknife error. A replica (block k deleted) is the whole estimator
on the other blocks: its own Ḡ (from the per-unit sums of g), renormalised bands,
Lorentzian weights and N_γ, T-matrices recomputed with that Ḡ from the bead
transform of the stored resolvents (:func:`spia.t_matrices_m`; no new solves),
their moment sums chained in block order like the full sample's, Γ, W and λ
(:func:`_replica_pass`); the owner of block k finishes replica k.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from spia_mpi.engine import anisotropy, bse_parallel, fermi, grouprows, replicas, spia, statespace
from spia_mpi import units
from spia_mpi.errors import InputError
from spia_mpi.io.log import progress
from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, chain_sum, gather_dict, on_root, partition
from spia_mpi.engine.resolvent import matsubara_eta, projected_resolvent_dense
from spia_mpi.engine.stats import jackknife_error
from spia_mpi.models.bands import fermi_level

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LambdaEstimate:
    """λ(m) of one kind with its jackknife: value, error float [n_gamma, n_m]; replicas [n_blocks, n_gamma, n_m]."""

    value: np.ndarray
    error: np.ndarray
    replicas: np.ndarray


@dataclass(frozen=True)
class BeadCorrection:
    """The finite-bead correction applied: method, τ refinement, factor f(m) float [n_m]
    (corrected = f · raw; :func:`spia.bead_correction_factor`)."""

    method: str
    tau_refine: int
    factor: np.ndarray


@dataclass
class SpiaResult:
    """Everything a SPIA run reports (energies eV, temperatures K).

    lambda_m          float [n_gamma, n_m]  λ(m), m = 0 … N_b/2, bead-corrected (``bead_correction``)
    lambda_m_error    float [n_gamma, n_m]  jackknife standard error over blocks
    lambda_m_jackknife float [n_blocks, n_gamma, n_m]  λ(m) with one block deleted
    raw               LambdaEstimate: the uncorrected λ at the ring-polymer frequencies Ω_m
    lambda_q          float [n_gamma, n_q, n_m]  q-resolved contributions (sum over q = λ), corrected
    qpoints_frac      float [n_q, 3]  primitive reduced transfer q = k' − k
    gamma_ev          float [n_gamma]
    n_gamma           float [n_gamma]  N_γ = Σ_nk w_nk per spin over all k (1/eV)
    n_gamma_per_cell  float [n_gamma]  N_γ per primitive cell per spin (1/eV)
    bands             dict per K: energies, half_width, k_index, kpoints_frac, reference energies
    pair_sums_q       float [n_gamma, n_q, n_m]  Σ_{pairs with q} w W w (1/eV), uncorrected
    pair_sums_q_jackknife  the same with one block deleted, [n_blocks, ...]
    n_gamma_jackknife float [n_blocks, n_gamma]  N_γ of each replica (its own Ḡ and weights)
    Γ/W summaries for m = 0 … N_b/2 (eV), each with its jackknife error (same shape):
    ⟨X(m)⟩_FS = Σ_K Σ_st w_s X_st(m) w_t / (N_γ² M/N_cells), with one K the Fermi-surface average
    of X over all pairs, and λ_raw = −N_γ (M/N_cells) ⟨W⟩_FS for any number of K;
    gamma_diag_abs = mean over all states s of |Γ_ss(m)|.
    """

    temperature_k: float
    n_beads: int
    n_conf: int
    mode: str
    fermi: fermi.FermiLevels
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
    raw: LambdaEstimate
    bead_correction: BeadCorrection
    state_space: "statespace.StateSpace"
    iterations: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    pair_sums_q: np.ndarray | None = None
    pair_sums_q_jackknife: np.ndarray | None = None
    n_gamma_jackknife: np.ndarray | None = None
    cells_per_supercell: int = 1                   # M
    n_kpoints: int = 1                             # supercell K-points (N_cells = M · n_K)
    lambda_m_jackknife: np.ndarray | None = None
    gamma_fs: np.ndarray | None = None             # float [n_gamma, n_m]
    gamma_fs_error: np.ndarray | None = None
    w_fs: np.ndarray | None = None                 # float [n_gamma, n_m] (= gamma_fs in Born mode)
    w_fs_error: np.ndarray | None = None
    gamma_diag_abs: np.ndarray | None = None       # float [n_m]
    gamma_diag_abs_error: np.ndarray | None = None
    anisotropy: "BinnedCoupling | None" = None      # spia.anisotropy_bins ≠ 'none'
    # Under MPI, lambda_q, pair_sums_q, pair_sums_q_jackknife and anisotropy are held by rank 0
    # alone (None elsewhere: only rank 0 writes them); everything else is on every rank.


@dataclass(frozen=True)
class BinnedCoupling:
    """W_st(m) binned on the Fermi surface (:mod:`spia_mpi.engine.anisotropy`), m = 0 … N_b/2.

    bins           :class:`anisotropy.Bins` (kind, bin of every state per K, labels)
    w_ij_m         float [n_gamma, n_b, n_b, n_m]  W_ij(m), bead-corrected; Σ_ij w_i W_ij w_j = λ(m)
    w_ij_m_error   the same, jackknife standard error over blocks
    weights        float [n_gamma, n_b]  w_i = N_i/N_γ (Σ_i = 1)
    n_bin          float [n_gamma, n_b]  N_i = Σ_{s∈i} w_s (1/eV)
    """

    bins: anisotropy.Bins
    w_ij_m: np.ndarray
    w_ij_m_error: np.ndarray
    weights: np.ndarray
    n_bin: np.ndarray


def block_of(n_conf: int, n_blocks: int) -> np.ndarray:
    """Block index of each configuration, int [n_conf] (contiguous, balanced)."""
    return (np.arange(n_conf) * n_blocks) // n_conf


def check_blocks(n_conf: int, n_blocks: int) -> int:
    """The number of jackknife blocks used, min(n_blocks, n_conf); InputError unless every replica
    (all configurations but one block) keeps the 2 configurations its fluctuations Γ need."""
    if n_conf < 3:
        raise InputError(f"need at least 3 configurations (Γ is a variance over configurations and each "
                         f"jackknife replica leaves one block out), got {n_conf}")
    used = int(min(n_blocks, n_conf))
    if used < 2:
        raise InputError("need at least 2 configuration blocks for error bars (spia.n_blocks)")
    largest = int(np.bincount(block_of(n_conf, used)).max())
    if n_conf - largest < 2:
        raise InputError(f"spia.n_blocks = {n_blocks} with {n_conf} configurations leaves a jackknife replica "
                         f"with {n_conf - largest} configuration; raise spia.n_blocks or give more configurations")
    return used


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

    @property
    def leader_rank(self) -> int:
        """World rank of this group's leader (groups are consecutive ranks)."""
        return self.group * self.ranks_per_group

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
        """g for every bead: complex [n_b, n_s, n_s].

        With ``warm_start`` (a resolvent option, default on) the Krylov solves of bead b start
        from the solution of bead b − 1 (neighbours on the ring polymer: nearly the same
        Hamiltonian); bead 0 starts from zero, so a task's result depends on that task alone."""
        out = np.empty((positions_bav.shape[0], p.shape[1], p.shape[1]), dtype=complex)
        previous = None
        if self.solver == "petsc":
            self.ksp.forget()                         # no recycled subspace from another task
        for b, pos in enumerate(positions_bav):
            if self.solver == "dense":
                h, s, q = self.model.projected_problem_dense(pos, kpoint, p)
                out[b] = projected_resolvent_dense(h, z, q, s)
            else:
                h, s, q = self.model.projected_problem_petsc(pos, kpoint, p, self.comm)
                make_pc = getattr(self.model, "resolvent_preconditioner", None)
                try:
                    out[b], info = self.ksp.solve(h, z, q, make_pc(kpoint) if make_pc else None, guess=previous,
                                                  s_mat=s)
                finally:
                    h.destroy()
                    if s is not None:
                        s.destroy()
                previous = info["solution"] if self.ksp.warm_start else None
                self.iterations.append(info["iterations_mean"])
        return out


@dataclass(frozen=True)
class SpiaSettings:
    """The numerical choices of one SPIA run (see :func:`compute_lambda` for each)."""

    J: int = 16
    n_per_k: int | None = 1
    gammas: tuple = (0.8,)
    mode: str = "bse"
    solver: str = "dense"
    n_blocks: int = 32
    fermi_level: str | float = "ensemble"
    fermi_level_ev: float | None = None
    reference_fermi_level_ev: float | None = None
    fermi_smearing_ev: float = 0.2
    fermi_smearing: str = "fermi-dirac"
    fermi_configurations: int = 16
    window_ev: tuple | None = None
    solver_options: dict | None = None
    bse_solver: str = "dense"
    bse_distributed_min_states: int = 4096
    bse_distributed_solver: str = "scalapack"
    bead_correction: str = "interpolate"
    tau_refine: int = 16
    symmetrize_m: bool = True
    anisotropy_bins: str = "none"
    anisotropy_n_bins: int = 4

    def check(self):
        if self.mode not in ("bse", "born"):
            raise InputError(f"mode '{self.mode}' is not one of: bse, born")
        self.bse.check()
        if isinstance(self.fermi_level, str) and self.fermi_level not in fermi.CHOICES:
            raise InputError(f"spia.fermi_level = '{self.fermi_level}' is not a number or one of: "
                             f"{', '.join(fermi.CHOICES)}")
        fermi.occupations(np.zeros(1), self.fermi_smearing)                          # validates the kind
        if self.anisotropy_n_bins < 1:
            raise InputError(f"spia.anisotropy_n_bins = {self.anisotropy_n_bins} must be ≥ 1")
        if self.n_per_k is not None and self.n_per_k < 1:
            raise InputError(f"spia.states_per_k = {self.n_per_k} must be ≥ 1 (or absent: automatic)")
        if self.window_ev is not None and not (len(self.window_ev) == 2 and self.window_ev[0] < self.window_ev[1]):
            raise InputError(f"spia.window_ev = {list(self.window_ev)} must be [lower, upper] with lower < upper (eV)")

    @property
    def bse(self) -> bse_parallel.BseParallel:
        """How the Bethe–Salpeter slices are solved over a configuration group's ranks."""
        return bse_parallel.BseParallel(self.bse_solver, self.bse_distributed_min_states,
                                        self.bse_distributed_solver)

    @property
    def fermi_choice(self) -> str:
        """'given' (a number: spia.fermi_level or spia.fermi_level_ev) or the named choice."""
        if self.fermi_level_ev is not None or not isinstance(self.fermi_level, str):
            return "given"
        return self.fermi_level

    @property
    def fermi_given(self) -> float:
        if self.fermi_level_ev is not None:
            return float(self.fermi_level_ev)
        return float("nan") if isinstance(self.fermi_level, str) else float(self.fermi_level)
        spia.bead_correction_factor(1, 2, self.bead_correction, self.tau_refine)   # validates both


def compute_lambda(model, positions_cbav, kpoints, temperature_k: float, *, comm=None, store=None,
                   ranks_per_group: int = 1, **settings) -> SpiaResult:
    """λ(m) from PIMD configurations of one supercell (see the module docstring).

    Parameters
    ----------
    model : ElectronicModel
    positions_cbav : float [n_conf, n_beads, n_atoms, 3] (Å) — may be an h5py dataset;
        only the configurations of this rank's units are read.
    kpoints : float [n_K, 3] supercell wavevectors (reduced).
    temperature_k : PIMD temperature (K).
    comm : MPI communicator (None: serial).
    store : :class:`spia_mpi.io.checkpoint.TaskStore` with n_K·n_conf tasks, or None.
    ranks_per_group : MPI ranks that share one distributed PETSc resolvent (a
        configuration group); ``comm.size`` must be a multiple of it. 1 (default): every
        rank is its own group and solves serially.
    settings : the fields of :class:`SpiaSettings`:
        J — Matsubara index of z = ε_F + i(2J+1)πk_BT; n_per_k — reference states per
        primitive k, or None: the automatic state space (:func:`state_space`); gammas — Lorentzian half widths (eV); mode — 'bse' (Bethe–Salpeter) or
        'born' (W = Γ); solver — 'dense' or 'petsc' resolvents; n_blocks — configuration
        blocks (work units and jackknife error bars); fermi_level — 'ensemble', 'reference',
        'renormalised' or a number (eV): the centre of the Lorentzian weights and of z
        (:mod:`spia_mpi.engine.fermi`), with fermi_smearing_ev, fermi_smearing and
        fermi_configurations for 'ensemble'; fermi_level_ev — a number that overrides
        fermi_level; reference_fermi_level_ev — the reference structure's level when the
        subspace does not hold every band (e.g. from the grid model's reference bands); window_ev —
        [lower, upper] (eV): keep only the reference states with ε − ε_F in it (of the
        n_per_k lowest per k, :func:`statespace.select_window`); solver_options — PETSc options of the
        resolvent KSP (:class:`ResolventSolver`); bse_solver — 'dense' (LAPACK) or 'petsc'
        (PETSc dense LU) for the Bethe–Salpeter slices, which the ranks of a configuration group
        share (:mod:`spia_mpi.engine.bse_parallel`), each slice with at least
        bse_distributed_min_states states by a distributed LU over the group's ranks
        (bse_distributed_solver: 'scalapack' or 'mumps'); bead_correction — 'interpolate',
        'harmonic' or 'none' with tau_refine (:func:`spia.bead_correction_factor`);
        symmetrize_m — average Γ(m) and Γ(−m) (:func:`spia.symmetrize_bead_reversal`);
        anisotropy_bins — 'none', 'band', 'kpoint' or 'energy' (with anisotropy_n_bins
        clusters): also W_st(m) binned on the Fermi surface (:mod:`spia_mpi.engine.anisotropy`).
    """
    cfg = SpiaSettings(**settings)
    cfg.check()
    anisotropy.check_bins(cfg.anisotropy_bins, len(np.atleast_2d(kpoints)))
    groups = ConfigurationGroups.split(comm, ranks_per_group, cfg.solver)
    try:
        return _compute_lambda(model, positions_cbav, kpoints, temperature_k, groups, cfg, comm, store)
    finally:
        groups.free()


@dataclass(frozen=True)
class _Plan:
    """Sizes and the work decomposition of one run (identical on every rank)."""

    kpoints: np.ndarray            # float [n_K, 3]
    n_conf: int
    n_beads: int
    n_blocks: int
    beta: float                    # 1/eV
    eta: float                     # eV
    gammas: np.ndarray             # float [n_gamma] (eV)
    units_all: list                # (ik, block) of every unit
    owner: list                    # leader rank of each unit
    mine: list                     # (ik, block) of this rank's group
    block_of_conf: np.ndarray      # int [n_conf]

    @property
    def n_report(self) -> int:
        return self.n_beads // 2 + 1

    def confs(self, blk: int) -> list:
        return [int(c) for c in np.flatnonzero(self.block_of_conf == blk)]


@dataclass
class _KContribution:
    """Fermi-surface sums of one K-point and one configuration set (full sample or a replica).

    pair_q      float [n_gamma, n_q, n_b]  Σ over pairs with transfer q of w W w (1/eV)
    pair_gamma  float [n_gamma, n_b]      Σ_st w_s Γ_st w_t (1/eV)
    diag_abs    float [n_b]               Σ_s |Γ_ss| (eV)
    n_states    int
    """

    pair_q: np.ndarray
    pair_gamma: np.ndarray
    diag_abs: np.ndarray
    n_states: int
    pair_bins: np.ndarray | None = None   # float [n_gamma, n_bins, n_bins, n_b] (anisotropy_bins)


@dataclass
class _Bands:
    """Renormalised bands of every K, their Lorentzian weights and the Fermi levels."""

    bands: list                    # RenormalisedBands per K
    offdiag: list                  # ‖off-diagonal k blocks of Ḡ‖/‖Ḡ‖ per K
    fermi: fermi.FermiLevels       # every candidate, the centre of the weights and of z
    weights: list                  # float [n_gamma, n_s] per K (1/eV)

    @property
    def n_gamma_k(self) -> np.ndarray:
        """Σ_s w_s per K, float [n_K, n_gamma]."""
        return np.array([w.sum(axis=1) for w in self.weights])

    def without_matrices(self) -> "_Bands":
        """The same without the dense n_s × n_s U and Ĝ of each K (None there): what the run keeps of
        a jackknife replica's bands (:func:`_k_bands` forms the matrices again when needed)."""
        lean = [dataclasses.replace(b, rotation=None, gbar_band=None) for b in self.bands]
        return _Bands(lean, self.offdiag, self.fermi, self.weights)


def _plan(positions_cbav, kpoints, temperature_k, groups, cfg, rank) -> _Plan:
    kpoints = np.atleast_2d(np.asarray(kpoints, float))
    n_conf, n_beads = int(positions_cbav.shape[0]), int(positions_cbav.shape[1])
    n_blocks = check_blocks(n_conf, cfg.n_blocks)
    units_all = [(ik, blk) for ik in range(len(kpoints)) for blk in range(n_blocks)]
    mine = [units_all[i] for i in partition(len(units_all), groups.n_groups, groups.group)]
    if groups.n_groups > len(units_all) and rank == 0:
        logger.warning("%d configuration groups but only %d work units (K-points × blocks): %d groups idle "
                       "(raise spia.n_blocks or spia.ranks_per_group)",
                       groups.n_groups, len(units_all), groups.n_groups - len(units_all))
    return _Plan(kpoints, n_conf, n_beads, n_blocks, units.beta_per_ev(temperature_k),
                 matsubara_eta(cfg.J, temperature_k), np.atleast_1d(np.asarray(cfg.gammas, float)),
                 units_all, groups.unit_owners(len(units_all)), mine, block_of(n_conf, n_blocks))


def _reference_states(model, plan: _Plan, cfg: SpiaSettings, temperature_k: float):
    """(reference states per K, reference ε_F or NaN, whether the subspace holds every band)."""
    refs = statespace.first_pool(model, plan.kpoints, cfg.n_per_k)
    complete = all(r.n_states == model.n_basis for r in refs)
    ref_level = cfg.reference_fermi_level_ev
    if ref_level is None and complete:
        ref_level = fermi_level(np.concatenate([r.energies for r in refs]),
                                0.5 * model.n_electrons * len(plan.kpoints), temperature_k)
    return refs, float("nan") if ref_level is None else float(ref_level), complete


def _z_level(cfg: SpiaSettings, reference: float, ensemble: float, complete: bool) -> float:
    """The real part of z: the chosen level (the reference one for 'renormalised')."""
    choice = cfg.fermi_choice
    value = {"given": cfg.fermi_given, "ensemble": ensemble, "reference": reference,
             "renormalised": reference}[choice]
    if choice == "renormalised" and not complete:
        raise InputError("spia.fermi_level = 'renormalised' needs a subspace that holds every band (the "
                         "Lorentzian occupations of all renormalised bands): choose 'ensemble' or 'reference'")
    if not np.isfinite(value):
        raise InputError("the reference subspace does not hold every band, so the reference Fermi level is "
                         "unknown: choose spia.fermi_level = 'ensemble' or give it (spia.fermi_level_ev)")
    return float(value)


def state_space(model, plan: _Plan, refs, fermi_level_ev: float, cfg: SpiaSettings, complete: bool):
    """The run's state space (:func:`statespace.choose`) for the plan's K-points, γ and η."""
    return statespace.choose(model, plan.kpoints, refs, fermi_level_ev, plan.gammas, plan.eta, cfg.n_per_k,
                             cfg.window_ev, complete)


def check_fermi_surface_weight(energies, fermi_level_ev: float, gammas, n_per_k: int | None,
                               min_peak_fraction: float = 0.01):
    """InputError when no reference state lies near ε_F: every Lorentzian weight below
    ``min_peak_fraction`` of its peak 1/(πγ) for the widest γ, i.e. all states farther than
    ≈ 10γ from ε_F; λ would be ≈ 0 and T_c undefined (e.g. a multi-band material with the
    lowest state per k only, or, with the automatic state space (``n_per_k`` None), a gap at ε_F)."""
    e = np.asarray(energies, float)
    g = float(np.max(gammas))
    peak = np.max(g ** 2 / ((e - fermi_level_ev) ** 2 + g ** 2))
    if peak < min_peak_fraction:
        advice = (f"raise spia.states_per_k (now {n_per_k}) until the states reach ε_F" if n_per_k is not None else
                  "the reference bands have a gap at ε_F (an insulator: no electron–phonon T_c) or ε_F is not "
                  "the one meant (spia.fermi_level)")
        raise InputError(
            f"the reference states carry almost no Fermi-surface weight: their energies span "
            f"[{e.min():.3f}, {e.max():.3f}] eV but ε_F = {fermi_level_ev:.3f} eV (nearest state "
            f"{np.min(np.abs(e - fermi_level_ev)):.3f} eV away, largest Lorentzian weight {peak:.1e} of its peak at "
            f"γ = {g:g} eV), so λ(m) would be ≈ 0: {advice}")


def _resolvent_pass(model, positions_cbav, plan: _Plan, groups, refs, z, cfg, store, rows_k):
    """Projected resolvents of every (K, configuration) of this group's units (checkpointed).

    Returns ({(ik, c): complex [n_b, n_s, n_s]}, {(ik, block): Σ over the unit's configurations
    and beads of g, complex [n_s, n_s]}, tasks reused from the checkpoint, KSP iterations). For a
    K with row-distributed arrays (``rows_k[ik]`` not None) only the rows ``needed`` of g are kept,
    [n_b, n_needed, n_s]; the whole g of one task exists only while it is solved or loaded.
    """
    engine = _ResolventEngine(model, cfg.solver, cfg.solver_options, groups.group_comm)
    g_store = {}
    unit_g = {(ik, blk): np.zeros((refs[ik].n_states,) * 2, dtype=complex) for ik, blk in plan.mine}
    # configuration-major: all K of one configuration in a row, so a model that reads each
    # bead's potential from a file (models.grid.PotentialFiles) reads it once
    my_tasks = sorted(((ik, int(c)) for ik, blk in plan.mine for c in plan.confs(blk)), key=lambda t: (t[1], t[0]))
    n_reused = 0
    for ik, c in progress(my_tasks, label="resolvents: configuration tasks on rank 0", logger=logger):
        task = ik * plan.n_conf + c
        # the group leader alone reads and writes the checkpoint, and tells its group,
        # so all ranks of a group enter the same collective PETSc solves
        got = on_root(groups.group_comm, store.load, task) if store is not None else None
        if got is not None:
            g = got["g"]
            n_reused += groups.leader
        else:
            g = engine(np.asarray(positions_cbav[c], dtype=float), plan.kpoints[ik], z, refs[ik].vectors)
            if store is not None:
                on_root(groups.group_comm, store.save, task, g=g)
        unit_g[(ik, int(plan.block_of_conf[c]))] += g.sum(axis=0)       # configurations in increasing order
        g_store[(ik, c)] = g if rows_k[ik] is None else g[:, rows_k[ik].needed]
        del g, got
        _release_finished(model, positions_cbav, plan, store, c)
    return g_store, unit_g, n_reused, engine.iterations


def _release_finished(model, positions_cbav, plan: _Plan, store, c: int):
    """Tell a model with per-configuration work files (GPAW's SCF densities) that configuration
    ``c`` is done once the tasks of all its K are in the checkpoint (whichever group stored them)."""
    done = getattr(model, "configuration_done", None)
    if done is not None and store is not None and all(
            store.path(ik * plan.n_conf + c).exists() for ik in range(len(plan.kpoints))):
        done(positions_cbav[c])


def row_layouts(refs, cfg: SpiaSettings, groups) -> list:
    """Per K this rank's :class:`grouprows.GroupRows` when that K's big arrays are row-distributed
    over its configuration group — the Bethe–Salpeter slices are solved by a distributed LU
    (:meth:`bse_parallel.BseParallel.by_rows`: n_s ≥ spia.bse_distributed_min_states on a group of
    several ranks; also in Born mode) — else None (the group leader holds them whole)."""
    size = groups.ranks_per_group
    rank = groups.group_comm.rank if size > 1 else 0
    return [grouprows.GroupRows.of(r.k_index, size, rank) if cfg.bse.by_rows(r.n_states, size) else None
            for r in refs]


def _report_checkpoint(comm, n_reused, store, iterations):
    """Checkpoint reuse and KSP iterations of all ranks (the same on every rank; rank 0
    reports them and writes them to the results file): (reused, iterations)."""
    recomputed = list(getattr(store, "recomputed", []))
    iterations = list(iterations)
    if comm is not None and comm.size > 1:
        counts = comm.allgather((n_reused, recomputed, iterations))
        n_reused = sum(c[0] for c in counts)
        recomputed = sorted(t for c in counts for t in c[1])
        iterations = [i for c in counts for i in c[2]]
    if n_reused:
        logger.info("reused %d finished tasks from the checkpoint", n_reused)
    if recomputed:
        logger.warning("checkpoint: %d damaged task file(s) recomputed (tasks %s)", len(recomputed),
                       ", ".join(map(str, recomputed)))
    return iterations


def _bands(unit_g, plan: _Plan, refs, z, complete, model, cfg: SpiaSettings, ref_level, ens,
           exclude: int | None = None) -> _Bands:
    """Ḡ (per-unit sums added in unit order), renormalised bands, Fermi levels, Lorentzian weights
    of the full sample, or of the jackknife replica without block ``exclude``."""
    bands, offdiag = [], []
    for ik in range(len(plan.kpoints)):
        b, off = _k_bands(unit_g, plan, refs, z, ik, exclude)
        bands.append(b)
        offdiag.append(off)
    ren = float("nan")
    if complete:
        ren = spia.fermi_level_lorentzian(np.concatenate([b.energies for b in bands]),
                                          np.concatenate([b.half_width for b in bands]),
                                          0.5 * model.n_electrons * len(plan.kpoints))
    if cfg.fermi_choice == "renormalised" and not complete:
        raise InputError("spia.fermi_level = 'renormalised' needs every band in the state space (spia.window_ev "
                         "removed some): choose 'ensemble' or 'reference'")
    centre = ren if cfg.fermi_choice == "renormalised" else float(np.real(z))
    ens_value = ens.value if ens else float("nan")
    if ens is not None and exclude is not None and cfg.fermi_choice == "ensemble":
        ens_value = centre = _replica_ensemble_level(ens, plan, exclude)
    levels = fermi.FermiLevels(cfg.fermi_choice, float(centre), float(np.real(z)), float(ref_level),
                               ens_value, ens.error if ens else float("nan"), float(ren), cfg.fermi_given)
    weights = [spia.lorentzian_weights(b.energies, centre, plan.gammas) for b in bands]
    return _Bands(bands, offdiag, levels, weights)


def _k_bands(unit_g, plan: _Plan, refs, z, ik: int, exclude: int | None = None):
    """(renormalised bands, ‖off-diagonal k blocks‖/‖Ḡ‖) of K-point ``ik`` from Ḡ (the per-unit sums
    of g added in unit order) of the full sample or of the replica without block ``exclude``; the
    same numbers however often it is called."""
    keep = [blk for blk in range(plan.n_blocks) if blk != exclude]
    count = sum(len(plan.confs(blk)) for blk in keep) * plan.n_beads
    total = np.zeros((refs[ik].n_states,) * 2, dtype=complex)
    for blk in keep:
        total += unit_g[(ik, blk)]
    gbar, off = spia.average_greens(total, count, refs[ik].k_index)
    return spia.renormalised_bands(gbar, z, refs[ik].k_index), off


def _replica_ensemble_level(ens: fermi.EnsembleLevel, plan: _Plan, exclude: int) -> float:
    """The ensemble ε_F of jackknife replica ``exclude``: the mean of the per-configuration levels of the
    configurations it keeps (the full sample's when block ``exclude`` holds all of them). It centres
    the replica's Lorentzian weights, so the ensemble level's own noise is in the error bars; z keeps
    the full sample's level (the resolvents are not recomputed; λ depends on the weights' centre
    ≈ 30 times more than on Re z: docs/spia.md)."""
    keep = plan.block_of_conf[np.asarray(ens.configurations)] != exclude
    return float(np.mean(ens.per_configuration[keep])) if keep.any() else float(ens.value)


def _fluctuation_pass(g_store, plan: _Plan, bands: _Bands, leader: bool, rows_k: list) -> dict:
    """Moment sums of T(m) of every own unit, {(ik, block): MomentSums}: whole on the group leader,
    or each rank of the group its rows where ``rows_k[ik]`` is set."""
    out = {}
    for ik, blk in plan.mine:
        rows = rows_k[ik]
        if rows is None and not leader:
            continue
        n_s = bands.bands[ik].energies.size
        sums = spia.MomentSums.zeros(plan.n_beads, n_s, None if rows is None else len(rows.own))
        for c in plan.confs(blk):
            sums.add(spia.bead_transform(spia.t_matrices(g_store[(ik, c)], bands.bands[ik], rows)))
        out[(ik, blk)] = sums
    return out


def _contribution(sums: spia.MomentSums | None, rb, weights, k_index, q_of_pair, plan: _Plan, cfg,
                  bins=None, group_comm=None, rows=None) -> _KContribution | None:
    """Γ, W and their Fermi-surface sums of one K-point from one set's moment sums (``bins``:
    (bin of each state int [n_s], n_bins) to sum w W w by bin pair too, or None).

    Collective over ``group_comm`` in BSE mode: the group leader passes ``sums``, the other
    ranks None and help solve the Bethe–Salpeter slices (they return None). With ``rows`` (a
    :class:`grouprows.GroupRows`): :func:`_contribution_rows`."""
    if rows is not None:
        return _contribution_rows(sums, rb, weights, k_index, q_of_pair, plan, cfg, bins, group_comm, rows)
    gam, failure = None, None
    if sums is not None:
        try:
            gam = sums.gamma(plan.beta, cfg.symmetrize_m)
        except Exception as exc:  # noqa: BLE001 - raised after the group has left the collective
            failure = exc
    w = gam
    if cfg.mode == "bse":          # |Ĝ|² is read on the leader only (the others may have rb None)
        abs2 = np.abs(np.diag(rb.gbar_band)) ** 2 if gam is not None else None
        w = bse_parallel.bethe_salpeter_on(group_comm, gam, abs2, plan.beta, cfg.bse)
    if failure is not None:
        raise failure
    if gam is None:
        return None
    return _fermi_surface_part(gam, w, weights, k_index, q_of_pair, bins, 0, gam.shape[1])


def _fermi_surface_part(gam, w, weights, k_index, q_of_pair, bins, first_row: int, n_states: int) -> _KContribution:
    """The Fermi-surface sums of the rows ``first_row`` … of Γ(m) and W(m) (all rows: the whole sums)."""
    return _KContribution(spia.pair_sums_by_q(w, weights, k_index, q_of_pair, first_row),
                          spia.fermi_surface_sums(gam, weights, first_row),
                          spia.diagonal_abs_sum(gam, first_row), n_states,
                          anisotropy.pair_sums_by_bin(w, weights, *bins, first_row) if bins else None)


def _contribution_rows(sums, rb, weights, k_index, q_of_pair, plan: _Plan, cfg, bins, group_comm,
                       rows: grouprows.GroupRows) -> _KContribution | None:
    """:func:`_contribution` with every rank of the group holding its rows ``rows.own`` of the moment
    sums (None if it failed before): its rows of Γ(m), of W(m) (one distributed LU per bead slice,
    :func:`bse_parallel.bethe_salpeter_rows`) and of the Fermi-surface sums, which are added over the
    group on its leader (returned there, None on the other ranks). No rank holds Γ or W whole. If
    any rank of the group has no sums, the group skips the solve: that rank raises, the others
    return None (the caller's agree_on_failure then stops every rank)."""
    gam, failure = None, None
    if sums is not None:
        try:
            gam = sums.gamma(plan.beta, cfg.symmetrize_m)
        except Exception as exc:  # noqa: BLE001 - raised after the group agreed to stop
            failure = exc
    if any(group_comm.allgather(gam is None)):
        if failure is not None:
            raise failure
        return None
    w = gam
    if cfg.mode == "bse":
        w = bse_parallel.bethe_salpeter_rows(group_comm, gam, np.abs(np.diag(rb.gbar_band)) ** 2, plan.beta,
                                             cfg.bse_distributed_solver)
    part = _fermi_surface_part(gam, w, weights, k_index, q_of_pair, bins, rows.first, rows.n_states)
    del gam, w
    return _group_sum(part, group_comm)


def _group_sum(part: _KContribution, group_comm) -> _KContribution | None:
    """The sum over the ranks of ``group_comm`` of their rows' Fermi-surface sums, on its rank 0
    (None elsewhere); ``n_states`` (the K's whole count) is kept."""
    from mpi4py import MPI

    def total(a):
        if a is None:
            return None
        out = np.empty(a.shape, dtype=a.dtype) if group_comm.rank == 0 else None
        group_comm.Reduce(np.ascontiguousarray(a), out, op=MPI.SUM, root=0)
        return out

    summed = [total(a) for a in (part.pair_q, part.pair_gamma, part.diag_abs, part.pair_bins)]
    if group_comm.rank != 0:
        return None
    return _KContribution(summed[0], summed[1], summed[2], part.n_states, summed[3])


def _gamma_w_pass(unit_sums, plan: _Plan, groups, comm, refs, bands: _Bands, q_of_pair, cfg, bins,
                  rows_k: list) -> dict:
    """{(ik, None): _KContribution} of the full sample.

    Per K, the blocks' moment sums are added in block order along the chain of group
    leaders that own them (each adds its own blocks to the partial sum it receives and
    passes it on), so the total is the same sum in the same order for any layout, and no
    rank ever holds more than its own blocks plus two totals. The last leader of the chain
    computes the full-sample Γ, W; only the small Fermi-surface sums travel, to rank 0 (the
    returned dict is empty on the other ranks). Where ``rows_k[ik]`` is set, every rank of a
    group holds its rows of the sums: the r-th ranks of the groups form the chain of those rows
    (:func:`_chain`) and the whole last group forms Γ, W by rows (:func:`_contribution_rows`).
    """
    lead = groups.leader_rank
    parts = {}
    failure = None      # a failure here (e.g. a singular BSE system) must not skip later chain sums
    for ik in range(len(plan.kpoints)):
        chain = sorted({plan.owner[ik * plan.n_blocks + b] for b in range(plan.n_blocks)})
        if lead not in chain:
            continue
        total = None
        if groups.leader or rows_k[ik] is not None:
            own = [b for b in range(plan.n_blocks) if plan.owner[ik * plan.n_blocks + b] == lead]
            s1, s2, n = chain_sum(comm, _chain(chain, groups, rows_k[ik]),
                                  [(unit_sums[(ik, b)].s1, unit_sums[(ik, b)].s2, unit_sums[(ik, b)].count)
                                   for b in own], tag=ik)
            total = spia.MomentSums(s1, s2, n)
            for b in own:
                del unit_sums[(ik, b)]
            del s1, s2
        args = (bands.bands[ik], bands.weights[ik], refs[ik].k_index, q_of_pair[ik], plan, cfg,
                (bins.of_state[ik], bins.n_bins) if bins else None, groups.group_comm, rows_k[ik])
        try:
            if lead == chain[-1]:               # the whole group: its ranks share the BSE slices
                part = _contribution(total, *args)
                if part is not None:
                    parts[(ik, None)] = part
        except Exception as exc:  # noqa: BLE001 - raised on every rank just below
            failure = failure or exc
        del total
    with agree_on_failure(comm, "the Γ/W stage"):
        if failure is not None:
            raise failure
    return gather_dict(parts, comm)


def _chain(leaders: list, groups, rows) -> list:
    """The world ranks that add one K's moment sums in block order: the group leaders ``leaders``,
    or, for row-distributed sums (``rows`` set), the ranks of those groups with this rank's place
    in its group (they hold the same rows)."""
    if rows is None:
        return leaders
    return [r + groups.comm.rank - groups.leader_rank for r in leaders]


def _replica_pass(g_hat, plan: _Plan, groups, comm, refs, bands: _Bands, replica_bands: list, replica_k_bands,
                  q_of_pair, cfg, bins, rows_k: list) -> dict:
    """{(ik, k): _KContribution} of every jackknife replica k (block k deleted), each with its own Ḡ.

    ``g_hat``: ĝ(m) of this group's configurations {(ik, c): complex [n_b, n_s, n_s]} (the bead
    transform of the stored resolvents); ``bands``, ``replica_bands``: the :class:`_Bands` of the
    full sample and of each replica (the latter without U and Ĝ: ``replica_k_bands(k, ik)`` forms
    replica k's renormalised bands of K-point ik when they are needed); ``bins``: the full
    sample's Fermi-surface bins of the states
    (anisotropy), or None. The owner of block k forms replica k's Γ, W and Fermi-surface sums
    with the replica's Ḡ and weights from the moment sums of T over the blocks ≠ k, T recomputed
    with that Ḡ: :func:`_replica_moments_general` or, with one state per k,
    :func:`_replica_moments_one_state` (no resolvent solves either way). They are gathered on
    rank 0 (empty dict elsewhere). Where ``rows_k[ik]`` is set, every rank of a group works on its
    rows as in :func:`_gamma_w_pass`.
    """
    lead = groups.leader_rank
    parts = {}
    failure = None
    for ik in range(len(plan.kpoints)):
        chain = sorted({plan.owner[ik * plan.n_blocks + b] for b in range(plan.n_blocks)})
        if lead not in chain:
            continue
        own = [b for b in range(plan.n_blocks) if plan.owner[ik * plan.n_blocks + b] == lead]
        moments = (_replica_moments_one_state if replicas.one_state_per_k(refs[ik].k_index)
                   else _replica_moments_general)
        rows = rows_k[ik]
        own_replicas = (moments(g_hat, plan, comm, _chain(chain, groups, rows), own, ik, bands, replica_k_bands, rows)
                        if groups.leader or rows is not None
                        else ((k, None, None, None) for k in own))    # the other ranks of the group help the BSE
        for k, sums, exc, rb in own_replicas:
            failure = failure or exc
            try:                                # the whole group: its ranks share the BSE slices
                part = _contribution(sums if exc is None else None, rb, replica_bands[k].weights[ik], refs[ik].k_index,
                                     q_of_pair[ik], plan, cfg, (bins.of_state[ik], bins.n_bins) if bins else None,
                                     groups.group_comm, rows)
                if part is not None:
                    parts[(ik, k)] = part
            except Exception as exc:  # noqa: BLE001 - raised on every rank just below
                failure = failure or exc
    with agree_on_failure(comm, "the jackknife replicas"):
        if failure is not None:
            raise failure
    return gather_dict(parts, comm)


def _replica_moments_general(g_hat, plan: _Plan, comm, chain, own, ik, bands: _Bands, replica_k_bands,
                             rows=None):
    """Yields (k, moment sums of T over the blocks ≠ k, exception or None, replica k's bands of this
    K) for the own blocks k.

    Per replica k every leader of the chain forms the sums of its own blocks ≠ k with T from
    replica k's Ḡ (:func:`spia.t_matrices_m`); they are added in block order along the chain as
    for the full sample (same sums in the same order for any layout). Cost ≈ n_blocks/2 times
    the full sample's T-matrix pass. ``rows``: the sums of this rank's rows only (ĝ holds the
    rows ``rows.needed``), or None.
    """
    n_s = bands.bands[ik].energies.size
    for k in range(plan.n_blocks):
        terms = [spia.MomentSums.zeros(plan.n_beads, n_s, None if rows is None else len(rows.own))]  # may own only k
        failure = rb = None
        try:
            rb = replica_k_bands(k, ik)
            terms += [_block_moments(g_hat, plan, ik, b, rb, rows) for b in own if b != k]
        except Exception as exc:  # noqa: BLE001 - reported by the caller; the chain must go on
            failure = exc
        # every rank runs its chains in the same order, so MPI's in-order delivery makes the
        # (bounded, below MPI's minimum tag limit 32767 / 3) tags unambiguous even when they repeat
        s1, s2, n = chain_sum(comm, chain, [(t.s1, t.s2, t.count) for t in terms],
                              tag=(ik * plan.n_blocks + k) % 10000)
        del terms
        if k in own:
            yield k, spia.MomentSums(s1, s2, n), failure, rb


def _replica_moments_one_state(g_hat, plan: _Plan, comm, chain, own, ik, bands: _Bands, replica_k_bands,
                               rows=None):
    """As :func:`_replica_moments_general` for one state per k (:mod:`replicas`): the blocks' sums
    of ĝ' and |ĝ'|² are added in block order along the chain once; replica k's T sums follow from
    that total minus block k's own sums (the same numbers for any layout). Cost ≈ one pass
    over the configurations for all replicas. ``rows``: as there (with one state per k the rows
    of ĝ needed are the own rows)."""
    shift = np.diag(bands.bands[ik].gbar_band)
    first = 0 if rows is None else rows.first
    failure, g_sums = None, {}
    try:
        g_sums = {b: replicas.shifted_moments([g_hat[(ik, c)] for c in plan.confs(b)], shift, first) for b in own}
    except Exception as exc:  # noqa: BLE001 - reported by the caller; the chain must go on
        failure = exc
    n_s = shift.size
    zero = spia.MomentSums.zeros(plan.n_beads, n_s, None if rows is None else len(rows.own))
    s1, s2, n = chain_sum(comm, chain, [(zero.s1, zero.s2, 0)] + [(g.s1, g.s2, g.count) for g in g_sums.values()],
                          tag=ik % 10000)
    for k in own:
        sums = rb = None
        if failure is None:
            blk = g_sums[k]
            rest = spia.MomentSums(s1 - blk.s1, s2 - blk.s2, n - blk.count)
            rb = replica_k_bands(k, ik)
            sums = replicas.t_moments(rest, shift, rb, first)
        yield k, sums, failure, rb


def _block_moments(g_hat, plan: _Plan, ik: int, blk: int, rb, rows=None) -> spia.MomentSums:
    """Moment sums of T(m) over the configurations of block ``blk`` at K-point ``ik``, with T
    from the bead-transformed resolvents and the renormalised bands ``rb`` of some Ḡ (``rows``:
    this rank's rows only, from its rows ``rows.needed`` of ĝ)."""
    sums = spia.MomentSums.zeros(plan.n_beads, rb.energies.size, None if rows is None else len(rows.own))
    for c in plan.confs(blk):
        sums.add(spia.t_matrices_m(g_hat[(ik, c)], rb, rows))
    return sums


def transfers(refs):
    """All transfers q of the run (float [n_q, 3]) and per K the q index of every pair (int [n_k, n_k])."""
    qsets = [transfer_index(r.kpoints_frac) for r in refs]
    all_q = np.unique(np.round(np.concatenate([q for q, _ in qsets]), 8), axis=0)
    q_of_pair = []
    for qs, qidx in qsets:
        remap = np.array([np.flatnonzero(np.all(np.isclose(all_q, q), axis=1))[0] for q in qs])
        q_of_pair.append(remap[qidx])
    return all_q, q_of_pair


def _estimate(parts, exclude, plan: _Plan, n_gamma, n_q, factor):
    """λ and its summaries for one configuration set: dict of arrays cut to m ≤ N_b/2."""
    ng = plan.gammas.size
    pair_q = np.zeros((ng, n_q, plan.n_beads))
    pair_gam = np.zeros((ng, plan.n_beads))
    diag_abs, n_diag = np.zeros(plan.n_beads), 0
    for ik in range(len(plan.kpoints)):              # fixed K order: identical on every rank
        p = parts[(ik, exclude)]
        pair_q += p.pair_q
        pair_gam += p.pair_gamma
        diag_abs += p.diag_abs
        n_diag += p.n_states
    cut = slice(0, plan.n_report)
    pair_q = pair_q[:, :, cut]
    lam_q = spia.lambda_q(pair_q, n_gamma)
    raw = lam_q.sum(axis=1)
    # ⟨X⟩_FS = Σ_K Σ_st w X w / (N_γ² M/N_cells): with one K the Fermi-surface average of X
    # over all pairs, and λ_raw = −N_γ (M/N_cells) ⟨W⟩_FS for any number of K
    norm = (n_gamma ** 2 / len(plan.kpoints))[:, None]
    return dict(raw=raw, corrected=raw * factor[None], lambda_q=lam_q * factor,
                pair_q=pair_q, gamma_fs=pair_gam[:, cut] / norm, w_fs=-raw / n_gamma[:, None] * len(plan.kpoints),
                gamma_diag_abs=(diag_abs / n_diag)[cut])


def _compute_lambda(model, positions_cbav, kpoints, temperature_k: float, groups, cfg: SpiaSettings,
                    comm, store) -> SpiaResult:
    """The body of :func:`compute_lambda` on a given rank layout ``groups``: named stages."""
    t_start = time.perf_counter()
    timings = {}
    rank = 0 if comm is None else comm.rank
    plan = _plan(positions_cbav, kpoints, temperature_k, groups, cfg, rank)
    # Every per-rank phase runs inside agree_on_failure, so an exception on one rank
    # (a KSP that does not converge, a bug) is raised on every rank before the next
    # collective instead of leaving the others waiting in it. Tasks finished before the
    # failure stay in the checkpoint (saved one by one).
    with agree_on_failure(comm, "the reference states"):
        refs, ref_level, complete = _reference_states(model, plan, cfg, temperature_k)
    ens = None
    if cfg.fermi_choice == "ensemble":
        t0 = time.perf_counter()
        ens = fermi.ensemble_fermi_level(model, positions_cbav, plan.kpoints, cfg.fermi_smearing_ev,
                                         cfg.fermi_smearing, cfg.fermi_configurations, comm,
                                         (groups.n_groups, groups.group))
        timings["fermi_level"] = time.perf_counter() - t0
    with agree_on_failure(comm, "the resolvent pass"):
        z_level = _z_level(cfg, ref_level, ens.value if ens else float("nan"), complete)
        refs, space = state_space(model, plan, refs, z_level, cfg, complete)
        check_fermi_surface_weight(np.concatenate([r.energies for r in refs]), z_level, plan.gammas, cfg.n_per_k)
        z = z_level + 1j * plan.eta
        t0 = time.perf_counter()
        rows_k = row_layouts(refs, cfg, groups)
        g_store, unit_g, n_reused, iterations = _resolvent_pass(model, positions_cbav, plan, groups, refs, z, cfg,
                                                                store, rows_k)
        timings["resolvents"] = time.perf_counter() - t0
    unit_g = allgather_dict(unit_g if groups.leader else {}, comm)          # the leader speaks for its group
    iterations = _report_checkpoint(comm, n_reused, store, iterations if groups.leader else [])
    with agree_on_failure(comm, "the bands and T-matrix pass"):
        every_band = all(r.n_states == model.n_basis for r in refs)
        bands = _bands(unit_g, plan, refs, z, every_band, model, cfg, ref_level, ens)
        t0 = time.perf_counter()
        unit_sums = _fluctuation_pass(g_store, plan, bands, groups.leader, rows_k)
        replica_bands = [_bands(unit_g, plan, refs, z, every_band, model, cfg, ref_level, ens, exclude=k)
                         .without_matrices() for k in range(plan.n_blocks)]
        for key in list(g_store):                                            # in place: ĝ(m) replaces g_b
            g_store[key] = spia.bead_transform(g_store[key])
    timings["t_matrices"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    all_q, q_of_pair = transfers(refs)
    bins = anisotropy.assign_bins(cfg.anisotropy_bins, [b.energies for b in bands.bands],
                                  [r.k_index for r in refs], [r.band_index for r in refs],
                                  [r.kpoints_frac for r in refs], bands.fermi.weights, cfg.anisotropy_n_bins)
    parts = _gamma_w_pass(unit_sums, plan, groups, comm, refs, bands, q_of_pair, cfg, bins, rows_k)
    timings["lambda"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    def replica_k_bands(k, ik):
        return _k_bands(unit_g, plan, refs, z, ik, k)[0]
    parts.update(_replica_pass(g_store, plan, groups, comm, refs, bands, replica_bands, replica_k_bands, q_of_pair,
                               cfg, bins, rows_k))
    g_store.clear()
    timings["jackknife"] = time.perf_counter() - t0
    n_gamma = bands.n_gamma_k.sum(axis=0)                                # N_γ over all k of all K
    n_gamma_jk = np.array([rb.n_gamma_k.sum(axis=0) for rb in replica_bands])
    factor = spia.bead_correction_factor(plan.n_report, plan.n_beads, cfg.bead_correction, cfg.tau_refine)
    with agree_on_failure(comm, "the λ estimates"):
        est = _estimates(parts, plan, n_gamma, n_gamma_jk, all_q.shape[0], factor, bins, bands, replica_bands) \
            if rank == 0 else None
    del parts
    shared = est.shared if comm is None or comm.size == 1 else comm.bcast(est.shared if rank == 0 else None, root=0)
    timings["total"] = time.perf_counter() - t_start
    m_cells = len(refs[0].kpoints_frac)                                  # primitive cells per supercell
    its = {}
    if iterations:
        its = {"ksp_iterations_mean": float(np.mean(iterations)), "ksp_iterations_max": float(np.max(iterations))}
    return SpiaResult(
        temperature_k=temperature_k, n_beads=plan.n_beads, n_conf=plan.n_conf, mode=cfg.mode, fermi=bands.fermi,
        eta_ev=plan.eta, gamma_ev=plan.gammas, lambda_m=shared["corrected"][0], lambda_m_error=shared["corrected"][1],
        lambda_q=est.lambda_q if est else None, qpoints_frac=all_q, n_gamma=n_gamma,
        n_gamma_per_cell=n_gamma / (m_cells * len(plan.kpoints)),
        bands=[dict(energies=b.energies, half_width=b.half_width, k_index=b.k_index, kpoints_frac=r.kpoints_frac,
                    reference_energies=r.energies, band_index=r.band_index) for b, r in zip(bands.bands, refs)],
        offdiag_ratio=bands.offdiag, iterations=its, timings=timings,
        pair_sums_q=est.pair_sums_q if est else None,
        pair_sums_q_jackknife=est.pair_sums_q_jackknife if est else None,
        n_gamma_jackknife=n_gamma_jk,
        cells_per_supercell=m_cells, n_kpoints=len(plan.kpoints), lambda_m_jackknife=shared["corrected"][2],
        raw=LambdaEstimate(*shared["raw"]), state_space=space,
        bead_correction=BeadCorrection(cfg.bead_correction, cfg.tau_refine, factor),
        gamma_fs=shared["gamma_fs"][0], gamma_fs_error=shared["gamma_fs"][1],
        w_fs=shared["w_fs"][0], w_fs_error=shared["w_fs"][1],
        gamma_diag_abs=shared["gamma_diag_abs"][0], gamma_diag_abs_error=shared["gamma_diag_abs"][1],
        anisotropy=est.binned if est else None)


@dataclass(frozen=True)
class _Estimates:
    """What rank 0 forms from the gathered Fermi-surface sums. ``shared``: the small arrays every
    rank needs (λ(m) for its share of the T_c solves), name → (value, error, jackknife replicas)
    for 'corrected', 'raw', 'gamma_fs', 'w_fs', 'gamma_diag_abs'; the rest only rank 0 writes."""

    shared: dict
    lambda_q: np.ndarray                 # float [n_gamma, n_q, n_m]
    pair_sums_q: np.ndarray              # float [n_gamma, n_q, n_m]
    pair_sums_q_jackknife: np.ndarray    # float [n_blocks, n_gamma, n_q, n_m]
    binned: "BinnedCoupling | None"


def _estimates(parts, plan: _Plan, n_gamma, n_gamma_jk, n_q: int, factor, bins, bands: _Bands,
               replica_bands: list) -> _Estimates:
    """λ and its summaries of the full sample and of every jackknife replica from ``parts`` (the
    {(ik, None or deleted block): _KContribution} of every K), with their jackknife errors."""
    full = _estimate(parts, None, plan, n_gamma, n_q, factor)
    reps = [_estimate(parts, k, plan, n_gamma_jk[k], n_q, factor) for k in range(plan.n_blocks)]

    def with_error(name):
        jk = np.array([r[name] for r in reps])
        return full[name], jackknife_error(jk), jk

    shared = {name: with_error(name) for name in ("corrected", "raw", "gamma_fs", "w_fs", "gamma_diag_abs")}
    binned = _binned_coupling(parts, plan, bins, bands, replica_bands, factor) if bins else None
    return _Estimates(shared, full["lambda_q"], full["pair_q"], np.array([r["pair_q"] for r in reps]), binned)


def _binned_coupling(parts, plan: _Plan, bins, bands: _Bands, replica_bands: list, factor) -> BinnedCoupling:
    """W_ij(m) of the full sample and its jackknife error (bin-pair sums added in K order; each
    replica with the bin weights of its own bands)."""
    n_bin = anisotropy.bin_weights(bands.weights, bins)

    def one(exclude, nb):
        p = sum(parts[(ik, exclude)].pair_bins for ik in range(len(plan.kpoints)))
        return anisotropy.binned_coupling(p[..., :plan.n_report], nb, factor)

    w, weights = one(None, n_bin)
    reps = np.array([one(k, anisotropy.bin_weights(replica_bands[k].weights, bins))[0] for k in range(plan.n_blocks)])
    return BinnedCoupling(bins, w, jackknife_error(reps), weights, n_bin)
