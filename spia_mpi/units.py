"""Physical constants and unit conversions (CODATA 2018 via :mod:`ase.units`).

Public API units: energies eV, lengths Å, masses amu, temperatures K, times fs.
Kernels work with ħ = 1 and energies in eV; conversions happen only at the
boundary, through the names defined here.
"""
from ase.units import create_units

_u = create_units("2018")

#: Boltzmann constant in eV/K (8.617333262e-5).
KB_EV_PER_K = _u["kB"]
#: Reduced Planck constant in eV·s (6.582119569e-16).
HBAR_EV_S = _u["_hbar"] / _u["_e"]
#: Reduced Planck constant in eV·fs.
HBAR_EV_FS = HBAR_EV_S * 1e15
#: Atomic mass unit in kg.
AMU_KG = _u["_amu"]
#: 1 eV in J.
EV_J = _u["_e"]
#: Hartree in eV and Bohr in Å (for atomic-unit kernels such as −½∇²).
HARTREE_EV = _u["Hartree"]
BOHR_ANG = _u["Bohr"]
#: e²/(4πε₀) in eV·Å (= Hartree · Bohr = 14.3996…): the Coulomb energy scale.
COULOMB_EV_A = HARTREE_EV * BOHR_ANG
#: ħ²/(2 m_e) in eV·Å² (free-electron kinetic energy prefactor, 3.80998…).
HBAR2_OVER_2ME_EV_A2 = 0.5 * HARTREE_EV * BOHR_ANG ** 2
#: ħ²/(1 amu · 1 Å²) in eV: the energy scale of a quantum ion of 1 amu in 1 Å.
HBAR2_OVER_AMU_A2_EV = (_u["_hbar"] ** 2 / (_u["_amu"] * 1e-20)) / _u["_e"]


def beta_per_ev(temperature_k: float) -> float:
    """β = 1/(k_B T) in 1/eV for a temperature in K."""
    return 1.0 / (KB_EV_PER_K * temperature_k)


def bosonic_frequency_ev(m, temperature_k: float):
    """ν_m = 2π m k_B T in eV (ħ = 1); ``m`` may be an array."""
    import numpy as np
    return 2.0 * np.pi * np.asarray(m) * KB_EV_PER_K * temperature_k


def ring_polymer_frequency_ev(m, n_beads: int, temperature_k: float):
    """Ω_m = 2N_b k_BT sin(πm/N_b) in eV (ħ = 1): the frequency at which the bead transform of
    an N_b-bead ring polymer samples a bosonic Matsubara index ``m`` (→ ν_m as N_b → ∞)."""
    import numpy as np
    return 2.0 * n_beads * KB_EV_PER_K * temperature_k * np.sin(np.pi * np.asarray(m) / n_beads)


def fermionic_frequency_ev(n, temperature_k: float):
    """ω_n = (2n + 1) π k_B T in eV (ħ = 1); ``n`` may be an array."""
    import numpy as np
    return (2.0 * np.asarray(n) + 1.0) * np.pi * KB_EV_PER_K * temperature_k
