#!/usr/bin/env python
"""Run every benchmark driver and assemble docs/benchmarks.md.

Each ``drivers/bench_<topic>.py`` measures one subsystem side by side (ratios in
one run, on one machine) and writes ``docs/benchmarks/<topic>.md``. This script
runs them (``--only topic`` to select) and concatenates the fragments under a
description of the machine.

    python drivers/run_benchmarks.py            # all
    python drivers/run_benchmarks.py --only eliashberg resolvent
    python drivers/run_benchmarks.py --assemble # only rebuild docs/benchmarks.md
"""
import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine_description() -> str:
    from spia_mpi.parallel import stack
    v = stack.versions()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem}; {platform.platform()}\n"
            f"- Python {v['python']}, numpy {v['numpy']}, scipy {v['scipy']}, "
            f"PETSc {v['petsc']} ({v.get('petsc_scalar', '?')}), SLEPc {v['slepc']}, "
            f"h5py {v['h5py']} (HDF5 {v.get('hdf5', '?')}), {v['mpi']}\n")


def assemble():
    parts = sorted((ROOT / "docs" / "benchmarks").glob("*.md"))
    text = ["# Benchmarks\n",
            "Measured with `make bench` (`drivers/run_benchmarks.py`); each section is produced by "
            "`drivers/bench_<topic>.py`, which compares alternatives side by side in one run and "
            "reports ratios. Absolute times depend on the machine; ratios much less so.\n",
            "## Machine\n", machine_description()]
    for p in parts:
        text.append(p.read_text().rstrip() + "\n")
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(text))
    print(f"wrote docs/benchmarks.md from {len(parts)} section(s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="topics to run (default: all)")
    ap.add_argument("--assemble", action="store_true", help="only rebuild docs/benchmarks.md")
    args = ap.parse_args()
    if not args.assemble:
        for script in sorted((ROOT / "drivers").glob("bench_*.py")):
            topic = script.stem[len("bench_"):]
            if args.only and topic not in args.only:
                continue
            print(f"== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=True, cwd=ROOT)
    assemble()


if __name__ == "__main__":
    main()
