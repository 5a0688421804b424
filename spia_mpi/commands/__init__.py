"""Subcommands of ``python -m spia_mpi``; one module per command (see :mod:`spia_mpi.cli`)."""
