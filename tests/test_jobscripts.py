"""The Slurm job scripts, run for real on a one-node Slurm cluster on localhost."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prerequisites import missing
from slurm_cluster import SlurmCluster, SlurmUnavailable
from spia_mpi.parallel.mpi import mpirun_prefix

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "jobscripts"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except SlurmUnavailable as exc:
        c.stop()
        missing("a local Slurm cluster", f"it could not start here: {exc}")
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
    stamps = [(tmp_path / "scan" / f"task_{i}" / "DONE").read_text() for i in (1, 2)]
    outputs = [(tmp_path / "scan" / f"task_{i}" / "output.txt").stat().st_mtime_ns for i in (1, 2)]
    tasks.write_text("check-stack --json\ncheck-stack --json\ncheck-stack --json\n")   # fix task 3
    jid = cluster.sbatch(SCRIPTS / "slurm" / "scan_array.sbatch", "--array=1-3", "--export=ALL",
                         env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    for i in (1, 2):                                                    # finished: skipped, untouched
        assert (tmp_path / "scan" / f"task_{i}" / "DONE").read_text() == stamps[i - 1]
        assert (tmp_path / "scan" / f"task_{i}" / "output.txt").stat().st_mtime_ns == outputs[i - 1]
        assert "already done" in (tmp_path / f"spia-scan-{jid}_{i}.out").read_text()
    d3 = tmp_path / "scan" / "task_3"                                   # unfinished: redone
    assert "already done" not in (tmp_path / f"spia-scan-{jid}_3.out").read_text()
    assert (d3 / "DONE").exists(), (tmp_path / f"spia-scan-{jid}_3.out").read_text()
    assert json.loads((d3 / "output.txt").read_text())["petsc_scalar"] == "complex128"


@pytest.mark.slow        # a real small `spia_mpi run` (6–12 s on 2 shared cores)
def test_scan_array_input_file_lines(cluster, tmp_path, small_run):
    """A task line that is only an input file means `run <file>`."""
    inp = tmp_path / "pt.toml"
    inp.write_text(small_run.tiny + NO_PLOTS + f'file = "{tmp_path}/pt.h5"\n')
    tasks = tmp_path / "tasks.txt"
    tasks.write_text(f"{inp}\n")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "scan_array.sbatch", "--array=1", "--export=ALL",
                         env_extra=dict(job_env(tmp_path), TASKS=str(tasks)), cwd=tmp_path)
    cluster.wait(jid, timeout=120)
    log = (tmp_path / f"spia-scan-{jid}_1.out").read_text()
    assert "python -m spia_mpi run " in log and (tmp_path / "scan" / "task_1" / "DONE").exists(), log
    assert (tmp_path / "pt.h5").exists(), log


def test_run_script_two_ranks(cluster, tmp_path):
    env = dict(job_env(tmp_path), INPUT="unused.toml", SPIA_COMMAND="check-stack --json")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "run.sbatch", "--ntasks=2", "--export=ALL", env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    out = (tmp_path / f"spia-{jid}.out").read_text()
    assert "2 ranks × 1 threads" in out, out
    info = json.loads(out[out.index("{"):])
    assert info["petsc_scalar"] == "complex128"


@pytest.mark.slow        # a real small `spia_mpi run` (6–12 s on 2 shared cores)
def test_run_script_real_spia_run(cluster, tmp_path, small_run):
    (tmp_path / "in.toml").write_text(small_run.tiny + NO_PLOTS)
    env = dict(job_env(tmp_path), INPUT="in.toml")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "run.sbatch", "--ntasks=2", "--export=ALL", env_extra=env, cwd=tmp_path)
    cluster.wait(jid, timeout=180)
    log = (tmp_path / f"spia-{jid}.out").read_text()
    assert (tmp_path / "spia_results.h5").exists(), log
    assert "on 2 rank(s)" in log, log          # the launcher really gave one MPI world of 2 ranks


def test_run_script_dry_run_sees_two_ranks(cluster, tmp_path, small_run):
    """`run --dry-run` through run.sbatch reports MPI_COMM_WORLD.size == --ntasks."""
    (tmp_path / "in.toml").write_text(small_run.tiny + NO_PLOTS)
    env = dict(job_env(tmp_path), INPUT="in.toml", SPIA_COMMAND="run --dry-run in.toml")
    jid = cluster.sbatch(SCRIPTS / "slurm" / "run.sbatch", "--ntasks=2", "--export=ALL", env_extra=env, cwd=tmp_path)
    cluster.wait(jid)
    out = (tmp_path / f"spia-{jid}.out").read_text()
    start = out.index("\n{\n") + 1                          # the JSON document printed by rank 0
    info, _ = json.JSONDecoder().raw_decode(out[start:])
    assert info["ranks"] == 2, out


NO_PLOTS = "[output]\nplots = false\n"     # appended to the tiny input of conftest (small_run.tiny)


def test_task_list_generator(tmp_path):
    (tmp_path / "base.toml").write_text("[spia]\ngamma_ev = [0.5]\n[configurations.einstein]\nn_beads = 4\n")
    (tmp_path / "scan.toml").write_text('base = "base.toml"\nout = "pts"\n[parameters]\n'
                                        '"configurations.einstein.n_beads" = [4, 8]\n"spia.matsubara_j" = [8, 16]\n')
    r = subprocess.run([sys.executable, str(SCRIPTS / "make_task_list.py"), str(tmp_path / "scan.toml")],
                       capture_output=True, text=True, check=True)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("run ") for line in lines)
    from spia_mpi.io import runinput
    inp, _ = runinput.load_run_input(lines[3].split()[1])
    assert inp.configurations.einstein.n_beads == 8 and inp.spia.matsubara_j == 16
    assert inp.output.file.endswith("point_003.h5")


@pytest.mark.parametrize("index_var", ["PBS_ARRAY_INDEX", "PBS_ARRAYID"])
def test_pbs_scripts_in_emulated_pbs_environment(tmp_path, index_var, small_run):
    """No PBS server is packaged for Debian: run the PBS scripts with bash and the variables
    PBS Pro / Torque would set (2-line PBS_NODEFILE → 2 ranks). Checks array indexing, the
    DONE marker and skip, and the rank count; not the #PBS directives."""
    nodefile = tmp_path / "nodes"
    nodefile.write_text("localhost\nlocalhost\n")
    (tmp_path / "in.toml").write_text(small_run.tiny + NO_PLOTS)
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("check-stack --json\nrun --dry-run ../../in.toml\n")
    env = dict(os.environ, **job_env(tmp_path), PBS_O_WORKDIR=str(tmp_path), PBS_NODEFILE=str(nodefile),
               TASKS=str(tasks), INPUT="in.toml", SPIA_COMMAND="run --dry-run in.toml")
    env.pop("PBS_ARRAY_INDEX", None), env.pop("PBS_ARRAYID", None)

    def bash(script, **extra):
        return subprocess.run(["bash", str(SCRIPTS / "pbs" / script)], env=dict(env, **extra), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    for i in (1, 2):
        r = bash("scan_array.pbs", **{index_var: str(i)})
        assert r.returncode == 0 and (tmp_path / "scan" / f"task_{i}" / "DONE").exists(), r.stdout + r.stderr
    assert json.loads((tmp_path / "scan" / "task_1" / "output.txt").read_text())["petsc_scalar"] == "complex128"
    assert json.loads((tmp_path / "scan" / "task_2" / "output.txt").read_text())["ranks"] == 2
    r = bash("scan_array.pbs", **{index_var: "1"})
    assert r.returncode == 0 and "already done" in r.stdout
    r = bash("scan_array.pbs", **{index_var: "3"})                       # no such line: fails, no marker
    assert r.returncode != 0 and not (tmp_path / "scan" / "task_3" / "DONE").exists()
    r = bash("run.pbs")
    assert r.returncode == 0, r.stdout + r.stderr
    info, _ = json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{"):])
    assert info["ranks"] == 2


def pbs_directives(script):
    """{option: [values]} of the `#PBS` lines of ``script``, and whether they all precede the first
    command (PBS reads directives only up to the first non-comment, non-blank line)."""
    out, seen_command, late = {}, False, []
    for line in (SCRIPTS / "pbs" / script).read_text().splitlines()[1:]:        # skip the #! line
        s = line.strip()
        if s.startswith("#PBS"):
            opt, _, val = s[len("#PBS"):].strip().partition(" ")
            out.setdefault(opt, []).append(val.strip())
            if seen_command:
                late.append(s)
        elif s and not s.startswith("#"):
            seen_command = True
    return out, late


def parse_select(value):
    """'select=1:ncpus=4:mpiprocs=4:ompthreads=1' → (1, {'ncpus': 4, 'mpiprocs': 4, 'ompthreads': 1})."""
    head, *chunk = value.split(":")
    key, _, n = head.partition("=")
    assert key == "select", value
    return int(n), {k: int(v) for k, v in (c.split("=") for c in chunk)}


@pytest.mark.parametrize("script", ["run.pbs", "scan_array.pbs"])
def test_pbs_directives(script):
    """The #PBS lines (parsed, not run by a server): PBS Pro `select` syntax with one MPI rank per
    requested core and one OpenMP thread per rank (ncpus = mpiprocs × ompthreads, ompthreads = 1, so
    PBS Pro sets OMP_NUM_THREADS = 1), no Torque `nodes=` mixed in, a walltime, joined output, all
    directives before the first command; the one-line Torque replacement given in the script's
    header asks for the same cores (nodes=N:ppn=mpiprocs) and is the one docs/jobscripts.md gives."""
    d, late = pbs_directives(script)
    assert not late, late
    resources = d["-l"]
    selects = [v for v in resources if v.startswith("select=")]
    assert len(selects) == 1, resources
    n_chunks, chunk = parse_select(selects[0])
    assert n_chunks >= 1 and chunk["ompthreads"] == 1, chunk
    assert chunk["ncpus"] == chunk["mpiprocs"] * chunk["ompthreads"], chunk
    assert not any("nodes=" in v or "ppn=" in v for v in resources), resources
    assert any(v.startswith("walltime=") for v in resources) and d["-j"] == ["oe"]
    assert script != "run.pbs" or d.get("-r") == ["y"]                 # run.pbs rerunnable (resume from checkpoint)
    text = (SCRIPTS / "pbs" / script).read_text()
    torque = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("#") and "nodes=" in ln]
    assert torque == [f"#PBS -l nodes={n_chunks}:ppn={chunk['mpiprocs']}"], torque
    assert "PBS Pro / OpenPBS only" in text
    assert f"`{torque[0]}`" in (REPO / "docs" / "jobscripts.md").read_text()


@pytest.mark.parametrize("omp", ["from ompthreads", None, "3"])
def test_run_pbs_reports_ranks_and_threads(tmp_path, omp):
    """Emulated PBS: a PBS_NODEFILE of 2 lines → 2 ranks; threads per rank = the OMP_NUM_THREADS PBS
    Pro sets (from the script's own ompthreads, or another value), 1 when none is set (Torque)."""
    d, _ = pbs_directives("run.pbs")
    _, chunk = parse_select([v for v in d["-l"] if v.startswith("select=")][0])
    nodefile = tmp_path / "nodes"
    nodefile.write_text("localhost\n" * 2)                        # 2 ranks on 2 shared cores
    env = dict(os.environ, **job_env(tmp_path), PBS_O_WORKDIR=str(tmp_path), PBS_NODEFILE=str(nodefile),
               PBS_JOBID="7.emulated", INPUT="unused.toml", SPIA_COMMAND="check-stack --json")
    env.pop("OMP_NUM_THREADS", None)
    want = "1"
    if omp is not None:
        want = env["OMP_NUM_THREADS"] = str(chunk["ompthreads"]) if omp == "from ompthreads" else omp
    r = subprocess.run(["bash", str(SCRIPTS / "pbs" / "run.pbs")], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"spia_mpi job 7.emulated: 2 ranks × {want} threads" in r.stdout, r.stdout
    info, _ = json.JSONDecoder().raw_decode(r.stdout[r.stdout.index("{"):])
    assert info["petsc_scalar"] == "complex128"


def test_make_task_list_validates_every_point_and_answers_help(tmp_path):
    """--help works; a misspelled key in the parameters (or the base) is an error naming the point
    file with the "did you mean" hint and exit status 2; a relative configurations file of the base
    input is made absolute in the points (they live in another folder)."""
    script = [sys.executable, str(SCRIPTS / "make_task_list.py")]
    r = subprocess.run([*script, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "scan description" in r.stdout, r
    (tmp_path / "base.toml").write_text('[configurations]\nsource = "file"\nfile = "conf.h5"\n')
    (tmp_path / "conf.h5").write_bytes(b"")
    spec = tmp_path / "scan.toml"
    spec.write_text('base = "base.toml"\nout = "pts"\n[parameters]\n"spia.matsubra_j" = [8, 16]\n')
    r = subprocess.run([*script, str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == "", r
    assert "point_000.toml" in r.stderr and "did you mean 'spia.matsubara_j'" in r.stderr, r.stderr
    spec.write_text('base = "base.toml"\nout = "pts"\n[parameters]\n"spia.mode" = ["born", "bes"]\n')
    r = subprocess.run([*script, str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and "point_001.toml" in r.stderr and "'bes'" in r.stderr, r
    spec.write_text('base = "base.toml"\nout = "pts"\n[parameters]\n"spia.mode" = ["born", "bse"]\n')
    r = subprocess.run([*script, str(spec)], capture_output=True, text=True)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r
    from spia_mpi.io import runinput
    inp, _ = runinput.load_run_input(tmp_path / "pts" / "point_001.toml")
    assert inp.configurations.file == str(tmp_path / "conf.h5") and inp.spia.mode == "bse"
    spec.write_text('base = "nothere.toml"\n[parameters]\n"spia.mode" = ["born"]\n')
    r = subprocess.run([*script, str(spec)], capture_output=True, text=True)
    assert r.returncode == 2 and "nothere.toml does not exist" in r.stderr, r
