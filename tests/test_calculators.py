"""Model ASE calculators (spia_mpi.ions.calculators): analytic pair energies, −∇E, lattice sums, invariances."""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi import units
from spia_mpi.ions.calculators import COULOMB_EV_A, EinsteinHarmonic, YukawaPair, thomas_fermi_length
from spia_mpi.errors import InputError


#: e²/(4πε₀) = α ħc in eV·Å from CODATA 2018 (α = 7.2973525693e-3, ħc = 1973.269804 eV·Å)
E2 = 7.2973525693e-3 * 1973.269804


def _random_cell_atoms(seed=3, n=6, symbols=None):
    """A small non-orthogonal periodic cell with random positions (some outside the cell)."""
    rng = np.random.default_rng(seed)
    cell = np.array([[2.9, 0.0, 0.0], [0.7, 2.6, 0.0], [-0.4, 0.5, 3.1]])
    frac = rng.uniform(-0.3, 1.3, (n, 3))
    return Atoms(symbols or f"H{n}", scaled_positions=frac, cell=cell, pbc=True)


def _fd_forces(atoms, h=1e-5):
    f = np.zeros((len(atoms), 3))
    for a in range(len(atoms)):
        for v in range(3):
            p = atoms.positions.copy()
            p[a, v] += h
            atoms.positions = p
            ep = atoms.get_potential_energy()
            p[a, v] -= 2 * h
            atoms.positions = p
            em = atoms.get_potential_energy()
            p[a, v] += h
            atoms.positions = p
            f[a, v] = -(ep - em) / (2 * h)
    return f


def test_coulomb_constant_is_e2():
    assert COULOMB_EV_A == pytest.approx(E2, rel=1e-9)


@pytest.mark.parametrize("r", [0.3, 0.7, 1.4, 2.2])
def test_two_atom_energy_is_screened_coulomb(r):
    lam = 0.5
    calc = YukawaPair(lam, cutoff=30 * lam)              # shift terms ~ e^-30: negligible
    atoms = Atoms("H2", positions=[[0, 0, 0], [r, 0, 0]])
    atoms.calc = calc
    exact = E2 * np.exp(-r / lam) / r
    assert atoms.get_potential_energy() == pytest.approx(exact, rel=1e-9)
    # force on atom 1 = −dV/dr along +x; equal and opposite on atom 0
    f_exact = E2 * np.exp(-r / lam) * (1 / r ** 2 + 1 / (lam * r))
    f = atoms.get_forces()
    assert f[1, 0] == pytest.approx(f_exact, rel=1e-9)
    assert np.allclose(f[0], -f[1], atol=1e-14) and np.allclose(f[:, 1:], 0, atol=1e-14)


def test_charges_scale_as_z1_z2_and_core_adds():
    r, lam = 0.8, 0.6
    pos = [[0, 0, 0], [0, r, 0]]
    a = Atoms("HeLi", positions=pos)
    a.calc = YukawaPair(lam, cutoff=40 * lam)            # default charges: atomic numbers 2 and 3
    assert a.get_potential_energy() == pytest.approx(6 * E2 * np.exp(-r / lam) / r, rel=1e-9)
    b = Atoms("HeLi", positions=pos)
    b.calc = YukawaPair(lam, charges={"He": 0.5, "Li": -1.0}, cutoff=40 * lam, core=(50.0, 0.2))
    exact = -0.5 * E2 * np.exp(-r / lam) / r + 50.0 * np.exp(-r / 0.2)
    assert b.get_potential_energy() == pytest.approx(exact, rel=1e-9)
    c = Atoms("HeB", positions=pos)
    c.calc = YukawaPair(lam, charges={"He": 1.0})
    with pytest.raises(InputError, match="no charge given for species 'B'"):
        c.get_potential_energy()


def test_shifted_force_vanishes_continuously_at_cutoff():
    calc = YukawaPair(0.5, cutoff=2.0)
    eps = 1e-4
    e_in = calc.pair_energy(2.0 - eps)
    # V_sf(r_c − ε) = ½ V''(r_c) ε² + O(ε³): quadratic, not a step
    assert 0 < e_in < 1e-6 and calc.pair_energy(2.0 + eps) == 0.0
    atoms = Atoms("H2", positions=[[0, 0, 0], [2.0 - eps, 0, 0]])
    atoms.calc = calc
    bare = E2 * np.exp(-4) * (1 / 4 + 1 / (0.5 * 2))   # |V'(r_c)| = 0.33 eV/Å
    # V_sf'(r_c − ε) = −V''(r_c) ε ≈ 0.86 eV/Å² × 1e-4 Å: O(ε), far below the bare force
    assert np.abs(atoms.get_forces()).max() < 1e-3 * bare


def test_forces_are_minus_gradient_periodic_with_core():
    atoms = _random_cell_atoms(n=5)
    atoms.calc = YukawaPair(0.45, cutoff=3.5, core=(20.0, 0.15))   # r_c > cell: images of itself count
    f = atoms.get_forces().copy()
    f_fd = _fd_forces(atoms)
    assert np.abs(f - f_fd).max() < 1e-6 * max(1.0, np.abs(f).max())
    assert np.abs(f.sum(axis=0)).max() < 1e-10          # Newton's third law


def test_stress_is_strain_derivative():
    atoms = _random_cell_atoms(n=4)
    atoms.calc = YukawaPair(0.5, cutoff=3.0)
    s = atoms.get_stress()
    s_fd = atoms.calc.calculate_numerical_stress(atoms, d=1e-6)
    assert np.abs(s - s_fd).max() < 1e-6 * max(1e-3, np.abs(s).max())


def test_periodic_energy_equals_direct_lattice_sum():
    """½ Σ_{i,j,n} V_sf(|r_j − r_i + n·cell|) summed by brute force over image vectors."""
    atoms = _random_cell_atoms(seed=7, n=4)
    lam, rc = 0.6, 4.0
    calc = YukawaPair(lam, cutoff=rc)
    atoms.calc = calc
    cell, pos = atoms.cell[:], atoms.positions
    n = np.arange(-4, 5)
    shifts = np.array(np.meshgrid(n, n, n, indexing="ij")).reshape(3, -1).T @ cell
    total = 0.0
    for i in range(len(atoms)):
        for j in range(len(atoms)):
            d = np.linalg.norm(pos[j] - pos[i] + shifts, axis=1)
            d = d[d > 1e-12]
            total += 0.5 * calc.pair_energy(d).sum()
    assert np.max(np.abs(np.linalg.norm(shifts, axis=1))) > rc + 2 * 3.5   # the brute-force range is enough
    assert atoms.get_potential_energy() == pytest.approx(total, rel=1e-12)
    # move atoms far beyond the Verlet skin (a new pair list), then alternate between the two
    # configurations like PIMD beads (cached lists): always the brute-force sum
    first, e_first = atoms.positions.copy(), total
    rng = np.random.default_rng(1)
    atoms.positions = atoms.positions + rng.normal(0, 0.8, atoms.positions.shape)
    pos = atoms.positions.copy()
    total = sum(0.5 * calc.pair_energy(d[d > 1e-12]).sum()
                for i in range(len(atoms)) for j in range(len(atoms))
                for d in [np.linalg.norm(pos[j] - pos[i] + shifts, axis=1)])
    assert atoms.get_potential_energy() == pytest.approx(total, rel=1e-12)
    for p, e in ((first, e_first), (pos, total), (first + 0.3, e_first)):   # + 0.3: a translation
        atoms.positions = p
        assert atoms.get_potential_energy() == pytest.approx(e, rel=1e-12)


def test_translation_invariance():
    atoms = _random_cell_atoms(seed=5, n=6)
    atoms.calc = YukawaPair(0.5, cutoff=3.2)
    e0, f0 = atoms.get_potential_energy(), atoms.get_forces().copy()
    for t in ([0.37, -1.9, 5.3], [13.0, 0.0, -0.1]):        # crossing cell boundaries
        atoms.positions = atoms.positions + np.array(t)
        assert atoms.get_potential_energy() == pytest.approx(e0, rel=1e-12)
        assert np.abs(atoms.get_forces() - f0).max() < 1e-10


def test_thomas_fermi_length_from_density_of_states():
    # k_TF² = 4π e² N(E_F), N(E_F) = 3n/(2E_F), E_F = ħ²k_F²/2m: an independent route
    n = 0.1                                              # Å⁻³
    k_f = (3 * np.pi ** 2 * n) ** (1 / 3)
    e_f = units.HBAR2_OVER_2ME_EV_A2 * k_f ** 2
    k_tf2 = 4 * np.pi * COULOMB_EV_A * 1.5 * n / e_f
    assert thomas_fermi_length(n) == pytest.approx(1 / np.sqrt(k_tf2), rel=1e-12)
    # r_s = 1 bohr: k_TF/k_F = (4/(π k_F a₀))^{1/2} = 0.8145 (k_F a₀ = (9π/4)^{1/3})
    n1 = 3 / (4 * np.pi * units.BOHR_ANG ** 3)
    kf1 = (9 * np.pi / 4) ** (1 / 3) / units.BOHR_ANG
    assert 1 / thomas_fermi_length(n1) / kf1 == pytest.approx(0.8145, rel=1e-3)
    with pytest.raises(InputError):
        thomas_fermi_length(0.0)


def test_einstein_forces_and_energy():
    atoms = _random_cell_atoms(seed=2, n=3)
    ref = atoms.positions.copy()
    calc = EinsteinHarmonic(2.5, ref)
    atoms.calc = calc
    u = np.array([[0.1, -0.2, 0.05], [0.0, 0.3, 0.0], [-0.15, 0.0, 0.2]])
    atoms.positions = ref + u + atoms.cell[0]           # a lattice translation is the same site
    assert atoms.get_potential_energy() == pytest.approx(0.5 * 2.5 * (u ** 2).sum(), rel=1e-12)
    assert np.allclose(atoms.get_forces(), -2.5 * u, atol=1e-12)
    assert np.abs(atoms.get_forces() - _fd_forces(atoms)).max() < 1e-8


def test_bad_parameters_are_input_errors():
    for kw in ({"screening_length": 0.0}, {"screening_length": 1.0, "cutoff": -1.0},
               {"screening_length": 1.0, "core": (1.0, 0.0)}):
        with pytest.raises(InputError):
            YukawaPair(**kw)
    with pytest.raises(InputError):
        EinsteinHarmonic(0.0, np.zeros((1, 3)))
