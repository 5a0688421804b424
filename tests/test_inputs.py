"""TOML → dataclass validation: clear errors naming file and key."""
from dataclasses import dataclass
from typing import Literal

import pytest

from spia_mpi.errors import InputError
from spia_mpi.io.inputs import (all_keys, build, load, nonempty, option, positive,
                             reference_markdown, to_dict, all_of, in_range)


@dataclass(frozen=True)
class Solver:
    kind: Literal["dense", "petsc"] = option("dense", doc="resolvent path")
    rtol: float = option(1e-10, check=positive, doc="KSP tolerance")


@dataclass(frozen=True)
class Schema:
    temperature_k: float = option(units="K", check=positive, doc="PIMD temperature")
    gamma_ev: tuple[float, ...] = option((0.8,), units="eV", check=all_of(nonempty, positive))
    mustar: tuple[float, ...] = option((0.1,), check=in_range(0.0, 0.5))
    beads: int = option(16, check=positive)
    solver: Solver = option(default_factory=Solver)


def write(tmp_path, text):
    p = tmp_path / "in.toml"
    p.write_text(text)
    return p


def test_defaults_and_nested(tmp_path):
    s = load(Schema, write(tmp_path, "temperature_k = 290\n[solver]\nkind = 'petsc'\n"))
    assert s.temperature_k == 290.0 and isinstance(s.temperature_k, float)
    assert s.solver.kind == "petsc" and s.solver.rtol == 1e-10
    d = to_dict(s)
    assert d["solver"]["kind"] == "petsc" and d["gamma_ev"] == [0.8]


@pytest.mark.parametrize("text,needle", [
    ("temperature_k = 290\ngama_ev = [0.1]\n", "unknown key 'gama_ev'; did you mean 'gamma_ev'"),
    ("gamma_ev = [0.1]\n", "missing required key 'temperature_k'"),
    ("temperature_k = '290'\n", "key 'temperature_k' expected a number, found a string"),
    ("temperature_k = -5\n", "key 'temperature_k' = -5 K must be > 0"),
    ("temperature_k = 290\ngamma_ev = [0.1, -0.2]\n", "must be > 0"),
    ("temperature_k = 290\nmustar = [0.9]\n", "must be in [0.0, 0.5]"),
    ("temperature_k = 290\nbeads = 2.5\n", "expected an integer"),
    ("temperature_k = 290\n[solver]\nkind = 'petcs'\n", "did you mean 'petsc'"),
    ("temperature_k = 290\n[solver]\nrtl = 1\n", "unknown key 'solver.rtl'; did you mean 'solver.rtol'"),
    ("temperature_k = = 1\n", "not valid TOML"),
])
def test_errors_name_file_and_key(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load(Schema, p)
    assert needle in str(exc.value)
    assert str(p) in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load(Schema, tmp_path / "nope.toml")


def test_reference_lists_every_key():
    md = reference_markdown(Schema)
    for key in all_keys(Schema):
        assert f"`{key}`" in md
    assert "**required**" in md


def test_scalar_accepted_for_list():
    s = build(Schema, {"temperature_k": 100, "gamma_ev": 0.4})
    assert s.gamma_ev == (0.4,)


@pytest.mark.parametrize("text,needle", [
    ("[configurations.einstein]\ntemperature_k = 0.025\n", "temperature_k' = 0.025 K is below 1 K: a temperature in eV?"),
    ("[configurations.einstein]\ntemperature_k = 2e6\n", "is above 100000 K"),
    ("[configurations.einstein]\nhbar_omega_ev = 150\n", "hbar_omega_ev' = 150 eV is above 5 eV: in meV"),
    ("[configurations.einstein]\nhbar_omega_ev = 1e-5\n", "is below 0.0001 eV"),
    ("[model.holstein]\nhopping_ev = 250\n", "hopping_ev' = 250 eV is above 20 eV: in meV?"),
    ("[model.holstein]\nlattice_constant_ang = 300\n", "is above 50 Å: in bohr or pm?"),
    ("[model.holstein]\nmass_amu = 1836\n", "is above 300 amu: in units of the electron mass?"),
    ("[model.holstein]\nmass_amu = 0\n", "mass_amu' = 0 amu must be > 0"),
    ("[spia]\ngamma_ev = [0.2, 200.0]\n", "gamma_ev' = [0.2, 200.0] eV entry 1 (200) is above 10 eV: in meV?"),
    ("[spia]\ngamma_ev = [0.0]\n", "entry 0 (0) must be > 0"),
    ("[spia]\nwindow_ev = [0.1, 0.5]\n", "window_ev' = [0.1, 0.5] eV must contain ε_F (lower < 0 < upper)"),
    ("[spia]\nwindow_ev = [-500.0, 1.0]\n", "reaches more than 100 eV from ε_F: in meV?"),
    ("[spia]\nfermi_smearing_ev = 50.0\n", "fermi_smearing_ev' = 50.0 eV is above 10 eV: in meV?"),
    ("[spia]\nmatsubara_j = -1\n", "matsubara_j' = -1 must be in [0, 10000]"),
    ("[spia]\nfermi_level = 5000.0\n", "fermi_level' = 5000.0 must be in [-1000.0, 1000.0]"),
    ("[spia]\nfermi_level_ev = -2000.0\n", "fermi_level_ev' = -2000.0 eV must be in [-1000.0, 1000.0]"),
    ("[spia]\ntau_refine = 0\n", "tau_refine' = 0 must be in [1, 10000]"),
    ("[model.grid]\ngrid_per_cell = [1, 4, 4]\n", "grid_per_cell' = [1, 4, 4] must be ≥ 2 along every vector"),
    ("[model.grid]\ngrid_per_cell = [4, 4]\n", "must have 3 entries"),
    ("[model.grid]\nspacing_ang = 5.0\n", "spacing_ang' = 5.0 Å is above 2 Å: in bohr or pm?"),
    ("[model.grid]\nfd_order = 3\n", "fd_order' = 3 must be 2, 4, 6 or 8"),
])
def test_run_input_unit_sanity_bounds(tmp_path, text, needle):
    """Values outside physical bounds are refused with the likely unit mix-up named; the
    defaults and the shipped inputs stay inside."""
    from spia_mpi.io.runinput import load_run_input
    p = write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        load_run_input(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)


def test_shipped_inputs_pass_the_sanity_bounds():
    from pathlib import Path

    from spia_mpi.io.runinput import load_run_input
    data = Path(__file__).resolve().parents[1] / "spia_mpi" / "data"
    for name in ("demo.toml", "demo_grid.toml"):
        load_run_input(data / name)
