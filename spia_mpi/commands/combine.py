"""``combine``: λ(m) on a full q-grid from several supercell runs (non-diagonal supercells)."""
import json

import numpy as np

NAME = "combine"
HELP = "combine supercell runs into λ(m) on a q-grid (each q counted once, symmetry-filled stars)"
ORDER = 35
NEEDS_MPI = False
DESCRIPTION = """\
Run every supercell of `spia_mpi supercells` with `supercell.kgrid` set to the
primitive k-grid (so each covers all k), then:

  python -m spia_mpi combine --structure li2mgh16-solid --qgrid 8 8 8 sc_*.h5 [--json]

λ(m) = Σ_irreducible q (star size) · λ_q(m), λ_q = −(M/N) Σ_k w_k W_{k,k+q} w_{k+q} / N_γ.
"""


def add_arguments(p):
    p.add_argument("results", nargs="+", help="results files of the supercell runs")
    p.add_argument("--structure", required=True, help="primitive structure (file or shipped example)")
    p.add_argument("--qgrid", type=int, nargs=3, required=True, metavar=("N1", "N2", "N3"))
    p.add_argument("--symprec", type=float, default=1e-5)
    p.add_argument("--json", action="store_true")


def run(args, comm):
    from spia_mpi.engine.combine import combine
    from spia_mpi.lattice.structures import load_structure
    res = combine(args.results, load_structure(args.structure), args.qgrid, args.symprec)
    out = {"temperature_K": res.temperature_k, "gamma_eV": res.gamma_ev.tolist(),
           "lambda_m": res.lambda_m.tolist(), "lambda_m_error": res.lambda_m_error.tolist(),
           "irreducible_q": res.irreducible_q.round(8).tolist(), "weights": res.weights.tolist(),
           "source": res.source}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for ig, g in enumerate(res.gamma_ev):
            print(f"γ = {g:g} eV: λ(m) = " + ", ".join(f"{x:.4f}±{e:.4f}" for x, e in
                                                       zip(res.lambda_m[ig], res.lambda_m_error[ig])))
        for q, w, s in zip(res.irreducible_q, res.weights, res.source):
            print(f"  q = {np.round(q, 4).tolist()} ×{w}: {s}")
    return 0
