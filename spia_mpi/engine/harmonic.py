"""Harmonic baseline: conventional λ(m) of harmonic ions with linear coupling, from the
same Hamiltonian, reference states, k/q sets and Fermi-surface weights as SPIA.

Kernels (numpy, no I/O; the one parallel loop takes a communicator). Energies eV
(ħ = 1), lengths Å, masses amu; C = ħ²/(amu Å²) = :data:`spia_mpi.units.HBAR2_OVER_AMU_A2_EV`.

For one supercell wavevector K with reference states P (columns, n_s of them) and the
quasi-static frequency z = ε_F + iη of SPIA:

1. **Vertex** (:func:`static_vertex`). The deformation potential ∂H/∂u_i (i = 3a + α) by
   central differences, [H(R⁰ + δê_i) − H(R⁰ − δê_i)]/(2δ). ``vertex = "quasi_static"``
   (default) takes it exactly as SPIA's T-matrix sees it to first order in u:
   with G₀ = (z − H(R⁰))⁻¹ and Ḡ₀ = P†G₀P (k-diagonal blocks),
   V_i = Ḡ₀⁻¹ P†G₀ (∂H/∂u_i) G₀P Ḡ₀⁻¹ in the eigenbasis U of Herm(z − Ḡ₀⁻¹), whose
   eigenvalues are the band energies ε_s (SPIA's renormalised bands of the static
   lattice). When P spans eigenstates of H(R⁰) (tight binding; GPAW Bloch states) this
   is exactly the bare matrix element ⟨ψ_s|∂H/∂u_i|ψ_t⟩ and ε_s the reference bands.
   ``vertex = "projected"``: the bare P†(∂H/∂u_i)P in the eigenbasis of P†H(R⁰)P (the
   conventional deformation potential; differs from the former when P is not an
   invariant subspace, e.g. the grid model's plane waves).

   **Moving basis** (``model.moving_basis``: GPAW's atom-centred PAW orbitals, overlap
   S ≠ 1). SPIA's resolvent is g = Q†A⁻¹Q with A = zS − H and Q = X†c (c the reference
   LCAO coefficients, X the PAW cross overlap into the reference basis; Q₀ = S₀c). Its
   first-order change is δg = δQ†A₀⁻¹Q₀ + Q₀†A₀⁻¹δQ − Q₀†A₀⁻¹(z δS − δH)A₀⁻¹Q₀, so
   ∂H/∂u is replaced by the generalised vertex (in the same band basis)

       V_i = L†(∂H/∂u_i − z ∂S/∂u_i)R + E_l†(∂Q/∂u_i)†R + L†(∂Q/∂u_i)E_r,
       R = A₀⁻¹Q₀UḠ_b⁻¹, L = A₀⁻†Q₀UḠ_b⁻†, E_r = UḠ_b⁻¹, E_l = UḠ_b⁻†,

   with ∂H, ∂S, ∂Q = (∂X/∂u)†c central differences of the model's own (H, S, Q). For
   reference states that are generalised eigenvectors (H₀c = S₀cε, c†S₀c = 1) this is
   V_st = c_s†(∂H − z∂S)c_t + (z − ε_s)(c†∂X c)_st + (c†∂X†c)_st(z − ε_t): on the
   Fermi surface (z → ε_s = ε_t) the familiar ⟨ψ_s|∂H − ε∂S|ψ_t⟩ of a non-orthogonal
   basis; the X terms carry SPIA's projection into the fixed reference pseudo space.
2. **Phonons**: D = M^-½ Φ M^-½ = Σ_k e_k ω_k² e_kᵀ of the supercell (its Γ point: every
   q commensurate with S), zero modes (acoustic translations) as in the exact sampler
   (:func:`spia_mpi.ions.configurations.harmonic_modes`). Mode couplings
   G_k,st = Σ_i V_i,st e_i,k √(C/M_i) (eV^{3/2}); |G_k|² = 2ω_k |g_k|² with the usual
   g_k = ⟨s|∂H/∂u|t⟩·e_k √(ħ/2Mω_k).
3. **Interaction**: W₀_st(m) = −Σ_k |G_k,st|²/(ω_k² + Ω_m²): the Born-limit SPIA Γ for
   Gaussian ions, ⟨ũ ũᵀ⟩(m) = k_BT (Φ + MΩ_m²)⁻¹. Discrete-bead form Ω_m = 2N_b k_BT
   sin(πm/N_b) (the bead transform of the exact sampler; compare with raw SPIA output);
   continuum form ν_m = 2πm k_BT (the conventional Matsubara λ). Zero modes have a fixed
   centroid in the sampler: they enter the bead form only for m ≥ 1 (C|G|²/Ω_m²) and are
   left out of the continuum form, α²F and T_c (reported separately).
4. **λ(m)** with run's estimator (:func:`spia_mpi.engine.spia.lambda_from_pair_sums`):
   Lorentzian weights w_s(γ), N_γ = Σ_K Σ_s w_s, λ(m) = −Σ_K Σ_st w_s W₀_st(m) w_t / N_γ
   = (1/N_γ) Σ_{k,q,ν} w w' |g|² 2ω/(ω² + ν_m²) over the pairs inside each K.
   Pairs grouped by their transfer q = k_t − k_s (the run's /lambda_q) give λ_q(m), Σ_q λ_q = λ.
5. **Spectra**: λ_k = λ's share of mode k at ν = 0, so λ(ν) = Σ_k λ_k ω_k²/(ω_k² + ν²),
   α²F(ω) = ½ Σ_k λ_k ω_k δ(ω − ω_k), ω_log = exp(Σ λ_k ln ω_k / Σ λ_k),
   ω̄₂² = Σ λ_k ω_k² / Σ λ_k.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spia_mpi import units
from spia_mpi.engine import spia
from spia_mpi.errors import InputError

VERTEX_KINDS = ("quasi_static", "projected")


# --------------------------------------------------------------------------
# 1: deformation potentials and the vertex
# --------------------------------------------------------------------------

def hamiltonian_csr(model, positions_av, kpoint):
    """H(K) of ``model`` at ``positions_av`` as a scipy CSR matrix (eV)."""
    from scipy.sparse import csr_matrix
    n = model.n_basis
    rows = getattr(model, "hamiltonian_rows", None)
    if rows is not None:
        indptr, indices, data = rows(positions_av, kpoint, 0, n)
        return csr_matrix((data, indices, indptr), shape=(n, n))
    return csr_matrix(model.hamiltonian_dense(positions_av, kpoint))


def deformation_potential(model, kpoint, direction: int, step_ang: float):
    """∂H/∂u_i (eV/Å, scipy CSR [n_basis, n_basis]) at the reference structure by central
    differences with step δ = ``step_ang``; i = 3a + α (atom a, Cartesian α)."""
    plus, minus = displaced(model.reference_positions, direction, step_ang)
    return (hamiltonian_csr(model, plus, kpoint) - hamiltonian_csr(model, minus, kpoint)) / (2 * step_ang)


@dataclass
class StaticBands:
    """Bands of the static reference lattice in SPIA's subspace, and the maps into its band basis.

    energies   float [n_s]  ε_s (eV)
    half_width float [n_s]  γ_s (eV) (0 for ``projected``)
    k_index    int [n_s]
    left       complex [n_basis, n_s]  L with V = L† (∂H/∂u) R  (band basis)
    right      complex [n_basis, n_s]  R
    z          complex  the quasi-static frequency (eV)
    ends_left  complex [n_s, n_s] or None  E_l of a moving basis (module docstring); None: S = 1
    ends_right complex [n_s, n_s] or None  E_r
    gbar_abs2  float [n_s] or None  |Ḡ_s|² of the static bands (1/eV²; the Bethe–Salpeter kernel D)
    """

    energies: np.ndarray
    half_width: np.ndarray
    k_index: np.ndarray
    left: np.ndarray
    right: np.ndarray
    z: complex = 0j
    ends_left: np.ndarray | None = None
    ends_right: np.ndarray | None = None
    gbar_abs2: np.ndarray | None = None


def static_bands(model, kpoint, refs, z: complex, vertex: str = "quasi_static") -> StaticBands:
    """Band energies and vertex maps of the reference lattice at K (see the module docstring).

    ``refs``: :class:`spia_mpi.models.base.ReferenceStates` of K; ``z`` = ε_F + iη (eV).
    quasi_static: R = G₀P U Ḡ_b⁻¹, L = G₀†P U Ḡ_b⁻†, with Ḡ_b = U†Ḡ₀U (so that
    L† X R = Ḡ_b⁻¹ U†P†G₀ X G₀P U Ḡ_b⁻¹); projected: L = R = P U.
    """
    if vertex not in VERTEX_KINDS:
        raise InputError(f"harmonic vertex '{vertex}' is not one of: {', '.join(VERTEX_KINDS)}")
    P = refs.vectors
    h0 = hamiltonian_csr(model, model.reference_positions, kpoint)
    if vertex == "projected":
        hp = P.conj().T @ (h0 @ P)
        U = np.zeros((P.shape[1],) * 2, dtype=complex)
        energies = np.empty(P.shape[1])
        for k in np.unique(refs.k_index):
            idx = np.flatnonzero(refs.k_index == k)
            e, u = np.linalg.eigh(0.5 * (hp[np.ix_(idx, idx)] + hp[np.ix_(idx, idx)].conj().T))
            energies[idx] = e
            U[np.ix_(idx, idx)] = u
        return StaticBands(energies, np.zeros_like(energies), refs.k_index, P @ U, P @ U)
    if getattr(model, "moving_basis", False):
        return _moving_basis_bands(model, kpoint, refs, z)
    from scipy.sparse import identity
    from scipy.sparse.linalg import splu
    a_mat = (z * identity(model.n_basis, dtype=complex, format="csc") - h0.tocsc()).tocsc()
    lu = splu(a_mat)
    g0p = lu.solve(np.asarray(P, complex))                       # G₀P
    g0hp = lu.solve(np.asarray(P, complex), trans="H")           # G₀†P
    gbar, _ = spia.average_greens(P.conj().T @ g0p, 1, refs.k_index)
    bands = spia.renormalised_bands(gbar, z, refs.k_index)
    ginv = np.linalg.inv(bands.gbar_band)
    U = bands.rotation
    return StaticBands(bands.energies, bands.half_width, refs.k_index,
                       g0hp @ U @ ginv.conj().T, g0p @ U @ ginv, z, gbar_abs2=np.abs(np.diag(bands.gbar_band)) ** 2)


def _moving_basis_bands(model, kpoint, refs, z: complex) -> StaticBands:
    """:func:`static_bands` (quasi_static) of a model with an overlap: dense (H₀, S₀, Q₀) of the
    reference structure from ``model.projected_problem_dense``, g₀ = Q₀†A₀⁻¹Q₀."""
    from scipy.linalg import lu_factor, lu_solve
    h0, s0, q0 = model.projected_problem_dense(model.reference_positions, kpoint, refs.vectors)
    lu = lu_factor(z * np.asarray(s0, complex) - h0, check_finite=False)
    a0q = lu_solve(lu, q0, check_finite=False)                   # A₀⁻¹Q₀
    a0hq = lu_solve(lu, q0, trans=2, check_finite=False)         # A₀⁻†Q₀
    gbar, _ = spia.average_greens(q0.conj().T @ a0q, 1, refs.k_index)
    bands = spia.renormalised_bands(gbar, z, refs.k_index)
    ginv = np.linalg.inv(bands.gbar_band)
    U = bands.rotation
    return StaticBands(bands.energies, bands.half_width, refs.k_index, a0hq @ U @ ginv.conj().T,
                       a0q @ U @ ginv, z, U @ ginv.conj().T, U @ ginv, np.abs(np.diag(bands.gbar_band)) ** 2)


def vertex_matrices(model, kpoint, bands: StaticBands, directions, step_ang: float) -> np.ndarray:
    """V_i = L† (∂H/∂u_i) R in the band basis for the given displacement ``directions``:
    complex [len(directions), n_s, n_s] (eV/Å). (Orthonormal basis; see :func:`moving_basis_vertices`.)"""
    out = np.empty((len(directions), bands.left.shape[1], bands.left.shape[1]), dtype=complex)
    for j, i in enumerate(directions):
        dh = deformation_potential(model, kpoint, i, step_ang)
        out[j] = bands.left.conj().T @ (dh @ bands.right)
    return out


def displaced(reference_positions, direction: int, step_ang: float) -> tuple[np.ndarray, np.ndarray]:
    """(R⁰ + δê_i, R⁰ − δê_i), float [N, 3] each (Å); i = 3a + α."""
    a, alpha = divmod(int(direction), 3)
    plus, minus = np.array(reference_positions, float), np.array(reference_positions, float)
    plus[a, alpha] += step_ang
    minus[a, alpha] -= step_ang
    return plus, minus


def problem_derivatives(model, kpoints, refs, direction: int, step_ang: float) -> list:
    """Central differences (∂H, ∂S, ∂Q)/∂u_i (eV/Å, 1/Å, 1/Å; dense [n_basis, n_basis], [n_basis, n_basis],
    [n_basis, n_s]) of ``model.projected_problem_dense`` at every K, one tuple per K. All K of one
    displaced structure are asked for together (a GPAW model computes them in one calculation)."""
    plus, minus = displaced(model.reference_positions, direction, step_ang)
    p = [continuous_problem(model, plus, K, r.vectors) for K, r in zip(kpoints, refs)]
    m = [continuous_problem(model, minus, K, r.vectors) for K, r in zip(kpoints, refs)]
    return [tuple((np.asarray(x, complex) - np.asarray(y, complex)) / (2 * step_ang) for x, y in zip(a, b))
            for a, b in zip(p, m)]


def continuous_problem(model, positions_av, kpoint, p):
    """``model.projected_problem_dense`` (H, S, Q) in a Bloch gauge continuous in the positions
    (``model.bloch_gauge``: an atom crossing a cell face does not flip its orbitals' phases)."""
    h, s, q = model.projected_problem_dense(positions_av, kpoint, p)
    gauge = getattr(model, "bloch_gauge", None)
    if gauge is None:
        return h, s, q
    d = gauge(positions_av, kpoint)
    dc = d.conj()
    return dc[:, None] * h * d[None, :], None if s is None else dc[:, None] * s * d[None, :], dc[:, None] * q


def moving_basis_vertex(bands: StaticBands, dh, ds, dq) -> np.ndarray:
    """The generalised vertex V = L†(∂H − z∂S)R + E_l†∂Q†R + L†∂Q E_r of a moving basis
    (module docstring), complex [n_s, n_s] (eV/Å)."""
    left, right = bands.left.conj().T, bands.right
    return (left @ ((dh - bands.z * ds) @ right) + bands.ends_left.conj().T @ (dq.conj().T @ right)
            + (left @ dq) @ bands.ends_right)


# --------------------------------------------------------------------------
# 2–5: modes, λ(m), spectra
# --------------------------------------------------------------------------

def mode_couplings(vertex_iss, modes, masses_amu) -> np.ndarray:
    """G_k,st = Σ_i V_i,st e_i,k √(C/M_i) (eV^{3/2}), complex [3N, n_s, n_s].

    vertex_iss complex [3N, n_s, n_s] eV/Å; ``modes`` from
    :func:`spia_mpi.ions.configurations.harmonic_modes`; masses amu [N].
    """
    w = np.sqrt(units.HBAR2_OVER_AMU_A2_EV / np.repeat(np.asarray(masses_amu, float), 3))
    return np.einsum("ist,ik->kst", vertex_iss, modes.vectors * w[:, None], optimize=True)


def mode_fermi_surface_sums(couplings_kst, weights_gs) -> np.ndarray:
    """F_gk = Σ_st w_s |G_k,st|² w_t (eV³/eV² = eV), float [n_gamma, 3N]."""
    g2 = couplings_kst.real ** 2 + couplings_kst.imag ** 2
    return np.einsum("gs,kst,gt->gk", weights_gs, g2, weights_gs, optimize=True)


def mode_pair_sums_by_q(couplings_kst, weights_gs, k_index, q_of_pair, n_q: int) -> np.ndarray:
    """F_gqk = Σ over pairs (s, t) with transfer q of w_s |G_k,st|² w_t (eV), float [n_gamma, n_q, 3N];
    Σ_q F_gqk = :func:`mode_fermi_surface_sums`. ``q_of_pair`` int [n_k, n_k] (the run's transfer index)."""
    g2 = couplings_kst.real ** 2 + couplings_kst.imag ** 2
    kk = np.asarray(q_of_pair)[np.asarray(k_index)[:, None], np.asarray(k_index)[None, :]]
    out = np.zeros((weights_gs.shape[0], n_q, g2.shape[0]))
    for q in np.unique(kk):
        out[:, q, :] = np.einsum("gs,kst,gt->gk", weights_gs, np.where(kk == q, g2, 0.0), weights_gs, optimize=True)
    return out


def mode_propagator(omega2_ev2, frequencies_ev) -> np.ndarray:
    """1/(ω_k² + Ω²) (1/eV²) for every mode k and frequency Ω: float [3N, n_freq].

    Zero modes (ω_k = 0, fixed centroid): 0 at Ω = 0, 1/Ω² otherwise."""
    w2 = np.asarray(omega2_ev2, float)[:, None]
    f2 = np.asarray(frequencies_ev, float)[None, :] ** 2
    den = w2 + f2
    return np.divide(1.0, den, out=np.zeros(den.shape), where=den > 0)


def born_interaction(couplings_kst, omega2_ev2, frequencies_ev) -> np.ndarray:
    """W₀_st(Ω) = −Σ_k |G_k,st|² / (ω_k² + Ω²) (eV), float [n_freq, n_s, n_s]: SPIA's Born-limit Γ of
    Gaussian ions at each frequency Ω (zero modes: 0 at Ω = 0, as :func:`mode_propagator`)."""
    g2 = couplings_kst.real ** 2 + couplings_kst.imag ** 2
    return -np.einsum("kst,kf->fst", g2, mode_propagator(omega2_ev2, frequencies_ev), optimize=True)


@dataclass
class HarmonicResult:
    """The harmonic baseline of one supercell (energies eV, temperature K).

    lambda_bead        float [n_gamma, n_m]  λ(m) with Ω_m (discrete beads, compare with raw SPIA)
    lambda_continuum   float [n_gamma, n_m]  λ(ν_m) with ν_m = 2πm k_BT (no zero modes)
    lambda_zero_bead   float [n_gamma, n_m]  the zero modes' share of lambda_bead (0 with zero_modes = 'drop')
    qpoints_frac       float [n_q, 3]        transfers q = k' − k of the pairs (primitive reduced; run's set)
    lambda_q_bead      float [n_gamma, n_q, n_m]  q-resolved lambda_bead (Σ_q = lambda_bead)
    lambda_q_continuum float [n_gamma, n_q, n_m]  q-resolved lambda_continuum
    lambda_mode        float [n_gamma, 3N]   λ_k of every supercell mode (0 for zero modes)
    hbar_omega         float [3N]            ħω_k of the supercell modes (eV)
    zero               bool [3N]
    n_gamma_per_cell   float [n_gamma]       N_γ per primitive cell per spin (1/eV)
    energies           list of float [n_s] per K: band energies used in the weights
    couplings          list of complex [3N, n_s, n_s] per K (G_k,st, eV^{3/2}) and
    gbar_abs2          list of float [n_s] per K (|Ḡ_s|², 1/eV²): only with ``keep_couplings``, else None
    zero_modes         'keep' or 'drop' (:func:`compute_harmonic`)
    """

    temperature_k: float
    n_beads: int
    gamma_ev: np.ndarray
    fermi_level_ev: float
    z_fermi_level_ev: float
    eta_ev: float
    vertex: str
    lambda_bead: np.ndarray
    lambda_continuum: np.ndarray
    lambda_zero_bead: np.ndarray
    qpoints_frac: np.ndarray
    lambda_q_bead: np.ndarray
    lambda_q_continuum: np.ndarray
    lambda_mode: np.ndarray
    hbar_omega: np.ndarray
    zero: np.ndarray
    n_gamma_per_cell: np.ndarray
    energies: list
    cells_per_supercell: int
    n_kpoints: int
    couplings: list | None = None
    gbar_abs2: list | None = None
    zero_modes: str = "keep"

    @property
    def lambda0(self) -> np.ndarray:
        """λ = Σ_k λ_k per γ."""
        return self.lambda_mode.sum(axis=1)

    @property
    def omega_log_ev(self) -> np.ndarray:
        """ω_log = exp(Σ λ_k ln ω_k / Σ λ_k) per γ (eV)."""
        lnw = np.log(np.where(self.zero, 1.0, self.hbar_omega))
        return np.exp((self.lambda_mode @ lnw) / self.lambda0)

    @property
    def omega2_ev(self) -> np.ndarray:
        """ω̄₂ = √(Σ λ_k ω_k² / Σ λ_k) per γ (eV)."""
        return np.sqrt((self.lambda_mode @ self.hbar_omega ** 2) / self.lambda0)

    def alpha2f(self, omega_ev, smearing_ev: float) -> np.ndarray:
        """α²F(ω) = ½ Σ_k λ_k ω_k δ(ω − ω_k), δ a normalised Gaussian of width
        ``smearing_ev``: float [n_gamma, n_ω] (1/eV · eV = dimensionless per eV of ω)."""
        if not smearing_ev > 0:
            raise InputError(f"α²F smearing {smearing_ev} eV must be positive")
        x = (np.asarray(omega_ev, float)[None, :] - self.hbar_omega[:, None]) / smearing_ev
        delta = np.exp(-0.5 * x ** 2) / (smearing_ev * np.sqrt(2 * np.pi))
        return 0.5 * (self.lambda_mode * self.hbar_omega[None, :]) @ delta


def compute_harmonic(model, force_constants, kpoints, temperature_k: float, n_beads: int, *, J: int = 16,
                     n_per_k: int = 1, gammas=(0.2,), fermi_level_ev: float | None = None,
                     step_ang: float = 0.01, vertex: str = "quasi_static", centre_ev: float | None = None,
                     masses_amu=None, keep_couplings: bool = False, zero_modes: str = "keep",
                     comm=None) -> HarmonicResult:
    """The harmonic baseline for ``model`` with force constants Φ (eV/Å², [3N, 3N]).

    kpoints float [n_K, 3] (supercell reduced); λ(m) for m = 0 … N_b/2. ``fermi_level_ev``:
    ε_F of z (default: the reference bands' electron count at T, which needs a complete
    subspace). ``centre_ev``: centre of the Lorentzian weights (default: the Lorentzian Fermi level of
    the static bands when the subspace is complete, else ε_F of z); give it when ``run`` is given
    spia.fermi_level_ev. ``masses_amu`` float [N] (default: the model's atoms). ``keep_couplings``: keep
    every K's mode couplings G_k,st and |Ḡ_s|² in the result (for :func:`born_interaction`; memory
    3N n_s² per K). ``zero_modes``: 'keep' — the zero modes' bead-internal share in the bead form (the exact
    sampler's draws); 'drop' — none (samples without rigid translations,
    :func:`spia_mpi.ions.translations.remove_rigid_translations`). The displacement
    directions (each with every K) are shared by the ranks of ``comm`` (any rank count gives the
    same numbers); everything else is computed on every rank.
    """
    from spia_mpi.engine.resolvent import matsubara_eta
    from spia_mpi.models.bands import fermi_level
    from spia_mpi.ions.configurations import harmonic_modes, ring_polymer_frequencies_ev
    from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, partition
    from spia_mpi.engine import statespace
    from spia_mpi.engine.workflow import transfers
    if n_beads < 1:
        raise InputError(f"n_beads = {n_beads} must be ≥ 1")
    if zero_modes not in ("keep", "drop"):
        raise InputError(f"zero_modes '{zero_modes}' is not one of: keep, drop")
    if not step_ang > 0:
        raise InputError(f"deformation-potential step {step_ang} Å must be positive")
    kpoints = np.atleast_2d(np.asarray(kpoints, float))
    gammas = np.atleast_1d(np.asarray(gammas, float))
    masses = model.atoms.get_masses() if masses_amu is None else np.asarray(masses_amu, float)
    modes = harmonic_modes(force_constants, masses)
    eta = matsubara_eta(J, temperature_k)
    # n_per_k None: run's automatic state space (engine.statespace.choose), the window around ε_F of z
    refs = statespace.first_pool(model, kpoints, n_per_k)
    complete = all(r.n_states == model.n_basis for r in refs)
    if fermi_level_ev is None:
        if not complete:
            raise InputError("the reference subspace does not hold every band: give the Fermi level explicitly")
        fermi_level_ev = fermi_level(np.concatenate([r.energies for r in refs]),
                                               0.5 * model.n_electrons * len(kpoints), temperature_k)
    if n_per_k is None:
        refs, _ = statespace.choose(model, kpoints, refs, fermi_level_ev, gammas, eta, None, None, complete)
        complete = all(r.n_states == model.n_basis for r in refs)
    z = fermi_level_ev + 1j * eta
    n3 = 3 * len(masses)
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    moving = bool(getattr(model, "moving_basis", False))
    if moving and vertex != "quasi_static":
        raise InputError(f"harmonic vertex '{vertex}' is defined for an orthonormal basis only; a model whose "
                         "basis moves with the ions (gpaw) has the generalised quasi_static vertex")
    mine = {}
    with agree_on_failure(comm, "the harmonic vertex"):
        bands = [static_bands(model, K, r, z, vertex) for K, r in zip(kpoints, refs)]
        for i in partition(n3, size, rank):                      # one displaced structure: all K
            if moving:
                for ik, d in enumerate(problem_derivatives(model, kpoints, refs, i, step_ang)):
                    mine[(ik, i)] = moving_basis_vertex(bands[ik], *d)
            else:
                for ik in range(len(kpoints)):
                    mine[(ik, i)] = vertex_matrices(model, kpoints[ik], bands[ik], [i], step_ang)[0]
    mine = allgather_dict(mine, comm)
    energies = [b.energies for b in bands]
    if centre_ev is not None:
        ef = float(centre_ev)
    elif complete:
        ef = spia.fermi_level_lorentzian(np.concatenate(energies), np.concatenate([b.half_width for b in bands]),
                                         0.5 * model.n_electrons * len(kpoints))
    else:
        ef = fermi_level_ev
    weights = [spia.lorentzian_weights(e, ef, gammas) for e in energies]
    n_gamma_kg = np.array([w.sum(axis=1) for w in weights])
    m_cells = len(refs[0].kpoints_frac)
    scale = 1.0 / n_gamma_kg.sum(axis=0)                    # λ = −Σ_K Σ wWw / N_γ, as run; [n_gamma], eV
    all_q, q_of_pair = transfers(refs)
    f_gqk = np.zeros((gammas.size, len(all_q), n3))
    kept = []
    for ik in range(len(kpoints)):                                            # fixed order on every rank
        g_kst = mode_couplings(np.array([mine[(ik, i)] for i in range(n3)]), modes, masses)
        f_gqk += mode_pair_sums_by_q(g_kst, weights[ik], refs[ik].k_index, q_of_pair[ik], len(all_q))
        if keep_couplings:
            kept.append(g_kst)
    f_gk = f_gqk.sum(axis=1)
    w2 = modes.hbar_omega ** 2
    n_m = n_beads // 2 + 1
    big_omega = ring_polymer_frequencies_ev(n_beads, temperature_k)[:n_m]
    nu = units.bosonic_frequency_ev(np.arange(n_m), temperature_k)
    chi_bead = mode_propagator(w2, big_omega)                     # [3N, n_m]
    if zero_modes == "drop":
        chi_bead[modes.zero] = 0.0
    lam_bead = scale[:, None] * (f_gk @ chi_bead)
    lam_zero = scale[:, None] * ((f_gk * modes.zero[None, :]) @ chi_bead)
    lam_mode = np.where(modes.zero[None, :], 0.0,
                        scale[:, None] * f_gk / np.where(modes.zero, 1.0, w2)[None, :])
    chi_cont = mode_propagator(w2, nu) * w2[:, None]             # ω²/(ω² + ν²), 0 for zero modes
    lam_cont = lam_mode @ chi_cont
    lam_q_bead = scale[:, None, None] * (f_gqk @ chi_bead)
    lam_q_cont = scale[:, None, None] * ((f_gqk * np.where(modes.zero, 0.0, 1.0 / np.where(modes.zero, 1.0, w2)))
                                         @ chi_cont)
    n_cells = m_cells * len(kpoints)
    return HarmonicResult(float(temperature_k), int(n_beads), gammas, float(ef), float(fermi_level_ev), eta, vertex,
                          lam_bead, lam_cont, lam_zero, all_q, lam_q_bead, lam_q_cont, lam_mode, modes.hbar_omega, modes.zero,
                          n_gamma_kg.sum(axis=0) / n_cells, energies, m_cells, len(kpoints),
                          kept if keep_couplings else None, [b.gbar_abs2 for b in bands] if keep_couplings else None,
                          zero_modes)
