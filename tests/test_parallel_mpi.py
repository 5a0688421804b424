"""The MPI helpers under a real 2-rank mpirun (pytest-isolate-mpi)."""
import pytest

from spia_mpi.errors import InputError, SpiaError


@pytest.mark.mpi(ranks=2)
def test_on_root_broadcasts_result_and_errors():
    from spia_mpi.parallel.mpi import on_root, world
    comm = world()
    assert comm.size == 2
    assert on_root(comm, lambda: comm.rank * 10 + 7) == 7    # rank 0's value everywhere

    def bad():
        raise InputError("input.toml: key 'gamma' must be > 0")
    with pytest.raises(InputError, match="gamma"):
        on_root(comm, bad)


@pytest.mark.mpi(ranks=2)
def test_agree_on_failure_fails_everywhere():
    from spia_mpi.parallel.mpi import agree_on_failure, world
    comm = world()
    with pytest.raises(SpiaError, match="boom on 1"):
        with agree_on_failure(comm):
            if comm.rank == 1:
                raise SpiaError("boom on 1")
    with agree_on_failure(comm):       # nobody fails: nothing raised
        pass


@pytest.mark.mpi(ranks=2)
def test_atomic_h5_parallel_write(tmp_path_factory):
    import numpy as np
    from spia_mpi.io.hdf5 import atomic_h5, open_h5, require_complete
    from spia_mpi.parallel.mpi import world
    comm = world()
    folder = comm.bcast(str(tmp_path_factory.mktemp("h5")) if comm.rank == 0 else None)
    path = f"{folder}/out.h5"
    with atomic_h5(path, comm, kind="test") as f:
        ds = f.create_dataset("x", shape=(4,), dtype="f8")
        ds[2 * comm.rank:2 * comm.rank + 2] = np.arange(2) + 2 * comm.rank
    comm.Barrier()
    with open_h5(path, "r", comm) as f:
        require_complete(f, path, "test")
        assert list(f["x"][...]) == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.mpi(ranks=2)
def test_chain_sum_and_allgather_dict():
    """chain_sum adds the terms of all ranks in chain order (bit-identical to the serial sum in
    that order) and returns the total on every rank; allgather_dict unites keyed pieces."""
    import numpy as np
    from spia_mpi.parallel.mpi import allgather_dict, chain_sum, world
    comm = world()
    rng = np.random.default_rng(5)
    terms = [(rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), k + 1)
             for k in range(5)]                    # the same draws on both ranks
    own = terms[:2] if comm.rank == 0 else terms[2:]
    s1, s2, n = chain_sum(comm, [0, 1], own, tag=7)
    e1, e2 = np.zeros((2, 3), complex), np.zeros((2, 3))
    for a, b, _ in terms:
        e1 += a
        e2 += b
    assert np.array_equal(s1, e1) and np.array_equal(s2, e2) and n == 15
    alone = chain_sum(comm, [comm.rank], own, tag=8)          # a chain of one: its own terms
    assert alone[2] == sum(t[2] for t in own)
    merged = allgather_dict({("unit", comm.rank): comm.rank * 10}, comm)
    assert merged == {("unit", 0): 0, ("unit", 1): 10}
