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
has n − 1 degrees of freedom: SD(r) ≈ √((n−1)/(n−3)) for Student-t, 1.18 for 8 blocks).
The bias is ⟨λ − λ_exact⟩ in units of its standard error SD(λ)/√N.

    python drivers/errorbar_study.py --seeds 20 --out eb          # ≈ 10 min on 2 busy cores
    python drivers/errorbar_study.py --summary eb/study.json      # print the table again

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
    ap.add_argument("--out", default="errorbar-study", help="folder for the runs and study.json")
    ap.add_argument("--summary", metavar="JSON", help="only print the table of an existing study.json")
    args = ap.parse_args(argv)
    if args.summary:
        data = json.loads(Path(args.summary).read_text())
        summary = data["summary"]
        summary["bse_minus_born"] = paired_bse_born({int(k): v for k, v in data["runs"].items()}, max(args.blocks))
        print(table(summary))
        return 0
    from spia_mpi.io import inputs
    from spia_mpi.io.log import setup_logging
    setup_logging(None, "WARNING")
    base = inputs.load_toml(ROOT / "spia_mpi" / "data" / "demo.toml")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs[seed] = run_seed(seed, out, args.modes, args.blocks, base)
        if len(runs) >= 3:                 # the study so far, after every seed (a stopped study keeps it)
            summary = summarise(runs, base)
            summary["bse_minus_born"] = paired_bse_born(runs, max(args.blocks))
            (out / "study.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
        print(f"seed {seed} done", flush=True)
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
