#!/usr/bin/env python
"""Write the shipped Li2MgH16 structures (Table S1) to spia_mpi/data/ as extxyz and POSCAR."""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ase.io  # noqa: E402

from spia_mpi.lattice.structures import EXAMPLES  # noqa: E402


def main():
    out = ROOT / "spia_mpi" / "data"
    for name, build in EXAMPLES.items():
        atoms = build()
        ase.io.write(out / f"{name}.extxyz", atoms, format="extxyz", parallel=False)
        ase.io.write(out / f"{name}.vasp", atoms, format="vasp", direct=True, sort=False, parallel=False)
        print(name, len(atoms))


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
