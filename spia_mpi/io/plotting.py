"""Figures from a spia_mpi results file (matplotlib, Agg backend, PNG + PDF).

Each function takes the open ``h5py.File`` (or a group) and returns the list of
files written. Panels appear only when the file has the data:

* ``lambda``   — λ(m) with error bars and the ω̄₂(m) asymptote inset (paper Fig. 3),
  one curve per Lorentzian half width γ;
* ``gamma``    — λ(0), λ(1) and T_c (± its jackknife error) versus γ;
* ``tc``       — T_c versus μ* (Eliashberg ± its jackknife error, Allen–Dynes, McMillan);
* ``bands``    — band structure along the k-path of a ``spectral`` file (reference and
  renormalised bands with half widths); for a run's results (no path), renormalised
  against reference energy per state with half widths, and the Lorentzian DOS;
* ``spectral_function``, ``spectral_summary`` — ρ(k, E) colour map with the static bands
  and −Im Ḡ(k, E + iγ)/π, and the shifts/half widths at the labelled points (spectral file);
* ``msd``      — centroid mean squared displacement per species with the D fits, and
* ``density_slices`` — ion density per species on a few planes through the cell with the
  fitted peak centres (both from the ``/analysis`` group that ``analyze`` writes).
"""
from __future__ import annotations

import json
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
    """Band structures: along the k-path of a spectral file (/spectral/greens: reference bands
    and renormalised bands ε_nk with ±γ_nk shading and jackknife error bars; the static unfolded
    bands), or, for a run's results (/bands, the run's k-grid, no path), the renormalised against
    the reference energy of every state (half widths as error bars) next to the Lorentzian DOS."""
    if "spectral" in f:
        return _plot_path_bands(f["spectral"], out)
    if "bands" not in f or "energies_eV" not in f["bands"]:
        return []
    b = f["bands"]
    e = np.atleast_2d(b["energies_eV"][...])
    w = np.atleast_2d(b["half_width_eV"][...]) if "half_width_eV" in b else np.zeros_like(e)
    ef = float(b.attrs.get("fermi_level_eV", np.nan))
    plt = _plt()
    has_ref = "reference_energies_eV" in b
    fig, ax = plt.subplots(1, 2 if has_ref else 1, figsize=(9 if has_ref else 4, 4), squeeze=False)
    ax = ax[0]
    if has_ref:
        ref = np.atleast_2d(b["reference_energies_eV"][...])
        ax[0].errorbar(ref.ravel() - ef, e.ravel() - ef, yerr=w.ravel(), fmt="o", ms=2, lw=0.6, color="C0",
                       label="renormalised ε_nk ± γ_nk")
        lim = [np.nanmin(ref - ef) - 0.5, np.nanmax(ref - ef) + 0.5]
        ax[0].plot(lim, lim, "k-", lw=0.6, label="ε = ε⁰ (no renormalisation)")
        ax[0].set_xlabel("reference ε⁰_nk − ε_F (eV)")
        ax[0].set_ylabel("renormalised ε_nk − ε_F (eV)")
        ax[0].set_title("bands of the run's k-grid (a path: `spia_mpi spectral`)", fontsize=9)
        ax[0].legend(fontsize=8)
    grid = np.linspace(e.min() - 1, e.max() + 1, 600)
    gam = np.maximum(w, 1e-2)
    dos = ((gam[..., None] / np.pi) / ((grid - e[..., None]) ** 2 + gam[..., None] ** 2)).sum((0, 1)) / e.shape[0]
    ax[-1].plot(dos, grid - ef)
    ax[-1].axhline(0.0, color="k", lw=0.6, ls="--")
    ax[-1].set_xlabel("DOS (1/eV per state's k per spin)")
    ax[-1].set_ylabel("E − ε_F (eV)")
    fig.tight_layout()
    return _save(fig, out, "bands")


def _path_axis(ax, g):
    """Vertical lines and tick labels at the labelled points of the path (coinciding labels as 'A|B')."""
    sx = g["special_x"][...]
    labels = json.loads(_str(g.attrs["labels"]))
    ticks, names = [], []
    for x, lab in zip(sx, labels):
        if ticks and abs(x - ticks[-1]) < 1e-9:
            names[-1] = f"{names[-1]}|{lab}"
        else:
            ticks.append(x)
            names.append(lab)
    for x in ticks:
        ax.axvline(x, color="0.5", lw=0.5)
    ax.set_xticks(ticks)
    ax.set_xticklabels(names)
    x = g["x"][...]
    ax.set_xlim(x[0], x[-1])


def _plot_path_bands(g, out: Path) -> list[Path]:
    if "greens" not in g and "static_bands_eV" not in g:
        return []
    x = g["x"][...]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    static = g["static_bands_eV"][...]
    for n in range(static.shape[1]):
        ax.plot(x, static[:, n], ".", ms=2, color="k", label="static (reference structure)" if n == 0 else None)
    if "greens" in g:
        gg = g["greens"]
        e, hw = gg["bands_eV"][...], gg["half_width_eV"][...]
        err = gg["bands_error_eV"][...]
        ref = gg["reference_bands_eV"][...]
        for n in range(e.shape[1]):
            ax.fill_between(x, e[:, n] - hw[:, n], e[:, n] + hw[:, n], color="C0", alpha=0.3, lw=0,
                            label="renormalised ± γ_nk" if n == 0 else None)
            ax.errorbar(x, e[:, n], yerr=err[:, n], color="C0", lw=1, elinewidth=0.6,
                        label="renormalised ε_nk (± jackknife)" if n == 0 else None)
            ax.plot(x, ref[:, n], "--", color="C3", lw=0.8, label="reference states" if n == 0 else None)
    ax.axhline(0.0, color="k", lw=0.5, ls=":")
    _path_axis(ax, g)
    ax.set_ylim(float(g["energies_eV"][0]), float(g["energies_eV"][-1]))
    ax.set_ylabel("E − ε_F (eV)")
    ax.set_title(f"band structure along {_str(g.attrs['path'])}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, out, "bands")


def plot_spectral(f, out: Path) -> list[Path]:
    """ρ(k, E) as a colour map along the path with the static bands overlaid (paper Fig. 2(a)
    layout), next to −Im Ḡ(k, E + iγ)/π when present; and the broadening/shift summary."""
    if "spectral" not in f:
        return []
    g = f["spectral"]
    x, grid = g["x"][...], g["energies_eV"][...]
    maps = [("unfolded ρ(k, E) (configurations × beads)", g["rho"][...])]
    if "greens" in g:
        maps.append(("−Im Ḡ(k, E + iγ)/π (renormalised bands)", g["greens"]["rho"][...]))
    plt = _plt()
    fig, axes = plt.subplots(1, len(maps), figsize=(5.5 * len(maps), 4.5), squeeze=False, sharey=True)
    vmax = max(float(np.nanmax(m)) for _, m in maps)
    static = g["static_bands_eV"][...]
    for ax, (title, rho) in zip(axes[0], maps):
        im = ax.pcolormesh(x, grid, rho.T, shading="gouraud", cmap="magma", vmin=0.0, vmax=vmax)
        for n in range(static.shape[1]):
            ax.plot(x, static[:, n], "--", color="w", lw=0.6, label="static bands" if n == 0 else None)
        ax.axhline(0.0, color="c", lw=0.5)
        _path_axis(ax, g)
        ax.set_ylim(grid[0], grid[-1])
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("E − ε_F (eV)")
    fig.colorbar(im, ax=axes[0].tolist(), label="states / eV / cell / spin")
    written = _save(fig, out, "spectral_function")
    return written + _plot_spectral_summary(g, out)


def _plot_spectral_summary(g, out: Path) -> list[Path]:
    """Shift ε_nk − ε⁰_nk and half width γ_nk (Green's route) and the spread of ρ at the summary points."""
    if "summary" not in g:
        return []
    s = g["summary"]
    labels = json.loads(_str(s.attrs["labels"]))
    if not labels:
        return []
    band = s["band"][...]
    names = [f"{lab}, n={b}" for lab, b in zip(labels, band)]
    pos = np.arange(len(names))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(names) + 2), 4))
    ax.errorbar(pos - 0.1, s["energy"][...] - s["reference"][...], yerr=s["energy_error"][...], fmt="o",
                capsize=2, label="shift ε_nk − ε⁰_nk (Green's route)")
    ax.errorbar(pos, s["half_width"][...], yerr=s["half_width_error"][...], fmt="s", capsize=2,
                label="half width γ_nk (Green's route)")
    ax.errorbar(pos + 0.1, s["spread"][...], yerr=s["spread_error"][...], fmt="^", capsize=2,
                label="spread of unfolded ρ(k, E)")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xticks(pos)
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("eV")
    ax.set_title("renormalisation at the labelled k-points", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, "spectral_summary")


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


ALL = (plot_lambda, plot_gamma_scan, plot_tc, plot_bands, plot_spectral, plot_msd, plot_density)


def plot_results(f, out, formats=("png", "pdf")) -> list[Path]:
    """Every figure the file has data for, into folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in ALL:
        written += fn(f, out)
    return written


# --------------------------------------------------------------------------
# harmonic baseline (``spia_mpi harmonic``)
# --------------------------------------------------------------------------

def plot_harmonic(f, out, spia=None, formats=("png", "pdf")) -> list[Path]:
    """Figures of a harmonic results file ``f``, and the comparison with a SPIA results file.

    * ``harmonic_lambda`` — λ_harm(m) in the discrete-bead (Ω_m) and continuum (ν_m) forms per γ,
      with SPIA's raw λ(m) ± error (before the bead correction) on top when ``spia`` (an open
      results file) is given;
    * ``harmonic_alpha2f`` — α²F(ω) per γ with ω_log marked;
    * ``harmonic_tc`` — T_c^harm(μ*) (and SPIA's ± error side by side with ``spia``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    g = f["lambda"]
    gammas = g["gamma_eV"][...]
    m = g["m"][...]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for row, gam in enumerate(gammas):
        line, = ax.plot(m, g["lambda_m_bead"][row], "s--", ms=4, lw=1, label=f"harmonic, beads, γ = {gam:g} eV")
        ax.plot(m, g["lambda_m"][row], ":", color=line.get_color(), lw=1, label=f"harmonic, continuum, γ = {gam:g} eV")
        if spia is not None:
            sg = spia["lambda"]
            hit = np.flatnonzero(np.isclose(sg["gamma_eV"][...], gam))
            if hit.size:
                raw = "lambda_m_raw" if "lambda_m_raw" in sg else "lambda_m"
                lam, err = sg[raw][hit[0]], sg[f"{raw}_error"][hit[0]]
                ax.errorbar(np.arange(lam.size), lam, yerr=err, fmt="o", ms=4, capsize=2, color=line.get_color(),
                            label=f"SPIA raw ({sg.attrs['mode']}), γ = {gam:g} eV")
    ax.set_xlabel("m")
    ax.set_ylabel("λ(m)")
    ax.set_title(f"harmonic baseline at T = {g.attrs['temperature_K']:g} K")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written = _save(fig, out, "harmonic_lambda", formats)

    a = f["alpha2f"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    w = a["omega_eV"][...]
    for row, gam in enumerate(gammas):
        line, = ax.plot(1e3 * w, a["alpha2f"][row], lw=1, label=f"γ = {gam:g} eV, λ = {a['lambda'][row]:.3g}")
        ax.axvline(1e3 * a["omega_log_eV"][row], color=line.get_color(), ls="--", lw=0.7)
    ax.set_xlabel("ħω (meV)")
    ax.set_ylabel("α²F(ω)")
    ax.set_title("harmonic α²F (dashed: ω_log)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written += _save(fig, out, "harmonic_alpha2f", formats)

    e = f["eliashberg"]
    mus = e["mustar"][...]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for row, gam in enumerate(gammas):
        line, = ax.plot(mus, e["tc_K"][row], "s--", label=f"harmonic, γ = {gam:g} eV")
        if spia is not None:
            se = spia["eliashberg"]
            hit = np.flatnonzero(np.isclose(spia["lambda/gamma_eV"][...], gam))
            if hit.size:
                ax.errorbar(se["mustar"][...], se["tc_K"][hit[0]], yerr=_tc_error(se, se["tc_K"].shape)[hit[0]],
                            fmt="o-", capsize=2, color=line.get_color(), label=f"SPIA, γ = {gam:g} eV")
    ax.set_xlabel("μ*")
    ax.set_ylabel("T_c (K)")
    ax.set_title("T_c: harmonic baseline" + (" vs SPIA" if spia is not None else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    written += _save(fig, out, "harmonic_tc", formats)
    return written
