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
before and after the bead, the non-zero fractions. Then the projected resolvents of the reference
states (those within ±2 eV of ε_F, or with ``--states N`` the lowest N per primitive k) at
z = ε_F + iη (J = 16, 300 K: η = 2.7 eV) are solved and timed, with the peak RSS increment of each
solve (VmHWM reset before it, so LAPACK/MUMPS/ScaLAPACK memory counts): ``dense`` — LAPACK LU of
the dense matrices on every rank (the reference g, saved with the states P as ``g_lapack_<ranks>.npz``) and PETSc's
direct LU (``--packages``, default MUMPS and ScaLAPACK; the GPAW model's default resolvent,
spia_mpi/engine/direct.py) of the dense-converted AIJ; ``sparse`` — the direct LU of the sparse
rows for the dense run's P (degenerate reference states are only defined up to a unitary), compared
with the dense run's g. Run the two modes as separate processes (VmHWM is per
process), reusing one reference file:

    mpirun -n 2 python drivers/bench_gpaw.py li2mgh16-solid 1 1 1 --matrix 1 1 0 0 1 0 0 0 2 \
        --workdir W --aij dense --states 40
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
    p.add_argument("--states", type=int, default=None,
                   help="--aij: the lowest STATES reference states per primitive k as right-hand sides (default: "
                        "the states within ±2 eV of ε_F)")
    p.add_argument("--packages", nargs="+", default=["mumps", "scalapack"],
                   help="--aij: LU packages of the PETSc direct resolvent to time")
    p.add_argument("--option", nargs="*", default=[], metavar="KEY=VALUE",
                   help="--aij: extra resolvent options, e.g. mat_mumps_icntl_20=10 (MUMPS' distributed right-hand "
                        "sides: segfaults on 2 ranks here, spia_mpi/engine/direct.py)")
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
    return _status_mib("VmHWM")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measured(fn, *args):
    """fn(*args), its wall seconds and its peak RSS increment (MiB: VmHWM reset to the current RSS by
    /proc/self/clear_refs before, minus that RSS) — memory of C libraries (LAPACK, MUMPS, ScaLAPACK) included."""
    Path("/proc/self/clear_refs").write_text("5")
    rss = _status_mib("VmRSS")
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0, vm_hwm_mib() - rss


def aij_memory(prim, args, world, work):
    """``--aij``: one frozen bead at Γ, dense or row-distributed sparse, on one group of all ranks."""
    import tracemalloc
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
    ref = model.reference_states([0, 0, 0], args.states or int(model._prim_offsets[-1]))
    window = (np.ones(ref.energies.size, bool) if args.states
              else np.abs(ref.energies - model.fermi_level_ev) < 2.0)
    p = ref.vectors[:, window]
    reference = work / f"g_lapack_{comm.size}.npz"
    if sparse and reference.exists():       # the dense run's states: degenerate ones may differ by a unitary
        p = np.load(reference)["p"]
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
    hwm_after = vm_hwm_mib()
    z = model.fermi_level_ev + 1j * matsubara_eta(16, 300.0)      # the example's J = 16 at 300 K (η = 2.7 eV)
    solves = {}                     # name -> (g, wall s, peak RSS increment MiB) on this rank
    if not sparse:                  # LAPACK on this rank's full dense matrices: the reference g
        h, s, q_dense = model.projected_problem_dense(pos, [0, 0, 0], p)
        solves["dense LAPACK LU"] = measured(projected_resolvent_dense, h, z, q_dense, s)
    for package in args.packages:   # the GPAW model's default PETSc resolvent: one distributed LU
        solver = ResolventSolver(comm, {"pc_factor_mat_solver_type": package,
                                        **dict(o.split("=", 1) for o in args.option)})
        g, t, mem = measured(solver.solve, hp, z, q, model.resolvent_preconditioner([0, 0, 0]), None, sp)
        solves[f"PETSc direct LU ({package})"] = (g[0], t, mem)
    hp.destroy(), sp.destroy()
    stats = comm.gather((r1 - r0, wall, cpu, density, stored, traced_peak, hwm_before, hwm_after), root=0)
    timing = comm.gather({k: v[1:] for k, v in solves.items()}, root=0)
    fraction = model.nonzero_fraction if sparse else None
    if comm.rank != 0:
        return
    if not sparse:
        np.savez(reference, g=solves["dense LAPACK LU"][0], p=p)
    lapack = np.load(reference)["g"] if reference.exists() else None
    scale = np.abs(lapack).max() if lapack is not None else float("nan")
    print(f"{args.structure} supercell {args.supercell}: {len(model.atoms)} atoms, {model.n_basis} orbitals, "
          f"K = Γ, frozen, {comm.size} rank(s) in one group, mode {args.aij}; prepare (reference reused) "
          f"{t_prepare:.0f} s wall; z = ε_F + {z.imag:.2f}i eV; {p.shape[1]} states (right-hand sides); "
          f"max |g| = {scale:.3e}"
          + (f"; non-zero fractions H, S, X† = {', '.join(f'{f:.3f}' for f in fraction)}" if sparse else ""))
    print("| mode | rank | rows | GPAW density wall / CPU (s) | H, S, X build + AIJ wall / CPU (s) | "
          "stored H, S, X (MiB) | tracemalloc peak of the build (MiB) | VmHWM before / after the bead (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for rank, (n_rows, w, c, (dw, dc), st, tp, hb, ha) in enumerate(stats):
        print(f"| {args.aij} | {rank} | {n_rows} | {dw:.1f} / {dc:.1f} | {w - dw:.1f} / {c - dc:.1f} | "
              f"{st / 2**20:.2f} | {tp / 2**20:.1f} | {hb:.0f} / {ha:.0f} |")
    print(f"\n| matrices | ranks | solver | wall (s) per rank | peak RSS increment (MiB) per rank | "
          f"max abs g − g(dense LAPACK, {comm.size} rank(s)) |\n|---|---|---|---|---|---|")
    for name, (g, _, _) in solves.items():
        diff = np.abs(g - lapack).max() if lapack is not None else float("nan")
        print(f"| {'sparse rows' if sparse else 'dense'} | {comm.size} | {name} | "
              f"{' / '.join(f'{r[name][0]:.2f}' for r in timing)} | {' / '.join(f'{r[name][1]:.1f}' for r in timing)} | "
              f"{diff:.1e} |")


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
