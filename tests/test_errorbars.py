"""Are λ(m)'s jackknife error bars honest? 20 independent seeds of a small Holstein metal with
exact Einstein samples, Born and Bethe–Salpeter mode, 8 and 32 configuration blocks
(drivers/errorbar_study.py; the tutorial-size study and its numbers are in docs/spia.md)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _driver():
    spec = importlib.util.spec_from_file_location("errorbar_study", REPO / "drivers" / "errorbar_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """20 seeds of a 3×3×3 Holstein supercell (Γ only, 64 samples × 8 beads, γ = 0.4 and 0.8 eV) in
    Born and BSE mode with 8 and 32 blocks: (summary, n_m). ≈ 2.5 min on 2 busy cores."""
    drv = _driver()
    from spia_mpi.io import inputs
    base = inputs.load_toml(REPO / "spia_mpi" / "data" / "demo.toml")
    base["supercell"].update(matrix=[3, 3, 3], kpoints=[[0.0, 0.0, 0.0]])
    base["configurations"]["einstein"].update(n_samples=64, n_beads=8)
    base["spia"]["gamma_ev"] = [0.4, 0.8]
    folder = tmp_path_factory.mktemp("errorbars")
    runs = {seed: drv.run_seed(seed, folder, ["born", "bse"], [8, 32], base) for seed in range(1, 21)}
    summary = drv.summarise(runs, base)
    print(drv.table(summary))
    return summary


def _expected_sd(key):
    """SD of (λ − mean)/σ for honest errors: a delete-one jackknife over n blocks has n − 1 degrees
    of freedom, so r is Student-t-like with SD ≈ √((n−1)/(n−3)) (1.18 for 8 blocks, 1.03 for 32)."""
    n = int(key.split("_")[1])
    return np.sqrt((n - 1) / (n - 3))


@pytest.mark.slow
def test_jackknife_errors_beyond_m1_match_the_scatter_over_seeds(study):
    """r = (λ − ⟨λ⟩_seeds)/σ at m = 2 … 4 over 20 seeds and both γ: SD(r) within [0.7, 1.35] × the
    honest value for Born and BSE, 8 and 32 blocks (20 seeds: an SD is known to ±16 %, and the
    values at different m and γ are strongly correlated, so these bounds are ≈ 2σ); an error bar
    too small by 2 (as the issue reported) fails."""
    for key, s in study.items():
        sd = np.sqrt(np.mean(np.square(s["sd_r"])[:, 2:]))
        assert 0.7 * _expected_sd(key) < sd < 1.35 * _expected_sd(key), (key, sd)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known (issue #18 closing note, docs/spia.md): the jackknife replicas keep "
                                       "the full-sample renormalised bands Ḡ, so σ(λ(0)), σ(λ(1)) miss their noise; "
                                       "SD(r) ≈ 1.5 for 8 and for 32 blocks")
def test_jackknife_errors_at_m0_match_the_scatter_over_seeds(study):
    """The same test at m = 0 (the coupling constant λ itself)."""
    for key, s in study.items():
        sd = np.sqrt(np.mean(np.square(s["sd_r"])[:, 0]))
        assert sd < 1.35 * _expected_sd(key), (key, sd)
