"""Benchmark: how should a results file be written by N ranks? (issue 17)

A results file of realistic size — n_states renormalised states (bands), n_q q-points,
n_blocks jackknife blocks, n_gamma widths, n_m Matsubara indices (pair sums per q and
their block replicas [block, gamma, q, m] dominate) — is written three ways on 1, 2, 4 ranks:

  collective  each rank holds only its own slice (its blocks, its states) and writes it as a
              hyperslab of the shared file (``mpio`` driver, ``dset.collective``);
  one-rank    the slices are gathered on rank 0, which writes the file with serial h5py;
              the others wait;
  replicated  what spia_mpi did before: every rank holds every full dataset and writes all
              of it through ``mpio`` (independent I/O).

Per mode: wall time of the write (best of --repeat, max over ranks; the content exists before
the clock starts) and the peak resident memory of each rank added by holding its part of the
result and writing it (VmHWM reset before the content is made). The three
files are compared byte for byte (datasets) so every mode writes the same thing.

  python drivers/bench_hdf5.py      # 10⁴ states, 10³ q, 64 blocks; 1, 2, 4 ranks → docs/benchmarks/hdf5.md
  python drivers/bench_hdf5.py --states 2000 --qpoints 100 --blocks 8 --ranks 1 2   # quick
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("collective", "one-rank", "replicated")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--states", type=int, default=10000, help="renormalised states (bands datasets)")
    p.add_argument("--qpoints", type=int, default=1000, help="q-points of the pair sums")
    p.add_argument("--blocks", type=int, default=64, help="jackknife blocks")
    p.add_argument("--gammas", type=int, default=3, help="Lorentzian widths")
    p.add_argument("--m", type=int, default=9, help="Matsubara indices m = 0 … N_b/2")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4], help="rank counts to run")
    p.add_argument("--repeat", type=int, default=3, help="repetitions per mode (best time reported)")
    p.add_argument("--folder", default=None, help="where the files are written (default: a temporary folder)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def layout(a):
    """Datasets of the file: name → (global shape, distributed axis, kind of that axis)."""
    g, q, m, b, s = a.gammas, a.qpoints, a.m, a.blocks, a.states
    return {"lambda_q/pair_sums_jackknife": ((b, g, q, m), 0),
            "lambda/lambda_m_jackknife": ((b, g, m), 0),
            "lambda_q/pair_sums": ((g, q, m), None),
            "lambda_q/lambda_qm": ((g, q, m), None),
            "bands/energies_eV": ((s, 1), 0),
            "bands/half_width_eV": ((s, 1), 0),
            "bands/reference_energies_eV": ((s, 1), 0),
            "bands/kpoints_frac": ((s, 3), 0)}


def _values(name, shape, lo, hi, axis):
    """Deterministic content of rows lo:hi (along ``axis``) of dataset ``name``."""
    if axis is None:
        lo, hi = 0, shape[0]
    rows = []
    for i in range(lo, hi):
        rows.append(np.random.default_rng(sum(map(ord, name)) * 100003 + i).normal(size=shape[1:]))
    return np.array(rows).reshape((hi - lo,) + tuple(shape[1:]))


def my_part(a, comm):
    """This rank's slice of every distributed dataset (replicated ones: on rank 0 only)."""
    from spia_mpi.parallel.mpi import partition
    part = {}
    for name, (shape, axis) in layout(a).items():
        if axis is None:
            part[name] = (0, _values(name, shape, 0, 0, None)) if comm.rank == 0 else None
        else:
            r = partition(shape[0], comm.size, comm.rank)
            part[name] = (r.start, _values(name, shape, r.start, r.stop, axis))
    return part


def whole(a):
    """Every full dataset (the replicated mode's holding)."""
    return {name: _values(name, shape, 0, shape[0], None) for name, (shape, axis) in layout(a).items()}


def write_collective(path, a, comm, part):
    from spia_mpi.io import hdf5
    with hdf5.open_h5(path, "w", comm) as f:
        for name, (shape, axis) in layout(a).items():
            ds = f.create_dataset(name, shape, dtype="f8")
            ds.attrs["units"] = "1"
            got = part[name]
            if axis is None:          # small and replicated in the real file: rank 0's copy, sent to all
                got = comm.bcast(got, root=0) if comm.size > 1 else got
            start, data = got
            sel = slice(start, start + data.shape[0])
            if comm.size > 1:
                with ds.collective:
                    ds[sel] = data
            else:
                ds[sel] = data


def write_one_rank(path, a, comm, part):
    from spia_mpi.io import hdf5
    gathered = {name: comm.gather(part[name], root=0) for name in layout(a)} if comm.size > 1 else \
        {name: [part[name]] for name in layout(a)}
    if comm.rank == 0:
        with hdf5.open_h5(path, "w", None) as f:
            for name, pieces in gathered.items():
                data = np.concatenate([p[1] for p in pieces if p is not None])
                hdf5.write_dataset(f.require_group(name.split("/")[0]), name.split("/")[1], data, "1")
    del gathered
    comm.Barrier()


def write_replicated(path, a, comm, full):
    from spia_mpi.io import hdf5
    with hdf5.open_h5(path, "w", comm) as f:
        for name, data in full.items():
            hdf5.write_dataset(f.require_group(name.split("/")[0]), name.split("/")[1], data, "1")


def _reset_peak_rss():
    """Reset this process's peak resident set (Linux VmHWM) so later peaks are measured alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _rss(field: str) -> float:
    """VmHWM or VmRSS of this process (MiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(a):
    from spia_mpi.parallel import stack
    from spia_mpi.parallel.mpi import world
    comm = world()
    stack.h5py(need_mpi=comm.size > 1)
    folder = Path(a.folder)
    out = {}
    for mode in MODES:
        times, peaks = [], []
        for rep in range(a.repeat):
            path = folder / f"{mode}_{comm.size}.h5"
            comm.Barrier()
            _reset_peak_rss()
            base = _rss("VmRSS")
            held = whole(a) if mode == "replicated" else my_part(a, comm)
            comm.Barrier()
            t0 = time.perf_counter()
            {"replicated": write_replicated, "collective": write_collective,
             "one-rank": write_one_rank}[mode](path, a, comm, held)
            comm.Barrier()
            times.append(comm.allreduce(time.perf_counter() - t0, op=_max()))
            peaks.append(_rss("VmHWM") - base)
            del held
        out[mode] = {"seconds": min(times), "peak_MiB_per_rank": comm.gather(max(peaks), root=0)}
    if comm.rank == 0:
        out["file_MiB"] = (folder / f"one-rank_{comm.size}.h5").stat().st_size / 2**20
        out["same_content"] = _same([folder / f"{m}_{comm.size}.h5" for m in MODES])
        Path(a.json).write_text(json.dumps(out))


def _max():
    from mpi4py import MPI
    return MPI.MAX


def _same(paths):
    import h5py
    files = [h5py.File(p, "r") for p in paths]
    names = []
    files[0].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    ok = all(np.array_equal(files[0][n][...], f[n][...]) for n in names for f in files[1:])
    for f in files:
        f.close()
    return ok


def main(argv=None):
    a = parse(argv)
    if a.worker:
        return worker(a)
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    folder = Path(a.folder or tempfile.mkdtemp(prefix="bench_hdf5_"))
    lines = ["## Writing the results file (`drivers/bench_hdf5.py`)", "",
             f"A results file of realistic size — {a.states} states, {a.qpoints} q-points, {a.blocks} jackknife "
             f"blocks, {a.gammas} γ, {a.m} Matsubara indices (the block replicas of the pair sums "
             "[block, γ, q, m] dominate) — written by N ranks three ways: *collective* (each rank holds only "
             "its blocks and states and writes them as hyperslabs through `mpio`, `dset.collective`), "
             "*one-rank* (the parts are gathered on rank 0, which writes with serial h5py; the others wait), "
             "*replicated* (every rank holds everything and writes every dataset through `mpio`: spia_mpi "
             f"before issue 17). Time of the write, best of {a.repeat}, max over ranks; peak memory added per "
             "rank by holding its part and writing it (VmHWM). 4 ranks on 2 cores are oversubscribed. "
             f"Reproduce: `python drivers/bench_hdf5.py` (files in a temporary folder).", "",
             "| ranks | file (MiB) | mode | time (s) | peak memory per rank (MiB) | time / one-rank |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    worst = {}
    for n in a.ranks:
        js = folder / f"bench_{n}.json"
        cmd = [*mpirun_prefix(), "-n", str(n), sys.executable, __file__, "--worker", "--json", str(js),
               "--folder", str(folder), "--states", str(a.states), "--qpoints", str(a.qpoints),
               "--blocks", str(a.blocks), "--gammas", str(a.gammas), "--m", str(a.m), "--repeat", str(a.repeat)]
        env = mpirun_env()
        env["H5PY_ALWAYS_USE_MPI"] = "1"
        subprocess.run(cmd, check=True, env=env)
        r = json.loads(js.read_text())
        if not r["same_content"]:
            raise SystemExit(f"the three files of {n} rank(s) differ")
        for mode in MODES:
            x = r[mode]
            row = (f"| {n} | {r['file_MiB']:.1f} | {mode} | {x['seconds']:.3f} | "
                   f"{' / '.join(f'{p:.0f}' for p in x['peak_MiB_per_rank'])} | "
                   f"{x['seconds'] / r['one-rank']['seconds']:.2g} |")
            lines.append(row)
            print(row, flush=True)
            w = worst.setdefault(mode, [0.0, 0.0])
            w[0], w[1] = max(w[0], x["seconds"]), max(w[1], max(x["peak_MiB_per_rank"]))
        for m in MODES:
            os.unlink(folder / f"{m}_{n}.h5")
    lines += ["", "Worst case over the rank counts: " + "; ".join(
        f"{m} {w[0]:.2f} s, {w[1]:.0f} MiB on one rank" for m, w in worst.items()) + ". The three files are "
        "identical (checked). Every way takes well under a second for a file of this size — nothing next to a "
        "run's resolvent stage (minutes to hours) — and the timings are at the noise level of this shared "
        "machine; the largest memory is rank 0's in *one-rank* (the gathered file plus the concatenation, "
        "≈ 2.5 × the file), tens of MiB next to a rank's PETSc working set of hundreds. So `run` writes its "
        "results file from rank 0 alone (`spia_mpi/io/results.py`): no collective HDF5 call, no requirement "
        "that every rank carry identical metadata, and a failure on one rank cannot hang the others in the "
        "file. Files that really are large — configurations of long PIMD runs (10⁵ frames × 304 atoms × 16 "
        "beads ≈ 12 GB) — are written collectively in per-rank slices instead (`sample convert` on several "
        "ranks, docs/configurations.md)."]
    if a.folder is None and a.states == 10000:
        (ROOT / "docs" / "benchmarks" / "hdf5.md").write_text("\n".join(lines) + "\n")
        print("wrote docs/benchmarks/hdf5.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
