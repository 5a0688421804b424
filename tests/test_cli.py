"""Command-line behaviour shared by the subcommands: -q/-v after the subcommand, short logs,
a missing T_c explained in run's summary."""
from spia_mpi.cli import build_parser

WEAK = """
[model.holstein]
coupling_ev_per_ang = 0.3
[output]
file = "weak.h5"
plots = {plots}
"""      # appended to the tiny input of conftest (small_run.tiny)


def test_quiet_and_verbose_before_or_after_the_subcommand():
    parser, _ = build_parser()
    for argv, quiet, verbose in ((["run", "x"], False, False), (["-q", "run", "x"], True, False),
                                 (["run", "-q", "x"], True, False), (["run", "x", "-v"], False, True),
                                 (["-v", "combine", "a.h5", "--structure", "s", "--qgrid", "1", "1", "1", "-q"],
                                  True, True)):
        a = parser.parse_args(argv)
        assert (a.quiet, a.verbose) == (quiet, verbose), argv


def test_run_log_is_short_quiet_works_and_a_missing_tc_is_explained(tmp_path, spia_cli, small_run):
    """Weak coupling (g = 0.3 eV/Å: λ ≈ 0.01, no T_c for μ* = 0.1): the summary says why; the
    log is a few lines (the resolved input is in the file, not the log) and has no Python
    warnings (figures on); `run -q` prints no log lines at all."""
    import json

    import h5py
    p = tmp_path / "weak.toml"
    p.write_text(small_run.tiny + WEAK.format(plots="true"))
    r = spia_cli(["run", p])
    assert r.returncode == 0, r
    assert "T_c = nan K" in r.stdout and "(μ*=0.1: no T_c above" in r.stdout, r
    log = [x for x in r.stderr.splitlines() if x.startswith("[spia")]
    assert 5 < len(log) < 30 and "Warning" not in r.stderr, r.stderr
    with h5py.File(tmp_path / "weak.h5") as f:
        assert json.loads(f["input"].attrs["json"])["model"]["holstein"]["coupling_ev_per_ang"] == 0.3
    p.write_text(small_run.tiny + WEAK.format(plots="false"))
    r = spia_cli(["run", "-q", p])
    assert r.returncode == 0 and "[spia" not in r.stderr and "results:" in r.stdout, r


def test_tutorial_writes_inputs_that_the_tutorial_commands_accept(tmp_path, spia_cli):
    """`tutorial --out` writes the run input, the scan, a λ(m) text file and an i-PI trajectory;
    each is accepted by the command that uses it (run --dry-run, make_task_list, tc, sample
    convert); a second call keeps the files unless --force is given."""
    import subprocess
    import sys
    from pathlib import Path

    from spia_mpi.ions import configurations as cf
    d = tmp_path / "tut"
    r = spia_cli(["tutorial", "--out", d])
    assert r.returncode == 0, r
    r = spia_cli(["run", "input.toml", "--dry-run"], cwd=d)
    assert r.returncode == 0 and '"n_beads": 16' in r.stdout, r
    repo = Path(__file__).resolve().parents[1]
    t = subprocess.run([sys.executable, str(repo / "jobscripts" / "make_task_list.py"), str(d / "scan.toml")],
                       capture_output=True, text=True)
    assert t.returncode == 0 and len(t.stdout.splitlines()) == 4, t
    r = spia_cli(["tc", "--lambda", "lambda.dat", "--temperature", 290, "--json"], cwd=d)
    assert r.returncode == 0 and '"tc_K"' in r.stdout, r
    r = spia_cli(["sample", "convert", "--format", "ipi", "sim.pos_*.xyz", "--temperature", 290, "--time-step", 20,
                  "--out", "conf_ipi.h5"], cwd=d)
    assert r.returncode == 0, r
    conf = cf.read_h5(d / "conf_ipi.h5")
    assert conf.positions.shape == (48, 4, 38, 3) and conf.time_step_fs == 20
    r = spia_cli(["tutorial", "--out", d])
    assert r.returncode == 2 and "--force" in r.stderr, r
    assert spia_cli(["tutorial", "--out", d, "--force"]).returncode == 0
