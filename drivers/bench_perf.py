#!/usr/bin/env python
"""Benchmark: resolvent performance features (issue 16), ratios measured side by side in one run.

Dense simple-cubic hydrogen (a = 1.6 Å) on a grid of spacing 0.2 Å (4th-order stencil), as in
``bench_gridresolvent.py``; z = 10 eV + i(2J+1)πk_BT, J = 16, 300 K; kinetic FFT preconditioner.

1. Warm starts along the ring polymer: 16³ grid (2×2×2 supercell, 8 atoms) and 32³ (64 atoms), exact
   Einstein ring polymers (ħΩ = 0.15 eV, 300 K) with N_b = 16, 16 plane-wave right-hand sides: mean
   GMRES iterations per solve from zero, from the previous bead's solution, from its
   minimal-residual projection and with a recycled subspace, for the PETSc and the batched solver;
   CPU times; largest relative difference of g.
2. Distributed FFT preconditioner: one 48³ resolvent (8 right-hand sides) on 1 and on 2 ranks
   (fresh processes, alternated, several repetitions), solve time and speed-up; the
   preconditioner application alone; peak memory per rank for 64³.
3. Roofline: the grid matvec (PETSc MatMult, 48³ and 64³), bytes moved per second, as a fraction
   of a STREAM-like copy (numpy) of the same working set and of 512 MiB, in the same process.
4. Blocks of right-hand sides (32³, 32 vectors): PETSc KSP column by column against the batched
   GMRES (``block_size`` 4, 8 and 32; 8 also in double precision), CPU and wall time, alternated rounds.

Writes docs/benchmarks/perf.md. ``--parts warm,blocks`` reruns only those sections (warm, ranks,
roofline, blocks) and keeps the others from the existing file. ``--one NAME ARGS`` runs one
measurement in this process (under mpirun for 2 ranks) and prints JSON.

One thread per process: OMP/OPENBLAS/MKL_NUM_THREADS = 1 are set here before numpy loads (and
inherited by the mpirun children), as ``python -m spia_mpi`` does. Without them Debian's pthreads
OpenBLAS runs a second thread that spins between BLAS calls: the 05:16 UTC run of this driver
reported one-rank CPU times twice the wall times for that reason.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _var in THREAD_VARIABLES:
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "drivers"))

T = 300.0
REPEATS = 3
RANK_REPEATS = 5    # alternated 1- and 2-rank process pairs: the median speed-up is robust to a load spike
SOLVES = 3          # timed solves per process in the 1-versus-2-rank runs (after one warm-up solve)


def z_value():
    from spia_mpi.engine.resolvent import matsubara_eta
    return 10.0 + 1j * matsubara_eta(16, T)


def hydrogen(L, n_rhs, seed=None):
    """Grid model of an L³ dense-hydrogen supercell, displaced positions and n_rhs plane waves."""
    from spia_mpi.lattice.structures import dense_hydrogen_sc
    from spia_mpi.models.grid import GridModel
    model = GridModel(dense_hydrogen_sc(), np.diag([L, L, L]), (8, 8, 8), 4)
    rng = np.random.default_rng(L if seed is None else seed)
    pos = model.reference_positions + 0.1 * rng.standard_normal(model.reference_positions.shape)
    ref = model.reference_states([0.0, 0.0, 0.0], max(1, -(-n_rhs // L ** 3)))
    p = ref.vectors[:, np.argsort(ref.energies, kind="stable")[:n_rhs]]
    return model, pos, p


# ---------------------------------------------------------------- 1. warm starts
WARM_MODES = {"cold": {"warm_start": False}, "warm": {}, "projected": {"warm_projection": True},
              "recycled": {"recycle": 16}}
#: the modes that need the batched solver (block > 1)
BATCHED_ONLY = ("recycled",)
#: (L, N_b, configurations, block size) of the warm-start table
WARM_CASES = ((2, 16, 2, 1), (2, 16, 2, 16), (4, 16, 1, 8))


def warm_starts(n_beads: int, n_conf: int, block_size: int, L: int = 2) -> dict:
    """Mean iterations and CPU seconds of every WARM_MODES entry for ``n_conf`` exact Einstein ring
    polymers of ``n_beads`` beads ((8L)³ grid, 16 RHS), the largest relative difference of g to cold."""
    from spia_mpi.engine.workflow import _ResolventEngine
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    model, _, p = hydrogen(L, 16)
    pos = sample_einstein_ring_polymers(n_conf, n_beads, model.atoms.get_masses(), 0.15, T,
                                        model.reference_positions, np.random.default_rng(7))
    out = {"bead_step_rms": float(np.sqrt(np.mean((pos - np.roll(pos, 1, axis=1)) ** 2)))}
    modes = [m for m in WARM_MODES if block_size > 1 or m not in BATCHED_ONLY]
    for mode in modes:
        options = WARM_MODES[mode]
        engine = _ResolventEngine(model, "petsc", {**options, "block_size": block_size})
        t = time.process_time()
        g = np.array([engine(x, [0.0, 0.0, 0.0], z_value(), p) for x in pos])
        out[mode] = {"cpu": time.process_time() - t, "its": float(np.mean(engine.iterations)), "g": g}
    g0 = out["cold"]["g"]
    for mode in modes:
        out[mode]["diff"] = float(np.max(np.abs(out[mode].pop("g") - g0)) / np.max(np.abs(g0)))
    return out


# ---------------------------------------------------------------- 2. distributed preconditioner
def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_resolvent(L: int, n_rhs: int, cases: list | None = None) -> list:
    """One resolvent on this process's MPI world (H, kinetic preconditioner, n_rhs right-hand sides)
    solved with every resolvent options dict of ``cases`` in turn (default: the defaults only), each
    one warm-up and SOLVES timed solves; a list of results, one per case."""
    import gc

    from spia_mpi.engine.resolvent import ResolventSolver
    from spia_mpi.parallel.mpi import world
    comm = world()
    model, pos, p = hydrogen(L, n_rhs)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")            # peak memory from here on
    mat = model.hamiltonian_petsc(pos, [0.0, 0.0, 0.0], comm)
    pc = model.resolvent_preconditioner([0.0, 0.0, 0.0])
    out = []
    for options in cases or [{}]:
        walls, cpus = [], []
        for _ in range(1 + SOLVES):                          # the first (warm-up) solve is not timed
            comm.Barrier()
            t, c = time.perf_counter(), time.process_time()
            g, info = ResolventSolver(comm, options).solve(mat, z_value(), p, pc)
            cpus.append(comm.allreduce(time.process_time() - c, op=_mpi_max()))
            comm.Barrier()
            walls.append(time.perf_counter() - t)
        out.append({"ranks": comm.size, "points": model.n_basis, "solve_s": float(np.median(walls[1:])),
                    "solve_cpu_s": float(np.median(cpus[1:])), "its": info["iterations_mean"],
                    "g00": [g[0, 0].real, g[0, 0].imag]})
    r = np.random.default_rng(0).standard_normal((1, pc.fft.n_local)) + 0j
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(20):
        pc.apply_block(r)
    comm.Barrier()
    t_pc = (time.perf_counter() - t) / 20
    rss = comm.gather(_peak_rss_mib(), root=0)
    mat.destroy()
    for result in out:
        result.update(pc_s=t_pc, rss_mib=rss)
    return out


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX


def run_one(ranks: int, *args) -> dict:
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    cmd = [sys.executable, __file__, "--one", *map(str, args)]
    if ranks > 1:
        cmd = [*mpirun_prefix(), "-n", str(ranks), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, env=mpirun_env(), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- 3. roofline
def stream_copy_gbs(n_bytes: int = 256 * 2 ** 20, repeats: int = 5) -> float:
    """Copy bandwidth (read + write bytes per second, GB/s), best of ``repeats``."""
    a = np.ones(n_bytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best / 1e9


def matvec_gbs(L: int = 6, repeats: int = 20) -> tuple:
    """Bytes a CSR MatMult must move per second (GB/s), its time (s), non-zeros per row and the bytes,
    best of ``repeats``: values (16 B) and column indices per non-zero, row pointers, x read once, y written."""
    from spia_mpi.parallel import stack
    from spia_mpi.parallel.mpi import self_comm
    PETSc = stack.petsc()
    model, pos, _ = hydrogen(L, 1)
    mat = model.hamiltonian_petsc(pos, [0.0, 0.0, 0.0], self_comm())
    x, y = mat.createVecs()
    x.setRandom()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        mat.mult(x, y)
        best = min(best, time.perf_counter() - t)
    n, nnz = model.n_basis, int(mat.getInfo()["nz_used"])
    isize = np.dtype(PETSc.IntType).itemsize
    moved = nnz * (16 + isize) + (n + 1) * isize + 2 * 16 * n
    mat.destroy()
    return moved / best / 1e9, best, nnz / n, moved


# ---------------------------------------------------------------- 4. blocks of right-hand sides
BLOCK_CASES = {"1 (PETSc KSP)": {"block_size": 1}, "4": {"block_size": 4}, "8 (auto, the default)": {},
               "8, double precision": {"mixed_precision": False}, "32": {"block_size": 32}}


def blocks(cases=BLOCK_CASES, n_rhs: int = 32, repeats: int = REPEATS) -> dict:
    """CPU and wall seconds of one 32³ resolvent with n_rhs right-hand sides for every case
    (resolvent options; alternated, ``repeats`` rounds), iterations and the largest relative
    difference of g to the first case."""
    from spia_mpi.engine.resolvent import ResolventSolver
    from spia_mpi.parallel.mpi import self_comm
    model, pos, p = hydrogen(4, n_rhs)
    mat = model.hamiltonian_petsc(pos, [0.0, 0.0, 0.0], self_comm())
    pc = model.resolvent_preconditioner([0.0, 0.0, 0.0])
    out = {name: {"cpu": [], "wall": []} for name in cases}
    for _ in range(repeats):
        for name, options in cases.items():
            c, w = time.process_time(), time.perf_counter()
            g, info = ResolventSolver(self_comm(), options).solve(mat, z_value(), p, pc)
            out[name]["cpu"].append(time.process_time() - c)
            out[name]["wall"].append(time.perf_counter() - w)
            out[name]["its"] = info["iterations_mean"]
            out[name]["g"] = g
    g1 = out[next(iter(cases))]["g"]
    for name in cases:
        out[name]["diff"] = float(np.max(np.abs(out[name].pop("g") - g1)) / np.max(np.abs(g1)))
    mat.destroy()
    return out


def _load() -> str:
    """Load average, and this process's scheduler autogroup with its nice value (Linux)."""
    load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    group = Path("/proc/self/autogroup")
    return f"{load} ({group.read_text().strip()})" if group.exists() else load


# ---------------------------------------------------------------- report
HEADER = ["## Resolvent performance: warm starts, distributed preconditioner, roofline, blocks "
          "(`drivers/bench_perf.py`)\n",
          "Dense simple-cubic hydrogen on a 0.2 Å grid (4th-order stencil), z = 10 eV + i·2.68 eV "
          "(J = 16, 300 K), GMRES + kinetic FFT preconditioner, KSP rtol 1e-11. The machine is shared "
          "(2 cores, other jobs running): times are noisy, so every comparison is a ratio measured in "
          "the same run, and the 1-versus-2-rank runs are repeated and alternated. One BLAS/OpenMP "
          "thread per process (the driver sets OMP/OPENBLAS/MKL_NUM_THREADS = 1 before numpy loads). "
          "Each section says when it was last measured, the load average (1 / 5 / 15 min, 2 cores) and the "
          "driver's scheduler autogroup: Linux's autogroup scheduling shares the CPUs equally between "
          "sessions whatever the nice values inside them, so other sessions' `nice -n 19` jobs still take a "
          "core each; a benchmark started as `setsid sh -c 'echo -15 > /proc/self/autogroup; exec python "
          "drivers/bench_perf.py …'` (root) gets the cores first. "
          "`drivers/bench_perf.py --parts warm,ranks,roofline,blocks` reruns the sections named.\n"]


def _stamp() -> str:
    return f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {_load()}."


def section_warm() -> list:
    from spia_mpi.engine.resolvent import ResolventSolver
    k, start = WARM_MODES["recycled"]["recycle"], ResolventSolver.RECYCLE_START
    lines = ["### Warm starts along the ring polymer\n",
             "16³ grid (2×2×2 supercell, 8 atoms) and 32³ (4×4×4, 64 atoms), exact Einstein ring polymers (ħΩ = 0.15 eV, 300 K, "
             "N_b = 16; 2 configurations at 16³, 1 at 32³), the 16 lowest plane waves as right-hand sides; the whole engine per "
             "configuration (H assembly included). Cold: every solve starts from zero; warm: bead b starts "
             "from bead b − 1's solution (the default, `warm_start = true`); projected: that guess improved "
             "by the minimal-residual projection onto span{X_{b−1}, M⁻¹R} (`warm_projection = true`, "
             "`engine.resolvent.minimal_residual_guess`: one A and one M⁻¹ per right-hand side on the batched "
             "path, which takes A M⁻¹R from the same FFTs and hands the projected residual to GMRES; one more "
             "A on the PETSc path; not counted as iterations); recycled: warm starts plus a recycled Krylov "
             f"subspace of k = {k} vectors carried along the beads (`recycle = {k}`, batched solver only: GMRES "
             "deflated by C = A M⁻¹U, U tracking the dominant eigenvectors of A M⁻¹ − 1 by one subspace-iteration "
             f"step per bead; its k applications of A M⁻¹ per bead, and {start}·k more at bead 0, are not "
             "iterations: the column 'its recycled + set-up' adds them per right-hand side). Solver: PETSc KSP "
             "column by column (block 1) or batched GMRES (block 16 or 8).\n",
             "| grid | N_b | block | neighbour-bead step (Å, rms) | its cold | its warm | its projected | its recycled | "
             "its recycled + set-up | reduction warm / projected / recycled / recycled + set-up | CPU s cold | "
             "CPU s warm | CPU s projected | CPU s recycled | max rel. diff of g |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for L, n_beads, n_conf, block in WARM_CASES:
        w = warm_starts(n_beads, n_conf, block, L)
        cold = w["cold"]["its"]
        its = {m: w[m]["its"] if m in w else None for m in WARM_MODES}
        if its["recycled"] is not None:
            its["recycled + set-up"] = its["recycled"] + k * (n_beads + start) / (n_beads * 16)
        else:
            its["recycled + set-up"] = None
        shown = ["warm", "projected", "recycled", "recycled + set-up"]
        lines.append(f"| {8 * L}³ | {n_beads} | {block} | {w['bead_step_rms']:.3f} | {cold:.2f} | "
                     + " | ".join("—" if its[m] is None else f"{its[m]:.2f}" for m in shown) + " | "
                     + " / ".join("—" if its[m] is None else f"{100 * (1 - its[m] / cold):.0f} %" for m in shown)
                     + " | " + " | ".join(f"{w[m]['cpu']:.2f}" if m in w else "—" for m in WARM_MODES)
                     + f" | {max(w[m]['diff'] for m in WARM_MODES if m in w):.1e} |")
        print(lines[-1], flush=True)
    lines.append(f"\n{_stamp()}\n")
    lines.append(WARM_TEXT)
    return lines


WARM_TEXT = (
    "A neighbouring bead's solution is about a one-iteration head start: the kinetic preconditioner "
    "makes GMRES reduce the residual ≈ 10× per iteration, and bead b − 1's solution leaves a relative "
    "residual of ≈ 0.05–0.1 (at 300 K a hydrogen bead is ≈ 0.09 Å from its neighbour at N_b = 16, as "
    "far as the ions are from the lattice), concentrated near the atoms, where the potential changed — "
    "just the components GMRES finds hard. On the batched path that head start now costs nothing: the "
    "guess's residual follows pointwise from the previous solve's final residual, B − A_b X_{b−1} = "
    "(B − A_{b−1}X_{b−1}) + (d_{b−1} − d_b) ⊙ X_{b−1} (consecutive beads' matrices differ only on the "
    "diagonal d; `engine.resolvent._Step`), where before it took one sparse product per right-hand side, "
    "which ate the saving (CPU warm = cold in the 14:12 UTC run). The projection brings the residual to "
    "≈ 0.006 and saves about two more iterations (the previous bead's A X comes pointwise too), but its "
    "small least-squares problem (Gram matrix of 2n vectors) and one preconditioner application per "
    "right-hand side cost as much; it is not the default. The recycled subspace attacks what sets the "
    "iteration count: A M⁻¹ has ≈ 2 outlying eigenvalues per atom (16 on the 16³ cell, out to "
    "|λ − 1| ≈ 0.2, while 99 % lie within 0.025 of 1). Deflating them saves ≈ 30 % of the cold start's "
    "iterations, but not time, and cannot on this problem: per column and iteration the projections "
    "against C cost 2k complex multiply-adds per grid point (16k real flops, BLAS-3 across the block), "
    "the two FFTs ≈ 10 log₂N flops — at k = 16 and N = 16³ that is 256 against 120 flops per point, so "
    "even at BLAS-3's higher flop rate an iteration costs ≈ 1.5× more, while k must grow with the number "
    "of atoms (2 per atom; 16 vectors deflate too little on the 32³ cell). Scratch measurements "
    "(15:52–16:05 UTC, 16³, N_b = 16, block 16, load 3–5; cold 11.26 iterations, warm 10.04): k = 8 / 24 / 32 "
    "(tracked) 8.45 / 7.71 / 7.51 iterations at 1.2–1.5× cold's CPU time; a fixed U per task whose C_b = U + "
    "(d_b − d̄) ⊙ M⁻¹U is updated pointwise (no FFT per bead) 8.64 / 8.44 / 8.31 at k = 16 / 24 / 32 (7.6–8.0 "
    "when U is refreshed every 4th bead), CPU still 1.15–1.3× cold; deflating only at the restarts instead "
    "of every Arnoldi vector 9.68 (k = 16) at 1.18× warm's CPU; the minimal-residual guess over the "
    "solutions of all columns of the m previous beads (A_b X_j pointwise) 8.98 / 8.87 / 8.63 / 7.99 / "
    "7.59 iterations for m = 1 / 2 / 4 / 8 / 15 (−20 … −33 %), but its Gram matrix of 16(m + 1) vectors costs "
    "(16(m + 1))² N complex multiply-adds per bead — at m = 8 about 7× the FFT work of a whole cold solve — "
    "and each column's own previous solutions alone give nothing beyond m = 1 (9.3). So `recycle` stays "
    "off, and the ≥ 30 % target is reached only in iterations (recycling k ≥ 24, or the 8–15-bead "
    "projection), never as a saving of time.\n")


RANK_CASES = {"auto (batched, block 8, mixed precision; the default)": {},
              "auto, double precision": {"mixed_precision": False}, "1 (PETSc KSP)": {"block_size": 1}}


def section_ranks() -> list:
    lines = ["### Distributed kinetic FFT preconditioner\n",
             "One resolvent (8 right-hand sides) in a fresh process on 1 rank and on 2 ranks of one PETSc "
             f"communicator, every solver in turn in that process: one warm-up solve (FFT plans, first-touch pages), then the median of {SOLVES} timed "
             "solves, as a run repeats the solve for every bead and configuration; with the default solver (`block_size = 'auto'`: batched GMRES, one block of 8, "
             "mixed precision), the same in double precision (`mixed_precision = false`) and "
             "with PETSc's KSP column by column; the preconditioner's FFTs are slab-distributed over the ranks "
             "(`engine.preconditioners.SlabFFT`; the transposes are barriers in a shared-memory window that "
             "holds the block's whole grid, kept from solve to solve as the grid model keeps its preconditioner). "
             f"{RANK_REPEATS} pairs of runs alternate 1, 2, 1, 2, …; `PC apply` is one application of the preconditioner to one vector (mean of 20). "
             "CPU s: process CPU time of the solve (the largest over the ranks; Open MPI's waiting in "
             "collectives counts as CPU time). With more runnable processes than cores, every collective "
             "waits for a descheduled partner, which the wall times include.\n",
             "| grid | solver | repetition | solve 1 rank (s) | solve 2 ranks (s) | speed-up | CPU s 1 rank | "
             "CPU s per rank, 2 ranks (max) | CPU ratio | PC apply 1 rank (ms) | PC apply 2 ranks (ms) | "
             "PC speed-up | its |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    speedups = {name: [] for name in RANK_CASES}
    for rep in range(RANK_REPEATS):
        one, two = (run_one(n, "resolvent", 6, 8, json.dumps(list(RANK_CASES.values()))) for n in (1, 2))
        for name, r1, r2 in zip(RANK_CASES, one, two):
            speedups[name].append(r1["solve_s"] / r2["solve_s"])
            lines.append(f"| 48³ | {name} | {rep + 1} | {r1['solve_s']:.2f} | {r2['solve_s']:.2f} | "
                         f"{speedups[name][-1]:.2f}× | {r1['solve_cpu_s']:.2f} | {r2['solve_cpu_s']:.2f} | "
                         f"{r1['solve_cpu_s'] / r2['solve_cpu_s']:.2f}× | {1e3 * r1['pc_s']:.1f} | "
                         f"{1e3 * r2['pc_s']:.1f} | {r1['pc_s'] / r2['pc_s']:.2f}× | {r1['its']:.1f} / {r2['its']:.1f} |")
            print(lines[-1], flush=True)
    lines.append("\nMedian speed-up of the 48³ solve on 2 ranks (target 1.7×): "
                 + "; ".join(f"{name}: {np.median(v):.2f}×" for name, v in speedups.items()) + f". {_stamp()}\n")
    lines.append(RANKS_TEXT)
    m1, m2 = run_one(1, "resolvent", 8, 8)[0], run_one(2, "resolvent", 8, 8)[0]
    lines += ["Peak resident memory per rank, 64³ (262 144 points), default solver, from the model's set-up "
              "to the end of the solves (matrix, preconditioner, Krylov spaces; the Python/PETSc libraries and the "
              "8 right-hand sides, held whole on every rank, are included; on 2 ranks each rank's resident set "
              "also counts the pages of the other rank's half of the shared-memory window that it reads):\n",
              "| grid | 1 rank (MiB) | 2 ranks, per rank (MiB) | solve 1 rank (s) | solve 2 ranks (s) |",
              "|---|---|---|---|---|",
              f"| 64³ | {m1['rss_mib'][0]:.0f} | {', '.join(f'{x:.0f}' for x in m2['rss_mib'])} | "
              f"{m1['solve_s']:.2f} | {m2['solve_s']:.2f} |\n"]
    print(lines[-1], flush=True)
    return lines


RANKS_TEXT = (
    "Where the 2-rank time goes (cProfile of three 48³ solves, default solver, 15:56 UTC, load ≈ 3, "
    "autogroup nice −20; per solve): one rank 0.46 s = FFTs 0.27 (single precision) + the rest of the "
    "preconditioner (the symbol product, the fused −(V − V̄) factor) 0.02 + Gram–Schmidt 0.036 + PETSc "
    "MatMult 0.029 (the matrix's residual confirming convergence, one per column, and the set-up's check "
    "of the fused operator) + the rest of the GMRES bookkeeping ≈ 0.1; two ranks 0.29 s: FFTs 0.14 "
    "(1.92×), Gram–Schmidt 0.025 (1.45×: memory-bound vector work, both cores share one memory bus), "
    "MatMult 0.017 (1.7×), the copies into and out of the shared window 0.013 and the barriers 0.005 — "
    "the transposes themselves move no data any more (the block's whole grid lies in the window and each "
    "rank transforms its y-slab in place; the fourth session's strided copies between the ranks' "
    "buffers took ≈ 0.03 s of a 0.31 s solve, and the window was allocated and freed in every solve, "
    "≈ 0.007 s). Earlier profiles of the PETSc KSP path (09:38–10:37 UTC): 1 rank 0.71 s in KSP + 0.40 s "
    "preconditioner; 2 ranks 0.44 + 0.40 s before the shared-memory transposes (an `Alltoallv` with "
    "packing, ≈ 0.6 ms per vector and transpose). "
    "Side by side in one scratch run (16:30 UTC, load 3.5–4.6, autogroup nice −20; the same 48³ solve, median of "
    "5 solves per process, 4 alternated pairs of trees): main before this session (e08befe) 1.48 / 1.54 / 1.48 / 1.52×, "
    "this version 1.70 / 1.72 / 1.67 / 1.68× — the 2-rank solve went from 0.29–0.31 to 0.26–0.27 s, the 1-rank one "
    "stayed ≈ 0.44 s; the tables' medians also move with the load's effect on the 1-rank time.\n")


def section_roofline() -> list:
    big = stream_copy_gbs()
    lines = ["### Roofline of the grid matvec\n",
             "In one process: PETSc MatMult of the grid Hamiltonian (best of 20), counting the bytes a CSR "
             "product must move (16 B value + index per non-zero, row pointers, x and y once), against a "
             "STREAM-like copy (numpy `copyto`, read + write bytes, best of 5) of the same working set and "
             "of 2 × 256 MiB (main memory; the L3 cache is 32 MiB).\n",
             "| grid | working set (MiB) | matvec (ms) | non-zeros per row | matvec (GB/s) | copy, same set (GB/s) | "
             "fraction | copy, 512 MiB (GB/s) | fraction |", "|---|---|---|---|---|---|---|---|---|"]
    for L in (6, 8):
        mv, t_mv, per_row, moved = matvec_gbs(L)
        same = stream_copy_gbs(moved // 2)
        lines.append(f"| {8 * L}³ | {moved / 2 ** 20:.0f} | {1e3 * t_mv:.2f} | {per_row:.0f} | {mv:.1f} | {same:.1f} | "
                     f"{100 * mv / same:.0f} % | {big:.1f} | {100 * mv / big:.0f} % |")
        print(lines[-1], flush=True)
    lines.append(f"\n{_stamp()}\n")
    return lines


def section_blocks() -> list:
    b = blocks()
    lines = ["### Blocks of right-hand sides\n",
             f"One 32³ resolvent, 32 plane-wave right-hand sides, one rank, cases alternated in {REPEATS} "
             "rounds. Block 1 = PETSc KSP column by column (with PETSc's restart set to 4 it was 0.95× as fast "
             "in the 11:30 UTC run: the restart length is not what differs); block n = batched GMRES (`engine.krylov`, "
             "`block_size = n`, `block_restart = 4`; `'auto'`, the default, is 8 here): n Krylov spaces advanced together, the preconditioner "
             "as one batched FFT, A M⁻¹ = 1 − (V − V̄)M⁻¹ applied without the sparse matrix, restarts that "
             "cost no operator application, and (`mixed_precision = true`, the default) the cycles in single "
             "precision refined by double-precision true residuals; '8, double precision' is the same block "
             "entirely in double precision. CPU seconds (this process) are less "
             "disturbed by the other jobs than wall seconds; RHS/s from the median CPU time.\n",
             "| block size | CPU s (runs) | wall s (runs) | RHS/s (CPU) | vs block 1 | mean its | max rel. diff of g |",
             "|---|---|---|---|---|---|---|"]
    base = np.median(next(iter(b.values()))["cpu"])
    for name, r in b.items():
        med = np.median(r["cpu"])
        lines.append(f"| {name} | {', '.join(f'{x:.2f}' for x in r['cpu'])} | "
                     f"{', '.join(f'{x:.2f}' for x in r['wall'])} | {32 / med:.1f} | {base / med:.2f}× | "
                     f"{r['its']:.1f} | {r['diff']:.1e} |")
        print(lines[-1], flush=True)
    lines.append(f"\n{_stamp()}\n")
    lines.append(
        "Where the time goes (profiles on this case): PETSc's path pays per iteration a sparse product, a "
        "Python preconditioner callback and a Gram–Schmidt step over a growing basis; the batched solver "
        "pays two FFTs per iteration and column plus a short Gram–Schmidt (BLAS gemv in place, at most "
        "4 vectors); in double precision the FFTs are ≈ 55 % of its time, and single-precision FFTs are "
        "≈ 1.65× faster (8 × 32³, scratch), which with two sweeps of 13.5 iterations in all (14.0 in double) "
        "is the mixed-precision gain. With the kinetic preconditioner A M⁻¹ is close to the identity, so GMRES(4) needs "
        "only ≈ 1 iteration more than unrestarted GMRES (14.0 vs 13.0 here). Not kept: a block GMRES "
        "with one Krylov space shared by the block (block Cholesky-QR, BLAS-3 block Gram–Schmidt), "
        "scratch-measured at 05:47 UTC (load ≈ 12): 12.3 / 11.1 / 10.0 / 8.9 iterations at block 4 / 8 / "
        "16 / 32 instead of 13.8, but 1.3–2.2 CPU s against 0.84–0.95 s for the batched solver of that "
        "time: its orthogonalisation work grows with the block size squared and costs more than the "
        "FFTs it saves.\n")
    return lines


SECTIONS = {"warm": ("### Warm starts", section_warm), "ranks": ("### Distributed kinetic", section_ranks),
            "roofline": ("### Roofline", section_roofline), "blocks": ("### Blocks", section_blocks)}


def _kept_sections(path: Path) -> dict:
    """The sections of an existing perf.md, {part name: text}."""
    if not path.exists():
        return {}
    chunks = path.read_text().split("\n### ")
    out = {}
    for chunk in chunks[1:]:
        for name, (heading, _) in SECTIONS.items():
            if ("### " + chunk).startswith(heading):
                out[name] = ("### " + chunk).rstrip("\n") + "\n"
    return out


def main(parts):
    path = ROOT / "docs" / "benchmarks" / "perf.md"
    kept = _kept_sections(path)
    missing = [p for p in SECTIONS if p not in parts and p not in kept]
    if missing:
        raise SystemExit(f"bench_perf: no earlier results for {missing} in {path}: run those parts too")
    text = ["\n".join(HEADER)]
    for name, (_, run) in SECTIONS.items():
        if name in parts:
            text.append("\n".join(run()))
        elif re.search(r"Measured \d{4}-\d\d-\d\d|_Not remeasured", kept[name]):
            text.append(kept[name])
        else:                                   # from a run before this driver pinned the threads
            text.append(kept[name].rstrip("\n") + f"\n\n_Not remeasured since the driver pins one BLAS thread "
                        f"per process (OpenBLAS ran two per process in this run); rerun with `--parts {name}`._\n")
    path.write_text("\n".join(t.rstrip("\n") + "\n" for t in text))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(SECTIONS),
                    help=f"comma-separated sections to measure ({', '.join(SECTIONS)}; default all)")
    ap.add_argument("--one", nargs="+", metavar="ARG", help=argparse.SUPPRESS)     # child measurement
    args = ap.parse_args()
    if args.one and args.one[0] == "resolvent":
        res = one_resolvent(int(args.one[1]), int(args.one[2]), json.loads(args.one[3]) if len(args.one) > 3 else None)
        from spia_mpi.parallel.mpi import world
        if world().rank == 0:
            print(json.dumps(res))
    else:
        chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
        unknown = sorted(set(chosen) - set(SECTIONS))
        if unknown:
            ap.error(f"unknown parts {unknown}; choose from {', '.join(SECTIONS)}")
        main(chosen)
