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
