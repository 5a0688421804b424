#!/usr/bin/env python
"""Are the jackknife error bars of λ(m) honest? A study over independent seeds.

The shipped Holstein input (spia_mpi/data/demo.toml — the tutorial's: g = 3.5 eV/Å,
ħΩ = 0.1 eV, M = 1 amu, 300 K, 16 beads, 96 samples, 4×4×4 supercell, 2 K-points) is run
for N seeds; each seed's resolvents are computed once and reused (shared checkpoint) for
every mode (born, bse) and number of blocks (8, 32). For every run and every m, γ:

    z = (λ(m) − λ_exact(m)) / σ(m),     λ_exact(m) = N_γ g² / (M (Ω² + Ω_m²))

(the exact harmonic Born limit at the bead frequencies Ω_m = 2N_b k_BT sin(πm/N_b), with
the run's own Lorentzian DOS N_γ), and, to separate the error bar from any bias,

    r = (λ(m) − ⟨λ(m)⟩_seeds) / σ(m) · √(N/(N−1))

whose standard deviation is 1 for honest error bars (a delete-one jackknife over n blocks
has n − 1 degrees of freedom: SD(r) ≈ √((n−1)/(n−3)) for Student-t, 1.18 for 8 blocks),
and Var_seeds(λ)/⟨σ²⟩, which is 1 when σ² is an unbiased variance estimate whatever the
number of blocks (over N seeds it scatters as χ²_{N−1}/(N−1)). The bias is ⟨λ − λ_exact⟩
in units of its standard error SD(λ)/√N.

    python drivers/errorbar_study.py --seeds 20 --out eb          # tutorial size
    python drivers/errorbar_study.py --size small --seeds 200 --out ebs   # the slow test's size
    python drivers/errorbar_study.py --summary eb/study.json      # print the tables again

``--size small`` is tests/test_errorbars.py's system: a 3×3×3 supercell (Γ only), 64 samples
× 8 beads, γ = 0.4 and 0.8 eV. ``--fermi-level-ev X`` fixes ε_F (z and the weights' centre)
instead of the input's ensemble estimate, whose own noise the replicas do not contain.

Writes OUT/study.json (every λ, σ, N_γ and the summary) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def exact_born(n_gamma, g, hbar_omega_ev, mass_amu, n_beads, temperature_k, n_m):
    """λ_exact(m) = N_γ g² / (M (Ω² + Ω_m²)) at the bead frequencies, float [n_gamma, n_m]."""
    from ase import units
    hb2 = units._hbar ** 2 / (units._amu * 1e-20) / units._e          # ħ²/(amu Å²) in eV
    kt = units.kB * temperature_k
    om_m = 2 * n_beads * kt * np.sin(np.pi * np.arange(n_m) / n_beads)  # ħΩ_m, eV
    spring = mass_amu * (hbar_omega_ev ** 2 + om_m ** 2) / hb2           # eV/Å²
    return np.asarray(n_gamma)[:, None] * g ** 2 / spring[None, :]


def small_input(base: dict) -> dict:
    """The small study system (``--size small``, tests/test_errorbars.py): a 3×3×3 supercell of the
    tutorial's metal, Γ only, 64 exact Einstein samples × 8 beads, γ = 0.4 and 0.8 eV."""
    import copy
    data = copy.deepcopy(base)
    data["supercell"].update(matrix=[3, 3, 3], kpoints=[[0.0, 0.0, 0.0]])
    data["configurations"]["einstein"].update(n_samples=64, n_beads=8)
    data["spia"]["gamma_ev"] = [0.4, 0.8]
    return data


def run_seed(seed: int, out: Path, modes, blocks, base: dict) -> dict:
    """Run one seed for every (mode, blocks); returns {f"{mode}_{n}": dict(lam, err, ngam)}."""
    import copy

    from spia_mpi.commands.run import execute
    from spia_mpi.io import inputs, runinput
    from spia_mpi.io import hdf5
    from spia_mpi.parallel.mpi import self_comm
    res = {}
    for mode in modes:
        for nb in blocks:
            data = copy.deepcopy(base)
            data["configurations"]["einstein"]["seed"] = seed
            data["spia"].update(mode=mode, n_blocks=nb, resolvent="dense")
            data["eliashberg"].update(mustar=[0.1], tc_errors=False)
            name = f"seed{seed:03d}_{mode}_{nb}"
            data["output"].update(file=f"{name}.h5", checkpoint=f"seed{seed:03d}.ckpt", plots=False)
            inp = inputs.build(runinput.RunInput, data, name)
            path = out / f"{name}.h5"
            if not path.exists():
                execute(inp, out, self_comm(), source=name)
            with hdf5.open_finished(path, "results") as f:
                g = f["lambda"]
                lam = g["lambda_m_raw"][...] if "lambda_m_raw" in g else g["lambda_m"][...]
                err = g["lambda_m_raw_error"][...] if "lambda_m_raw_error" in g else g["lambda_m_error"][...]
                res[f"{mode}_{nb}"] = dict(lam=lam.tolist(), err=err.tolist(), ngam=g["n_gamma_per_cell"][...].tolist(),
                                           gamma=g["gamma_eV"][...].tolist())
    return res


def summarise(runs: dict, base: dict) -> dict:
    """Per (mode, blocks): SD(r), mean z, bias/SE per γ and m (module docstring)."""
    h, e = base["model"]["holstein"], base["configurations"]["einstein"]
    out = {}
    for key in runs[next(iter(runs))]:
        if key == "bse_minus_born":
            continue
        lam = np.array([runs[s][key]["lam"] for s in runs])              # [seed, gamma, m]
        err = np.array([runs[s][key]["err"] for s in runs])
        ngam = np.array([runs[s][key]["ngam"] for s in runs])
        exact = np.array([exact_born(ng, h["coupling_ev_per_ang"], e["hbar_omega_ev"], h["mass_amu"],
                                     e["n_beads"], e["temperature_k"], lam.shape[2]) for ng in ngam])
        n = lam.shape[0]
        z = (lam - exact) / err
        r = (lam - lam.mean(0)) / err * np.sqrt(n / (n - 1))
        bias = (lam - exact).mean(0) / ((lam - exact).std(0, ddof=1) / np.sqrt(n))
        out[key] = dict(n_seeds=n, sd_r=r.std(0, ddof=0).tolist(), sd_r_pooled=float(np.sqrt((r ** 2).mean())),
                        var_ratio=(lam.var(0, ddof=1) / (err ** 2).mean(0)).tolist(),
                        mean_z=z.mean(0).tolist(), sd_z_pooled=float(z.std()), bias_over_se=bias.tolist(),
                        scatter_over_sigma=(lam.std(0, ddof=1) / err.mean(0)).tolist(),
                        gamma=runs[next(iter(runs))][key]["gamma"])
    return out


def paired_bse_born(runs: dict, blocks: int) -> dict:
    """BSE − Born on the same samples, relative to Born: mean and standard error over seeds [gamma, m]."""
    keys = (f"bse_{blocks}", f"born_{blocks}")
    if not all(k in runs[next(iter(runs))] for k in keys):
        return {}
    bse = np.array([runs[s][keys[0]]["lam"] for s in runs])
    born = np.array([runs[s][keys[1]]["lam"] for s in runs])
    d = (bse - born) / born
    return dict(mean=d.mean(0).tolist(), se=(d.std(0, ddof=1) / np.sqrt(len(d))).tolist())


def table(summary: dict) -> str:
    lines = ["| mode | blocks | seeds | SD(r) pooled | SD(r) at m = 0 (per γ) | bias/SE at m = 0 | bias/SE at m = 1 | "
             "SD(λ)/⟨σ⟩ at m = 0 |", "|---|---|---|---|---|---|---|---|"]
    for key, s in summary.items():
        if key == "bse_minus_born":
            continue
        mode, nb = key.split("_")
        lines.append(f"| {mode} | {nb} | {s['n_seeds']} | {s['sd_r_pooled']:.2f} | "
                     + ", ".join(f"{row[0]:.2f}" for row in s["sd_r"]) + " | "
                     + ", ".join(f"{row[0]:+.1f}" for row in s["bias_over_se"]) + " | "
                     + ", ".join(f"{row[1]:+.1f}" for row in s["bias_over_se"]) + " | "
                     + ", ".join(f"{row[0]:.2f}" for row in s["scatter_over_sigma"]) + " |")
    lines += ["", "Every m (rows: mode, blocks, γ; SD(r), honest ≈ √((n−1)/(n−3)); then Var_seeds(λ)/⟨σ²⟩, honest 1):", ""]
    first = next(s for k, s in summary.items() if k != "bse_minus_born")
    n_m = len(first["sd_r"][0])
    lines += ["| mode | blocks | γ (eV) | quantity | " + " | ".join(f"m = {m}" for m in range(n_m)) + " |",
              "|---|---|---|---|" + "---|" * n_m]
    for key, s in summary.items():
        if key == "bse_minus_born":
            continue
        mode, nb = key.split("_")
        for ig, gam in enumerate(s["gamma"]):
            lines.append(f"| {mode} | {nb} | {gam:g} | SD(r) | " + " | ".join(f"{v:.2f}" for v in s["sd_r"][ig]) + " |")
            if "var_ratio" in s:
                lines.append(f"| {mode} | {nb} | {gam:g} | Var/⟨σ²⟩ | "
                             + " | ".join(f"{v:.2f}" for v in s["var_ratio"][ig]) + " |")
    pair = summary.get("bse_minus_born")
    if pair:
        lines.append("")
        lines.append("(λ_BSE − λ_Born)/λ_Born on the same samples, mean ± SE over seeds, per γ: m = 0: "
                     + ", ".join(f"{m[0]:+.4f} ± {e[0]:.4f}" for m, e in zip(pair["mean"], pair["se"]))
                     + "; m = 1: " + ", ".join(f"{m[1]:+.4f} ± {e[1]:.4f}" for m, e in zip(pair["mean"], pair["se"])))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20, help="independent seeds (default 20)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--blocks", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--modes", nargs="+", default=["born", "bse"], choices=["born", "bse"])
    ap.add_argument("--size", choices=["tutorial", "small"], default="tutorial",
                    help="the tutorial's input (default) or the small test system")
    ap.add_argument("--fermi-level-ev", type=float, help="fix ε_F (eV) instead of the ensemble estimate")
    ap.add_argument("--out", default="errorbar-study", help="folder for the runs and study.json")
    ap.add_argument("--summary", metavar="JSON", help="only print the table of an existing study.json")
    args = ap.parse_args(argv)
    from spia_mpi.io import inputs
    from spia_mpi.io.log import setup_logging
    setup_logging(None, "WARNING")
    base = inputs.load_toml(ROOT / "spia_mpi" / "data" / "demo.toml")
    if args.size == "small":
        base = small_input(base)
    if args.fermi_level_ev is not None:
        base["spia"]["fermi_level_ev"] = args.fermi_level_ev
    if args.summary:                       # recomputed from the stored runs (the input is stored with them)
        data = json.loads(Path(args.summary).read_text())
        runs = {int(k): v for k, v in data["runs"].items()}
        print(table(study_summary(runs, data.get("input", base), args.blocks)))
        return 0
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs[seed] = run_seed(seed, out, args.modes, args.blocks, base)
        if len(runs) >= 3:                 # the study so far, after every seed (a stopped study keeps it)
            summary = study_summary(runs, base, args.blocks)
            (out / "study.json").write_text(json.dumps({"input": base, "runs": runs, "summary": summary}, indent=1))
        print(f"seed {seed} done", flush=True)
    print(table(summary))
    return 0


def study_summary(runs: dict, base: dict, blocks) -> dict:
    """:func:`summarise` plus the paired BSE − Born difference at the largest number of blocks."""
    summary = summarise(runs, base)
    summary["bse_minus_born"] = paired_bse_born(runs, max(blocks))
    return summary


if __name__ == "__main__":
    sys.exit(main())
