#!/usr/bin/env python
"""Benchmark: one Bethe–Salpeter bead slice of n = 1000, 2000, 4000 states on 1 and 2 ranks.

A slice is the dense complex system (1 − Γ D) W = Γ with n right-hand sides (spia.bse_slice,
engine.bse_parallel); Γ random with ‖DΓ‖ ≈ 0.5 (well conditioned), the same in every run.
Each measurement runs in a fresh process (under mpirun for 2 ranks) with one BLAS thread per
process, and reports the wall time of the slice solve (slowest rank), the CPU time of each rank
(on a loaded machine the less noisy measure of the work; MPI ranks that wait for each other
busy-poll, so their CPU time includes waiting) and the peak resident
memory per rank from just before the solve to its end (VmHWM after a reset; it includes
≈ 100–150 MiB of Python, NumPy, PETSc and MPI). Rows:

* 1 rank, LAPACK (numpy, ``spia.bse_solver = "dense"``) and PETSc's dense LU ("petsc");
* 2 ranks, one distributed LU per slice, each rank holding its n/2 rows of Γ(b) and of W(b)
  (``engine.bse_parallel.bethe_salpeter_rows``): PETSc + ScaLAPACK, PETSc + MUMPS;
* 2 ranks sharing slices: two slices, one per rank (``bethe_salpeter_on`` below the
  threshold; Γ(m) of both slices on rank 0, which sends one away and collects W) — time of
  both slices, compared with two serial slices on one rank.

Then the n³ fit of the times and the n² memory, extrapolated to the 20 480-state slice of a
304-atom supercell (notes/old2/gpaw2.md). Writes docs/benchmarks/bse.md; ``--one KIND N``
runs one measurement and prints it as JSON. ``--sizes`` overrides the sizes.
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

SIZES = (1000, 2000, 4000)
TARGET = 20480           # states of the 304-atom BSE subspace (gpaw2's projection)
BETA = 38.7              # 1/eV (300 K)
KINDS = {"dense": 1, "petsc": 1, "scalapack": 2, "mumps": 2, "slices": 2, "serial2": 1}


def gamma_slices(n: int, n_b: int, rows=None):
    """Γ(m) (only ``rows`` if given) complex [n_b, n_rows, n] and |Ḡ|² [n]: ‖DΓ(b)‖ ≈ 0.5."""
    rng = np.random.default_rng(n)
    abs2 = BETA * rng.uniform(0.5, 1.0, n)
    rows = range(n) if rows is None else rows
    gam = np.empty((n_b, len(rows), n), dtype=complex)
    for m in range(n_b):
        r = np.random.default_rng([n, m])
        full_re = r.standard_normal((n, n))
        full_im = r.standard_normal((n, n))
        gam[m] = (full_re[rows.start:rows.stop] + 1j * full_im[rows.start:rows.stop]) / (4 * np.sqrt(n * n_b))
        del full_re, full_im
    return gam, abs2


def _reset_peak_rss():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss_mib(field: str = "VmHWM") -> float:
    """Peak (VmHWM, since the last reset) or current (VmRSS) resident memory, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(kind: str, n: int):
    """One measurement in this process: JSON on rank 0."""
    import gc

    from spia_mpi.engine import bse_parallel, spia
    from spia_mpi.parallel import stack
    from spia_mpi.parallel.mpi import partition, world
    comm = world()
    stack.petsc()
    base = comm.gather(_rss_mib("VmRSS"), root=0)          # libraries only, before Γ
    if kind in ("scalapack", "mumps"):
        rows = partition(n, comm.size, comm.rank)
        gam, abs2 = gamma_slices(n, 1, rows)
    elif kind == "slices":
        gam, abs2 = gamma_slices(n, 2) if comm.rank == 0 else (None, None)
    else:
        gam, abs2 = gamma_slices(n, 2 if kind == "serial2" else 1)
    gc.collect()
    comm.barrier()
    _reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    if kind in ("scalapack", "mumps"):
        w = bse_parallel.bethe_salpeter_rows(comm, gam, abs2, BETA, kind)
    elif kind == "slices":
        w = bse_parallel.bethe_salpeter_on(comm, gam, abs2, BETA, bse_parallel.BseParallel(distributed_min_states=10 ** 9))
    else:
        w = spia.bethe_salpeter(gam, abs2, BETA, "petsc" if kind == "petsc" else "dense")
    elapsed = comm.gather(time.perf_counter() - t0, root=0)
    cpu = comm.gather(time.process_time() - c0, root=0)
    rss = comm.gather(_rss_mib(), root=0)
    del w
    if comm.rank == 0:
        print(json.dumps({"kind": kind, "n": n, "ranks": comm.size, "seconds": max(elapsed), "cpu_s": cpu, "rss_mib": rss,
                          "base_mib": base}))


def run_one(kind: str, n: int) -> dict:
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    cmd = [sys.executable, __file__, "--one", kind, str(n)]
    if KINDS[kind] > 1:
        cmd = [*mpirun_prefix(), "-n", str(KINDS[kind]), *cmd]
    env = mpirun_env()
    env.update({"PYTHONPATH": str(ROOT), **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                             "MKL_NUM_THREADS")}})
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(sizes):
    results = {}
    loads = [load_average()]
    for n in sizes:
        for kind in KINDS:
            r = run_one(kind, n)
            results[(kind, n)] = r
            print(kind, n, f"{r['seconds']:.2f} s", f"CPU {r['cpu_s']}", [round(x) for x in r["rss_mib"]], f"load {load_average()}",
                  flush=True)
        loads.append(load_average())
    write(results, sizes, loads)


def fit_cubic(sizes, times) -> float:
    """a of t ≈ a n³ by least squares (dominated by the largest n, where fixed costs matter least)."""
    n3 = np.asarray(sizes, float) ** 3
    return float(np.dot(n3, times) / np.dot(n3, n3))


def _t(r) -> str:
    """'wall (CPU of the busiest rank)' in seconds."""
    return f"{r['seconds']:.1f} ({max(r['cpu_s']):.1f})"


def write(results, sizes, loads):
    lines = ["## Bethe–Salpeter slices over ranks (`drivers/bench_bse.py`)\n",
             "One bead slice of the Bethe–Salpeter equation: (1 − ΓD) W = Γ, dense complex n × n with n "
             "right-hand sides, Γ random and well conditioned. Fresh process per measurement, one BLAS thread "
             "per process, run under `nice -n 19` on the shared 2-core machine (load average "
             f"before / after each size: {'; '.join(loads)} — the other developers' jobs; times are wall "
             "clock of the slowest rank and noisy; in parentheses the CPU seconds of the busiest rank, "
             "which include MPI's busy waiting). Peak RSS = VmHWM per rank, reset just before the solve "
             "(includes ≈ 100–150 MiB of libraries and the rank's part of Γ).\n",
             "Reproduce: `nice -n 19 python drivers/bench_bse.py` (then `python drivers/run_benchmarks.py "
             "--assemble`).\n",
             "| n | 1 rank LAPACK (s) | 1 rank PETSc dense (s) | 2 ranks ScaLAPACK (s) | 2 ranks MUMPS (s) | "
             "ScaLAPACK speed-up vs LAPACK | peak RSS 1 rank LAPACK (MiB) | PETSc dense | "
             "ScaLAPACK per rank | MUMPS per rank |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        d, p, s, m = (results[(k, n)] for k in ("dense", "petsc", "scalapack", "mumps"))
        lines.append(f"| {n} | {_t(d)} | {_t(p)} | {_t(s)} | {_t(m)} | "
                     f"{d['seconds'] / s['seconds']:.2f}× | {d['rss_mib'][0]:.0f} | {p['rss_mib'][0]:.0f} | "
                     f"{max(s['rss_mib']):.0f} | {max(m['rss_mib']):.0f} |")
    lines += ["", "Two slices: both on one rank (LAPACK) vs one per rank (`bethe_salpeter_on` below the "
              "threshold, Γ(m) of both on rank 0):\n",
              "| n | 2 slices, 1 rank (s) | 2 slices, 2 ranks (s) | speed-up | peak RSS 1 rank (MiB) | "
              "peak RSS rank 0 / rank 1, 2 ranks (MiB) |", "|---|---|---|---|---|---|"]
    for n in sizes:
        a, b = results[("serial2", n)], results[("slices", n)]
        lines.append(f"| {n} | {_t(a)} | {_t(b)} | {a['seconds'] / b['seconds']:.2f}× | "
                     f"{a['rss_mib'][0]:.0f} | {b['rss_mib'][0]:.0f} / {b['rss_mib'][1]:.0f} |")
    lines += ["", f"Extrapolation to n = {TARGET} (t = a n³ fitted to the sizes above; memory: the n = "
              f"{sizes[-1]} peak minus the libraries' resident memory before Γ was built, scaled by "
              f"(n/{sizes[-1]})²):\n",
              "| solver | a (s / n³), wall | t(n = 20 480) per slice, wall | same from the CPU time of the busiest rank | "
              "peak memory per rank at 20 480 |", "|---|---|---|---|---|"]
    for kind, label in (("dense", "1 rank LAPACK"), ("petsc", "1 rank PETSc dense"),
                        ("scalapack", "2 ranks ScaLAPACK"), ("mumps", "2 ranks MUMPS")):
        a = fit_cubic(sizes, [results[(kind, n)]["seconds"] for n in sizes])
        a_cpu = fit_cubic(sizes, [max(results[(kind, n)]["cpu_s"]) for n in sizes])
        last = results[(kind, sizes[-1])]
        mem = max(np.subtract(last["rss_mib"], last["base_mib"])) * (TARGET / sizes[-1]) ** 2 / 1024
        lines.append(f"| {label} | {a:.3e} | {a * TARGET ** 3 / 60:.0f} min | {a_cpu * TARGET ** 3 / 60:.0f} min | "
                     f"{mem:.0f} GiB |")
    (ROOT / "docs" / "benchmarks" / "bse.md").write_text("\n".join(lines) + "\n")
    print("wrote docs/benchmarks/bse.md")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=f"one measurement: KIND in {sorted(KINDS)}")
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    args = ap.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]))
    else:
        main(args.sizes)
