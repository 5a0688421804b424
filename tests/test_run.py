"""`spia_mpi run` / `demo` end to end: outputs, 1 rank = 2 ranks, kill + resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spia_mpi.io import inputs
from spia_mpi.io import runinput

def test_run_one_and_two_ranks_identical(tmp_path, spia_cli, small_run):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r1 = spia_cli(["run", small_run.write(tmp_path / "a")])
    assert r1.returncode == 0, r1
    r2 = spia_cli(["run", small_run.write(tmp_path / "b")], ranks=2)
    assert r2.returncode == 0, r2
    d1, inp1, prov1 = small_run.read(tmp_path / "a" / "res.h5")
    d2, inp2, prov2 = small_run.read(tmp_path / "b" / "res.h5")
    for k in d1:
        assert np.allclose(d1[k], d2[k], rtol=1e-10, atol=0, equal_nan=True), k      # spec: 1e-10 (bitwise in practice)
    assert prov1["mpi_ranks"] == 1 and prov2["mpi_ranks"] == 2
    assert inp1["spia"]["matsubara_j"] == 16                      # resolved defaults stored
    assert "git_commit" in prov1 and "version_petsc" in prov1
    # λ_q sums to λ
    assert np.allclose(d1["lambda_q/lambda_qm"].sum(axis=1), d1["lambda/lambda_m"])
    assert r2.stdout.count("results:") == 1                       # rank 0 prints, once


def test_petsc_run_matches_dense_run(tmp_path, spia_cli, small_run):
    (tmp_path / "d").mkdir()
    (tmp_path / "p").mkdir()
    assert spia_cli(["run", small_run.write(tmp_path / "d")]).returncode == 0
    r = spia_cli(["run", small_run.write(tmp_path / "p", resolvent="petsc")])
    assert r.returncode == 0, r
    dd, _, _ = small_run.read(tmp_path / "d" / "res.h5")
    dp, _, _ = small_run.read(tmp_path / "p" / "res.h5")
    assert np.allclose(dp["lambda/lambda_m"], dd["lambda/lambda_m"], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_bit_identical(tmp_path, spia_cli, sig, small_run):
    """Kill (SIGKILL / SIGTERM) a 2-rank run mid-way; rerunning (on 1 rank) reuses the
    finished tasks and reproduces an uninterrupted run bit for bit."""
    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    ref_dir, kill_dir = tmp_path / "ref", tmp_path / "kill"
    ref_dir.mkdir()
    kill_dir.mkdir()
    slow = small_run.toml.replace("n_samples = 24", "n_samples = 60").replace('resolvent = "{resolvent}"',
                                                                              'resolvent = "petsc"')
    for d in (ref_dir, kill_dir):
        (d / "in.toml").write_text(slow.format(out="res.h5"))
    assert spia_cli(["run", ref_dir / "in.toml"]).returncode == 0
    cmd = [*mpirun_prefix(), "-n", "2", sys.executable, "-m", "spia_mpi", "run", str(kill_dir / "in.toml")]
    proc = subprocess.Popen(cmd, env=mpirun_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    ckpt = kill_dir / "res.h5.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(ckpt.glob("task_*.npz"))) < 10:
        time.sleep(0.05)
    if sig == signal.SIGKILL:
        os.killpg(proc.pid, sig)               # everything dies at once (node failure)
    else:                                      # the scheduler's way: SIGTERM to every rank
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(ranks) == 2, ranks
        for pid in ranks:
            os.kill(int(pid), sig)
    proc.wait(timeout=60)
    n_before = len(list(ckpt.glob("task_*.npz")))
    assert 10 <= n_before < 120, n_before
    assert not (kill_dir / "res.h5").exists()            # no half-written file that looks finished
    r = spia_cli(["run", kill_dir / "in.toml"])
    assert r.returncode == 0, r
    assert "reused" in r.stderr
    a, _, _ = small_run.read(ref_dir / "res.h5")
    b, _, _ = small_run.read(kill_dir / "res.h5")
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("extra,needle", [
    ("\n[spia]\ngama_ev = [0.1]\n", None),    # TOML: duplicate table → parse error below
])
def test_toml_duplicate_table_rejected(tmp_path, spia_cli, extra, needle, small_run):
    r = spia_cli(["run", small_run.write(tmp_path, extra=extra)], ranks=2)
    assert r.returncode == 2 and "not valid TOML" in r.stderr, r


@pytest.mark.parametrize("text,needle", [
    ("[spia]\ngama_ev = [0.1]\n", "unknown key 'spia.gama_ev'; did you mean 'spia.gamma_ev'"),
    ("[spia]\ngamma_ev = [0.0]\n", "must be > 0"),
    ("[eliashberg]\nmustar = [1.5]\n", "must be in [0.0, 0.99]"),
    ("[configurations.einstein]\ntemperature_k = -10\n", "must be > 0"),
    ("[configurations]\nsource = 'file'\nfile = 'nope.h5'\n", "does not exist"),
    ("[output]\nfile = 'no/such/dir/res.h5'\n", "does not exist"),
    ("[supercell]\nmatrix = [2, 2]\n", "3 integers"),
    ("[configurations.einstein]\nn_samples = 2\n", "need at least 3 configurations"),
    ("[configurations.einstein]\nn_samples = 3\n[spia]\nn_blocks = 2\n", "leaves a jackknife replica with 1"),
])
def test_bad_input_one_message_two_ranks(tmp_path, spia_cli, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = spia_cli(["run", p], ranks=2, timeout=120)
    assert r.returncode == 2, r
    assert needle in r.stderr, r
    assert r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r


def test_wrong_configurations_file_rejected(tmp_path, spia_cli, small_run):
    from spia_mpi.ions.configurations import Configurations, write_h5
    conf = Configurations(np.zeros((3, 2, 5, 3)), np.eye(3) * 2, [1] * 5, [1.0] * 5, 300.0)
    write_h5(conf, tmp_path / "conf.h5")
    p = small_run.write(tmp_path)
    p.write_text(p.read_text().replace("[spia]", "[configurations]\nsource = 'file'\nfile = 'conf.h5'\n[spia]"))
    r = spia_cli(["run", p], ranks=2)
    assert r.returncode == 2 and "5 atoms" in r.stderr, r


def test_every_documented_key_accepted_and_reference_complete():
    ref = runinput.reference()
    keys = inputs.all_keys(runinput.RunInput)
    for k in keys:
        assert f"`{k}`" in ref
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "input.md")) as fh:
        doc = fh.read()
    for k in keys:
        assert f"`{k}`" in doc, f"docs/input.md does not document {k}"


def test_demo_small_produces_files(tmp_path, spia_cli, small_run):
    r = spia_cli(["demo", "--small", "--out", tmp_path / "demo"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, _, _ = small_run.read(tmp_path / "demo" / "demo_results.h5")
    assert np.all(np.isfinite(d["eliashberg/tc_K"][0])) and np.all(d["eliashberg/tc_K"][0] > 0)
    figs = tmp_path / "demo" / "demo_results_plots"
    for stem in ("lambda_m", "tc_vs_mustar", "bands"):
        assert (figs / f"{stem}.png").stat().st_size > 10_000
    assert "exact Born" in r.stdout and "Bethe–Salpeter ladder adds higher orders" in r.stdout
    assert "harmonic discrete-bead" in r.stdout and (tmp_path / "demo" / "harmonic_results.h5").exists()


def test_dry_run(tmp_path, spia_cli, small_run):
    r = spia_cli(["run", small_run.write(tmp_path), "--dry-run"])
    assert r.returncode == 0, r
    info = json.loads(r.stdout)
    assert info["work_units"] == 12 and info["tasks"] == 48
    assert not (tmp_path / "res.h5").exists()


GRID = """
[model]
kind = "grid"
[model.grid]
structure = "{structure}"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 2, 2]
[configurations.einstein]
hbar_omega_ev = 0.15
n_samples = 8
n_beads = 4
[spia]
states_per_k = 4
gamma_ev = [0.5]
resolvent = "petsc"
n_blocks = 4
[eliashberg]
mustar = [0.1]
[output]
plots = false
"""


@pytest.mark.slow
def test_grid_model_run_two_ranks(tmp_path, spia_cli, small_run):
    """A real-space-grid hydrogen metal through the whole pipeline on 2 ranks, structure read
    by ASE from a file (read on every rank without ASE's own MPI broadcast)."""
    import ase.io
    from ase import Atoms
    ase.io.write(tmp_path / "h.xyz", Atoms("H", positions=[[0, 0, 0]], cell=np.diag([1.6] * 3), pbc=True),
                 format="extxyz")
    (tmp_path / "in.toml").write_text(GRID.format(structure="h.xyz"))
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, inp, _ = small_run.read(tmp_path / "spia_results.h5")
    assert inp["model"]["kind"] == "grid"
    lam, err = d["lambda/lambda_m"][0], d["lambda/lambda_m_error"][0]
    assert lam[0] > 0 and np.all(np.isfinite(err))


def test_grid_model_input_errors(tmp_path, spia_cli):
    (tmp_path / "in.toml").write_text(GRID.format(structure="missing.cif"))
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2)
    assert r.returncode == 2 and "missing.cif" in r.stderr and r.stderr.count("error:") == 1, r
    (tmp_path / "in2.toml").write_text(GRID.format(structure="li2mgh16-solid").replace(
        "matrix = [2, 2, 2]", "matrix = [[1, 1, 0], [0, 1, 0], [0, 0, 0]]"))
    r = spia_cli(["run", tmp_path / "in2.toml"], ranks=2)
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "supercell matrix" in r.stderr and "singular" in r.stderr, r


def test_hdf5_from_another_stage_rejected(tmp_path, spia_cli, small_run):
    """A configurations file given where a results file is expected, and vice versa."""
    from spia_mpi.ions.configurations import Configurations, write_h5
    conf = Configurations(np.zeros((3, 2, 8, 3)), np.eye(3) * 2, [1] * 8, [1.0] * 8, 300.0)
    write_h5(conf, tmp_path / "conf.h5")
    r = spia_cli(["tc", "--lambda", tmp_path / "conf.h5"], ranks=2)
    assert r.returncode == 2 and "'configurations' file, expected 'results'" in r.stderr, r
    (tmp_path / "a").mkdir()
    assert spia_cli(["run", small_run.write(tmp_path / "a")]).returncode == 0
    p = small_run.write(tmp_path)
    p.write_text(p.read_text().replace("[spia]", "[configurations]\nsource = 'file'\nfile = 'a/res.h5'\n[spia]"))
    r = spia_cli(["run", p], ranks=2)
    assert r.returncode == 2 and "'results' file, expected 'configurations'" in r.stderr, r


def test_demo_grid_small(tmp_path, spia_cli, small_run):
    r = spia_cli(["demo", "--model", "grid", "--small", "--out", tmp_path / "dg"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, inp, _ = small_run.read(tmp_path / "dg" / "demo_grid_results.h5")
    assert inp["model"]["kind"] == "grid" and np.all(np.isfinite(d["lambda/lambda_m"]))


def test_run_tc_error_from_jackknife(tmp_path, spia_cli, small_run):
    """`run` on 2 ranks writes /eliashberg/tc_K_error: finite, positive, smaller than T_c, and
    equal to the jackknife over T_c solved (here, independently of the run) for the λ(m)
    replicas rebuilt from the stored /lambda_q/pair_sums_jackknife (λ is proportional to the
    pair sums summed over q over N_γ, with one factor per γ; each replica has its own N_γ). Summary prints T_c ± σ; with
    eliashberg.tc_errors = false the dataset is NaN."""
    import h5py
    from spia_mpi.eliashberg import linearised as el
    p = small_run.write(tmp_path)
    # a fixed number of frequencies: with the automatic one ρ(T) jumps where N changes and a
    # replica can have two roots 0.05 K apart (seen), which the two root searches may pick differently
    p.write_text(p.read_text().replace("mustar = [0.1]", "mustar = [0.1, 0.16]\nnfreq = 96"))
    r = spia_cli(["run", p], ranks=2)
    assert r.returncode == 0, r
    with h5py.File(tmp_path / "res.h5", "r") as f:
        tc, err = f["eliashberg/tc_K"][...], f["eliashberg/tc_K_error"][...]
        assert f["eliashberg/tc_K_error"].attrs["units"] == "K"
        lam = f["lambda/lambda_m"][...]
        pair, pair_jk = f["lambda_q/pair_sums"][...].sum(axis=1), f["lambda_q/pair_sums_jackknife"][...].sum(axis=2)
        pair = pair / f["lambda/n_gamma_per_cell"][...][:, None]                       # λ ∝ P/N_γ
        pair_jk = pair_jk / f["lambda/n_gamma_per_cell_jackknife"][...][:, :, None]     # each replica's own N_γ
        t0 = float(f["lambda"].attrs["temperature_K"])
    assert err.shape == tc.shape == (1, 2)
    assert np.all(np.isfinite(err)) and np.all(err > 0) and np.all(err < tc), (tc, err)
    reps = lam[None] * pair_jk / pair[None]                        # [block, γ, m]
    t_rep = np.array([el.solve_tc(x, t0, [0.1, 0.16], n_freq=96).tc_k for x in reps[:, 0]])
    n = t_rep.shape[0]
    sigma = np.sqrt((n - 1) / n * ((t_rep - t_rep.mean(axis=0)) ** 2).sum(axis=0))
    assert np.allclose(err[0], sigma, rtol=1e-4), (err, sigma)     # root finding to 1e-6 K
    line = [ln for ln in r.stdout.splitlines() if "T_c =" in ln][0]
    assert line.count("±") == 2, line
    p.write_text(p.read_text().replace("nfreq = 96", "nfreq = 96\ntc_errors = false"))
    assert spia_cli(["run", p]).returncode == 0
    with h5py.File(tmp_path / "res.h5", "r") as f:
        assert np.all(np.isnan(f["eliashberg/tc_K_error"][...]))
        assert np.allclose(f["eliashberg/tc_K"][...], tc, rtol=1e-8)


def test_results_hold_omega2_m_and_gamma_w_summaries_and_solver_options(tmp_path, spia_cli, small_run):
    """(1) /lambda holds ω̄₂(m) and the Γ/W Fermi-surface summaries with units, with the documented
    shapes; ω̄₂(m) = ν_m √(λ(m)/λ(0)); ⟨W⟩_FS reproduces λ(m) = −N_γ(M/N_cells)⟨W⟩_FS (here one
    supercell covers N_cells = M·n_K cells) and Γ ≤ 0 on average; in BSE mode the BSE makes ⟨W⟩_FS
    less attractive than ⟨Γ⟩_FS (λ_raw: before the finite-bead correction). (2) spia.resolvent_options reaches the KSP: ksp_rtol = 1e-3
    needs fewer iterations than the default 1e-11 and changes λ only at the 1e-3 level. (3) A
    wrongly typed option is rejected with one clear message."""
    import h5py
    runs = {}
    for name, extra in (("default", ""), ("loose", "\n[spia.resolvent_options]\nksp_rtol = 1e-3\n")):
        d = tmp_path / name
        d.mkdir()
        r = spia_cli(["run", small_run.write(d, resolvent="petsc", extra=extra)])
        assert r.returncode == 0, r
        with h5py.File(d / "res.h5", "r") as f:
            g = f["lambda"]
            runs[name] = {k: g[k][...] for k in ("lambda_m", "lambda_m_raw", "nu_eV", "omega2_m_eV", "gamma_fs_eV", "w_fs_eV",
                                                  "gamma_fs_error_eV", "w_fs_error_eV", "gamma_diag_abs_eV",
                                                  "gamma_diag_abs_error_eV", "n_gamma_per_cell")}
            runs[name]["units"] = {k: g[k].attrs["units"] for k in ("omega2_m_eV", "gamma_fs_eV", "w_fs_eV",
                                                                    "gamma_diag_abs_eV")}
            runs[name]["its"] = float(f["bands"].attrs["ksp_iterations_mean"])
            assert json.loads(f["input"].attrs["json"])["spia"]["resolvent_options"] == \
                ({} if name == "default" else {"ksp_rtol": 1e-3})
    d = runs["default"]
    n_g, n_m = d["lambda_m"].shape
    assert d["omega2_m_eV"].shape == d["gamma_fs_eV"].shape == d["w_fs_eV"].shape == (n_g, n_m)
    assert d["gamma_diag_abs_eV"].shape == (n_m,)
    assert set(d["units"].values()) == {"eV"}
    assert np.allclose(d["omega2_m_eV"], d["nu_eV"] * np.sqrt(d["lambda_m"] / d["lambda_m"][:, :1]), rtol=1e-12)
    # SMALL: 2×2×2 supercell, 2 K-points → N_γ(total) = N_γ per cell · 16, M/N_cells = 1/2
    assert np.allclose(d["lambda_m_raw"], -d["n_gamma_per_cell"][:, None] * 16 * 0.5 * d["w_fs_eV"], rtol=1e-10)
    assert np.all(d["gamma_fs_eV"] < 0) and np.all(d["gamma_fs_error_eV"] > 0)
    assert np.all(d["w_fs_eV"] > d["gamma_fs_eV"])          # the BSE reduces the attraction
    assert np.all(d["gamma_diag_abs_eV"] > 0)
    assert runs["loose"]["its"] < d["its"], (runs["loose"]["its"], d["its"])
    assert np.allclose(runs["loose"]["lambda_m"], d["lambda_m"], rtol=1e-2)
    assert not np.array_equal(runs["loose"]["lambda_m"], d["lambda_m"])
    for bad, needle in (("\n[spia.resolvent_options]\nksp_rtol = 'tight'\n", "expected a number"),
                        ("\n[spia.resolvent_options]\nksp_max_it = 2.5\n", "expected an integer"),
                        ("\n[spia.resolvent_options]\n'-ksp_rtol' = 1e-3\n", "without '-'")):
        r = spia_cli(["run", small_run.write(tmp_path, resolvent="petsc", extra=bad)])
        assert r.returncode == 2 and needle in r.stderr and "spia.resolvent_options" in r.stderr, r
        assert r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r


def test_ranks_per_group_run_and_errors(tmp_path, spia_cli, small_run):
    """`spia.ranks_per_group = 2` under 2 ranks: one configuration group whose two ranks share every
    (distributed) PETSc resolvent gives the λ(m) of the serial PETSc run to 1e-8 relative; the
    dry run reports the layout; a group size that does not divide the ranks, or a dense solver,
    is one clear error."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    inp_a = small_run.write(tmp_path / "a", resolvent="petsc")
    inp_b = tmp_path / "b" / "in.toml"
    inp_b.write_text(inp_a.read_text().replace('resolvent = "petsc"', 'resolvent = "petsc"\nranks_per_group = 2'))
    dry = spia_cli(["run", inp_b, "--dry-run"], ranks=2)
    assert dry.returncode == 0, dry
    info = json.loads(dry.stdout)
    assert info["ranks_per_group"] == 2 and info["groups"] == 1 and info["work_units"] == 12
    r1 = spia_cli(["run", inp_a])
    r2 = spia_cli(["run", inp_b], ranks=2)
    assert r1.returncode == 0 and r2.returncode == 0, (r1, r2)
    d1, _, _ = small_run.read(tmp_path / "a" / "res.h5")
    d2, inp2, _ = small_run.read(tmp_path / "b" / "res.h5")
    assert inp2["spia"]["ranks_per_group"] == 2
    lam1, lam2 = d1["lambda/lambda_m"], d2["lambda/lambda_m"]
    assert np.max(np.abs(lam1 - lam2)) < 1e-8 * np.max(np.abs(lam1))
    bad = tmp_path / "bad.toml"
    bad.write_text(inp_b.read_text().replace("ranks_per_group = 2", "ranks_per_group = 3"))
    r = spia_cli(["run", bad], ranks=2)
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "ranks_per_group = 3" in r.stderr, r
    bad.write_text(inp_b.read_text().replace('resolvent = "petsc"', 'resolvent = "dense"'))
    r = spia_cli(["run", bad], ranks=2)
    assert r.returncode == 2 and r.stderr.count("error:") == 1 and "resolvent = 'petsc'" in r.stderr, r


def test_idle_ranks_do_not_hang_and_change_nothing(tmp_path, spia_cli, small_run):
    """3 ranks but only 2 work units (one K-point, two blocks): the idle rank takes part in the
    collectives and the parallel HDF5 write only; the results equal the 1-rank run bit for bit."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text = small_run.write(tmp_path / "a").read_text().replace(
        "kpoints = [[0, 0, 0], [0.5, 0, 0]]", "kpoints = [[0, 0, 0]]").replace("n_blocks = 6", "n_blocks = 2")
    (tmp_path / "a" / "in.toml").write_text(text)
    (tmp_path / "b" / "in.toml").write_text(text)
    r1 = spia_cli(["run", tmp_path / "a" / "in.toml"])
    r3 = spia_cli(["run", tmp_path / "b" / "in.toml"], ranks=3)
    assert r1.returncode == 0 and r3.returncode == 0, (r1, r3)
    assert "idle" in r3.stderr, r3
    d1, _, _ = small_run.read(tmp_path / "a" / "res.h5")
    d3, _, prov = small_run.read(tmp_path / "b" / "res.h5")
    assert int(prov["mpi_ranks"]) == 3
    assert np.all(d1["lambda/lambda_m"] > 0)
    for k in d1:
        assert np.array_equal(d1[k], d3[k], equal_nan=True), k


@pytest.mark.slow
def test_kills_at_seeded_random_points_resume_bit_identical(tmp_path, spia_cli, small_run):
    """SIGKILL a 2-rank run at three seeded random moments of its life (set-up, resolvents, the
    Eliashberg stage or the final write — wherever they fall); after each, the result file is either
    absent or complete, never half-written, and a resume reproduces the uninterrupted run bit for bit."""
    import h5py

    from spia_mpi.parallel.mpi import mpirun_env, mpirun_prefix
    slow = small_run.toml.replace("n_samples = 24", "n_samples = 40").replace('resolvent = "{resolvent}"',
                                                                              'resolvent = "petsc"')
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    (ref_dir / "in.toml").write_text(slow.format(out="res.h5"))
    t0 = time.time()
    assert spia_cli(["run", ref_dir / "in.toml"], ranks=2).returncode == 0
    wall = time.time() - t0
    ref, _, _ = small_run.read(ref_dir / "res.h5")
    rng = np.random.default_rng(2026)
    for i, delay in enumerate(rng.uniform(0.2, 1.1, size=3) * wall):
        d = tmp_path / f"kill{i}"
        d.mkdir()
        (d / "in.toml").write_text(slow.format(out="res.h5"))
        cmd = [*mpirun_prefix(), "-n", "2", sys.executable, "-m", "spia_mpi", "run", str(d / "in.toml")]
        proc = subprocess.Popen(cmd, env=mpirun_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        complete = True                                  # only ever a finished file at the final name
        if (d / "res.h5").exists():
            with h5py.File(d / "res.h5", "r") as f:
                complete = bool(f.attrs["complete"])
        assert complete, f"kill {i} after {delay:.2f} s left an incomplete file"
        r = spia_cli(["run", d / "in.toml"], ranks=2)      # T_c's SLEPc sums depend on the rank count
        assert r.returncode == 0, (i, delay, r)
        got, _, _ = small_run.read(d / "res.h5")
        for k in ref:
            assert np.array_equal(ref[k], got[k], equal_nan=True), (i, delay, k)
