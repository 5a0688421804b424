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
