"""The ``[harmonic]`` table of the run input (read by ``spia_mpi harmonic``; ``run`` ignores it).

The harmonic baseline uses the same ``[model]``, ``[supercell]``, ``[spia]`` (states per k,
J, γ, Fermi level) and ``[eliashberg]`` tables as ``run``; this table adds where the force
constants come from and what to write.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spia_mpi.io.inputs import nonnegative, option, positive


def _at_least_two(v):
    return None if v >= 2 else "must be ≥ 2"


@dataclass(frozen=True)
class HarmonicInput:
    force_constants: Literal["einstein", "calculator", "file", "model"] = option(
        "einstein", doc="source of Φ: 'einstein' — a spring M·Ω² on every atom with configurations.einstein."
                        "hbar_omega_ev (the Φ of run's own Einstein sampler); 'calculator' — finite displacements "
                        "with an ASE calculator (harmonic.calculator); 'file' — harmonic.force_constants_file; "
                        "'model' — finite displacements with the model's own forces (models that have them)")
    force_constants_file: str = option(
        "", doc="Φ of the supercell (eV/Å², atoms in the model's supercell order): a phonopy FORCE_CONSTANTS "
                "text file (full form), a .npy [3N, 3N] or [N, N, 3, 3], or a text matrix [3N, 3N]")
    calculator: Literal["yukawa"] = option(
        "yukawa", doc="ASE calculator for force_constants = 'calculator': screened-Coulomb pairs "
                      "(spia_mpi.ions.calculators.YukawaPair, charges = atomic numbers)")
    yukawa_screening_length_ang: float | None = option(
        None, units="Å", check=positive, doc="Yukawa screening length λ_s; default: the Thomas–Fermi length of the "
                                             "model's valence electrons")
    yukawa_cutoff_ang: float | None = option(None, units="Å", check=positive, doc="Yukawa cutoff (default 8 λ_s)")
    displacement_ang: float = option(0.01, units="Å", check=positive,
                                     doc="finite-displacement step δ of Φ (central differences of the forces)")
    acoustic_sum_rule: bool = option(True, doc="impose Σ_b Φ_ab = 0 and Φ = Φᵀ on a calculated or read Φ "
                                               "(not on Einstein springs)")
    deformation_step_ang: float = option(0.01, units="Å", check=positive,
                                         doc="step δ of the central differences ∂H/∂u ≈ [H(u+δ) − H(u−δ)]/2δ")
    vertex: Literal["quasi_static", "projected"] = option(
        "quasi_static", doc="'quasi_static': ∂H/∂u seen through SPIA's projected resolvent at z (the exact linear "
                            "limit of SPIA; the bare matrix element when the reference states are eigenstates); "
                            "'projected': bare P†(∂H/∂u)P in the eigenbasis of P†HP")
    mass_scale: float = option(1.0, check=positive,
                               doc="factor on every ionic mass of the baseline and its samples (Φ unchanged): a heavier "
                                   "mass shrinks the zero-point motion, so that the linear-coupling limit holds in a "
                                   "reduction test")
    zero_modes: Literal["auto", "keep", "drop"] = option(
        "auto", doc="the three rigid translations (zero modes of a Φ with the acoustic sum rule): 'keep' — samples "
                    "as the exact sampler draws them (bead-internal translations, fixed centroid) and their share "
                    "in lambda_m_bead; 'drop' — every bead's centre-of-mass displacement removed from the samples "
                    "and no zero-mode share in lambda_m_bead (the reduction test's reference; docs/harmonic.md); "
                    "'auto' — 'drop' where `run` on the same input removes rigid translations "
                    "(spia.rigid_translations), else 'keep', so that the baseline and `run` compare like with like")
    temperature_k: float | None = option(None, units="K", check=positive,
                                         doc="temperature; default: configurations.einstein.temperature_k, or the "
                                             "configurations file's temperature when configurations.source = 'file'")
    n_beads: int | None = option(None, check=positive,
                                 doc="beads N_b of the discrete-bead form; default as for temperature_k")
    alpha2f_smearing_ev: float = option(0.005, units="eV", check=positive, doc="Gaussian width of the plotted α²F(ω)")
    output_file: str = option("harmonic_results.h5", doc="results HDF5 file of `spia_mpi harmonic`")
    samples_file: str = option("", doc="if set, also write exact harmonic ring-polymer samples with this Φ "
                                       "(configurations HDF5, for `run` with configurations.source = 'file')")
    n_samples: int = option(96, check=_at_least_two, doc="independent configurations in samples_file")
    seed: int = option(1, check=nonnegative, doc="random seed of the samples")
    plots: bool = option(True, doc="write PNG/PDF figures next to the results file")
