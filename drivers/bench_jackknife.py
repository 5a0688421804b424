#!/usr/bin/env python
"""Benchmark: the jackknife replicas' cost against the number of blocks, on the demo.

The demo's input (spia_mpi/data/demo.toml: Holstein 4×4×4 supercell, K = Γ, 96 exact Einstein
samples × 16 beads, γ = 0.2/0.4/0.8 eV, BSE; dense resolvents, one rank) for 8, 16 and 32
configuration blocks, side by side in one run: the stage times of `compute_lambda`
(resolvents, T-matrix pass with the replicas' bands, full-sample Γ/W/λ, jackknife replicas)
with the one-state-per-k replica route (the default for this model, engine/replicas.py) and,
for comparison, with the general route (every replica recomputes T of every configuration,
forced here). The replicas of both routes agree to round-off (checked and reported).
Writes docs/benchmarks/jackknife.md.

    python drivers/bench_jackknife.py [--blocks 8 16 32] [--repeat 2] [--no-general]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("resolvents", "t_matrices", "lambda", "jackknife", "total")


def demo_problem():
    """(model, positions, kwargs) of the demo's input, the Fermi level fixed by the ensemble estimate."""
    from spia_mpi.io import inputs
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    d = inputs.load_toml(ROOT / "spia_mpi" / "data" / "demo.toml")
    h, e, s = d["model"]["holstein"], d["configurations"]["einstein"], d["spia"]
    model = holstein_cubic(np.diag(d["supercell"]["matrix"]), h["lattice_constant_ang"], h["hopping_ev"],
                           h["coupling_ev_per_ang"], h["electrons_per_site"], h["mass_amu"])
    pos = sample_einstein_ring_polymers(e["n_samples"], e["n_beads"], np.full(model.n_basis, h["mass_amu"]),
                                        e["hbar_omega_ev"], e["temperature_k"], model.reference_positions,
                                        np.random.default_rng(e["seed"]))
    kw = dict(J=s["matsubara_j"], n_per_k=s["states_per_k"], gammas=tuple(s["gamma_ev"]), mode=s["mode"],
              solver="dense")
    return model, pos, d["supercell"]["kpoints"], e["temperature_k"], kw


def one(route: str, n_blocks: int, problem):
    """Stage times (s) and the raw replicas of one run with the given replica route."""
    from spia_mpi.engine import replicas, workflow
    model, pos, kpts, temp, kw = problem
    original = replicas.one_state_per_k
    if route == "general":
        replicas.one_state_per_k = lambda k_index: False
    try:
        t0 = time.perf_counter()
        res = workflow.compute_lambda(model, pos, kpts, temp, n_blocks=n_blocks, **kw)
        wall = time.perf_counter() - t0
    finally:
        replicas.one_state_per_k = original
    return dict(res.timings, wall=wall), res.raw.replicas


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--repeat", type=int, default=2, help="runs per case (the fastest is reported)")
    ap.add_argument("--no-general", action="store_true", help="skip the general route")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "jackknife.md"))
    args = ap.parse_args(argv)
    from spia_mpi.io.log import setup_logging
    setup_logging(None, "WARNING")
    problem = demo_problem()
    routes = ["one-state"] + ([] if args.no_general else ["general"])
    rows, diffs = [], {}
    for nb in args.blocks:
        reps = {}
        for route in routes:
            best = None
            for _ in range(args.repeat if route == "one-state" else 1):
                t, reps[route] = one(route, nb, problem)
                best = t if best is None or t["total"] < best["total"] else best
            rows.append((route, nb, best))
            print(route, nb, {k: round(v, 2) for k, v in best.items()}, flush=True)
        if "general" in reps:
            diffs[nb] = float(np.abs(reps["one-state"] - reps["general"]).max() / np.abs(reps["general"]).max())
    load = Path("/proc/loadavg").read_text().split()[:3]
    base = {nb: t["total"] for route, nb, t in rows if route == "one-state"}
    lines = ["## Jackknife replicas vs number of blocks (demo)\n",
             "`python drivers/bench_jackknife.py` — the demo's input (Holstein 4×4×4, Γ, 96 × 16 beads, "
             "3 γ, BSE, dense resolvents, one rank), stage times of `compute_lambda` in seconds (fastest of "
             f"{args.repeat} for the default route, 1 for the general one). Load average during the run: "
             f"{' '.join(load)} (shared machine, under `nice`): absolute times are rough, ratios less so.\n",
             "| replica route | blocks | resolvents | T-matrix pass + replica bands | λ (full sample) | "
             "jackknife | total | total / default route's total with the fewest blocks |",
             "|---|---|---|---|---|---|---|---|"]
    for route, nb, t in rows:
        ratio = t["total"] / base[args.blocks[0]] if args.blocks[0] in base else float("nan")
        lines.append(f"| {route} | {nb} | " + " | ".join(f"{t[s]:.2f}" for s in STAGES) + f" | {ratio:.2f} |")
    if diffs:
        lines.append("")
        lines.append("Largest relative difference of the raw λ replicas between the routes: "
                     + ", ".join(f"{nb} blocks {d:.1e}" for nb, d in diffs.items()) + ".")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
