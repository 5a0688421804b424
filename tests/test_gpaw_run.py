"""`spia_mpi run` with model.kind = "gpaw": the dry run (no SCF) and the SCF files of the
configuration–beads (deleted once their resolvents are checkpointed; a resumed run never
repeats an SCF).

System: bcc Li (a = 3.44 Å), dzp, a 2-atom supercell, k = 2×1×1: every GPAW calculation takes
seconds.
"""
import json
import re

import h5py
import numpy as np
import pytest
from ase.build import bulk
from prerequisites import require_gpaw, BCC_LI_A as A_LI


RUN = """
[model]
kind = "gpaw"
[model.gpaw]
structure = "li.xyz"
basis = "dzp"
kpts = [2, 1, 1]
h_ang = 0.25
convergence_density = 1e-5
density = "{density}"
keep_scf = {keep}
[supercell]
matrix = [2, 1, 1]
kpoints = [[0, 0, 0], [0.5, 0, 0]]
[configurations.einstein]
hbar_omega_ev = 0.05
temperature_k = 300
n_samples = {n_samples}
n_beads = 2
seed = 5
[spia]
matsubara_j = 4
states_per_k = 5
gamma_ev = [0.3]
n_blocks = 2
[eliashberg]
mustar = [0.1]
tc_errors = false
[output]
file = "res.h5"
plots = false
"""


def _write(folder, density="scf", keep="false", n_samples=4):
    folder.mkdir(exist_ok=True)
    bulk("Li", "bcc", a=A_LI).write(folder / "li.xyz")
    (folder / "in.toml").write_text(RUN.format(density=density, keep=keep, n_samples=n_samples))
    return folder / "in.toml"


def _dzp_orbitals(symbol):
    """Orbitals of GPAW's dzp basis of ``symbol``, counted from its basis file: Σ (2l + 1)."""
    from gpaw.basis_data import Basis
    return sum(2 * bf.l + 1 for bf in Basis(symbol, "dzp").bf_j)


def test_dry_run_plans_without_any_scf(tmp_path, spia_cli):
    """--dry-run validates input, structure, setups and supercell, prints the plan (sizes from
    the basis files, the SCF count, a cost estimate) and runs no GPAW calculation at all."""
    require_gpaw()
    inp = _write(tmp_path, n_samples=6)
    r = spia_cli(["run", inp, "--dry-run"], ranks=2)
    assert r.returncode == 0, r
    info = json.loads(r.stdout)
    g = info["gpaw"]
    assert g["atoms"] == 2 and g["orbitals"] == 2 * _dzp_orbitals("Li")
    assert g["valence_electrons"] == 2 * 1.0                   # Li's PAW setup: 2s¹ valence
    assert info["states_per_K"] == 5 * 2                        # states_per_k × 2 primitive k per K
    assert info["n_configurations"] == 6 and info["n_beads"] == 2
    cost = g["estimated_core_hours"]
    assert cost["all_configuration_beads"] == pytest.approx(12 * cost["per_configuration_bead"], rel=1e-2)
    assert not (tmp_path / "res.h5.ckpt").exists() and not (tmp_path / "res.h5").exists()
    assert not list(tmp_path.rglob("*.gpw")) and not list(tmp_path.rglob("gpaw_*.txt"))


def test_dry_run_rejects_too_many_states_per_k(tmp_path, spia_cli):
    require_gpaw()
    inp = _write(tmp_path)
    inp.write_text(inp.read_text().replace("states_per_k = 5", "states_per_k = 6"))
    r = spia_cli(["run", inp, "--dry-run"])
    assert r.returncode != 0 and "states_per_k = 6" in r.stderr, r
    assert "Traceback" not in r.stderr


def _scf_iterations(folder) -> int:
    """SCF iterations logged by the configuration groups so far."""
    return sum(len(re.findall(r"^iter:", p.read_text(), re.M))
               for p in (folder / "res.h5.ckpt" / "gpaw").glob("gpaw_group*.txt"))


def _lambda(folder):
    with h5py.File(folder / "res.h5", "r") as f:
        return f["lambda/lambda_m"][...]


@pytest.mark.slow
def test_scf_files_deleted_after_checkpoint_and_resume_repeats_no_scf(tmp_path, spia_cli):
    """density = "scf", ensemble Fermi level (the default, which needs every bead's eigenvalues).

    1. keep_scf = true: one SCF file per configuration–bead remains (4 × 2).
    2. "Killed" before configuration 1's resolvents were stored (its task files removed), resumed
       with keep_scf = false: its SCFs are reused from their files (no SCF iteration), its tasks
       recomputed, λ bit-identical; then every SCF file is gone (all resolvents are stored).
    3. Rerun of the finished run: still no SCF iteration (the ensemble Fermi level reads the
       eigenvalue records), λ identical."""
    require_gpaw()
    inp = _write(tmp_path, keep="true")
    gdir = tmp_path / "res.h5.ckpt" / "gpaw"
    r = spia_cli(["run", inp], timeout=900)
    assert r.returncode == 0, r
    lam = _lambda(tmp_path)
    assert len(list(gdir.glob("scf_*.gpw"))) == 8 and len(list(gdir.glob("eig_*.npy"))) == 8
    n_iter = _scf_iterations(tmp_path)
    assert n_iter >= 8                                   # every bead iterated (and the log shows it)

    n_conf = 4
    for ik in range(2):                                  # task = ik · n_conf + c, configuration c = 1
        (tmp_path / "res.h5.ckpt" / f"task_{ik * n_conf + 1:07d}.npz").unlink()
    _write(tmp_path, keep="false")
    r = spia_cli(["run", inp], timeout=900)
    assert r.returncode == 0, r
    assert "reused 6 finished tasks" in r.stderr, r
    assert _scf_iterations(tmp_path) == n_iter           # no SCF repeated
    assert np.array_equal(_lambda(tmp_path), lam)
    assert not list(gdir.glob("scf_*.gpw")) and len(list(gdir.glob("eig_*.npy"))) == 8

    r = spia_cli(["run", inp], timeout=900)
    assert r.returncode == 0, r
    assert "reused 8 finished tasks" in r.stderr, r
    assert _scf_iterations(tmp_path) == n_iter
    assert np.array_equal(_lambda(tmp_path), lam)
