"""Are λ(m)'s jackknife error bars honest? 160 independent seeds of a small Holstein metal with
exact Einstein samples, Born and Bethe–Salpeter mode, 8 and 32 configuration blocks
(drivers/errorbar_study.py; the tutorial-size study and its numbers are in docs/spia.md)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _driver():
    spec = importlib.util.spec_from_file_location("errorbar_study", REPO / "drivers" / "errorbar_study.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_t_matrices_from_the_bead_transform_equal_the_direct_route():
    """T(m) from ĝ(m) (:func:`spia.t_matrices_m`, the replicas' route) equals the bead transform of
    T_b = Ĝ⁻¹U†(g_b − Ḡ)UĜ⁻¹ (the full sample's route) for a Ḡ that is not the mean of the g_b
    (a replica's), with two states per k (a non-trivial rotation U) and random resolvents."""
    from spia_mpi.engine import spia
    rng = np.random.default_rng(4)
    nb, k_index = 6, np.array([0, 0, 1, 1, 2])
    g = rng.standard_normal((nb, 5, 5)) + 1j * rng.standard_normal((nb, 5, 5))
    other = rng.standard_normal((5, 5)) + 1j * rng.standard_normal((5, 5))
    gbar, _ = spia.average_greens(g.sum(axis=0) + 3 * other, nb + 3, k_index)
    bands = spia.renormalised_bands(gbar, 0.1 + 0.3j, k_index)
    assert np.max(np.abs(bands.rotation - np.diag(np.diag(bands.rotation)))) > 0.1
    direct = spia.bead_transform(spia.t_matrices(g, bands))
    assert np.allclose(spia.t_matrices_m(spia.bead_transform(g), bands), direct, rtol=0, atol=1e-12 * np.abs(direct).max())


def test_one_state_per_k_replica_sums_equal_the_per_configuration_route():
    """With one state per k, a replica's Σ_c T_c(m) and Σ_c |T_c(m)|² over a block follow from the
    block's sums of ĝ' = ĝ − C δ_m0 and |ĝ'|² (:mod:`replicas`): equal to the sums of
    :func:`spia.t_matrices_m` of every configuration (the general route) for a Ḡ that is not the
    block's mean, complex phases in U and a shift C that is not Ḡ — to 1e-12 of the largest term."""
    from spia_mpi.engine import replicas, spia
    rng = np.random.default_rng(7)
    n_m, n_s, n_c = 6, 5, 4
    assert replicas.one_state_per_k(np.arange(n_s)) and not replicas.one_state_per_k([0, 0, 1, 2, 3])
    gbar = 0.3 + 0.2 * rng.standard_normal(n_s) - 0.4j
    g_hat = [0.1 * (rng.standard_normal((n_m, n_s, n_s)) + 1j * rng.standard_normal((n_m, n_s, n_s)))
             for _ in range(n_c)]
    for g in g_hat:
        g[0] += np.diag(gbar)                            # ĝ(0) ≈ Ḡ + fluctuation, as for real resolvents
    phases = np.exp(2j * np.pi * rng.random(n_s))
    bands = spia.RenormalisedBands(np.zeros(n_s), np.zeros(n_s), np.diag(phases),
                                   np.diag(gbar * (1 + 0.05 * rng.standard_normal(n_s))), np.arange(n_s))
    direct = spia.MomentSums.zeros(n_m, n_s)
    for g in g_hat:
        direct.add(spia.t_matrices_m(g, bands))
    shift = gbar + 0.01 * rng.standard_normal(n_s)
    fast = replicas.t_moments(replicas.shifted_moments(g_hat, shift), shift, bands)
    assert fast.count == direct.count == n_c
    for a, b in ((fast.s1, direct.s1), (fast.s2, direct.s2)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


@pytest.mark.mpi(ranks=2)
@pytest.mark.parametrize("mode", ["bse", "born"])
def test_each_replica_is_the_run_without_its_block(mode):
    """A delete-one replica is the whole estimator on the other blocks: on 2 ranks (blocks and the
    replica sums split over the ranks), replica k's raw λ(m) and N_γ equal a serial run on the
    configurations of the other blocks alone (its own Ḡ, bands, weights, T, Γ, W; Fermi level
    given, so z and the weights' centre are the same) to 1e-10, for every k, 2 K-points."""
    from spia_mpi.engine.workflow import block_of, compute_lambda
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    from spia_mpi.parallel.mpi import world
    model = holstein_cubic(np.diag([2, 2, 2]), 1.0, 1.0, 1.5)
    pos = sample_einstein_ring_polymers(15, 4, np.full(8, 1.0), 0.1, 300.0, model.reference_positions,
                                        np.random.default_rng(21))
    kpts = [[0, 0, 0], [0, 0, 0.5]]
    opts = dict(gammas=(0.4, 0.8), mode=mode, fermi_level_ev=0.05)
    res = compute_lambda(model, pos, kpts, 300.0, n_blocks=4, comm=world(), **opts)
    blocks = block_of(15, 4)
    for k in range(4):
        sub = compute_lambda(model, pos[blocks != k], kpts, 300.0, n_blocks=3, comm=None, **opts)
        np.testing.assert_allclose(res.raw.replicas[k], sub.raw.value, rtol=1e-10, err_msg=str(k))
        np.testing.assert_allclose(res.n_gamma_jackknife[k], sub.n_gamma, rtol=1e-12)
    assert not np.allclose(res.n_gamma_jackknife[0], res.n_gamma, rtol=1e-9, atol=0)   # Ḡ's noise is in


def test_replicas_centre_their_weights_on_their_own_ensemble_fermi_level():
    """With the ensemble Fermi level (the default), replica k centres its Lorentzian weights on the mean
    of the per-configuration levels of the configurations it keeps, so the level's own noise is in σ.
    Oracle: a serial run on the configurations without block k with ε_F given as that mean (levels
    computed here with fermi.configuration_level). The replica differs from it only through Re z
    (the full sample's level: the resolvents are shared), so it must be ten times closer to it than
    to the same run centred on the full sample's level (what replicas did before)."""
    from spia_mpi.engine import fermi
    from spia_mpi.engine.workflow import block_of, compute_lambda
    from spia_mpi.ions.configurations import sample_einstein_ring_polymers
    from spia_mpi.models.tightbinding import holstein_cubic
    model = holstein_cubic(np.diag([3, 3, 3]), 1.0, 1.0, 3.5)       # 27 sites: ε_F off a gap's centre
    pos = sample_einstein_ring_polymers(16, 4, np.full(27, 1.0), 0.1, 300.0, model.reference_positions,
                                        np.random.default_rng(5))
    kpts = [[0, 0, 0]]
    opts = dict(gammas=(0.2, 0.4), mode="born", fermi_configurations=0)
    levels = np.array([fermi.configuration_level(model, pos[c], np.atleast_2d(kpts), 0.2, "fermi-dirac")
                       for c in range(16)])
    res = compute_lambda(model, pos, kpts, 300.0, n_blocks=4, **opts)
    assert res.fermi.weights == pytest.approx(levels.mean(), abs=1e-12)
    blocks = block_of(16, 4)
    for k in range(4):
        own = compute_lambda(model, pos[blocks != k], kpts, 300.0, n_blocks=3,
                             **dict(opts, fermi_level_ev=float(levels[blocks != k].mean())))
        full = compute_lambda(model, pos[blocks != k], kpts, 300.0, n_blocks=3,
                              **dict(opts, fermi_level_ev=float(levels.mean())))
        shift = np.abs(full.raw.value - own.raw.value).max()
        assert shift > 1e-3 * np.abs(own.raw.value).max(), k          # the centre matters here
        assert np.abs(res.raw.replicas[k] - own.raw.value).max() < 0.1 * shift, k
        assert np.abs(res.n_gamma_jackknife[k] - own.n_gamma).max() < 0.1 * np.abs(full.n_gamma - own.n_gamma).max()


N_SEEDS = 160


def _study_processes() -> int:
    """Driver processes for the study: one per usable core (at most 4). The seeds are independent,
    so the study is split into contiguous seed ranges run side by side; pytest itself runs tests
    one at a time and leaves the second core of the CI machine idle otherwise."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """160 seeds of the small system (``drivers/errorbar_study.py --size small``: 3×3×3 Holstein, Γ,
    64 exact Einstein samples × 8 beads, γ = 0.4/0.8 eV, the input's ensemble Fermi level) in Born
    and BSE mode with 8 and 32 blocks, through the run command: the driver's summary. The seeds are
    run by the driver's own command line in :func:`_study_processes` processes side by side (one
    BLAS thread each), each on its own range of seeds; the summary is taken over all 160 runs
    (≈ 4 min of CPU; 17 min on the loaded 2-core machine at load 20 when it ran in one process)."""
    from spia_mpi.io import inputs
    drv = _driver()
    base = drv.small_input(inputs.load_toml(REPO / "spia_mpi" / "data" / "demo.toml"))
    folder = tmp_path_factory.mktemp("errorbars")
    n_proc = _study_processes()
    edges = np.linspace(0, N_SEEDS, n_proc + 1).round().astype(int)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    procs = []
    for i in range(n_proc):
        out = folder / f"part{i}"
        cmd = [sys.executable, str(REPO / "drivers" / "errorbar_study.py"), "--size", "small",
               "--first-seed", str(edges[i] + 1), "--seeds", str(edges[i + 1] - edges[i]), "--out", str(out)]
        with open(folder / f"part{i}.log", "w") as log:
            procs.append((out, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
    runs = {}
    try:
        for out, proc in procs:
            proc.wait(timeout=3500)
            assert proc.returncode == 0, out.with_suffix(".log").read_text()[-4000:]
            part = json.loads((out / "study.json").read_text())
            assert part["input"] == base, "the driver ran another input than the test's"
            runs.update({int(seed): r for seed, r in part["runs"].items()})
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert sorted(runs) == list(range(1, N_SEEDS + 1))
    summary = drv.summarise(runs, base)
    print(drv.table(summary))
    return summary


def _chi2_band(n_seeds: int, p: float = 0.001):
    """Two-sided 1 − 2p band of a variance ratio over n seeds: χ²_{n−1}/(n−1) quantiles (p, 1 − p)."""
    from scipy.stats import chi2
    return tuple(chi2.ppf(q, n_seeds - 1) / (n_seeds - 1) for q in (p, 1 - p))


@pytest.mark.slow
@pytest.mark.timeout(3600)          # 640 runs: 17 min on the loaded 2-core machine
def test_jackknife_variance_matches_the_scatter_over_seeds_at_every_m(study):
    """σ² is an unbiased estimate of Var(λ): Var_seeds(λ(m))/⟨σ²(m)⟩ over 160 independent seeds lies
    inside the two-sided 99.8 % band of χ²_{159}/159 (0.69–1.38) for every m = 0 … N_b/2, both γ, Born
    and BSE, 8 and 32 blocks. This ratio does not depend on the number of blocks (σ's own noise
    averages out of ⟨σ²⟩). An error bar too small by 2 (the issue's report) gives 4 and fails; the
    m = 0 excess seen on seeds 1–60 (SD ratio 1.2, variance ratio 1.3) is inside the band and did
    not persist over more seeds (docs/spia.md)."""
    lo, hi = _chi2_band(N_SEEDS)
    for key, s in study.items():
        assert s["n_seeds"] == N_SEEDS
        ratio = np.array(s["var_ratio"])                                   # [γ, m]
        assert np.all((lo < ratio) & (ratio < hi)), (key, ratio.round(3), lo, hi)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_jackknife_errors_with_32_blocks_cover_like_student_t(study):
    """With 32 blocks r = (λ − ⟨λ⟩_seeds)/σ · √(N/(N−1)) has the SD of a Student-t with 31 degrees of
    freedom, √(31/29) = 1.03, for every m, γ and mode: SD(r)²/1.03² inside the same χ² band (SD(r)
    0.86–1.21 for 160 seeds)."""
    lo, hi = _chi2_band(N_SEEDS)
    honest = np.sqrt(31 / 29)
    for key in ("born_32", "bse_32"):
        sd = np.array(study[key]["sd_r"])
        assert np.all((np.sqrt(lo) * honest < sd) & (sd < np.sqrt(hi) * honest)), (key, sd.round(3))
