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


def _context(f) -> str:
    """'T = 300 K, N_b = 16, 96 configurations' from /lambda's attributes (what a figure shows)."""
    if "lambda" not in f:
        return ""
    a = f["lambda"].attrs
    parts = [f"T = {float(a['temperature_K']):g} K" if "temperature_K" in a else "",
             f"N_b = {int(a['n_beads'])}" if "n_beads" in a else "",
             f"{int(a['n_configurations'])} configurations" if "n_configurations" in a else "",
             f"mode {_str(a['mode'])}" if "mode" in a else ""]
    return ", ".join(p for p in parts if p)


def _legend_outside(ax, **kw):
    """Legend to the right of the axes (never over the data)."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


def plot_lambda(f, out: Path, reference=None) -> list[Path]:
    """λ(m) ± error for every γ, inset ω̄₂(m) = ν_m √(λ(m)/λ(0)) in meV.

    ``reference``: optional (label, float [n_gamma, n_m] or [n_m]) drawn as open markers and
    dashed lines in the colour of each γ (e.g. the exact harmonic λ(m), a harmonic baseline)."""
    if "lambda" not in f:
        return []
    g = f["lambda"]
    lam = np.atleast_2d(g["lambda_m"][...])
    err = np.atleast_2d(g["lambda_m_error"][...]) if "lambda_m_error" in g else np.zeros_like(lam)
    gammas = g["gamma_eV"][...] if "gamma_eV" in g else np.full(lam.shape[0], np.nan)
    t0 = float(g.attrs.get("temperature_K", np.nan))
    m = np.arange(lam.shape[1])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    ref = None
    if reference is not None:
        ref = np.broadcast_to(np.atleast_2d(np.asarray(reference[1], float)), (lam.shape[0], np.shape(reference[1])[-1]))
    for row, gam in enumerate(gammas):
        line = ax.errorbar(m, lam[row], yerr=err[row], fmt="o-", ms=3, capsize=2, lw=1, label=f"γ = {gam:g} eV")
        if ref is not None:
            n = min(ref.shape[1], m.size)
            ax.plot(m[:n], ref[row, :n], "s--", mfc="none", ms=5, lw=0.8, color=line[0].get_color(),
                    label=f"{reference[0]}, γ = {gam:g} eV")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("m  (ν_m = 2πm k_B T)")
    ax.set_ylabel("λ(m)")
    ax.set_title(f"electron–ion coupling λ(m): {_context(f)}", fontsize=9)
    _legend_outside(ax)
    if lam.shape[1] > 2 and np.all(lam[:, 0] > 0):
        from spia_mpi.units import bosonic_frequency_ev
        ins = ax.inset_axes([0.5, 0.4, 0.45, 0.45])
        nu = bosonic_frequency_ev(m, t0)
        for row in range(lam.shape[0]):
            with np.errstate(invalid="ignore"):
                w2 = nu * np.sqrt(np.where(lam[row] > 0, lam[row], np.nan) / lam[row, 0])
            ok = np.isfinite(w2)
            ok[0] = False
            ins.plot(m[ok], 1e3 * w2[ok], ".-", ms=3, lw=0.8)
        if "omega2_eV" in g:
            for w in np.atleast_1d(g["omega2_eV"][...]):
                if np.isfinite(w):
                    ins.axhline(1e3 * w, color="k", lw=0.6, ls="--")
        ins.set_title("ω̄₂(m) (meV); dashed: fitted ω̄₂", fontsize=7)
        ins.tick_params(labelsize=7)
    fig.tight_layout()
    return _save(fig, out, "lambda_m")


def _finite_errorbar(ax, x, y, yerr, **kw):
    """errorbar through the finite points only (no masked-element warnings); None if there are none."""
    x, y, yerr = (np.asarray(v, float) for v in (x, y, yerr))
    ok = np.isfinite(y)
    if not ok.any():
        return None
    return ax.errorbar(x[ok], y[ok], yerr=np.where(np.isfinite(yerr), yerr, 0.0)[ok], **kw)


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
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for m in range(min(2, lam.shape[1])):
        _finite_errorbar(ax, gammas, lam[:, m], err[:, m], fmt="o-", ms=3, capsize=2, label=f"λ({m})")
    ax.set_xlabel("Lorentzian half width γ (eV)")
    ax.set_ylabel("λ")
    handles, labels = ax.get_legend_handles_labels()
    if "eliashberg" in f and "tc_K" in f["eliashberg"]:
        tc = np.atleast_2d(f["eliashberg"]["tc_K"][...])
        tce = _tc_error(f["eliashberg"], tc.shape)
        mus = f["eliashberg"]["mustar"][...]
        ax2 = ax.twinx()
        if _finite_errorbar(ax2, gammas, tc[:, 0], tce[:, 0], fmt="k^--", ms=4, capsize=2,
                            label=f"T_c (μ* = {mus[0]:g})") is None:
            ax2.text(0.5, 0.5, f"no T_c (μ* = {mus[0]:g})", transform=ax2.transAxes, ha="center", fontsize=8)
        ax2.set_ylabel("T_c (K)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.12, 1.0), borderaxespad=0.0)
    ax.set_title(f"λ and T_c vs γ: {_context(f)}", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, "lambda_vs_gamma")


def plot_tc(f, out: Path) -> list[Path]:
    """T_c versus μ* for every γ: Eliashberg (± jackknife error, solid), Allen–Dynes (dashed),
    McMillan (dotted), one colour per γ; a γ without any T_c is named in the legend."""
    if "eliashberg" not in f:
        return []
    e = f["eliashberg"]
    mus = e["mustar"][...]
    tc = np.atleast_2d(e["tc_K"][...])
    tce = _tc_error(e, tc.shape)
    gammas = f["lambda"]["gamma_eV"][...] if "lambda" in f and "gamma_eV" in f["lambda"] \
        else np.full(tc.shape[0], np.nan)
    ad = np.atleast_2d(e["allen_dynes_K"][...]) if "allen_dynes_K" in e else None
    mc = np.atleast_2d(e["mcmillan_K"][...]) if "mcmillan_K" in e else None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, gam in enumerate(gammas):
        c = colours[row % len(colours)]
        if _finite_errorbar(ax, mus, tc[row], tce[row], fmt="o-", capsize=3, color=c,
                            label=f"Eliashberg, γ = {gam:g} eV") is None:
            ax.plot([], [], "o-", color=c, label=f"γ = {gam:g} eV: no T_c in range")
        for arr, style, name in ((ad, "s--", "Allen–Dynes"), (mc, "^:", "McMillan")):
            if arr is not None and np.isfinite(arr[row]).any():
                ok = np.isfinite(arr[row])
                ax.plot(mus[ok], arr[row][ok], style, ms=4, color=c, lw=0.8, label=f"{name}, γ = {gam:g} eV")
    ax.set_xlabel("μ*")
    ax.set_ylabel("T_c (K)")
    ax.set_title(f"T_c vs μ*: {_context(f)}", fontsize=9)
    _legend_outside(ax)
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


def _density_planes(h, centres_s3, n_planes: int, slab_bins: int) -> list:
    """Up to ``n_planes`` planes s₃ (fractional) where a species has density: through its peak
    centres (distinct slabs), else through the slabs holding most of it; sorted."""
    n3 = h.shape[2]
    if len(centres_s3):
        ks = list(dict.fromkeys(int(np.floor(c * n3)) % n3 for c in centres_s3))
    else:
        per = h.sum(axis=(0, 1))
        ks = [int(k) for k in np.argsort(-per) if per[k] > 0]
    chosen = []
    for k in ks:                       # distinct slabs: no two planes within one slab width
        if all(min(abs(k - q), n3 - abs(k - q)) >= slab_bins for q in chosen):
            chosen.append(k)
        if len(chosen) == n_planes:
            break
    return sorted((k + 0.5) / n3 for k in chosen)


def plot_density(f, out: Path, n_planes: int = 4, slab_bins: int = 3) -> list[Path]:
    """Density slices per species (/analysis/density/<species>, fractional grid): up to
    ``n_planes`` planes s₃ = const (fractional along the third lattice vector) through the
    species' fitted peaks (or its densest slabs), each the mean of ``slab_bins`` bins centred on
    the plane, drawn in Cartesian coordinates of the (a₁, a₂) plane (skewed for non-orthogonal
    cells), one colour bar per species; peak centres within the slab are crosses. No empty
    panels: a species with fewer planes gets fewer panels."""
    if "analysis" not in f or "density" not in f["analysis"] or not len(f["analysis"]["density"]):
        return []
    a = f["analysis"]
    cell = a["cell"][...]
    la, lb = np.linalg.norm(cell[0]), np.linalg.norm(cell[1])
    cos_g = cell[0] @ cell[1] / (la * lb)
    sin_g = np.sqrt(max(1 - cos_g ** 2, 0.0))
    peaks = a["peaks"] if "peaks" in a else None
    liquid = json.loads(_str(peaks.attrs["liquid_like"])) if peaks is not None and "liquid_like" in peaks.attrs \
        else []
    species = list(a["density"])
    centres = {}
    for s in species:
        sel = np.array([_str(x) == s for x in peaks["species"][...]], bool) if peaks is not None else None
        centres[s] = peaks["centres_frac"][...][sel] if peaks is not None else np.zeros((0, 3))
    planes = {s: _density_planes(a["density"][s][...], centres[s][:, 2], n_planes, slab_bins) for s in species}
    ncol = max(1, max(len(p) for p in planes.values()))
    plt = _plt()
    fig, axes = plt.subplots(len(species), ncol, figsize=(3.0 * ncol + 1.0, 2.8 * len(species) + 0.4),
                             squeeze=False)
    for row, s in enumerate(species):
        h = a["density"][s][...]
        n1, n2, n3 = h.shape
        u, v = np.meshgrid(np.arange(n1 + 1) / n1, np.arange(n2 + 1) / n2, indexing="ij")
        X, Y = u * la + v * lb * cos_g, v * lb * sin_g
        vmax = max(h.max(), 1e-300)
        mesh = None
        for col in range(ncol):
            ax = axes[row, col]
            if col >= len(planes[s]):
                fig.delaxes(ax)
                continue
            z = planes[s][col]
            k0 = int(np.floor(z * n3))
            ks = (k0 + np.arange(slab_bins) - slab_bins // 2) % n3
            mesh = ax.pcolormesh(X, Y, h[:, :, ks].mean(axis=2), cmap="viridis", vmin=0, vmax=vmax, shading="flat")
            c = centres[s]
            dz = (c[:, 2] - (ks[slab_bins // 2] + 0.5) / n3 + 0.5) % 1.0 - 0.5
            c = c[np.abs(dz) <= slab_bins / (2 * n3)]
            ax.plot(c[:, 0] * la + c[:, 1] * lb * cos_g, c[:, 1] * lb * sin_g, "r+", ms=5)
            ax.set_aspect("equal")
            ax.set_title(f"{s}{' (liquid-like)' if s in liquid else ''}, s₃ ≈ {z:.3f}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("x along a₁ (Å)", fontsize=8)
            if col == 0:
                ax.set_ylabel("y in (a₁, a₂) plane (Å)", fontsize=8)
        if mesh is not None:
            cb = fig.colorbar(mesh, ax=[axes[row, c] for c in range(len(planes[s]))], fraction=0.04, pad=0.02)
            cb.set_label("atoms per bin per configuration", fontsize=7)
            cb.ax.tick_params(labelsize=6)
    attrs = a.attrs
    fig.suptitle(f"ion density (all beads): T = {float(attrs.get('temperature_K', np.nan)):g} K, "
                 f"N_b = {int(attrs.get('n_beads', 0))}, {int(attrs.get('n_conf', 0))} configurations; "
                 "+ = fitted peak centres", fontsize=9)
    return _save(fig, out, "density_slices")


ALL = (plot_lambda, plot_gamma_scan, plot_tc, plot_bands, plot_spectral, plot_msd, plot_density)


def plot_results(f, out, formats=("png", "pdf"), reference=None) -> list[Path]:
    """Every figure the file has data for, into folder ``out`` (``reference``: see :func:`plot_lambda`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fn in ALL:
        written += fn(f, out, reference=reference) if fn is plot_lambda else fn(f, out)
    return written



def figures_beside(path) -> list[Path]:
    """All figures of the spia_mpi file ``path`` into the folder ``<stem>_plots`` next to it
    (rank 0 only; logs what it wrote, or a warning when matplotlib is missing)."""
    path = Path(path)
    try:
        from spia_mpi.io import hdf5
        with hdf5.open_h5(path, "r", None) as f:
            written = plot_results(f, path.with_name(path.stem + "_plots"))
    except ImportError:
        logger.warning("matplotlib not available: no figures")
        return []
    logger.info("figures: %s", ", ".join(str(p) for p in written if p.suffix == ".png"))
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
