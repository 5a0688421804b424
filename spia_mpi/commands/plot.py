"""``plot``: figures (PNG + PDF) from a spia_mpi results file."""
from pathlib import Path

from spia_mpi.errors import InputError

NAME = "plot"
HELP = ("figures from a results, analysis or spectral file: λ(m) with ω̄₂ inset, λ vs γ, T_c vs μ*, bands, "
        "ρ(k, E), MSD, density")
ORDER = 60
NEEDS_MPI = False


def add_arguments(p):
    p.add_argument("results", help="results HDF5 file written by `spia_mpi run` or `demo`, analysis.h5 of `analyze`, or a "
                                   "`spectral` file")
    p.add_argument("--out", help="output folder (default: RESULTS_plots next to the file)")


def run(args, comm):
    from spia_mpi.io import hdf5
    from spia_mpi.io import plotting
    path = Path(args.results)
    out = Path(args.out) if args.out else path.with_name(path.stem + "_plots")
    if not path.exists():
        raise InputError(f"results file {path} does not exist")
    try:
        f = hdf5.open_h5(path, "r", None)
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc})") from exc
    with f:
        hdf5.require_complete(f, path, None)
        kind = f.attrs["spia_mpi_file"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind not in ("results", "analysis", "spectral"):
            raise InputError(f"{path}: is a spia_mpi '{kind}' file, expected 'results', 'analysis' or 'spectral'")
        written = plotting.plot_results(f, out)
    if not written:
        raise InputError(f"{path}: nothing to plot (no /lambda, /eliashberg, /bands or /analysis groups)")
    for p in written:
        print(p)
    return 0
