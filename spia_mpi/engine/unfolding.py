"""Band unfolding: weights W_N(k) = Σ_G |⟨k+G|ψ_N⟩|² of supercell states on primitive k.

A supercell of M primitive cells, wavevector K (reduced supercell coordinates), holds
the M primitive wavevectors k ≡ K modulo the supercell reciprocal lattice
(:func:`spia_mpi.lattice.supercells.folded_kpoints`). The weight of a supercell
eigenstate ψ_N on one of them is ⟨ψ_N|P_k|ψ_N⟩, with P_k the projector on the Bloch
functions of primitive wavevector k (paper Supplement Eq. S27). Because the P_k of the
M folded k are orthogonal projectors summing to 1, Σ_k W_N(k) = 1 for every state, and
for a perfect crystal every non-degenerate eigenstate has weight 1 on one k and 0 on
the others. Summed over all N, Σ_N W_N(k) = tr P_k = basis functions per primitive cell
(the number of primitive bands).

Three forms of P_k, one per kind of basis (plain functions on numpy arrays, no I/O, no MPI):

* :func:`site_weights` — orbitals on sites (tight binding): the Bloch sums
  |k, p⟩ = M^{-1/2} Σ_{i ∈ p} e^{ik·R_i} |i⟩ of every primitive orbital p, so
  W_N(k) = (1/M) Σ_p |Σ_{i∈p} e^{−ik·R_i} ψ_N(i)|² (R_i: reference site positions);
* :func:`plane_wave_weights` — a real-space grid spanning the supercell: the FFT of the
  periodic part u = e^{−iK·r}ψ gives the plane-wave coefficients c(K + n) (n integer,
  supercell reduced coordinates, taken in the centred range of the grid's FFT), and
  W_N(k) = Σ_{n: (K+n)S⁻ᵀ ≡ k} |c(K+n)|², literally Eq. S27;
* :func:`paw_weights` — PAW in an LCAO basis that moves with the ions (GPAW, Eq. S28): the
  projection of T̂(R)|ψ̃_N⟩ on the reference Bloch space of k, spanned by the reference
  orbitals' Bloch sums B_k, W_N(k) = a†(B_k†S⁰B_k)⁻¹a with a = B_k†X c_N.

:func:`unfolding_weights` picks the form from the model. Shapes: ``vectors`` complex
[n_basis, n_states] (orthonormal columns, the supercell basis of the model's
Hamiltonian), ``kpoints_frac`` float [n_k, 3] primitive k (reduced, primitive
reciprocal lattice), each folding onto K; returns float [n_k, n_states].
"""
from __future__ import annotations

import numpy as np

from spia_mpi.errors import InputError
from spia_mpi.lattice import supercells


def supercell_kpoint(supercell_matrix, kpoint_frac) -> np.ndarray:
    """The supercell K (reduced, in [0, 1)) onto which primitive ``kpoint_frac`` folds, float [3]."""
    K, _ = supercells.fold_kpoint(supercell_matrix, kpoint_frac)
    K = np.round(K, 10) % 1.0
    K[np.isclose(K, 1.0, atol=1e-9)] = 0.0
    return K


def group_by_supercell_k(supercell_matrix, kpoints_frac):
    """Group primitive k-points by the supercell K they fold onto.

    Returns (K float [n_K, 3] in order of first appearance, index int [n_k] into K).
    """
    Ks, index = [], []
    for k in np.atleast_2d(np.asarray(kpoints_frac, float)):
        K = supercell_kpoint(supercell_matrix, k)
        for i, other in enumerate(Ks):
            if np.allclose(_wrap(other - K), 0.0, atol=1e-8):
                index.append(i)
                break
        else:
            Ks.append(K)
            index.append(len(Ks) - 1)
    return np.array(Ks).reshape(-1, 3), np.array(index, dtype=int)


def _wrap(x):
    """x − round(x): distance to the nearest integer vector (component-wise)."""
    return x - np.round(x)


def _check_folding(supercell_matrix, kpoint, kpoints_frac):
    k = np.atleast_2d(np.asarray(kpoints_frac, float))
    x = k @ np.asarray(supercell_matrix, float).T - np.asarray(kpoint, float)[None, :]
    bad = np.flatnonzero(np.any(np.abs(_wrap(x)) > 1e-8, axis=1))
    if bad.size:
        raise InputError(f"primitive k = {k[bad[0]].tolist()} does not fold onto the supercell K = "
                         f"{np.asarray(kpoint).tolist()}")
    return k


def site_weights(vectors, site_positions, orbital_index, primitive_cell, kpoints_frac,
                 n_cells: int) -> np.ndarray:
    """W_N(k) for orbitals on sites; float [n_k, n_states].

    vectors          complex [n_sites, n_states]: ψ_N(i) (supercell Bloch gauge, phase only
                     across the supercell boundary, as the tight-binding Hamiltonian)
    site_positions   float [n_sites, 3] (Å): the reference positions R_i of the sites
    orbital_index    int [n_sites]: the primitive orbital p of each site
    primitive_cell   float [3, 3] (Å, rows)
    kpoints_frac     float [n_k, 3]: primitive k (reduced)
    n_cells          M, primitive cells in the supercell
    """
    psi = np.asarray(vectors, complex)
    k = np.atleast_2d(np.asarray(kpoints_frac, float))
    kc = 2 * np.pi * k @ np.linalg.inv(np.asarray(primitive_cell, float)).T      # [n_k, 3] (1/Å)
    phase = np.exp(-1j * kc @ np.asarray(site_positions, float).T)              # [n_k, n_sites]
    orb = np.asarray(orbital_index)
    w = np.zeros((k.shape[0], psi.shape[1]))
    for p in np.unique(orb):
        sel = orb == p
        w += np.abs(phase[:, sel] @ psi[sel]) ** 2
    return w / n_cells


def plane_wave_weights(vectors, grid_shape, supercell_matrix, kpoint, kpoints_frac) -> np.ndarray:
    """W_N(k) for a real-space grid spanning the supercell; float [n_k, n_states].

    vectors      complex [N1·N2·N3, n_states]: ψ on the grid points j (flattened C order,
                 r_j = Σ_α (j_α/N_α) A_α), Bloch gauge ψ(r + L) = e^{iK·L} ψ(r)
    grid_shape   (N1, N2, N3)
    kpoint       K, reduced supercell coordinates

    Each coefficient c(K + n) is attributed to the primitive k ≡ (K + n)S⁻ᵀ (mod 1) with n in
    the centred FFT range (the shortest plane wave the grid represents). Exact (a perfect
    crystal gives weights 0/1) when the grid is commensurate with the primitive lattice, i.e.
    N_α ê_α S⁻ᵀ is an integer vector for every α (diagonal supercells of a primitive grid).
    """
    shape = tuple(int(n) for n in grid_shape)
    S = np.asarray(supercell_matrix, float)
    K = np.asarray(kpoint, float).reshape(3)
    k = _check_folding(S, K, kpoints_frac)
    psi = np.asarray(vectors, complex).reshape(*shape, -1)
    j = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    twist = np.exp(-2j * np.pi * sum(K[a] * j[a] for a in range(3)))
    coef = np.fft.fftn(psi * twist[..., None], axes=(0, 1, 2), norm="ortho")
    power = (np.abs(coef) ** 2).reshape(-1, psi.shape[-1])                     # [N, n_states]
    n = np.meshgrid(*[np.fft.fftfreq(m, 1.0 / m) for m in shape], indexing="ij")
    kp = (np.stack([c.ravel() for c in n], axis=1) + K[None, :]) @ np.linalg.inv(S).T   # [N, 3]
    w = np.zeros((k.shape[0], psi.shape[-1]))
    for i, kk in enumerate(k):
        sel = np.all(np.abs(_wrap(kp - kk[None, :])) < 1e-8, axis=1)
        w[i] = power[sel].sum(axis=0)
    return w


def paw_weights(coefficients, cross_overlap, bloch_sums, reference_overlap) -> np.ndarray:
    """W_N(k) in the PAW/LCAO form of Eq. S28; float [n_k, n_states].

    coefficients       complex [n_basis, n_states]: c_N, generalized eigenvectors of H(R) c = ε S(R) c
                       with c† S(R) c = 1 (LCAO basis at the configuration R)
    cross_overlap      complex [n_basis, n_basis]: X = ⟨Φ̃(R⁽⁰⁾)|T̂†T̂|Φ̃(R)⟩ (rows at R⁽⁰⁾)
    bloch_sums         sequence of n_k complex [n_basis, n_orb]: B_k, the primitive Bloch sums of the
                       reference orbitals at each k
    reference_overlap  complex [n_basis, n_basis]: S⁰ = S(R⁽⁰⁾) at the same K

    The reference Bloch space of k is spanned by the functions T̂|Φ̃(R⁽⁰⁾)⟩B_k, with Gram matrix
    G_k = B_k†S⁰B_k; the projection of the all-electron state T̂|ψ̃_N⟩ on it has the norm
    W_N(k) = a_k† G_k⁻¹ a_k, a_k = B_k† X c_N (the overlaps with the spanning functions). The
    paper's ⟨k + G̃(R⁽⁰⁾)|T̂†(R⁽⁰⁾)T̂(R)|ψ̃⟩ with plane waves replaced by the reference basis.
    At R = R⁽⁰⁾ (X = S⁰, S⁰ block-diagonal in k) the weights sum to c†S⁰c = 1 over the folded k;
    for R ≠ R⁽⁰⁾, Σ_k W_N(k) ≤ 1 measures the part of ψ_N the reference basis holds.
    """
    from scipy.linalg import cho_factor, cho_solve
    xc = np.asarray(cross_overlap) @ np.asarray(coefficients)                   # [n_basis, n_states]
    s0 = np.asarray(reference_overlap)
    w = np.zeros((len(bloch_sums), xc.shape[1]))
    for i, b in enumerate(bloch_sums):
        a = b.conj().T @ xc                                                     # [n_orb, n_states]
        g = cho_factor(b.conj().T @ s0 @ b)
        w[i] = np.real(np.sum(a.conj() * cho_solve(g, a), axis=0))
    return w


def grid_is_commensurate(grid_shape, supercell_matrix) -> bool:
    """True when the grid maps onto itself under primitive translations (see :func:`plane_wave_weights`)."""
    S_inv_T = np.linalg.inv(np.asarray(supercell_matrix, float)).T
    steps = np.diag(np.asarray(grid_shape, float)) @ S_inv_T
    return bool(np.all(np.abs(_wrap(steps)) < 1e-8))


def unfolding_weights(model, vectors, kpoint, kpoints_frac, positions_av=None) -> np.ndarray:
    """W_N(k) of the supercell states ``vectors`` of ``model`` at K = ``kpoint``; float [n_k, n_states].

    Tight-binding models (orbitals on sites) use :func:`site_weights`, the grid model
    :func:`plane_wave_weights`, the GPAW model at path K-points
    (:class:`spia_mpi.models.gpaw_path.GpawPathModel`) :func:`paw_weights` with the cross
    overlap of the configuration ``positions_av`` (Å; required there); other models raise
    :class:`InputError`.
    """
    from spia_mpi.models.gpaw_path import GpawPathModel
    from spia_mpi.models.grid import GridModel
    from spia_mpi.models.tightbinding import TightBindingModel
    if isinstance(model, GpawPathModel):
        k = _check_folding(model.supercell_matrix, kpoint, kpoints_frac)
        pos = model.reference_positions if positions_av is None else positions_av
        return paw_weights(vectors, model.cross_overlap(pos, kpoint), [model.bloch_sums(kk) for kk in k],
                           model.reference_matrices(kpoint)[1])
    if isinstance(model, GridModel):
        if not grid_is_commensurate(model.shape, model.supercell_matrix):
            raise InputError(f"the grid {list(model.shape)} of this supercell is not commensurate with the primitive "
                             f"lattice (a grid_shape set by hand?): its eigenstates have no primitive k; the grid "
                             f"model's own grid choice always is")
        return plane_wave_weights(vectors, model.shape, model.supercell_matrix, kpoint, kpoints_frac)
    if isinstance(model, TightBindingModel):
        k = _check_folding(model.supercell_matrix, kpoint, kpoints_frac)
        M = abs(int(round(np.linalg.det(model.supercell_matrix))))
        return site_weights(vectors, model.reference_positions, model.primitive_index,
                            model.primitive.cell[:], k, M)
    raise InputError(f"no band unfolding for the {type(model).__name__} model (tight binding, grid and GPAW only)")
