"""Rigid translations of configurations (spia_mpi.ions.translations) and `run`'s
spia.rigid_translations: the removed shift is every bead's exact mass-weighted centre displacement
(minimum images of wrapped positions, an atom that hopped to another site left out), and a rigidly
translated configuration gives `run` the same λ(m) as the untranslated one (1 rank and 2 ranks)."""
from __future__ import annotations

import numpy as np
import pytest
from samples import wrapped

from spia_mpi.ions.translations import remove_rigid_translations, rigid_shifts, site_radii

# a skewed cell with two species of unequal masses (Å, amu)
CELL = np.array([[4.0, 0.0, 0.0], [1.0, 3.5, 0.0], [0.5, 0.7, 5.0]])
FRAC = np.array([[0.05, 0.1, 0.2], [0.5, 0.5, 0.5], [0.95, 0.3, 0.7], [0.3, 0.8, 0.02], [0.7, 0.1, 0.55]])
NUMBERS = np.array([3, 3, 12, 1, 1])
MASSES = np.array([6.94, 7.02, 24.3, 1.008, 2.014])


def test_removed_shift_is_the_mass_weighted_centre_displacement_of_wrapped_positions():
    """Known displacements u (≤ 0.25 Å) plus a known per-bead translation t, positions wrapped into
    the cell (atoms near a face cross it): the shift is t + Σ M u/Σ M per bead (computed here from
    the unwrapped u) to 1e-12, and the result is R⁰ + u − Σ M u/Σ M up to lattice vectors."""
    rng = np.random.default_rng(4)
    ref = FRAC @ CELL
    u = rng.uniform(-0.25, 0.25, (3, 4, 5, 3))
    t = rng.uniform(-0.6, 0.6, (3, 4, 3))
    pos = wrapped(ref + u + t[:, :, None, :], CELL)
    crossed = np.abs(pos - (ref + u + t[:, :, None, :])).max(axis=-1) > 1.0
    assert crossed.any() and not crossed.all()                          # some atoms are wrapped, some not
    want = t + np.einsum("a,cbax->cbx", MASSES, u) / MASSES.sum()
    got = rigid_shifts(pos, ref, MASSES, CELL, NUMBERS)
    np.testing.assert_allclose(got.shift_ang, want, atol=1e-12)
    assert not got.off_site.any()
    out = remove_rigid_translations(pos, ref, MASSES, CELL, NUMBERS)
    expected = ref + u - (np.einsum("a,cbax->cbx", MASSES, u) / MASSES.sum())[:, :, None, :]
    lattice = (out - expected) @ np.linalg.inv(CELL)                    # whole lattice vectors only
    np.testing.assert_allclose(lattice, np.round(lattice), atol=1e-12)
    # without the cell the wrapped atoms would be counted as displaced by a lattice vector
    assert np.abs(rigid_shifts(pos, ref, MASSES).shift_ang - want).max() > 0.1


def test_site_radii_are_half_the_distance_to_the_nearest_like_site():
    """Simple-cubic 2×2×2 (a = 2 Å): like neighbours 2 Å apart → 1 Å; a species with one atom in the
    cell: half its shortest lattice vector."""
    grid = 2.0 * np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], float)
    cell = 4.0 * np.eye(3)
    np.testing.assert_allclose(site_radii(grid, [1] * 8, cell), 1.0, rtol=1e-14)
    r = site_radii(grid, [1] * 7 + [8], cell)
    assert r[7] == pytest.approx(2.0) and np.allclose(r[:7], 1.0)


def test_an_atom_that_hopped_to_another_site_does_not_define_the_shift():
    """One Li hops to (next to) the other Li site across the cell boundary in bead 1: that bead's
    shift is the mass-weighted mean of the other atoms' displacements (it is translated with them);
    counting the hop would have shifted the whole crystal by M_Li·hop/ΣM."""
    rng = np.random.default_rng(7)
    ref = FRAC @ CELL
    u = rng.uniform(-0.1, 0.1, (1, 2, 5, 3))
    hop = ref[1] - ref[0] + np.array([0.05, -0.02, 0.03])                # atom 0 → near site 1
    pos = ref + u
    pos[0, 1, 0] = ref[0] + hop + CELL[0]                                # and one cell over
    r = site_radii(ref, NUMBERS, CELL)
    assert np.linalg.norm(hop) > r[0]
    got = rigid_shifts(pos, ref, MASSES, CELL, NUMBERS)
    assert got.off_site.tolist() == [[0, 1]]
    keep = np.arange(1, 5)
    want1 = MASSES[keep] @ u[0, 1, keep] / MASSES[keep].sum()
    want0 = MASSES @ u[0, 0] / MASSES.sum()
    np.testing.assert_allclose(got.shift_ang[0], [want0, want1], atol=1e-12)
    out = remove_rigid_translations(pos, ref, MASSES, CELL, NUMBERS)
    np.testing.assert_allclose(out[0, 1, 0], pos[0, 1, 0] - want1, atol=1e-12)


def test_auto_removes_for_grid_and_gpaw_keeps_for_holstein(tmp_path):
    """spia.rigid_translations = 'auto' resolves by the model's physics; 'remove' with potential files
    is refused with a message naming the key; harmonic.zero_modes = 'auto' follows it (drop ⇔ removed)."""
    from spia_mpi.commands.harmonic import zero_modes
    from spia_mpi.commands.run import rigid_translations_removed
    from spia_mpi.errors import InputError
    from spia_mpi.io.runinput import load_run_input

    def resolved(text):
        (tmp_path / "in.toml").write_text(text)
        inp = load_run_input(tmp_path / "in.toml")[0]
        removed = rigid_translations_removed(inp)
        assert zero_modes(inp) == ("drop" if removed else "keep")
        return removed
    grid = '[model]\nkind = "grid"\n[model.grid]\nstructure = "hydrogen-sc"\n'
    assert resolved(grid) and not resolved('[model]\nkind = "holstein"\n')
    assert resolved('[model]\nkind = "gpaw"\n[model.gpaw]\nstructure = "hydrogen-sc"\n')
    assert not resolved(grid + '[spia]\nrigid_translations = "keep"\n')
    assert resolved('[model]\nkind = "holstein"\n[spia]\nrigid_translations = "remove"\n')
    (tmp_path / "in.toml").write_text(grid + '[harmonic]\nzero_modes = "keep"\n')
    assert zero_modes(load_run_input(tmp_path / "in.toml")[0]) == "keep"
    files = grid + 'potential_files = "p{c}_{b}.cube"\nreference_potential_file = "r.cube"\n'
    assert not resolved(files)
    with pytest.raises(InputError, match="rigid_translations"):
        resolved(files + '[spia]\nrigid_translations = "remove"\n')


RUN = """
[model]
kind = "grid"
[model.grid]
structure = "hydrogen-sc"
grid_per_cell = [4, 4, 4]
[supercell]
matrix = [2, 2, 2]
[configurations]
source = "file"
file = "{conf}"
[spia]
states_per_k = 2
gamma_ev = [0.5]
n_blocks = 2
mode = "bse"
rigid_translations = "{choice}"
[eliashberg]
mustar = [0.1]
tc_errors = false
[output]
file = "{out}"
plots = false
"""


def test_translated_configurations_give_the_same_lambda_when_removed(tmp_path, spia_cli):
    """Einstein samples of an 8-atom hydrogen grid model, and the same samples rigidly translated
    per bead by 0.15–0.3 Å (non-lattice vectors) and wrapped into the cell: with 'remove' (the grid
    model's default) `run` gives the same λ(m) for both (1e-9; the translated file on 2 ranks), with
    'keep' the translation changes λ(m) (so the comparison can fail). The results file records
    the choice and the removed shifts (= the applied translation + the samples' own centre shift)."""
    import h5py

    from samples import removed_shift, write_translated_samples
    from spia_mpi.commands.run import build_model
    from spia_mpi.io.runinput import load_run_input
    (tmp_path / "probe.toml").write_text(RUN.format(conf="x.h5", choice="auto", out="x.h5"))
    model = build_model(*load_run_input(tmp_path / "probe.toml"))
    atoms, ref = model.atoms, model.reference_positions
    pos, t = write_translated_samples(tmp_path, atoms, ref, 4, 4, seed=11)
    runs = {("plain", "auto", 1), ("moved", "auto", 2), ("plain", "keep", 1), ("moved", "keep", 1)}
    lam = {}
    for conf, choice, ranks in runs:
        out = f"{conf}_{choice}_{ranks}.h5"
        (tmp_path / f"{out}.toml").write_text(RUN.format(conf=f"{conf}.h5", choice=choice, out=out))
        r = spia_cli(["-q", "run", tmp_path / f"{out}.toml"], ranks=ranks, cwd=tmp_path)
        assert r.returncode == 0, r
        with h5py.File(tmp_path / out, "r") as f:
            lam[conf, choice] = f["lambda/lambda_m_raw"][...]
            assert f["lambda"].attrs["rigid_translations"] == ("kept" if choice == "keep" else "removed")
            if (conf, choice) == ("moved", "auto"):
                want = removed_shift(t, pos, ref, atoms.get_masses())
                np.testing.assert_allclose(f["lambda/rigid_translation_ang"][...], want, atol=1e-10)
    np.testing.assert_allclose(lam["moved", "auto"], lam["plain", "auto"], rtol=1e-9, atol=1e-12)
    assert np.abs(lam["moved", "keep"] - lam["plain", "keep"]).max() > 1e-3 * np.abs(lam["plain", "keep"]).max()
