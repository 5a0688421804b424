"""Figures from a `spia_mpi gap` file (matplotlib, Agg backend, PNG + PDF).

* ``<stem>_gap_T``     — Δ(iω_0)(T) per μ*, with T_c marked;
* ``<stem>_gap_omega`` — Re Δ(ω), Im Δ(ω) at the lowest T (Padé), the gap edge marked;
* ``<stem>_dos``       — quasiparticle DOS N_s(ω)/N(0) at the lowest T;
* ``<stem>_gap_histogram_<i>`` — with anisotropic bins (`gap --anisotropic`), per μ*: the
  DOS-weighted distribution of Δ_i/⟨Δ⟩ at T_c⁻ (linearised) and at the lowest T (nonlinear);
* ``<stem>_gap_T_bins_<i>`` — Δ_i(iω_0)(T) of every bin, per μ*.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spia_mpi.io.plotting import _plt, _save


def _states(f):
    keys = [k for k in f.keys() if k.startswith("mustar_")]
    return [f[k] for k in sorted(keys, key=lambda k: int(k.split("_")[1]))]


def plot_gap_T(f, out: Path, stem: str = "gap") -> list[Path]:
    """Δ(iω_0) (meV) against T (K), one curve per μ*."""
    states = _states(f)
    if not states:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for g in states:
        t, d = g["temperature_K"][...], g["delta0_eV"][...] * 1e3
        tc = float(g.attrs["tc_K"])
        line, = ax.plot(np.r_[t, tc], np.r_[d, 0.0], "o-", ms=3, label=f"μ* = {g.attrs['mustar']:g}")
        ax.axvline(tc, color=line.get_color(), lw=0.6, ls=":")
    ax.set_xlabel("T (K)")
    ax.set_ylabel("Δ(iω₀) (meV)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, f"{stem}_gap_T")


def plot_gap_omega(f, out: Path, stem: str = "gap") -> list[Path]:
    """Re and Im Δ(ω) (meV) on the real axis at the lowest T, per μ*."""
    states = _states(f)
    if not states:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for g in states:
        ra = g["real_axis"]
        w = ra["omega_eV"][...] * 1e3
        d = ra["delta_eV"][...] * 1e3
        line, = ax.plot(w, d.real, label=f"Re Δ, μ* = {g.attrs['mustar']:g}")
        ax.plot(w, d.imag, ls="--", color=line.get_color(), label="Im Δ")
        edge = float(g.attrs["delta0_edge_eV"]) * 1e3
        if np.isfinite(edge):
            ax.plot([edge], [edge], "o", color=line.get_color(), ms=4)
    ax.plot(w, w, color="0.6", lw=0.6, label="Δ = ω")
    ax.set_ylim(np.nanmin(d.real) - 1, 2.5 * np.nanmax(np.abs(d[: d.size // 4])))
    ax.set_xlabel("ω (meV)")
    ax.set_ylabel("Δ(ω) (meV)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, f"{stem}_gap_omega")


def plot_dos(f, out: Path, stem: str = "gap") -> list[Path]:
    """N_s(ω)/N(0) at the lowest T, per μ*."""
    states = _states(f)
    if not states:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for g in states:
        ra = g["real_axis"]
        ax.plot(ra["omega_eV"][...] * 1e3, ra["dos"][...], label=f"μ* = {g.attrs['mustar']:g}")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_ylim(0, 4)
    ax.set_xlabel("ω (meV)")
    ax.set_ylabel("N_s(ω)/N(0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, f"{stem}_dos")


def plot_gap_file(f, out: Path, stem: str = "gap") -> list[Path]:
    """All gap figures of an open gap file into folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = plot_gap_T(f, out, stem) + plot_gap_omega(f, out, stem) + plot_dos(f, out, stem)
    for i, g in enumerate(_states(f)):
        if "anisotropic" in g:
            figures += plot_anisotropic(g["anisotropic"], out, stem, i)
    return figures


def plot_anisotropic(a, out: Path, stem: str, index: int) -> list[Path]:
    """The gap histograms and Δ_i(T) of one μ*'s /anisotropic group of a gap file."""
    w = a["weights"][...]
    low = a["delta0_eV"][0]
    t_low = float(a["temperature_K"][0])
    figures = plot_gap_histogram([("T_c⁻", a["gap_ratio"][...]), (f"T = {t_low:.3g} K", low / float(w @ low))], w,
                                 out, f"{stem}_gap_histogram_{index}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    t, d = a["temperature_K"][...], a["delta0_eV"][...] * 1e3
    tc = float(a.attrs["tc_aniso_K"])
    for i in range(d.shape[1]):
        ax.plot(np.r_[t, tc], np.r_[d[:, i], 0.0], "-", lw=0.8 + 2.0 * w[i], label=f"bin {i}" if d.shape[1] <= 8 else None)
    ax.axvline(tc, color="0.5", lw=0.6, ls=":")
    ax.set_xlabel("T (K)")
    ax.set_ylabel("Δ_i(iω₀) (meV)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    if d.shape[1] <= 8:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figures + _save(fig, out, f"{stem}_gap_T_bins_{index}")


def plot_gap_histogram(ratios, weights, out: Path, stem: str = "gap_histogram", bins: int = 20) -> list[Path]:
    """Histograms of Δ_i/⟨Δ⟩ weighted by the bin weights: ``ratios`` a list of (label, ratio [n_b])."""
    from spia_mpi.eliashberg.anisotropic import gap_histogram
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label, ratio in ratios:
        density, edges = gap_histogram(ratio, weights, bins)
        ax.stairs(density, edges, fill=True, alpha=0.45, label=label)
    ax.legend(fontsize=8)
    ax.set_xlabel("Δ_i / ⟨Δ⟩")
    ax.set_ylabel("DOS-weighted density")
    fig.tight_layout()
    Path(out).mkdir(parents=True, exist_ok=True)
    return _save(fig, Path(out), stem)
