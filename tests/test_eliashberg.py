"""Linearised Eliashberg solver: analytic limits, Allen–Dynes, dense = SLEPc, 1 = 2 ranks."""
import json
import math

import numpy as np
import pytest

from spia_mpi.eliashberg import linearised as el
from spia_mpi.errors import InputError
from spia_mpi.units import KB_EV_PER_K

OMEGA = 0.05   # Einstein phonon energy ħΩ (eV) used throughout


def einstein(lambda0, t0, n_m=400):
    return el.einstein_lambda(lambda0, OMEGA, t0, n_m)


def test_fft_operator_equals_dense_kernel():
    rng = np.random.default_rng(1)
    lam = np.abs(rng.normal(size=2 * 37)) + 0.1
    K = el.kernel_dense(lam, 0.07, 37)
    assert np.array_equal(K, K.T)
    x = rng.normal(size=37)
    assert np.allclose(el.KernelOperator(lam, 0.07, 37).matvec(x), K @ x, rtol=0, atol=1e-12)
    # entries of the definition, spot-checked by hand
    n, m = 3, 5
    expected = lam[2] + lam[9] - 2 * 0.07
    assert K[n, m] == pytest.approx(expected)
    assert K[n, n] == pytest.approx(lam[0] + lam[7] - 0.14 - (7 + lam[0] + 2 * lam[1:4].sum()))


@pytest.mark.parametrize("n_freq", [40, 300])
def test_slepc_equals_dense(n_freq):
    lam = el.LambdaOfNu(einstein(2.0, 50.0), 50.0).on_grid(50.0, 2 * n_freq)
    dense = el.leading_eigenvalue(lam, 0.05, n_freq, "dense")
    for method in ("slepc", "slepc-assembled"):
        rho = el.leading_eigenvalue(lam, 0.05, n_freq, method)
        assert abs(rho - dense) <= 1e-10 * max(1.0, abs(dense)), method


def test_slepc_options_prefix_and_clean_failure():
    """PETSc options under ``spia_eliashberg_`` reach the EPS: one iteration cannot converge
    the leading eigenvalue to 1e-15 → ConvergenceError (objects destroyed in finally); with
    the option removed the next solve equals the dense one."""
    from spia_mpi.errors import ConvergenceError
    from spia_mpi.parallel import stack
    opts = stack.petsc().Options()
    lam = el.LambdaOfNu(einstein(2.0, 50.0), 50.0).on_grid(50.0, 2 * 300)
    opts.setValue("spia_eliashberg_eps_max_it", 1)
    try:
        with pytest.raises(ConvergenceError, match="no eigenvalue"):
            el.leading_eigenvalue(lam, 0.05, 300, "slepc", tol=1e-15)
    finally:
        opts.delValue("spia_eliashberg_eps_max_it")
    dense = el.leading_eigenvalue(lam, 0.05, 300, "dense")
    assert abs(el.leading_eigenvalue(lam, 0.05, 300, "slepc") - dense) <= 1e-10 * abs(dense)


def test_tc_independent_of_cutoff():
    """μ* renormalised to ω_c makes T_c cutoff-independent (0.5 %)."""
    lam = el.LambdaOfNu(einstein(1.5, 60.0), 60.0)
    tcs = [el.EliashbergSolver(lam, cutoff_omega2=c).tc(0.10) for c in (10, 20, 40)]
    assert (max(tcs) - min(tcs)) / np.mean(tcs) < 0.005, tcs
    # and with a fixed number of frequencies (the --nfreq path)
    tcs_n = [el.EliashbergSolver(lam, n_freq=n).tc(0.10) for n in (64, 128, 256)]
    assert (max(tcs_n) - min(tcs_n)) / np.mean(tcs_n) < 0.005, tcs_n


def test_strong_coupling_limit():
    """Allen & Dynes (1975): T_c → 0.1827 √λ0 ħΩ/k_B for λ0 → ∞ (μ* = 0).

    At λ0 = 400 the next-order correction is below 0.2 % (measured: 0.18274
    vs 0.18298 at λ0 = 400 and 0.18236 at λ0 = 100), so 0.5 % is a real check.
    """
    lambda0 = 400.0
    t0 = 0.1 * math.sqrt(lambda0) * OMEGA / KB_EV_PER_K   # T0 near T_c: fine ν grid
    lam = el.LambdaOfNu(einstein(lambda0, t0), t0, omega2_ev=OMEGA)
    tc = el.EliashbergSolver(lam, n_freq=200).tc(0.0)
    ratio = tc * KB_EV_PER_K / (math.sqrt(lambda0) * OMEGA)
    assert ratio == pytest.approx(0.1827, rel=0.005)


@pytest.mark.parametrize("lambda0", [1.0, 1.5, 2.0, 3.0])
def test_agrees_with_allen_dynes(lambda0):
    """Allen–Dynes' fitted formula reproduces full solutions to a few percent at
    moderate λ; we require 5 % for an Einstein spectrum with μ* = 0.1."""
    t0 = 30.0
    res = el.solve_tc(einstein(lambda0, t0), t0, [0.10])
    assert res.tc_k[0] == pytest.approx(res.allen_dynes_k[0], rel=0.05)
    assert res.lambda0 == pytest.approx(lambda0)


def test_tc_decreases_with_mustar_and_is_positive():
    res = el.solve_tc(einstein(2.0, 40.0), 40.0, [0.0, 0.1, 0.16, 0.25])
    assert all(t > 0 for t in res.tc_k)
    assert np.all(np.diff(res.tc_k) < 0)


def test_omega2_and_spectral_moments_recover_einstein():
    t0 = 40.0
    lam = einstein(1.2, t0, n_m=64)
    fit = el.fit_omega2(lam, t0)
    assert fit.omega2_ev == pytest.approx(OMEGA, rel=1e-4)
    mom = el.fit_spectral_moments(lam, t0)
    assert mom.lambda0 == pytest.approx(1.2, rel=1e-3)
    assert mom.omega_log_ev == pytest.approx(OMEGA, rel=0.01)
    assert mom.omega2_ev == pytest.approx(OMEGA, rel=0.01)


def test_lambda_of_nu_interpolates_between_temperatures():
    t0 = 100.0
    lam = el.LambdaOfNu(einstein(2.0, t0), t0)
    t = 77.0
    exact = el.einstein_lambda(2.0, OMEGA, t, 50)
    assert np.allclose(lam.on_grid(t, 50), exact, rtol=1e-6, atol=1e-9)   # exact for one mode
    # two modes: not exact, but the first interval is the only hard one
    two = lambda nu: 1.2 * 0.03**2 / (0.03**2 + nu**2) + 0.8 * 0.15**2 / (0.15**2 + nu**2)  # noqa: E731
    from spia_mpi.units import bosonic_frequency_ev
    lam2 = el.LambdaOfNu(two(bosonic_frequency_ev(np.arange(200), t0)), t0)
    nu = bosonic_frequency_ev(np.arange(60), t)
    assert np.allclose(lam2(nu), two(nu), rtol=0.05)   # measured worst: 3.6 % at m = 1


def test_no_tc_reported_not_crashing():
    res = el.solve_tc(einstein(0.15, 5.0, 100), 5.0, [0.30])
    assert math.isnan(res.tc_k[0]) and "no T_c" in res.errors["0.3"]
    assert el.solve_tc(einstein(0.5, 5.0, 100), 5.0, [0.0]).tc_k[0] > 0   # μ* = 0: always a T_c


def test_bad_inputs():
    with pytest.raises(InputError, match="λ\\(0\\)"):
        el.LambdaOfNu(np.array([-1.0, 0.5, 0.1]), 100.0)
    with pytest.raises(InputError, match="out of range"):
        el.solve_tc(einstein(1.0, 50.0), 50.0, [1.5])
    with pytest.raises(InputError, match="positive"):
        el.LambdaOfNu(einstein(1.0, 50.0), -3.0)


# ---------------------------------------------------------------- parallel

@pytest.mark.mpi(ranks=2)
def test_two_ranks_equal_one_rank():
    from spia_mpi.parallel.mpi import world
    comm = world()
    lam = el.LambdaOfNu(einstein(2.0, 50.0), 50.0).on_grid(50.0, 2 * 500)
    rho2 = el.leading_eigenvalue(lam, 0.1, 500, "slepc", comm)
    rho1 = el.leading_eigenvalue(lam, 0.1, 500, "dense")
    assert abs(rho2 - rho1) < 1e-10 * abs(rho1)
    assert comm.allgather(rho2)[0] == comm.allgather(rho2)[1]


# ---------------------------------------------------------------- command line

def write_lambda(path, lam, header="# lambda(m) test\n"):
    path.write_text(header + "\n".join(f"{x:.15e}" for x in lam) + "\n")
    return path


def test_cli_json_one_and_two_ranks(tmp_path, spia_cli):
    f = write_lambda(tmp_path / "lam.dat", einstein(2.0, 50.0, 128))
    args = ["tc", "--lambda", f, "--temperature", 50, "--mustar", 0.10, "--mustar", 0.16, "--json"]
    r1 = spia_cli(args)
    assert r1.returncode == 0, r1
    o1 = json.loads(r1.stdout)
    for key in ("leading_eigenvalue", "tc_K", "omega2_eV", "allen_dynes_K", "mcmillan_K", "mustar"):
        assert key in o1
    assert len(o1["tc_K"]) == 2 and o1["tc_K"][0] > o1["tc_K"][1] > 0
    assert o1["omega2_eV"] == pytest.approx(OMEGA, rel=1e-3)
    r2 = spia_cli(args + ["--method", "slepc"], ranks=2)
    assert r2.returncode == 0, r2
    o2 = json.loads(r2.stdout)              # rank 0 only: a single JSON object
    assert o2["mpi_ranks"] == 2
    assert np.allclose(o2["tc_K"], o1["tc_K"], rtol=1e-8)
    assert o2["leading_eigenvalue"] == pytest.approx(o1["leading_eigenvalue"], rel=1e-10)


def test_cli_nfreq_and_omega2(tmp_path, spia_cli):
    f = write_lambda(tmp_path / "lam.dat", einstein(1.5, 50.0, 64))
    r = spia_cli(["tc", "--lambda", f, "--temperature", 50, "--nfreq", 77, "--omega2", 0.05, "--json"])
    assert r.returncode == 0, r
    o = json.loads(r.stdout)
    assert o["nfreq_at_T0"] == 77 and o["omega2_eV"] == 0.05 and not o["omega2_fitted"]
    r = spia_cli(["tc", "--lambda", f, "--temperature", 50])
    assert r.returncode == 0 and "Allen" in r.stdout, r


@pytest.mark.parametrize("content,needle", [
    ("1.0\n0.5\nabc\n", "line 3: 'abc' is not a number"),
    ("2.0\n", "need at least m = 0 and 1"),
    ("-1\n0.3\n0.1\n", "λ(0) = -1.0 must be positive"),
    ("1.0\nnan\n0.2\n", "is not finite"),
])
def test_cli_bad_lambda_file_two_ranks(tmp_path, spia_cli, content, needle):
    f = tmp_path / "bad.dat"
    f.write_text(content)
    r = spia_cli(["tc", "--lambda", f, "--temperature", 50], ranks=2, timeout=60)
    assert r.returncode == 2, r
    assert needle in r.stderr and str(f) in r.stderr
    assert r.stderr.count("error:") == 1          # one message, from rank 0
    assert "Traceback" not in r.stderr


def test_cli_missing_file_and_temperature(tmp_path, spia_cli):
    r = spia_cli(["tc", "--lambda", tmp_path / "nope.dat", "--temperature", 50])
    assert r.returncode == 2 and "does not exist" in r.stderr, r
    f = write_lambda(tmp_path / "lam.dat", einstein(1.0, 50.0, 32))
    r = spia_cli(["tc", "--lambda", f])
    assert r.returncode == 2 and "--temperature" in r.stderr, r


def test_cli_reads_results_hdf5(tmp_path, spia_cli):
    from spia_mpi.io.hdf5 import atomic_h5, write_dataset
    path = tmp_path / "results.h5"
    lam = np.vstack([einstein(2.0, 50.0, 64), einstein(1.0, 50.0, 64)])
    with atomic_h5(path, None, kind="results") as f:
        g = f.create_group("lambda")
        g.attrs["temperature_K"] = 50.0
        write_dataset(g, "lambda_m", lam, "1")
        write_dataset(g, "gamma_eV", [0.8, 0.2], "eV")
    r = spia_cli(["tc", "--lambda", path, "--gamma", 0.25, "--json"])
    assert r.returncode == 0, r
    o = json.loads(r.stdout)
    assert o["gamma_eV"] == 0.2 and o["lambda0"] == pytest.approx(1.0)
    ref = el.solve_tc(lam[1], 50.0, [0.1])
    assert o["tc_K"][0] == pytest.approx(ref.tc_k[0], rel=1e-9)
    # an unfinished file is refused
    with atomic_h5(tmp_path / "x.h5", None, kind="results") as f:
        pass
    import h5py
    with h5py.File(tmp_path / "x.h5", "a") as f:
        f.attrs["complete"] = False
    r = spia_cli(["tc", "--lambda", tmp_path / "x.h5"])
    assert r.returncode == 2 and "did not finish" in r.stderr, r


# ---------------------------------------------------------------- T_c error bars (jackknife)

def _einstein_blocks(n_blocks=8, lambda0=2.0, omega=0.1, t0=300.0, n_m=9, noise=0.05, seed=7):
    """Block estimates λ0_b = λ0 + ε_b (known independent ε_b) of an Einstein λ(ν); returns
    (λ(m) shape for λ0 = 1, central λ0 = mean of blocks, delete-one replicas of λ0, ε)."""
    shape = el.einstein_lambda(1.0, omega, t0, n_m)
    eps = np.random.default_rng(seed).normal(0.0, noise, n_blocks)
    reps = np.array([lambda0 + np.delete(eps, i).mean() for i in range(n_blocks)])
    return shape, lambda0 + eps.mean(), reps, eps


def test_jackknife_tc_matches_linear_error_propagation():
    """λ(ν) = λ0 Ω²/(Ω²+ν²) with λ0 from 8 blocks perturbed by known independent ε_b:
    the standard error of λ0 is std(ε)/√n (independent of any jackknife code), and to first
    order σ_Tc = σ_λ0 · dT_c/dλ0 with the derivative by central finite differences of the
    solver. The jackknife σ_Tc must agree within 1 % (second-order terms are
    ~ (T''/T')·σ_λ0 ≈ 0.1 % here; measured 0.06–0.08 %). A missing (n−1)/n·Σ or a plain
    standard deviation of the replicas would be off by a factor ≈ n−1 or √(n−1)."""
    t0, mus = 300.0, [0.0, 0.1, 0.16]
    shape, lam0, reps, eps = _einstein_blocks(t0=t0)
    central = el.solve_tc(lam0 * shape, t0, mus).tc_k
    jk = el.jackknife_tc(reps[:, None] * shape[None, :], t0, mus, central)
    assert jk.tc_replicas_k.shape == (8, 3) and not jk.errors
    sigma_lam0 = eps.std(ddof=1) / math.sqrt(eps.size)
    h = 1e-3
    dtc = (np.array(el.solve_tc((lam0 + h) * shape, t0, mus).tc_k)
           - np.array(el.solve_tc((lam0 - h) * shape, t0, mus).tc_k)) / (2 * h)
    expected = sigma_lam0 * dtc
    assert np.all(dtc > 0)
    assert np.allclose(jk.tc_error_k, expected, rtol=1e-2, atol=0), (jk.tc_error_k, expected)
    # σ shrinks with μ* here (dT_c/dλ0 does); the error is a small fraction of T_c
    assert np.all(np.diff(jk.tc_error_k) < 0) and np.all(jk.tc_error_k < 0.05 * np.array(central))


def test_jackknife_tc_reports_missing_tc():
    """A μ* without a central T_c, or a replica without one, gives NaN and a reason."""
    t0 = 300.0
    shape, lam0, reps, _ = _einstein_blocks(lambda0=0.6, noise=0.01, n_blocks=4, t0=t0)
    # μ* = 0.5 kills superconductivity at λ0 = 0.6: no central T_c → skipped
    central = el.solve_tc(lam0 * shape, t0, [0.1, 0.5]).tc_k
    assert math.isfinite(central[0]) and math.isnan(central[1])
    jk = el.jackknife_tc(reps[:, None] * shape[None, :], t0, [0.1, 0.5], central)
    assert math.isfinite(jk.tc_error_k[0]) and jk.tc_error_k[0] > 0
    assert math.isnan(jk.tc_error_k[1]) and "no central T_c" in jk.errors["0.5"]
    # one replica with λ(0) ≤ 0 cannot be solved: σ is NaN, the reason names the replica
    bad = reps[:, None] * shape[None, :]
    bad[2] *= -1
    jk = el.jackknife_tc(bad, t0, [0.1], central[:1])
    assert math.isnan(jk.tc_error_k[0]) and "1 of 4 replicas" in jk.errors["0.1"] \
        and "replica 2" in jk.errors["0.1"]


@pytest.mark.mpi(ranks=2)
def test_jackknife_tc_two_ranks_equal_one_rank():
    """Replica solves are distributed over the ranks and gathered: identical numbers."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    t0, mus = 300.0, [0.1, 0.16]
    shape, lam0, reps, _ = _einstein_blocks(n_blocks=5, t0=t0)
    central = el.solve_tc(lam0 * shape, t0, mus).tc_k
    a = el.jackknife_tc(reps[:, None] * shape[None, :], t0, mus, central, comm=comm)
    b = el.jackknife_tc(reps[:, None] * shape[None, :], t0, mus, central)
    assert np.array_equal(a.tc_replicas_k, b.tc_replicas_k)
    assert np.array_equal(a.tc_error_k, b.tc_error_k)
