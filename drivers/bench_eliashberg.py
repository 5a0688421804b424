#!/usr/bin/env python
"""Benchmark: leading eigenvalue of the Eliashberg kernel, dense vs SLEPc.

Side by side in one run, for N = 500, 2000, 8000 positive fermionic frequencies
(one rank): dense LAPACK (scipy eigh, largest eigenvalue only), SLEPc
Krylov–Schur on the assembled dense PETSc matrix, and SLEPc on the matrix-free
FFT operator (the default). Then N = 4000 on 2 ranks (launched with mpirun).
Writes docs/benchmarks/eliashberg.md.

    python drivers/bench_eliashberg.py [--sizes 500 2000 8000] [--no-mpi]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spia_mpi.eliashberg import linearised as el  # noqa: E402


def kernel_input(n):
    t0 = 50.0
    lam = el.LambdaOfNu(el.einstein_lambda(2.0, 0.05, t0, 256), t0)
    return lam.on_grid(t0, 2 * n)


def best_of(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def one_rank(sizes):
    rows = []
    for n in sizes:
        lam = kernel_input(n)
        rep = 1 if n > 4000 else 3
        td, rd = best_of(lambda: el.leading_eigenvalue(lam, 0.1, n, "dense"), rep)
        ta, ra = best_of(lambda: el.leading_eigenvalue(lam, 0.1, n, "slepc-assembled"), rep)
        tf, rf = best_of(lambda: el.leading_eigenvalue(lam, 0.1, n, "slepc"), rep)
        rows.append(dict(n=n, dense=td, assembled=ta, free=tf,
                         diff=max(abs(ra - rd), abs(rf - rd)) / abs(rd)))
        print(rows[-1], flush=True)
    return rows


def mpi_part(n):
    """Run inside mpirun: time the distributed matrix-free solve on COMM_WORLD."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    lam = kernel_input(n)
    comm.Barrier()
    t, rho = best_of(lambda: el.leading_eigenvalue(lam, 0.1, n, "slepc", comm), 3)
    t = comm.allreduce(t, op=__import__("mpi4py.MPI").MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({"n": n, "ranks": comm.size, "seconds": t, "rho": rho}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[500, 2000, 8000])
    ap.add_argument("--mpi-n", type=int, default=4000)
    ap.add_argument("--no-mpi", action="store_true")
    ap.add_argument("--mpi-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mpi_child:
        mpi_part(args.mpi_child)
        return
    rows = one_rank(args.sizes)
    mpi = []
    if not args.no_mpi:
        from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
        for ranks in (1, 2):
            cmd = [*mpirun_prefix(), "-n", str(ranks), sys.executable, __file__, "--mpi-child", str(args.mpi_n)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=mpirun_env(), check=True)
            mpi.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(mpi[-1], flush=True)
    lines = ["## Eliashberg leading eigenvalue (`drivers/bench_eliashberg.py`)\n",
             "Einstein λ(ν) (λ0 = 2, ħΩ = 50 meV) at T = 50 K, μ* = 0.1; best of 3 (1 for N > 4000). "
             "Dense = LAPACK `eigh` (largest eigenvalue only) on the N×N kernel; SLEPc assembled = "
             "Krylov–Schur on an explicit dense PETSc matrix; SLEPc matrix-free = Krylov–Schur on the "
             "FFT Toeplitz+Hankel operator (the default for large N and on several ranks).\n",
             "| N | dense (s) | SLEPc assembled (s) | SLEPc matrix-free (s) | dense / matrix-free | max rel. diff. |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['dense']:.3f} | {r['assembled']:.3f} | {r['free']:.4f} "
                     f"| {r['dense'] / r['free']:.2g}× | {r['diff']:.1e} |")
    if mpi:
        lines += ["", f"Matrix-free SLEPc, N = {args.mpi_n}, under `mpirun` (target: < 2 s on 2 ranks):", "",
                  "| ranks | seconds | ρ |", "|---|---|---|"]
        for m in mpi:
            lines.append(f"| {m['ranks']} | {m['seconds']:.4f} | {m['rho']:.12f} |")
        if len(mpi) == 2:
            lines.append(f"\nρ(2 ranks) − ρ(1 rank) = {mpi[1]['rho'] - mpi[0]['rho']:.1e}. At this size one "
                         "matrix-vector product costs well under a millisecond, so 2 ranks do not speed it up: "
                         "the distributed operator exists for memory-bound cases and to keep all ranks in the "
                         "same solve inside a parallel run.")
    out = ROOT / "docs" / "benchmarks" / "eliashberg.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
