"""Exception types shared by every module.

``SpiaError`` and its subclasses are *expected* failures (bad input, a solver
that did not converge): the CLI prints their message once, on rank 0, and
exits with a non-zero status without a traceback. Anything else is a bug and
aborts the MPI job with a traceback from the rank that hit it.
"""


class SpiaError(Exception):
    """Base class of all expected spia_mpi failures."""

    exit_code = 1


class InputError(SpiaError, ValueError):
    """Invalid user input: names the file/key and what was expected."""

    exit_code = 2


class ConvergenceError(SpiaError, RuntimeError):
    """An iterative solver (KSP, EPS, root finder) failed to converge."""

    exit_code = 3


class StackError(SpiaError, ImportError):
    """The software stack is unusable (real-scalar PETSc, serial h5py, …)."""

    exit_code = 4
