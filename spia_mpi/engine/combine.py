"""Combine λ from several supercell runs into one q-grid result (METHOD.md §7).

Each supercell run (``spia_mpi run``) computes, for every transfer q of its supercell,
the pair sum P_q(m) = Σ_k w_k W_{k,k+q}(m) w_{k+q} over the primitive k of its
K-points. Couplings in an M-cell supercell scale as 1/M, so on a q-grid of N_q points

    λ_q(m) = −(M/N_q) P_q(m) / N_γ,      N_γ = Σ_nk w_nk over the k-grid,

and λ(m) = Σ_{q ∈ grid} λ_q(m) = Σ_{q irreducible} (star size) · λ_q(m), each
irreducible q taken from a supercell commensurate with it (any member of its star:
the Fermi-surface sum is invariant under the crystal's symmetry). Every q of the
full grid therefore counts exactly once, whatever the supercell sizes. (When the
k-grid is finer than the q-grid, P_q sums over all N_k k and λ_q is the coarse-grid
estimate of (N_k/N_q) Σ of the fine transfers it represents.)

Runs of the same supercell matrix with disjoint K-point sets (one run split into
jobs, all with the same Fermi level of the weights) form one *group*: their pair sums, their N_γ and their jackknife replicas
(pair sums and N_γ of each replica) add block by block (the blocks are the same configurations, or independent ones — in
both cases the delete-one replicas of the sum are the sums of the replicas). The
groups are independent samples: their errors add in quadrature. The combined
replicas keep that property for any later use (T_c errors): group r's replicas,
shifted to the combined mean and scaled by c_r = √((n_r−1)/n_r · N/(N−1)) (n_r its
blocks, N = Σ n_r), are concatenated, so the delete-one formula over all N
replicas gives Σ_r σ_r² exactly; with one group they are that group's replicas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spia_mpi.errors import InputError


@dataclass
class SupercellRun:
    """What `combine` needs from one results file of `spia_mpi run`."""
    path: str
    qpoints_frac: np.ndarray          # [n_q, 3] primitive reduced transfers of the supercell
    pair_sums: np.ndarray             # [n_gamma, n_q, n_m] Σ w W w (1/eV)
    pair_sums_jackknife: np.ndarray   # [n_blocks, n_gamma, n_q, n_m]
    cells_per_supercell: int          # M
    supercell_matrix: np.ndarray      # [3, 3] int
    kpoints_frac: np.ndarray          # [n_k, 3] the distinct primitive k of its K-points
    gamma_ev: np.ndarray              # [n_gamma]
    n_gamma: np.ndarray               # [n_gamma] N_γ = Σ w over its k-points (1/eV)
    fermi_level_ev: float             # centre of its Lorentzian weights (renormalised ε_F)
    temperature_k: float
    n_beads: int
    settings: dict = field(default_factory=dict)   # inputs that must agree between runs (model, spia …)
    bead_factor: np.ndarray | None = None          # [n_m] f(m) of its finite-bead correction (None: 1)
    n_gamma_jackknife: np.ndarray | None = None    # [n_blocks, n_gamma] N_γ of each replica (None: n_gamma,
                                                   # as in results files written before replicas had their own Ḡ)


@dataclass
class CombinedLambda:
    gamma_ev: np.ndarray              # [n_gamma] eV
    lambda_m: np.ndarray              # [n_gamma, n_m]
    lambda_m_error: np.ndarray        # [n_gamma, n_m]
    lambda_m_jackknife: np.ndarray    # [Σ_r n_r, n_gamma, n_m] combined replicas (module docstring)
    lambda_irr_q: np.ndarray          # [n_gamma, n_irr, n_m] per irreducible q (one star member)
    irreducible_q: np.ndarray         # [n_irr, 3]
    weights: np.ndarray               # [n_irr] star sizes
    qpoints: np.ndarray               # [N_q, 3] the full q-grid
    lambda_q: np.ndarray              # [n_gamma, N_q, n_m] star-filled λ_q (Σ_q = λ(m))
    source: list                      # results file that gave each irreducible q
    groups: list                      # per group: dict(matrix, paths, n_blocks, irreducible q indices)
    n_gamma_per_cell: np.ndarray      # [n_groups, n_gamma] N_γ / N_k of every group (1/eV)
    temperature_k: float
    n_beads: int
    n_kpoints: int                    # N_k of the k-grid every group covers
    lambda_m_raw: np.ndarray | None = None      # [n_gamma, n_m] before the runs' finite-bead correction
    bead_correction: str = "none"               # the runs' spia.bead_correction (lambda_m = f(m) · lambda_m_raw)


def _key(k):
    """Rounded reduced k in [0, 1) as a hashable tuple."""
    return tuple(np.round(np.mod(np.round(np.asarray(k, float), 8), 1.0), 6) % 1.0)


def check_runs(runs: list) -> None:
    """InputError naming the file unless every run was made with the same physics."""
    r0 = runs[0]
    for r in runs[1:]:
        if abs(r.temperature_k - r0.temperature_k) > 1e-9 * r0.temperature_k:
            raise InputError(f"{r.path}: temperature {r.temperature_k} K differs from {r0.path} "
                             f"({r0.temperature_k} K)")
        if r.n_beads != r0.n_beads:
            raise InputError(f"{r.path}: {r.n_beads} beads, {r0.path} has {r0.n_beads}")
        if r.gamma_ev.shape != r0.gamma_ev.shape or not np.allclose(r.gamma_ev, r0.gamma_ev):
            raise InputError(f"{r.path}: γ list {r.gamma_ev.tolist()} eV differs from {r0.path} "
                             f"({r0.gamma_ev.tolist()} eV)")
        for key in sorted(set(r.settings) | set(r0.settings)):
            if r.settings.get(key) != r0.settings.get(key):
                raise InputError(f"{r.path}: {key} = {r.settings.get(key)!r} differs from {r0.path} "
                                 f"({r0.settings.get(key)!r})")


def group_runs(runs: list) -> list:
    """Runs grouped by supercell matrix; InputError if a group's K-points overlap."""
    groups = {}
    for r in runs:
        groups.setdefault(tuple(np.asarray(r.supercell_matrix).ravel().tolist()), []).append(r)
    out = []
    for members in groups.values():
        seen = {}
        for r in members:
            for k in r.kpoints_frac:
                if _key(k) in seen:
                    raise InputError(f"{r.path} and {seen[_key(k)]} (same supercell) both hold the primitive "
                                     f"k = {np.round(k, 6).tolist()}: split a supercell's K-points into "
                                     "disjoint sets")
                seen[_key(k)] = r.path
        for r in members[1:]:
            if abs(r.fermi_level_ev - members[0].fermi_level_ev) > 1e-9:
                raise InputError(
                    f"{r.path} and {members[0].path} (same supercell, split K-points) centre their Fermi-surface "
                    f"weights at different ε_F ({r.fermi_level_ev:.6f} and {members[0].fermi_level_ev:.6f} eV, each "
                    "from its own K-points): give every part the same spia.fermi_level_ev (it then "
                    "centres the weights of every part)")
        nb = {r.pair_sums_jackknife.shape[0] for r in members}
        if len(nb) > 1:
            raise InputError(f"runs of the supercell {np.asarray(members[0].supercell_matrix).tolist()} have "
                             f"different numbers of configuration blocks ({sorted(nb)}): use one spia.n_blocks")
        out.append(members)
    return out


def _check_coverage(groups: list, n_q: int, mesh) -> int:
    """N_k, the size of the k-grid every group covers exactly once."""
    ref = None
    for members in groups:
        ks = {_key(k) for r in members for k in r.kpoints_frac}
        paths = ", ".join(r.path for r in members)
        if ref is None:
            ref, ref_paths = ks, paths
        elif ks != ref:
            raise InputError(f"{paths}: their K-points cover {len(ks)} primitive k-points, {ref_paths} cover "
                             f"{len(ref)} other ones: run every supercell on the same k-grid (supercell.kgrid)")
    n_k = len(ref)
    if n_k < n_q or n_k % n_q:
        raise InputError(f"{ref_paths}: the K-points cover {n_k} primitive k-points, the q-grid "
                         f"{list(map(int, mesh))} has {n_q}: run every supercell with supercell.kgrid = "
                         f"{list(map(int, mesh))} (or a multiple of it)")
    return n_k


def combine(runs, atoms, qgrid, symprec: float = 1e-5) -> CombinedLambda:
    """λ(m) on the q-grid from supercell runs (results files or :class:`SupercellRun`; module docstring)."""
    from spia_mpi.lattice import supercells as sc
    from spia_mpi.engine.spia import lambda_q
    from spia_mpi.engine.stats import jackknife_error
    if not runs:
        raise InputError("give at least one results file")
    if not isinstance(runs[0], SupercellRun):
        from spia_mpi.io.combined import read_supercell_run
        runs = [read_supercell_run(p) for p in runs]
    check_runs(runs)
    qg = sc.irreducible_qgrid(atoms, qgrid, symprec=symprec)
    n_q = int(np.prod(qg.mesh))
    groups = group_runs(runs)
    n_k = _check_coverage(groups, n_q, qg.mesh)
    r0 = runs[0]
    n_gam, n_m = r0.pair_sums.shape[0], r0.pair_sums.shape[2]
    # per group: the summed pair sums and replicas, turned into λ_q
    lam_q_of, lam_q_jk_of, ngam_of = [], [], []
    for members in groups:
        ngam = sum(r.n_gamma for r in members)
        qs = np.concatenate([r.qpoints_frac for r in members])
        keys = list(dict.fromkeys(_key(q) for q in qs))
        pair = np.zeros((n_gam, len(keys), n_m))
        pair_jk = np.zeros((members[0].pair_sums_jackknife.shape[0], n_gam, len(keys), n_m))
        for r in members:
            idx = [keys.index(_key(q)) for q in r.qpoints_frac]
            np.add.at(pair, (slice(None), idx), r.pair_sums)
            np.add.at(pair_jk, (slice(None), slice(None), idx), r.pair_sums_jackknife)
        M = members[0].cells_per_supercell
        lam_q_of.append((np.array(keys), lambda_q(pair, ngam, M / n_q)))
        ngam_jk = sum(r.n_gamma if r.n_gamma_jackknife is None else r.n_gamma_jackknife for r in members)
        lam_q_jk_of.append(lambda_q(pair_jk, np.broadcast_to(ngam_jk, pair_jk.shape[:2]), M / n_q))
        ngam_of.append(ngam / n_k)
    irr_q = qg.irreducible_qpoints
    lam_irr = np.zeros((n_gam, len(irr_q), n_m))
    source = [None] * len(irr_q)
    used = [[] for _ in groups]                     # (irreducible index, q indices in the group)
    for i in range(len(irr_q)):
        star = {_key(s) for s in qg.qpoints[qg.rep == i]}
        for gi, (keys, lam_q) in enumerate(lam_q_of):
            hit = [j for j, q in enumerate(keys) if _key(q) in star]
            if hit:                                 # the mean over the star members it holds
                lam_irr[:, i] = lam_q[:, hit].mean(axis=1)
                used[gi].append((i, hit))
                source[i] = ", ".join(r.path for r in groups[gi])
                break
        if source[i] is None:
            raise InputError(f"no results file contains the irreducible q = {irr_q[i].round(6).tolist()} "
                             "(or a member of its star): add a supercell commensurate with it")
    w = qg.weights.astype(float)
    lam = np.einsum("i,gim->gm", w, lam_irr)
    # each group's contribution to λ, replica by replica; groups without a q contribute nothing
    contrib = [(np.einsum("i,bgim->bgm", w[[i for i, _ in u]],
                          np.stack([lam_q_jk_of[gi][:, :, hit].mean(axis=2) for _, hit in u], axis=2)), gi)
               for gi, u in enumerate(used) if u]
    n_tot = sum(c.shape[0] for c, _ in contrib)
    mean_total = sum(c.mean(axis=0) for c, _ in contrib)
    reps, var = [], np.zeros_like(lam)
    for c, _ in contrib:
        n_r = c.shape[0]
        scale = 1.0 if len(contrib) == 1 else np.sqrt((n_r - 1) / n_r * n_tot / (n_tot - 1))
        reps.append(mean_total + scale * (c - c.mean(axis=0)))
        var += jackknife_error(c) ** 2
    # the runs' finite-bead correction (all equal: check_runs), applied as `run` applies it
    f = np.ones(n_m) if r0.bead_factor is None else np.asarray(r0.bead_factor, float)[:n_m]
    raw = lam
    lam, lam_irr, var = raw * f, lam_irr * f, var * f ** 2
    reps = [x * f for x in reps]
    qfull = qg.qpoints
    lam_full = lam_irr[:, qg.rep]
    info = [dict(matrix=np.asarray(g[0].supercell_matrix).tolist(), paths=[r.path for r in g],
                 n_blocks=int(g[0].pair_sums_jackknife.shape[0]), irreducible_q=[i for i, _ in u])
            for g, u in zip(groups, used)]
    return CombinedLambda(r0.gamma_ev, lam, np.sqrt(var), np.concatenate(reps), lam_irr, irr_q, qg.weights,
                          qfull, lam_full, source, info, np.array(ngam_of), r0.temperature_k, r0.n_beads, n_k,
                          lambda_m_raw=raw, bead_correction=r0.settings.get("spia.bead_correction") or "none")
