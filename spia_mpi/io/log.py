"""Logging: rank 0 talks, the other ranks stay quiet unless something is wrong.

Use ``logger = logging.getLogger(__name__)`` in every module and
:func:`setup_logging` once in the driver/CLI. :class:`Stage` times a pipeline
stage and reports it; :func:`progress` reports a long loop on rank 0.
"""
from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

LOGGER_NAME = "spia_mpi"


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, size: int):
        super().__init__()
        self.rank, self.size = rank, size

    def filter(self, record):
        record.rank = self.rank
        record.size = self.size
        return True


def setup_logging(comm=None, level: int | str = "INFO", debug_file: str | None = None):
    """Configure the ``spia_mpi`` logger for this rank.

    Rank 0 logs at ``level`` to stderr; ranks > 0 only log errors. With
    ``debug_file`` (may contain ``{rank}``) every rank also writes DEBUG to its
    own file.
    """
    rank = comm.rank if comm is not None else 0
    size = comm.size if comm is not None else 1
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    fmt = logging.Formatter("[spia %(rank)d/%(size)d %(asctime)s] %(message)s", "%H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    console.setLevel(level if rank == 0 else logging.ERROR)
    console.addFilter(_RankFilter(rank, size))
    logger.addHandler(console)
    if debug_file:
        fh = logging.FileHandler(debug_file.format(rank=rank))
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(
            "%(asctime)s rank %(rank)d %(name)s %(levelname)s: %(message)s"))
        fh.addFilter(_RankFilter(rank, size))
        logger.addHandler(fh)
    return logger


class Stage:
    """Context manager timing one pipeline stage (wall seconds in ``.seconds``)."""

    def __init__(self, name: str, logger: logging.Logger | None = None, timings: dict | None = None):
        self.name = name
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.timings = timings
        self.seconds = 0.0

    def __enter__(self):
        self.logger.info("%s ...", self.name)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.seconds = time.perf_counter() - self._t0
        if self.timings is not None:
            self.timings[self.name] = self.timings.get(self.name, 0.0) + self.seconds
        if exc_type is None:
            self.logger.info("%s done in %.2f s", self.name, self.seconds)
        return False


def progress(iterable, total: int | None = None, label: str = "",
             logger: logging.Logger | None = None, every_seconds: float = 5.0):
    """Yield from ``iterable``, logging ``label i/total`` at most every few seconds."""
    logger = logger or logging.getLogger(LOGGER_NAME)
    if total is None:
        try:
            total = len(iterable)
        except TypeError:
            total = None
    t0 = last = time.perf_counter()
    i = 0
    for i, item in enumerate(iterable, 1):
        yield item
        now = time.perf_counter()
        if now - last >= every_seconds or (total is not None and i == total):
            rate = i / max(now - t0, 1e-12)
            tot = f"/{total}" if total is not None else ""
            logger.info("%s %d%s (%.3g per s)", label, i, tot, rate)
            last = now


@contextmanager
def quiet(logger_name: str = LOGGER_NAME):
    """Temporarily silence the spia_mpi logger (used in scans and tests)."""
    logger = logging.getLogger(logger_name)
    old = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = old
