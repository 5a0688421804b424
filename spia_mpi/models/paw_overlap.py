"""PAW cross overlaps S(R⁽⁰⁾, R) between LCAO bases at two sets of positions (paper Eq. S15).

In the LCAO basis of GPAW the pseudo (PS) basis functions Φ̃_μ move with their atoms. The
common-pseudo-space matrix element of paper Eq. S14 between reference states
|ψ̃_n⟩ = Σ_λ |Φ̃_λ(R⁽⁰⁾)⟩ c_λn needs

    X_λμ(K) = ⟨Φ̃_λ(R⁽⁰⁾)| T̂†(R⁽⁰⁾) T̂(R) |Φ̃_μ(R)⟩                       (Bloch sums at K)

(docs/models.md, "GPAW": derivation). With T̂ = 1 + Σ_ai (|φ_i^a⟩ − |φ̃_i^a⟩)⟨p̃_i^a| we evaluate
it as

    X = ⟨Φ̃(R⁽⁰⁾)| T̂†(R) T̂(R) |Φ̃(R)⟩
      = ⟨Φ̃(R⁽⁰⁾)|Φ̃(R)⟩ + Σ_a ⟨Φ̃(R⁽⁰⁾)|p̃_i^a(R_a)⟩ ΔS^a_ij ⟨p̃_j^a(R_a)|Φ̃(R)⟩,

ΔS^a_ij = ⟨φ_i^a|φ_j^a⟩ − ⟨φ̃_i^a|φ̃_j^a⟩ (GPAW's ``setup.dO_ii``): the reference state's
all-electron form is rebuilt with the augmentation spheres of the *current* ions,
T̂(R⁽⁰⁾)|ψ̃⟩ ≈ T̂(R)|ψ̃⟩. This is the overlap block between ghost atoms at R⁽⁰⁾ (basis
functions, no projectors) and the real atoms at R of one combined calculation. It is
exact for R = R⁽⁰⁾ (X = S(R⁽⁰⁾)) and covariant under any lattice translation of the
ions (X changes by the Bloch phases only); what it neglects is the difference
(T̂(R⁽⁰⁾) − T̂(R))|ψ̃⟩, the change of the one-centre expansion of the reference pseudo
state when the augmentation sphere moves by the displacement u (first order in u times
the augmentation size; zero where the setup's ΔS vanishes).

Both two-centre integrals come from GPAW's own machinery
(:class:`gpaw.lcao.tci.TCIExpansions`) on the combined set of 2N atoms (the atoms at R
followed by copies at R⁽⁰⁾), so basis functions, projectors, Bloch phases and the
wrapping of positions are exactly GPAW's.
"""
from __future__ import annotations

import numpy as np


def tci_expansions(setups):
    """GPAW's two-centre expansions for the 2N atoms (N at R, then N at R⁽⁰⁾), made once per species set."""
    from gpaw.lcao.tci import TCIExpansions
    unique = list(setups.setups.values())
    kind = {s: i for i, s in enumerate(unique)}
    species = [kind[s] for s in setups]
    return TCIExpansions([s.phit_j for s in unique], [s.pt_j for s in unique], species + species)


def cross_overlap(setups, cell_cv, pbc_c, spos_ref_ac, spos_ac, kpts_kc, expansions=None) -> np.ndarray:
    """X(K) between the basis at ``spos_ref_ac`` (rows) and at ``spos_ac`` (columns).

    setups       GPAW ``Setups`` of the N atoms (same for both position sets)
    cell_cv      float [3, 3] cell in Bohr (rows); pbc_c bool [3]
    spos_ref_ac  float [N, 3] scaled positions of R⁽⁰⁾ (as GPAW wraps them, in [0, 1))
    spos_ac      float [N, 3] scaled positions of R
    kpts_kc      float [n_K, 3] Bloch wavevectors (reduced)
    expansions   :func:`tci_expansions` of ``setups`` (made here when None)
    Returns complex [n_K, n_ao, n_ao] (dimensionless).
    """
    n_atoms = len(setups)
    expansions = expansions or tci_expansions(setups)
    kpts_kc = np.atleast_2d(np.asarray(kpts_kc, float))
    tci = expansions.get_tci_calculator(np.asarray(cell_cv, float), np.vstack([spos_ac, spos_ref_ac]),
                                        np.asarray(pbc_c, bool), kpts_kc, complex)
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
    for a in range(n_atoms):
        p_ref = _basis_projector(tci, m_index, n_atoms, n_ao, len(kpts_kc), setups[a].ni, a, n_atoms)
        p_new = _basis_projector(tci, m_index, n_atoms, n_ao, len(kpts_kc), setups[a].ni, a, 0)
        x += np.einsum("kmi,ij,knj->kmn", p_ref, np.asarray(setups[a].dO_ii, complex), p_new.conj(),
                       optimize=True)
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
