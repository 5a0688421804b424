"""Configuration samples shared by tests: positions folded into a cell, and Einstein ring-polymer
samples with a rigid translation per bead (the tests of spia.rigid_translations in `run` and
`spectral`). Lengths Å, masses amu."""
import numpy as np


def wrapped(positions, cell) -> np.ndarray:
    """``positions`` (float [..., 3]) folded into ``cell`` (rows): fractional coordinates in [0, 1)."""
    cell = np.asarray(cell, float)
    frac = np.asarray(positions, float) @ np.linalg.inv(cell)
    return (frac - np.floor(frac)) @ cell


def write_translated_samples(folder, atoms, reference, n_conf: int, n_beads: int, seed: int):
    """Exact Einstein samples (ħΩ = 0.15 eV, 300 K) around ``reference`` [N, 3] and the same samples
    rigidly translated per bead by 0.15–0.3 Å in random (non-lattice) directions and wrapped into the
    cell, written as ``folder``/plain.h5 and ``folder``/moved.h5. Asserts that some atoms crossed the
    cell boundary. Returns (positions [n_conf, n_beads, N, 3] of plain.h5, translations t [n_conf, n_beads, 3])."""
    from spia_mpi.ions.configurations import Configurations, sample_einstein_ring_polymers, write_h5
    rng = np.random.default_rng(seed)
    masses, cell = atoms.get_masses(), np.asarray(atoms.cell[:])
    pos = sample_einstein_ring_polymers(n_conf, n_beads, masses, 0.15, 300.0, reference, rng)
    direction = rng.normal(size=(n_conf, n_beads, 3))
    t = direction / np.linalg.norm(direction, axis=-1, keepdims=True) * rng.uniform(0.15, 0.3, (n_conf, n_beads, 1))
    moved = wrapped(pos + t[:, :, None, :], cell)
    assert np.any(np.abs(moved - pos - t[:, :, None, :]) > 1.0)          # some atoms crossed the boundary
    for name, p in (("plain", pos), ("moved", moved)):
        write_h5(Configurations(p, cell, atoms.numbers, masses, 300.0, 0.0, name), folder / f"{name}.h5")
    return pos, t


def removed_shift(t, positions, reference, masses) -> np.ndarray:
    """The shift `run`/`spectral` must remove from the moved samples: the applied translation t [c, b, 3]
    plus the plain samples' own mass-weighted centre displacement, float [c, b, 3] (Å)."""
    return t + np.einsum("a,cbax->cbx", masses, positions - reference) / np.sum(masses)
