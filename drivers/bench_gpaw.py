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
    args = p.parse_args(argv)
    require_gpaw()
    from gpaw.mpi import world
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_gpaw_"))
    prim = bulk("Li", "bcc", a=3.44) if args.structure == "bcc-li" else load_structure(args.structure)
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


if __name__ == "__main__":
    main()
