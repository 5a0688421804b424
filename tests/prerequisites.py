"""Missing prerequisites (i-PI, a local Slurm cluster): a skip on a developer's machine, a
failure with a clear message in CI (environment CI=true), so the suite cannot turn green
there by silently skipping what it was meant to test."""
import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str):
    """Skip (or, in CI, fail) the calling test or module: ``what`` is unavailable, ``how`` to fix it."""
    message = f"{what} is not available: {how}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing prerequisite is a failure, not a skip)", pytrace=False)
    pytest.skip(message, allow_module_level=True)
