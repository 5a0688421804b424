"""SLEPc band eigenpairs = dense; tight-binding bands = cosine bands; free-electron Fermi level."""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.models import bands
from spia_mpi.models.grid import GridModel
from spia_mpi.models.tightbinding import holstein_cubic
from spia_mpi.units import HBAR2_OVER_2ME_EV_A2


def test_slepc_equals_dense_grid_model():
    prim = Atoms("LiH", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.diag([2.2] * 3), pbc=True)
    m = GridModel(prim, np.diag([1, 1, 2]), (6, 6, 6), 4)
    e_s, v_s = bands.lowest_eigenpairs(m, [0.1, 0.0, 0.25], 6)
    e_d, _ = bands.lowest_eigenpairs(m, [0.1, 0.0, 0.25], 6, method="dense")
    assert np.allclose(e_s, e_d, atol=1e-8)
    H = m.hamiltonian_dense(m.reference_positions, [0.1, 0.0, 0.25])
    assert np.allclose(H @ v_s, v_s * e_s[None, :], atol=1e-6)


def test_tight_binding_cosine_bands_and_half_filling():
    m = holstein_cubic(np.diag([4, 4, 4]), 1.0, 1.0, 0.0)
    e, _ = bands.lowest_eigenpairs(m, [0, 0, 0], 64, method="dense")
    k = np.array(np.meshgrid(*[np.arange(4) / 4] * 3, indexing="ij")).reshape(3, -1).T
    assert np.allclose(np.sort(e), np.sort(-2 * np.cos(2 * np.pi * k).sum(axis=1)), atol=1e-12)
    assert bands.fermi_level(e, 32, 300.0) == pytest.approx(0.0, abs=1e-9)   # particle-hole symmetric


@pytest.mark.mpi(ranks=2)
def test_slepc_two_ranks():
    from spia_mpi.parallel.mpi import world
    m = holstein_cubic(np.diag([6, 6, 6]), 1.0, 1.0, 0.3)
    e2, _ = bands.lowest_eigenpairs(m, [0.0, 0.0, 0.0], 5, comm=world())
    e1, _ = bands.lowest_eigenpairs(m, [0.0, 0.0, 0.0], 5, method="dense")
    assert np.allclose(e2, e1, atol=1e-8)


def test_free_electron_fermi_level():
    """Empty-lattice electron gas: ε_F → ħ²k_F²/2m with k_F = (3π²n)^{1/3} (grid 8 per Å·2)."""
    prim = Atoms("H", positions=[[0, 0, 0]], cell=np.diag([2.0] * 3), pbc=True)
    m = GridModel(prim, np.diag([2, 2, 2]), (8, 8, 8), 8, pseudopotentials={"H": {"Z": 1.0, "rc": 0.0, "qs": 1e-6}})
    ev = np.concatenate([bands.lowest_eigenpairs(m, K, 12, method="slepc")[0]
                         for K in [[0, 0, 0], [0.5, 0.5, 0.5]]])
    ef = bands.fermi_level(ev, 0.5 * m.n_electrons * 2, 300.0)
    kf = (3 * np.pi ** 2 * 1 / 8.0) ** (1 / 3)
    # a 2×2×2 supercell with 2 K-points is a coarse Fermi sphere: 15 % is the discreteness of the shells
    assert ef == pytest.approx(HBAR2_OVER_2ME_EV_A2 * kf ** 2, rel=0.15)


def test_slepc_options_prefix_and_clean_failure():
    """PETSc options under the prefix ``spia_bands_`` reach the EPS: one restart with
    tol 1e-14 cannot converge all 6 pairs → ConvergenceError; the objects of the failed solve
    are destroyed (finally) and the next solve, with the option removed, is exact again."""
    from spia_mpi.errors import ConvergenceError
    from spia_mpi.parallel import stack
    opts = stack.petsc().Options()
    m = holstein_cubic(np.diag([6, 6, 6]), 1.0, 1.0, 0.3)
    opts.setValue("spia_bands_eps_max_it", 1)
    try:
        with pytest.raises(ConvergenceError, match=r"converged \d of 6"):
            bands.lowest_eigenpairs(m, [0.0, 0.0, 0.0], 6, tol=1e-14)
    finally:
        opts.delValue("spia_bands_eps_max_it")
    e, _ = bands.lowest_eigenpairs(m, [0.0, 0.0, 0.0], 6)
    assert np.allclose(e, bands.lowest_eigenpairs(m, [0.0, 0.0, 0.0], 6, method="dense")[0], atol=1e-8)
