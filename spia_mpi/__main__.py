"""``python -m spia_mpi`` entry point.

One BLAS/OpenMP thread per MPI rank unless the user says otherwise (set
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, or SPIA_THREADS): MPI ranks are the
parallelism, and fixed threading makes results reproducible bit for bit across
runs, restarts and rank counts.
"""
import sys

from spia_mpi.parallel.threads import default_threads

default_threads()                                  # before numpy loads (spia_mpi.cli imports it)

from spia_mpi.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
