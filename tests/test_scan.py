"""Convergence-scan driver: runs points, skips finished ones, collects one table and a plot."""
import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BASE = """
[supercell]
matrix = [2, 2, 2]
[configurations.einstein]
n_samples = 8
n_beads = 4
[spia]
gamma_ev = [0.5]
n_blocks = 4
[eliashberg]
mustar = [0.1]
"""


def test_scan_runs_collects_and_resumes(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
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
