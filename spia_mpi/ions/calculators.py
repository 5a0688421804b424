"""Model ASE calculators for PIMD demos and tests.

``YukawaPair``: the screened-Coulomb (Yukawa) pair potential of ions in a
degenerate electron gas, a minimal model of dense hydrogen-like metals::

    V_ij(r) = Z_i Z_j e² exp(−r/λ_s) / r   [+ A exp(−r/ρ), optional Born–Mayer core]

with e² = 14.3996 eV·Å (Hartree · Bohr), λ_s the screening length (Å) — by
default the Thomas–Fermi length of the valence electrons, see
:func:`thomas_fermi_length` — and Z the ionic charges. The pair potential is
*shifted-force* truncated at the cutoff r_c,

    V_sf(r) = V(r) − V(r_c) − (r − r_c) V'(r_c)   (r < r_c),   0 otherwise,

so energy and force both go continuously to zero at r_c (no impulses in MD).
Periodic images are summed with :func:`ase.neighborlist.neighbor_list` (kept as a
Verlet list with a skin), so r_c may exceed the cell size. Like charges repel, so a one-component Yukawa system
in a fixed periodic cell (NVT) is stable without the optional core term; the
core is there for models with opposite charges.

``EinsteinHarmonic``: every atom tethered to its reference site,
E = ½ κ Σ_a |r_a − r_a⁰|² (minimum image in periodic cells); the exactly
solvable model used to validate PIMD against the harmonic oracle
(:mod:`spia_mpi.ions.configurations`).

Units (ASE): energy eV, forces eV/Å, stress eV/Å³, lengths Å.
"""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from spia_mpi import units
from spia_mpi.errors import InputError

#: e²/(4πε₀) in eV·Å (Hartree × Bohr = 14.3996…).
COULOMB_EV_A = units.COULOMB_EV_A


def thomas_fermi_length(electron_density_a3: float) -> float:
    """Thomas–Fermi screening length λ_TF (Å) of a free-electron gas of density n (Å⁻³).

    k_TF² = 4 k_F/(π a₀), k_F = (3π² n)^{1/3}, λ_TF = 1/k_TF.
    """
    if not electron_density_a3 > 0:
        raise InputError(f"electron density {electron_density_a3} Å⁻³ must be positive")
    k_f = (3 * np.pi ** 2 * electron_density_a3) ** (1 / 3)
    return float(1.0 / np.sqrt(4 * k_f / (np.pi * units.BOHR_ANG)))


class YukawaPair(Calculator):
    """Screened-Coulomb pair potential (see the module docstring).

    Parameters
    ----------
    screening_length : float
        λ_s in Å (> 0).
    charges : dict | None
        Ionic charge Z per chemical symbol (e.g. ``{"H": 1.0}``); None: the atomic
        number of each atom (bare nuclei, right for hydrogen).
    cutoff : float | None
        r_c in Å; None: 8 λ_s (e^{−8} ≈ 3·10⁻⁴ of the bare value is dropped).
    core : tuple(float, float) | None
        Optional Born–Mayer repulsion (A in eV, ρ in Å) added to every pair.
    skin : float
        Verlet skin (Å): pairs within r_c + skin are listed by
        :func:`ase.neighborlist.neighbor_list` and reused while no atom is more than
        skin/2 from where the list was built (same cell and species). Up to
        ``max_pair_lists`` lists are kept (one per PIMD bead). Only affects speed.

    Implements ``energy`` (eV), ``forces`` (eV/Å, float [n_atoms, 3]) and
    ``stress`` (eV/Å³, Voigt 6; periodic cells only).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    nolabel = True
    max_pair_lists = 64

    def __init__(self, screening_length: float, charges: dict | None = None,
                 cutoff: float | None = None, core: tuple | None = None, skin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not screening_length > 0:
            raise InputError(f"YukawaPair: screening length {screening_length} Å must be positive")
        self.screening_length = float(screening_length)
        self.cutoff = float(cutoff) if cutoff is not None else 8.0 * self.screening_length
        if not self.cutoff > 0:
            raise InputError(f"YukawaPair: cutoff {cutoff} Å must be positive")
        self.charges = None if charges is None else {str(k): float(v) for k, v in charges.items()}
        if core is not None:
            a, rho = (float(x) for x in core)
            if a < 0 or not rho > 0:
                raise InputError(f"YukawaPair: core (A, ρ) = {core} needs A ≥ 0 eV and ρ > 0 Å")
            core = (a, rho)
        self.core = core
        if not skin >= 0:
            raise InputError(f"YukawaPair: skin {skin} Å must be ≥ 0")
        self.skin = float(skin)
        # Verlet lists (i, j, S, positions, cell, pbc, numbers), most recently used first: several,
        # because PIMD evaluates the beads of one ring polymer in turn with the same calculator
        self._pair_lists = []

    # -- the radial functions -------------------------------------------------
    def _v_dv(self, r, zz):
        """Bare V(r) (eV) and dV/dr (eV/Å) for pair charge products zz."""
        ls = self.screening_length
        e = np.exp(-r / ls)
        v = COULOMB_EV_A * zz * e / r
        dv = -v * (1.0 / r + 1.0 / ls)
        if self.core is not None:
            a, rho = self.core
            c = a * np.exp(-r / rho)
            v = v + c
            dv = dv - c / rho
        return v, dv

    def pair_energy(self, r, z1: float = 1.0, z2: float = 1.0):
        """Shifted-force pair energy V_sf(r) in eV (r in Å; array or scalar)."""
        r = np.asarray(r, float)
        v, dv = self._v_dv(r, z1 * z2)
        vc, dvc = self._v_dv(self.cutoff, z1 * z2)
        return np.where(r < self.cutoff, v - vc - (r - self.cutoff) * dvc, 0.0)

    def _atom_charges(self, atoms):
        if self.charges is None:
            return atoms.numbers.astype(float)
        try:
            return np.array([self.charges[s] for s in atoms.get_chemical_symbols()])
        except KeyError as exc:
            raise InputError(f"YukawaPair: no charge given for species {exc} "
                             f"(charges: {self.charges})") from None

    def _pair_vectors(self, atoms):
        """(i, j, D_ij = r_j − r_i + S·cell) for all pairs within r_c + skin (Verlet list)."""
        from ase.neighborlist import neighbor_list
        pos, cell = atoms.positions, atoms.cell[:]

        def valid(nl):
            return (nl[3].shape == pos.shape and np.array_equal(nl[4], cell)
                    and np.array_equal(nl[5], atoms.pbc) and np.array_equal(nl[6], atoms.numbers)
                    and np.max(np.linalg.norm(pos - nl[3], axis=1)) <= 0.5 * self.skin)
        hit = next((k for k, nl in enumerate(self._pair_lists) if valid(nl)), None)
        if hit is None:
            i, j, shift = neighbor_list("ijS", atoms, self.cutoff + self.skin)
            nl = (i, j, shift.astype(float), pos.copy(), cell.copy(), atoms.pbc.copy(), atoms.numbers.copy())
        else:
            nl = self._pair_lists.pop(hit)
        self._pair_lists = [nl] + self._pair_lists[:self.max_pair_lists - 1]
        i, j, shift = nl[:3]
        return i, j, pos[j] - pos[i] + shift @ cell

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        z = self._atom_charges(atoms)
        i, j, vec = self._pair_vectors(atoms)                       # both (i, j) and (j, i)
        d = np.linalg.norm(vec, axis=1)
        inside = d < self.cutoff
        i, j, vec, d = i[inside], j[inside], vec[inside], d[inside]
        zz = z[i] * z[j]
        v, dv = self._v_dv(d, zz)
        vc, dvc = self._v_dv(self.cutoff, zz)
        e_pair = v - vc - (d - self.cutoff) * dvc
        dv_sf = dv - dvc                                            # dV_sf/dr
        energy = 0.5 * float(e_pair.sum())
        # F_i = Σ_j V'_sf(d_ij) D_ij/d_ij with D_ij = r_j − r_i (each pair listed twice)
        fvec = (dv_sf / d)[:, None] * vec
        forces = np.zeros((len(atoms), 3))
        for v_ax in range(3):
            forces[:, v_ax] = np.bincount(i, weights=fvec[:, v_ax], minlength=len(atoms))
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = forces
        if "stress" in properties:
            if not all(atoms.pbc) or atoms.cell.volume < 1e-12:
                raise InputError("YukawaPair: stress needs a 3D periodic cell")
            # σ_ab = (1/2V) Σ_(i,j) V'_sf(d) D_a D_b / d
            s = 0.5 * np.einsum("p,pa,pb->ab", dv_sf / d, vec, vec) / atoms.cell.volume
            self.results["stress"] = s.flat[[0, 4, 8, 5, 2, 1]]


class EinsteinHarmonic(Calculator):
    """E = ½ κ Σ_a |r_a − r_a⁰|² (eV): independent isotropic oscillators.

    ``spring`` κ in eV/Å² (> 0); ``reference`` float [n_atoms, 3] Å (sites r⁰).
    In periodic cells the displacement is the minimum image, so it is exact for
    |u| < half the shortest cell height. Forces −κu (eV/Å). κ = MΩ² for ħΩ in eV:
    :func:`spia_mpi.ions.configurations.einstein_spring`.
    """

    implemented_properties = ["energy", "free_energy", "forces"]
    nolabel = True

    def __init__(self, spring: float, reference, **kwargs):
        super().__init__(**kwargs)
        if not spring > 0:
            raise InputError(f"EinsteinHarmonic: spring constant {spring} eV/Å² must be positive")
        self.spring = float(spring)
        self.reference = np.array(reference, dtype=float).reshape(-1, 3)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from ase.geometry import find_mic
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if len(atoms) != len(self.reference):
            raise InputError(f"EinsteinHarmonic: {len(atoms)} atoms but {len(self.reference)} reference sites")
        u = atoms.positions - self.reference
        if any(atoms.pbc):
            u, _ = find_mic(u, atoms.cell, atoms.pbc)
        energy = 0.5 * self.spring * float((u ** 2).sum())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = -self.spring * u
