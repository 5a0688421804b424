"""``combine``: λ(m) on a full q-grid from several supercell runs → a results file with T_c ± σ."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "combine"
HELP = "combine supercell runs into λ(m) on a q-grid and T_c ± σ (writes a results file)"
ORDER = 35
NEEDS_MPI = False
DESCRIPTION = """\
Run every supercell of `spia_mpi supercells` with `supercell.kgrid` set to the
primitive k-grid (so each covers all k; one supercell's K-points may also be
split over several runs with disjoint `supercell.kpoints`), then:

  python -m spia_mpi combine --structure li2mgh16-solid --qgrid 8 8 8 sc_*.h5 --out combined.h5

λ(m) = Σ_irreducible q (star size) · λ_q(m), λ_q = −(M/N_q) Σ_k w_k W_{k,k+q} w_{k+q} / N_γ.
The runs must agree in temperature, beads, γ list, mode and model. The output is a
results file like the one of `run` (λ(m), λ_q(m), jackknife replicas, T_c ± σ and the
provenance of every input run): `tc --lambda combined.h5`, `plot combined.h5` and
`gap` read it. An existing --out file is kept unless --force is given.
"""

logger = logging.getLogger("spia_mpi")


def add_arguments(p):
    p.add_argument("results", nargs="+", help="results files of the supercell runs")
    p.add_argument("--structure", required=True, help="primitive structure (file or shipped example)")
    p.add_argument("--qgrid", type=int, nargs=3, required=True, metavar=("N1", "N2", "N3"))
    p.add_argument("--symprec", type=float, default=1e-5)
    p.add_argument("--out", default="combined.h5", help="combined results file (default combined.h5)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--mustar", type=float, action="append", metavar="MU",
                   help="μ* for T_c (repeat; default: eliashberg.mustar of the first run)")
    p.add_argument("--no-tc-errors", action="store_true", help="skip the jackknife error of T_c")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")


def eliashberg_of(comb, mustars, n_freq, tc_errors: bool, comm) -> dict:
    """T_c, its jackknife error and the spectral summaries of every γ row of ``comb``."""
    from spia_mpi.eliashberg import linearised
    n_g, n_mu = len(comb.gamma_ev), len(mustars)
    nan = [math.nan] * n_mu
    out = dict(mustar=list(mustars), tc_K=[], tc_K_error=[], allen_dynes_K=[], mcmillan_K=[], omega2_eV=[],
               omega_log_eV=[], omega2_m_eV=np.full(comb.lambda_m.shape, np.nan), notes=[])
    for ig in range(n_g):
        lam = comb.lambda_m[ig]
        try:
            r = linearised.solve_tc(lam, comb.temperature_k, mustars, n_freq=n_freq, comm=comm)
            out["omega2_m_eV"][ig] = linearised.fit_omega2(lam, comb.temperature_k).omega2_m_ev
        except InputError as exc:
            for k in ("tc_K", "tc_K_error", "allen_dynes_K", "mcmillan_K"):
                out[k].append(nan)
            out["omega2_eV"].append(math.nan), out["omega_log_eV"].append(math.nan)
            out["notes"].append(str(exc))
            continue
        note = [f"μ*={k}: {v}" for k, v in r.errors.items()]
        err = nan
        if tc_errors:
            jk = linearised.jackknife_tc(comb.lambda_m_jackknife[:, ig], comb.temperature_k, mustars, r.tc_k,
                                         n_freq=n_freq, comm=comm)
            err = [float(x) for x in jk.tc_error_k]
            note += [f"μ*={k}: T_c error: {v}" for k, v in jk.errors.items() if v != "no central T_c"]
        out["tc_K"].append(list(r.tc_k)), out["tc_K_error"].append(err)
        out["allen_dynes_K"].append(list(r.allen_dynes_k)), out["mcmillan_K"].append(list(r.mcmillan_k))
        out["omega2_eV"].append(r.omega2_ev), out["omega_log_eV"].append(r.omega_log_ev)
        out["notes"].append("; ".join(note))
    return out


def run(args, comm):
    from spia_mpi.engine.combine import combine
    from spia_mpi.io import hdf5
    from spia_mpi.io.combined import read_supercell_run, run_provenance, write_combined
    from spia_mpi.io.outputs import check_new_output
    from spia_mpi.lattice.structures import load_structure
    out = Path(args.out)
    check_new_output(out, args.force)
    if any(Path(p).resolve() == out.resolve() for p in args.results):
        raise InputError(f"--out {out} is one of the input files")
    runs = [read_supercell_run(p) for p in args.results]
    comb = combine(runs, load_structure(args.structure), args.qgrid, args.symprec)
    infos = [run_provenance(p) for p in args.results]
    first = json.loads(infos[0]["input"])
    mustars = args.mustar or first.get("eliashberg", {}).get("mustar") or [0.1]
    n_freq = first.get("eliashberg", {}).get("nfreq")
    unused = [p for g in comb.groups if not g["irreducible_q"] for p in g["paths"]]
    for p in unused:
        logger.warning("%s: no irreducible q taken from it (another supercell supplied them all)", p)
    tc = eliashberg_of(comb, mustars, n_freq, not args.no_tc_errors, comm)
    resolved = dict(results=[i["path"] for i in infos], structure=args.structure, qgrid=list(args.qgrid),
                    symprec=args.symprec, mustar=list(mustars), nfreq=n_freq, tc_errors=not args.no_tc_errors)
    info = hdf5.provenance(None, "combine " + " ".join(map(str, args.results)))
    write_combined(out, comb, tc, info, resolved, infos, first.get("spia", {}).get("mode", ""))
    if args.json:
        from spia_mpi.commands.tc import _json_safe
        print(json.dumps(_json_safe(dict(
            results=str(out), temperature_K=comb.temperature_k, gamma_eV=comb.gamma_ev,
            lambda_m=comb.lambda_m, lambda_m_error=comb.lambda_m_error, irreducible_q=comb.irreducible_q.round(8),
            weights=comb.weights, source=comb.source, mustar=mustars, tc_K=tc["tc_K"],
            tc_K_error=tc["tc_K_error"], notes=tc["notes"])), indent=1))
    else:
        print(summary(out, comb, tc))
    return 0


def summary(out, comb, tc) -> str:
    """A few lines: the file, λ(m) ± σ and T_c ± σ per γ, where each irreducible q came from."""
    lines = [f"combined results: {out} (q-grid of {len(comb.qpoints)} points, {len(comb.irreducible_q)} "
             f"irreducible, T = {comb.temperature_k:g} K, {comb.n_beads} beads)"]
    for ig, g in enumerate(comb.gamma_ev):
        lines.append(f"γ = {g:g} eV: λ(m) = " + ", ".join(
            f"{x:.4f}±{e:.4f}" for x, e in zip(comb.lambda_m[ig], comb.lambda_m_error[ig])))
        lines.append("          T_c = " + ", ".join(
            (f"{t:.1f} ± {s:.2g} K" if math.isfinite(s) else f"{t:.1f} K") + f" (μ*={mu})"
            for t, s, mu in zip(tc["tc_K"][ig], tc["tc_K_error"][ig], tc["mustar"])))
        if tc["notes"][ig]:
            lines.append(f"          ({tc['notes'][ig]})")
    for q, w, s in zip(comb.irreducible_q, comb.weights, comb.source):
        lines.append(f"  q = {np.round(q, 4).tolist()} ×{w}: {s}")
    return "\n".join(lines)
