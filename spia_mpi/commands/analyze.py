"""``analyze``: MSD and diffusion per species, ion density and its peaks, from a configurations file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "analyze"
HELP = "centroid MSD and diffusion coefficients per species, density slices, density peaks"
ORDER = 50
NEEDS_MPI = False


def add_arguments(p):
    p.add_argument("configurations", help="configurations HDF5 (from `spia_mpi sample`)")
    p.add_argument("--species", help="species for the density analysis (default: lightest)")
    p.add_argument("--fit-window", type=float, nargs=2, metavar=("T0", "T1"),
                   help="time window (fs) of the linear MSD fit (default: middle half)")
    p.add_argument("--bins", type=int, default=40, help="density grid points per direction")
    p.add_argument("--out", help="folder for figures (default: CONF_analysis)")


def run(args, comm):
    from ase.data import atomic_numbers, chemical_symbols

    from spia_mpi import analysis, configurations
    conf = configurations.read_h5(args.configurations)
    out = Path(args.out) if args.out else Path(args.configurations).with_suffix("").with_name(
        Path(args.configurations).stem + "_analysis")
    out.mkdir(parents=True, exist_ok=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if conf.time_step_fs > 0 and conf.n_conf >= 8:
        curves = analysis.species_msd(conf)
        fig, ax = plt.subplots(figsize=(5.5, 4))
        print(f"{'species':>8} {'D (Å²/fs)':>12} {'± ':>10} {'D (cm²/s)':>12}")
        for s, (t, m) in curves.items():
            ax.plot(t, m, label=s)
            d = analysis.diffusion_coefficient(t, m, args.fit_window, s)
            print(f"{s:>8} {d.d_a2_per_fs:>12.4e} {d.error_a2_per_fs:>10.2e} {d.d_cm2_per_s:>12.4e}")
        ax.set_xlabel("t (fs)")
        ax.set_ylabel("centroid MSD (Å²)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "msd.png", dpi=110)
        plt.close(fig)
    else:
        print("no time information (independent samples): MSD skipped")
    if args.species:
        if args.species not in atomic_numbers:
            raise InputError(f"--species {args.species}: unknown element")
        z = atomic_numbers[args.species]
    else:
        z = int(conf.numbers[np.argmin(conf.masses)])
    mask = conf.numbers == z
    if not mask.any():
        raise InputError(f"{args.configurations}: no {chemical_symbols[z]} atoms")
    hist = analysis.density_histogram(conf, mask, (args.bins,) * 3)
    centres, widths, weights = analysis.density_peaks(hist)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(hist.sum(axis=0).T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    ax.set_xlabel("fractional y")
    ax.set_ylabel("fractional z")
    ax.set_title(f"{chemical_symbols[z]} density (projected along a)")
    fig.tight_layout()
    fig.savefig(out / "density.png", dpi=110)
    plt.close(fig)
    print(f"{chemical_symbols[z]} density peaks: {len(centres)} (sum of weights {weights.sum():.2f} atoms; "
          f"{mask.sum()} atoms)")
    np.savetxt(out / "density_peaks.txt", np.column_stack([centres, widths, weights]),
               header="frac_x frac_y frac_z width_bins weight_atoms")
    print(f"figures and peaks in {out}")
    return 0
