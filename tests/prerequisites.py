"""Missing prerequisites. i-PI and a local Slurm cluster: a skip on a developer's machine, a
failure with a clear message in CI (environment CI=true), so the suite cannot turn green
there by silently skipping what it was meant to test. GPAW (part of the stack): always a failure."""
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


def require_gpaw():
    """GPAW imported, or the test fails (everywhere, not only in CI: GPAW is part of the
    project's stack, installed by tools/bootstrap.sh)."""
    try:
        import gpaw
    except ImportError as exc:
        pytest.fail(f"GPAW is not installed ({exc}): apt-get install gpaw (tools/bootstrap.sh)")
    return gpaw


# bcc Li as the GPAW tests use it: lattice constant (Å) and cheap LCAO settings
BCC_LI_A = 3.44
BCC_LI_SETTINGS = dict(basis="dzp", xc="PBE", kpts=(2, 1, 1), smearing_ev=0.1, h_ang=0.25,
                       convergence_density=1e-7)
