"""``tutorial``: write every input file docs/tutorial.md uses into one folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "tutorial"
HELP = "write the tutorial's input files (run inputs, a structure, spectral input, scan, λ(m) text file, i-PI trajectory) into a folder"
ORDER = 15
NEEDS_MPI = False
DESCRIPTION = """\
Write the inputs of docs/tutorial.md into OUT (default ./tutorial), so every tutorial
command runs as written from inside that folder:

  input.toml          the λ(m)/T_c run of step 3 (Holstein metal, exact Einstein samples)
  grid.toml           step 3b: Li₂MgH₁₆ with the real-space grid model on conf_harmonic.h5
  gpaw.toml           step 3c: bcc Li with the PAW backend (GPAW, LCAO) on conf_li.h5
  li-bcc.extxyz       bcc Li (a = 3.44 Å, one atom) for gpaw.toml and `sample harmonic`
  spectral.toml       step 3d: input.toml with a [spectral] table (ρ(k, E) along a path)
  scan.toml           a convergence scan over it (step 4: make_task_list.py, drivers/scan.py)
  lambda.dat          λ(m) as a text file for `tc --lambda lambda.dat --temperature 290`
  sim.pos_<b>.xyz     an i-PI trajectory (one file per bead; Li₂MgH₁₆, 4 beads, 48 frames
                      20 fs apart, exact harmonic samples) for `sample convert --format ipi`
  README.txt          the commands, each writing its own output file

Existing files are kept unless --force is given. With SPIA_SMALL=1 in the environment the
inputs are smaller (test sizes: fewer configurations, beads, path points; the commands of
docs/tutorial.md stay the same — tests/test_tutorial_commands.py runs them that way).

  python -m spia_mpi tutorial --out tutorial && cd tutorial
"""

INPUT = """\
# The tutorial's run (docs/tutorial.md, step 3): a Holstein metal (simple cubic, t = 1 eV,
# half filling, g = 3.5 eV/Å) with quantum Einstein ions (ħΩ = 0.1 eV, M = 1 amu, 300 K),
# sampled exactly as 16-bead ring polymers; 4×4×4 supercell with two K-points.
[model.holstein]
coupling_ev_per_ang = 3.5
[supercell]
matrix = [4, 4, 4]
kpoints = [[0, 0, 0], [0.5, 0.5, 0.5]]
[configurations]
source = "einstein"          # or: source = "file", file = "conf.h5" (same supercell and atoms)
[configurations.einstein]
hbar_omega_ev = 0.1
temperature_k = 300.0
n_samples = 96
n_beads = 16
[spia]
gamma_ev = [0.2, 0.4, 0.8]   # scan the Lorentzian width, as in the paper
mode = "bse"
resolvent = "petsc"
[eliashberg]
mustar = [0.10, 0.16]
[output]
file = "spia_results.h5"
"""

GRID = """\
# The tutorial's material example (docs/tutorial.md, step 3b): Li₂MgH₁₆ (Fd-3m, primitive cell,
# 38 atoms) with the real-space grid model (screened local model pseudopotentials, 4th-order
# finite differences on a coarse 6³ grid per cell, plane-wave reference states) at K = Γ, on the
# exact harmonic ring polymers of step 2 (conf_harmonic.h5: ħΩ = 0.08 eV, 290 K, 64 × 16 beads).
# No [spia] states: the default state space keeps the plane waves within ±W of ε_F
# (W = max(20 γ_max, 4η) = 16 eV here; docs/spia.md "The default state space").
[model]
kind = "grid"
[model.grid]
structure = "li2mgh16-solid"
grid_per_cell = [6, 6, 6]
[supercell]
matrix = [1, 1, 1]
[configurations]
source = "file"
file = "conf_harmonic.h5"
stride = 1
[spia]
n_blocks = 16
[output]
file = "grid_results.h5"
"""

GPAW = """\
# The tutorial's DFT example (docs/tutorial.md, step 3c): bcc Li (a = 3.44 Å) with the PAW backend
# (GPAW, PBE, LCAO dzp: 5 orbitals per atom) in a 2×2×2 supercell of the one-atom cell (8 atoms),
# K = Γ, on exact Einstein ring polymers (conf_li.h5: ħΩ = 0.025 eV, 300 K, 16 × 4 beads). Cheap
# settings so that it runs in minutes on 2 cores: a Γ-only reference SCF, a coarse real-space grid,
# the reference density for every configuration–bead ("frozen"; the paper's is "scf") and the
# reference structure's Fermi level. Bethe–Salpeter mode: Born (W = Γ) overestimates λ several-fold
# on these samples, whose displacements are far beyond linear coupling (docs/tutorial.md, step 3c).
# The state space is automatic (here: every band); run removes every bead's rigid translation
# (spia.rigid_translations = "auto").
[model]
kind = "gpaw"
[model.gpaw]
structure = "li-bcc.extxyz"
basis = "dzp"
kpts = [1, 1, 1]
h_ang = 0.3
density = "frozen"
[supercell]
matrix = [2, 2, 2]
kpoints = [[0.0, 0.0, 0.0]]
[configurations]
source = "file"
file = "conf_li.h5"
stride = 1
[spia]
matsubara_j = 4
gamma_ev = [0.2, 0.4]
mode = "bse"
n_blocks = 8
fermi_level = "reference"
[eliashberg]
mustar = [0.10, 0.16]
[output]
file = "gpaw_results.h5"
"""

SPECTRAL = INPUT + """\
[spectral]
path = "GXMGR"
n_kpoints = 40
energy_min_ev = -8.0
energy_max_ev = 8.0
n_energies = 401
broadening_ev = 0.05
file = "spectral.h5"
"""

#: SPIA_SMALL=1: (text, replacement) pairs applied to the inputs (test sizes)
SMALL = {"input.toml": [("n_samples = 96", "n_samples = 16"), ("n_beads = 16", "n_beads = 8")],
         "grid.toml": [("stride = 1", "stride = 8"), ("n_blocks = 16", "n_blocks = 4")],
         "gpaw.toml": [("n_blocks = 8", "n_blocks = 4")],      # every configuration: a BSE λ needs them all
         "spectral.toml": [("n_samples = 96", "n_samples = 8"), ("n_beads = 16", "n_beads = 4"),
                           ("matrix = [4, 4, 4]", "matrix = [2, 2, 2]"), ("n_kpoints = 40", "n_kpoints = 6"),
                           ("n_energies = 401", "n_energies = 41")]}

SCAN = """\
# Convergence scan over input.toml (docs/tutorial.md, step 4; docs/jobscripts.md)
base = "input.toml"
out = "scan"
ranks = 1
[parameters]
"configurations.einstein.n_beads" = [8, 16]
"spia.mode" = ["born", "bse"]
"""

README = """\
Inputs of docs/tutorial.md (written by `python -m spia_mpi tutorial`); the page has every command
and what it shows. From this folder, in order:

  python -m spia_mpi sample convert --format ipi 'sim.pos_*.xyz' --temperature 290 --time-step 20 --out conf_ipi.h5
  python -m spia_mpi analyze conf_ipi.h5 --split-window 100
  python -m spia_mpi sample harmonic --structure li2mgh16-solid --einstein 0.08 --temperature 290 --beads 16 \\
         --samples 64 --out conf_harmonic.h5
  python -m spia_mpi run input.toml --dry-run
  mpirun -n 2 python -m spia_mpi run input.toml         (Holstein metal: λ(m) against an exact answer)
  python -m spia_mpi plot spia_results.h5
  python -m spia_mpi tc --lambda spia_results.h5 --gamma 0.4 --mustar 0.1 --mustar 0.13 --json
  mpirun -n 2 python -m spia_mpi run grid.toml          (Li₂MgH₁₆ with the grid model, on conf_harmonic.h5)
  python -m spia_mpi sample harmonic --structure li-bcc.extxyz --supercell 2 2 2 --einstein 0.025 \\
         --temperature 300 --beads 4 --samples 16 --out conf_li.h5
  mpirun -n 2 python -m spia_mpi run gpaw.toml          (bcc Li with GPAW, on conf_li.h5)
  mpirun -n 2 python -m spia_mpi spectral spectral.toml
  python -m spia_mpi tc --lambda lambda.dat --temperature 290 --mustar 0.1

As root, or with more ranks than cores, Open MPI needs --allow-run-as-root / --oversubscribe:
$(python -m spia_mpi.parallel.mpi --mpirun-prefix) -n 2 gives the launcher this machine needs.
"""

LAMBDA_T0_K, LAMBDA0, OMEGA_EV = 290.0, 1.2, 0.08
#: the structure file of gpaw.toml: bcc Li, one atom, a = 3.44 Å
LI_BCC, LI_BCC_A = "li-bcc.extxyz", 3.44


def add_arguments(p):
    p.add_argument("--out", default="tutorial", help="folder to write into (created; default ./tutorial)")
    p.add_argument("--force", action="store_true", help="replace existing files")


def _ipi_trajectory(prefix: Path) -> list:
    """sim.pos_<b>.xyz: exact harmonic ring polymers of primitive Li₂MgH₁₆ (ħΩ = 0.15 eV, 290 K,
    4 beads, 48 frames), seed 1, written as if 20 fs apart."""
    from spia_mpi.ions import configurations as cf
    from spia_mpi.lattice.structures import load_structure
    atoms = load_structure("li2mgh16-solid")
    pos = cf.sample_einstein_ring_polymers(48, 4, atoms.get_masses(), 0.15, 290.0, atoms.positions,
                                           np.random.default_rng(1))
    conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), 290.0, 20.0, "tutorial")
    return cf.write_ipi_xyz(conf, prefix)


def _li_bcc(path: Path):
    """bcc Li (ASE's one-atom primitive cell, a = :data:`LI_BCC_A` Å) as extended XYZ."""
    from ase.build import bulk
    bulk("Li", "bcc", a=LI_BCC_A).write(path, format="extxyz")


def _lambda_text() -> str:
    from spia_mpi.eliashberg.linearised import einstein_lambda
    lam = einstein_lambda(LAMBDA0, OMEGA_EV, LAMBDA_T0_K, 12)
    head = (f"# λ(m) of an Einstein spectrum, λ(0) = {LAMBDA0}, ħΩ = {OMEGA_EV} eV, at the bosonic Matsubara\n"
            f"# frequencies ν_m = 2πm k_B T0 of T0 = {LAMBDA_T0_K:g} K (m = 0, 1, …; one value per line)\n")
    return head + "".join(f"{x:.10f}\n" for x in lam)


def _inputs(small: bool) -> dict:
    """{file name: text} of the TOML inputs, at test sizes when ``small`` (:data:`SMALL`)."""
    texts = {"input.toml": INPUT, "grid.toml": GRID, "gpaw.toml": GPAW, "spectral.toml": SPECTRAL, "scan.toml": SCAN}
    for name, pairs in (SMALL.items() if small else ()):
        for old, new in pairs:
            if old not in texts[name]:
                raise AssertionError(f"tutorial: '{old}' is not in {name}")
            texts[name] = texts[name].replace(old, new)
    return texts


def run(args, comm):
    out = Path(args.out)
    texts = _inputs(os.environ.get("SPIA_SMALL", "") not in ("", "0"))
    names = [*texts, LI_BCC, "lambda.dat", "README.txt"] + [f"sim.pos_{b}.xyz" for b in range(4)]
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    present = [n for n in names if (out / n).exists()]
    if present and not args.force:
        raise InputError(f"--out {out} already holds {', '.join(present)}: give another folder or --force")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out / name).write_text(text)
    _li_bcc(out / LI_BCC)
    (out / "lambda.dat").write_text(_lambda_text())
    (out / "README.txt").write_text(README)
    _ipi_trajectory(out / "sim")
    print(f"wrote {', '.join(names)} into {out}; the commands that use them are in {out / 'README.txt'}")
    return 0
