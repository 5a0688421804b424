"""Superionic reference R⁽⁰⁾ of the GPAW model from `analyze`'s density peaks
(spia_mpi.lattice.reference, model.gpaw.reference): peaks folded onto their primitive atoms,
through the real `analyze` command, and its errors."""
import json

import numpy as np
import pytest
from ase.build import bulk

from spia_mpi.errors import InputError
from spia_mpi.lattice import supercells
from spia_mpi.lattice.reference import primitive_from_peaks
from spia_mpi.lattice.structures import load_structure
from prerequisites import require_gpaw

LIH_A = 4.02            # rocksalt LiH (Å)
SHIFT_H = np.array([0.12, -0.05, 0.03])         # the H sites of the "superionic" sample, off the static lattice


def _synthetic_peaks(prim, matrix, rng):
    """Peaks of a supercell: primitive atom p of cell t at static_p + t + δ_p + (−1)^t ε_p (so that
    the mean over the cells is static_p + δ_p exactly for an even number of cells), shuffled."""
    sc, lattice, pidx = supercells.build_supercell(prim, matrix)
    delta = rng.uniform(-0.1, 0.1, (len(prim), 3))
    eps = rng.uniform(-0.05, 0.05, (len(prim), 3))
    sign = np.where(lattice % 2 == 0, 1.0, -1.0)
    pos = sc.get_positions() + delta[pidx] + sign[:, None] * eps[pidx]
    frac = np.mod(pos @ np.linalg.inv(sc.cell[:]), 1.0)
    order = rng.permutation(len(sc))
    return sc.cell[:], sc.numbers[order], frac[order], prim.get_positions() + delta


def test_peaks_of_a_supercell_give_each_primitive_atom_its_mean_site():
    """Li₂MgH₁₆ (Table S1, 38 atoms), 2-cell supercell peaks in random order: R⁽⁰⁾ = static + δ."""
    prim = load_structure("li2mgh16-solid")
    cell, numbers, frac, expected = _synthetic_peaks(prim, [2, 1, 1], np.random.default_rng(3))
    ref = primitive_from_peaks(prim, cell, numbers, frac)
    assert np.abs(ref.get_positions() - expected).max() < 1e-10
    assert np.array_equal(ref.numbers, prim.numbers) and np.allclose(ref.cell[:], prim.cell[:])


def test_bad_peaks_are_input_errors():
    prim = load_structure("li2mgh16-solid")
    cell, numbers, frac, _ = _synthetic_peaks(prim, [2, 1, 1], np.random.default_rng(4))
    with pytest.raises(InputError, match="H is liquid-like"):
        primitive_from_peaks(prim, cell, numbers[numbers != 1], frac[numbers != 1], liquid_like=(1,))
    with pytest.raises(InputError, match="expected 2"):                # a missing peak
        primitive_from_peaks(prim, cell, numbers[1:], frac[1:])
    with pytest.raises(InputError, match="not a supercell"):
        primitive_from_peaks(prim, cell * 1.01, numbers, frac)


def _write_superionic_sample(folder, n_conf=40, n_beads=2, seed=11):
    """Einstein ring polymers of a 2×2×2 LiH supercell around sites with H moved by SHIFT_H;
    returns (file, positions)."""
    from spia_mpi.ions import configurations as cf
    prim = bulk("LiH", "rocksalt", a=LIH_A)
    sc, _, pidx = supercells.build_supercell(prim, [2, 2, 2])
    centre = sc.get_positions() + np.where(sc.numbers[:, None] == 1, SHIFT_H, 0.0)
    pos = cf.sample_einstein_ring_polymers(n_conf, n_beads, sc.get_masses(), 0.1, 300.0, centre,
                                           np.random.default_rng(seed))
    conf = cf.Configurations(pos, sc.cell[:], sc.numbers, sc.get_masses(), 300.0, 0.0, "test sample")
    path = folder / "conf.h5"
    cf.write_h5(conf, path)
    return path, pos, pidx


def test_reference_from_the_analyze_command(tmp_path, spia_cli):
    """`analyze` fits the peaks of a sample whose H sites are off the lattice by SHIFT_H; the
    reference puts H at static + SHIFT_H and Li at the static site, within the statistical error
    of the sample mean (σ/√N per component, 5σ), and the error is resolved (not a bias)."""
    conf_path, pos, pidx = _write_superionic_sample(tmp_path)
    r = spia_cli(["analyze", conf_path, "--out", tmp_path / "ana"])
    assert r.returncode == 0, r
    from spia_mpi.io.analysisfile import read_peaks
    peaks = read_peaks(tmp_path / "ana" / "analysis.h5")
    prim = bulk("LiH", "rocksalt", a=LIH_A)
    ref = primitive_from_peaks(prim, peaks.cell, peaks.numbers, peaks.centres_frac, peaks.liquid_like)
    expected = prim.get_positions() + np.where(prim.numbers[:, None] == 1, SHIFT_H, 0.0)
    for p in range(len(prim)):
        x = pos[:, :, pidx == p].reshape(-1, 3)
        n_independent = pos.shape[0] * int((pidx == p).sum())         # beads of one sample are correlated
        err = x.std(axis=0) / np.sqrt(n_independent)
        assert np.all(np.abs(ref.get_positions()[p] - expected[p]) < 5 * err), (p, ref.get_positions()[p])
    assert np.linalg.norm(ref.get_positions()[1] - prim.get_positions()[1]) > 0.1      # H moved


def test_run_input_takes_the_reference_from_the_analysis_file(tmp_path, spia_cli):
    """model.gpaw.reference: the model's R⁽⁰⁾ is the supercell of the peak structure, and the dry
    run plans on it (no SCF)."""
    require_gpaw()
    conf_path, _, _ = _write_superionic_sample(tmp_path, n_conf=10)
    assert spia_cli(["analyze", conf_path, "--out", tmp_path / "ana"]).returncode == 0
    bulk("LiH", "rocksalt", a=LIH_A).write(tmp_path / "lih.xyz")
    (tmp_path / "in.toml").write_text(RUN)
    from spia_mpi.commands.run import build_model
    from spia_mpi.io.analysisfile import read_peaks
    from spia_mpi.io.runinput import load_run_input
    inp, folder = load_run_input(tmp_path / "in.toml")
    model = build_model(inp, folder)
    peaks = read_peaks(tmp_path / "ana" / "analysis.h5")
    prim = primitive_from_peaks(bulk("LiH", "rocksalt", a=LIH_A), peaks.cell, peaks.numbers, peaks.centres_frac)
    sc, _, _ = supercells.build_supercell(prim, [2, 1, 1])
    assert np.abs(model.reference_positions - sc.get_positions()).max() < 1e-12
    r = spia_cli(["run", tmp_path / "in.toml", "--dry-run"])
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["gpaw"]["atoms"] == 4
    bad = tmp_path / "bad.toml"
    bad.write_text(RUN.replace("ana/analysis.h5", "conf.h5"))
    r = spia_cli(["run", bad, "--dry-run"])
    assert r.returncode != 0 and "conf.h5" in r.stderr and "Traceback" not in r.stderr, r


RUN = """
[model]
kind = "gpaw"
[model.gpaw]
structure = "lih.xyz"
reference = "ana/analysis.h5"
kpts = [2, 1, 1]
h_ang = 0.25
density = "frozen"
[supercell]
matrix = [2, 1, 1]
kpoints = [[0, 0, 0]]
[configurations.einstein]
hbar_omega_ev = 0.1
temperature_k = 300
n_samples = 4
n_beads = 2
[spia]
states_per_k = 4
n_blocks = 2
[output]
file = "res.h5"
"""
