"""PIMD with i-PI in-process, driving any ASE calculator, into :class:`Configurations`.

i-PI (PyPI ``ipi`` ≥ 3) is run through its Python scripting API
(:class:`ipi.scripting.InteractiveSimulation`) with an ``<ffdirect>`` force field
whose 'custom' PES (:mod:`spia_mpi.ions._ipi_pes`) evaluates an in-memory ASE
calculator — no sockets, no driver processes. Ensemble: NVT ring-polymer MD with
N_b beads (primitive Trotter action), PILE-L thermostat (Ceriotti et al., JCP 133,
124104 (2010)): Langevin on the centroid with time constant τ, critically damped
Langevin on the internal ring-polymer normal modes; initial momenta thermal at T;
all beads start at the given structure.

PIMD is the user's upstream step: it runs serially on one rank (the calculator
may use its own threads). i-PI's RESTART file lives in a temporary directory
that is removed afterwards; nothing else is written.

Units: Å, K, fs, amu, eV (the calculator's). The result holds bead positions
``positions_cbav`` [n_samples, n_beads, n_atoms, 3] in Å (unwrapped: beads move
continuously, as i-PI integrates them), sampled every ``stride`` MD steps after
``skip_steps`` equilibration steps.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from spia_mpi.ions.configurations import Configurations
from spia_mpi.errors import InputError, StackError

logger = logging.getLogger(__name__)

#: key → (template Atoms, ASE calculator), read by the i-PI custom PES (spia_mpi/ions/_ipi_pes.py).
_CALCULATORS: dict = {}


def _require_ipi():
    try:
        import ipi
        from ipi.scripting import InteractiveSimulation  # noqa: F401
    except ImportError as exc:
        raise StackError(f"PIMD needs i-PI's scripting API (pip install 'ipi>=3'): {exc}") from exc
    return getattr(ipi, "__version__", "?")


@contextlib.contextmanager
def _inside(path):
    """Run i-PI inside ``path``: it writes RESTART (and checks for EXIT) in the working directory."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def simulation_xml(atoms, n_beads: int, temperature_k: float, time_step_fs: float,
                   thermostat_tau_fs: float, seed: int, fix_com: bool, key: str) -> str:
    """The i-PI input (an XML string) of one NVT PIMD run with the bridge force field."""
    import ase.units
    from ipi.scripting import motion_nvt_xml
    from ipi.scripting import simulation_xml as ipi_simulation_xml
    pes_path = Path(__file__).with_name("_ipi_pes.py")
    forcefield = (f"<ffdirect name='spia_ase'><pes>custom</pes><pes_path>{pes_path}</pes_path>"
                  f"<parameters>{{key: {key}}}</parameters></ffdirect>")
    # i-PI's 'ase' units: time in ASE units (ase.units.fs per fs), temperature in K
    motion = motion_nvt_xml(time_step_fs * ase.units.fs, thermostat="pile_l",
                            tau=thermostat_tau_fs * ase.units.fs, fixcom=bool(fix_com))
    start = atoms.copy()
    start.arrays["mass"] = atoms.get_masses()           # amu (i-PI 'ase' mass unit); else i-PI's table
    xml = ipi_simulation_xml([start] * n_beads, forcefield, motion, temperature=temperature_k,
                             output="<output prefix='spia_pimd'></output>", verbosity="quiet",
                             safe_stride=1000000)
    root = ET.fromstring(xml)
    root.set("threading", "False")                       # one system: no thread pool, reproducible
    prng = ET.SubElement(root, "prng")
    ET.SubElement(prng, "seed").text = str(int(seed))
    return ET.tostring(root, encoding="unicode")


def run_pimd(atoms, calculator, *, n_beads: int, temperature_k: float, time_step_fs: float,
             n_steps: int, thermostat_tau_fs: float = 100.0, skip_steps: int = 0, stride: int = 1,
             seed: int = 1, fix_com: bool = True, source: str = "") -> Configurations:
    """Run NVT PIMD with i-PI and return the sampled bead configurations.

    atoms: ase.Atoms, 3D periodic, right-handed cell in any orientation; its masses (amu)
      are used. i-PI works in its standard frame (a ∥ x, b in the xy plane): the run is
      rotated into it (:func:`spia_mpi.ions.configurations.ipi_standard_frame`), the calculator
      still sees positions in the frame of ``atoms``, and the samples come back in that
      frame with the cell of ``atoms``.
    calculator: any ASE calculator giving energy (eV) and forces (eV/Å).
    n_beads N_b ≥ 1; temperature_k T > 0 (K); time_step_fs > 0; n_steps total MD steps;
    thermostat_tau_fs: PILE-L centroid time constant τ (fs); skip_steps: equilibration
    steps dropped; stride: MD steps between stored samples (≥ 1); seed: i-PI's PRNG
    seed (initial momenta and thermostat noise; same seed ⇒ same trajectory);
    fix_com: remove the centre-of-mass motion (i-PI default; set False for potentials
    that are not translation invariant, e.g. :class:`~spia_mpi.ions.calculators.EinsteinHarmonic`).

    Returns Configurations with positions [n_samples, N_b, n_atoms, 3] Å,
    n_samples = (n_steps − skip_steps) // stride, time_step_fs = stride · Δt.
    Must be called from the main thread (i-PI installs SIGINT/SIGTERM handlers
    while it runs; they are restored afterwards).
    """
    version = _require_ipi()
    for name, v in (("n_beads", n_beads), ("n_steps", n_steps), ("stride", stride)):
        if int(v) != v or v < 1:
            raise InputError(f"{name} = {v} must be an integer ≥ 1")
    if int(skip_steps) != skip_steps or skip_steps < 0:
        raise InputError(f"skip_steps = {skip_steps} must be an integer ≥ 0")
    for name, v in (("temperature_k", temperature_k), ("time_step_fs", time_step_fs),
                    ("thermostat_tau_fs", thermostat_tau_fs)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} = {v} must be positive")
    n_samples = (int(n_steps) - int(skip_steps)) // int(stride)
    if n_samples < 1:
        raise InputError(f"n_steps = {n_steps} with skip_steps = {skip_steps} and stride = {stride} "
                         "leaves no samples")
    if len(atoms) == 0 or not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-9:
        raise InputError("PIMD needs atoms in a 3D periodic cell")
    from spia_mpi.ions.configurations import ipi_standard_frame
    R = ipi_standard_frame(atoms.cell[:])                # cell @ R: i-PI's frame; r @ R likewise
    work = atoms.copy()
    work.set_cell(atoms.cell[:] @ R)
    work.positions = atoms.positions @ R

    from ipi.scripting import InteractiveSimulation
    from ipi.utils.softexit import softexit

    from spia_mpi.io.log import progress

    key = uuid.uuid4().hex
    xml = simulation_xml(work, int(n_beads), temperature_k, time_step_fs, thermostat_tau_fs,
                         seed, fix_com, key)
    template = atoms.copy()
    template.calc = None
    _CALCULATORS[key] = (template, calculator, R)
    pos = np.empty((n_samples, int(n_beads), len(atoms), 3))
    temps = np.empty(n_samples)
    logger.info("PIMD (i-PI %s): %d atoms × %d beads, T = %g K, Δt = %g fs, PILE-L τ = %g fs, "
                "%d steps (skip %d, stride %d) → %d samples", version, len(atoms), n_beads, temperature_k,
                time_step_fs, thermostat_tau_fs, n_steps, skip_steps, stride, n_samples)
    sim = None
    try:
        with tempfile.TemporaryDirectory(prefix="spia_ipi_") as tmp, _inside(tmp):
            sim = InteractiveSimulation(xml)
            if skip_steps:
                sim.run(int(skip_steps), write_outputs=False)
            for c in progress(range(n_samples), total=n_samples, label="PIMD samples", logger=logger):
                sim.run(int(stride), write_outputs=False)
                beads = sim.get_structures()
                beads = beads if isinstance(beads, list) else [beads]
                pos[c] = np.array([b.positions for b in beads]) @ R.T     # back to the frame of atoms
                temps[c] = float(sim.properties("temperature"))
                if not np.all(np.isfinite(pos[c])):
                    raise InputError(f"PIMD diverged by MD step {skip_steps + (c + 1) * stride} "
                                     f"(non-finite positions): reduce the time step {time_step_fs} fs")
    finally:
        _CALCULATORS.pop(key, None)
        if sim is not None:
            for ff in sim.fflist.values():
                ff.stop()
        softexit.reset()                  # restores the signal handlers i-PI replaced
    logger.info("PIMD done: mean kinetic temperature of the samples %.1f K (target %g K)",
                temps.mean(), temperature_k)
    extra = {"engine": f"i-PI {version}", "thermostat": "PILE-L", "thermostat_tau_fs": float(thermostat_tau_fs),
             "md_time_step_fs": float(time_step_fs), "md_steps": int(n_steps), "skip_steps": int(skip_steps),
             "stride": int(stride), "seed": int(seed), "fix_com": bool(fix_com),
             "mean_kinetic_temperature_K": float(temps.mean())}
    return Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), float(temperature_k),
                          float(stride * time_step_fs),
                          source or f"i-PI PIMD N_b={n_beads} T={temperature_k:g} K seed={seed}", extra)
