#!/usr/bin/env python
"""The GPAW reduction test of docs/harmonic.md: SPIA (Born and BSE) on exact harmonic ring-polymer
samples vs the discrete-bead λ_harm(m) of the same Φ, for bcc Li (PAW LCAO, frozen density) in a
diagonal and a non-diagonal 2-cell supercell. Φ from GPAW's SCF forces (acoustic sum rule),
ions made heavier (--mass-scale) so that the linear-coupling limit holds. Prints the markdown
table of docs/harmonic.md.

    PYTHONPATH=. python drivers/harmonic_reduction_gpaw.py [--samples 128] [--workdir DIR] [--zero-modes keep drop]

With --workdir, Φ (force_constants.npy) and the results (reduction_*.pkl) of an earlier run there are reused.

``--zero-modes keep`` (default): the exact sampler's draws (the three rigid translations' bead-internal
motion included; reference λ_harm with them). ``drop``: every bead's centre-of-mass displacement removed
(``translations.remove_rigid_translations``; reference λ_harm without the zero modes' share). The
last column is the Bethe–Salpeter equation applied to the harmonic Born interaction W₀ itself
(``harmonic.born_interaction``): what BSE mode gives if the sampled Γ had no ladder term.

The same set-up as tests/test_harmonic_gpaw.py::test_reduction_gpaw (which uses fewer samples).
"""
import argparse
import pickle
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


def reduction(matrix, kpts, workdir, samples, seed, mass_scale, blocks, T, zero_modes=("keep",), log=print):
    """(harmonic result (couplings kept), {(zero_modes, mode): SPIA result}, modes) of one supercell."""
    from ase.build import bulk
    from spia_mpi.engine.harmonic import compute_harmonic
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.ions.configurations import harmonic_modes, sample_harmonic_ring_polymers
    from spia_mpi.ions.forceconstants import enforce_acoustic_sum_rule, finite_displacement_force_constants
    from spia_mpi.ions.translations import remove_rigid_translations
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    from spia_mpi.io.checkpoint import TaskStore
    model = GpawModel(bulk("Li", "bcc", a=3.44), matrix, GpawSettings(kpts=kpts, **SETTINGS), KPOINTS)
    model.prepare(None, 1, workdir)
    t0 = time.perf_counter()
    saved = Path(workdir) / "force_constants.npy"             # Φ of an earlier run in this folder
    if saved.exists():
        phi = np.load(saved)
    else:
        phi = enforce_acoustic_sum_rule(finite_displacement_force_constants(model.reference_positions, model.forces,
                                                                            0.01))
        np.save(saved, phi)
    model.atoms.set_masses(mass_scale * model.atoms.get_masses())
    modes = harmonic_modes(phi, model.atoms.get_masses())
    ef = model.fermi_level_ev
    t1 = time.perf_counter()
    harm = compute_harmonic(model, phi, model.kpoints, T, NB, n_per_k=N_PER_K, gammas=GAMMAS, fermi_level_ev=ef,
                            centre_ev=ef, keep_couplings=True)
    t2 = time.perf_counter()
    draws = sample_harmonic_ring_polymers(samples, NB, model.atoms.get_masses(), phi, T, model.reference_positions,
                                          np.random.default_rng(seed))
    out = {}
    for zm in zero_modes:
        pos = draws if zm == "keep" else remove_rigid_translations(draws, model.reference_positions,
                                                                   model.atoms.get_masses())
        store = TaskStore.open(Path(workdir) / f"resolvents_{zm}_{samples}_{seed}", len(KPOINTS) * samples,
                               f"reduction {samples} {seed} {zm}")
        for mode in ("born", "bse"):                      # the second mode reuses the stored resolvents
            out[(zm, mode)] = compute_lambda(model, pos, model.kpoints, T, n_per_k=N_PER_K, gammas=GAMMAS,
                                             mode=mode, n_blocks=blocks, fermi_level_ev=ef, store=store)
    log(f"<!-- Φ {t1 - t0:.0f} s, harmonic {t2 - t1:.0f} s, SPIA {time.perf_counter() - t2:.0f} s; ħω = "
        f"{modes.hbar_omega[~modes.zero].min():.4f}–{modes.hbar_omega.max():.4f} eV; rms u "
        f"{np.sqrt(((draws - model.reference_positions) ** 2).mean()):.4f} Å -->")
    return harm, out, modes


def reference_lambda(harm, zero_modes):
    """The discrete-bead λ_harm(m) [n_gamma, n_m] the samples must reproduce."""
    return harm.lambda_bead - (harm.lambda_zero_bead if zero_modes == "drop" else 0.0)


def bse_of_born(harm, zero_modes):
    """λ(m) [n_gamma, n_m] of the Bethe–Salpeter equation applied to the harmonic Born W₀ (bead form, all
    N_b bead frequencies; zero modes left out for ``drop``)."""
    from spia_mpi.engine import spia
    from spia_mpi.engine.harmonic import born_interaction
    from spia_mpi.ions.configurations import ring_polymer_frequencies_ev
    from spia_mpi.units import beta_per_ev
    omega2 = np.where(harm.zero, np.inf if zero_modes == "drop" else 0.0, harm.hbar_omega ** 2)
    omegas = ring_polymer_frequencies_ev(harm.n_beads, harm.temperature_k)
    total = 0.0
    for g_kst, d, e in zip(harm.couplings, harm.gbar_abs2, harm.energies):
        w0 = born_interaction(g_kst, omega2, omegas)
        w = spia.bethe_salpeter(w0.astype(complex), d, beta_per_ev(harm.temperature_k)).real
        wts = spia.lorentzian_weights(e, harm.fermi_level_ev, harm.gamma_ev)
        total = total - np.einsum("gs,mst,gt->gm", wts, w, wts)
    n_gamma = harm.n_gamma_per_cell * harm.cells_per_supercell * harm.n_kpoints
    return (total / n_gamma[:, None])[:, : harm.n_beads // 2 + 1]


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
    ap.add_argument("--zero-modes", choices=("keep", "drop"), nargs="+", default=["keep"],
                    help="keep the rigid translations' bead motion (exact sampler) and/or remove it")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="harmonic_gpaw_"))
    print("| supercell | zero modes | mode | γ (eV) | m | λ_SPIA ± σ | λ_harm (beads) | Δ/σ | Δ/λ_harm | within 3σ + 3 % "
          "| BSE(W₀) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for j, (name, (matrix, kpts)) in enumerate(SUPERCELLS.items()):
        if args.supercell is not None and j != args.supercell:
            continue
        result = work / f"sc{j}" / f"reduction_{args.samples}_{args.seed}_{'_'.join(args.zero_modes)}.pkl"
        if result.exists():
            harm, res = pickle.loads(result.read_bytes())
        else:
            harm, res, _ = reduction(matrix, kpts, work / f"sc{j}", args.samples, args.seed, args.mass_scale,
                                     args.blocks, args.temperature, args.zero_modes,
                                     log=lambda s: print(s, file=sys.stderr))
            result.write_bytes(pickle.dumps((harm, res)))
        for zm in ("keep", "drop"):                 # the harmonic side alone, both variants
            print(f"<!-- {name}, zero modes {zm}: λ_harm(m) bead {np.round(reference_lambda(harm, zm), 5).tolist()}; "
                  f"BSE(W₀) {np.round(bse_of_born(harm, zm), 5).tolist()} (rows γ, columns m) -->", file=sys.stderr)
        for (zm, mode), r in res.items():
            want, ladder = reference_lambda(harm, zm), bse_of_born(harm, zm)
            for ig, g in enumerate(GAMMAS):
                for m in range(r.raw.value.shape[1]):
                    lam, err, ref = r.raw.value[ig, m], r.raw.error[ig, m], want[ig, m]
                    ok = abs(lam - ref) <= 3 * err + 0.03 * ref
                    last = f"{ladder[ig, m]:.5f}" if mode == "bse" else ""
                    print(f"| {name} | {zm} | {mode} | {g:g} | {m} | {lam:.5f} ± {err:.5f} | {ref:.5f} | "
                          f"{(lam - ref) / err:+.2f} | {100 * (lam / ref - 1):+.1f} % | {'yes' if ok else 'NO'} | "
                          f"{last} |", flush=True)


if __name__ == "__main__":
    main()
