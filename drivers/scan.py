#!/usr/bin/env python
"""Convergence scans from one TOML: run every parameter point, collect one table, plot.

scan.toml::

    base = "input.toml"              # a `spia_mpi run` input every point starts from
    out = "scan"                     # folder for inputs, results, table and figure
    ranks = 2                        # MPI ranks per point (mpirun); 1 = in-process launcher
    [parameters]                     # dotted input keys → values (Cartesian product)
    "configurations.einstein.n_beads" = [4, 8, 16]
    "spia.matsubara_j" = [8, 16]

    python drivers/scan.py scan.toml               # run what is missing, then collect
    python drivers/scan.py scan.toml --collect     # only collect finished points

Each point is an ordinary `spia_mpi run` (checkpointed; finished points are skipped by
their complete results file), so the scan can also be submitted as a job array with
jobscripts/make_task_list.py + jobscripts/slurm/scan_array.sbatch and collected here.
Writes OUT/scan_table.csv (one row per point and γ: parameters, λ(0) ± σ, λ(1) ± σ, ω̄₂,
T_c for each μ*), OUT/scan.h5 (the same as datasets) and OUT/scan_convergence.png.
"""
import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "jobscripts"))

from make_task_list import expand  # noqa: E402


def points(spec_path):
    return expand(spec_path, {"output.plots": False})


def complete(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:
        return False


def run_point(inp, ranks):
    from spia_mpi.parallel import mpirun_env, mpirun_prefix
    cmd = [sys.executable, "-m", "spia_mpi", "-q", "run", str(inp)]
    if ranks > 1:
        cmd = [*mpirun_prefix(), "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, env=mpirun_env(), capture_output=True, text=True)
    if r.returncode != 0:
        print(f"point {inp.name} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
    return r.returncode == 0


def collect(out, names, pts):
    import h5py
    rows = []
    for inp, res, params in pts:
        if not complete(res):
            continue
        with h5py.File(res, "r") as f:
            lam, err = f["lambda/lambda_m"][...], f["lambda/lambda_m_error"][...]
            gam, w2 = f["lambda/gamma_eV"][...], f["lambda/omega2_eV"][...]
            tc, mus = f["eliashberg/tc_K"][...], f["eliashberg/mustar"][...]
        for ig, g in enumerate(gam):
            row = dict(params, point=inp.stem, gamma_eV=g, lambda0=lam[ig, 0], lambda0_err=err[ig, 0],
                       lambda1=lam[ig, 1], lambda1_err=err[ig, 1], omega2_eV=w2[ig])
            for mu, t in zip(mus, tc[ig]):
                row[f"tc_K_mustar_{mu:g}"] = t
            rows.append(row)
    if not rows:
        print("no finished points")
        return rows
    keys = list(rows[0])
    with open(out / "scan_table.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    with h5py.File(out / "scan.h5", "w") as f:
        for k in keys:
            vals = [r[k] for r in rows]
            f.create_dataset(k, data=np.array(vals, dtype=object if isinstance(vals[0], str) else float)
                             if not isinstance(vals[0], str) else np.array(vals, dtype="S"))
    plot(out, names, rows)
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    print(f"table: {out / 'scan_table.csv'}; figure: {out / 'scan_convergence.png'}")
    return rows


def plot(out, names, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    first = names[0]
    others = names[1:]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    groups = {}
    for r in rows:
        groups.setdefault(tuple((n, r[n]) for n in others) + (("γ", r["gamma_eV"]),), []).append(r)
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r[first])
        x = [r[first] for r in rs]
        label = ", ".join(f"{n.split('.')[-1]}={v:g}" for n, v in key)
        ax[0].errorbar(x, [r["lambda0"] for r in rs], yerr=[r["lambda0_err"] for r in rs], fmt="o-", ms=4,
                       capsize=2, label=label)
        tck = [k for k in rs[0] if k.startswith("tc_K")]
        if tck:
            ax[1].plot(x, [r[tck[0]] for r in rs], "s-", ms=4, label=label)
    ax[0].set_xlabel(first)
    ax[0].set_ylabel("λ(0)")
    ax[1].set_xlabel(first)
    ax[1].set_ylabel("T_c (K), first μ*")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scan_convergence.png", dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--collect", action="store_true", help="only collect finished points")
    args = ap.parse_args()
    spec, out, names, pts = points(args.spec)
    if not args.collect:
        for inp, res, params in pts:
            if complete(res):
                print(f"{inp.name}: done")
                continue
            print(f"{inp.name}: running {params}", flush=True)
            run_point(inp, int(spec.get("ranks", 1)))
    collect(out, names, pts)


if __name__ == "__main__":
    main()
