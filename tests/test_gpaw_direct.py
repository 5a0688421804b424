"""Direct (LU) PETSc resolvents, the GPAW model's default (spia_mpi/engine/direct.py).

Oracle: scipy's dense LU of a random complex pencil with a badly conditioned overlap (no GPAW) to
1e-10, for each package (MUMPS, ScaLAPACK, PETSc's sequential LU); the route's selection; a singular
matrix raises. The same solves on GPAW's zS − H (bcc Li 2×1×1 at K = 0 and ½, a 10-atom H row at Γ
and on a k-grid; 1 rank and one group of 2 ranks) are in tests/test_gpaw_sparse.py, which shares the
GPAW reference calculations.
"""
import numpy as np
import pytest

from spia_mpi.engine.resolvent import ResolventSolver, projected_resolvent_dense


def _aij(dense: np.ndarray, comm):
    """A PETSc AIJ copy of a dense matrix, rows split by PETSc over ``comm``."""
    from spia_mpi.models.gpaw import dense_to_aij
    return dense_to_aij(dense, comm)


def _random_pencil(n: int, seed: int):
    """(H, S) complex Hermitian, S positive definite with condition number ≈ 1e8 (as an overcomplete basis)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    h = (a + a.conj().T) / 2
    u, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    s = (u * np.logspace(-8, 0, n)) @ u.conj().T
    return h, (s + s.conj().T) / 2


@pytest.mark.parametrize("package", ["mumps", "scalapack", "petsc"])
def test_direct_solve_of_an_ill_conditioned_pencil_equals_lapack(package):
    """P†(zS − H)⁻¹P by each LU package = scipy's dense LU, with all columns in one MatMatSolve."""
    from spia_mpi.engine.direct import DirectSolve
    from spia_mpi.parallel.mpi import self_comm
    h, s = _random_pencil(60, 1)
    p = np.random.default_rng(2).standard_normal((60, 7)) + 0j
    z = 0.3 + 0.05j
    expect = projected_resolvent_dense(h, z, p, s)
    hp, sp = _aij(h, self_comm()), _aij(s, self_comm())
    try:
        g, info = ResolventSolver(self_comm()).solve(hp, z, p, DirectSolve(package), s_mat=sp)
    finally:
        hp.destroy(), sp.destroy()
    assert info["iterations_max"] == 1
    assert np.abs(g - expect).max() < 1e-10 * np.abs(expect).max()


def test_preonly_lu_options_take_the_direct_route_without_a_model_request():
    """resolvent_options ksp_type = preonly, pc_type = lu (any model, no DirectSolve): the same
    direct solve, = LAPACK; MUMPS unless pc_factor_mat_solver_type says otherwise."""
    from spia_mpi.parallel.mpi import self_comm
    h, s = _random_pencil(40, 3)
    p = np.random.default_rng(4).standard_normal((40, 5)) + 0j
    z = -0.2 + 0.1j
    expect = projected_resolvent_dense(h, z, p, s)
    for extra in ({}, {"pc_factor_mat_solver_type": "scalapack"}):
        hp, sp = _aij(h, self_comm()), _aij(s, self_comm())
        try:
            g, info = ResolventSolver(self_comm(), {"ksp_type": "preonly", "pc_type": "lu", **extra}).solve(
                hp, z, p, None, s_mat=sp)
        finally:
            hp.destroy(), sp.destroy()
        assert info["iterations_max"] == 1
        assert np.abs(g - expect).max() < 1e-10 * np.abs(expect).max()


def test_direct_route_is_chosen_by_the_model_or_by_petsc_options():
    """package_for: the model's DirectSolve with pc_type auto/model, or preonly + lu; else Krylov."""
    from spia_mpi.engine.direct import DirectSolve, package_for
    from spia_mpi.errors import InputError
    auto = ResolventSolver.defaults
    assert package_for(auto, DirectSolve()) == "mumps"
    assert package_for({**auto, "pc_type": "model"}, DirectSolve("scalapack")) == "scalapack"
    assert package_for({**auto, "pc_factor_mat_solver_type": "scalapack"}, DirectSolve()) == "scalapack"
    assert package_for(auto, None) is None
    assert package_for({**auto, "pc_type": "jacobi"}, DirectSolve()) is None        # the user's Krylov choice
    assert package_for({**auto, "pc_type": "lu"}, None) is None                     # GMRES with an LU preconditioner
    assert package_for({**auto, "ksp_type": "preonly", "pc_type": "lu"}, None) == "mumps"
    with pytest.raises(InputError, match="superlu"):
        package_for({**auto, "pc_factor_mat_solver_type": "superlu"}, DirectSolve())


@pytest.mark.parametrize("package", ["mumps", "scalapack", "petsc"])
def test_singular_matrix_raises_a_convergence_error(package):
    """A singular zS − H (z on an eigenvalue): ConvergenceError from a failed factorisation or from the
    residual check — never numbers."""
    from spia_mpi.engine.direct import DirectSolve
    from spia_mpi.errors import ConvergenceError
    from spia_mpi.parallel.mpi import self_comm
    h = np.diag([1.0, 2.0, 3.0, 4.0]) + 0j
    hp, sp = _aij(h, self_comm()), _aij(np.eye(4) + 0j, self_comm())
    try:
        with pytest.raises(ConvergenceError, match=package):
            ResolventSolver(self_comm()).solve(hp, 2.0, np.ones((4, 2)) + 0j, DirectSolve(package), s_mat=sp)
    finally:
        hp.destroy(), sp.destroy()
