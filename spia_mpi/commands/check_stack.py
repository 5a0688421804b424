"""``check-stack``: verify the numerical stack and print its versions."""
import json

NAME = "check-stack"
HELP = ("check PETSc/SLEPc (complex), h5py (MPI), mpi4py and print versions (and optional i-PI and GPAW with "
        "its PAW setup folders)")
ORDER = 90


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print versions as JSON")


IPI_MISSING = "missing — needed only for `sample pimd`"


def ipi_status() -> tuple[bool, str]:
    """(usable, i-PI's version or why not): PyPI package ``ipi``, optional (only ``sample pimd``).

    Uses the same check as ``sample pimd`` (``ipi`` and its scripting API importable).
    """
    import importlib.util
    from spia_mpi.errors import StackError
    from spia_mpi.ions.pimd import _require_ipi
    try:
        return True, str(_require_ipi())
    except StackError as exc:
        try:
            absent = importlib.util.find_spec("ipi") is None
        except (ImportError, ValueError):
            absent = True
        return False, (IPI_MISSING if absent
                       else f"unusable ({exc.__cause__ or exc}) — needed only for `sample pimd`")


def run(args, comm):
    from spia_mpi.parallel import stack
    stack.petsc()
    stack.slepc()
    stack.h5py(need_mpi=True)
    info = stack.versions()
    from spia_mpi.models.gpaw import gpaw_status
    gpaw_ok, gpaw_version, setups = gpaw_status()      # on every rank: importing GPAW is collective
    if comm.rank == 0:
        ipi_ok, info["ipi"] = ipi_status()
        info["gpaw"] = gpaw_version
        if gpaw_ok:
            info["gpaw_setups"] = ", ".join(setups) or "none found (apt-get install gpaw-data)"
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            width = max(map(len, info))
            for k, v in info.items():
                print(f"{k:<{width}}  {v}")
            print(f"stack OK: complex PETSc/SLEPc, MPI h5py, {comm.size} rank(s)"
                  + ("" if ipi_ok else "; i-PI (optional) not available")
                  + ("" if gpaw_ok else "; GPAW (optional, model.kind = 'gpaw') not available"))
    return 0
