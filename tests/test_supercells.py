"""Supercells, folding and symmetry against exact conditions and spglib."""
import json

import numpy as np
import pytest
import spglib
from ase.build import bulk

from spia_mpi.lattice import supercells as sc
from spia_mpi.errors import InputError
from spia_mpi.lattice.structures import li2mgh16_solid, li2mgh16_superionic

MATRICES = [np.diag([2, 2, 2]), [[2, 0, -1], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 0], [-2, -3, 8]],
            [[-1, 1, 1], [1, -1, 1], [1, 1, -1]]]


@pytest.mark.parametrize("S", MATRICES)
def test_folded_kpoints_and_lattice_points(S):
    S = np.array(S)
    M = abs(round(np.linalg.det(S)))
    K = np.array([0.1, 0.25, -0.3])
    k = sc.folded_kpoints(S, K)
    assert k.shape == (M, 3)
    # exp(ik·L) = exp(iK·L) for every supercell lattice vector L = S_j · a
    assert np.allclose(np.exp(2j * np.pi * k @ S.T), np.exp(2j * np.pi * K)[None, :])
    # distinct modulo primitive reciprocal vectors
    assert len(np.unique(np.round(k, 8) % 1, axis=0)) == M
    n = sc.lattice_points(S)
    frac = n @ np.linalg.inv(S)
    assert n.shape == (M, 3) and np.all((frac > -1e-12) & (frac < 1 - 1e-12))
    assert len(np.unique(np.round(frac, 8), axis=0)) == M


@pytest.mark.parametrize("name,atoms", [("sc", bulk("Po", "sc", a=3.0)), ("fcc", bulk("Cu", "fcc", a=3.6)),
                                        ("bcc", bulk("Fe", "bcc", a=2.9))])
@pytest.mark.parametrize("mesh", [(4, 4, 4), (3, 3, 5), (2, 4, 6), (6, 6, 6)])
def test_irreducible_counts_match_spglib(name, atoms, mesh):
    qg = sc.irreducible_qgrid(atoms, mesh)
    mapping, _ = spglib.get_ir_reciprocal_mesh(mesh, sc.spglib_cell(atoms), is_shift=[0, 0, 0])
    assert len(qg.irreducible) == len(np.unique(mapping))
    assert qg.weights.sum() == np.prod(mesh)
    # every grid point is its representative rotated (and possibly time-reversed)
    for i, q in enumerate(qg.qpoints):
        qr = qg.irreducible_qpoints[qg.rep[i]] @ np.round(np.linalg.inv(qg.rotation[i])).astype(int)
        if qg.time_reversal[i]:
            qr = -qr
        d = qr - q
        assert np.allclose(d, np.round(d))


def assert_cover_exact(qg, cover):
    """Every reported q is commensurate (exp(2πi q·L) = 1 for the supercell vectors L = S_j·a,
    checked directly, not through sc.commensurate), lies in the star of the representative
    reported with it, and the union of the covers is every irreducible q exactly."""
    assert len(cover) >= 1
    covered = []
    for s in cover:
        assert round(abs(np.linalg.det(s.matrix))) == s.size
        assert len(s.covers) == len(s.qpoints) == len(s.representatives) >= 1
        for i, q, r in zip(s.covers, s.qpoints, s.representatives):
            phases = np.exp(2j * np.pi * (s.matrix @ q))         # q·L_j/2π = Σ_v S_jv q_v for L_j = S_j·a
            assert np.allclose(phases, 1.0, atol=1e-9), (s.matrix.tolist(), q)
            assert np.array_equal(r, qg.irreducible_qpoints[i])
            g = np.round(q * qg.mesh).astype(int) % qg.mesh   # q is a grid point of r's star
            assert np.allclose(q * qg.mesh, np.round(q * qg.mesh))
            assert qg.rep[(g[0] * qg.mesh[1] + g[1]) * qg.mesh[2] + g[2]] == i
        covered += list(s.covers)
    assert sorted(set(covered)) == list(range(len(qg.irreducible)))


@pytest.mark.parametrize("atoms,mesh", [(bulk("Cu", "fcc", a=3.6), (4, 4, 4)), (bulk("Fe", "bcc", a=2.9), (6, 6, 6)),
                                        (bulk("Po", "sc", a=3.0), (3, 3, 5)), (bulk("Cu", "fcc", a=3.6), (8, 8, 8))])
def test_cover_is_commensurate_minimal_and_complete(atoms, mesh):
    qg = sc.irreducible_qgrid(atoms, mesh)
    cover = sc.covering_supercells(atoms, qg)
    assert_cover_exact(qg, cover)
    for s in cover:
        # minimal: the size is the lcm of the reduced denominators of the hardest q (the
        # order of q in (R/Z)³ — no supercell of fewer cells can make it commensurate)
        hardest = max(sc.minimal_size(q, mesh) for q in s.qpoints)
        assert s.size == hardest


def test_cover_reports_a_fitting_star_member_not_the_representative():
    """fcc 8×8×8: for S = [[1,0,0],[0,8,0],[0,6,1]] the representative (0, 1/4, 5/8) is not
    commensurate (S·q = (0, 2, 17/8)) but its star member (0, 3/8, 3/4) is (S·q = (0, 3, 3))."""
    atoms = bulk("Cu", "fcc", a=3.6)
    qg = sc.irreducible_qgrid(atoms, (8, 8, 8))
    cover = sc.covering_supercells(atoms, qg)
    pairs = [(s.matrix.tolist(), r, q) for s in cover for q, r in zip(s.qpoints, s.representatives)
             if not np.allclose(q, r)]
    assert len(pairs) >= 1
    for S, r, q in pairs:
        assert not np.allclose(np.exp(2j * np.pi * (np.array(S) @ r)), 1.0)
        assert np.allclose(np.exp(2j * np.pi * (np.array(S) @ q)), 1.0)
    hit = [q for S, r, q in pairs if S == [[1, 0, 0], [0, 8, 0], [0, 6, 1]] and np.allclose(r, [0, 0.25, 0.625])]
    assert len(hit) == 1, pairs                    # the case of the bug report (the cover is deterministic)
    assert np.allclose(hit[0], [0, 0.375, 0.75])
    assert np.allclose(np.array([[1, 0, 0], [0, 8, 0], [0, 6, 1]]) @ hit[0] % 1, 0)


def test_diagonal_grid_trivial_answer():
    """With no symmetry (P1) every q of an n×1×1 grid needs a diagonal n-cell (or divisor) supercell."""
    from ase import Atoms
    atoms = Atoms("HHe", scaled_positions=[[0, 0, 0], [0.31, 0.17, 0.42]], cell=np.diag([2.0, 2.3, 2.7]), pbc=True)
    qg = sc.irreducible_qgrid(atoms, (4, 1, 1), time_reversal=False)
    cover = sc.covering_supercells(atoms, qg)
    assert len(qg.irreducible) == 4
    assert_cover_exact(qg, cover)                       # non-empty and covers all four q
    # q = ±1/4 need a 4-cell supercell; the only commensurate HNF of det 4 is diag(4, 1, 1)
    # (rows [4 0 0; b 1 0; d 0 1] give S·q = (1, b/4, d/4)), and it covers q = 0, 1/2 too
    assert len(cover) == 1 and np.array_equal(cover[0].matrix, np.diag([4, 1, 1]))
    assert sorted(map(tuple, np.round(cover[0].qpoints * 4).astype(int))) == [(0, 0, 0), (1, 0, 0), (2, 0, 0),
                                                                            (3, 0, 0)]


def test_li2mgh16_structures():
    solid = li2mgh16_solid()
    assert len(solid) == 38 and solid.get_chemical_formula() == "H32Li4Mg2"
    assert spglib.get_spacegroup(sc.spglib_cell(solid), symprec=1e-4) == "Fd-3m (227)"
    si = li2mgh16_superionic()
    assert len(si) == 40 and spglib.get_spacegroup(sc.spglib_cell(si), symprec=1e-4) == "Fd-3m (227)"
    assert len(li2mgh16_solid(primitive=False)) == 152
    d = solid.get_all_distances(mic=True)
    np.fill_diagonal(d, 10)
    assert d.min() > 0.9                                    # physical H–H distance at 250 GPa


def test_li2mgh16_888_cover():
    """8×8×8 grid of Fd-3m Li2MgH16: every irreducible q in supercells of 8 cells (304 atoms).
    The paper used 17 such supercells; the greedy cover needs 13."""
    atoms = li2mgh16_solid()
    qg = sc.irreducible_qgrid(atoms, (8, 8, 8), symprec=1e-4)
    cover = sc.covering_supercells(atoms, qg)
    assert len(qg.irreducible) == 29
    assert all(s.size == 8 for s in cover) and len(cover) == 13
    assert_cover_exact(qg, cover)


def check_ipi_supercell_file(path, prim, S):
    """Read an i-PI supercell file with our i-PI reader and compare with an independent
    construction: cell = S·a up to a proper rotation (CELL(abcABC) fixes only lengths and
    angles), and the atoms at fractional supercell coordinates (n + f_j)·S⁻¹ mod 1 for the
    M lattice vectors n found by brute force over a box of Z³."""
    from spia_mpi.ions.configurations import read_ipi_xyz
    pos, cells, symbols = read_ipi_xyz(path)
    cell_ref = S @ np.asarray(prim.cell[:])
    R = np.linalg.solve(cell_ref, cells[0])
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-8) and np.linalg.det(R) > 0
    M = round(abs(np.linalg.det(S)))
    Sinv = np.linalg.inv(S)
    box = np.abs(S).sum(axis=0).max()
    grid = np.array(np.meshgrid(*[np.arange(-box, box + 1)] * 3, indexing="ij")).reshape(3, -1).T
    x = grid @ Sinv
    n = grid[np.all((x > -1e-9) & (x < 1 - 1e-9), axis=1)]
    assert len(n) == M
    f = prim.get_scaled_positions()
    ref = {}
    for z, fr in zip(prim.get_chemical_symbols() * M, ((n[:, None, :] + f[None]) @ Sinv).reshape(-1, 3)):
        ref.setdefault(z, []).append(fr % 1)
    got = {}
    for z, fr in zip(symbols, pos[0] @ np.linalg.inv(cells[0])):
        got.setdefault(z, []).append(fr % 1)
    assert sorted(ref) == sorted(got)
    for z in ref:
        a, b = np.array(ref[z]), np.array(got[z])
        assert len(a) == len(b)
        d = a[:, None, :] - b[None, :, :]
        d -= np.round(d)                                   # periodic distance in fractional coordinates
        dist = np.linalg.norm(d @ cells[0], axis=-1)       # Å
        assert np.all(dist.min(axis=1) < 1e-6) and np.all(dist.min(axis=0) < 1e-6)


def test_cli_json_and_files(tmp_path, spia_cli):
    r = spia_cli(["supercells", "--structure", "li2mgh16-solid", "--qgrid", 4, 4, 4, "--json", "--out", tmp_path])
    assert r.returncode == 0, r
    o = json.loads(r.stdout)
    assert o["spacegroup"] == "Fd-3m (227)" and o["n_irreducible_q"] == len(o["irreducible_q"])
    assert sum(q["weight"] for q in o["irreducible_q"]) == 64
    irr = [q["q"] for q in o["irreducible_q"]]
    for i, s in enumerate(o["supercells"]):
        assert (tmp_path / f"supercell_{i:02d}.vasp").exists()
        assert s["n_atoms"] == 38 * s["size"]
        S = np.array(s["matrix"])
        for q, r, k in zip(s["qpoints"], s["representatives"], s["irreducible_index"], strict=True):
            assert np.allclose(np.exp(2j * np.pi * (S @ np.array(q))), 1.0, atol=1e-8)
            assert r == irr[k]
        check_ipi_supercell_file(tmp_path / f"supercell_{i:02d}.ipi.xyz", li2mgh16_solid(), S)
        # the written cell is the Minkowski-reduced form of the HNF supercell: the same lattice
        # (S·H⁻¹ integer, unimodular), right-handed, angles within [60°, 120°], no vector
        # shortened by adding or subtracting another
        H = np.array(s["hnf_matrix"])
        U = S @ np.linalg.inv(H)
        assert np.allclose(U, np.round(U), atol=1e-9) and round(abs(np.linalg.det(U))) == 1
        cell = S @ li2mgh16_solid().cell[:]
        assert np.linalg.det(cell) > 0
        import ase.io
        assert np.allclose(ase.io.read(tmp_path / f"supercell_{i:02d}.vasp").cell[:], cell, atol=1e-6)
        for a in range(3):
            for b in range(3):
                if a != b:
                    cos = cell[a] @ cell[b] / np.linalg.norm(cell[a]) / np.linalg.norm(cell[b])
                    assert abs(cos) <= 0.5 + 1e-9, (s["matrix"], a, b, cos)
                    for sign in (1, -1):
                        assert np.linalg.norm(cell[a] + sign * cell[b]) >= np.linalg.norm(cell[a]) - 1e-9
    r = spia_cli(["supercells", "--structure", "li2mgh16-solid", "--qgrid", 2, 2, 2])
    assert r.returncode == 0 and "no files written: give --out" in r.stdout, r
    r = spia_cli(["supercells", "--structure", "li2mgh16-solid", "--qgrid", 2, 2, 2, "--out", tmp_path / "s2"])
    assert r.returncode == 0 and f"written to {tmp_path / 's2'}" in r.stdout, r
    r = spia_cli(["supercells", "--structure", tmp_path / "nope.cif", "--qgrid", 2, 2, 2])
    assert r.returncode == 2 and "no such file" in r.stderr, r
    r = spia_cli(["supercells", "--structure", "li2mgh16-solid", "--qgrid", 0, 2, 2])
    assert r.returncode == 2 and "positive integers" in r.stderr, r


def test_bad_matrix():
    with pytest.raises(InputError, match="singular"):
        sc.as_supercell_matrix([[1, 0, 0], [2, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("S", MATRICES)
def test_fold_and_kgrid_cover_primitive_grid_once(S):
    S = np.array(S)
    M = abs(round(np.linalg.det(S)))
    k = np.array([0.125, 0.375, 0.625])
    K, G = sc.fold_kpoint(S, k)
    back = (K + G) @ np.linalg.inv(S).T
    assert np.allclose(back, k)
    assert any(np.allclose(kk, k) for kk in sc.folded_kpoints(S, K))
    mesh = (4, 4, 4)
    Ks = sc.supercell_kgrid(S, mesh)
    covered = np.concatenate([sc.folded_kpoints(S, K) for K in Ks])
    on_grid = [kk for kk in covered if np.allclose(kk * 4, np.round(kk * 4))]
    assert len(Ks) * M == len(covered)
    assert len(on_grid) == 64                                  # every grid point exactly once
    assert len(np.unique(np.round(np.array(on_grid), 8), axis=0)) == 64


def test_shipped_structure_files_match_builders():
    import ase.io
    from spia_mpi.lattice.structures import EXAMPLES
    from importlib import resources
    for name, build in EXAMPLES.items():
        with resources.as_file(resources.files("spia_mpi") / "data" / f"{name}.extxyz") as p:
            f = ase.io.read(p, parallel=False)
        ref = build()
        assert len(f) == len(ref) and list(f.numbers) == list(ref.numbers)
        assert np.allclose(f.cell[:], ref.cell[:]) and np.allclose(f.positions, ref.positions, atol=1e-8)


def test_conventional_cell_is_noticed_and_primitive_option_uses_spglib(tmp_path, spia_cli):
    """fcc Cu given as its 4-atom cubic cell: `supercells` says the cell is not primitive (its
    q-grid differs), and --primitive finds the 1-atom cell, whose 4×4×4 grid has the textbook
    8 irreducible points of the fcc lattice (the 4×4×4 grid of the cubic cell has 10)."""
    import ase.io
    ase.io.write(tmp_path / "cu_cubic.vasp", bulk("Cu", "fcc", a=3.6, cubic=True), format="vasp")
    plain = spia_cli(["supercells", "--structure", tmp_path / "cu_cubic.vasp", "--qgrid", 4, 4, 4])
    assert plain.returncode == 0, plain
    assert "not a primitive cell (4 atoms = 4 primitive cells of 1)" in plain.stdout and "--primitive" in plain.stdout
    assert "10 irreducible q" in plain.stdout
    r = spia_cli(["supercells", "--structure", tmp_path / "cu_cubic.vasp", "--qgrid", 4, 4, 4, "--primitive",
                  "--json"])
    assert r.returncode == 0, r
    s = json.loads(r.stdout)
    assert s["n_atoms_primitive"] == 1 and s["primitive_cell_used"] and s["note"] is None
    assert s["n_irreducible_q"] == 8
    cell = np.array(s["cell"])                                   # an fcc primitive cell: volume a³/4
    assert abs(np.linalg.det(cell)) == pytest.approx(3.6 ** 3 / 4, rel=1e-8)
    cubic = sc.irreducible_qgrid(bulk("Cu", "fcc", a=3.6, cubic=True), (4, 4, 4))
    assert len(cubic.irreducible) == 10                         # what the plain run used
