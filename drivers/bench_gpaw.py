#!/usr/bin/env python
"""Benchmark: the GPAW model per configuration–bead, split into its stages.

Runs under mpirun with any number of ranks (one GPAW calculation on all of them, i.e. one
configuration group): the reference SCF of a supercell of a shipped structure, then one
displaced configuration–bead (Gaussian displacements, σ = 0.1 Å, fixed seed) with
density = "scf" (restarted from the reference) and "frozen", and for each the times of the
GPAW density, the H/S extraction, the cross overlaps and the dense resolvents of the
reference states in a ±2 eV window (one K = Γ). Prints one markdown table row per stage.

    mpirun -n 2 python drivers/bench_gpaw.py li2mgh16-solid 1 1 1 --kpts 2 2 2

With ``--reference-only`` it runs only the reference SCF and prints one row of the scaling
table of docs/benchmarks/gpaw.md: atoms, orbitals, SCF iterations, wall and CPU seconds
(summed over the ranks) and CPU seconds per iteration, e.g.

    python drivers/bench_gpaw.py bcc-li 4 2 2 --reference-only

With ``--aij dense|sparse`` (and ``--matrix`` for a non-diagonal supercell) it times and measures
the memory of one frozen configuration–bead at K = Γ on all ranks as ONE configuration group:
``dense`` — GPAW's dense H, S and the dense cross overlap X on every rank, converted to PETSc AIJ;
``sparse`` — each rank builds only its atoms' rows (model.gpaw.aij_min_orbitals = 0,
spia_mpi/models/gpaw_sparse.py). Reported per rank: build wall/CPU seconds, bytes of the stored
H, S, X (dense arrays or CSR), the tracemalloc peak of the build, VmHWM (peak RSS) of the process
before and after the bead, the non-zero fractions; the projected resolvents of the reference states
in a ±2 eV window at z = ε_F + iη (J = 16, 300 K) are PETSc-solved and saved (``g_<mode>.npy``), and the sparse run compares with
the dense one's file when present. Run the two modes as separate processes (VmHWM is per process),
reusing one reference file:

    mpirun -n 2 python drivers/bench_gpaw.py li2mgh16-solid 1 1 1 --matrix 1 1 0 0 1 0 0 0 2 \
        --workdir W --aij dense
"""
import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ase.build import bulk  # noqa: E402

from spia_mpi.engine.resolvent import projected_resolvent_dense  # noqa: E402
from spia_mpi.lattice.structures import load_structure  # noqa: E402
from spia_mpi.models.gpaw import GpawModel, GpawSettings, require_gpaw  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("structure")
    p.add_argument("supercell", nargs=3, type=int, help="diagonal supercell matrix")
    p.add_argument("--kpts", nargs=3, type=int, default=[1, 1, 1])
    p.add_argument("--basis", default="dzp")
    p.add_argument("--h", type=float, default=0.2)
    p.add_argument("--workdir", default=None)
    p.add_argument("--convergence", type=float, default=1e-6,
                   help="SCF density criterion (a looser one shortens a --reference-only timing; CPU per "
                        "iteration does not depend on it)")
    p.add_argument("--reference-only", action="store_true", help="time the reference SCF only (scaling row)")
    p.add_argument("--matrix", nargs=9, type=int, default=None, help="supercell matrix (row-major), overrides "
                                                                   "the diagonal one")
    p.add_argument("--aij", choices=["dense", "sparse"], default=None,
                   help="memory and time of one frozen bead's AIJ matrices, one group on all ranks")
    p.add_argument("--estimate-fill", action="store_true",
                   help="no calculation: the fraction of orbital pairs within the basis cutoffs (an upper bound "
                        "of the sparse H's non-zero fraction) and the dense/sparse bytes per K")
    args = p.parse_args(argv)
    if args.matrix:
        args.supercell = np.reshape(args.matrix, (3, 3)).tolist()
    require_gpaw()
    from gpaw.mpi import world
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_gpaw_"))
    prim = bulk("Li", "bcc", a=3.44) if args.structure == "bcc-li" else load_structure(args.structure)
    if args.aij:
        return aij_memory(prim, args, world, work)
    if args.estimate_fill:
        return estimate_fill(prim, args)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    base = dict(basis=args.basis, kpts=tuple(args.kpts), h_ang=args.h, convergence_density=args.convergence)
    model = GpawModel(prim, args.supercell, GpawSettings(density="frozen", **base), [[0, 0, 0]])
    model.prepare(world, world.size, work)
    wall, cpu = time.perf_counter() - t0, world.sum(time.process_time() - c0)
    rows.append(("reference SCF", wall))
    if args.reference_only:
        n_iter = len(re.findall(r"^iter:", (work / "gpaw_reference.txt").read_text(), re.M))
        if world.rank == 0:
            print(f"| {args.structure} {args.supercell} | {len(model.atoms)} | {model.n_basis} | "
                  f"{np.prod(args.kpts)} | {world.size} | {n_iter} | {wall:.1f} | {cpu:.1f} | {cpu / n_iter:.2f} |")
        return
    pos = model.reference_positions + 0.1 * np.random.default_rng(7).standard_normal(model.reference_positions.shape)
    window = None
    for density in ("frozen", "scf"):
        m = GpawModel(prim, args.supercell, GpawSettings(density=density, **base), [[0, 0, 0]])
        m.prepare(world, world.size, work)                 # reuses the reference file
        ref = m.reference_states([0, 0, 0], int(m._prim_offsets[-1]))
        window = np.abs(ref.energies - m.fermi_level_ev) < 2.0
        h, s, q = m.projected_problem_dense(pos, [0, 0, 0], ref.vectors[:, window])
        t0 = time.perf_counter()
        projected_resolvent_dense(h, m.fermi_level_ev + 0.5j, q, s)
        t_res = time.perf_counter() - t0
        rows += [(f"{density}: GPAW density", m.timings["gpaw_density"]),
                 (f"{density}: H/S extraction", m.timings["gpaw_hs_extraction"]),
                 (f"{density}: cross overlaps", m.timings["gpaw_cross_overlap"]),
                 (f"{density}: resolvents ({int(window.sum())} states, dense LU)", t_res)]
    if world.rank == 0:
        print(f"{args.structure} supercell {args.supercell}, {len(model.atoms)} atoms, {model.n_basis} orbitals "
              f"({args.basis}), kpts {args.kpts}, h = {args.h} Å, {world.size} rank(s)\n")
        print("| stage | time (s) |\n|---|---|")
        for name, t in rows:
            print(f"| {name} | {t:.2f} |")


def vm_hwm_mib() -> float:
    """Peak resident set size of this process so far (MiB, /proc/self/status VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def aij_memory(prim, args, world, work):
    """``--aij``: one frozen bead at Γ, dense or row-distributed sparse, on one group of all ranks."""
    import tracemalloc
    from spia_mpi.models import gpaw_sparse as gs
    from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta
    from spia_mpi.parallel.mpi import world as mpi_world
    comm = mpi_world()
    sparse = args.aij == "sparse"
    settings = GpawSettings(density="frozen", basis=args.basis, kpts=tuple(args.kpts), h_ang=args.h,
                            convergence_density=args.convergence, aij_min_orbitals=0 if sparse else 10**9)
    t0 = time.perf_counter()
    model = GpawModel(prim, args.supercell, settings, [[0, 0, 0]])
    model.prepare(world, world.size, work)
    t_prepare = time.perf_counter() - t0
    ref = model.reference_states([0, 0, 0], int(model._prim_offsets[-1]))
    window = np.abs(ref.energies - model.fermi_level_ev) < 2.0
    p = ref.vectors[:, window]
    hwm_before = vm_hwm_mib()
    pos = model.reference_positions + 0.1 * np.random.default_rng(7).standard_normal(model.reference_positions.shape)
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    if sparse:
        rows = model.sparse_rows(pos)
        stored = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in rows.h + rows.s + rows.xh)
    else:
        stored = sum(a.nbytes for a in model.matrices(pos))
    hp, sp, q = model.projected_problem_petsc(pos, [0, 0, 0], p, comm)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    density = model.timings["gpaw_density"], model.timings["gpaw_density_cpu"]
    r0, r1 = hp.getOwnershipRange()
    t1 = time.perf_counter()
    eta = matsubara_eta(16, 300.0)               # the shipped example's J = 16 at 300 K (2.7 eV)
    # block Jacobi with an exact LU of each rank's diagonal block: GMRES + Jacobi (the default) does not
    # converge in 2000 iterations on this zS − H (dzp overlap; measured for both modes)
    from spia_mpi.errors import ConvergenceError
    try:
        g, info = ResolventSolver(comm, {"ksp_rtol": 1e-13, "ksp_atol": 1e-16, "pc_type": "bjacobi",
                                         "sub_pc_type": "lu"}).solve(
            hp, model.fermi_level_ev + 1j * eta, q, s_mat=sp)
    except ConvergenceError as exc:
        g, info = np.full((q.shape[1], q.shape[1]), np.nan), {"iterations_mean": float("nan")}
        if comm.rank == 0:
            print(f"resolvent: {exc}")
    t_res = time.perf_counter() - t1
    hp.destroy(), sp.destroy()
    hwm_after = vm_hwm_mib()
    stats = comm.gather((r1 - r0, wall, cpu, density, stored, traced_peak, hwm_before, hwm_after), root=0)
    fraction = model.nonzero_fraction if sparse else None
    if comm.rank == 0:
        np.save(work / f"g_{args.aij}.npy", g)
        other = work / "g_dense.npy"
        compare = (f"; max |g_sparse − g_dense| = {np.abs(g - np.load(other)).max():.1e}"
                   if sparse and other.exists() else "")
        print(f"{args.structure} supercell {args.supercell}: {len(model.atoms)} atoms, {model.n_basis} orbitals, "
              f"K = Γ, frozen, {comm.size} rank(s) in one group, mode {args.aij}; prepare (reference reused) "
              f"{t_prepare:.0f} s wall; resolvent {int(window.sum())} states {t_res:.1f} s wall, "
              f"{info['iterations_mean']:.0f} GMRES iterations (block Jacobi, LU blocks){compare}"
              + (f"; non-zero fractions H, S, X† = {', '.join(f'{f:.3f}' for f in fraction)}" if sparse else ""))
        print("| mode | rank | rows | GPAW density wall / CPU (s) | H, S, X build + AIJ wall / CPU (s) | "
              "stored H, S, X (MiB) | tracemalloc peak of the build (MiB) | VmHWM before / after the bead (MiB) |")
        print("|---|---|---|---|---|---|---|---|")
        for rank, (n_rows, w, c, (dw, dc), st, tp, hb, ha) in enumerate(stats):
            print(f"| {args.aij} | {rank} | {n_rows} | {dw:.1f} / {dc:.1f} | {w - dw:.1f} / {c - dc:.1f} | "
                  f"{st / 2**20:.2f} | {tp / 2**20:.1f} | {hb:.0f} / {ha:.0f} |")


def estimate_fill(prim, args):
    """``--estimate-fill``: orbital pairs (μ, ν) whose atoms are closer (any periodic image) than the sum
    of their longest basis-function cutoffs, over n² — what the sparse rows can store at most."""
    from ase.neighborlist import neighbor_list
    from ase.units import Bohr
    from gpaw.setup import Setups
    from gpaw.xc import XC
    from spia_mpi.lattice import supercells
    atoms = supercells.build_supercell(prim, supercells.as_supercell_matrix(args.supercell))[0]
    setups = Setups(atoms.numbers, "paw", args.basis, XC("PBE"))
    n_orb = np.array([s.nao for s in setups])
    reach = np.array([max(f.get_cutoff() for f in s.phit_j) * Bohr for s in setups])
    first, second = neighbor_list("ij", atoms, reach.tolist(), self_interaction=True)   # d < r_i + r_j
    pairs = set(zip(first.tolist(), second.tolist()))
    stored = sum(int(n_orb[i] * n_orb[j]) for i, j in pairs)
    n = int(n_orb.sum())
    print(f"| {args.structure} {args.supercell} | {len(atoms)} | {n} | {stored / n**2:.3f} | "
          f"{3 * n**2 * 16 / 2**20:.0f} | {3 * stored * 20 / 2**20:.0f} |")


if __name__ == "__main__":
    main()
