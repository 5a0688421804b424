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
distribution of METHOD.md §8. A general force-constant matrix Φ is sampled the same way,
phonon mode by phonon mode (:func:`sample_harmonic_ring_polymers`).
"""
from __future__ import annotations

import re
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


def write_h5(conf: Configurations, path, comm=None, axis: int = 0):
    """Write ``conf`` to ``path`` atomically.

    With ``comm`` of several ranks the write is collective (parallel HDF5, ``mpio``): each
    rank's ``conf`` holds only its own slice of the positions along ``axis`` (0:
    configurations, 1: beads), slices in rank order, none empty; cell, numbers, masses,
    temperature, time step, source and ``extra`` are the same on every rank. Each rank
    writes its slice as a hyperslab, so no rank ever holds the whole file.
    """
    from spia_mpi.io import hdf5
    from spia_mpi.parallel.mpi import allgather_dict
    if axis not in (0, 1):
        raise ValueError(f"axis {axis} must be 0 (configurations) or 1 (beads)")
    rank = 0 if comm is None else comm.rank
    shapes = allgather_dict({rank: conf.positions.shape}, comm)
    sizes = [shapes[r][axis] for r in sorted(shapes)]
    others = {tuple(np.delete(sh, axis)) for sh in shapes.values()}
    if len(others) > 1 or min(sizes) == 0:
        raise InputError(f"{path}: the ranks' position slices do not fit together along axis {axis} "
                         f"(shapes {[shapes[r] for r in sorted(shapes)]}; every rank needs a non-empty slice)")
    shape = list(conf.positions.shape)
    shape[axis] = sum(sizes)
    start = sum(sizes[:rank])
    where = [slice(None)] * 4
    where[axis] = slice(start, start + sizes[rank])
    with hdf5.atomic_h5(path, comm, kind="configurations") as f:
        g = f.create_group("configurations")
        ds = g.create_dataset("positions", tuple(shape), dtype="f8", chunks=(1,) + tuple(shape[1:]))
        ds.attrs["units"] = "Å"
        ds.attrs["description"] = "[configuration, bead, atom, xyz]"
        if comm is not None and comm.size > 1:
            with ds.collective:
                ds[tuple(where)] = conf.positions
        else:
            ds[...] = conf.positions
        hdf5.write_dataset(g, "cell", conf.cell, "Å", "lattice vectors as rows")
        hdf5.write_dataset(g, "numbers", conf.numbers.astype(np.int32), "1", "atomic numbers")
        hdf5.write_dataset(g, "masses", conf.masses, "amu")
        g.attrs["temperature_K"] = conf.temperature_k
        g.attrs["time_step_fs"] = conf.time_step_fs
        g.attrs["source"] = conf.source
        for k, v in conf.extra.items():
            g.attrs[k] = v


def read_h5(path, selection=None) -> Configurations:
    """Read configurations; ``selection`` indexes the positions [configuration, bead, …]
    (a slice of configurations, or a tuple such as ``(slice(None), slice(b0, b1))`` for
    beads b0…b1−1; default all). Only the selected positions are read, so every rank of a
    parallel job can read its own slice of a file larger than one rank's memory."""
    from pathlib import Path

    from spia_mpi.io import hdf5
    path = Path(path)
    with hdf5.open_finished(path, "configurations") as f:
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
    return units.ring_polymer_frequency_ev(np.arange(n_beads), n_beads, temperature_k)


def bead_covariance(n_beads: int, temperature_k: float, mass_amu: float, spring_ev_a2: float,
                    fix_centroid: bool = False) -> np.ndarray:
    """⟨u_b u_b'⟩ (Å²) of one harmonic coordinate, float [N_b, N_b] (see module docstring).

    ``fix_centroid``: drop the centroid mode m = 0 (the distribution conditioned on a zero
    centroid displacement); then ``spring_ev_a2`` may be 0 (a free particle, e.g. an acoustic
    translation), whose internal modes have ⟨|ũ_m|²⟩ = k_BT/(MΩ_m²).
    """
    if spring_ev_a2 < 0 or (spring_ev_a2 == 0 and not fix_centroid):
        raise InputError(f"spring constant {spring_ev_a2} eV/Å² must be positive")
    kt = units.KB_EV_PER_K * temperature_k
    m_omega2 = mass_amu * ring_polymer_frequencies_ev(n_beads, temperature_k) ** 2 / units.HBAR2_OVER_AMU_A2_EV
    denom = spring_ev_a2 + m_omega2
    s_m = np.divide(kt, denom, out=np.zeros_like(denom), where=denom > 0)   # ⟨|ũ_m|²⟩, Å²
    if fix_centroid:
        s_m[0] = 0.0
    # circulant: ⟨u_b u_b'⟩ depends on d = (b − b') mod N_b only (O(N_b²) time and memory)
    m = np.arange(n_beads)
    c_d = np.cos(2 * np.pi * np.outer(m, m) / n_beads).T @ s_m                 # [d]
    return c_d[(m[:, None] - m[None, :]) % n_beads]


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


def _bead_factor(n_beads: int, temperature_k: float, mass_amu: float, spring_ev_a2: float,
                 fix_centroid: bool = False) -> np.ndarray:
    """L with L Lᵀ = :func:`bead_covariance` (Cholesky; a symmetric square root when the
    centroid is fixed, as the covariance is then singular), float [N_b, N_b], Å."""
    cov = bead_covariance(n_beads, temperature_k, mass_amu, spring_ev_a2, fix_centroid)
    if not fix_centroid:
        return np.linalg.cholesky(cov + 1e-300 * np.eye(n_beads))
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0.0, None))[None, :]


def validate_force_constants(phi, n_atoms: int, source: str = "force constants",
                             symmetry_tol: float = 1e-6) -> np.ndarray:
    """Check and return a force-constant matrix Φ as float [3N, 3N] (eV/Å²).

    Accepts [3N, 3N] (row index 3a + v) or [N, N, 3, 3] (phonopy layout Φ[a, a', v, v']).
    Raises InputError when the shape does not match ``n_atoms``, entries are not finite, or
    Φ is not symmetric to ``symmetry_tol`` × max|Φ| (it is then symmetrised exactly).
    Positive semidefiniteness is checked by :func:`harmonic_modes`.
    """
    phi = np.asarray(phi, dtype=float)
    n3 = 3 * n_atoms
    if phi.shape == (n_atoms, n_atoms, 3, 3):
        phi = phi.transpose(0, 2, 1, 3).reshape(n3, n3)
    if phi.shape != (n3, n3):
        raise InputError(f"{source}: expected a [{n3}, {n3}] matrix (or [{n_atoms}, {n_atoms}, 3, 3]) for "
                         f"{n_atoms} atoms, found shape {list(phi.shape)}")
    if not np.all(np.isfinite(phi)):
        raise InputError(f"{source}: non-finite entries")
    scale = np.abs(phi).max()
    if scale == 0:
        raise InputError(f"{source}: all force constants are zero")
    asym = np.abs(phi - phi.T).max()
    if asym > symmetry_tol * scale:
        i, j = np.unravel_index(np.argmax(np.abs(phi - phi.T)), phi.shape)
        raise InputError(f"{source}: not symmetric: Φ[{i},{j}] = {phi[i, j]:.6g} but Φ[{j},{i}] = {phi[j, i]:.6g} "
                         f"eV/Å² (max asymmetry {asym:.3g} > {symmetry_tol:g} × max|Φ|)")
    return 0.5 * (phi + phi.T)


def load_force_constants(path, masses_amu) -> np.ndarray:
    """Read Φ (eV/Å²) for atoms of ``masses_amu`` [N] from ``path``: .npy ([3N, 3N] or
    [N, N, 3, 3]) or a whitespace-separated text matrix [3N, 3N] (np.loadtxt). Validated
    (shape, finite, symmetric, positive semidefinite); returns float [3N, 3N]."""
    from pathlib import Path
    path = Path(path)
    if not path.exists():
        raise InputError(f"force-constant file {path} does not exist")
    try:
        phi = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot read force constants ({exc}); expected .npy or a text matrix "
                         "[3N, 3N] in eV/Å²") from None
    masses = np.asarray(masses_amu, float)
    phi = validate_force_constants(phi, masses.size, str(path))
    harmonic_modes(phi, masses, source=str(path))            # positive semidefinite, or InputError
    return phi


@dataclass
class HarmonicModes:
    """Phonon modes of Φ at the Γ point of the (super)cell: D = M^-½ Φ M^-½ = E diag(λ) Eᵀ.

    eigenvalues  float [3N]      λ_k = ω_k² in eV/(Å² amu) (ascending), exactly 0 for zero modes
    vectors      float [3N, 3N]  columns e_k (orthonormal, mass-weighted; row index 3a + v)
    hbar_omega   float [3N]      ħω_k (eV), 0 for zero modes
    zero         bool [3N]       zero modes: |λ_k| ≤ zero_tol · max λ (acoustic translations)
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    hbar_omega: np.ndarray
    zero: np.ndarray


def harmonic_modes(force_constants_ev_a2, masses_amu, zero_tol: float = 1e-6,
                   source: str = "force constants") -> HarmonicModes:
    """Diagonalise the mass-weighted Φ (eV/Å², [3N, 3N] or [N, N, 3, 3]; masses amu [N]).

    Eigenvalues with |λ| ≤ ``zero_tol`` × max λ are zero modes (set to exactly 0); an
    eigenvalue below −``zero_tol`` × max λ means Φ is not positive semidefinite (an
    unstable, imaginary-frequency mode): InputError.
    """
    masses = np.asarray(masses_amu, dtype=float)
    if masses.ndim != 1 or np.any(masses <= 0):
        raise InputError(f"masses must be a positive [n_atoms] array, got {masses}")
    phi = validate_force_constants(force_constants_ev_a2, masses.size, source)
    inv_sqrt_m = np.repeat(masses, 3) ** -0.5
    lam, vec = np.linalg.eigh(phi * inv_sqrt_m[:, None] * inv_sqrt_m[None, :])
    top = lam.max()
    if top <= 0:
        raise InputError(f"{source}: no positive mass-weighted eigenvalue (Φ is not positive semidefinite)")
    if lam[0] < -zero_tol * top:
        hw = np.sqrt(-lam[0] * units.HBAR2_OVER_AMU_A2_EV)
        raise InputError(f"{source}: not positive semidefinite: mass-weighted eigenvalue {lam[0]:.6g} eV/(Å² amu) "
                         f"(an imaginary mode of {1000 * hw:.4g}i meV); the harmonic distribution does not exist")
    zero = np.abs(lam) <= zero_tol * top
    lam = np.where(zero, 0.0, lam)
    return HarmonicModes(lam, vec, np.sqrt(lam * units.HBAR2_OVER_AMU_A2_EV), zero)


def sample_harmonic_ring_polymers(n_conf: int, n_beads: int, masses_amu, force_constants_ev_a2,
                                  temperature_k: float, reference_positions, rng,
                                  zero_modes: str = "fix_centroid", zero_tol: float = 1e-6) -> np.ndarray:
    """Independent exact draws of the N_b-bead primitive path integral of harmonic ions with
    force constants Φ: float [n_conf, n_beads, n_atoms, 3] (Å).

    masses_amu float [N]; force_constants_ev_a2 float [3N, 3N] (or [N, N, 3, 3]) in eV/Å²,
    V = ½ uᵀΦu with u the displacements from ``reference_positions`` float [N, 3] Å;
    rng a numpy Generator (fixed seed ⇒ the same samples). Each mass-weighted phonon mode
    k (D = M^-½ Φ M^-½, eigenvalue λ_k = ω_k²) is an independent oscillator of unit mass and
    spring λ_k; its N_b bead coordinates are drawn exactly with :func:`bead_covariance` (the
    Einstein machinery) and u_b = M^-½ Σ_k e_k x_{k,b}.

    Zero modes (|λ_k| ≤ ``zero_tol`` × max λ: the three acoustic translations of a
    periodic crystal whose Φ obeys the acoustic sum rule) have no normalisable centroid
    distribution. ``zero_modes="fix_centroid"`` (default) fixes their centroid at zero —
    the centre of mass of all atoms and beads stays at the reference — and samples their
    internal ring-polymer modes exactly (free-particle bead spread, ⟨|ũ_m|²⟩ = k_BT/Ω_m²
    per unit mass); ``zero_modes="error"`` raises InputError instead.
    """
    if n_conf < 1 or n_beads < 1:
        raise InputError(f"need n_conf ≥ 1 and n_beads ≥ 1, got {n_conf}, {n_beads}")
    if temperature_k <= 0:
        raise InputError(f"temperature {temperature_k} K must be positive")
    if zero_modes not in ("fix_centroid", "error"):
        raise InputError(f"zero_modes must be 'fix_centroid' or 'error', got '{zero_modes}'")
    ref = np.asarray(reference_positions, float)
    masses = np.broadcast_to(np.asarray(masses_amu, float), (ref.shape[0],))
    modes = harmonic_modes(force_constants_ev_a2, masses, zero_tol)
    n_zero = int(modes.zero.sum())
    if n_zero and zero_modes == "error":
        raise InputError(f"Φ has {n_zero} zero mode(s) (acoustic translations of a periodic crystal?): their "
                         "centroid distribution is not normalisable; use zero_modes='fix_centroid'")
    n3 = 3 * masses.size
    x = np.empty((n_conf, n_beads, n3))                     # mass-weighted mode coordinates, Å amu^½
    z = rng.standard_normal((n_conf, n3, n_beads))
    # modes with the same λ (degenerate ones, all zero modes) share one bead factor
    keys = np.round(modes.eigenvalues / modes.eigenvalues.max(), 10)
    for key in np.unique(keys):
        ks = np.flatnonzero(keys == key)
        L = _bead_factor(n_beads, temperature_k, 1.0, float(modes.eigenvalues[ks[0]]), bool(modes.zero[ks[0]]))
        x[:, :, ks] = np.einsum("bd,ckd->cbk", L, z[:, ks, :])
    u = (x @ modes.vectors.T) * np.repeat(masses, 3) ** -0.5
    return u.reshape(n_conf, n_beads, masses.size, 3) + ref[None, None]


# --------------------------------------------------------------------------
# readers: i-PI, any ASE format, VASP XDATCAR — one file per bead
# --------------------------------------------------------------------------

# i-PI length units (i-PI's UnitMap names; an empty "{}" means atomic units) → Å
_IPI_UNITS = {"": units.BOHR_ANG, "atomic_unit": units.BOHR_ANG, "bohr": units.BOHR_ANG, "angstrom": 1.0,
              "picometer": 0.01, "nanometer": 10.0}
# i-PI trajectory properties that are coordinates (dimension "length"); any other
# "<property>{unit}" token (forces, velocities, momenta, ...) is not a position file
_IPI_POSITION_PROPERTIES = ("positions", "x_centroid")
_IPI_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_IPI_CELL_RE = re.compile(r"CELL[(\[{](abcABC|GENH|H)[)\]}]:((?:\s+" + _IPI_NUMBER + r")+)")
_IPI_PROPERTY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\{([^{}\s]*)\}")


def _ipi_comment(line: str, path, frame: int):
    """Cell (Å, lattice vectors as rows) and position scale factor (→ Å) from an i-PI xyz comment line.

    Cell formats (i-PI ``read_xyz``): ``CELL(abcABC): a b c α β γ`` (lengths in the cell
    unit, angles in degrees; i-PI's standard orientation, a ∥ x, b in the xy plane, as
    :func:`ase.geometry.cellpar_to_cell`); ``CELL(H): h11 h12 … h33`` — i-PI's h matrix
    row by row, whose *columns* are the lattice vectors; ``CELL(GENH): …`` — a general
    matrix row by row whose *rows* are the lattice vectors (positions given in its frame).
    Units: ``cell{unit}`` for the cell, ``positions{unit}`` or ``x_centroid{unit}`` for the
    coordinates; each defaults to atomic units (bohr) like i-PI. Tokens may come in any
    order; ``Step:``/``Bead:`` are optional.
    """
    from ase.geometry import cellpar_to_cell
    m = _IPI_CELL_RE.search(line)
    if not m:
        raise InputError(f"{path}, frame {frame}: not an i-PI comment line (no 'CELL(abcABC|H|GENH): numbers'): "
                         f"{line.strip()[:80]}")
    kind = m.group(1)
    nums = [float(x) for x in m.group(2).split()]
    cell_unit, prop, pos_unit = "atomic_unit", None, "atomic_unit"
    for name, unit in _IPI_PROPERTY_RE.findall(line):
        if name == "cell":
            cell_unit = unit
        elif prop is None:
            prop, pos_unit = name, unit
    if prop is not None and prop not in _IPI_POSITION_PROPERTIES:
        raise InputError(f"{path}, frame {frame}: this i-PI file holds '{prop}', not coordinates "
                         f"(expected {' or '.join(_IPI_POSITION_PROPERTIES)}{{unit}})")
    for u in (pos_unit, cell_unit):
        if u not in _IPI_UNITS:
            raise InputError(f"{path}, frame {frame}: unknown i-PI unit '{u}' for a length "
                             f"(known: {', '.join(k for k in _IPI_UNITS if k)})")
    need = 6 if kind == "abcABC" else 9
    if len(nums) < need:
        raise InputError(f"{path}, frame {frame}: CELL({kind}) needs {need} numbers, found {len(nums)}")
    nums = nums[:need]                                       # like i-PI: further numbers belong to the title
    scale = _IPI_UNITS[cell_unit]
    if kind == "abcABC":
        cell = cellpar_to_cell([x * scale for x in nums[:3]] + nums[3:])
    elif kind == "H":
        cell = np.array(nums).reshape(3, 3).T * scale        # i-PI h: lattice vectors are its columns
    else:
        cell = np.array(nums).reshape(3, 3) * scale          # GENH: lattice vectors are its rows
    return np.asarray(cell, dtype=float), _IPI_UNITS[pos_unit]


def ipi_standard_frame(cell) -> np.ndarray:
    """Rotation R (float [3, 3], proper, orthogonal) taking ``cell`` (rows, Å) into i-PI's
    standard orientation: cell @ R = cellpar_to_cell(cell_to_cellpar(cell)) (a ∥ x, b in the
    xy plane), the frame in which CELL(abcABC) is meant. Positions transform as r @ R.
    Raises InputError for a left-handed cell (no rotation exists; reorder its vectors)."""
    from ase.geometry import cell_to_cellpar, cellpar_to_cell
    cell = np.asarray(cell, dtype=float)
    if np.linalg.det(cell) <= 0:
        raise InputError(f"cell {cell.round(6).tolist()} is left-handed or singular: CELL(abcABC) cannot "
                         "represent it (swap two lattice vectors)")
    R = np.linalg.solve(cell, cellpar_to_cell(cell_to_cellpar(cell)))
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-8), "cellpar round trip is not a rotation"
    return R


def write_ipi_frame(fh, symbols, positions, cell, comment: str = ""):
    """Write one i-PI xyz frame in Å: CELL(abcABC) comment line, positions rotated into the
    standard frame of :func:`ipi_standard_frame` (an identity for cells already in it)."""
    from ase.geometry import cell_to_cellpar
    R = ipi_standard_frame(cell)
    par = cell_to_cellpar(np.asarray(cell, float))
    pos = np.asarray(positions, float) @ R
    fh.write(f"{len(symbols)}\n# CELL(abcABC): {' '.join(f'{x:.10f}' for x in par)}  {comment}"
             f"{' ' if comment else ''}positions{{angstrom}}  cell{{angstrom}}\n")
    for sym, r in zip(symbols, pos):
        fh.write(f"{sym} {r[0]:.10f} {r[1]:.10f} {r[2]:.10f}\n")


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
                if len(parts) < 4:          # e.g. the last line of a file cut by a kill
                    raise IndexError
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
    for pth, (pos, _, _) in zip(paths, per_bead):      # named by file: a rank holds only some beads
        if not np.all(np.isfinite(pos)):
            frame, atom, _ = np.argwhere(~np.isfinite(pos))[0]
            raise InputError(f"{pth}: non-finite position in frame {frame}, atom {atom}")
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
    if np.any(numbers == 0):           # ASE's dummy atom 'X' has Z = 0 and no mass
        raise InputError(f"{paths[0]}: '{sym0[int(np.argmin(numbers))]}' is not a chemical element "
                         f"(expected element symbols such as H, Li, Mg)")
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
    files = sorted(files, key=bead_no)
    # i-PI names beads PREFIX.pos_<b>.xyz with consecutive b: a gap is a missing bead file
    ipi = [re.search(r"pos_(\d+)", Path(f).name) for f in files]
    if len(files) > 1 and all(ipi):
        got = [int(m.group(1)) for m in ipi]
        want = list(range(got[0], got[0] + len(got)))
        if got != want:
            gap = sorted(set(want) - set(got)) or [b for b in got if got.count(b) > 1]
            raise InputError(f"bead trajectory files {spec}: found beads {got}, expected consecutive "
                             f"numbers: bead {gap[0]} is missing or repeated")
    return files


def read_trajectories(spec, temperature_k: float, time_step_fs: float, fmt: str = "ipi",
                      comm=None) -> Configurations:
    """Read per-bead trajectories: ``fmt`` 'ipi' (i-PI xyz), 'xdatcar' (VASP) or any ASE format.

    ``spec``: a glob like 'sim.pos_*.xyz' or a list of files, one per bead.
    ``time_step_fs``: time between stored frames.
    ``comm`` of several ranks: the bead files are split over the ranks (contiguous, in
    bead order; at most one rank per bead); each rank reads only its own and returns the
    configurations of its beads (write them with ``write_h5(conf, path, comm, axis=1)``).
    Frame counts, species and cells are checked across ranks (the same error everywhere).
    """
    import ase.io

    from spia_mpi.parallel.mpi import agree_on_failure, allgather_dict, partition
    files = _bead_files(spec)
    size = 1 if comm is None else comm.size
    if size > len(files):
        raise InputError(f"{len(files)} bead trajectory file(s) cannot be split over {size} ranks: "
                         f"use at most {len(files)} ranks")
    mine = [files[i] for i in partition(len(files), size, 0 if comm is None else comm.rank)]
    per_bead = []
    with agree_on_failure(comm, "reading the bead trajectories"):   # a damaged file: every rank stops
        for f in mine:
            if fmt == "ipi":
                per_bead.append(read_ipi_xyz(f))
            else:
                try:
                    frames = ase.io.read(f, index=":", parallel=False, format="vasp-xdatcar" if fmt == "xdatcar"
                                         else (None if fmt == "auto" else fmt))
                except Exception as exc:  # noqa: BLE001
                    raise InputError(f"{f}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from exc
                if not frames:
                    raise InputError(f"{f}: no frames")
                per_bead.append((np.array([a.get_positions() for a in frames]),
                                 np.array([a.cell[:] for a in frames]), frames[0].get_chemical_symbols()))
        conf = _assemble(per_bead, mine, temperature_k, time_step_fs, f"{fmt}:{spec}")
    if size > 1:
        seen = allgather_dict({comm.rank: (mine[0], conf.n_conf, conf.numbers.tolist(), conf.cell)}, comm)
        first, n0, z0, cell0 = seen[0]
        for r in sorted(seen):
            path, n, z, cell = seen[r]
            if n != n0:
                raise InputError(f"bead trajectories have different lengths ({first}: {n0}, {path}: {n})")
            if z != z0:
                raise InputError(f"{path}: species differ from {first}")
            if not np.allclose(cell, cell0, atol=1e-6):
                raise InputError(f"{conf.source}: cells differ between beads")
    return conf


def write_ipi_xyz(conf: Configurations, prefix):
    """Write i-PI-style per-bead files PREFIX.pos_<b>.xyz (Å, CELL(abcABC)) — for tests and exchange.

    CELL(abcABC) fixes only the shape of the cell, so cell and positions are written in
    i-PI's standard orientation (:func:`ipi_standard_frame`): unchanged when ``conf.cell``
    already has a ∥ x and b in the xy plane, rigidly rotated otherwise."""
    from ase.data import chemical_symbols
    syms = [chemical_symbols[z] for z in conf.numbers]
    paths = []
    for b in range(conf.n_beads):
        p = f"{prefix}.pos_{b}.xyz"
        with open(p, "w") as fh:
            for c in range(conf.n_conf):
                write_ipi_frame(fh, syms, conf.positions[c, b], conf.cell, f"Step: {c}  Bead: {b}")
        paths.append(p)
    return paths
