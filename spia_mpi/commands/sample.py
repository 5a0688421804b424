"""``sample``: configurations from the exact harmonic ring-polymer sampler, or from PIMD trajectories."""
from __future__ import annotations

import numpy as np

from spia_mpi.errors import InputError

NAME = "sample"
HELP = "make a configurations HDF5: exact harmonic ring-polymer samples or converted PIMD trajectories"
ORDER = 25
NEEDS_MPI = False
DESCRIPTION = """\
harmonic: independent exact draws of the N_b-bead discretised path integral of
  Einstein oscillators (every atom, ħΩ in eV) around a structure or its supercell.
convert:  per-bead PIMD trajectories (i-PI xyz 'PREFIX.pos_*.xyz', VASP XDATCAR,
  or any ASE format) into the configurations HDF5 layout, with equilibration
  skip (fs) and stride.

  python -m spia_mpi sample harmonic --structure li2mgh16-solid --supercell 1 1 1 \\
         --einstein 0.15 --temperature 290 --beads 16 --samples 64 --out conf.h5
  python -m spia_mpi sample convert --format ipi 'sim.pos_*.xyz' --temperature 290 \\
         --time-step 0.5 --skip-fs 500 --stride 40 --out conf.h5
"""


def add_arguments(p):
    sub = p.add_subparsers(dest="how", metavar="KIND", required=True)
    h = sub.add_parser("harmonic", help="exact Einstein ring-polymer samples")
    h.add_argument("--structure", required=True, help="structure file or shipped example name")
    h.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1], metavar=("N1", "N2", "N3"))
    h.add_argument("--einstein", type=float, required=True, metavar="HBAR_OMEGA_EV", help="ħΩ (eV)")
    h.add_argument("--temperature", type=float, required=True, help="K")
    h.add_argument("--beads", type=int, default=16)
    h.add_argument("--samples", type=int, default=64)
    h.add_argument("--seed", type=int, default=1)
    h.add_argument("--out", required=True, help="output HDF5 file")
    c = sub.add_parser("convert", help="per-bead PIMD trajectories → configurations HDF5")
    c.add_argument("files", nargs="+", help="one file per bead, or a quoted glob")
    c.add_argument("--format", default="ipi", help="ipi (default), xdatcar, or an ASE format name")
    c.add_argument("--temperature", type=float, required=True, help="PIMD temperature (K)")
    c.add_argument("--time-step", type=float, required=True, help="time between stored frames (fs)")
    c.add_argument("--skip-fs", type=float, default=0.0, help="equilibration to drop (fs)")
    c.add_argument("--stride", type=int, default=1, help="keep every stride-th frame")
    c.add_argument("--out", required=True, help="output HDF5 file")


def run(args, comm):
    from spia_mpi import configurations as cf
    if args.how == "harmonic":
        from spia_mpi.structures import load_structure
        from spia_mpi.supercells import build_supercell
        for name, v in (("--temperature", args.temperature), ("--einstein", args.einstein)):
            if v <= 0:
                raise InputError(f"{name} {v} must be positive")
        if args.beads < 1 or args.samples < 1:
            raise InputError("--beads and --samples must be ≥ 1")
        prim = load_structure(args.structure)
        atoms, _, _ = build_supercell(prim, np.diag(args.supercell))
        pos = cf.sample_einstein_ring_polymers(args.samples, args.beads, atoms.get_masses(), args.einstein,
                                               args.temperature, atoms.get_positions(),
                                               np.random.default_rng(args.seed))
        conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), args.temperature, 0.0,
                                 f"harmonic sampler ħΩ={args.einstein} eV seed={args.seed}")
    else:
        if args.time_step <= 0:
            raise InputError(f"--time-step {args.time_step} fs must be positive")
        spec = args.files if len(args.files) > 1 else args.files[0]
        conf = cf.read_trajectories(spec, args.temperature, args.time_step, args.format)
        conf = conf.select(int(round(args.skip_fs / args.time_step)), args.stride)
    cf.write_h5(conf, args.out)
    print(f"{args.out}: {conf.n_conf} configurations × {conf.n_beads} beads × {conf.n_atoms} atoms "
          f"at {conf.temperature_k:g} K")
    return 0
