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
    with io.open_finished(path, "configurations") as f:
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


# --------------------------------------------------------------------------
# readers: i-PI, any ASE format, VASP XDATCAR — one file per bead
# --------------------------------------------------------------------------

_IPI_UNITS = {"angstrom": 1.0, "atomic_unit": units.BOHR_ANG, "bohr": units.BOHR_ANG, "nanometer": 10.0}


def _ipi_comment(line: str, path, frame: int):
    """Cell (Å, rows) and position scale factor from an i-PI xyz comment line."""
    import re

    from ase.geometry import cellpar_to_cell
    m = re.search(r"CELL\((abcABC|H|GENH)\):\s*([-+0-9.eE\s]+?)\s+(Step|Bead|positions|$)", line)
    if not m:
        raise InputError(f"{path}, frame {frame}: not an i-PI comment line (no '# CELL(...)'): {line.strip()[:80]}")
    nums = [float(x) for x in m.group(2).split()]
    pu = re.search(r"positions\{([a-z_]+)\}", line)
    cu = re.search(r"cell\{([a-z_]+)\}", line)
    pos_unit = pu.group(1) if pu else "atomic_unit"
    cell_unit = cu.group(1) if cu else "atomic_unit"
    for u in (pos_unit, cell_unit):
        if u not in _IPI_UNITS:
            raise InputError(f"{path}, frame {frame}: unknown i-PI unit '{u}' (known: {', '.join(_IPI_UNITS)})")
    if m.group(1) == "abcABC":
        if len(nums) != 6:
            raise InputError(f"{path}, frame {frame}: CELL(abcABC) needs 6 numbers, found {len(nums)}")
        abc = np.array(nums[:3]) * _IPI_UNITS[cell_unit]
        cell = cellpar_to_cell(list(abc) + nums[3:])
    else:
        if len(nums) != 9:
            raise InputError(f"{path}, frame {frame}: CELL(H) needs 9 numbers, found {len(nums)}")
        cell = np.array(nums).reshape(3, 3).T * _IPI_UNITS[cell_unit]     # i-PI h: vectors as columns
    return np.asarray(cell), _IPI_UNITS[pos_unit]


def read_ipi_xyz(path):
    """One i-PI bead trajectory: (positions [n_frames, n_atoms, 3] Å, cells [n_frames, 3, 3], symbols)."""
    from pathlib import Path
    path = Path(path)
    if not path.exists():
        raise InputError(f"trajectory file {path} does not exist")
    lines = path.read_text().splitlines()
    frames, cells, symbols = [], [], None
    i, frame = 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise InputError(f"{path}, line {i + 1}: expected the atom count of frame {frame}, "
                             f"found '{lines[i].strip()[:40]}'") from None
        if i + 2 + n > len(lines):
            raise InputError(f"{path}: frame {frame} is truncated (file ends after line {len(lines)})")
        cell, scale = _ipi_comment(lines[i + 1], path, frame)
        syms, xyz = [], []
        for k, ln in enumerate(lines[i + 2:i + 2 + n]):
            parts = ln.split()
            try:
                syms.append(parts[0])
                xyz.append([float(x) for x in parts[1:4]])
            except (IndexError, ValueError):
                raise InputError(f"{path}, line {i + 3 + k}: bad atom line '{ln.strip()[:60]}'") from None
        if symbols is None:
            symbols = syms
        elif syms != symbols:
            raise InputError(f"{path}, frame {frame}: species differ from frame 0")
        frames.append(np.array(xyz) * scale)
        cells.append(cell)
        i += 2 + n
        frame += 1
    if not frames:
        raise InputError(f"{path}: no frames")
    return np.array(frames), np.array(cells), symbols


def _assemble(per_bead, paths, temperature_k, time_step_fs, source):
    """Stack per-bead (positions, cells, symbols) into Configurations, validating consistency."""
    from ase.data import atomic_masses, atomic_numbers
    n_frames = [p[0].shape[0] for p in per_bead]
    if len(set(n_frames)) != 1:
        detail = ", ".join(f"{pth}: {n}" for pth, n in zip(paths, n_frames))
        raise InputError(f"bead trajectories have different lengths ({detail})")
    sym0 = per_bead[0][2]
    for pth, (_, _, sym) in zip(paths, per_bead):
        if list(sym) != list(sym0):
            raise InputError(f"{pth}: species differ from {paths[0]}")
    cells = np.array([p[1] for p in per_bead])          # [bead, frame, 3, 3]
    if not np.allclose(cells, cells[0:1, 0:1], atol=1e-6):
        if not np.allclose(cells, cells[0:1], atol=1e-6):
            raise InputError(f"{source}: cells differ between beads")
        raise InputError(f"{source}: the cell changes between frames (variable-cell runs are not supported)")
    try:
        numbers = np.array([atomic_numbers[s] for s in sym0])
    except KeyError as exc:
        raise InputError(f"{paths[0]}: unknown chemical symbol {exc}") from None
    pos = np.stack([p[0] for p in per_bead], axis=1)     # [frame, bead, atom, 3]
    return Configurations(pos, cells[0, 0], numbers, atomic_masses[numbers], temperature_k,
                          time_step_fs, source)


def _bead_files(spec):
    """Expand a glob / list of files; sort by the trailing bead number if present."""
    import glob
    import re
    from pathlib import Path
    files = []
    for s in ([spec] if isinstance(spec, (str, Path)) else spec):
        hits = sorted(glob.glob(str(s)))
        if not hits:
            raise InputError(f"no trajectory file matches {s}")
        files += hits

    def bead_no(f):
        name = Path(f).name
        m = re.search(r"pos_(\d+)", name) or re.search(r"(\d+)(?!.*\d)", name)
        return int(m.group(1)) if m else 0
    return sorted(files, key=bead_no)


def read_trajectories(spec, temperature_k: float, time_step_fs: float, fmt: str = "ipi") -> Configurations:
    """Read per-bead trajectories: ``fmt`` 'ipi' (i-PI xyz), 'xdatcar' (VASP) or any ASE format.

    ``spec``: a glob like 'sim.pos_*.xyz' or a list of files, one per bead.
    ``time_step_fs``: time between stored frames.
    """
    import ase.io
    files = _bead_files(spec)
    per_bead = []
    for f in files:
        if fmt == "ipi":
            per_bead.append(read_ipi_xyz(f))
        else:
            try:
                frames = ase.io.read(f, index=":", parallel=False, format="vasp-xdatcar" if fmt == "xdatcar" else
                                     (None if fmt == "auto" else fmt))
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"{f}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc
            if not frames:
                raise InputError(f"{f}: no frames")
            per_bead.append((np.array([a.get_positions() for a in frames]),
                             np.array([a.cell[:] for a in frames]), frames[0].get_chemical_symbols()))
    return _assemble(per_bead, files, temperature_k, time_step_fs, f"{fmt}:{spec}")


def write_ipi_xyz(conf: Configurations, prefix):
    """Write i-PI-style per-bead files PREFIX.pos_<b>.xyz (Å, CELL(abcABC)) — for tests and exchange."""
    from ase.data import chemical_symbols
    from ase.geometry import cell_to_cellpar
    par = cell_to_cellpar(conf.cell)
    syms = [chemical_symbols[z] for z in conf.numbers]
    paths = []
    for b in range(conf.n_beads):
        p = f"{prefix}.pos_{b}.xyz"
        with open(p, "w") as fh:
            for c in range(conf.n_conf):
                fh.write(f"{conf.n_atoms}\n# CELL(abcABC): {' '.join(f'{x:.10f}' for x in par)}  Step: {c}  "
                         f"Bead: {b} positions{{angstrom}}  cell{{angstrom}}\n")
                for s, r in zip(syms, conf.positions[c, b]):
                    fh.write(f"{s} {r[0]:.10f} {r[1]:.10f} {r[2]:.10f}\n")
        paths.append(p)
    return paths
