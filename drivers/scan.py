#!/usr/bin/env python
"""Convergence scans from one TOML: run every parameter point, collect one table, plot.

scan.toml::

    base = "input.toml"              # a `spia_mpi run` input every point starts from
    out = "scan"                     # folder for inputs, results, table and figure
    ranks = 2                        # MPI ranks per point (mpirun); 1 = in-process launcher
    [parameters]                     # dotted input keys → values (Cartesian product)
    "configurations.einstein.n_beads" = [4, 8, 16]
    "spia.matsubara_j" = [8, 16]
    # any key of `spia_mpi run` (docs/input.md): numbers, strings, booleans and lists, e.g.
    # "supercell.kgrid" = [[2, 2, 2], [4, 4, 4]];  "spia.mode" = ["born", "bse"]

    python drivers/scan.py scan.toml               # run what is missing, then collect
    python drivers/scan.py scan.toml --collect     # only collect finished points

Each point is an ordinary `spia_mpi run` (checkpointed; finished points are skipped by
their complete results file, whose stored input must hold the point's parameter values —
results left from an edited scan description are reported as stale and not collected), so
the scan can also be submitted as a job array with jobscripts/make_task_list.py +
jobscripts/slurm/scan_array.sbatch and collected here.
Every generated input is validated first (the schema of `spia_mpi run`: a misspelled key
stops the scan before anything runs). A point whose run fails is reported with its error,
marked `failed` in the table (status column) and makes the driver exit with status 1.
Writes OUT/scan_table.csv (one row per point and γ: status, parameters, λ(0) ± σ, λ(1) ± σ, ω̄₂,
T_c ± σ for each μ*; one row with status "failed" and empty numbers per failed point), OUT/scan.h5 (the same as datasets; non-numeric parameter values as
compact JSON text) and OUT/scan_convergence.png (λ(0) and T_c versus the first parameter,
one curve per value of the others and γ; a categorical axis for non-numeric values).
"""
import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "jobscripts"))

from make_task_list import ScanError, expand  # noqa: E402


def canonical(v) -> str:
    """A hashable, canonical text of a parameter value (number, string, bool, nested list):
    compact JSON, so [2, 2, 2] and [2,2,2] are the same point and 'bse' stays "bse"."""
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def label(v) -> str:
    """Human-readable value for legends and tick labels: 0.1, bse, [2,2,2]."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v if isinstance(v, str) else canonical(v)
    return f"{v:g}"


def is_numeric(values) -> bool:
    """True when every value is a real number (not a bool, string or list): numeric x-axis."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def points(spec_path):
    return expand(spec_path, {"output.plots": False})


def complete(path):
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:
        return False


def same(a, b) -> bool:
    """Parameter values equal up to int/float and tuple/list spelling (3 == 3.0, (2,2,2) == [2,2,2])."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def status(res, params) -> str:
    """'missing' (no finished results), 'done', or 'stale': finished, but the input stored in
    the results file (/input.attrs['json']) holds other values of the scanned parameters
    (the scan description was edited after the point ran)."""
    import h5py
    if not complete(res):
        return "missing"
    with h5py.File(res, "r") as f:
        stored = json.loads(f["input"].attrs["json"])
    for name, value in params.items():
        node = stored
        for k in name.split("."):
            node = node.get(k, KeyError) if isinstance(node, dict) else KeyError
        if node is KeyError or not same(node, value):
            return "stale"
    return "done"


def run_point(inp, ranks):
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    cmd = [sys.executable, "-m", "spia_mpi", "-q", "run", str(inp)]
    if ranks > 1:
        cmd = [*mpirun_prefix(), "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, env=mpirun_env(), capture_output=True, text=True)
    if r.returncode != 0:
        print(f"point {inp.name} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
    return r.returncode == 0


def collect(out, names, pts, failed=()):
    """Table rows of the finished points (status "ok") and of the ``failed`` input paths."""
    import h5py
    rows = []
    for inp, res, params in pts:
        if inp in failed:
            rows.append(dict(params, point=inp.stem, status="failed"))
            continue
        st = status(res, params)
        if st != "done":
            if st == "stale":
                print(f"{inp.name}: not collected: {res.name} was computed with other parameter values "
                      f"than {params} (delete it and its .ckpt folder to rerun)", file=sys.stderr)
            continue
        with h5py.File(res, "r") as f:
            lam, err = f["lambda/lambda_m"][...], f["lambda/lambda_m_error"][...]
            gam, w2 = f["lambda/gamma_eV"][...], f["lambda/omega2_eV"][...]
            tc, mus = f["eliashberg/tc_K"][...], f["eliashberg/mustar"][...]
            tce = f["eliashberg/tc_K_error"][...] if "tc_K_error" in f["eliashberg"] else np.full(tc.shape, np.nan)
        for ig, g in enumerate(gam):
            row = dict(params, point=inp.stem, status="ok", gamma_eV=g, lambda0=lam[ig, 0], lambda0_err=err[ig, 0],
                       lambda1=lam[ig, 1], lambda1_err=err[ig, 1], omega2_eV=w2[ig])
            for mu, t, e in zip(mus, tc[ig], tce[ig]):
                row[f"tc_K_mustar_{mu:g}"] = t
                row[f"tc_K_err_mustar_{mu:g}"] = e
            rows.append(row)
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        print("no finished points")
        if not rows:
            return rows
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "scan_table.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows({k: canonical(v) if isinstance(v, (list, tuple)) else v for k, v in r.items()} for r in rows)
    if not ok:
        return rows
    with h5py.File(out / "scan.h5", "w") as f:
        for k in keys:
            vals = [r.get(k, np.nan) for r in ok]
            if is_numeric(vals):
                f.create_dataset(k, data=np.array(vals, dtype=float))
            else:   # strings, bools, lists (k-grids, supercell matrices): canonical JSON text
                f.create_dataset(k, data=np.array([v if isinstance(v, str) else canonical(v) for v in vals],
                                                  dtype=h5py.string_dtype()))
    plot(out, names, ok)
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={label(v)}" for k, v in r.items()))
    print(f"table: {out / 'scan_table.csv'}; figure: {out / 'scan_convergence.png'}")
    return rows


def plot(out, names, rows):
    """Write OUT/scan_convergence.png; returns the x tick labels of a categorical axis ([] if numeric)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    first = names[0]
    others = names[1:]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    # x-axis: numeric values as they are; anything else (strings, lists) categorical, in the
    # order the values first appear (the order of the scan's list)
    numeric = is_numeric([r[first] for r in rows])
    categories = list(dict.fromkeys(canonical(r[first]) for r in rows))
    xpos = (lambda v: v) if numeric else (lambda v: categories.index(canonical(v)))  # noqa: E731
    groups, shown = {}, {}
    for r in rows:       # curves: one per combination of the other parameters and γ
        key = tuple(canonical(r[n]) for n in others) + (canonical(float(r["gamma_eV"])),)
        groups.setdefault(key, []).append(r)
        shown[key] = [(n, r[n]) for n in others] + [("γ", float(r["gamma_eV"]))]
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: xpos(r[first]))
        x = [xpos(r[first]) for r in rs]
        text = ", ".join(f"{n.split('.')[-1]}={label(v)}" for n, v in shown[key])
        ax[0].errorbar(x, [r["lambda0"] for r in rs], yerr=[r["lambda0_err"] for r in rs], fmt="o-", ms=4,
                       capsize=2, label=text)
        tck = [k for k in rs[0] if k.startswith("tc_K_mustar")]
        if tck:
            tce = tck[0].replace("tc_K_mustar", "tc_K_err_mustar")
            yerr = [r.get(tce, np.nan) for r in rs]
            yerr = [e if np.isfinite(e) else 0.0 for e in yerr]
            ax[1].errorbar(x, [r[tck[0]] for r in rs], yerr=yerr, fmt="s-", ms=4, capsize=2, label=text)
    if not numeric:
        for a in ax:
            a.set_xticks(range(len(categories)))
            a.set_xticklabels([label(json.loads(c)) for c in categories], rotation=20 if len(categories) > 4 else 0)
            a.set_xlim(-0.5, len(categories) - 0.5)
    ax[0].set_xlabel(first)
    ax[0].set_ylabel("λ(0)")
    ax[1].set_xlabel(first)
    ax[1].set_ylabel("T_c (K), first μ*")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scan_convergence.png", dpi=110)
    plt.close(fig)
    return [] if numeric else [label(json.loads(c)) for c in categories]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("spec")
    ap.add_argument("--collect", action="store_true", help="only collect finished points")
    args = ap.parse_args()
    try:
        spec, out, names, pts = points(args.spec)
    except ScanError as exc:
        print(f"scan: error: {exc}", file=sys.stderr)
        return 2
    failed = set()
    if not args.collect:
        for inp, res, params in pts:
            st = status(res, params)
            if st != "missing":
                print(f"{inp.name}: {'done' if st == 'done' else 'stale results, not rerun'}")
                continue
            print(f"{inp.name}: running {params}", flush=True)
            if not run_point(inp, int(spec.get("ranks", 1))):
                failed.add(inp)
    collect(out, names, pts, failed)
    if failed:
        print(f"scan: {len(failed)} of {len(pts)} point(s) failed: {', '.join(sorted(p.name for p in failed))} "
              "(status 'failed' in the table)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
