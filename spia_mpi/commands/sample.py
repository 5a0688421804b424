"""``sample``: configurations from the exact harmonic ring-polymer sampler, or from PIMD trajectories."""
from __future__ import annotations

import logging

import numpy as np

from spia_mpi.errors import InputError

logger = logging.getLogger(__name__)

NAME = "sample"
HELP = "make a configurations HDF5: exact harmonic ring-polymer samples or converted PIMD trajectories"
ORDER = 25
DESCRIPTION = """\
harmonic: independent exact draws of the N_b-bead discretised path integral of
  Einstein oscillators (every atom, ħΩ in eV) or of a force-constant matrix
  (--force-constants, eV/Å²) around a structure or its supercell.
convert:  per-bead PIMD trajectories (i-PI xyz 'PREFIX.pos_*.xyz', VASP XDATCAR,
  or any ASE format) into the configurations HDF5 layout, with equilibration
  skip (fs) and stride; --diffusion-path-window FS also writes the diffusion paths
  (Eq. 4 moving average) as a second configurations file for λ_dif(m). Under
  mpirun the bead files are split over the ranks and written collectively (each
  rank holds only its beads; not with --diffusion-path-window, which needs all).
harmonic and pimd run on rank 0 (the other ranks wait).
pimd:     run NVT PIMD in-process with i-PI (PILE-L thermostat, one rank) on a
  model ASE calculator (screened-Coulomb YukawaPair or Einstein springs).

  python -m spia_mpi sample harmonic --structure li2mgh16-solid --supercell 1 1 1 \\
         --einstein 0.15 --temperature 290 --beads 16 --samples 64 --out conf.h5
  python -m spia_mpi sample convert --format ipi 'sim.pos_*.xyz' --temperature 290 \\
         --time-step 0.5 --skip-fs 500 --stride 40 --out conf.h5
  python -m spia_mpi sample pimd --structure hydrogen-sc --supercell 2 2 2 --beads 8 \\
         --temperature 300 --steps 2000 --timestep 0.25 --skip-fs 100 --stride 20 --out conf.h5
"""


def add_arguments(p):
    sub = p.add_subparsers(dest="how", metavar="KIND", required=True)
    h = sub.add_parser("harmonic", help="exact harmonic (Einstein or force-constant) ring-polymer samples")
    h.add_argument("--structure", required=True, help="structure file or shipped example name")
    h.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1], metavar=("N1", "N2", "N3"))
    h.add_argument("--einstein", type=float, metavar="HBAR_OMEGA_EV", help="Einstein springs: ħΩ (eV)")
    h.add_argument("--force-constants", metavar="FILE",
                   help="instead of --einstein: Φ of the (super)cell in eV/Å², .npy [3N,3N] or [N,N,3,3], or "
                        "text [3N,3N]; atoms in supercell order; acoustic zero modes get a fixed centroid")
    h.add_argument("--temperature", type=float, required=True, help="K")
    h.add_argument("--beads", type=int, default=16)
    h.add_argument("--samples", type=int, default=64)
    h.add_argument("--seed", type=int, default=1)
    h.add_argument("--out", required=True, help="output HDF5 file")
    h.add_argument("--force", action="store_true", help="replace an existing --out file")
    c = sub.add_parser("convert", help="per-bead PIMD trajectories → configurations HDF5")
    c.add_argument("files", nargs="+", help="one file per bead, or a quoted glob")
    c.add_argument("--format", default="ipi", help="ipi (default), xdatcar, or an ASE format name")
    c.add_argument("--temperature", type=float, required=True, help="PIMD temperature (K)")
    c.add_argument("--time-step", type=float, required=True, help="time between stored frames (fs)")
    c.add_argument("--skip-fs", type=float, default=0.0, help="equilibration to drop (fs)")
    c.add_argument("--stride", type=int, default=1, help="keep every stride-th frame")
    c.add_argument("--out", required=True, help="output HDF5 file")
    c.add_argument("--force", action="store_true", help="replace existing --out / --diffusion-out files")
    c.add_argument("--diffusion-path-window", type=float, metavar="FS",
                   help="also write the diffusion paths R_dif (paper Eq. 4): centred moving average over FS fs "
                        "of every unwrapped bead trajectory (before --stride), e.g. 250")
    c.add_argument("--diffusion-out", help="diffusion-path configurations HDF5 (default: OUT_dif.h5)")
    c.add_argument("--diffusion-edges", choices=["trim", "shrink"], default="trim",
                   help="trajectory ends: trim (write only frames with a full window) or shrink the window")
    _add_pimd_arguments(sub)


def _add_pimd_arguments(sub):
    p = sub.add_parser("pimd", help="run PIMD with i-PI (serial) and an ASE model calculator")
    p.add_argument("--structure", required=True, help="structure file or shipped example name")
    p.add_argument("--supercell", type=int, nargs=3, default=[1, 1, 1], metavar=("N1", "N2", "N3"))
    p.add_argument("--beads", type=int, required=True, help="number of beads N_b")
    p.add_argument("--temperature", type=float, required=True, help="K")
    p.add_argument("--steps", type=int, required=True, help="total MD steps (including --skip-fs)")
    p.add_argument("--timestep", "--time-step", dest="timestep", type=float, required=True,
                   help="MD time step (fs)")
    p.add_argument("--thermostat-tau", type=float, default=100.0, help="PILE-L centroid time constant (fs)")
    p.add_argument("--skip-fs", type=float, default=0.0, help="equilibration to drop (fs)")
    p.add_argument("--stride", type=int, default=1, help="store every stride-th MD step")
    p.add_argument("--seed", type=int, default=1, help="i-PI random seed")
    p.add_argument("--calculator", choices=["yukawa", "einstein"], default="yukawa",
                   help="yukawa: screened-Coulomb pairs (spia_mpi.ions.calculators.YukawaPair); einstein: "
                        "every atom tethered to its site (needs --einstein; centre of mass not fixed)")
    p.add_argument("--screening-length", type=float, default=None,
                   help="Yukawa λ_s (Å); default: Thomas–Fermi length of Σ Z electrons in the cell")
    p.add_argument("--cutoff", type=float, default=None, help="Yukawa cutoff (Å); default 8 λ_s")
    p.add_argument("--charge", action="append", default=[], metavar="SYMBOL=Z",
                   help="Yukawa ionic charge of a species (repeatable); default: atomic number")
    p.add_argument("--einstein", type=float, default=None, metavar="HBAR_OMEGA_EV",
                   help="einstein: ħΩ (eV)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def _run_pimd(args):
    """``sample pimd``: validate the options, build the calculator, run i-PI."""
    from spia_mpi.ions import configurations as cf
    from spia_mpi.ions.calculators import EinsteinHarmonic, YukawaPair, thomas_fermi_length
    from spia_mpi.ions.pimd import run_pimd
    from spia_mpi.lattice.structures import load_structure
    from spia_mpi.lattice.supercells import build_supercell
    for name, v in (("--beads", args.beads), ("--steps", args.steps), ("--stride", args.stride)):
        if v < 1:
            raise InputError(f"{name} {v} must be ≥ 1")
    for name, v in (("--temperature", args.temperature), ("--timestep", args.timestep),
                    ("--thermostat-tau", args.thermostat_tau)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} {v} must be positive")
    if not args.skip_fs >= 0:
        raise InputError(f"--skip-fs {args.skip_fs} must be ≥ 0")
    skip = int(round(args.skip_fs / args.timestep))
    if (args.steps - skip) // args.stride < 1:
        raise InputError(f"--steps {args.steps} with --skip-fs {args.skip_fs} ({skip} steps) and "
                         f"--stride {args.stride} leaves no samples")
    if min(args.supercell) < 1:
        raise InputError(f"--supercell {args.supercell} must be ≥ 1")
    prim = load_structure(args.structure)
    atoms, _, _ = build_supercell(prim, np.diag(args.supercell))
    if args.calculator == "einstein":
        if args.einstein is None or not args.einstein > 0:
            raise InputError(f"--calculator einstein needs --einstein ħΩ > 0 (eV), got {args.einstein}")
        if np.ptp(atoms.get_masses()) > 0:
            raise InputError("--calculator einstein: one spring κ for all atoms needs equal masses")
        calc = EinsteinHarmonic(float(cf.einstein_spring(atoms.get_masses()[0], args.einstein)),
                                atoms.positions)
        what = f"Einstein ħΩ={args.einstein} eV"
    else:
        charges = {}
        for item in args.charge:
            sym, _, z = item.partition("=")
            try:
                charges[sym.strip()] = float(z)
            except ValueError:
                raise InputError(f"--charge {item!r}: expected SYMBOL=Z, e.g. H=1") from None
        if charges:
            missing = sorted(set(atoms.get_chemical_symbols()) - set(charges))
            if missing:
                raise InputError(f"--charge: no charge for {', '.join(missing)}")
        z = np.array([charges.get(s, n) for s, n in zip(atoms.get_chemical_symbols(), atoms.numbers)], float)
        if args.screening_length is None:
            lam = thomas_fermi_length(z.sum() / atoms.get_volume())
            logger.info("Yukawa screening length: Thomas–Fermi %.4f Å (%g electrons in %.3f Å³)",
                        lam, z.sum(), atoms.get_volume())
        elif not args.screening_length > 0:
            raise InputError(f"--screening-length {args.screening_length} Å must be positive")
        else:
            lam = args.screening_length
        if args.cutoff is not None and not args.cutoff > 0:
            raise InputError(f"--cutoff {args.cutoff} Å must be positive")
        calc = YukawaPair(lam, charges or None, args.cutoff)
        what = f"Yukawa λ_s={lam:.4g} Å r_c={calc.cutoff:.4g} Å"
    conf = run_pimd(atoms, calc, n_beads=args.beads, temperature_k=args.temperature,
                    time_step_fs=args.timestep, n_steps=args.steps, thermostat_tau_fs=args.thermostat_tau,
                    skip_steps=skip, stride=args.stride, seed=args.seed,
                    fix_com=args.calculator != "einstein",
                    source=f"i-PI PIMD {args.structure} {what} seed={args.seed}")
    return conf


def run(args, comm):
    from spia_mpi.io.outputs import refuse_overwrite
    from spia_mpi.parallel.mpi import on_root
    refuse_overwrite(args.out, args.force)              # before any work (every rank sees the same files)
    if args.how == "convert":
        return _convert(args, comm)
    return on_root(comm, _make_on_one_rank, args)


def _convert(args, comm):
    """``sample convert``: each rank reads its beads' trajectories and writes them collectively."""
    from spia_mpi.ions import configurations as cf
    if args.time_step <= 0:
        raise InputError(f"--time-step {args.time_step} fs must be positive")
    if args.stride < 1:
        raise InputError(f"--stride {args.stride} must be ≥ 1")
    if args.diffusion_path_window is not None:          # fail before reading big files
        if comm.size > 1:
            raise InputError("--diffusion-path-window needs every bead of an atom on one rank: run "
                             "`sample convert` with it on one rank")
        from spia_mpi.ions.analysis import moving_average_window
        moving_average_window(args.time_step, args.diffusion_path_window, None, args.diffusion_edges)
    spec = args.files if len(args.files) > 1 else args.files[0]
    conf = cf.read_trajectories(spec, args.temperature, args.time_step, args.format, comm)
    conf = conf.select(int(round(args.skip_fs / args.time_step)), 1)
    if args.diffusion_path_window is not None:
        from pathlib import Path

        from spia_mpi.ions.analysis import diffusion_path_configurations
        from spia_mpi.io.outputs import refuse_overwrite
        dif = diffusion_path_configurations(conf, args.diffusion_path_window, args.diffusion_edges)
        dif = dif.select(0, args.stride)
        out = Path(args.out)
        dif_path = args.diffusion_out or str(out.with_name(out.stem + "_dif" + (out.suffix or ".h5")))
        refuse_overwrite(dif_path, args.force, "--diffusion-out")
        cf.write_h5(dif, dif_path)
        print(f"{dif_path}: diffusion paths, {dif.n_conf} configurations, moving average over "
              f"{dif.extra['split_window_frames']} frames = {dif.extra['split_window_fs']:g} fs")
    conf = conf.select(0, args.stride)
    cf.write_h5(conf, args.out, comm, axis=1)
    n_beads = comm.allreduce(conf.n_beads) if comm.size > 1 else conf.n_beads
    if comm.rank == 0:
        print(f"{args.out}: {conf.n_conf} configurations × {n_beads} beads × {conf.n_atoms} atoms "
              f"at {conf.temperature_k:g} K" + (f" (written by {comm.size} ranks)" if comm.size > 1 else ""))
    return 0


def _make_on_one_rank(args):
    """``sample harmonic`` / ``sample pimd`` (one rank): draw or simulate, write the file."""
    from spia_mpi.ions import configurations as cf
    if args.how == "pimd":
        conf = _run_pimd(args)
    elif args.how == "harmonic":
        from spia_mpi.lattice.structures import load_structure
        from spia_mpi.lattice.supercells import build_supercell
        if (args.einstein is None) == (args.force_constants is None):
            raise InputError("sample harmonic: give exactly one of --einstein HBAR_OMEGA_EV and --force-constants FILE")
        for name, v in (("--temperature", args.temperature),
                        ("--einstein", 1.0 if args.einstein is None else args.einstein)):
            if v <= 0:
                raise InputError(f"{name} {v} must be positive")
        if args.beads < 1 or args.samples < 1:
            raise InputError("--beads and --samples must be ≥ 1")
        prim = load_structure(args.structure)
        atoms, _, _ = build_supercell(prim, np.diag(args.supercell))
        rng = np.random.default_rng(args.seed)
        if args.force_constants is None:
            pos = cf.sample_einstein_ring_polymers(args.samples, args.beads, atoms.get_masses(), args.einstein,
                                                   args.temperature, atoms.get_positions(), rng)
            what = f"ħΩ={args.einstein} eV"
        else:
            phi = cf.load_force_constants(args.force_constants, atoms.get_masses())
            pos = cf.sample_harmonic_ring_polymers(args.samples, args.beads, atoms.get_masses(), phi,
                                                   args.temperature, atoms.get_positions(), rng)
            what = f"force constants {args.force_constants}"
        conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), args.temperature, 0.0,
                                 f"harmonic sampler {what} seed={args.seed}")
    cf.write_h5(conf, args.out)
    print(f"{args.out}: {conf.n_conf} configurations × {conf.n_beads} beads × {conf.n_atoms} atoms "
          f"at {conf.temperature_k:g} K")
    return 0
