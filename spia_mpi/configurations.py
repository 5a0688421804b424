"""PIMD configurations: the in-memory type, its HDF5 layout, and exact harmonic samplers.

A configuration c holds the positions of all atoms for all beads b at one PIMD
time step: ``positions_cbav`` float [n_conf, n_beads, n_atoms, 3] in Å.

HDF5 layout (``spia_mpi_file = 'configurations'``)::

    /configurations/positions   float64 [n_conf, n_beads, n_atoms, 3]  Å   chunked per configuration
    /configurations/cell        float64 [3, 3]                          Å   rows = lattice vectors
    /configurations/numbers     int32   [n_atoms]                       atomic numbers
    /configurations/masses      float64 [n_atoms]                       amu
    /configurations.attrs       temperature_K, time_step_fs (between stored samples), source

Samplers draw *independent* configurations from the exact discretised
path-integral distribution of harmonic ions: with the primitive (Trotter)
action S = (β/N_b) Σ_b [½ M ω_N² (u_{b+1} − u_b)² + ½ κ u_b²], ω_N = N_b k_BT/ħ,
the bead normal modes ũ_m = (1/N_b) Σ_b u_b e^{2πimb/N_b} are independent
Gaussians with ⟨|ũ_m|²⟩ = k_BT/(κ + MΩ_m²), Ω_m = (2N_b k_BT/ħ) sin(πm/N_b), so
⟨u_b u_b'⟩ = Σ_m cos(2πm(b−b')/N_b) k_BT/(κ + MΩ_m²). This is the oracle
distribution of METHOD.md §8.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spia_mpi import units
from spia_mpi.errors import InputError


@dataclass
class Configurations:
    """PIMD configurations of one supercell (see the module docstring for units)."""

    positions: np.ndarray          # float [n_conf, n_beads, n_atoms, 3], Å
    cell: np.ndarray               # float [3, 3], Å
    numbers: np.ndarray            # int [n_atoms]
    masses: np.ndarray             # float [n_atoms], amu
    temperature_k: float
    time_step_fs: float = 0.0      # time between stored samples (0: independent samples)
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=float)
        if self.positions.ndim != 4 or self.positions.shape[-1] != 3:
            raise InputError(f"positions must be [n_conf, n_beads, n_atoms, 3], got {self.positions.shape}")
        if not np.all(np.isfinite(self.positions)):
            bad = np.argwhere(~np.isfinite(self.positions))[0]
            raise InputError(f"{self.source or 'configurations'}: non-finite position at "
                             f"configuration {bad[0]}, bead {bad[1]}, atom {bad[2]}")
        if self.temperature_k <= 0:
            raise InputError(f"{self.source or 'configurations'}: temperature {self.temperature_k} K must be positive")
        n_atoms = self.positions.shape[2]
        self.numbers = np.asarray(self.numbers, dtype=int)
        self.masses = np.asarray(self.masses, dtype=float)
        if self.numbers.shape != (n_atoms,) or self.masses.shape != (n_atoms,):
            raise InputError(f"{self.source or 'configurations'}: numbers/masses must have {n_atoms} entries")
        self.cell = np.asarray(self.cell, dtype=float).reshape(3, 3)

    @property
    def n_conf(self) -> int:
        return self.positions.shape[0]

    @property
    def n_beads(self) -> int:
        return self.positions.shape[1]

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[2]

    def centroids(self) -> np.ndarray:
        """Bead-averaged positions, float [n_conf, n_atoms, 3] (Å)."""
        return self.positions.mean(axis=1)

    def select(self, skip: int = 0, stride: int = 1) -> "Configurations":
        """Drop the first ``skip`` samples and keep every ``stride``-th."""
        if skip < 0 or stride < 1:
            raise InputError(f"skip = {skip} must be ≥ 0 and stride = {stride} ≥ 1")
        if skip >= self.n_conf:
            raise InputError(f"skip = {skip} leaves no configurations (only {self.n_conf})")
        return Configurations(self.positions[skip::stride], self.cell, self.numbers, self.masses,
                              self.temperature_k, self.time_step_fs * stride, self.source, dict(self.extra))


def write_h5(conf: Configurations, path, comm=None):
    """Write ``conf`` to ``path`` (atomically; rank 0 writes when comm.size > 1)."""
    from spia_mpi import io
    if comm is not None and comm.size > 1:
        if comm.rank == 0:
            write_h5(conf, path, None)
        comm.Barrier()
        return
    with io.atomic_h5(path, None, kind="configurations") as f:
        g = f.create_group("configurations")
        chunk = (1,) + conf.positions.shape[1:]
        io.write_dataset(g, "positions", conf.positions, "Å", "[configuration, bead, atom, xyz]",
                         chunks=chunk)
        io.write_dataset(g, "cell", conf.cell, "Å", "lattice vectors as rows")
        io.write_dataset(g, "numbers", conf.numbers.astype(np.int32), "1", "atomic numbers")
        io.write_dataset(g, "masses", conf.masses, "amu")
        g.attrs["temperature_K"] = conf.temperature_k
        g.attrs["time_step_fs"] = conf.time_step_fs
        g.attrs["source"] = conf.source
        for k, v in conf.extra.items():
            g.attrs[k] = v


def read_h5(path, selection=None) -> Configurations:
    """Read configurations (``selection``: a slice of configurations, default all)."""
    from pathlib import Path

    from spia_mpi import io
    path = Path(path)
    if not path.exists():
        raise InputError(f"configurations file {path} does not exist")
    try:
        f = io.open_h5(path, "r", None)
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc})") from exc
    with f:
        io.require_complete(f, path, "configurations")
        if "configurations" not in f:
            raise InputError(f"{path}: no /configurations group")
        g = f["configurations"]
        for name in ("positions", "cell", "numbers", "masses"):
            if name not in g:
                raise InputError(f"{path}: missing dataset /configurations/{name}")
        sel = selection if selection is not None else slice(None)
        extra = {k: v for k, v in g.attrs.items() if k not in ("temperature_K", "time_step_fs", "source")}
        return Configurations(g["positions"][sel], g["cell"][...], g["numbers"][...], g["masses"][...],
                              float(g.attrs["temperature_K"]), float(g.attrs.get("time_step_fs", 0.0)),
                              str(path), extra)


# --------------------------------------------------------------------------
# exact harmonic ring-polymer samplers
# --------------------------------------------------------------------------

def ring_polymer_frequencies_ev(n_beads: int, temperature_k: float) -> np.ndarray:
    """ħΩ_m = 2N_b k_BT sin(πm/N_b) (eV), m = 0 … N_b−1."""
    m = np.arange(n_beads)
    return 2 * n_beads * units.KB_EV_PER_K * temperature_k * np.sin(np.pi * m / n_beads)


def bead_covariance(n_beads: int, temperature_k: float, mass_amu: float, spring_ev_a2: float) -> np.ndarray:
    """⟨u_b u_b'⟩ (Å²) of one harmonic coordinate, float [N_b, N_b] (see module docstring)."""
    if spring_ev_a2 <= 0:
        raise InputError(f"spring constant {spring_ev_a2} eV/Å² must be positive")
    kt = units.KB_EV_PER_K * temperature_k
    m_omega2 = mass_amu * ring_polymer_frequencies_ev(n_beads, temperature_k) ** 2 / units.HBAR2_OVER_AMU_A2_EV
    s_m = kt / (spring_ev_a2 + m_omega2)                      # ⟨|ũ_m|²⟩, Å²
    b = np.arange(n_beads)
    m = np.arange(n_beads)[:, None, None]
    phase = np.cos(2 * np.pi * m * (b[:, None] - b[None, :])[None] / n_beads)   # [m, b, b']
    return np.einsum("m,mbc->bc", s_m, phase)


def einstein_spring(mass_amu, hbar_omega_ev) -> np.ndarray:
    """κ = MΩ² in eV/Å² for masses in amu and ħΩ in eV."""
    return np.asarray(mass_amu, float) * hbar_omega_ev ** 2 / units.HBAR2_OVER_AMU_A2_EV


def sample_einstein_ring_polymers(n_conf: int, n_beads: int, masses_amu, hbar_omega_ev: float,
                                  temperature_k: float, reference_positions, rng) -> np.ndarray:
    """Independent exact draws for isotropic 3D Einstein oscillators, float [n_conf, n_beads, n_atoms, 3] (Å).

    masses_amu float [n_atoms]; ħΩ in eV; reference_positions float [n_atoms, 3] Å;
    rng a numpy Generator (fixed seed ⇒ the same samples).
    """
    if n_conf < 1 or n_beads < 1:
        raise InputError(f"need n_conf ≥ 1 and n_beads ≥ 1, got {n_conf}, {n_beads}")
    if hbar_omega_ev <= 0 or temperature_k <= 0:
        raise InputError("ħΩ and the temperature must be positive")
    ref = np.asarray(reference_positions, float)
    masses = np.broadcast_to(np.asarray(masses_amu, float), (ref.shape[0],))
    out = np.empty((n_conf, n_beads, ref.shape[0], 3))
    cache = {}
    for a, mass in enumerate(masses):
        if mass not in cache:
            cov = bead_covariance(n_beads, temperature_k, mass, float(einstein_spring(mass, hbar_omega_ev)))
            cache[mass] = np.linalg.cholesky(cov + 1e-300 * np.eye(n_beads))
        L = cache[mass]
        z = rng.standard_normal((n_conf, 3, n_beads))
        out[:, :, a, :] = np.einsum("bd,cvd->cbv", L, z)
    return out + ref[None, None]
