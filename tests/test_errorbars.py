"""Are λ(m)'s jackknife error bars honest? 20 independent seeds of a small Holstein metal with
exact Einstein samples, Born and Bethe–Salpeter mode, 8 and 32 configuration blocks
(drivers/errorbar_study.py; the tutorial-size study is in docs/spia.md)."""
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


@pytest.mark.slow
def test_jackknife_errors_match_the_scatter_over_seeds(tmp_path):
    """For each (mode, blocks): r = (λ − ⟨λ⟩_seeds)/σ over 20 seeds × 5 m × 2 γ. Honest error bars
    give SD(r) = 1 inflated by the noise of σ itself: a delete-one jackknife over n blocks has
    n − 1 degrees of freedom, SD(r) ≈ √((n−1)/(n−3)) (1.18 for 8 blocks, 1.03 for 32). The
    pooled SD(r) must lie within that value × [0.7, 1.35] (the 20-seed sampling spread of an SD,
    ±1/√40 ≈ 16 %, with the values at different m and γ strongly correlated, so ≈ 2σ); a σ that
    is too small by 2 (the issue's report) fails. The Born-mode λ must also agree with the exact
    harmonic value N_γ g²/(M(Ω² + Ω_m²)) (computed in the driver from ase.units, not from the
    code under test) within 4 standard errors of the 20-seed mean at every m and γ."""
    drv = _driver()
    from spia_mpi.io import inputs
    base = inputs.load_toml(REPO / "spia_mpi" / "data" / "demo.toml")
    base["supercell"].update(matrix=[3, 3, 3], kpoints=[[0.0, 0.0, 0.0]])
    base["configurations"]["einstein"].update(n_samples=64, n_beads=8)
    base["spia"]["gamma_ev"] = [0.4, 0.8]
    runs = {seed: drv.run_seed(seed, tmp_path, ["born", "bse"], [8, 32], base) for seed in range(1, 21)}
    summary = drv.summarise(runs, base)
    print(drv.table(summary))
    for key, s in summary.items():
        n = int(key.split("_")[1])
        expect = np.sqrt((n - 1) / (n - 3))
        assert 0.7 * expect < s["sd_r_pooled"] < 1.35 * expect, (key, s["sd_r_pooled"], expect)
    bias = np.array(summary["born_32"]["bias_over_se"])
    assert np.abs(bias).max() < 4, bias
