"""PAW cross overlaps S(R⁽⁰⁾, R) between LCAO bases at two sets of positions (paper Eq. S15).

In the LCAO basis of GPAW the pseudo (PS) basis functions Φ̃_μ move with their atoms. The
common-pseudo-space matrix element of paper Eq. S14 between reference states
|ψ̃_n⟩ = Σ_λ |Φ̃_λ(R⁽⁰⁾)⟩ c_λn needs

    X_λμ(K) = ⟨Φ̃_λ(R⁽⁰⁾)| T̂†(R⁽⁰⁾) T̂(R) |Φ̃_μ(R)⟩                       (Bloch sums at K)

(docs/models.md, "GPAW": derivation). With T̂ = 1 + Σ_ai |Δφ_i^a⟩⟨p̃_i^a|, Δφ = φ − φ̃,

    T̂†(R⁽⁰⁾)T̂(R) = 1 + Σ_b |Δφ^b(R)⟩⟨p̃^b(R)| + Σ_a |p̃^a(R⁽⁰⁾)⟩⟨Δφ^a(R⁽⁰⁾)|
                    + Σ_ab |p̃^a(R⁽⁰⁾)⟩⟨Δφ^a(R⁽⁰⁾)|Δφ^b(R)⟩⟨p̃^b(R)|.

PAW completeness of the smooth basis inside a sphere (Φ̃ = Σ_i φ̃_i⟨p̃_i|Φ̃⟩ there, for either
position set) turns ⟨Φ̃(R⁽⁰⁾)|Δφ^b(R)⟩ into ⟨Φ̃(R⁽⁰⁾)|p̃^b(R)⟩A^b, A^b_ij = ⟨φ̃_i^b|Δφ_j^b⟩, so

    X = ⟨Φ̃(R⁽⁰⁾)|Φ̃(R)⟩ + Σ_b ⟨Φ̃(R⁽⁰⁾)|p̃^b(R)⟩ A^b ⟨p̃^b(R)|Φ̃(R)⟩
        + Σ_a ⟨Φ̃(R⁽⁰⁾)|p̃^a(R⁽⁰⁾)⟩ A^a† ⟨p̃^a(R⁽⁰⁾)|Φ̃(R)⟩
        + Σ_ab ⟨Φ̃(R⁽⁰⁾)|p̃^a(R⁽⁰⁾)⟩ ⟨Δφ^a(R⁽⁰⁾)|Δφ^b(R)⟩ ⟨p̃^b(R)|Φ̃(R)⟩.

Approximated: only the PAW completeness (the same one GPAW's S and H rest on). Everything else is
evaluated: A from the setups' radial partial waves, the sphere overlaps ⟨Δφ^a(R⁽⁰⁾)|Δφ^b(R)⟩ as
two-centre integrals of Δφ (GPAW's machinery, with the Δφ_j as its "basis functions"; no pairing of
atoms is needed: a sphere overlaps whatever sphere of the other set it reaches). Properties
(tested, tests/test_paw_overlap.py and tests/test_gpaw.py):

* exact at R = R⁽⁰⁾: A + A† + ⟨Δφ|Δφ⟩ = ΔS = GPAW's ``dO_ii``, X = S(R⁽⁰⁾) (a static lattice gives
  g = diag 1/(z − ε)); A carries ½(⟨Δφ|Δφ⟩ − O(0)) so that this holds with the two-centre
  machinery's own zero-distance O(0) (its quadrature differs from the radial integral by ~1e-5);
* Hermitian in the two position sets, X(R⁽⁰⁾, R)† = X(R, R⁽⁰⁾), like T̂†(R⁽⁰⁾)T̂(R);
* ∂X + ∂X† = ∂S at R = R⁽⁰⁾: the projector motion is counted once, as in S(R). Then the
  first-order vertex of SPIA's resolvent g = Q†(zS − H)⁻¹Q, Q = X†c, does not depend on
  z = ε_F + iη (engine/harmonic.py);
* the anti-Hermitian first-order part of the spheres' own motion is kept (⟨Δφ|∇Δφ⟩ from the sphere
  overlaps; the A terms with the projectors of either set). It changes the vertex by
  −(ε_s − ε_t)(c†Mc)_st, nothing on shell but much off shell (docs/harmonic.md);
* covariant under any lattice translation of R and any rigid translation of both sets.

Earlier forms (checkpoint tag :data:`FORM` changes with the form): until session 5 the projectors
sat at the current ions on both sides with ΔS, T̂(R⁽⁰⁾)|ψ̃⟩ ≈ T̂(R)|ψ̃⟩ — its ∂X + ∂X† − ∂S =
Σ_a ⟨Φ̃|∂p̃^a⟩ΔS⟨p̃^a|Φ̃⟩ + h.c. counts the projector motion twice and adds z·c†(that)c to the vertex.

All two-centre integrals come from GPAW's own machinery
(:class:`gpaw.lcao.tci.TCIExpansions`) on the combined set of 2N atoms (the atoms at R
followed by copies at R⁽⁰⁾), so basis functions, projectors, Bloch phases and the
wrapping of positions are exactly GPAW's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Version tag of the form of X, part of the checkpoint fingerprints of GPAW runs (a checkpoint
# made with another form holds resolvents of another common-space projection: never mixed).
FORM = "paw-completeness/2"


def tci_expansions(setups):
    """GPAW's two-centre expansions for the 2N atoms (N at R, then N at R⁽⁰⁾), made once per species set."""
    from gpaw.lcao.tci import TCIExpansions
    unique = list(setups.setups.values())
    species = species_indices(setups)
    return TCIExpansions([s.phit_j for s in unique], [s.pt_j for s in unique], species + species)


def species_indices(setups) -> list:
    """Index of every atom's setup in ``setups.setups`` (one per element/setup/basis), int [N]."""
    kind = {s: i for i, s in enumerate(setups.setups.values())}
    return [kind[s] for s in setups]


@dataclass
class Spheres:
    """The augmentation spheres' one- and two-centre data of a set of GPAW setups.

    a_ii        per atom: A^a = ⟨φ̃_i^a|Δφ_j^a⟩, float [ni, ni] (one-centre radial integrals, Δφ = φ − φ̃)
    expansions  GPAW two-centre expansions with the Δφ_j^a as the "basis functions" of the 2N atoms:
                ``get_tci_calculator(...).O_T(N + a, b)`` = ⟨Δφ^a(R⁽⁰⁾)|Δφ^b(R)⟩ (Bloch sums)
    """

    a_ii: list
    expansions: object


def _partial_wave_radials(setup):
    """(l_j, φ_jg, φ̃_jg, radial grid) of the partial waves with projectors."""
    l_j = list(setup.l_j)
    data = setup.data
    return l_j, np.asarray(data.phi_jg)[:len(l_j)], np.asarray(data.phit_jg)[:len(l_j)], data.rgd


def one_centre_a(setup) -> np.ndarray:
    """A_ij = ⟨φ̃_i|φ_j − φ̃_j⟩ (δ_{l_i l_j} δ_{m_i m_j} ∫ r² φ̃ Δφ dr), float [ni, ni]; A + A† + ⟨Δφ|Δφ⟩ = ΔS."""
    l_j, phi, phit, rgd = _partial_wave_radials(setup)
    return _one_centre(l_j, setup.ni, lambda j1, j2: rgd.integrate(phit[j1] * (phi[j2] - phit[j2])) / (4 * np.pi))


def _one_centre(l_j, ni, radial) -> np.ndarray:
    """[ni, ni] matrix δ_{l_i l_j} δ_{m_i m_j} radial(j_i, j_j) in GPAW's (j, m) projector order."""
    m_j = [2 * l + 1 for l in l_j]
    first = np.concatenate([[0], np.cumsum(m_j)])
    out = np.zeros((ni, ni))
    for j1, l1 in enumerate(l_j):
        for j2, l2 in enumerate(l_j):
            if l1 == l2:
                out[first[j1] + np.arange(m_j[j1]), first[j2] + np.arange(m_j[j2])] = radial(j1, j2)
    return out


def _sphere_self_overlap(setup, splines) -> np.ndarray:
    """⟨Δφ_i|Δφ_j⟩ of one sphere with itself as GPAW's two-centre machinery evaluates it at zero
    distance, float [ni, ni] (its Fourier–Bessel quadrature differs from the radial integral by ~1e-5)."""
    from gpaw.lcao.tci import TCIExpansions
    tci = TCIExpansions([splines], [setup.pt_j], [0, 0]).get_tci_calculator(
        np.eye(3) * 4 * splines[0].get_cutoff(), np.full((2, 3), 0.5), np.zeros(3, bool), np.zeros((1, 3)), complex)
    return tci.O_T(1, 0)[0][0].real


def augmentation_splines(setup) -> list:
    """Δφ_j = φ_j − φ̃_j as GPAW splines (zero beyond the partial waves' matching radius)."""
    l_j, phi, phit, rgd = _partial_wave_radials(setup)
    dphi = phi - phit
    last = max(int(np.flatnonzero(np.abs(d) > 1e-12 * np.abs(d).max())[-1]) for d in dphi)
    rcut = float(rgd.r_g[min(last + 2, len(rgd.r_g) - 1)])
    return [rgd.spline(d, rcut, l) for d, l in zip(dphi, l_j)]


def sphere_data(setups) -> Spheres:
    """:class:`Spheres` of the N atoms' setups (made once per species set). A is taken as
    A + ½(⟨Δφ|Δφ⟩ − O(0)), O(0) the two-centre machinery's own zero-distance ⟨Δφ|Δφ⟩, so that
    A + A† + O(0) = ΔS exactly and X(R⁽⁰⁾, R⁽⁰⁾) = S(R⁽⁰⁾) to rounding."""
    from gpaw.lcao.tci import TCIExpansions
    unique = list(setups.setups.values())
    species = species_indices(setups)
    splines = [augmentation_splines(s) for s in unique]
    a_species = []
    for s, spl in zip(unique, splines):
        l_j, phi, phit, rgd = _partial_wave_radials(s)
        d_ii = _one_centre(l_j, s.ni, lambda j1, j2: rgd.integrate((phi[j1] - phit[j1]) * (phi[j2] - phit[j2]))
                           / (4 * np.pi))
        a_species.append(one_centre_a(s) + 0.5 * (d_ii - _sphere_self_overlap(s, spl)))
    return Spheres([a_species[i] for i in species],
                   TCIExpansions(splines, [s.pt_j for s in unique], species + species))


def cross_overlap(setups, cell_cv, pbc_c, spos_ref_ac, spos_ac, kpts_kc, expansions=None,
                  spheres: Spheres | None = None) -> np.ndarray:
    """X(K) between the basis at ``spos_ref_ac`` (rows) and at ``spos_ac`` (columns).

    setups       GPAW ``Setups`` of the N atoms (same for both position sets)
    cell_cv      float [3, 3] cell in Bohr (rows); pbc_c bool [3]
    spos_ref_ac  float [N, 3] scaled positions of R⁽⁰⁾ (as GPAW wraps them, in [0, 1))
    spos_ac      float [N, 3] scaled positions of R
    kpts_kc      float [n_K, 3] Bloch wavevectors (reduced)
    expansions   :func:`tci_expansions` of ``setups``, spheres :func:`sphere_data` (made here when None)
    Returns complex [n_K, n_ao, n_ao] (dimensionless).
    """
    n_atoms = len(setups)
    expansions = expansions or tci_expansions(setups)
    spheres = spheres or sphere_data(setups)
    kpts_kc = np.atleast_2d(np.asarray(kpts_kc, float))
    args = (np.asarray(cell_cv, float), np.vstack([spos_ac, spos_ref_ac]), np.asarray(pbc_c, bool), kpts_kc,
            complex)
    tci, tci_s = expansions.get_tci_calculator(*args), spheres.expansions.get_tci_calculator(*args)
    m_index = setups.basis_indices()
    n_ao = m_index.max
    x = np.zeros((len(kpts_kc), n_ao, n_ao), complex)
    for a_ref in range(n_atoms):                 # combined index n_atoms + a_ref > a: lower triangle
        r0, r1 = m_index[a_ref]
        for a in range(n_atoms):
            c0, c1 = m_index[a]
            o_kmm, _ = tci.O_T(n_atoms + a_ref, a)
            if o_kmm is not None:
                x[:, r0:r1, c0:c1] = o_kmm

    def proj(a_proj, offset, ni):
        return _basis_projector(tci, m_index, n_atoms, n_ao, len(kpts_kc), ni, a_proj, offset)

    b_ref = [proj(n_atoms + a, n_atoms, setups[a].ni) for a in range(n_atoms)]     # ⟨Φ̃(R⁰)|p̃^a(R⁰)⟩
    c_cur = [proj(a, 0, setups[a].ni) for a in range(n_atoms)]                      # ⟨Φ̃(R)|p̃^a(R)⟩
    for a in range(n_atoms):
        a_ii = np.asarray(spheres.a_ii[a], complex)
        x += np.einsum("kmi,ij,knj->kmn", proj(a, n_atoms, setups[a].ni), a_ii, c_cur[a].conj(), optimize=True)
        x += np.einsum("kmi,ji,knj->kmn", b_ref[a], a_ii.conj(), proj(n_atoms + a, 0, setups[a].ni).conj(),
                       optimize=True)
        for b in range(n_atoms):
            o_kij, _ = tci_s.O_T(n_atoms + a, b)
            if o_kij is not None:
                x += np.einsum("kmi,kij,knj->kmn", b_ref[a], o_kij, c_cur[b].conj(), optimize=True)
    return x


def _basis_projector(tci, m_index, n_atoms, n_ao, n_k, ni, a_proj, offset) -> np.ndarray:
    """⟨Φ̃_M|p̃_i^a⟩, projector of combined atom ``a_proj``, for the N basis atoms starting at combined
    index ``offset``: complex [n_K, n_ao, ni]."""
    out = np.zeros((n_k, n_ao, ni), complex)
    for b in range(n_atoms):
        c0, c1 = m_index[b]
        p_kim = tci.P(a_proj, offset + b)
        if p_kim is not None:
            out[:, c0:c1, :] = p_kim.swapaxes(-1, -2).conj()
    return out
