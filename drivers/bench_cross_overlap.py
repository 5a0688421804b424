#!/usr/bin/env python
"""Benchmark: the PAW cross overlap X(R⁽⁰⁾, R) — the dense build and the row-distributed projector terms.

For each system — bcc Li 2×1×1 (K = 0, ½, ¼), the tutorial's bcc Li 2×2×2 (K = 0, ½) and the 76-atom
Li₂MgH₁₆ cell (primitive × [[1,1,0],[0,1,0],[0,0,2]], Γ) — one configuration displaced from the
reference (Gaussian, fixed seed; atom 0 moved across the cell faces), one rank with one BLAS thread (as
an MPI rank per core), no SCF (GPAW's setups and basis only): the CPU seconds (median of
``--repeats``) of the dense X (spia_mpi/models/paw_overlap.cross_overlap) and of the projector rows
of H, S and X† of rank 0 of a 2-rank group (gpaw_sparse.projector_rows). Writes
docs/benchmarks/cross_overlap.md (``--out``) and prints the table rows.

With ``--against FILE`` (an earlier paw_overlap.py) it builds X with both, alternating, and reports
both times and max |X − X_earlier| (also at R = R⁽⁰⁾); with ``--against-rows FILE`` (an earlier
gpaw_sparse.py) the same for the projector rows:

    git show 46912a8:spia_mpi/models/paw_overlap.py > /tmp/paw_overlap_46912a8.py
    git show 46912a8:spia_mpi/models/gpaw_sparse.py > /tmp/gpaw_sparse_46912a8.py
    python drivers/bench_cross_overlap.py --against /tmp/paw_overlap_46912a8.py \
        --against-rows /tmp/gpaw_sparse_46912a8.py --repeats 5
"""
import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                        # before numpy loads: one BLAS thread per process

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ase.build import bulk, make_supercell  # noqa: E402
from ase.units import Bohr  # noqa: E402

from spia_mpi.lattice.structures import load_structure  # noqa: E402
from spia_mpi.models import gpaw_sparse as gs, paw_overlap  # noqa: E402
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


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                      # its dataclasses need their module registered
    spec.loader.exec_module(module)
    return module


def prepare(name) -> SimpleNamespace:
    """GPAW's setups of the system (no SCF), its reference and displaced scaled positions, the expansions."""
    from gpaw import GPAW
    atoms, kpts, sigma = system(name)
    calc = GPAW(mode="lcao", basis="dzp", xc="PBE", h=0.3, kpts=(1, 1, 1), txt=None, symmetry="off")
    calc.initialize(atoms)
    setups = calc.wfs.setups
    moved = atoms.copy()
    moved.positions += sigma * np.random.default_rng(7).standard_normal(moved.positions.shape)
    moved.positions[0] -= 0.2                               # atom 0 (at the origin) crosses the cell faces
    return SimpleNamespace(name=name, setups=setups, cell=np.asarray(atoms.cell[:], float) / Bohr,
                           pbc=np.ones(3, bool), spos_ref=atoms.get_scaled_positions() % 1.0,
                           spos=moved.get_scaled_positions() % 1.0, kpts=np.asarray(kpts, float),
                           expansions=paw_overlap.tci_expansions(setups), spheres=paw_overlap.sphere_data(setups))


def alternated(builds: dict, repeats: int) -> tuple:
    """({label: result}, {label: median CPU s}) of the builds run in alternating order."""
    seconds, out = {k: [] for k in builds}, {}
    for r in range(repeats):
        for label in (list(builds) if r % 2 == 0 else list(builds)[::-1]):
            t0 = time.process_time()
            out[label] = builds[label]()
            seconds[label].append(time.process_time() - t0)
    return out, {k: float(np.median(v)) for k, v in seconds.items()}


def dense_row(st, repeats, earlier) -> str:
    """Table row: the dense X (and the earlier paw_overlap.py's, with max differences)."""
    def build(module, spos):
        return lambda: module.cross_overlap(st.setups, st.cell, st.pbc, st.spos_ref, spos, st.kpts, st.expansions,
                                            st.spheres)
    modules = {"now": paw_overlap, **({"earlier": earlier} if earlier else {})}
    x, sec = alternated({k: build(m, st.spos) for k, m in modules.items()}, repeats)
    row = f"| {st.name} | {len(st.setups)} | {x['now'].shape[-1]} | {len(st.kpts)} | {sec['now']:.3f} |"
    if earlier:
        at_ref = [build(m, st.spos_ref)() for m in (paw_overlap, earlier)]
        row += (f" {sec['earlier']:.3f} | {np.abs(x['now'] - x['earlier']).max():.1e} |"
                f" {np.abs(at_ref[0] - at_ref[1]).max():.1e} |")
    return row


def rows_row(st, repeats, earlier) -> str:
    """Table row: the row-distributed path's projector rows of rank 0 of 2 (H, S and X† terms, ΔS standing in
    for ΔH: no SCF), with an earlier gpaw_sparse.py's ``projector_rows`` on the same terms."""
    tci, tci_s = paw_overlap.calculators(st.expansions, st.spheres, st.cell, st.pbc, st.spos_ref, st.spos, st.kpts)
    offsets = paw_overlap.orbital_offsets(st.setups)
    d_s = gs.one_centre_pairs([np.asarray(s.dO_ii) for s in st.setups])
    terms = [(0, d_s), (0, d_s), paw_overlap.adjoint_terms(st.spheres, tci_s, len(st.setups))]
    block = gs.atom_row_blocks(offsets, 2)[0]
    modules = {"now": gs, **({"earlier": earlier} if earlier else {})}
    rows, sec = alternated({k: (lambda m=m: m.projector_rows(tci, offsets, block, terms)) for k, m in modules.items()},
                           repeats)
    row = f"| {st.name} | {len(block.rows)} of {offsets[-1]} | {sec['now']:.3f} |"
    if earlier:
        diff = max(abs(a - b).max() for now, old in zip(rows["now"], rows["earlier"]) for a, b in zip(now, old))
        row += f" {sec['earlier']:.3f} | {diff:.1e} |"
    return row


def table(head: str, rows: list) -> str:
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1), *rows])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--against", type=Path, help="an earlier paw_overlap.py to compare the dense X with")
    p.add_argument("--against-rows", type=Path, help="an earlier gpaw_sparse.py to compare the projector rows with")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "cross_overlap.md")
    args = p.parse_args(argv)
    require_gpaw()
    earlier = load_module(args.against, "paw_overlap_earlier") if args.against else None
    earlier_rows = load_module(args.against_rows, "gpaw_sparse_earlier") if args.against_rows else None
    load = os.getloadavg()[0]
    dense, sparse = [], []
    for name in args.systems:
        st = prepare(name)
        dense.append(dense_row(st, args.repeats, earlier))
        sparse.append(rows_row(st, args.repeats, earlier_rows))
        print(dense[-1], sparse[-1], sep="\n", flush=True)
    dense_head = "| system | atoms | orbitals | K | X CPU s (median) |" + (
        " earlier X CPU s | max abs(X − X_earlier) | same at R = R⁽⁰⁾ |" if earlier else "")
    rows_head = "| system | rows (rank 0 of 2) | projector rows CPU s (median) |" + (
        " earlier CPU s | max abs difference |" if earlier_rows else "")
    command = " ".join(["python drivers/bench_cross_overlap.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.write_text(SECTION.format(
        command=command, repeats=args.repeats, load=load, date=time.strftime("%d %b %Y %H:%M UTC", time.gmtime()),
        comparison=COMPARISON if earlier else "", dense=table(dense_head, dense),
        rows_comparison=ROWS_COMPARISON if earlier_rows else "", rows=table(rows_head, sparse)))
    print(f"wrote {args.out}")


SECTION = """## PAW cross overlap X: dense build and row-distributed terms (`drivers/bench_cross_overlap.py`)

One displaced configuration of each system, CPU seconds per build, median of {repeats} alternated
builds, one rank, one BLAS thread, load ≈ {load:.1f}, {date}:

    {command}

The dense X(R⁽⁰⁾, R) of `spia_mpi.models.paw_overlap.cross_overlap` (the `frozen`/`scf` bead's
"cross overlaps" stage below the row-distributed threshold).{comparison}

{dense}

The row-distributed path's PAW projector terms of H, S and X† for the rows of rank 0 of a 2-rank group
(`gpaw_sparse.projector_rows` on the rank's atom block, with ΔS in place of ΔH: no SCF here).{rows_comparison}

{rows}
"""
COMPARISON = """
Side by side with the earlier paw_overlap.py given as `--against` (session 6: the separately written einsum form of 46912a8,
`git show 46912a8:spia_mpi/models/paw_overlap.py`, against the single term list `adjoint_terms`
evaluated through `gpaw_sparse.projector_rows` for a block of every atom)."""
ROWS_COMPARISON = """
Side by side with the earlier gpaw_sparse.py given as `--against-rows` (session 6: `git show 46912a8:spia_mpi/models/gpaw_sparse.py`, which re-evaluated a
column projector's projections for every row projector paired with it, against the same terms with
each column projection evaluated once and kept from its first to its last use)."""


if __name__ == "__main__":
    main()
