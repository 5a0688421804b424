#!/usr/bin/env python
"""Figure for docs/eliashberg.md: ρ(T) and T_c(μ*) for an example λ(m).

The example λ(m) is a two-mode spectrum with λ(0) = 3.7 (the paper's value for
Li2MgH16), computed at T0 = 290 K on 64 bosonic frequencies: an illustration of
the solver, not a reproduction of the paper.

    python drivers/plot_eliashberg_example.py [--out docs/figures/eliashberg_example.png]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spia_mpi.eliashberg import linearised as el  # noqa: E402
from spia_mpi.units import bosonic_frequency_ev  # noqa: E402


def example_lambda(t0=290.0, n_m=64):
    nu = bosonic_frequency_ev(np.arange(n_m), t0)
    modes = [(1.9, 0.035), (1.8, 0.160)]          # (λ_i, ħΩ_i in eV)
    return sum(l * w**2 / (w**2 + nu**2) for l, w in modes)


def main():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures" / "eliashberg_example.png"))
    args = ap.parse_args()
    t0 = 290.0
    lam_m = example_lambda(t0)
    lam = el.LambdaOfNu(lam_m, t0)
    solver = el.EliashbergSolver(lam)
    temps = np.linspace(120, 420, 31)
    mus = [0.10, 0.13, 0.16]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    m = np.arange(lam_m.size)
    ax[0].plot(m, lam_m, "o", ms=3, label="λ(m) at T0 = 290 K")
    ax[0].set_xlabel("m"); ax[0].set_ylabel("λ(m)"); ax[0].set_yscale("log")
    ins = ax[0].inset_axes([0.45, 0.45, 0.5, 0.45])
    fit = el.fit_omega2(lam_m, t0)
    ins.plot(m[1:], fit.omega2_m_ev[1:] * 1e3, ".", ms=3)
    ins.axhline(fit.omega2_ev * 1e3, color="k", lw=0.8)
    ins.set_title("ω̄₂(m) (meV)", fontsize=8); ins.tick_params(labelsize=7)
    for mu in mus:
        rho = [solver.rho(t, mu) for t in temps]
        tc = solver.tc(mu)
        ax[1].plot(temps, rho, label=f"μ* = {mu}: T_c = {tc:.0f} K")
        ax[1].plot([tc], [0], "k.", ms=6)
    ax[1].axhline(0, color="k", lw=0.6)
    ax[1].set_xlabel("T (K)"); ax[1].set_ylabel("leading eigenvalue ρ(T)"); ax[1].legend(fontsize=8)
    mu_scan = np.linspace(0.0, 0.25, 11)
    res = el.solve_tc(lam_m, t0, mu_scan)
    ax[2].plot(mu_scan, res.tc_k, "o-", label="Eliashberg")
    ax[2].plot(mu_scan, res.allen_dynes_k, "s--", ms=4, label="Allen–Dynes")
    ax[2].plot(mu_scan, res.mcmillan_k, "^:", ms=4, label="McMillan")
    ax[2].set_xlabel("μ*"); ax[2].set_ylabel("T_c (K)"); ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    for mu, tc in zip(mu_scan, res.tc_k):
        print(f"mu*={mu:.3f} Tc={tc:.1f} K")


if __name__ == "__main__":
    main()
