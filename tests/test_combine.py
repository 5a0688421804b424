"""Combining supercells: one diagonal 2×2×2 supercell and the three minimal non-diagonal
2-cell supercells covering the 2×2×2 q-grid give the same λ(m) (METHOD.md §7)."""
import json
from concurrent.futures import ThreadPoolExecutor

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
    jobs = [(f"sc{i}", s.matrix.tolist(), 10 + i) for i, s in enumerate(cover)] + [("diag", [2, 2, 2], 99)]
    with ThreadPoolExecutor(2) as pool:             # four independent 1-rank runs, two side by side
        *files, diag = pool.map(lambda job: run_supercell(spia_cli, tmp_path, *job), jobs)
    comb = combine(files, prim, (2, 2, 2))
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


GRID = """
[model]
kind = "grid"
[model.grid]
structure = "hydrogen-sc"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 1, 1]
{kpoints}
[configurations.einstein]
hbar_omega_ev = 0.02
n_samples = 16
n_beads = 8
seed = 5
[spia]
states_per_k = 1
gamma_ev = [0.5, 1.0]
n_blocks = 4
{fermi}
[eliashberg]
mustar = [0.0]
[output]
file = "{out}"
plots = false
"""


def test_a_diagonal_run_split_into_k_point_subsets_combines_to_the_single_run(tmp_path, spia_cli):
    """A 2×1×1 supercell of dense hydrogen (grid model) on the 4×2×1 k-grid (4 K-points), run
    once and split into jobs of 1 and 3 K-points (same configurations, same ε_F): `combine` of
    the parts on the supercell's own 2×1×1 q-grid gives the single run's λ(m), replicas, errors
    and T_c ± σ; `tc` and `plot` read the combined file like a run's."""
    import h5py

    from spia_mpi.commands.run import build_model
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.lattice.supercells import supercell_kgrid
    from spia_mpi.models.grid import fermi_level_of_reference
    Ks = supercell_kgrid([2, 1, 1], [4, 2, 1])
    assert len(Ks) == 4
    probe = tmp_path / "probe.toml"
    probe.write_text(GRID.format(kpoints="", fermi="", out="x.h5"))
    ef = fermi_level_of_reference(build_model(*load_run_input(probe)), Ks, 300.0)
    order = np.random.default_rng(3).permutation(4)             # any split, K order scrambled
    jobs = {"full": "kgrid = [4, 2, 1]", "a": f"kpoints = {Ks[order[:1]].tolist()}",
            "b": f"kpoints = {Ks[order[1:]].tolist()}"}
    for name, kp in jobs.items():
        (tmp_path / f"{name}.toml").write_text(GRID.format(kpoints=kp, fermi=f"fermi_level_ev = {ef!r}",
                                                           out=f"{name}.h5"))
    with ThreadPoolExecutor(2) as pool:             # independent 1-rank runs, two side by side
        for r in pool.map(lambda name: spia_cli(["-q", "run", tmp_path / f"{name}.toml"]), jobs):
            assert r.returncode == 0, r

    def combine(*names, out):
        return spia_cli(["combine", "--structure", "hydrogen-sc", "--qgrid", 2, 1, 1,
                         *[tmp_path / n for n in names], "--out", tmp_path / out])
    r = combine("a.h5", "b.h5", out="comb.h5")
    assert r.returncode == 0, r
    assert "T_c = " in r.stdout and " ± " in r.stdout, r
    r = combine("full.h5", out="single.h5")
    assert r.returncode == 0, r
    with h5py.File(tmp_path / "full.h5") as f, h5py.File(tmp_path / "comb.h5") as c, \
            h5py.File(tmp_path / "single.h5") as one:
        assert c.attrs["spia_mpi_file"] == "results" and c.attrs["complete"]
        # the oracle: the single run's pair sums over all 8 k, λ = −(M/N_q) Σ_q P_q / N_γ, M = N_q = 2
        # times the run's finite-bead correction f(m)
        n_gamma = f["lambda/n_gamma_per_cell"][...] * 8
        fm = f["lambda/bead_correction_factor"][...]
        lam = -f["lambda_q/pair_sums"][...].sum(axis=1) / n_gamma[:, None] * fm
        n_gamma_jk = f["lambda/n_gamma_per_cell_jackknife"][...] * 8               # each replica's own N_γ
        reps = -f["lambda_q/pair_sums_jackknife"][...].sum(axis=2) / n_gamma_jk[:, :, None] * fm
        np.testing.assert_allclose(c["lambda/lambda_m"][...], lam, rtol=1e-12)
        np.testing.assert_allclose(c["lambda/lambda_m_jackknife"][...], reps, rtol=1e-12)
        for name in ("lambda_m", "lambda_m_error", "lambda_m_jackknife"):     # = the single run's own
            np.testing.assert_allclose(c[f"lambda/{name}"][...], f[f"lambda/{name}"][...], rtol=1e-10, err_msg=name)
        n_b = reps.shape[0]
        np.testing.assert_allclose(c["lambda/lambda_m_error"][...],
                                   np.sqrt((n_b - 1) / n_b * ((reps - reps.mean(0)) ** 2).sum(0)), rtol=1e-10)
        for name in ("lambda/lambda_m", "lambda/lambda_m_error", "lambda/lambda_m_jackknife",
                     "eliashberg/tc_K", "eliashberg/tc_K_error"):
            np.testing.assert_allclose(c[name][...], one[name][...], rtol=1e-9, atol=1e-14, err_msg=name)
        tc, tc_err = c["eliashberg/tc_K"][...], c["eliashberg/tc_K_error"][...]
        assert np.all(tc > 1) and np.all(np.isfinite(tc_err)) and np.all(tc_err > 0), (tc, tc_err)
        # λ_q on the full grid sums to λ(m); every dataset has units
        np.testing.assert_allclose(c["lambda_q/lambda_qm"][...].sum(axis=1), c["lambda/lambda_m"][...],
                                   rtol=1e-12)
        missing = []
        c.visititems(lambda n, o: missing.append(n) if isinstance(o, h5py.Dataset) and "units" not in o.attrs
                     else None)
        assert not missing
        # provenance of both input runs
        runs = [c["combine"][k].attrs for k in sorted(c["combine"])]
        assert [x["path"] for x in runs] == [str((tmp_path / n).resolve()) for n in ("a.h5", "b.h5")]
        assert all(len(x["sha256"]) == 64 and "git_commit" in x["provenance"] for x in runs)
    # tc and plot read the combined file like a run's
    t = spia_cli(["tc", "--lambda", tmp_path / "comb.h5", "--gamma", 1.0, "--mustar", 0.0, "--json"])
    assert t.returncode == 0, t
    o = json.loads(t.stdout)
    assert abs(o["tc_K"][0] - tc[1, 0]) < 1e-6 * tc[1, 0]
    assert abs(o["tc_K_error"][0] - tc_err[1, 0]) < 1e-6 * tc_err[1, 0]
    p = spia_cli(["plot", tmp_path / "comb.h5", "--out", tmp_path / "figs"])
    assert p.returncode == 0 and (tmp_path / "figs" / "lambda_m.png").exists(), p
    # the output is not overwritten unless asked; overlapping K sets are refused
    again = combine("a.h5", "b.h5", out="comb.h5")
    assert again.returncode != 0 and "--force" in again.stderr, again
    both = combine("a.h5", "full.h5", out="x.h5")
    assert both.returncode != 0 and "disjoint" in both.stderr, both


def _synthetic_run(name, matrix, n_blocks, rng, fermi=0.0):
    """A SupercellRun on the 2×2×2 k-grid with random pair sums (2 γ, 3 m) and a known N_γ."""
    from spia_mpi.engine.combine import SupercellRun
    from spia_mpi.lattice import supercells as sc
    S = sc.as_supercell_matrix(matrix)
    M = int(round(abs(np.linalg.det(S))))
    q = sc.folded_kpoints(S, [0, 0, 0])
    grid = np.array(np.meshgrid(*[np.arange(2)] * 3, indexing="ij")).reshape(3, -1).T / 2
    jk = rng.normal(-1.0, 0.05, (n_blocks, 2, M, 3))
    return SupercellRun(name, q, jk.mean(0) + rng.normal(0, 0.01, (2, M, 3)), jk, M, S, grid,
                        np.array([0.5, 1.0]), np.array([2.0, 3.0]), fermi, 300.0, 4)


def test_replicas_of_independent_supercells_combine_in_quadrature():
    """Three 2-cell supercells covering the 2×2×2 q-grid, with 5, 8 and 11 blocks: λ(m) is the
    star-weighted sum −(M/N_q) P_q/N_γ (computed here from the pair sums), and the delete-one
    formula over the combined replicas gives the quadrature sum of the supercells' jackknife
    errors; a split supercell whose parts disagree on ε_F is refused."""
    from spia_mpi.engine.combine import combine
    from spia_mpi.engine.stats import jackknife_error
    from spia_mpi.errors import InputError
    from spia_mpi.lattice import supercells as sc
    from spia_mpi.models.tightbinding import holstein_cubic
    prim = holstein_cubic(np.eye(3, dtype=int), 1.0, 1.0, 0.3).primitive
    qg = sc.irreducible_qgrid(prim, (2, 2, 2))
    cover = sc.covering_supercells(prim, qg)
    rng = np.random.default_rng(11)
    runs = [_synthetic_run(f"r{i}", s.matrix, nb, rng) for i, (s, nb) in enumerate(zip(cover, (5, 8, 11)))]
    comb = combine(runs, prim, (2, 2, 2))
    expect, var = np.zeros((2, 3)), np.zeros((2, 3))
    contrib = {r.path: 0 for r in runs}               # each run's replicas of its share of λ
    for i, w in enumerate(qg.weights):
        star = qg.qpoints[qg.rep == i]
        r, j = next((r, j) for r in runs for j, q in enumerate(r.qpoints_frac)
                    if any(np.allclose((q - s) - np.round(q - s), 0) for s in star))
        expect += w * -(2 / 8) * r.pair_sums[:, j] / r.n_gamma[:, None]
        contrib[r.path] = contrib[r.path] + w * -(2 / 8) * r.pair_sums_jackknife[:, :, j] / r.n_gamma[:, None]
    for reps in contrib.values():
        var += jackknife_error(reps) ** 2
    np.testing.assert_allclose(comb.lambda_m, expect, rtol=1e-12)
    np.testing.assert_allclose(comb.lambda_m_error, np.sqrt(var), rtol=1e-12)
    assert comb.lambda_m_jackknife.shape == (24, 2, 3)
    np.testing.assert_allclose(jackknife_error(comb.lambda_m_jackknife), np.sqrt(var), rtol=1e-12)
    # two halves of one supercell's K-points with different ε_F
    a = _synthetic_run("a", cover[0].matrix, 4, rng, fermi=0.0)
    b = _synthetic_run("b", cover[0].matrix, 4, rng, fermi=0.1)
    a.kpoints_frac, b.kpoints_frac = a.kpoints_frac[:4], b.kpoints_frac[4:]
    with pytest.raises(InputError, match="same spia.fermi_level_ev"):
        combine([a, b, *runs[1:]], prim, (2, 2, 2))
