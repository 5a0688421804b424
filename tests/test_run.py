"""`spia_mpi run` / `demo` end to end: outputs, 1 rank = 2 ranks, kill + resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spia_mpi import inputs, runinput

SMALL = """
[model.holstein]
coupling_ev_per_ang = 4.0
[supercell]
matrix = [2, 2, 2]
kpoints = [[0, 0, 0], [0.5, 0, 0]]
[configurations.einstein]
n_samples = 24
n_beads = 8
seed = 3
[spia]
gamma_ev = [0.5]
n_blocks = 6
resolvent = "{resolvent}"
[eliashberg]
mustar = [0.1]
[output]
file = "{out}"
plots = false
"""


def write_input(folder, out="res.h5", resolvent="dense", extra=""):
    p = folder / "in.toml"
    p.write_text(SMALL.format(out=out, resolvent=resolvent) + extra)
    return p


def read(path):
    import h5py
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"]
        return {k: f[k][...] for k in ("lambda/lambda_m", "lambda/lambda_m_error", "eliashberg/tc_K",
                                        "lambda_q/lambda_qm")}, json.loads(f["input"].attrs["json"]), \
            dict(f["provenance"].attrs)


def test_run_one_and_two_ranks_identical(tmp_path, spia_cli):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    r1 = spia_cli(["run", write_input(tmp_path / "a")])
    assert r1.returncode == 0, r1
    r2 = spia_cli(["run", write_input(tmp_path / "b")], ranks=2)
    assert r2.returncode == 0, r2
    d1, inp1, prov1 = read(tmp_path / "a" / "res.h5")
    d2, inp2, prov2 = read(tmp_path / "b" / "res.h5")
    for k in d1:
        assert np.allclose(d1[k], d2[k], rtol=1e-10, atol=0, equal_nan=True), k      # spec: 1e-10 (bitwise in practice)
    assert prov1["mpi_ranks"] == 1 and prov2["mpi_ranks"] == 2
    assert inp1["spia"]["matsubara_j"] == 16                      # resolved defaults stored
    assert "git_commit" in prov1 and "version_petsc" in prov1
    # λ_q sums to λ
    assert np.allclose(d1["lambda_q/lambda_qm"].sum(axis=1), d1["lambda/lambda_m"])
    assert r2.stdout.count("results:") == 1                       # rank 0 prints, once


def test_petsc_run_matches_dense_run(tmp_path, spia_cli):
    (tmp_path / "d").mkdir()
    (tmp_path / "p").mkdir()
    assert spia_cli(["run", write_input(tmp_path / "d")]).returncode == 0
    r = spia_cli(["run", write_input(tmp_path / "p", resolvent="petsc")])
    assert r.returncode == 0, r
    dd, _, _ = read(tmp_path / "d" / "res.h5")
    dp, _, _ = read(tmp_path / "p" / "res.h5")
    assert np.allclose(dp["lambda/lambda_m"], dd["lambda/lambda_m"], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_bit_identical(tmp_path, spia_cli, sig):
    """Kill (SIGKILL / SIGTERM) a 2-rank run mid-way; rerunning (on 1 rank) reuses the
    finished tasks and reproduces an uninterrupted run bit for bit."""
    from spia_mpi.parallel import mpirun_env, mpirun_prefix
    ref_dir, kill_dir = tmp_path / "ref", tmp_path / "kill"
    ref_dir.mkdir()
    kill_dir.mkdir()
    extra = '\n[configurations]\nsource = "einstein"\n'
    slow = SMALL.replace("n_samples = 24", "n_samples = 60").replace('resolvent = "{resolvent}"',
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
    a, _, _ = read(ref_dir / "res.h5")
    b, _, _ = read(kill_dir / "res.h5")
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("extra,needle", [
    ("\n[spia]\ngama_ev = [0.1]\n", None),    # TOML: duplicate table → parse error below
])
def test_toml_duplicate_table_rejected(tmp_path, spia_cli, extra, needle):
    r = spia_cli(["run", write_input(tmp_path, extra=extra)], ranks=2)
    assert r.returncode == 2 and "not valid TOML" in r.stderr, r


@pytest.mark.parametrize("text,needle", [
    ("[spia]\ngama_ev = [0.1]\n", "unknown key 'spia.gama_ev'; did you mean 'spia.gamma_ev'"),
    ("[spia]\ngamma_ev = [0.0]\n", "must be > 0"),
    ("[eliashberg]\nmustar = [1.5]\n", "must be in [0.0, 0.99]"),
    ("[configurations.einstein]\ntemperature_k = -10\n", "must be > 0"),
    ("[configurations]\nsource = 'file'\nfile = 'nope.h5'\n", "does not exist"),
    ("[output]\nfile = 'no/such/dir/res.h5'\n", "does not exist"),
    ("[supercell]\nmatrix = [2, 2]\n", "3 integers"),
])
def test_bad_input_one_message_two_ranks(tmp_path, spia_cli, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = spia_cli(["run", p], ranks=2, timeout=120)
    assert r.returncode == 2, r
    assert needle in r.stderr, r
    assert r.stderr.count("error:") == 1 and "Traceback" not in r.stderr, r


def test_wrong_configurations_file_rejected(tmp_path, spia_cli):
    from spia_mpi.configurations import Configurations, write_h5
    conf = Configurations(np.zeros((3, 2, 5, 3)), np.eye(3) * 2, [1] * 5, [1.0] * 5, 300.0)
    write_h5(conf, tmp_path / "conf.h5")
    p = write_input(tmp_path)
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


def test_demo_small_produces_files(tmp_path, spia_cli):
    r = spia_cli(["demo", "--small", "--out", tmp_path / "demo"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, _, _ = read(tmp_path / "demo" / "demo_results.h5")
    assert np.all(np.isfinite(d["eliashberg/tc_K"][0])) and np.all(d["eliashberg/tc_K"][0] > 0)
    figs = tmp_path / "demo" / "demo_results_plots"
    for stem in ("lambda_m", "tc_vs_mustar", "bands"):
        assert (figs / f"{stem}.png").stat().st_size > 10_000
    assert "exact Born" in r.stdout


def test_dry_run(tmp_path, spia_cli):
    r = spia_cli(["run", write_input(tmp_path), "--dry-run"])
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
def test_grid_model_run_two_ranks(tmp_path, spia_cli):
    """A real-space-grid hydrogen metal through the whole pipeline on 2 ranks, structure read
    by ASE from a file (read on every rank without ASE's own MPI broadcast)."""
    import ase.io
    from ase import Atoms
    ase.io.write(tmp_path / "h.xyz", Atoms("H", positions=[[0, 0, 0]], cell=np.diag([1.6] * 3), pbc=True),
                 format="extxyz")
    (tmp_path / "in.toml").write_text(GRID.format(structure="h.xyz"))
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, inp, _ = read(tmp_path / "spia_results.h5")
    assert inp["model"]["kind"] == "grid"
    lam, err = d["lambda/lambda_m"][0], d["lambda/lambda_m_error"][0]
    assert lam[0] > 0 and np.all(np.isfinite(err))


def test_grid_model_input_errors(tmp_path, spia_cli):
    (tmp_path / "in.toml").write_text(GRID.format(structure="missing.cif"))
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2)
    assert r.returncode == 2 and "missing.cif" in r.stderr and r.stderr.count("error:") == 1, r
    (tmp_path / "in2.toml").write_text(GRID.format(structure="li2mgh16-solid").replace(
        "matrix = [2, 2, 2]", "matrix = [[1, 1, 0], [0, 1, 0], [0, 0, 1]]"))
    r = spia_cli(["run", tmp_path / "in2.toml"], ranks=2)
    assert r.returncode == 2 and "diagonal supercell" in r.stderr, r


def test_hdf5_from_another_stage_rejected(tmp_path, spia_cli):
    """A configurations file given where a results file is expected, and vice versa."""
    from spia_mpi.configurations import Configurations, write_h5
    conf = Configurations(np.zeros((3, 2, 8, 3)), np.eye(3) * 2, [1] * 8, [1.0] * 8, 300.0)
    write_h5(conf, tmp_path / "conf.h5")
    r = spia_cli(["tc", "--lambda", tmp_path / "conf.h5"], ranks=2)
    assert r.returncode == 2 and "'configurations' file, expected 'results'" in r.stderr, r
    (tmp_path / "a").mkdir()
    assert spia_cli(["run", write_input(tmp_path / "a")]).returncode == 0
    p = write_input(tmp_path)
    p.write_text(p.read_text().replace("[spia]", "[configurations]\nsource = 'file'\nfile = 'a/res.h5'\n[spia]"))
    r = spia_cli(["run", p], ranks=2)
    assert r.returncode == 2 and "'results' file, expected 'configurations'" in r.stderr, r


def test_demo_grid_small(tmp_path, spia_cli):
    r = spia_cli(["demo", "--model", "grid", "--small", "--out", tmp_path / "dg"], ranks=2, timeout=300)
    assert r.returncode == 0, r
    d, inp, _ = read(tmp_path / "dg" / "demo_grid_results.h5")
    assert inp["model"]["kind"] == "grid" and np.all(np.isfinite(d["lambda/lambda_m"]))
