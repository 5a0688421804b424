"""``plot``: figures (PNG + PDF) from a spia_mpi results file."""
from pathlib import Path

from spia_mpi.errors import InputError

NAME = "plot"
HELP = ("figures from a results, analysis, spectral or gap file: λ(m) with ω̄₂ inset, λ vs γ, T_c vs μ*, bands, "
        "ρ(k, E), MSD, density; Δ(T), Δ(ω), N_s(ω), gap histograms")
ORDER = 60
NEEDS_MPI = False


def add_arguments(p):
    p.add_argument("results", help="results HDF5 file written by `spia_mpi run` or `demo`, analysis.h5 of `analyze`, a "
                                   "`spectral` file or a `gap` file")
    p.add_argument("--out", help="output folder (default: RESULTS_plots next to the file)")
    p.add_argument("--reference", metavar="FILE",
                   help="overlay a reference λ(m) on lambda_m.png: a text file (one value per line, m = 0, 1, …; "
                        "the same for every γ) or another results file (its λ(m), row by row; e.g. a harmonic "
                        "baseline run)")
    p.add_argument("--reference-label", help="legend label of the reference (default: the file name)")


def load_reference(path: Path, label=None):
    """(label, λ(m) float [n_m] or [n_gamma, n_m]) from a text file or a results file."""
    from spia_mpi.commands.tc import _is_hdf5, read_lambda_text
    if not path.exists():
        raise InputError(f"--reference {path} does not exist")
    if _is_hdf5(path):
        from spia_mpi.io import hdf5
        with hdf5.open_finished(path, "results") as f:
            lam = f["lambda/lambda_m"][...]
    else:
        lam = read_lambda_text(path)
    return label or path.name, lam


def run(args, comm):
    from spia_mpi.io import hdf5
    from spia_mpi.io import plotting
    path = Path(args.results)
    out = Path(args.out) if args.out else path.with_name(path.stem + "_plots")
    with hdf5.open_existing(path, "results") as f:
        hdf5.require_complete(f, path, None)
        kind = f.attrs["spia_mpi_file"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind not in ("results", "analysis", "spectral", "gap"):
            raise InputError(f"{path}: is a spia_mpi '{kind}' file, expected 'results', 'analysis', 'spectral' or 'gap'")
        if kind == "gap":
            from spia_mpi.io import gapplots
            written = gapplots.plot_gap_file(f, out, path.stem)
        else:
            ref = load_reference(Path(args.reference), args.reference_label) if args.reference else None
            written = plotting.plot_results(f, out, reference=ref)
    if not written:
        raise InputError(f"{path}: nothing to plot (no /lambda, /eliashberg, /bands or /analysis groups)")
    for p in written:
        print(p)
    return 0
