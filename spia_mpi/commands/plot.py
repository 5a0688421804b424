"""``plot``: figures (PNG + PDF) from a spia_mpi results file."""
from pathlib import Path

from spia_mpi.errors import InputError

NAME = "plot"
HELP = "figures from a results file: λ(m) with ω̄₂ inset, λ vs γ, T_c vs μ*, bands"
ORDER = 60
NEEDS_MPI = False


def add_arguments(p):
    p.add_argument("results", help="results HDF5 file written by `spia_mpi run` or `demo`")
    p.add_argument("--out", help="output folder (default: RESULTS_plots next to the file)")


def run(args, comm):
    from spia_mpi import io, plotting
    path = Path(args.results)
    out = Path(args.out) if args.out else path.with_name(path.stem + "_plots")
    with io.open_finished(path, "results") as f:
        written = plotting.plot_results(f, out)
    if not written:
        raise InputError(f"{path}: nothing to plot (no /lambda, /eliashberg or /bands groups)")
    for p in written:
        print(p)
    return 0
