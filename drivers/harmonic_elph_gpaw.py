#!/usr/bin/env python
"""Oracle 2 of docs/harmonic.md: the Hellmann–Feynman identity dε_n/du = ⟨ψ_n|∂H − ε_n∂S|ψ_n⟩ for our
vertex and for GPAW's own finite-difference electron–phonon code
(gpaw.elph.electronphonon.ElectronPhononCoupling: g = ⟨Φ_μ|∂V_eff + PAW terms|Φ_ν⟩ in the fixed
reference LCAO basis), with dε_n/du from GPAW's own SCF eigenvalues at R⁰ ± δ and R⁰ ± δ/2
(Richardson-extrapolated central differences).

System: a 2-atom cubic Li cell (a = 3.44 Å) whose second atom sits off the body centre (scaled
(0.53, 0.51, 0.52)), so that no atom is an inversion centre and the Γ eigenvalues change to first
order in a single-atom displacement (in bcc every first derivative at Γ vanishes by symmetry);
PBE, SCF density, Γ-centred 2×2×2 k-grid, K = Γ. Prints, for every displacement direction and every
non-degenerate state of GPAW's bands, dε/du, ours on the Fermi surface of that state (z → ε_n), ours at
SPIA's z = ε_F + iη, and GPAW's c†gc, as a markdown table.

    PYTHONPATH=. python drivers/harmonic_elph_gpaw.py [--basis dzp] [--workdir DIR] [--directions 0 3 4]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

A_LI = 3.44
SECOND_ATOM = (0.53, 0.51, 0.52)
STEP = 0.01


def distorted_li(basis, density="scf"):
    """(primitive Atoms, GpawSettings) of the distorted 2-atom cubic Li cell."""
    from ase import Atoms
    from spia_mpi.models.gpaw import GpawSettings
    prim = Atoms("Li2", cell=np.eye(3) * A_LI, scaled_positions=[[0, 0, 0], SECOND_ATOM], pbc=True)
    return prim, GpawSettings(density=density, basis=basis, kpts=(2, 2, 2), smearing_ev=0.1, h_ang=0.25,
                              convergence_density=1e-8)


def gpaw_gamma_eigenvalues(atoms, settings, positions):
    """GPAW's own SCF eigenvalues (eV) at the supercell Γ for ``positions`` (a fresh calculation)."""
    from gpaw import GPAW
    at = atoms.copy()
    at.set_positions(positions)
    calc = GPAW(**settings.calculator_parameters(), txt=None)
    at.calc = calc
    at.get_potential_energy()
    kk = np.asarray(calc.get_ibz_k_points())
    return np.asarray(calc.get_eigenvalues(kpt=int(np.flatnonzero(np.all(np.abs(kk) < 1e-9, axis=1))[0])))


def non_degenerate(eps, tol=1e-3):
    """bool [n]: no other level within ``tol`` eV."""
    d = np.abs(eps[:, None] - eps[None, :]) + np.eye(eps.size) * 1e9
    return d.min(axis=1) > tol


def gpaw_elph_gamma(atoms, settings, work):
    """GPAW's fixed-basis coupling at Γ, complex [3N, n_ao, n_ao] (eV/Å)."""
    from ase.units import Bohr, Ha
    from gpaw import GPAW
    from gpaw.elph.electronphonon import ElectronPhononCoupling
    params = settings.calculator_parameters()
    elph = ElectronPhononCoupling(atoms.copy(), calc=GPAW(**params, txt=str(work / "elph.txt")),
                                  supercell=(1, 1, 1), name=str(work / "elph"), delta=STEP)
    elph.run()                                       # 1 + 6N SCF calculations
    gamma_only = GPAW(**{**params, "kpts": (1, 1, 1)}, txt=None)
    at = atoms.copy()
    at.calc = gamma_only
    gamma_only.initialize(at)
    gamma_only.initialize_positions(at)
    elph.set_lcao_calculator(gamma_only)
    elph.calculate_supercell_matrix(name=str(work / "supercell"), include_pseudo=True)
    elph.load_supercell_matrix(name=str(work / "supercell"))
    return np.asarray(elph.g_xsNNMM)[:, 0, 0, 0] * Ha / Bohr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--basis", default="dzp", help="GPAW LCAO basis, e.g. dzp, szp(dzp), sz(dzp)")
    ap.add_argument("--workdir", default=None, help="folder for GPAW files (default: a temporary one)")
    ap.add_argument("--directions", type=int, nargs="+", default=[0, 3, 4])
    args = ap.parse_args()
    from spia_mpi.engine import harmonic as hm
    from spia_mpi.engine.resolvent import matsubara_eta
    from spia_mpi.models.gpaw import GpawModel
    work = Path(args.workdir or tempfile.mkdtemp(prefix="harmonic_elph_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prim, settings = distorted_li(args.basis)
    K = [0.0, 0.0, 0.0]
    model = GpawModel(prim, [1, 1, 1], settings, [K])
    model.prepare(None, 1, work / "ours")
    refs = model.reference_states(K, model.n_basis)
    c, eps, ef = refs.vectors, refs.energies, model.fermi_level_ev
    z = ef + 1j * matsubara_eta(16, 300.0)
    spia_bands = hm.static_bands(model, K, refs, z)
    g = gpaw_elph_gamma(model.atoms, settings, work)
    print(f"| basis | direction | ε_n − ε_F (eV) | dε_n/du GPAW | ours, z → ε_n | ours, z = ε_F + iη | GPAW elph c†gc "
          f"| elph error |")
    print("|---|---|---|---|---|---|---|---|")
    for i in args.directions:
        d = hm.problem_derivatives(model, [K], [refs], i, STEP)[0]
        diff = []
        for h in (STEP, STEP / 2):                   # Richardson: removes the O(δ²) of near-degenerate levels
            ev = [gpaw_gamma_eigenvalues(model.atoms, settings, p) for p in hm.displaced(model.reference_positions, i, h)]
            diff.append((ev[0] - ev[1]) / (2 * h))
        deps = (4 * diff[1] - diff[0]) / 3
        keep = non_degenerate(eps[: deps.size])
        spia_v = np.diag(hm.moving_basis_vertex(spia_bands, *d)).real
        theirs = np.real(np.einsum("mn,mk,kn->n", c.conj(), g[i], c))
        for n in np.flatnonzero(keep):
            shell = hm.static_bands(model, K, refs, eps[n] + 1e-4j)
            on = hm.moving_basis_vertex(shell, *d)[n, n].real
            print(f"| {args.basis} | {i} | {eps[n] - ef:+.3f} | {deps[n]:+.4f} | {on:+.4f} | {spia_v[n]:+.4f} | "
                  f"{theirs[n]:+.4f} | {theirs[n] - deps[n]:+.4f} |", flush=True)
    print(f"<!-- {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)


if __name__ == "__main__":
    main()
