"""Combine λ from several (non-diagonal) supercells into one q-grid result (METHOD.md §7).

Each supercell run (``spia_mpi run`` with ``supercell.kgrid`` = the primitive k-grid)
computes, for every transfer q of its supercell, the pair sum
P_q(m) = Σ_k w_k W_{k,k+q}(m) w_{k+q} over *all* k of the grid. Couplings in an
M-cell supercell scale as 1/M, so the contribution of that q to the coupling of the
N-cell crystal (N = number of k-points) is

    λ_q(m) = −(M/N) P_q(m) / N_γ,      N_γ = Σ_nk w_nk over the k-grid,

and λ(m) = Σ_{q ∈ grid} λ_q(m) = Σ_{q irreducible} (star size) · λ_q(m), each
irreducible q taken from a supercell commensurate with it (any member of its star:
the Fermi-surface sum is invariant under the crystal's symmetry). Every q of the
full grid therefore counts exactly once, whatever the supercell sizes. Errors add
in quadrature over supercells (independent samples), each from its own jackknife.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError


@dataclass
class CombinedLambda:
    gamma_ev: np.ndarray          # [n_gamma]
    lambda_m: np.ndarray          # [n_gamma, n_m]
    lambda_m_error: np.ndarray    # [n_gamma, n_m]
    lambda_irr_q: np.ndarray      # [n_gamma, n_irr, n_m] per irreducible q (one star member)
    irreducible_q: np.ndarray     # [n_irr, 3]
    weights: np.ndarray           # [n_irr]
    source: list                  # results file used for each irreducible q
    temperature_k: float


def _read(path):
    from spia_mpi.io import hdf5
    with hdf5.open_finished(path, "results") as f:
        if "pair_sums" not in f["lambda_q"]:
            raise InputError(f"{path}: no /lambda_q/pair_sums (written by spia_mpi ≥ 0.1 runs)")
        g = f["lambda_q"]
        out = dict(path=str(path), q=g["qpoints_frac"][...], pair=g["pair_sums"][...],
                   pair_jk=g["pair_sums_jackknife"][...], M=int(g.attrs["cells_per_supercell"]),
                   nK=int(g.attrs["n_kpoints"]), S=np.array(json.loads(g.attrs["supercell_matrix"])),
                   gamma=f["lambda/gamma_eV"][...], ngam=f["lambda/n_gamma_per_cell"][...],
                   T=float(f["lambda"].attrs["temperature_K"]))
    return out


def combine(paths, atoms, qgrid, symprec: float = 1e-5) -> CombinedLambda:
    """λ(m) on the q-grid from supercell results files (see the module docstring)."""
    from spia_mpi.lattice import supercells as sc
    from spia_mpi.engine.stats import jackknife_error
    runs = [_read(p) for p in paths]
    if not runs:
        raise InputError("give at least one results file")
    qg = sc.irreducible_qgrid(atoms, qgrid, symprec=symprec)
    n_cells = int(np.prod(qg.mesh))
    r0 = runs[0]
    for r in runs:
        if r["M"] * r["nK"] != n_cells:
            raise InputError(f"{r['path']}: its K-points cover {r['M'] * r['nK']} primitive k-points, the grid has "
                             f"{n_cells}: run every supercell with supercell.kgrid = {list(map(int, qg.mesh))}")
        if not np.allclose(r["gamma"], r0["gamma"]) or abs(r["T"] - r0["T"]) > 1e-9:
            raise InputError(f"{r['path']}: γ list or temperature differs from {r0['path']}")
    n_m = min(r["pair"].shape[-1] for r in runs)
    irr_q = qg.irreducible_qpoints
    stars = [qg.qpoints[qg.rep == i] for i in range(len(irr_q))]
    lam_irr = np.zeros((r0["gamma"].size, len(irr_q), n_m))
    var = np.zeros((r0["gamma"].size, n_m))
    source = [None] * len(irr_q)
    contrib = {}
    for i, star in enumerate(stars):
        for ri, r in enumerate(runs):
            hit = [j for j, q in enumerate(r["q"]) if any(np.allclose((q - s) - np.round(q - s), 0, atol=1e-6)
                                                        for s in star)]
            if hit:
                j = hit[0]
                ngam = r["ngam"] * n_cells                                   # N_γ over the k-grid
                factor = -(r["M"] / n_cells) / ngam[:, None]
                lam_irr[:, i, :] = factor * r["pair"][:, j, :n_m]
                contrib.setdefault(ri, []).append((i, j, factor))
                source[i] = r["path"]
                break
        if source[i] is None:
            raise InputError(f"no results file contains the irreducible q = {irr_q[i].round(6).tolist()} "
                             "(or a member of its star): add a supercell commensurate with it")
    lam = np.einsum("i,gim->gm", qg.weights.astype(float), lam_irr)
    for ri, items in contrib.items():
        r = runs[ri]
        nb = r["pair_jk"].shape[0]
        reps = np.array([sum(qg.weights[i] * f * r["pair_jk"][b][:, j, :n_m] for i, j, f in items)
                         for b in range(nb)])
        var += jackknife_error(reps) ** 2                                    # independent runs: in quadrature
    return CombinedLambda(r0["gamma"], lam, np.sqrt(var), lam_irr, irr_q, qg.weights, source, r0["T"])
