"""PIMD through i-PI in-process (spia_mpi.ions.pimd) and the `sample pimd` command.

The physics check: for Einstein oscillators (E = ½κ|u|² per atom) the N_b-bead
primitive path integral has independent bead normal modes with
⟨|ũ_m|²⟩ = k_BT/(κ + MΩ_m²), Ω_m = (2N_b k_BT/ħ) sin(πm/N_b) — written out here
from the formula, not from spia_mpi's sampler. A PILE-L run must reproduce every
mode power within its block-averaged error bar.
"""
import os
import signal

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from prerequisites import missing

try:
    import ipi.scripting  # noqa: F401
except ImportError as exc:
    missing("i-PI (ipi.scripting)", f"{exc}; install it into the venv: pip install ipi (docs/install.md)")

from spia_mpi import units  # noqa: E402
from spia_mpi.ions.calculators import EinsteinHarmonic, YukawaPair, thomas_fermi_length  # noqa: E402
from spia_mpi.ions.configurations import read_h5, write_h5  # noqa: E402
from spia_mpi.errors import InputError  # noqa: E402
from spia_mpi.ions.pimd import _CALCULATORS, run_pimd  # noqa: E402


def _hydrogen8():
    atoms = bulk("H", "sc", a=1.6, cubic=True).repeat(2)           # 8 H, r_s ≈ 1.9 bohr
    return atoms, YukawaPair(thomas_fermi_length(len(atoms) / atoms.get_volume()))


def test_short_yukawa_run_shapes_units_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atoms, calc = _hydrogen8()
    handler = signal.getsignal(signal.SIGINT)
    conf = run_pimd(atoms, calc, n_beads=4, temperature_k=300.0, time_step_fs=0.25, n_steps=24,
                    skip_steps=4, stride=2, seed=7)
    assert os.listdir(tmp_path) == []                     # i-PI's RESTART stayed in its temporary dir
    assert signal.getsignal(signal.SIGINT) is handler and not _CALCULATORS
    assert conf.positions.shape == (10, 4, 8, 3)
    assert conf.n_conf == 10 and conf.n_beads == 4 and conf.n_atoms == 8
    assert np.allclose(conf.cell, atoms.cell[:]) and list(conf.numbers) == [1] * 8
    assert np.allclose(conf.masses, 1.008, atol=1e-3)     # amu
    assert conf.temperature_k == 300.0 and conf.time_step_fs == pytest.approx(0.5)
    # Å: in 6 fs at 300 K a proton moves ≪ 1 Å (thermal speed ≈ 0.03 Å/fs) but the beads
    # have separated (thermal ring-polymer momenta); a unit slip (bohr ↔ Å) fails both
    u = conf.positions - atoms.positions[None, None]
    assert np.abs(u).max() < 0.5
    assert conf.positions.std(axis=1).mean() > 1e-3
    write_h5(conf, tmp_path / "conf.h5")
    back = read_h5(tmp_path / "conf.h5")
    assert np.array_equal(back.positions, conf.positions) and back.time_step_fs == conf.time_step_fs
    assert back.extra["thermostat"] == "PILE-L" and int(back.extra["seed"]) == 7


def test_seed_fixes_the_trajectory():
    atoms, calc = _hydrogen8()
    kw = dict(n_beads=2, temperature_k=500.0, time_step_fs=0.5, n_steps=6, stride=3)
    a = run_pimd(atoms, calc, seed=3, **kw)
    b = run_pimd(atoms, calc, seed=3, **kw)
    c = run_pimd(atoms, calc, seed=4, **kw)
    assert np.array_equal(a.positions, b.positions)
    assert np.abs(a.positions - c.positions).max() > 1e-4


def test_einstein_ring_polymer_normal_modes_match_exact():
    """H atoms on springs, ħΩ = 0.1 eV, βħΩ = 2, N_b = 4: quantum ⟨u²⟩ is 1.28 × classical."""
    n_beads, hw = 4, 0.1
    t = hw / (2 * units.KB_EV_PER_K)                      # 580 K
    rng = np.random.default_rng(1)
    atoms = Atoms("H32", positions=rng.uniform(0, 8, (32, 3)), cell=8 * np.eye(3), pbc=True)
    mass = atoms.get_masses()[0]
    kappa = mass * hw ** 2 / units.HBAR2_OVER_AMU_A2_EV   # κ = MΩ² (eV/Å²)
    conf = run_pimd(atoms, EinsteinHarmonic(kappa, atoms.positions), n_beads=n_beads, temperature_k=t,
                    time_step_fs=1.0, n_steps=1100, skip_steps=100, stride=5, thermostat_tau_fs=7.0,
                    seed=11, fix_com=False)
    u = conf.positions - atoms.positions[None, None]      # [c, b, a, v]
    modes = np.fft.fft(u, axis=1) / n_beads               # ũ_m = (1/N_b) Σ_b u_b e^{-2πimb/N_b}
    power = (np.abs(modes) ** 2).mean(axis=(2, 3))        # [c, m], mean over atoms and xyz
    kt = units.KB_EV_PER_K * t
    omega_m = 2 * n_beads * kt * np.sin(np.pi * np.arange(n_beads) / n_beads)       # ħΩ_m, eV
    exact = kt / (kappa + mass * omega_m ** 2 / units.HBAR2_OVER_AMU_A2_EV)
    blocks = power.reshape(10, -1, n_beads).mean(axis=1)  # 10 blocks of 100 fs ≫ correlation time ~10 fs
    mean, se = blocks.mean(axis=0), blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    assert np.all(se / exact < 0.05)                      # enough statistics to fail on a wrong mass
    # 4 standard errors + 0.5 % for the time step ((ΩΔt)²/12 ≈ 0.2 %)
    for m in range(n_beads // 2 + 1):
        assert abs(mean[m] - exact[m]) < 4 * se[m] + 0.005 * exact[m], (m, mean[m], exact[m], se[m])
    # total ⟨u²⟩ per component: 1.28 k_BT/κ here, clearly not the classical k_BT/κ
    total = (u ** 2).mean()
    assert total == pytest.approx(exact.sum(), rel=0.05)
    assert total > 1.15 * kt / kappa


def test_bad_input_is_input_error():
    atoms, calc = _hydrogen8()
    ok = dict(n_beads=2, temperature_k=300.0, time_step_fs=0.5, n_steps=4)
    for bad, match in (({"n_beads": 0}, "n_beads"), ({"temperature_k": -1.0}, "temperature_k"),
                       ({"time_step_fs": 0.0}, "time_step_fs"), ({"skip_steps": 4}, "leaves no samples")):
        with pytest.raises(InputError, match=match):
            run_pimd(atoms, calc, **{**ok, **bad})
    mirrored = atoms.copy()
    mirrored.set_cell(-atoms.cell[:], scale_atoms=True)
    with pytest.raises(InputError, match="left-handed"):
        run_pimd(mirrored, calc, **ok)
    with pytest.raises(InputError, match="3D periodic"):
        run_pimd(Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]]), calc, **ok)


def test_missing_ipi_is_stack_error(monkeypatch):
    import sys

    from spia_mpi.errors import StackError
    monkeypatch.setitem(sys.modules, "ipi.scripting", None)          # import fails as if not installed
    atoms, calc = _hydrogen8()
    with pytest.raises(StackError, match="pip install"):
        run_pimd(atoms, calc, n_beads=2, temperature_k=300.0, time_step_fs=0.5, n_steps=4)


def test_cli_sample_pimd(spia_cli, tmp_path):
    out = tmp_path / "conf.h5"
    r = spia_cli(["sample", "pimd", "--structure", "hydrogen-sc", "--supercell", 2, 2, 2, "--beads", 4,
                  "--temperature", 300, "--steps", 20, "--timestep", 0.25, "--skip-fs", 1, "--stride", 4,
                  "--seed", 2, "--out", out], cwd=tmp_path)
    assert r.returncode == 0, r
    conf = read_h5(out)
    assert conf.positions.shape == (4, 4, 8, 3) and conf.time_step_fs == pytest.approx(1.0)
    assert sorted(os.listdir(tmp_path)) == ["conf.h5"]
    for args, option in ((["--beads", 0], "--beads"), (["--timestep", -1], "--timestep"),
                         (["--calculator", "einstein"], "--einstein"), (["--charge", "H:1"], "--charge")):
        base = {"--beads": 4, "--timestep": 0.25}
        base.update(dict(zip(args[::2], args[1::2])))
        argv = ["sample", "pimd", "--structure", "hydrogen-sc", "--temperature", 300, "--steps", 4,
                "--out", tmp_path / "bad.h5"] + [x for kv in base.items() for x in kv]
        r = spia_cli(argv, cwd=tmp_path)
        assert r.returncode == 2 and option in r.stderr, r


def test_any_cell_orientation_samples_come_back_in_the_users_frame():
    """fcc hydrogen in ASE's primitive cell (not i-PI's standard orientation), ions on springs
    around their sites: the samples carry the user's cell unchanged and stay around the user's
    sites (the calculator saw the user's frame; a frame mix-up would put them ≈ Å away)."""
    from ase.build import bulk
    atoms = bulk("H", "fcc", a=2.4).repeat((2, 1, 1))
    assert abs(atoms.cell[0, 1]) > 0.1                        # not lower triangular
    kappa = 10.0
    conf = run_pimd(atoms, EinsteinHarmonic(kappa, atoms.positions), n_beads=2, temperature_k=300.0,
                    time_step_fs=0.5, n_steps=60, stride=10, seed=5, fix_com=False)
    assert np.array_equal(conf.cell, atoms.cell[:])
    d = conf.positions - atoms.positions[None, None]
    # classical spread √(k_BT/κ) ≈ 0.05 Å; the quantum one is larger but well below 0.5 Å
    assert np.max(np.abs(d)) < 0.5, np.max(np.abs(d))


def test_pimd_configurations_feed_a_grid_model_run(spia_cli, tmp_path):
    """structure → `sample pimd` → `run` on the real-space grid model (2 ranks): the chain the
    tutorial shows. The file is accepted as it is (cell, atoms, order) and λ(m) comes out finite
    with error bars, λ(0) > 0."""
    import h5py
    r = spia_cli(["sample", "pimd", "--structure", "hydrogen-sc", "--supercell", 2, 2, 2, "--beads", 4,
                  "--temperature", 300, "--steps", 64, "--timestep", 0.25, "--stride", 16, "--seed", 4,
                  "--out", tmp_path / "conf.h5"], cwd=tmp_path)
    assert r.returncode == 0, r
    (tmp_path / "in.toml").write_text("""
[model]
kind = "grid"
[model.grid]
structure = "hydrogen-sc"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 2, 2]
[configurations]
source = "file"
file = "conf.h5"
[spia]
states_per_k = 2
gamma_ev = [0.5]
resolvent = "petsc"
n_blocks = 2
[eliashberg]
mustar = [0.1]
[output]
file = "res.h5"
plots = false
""")
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2, cwd=tmp_path)
    assert r.returncode == 0, r
    with h5py.File(tmp_path / "res.h5", "r") as f:
        assert f.attrs["complete"]
        lam, err = f["lambda/lambda_m"][0], f["lambda/lambda_m_error"][0]
    assert lam.shape == (3,) and lam[0] > 0 and np.all(np.isfinite(err))
