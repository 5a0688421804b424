#!/usr/bin/env python
"""Benchmark: peak memory per rank of a SPIA run's stages, Γ/W whole on the group leader vs by rows.

One configuration group of 2 ranks (``spia.ranks_per_group = 2``, PETSc resolvents) runs the same
BSE-mode SPIA calculation twice on a Holstein model of N sites (one state per primitive k, so
n_s = N states per K), N_b beads, n_conf configurations in n_blocks blocks:

* ``whole``: ``spia.bse_distributed_min_states`` above n_s — as before this change: every rank of
  the group keeps the whole resolvents g of the group's configurations, the leader forms the
  moment sums, Γ(m) and W(m) whole and the group shares the bead slices;
* ``rows``: ``bse_distributed_min_states = 1`` — every big array of the K-point row-distributed
  over the group (spia_mpi/engine/grouprows.py), each slice one distributed LU (ScaLAPACK), the
  Fermi-surface sums reduced over the group.

Both read the resolvents from one checkpoint that a serial dense run fills first (``--fill``; the
PETSc KSP solves of thousands of right-hand sides would dominate the time and are the same in both
layouts), so the resolvent stage here is the loading of each (K, configuration) task by the leader
and its broadcast to the group. Each run is a fresh ``mpirun -n 2`` with one BLAS thread per
process. Per rank and stage
(resolvents, T-matrix moment sums, Γ/W of the full sample, jackknife replicas) it records the
peak resident memory (VmHWM after a reset at the stage's start; it includes the ≈ 150–250 MiB of
Python, NumPy, PETSc and MPI and whatever earlier stages left allocated) and the peak of the
Python/NumPy heap allocated during the stage (tracemalloc; PETSc's and ScaLAPACK's own C memory
is not in it). Also λ(0) of both runs (they must agree) and the wall time.
Writes docs/benchmarks/bse_rows.md; ``--one LAYOUT`` runs one layout (under mpirun) and prints JSON.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                        # before numpy loads: one BLAS thread per process

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("_resolvent_pass", "_fluctuation_pass", "_gamma_w_pass", "_replica_pass")
LABELS = {"_resolvent_pass": "resolvents", "_fluctuation_pass": "T moment sums",
          "_gamma_w_pass": "Γ/W full sample", "_replica_pass": "Γ/W jackknife replicas"}


def _reset_peak_rss():
    Path("/proc/self/clear_refs").write_text("5")


def _rss_mib(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measured(func, record: dict, name: str):
    """``func`` wrapped: peak RSS and traced heap peak of each call, the largest over calls."""
    import tracemalloc

    def wrapper(*args, **kwargs):
        _reset_peak_rss()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            return func(*args, **kwargs)
        finally:
            peak = (tracemalloc.get_traced_memory()[1] - base) / 2 ** 20
            old = record.get(name, (0.0, 0.0))
            record[name] = (max(old[0], _rss_mib()), max(old[1], peak))
    return wrapper


def inputs(cells, n_beads: int, n_conf: int):
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    model = holstein_cubic(np.diag(cells), 1.0, 1.0, 2.0, mass_amu=1.0)
    pos = sample_einstein_ring_polymers(n_conf, n_beads, np.full(model.n_basis, 1.0), 0.1, 300.0,
                                        model.reference_positions, np.random.default_rng(5))
    return model, pos


SETTINGS = dict(n_per_k=1, gammas=(0.5,), fermi_level_ev=0.0, mode="bse")


def fill(folder: str, cells, n_beads: int, n_conf: int, n_blocks: int):
    """The checkpoint of every task, by a serial run with dense resolvents."""
    from spia_mpi.engine import workflow
    from spia_mpi.io.checkpoint import TaskStore
    model, pos = inputs(cells, n_beads, n_conf)
    workflow.compute_lambda(model, pos, [[0, 0, 0]], 300.0, store=TaskStore.open(folder, n_conf, "bench-rows"),
                            solver="dense", n_blocks=n_blocks, **SETTINGS)


def one(layout: str, folder: str, cells, n_beads: int, n_conf: int, n_blocks: int):
    """One run of ``layout`` in this process (collective): JSON on rank 0."""
    import tracemalloc

    from spia_mpi.engine import workflow
    from spia_mpi.io.checkpoint import TaskStore
    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos = inputs(cells, n_beads, n_conf)
    store = TaskStore.open(folder, n_conf, "bench-rows", comm)
    record = {}
    for name in STAGES:
        setattr(workflow, name, _measured(getattr(workflow, name), record, name))
    tracemalloc.start()
    _reset_peak_rss()
    t0 = time.perf_counter()
    res = workflow.compute_lambda(model, pos, [[0, 0, 0]], 300.0, comm=comm, store=store, ranks_per_group=2,
                                  solver="petsc", n_blocks=n_blocks,
                                  bse_distributed_min_states=1 if layout == "rows" else 10 ** 9, **SETTINGS)
    wall = time.perf_counter() - t0
    per_rank = comm.gather({"stages": record}, root=0)
    if comm.rank == 0:
        print(json.dumps({"layout": layout, "n_states": model.n_basis, "n_beads": n_beads, "n_conf": n_conf,
                          "n_blocks": n_blocks, "wall_s": wall, "lambda0": float(res.lambda_m[0, 0]),
                          "ranks": per_rank}))


def run(layout: str, args, folder: str) -> dict:
    from spia_mpi.parallel.mpi import mpirun_prefix
    cmd = mpirun_prefix() + ["-n", "2", sys.executable, __file__, "--one", layout, "--folder", folder,
                             "--cells", *map(str, args.cells), "--beads", str(args.beads), "--conf", str(args.conf),
                             "--blocks", str(args.blocks)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "H5PY_ALWAYS_USE_MPI": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{layout} run failed:\n{out.stderr[-3000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def derived(n_s: int, n_b: int, n_conf: int, n_blocks: int) -> list:
    """The big arrays of the run by size (MiB), whole vs one rank's rows of 2."""
    mib = 2 ** 20
    plane = n_b * n_s * n_s                             # elements of one [N_b, n_s, n_s] array
    return [("g of the group's configurations (every rank)", n_conf * plane * 16 / mib),
            ("T moment sums Σ T, Σ \\|T\\|² of one block", plane * 24 / mib),
            ("Γ(m) (real)", plane * 8 / mib), ("W(m) (complex)", plane * 16 / mib)]


def write(results: list, args, loads: list):
    whole, rows = results
    n_s, n_b = whole["n_states"], whole["n_beads"]
    lines = ["## Γ/W stage by rows within a configuration group (`drivers/bench_bse_rows.py`)", "",
             f"One BSE-mode SPIA run of a Holstein model with n_s = {n_s} states (one per primitive k, 1 K-point), "
             f"N_b = {n_b} beads, {whole['n_conf']} configurations in {whole['n_blocks']} blocks, on one "
             "configuration group of 2 ranks (`ranks_per_group = 2`, PETSc resolvents), fresh `mpirun -n 2` per "
             "layout, one BLAS thread per process, `nice -n 19` on the shared machine (load average before / "
             f"after: {loads[0]:.1f} / {loads[1]:.1f}). **whole**: `bse_distributed_min_states` above n_s (the "
             "previous layout: every rank keeps the whole g, the leader the whole sums, Γ and W, the slices "
             "shared); **rows**: `bse_distributed_min_states = 1` (every big array row-distributed, each slice one "
             "ScaLAPACK LU, Fermi-surface sums reduced). Both load the same checkpointed resolvents (filled by a "
             "serial dense run first), so 'resolvents' is the leader's loading and broadcast of each task. "
             "Per stage and rank: peak RSS (VmHWM reset at the stage's "
             "start; includes the libraries and what earlier stages left allocated) and, in parentheses, the peak "
             "of the Python/NumPy heap allocated during the stage (tracemalloc; PETSc's own memory not included).",
             "", f"Reproduce: `nice -n 19 python drivers/bench_bse_rows.py --cells {' '.join(map(str, args.cells))} "
             f"--beads {args.beads} --conf {args.conf} --blocks {args.blocks}` (then "
             "`python drivers/run_benchmarks.py --assemble`).", "",
             "| stage | whole: rank 0 (leader) MiB | whole: rank 1 MiB | rows: rank 0 MiB | rows: rank 1 MiB |",
             "|---|---|---|---|---|"]
    for name in STAGES:
        cells = []
        for res in (whole, rows):
            for rank in res["ranks"]:
                rss, heap = rank["stages"].get(name, (float("nan"), float("nan")))
                cells.append(f"{rss:.0f} ({heap:.0f})")
        lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    peaks = [max(r["stages"][s][0] for s in STAGES) for res in (whole, rows) for r in res["ranks"]]
    lines.append("| **largest stage peak** | " + " | ".join(f"**{p:.0f}**" for p in peaks) + " |")
    lines += ["", f"Wall time: whole {whole['wall_s']:.0f} s, rows {rows['wall_s']:.0f} s; λ(0): whole "
              f"{whole['lambda0']:.12f}, rows {rows['lambda0']:.12f} (the same run; equal to 1e-10 in "
              "tests/test_bse_distributed.py).", "",
              "The big arrays of this run (derived, MiB; rows: one rank's share of 2):", "",
              "| array | whole | rows (per rank) |", "|---|---|---|"]
    for label, size in derived(n_s, n_b, whole["n_conf"], whole["n_blocks"]):
        lines.append(f"| {label} | {size:.0f} | {size / 2:.0f} |")
    (ROOT / "docs" / "benchmarks" / "bse_rows.md").write_text("\n".join(lines) + "\n")
    print("wrote docs/benchmarks/bse_rows.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", choices=("whole", "rows"))
    ap.add_argument("--cells", type=int, nargs=3, default=(16, 16, 8))
    ap.add_argument("--beads", type=int, default=4)
    ap.add_argument("--conf", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--folder", help="the checkpoint (default: a temporary folder, filled first)")
    args = ap.parse_args()
    if args.one:
        one(args.one, args.folder, args.cells, args.beads, args.conf, args.blocks)
        return
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench_bse_rows_") as tmp:
        folder = str(Path(tmp) / "ckpt")
        t0 = time.perf_counter()
        fill(folder, args.cells, args.beads, args.conf, args.blocks)
        print(f"checkpoint filled in {time.perf_counter() - t0:.0f} s", flush=True)
        loads = [os.getloadavg()[0]]
        results = [run(layout, args, folder) for layout in ("whole", "rows")]
        loads.append(os.getloadavg()[0])
    print(json.dumps(results, indent=1))
    write(results, args, loads)


if __name__ == "__main__":
    main()
