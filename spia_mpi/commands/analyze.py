"""``analyze``: MSD and diffusion per species, ion density, Gaussian density peaks, the effective
crystal structure and (optionally) the diffusion paths of a configurations file; results in HDF5."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "analyze"
HELP = "centroid MSD and D per species, density and its Gaussian peaks, effective structure → HDF5 + figures"
ORDER = 50
NEEDS_MPI = False


def add_arguments(p):
    p.add_argument("configurations", help="configurations HDF5 (from `spia_mpi sample`)")
    p.add_argument("--fit-window", type=float, nargs=2, metavar=("T0", "T1"),
                   help="time window (fs) of the linear MSD fit (default: middle half of the lags)")
    p.add_argument("--bins", type=int, default=40,
                   help="density grid points per lattice vector (the stored density and, for species whose atoms "
                        "hop between sites, the search for its maxima; peaks are fitted from the positions)")
    p.add_argument("--threshold", type=float, default=0.1,
                   help="density maxima: smoothed density above this fraction of its maximum (per species)")
    p.add_argument("--min-weight", type=float, default=0.05, help="peaks: smallest occupancy kept (atoms)")
    p.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance (Å) of the effective structure")
    p.add_argument("--split-window", type=float, metavar="FS",
                   help="also write the diffusion paths (Eq. 4 moving average over FS fs) to --out-diffusion")
    p.add_argument("--out-diffusion", help="configurations HDF5 of the diffusion paths (default: CONF_dif.h5)")
    p.add_argument("--edges", choices=["trim", "shrink"], default="trim",
                   help="moving average at the trajectory ends: trim (full windows only) or shrink")
    p.add_argument("--out", help="folder for figures and analysis.h5 (default: CONF_analysis)")
    p.add_argument("--results", help="analysis HDF5 file (default: OUT/analysis.h5)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing analysis file or diffusion-path file (default: refuse)")


def _check(args):
    if args.bins < 5:
        raise InputError(f"--bins {args.bins} must be ≥ 5 (the density-maximum window is 5 bins wide)")
    for name, v in (("--threshold", args.threshold), ("--symprec", args.symprec)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} {v} must be positive")
    if args.fit_window is not None and not args.fit_window[1] > args.fit_window[0] >= 0:
        raise InputError(f"--fit-window {args.fit_window[0]:g} {args.fit_window[1]:g}: need 0 ≤ T0 < T1 (fs)")


def write_analysis(path, conf, msd=None, diffusion=None, fit_window=None, hists=None, peaks=None,
                   effective=None, provenance=None, resolved_input=None):
    """Write the ``/analysis`` group (kind 'analysis') — layout in docs/configurations.md."""
    from ase.data import chemical_symbols

    from spia_mpi.io import hdf5
    with hdf5.atomic_h5(path, None, kind="analysis") as f:
        if provenance is not None:
            hdf5.write_provenance(f, provenance, resolved_input)
        g = f.create_group("analysis")
        g.attrs.update({"configurations": str(conf.source), "temperature_K": conf.temperature_k,
                        "time_step_fs": conf.time_step_fs, "n_conf": conf.n_conf, "n_beads": conf.n_beads})
        hdf5.write_dataset(g, "cell", conf.cell, "Å", "lattice vectors as rows")
        if msd:
            species = list(msd)
            hdf5.write_dataset(g, "species", np.array(species, dtype="S"), "1", "rows of msd_A2 and diffusion_*")
            hdf5.write_dataset(g, "time_fs", next(iter(msd.values()))[0], "fs", "lag time")
            hdf5.write_dataset(g, "msd_A2", np.array([msd[s][1] for s in species]), "Å²",
                             "centroid mean squared displacement [species, lag], over atoms and time origins")
            for key, attr, unit in (("diffusion_A2_per_fs", "d_a2_per_fs", "Å²/fs"),
                                    ("diffusion_A2_per_fs_error", "error_a2_per_fs", "Å²/fs"),
                                    ("diffusion_cm2_per_s", "d_cm2_per_s", "cm²/s"),
                                    ("diffusion_cm2_per_s_error", "error_cm2_per_s", "cm²/s")):
                hdf5.write_dataset(g, key, [getattr(diffusion[s], attr) for s in species], unit,
                                 "D = slope/6 of a line fitted to MSD(t) in fit_window_fs [species]")
            hdf5.write_dataset(g, "fit_window_fs", fit_window, "fs", "MSD fit window [t0, t1]")
        if hists:
            d = g.create_group("density")
            d.attrs["description"] = ("histogram of all bead positions per species in fractional coordinates; "
                                      "bin i of n covers [i, i+1)/n")
            for z, h in hists.items():
                hdf5.write_dataset(d, chemical_symbols[z], h, "atoms per bin per configuration",
                                 compression="gzip")
        if peaks is not None:
            p = g.create_group("peaks")
            p.attrs["description"] = ("Gaussian density peaks (moments of the positions clustered around each "
                                      "site), all species; attrs liquid_like: species without peaks (diffusing)")
            hdf5.write_dataset(p, "species", np.array([chemical_symbols[z] for z in peaks.numbers], dtype="S"), "1")
            hdf5.write_dataset(p, "numbers", peaks.numbers.astype(np.int32), "1", "atomic numbers")
            hdf5.write_dataset(p, "centres_frac", peaks.centres_frac, "1", "fractional coordinates [peak, 3]")
            hdf5.write_dataset(p, "centres_A", peaks.centres_cart(conf.cell), "Å", "Cartesian [peak, 3]")
            hdf5.write_dataset(p, "covariance_A2", peaks.covariances_a2, "Å²", "Gaussian covariance [peak, 3, 3]")
            hdf5.write_dataset(p, "weight", peaks.weights, "atoms", "occupancy: mean number of atoms in the peak")
            p.attrs["liquid_like"] = json.dumps([chemical_symbols[z] for z in peaks.liquid_like])
        if effective is not None:
            e = g.create_group("effective_structure")
            a = effective.atoms
            e.attrs.update({"spacegroup": effective.international, "spacegroup_number": effective.number,
                            "symprec_A": a.info["symprec_A"]})
            hdf5.write_dataset(e, "cell", a.cell[:], "Å", "spglib standardised conventional cell, rows")
            hdf5.write_dataset(e, "numbers", a.numbers.astype(np.int32), "1")
            hdf5.write_dataset(e, "scaled_positions", a.get_scaled_positions(), "1", "symmetrised sites")
            hdf5.write_dataset(e, "occupancy", a.arrays["occupancy"], "atoms", "orbit-averaged peak weight")
            hdf5.write_dataset(e, "wyckoffs", np.array(effective.wyckoffs, dtype="S"), "1", "Wyckoff letters")


def run(args, comm):
    from spia_mpi.ions import analysis
    from spia_mpi.ions import configurations
    from spia_mpi.io import hdf5
    from spia_mpi.io import plotting
    _check(args)
    conf = configurations.read_h5(args.configurations)
    src = Path(args.configurations)
    out = Path(args.out) if args.out else src.with_name(src.stem + "_analysis")
    res_path = Path(args.results) if args.results else out / "analysis.h5"
    dif_path = Path(args.out_diffusion) if args.out_diffusion else src.with_name(src.stem + "_dif.h5")
    from spia_mpi.io.outputs import refuse_overwrite
    refuse_overwrite(res_path, args.force, "--results" if args.results else "analysis file")
    if args.split_window is not None:
        refuse_overwrite(dif_path, args.force, "--out-diffusion")
    out.mkdir(parents=True, exist_ok=True)
    msd, diffusion, window = None, None, None
    if conf.time_step_fs > 0 and conf.n_conf >= 8:
        msd = analysis.species_msd(conf)
        diffusion = {}
        print(f"{'species':>8} {'D (Å²/fs)':>12} {'± ':>10} {'D (cm²/s)':>12} {'± ':>10}")
        for s, (t, m) in msd.items():
            d = diffusion[s] = analysis.diffusion_coefficient(t, m, args.fit_window, s)
            window = (d.t_start_fs, d.t_end_fs)
            print(f"{s:>8} {d.d_a2_per_fs:>12.4e} {d.error_a2_per_fs:>10.2e} {d.d_cm2_per_s:>12.4e} "
                  f"{d.error_cm2_per_s:>10.2e}")
        print(f"(fit window {window[0]:g}–{window[1]:g} fs)")
    else:
        print("no time information (independent samples, or fewer than 8 frames): MSD skipped")
    hists, peaks = analysis.fit_species_peaks(conf, (args.bins,) * 3, threshold=args.threshold,
                                              min_weight=args.min_weight)
    from ase.data import chemical_symbols
    for z in hists:
        sel = peaks.numbers == z
        if z in peaks.liquid_like:
            print(f"{chemical_symbols[z]:>3}: liquid-like (diffusing) — no density peaks ({(conf.numbers == z).sum()} "
                  "atoms)")
            continue
        print(f"{chemical_symbols[z]:>3} density peaks: {sel.sum()} (occupancy sum {peaks.weights[sel].sum():.2f}; "
              f"{(conf.numbers == z).sum()} atoms; RMS width "
              f"{np.sqrt(np.trace(peaks.covariances_a2[sel], axis1=1, axis2=2) / 3).mean():.3f} Å)")
    effective = None
    if len(peaks):
        effective = analysis.effective_structure(conf.cell, peaks, args.symprec)
        crystal = [chemical_symbols[z] for z in hists if z not in peaks.liquid_like]
        print(f"effective structure of {', '.join(crystal)}: {effective.international} (No. {effective.number}), "
              f"{len(effective.atoms)} sites in the standardised cell, symprec {args.symprec:g} Å")
        for sym, wy, pos, occ in effective.sites:
            print(f"  {sym:>3}({wy:>4})  {pos[0]:.5f} {pos[1]:.5f} {pos[2]:.5f}  occupancy {occ:.3f}")
    else:
        print("no density peaks at all (every sublattice liquid-like): no effective structure")
    resolved = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in vars(args).items()
                if isinstance(v, (int, float, str, list, tuple, type(None))) and k != "func"}
    write_analysis(res_path, conf, msd, diffusion, window, hists, peaks, effective,
                   hdf5.provenance(None, "analyze"), resolved)
    with hdf5.open_finished(res_path, "analysis") as f:
        written = plotting.plot_msd(f, out) + plotting.plot_density(f, out)
    if args.split_window is not None:
        dif = analysis.diffusion_path_configurations(conf, args.split_window, args.edges)
        configurations.write_h5(dif, dif_path)
        print(f"{dif_path}: diffusion paths, {dif.n_conf} configurations, moving average over "
              f"{dif.extra['split_window_frames']} frames = {dif.extra['split_window_fs']:g} fs")
    print(f"results in {res_path}; figures: {', '.join(p.name for p in written)} in {out}")
    return 0
