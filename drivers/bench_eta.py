#!/usr/bin/env python
"""Benchmark: GMRES iterations of the grid resolvent versus η = (2J+1)πk_BT.

The 16³ dense-hydrogen grid of ``bench_gridresolvent.py`` (2×2×2 supercell, h = 0.2 Å,
ions displaced by σ = 0.1 Å), z = 10 eV + iη at 300 K for J = 0 … 32, 8 plane-wave
right-hand sides, one rank: the kinetic-energy FFT preconditioner (the grid model's
default) against Jacobi. Writes docs/benchmarks/eta.md.
"""
import argparse
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "drivers"))

from bench_gridresolvent import build  # noqa: E402

from spia_mpi.errors import ConvergenceError  # noqa: E402
from spia_mpi.parallel.mpi import self_comm  # noqa: E402
from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta  # noqa: E402


def iterations(model, pos, p, eta, options):
    h = model.hamiltonian_petsc(pos, [0.0, 0.0, 0.0], self_comm())
    try:
        _, info = ResolventSolver(self_comm(), options).solve(h, 10.0 + 1j * eta, p,
                                                               model.resolvent_preconditioner([0, 0, 0]))
        return f"{info['iterations_mean']:.0f}"
    except ConvergenceError:
        return f"> {options.get('ksp_max_it', 2000)} (no convergence)"
    finally:
        h.destroy()


def main():
    model, pos, p = build(2)
    p = p[:, :8]
    lines = ["## Grid resolvent: iterations versus η (`drivers/bench_eta.py`)\n",
             "16³ dense-hydrogen grid (h = 0.2 Å, displaced ions), z = 10 eV + iη at 300 K, 8 plane-wave "
             "right-hand sides, GMRES(100), relative tolerance 1e-11, at most 2000 iterations.\n",
             "| J | η (eV) | kinetic FFT (default) | Jacobi |", "|---|---|---|---|"]
    for J in (0, 2, 8, 16, 32):
        eta = matsubara_eta(J, 300.0)
        lines.append(f"| {J} | {eta:.3f} | {iterations(model, pos, p, eta, {})} | "
                     f"{iterations(model, pos, p, eta, {'pc_type': 'jacobi'})} |")
        print(lines[-1], flush=True)
    lines.append("\nOn this grid the counts hardly depend on η (J = 0 … 32): what sets them is the spread of "
                 "the spectrum the preconditioner leaves — the kinetic one (≈ 4000 eV at h = 0.2 Å) for Jacobi, only "
                 "the potential's for the kinetic preconditioner — not the distance of z from the real axis. The "
                 "paper's J = 16 needs ≈ 10 preconditioned iterations, and so does the lowest Matsubara frequency. "
                 "(Holstein tight binding, whose spectrum is narrow, behaves differently: see the resolvent section below.)")
    (ROOT / "docs" / "benchmarks" / "eta.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
