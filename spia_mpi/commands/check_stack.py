"""``check-stack``: verify the numerical stack and print its versions."""
import json

NAME = "check-stack"
HELP = "check PETSc/SLEPc (complex), h5py (MPI), mpi4py and print versions"
ORDER = 90


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print versions as JSON")


def run(args, comm):
    from spia_mpi import backend
    backend.petsc()
    backend.slepc()
    backend.h5py(need_mpi=True)
    info = backend.versions()
    if comm.rank == 0:
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            width = max(map(len, info))
            for k, v in info.items():
                print(f"{k:<{width}}  {v}")
            print(f"stack OK: complex PETSc/SLEPc, MPI h5py, {comm.size} rank(s)")
    return 0
