#!/usr/bin/env python
"""Benchmark: resolvents of the real-space grid model, 16³ … 48³ points.

Dense hydrogen (simple cubic, a = 1.6 Å) in L×L×L supercells on a grid of fixed
spacing h = 0.2 Å (8 points per primitive cell and axis, 4th-order stencil), so the
grid grows as the supercell does: L = 2, 3, 4, 6 → 16³, 24³, 32³, 48³ points. Every ion
is displaced at random (σ = 0.1 Å), z = ε + i(2J+1)πk_BT with J = 16 at 300 K, ε = 10 eV
(inside the occupied band), and the right-hand sides are the 32 lowest plane waves.

1. Right-hand sides per second: dense LU (LAPACK, only where the dense matrix fits),
   PETSc GMRES + Jacobi, PETSc GMRES + the kinetic-energy FFT preconditioner (the default
   for the grid model, ``pc_type = "auto"``) and PETSc with a sparse direct LU
   (``ksp_type preonly``, ``pc_type lu``: one factorisation, then 32 triangular solves).
2. KSP / preconditioner comparison on the 32³ grid.
3. Memory: peak resident memory per rank of a fresh process that builds H and solves,
   on 1 and on 2 ranks (the matrix and the Krylov vectors are split over the ranks of the
   PETSc communicator), and the time of the same solve on 2 ranks.

Writes docs/benchmarks/gridresolvent.md. ``--one L KSP PC`` runs one measurement
and prints it as JSON (used under mpirun for item 3).
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_RHS = 32
T = 300.0
SIZES = (2, 3, 4, 6)


def build(L):
    from spia_mpi.models.grid import GridModel
    from spia_mpi.lattice.structures import dense_hydrogen_sc
    model = GridModel(dense_hydrogen_sc(), np.diag([L, L, L]), (8, 8, 8), 4)
    rng = np.random.default_rng(L)
    pos = model.reference_positions + 0.1 * rng.standard_normal(model.reference_positions.shape)
    ref = model.reference_states([0.0, 0.0, 0.0], max(1, -(-N_RHS // L ** 3)))
    p = ref.vectors[:, np.argsort(ref.energies, kind="stable")[:N_RHS]]
    return model, pos, p


def z_value():
    from spia_mpi.engine.resolvent import matsubara_eta
    return 10.0 + 1j * matsubara_eta(16, T)


def petsc_solve(model, pos, p, comm, options):
    from spia_mpi.engine.resolvent import ResolventSolver
    t = time.perf_counter()
    mat = model.hamiltonian_petsc(pos, [0.0, 0.0, 0.0], comm)
    t_asm = time.perf_counter() - t
    solver = ResolventSolver(comm, options)
    t = time.perf_counter()
    g, info = solver.solve(mat, z_value(), p, model.resolvent_preconditioner([0.0, 0.0, 0.0]))
    t_solve = time.perf_counter() - t
    mat.destroy()
    return g, t_asm, t_solve, info


def _reset_peak_rss():
    """Reset this process's peak resident set (Linux: VmHWM) so later peaks are measured alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    """Peak resident memory since the last reset (VmHWM), MiB; ru_maxrss where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(L, ksp, pc):  # noqa: D401
    """One measurement in this process (possibly under mpirun): JSON on rank 0.

    The peak memory is measured from after the set-up (model, positions, the right-hand sides)
    to the end of the solves: assembly, the KSP and preconditioner work space."""
    import gc

    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos, p = build(L)
    gc.collect()
    _reset_peak_rss()
    _, t_asm, t_solve, info = petsc_solve(model, pos, p, comm, {"ksp_type": ksp, "pc_type": pc})
    rss = comm.gather(_peak_rss_mib(), root=0)
    t_solve = comm.gather(t_solve, root=0)
    if comm.rank == 0:
        t_solve = max(t_solve)
        print(json.dumps({"ranks": comm.size, "points": model.n_basis, "assembly_s": t_asm,
                          "solve_s": t_solve, "its": info["iterations_mean"], "rss_mib": rss}))


def run_one(L, ranks, ksp="gmres", pc="auto"):
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    cmd = [sys.executable, __file__, "--one", str(L), ksp, pc]
    if ranks > 1:
        cmd = [*mpirun_prefix(), "-n", str(ranks), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=mpirun_env(), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from spia_mpi.parallel.mpi import self_comm
    from spia_mpi.engine.resolvent import projected_resolvent_dense
    comm = self_comm()
    lines = ["## Grid-model resolvents, 16³ … 48³ (`drivers/bench_gridresolvent.py`)\n",
             "Dense simple-cubic hydrogen (a = 1.6 Å) in L×L×L supercells at fixed grid spacing 0.2 Å "
             "(4th-order stencil), ions displaced at random by σ = 0.1 Å, z = 10 eV + i·2.68 eV (J = 16, "
             "300 K), 32 plane-wave right-hand sides, one rank. Right-hand sides per second (higher is "
             "better). Kinetic FFT = GMRES preconditioned by (z − V̄ − T)⁻¹ applied with FFTs "
             "(`engine.preconditioners.KineticPreconditioner`, the default for the grid model); Jacobi = GMRES + "
             "Jacobi (the default before it); sparse LU = PETSc's direct solver.\n",
             "| grid | points | dense LU | GMRES+Jacobi | GMRES+kinetic FFT | kinetic / Jacobi | "
             "kinetic / dense | sparse LU | its Jacobi | its kinetic | max rel. diff vs dense |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for L in SIZES:
        model, pos, p = build(L)
        n = model.n_basis
        g_k, _, t_k, info_k = petsc_solve(model, pos, p, comm, {})
        kin = N_RHS / t_k
        jac, its_j = None, None
        if n <= 32 ** 3:
            _, _, t_j, info_j = petsc_solve(model, pos, p, comm, {"pc_type": "jacobi"})
            jac, its_j = N_RHS / t_j, info_j["iterations_mean"]
        dense, diff = None, None
        if n <= 4096:
            t = time.perf_counter()
            g_d = projected_resolvent_dense(model.hamiltonian_dense(pos, [0.0, 0.0, 0.0]), z_value(), p)
            dense = N_RHS / (time.perf_counter() - t)
            diff = float(np.max(np.abs(g_k - g_d)) / np.max(np.abs(g_d)))
        lu = None
        if n <= 32 ** 3:
            _, _, t_lu, _ = petsc_solve(model, pos, p, comm, {"ksp_type": "preonly", "pc_type": "lu"})
            lu = N_RHS / t_lu

        def f(x, fmt=".1f"):
            return "–" if x is None else format(x, fmt)
        lines.append(f"| {round(n ** (1 / 3))}³ | {n} | {f(dense)} | {f(jac)} | {kin:.1f} | "
                     f"{f(kin / jac if jac else None, '.0f')}{'×' if jac else ''} | "
                     f"{f(kin / dense if dense else None, '.0f')}{'×' if dense else ''} | "
                     f"{f(lu)} | {f(its_j, '.0f')} | {info_k['iterations_mean']:.0f} | {f(diff, '.1e')} |")
        print(lines[-1], flush=True)
    lines.append("\nDense LU stops at 16³ (a 24³ complex dense matrix is 3 GiB), Jacobi and sparse LU at 32³ "
                 "(Jacobi needs ever more iterations as the kinetic spectrum ħ²π²/2mh² grows against η; the LU "
                 "fill grows faster than the grid). With the kinetic preconditioner the iteration count stays "
                 "flat with the grid size, so the cost per right-hand side is O(N log N).\n")

    lines += ["KSP and preconditioner on the 32³ grid (32 768 points, same 32 right-hand sides):\n",
              "| KSP | PC ('auto' = kinetic FFT) | RHS/s | relative to GMRES+Jacobi | mean iterations |", "|---|---|---|---|---|"]
    model, pos, p = build(4)
    base = None
    for ksp, pc in (("gmres", "jacobi"), ("gmres", "auto"), ("gmres", "none"), ("gmres", "ilu"),
                    ("bcgs", "jacobi"), ("bcgs", "auto"), ("tfqmr", "auto"), ("preonly", "lu")):
        try:
            _, _, t, info = petsc_solve(model, pos, p, comm, {"ksp_type": ksp, "pc_type": pc})
        except Exception as exc:  # noqa: BLE001 - a failing combination is a result too
            lines.append(f"| {ksp} | {pc} | failed: {type(exc).__name__} | – | – |")
            continue
        rate = N_RHS / t
        base = base or rate
        lines.append(f"| {ksp} | {pc} | {rate:.1f} | {rate / base:.2f}× | {info['iterations_mean']:.0f} |")
        print(lines[-1], flush=True)

    (ROOT / "docs" / "benchmarks" / "gridresolvent.md").write_text("\n".join(lines + memory_section()) + "\n")


def memory_section() -> list:
    lines = ["", "Memory and time of one grid Hamiltonian + 32 GMRES solves in a fresh process, "
             "kinetic FFT preconditioner, 1 rank vs 2 ranks of one PETSc communicator: peak resident memory "
             "per rank during assembly and solves (it includes the ≈ 100–150 MiB of Python, NumPy, PETSc and "
             "MPI libraries and the right-hand sides, 32 × points × 16 B, held whole on every rank):\n",
             "| grid | points | peak RSS 1 rank (MiB) | peak RSS per rank, 2 ranks (MiB) | solve 1 rank (s) | "
             "solve 2 ranks (s) | speed-up |", "|---|---|---|---|---|---|---|"]
    for L in SIZES:
        r1 = run_one(L, 1)
        r2 = run_one(L, 2)
        lines.append(f"| {round(r1['points'] ** (1 / 3))}³ | {r1['points']} | {r1['rss_mib'][0]:.0f} | "
                     f"{max(r2['rss_mib']):.0f} | {r1['solve_s']:.2f} | {r2['solve_s']:.2f} | "
                     f"{r1['solve_s'] / r2['solve_s']:.2f}× |")
        print(lines[-1], flush=True)
    return lines


def rerun_memory_section():
    """Replace only the memory table of docs/benchmarks/gridresolvent.md (``--memory``)."""
    path = ROOT / "docs" / "benchmarks" / "gridresolvent.md"
    text = path.read_text()
    head = text[:text.index("\nMemory and time of one grid Hamiltonian")].rstrip("\n").split("\n")
    path.write_text("\n".join(head + memory_section()) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory", action="store_true", help="rerun only the memory table of "
                    "docs/benchmarks/gridresolvent.md")
    ap.add_argument("--one", nargs=3, metavar=("L", "KSP", "PC"), help=argparse.SUPPRESS)   # child process
    args = ap.parse_args()
    if args.one:
        one(int(args.one[0]), args.one[1], args.one[2])
    elif args.memory:
        rerun_memory_section()
    else:
        main()
