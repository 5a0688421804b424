#!/usr/bin/env python
"""Benchmark: peak memory per rank of a `run` whose results are large (issue 17).

Rank 0 alone writes the results file (docs/benchmarks.md, "Writing the results file"), so
only rank 0 needs the q-resolved pair sums, their jackknife replicas and the binned
couplings; the other ranks need λ(m) and its replicas (every rank takes part in the T_c
solves). This driver runs the `run` command on a Holstein metal with many states and
q-points (6×6×6 supercell at K = Γ: 216 states, 216 q; 16 configuration blocks of one
sample × 4 beads, 3 γ; T_c without its jackknife errors) on 1 and 2 ranks, and reports each
rank's peak resident memory (VmHWM of /proc/self/status) after the imports and at the end of
the run, and the growth between the two (what the run itself added).

To compare two versions of the code, run it once per source tree (``--tree``: the folder
whose spia_mpi is imported, default this repository) and write the tables side by side:

  python drivers/bench_gather.py                       # this tree, 1 and 2 ranks → docs/benchmarks/gather.md
  python drivers/bench_gather.py --tree /path/to/old --label "before" --append
  python drivers/bench_gather.py --supercell 4 --blocks 4 --no-write   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks" / "gather.md"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--supercell", type=int, default=6, help="N: N×N×N Holstein supercell at K = Γ (N³ states)")
    p.add_argument("--blocks", type=int, default=16, help="configuration blocks (jackknife replicas), one sample each")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="rank counts to run")
    p.add_argument("--tree", default=str(ROOT), help="source tree whose spia_mpi is imported")
    p.add_argument("--label", default=None, help="name of the tree in the table (default: its git commit)")
    p.add_argument("--append", action="store_true", help="add the rows to the existing page instead of rewriting it")
    p.add_argument("--no-write", action="store_true", help="print the rows only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def input_toml(a) -> str:
    """The run's input: Holstein metal, N×N×N supercell at Γ, BSE, 3 γ."""
    return f"""
[model]
kind = "holstein"
[model.holstein]
coupling_ev_per_ang = 1.0
[supercell]
matrix = [{a.supercell}, {a.supercell}, {a.supercell}]
kpoints = [[0.0, 0.0, 0.0]]
[configurations]
source = "einstein"
[configurations.einstein]
hbar_omega_ev = 0.1
temperature_k = 300.0
n_samples = {a.blocks}
n_beads = 4
[spia]
matsubara_j = 4
states_per_k = 1
gamma_ev = [0.2, 0.4, 0.8]
n_blocks = {a.blocks}
resolvent = "dense"
fermi_level_ev = 0.0
[eliashberg]
mustar = [0.1]
tc_errors = false
[output]
file = "results.h5"
plots = false
"""


def vm_hwm_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(a):
    import logging

    import h5py  # noqa: F401 - the run's heavy imports happen before the first measurement
    from petsc4py import PETSc  # noqa: F401
    from spia_mpi.commands.run import execute
    from spia_mpi.eliashberg import linearised  # noqa: F401
    from spia_mpi.engine import workflow  # noqa: F401
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.parallel.mpi import world
    comm = world()
    logging.disable(logging.INFO)
    start = vm_hwm_mib()
    inp, folder = load_run_input(Path(a.folder) / "input.toml")
    t0 = time.perf_counter()
    execute(inp, folder, comm)
    wall = time.perf_counter() - t0
    rows = comm.gather((start, vm_hwm_mib()), root=0)
    if comm.rank == 0:
        (Path(a.folder) / "memory.json").write_text(json.dumps({"wall": wall, "ranks": rows}))


def measure(a, n: int) -> dict:
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "input.toml").write_text(input_toml(a))
        env = mpirun_env({**os.environ, "PYTHONPATH": a.tree, "H5PY_ALWAYS_USE_MPI": "1"})
        cmd = [*mpirun_prefix(), "-n", str(n), sys.executable, str(Path(__file__).resolve()), "--worker",
               "--folder", tmp, "--supercell", str(a.supercell), "--blocks", str(a.blocks)]
        subprocess.run(cmd, check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL)
        return json.loads((Path(tmp) / "memory.json").read_text())


def label_of(a) -> str:
    if a.label:
        return a.label
    try:
        return subprocess.run(["git", "-C", a.tree, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return a.tree


HEADER = """## Peak memory per rank of a run with large results (`drivers/bench_gather.py`)

`run` on a Holstein metal (one band, {n}×{n}×{n} supercell at K = Γ: {ns} states, {ns} q-points;
{b} configuration blocks of one sample × 4 beads, 3 γ, BSE, dense resolvents, T_c without jackknife errors). Peak resident memory
(VmHWM) of each rank after the imports and at the end of the run, and what the run added. Rank 0
alone writes the results file; since issue 17's gather step the per-q pair sums, their block
replicas and the binned couplings are gathered on rank 0 only (`comm.gather`), λ(m) and its
replicas (needed by every rank's T_c solves) are broadcast from there. Reproduce:
`python drivers/bench_gather.py` (this tree) and `--tree DIR --label NAME --append` for another
checkout.

| code | ranks | wall (s) | VmHWM after imports (MiB) per rank | VmHWM at the end (MiB) per rank | added by the run (MiB) per rank |
|---|---|---|---|---|---|
"""


def main():
    a = parse()
    if a.worker:
        sys.path.insert(0, a.tree)
        return worker(a)
    sys.path.insert(0, str(ROOT))
    rows = []
    for n in a.ranks:
        r = measure(a, n)
        start = " / ".join(f"{s:.0f}" for s, _ in r["ranks"])
        end = " / ".join(f"{e:.0f}" for _, e in r["ranks"])
        added = " / ".join(f"{e - s:.0f}" for s, e in r["ranks"])
        rows.append(f"| {label_of(a)} | {n} | {r['wall']:.1f} | {start} | {end} | {added} |")
        print(rows[-1], flush=True)
    if a.no_write:
        return
    text = OUT.read_text().rstrip("\n") + "\n" if a.append and OUT.exists() else \
        HEADER.format(n=a.supercell, ns=a.supercell ** 3, b=a.blocks)
    OUT.write_text(text + "\n".join(rows) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
