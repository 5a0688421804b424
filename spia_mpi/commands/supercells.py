"""``supercells``: irreducible q-points of a grid and minimal non-diagonal supercells covering them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "supercells"
HELP = "irreducible q of an n1×n2×n3 grid and the minimal (non-diagonal) supercells covering them"
ORDER = 30
NEEDS_MPI = False
DESCRIPTION = """\
Irreducible q-points of a Γ-centred q-grid (spglib symmetry, time reversal) and a
small set of supercells in Hermite normal form, each of the smallest size that
makes its q-points commensurate (Lloyd-Williams & Monserrat, PRB 92, 184301),
several q per supercell where possible. --structure takes any file ASE reads or a
shipped example: li2mgh16-solid, li2mgh16-superionic (Table S1 of the paper).

The q-grid refers to the reciprocal lattice of the cell given. A conventional
(non-primitive) cell gives another grid than the primitive cell (the paper's
convention): the command says so, and --primitive uses spglib's primitive cell.

  python -m spia_mpi supercells --structure li2mgh16-solid --qgrid 8 8 8 --out sc/
  python -m spia_mpi supercells --structure li2mgh16-solid-conventional --primitive --qgrid 4 4 4
"""


def add_arguments(p):
    p.add_argument("--structure", required=True, help="primitive structure file or shipped example name")
    p.add_argument("--qgrid", type=int, nargs=3, required=True, metavar=("N1", "N2", "N3"))
    p.add_argument("--symprec", type=float, default=1e-4, help="spglib tolerance (Å, default 1e-4)")
    p.add_argument("--primitive", action="store_true",
                   help="use spglib's primitive cell of the structure (the paper's convention for the q-grid)")
    p.add_argument("--out", help="write each supercell (POSCAR, extxyz, i-PI xyz) and summary.json here "
                                 "(without it nothing is written)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def reduced_matrix(matrix, primitive_cell) -> np.ndarray:
    """U·S with U unimodular such that the supercell vectors (U·S)·a are Minkowski-reduced and
    right-handed: the same supercell lattice (same q-points, same atoms) in its most compact cell."""
    from ase.geometry import minkowski_reduce
    S = np.asarray(matrix, int)
    _, op = minkowski_reduce(S @ np.asarray(primitive_cell, float))
    R = np.round(op).astype(int) @ S
    return -R if np.linalg.det(R) < 0 else R


def run(args, comm):
    from ase.geometry import cell_to_cellpar
    from spia_mpi.lattice import supercells as sc
    from spia_mpi.lattice.structures import load_structure
    if args.symprec <= 0:
        raise InputError(f"--symprec {args.symprec} must be positive")
    given = load_structure(args.structure)
    atoms = sc.primitive_cell(given, args.symprec)
    note = None
    if len(atoms) < len(given) and not args.primitive:
        note = (f"note: {args.structure} is not a primitive cell ({len(given)} atoms = {len(given) // len(atoms)} "
                f"primitive cells of {len(atoms)}): the q-grid below is that of this cell's reciprocal lattice; "
                f"add --primitive for the primitive cell's grid (the paper's convention)")
        atoms = given
    qg = sc.irreducible_qgrid(atoms, args.qgrid, symprec=args.symprec)
    cover = sc.covering_supercells(atoms, qg)
    reduced = [reduced_matrix(s.matrix, atoms.cell[:]) for s in cover]      # the matrices the runs use
    summary = {
        "structure": args.structure, "n_atoms_primitive": len(atoms), "spacegroup": qg.spacegroup,
        "cell": np.asarray(atoms.cell[:]).round(8).tolist(), "primitive_cell_used": len(atoms) < len(given),
        "note": note,
        "qgrid": list(map(int, args.qgrid)), "n_irreducible_q": int(len(qg.irreducible)),
        "irreducible_q": [{"q": q.round(10).tolist(), "weight": int(w)}
                          for q, w in zip(qg.irreducible_qpoints, qg.weights)],
        "supercells": [{"matrix": red.tolist(), "hnf_matrix": s.matrix.tolist(), "size": int(s.size),
                        "n_atoms": int(s.size * len(atoms)),
                        "qpoints": s.qpoints.round(10).tolist(),
                        "representatives": s.representatives.round(10).tolist(),
                        "irreducible_index": [int(i) for i in s.covers],
                        "reduced_cell": np.asarray(s.reduced_cell).round(6).tolist()}
                       for s, red in zip(cover, reduced)],
    }
    if args.out:
        import ase.io

        from spia_mpi.ions.configurations import write_ipi_frame
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for i, S in enumerate(reduced):
            atoms_sc = sc.species_grouped(sc.build_supercell(atoms, S)[0])
            stem = out / f"supercell_{i:02d}"
            ase.io.write(f"{stem}.vasp", atoms_sc, format="vasp", direct=True, parallel=False)
            ase.io.write(f"{stem}.extxyz", atoms_sc, format="extxyz", parallel=False)
            with open(f"{stem}.ipi.xyz", "w") as fh:     # i-PI init file, Å, CELL(abcABC)
                write_ipi_frame(fh, atoms_sc.get_chemical_symbols(), atoms_sc.positions, atoms_sc.cell[:])
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        if note:
            print(note)
        if len(atoms) < len(given):
            print(f"primitive cell of {args.structure} (spglib): {len(atoms)} of its {len(given)} atoms")
        print(f"{args.structure}: {len(atoms)} atoms, {qg.spacegroup}; q-grid {args.qgrid[0]}×{args.qgrid[1]}×"
              f"{args.qgrid[2]}: {len(qg.irreducible)} irreducible q, {len(cover)} supercells")
        for i, (s, S) in enumerate(zip(cover, reduced)):
            cell = np.asarray(S @ atoms.cell[:], float)
            par = np.round(cell_to_cellpar(cell), 1)
            print(f"  {i:2d}  size {s.size:3d} ({s.size * len(atoms)} atoms)  supercell.matrix = {S.tolist()}  "
                  f"(a b c = {par[0]:g} {par[1]:g} {par[2]:g} Å, α β γ = {par[3]:g} {par[4]:g} {par[5]:g}°)  "
                  f"q: {', '.join('(' + ' '.join(f'{x:.4g}' for x in q) + ')' for q in s.qpoints)}")
        if args.out:
            print(f"written to {args.out}: supercell_NN.vasp (POSCAR), supercell_NN.extxyz and supercell_NN.ipi.xyz "
                  f"(i-PI initial structure) for NN = 00 … {len(cover) - 1:02d}, and summary.json; run each with "
                  "the supercell.matrix above (Minkowski-reduced cell, same lattice as the HNF matrix in "
                  "summary.json) and supercell.kgrid = the q-grid; atoms are grouped by species (POSCAR "
                  "convention) in all three files, and `run` matches trajectories in that order to its own "
                  "atom order by position")
        else:
            print("no files written: give --out FOLDER for the POSCAR/extxyz/i-PI files of every supercell")
    return 0
