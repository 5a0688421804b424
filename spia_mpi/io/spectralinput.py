"""The ``[spectral]`` table of the run input file (read by ``spia_mpi spectral``).

``spectral INPUT.toml`` reads the same file as ``run`` (model, supercell, configurations,
spia, output) and this table; see docs/spectral.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spia_mpi.io.inputs import nonnegative, option, positive
from spia_mpi.units import HARTREE_EV


def _at_least_two(v):
    return None if v >= 2 else "must be ≥ 2"


@dataclass(frozen=True)
class SpectralInput:
    path: str = option("", doc="k-path through the primitive Brillouin zone as an ASE band-path string of "
                               "the primitive cell, e.g. 'GXMGR,X' (a comma starts a new segment); '': ASE's "
                               "default path of the lattice")
    n_kpoints: int = option(60, check=_at_least_two, doc="k-points along the whole path")
    n_bands: int = option(0, check=nonnegative,
                          doc="lowest supercell eigenpairs per K (the energy window of the unfolding); "
                              "0: all of them")
    eigensolver: Literal["dense", "slepc"] = option(
        "dense", doc="eigenpairs of H(R, K): LAPACK on the dense matrix, or SLEPc Krylov–Schur (n_bands lowest; "
                     "options prefix spia_bands_)")
    energy_min_ev: float = option(-10.0, units="eV", doc="lower end of the energy grid, relative to ε_F")
    energy_max_ev: float = option(5.0, units="eV", doc="upper end of the energy grid, relative to ε_F")
    n_energies: int = option(601, check=_at_least_two, doc="energy grid points")
    broadening_ev: float = option(round(0.01 * HARTREE_EV, 6), units="eV", check=positive,
                                  doc="Lorentzian half width γ of δ(E − ε_N) (default 0.02 Ry = 0.01 Hartree, the paper's)")
    greens: bool = option(True, doc="also the Green's-function route: Ḡ(k) on spia.states_per_k reference "
                                    "states of every path k at z = ε_F + iη (spia.matsubara_j), its "
                                    "renormalised bands ε_nk, half widths γ_nk and −Im Ḡ(k, E + iγ)/π")
    bead_groups: int = option(1, check=positive,
                              doc="beads per work unit are cut into this many groups (1 ≤ bead_groups ≤ N_b): "
                                  "units are K × configuration blocks × bead groups; more groups spread the work "
                                  "over more ranks but write more checkpoint files")
    summary_points: tuple[str, ...] = option(
        (), doc="labels of the path's special points in the broadening/shift summary ('G' or 'Γ' for Γ); "
                "empty: all labelled points of the path")
    file: str = option("spia_spectral.h5", doc="spectral HDF5 output file")
    checkpoint: str = option("", doc="checkpoint folder (default: <file>.ckpt); output.restart applies")
