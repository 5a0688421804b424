"""`spia_mpi tc --lambda RESULTS.h5`: the statistical error of T_c from the λ(m) jackknife
replicas stored by `spia_mpi run` (/lambda/lambda_m_jackknife)."""
import json
import shutil

import numpy as np
import pytest


MUSTARS = [0.1, 0.16]


@pytest.fixture(scope="module")
def two_gamma_run(tmp_path_factory, small_run):
    """A 2-rank tiny `run` (tests/test_run.py's SMALL input) with two γ and two μ*."""
    from conftest import run_cli
    folder = tmp_path_factory.mktemp("tc_cli")
    p = small_run.write(folder)
    text = p.read_text().replace("gamma_ev = [0.5]", "gamma_ev = [0.5, 1.0]")
    p.write_text(text.replace("mustar = [0.1]", f"mustar = {MUSTARS}"))
    r = run_cli(["run", p], ranks=2)
    assert r.returncode == 0, r
    return folder / "res.h5"


def _tc_json(spia_cli, path, *extra, ranks=1):
    args = ["tc", "--lambda", path, "--json", *extra]
    for mu in MUSTARS:
        args += ["--mustar", mu]
    r = spia_cli(args, ranks=ranks)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_results_file_holds_the_lambda_replicas(two_gamma_run):
    """/lambda/lambda_m_jackknife [n_blocks, n_γ, n_m] is what lambda_m_error was computed from
    (σ = √((n−1)/n Σ(λ_i − λ̄)²), the formula written out here) and equals the replicas rebuilt
    independently from /lambda_q/pair_sums_jackknife (λ ∝ Σ_q pair sums / N_γ, one factor per γ,
    each replica with its own N_γ)."""
    import h5py
    with h5py.File(two_gamma_run, "r") as f:
        ds = f["lambda/lambda_m_jackknife"]
        assert ds.attrs["units"] == "1" and "block" in ds.attrs["description"]
        reps, lam, err = ds[...], f["lambda/lambda_m"][...], f["lambda/lambda_m_error"][...]
        pair = f["lambda_q/pair_sums"][...].sum(axis=1)                 # [γ, m]
        pair_jk = f["lambda_q/pair_sums_jackknife"][...].sum(axis=2)    # [block, γ, m]
        pair = pair / f["lambda/n_gamma_per_cell"][...][:, None]                        # λ ∝ P/N_γ
        pair_jk = pair_jk / f["lambda/n_gamma_per_cell_jackknife"][...][:, :, None]      # each replica's N_γ
    assert reps.shape == (6, 2, lam.shape[1]), reps.shape               # n_blocks = 6 in SMALL
    n = reps.shape[0]
    sigma = np.sqrt((n - 1) / n * ((reps - reps.mean(axis=0)) ** 2).sum(axis=0))
    assert np.allclose(sigma, err, rtol=1e-10, atol=1e-14)
    assert np.allclose(reps, lam[None] * pair_jk / pair[None], rtol=1e-8, atol=1e-12)
    assert not np.allclose(reps[0], reps[1])                           # really different replicas


@pytest.mark.parametrize("gamma_row", [0, 1])
def test_tc_cli_error_equals_run_error(two_gamma_run, spia_cli, gamma_row):
    """`tc --lambda results.h5 --gamma γ --json` (2 ranks) reports tc_K_error equal to the run's own
    /eliashberg/tc_K_error of that γ row (same replicas, same solver: 1e-6 relative), T_c equal to
    the run's, and 0 < σ < T_c, finite."""
    import h5py
    with h5py.File(two_gamma_run, "r") as f:
        gammas = f["lambda/gamma_eV"][...]
        tc_run, err_run = f["eliashberg/tc_K"][gamma_row], f["eliashberg/tc_K_error"][gamma_row]
    assert np.all(np.isfinite(err_run)), err_run
    o = _tc_json(spia_cli, two_gamma_run, "--gamma", gammas[gamma_row], ranks=2)
    assert o["gamma_eV"] == pytest.approx(gammas[gamma_row])
    assert o["mustar"] == MUSTARS
    err = np.array(o["tc_K_error"], float)
    assert np.allclose(o["tc_K"], tc_run, rtol=1e-6), (o["tc_K"], tc_run)
    assert np.allclose(err, err_run, rtol=1e-6, atol=0), (err, err_run)
    assert np.all(np.isfinite(err)) and np.all(err > 0) and np.all(err < np.array(o["tc_K"])), err
    assert o["tc_K_error_notes"] == {}


def test_tc_cli_text_output_and_missing_replicas(two_gamma_run, spia_cli, tmp_path):
    """Text output prints "T_c = X ± σ K" per μ* with the JSON numbers; --no-tc-errors and a results
    file without /lambda/lambda_m_jackknife (older spia_mpi) give NaN with a reason, T_c unchanged."""
    import h5py
    o = _tc_json(spia_cli, two_gamma_run)
    args = ["tc", "--lambda", two_gamma_run] + [a for mu in MUSTARS for a in ("--mustar", mu)]
    r = spia_cli(args)
    assert r.returncode == 0, r
    lines = [ln for ln in r.stdout.splitlines() if "T_c = " in ln and "±" in ln]
    assert len(lines) == len(MUSTARS), r.stdout
    for ln, tc, err in zip(lines, o["tc_K"], o["tc_K_error"]):
        x, s = ln.split("T_c = ")[1].split(" K")[0].split(" ± ")
        assert (x, s) == (f"{tc:.2f}", f"{err:.2g}"), ln
    off = _tc_json(spia_cli, two_gamma_run, "--no-tc-errors")
    assert all(x is None for x in off["tc_K_error"]) and "switched off" in off["tc_K_error_notes"]["all"]
    old = tmp_path / "old.h5"
    shutil.copy(two_gamma_run, old)
    with h5py.File(old, "a") as f:
        del f["lambda/lambda_m_jackknife"]
    o_old = _tc_json(spia_cli, old)
    assert all(x is None for x in o_old["tc_K_error"])
    assert "lambda_m_jackknife" in o_old["tc_K_error_notes"]["all"]
    assert np.allclose(o_old["tc_K"], o["tc_K"], rtol=1e-10)


def test_tc_json_is_strict_json_when_there_is_no_tc(tmp_path, spia_cli):
    """Weak coupling and a large μ*: no T_c exists; --json still prints strict JSON (null, not NaN)
    with the reason, and exits 0."""
    import json as _json
    f = tmp_path / "weak.dat"
    f.write_text("# weak Einstein coupling\n" + "\n".join(str(0.05 / (1 + m ** 2)) for m in range(12)) + "\n")
    r = spia_cli(["tc", "--lambda", f, "--temperature", 100, "--mustar", 0.3, "--json"])
    assert r.returncode == 0, r

    def refuse(token):
        raise AssertionError(f"non-JSON constant {token} in the output")
    out = _json.loads(r.stdout, parse_constant=refuse)
    assert out["tc_K"] == [None] and "coupling too weak" in out["tc_errors"]["0.3"], out


def test_tc_gap_option_gives_the_weak_coupling_bcs_numbers(tmp_path, spia_cli):
    """`tc --gap` (2 ranks) on Einstein λ0 = 0.3, μ* = 0: 2Δ₀/k_BT_c = 2πe^{−γ_E} and ΔC/γT_c = 12/(7ζ(3))
    (weak-coupling BCS, computed here) within 1.5 %; Δ vanishes at the printed T_c within 0.5 %; the text
    table prints the line; `--anisotropic` with a text file is refused."""
    import math

    from spia_mpi.eliashberg.linearised import einstein_lambda
    lam = tmp_path / "lam.dat"
    lam.write_text("\n".join(f"{x:.15e}" for x in einstein_lambda(0.3, 0.05, 100.0, 200)) + "\n")
    r = spia_cli(["tc", "--lambda", lam, "--temperature", 100, "--mustar", 0.0, "--omega2", 0.05, "--gap",
                  "--json"], ranks=2)
    assert r.returncode == 0, r
    g = json.loads(r.stdout)["gap"][0]
    assert abs(g["ratio_2delta0_kTc_edge"] / (2 * math.pi * math.exp(-0.5772156649015329)) - 1) < 0.015, g
    assert abs(g["specific_heat_jump_ratio"] / (12 / (7 * 1.2020569031595942)) - 1) < 0.015, g
    assert abs(g["tc_from_gap_K"] / g["tc_K"] - 1) < 0.005
    t = spia_cli(["tc", "--lambda", lam, "--temperature", 100, "--mustar", 0.0, "--gap"])
    assert t.returncode == 0 and "2Δ₀/k_BT_c" in t.stdout, t
    bad = spia_cli(["tc", "--lambda", lam, "--temperature", 100, "--anisotropic"])
    assert bad.returncode == 2 and "--anisotropic needs a results file" in bad.stderr, bad
