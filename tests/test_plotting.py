"""Plots open, are non-empty, and bad files are refused clearly."""
import numpy as np

from spia_mpi.eliashberg.linearised import einstein_lambda, solve_tc
from spia_mpi.io.hdf5 import atomic_h5, write_dataset


def results_file(path):
    t0 = 100.0
    gammas = [0.2, 0.8]
    lam = np.vstack([einstein_lambda(l0, 0.08, t0, 9) for l0 in (1.2, 1.5)])
    mus = [0.1, 0.13, 0.16]
    with atomic_h5(path, None, kind="results") as f:
        g = f.create_group("lambda")
        g.attrs["temperature_K"] = t0
        write_dataset(g, "lambda_m", lam, "1")
        write_dataset(g, "lambda_m_error", 0.02 * lam, "1")
        write_dataset(g, "gamma_eV", gammas, "eV")
        write_dataset(g, "omega2_eV", [0.08, 0.08], "eV")
        e = f.create_group("eliashberg")
        res = [solve_tc(row, t0, mus) for row in lam]
        write_dataset(e, "mustar", mus, "1")
        write_dataset(e, "tc_K", [r.tc_k for r in res], "K")
        write_dataset(e, "allen_dynes_K", [r.allen_dynes_k for r in res], "K")
        write_dataset(e, "mcmillan_K", [r.mcmillan_k for r in res], "K")
        b = f.create_group("bands")
        b.attrs["fermi_level_eV"] = 0.0
        k = np.linspace(0, np.pi, 8)
        write_dataset(b, "energies_eV", -2 * np.cos(k)[:, None] + np.array([[0.0, 3.0]]), "eV")
        write_dataset(b, "half_width_eV", np.full((8, 2), 0.1), "eV")
    return path


def test_plot_command_writes_nonempty_png_and_pdf(tmp_path, spia_cli):
    path = results_file(tmp_path / "res.h5")
    r = spia_cli(["plot", path, "--out", tmp_path / "figs"])
    assert r.returncode == 0, r
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    for stem in ("lambda_m", "lambda_vs_gamma", "tc_vs_mustar", "bands"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    from matplotlib.image import imread
    img = imread(tmp_path / "figs" / "lambda_m.png")
    assert img.shape[0] > 200 and img.std() > 0.01        # not blank


def test_plot_refuses_bad_files(tmp_path, spia_cli):
    r = spia_cli(["plot", tmp_path / "missing.h5"])
    assert r.returncode == 2 and "does not exist" in r.stderr, r
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    r = spia_cli(["plot", bad])
    assert r.returncode == 2 and "not an HDF5 file" in r.stderr, r


def _figures(monkeypatch):
    """Capture the matplotlib figures the plotting functions save: {stem: figure}."""
    from spia_mpi.io import plotting
    figs = {}

    def keep(fig, out, stem, formats=("png",)):
        figs[stem] = fig
        return []
    monkeypatch.setattr(plotting, "_save", keep)
    return figs


def test_figures_say_what_they_show(tmp_path, monkeypatch):
    """tc_vs_mustar: one labelled Eliashberg curve per γ, a γ without T_c named; lambda_m: a
    reference overlaid per γ; titles carry T and N_b; legends outside the data axes; density
    slices: a colour bar per species and only panels with density (Li on one plane only)."""
    import h5py
    from spia_mpi.io import plotting
    path = results_file(tmp_path / "res.h5")
    with h5py.File(path, "r+") as f:
        f["lambda"].attrs["n_beads"] = 16
        tc = f["eliashberg/tc_K"][...]
        tc[1] = np.nan                                   # γ = 0.8 eV: no T_c at all
        f["eliashberg/tc_K"][...] = tc
    figs = _figures(monkeypatch)
    with h5py.File(path) as f:
        plotting.plot_tc(f, tmp_path)
        plotting.plot_lambda(f, tmp_path, reference=("exact", np.ones((2, 9))))
    ax = figs["tc_vs_mustar"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Eliashberg, γ = 0.2 eV" in labels and "γ = 0.8 eV: no T_c in range" in labels, labels
    assert "T = 100 K" in ax.get_title() and "N_b = 16" in ax.get_title()
    ax = figs["lambda_m"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"exact, γ = 0.2 eV", "exact, γ = 0.8 eV", "γ = 0.2 eV", "γ = 0.8 eV"} <= set(labels), labels
    fig = figs["lambda_m"]
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.x0 >= ax.get_window_extent().x1                # legend right of the data axes
    # density: Li only near s₃ = 0.5 (one plane), H on two planes
    cell = np.diag([4.0, 4.0, 4.0])
    rng = np.random.default_rng(0)
    h_li = np.zeros((20, 20, 20))
    h_li[10, 10, 10] = 1.0
    h_h = np.zeros((20, 20, 20))
    h_h[5, 5, 2] = h_h[15, 15, 12] = 1.0
    h_h += 1e-3 * rng.random(h_h.shape)
    with atomic_h5(tmp_path / "an.h5", None, kind="analysis") as f:
        a = f.create_group("analysis")
        a.attrs.update(temperature_K=300.0, n_beads=8, n_conf=10)
        write_dataset(a, "cell", cell, "Å")
        d = a.create_group("density")
        write_dataset(d, "Li", h_li, "1")
        write_dataset(d, "H", h_h, "1")
        p = a.create_group("peaks")
        write_dataset(p, "species", np.array(["Li", "H", "H"], dtype="S"), "1")
        write_dataset(p, "centres_frac", [[0.525, 0.525, 0.525], [0.275, 0.275, 0.125], [0.775, 0.775, 0.625]], "1")
        p.attrs["liquid_like"] = "[]"
    with h5py.File(tmp_path / "an.h5") as f:
        plotting.plot_density(f, tmp_path)
    fig = figs["density_slices"]
    panels = [x for x in fig.axes if x.get_label() != "<colorbar>"]
    bars = [x for x in fig.axes if x.get_label() == "<colorbar>"]
    assert sorted(x.get_title().split(",")[0] for x in panels) == ["H", "H", "Li"]
    assert len(bars) == 2
    for x in panels:                                          # every panel shows density
        assert x.collections[0].get_array().max() > 0.1 / 3
    assert "N_b = 8" in fig._suptitle.get_text()
