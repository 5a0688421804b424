"""Force constants Φ of a (super)cell and its phonons ω_qν.

Φ_{aα,bβ} = ∂²E/∂u_aα∂u_bβ (eV/Å², float [3N, 3N], row index 3a + α, the layout of
:mod:`spia_mpi.ions.configurations`), from

* finite displacements of the reference structure with any force provider
  (:func:`finite_displacement_force_constants`; an ASE calculator through
  :func:`calculator_forces`), central differences
  Φ_{aα,bβ} = −[F_bβ(R⁰ + δ ê_aα) − F_bβ(R⁰ − δ ê_aα)]/(2δ);
* Einstein springs κ_a = M_a Ω² on every atom (:func:`einstein_force_constants`);
* a phonopy ``FORCE_CONSTANTS`` text file of the same supercell, atoms in the same
  order (:func:`read_phonopy_force_constants`).

The acoustic sum rule Σ_b Φ_{aα,bβ} = 0 (a rigid translation costs no energy) and
the symmetry Φ = Φᵀ are imposed together by :func:`enforce_acoustic_sum_rule`.

Phonons on the transfers q commensurate with the supercell
(:func:`phonons_at_q`): D_{pα,p'β}(q) = Σ_n Φ_{(0,p)α,(n,p')β} e^{2πi q·n}/√(M_p M_p'),
the supercell's Φ already containing every periodic image, so the ω_qν of all q
commensurate with S are exact for that Φ.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spia_mpi import units
from spia_mpi.errors import InputError


def finite_displacement_force_constants(reference_positions, forces, step_ang: float = 0.01, comm=None) -> np.ndarray:
    """Φ (eV/Å², float [3N, 3N]) by central differences of ``forces``.

    reference_positions float [N, 3] Å; ``forces(positions [N, 3]) -> float [N, 3]`` eV/Å;
    ``step_ang`` the displacement δ (Å). 6N force calls, the rows shared by the ranks of
    ``comm`` (each rank calls ``forces`` for its own rows only) and gathered on every rank.
    The raw Φ is returned (no symmetrisation: its asymmetry measures the finite-difference error).
    """
    from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, partition
    if not step_ang > 0:
        raise InputError(f"finite-displacement step {step_ang} Å must be positive")
    ref = np.asarray(reference_positions, float)
    n3 = ref.size
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    rows = {}
    with agree_on_failure(comm, "the finite-displacement forces"):
        for i in partition(n3, size, rank):
            a, alpha = divmod(i, 3)
            plus, minus = ref.copy(), ref.copy()
            plus[a, alpha] += step_ang
            minus[a, alpha] -= step_ang
            f_p = np.asarray(forces(plus), float).reshape(n3)
            f_m = np.asarray(forces(minus), float).reshape(n3)
            rows[i] = -(f_p - f_m) / (2 * step_ang)
    rows = allgather_dict(rows, comm)
    return np.array([rows[i] for i in range(n3)])


def calculator_forces(atoms, calculator):
    """A force provider positions [N, 3] (Å) → forces [N, 3] (eV/Å) from an ASE calculator."""
    work = atoms.copy()
    work.calc = calculator

    def forces(positions):
        work.set_positions(positions)
        return work.get_forces()
    return forces


def einstein_force_constants(masses_amu, hbar_omega_ev: float) -> np.ndarray:
    """Φ = diag(κ_a) with κ_a = M_a Ω² (eV/Å²), float [3N, 3N]: every atom on its own spring."""
    if not hbar_omega_ev > 0:
        raise InputError(f"Einstein ħΩ = {hbar_omega_ev} eV must be positive")
    m = np.asarray(masses_amu, float)
    kappa = m * hbar_omega_ev ** 2 / units.HBAR2_OVER_AMU_A2_EV
    return np.diag(np.repeat(kappa, 3))


def central_spring_force_constants(atoms, spring, cutoff_ang: float, onsite_ev_a2: float = 0.0) -> np.ndarray:
    """Φ (eV/Å², [3N, 3N]) of central springs k(r) (``spring(r_Å) -> eV/Å²``) between every pair of
    atoms (and periodic images) closer than ``cutoff_ang`` in ``atoms`` (ase.Atoms, periodic),
    plus an on-site spring ``onsite_ev_a2`` on every atom: V = ½ Σ_pairs k (r̂·Δu)² + ½ κ₀ Σ_a |u_a|².
    A model Φ with dispersion (tests and examples); obeys the acoustic sum rule when κ₀ = 0.
    """
    pos, cell, n = atoms.get_positions(), np.asarray(atoms.cell[:], float), len(atoms)
    reach = np.ceil(cutoff_ang * np.linalg.norm(np.linalg.inv(cell), axis=0)).astype(int) + 1
    images = np.array(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")).reshape(3, -1).T @ cell
    phi = np.zeros((n, 3, n, 3))
    for a in range(n):
        for b in range(n):
            for shift in images:
                d = pos[b] + shift - pos[a]
                r = float(np.linalg.norm(d))
                if r < 1e-9 or r > cutoff_ang:
                    continue
                block = spring(r) * np.outer(d, d) / r ** 2
                phi[a, :, b, :] -= block
                phi[a, :, a, :] += block
    return phi.reshape(3 * n, 3 * n) + onsite_ev_a2 * np.eye(3 * n)


def acoustic_sum_rule_violation(phi) -> float:
    """max_{a,α,β} |Σ_b Φ_{aα,bβ}| (eV/Å²)."""
    phi = np.asarray(phi, float)
    n = phi.shape[0] // 3
    return float(np.abs(phi.reshape(n, 3, n, 3).sum(axis=2)).max())


def enforce_acoustic_sum_rule(phi, tol: float = 1e-12, max_iter: int = 500) -> np.ndarray:
    """The nearest symmetric Φ obeying the acoustic sum rule (alternating projections).

    Alternates the orthogonal projections onto the two linear subspaces {Φ = Φᵀ} and
    {Σ_b Φ_{aα,bβ} = 0} (the latter: subtract each row block's mean over b); the iteration
    converges to the projection onto their intersection. Stops when the violation
    is below ``tol`` × max|Φ|.
    """
    phi = np.array(phi, float)
    n = phi.shape[0] // 3
    scale = np.abs(phi).max()
    for _ in range(max_iter):
        phi = 0.5 * (phi + phi.T)
        blocks = phi.reshape(n, 3, n, 3)
        blocks -= blocks.mean(axis=2, keepdims=True)
        phi = blocks.reshape(3 * n, 3 * n)
        if np.abs(phi - phi.T).max() <= tol * scale:
            return 0.5 * (phi + phi.T)
    raise InputError(f"acoustic sum rule: no symmetric Φ found in {max_iter} iterations")


def read_phonopy_force_constants(path, n_atoms: int) -> np.ndarray:
    """Φ (eV/Å², [3N, 3N]) from a phonopy FORCE_CONSTANTS text file of N atoms.

    Layout: a first line ``N`` or ``N N``, then for every pair a line ``a b`` (1-based)
    and three lines of the 3×3 block Φ_{aα,bβ}. Only the full form (N × N blocks) is
    read: the compact form (first line ``n_primitive N``) needs phonopy's atom maps. The
    atoms must be those of the supercell in the order of the model (lattice point by
    lattice point, primitive atoms in order inside each).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"force-constant file {path} does not exist")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        head = [int(x) for x in lines[0]]
    except (ValueError, IndexError):
        raise InputError(f"{path}: not a phonopy FORCE_CONSTANTS file (first line must be 'N' or 'N N')") from None
    if len(head) == 2 and head[0] != head[1]:
        raise InputError(f"{path}: compact FORCE_CONSTANTS ({head[0]} × {head[1]}) is not supported: write the full "
                         "form (phonopy --full-fc)")
    if head[-1] != n_atoms:
        raise InputError(f"{path}: force constants of {head[-1]} atoms, the supercell has {n_atoms}")
    phi = np.zeros((n_atoms, 3, n_atoms, 3))
    seen = np.zeros((n_atoms, n_atoms), bool)
    row = 1
    while row < len(lines):
        try:
            a, b = (int(x) - 1 for x in lines[row])
            block = np.array([[float(x) for x in lines[row + k]] for k in (1, 2, 3)])
        except (ValueError, IndexError, TypeError):
            raise InputError(f"{path}: bad block after line {row + 1} (expected 'a b' and three lines of 3 numbers)") \
                from None
        if block.shape != (3, 3) or not (0 <= a < n_atoms and 0 <= b < n_atoms):
            raise InputError(f"{path}: bad block for atoms {a + 1} {b + 1}")
        phi[a, :, b, :] = block
        seen[a, b] = True
        row += 4
    if not seen.all():
        a, b = np.argwhere(~seen)[0]
        raise InputError(f"{path}: no block for atoms {a + 1} {b + 1}")
    return phi.reshape(3 * n_atoms, 3 * n_atoms)


def write_phonopy_force_constants(phi, path):
    """Write Φ ([3N, 3N], eV/Å²) as a full phonopy FORCE_CONSTANTS text file."""
    phi = np.asarray(phi, float)
    n = phi.shape[0] // 3
    blocks = phi.reshape(n, 3, n, 3)
    with open(path, "w") as fh:
        fh.write(f"{n} {n}\n")
        for a in range(n):
            for b in range(n):
                fh.write(f"{a + 1} {b + 1}\n")
                for alpha in range(3):
                    fh.write(" ".join(f"{x:22.15e}" for x in blocks[a, alpha, b]) + "\n")


def phonons_at_q(phi, masses_amu, lattice_points, lattice_index, primitive_index, qpoints_frac):
    """ħω_qν (eV) on primitive-reduced q commensurate with the supercell: float [n_q, 3 n_prim].

    phi [3N, 3N] eV/Å² of the supercell; masses_amu [N]; ``lattice_points`` int [M, 3]
    (:func:`spia_mpi.lattice.supercells.lattice_points`); ``lattice_index`` and
    ``primitive_index`` int [N] (:func:`~spia_mpi.lattice.supercells.build_supercell`).
    An imaginary mode is returned as a negative ħω (−|ω|).
    """
    phi = np.asarray(phi, float)
    masses = np.asarray(masses_amu, float)
    lattice_index = np.asarray(lattice_index)
    primitive_index = np.asarray(primitive_index)
    n_prim = int(primitive_index.max()) + 1
    home = np.flatnonzero(lattice_index == lattice_index[0])            # atoms of one primitive cell
    blocks = phi.reshape(masses.size, 3, masses.size, 3)
    out = []
    for q in np.atleast_2d(qpoints_frac):
        d = np.zeros((n_prim, 3, n_prim, 3), dtype=complex)
        for a in home:
            p = primitive_index[a]
            for b in range(masses.size):
                n_rel = lattice_points[lattice_index[b]] - lattice_points[lattice_index[a]]
                phase = np.exp(2j * np.pi * (q @ n_rel))
                d[p, :, primitive_index[b], :] += blocks[a, :, b, :] * phase / np.sqrt(masses[a] * masses[b])
        d = d.reshape(3 * n_prim, 3 * n_prim)
        w2 = np.linalg.eigvalsh(0.5 * (d + d.conj().T)) * units.HBAR2_OVER_AMU_A2_EV
        out.append(np.sign(w2) * np.sqrt(np.abs(w2)))
    return np.array(out)
