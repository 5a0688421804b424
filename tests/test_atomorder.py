"""Species grouped in the files `supercells` writes (the POSCAR convention), and trajectories in
that order read back in the model's atom order (spia_mpi.ions.atomorder)."""
import json

import ase.io
import numpy as np
import pytest

from spia_mpi.errors import InputError
from spia_mpi.lattice import supercells as sc
from spia_mpi.lattice.structures import li2mgh16_solid


def _model_index(model_atoms, atoms, tol=1e-6):
    """For every atom of ``atoms``, the model atom of the same species on the same site (lattice
    translations of the common cell allowed): an exact-position oracle, independent of the matcher."""
    inv = np.linalg.inv(model_atoms.cell[:])
    idx = []
    for z, p in zip(atoms.numbers, atoms.positions):
        d = (model_atoms.positions - p) @ inv
        d -= np.round(d)
        hit = np.flatnonzero((np.abs(d).max(axis=1) < tol) & (model_atoms.numbers == z))
        assert len(hit) == 1
        idx.append(int(hit[0]))
    return np.array(idx)


def test_supercells_write_species_grouped_files(tmp_path, spia_cli):
    """`supercells --out` writes POSCARs with one species line (Li Mg H, in the primitive cell's
    order) and counts 4M, 2M, 32M for an M-cell supercell (38-atom primitive cell); the extxyz and i-PI files hold the
    same grouped order; the atoms are exactly the model supercell's (same sites, permuted)."""
    r = spia_cli(["supercells", "--structure", "li2mgh16-solid", "--qgrid", 2, 2, 2, "--json", "--out", tmp_path])
    assert r.returncode == 0, r
    prim = li2mgh16_solid()
    for i, s in enumerate(json.loads(r.stdout)["supercells"]):
        M = s["size"]
        lines = (tmp_path / f"supercell_{i:02d}.vasp").read_text().splitlines()
        assert lines[5].split() == ["Li", "Mg", "H"], lines[5]
        assert list(map(int, lines[6].split())) == [4 * M, 2 * M, 32 * M], lines[6]
        poscar = ase.io.read(tmp_path / f"supercell_{i:02d}.vasp")
        ext = ase.io.read(tmp_path / f"supercell_{i:02d}.extxyz")
        assert poscar.get_chemical_symbols() == ext.get_chemical_symbols()
        from spia_mpi.ions.configurations import read_ipi_xyz
        assert read_ipi_xyz(tmp_path / f"supercell_{i:02d}.ipi.xyz")[2] == poscar.get_chemical_symbols()
        model, _, _ = sc.build_supercell(prim, np.array(s["matrix"]))
        idx = _model_index(model, poscar)
        assert sorted(idx) == list(range(len(model)))


def test_grouped_pimd_frames_are_read_back_in_the_model_order(tmp_path):
    """A PIMD trajectory in the POSCAR's grouped order (3 configurations × 2 beads, thermal
    displacements up to ≈ 0.35 Å), written per bead and read like `sample convert` does, comes
    back from atomorder.to_model_order with every atom where the model order puts it (the
    permutation known independently from the exact sites), masses and species along."""
    from spia_mpi.ions.atomorder import to_model_order
    from spia_mpi.ions.configurations import read_trajectories
    prim = li2mgh16_solid()
    model, _, _ = sc.build_supercell(prim, np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]]))
    grouped = sc.species_grouped(model)
    assert not np.array_equal(grouped.numbers, model.numbers)                  # really another order
    idx = _model_index(model, grouped)                                          # grouped atom j = model atom idx[j]
    rng = np.random.default_rng(3)
    sigma = np.where(model.numbers == 1, 0.12, 0.04)[None, None, :, None]
    want = model.positions[None, None] + sigma * rng.standard_normal((3, 2, len(model), 3))
    files = []
    for b in range(2):
        frames = []
        for c in range(3):
            a = grouped.copy()
            a.positions = want[c, b, idx]
            frames.append(a)
        files.append(str(tmp_path / f"bead{b}.extxyz"))
        ase.io.write(files[-1], frames, format="extxyz")
    conf = read_trajectories(files, 300.0, 1.0, fmt="extxyz")
    assert np.array_equal(conf.numbers, grouped.numbers)
    back = to_model_order(conf, model, model.positions)
    assert np.array_equal(back.numbers, model.numbers)
    np.testing.assert_allclose(back.masses, model.get_masses())
    np.testing.assert_allclose(back.positions, want, atol=1e-6)
    assert to_model_order(back, model, model.positions) is back                # already in order: unchanged


def test_other_species_are_refused():
    from spia_mpi.ions.atomorder import model_permutation
    prim = li2mgh16_solid()
    z = prim.numbers.copy()
    z[0] = 12                                                                   # one Li made Mg
    with pytest.raises(InputError, match="differ from the model supercell"):
        model_permutation(prim.positions, z, prim.positions, prim.numbers, prim.cell[:], "conf.h5")
