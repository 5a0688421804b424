"""Convergence-scan driver: runs points, skips finished ones, collects one table and a plot."""
import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]



def test_scan_runs_collects_and_resumes(tmp_path, small_run):
    (tmp_path / "base.toml").write_text(small_run.tiny)
    (tmp_path / "scan.toml").write_text('base = "base.toml"\nout = "sc"\nranks = 1\n[parameters]\n'
                                        '"configurations.einstein.n_beads" = [2, 4]\n'
                                        '"model.holstein.coupling_ev_per_ang" = [3.0, 4.0]\n')
    cmd = [sys.executable, str(REPO / "drivers" / "scan.py"), str(tmp_path / "scan.toml")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "sc" / "scan_table.csv")))
    assert len(rows) == 4
    # physics: λ(0) ∝ g² in this harmonic model (within the statistical errors)
    by = {(r["configurations.einstein.n_beads"], r["model.holstein.coupling_ev_per_ang"]): r for r in rows}
    for nb in ("2", "4"):
        l3, l4 = float(by[(nb, "3.0")]["lambda0"]), float(by[(nb, "4.0")]["lambda0"])
        e = float(by[(nb, "4.0")]["lambda0_err"]) + float(by[(nb, "3.0")]["lambda0_err"]) * 16 / 9
        assert abs(l4 - l3 * 16 / 9) < 3 * e + 0.05 * l4
    assert (tmp_path / "sc" / "scan_convergence.png").stat().st_size > 10_000
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.stdout.count(": done") == 4                       # nothing recomputed


def _load_scan_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("spia_scan_driver", REPO / "drivers" / "scan.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scan_list_and_string_parameters(tmp_path, small_run):
    """k-grid (list-valued) × mode (string) scan: runs, collects a table with canonical values,
    plots on a categorical axis (either parameter first), carries T_c ± σ, resumes, and refuses
    to collect results left over from an edited scan description."""
    import h5py
    import numpy as np
    (tmp_path / "base.toml").write_text(small_run.tiny.replace("[supercell]", "[model.holstein]\ncoupling_ev_per_ang = 8.0\n"
                                                                      "[supercell]"))
    spec = tmp_path / "scan.toml"
    spec.write_text('base = "base.toml"\nout = "sc"\nranks = 1\n[parameters]\n'
                    '"supercell.kgrid" = [[2, 2, 2], [4, 4, 4]]\n"spia.mode" = ["born", "bse"]\n')
    cmd = [sys.executable, str(REPO / "drivers" / "scan.py"), str(spec)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "sc" / "scan_table.csv")))
    assert [(x["supercell.kgrid"], x["spia.mode"]) for x in rows] == [
        ("[2,2,2]", "born"), ("[2,2,2]", "bse"), ("[4,4,4]", "born"), ("[4,4,4]", "bse")]
    for x in rows:
        tc, err = float(x["tc_K_mustar_0.1"]), float(x["tc_K_err_mustar_0.1"])
        assert tc > 0 and 0 < err < tc, x
    # the 4×4×4 k-grid on the 2×2×2 supercell needs 8 K-points, the 2×2×2 grid only Γ: the point
    # files really hold different K sets (read back from the results, not from the table)
    for x, n_k in zip(rows, (1, 1, 8, 8)):
        with h5py.File(tmp_path / "sc" / f"{x['point']}.h5", "r") as f:
            assert int(f["lambda_q"].attrs["n_kpoints"]) == n_k
            assert f["input"].attrs["json"].count('"mode": "%s"' % x["spia.mode"]) == 1
    with h5py.File(tmp_path / "sc" / "scan.h5", "r") as f:
        assert [v.decode() for v in f["spia.mode"][...]] == ["born", "bse", "born", "bse"]
        assert f["supercell.kgrid"][0].decode() == "[2,2,2]" and np.all(np.isfinite(f["lambda0"][...]))
    assert (tmp_path / "sc" / "scan_convergence.png").stat().st_size > 10_000
    # categorical x-axis, in the scan's order, with either parameter first
    scan = _load_scan_module()
    _, out, names, pts = scan.points(spec)
    assert scan.plot(out, names, scan.collect(out, names, pts)) == ["[2,2,2]", "[4,4,4]"]
    assert scan.plot(out, names[::-1], scan.collect(out, names[::-1], pts)) == ["born", "bse"]
    # resume: nothing recomputed
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.count(": done") == 4, r.stdout
    # an edited description (mode order swapped) maps other values onto the same point files:
    # the old results are stale, reported and neither rerun nor collected
    spec.write_text(spec.read_text().replace('["born", "bse"]', '["bse", "born"]'))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.count("stale results, not rerun") == 4, r.stdout
    assert "no finished points" in r.stdout and r.stderr.count("not collected") == 4, r.stderr


def test_scan_value_helpers():
    """Keys and labels of parameter values: hashable, canonical, number spellings equal."""
    scan = _load_scan_module()
    assert scan.canonical([2, 2, 2]) == scan.canonical([2, 2, 2]) == "[2,2,2]"
    assert {scan.canonical([[1, 1, 0], [0, 1, 0], [0, 0, 1]]): 1}     # hashable key for a matrix
    assert [scan.label(v) for v in (0.1, 16, "bse", [4, 4, 4], True)] == ["0.1", "16", "bse", "[4,4,4]", "true"]
    assert scan.is_numeric([4, 8.0]) and not scan.is_numeric([4, "8"]) and not scan.is_numeric([True, False])
    assert scan.same((2, 2, 2), [2.0, 2, 2]) and scan.same(3, 3.0) and not scan.same([2, 2], [2, 2, 2])
    assert not scan.same("born", "bse") and not scan.same(True, 1)


def test_scan_exits_nonzero_and_marks_failed_points(tmp_path, small_run):
    """One point of two fails at run time (its configurations file does not exist): the driver
    says which, still collects the other, marks the failed one in the table and exits with 1;
    a misspelled parameter key stops the scan before anything runs (exit 2, "did you mean")."""
    (tmp_path / "base.toml").write_text(small_run.tiny.replace("[configurations.einstein]",
                                                     '[configurations]\nfile = "missing.h5"\n'
                                                     '[configurations.einstein]'))
    spec = tmp_path / "scan.toml"
    spec.write_text('base = "base.toml"\nout = "sc"\nranks = 1\n[parameters]\n'
                    '"configurations.source" = ["einstein", "file"]\n')
    cmd = [sys.executable, str(REPO / "drivers" / "scan.py"), str(spec)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r
    assert "point_001.toml failed" in r.stderr and "missing.h5" in r.stderr and "1 of 2 point(s) failed" in r.stderr
    rows = list(csv.DictReader(open(tmp_path / "sc" / "scan_table.csv")))
    assert [(x["configurations.source"], x["status"]) for x in rows] == [("einstein", "ok"), ("file", "failed")]
    assert float(rows[0]["lambda0"]) > 0 and rows[1]["lambda0"] == ""
    spec.write_text(spec.read_text().replace('"configurations.source"', '"configurations.sourc"'))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "did you mean 'configurations.source'" in r.stderr and "running" not in r.stdout, r
