#!/usr/bin/env python
"""Benchmark: seconds per configuration-bead of the whole SPIA pipeline, a profile, and
a scaling model for the paper's workload.

1. The demo model (Holstein 4×4×4, 64 states, dense and PETSc resolvents).
2. The 38-atom Li₂MgH₁₆ primitive cell (Table S1) on a 16³ real-space grid (0.30 Å,
   4096 points), 40 plane-wave reference states at Γ, PETSc resolvents with the
   kinetic-energy FFT preconditioner (default) and with Jacobi (the previous default):
   the per-bead cost of the paper's material in this model.
3. cProfile of (2): where the time goes.
4. A scaling model for the paper's production workload (17 supercells × 75 samples ×
   16 beads of 304-atom cells) from the measured per-bead cost, on 1 … 1024 ranks.

Writes docs/benchmarks/pipeline.md.
"""
import argparse
import cProfile
import io
import math
import pstats
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spia_mpi.ions.configurations import sample_einstein_ring_polymers  # noqa: E402
from spia_mpi.models.grid import GridModel  # noqa: E402
from spia_mpi.models.tightbinding import holstein_cubic
from spia_mpi.lattice.structures import li2mgh16_solid  # noqa: E402
from spia_mpi.engine.workflow import compute_lambda  # noqa: E402

T = 290.0


def samples(model, n_conf, n_beads, hw, masses):
    return sample_einstein_ring_polymers(n_conf, n_beads, masses, hw, T, model.reference_positions,
                                         np.random.default_rng(0))


def per_bead(model, pos, n_per_k, solver, ef=None, options=None):
    t = time.perf_counter()
    res = compute_lambda(model, pos, [[0, 0, 0]], T, n_per_k=n_per_k, gammas=(0.8,), solver=solver,
                         n_blocks=2, fermi_level_ev=ef, solver_options=options)
    total = time.perf_counter() - t
    return total / (pos.shape[0] * pos.shape[1]), res.timings, res.iterations


def row(name, basis, states, solver, s, t, its):
    share = 100 * t["resolvents"] / t["total"]
    return (f"| {name} | {basis} | {states} | {solver} | {s:.4f} | {share:.0f} % | "
            f"{its.get('ksp_iterations_mean', float('nan')):.0f} |")


def scaling_model(t_bead_38: float) -> list:
    """Wall time of the paper's workload on P ranks (one-rank groups), from the measured cost.

    Per configuration-bead of a 304-atom supercell (8 primitive cells): 8× the grid points
    and 8× the reference states of the 38-atom cell. With the kinetic preconditioner the
    iterations do not grow with the cell, so a resolvent column costs ∝ N log N and there are
    8× as many columns: ≈ 64 · (log 32768 / log 4096) ≈ 80× the 38-atom figure. Work units
    are whole configurations (n_blocks = 75 per supercell): P ranks get ⌈1275/P⌉ of the
    17 × 75 = 1275 configurations, 16 beads each. The chain reduction moves 2 arrays of
    16 · 320² · 24 B ≈ 39 MB per K and leader (≈ 4 ms at 10 GB/s), negligible here.
    """
    t_bead = 80 * t_bead_38
    n_conf, n_beads = 17 * 75, 16
    serial = n_conf * n_beads * t_bead
    lines = []
    for p in (1, 16, 64, 256, 1024, 1275):
        wall = math.ceil(n_conf / p) * n_beads * t_bead + 39e6 / 10e9 * math.ceil(math.log2(p + 1))
        lines.append(f"| {p} | {wall / 3600:.2f} | {serial / (p * wall) * 100:.0f} % |")
    return lines


def main():
    lines = ["## Whole pipeline: seconds per configuration-bead (`drivers/bench_pipeline.py`)\n",
             f"One rank, T = {T:g} K, Einstein ring-polymer samples, one K-point (Γ). Time of "
             "`workflow.compute_lambda` (resolvents + Ḡ + T-matrices + Γ + BSE + λ with jackknife) divided by "
             "configurations × beads.\n",
             "| system | basis | states | resolvent | s per configuration-bead | resolvent share | KSP its |",
             "|---|---|---|---|---|---|---|"]
    m = holstein_cubic(np.diag([4, 4, 4]), 1.0, 1.0, 3.5)
    pos = samples(m, 8, 8, 0.1, np.full(64, 1.0))
    for solver in ("dense", "petsc"):
        s, t, its = per_bead(m, pos, 1, solver)
        lines.append(row("Holstein 4×4×4 (demo)", 64, 64, solver, s, t, its))
        print(lines[-1], flush=True)
    g = GridModel(li2mgh16_solid(), np.eye(3, dtype=int), (16, 16, 16), 4)
    ef = 25.0     # between the reference bands 20 and 21 of this cell; a timing run only
    pos = samples(g, 4, 4, 0.15, g.atoms.get_masses())
    results = {}
    for label, opts in (("petsc, kinetic FFT", None), ("petsc, Jacobi", {"pc_type": "jacobi"})):
        s, t, its = per_bead(g, pos, 40, "petsc", ef, opts)
        results[label] = s
        lines.append(row("Li₂MgH₁₆ 38 atoms, 16³ grid", 4096, 40, label, s, t, its))
        print(lines[-1], flush=True)
    speed = results["petsc, Jacobi"] / results["petsc, kinetic FFT"]
    lines.append(f"\nThe kinetic-energy FFT preconditioner makes the Li₂MgH₁₆ configuration-bead "
                 f"{speed:.1f}× faster than GMRES + Jacobi in the same run.\n")

    prof = cProfile.Profile()
    prof.enable()
    per_bead(g, pos, 40, "petsc", ef)
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    total = st.total_tt
    entries = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:8]
    lines += ["Where the time goes (cProfile of the Li₂MgH₁₆ case, own time of the 8 most expensive "
              "functions):\n", "| function | own time | share |", "|---|---|---|"]
    for (fname, lineno, func), (_, _, tt, _, _) in entries:
        where = f"{Path(fname).name}:{lineno}({func})" if lineno else func
        lines.append(f"| `{where}` | {tt:.2f} s | {100 * tt / total:.0f} % |")
    lines.append("\nThe resolvents (KSP solves: MatMult, the preconditioner's FFTs, GMRES "
                 "orthogonalisation) dominate; assembling H per bead and the T-matrix/BSE algebra are small. "
                 "What was done about it: the kinetic-energy preconditioner (above and "
                 "`bench_gridresolvent.py`), row-local assembly, and one BLAS thread per rank.\n")

    lines += ["Scaling model for the paper's production workload (17 supercells × 75 samples × 16 beads "
              "of 304-atom cells, 8× the grid and 8× the states of the 38-atom cell per bead ⇒ ≈ 80× its "
              f"measured cost, {80 * results['petsc, kinetic FFT']:.1f} s per configuration-bead), one-rank "
              "configuration groups, work units = whole configurations (`spia.n_blocks = 75`). Not measured: "
              "computed from the per-bead cost above and the unit granularity "
              "(`scaling_model` in this driver).\n",
              "| ranks | wall time (h) | parallel efficiency |", "|---|---|---|"]
    lines += scaling_model(results["petsc, kinetic FFT"])
    lines.append("\nEfficiency is lost only to granularity (1275 configurations over P ranks): at 1024 ranks "
                 "251 ranks do two configurations. Groups of several ranks (`spia.ranks_per_group`) turn the "
                 "spare ranks into distributed solves instead; the communication per K (the chain "
                 "reduction of two 39 MB arrays, the gather of small Fermi-surface sums) is milliseconds.")
    (ROOT / "docs" / "benchmarks" / "pipeline.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
