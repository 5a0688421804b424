"""Threads per MPI rank: one BLAS/OpenMP thread unless the user says otherwise.

MPI ranks are the parallelism; a fixed thread count also makes results reproducible bit for
bit across runs, restarts and rank counts. The user's choice wins: an explicit
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS, or SPIA_THREADS for all three.
Imports nothing heavy: it must run before numpy (or anything else that loads a BLAS) is imported.
"""
import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads(environ=os.environ) -> None:
    """Set every variable of :data:`THREAD_VARIABLES` that ``environ`` lacks to $SPIA_THREADS (default 1)."""
    threads = environ.get("SPIA_THREADS", "1")
    for var in THREAD_VARIABLES:
        environ.setdefault(var, threads)
