"""The Slurm job scripts, run for real on a one-node Slurm cluster on localhost."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slurm_cluster import SlurmCluster, SlurmUnavailable
from spia_mpi.parallel import mpirun_prefix

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "jobscripts"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except SlurmUnavailable as exc:
        c.stop()
        pytest.skip(f"Slurm cluster could not start here: {exc}")
    yield c
    c.stop()


def job_env(tmp):
    return {"SPIA_VENV": str(Path(sys.executable).parents[1]), "SPIA_MPIRUN": " ".join(mpirun_prefix()),
            "SCAN_DIR": str(tmp / "scan")}


def test_scan_array_runs_and_resubmission_skips_done(cluster, tmp_path):
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("check-stack --json\ncheck-stack --json\nnot-a-command\n")
    env = dict(job_env(tmp_path), TASKS=str(tasks))
    jid = cluster.sbatch(SCRIPTS / "slurm" / "scan_array.sbatch", "--array=1-3", "--export=ALL",
                         env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    for i in (1, 2):
        d = tmp_path / "scan" / f"task_{i}"
        assert (d / "DONE").exists(), cluster.logs()
        info = json.loads((d / "output.txt").read_text())
        assert info["petsc_scalar"] == "complex128" and info["h5py_mpi"] == "True"
    assert not (tmp_path / "scan" / "task_3" / "DONE").exists()          # failed task: no marker
    stamp = (tmp_path / "scan" / "task_1" / "DONE").read_text()
    jid = cluster.sbatch(SCRIPTS / "slurm" / "scan_array.sbatch", "--array=1-2", "--export=ALL",
                         env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    assert (tmp_path / "scan" / "task_1" / "DONE").read_text() == stamp   # not rerun
    logs = sorted(tmp_path.glob(f"spia-scan-{jid}_*.out"))
    assert logs and all("already done" in p.read_text() for p in logs)


def test_run_script_two_ranks(cluster, tmp_path):
    env = dict(job_env(tmp_path), INPUT="unused.toml", SPIA_COMMAND="check-stack --json")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "run.sbatch", "--ntasks=2", "--export=ALL", env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    out = (tmp_path / f"spia-{jid}.out").read_text()
    assert "2 ranks × 1 threads" in out, out
    info = json.loads(out[out.index("{"):])
    assert info["petsc_scalar"] == "complex128"


def test_run_script_real_spia_run(cluster, tmp_path):
    (tmp_path / "in.toml").write_text("""
[supercell]
matrix = [2, 2, 2]
[configurations.einstein]
n_samples = 12
n_beads = 4
[spia]
gamma_ev = [0.5]
n_blocks = 4
[eliashberg]
mustar = [0.1]
[output]
plots = false
""")
    env = dict(job_env(tmp_path), INPUT="in.toml")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "run.sbatch", "--ntasks=2", "--export=ALL", env_extra=env, cwd=tmp_path)
    cluster.wait(jid, timeout=180)
    assert (tmp_path / "spia_results.h5").exists(), (tmp_path / f"spia-{jid}.out").read_text()


def test_task_list_generator(tmp_path):
    (tmp_path / "base.toml").write_text("[spia]\ngamma_ev = [0.5]\n[configurations.einstein]\nn_beads = 4\n")
    (tmp_path / "scan.toml").write_text('base = "base.toml"\nout = "pts"\n[parameters]\n'
                                        '"configurations.einstein.n_beads" = [4, 8]\n"spia.matsubara_j" = [8, 16]\n')
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_task_list.py"), str(tmp_path / "scan.toml")],
                       capture_output=True, text=True, check=True)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("run ") for line in lines)
    from spia_mpi import runinput
    inp, _ = runinput.load_run_input(lines[3].split()[1])
    assert inp.configurations.einstein.n_beads == 8 and inp.spia.matsubara_j == 16
    assert inp.output.file.endswith("point_003.h5")
