#!/usr/bin/env python
"""The GPAW reduction test of docs/harmonic.md: SPIA (Born and BSE) on exact harmonic ring-polymer
samples vs the discrete-bead λ_harm(m) of the same Φ, for bcc Li (PAW LCAO, frozen density) in a
diagonal and a non-diagonal 2-cell supercell. Φ from GPAW's SCF forces (acoustic sum rule),
ions made heavier (--mass-scale) so that the linear-coupling limit holds. Prints the markdown
table of docs/harmonic.md.

    PYTHONPATH=. python drivers/harmonic_reduction_gpaw.py [--samples 128] [--workdir DIR]

The same set-up as tests/test_harmonic_gpaw.py::test_reduction_gpaw (which uses fewer samples).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SUPERCELLS = {"diagonal 2×1×1": (np.diag([2, 1, 1]), (2, 2, 2)),
              "non-diagonal [[1,1,0],[0,1,0],[0,0,2]]": (np.array([[1, 1, 0], [0, 1, 0], [0, 0, 2]]), (2, 2, 2))}
KPOINTS = [[0.0, 0.0, 0.0]]        # the supercell's Γ: both primitive k it folds (q = 0 and the zone boundary)
SETTINGS = dict(basis="dzp", xc="PBE", smearing_ev=0.1, h_ang=0.25, convergence_density=1e-7, density="frozen")
NB, GAMMAS, N_PER_K = 4, (0.3, 0.6), 2


def reduction(matrix, kpts, workdir, samples, seed, mass_scale, blocks, T, log=print):
    """(harmonic result, {mode: SPIA result}, modes) of one supercell."""
    from ase.build import bulk
    from spia_mpi.engine.harmonic import compute_harmonic
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.ions.configurations import harmonic_modes, sample_harmonic_ring_polymers
    from spia_mpi.ions.forceconstants import enforce_acoustic_sum_rule, finite_displacement_force_constants
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    from spia_mpi.io.checkpoint import TaskStore
    model = GpawModel(bulk("Li", "bcc", a=3.44), matrix, GpawSettings(kpts=kpts, **SETTINGS), KPOINTS)
    model.prepare(None, 1, workdir)
    t0 = time.perf_counter()
    phi = enforce_acoustic_sum_rule(finite_displacement_force_constants(model.reference_positions, model.forces, 0.01))
    model.atoms.set_masses(mass_scale * model.atoms.get_masses())
    modes = harmonic_modes(phi, model.atoms.get_masses())
    ef = model.fermi_level_ev
    t1 = time.perf_counter()
    harm = compute_harmonic(model, phi, model.kpoints, T, NB, n_per_k=N_PER_K, gammas=GAMMAS, fermi_level_ev=ef,
                            centre_ev=ef)
    t2 = time.perf_counter()
    pos = sample_harmonic_ring_polymers(samples, NB, model.atoms.get_masses(), phi, T, model.reference_positions,
                                        np.random.default_rng(seed))
    out = {}
    store = TaskStore.open(Path(workdir) / "resolvents", len(KPOINTS) * samples, f"reduction {samples} {seed}")
    for mode in ("born", "bse"):                      # the second mode reuses the stored resolvents
        out[mode] = compute_lambda(model, pos, model.kpoints, T, n_per_k=N_PER_K, gammas=GAMMAS, mode=mode,
                                   n_blocks=blocks, fermi_level_ev=ef, store=store)
    log(f"<!-- Φ {t1 - t0:.0f} s, harmonic {t2 - t1:.0f} s, SPIA {time.perf_counter() - t2:.0f} s; ħω = "
        f"{modes.hbar_omega[~modes.zero].min():.4f}–{modes.hbar_omega.max():.4f} eV; rms u "
        f"{np.sqrt(((pos - model.reference_positions) ** 2).mean()):.4f} Å -->")
    return harm, out, modes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--mass-scale", type=float, default=30.0, help="factor on the Li mass")
    ap.add_argument("--temperature", type=float, default=5.0, help="K")
    ap.add_argument("--supercell", type=int, choices=range(len(SUPERCELLS)), default=None,
                    help="only this supercell (0 diagonal, 1 non-diagonal; default both)")
    ap.add_argument("--blocks", type=int, default=16)
    ap.add_argument("--workdir", default=None, help="folder for GPAW files (default: a temporary one)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="harmonic_gpaw_"))
    print("| supercell | mode | γ (eV) | m | λ_SPIA ± σ | λ_harm (beads) | Δ/σ | Δ/λ_harm | within 3σ + 3 % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for j, (name, (matrix, kpts)) in enumerate(SUPERCELLS.items()):
        if args.supercell is not None and j != args.supercell:
            continue
        harm, res, _ = reduction(matrix, kpts, work / f"sc{j}", args.samples, args.seed, args.mass_scale,
                                 args.blocks, args.temperature, log=lambda s: print(s, file=sys.stderr))
        for mode, r in res.items():
            for ig, g in enumerate(GAMMAS):
                for m in range(r.raw.value.shape[1]):
                    lam, err, ref = r.raw.value[ig, m], r.raw.error[ig, m], harm.lambda_bead[ig, m]
                    ok = abs(lam - ref) <= 3 * err + 0.03 * ref
                    print(f"| {name} | {mode} | {g:g} | {m} | {lam:.5f} ± {err:.5f} | {ref:.5f} | "
                          f"{(lam - ref) / err:+.2f} | {100 * (lam / ref - 1):+.1f} % | {'yes' if ok else 'NO'} |",
                          flush=True)


if __name__ == "__main__":
    main()
