"""Fermi-level candidates of a SPIA run (``spia.fermi_level``).

The Fermi level enters twice: as the real part of z = ε_F + iη and as the centre of
the Lorentzian Fermi-surface weights. Candidates (all recorded in the results file):

* ``reference`` — the static reference structure's bands filled with N_e electrons
  (Fermi–Dirac at the PIMD temperature);
* ``ensemble`` — the level that places N_e electrons in the eigenvalues of the
  configuration-bead Hamiltonians H(R_cb): per configuration c, μ_c with
  (1/N_b) Σ_b Σ_K Σ_i f((ε_cbKi − μ_c)/σ) = N_e/2 (smearing σ = ``spia.fermi_smearing_ev``,
  Fermi–Dirac or Gaussian occupations), averaged over the configurations (its standard
  error reported). In a superionic or strongly anharmonic solid this is the level of the
  thermal ensemble, which the reference structure need not represent;
* ``renormalised`` — N_e electrons in the renormalised bands with Lorentzian occupations
  (only with a subspace that holds every band; :func:`spia.fermi_level_lorentzian`);
* a number (eV).

Kernels here are plain functions; :func:`ensemble_fermi_level` distributes its
configurations over the ranks of the communicator it is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spia_mpi.errors import InputError

CHOICES = ("ensemble", "reference", "renormalised")
SMEARINGS = ("fermi-dirac", "gaussian")


def occupations(x: np.ndarray, kind: str) -> np.ndarray:
    """f(x), x = (ε − μ)/σ: Fermi–Dirac 1/(eˣ + 1) or Gaussian ½ erfc(x)."""
    from scipy.special import erfc, expit
    if kind == "fermi-dirac":
        return expit(-x)
    if kind == "gaussian":
        return 0.5 * erfc(x)
    raise InputError(f"Fermi smearing '{kind}' is not one of: {', '.join(SMEARINGS)}")


def smeared_level(energies, n_per_spin: float, smearing_ev: float, kind: str = "fermi-dirac",
                  weight: float = 1.0) -> float:
    """μ with weight · Σ_i f((ε_i − μ)/σ) = ``n_per_spin`` (eV); ``energies`` any shape (eV)."""
    from scipy.optimize import brentq
    e = np.asarray(energies, float).ravel()
    if smearing_ev <= 0:
        raise InputError(f"spia.fermi_smearing_ev = {smearing_ev} must be > 0")

    def excess(mu):
        return weight * float(np.sum(occupations((e - mu) / smearing_ev, kind))) - n_per_spin

    lo, hi = e.min() - 40 * smearing_ev - 1.0, e.max() + 40 * smearing_ev + 1.0
    if not excess(lo) < 0 < excess(hi):
        raise InputError(f"cannot place {n_per_spin} electrons per spin in {e.size} eigenvalues "
                         f"(× {weight:g})")
    return brentq(excess, lo, hi, xtol=1e-12)


def configuration_eigenvalues(model, positions_bav, kpoints, n_levels: int | None = None) -> list:
    """Eigenvalues of H(R_b, K) for every bead b and K: list over (b, K) of float arrays (eV).

    All eigenvalues (LAPACK; generalized H c = ε S c when the model has ``overlap_dense``) when
    ``n_levels`` is None, else the lowest ``n_levels`` (SLEPc; S = 1 models only).
    """
    from scipy.linalg import eigh
    from spia_mpi.models import bands
    overlap = getattr(model, "overlap_dense", None)          # S ≠ 1 (e.g. GPAW): H c = ε S c
    out = []
    for pos in positions_bav:
        for K in kpoints:
            if n_levels is None and hasattr(model, "generalized_eigenvalues"):   # e.g. GPAW's, cached per bead
                out.append(model.generalized_eigenvalues(pos, K))
            elif n_levels is None:
                h = model.hamiltonian_dense(pos, K)
                out.append(eigh(h, overlap(pos, K), eigvals_only=True) if overlap else np.linalg.eigvalsh(h))
            elif overlap:
                raise InputError("spia.fermi_level = 'ensemble' for a model with an overlap matrix S ≠ 1 needs "
                                 "dense eigenvalues (≤ 3000 basis functions): choose 'reference'")
            else:
                out.append(bands.lowest_eigenpairs(model, K, n_levels, positions_av=pos)[0])
    return out


def configuration_level(model, positions_bav, kpoints, smearing_ev: float, kind: str,
                        dense_max: int = 3000) -> float:
    """μ_c of one configuration: N_e/2 electrons per spin in its bead-averaged eigenvalues of all K.

    Dense diagonalisation up to ``dense_max`` basis functions; beyond, the lowest N_e/2 + 8
    eigenvalues per (b, K) by SLEPc, doubled until the highest lies 12σ above μ_c.
    """
    n_per_spin = 0.5 * model.n_electrons * len(kpoints)
    weight = 1.0 / len(positions_bav)
    if model.n_basis <= dense_max:
        return smeared_level(np.concatenate(configuration_eigenvalues(model, positions_bav, kpoints)),
                             n_per_spin, smearing_ev, kind, weight)
    n = min(model.n_basis, int(math.ceil(0.5 * model.n_electrons)) + 8)
    while True:
        ev = configuration_eigenvalues(model, positions_bav, kpoints, n)
        mu = smeared_level(np.concatenate(ev), n_per_spin, smearing_ev, kind, weight)
        if n == model.n_basis or min(e[-1] for e in ev) - mu > 12 * smearing_ev:
            return mu
        n = min(model.n_basis, 2 * n)


@dataclass(frozen=True)
class EnsembleLevel:
    """ε_F of the thermal ensemble: mean over configurations, its standard error, the per-configuration
    levels float [n_used] (eV) and the indices of the configurations used."""

    value: float
    error: float
    per_configuration: np.ndarray
    configurations: np.ndarray


def ensemble_fermi_level(model, positions_cbav, kpoints, smearing_ev: float = 0.2, kind: str = "fermi-dirac",
                         max_configurations: int = 0, comm=None, groups=None) -> EnsembleLevel:
    """:class:`EnsembleLevel` from ``max_configurations`` evenly spaced configurations (0: all),
    distributed over the configuration groups ``groups`` = (n_groups, this rank's group) of
    ``comm`` (default: one rank each); every rank of a group computes the group's
    configurations together (a model whose Hamiltonian is built collectively on the group,
    e.g. GPAW, sees the same calls on all its ranks)."""
    from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, partition
    n_conf = int(positions_cbav.shape[0])
    use = np.arange(n_conf)
    if 0 < max_configurations < n_conf:
        use = np.unique(np.round(np.linspace(0, n_conf - 1, max_configurations)).astype(int))
    size, rank = groups if groups is not None else ((1, 0) if comm is None else (comm.size, comm.rank))
    with agree_on_failure(comm, "the ensemble Fermi level"):
        mine = {int(use[i]): configuration_level(model, np.asarray(positions_cbav[int(use[i])], float),
                                                 np.atleast_2d(kpoints), smearing_ev, kind)
                for i in partition(len(use), size, rank)}
    levels = allgather_dict(mine, comm)
    mu = np.array([levels[int(c)] for c in use])
    err = float(np.std(mu, ddof=1) / np.sqrt(mu.size)) if mu.size > 1 else float("nan")
    return EnsembleLevel(float(mu.mean()), err, mu, use)


@dataclass(frozen=True)
class FermiLevels:
    """Every Fermi-level candidate of a run (eV; NaN: not available) and the ones used.

    choice        'ensemble', 'reference', 'renormalised' or 'given'
    weights       centre of the Lorentzian Fermi-surface weights (the chosen level)
    z             real part of z (the chosen level; the reference one for 'renormalised',
                  which is only known after the resolvents)
    """

    choice: str
    weights: float
    z: float
    reference: float
    ensemble: float
    ensemble_error: float
    renormalised: float
    given: float

    def as_attrs(self) -> dict:
        return {"fermi_level_choice": self.choice, "fermi_level_eV": self.weights, "fermi_level_z_eV": self.z,
                "fermi_level_reference_eV": self.reference, "fermi_level_ensemble_eV": self.ensemble,
                "fermi_level_ensemble_error_eV": self.ensemble_error,
                "fermi_level_renormalised_eV": self.renormalised, "fermi_level_given_eV": self.given}
