#!/usr/bin/env python
"""Oracle 2 probe of docs/harmonic.md: the harmonic baseline's generalised vertex on GPAW (SCF
density) against GPAW's own finite-difference electron–phonon code
(gpaw.elph.electronphonon.ElectronPhononCoupling, ⟨Φ_μ|∂V_eff + PAW terms|Φ_ν⟩ in the fixed
reference LCAO basis), for bcc Li in the 2×1×1 supercell at its Γ point. Prints, per
displacement direction and pair of (degenerate) energy blocks, Σ|V|² (ours) and Σ|c†g c|²
(GPAW's) — gauge-invariant sums — as a markdown table.

    PYTHONPATH=. python drivers/harmonic_elph_gpaw.py [--workdir DIR] [--window 5]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=None, help="folder for GPAW files (default: a temporary one)")
    ap.add_argument("--window", type=float, default=5.0, help="blocks with |ε − ε_F| below this (eV)")
    args = ap.parse_args()
    from ase.build import bulk
    from ase.units import Bohr, Ha
    from gpaw import GPAW
    from gpaw.elph.electronphonon import ElectronPhononCoupling
    from spia_mpi.engine import harmonic as hm
    from spia_mpi.engine.resolvent import matsubara_eta
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    work = Path(args.workdir or tempfile.mkdtemp(prefix="harmonic_elph_"))
    work.mkdir(parents=True, exist_ok=True)
    settings = GpawSettings(density="scf", basis="dzp", kpts=(2, 2, 2), smearing_ev=0.1, h_ang=0.25,
                            convergence_density=1e-8)
    t0 = time.perf_counter()
    model = GpawModel(bulk("Li", "bcc", a=3.44), [2, 1, 1], settings, [[0, 0, 0]])
    model.prepare(None, 1, work / "ours")
    params = settings.calculator_parameters()
    elph = ElectronPhononCoupling(model.atoms.copy(), calc=GPAW(**params, txt=str(work / "elph.txt")),
                                  supercell=(1, 1, 1), name=str(work / "elph"), delta=0.01)
    elph.run()                                       # 1 + 12 SCF calculations of the displaced supercell
    gamma_only = GPAW(**{**params, "kpts": (1, 1, 1)}, txt=None)
    atoms = model.atoms.copy()
    atoms.calc = gamma_only
    gamma_only.initialize(atoms)
    gamma_only.initialize_positions(atoms)
    elph.set_lcao_calculator(gamma_only)             # Γ-only: g is the K = 0 Bloch-sum matrix of the supercell
    elph.calculate_supercell_matrix(name=str(work / "supercell"), include_pseudo=True)
    elph.load_supercell_matrix(name=str(work / "supercell"))
    g = np.asarray(elph.g_xsNNMM)[:, 0, 0, 0] * Ha / Bohr         # [3N, n_ao, n_ao] eV/Å
    ef = model.fermi_level_ev
    z = ef + 1j * matsubara_eta(4, 300.0)
    K = [0.0, 0.0, 0.0]
    refs = model.reference_states(K, 5)
    bands = hm.static_bands(model, K, refs, z)
    c, eps = refs.vectors, refs.energies
    blocks = np.round(eps - ef, 2)
    keep = [e for e in np.unique(blocks) if abs(e) < args.window]
    print(f"<!-- {time.perf_counter() - t0:.0f} s; ε − ε_F = {sorted(set(blocks.tolist()))} eV -->", file=sys.stderr)
    print("| direction | blocks ε − ε_F (eV) | Σ|V|² ours (eV²/Å²) | Σ|g|² GPAW elph | ratio |")
    print("|---|---|---|---|---|")
    for x in range(g.shape[0]):
        v = hm.moving_basis_vertex(bands, *hm.problem_derivatives(model, [K], [refs], x, 0.01)[0])
        ge = c.conj().T @ g[x] @ c
        for i, e1 in enumerate(keep):
            for e2 in keep[i:]:
                a, b = blocks == e1, blocks == e2
                ours, theirs = ((np.abs(m[np.ix_(a, b)]) ** 2).sum() for m in (v, ge))
                if max(ours, theirs) > 1e-3:
                    print(f"| {x} | ({e1:+.2f}, {e2:+.2f}) | {ours:.4f} | {theirs:.4f} | {ours / theirs:.3f} |")


if __name__ == "__main__":
    main()
