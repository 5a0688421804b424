"""drivers/gpaw_bse_consistency.py: the pieces that need no GPAW run — the scaled samples (u → s·u from
the model's reference sites, minimum images: wrapped atoms scale as their displacement, not their
position), the per-case inputs (the run's schema, absolute structure path, shared checkpoint) and the
input checks. The GPAW runs themselves are the driver's job (minutes; docs/benchmarks.md)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from samples import wrapped

REPO = Path(__file__).resolve().parents[1]

RUN = """
[model]
kind = "grid"
[model.grid]
structure = "{structure}"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 2, 2]
[configurations]
source = "file"
file = "conf.h5"
stride = 2
[spia]
fermi_level = "reference"
{extra}
[output]
file = "out.h5"
"""


def _driver():
    spec = importlib.util.spec_from_file_location("gpaw_bse_consistency", REPO / "drivers" / "gpaw_bse_consistency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _case(tmp_path, extra=""):
    from ase.build import bulk

    from spia_mpi.commands.run import build_model
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.ions.configurations import Configurations, write_h5
    bulk("H", "sc", a=2.0).write(tmp_path / "h.extxyz", format="extxyz")
    (tmp_path / "in.toml").write_text(RUN.format(structure="h.extxyz", extra=extra))
    inp, folder = load_run_input(tmp_path / "in.toml")
    model = build_model(inp, folder)
    rng = np.random.default_rng(2)
    u = rng.normal(scale=0.2, size=(6, 2, 8, 3))
    cell = np.asarray(model.atoms.cell[:])
    folded = wrapped(model.reference_positions + u, cell)
    assert np.abs(folded - model.reference_positions - u).max() > 1.0          # some atoms wrapped
    write_h5(Configurations(folded, cell, model.atoms.numbers, model.atoms.get_masses(), 300.0, 0.0, "t"),
             tmp_path / "conf.h5")
    return inp, folder, model, u


def test_scaled_samples_and_case_inputs(tmp_path):
    import tomllib

    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.ions.configurations import read_h5
    drv = _driver()
    inp, folder, model, u = _case(tmp_path)
    case = tmp_path / "s0.5"
    case.mkdir()
    drv.scaled_configurations(inp, folder, 0.5, case / "conf.h5")
    got = read_h5(case / "conf.h5").positions
    np.testing.assert_allclose(got, model.reference_positions + 0.5 * u[::2], atol=1e-12)   # stride 2 applied
    base = tomllib.loads((tmp_path / "in.toml").read_text())
    paths = {m: drv.case_input(base, folder, case, m) for m in drv.MODES}
    runs = {m: load_run_input(p)[0] for m, p in paths.items()}
    assert runs["born"].spia.mode == "born" and runs["bse"].spia.mode == "bse"
    for r in runs.values():
        assert r.configurations.file == str(case / "conf.h5") and r.configurations.stride == 1
        assert r.output.checkpoint == str(case / "checkpoint") and Path(r.model.grid.structure).is_absolute()


@pytest.mark.parametrize("edit, match", [
    (("[spia]", "[spia]\nwindow_ev = [-2.0, 2.0]"), "window_ev"),
    (('fermi_level = "reference"', 'fermi_level = "ensemble"'), "fermi_level"),
    (('fermi_level = "reference"', 'fermi_level = "ensemble"\nfermi_level_ev = 1.0'), None),   # a given ε_F
    (('source = "file"', 'source = "einstein"'), "configurations.source")])
def test_input_checks(tmp_path, edit, match):
    from spia_mpi.errors import InputError
    from spia_mpi.io.runinput import load_run_input
    drv = _driver()
    _case(tmp_path)
    (tmp_path / "in.toml").write_text(RUN.format(structure="h.extxyz", extra="").replace(*edit))
    inp = load_run_input(tmp_path / "in.toml")[0]
    if match is None:
        drv.check_input(inp)
    else:
        with pytest.raises(InputError, match=match):
            drv.check_input(inp)


def test_window_lambdas_against_compute_harmonic_and_the_reduction_driver():
    """The harmonic side's own λ_harm and BSE(W₀) from the kept couplings: over every state they equal
    compute_harmonic's λ_harm (its q-resolved pair sums) and drivers/harmonic_reduction_gpaw.bse_of_born
    (1e-10); a window holding every state changes nothing, a narrower one keeps only its states and
    changes λ (Holstein 2×2×2, 2 K-points, Einstein Φ; couplings × s scale λ by s²)."""
    from spia_mpi.engine.harmonic import compute_harmonic
    from spia_mpi.ions.forceconstants import einstein_force_constants
    from spia_mpi.models.tightbinding import holstein_cubic
    drv = _driver()
    spec = importlib.util.spec_from_file_location("harmonic_reduction_gpaw", REPO / "drivers" / "harmonic_reduction_gpaw.py")
    red = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(red)
    model = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 2.0, mass_amu=2.0)
    h = compute_harmonic(model, einstein_force_constants(model.atoms.get_masses(), 0.1), [[0, 0, 0], [0.5, 0, 0]],
                         300.0, 4, J=8, n_per_k=1, gammas=(0.3, 0.6), fermi_level_ev=0.2, centre_ev=0.2,
                         keep_couplings=True)
    whole = drv.window_lambdas(h, "keep", None, [1.0, 0.5])
    np.testing.assert_allclose(whole["lambda_bead"], h.lambda_bead, rtol=1e-10)
    np.testing.assert_allclose(whole["bse_w0"]["1"], red.bse_of_born(h, "keep"), rtol=1e-10)
    import dataclasses
    half = dataclasses.replace(h, couplings=[0.5 * g for g in h.couplings])
    np.testing.assert_allclose(whole["bse_w0"]["0.5"], red.bse_of_born(half, "keep"), rtol=1e-10)
    wide = drv.window_lambdas(h, "keep", 100.0, [1.0])
    assert wide["n_states_per_K"] == whole["n_states_per_K"] == [8, 8]
    np.testing.assert_allclose(wide["lambda_bead"], whole["lambda_bead"], rtol=1e-12)
    narrow = drv.window_lambdas(h, "keep", 2.0, [1.0])
    want = [int(np.sum(np.abs(e - 0.2) <= 2.0)) for e in h.energies]
    assert narrow["n_states_per_K"] == want and min(want) < 8
    assert np.abs(np.array(narrow["lambda_bead"]) - whole["lambda_bead"]).max() > 1e-3 * np.abs(whole["lambda_bead"]).max()
