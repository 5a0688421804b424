"""Figures from a spia_mpi results file (matplotlib, Agg backend, PNG + PDF).

Each function takes the open ``h5py.File`` (or a group) and returns the list of
files written. Panels appear only when the file has the data:

* ``lambda``   — λ(m) with error bars and the ω̄₂(m) asymptote inset (paper Fig. 3),
  one curve per Lorentzian half width γ;
* ``gamma``    — λ(0), λ(1) and T_c (± its jackknife error) versus γ;
* ``tc``       — T_c versus μ* (Eliashberg ± its jackknife error, Allen–Dynes, McMillan);
* ``bands``    — renormalised bands with their half widths, and the Lorentzian DOS;
* ``msd``      — centroid mean squared displacement per species with the D fits, and
* ``density_slices`` — ion density per species on a few planes through the cell with the
  fitted peak centres (both from the ``/analysis`` group that ``analyze`` writes).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _tc_error(e, shape) -> np.ndarray:
    """/eliashberg/tc_K_error [gamma, mustar] (K), NaN → 0 (no bar); zeros when absent."""
    if "tc_K_error" not in e:
        return np.zeros(shape)
    err = np.atleast_2d(e["tc_K_error"][...]).astype(float)
    return np.where(np.isfinite(err), err, 0.0)


def _save(fig, out: Path, stem: str, formats=("png", "pdf")) -> list[Path]:
    written = []
    for ext in formats:
        p = out / f"{stem}.{ext}"
        fig.savefig(p, dpi=120)
        written.append(p)
    _plt().close(fig)
    return written


def plot_lambda(f, out: Path) -> list[Path]:
    """λ(m) ± error for every γ, inset ω̄₂(m) = ν_m √(λ(m)/λ(0)) in meV."""
    if "lambda" not in f:
        return []
    g = f["lambda"]
    lam = np.atleast_2d(g["lambda_m"][...])
    err = np.atleast_2d(g["lambda_m_error"][...]) if "lambda_m_error" in g else np.zeros_like(lam)
    gammas = g["gamma_eV"][...] if "gamma_eV" in g else np.full(lam.shape[0], np.nan)
    t0 = float(g.attrs.get("temperature_K", np.nan))
    m = np.arange(lam.shape[1])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for row, gam in enumerate(gammas):
        ax.errorbar(m, lam[row], yerr=err[row], fmt="o-", ms=3, capsize=2, lw=1,
                    label=f"γ = {gam:g} eV")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("m  (ν_m = 2πm k_B T)")
    ax.set_ylabel("λ(m)")
    ax.set_title(f"electron–ion coupling at T = {t0:g} K")
    ax.legend(fontsize=8, loc="upper right")
    if lam.shape[1] > 2 and np.all(lam[:, 0] > 0):
        from spia_mpi.units import bosonic_frequency_ev
        ins = ax.inset_axes([0.45, 0.3, 0.4, 0.35])
        nu = bosonic_frequency_ev(m, t0)
        for row in range(lam.shape[0]):
            with np.errstate(invalid="ignore"):
                w2 = nu * np.sqrt(np.where(lam[row] > 0, lam[row], np.nan) / lam[row, 0])
            ins.plot(m[1:], 1e3 * w2[1:], ".-", ms=3, lw=0.8)
        if "omega2_eV" in g:
            for w in np.atleast_1d(g["omega2_eV"][...]):
                ins.axhline(1e3 * w, color="k", lw=0.6, ls="--")
        ins.set_title("ω̄₂(m) (meV)", fontsize=8)
        ins.tick_params(labelsize=7)
    fig.tight_layout()
    return _save(fig, out, "lambda_m")


def plot_gamma_scan(f, out: Path) -> list[Path]:
    """λ(0), λ(1) and T_c (first μ*) versus the Lorentzian half width γ."""
    if "lambda" not in f or "gamma_eV" not in f["lambda"]:
        return []
    g = f["lambda"]
    gammas = g["gamma_eV"][...]
    if gammas.size < 2:
        return []
    lam = np.atleast_2d(g["lambda_m"][...])
    err = np.atleast_2d(g["lambda_m_error"][...]) if "lambda_m_error" in g else np.zeros_like(lam)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in range(min(2, lam.shape[1])):
        ax.errorbar(gammas, lam[:, m], yerr=err[:, m], fmt="o-", ms=3, capsize=2, label=f"λ({m})")
    ax.set_xlabel("Lorentzian half width γ (eV)")
    ax.set_ylabel("λ")
    if "eliashberg" in f and "tc_K" in f["eliashberg"]:
        tc = np.atleast_2d(f["eliashberg"]["tc_K"][...])
        tce = _tc_error(f["eliashberg"], tc.shape)
        mus = f["eliashberg"]["mustar"][...]
        ax2 = ax.twinx()
        ax2.errorbar(gammas, tc[:, 0], yerr=tce[:, 0], fmt="k^--", ms=4, capsize=2,
                     label=f"T_c (μ* = {mus[0]:g})")
        ax2.set_ylabel("T_c (K)")
        ax2.legend(fontsize=8, loc="lower right")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, out, "lambda_vs_gamma")


def plot_tc(f, out: Path) -> list[Path]:
    """T_c versus μ* for the first γ: Eliashberg (± jackknife error), Allen–Dynes, McMillan."""
    if "eliashberg" not in f:
        return []
    e = f["eliashberg"]
    mus = e["mustar"][...]
    tc = np.atleast_2d(e["tc_K"][...])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(mus, tc[0], yerr=_tc_error(e, tc.shape)[0], fmt="o-", capsize=3, label="Eliashberg")
    if "allen_dynes_K" in e:
        ax.plot(mus, np.atleast_2d(e["allen_dynes_K"][...])[0], "s--", ms=4, label="Allen–Dynes")
    if "mcmillan_K" in e:
        ax.plot(mus, np.atleast_2d(e["mcmillan_K"][...])[0], "^:", ms=4, label="McMillan")
    ax.set_xlabel("μ*")
    ax.set_ylabel("T_c (K)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "tc_vs_mustar")


def plot_bands(f, out: Path) -> list[Path]:
    """Renormalised band energies (with half widths as error bars) per k and the DOS."""
    if "bands" not in f or "energies_eV" not in f["bands"]:
        return []
    b = f["bands"]
    e = np.atleast_2d(b["energies_eV"][...])
    w = np.atleast_2d(b["half_width_eV"][...]) if "half_width_eV" in b else np.zeros_like(e)
    ef = float(b.attrs.get("fermi_level_eV", np.nan))
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [2, 1]})
    k = np.arange(e.shape[0])
    for n in range(e.shape[1]):
        ax[0].errorbar(k, e[:, n], yerr=w[:, n], fmt="o", ms=2, lw=0.6, color="C0")
    if "reference_energies_eV" in b:
        ref = np.atleast_2d(b["reference_energies_eV"][...])
        for n in range(ref.shape[1]):
            ax[0].plot(k, ref[:, n], "x", ms=3, color="C3")
    ax[0].axhline(ef, color="k", lw=0.6, ls="--")
    ax[0].set_xlabel("subspace state (k, n), ordered by K then k")
    ax[0].set_ylabel("energy (eV)")
    ax[0].set_title("renormalised bands (o ± half width), reference (x)", fontsize=9)
    grid = np.linspace(e.min() - 1, e.max() + 1, 600)
    gam = np.maximum(w, 1e-2)
    dos = ((gam[..., None] / np.pi) / ((grid - e[..., None]) ** 2 + gam[..., None] ** 2)).sum((0, 1)) / e.shape[0]
    ax[1].plot(dos, grid)
    ax[1].axhline(ef, color="k", lw=0.6, ls="--")
    ax[1].set_xlabel("DOS (1/eV per cell per spin)")
    fig.tight_layout()
    return _save(fig, out, "bands")


def _str(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def plot_msd(f, out: Path) -> list[Path]:
    """Centroid MSD per species (/analysis/msd_A2 [species, lag] vs time_fs) with the fitted
    lines 6Dt + a over the fit window (dashed) when /analysis/diffusion_A2_per_fs is present."""
    if "analysis" not in f or "msd_A2" not in f["analysis"]:
        return []
    a = f["analysis"]
    t = a["time_fs"][...]
    msd = np.atleast_2d(a["msd_A2"][...])
    species = [_str(s) for s in a["species"][...]]
    d = a["diffusion_A2_per_fs"][...] if "diffusion_A2_per_fs" in a else None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (s, y) in enumerate(zip(species, msd)):
        label = s if d is None else f"{s}: D = {0.1 * d[i]:.3g} cm²/s"
        ax.plot(t, y, color=f"C{i}", label=label)
        if d is not None and "fit_window_fs" in a:
            t0, t1 = a["fit_window_fs"][...]
            sel = (t >= t0) & (t <= t1)
            if sel.any():
                icpt = np.mean(y[sel] - 6 * d[i] * t[sel])
                ax.plot(t[sel], icpt + 6 * d[i] * t[sel], "--", color="k", lw=0.8)
    ax.set_xlabel("t (fs)")
    ax.set_ylabel("centroid MSD (Å²)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "msd")


def plot_density(f, out: Path, planes=(0.0, 0.25, 0.5, 0.75), slab_bins: int = 3) -> list[Path]:
    """Density slices per species (/analysis/density/<species>, fractional grid): one panel per
    plane s₃ = const of ``planes`` (fractional along the third lattice vector), each the mean of
    ``slab_bins`` bins centred on the plane, drawn in Cartesian coordinates of the (a₁, a₂)
    plane (skewed for non-orthogonal cells); fitted peak centres within the slab are crosses."""
    if "analysis" not in f or "density" not in f["analysis"] or not len(f["analysis"]["density"]):
        return []
    a = f["analysis"]
    cell = a["cell"][...]
    la, lb = np.linalg.norm(cell[0]), np.linalg.norm(cell[1])
    cos_g = cell[0] @ cell[1] / (la * lb)
    sin_g = np.sqrt(max(1 - cos_g ** 2, 0.0))
    peaks = a["peaks"] if "peaks" in a else None
    species = list(a["density"])
    plt = _plt()
    fig, axes = plt.subplots(len(species), len(planes), figsize=(3.0 * len(planes), 2.8 * len(species)),
                             squeeze=False)
    for row, s in enumerate(species):
        h = a["density"][s][...]
        n1, n2, n3 = h.shape
        u, v = np.meshgrid(np.arange(n1 + 1) / n1, np.arange(n2 + 1) / n2, indexing="ij")
        X, Y = u * la + v * lb * cos_g, v * lb * sin_g
        vmax = max(h.max(), 1e-300)
        for col, z in enumerate(planes):
            ax = axes[row, col]
            k0 = int(np.floor(z * n3)) if slab_bins % 2 else int(np.round(z * n3))
            ks = (k0 + np.arange(slab_bins) - slab_bins // 2) % n3
            ax.pcolormesh(X, Y, h[:, :, ks].mean(axis=2), cmap="viridis", vmin=0, vmax=vmax, shading="flat")
            if peaks is not None:
                sel = np.array([_str(x) == s for x in peaks["species"][...]], bool)
                c = peaks["centres_frac"][...][sel]
                dz = (c[:, 2] - (ks[slab_bins // 2] + 0.5) / n3 + 0.5) % 1.0 - 0.5
                c = c[np.abs(dz) <= slab_bins / (2 * n3)]
                ax.plot(c[:, 0] * la + c[:, 1] * lb * cos_g, c[:, 1] * lb * sin_g, "r+", ms=5)
            ax.set_aspect("equal")
            ax.set_title(f"{s}, s₃ ≈ {z:g}", fontsize=9)
            ax.tick_params(labelsize=7)
            if row == len(species) - 1:
                ax.set_xlabel("x along a₁ (Å)", fontsize=8)
            if col == 0:
                ax.set_ylabel("y in (a₁, a₂) plane (Å)", fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "density_slices")


ALL = (plot_lambda, plot_gamma_scan, plot_tc, plot_bands, plot_msd, plot_density)


def plot_results(f, out, formats=("png", "pdf")) -> list[Path]:
    """Every figure the file has data for, into folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in ALL:
        written += fn(f, out)
    return written
