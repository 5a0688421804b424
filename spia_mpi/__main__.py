"""``python -m spia_mpi`` entry point.

One BLAS/OpenMP thread per MPI rank unless the user says otherwise (set
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, or SPIA_THREADS): MPI ranks are the
parallelism, and fixed threading makes results reproducible bit for bit across
runs, restarts and rank counts.
"""
import os
import sys

_threads = os.environ.get("SPIA_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads)

from spia_mpi.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
