"""Combining supercells: one diagonal 2×2×2 supercell and the three minimal non-diagonal
2-cell supercells covering the 2×2×2 q-grid give the same λ(m) (METHOD.md §7)."""
import json

import numpy as np
import pytest

INPUT = """
[model.holstein]
coupling_ev_per_ang = {g}
[supercell]
matrix = {matrix}
kgrid = [2, 2, 2]
[configurations.einstein]
n_samples = {n}
n_beads = 8
seed = {seed}
[spia]
gamma_ev = [0.5, 1.0]
mode = "born"
n_blocks = 8
[eliashberg]
mustar = [0.1]
[output]
file = "{out}"
plots = false
"""


def run_supercell(spia_cli, folder, name, matrix, seed, n=160, g=0.3):
    p = folder / f"{name}.toml"
    p.write_text(INPUT.format(g=g, matrix=json.dumps(matrix), n=n, seed=seed, out=f"{name}.h5"))
    r = spia_cli(["run", p])
    assert r.returncode == 0, r
    return folder / f"{name}.h5"


@pytest.mark.slow
def test_nondiagonal_supercells_reproduce_the_diagonal_one(tmp_path, spia_cli):
    import h5py

    from spia_mpi.lattice import supercells as sc
    from spia_mpi.engine.combine import combine
    from spia_mpi.models.tightbinding import holstein_cubic
    prim = holstein_cubic(np.eye(3, dtype=int), 1.0, 1.0, 0.3).primitive
    cover = sc.covering_supercells(prim, sc.irreducible_qgrid(prim, (2, 2, 2)))
    assert [s.size for s in cover] == [2, 2, 2]
    files = [run_supercell(spia_cli, tmp_path, f"sc{i}", s.matrix.tolist(), 10 + i) for i, s in enumerate(cover)]
    comb = combine(files, prim, (2, 2, 2))
    diag = run_supercell(spia_cli, tmp_path, "diag", [2, 2, 2], 99)
    with h5py.File(diag) as f:
        lam_d, err_d = f["lambda/lambda_m"][...], f["lambda/lambda_m_error"][...]
    sigma = np.sqrt(comb.lambda_m_error ** 2 + err_d ** 2)
    z = (comb.lambda_m - lam_d) / sigma
    assert np.all(np.abs(z) < 3.5), z
    assert np.all(sigma < 0.1 * lam_d)          # resolving power: a factor M/N = 1/4 error would show
    # the diagonal file combined on its own: one star member × star size instead of the
    # sum over the star — the same λ within its error bars
    one = combine([diag], prim, (2, 2, 2))
    assert np.all(np.abs(one.lambda_m - lam_d) < 3.5 * np.sqrt(one.lambda_m_error ** 2 + err_d ** 2))


def test_combine_refuses_incomplete_inputs(tmp_path, spia_cli):
    from spia_mpi.engine.combine import combine
    from spia_mpi.errors import InputError
    from spia_mpi.models.tightbinding import holstein_cubic
    prim = holstein_cubic(np.eye(3, dtype=int), 1.0, 1.0, 0.3).primitive
    f = run_supercell(spia_cli, tmp_path, "x", [[1, 0, 0], [0, 1, 0], [0, 0, 2]], 1, n=16)
    with pytest.raises(InputError, match="no results file contains the irreducible q"):
        combine([f], prim, (2, 2, 2))
    with pytest.raises(InputError, match="cover"):
        combine([f], prim, (4, 4, 4))
