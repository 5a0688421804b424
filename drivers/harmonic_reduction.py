#!/usr/bin/env python
"""The reduction test of docs/harmonic.md: SPIA (Born and BSE) on exact harmonic ring-polymer
samples vs the discrete-bead λ_harm(m) of the same Φ, on the grid model (dense sc hydrogen,
a diagonal and a non-diagonal 2-cell supercell). Prints the markdown table of docs/harmonic.md.

    PYTHONPATH=. python drivers/harmonic_reduction.py [--samples 512]

The same set-up as tests/test_harmonic.py::test_reduction_grid_model.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spia_mpi import units  # noqa: E402
from spia_mpi.engine.harmonic import compute_harmonic  # noqa: E402
from spia_mpi.engine.workflow import compute_lambda  # noqa: E402
from spia_mpi.ions.configurations import harmonic_modes, sample_harmonic_ring_polymers  # noqa: E402
from spia_mpi.ions.forceconstants import central_spring_force_constants  # noqa: E402
from spia_mpi.lattice.structures import load_structure  # noqa: E402
from spia_mpi.models.grid import GridModel, fermi_level_of_reference  # noqa: E402

SUPERCELLS = {"diagonal 2×1×1": np.diag([2, 1, 1]), "non-diagonal [[1,1,0],[-1,1,0],[0,0,1]]":
              np.array([[1, 1, 0], [-1, 1, 0], [0, 0, 1]])}
T, NB, GAMMAS = 300.0, 8, (0.4, 0.8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--mass", type=float, default=4.0, help="ion mass (amu)")
    ap.add_argument("--hbar-omega", type=float, default=0.1, help="√(k₁/M) of the springs (eV)")
    ap.add_argument("--blocks", type=int, default=16)
    args = ap.parse_args()
    print("| supercell | mode | γ (eV) | m | λ_SPIA ± σ | λ_harm (beads) | Δ/σ | Δ/λ_harm | within 3σ + 3 % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, S in SUPERCELLS.items():
        model = GridModel(load_structure("hydrogen-sc"), S, (4, 4, 4), 4, "lindhard")
        model.atoms.set_masses(np.full(len(model.atoms), args.mass))
        k1 = args.mass * args.hbar_omega ** 2 / units.HBAR2_OVER_AMU_A2_EV
        phi = central_spring_force_constants(model.atoms, lambda r: k1 if r < 1.1 * 1.6 else 0.5 * k1, 1.5 * 1.6, k1)
        modes = harmonic_modes(phi, model.atoms.get_masses())
        kp = [[0, 0, 0]]
        ef = fermi_level_of_reference(model, kp, T)
        harm = compute_harmonic(model, phi, kp, T, NB, n_per_k=4, gammas=GAMMAS, fermi_level_ev=ef)
        pos = sample_harmonic_ring_polymers(args.samples, NB, model.atoms.get_masses(), phi, T,
                                            model.reference_positions, np.random.default_rng(args.seed))
        for mode in ("born", "bse"):
            t0 = time.perf_counter()
            res = compute_lambda(model, pos, kp, T, n_per_k=4, gammas=GAMMAS, mode=mode, n_blocks=args.blocks,
                                 fermi_level_ev=ef)
            for ig, g in enumerate(GAMMAS):
                for m in range(res.raw.value.shape[1]):
                    lam, err, ref = res.raw.value[ig, m], res.raw.error[ig, m], harm.lambda_bead[ig, m]
                    ok = abs(lam - ref) <= 3 * err + 0.03 * ref
                    print(f"| {name} | {mode} | {g:g} | {m} | {lam:.5f} ± {err:.5f} | {ref:.5f} | "
                          f"{(lam - ref) / err:+.2f} | {100 * (lam / ref - 1):+.1f} % | {'yes' if ok else 'NO'} |")
            print(f"<!-- {name} {mode}: {time.perf_counter() - t0:.1f} s; ħω = {modes.hbar_omega.min():.3f}–"
                  f"{modes.hbar_omega.max():.3f} eV -->", file=sys.stderr)


if __name__ == "__main__":
    main()
