"""Resolvent performance features keep the numbers: warm starts along the ring polymer,
blocks of right-hand sides, and the distributed kinetic FFT preconditioner.

Timings are not tested here (noisy on a shared machine): they are in docs/benchmarks.md
(``drivers/bench_perf.py``). These tests check that each faster path gives the same
numbers as the plain one, against independent references.
"""
import numpy as np
import pytest
from ase import Atoms

from spia_mpi.engine.resolvent import ResolventSolver, matsubara_eta, projected_resolvent_dense
from spia_mpi.engine.workflow import _ResolventEngine, compute_lambda
from spia_mpi.ions.configurations import sample_einstein_ring_polymers
from spia_mpi.models.grid import GridModel
from spia_mpi.parallel.mpi import self_comm

T = 300.0


def _hydrogen_grid_model(supercell=(1, 1, 2), grid=(6, 6, 6)):
    prim = Atoms("H2", positions=[[0, 0, 0], [0.9, 0.8, 1.1]], cell=np.diag([1.8, 1.8, 1.8]), pbc=True)
    return GridModel(prim, np.diag(supercell), grid, 4)


def _ring_polymers(model, n_conf, n_beads, seed):
    """Exact Einstein ring polymers of the H atoms (ħΩ = 0.15 eV) at 300 K, [n_conf, n_beads, n_atoms, 3] Å."""
    return sample_einstein_ring_polymers(n_conf, n_beads, model.atoms.get_masses(), 0.15, T,
                                         model.reference_positions, np.random.default_rng(seed))


def test_warm_start_same_resolvents_fewer_iterations():
    """Bead b started from bead b − 1's solution: every bead's g equals the dense LU resolvent to
    the KSP tolerance (as the cold start does), and the mean iteration count is lower."""
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 1, 8, seed=3)[0]
    K = [0.0, 0.0, 0.5]
    p = model.reference_states(K, 2).vectors
    z = 4.0 + 1j * matsubara_eta(16, T)
    dense = np.array([projected_resolvent_dense(model.hamiltonian_dense(x, K), z, p) for x in pos])
    engines = {warm: _ResolventEngine(model, "petsc", {"warm_start": warm}) for warm in (False, True)}
    for warm, engine in engines.items():
        g = engine(pos, K, z, p)
        assert np.max(np.abs(g - dense)) < 1e-9 * np.max(np.abs(dense)), warm
    cold, warm = (np.mean(engines[w].iterations) for w in (False, True))
    assert warm < cold, (warm, cold)
    assert engines[False].iterations[0] == engines[True].iterations[0]       # bead 0 starts from zero


def test_warm_start_lambda_equals_cold_and_checkpoints_reused(tmp_path):
    """λ(m) with warm starts = λ(m) with cold starts within 1e-8 relative (KSP rtol 1e-11), and a
    rerun on the warm run's checkpoint reuses every task and reproduces λ(m) bit for bit."""
    from spia_mpi.io.checkpoint import TaskStore
    model = _hydrogen_grid_model()
    pos = _ring_polymers(model, 4, 8, seed=5)
    kw = dict(n_per_k=2, gammas=(0.5, 1.0), n_blocks=2, solver="petsc", fermi_level_ev=4.0)
    cold = compute_lambda(model, pos, [[0, 0, 0]], T, solver_options={"warm_start": False}, **kw)
    store = TaskStore.open(tmp_path / "ck", 4, "warm-test")
    warm = compute_lambda(model, pos, [[0, 0, 0]], T, store=store, **kw)
    scale = np.max(np.abs(cold.lambda_m))
    assert scale > 1e-3
    assert np.max(np.abs(warm.lambda_m - cold.lambda_m)) < 1e-8 * scale
    assert warm.iterations["ksp_iterations_mean"] < cold.iterations["ksp_iterations_mean"]
    again = compute_lambda(model, pos, [[0, 0, 0]], T, store=TaskStore.open(tmp_path / "ck", 4, "warm-test"), **kw)
    assert np.array_equal(again.lambda_m, warm.lambda_m)
    assert not again.iterations                                   # nothing was solved again


def test_warm_start_option_must_be_boolean():
    from spia_mpi.errors import InputError
    with pytest.raises(InputError, match="warm_start"):
        ResolventSolver(self_comm(), {"warm_start": "yes"})
