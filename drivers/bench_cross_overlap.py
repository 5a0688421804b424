#!/usr/bin/env python
"""Benchmark: the dense PAW cross overlap X(R⁽⁰⁾, R) (spia_mpi/models/paw_overlap.cross_overlap) per build.

For each system — bcc Li 2×1×1 (K = 0, ½, ¼), the tutorial's bcc Li 2×2×2 (K = 0, ½) and the 76-atom
Li₂MgH₁₆ cell (primitive × [[1,1,0],[0,1,0],[0,0,2]], Γ) — one configuration displaced from the
reference (Gaussian, fixed seed; atom 0 moved across the cell faces) and the CPU seconds of building
X, median of ``--repeats``, one rank with one BLAS thread (as an MPI rank per core), no SCF (GPAW's
setups and basis only). Prints a markdown row per system.

With ``--against FILE`` (an earlier paw_overlap.py, e.g. ``git show 46912a8:spia_mpi/models/paw_overlap.py``)
it builds X with both, alternating, and prints both times and max |X − X_earlier| (also at R = R⁽⁰⁾):

    python drivers/bench_cross_overlap.py --against /tmp/paw_overlap_46912a8.py --repeats 5
"""
import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                        # before numpy loads: one BLAS thread per process

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ase.build import bulk, make_supercell  # noqa: E402
from ase.units import Bohr  # noqa: E402

from spia_mpi.lattice.structures import load_structure  # noqa: E402
from spia_mpi.models import paw_overlap  # noqa: E402
from spia_mpi.models.gpaw import require_gpaw  # noqa: E402

SYSTEMS = ("li-2", "li-8", "li2mgh16-76")


def system(name):
    """(atoms, K list, displacement σ in Å)."""
    if name == "li2mgh16-76":
        return make_supercell(load_structure("li2mgh16-solid"), [[1, 1, 0], [0, 1, 0], [0, 0, 2]]), [[0, 0, 0]], 0.08
    li = bulk("Li", "bcc", a=3.44)
    if name == "li-2":
        return li.repeat((2, 1, 1)), [[0, 0, 0], [0.5, 0, 0], [0.25, 0, 0]], 0.1
    return li.repeat((2, 2, 2)), [[0, 0, 0], [0.5, 0, 0]], 0.1


def load_module(path):
    spec = importlib.util.spec_from_file_location("paw_overlap_earlier", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                      # its dataclasses need their module registered
    spec.loader.exec_module(module)
    return module


def measure(name, repeats, earlier):
    from gpaw import GPAW
    atoms, kpts, sigma = system(name)
    calc = GPAW(mode="lcao", basis="dzp", xc="PBE", h=0.3, kpts=(1, 1, 1), txt=None, symmetry="off")
    calc.initialize(atoms)
    setups = calc.wfs.setups
    cell, pbc = np.asarray(atoms.cell[:], float) / Bohr, np.ones(3, bool)
    spos_ref = atoms.get_scaled_positions() % 1.0
    moved = atoms.copy()
    moved.positions += sigma * np.random.default_rng(7).standard_normal(moved.positions.shape)
    moved.positions[0] -= 0.2                               # atom 0 (at the origin) crosses the cell faces
    spos = moved.get_scaled_positions() % 1.0
    expansions, spheres = paw_overlap.tci_expansions(setups), paw_overlap.sphere_data(setups)
    kpts = np.asarray(kpts, float)
    modules = {"now": paw_overlap, **({"earlier": earlier} if earlier else {})}
    seconds, x = {k: [] for k in modules}, {}
    for r in range(repeats):
        for label in (list(modules) if r % 2 == 0 else list(modules)[::-1]):
            t0 = time.process_time()
            x[label] = modules[label].cross_overlap(setups, cell, pbc, spos_ref, spos, kpts, expansions, spheres)
            seconds[label].append(time.process_time() - t0)
    row = f"| {name} | {len(atoms)} | {x['now'].shape[-1]} | {len(kpts)} | {np.median(seconds['now']):.3f} |"
    if earlier:
        at_ref = [m.cross_overlap(setups, cell, pbc, spos_ref, spos_ref, kpts, expansions, spheres)
                  for m in (paw_overlap, earlier)]
        row += (f" {np.median(seconds['earlier']):.3f} | {np.abs(x['now'] - x['earlier']).max():.1e} |"
                f" {np.abs(at_ref[0] - at_ref[1]).max():.1e} |")
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--against", type=Path, help="an earlier paw_overlap.py to compare with")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cross_overlap.md")
    args = p.parse_args(argv)
    require_gpaw()
    earlier = load_module(args.against) if args.against else None
    head = "| system | atoms | orbitals | K | X CPU s (median) |"
    if earlier:
        head += " earlier X CPU s | max abs(X − X_earlier) | same at R = R⁽⁰⁾ |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    load = os.getloadavg()[0]
    for name in args.systems:
        lines.append(measure(name, args.repeats, earlier))
        print(lines[-1], flush=True)
    command = " ".join(["python drivers/bench_cross_overlap.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.write_text(SECTION.format(command=command, repeats=args.repeats, load=load,
                                       date=time.strftime("%d %b %Y %H:%M UTC", time.gmtime()),
                                       comparison=COMPARISON if earlier else "",
                                       table="\n".join(lines)))
    print(f"wrote {args.out}")


SECTION = """## PAW cross overlap X: dense build (`drivers/bench_cross_overlap.py`)

The dense X(R⁽⁰⁾, R) of `spia_mpi.models.paw_overlap.cross_overlap` (the `frozen`/`scf` bead's
"cross overlaps" stage below the row-distributed threshold) for one displaced configuration, CPU
seconds per build, median of {repeats} alternated builds, one rank, one BLAS thread, load ≈ {load:.1f},
{date}:

    {command}
{comparison}
{table}
"""
COMPARISON = """
Side by side with the earlier paw_overlap.py given as `--against` (session 6: the
separately written einsum form of 46912a8, `git show 46912a8:spia_mpi/models/paw_overlap.py`, against
the single term list `adjoint_terms` evaluated through `gpaw_sparse.projector_rows` for a block of
every atom).
"""


if __name__ == "__main__":
    main()
