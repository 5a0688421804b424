#!/usr/bin/env python
"""Benchmark: the resolvent of a full complex z S − H by dense LAPACK vs PETSc's direct LU (MUMPS, ScaLAPACK).

The size of a GPAW LCAO problem without GPAW: N orbitals (436 = the 76-atom Li₂MgH₁₆ example,
1744 = its 304-atom 8-cell supercell), every entry non-zero (the fill of those cells), NRHS reference
states. H is a random Hermitian matrix, S = 1 + a random positive semi-definite Hermitian one (fixed
seeds), z = 0.5 + 2.7i. On p ranks: ``dense`` — every rank holds H, S and solves with LAPACK (what
``spia.resolvent = "dense"`` does in a one-rank group, here on every rank at once); ``mumps`` /
``scalapack`` — H, S as PETSc AIJ rows split over the p ranks and one distributed LU
(:mod:`spia_mpi.engine.direct`, the GPAW model's default resolvent). Per rank: wall seconds and the
peak RSS increment of the solve (VmHWM reset before it, so the libraries' memory counts), the bytes of
the matrices the rank holds, and max |g − g_LAPACK|.

    mpirun -n 2 python drivers/bench_direct.py 1744 160
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spia_mpi.engine.direct import DirectSolve  # noqa: E402
from spia_mpi.engine.resolvent import ResolventSolver, projected_resolvent_dense  # noqa: E402
from spia_mpi.models.gpaw import dense_to_aij  # noqa: E402
from spia_mpi.parallel import stack  # noqa: E402
from spia_mpi.parallel.mpi import world  # noqa: E402


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measured(fn, *args):
    """fn(*args), wall seconds, peak RSS increment over the RSS at the start (MiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    rss = status_mib("VmRSS")
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0, status_mib("VmHWM") - rss


def pencil(n: int, n_rhs: int):
    """(H, S, Q): complex [n, n] Hermitian, S positive definite, Q [n, n_rhs] (fixed seed)."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    h = (a + a.conj().T) / 2
    b = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    s = np.eye(n) + b @ b.conj().T / n
    return h, s, rng.standard_normal((n, n_rhs)) + 0j


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int)
    p.add_argument("n_rhs", type=int)
    p.add_argument("--packages", nargs="+", default=["mumps", "scalapack"])
    args = p.parse_args(argv)
    comm = world()
    z = 0.5 + 2.7j
    h, s, q = pencil(args.n, args.n_rhs)
    rows = {}
    g_ref, t, mem = measured(projected_resolvent_dense, h, z, q, s)
    rows["dense LAPACK LU (every rank: all of H, S)"] = (t, mem, h.nbytes + s.nbytes, 0.0)
    for package in args.packages:
        hp, sp = dense_to_aij(h, comm), dense_to_aij(s, comm)
        local = stack.petsc().Mat.InfoType.LOCAL
        held = sum(m.getInfo(local)["nz_used"] for m in (hp, sp)) * (16 + np.dtype(stack.petsc().IntType).itemsize)
        solver = ResolventSolver(comm, {"pc_factor_mat_solver_type": package})
        (g, _), t, mem = measured(solver.solve, hp, z, q, DirectSolve(), None, sp)
        hp.destroy(), sp.destroy()
        rows[f"PETSc direct LU ({package}, rows over {comm.size} rank(s))"] = (t, mem, held, np.abs(g - g_ref).max())
    table = comm.gather(rows, root=0)
    if comm.rank == 0:
        print(f"n = {args.n}, {args.n_rhs} right-hand sides, full complex zS − H, {comm.size} rank(s); max |g| = "
              f"{np.abs(g_ref).max():.3e}\n")
        print("| solver | wall (s) per rank | peak RSS increment of the solve (MiB) per rank | "
              "H, S held per rank (MiB) | max abs g − g(LAPACK) |\n|---|---|---|---|---|")
        for name in rows:
            per = [r[name] for r in table]
            print(f"| {name} | {' / '.join(f'{x[0]:.2f}' for x in per)} | {' / '.join(f'{x[1]:.0f}' for x in per)} | "
                  f"{' / '.join(f'{x[2] / 2**20:.0f}' for x in per)} | {max(x[3] for x in per):.1e} |")


if __name__ == "__main__":
    main()
