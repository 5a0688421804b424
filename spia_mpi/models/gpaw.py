"""PAW electronic structure from GPAW (LCAO): ``model.kind = "gpaw"`` (paper Sec. S-C/S-D).

For every configuration–bead R and supercell wavevector K the model gives GPAW's LCAO
Hamiltonian H(R, K) (eV) and overlap S(R, K) in the basis of atom-centred orbitals at R,
and the projection vectors Q = X(K)† c that bring the generalized resolvent into the common
pseudo space of the reference structure R⁽⁰⁾ (paper Eq. S14):

    g_nm = ⟨ψ̃_n| Ŝ(R⁽⁰⁾, R) [z S(R) − H(R)]⁻¹ Ŝ(R, R⁽⁰⁾) |ψ̃_m⟩ = Q_n† [z S − H]⁻¹ Q_m,

with c the LCAO coefficients of the reference Bloch states (c† S(R⁽⁰⁾) c = 1) and X the
PAW cross overlap of :mod:`spia_mpi.models.paw_overlap`.

Work flow (all GPAW text output goes to files in the work folder, never to stdout):

* :meth:`GpawModel.prepare` — the reference SCF of the supercell on all ranks
  (``gpaw_reference.txt``), written to ``gpaw_reference.gpw`` (reused by a restarted run
  with the same settings), and one GPAW communicator per configuration group;
* per configuration–bead: GPAW restarts from the reference file on the group's
  communicator, moves the atoms and either iterates to self-consistency
  (``density = "scf"``, the paper's approach; GPAW starts it from the reference LCAO
  density matrix on the moved orbitals) or keeps the reference density (``"frozen"``:
  the reference pseudo density on the grid and the reference atomic density matrices,
  one Hamiltonian update, no SCF); log ``gpaw_group<g>.txt``;
* reference states: the supercell's reference (H, S) at K projected on the Bloch sums of
  each primitive k folded onto K, so every state carries its primitive k.

Units: energies eV, positions Å; GPAW's atomic units are converted here.
"""
from __future__ import annotations

import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spia_mpi.errors import ConvergenceError, InputError, StackError
from spia_mpi.lattice import supercells
from spia_mpi.models.base import ElectronicModel, ReferenceStates
from spia_mpi.models.paw_overlap import orbital_offsets

logger = logging.getLogger(__name__)

INSTALL_HINT = ("install it with `apt-get install gpaw` (Debian 12: gpaw 22.8 with MPI, ScaLAPACK and libxc, "
                "plus gpaw-data with the PAW setups and dzp basis sets) or run tools/bootstrap.sh, which does "
                "this; see docs/install.md")


def require_gpaw():
    """The ``gpaw`` module, or a StackError saying how to install it."""
    try:
        import gpaw
    except ImportError as exc:
        raise StackError(f"model.kind = 'gpaw' needs GPAW, which is not importable ({exc}): {INSTALL_HINT}") from exc
    return gpaw


def gpaw_status() -> tuple[bool, str, list]:
    """(usable, version or why not, PAW setup folders that exist) for ``check-stack``."""
    try:
        gpaw = require_gpaw()
    except StackError:
        return False, "missing — needed only for model.kind = 'gpaw' (apt-get install gpaw)", []
    return True, str(gpaw.__version__), [p for p in gpaw.setup_paths if Path(p).is_dir()]


@dataclass(frozen=True)
class GpawSettings:
    """GPAW parameters of the reference and configuration calculations.

    mode        'lcao' (the only mode so far)
    basis       LCAO basis ('dzp', or e.g. 'sz(dzp)' for its single-zeta part)
    xc          exchange–correlation functional (PAW setups must exist for it)
    kpts        int [3] Γ-centred Monkhorst–Pack grid of the supercell SCF
    smearing_ev Fermi–Dirac width (eV)
    h_ang       real-space grid spacing (Å) of the density and potential
    density     'scf' or 'frozen'
    convergence_density  GPAW's density criterion (electrons per valence electron)
    maxiter     SCF iterations before a configuration counts as not converged
    aij_min_orbitals  supercells with at least this many orbitals give the PETSc resolvent
                row-distributed sparse H, S, X† (:mod:`spia_mpi.models.gpaw_sparse`); smaller
                ones dense matrices on every rank of the group (same numbers to 1e-10)
    """

    mode: str = "lcao"
    basis: str = "dzp"
    xc: str = "PBE"
    kpts: tuple = (1, 1, 1)
    smearing_ev: float = 0.1
    h_ang: float = 0.2
    density: str = "scf"
    convergence_density: float = 1e-6
    maxiter: int = 100
    aij_min_orbitals: int = 1000

    def calculator_parameters(self) -> dict:
        """Keyword arguments of ``gpaw.GPAW`` (symmetry off: displaced configurations have none)."""
        return dict(mode=self.mode, basis=self.basis, xc=self.xc,
                    kpts={"size": tuple(int(n) for n in self.kpts), "gamma": True},
                    occupations={"name": "fermi-dirac", "width": float(self.smearing_ev)},
                    h=float(self.h_ang), symmetry="off", convergence={"density": float(self.convergence_density)},
                    maxiter=int(self.maxiter), spinpol=False)


# Cost model for ``run --dry-run`` (docs/benchmarks/gpaw.md, "scaling with cell size"), measured on this
# machine's cores: one LCAO SCF iteration costs ≈ n_k (COST_PER_ORBITAL · n_orb + COST_CUBIC · n_orb³)
# core-seconds — the potential matrix grows linearly with the cell (bcc Li 40–160 orbitals: 0.024–0.023 s
# per orbital, Li₂MgH₁₆ 436 orbitals: 0.024), the dense generalized diagonalisation as n³
# (scipy eigh, complex). Iteration counts: Li₂MgH₁₆ reference SCFs took 19 (38 atoms) and 42 (76 atoms),
# a displaced bead (σ = 0.1 Å) restarted from the reference 22.
COST_PER_ORBITAL = 0.023
COST_CUBIC = 1.05e-9
REFERENCE_SCF_ITERATIONS = 30
SCF_ITERATIONS_PER_BEAD = 22


def estimated_scf_seconds(n_orbitals: int, n_kpoints: int, iterations: int) -> float:
    """Core-seconds of ``iterations`` LCAO SCF iterations (fit above; order of magnitude)."""
    return iterations * n_kpoints * (COST_PER_ORBITAL * n_orbitals + COST_CUBIC * float(n_orbitals) ** 3)


@dataclass
class _Stages:
    """Wall and CPU seconds of the named stages of one GPAW step, added to a model's ``timings``
    (``name`` and ``name_cpu``) once the whole step has finished."""

    seconds: dict = field(default_factory=dict)

    def run(self, name: str, fn, *args):
        """``fn(*args)``, timed under ``name``."""
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.seconds[name] = (time.perf_counter() - t0, time.process_time() - c0)
        return out

    def add_to(self, timings: dict):
        for name, (wall, cpu) in self.seconds.items():
            timings[name] = timings.get(name, 0.0) + wall
            timings[name + "_cpu"] = timings.get(name + "_cpu", 0.0) + cpu


class GpawModel(ElectronicModel):
    """LCAO PAW model of a supercell of ``primitive`` (see the module docstring).

    Parameters
    ----------
    primitive : ase.Atoms — reference primitive cell (Å)
    supercell_matrix : int [3, 3]
    settings : GpawSettings
    kpoints : float [n_K, 3] supercell wavevectors K (reduced) at which H, S are wanted;
        each must lie on the Γ-centred ``settings.kpts`` grid.

    :meth:`prepare` must run (collectively) before matrices or reference states are asked for.
    """

    moving_basis = True
    #: below this stored fraction of H the direct resolvent uses MUMPS (sparse LU), else ScaLAPACK
    #: (:meth:`resolvent_preconditioner`)
    MUMPS_BELOW_FILL = 0.5

    def __init__(self, primitive, supercell_matrix, settings: GpawSettings, kpoints):
        self.gpaw = require_gpaw()
        if settings.mode != "lcao":
            raise InputError(f"model.gpaw.mode = '{settings.mode}': only 'lcao' is implemented")
        if settings.density not in ("scf", "frozen"):
            raise InputError(f"model.gpaw.density = '{settings.density}' is not one of: scf, frozen")
        self.primitive = primitive.copy()
        self.settings = settings
        self.supercell_matrix = supercells.as_supercell_matrix(supercell_matrix)
        self.atoms, self.lattice_index, self.primitive_index = supercells.build_supercell(
            self.primitive, self.supercell_matrix)
        self.reference_positions = self.atoms.get_positions()
        self.kpoints = np.atleast_2d(np.asarray(kpoints, float))
        self._check_kpoints()
        self._check_setups()
        self.n_basis = None
        self.n_electrons = None
        self.fermi_level_ev = None
        self._cache = (None, None)
        self._sparse_cache = (None, None)
        self.nonzero_fraction = None
        self.timings = {}       # seconds on this rank: GPAW density (SCF or frozen), H/S, cross overlaps (wall; *_cpu: CPU)

    # ------------------------------------------------------------------ checks
    def _check_kpoints(self):
        grid = np.asarray(self.settings.kpts, int)
        off = self.kpoints * grid
        bad = [k.tolist() for k, o in zip(self.kpoints, off) if not np.allclose(o, np.round(o), atol=1e-8)]
        if bad:
            raise InputError(f"supercell.kpoints {bad} are not on the Γ-centred model.gpaw.kpts grid "
                             f"{grid.tolist()}: GPAW's SCF gives H and S only at its own k-points")

    def _check_setups(self):
        from gpaw.setup_data import search_for_file
        basis = self.settings.basis.split("(")[-1].rstrip(")")
        for sym in sorted(set(self.atoms.get_chemical_symbols())):
            for name, what in ((f"{sym}.{self.settings.xc}", "PAW setup"), (f"{sym}.{basis}.basis", "basis set")):
                try:
                    search_for_file(name)
                except (RuntimeError, FileNotFoundError) as exc:
                    raise InputError(f"model.gpaw: no GPAW {what} '{name}' for element {sym} (xc = "
                                     f"'{self.settings.xc}', basis = '{self.settings.basis}') in "
                                     f"{list(self.gpaw.setup_paths)}") from exc

    # ------------------------------------------------------------------ plan (no SCF)
    def plan(self, n_per_k: int, n_configuration_beads: int, ranks_per_group: int) -> dict:
        """Sizes and a rough cost of the run, from GPAW's setups only (no SCF): for ``run --dry-run``.

        Sets ``n_basis`` and ``n_electrons``. The cost is :func:`estimated_scf_seconds`' fit of
        this machine's measurements (docs/benchmarks/gpaw.md) — an order of magnitude, not a promise.
        """
        self.count_orbitals()
        m_cells = len(supercells.lattice_points(self.supercell_matrix))
        n_orb = self.n_basis // m_cells
        if not 1 <= n_per_k <= n_orb:
            raise InputError(f"spia.states_per_k = {n_per_k}: the GPAW primitive cell has {n_orb} orbitals")
        n_k = int(np.prod(self.settings.kpts))
        # + one iteration's worth for H/S extraction and cross overlaps (measured ≈ 1.1 at 76 atoms)
        iterations = (SCF_ITERATIONS_PER_BEAD if self.settings.density == "scf" else 1) + 1
        reference = estimated_scf_seconds(self.n_basis, n_k, REFERENCE_SCF_ITERATIONS)
        per_bead = estimated_scf_seconds(self.n_basis, n_k, iterations)
        return {"atoms": len(self.atoms), "orbitals": self.n_basis, "valence_electrons": self.n_electrons,
                "primitive_cells": m_cells, "gpaw_kpoints": n_k, "density": self.settings.density,
                "states_per_K": n_per_k * m_cells,
                "dense_H_S_X_MiB_per_rank": round(3 * len(self.kpoints) * self.n_basis ** 2 * 16 / 2**20, 1),
                "petsc_matrices": ("sparse rows per rank" if self.n_basis >= self.settings.aij_min_orbitals
                                   else "dense on every rank, converted"),
                "estimated_core_hours": {
                    "reference_scf": float(f"{reference / 3600:.3g}"),
                    "per_configuration_bead": float(f"{per_bead / 3600:.3g}"),
                    "all_configuration_beads": float(f"{per_bead * n_configuration_beads / 3600:.3g}")},
                "ranks_per_group": ranks_per_group}

    def count_orbitals(self):
        """Set ``n_basis`` and ``n_electrons`` from GPAW's setups and basis files (no calculation)."""
        from gpaw.setup import Setups
        from gpaw.xc import XC
        setups = Setups(self.atoms.numbers, "paw", self.settings.basis, XC(self.settings.xc))
        self.n_basis = int(setups.nao)
        self.n_electrons = float(setups.nvalence)

    # ------------------------------------------------------------------ set-up
    def prepare(self, comm, ranks_per_group: int, workdir, positions_cbav=None, keep_scf: bool = False):
        """Reference SCF on all ranks of ``comm`` (MPI_COMM_WORLD), GPAW group communicators.

        ``workdir``: folder for the reference file and the GPAW logs (the checkpoint folder);
        ``positions_cbav``: the run's configurations, used only to name configuration and
        bead in error messages; ``keep_scf``: :meth:`configuration_done` keeps the SCF files.
        Collective over every rank.
        """
        self._keep_scf = bool(keep_scf)
        from gpaw import GPAW
        from gpaw.mpi import world
        if world.size != (1 if comm is None else comm.size):
            raise InputError("the GPAW model needs the run's communicator to be MPI_COMM_WORLD")
        self._configurations = positions_cbav
        self._workdir = Path(workdir)
        if world.rank == 0:
            self._workdir.mkdir(parents=True, exist_ok=True)
        world.barrier()
        self.group = world.rank // ranks_per_group
        for g in range(world.size // ranks_per_group):           # collective over the world
            c = world.new_communicator(np.arange(g * ranks_per_group, (g + 1) * ranks_per_group))
            if c is not None:
                self._group_comm = c
        from spia_mpi.parallel.mpi import world as mpi_world
        self._mpi_group = mpi_world().Split(color=self.group, key=world.rank)   # the same ranks, for mpi4py
        self._reference_file = self._workdir / "gpaw_reference.gpw"
        stamp_file = self._workdir / "gpaw_reference.json"
        reference_settings = {k: v for k, v in asdict(self.settings).items()
                              if k not in ("density", "maxiter", "aij_min_orbitals")}
        stamp = json.dumps({"settings": reference_settings, "numbers": self.atoms.numbers.tolist(),
                            "cell": np.asarray(self.atoms.cell[:]).round(10).tolist(),
                            "positions": self.reference_positions.round(10).tolist()}, sort_keys=True)
        self._stamp = stamp
        reuse = self._reference_file.exists() and stamp_file.exists() and stamp_file.read_text() == stamp
        reuse = bool(world.sum(int(reuse)) == world.size)
        if reuse:
            logger.info("GPAW reference state reused from %s", self._reference_file)
        else:
            calc = GPAW(**self.settings.calculator_parameters(), communicator=world,
                        txt=str(self._workdir / "gpaw_reference.txt"))
            atoms = self.atoms.copy()
            atoms.calc = calc
            try:
                atoms.get_potential_energy()
            except self.gpaw.KohnShamConvergenceError as exc:
                raise ConvergenceError(f"GPAW reference SCF did not converge in {self.settings.maxiter} "
                                       f"iterations (model.gpaw.maxiter; log {self._workdir}/gpaw_reference.txt)"
                                       ) from exc
            calc.write(str(self._reference_file))
            if world.rank == 0:
                stamp_file.write_text(stamp)
        # H of the stored density, also right after the SCF, so a resumed run has the same reference
        world.barrier()
        calc = GPAW(str(self._reference_file), communicator=world, txt=None)
        calc.set_positions(calc.get_atoms())
        self._kmap = self._gpaw_kpoint_indices(calc)
        self.fermi_level_ev = float(calc.get_fermi_level())
        self.n_electrons = float(calc.wfs.nvalence)
        self._setup_geometry(calc)
        self.n_basis = int(calc.wfs.setups.nao)
        self._reference = {}
        self._cross = CrossOverlapCache(calc.wfs.setups)
        self._sparse = self.n_basis >= self.settings.aij_min_orbitals
        if self._sparse:          # each group: its ranks' rows of the reference H, S (no dense copy)
            self._reference_matrices = None
            state = GPAW(str(self._reference_file), communicator=self._group_comm, txt=None)
            state.set_positions(state.get_atoms())
            self._reference_rows = self._sparse_build(state)
        else:
            self._reference_matrices = self._extract(calc, world)
        logger.info("GPAW reference: %d orbitals, %g valence electrons, ε_F = %.4f eV", self.n_basis,
                    self.n_electrons, self.fermi_level_ev)

    def _gpaw_kpoint_indices(self, calc) -> list:
        """Index into GPAW's k-point list of every K of the model."""
        kk = np.asarray(calc.wfs.kd.ibzk_kc)
        out = []
        for K in self.kpoints:
            d = np.mod(kk - K + 0.5, 1.0) - 0.5
            hit = np.flatnonzero(np.all(np.abs(d) < 1e-8, axis=1))
            if hit.size == 0:
                raise InputError(f"supercell K-point {K.tolist()} is not among GPAW's k-points")
            out.append(int(hit[0]))
        return out

    def _setup_geometry(self, calc):
        """Orbital blocks and lattice translations t_s of the supercell atoms (for the k-projection)."""
        setups = calc.wfs.setups
        m_index = setups.basis_indices()
        self._orbitals = [np.arange(*m_index[a]) for a in range(len(setups))]
        self._spos_ref = np.array(calc.spos_ac)
        a_prim = np.asarray(self.primitive.cell[:], float)
        prim_frac = np.mod(self.primitive.get_scaled_positions(wrap=False), 1.0)
        cart = self._spos_ref @ np.asarray(self.atoms.cell[:], float)
        t = (cart - prim_frac[self.primitive_index] @ a_prim) @ np.linalg.inv(a_prim)
        if not np.allclose(t, np.round(t), atol=1e-6):
            raise InputError("the supercell atoms are not lattice translations of the primitive atoms")
        self._translations = np.round(t)
        n_prim = len(self.primitive)
        counts = [len(self._orbitals[int(np.flatnonzero(self.primitive_index == p)[0])]) for p in range(n_prim)]
        self._prim_offsets = np.concatenate([[0], np.cumsum(counts)])
        self._offsets = orbital_offsets(setups)

    def _extract(self, calc, comm, kmap=None) -> tuple[np.ndarray, np.ndarray]:
        """H (eV) and S of GPAW's current state at every K of the model, on every rank of ``comm``:
        complex [n_K, n_ao, n_ao] each (GPAW's lower triangles made Hermitian). ``kmap``: GPAW's
        k-point index of each wanted K (default: the model's K-points)."""
        kmap = self._kmap if kmap is None else kmap
        from ase.units import Ha
        from gpaw.utilities.tools import tri2full
        wfs = calc.wfs
        n = wfs.setups.nao
        h = np.zeros((len(kmap), n, n), complex)
        s = np.zeros_like(h)
        for kpt in wfs.kpt_u:
            hits = [i for i, k in enumerate(kmap) if k == kpt.k]
            if kpt.s != 0 or not hits:
                continue
            h_mm = wfs.eigensolver.calculate_hamiltonian_matrix(calc.hamiltonian, wfs, kpt)
            tri2full(h_mm)
            s_mm = np.array(wfs.S_qMM[kpt.q], copy=True)
            tri2full(s_mm)
            if wfs.gd.comm.rank == 0 and wfs.bd.comm.rank == 0:
                for i in hits:
                    h[i] = h_mm * Ha
                    s[i] = s_mm
        comm.sum(h)
        comm.sum(s)
        return h, s

    # ------------------------------------------------------------------ configurations
    def _label(self, positions) -> str:
        conf = getattr(self, "_configurations", None)
        if conf is not None:
            for c in range(conf.shape[0]):
                for b in range(conf.shape[1]):
                    if np.array_equal(np.asarray(conf[c, b]), positions):
                        return f"configuration {c}, bead {b}"
        return "a configuration"

    def _checked_positions(self, positions_av) -> np.ndarray:
        """Positions as contiguous float [N, 3] (Å), refused unless they are the supercell's N atoms."""
        pos = np.ascontiguousarray(positions_av, dtype=float)
        if pos.shape != (len(self.atoms), 3):
            raise InputError(f"positions have shape {pos.shape}, the GPAW supercell has {len(self.atoms)} atoms")
        return pos

    @contextmanager
    def _group_log(self, pos, what: str):
        """The group's GPAW text log, opened for appending on rank 0 of the group (None on the other
        ranks) under a header naming the configuration–bead and ``what``; closed on exit."""
        log = None
        if self._group_comm.rank == 0:
            log = open(self._workdir / f"gpaw_group{self.group}.txt", "a")
            log.write(f"\n===== {self._label(pos)} ({what}) =====\n")
        try:
            yield log
        finally:
            if log is not None:
                log.close()

    def matrices(self, positions_av) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(H eV, S, X) at every K for one configuration–bead: complex [n_K, n_basis, n_basis] each.

        GPAW runs on this rank's group communicator; the last configuration is kept, so
        asking for several K of the same positions runs GPAW once.
        """
        pos = self._checked_positions(positions_av)
        key = pos.tobytes()
        if self._cache[0] == key:
            return self._cache[1]
        comm = self._group_comm
        with self._group_log(pos, self.settings.density) as log:
            stages = _Stages()
            calc = stages.run("gpaw_density", self._density_state, pos, comm, log)
            h, s = stages.run("gpaw_hs_extraction", self._extract, calc, comm)
            x = stages.run("gpaw_cross_overlap", self._cross, calc.wfs.gd.cell_cv, calc.wfs.gd.pbc_c,
                           self._spos_ref, calc.spos_ac, self.kpoints)
            stages.add_to(self.timings)
        self._cache = (key, (h, s, x))
        return h, s, x

    def sparse_rows(self, positions_av) -> "SparseRows":
        """This rank's rows of H (eV), S and X† at every K of the model, as CSR matrices
        [n_local, n_basis] (:mod:`spia_mpi.models.gpaw_sparse`; the rows of the rank's atom block
        in the group). Collective on the group; the last configuration is kept."""
        pos = self._checked_positions(positions_av)
        key = pos.tobytes()
        if self._sparse_cache[0] == key:
            return self._sparse_cache[1]
        self._sparse_cache = (None, None)
        with self._group_log(pos, f"{self.settings.density}, sparse rows") as log:
            stages = _Stages()
            calc = stages.run("gpaw_density", self._density_state, pos, self._group_comm, log)
            rows = stages.run("gpaw_sparse_rows", self._sparse_build, calc)
            stages.add_to(self.timings)
        if self.nonzero_fraction is None:
            self.nonzero_fraction = rows.nonzero_fraction(self._mpi_group)
            logger.info("GPAW sparse H, S, X†: non-zero fractions %.3f, %.3f, %.3f of %d² (K = 0 of the list), "
                        "%d rows on rank 0 of each group", *self.nonzero_fraction, self.n_basis, len(rows.block.rows))
        self._sparse_cache = (key, rows)
        return rows

    def _sparse_build(self, calc) -> "SparseRows":
        """:class:`SparseRows` of GPAW's current state (potential, ΔH, positions) at the model's K."""
        from ase.units import Ha
        from spia_mpi.models import gpaw_sparse as gs, paw_overlap as po
        wfs, ham = calc.wfs, calc.hamiltonian
        gd = wfs.gd
        blocks = gs.atom_row_blocks(self._offsets, self._group_comm.size)
        block = blocks[self._group_comm.rank]
        owner = np.zeros(gd.comm.size, int)
        gd.comm.all_gather(np.array([self._group_comm.rank]), owner)
        n_atoms = len(self._orbitals)
        tci, tci_s = po.calculators(self._cross.expansions, self._cross.spheres, gd.cell_cv, gd.pbc_c, self._spos_ref,
                                    calc.spos_ac, self.kpoints)
        y = gs.potential_lower_rows(wfs.basis_functions, ham.vt_sG[0], gd.comm, [blocks[g].rows for g in owner],
                                    self.kpoints, bool(wfs.basis_functions.gamma and wfs.dtype == float))
        o, t = gs.two_centre_rows(tci, self._offsets, block)
        d_h = gs.atomic_hamiltonians(ham.dH_asp, wfs.setups, gd.comm)
        d_s = [np.asarray(s.dO_ii) for s in wfs.setups]
        p_h, p_s, x_p = gs.projector_rows(tci, self._offsets, block,
                                          [(0, gs.one_centre_pairs(d_h)), (0, gs.one_centre_pairs(d_s)),
                                           po.adjoint_terms(self._cross.spheres, tci_s, n_atoms)])
        h = [(gs.hermitian_part(y[k], blocks, self._mpi_group) + t[k] + p_h[k]) * Ha for k in range(len(y))]
        return gs.SparseRows(block, h, [o[k] + p_s[k] for k in range(len(o))],
                             po.adjoint_rows(tci, self._offsets, block, x_p))

    def _density_state(self, pos, comm, log):
        """GPAW on ``comm`` at positions ``pos`` with this configuration's density (scf or frozen;
        the reference positions have the reference SCF's own density, no new SCF)."""
        if self.settings.density == "scf" and not np.array_equal(pos, self.reference_positions):
            return self._scf_state(pos, comm, log)
        from gpaw import GPAW
        calc = GPAW(str(self._reference_file), communicator=comm, txt=log)
        atoms = calc.get_atoms()
        atoms.set_positions(pos)
        calc.set_positions(atoms)
        return calc

    def matrices_at(self, positions_av, kpoints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(H eV, S, X) at any supercell wavevectors ``kpoints`` float [n, 3] (reduced), not only on the
        SCF's k-grid: complex [n, n_basis, n_basis] each.

        The configuration's density (scf or frozen, as :meth:`matrices`) is kept fixed and GPAW's
        Hamiltonian is built at ``kpoints`` (GPAW's ``fixed_density``, symmetry off); ``positions_av``
        equal to the reference positions give the reference state. Runs on the group communicator.
        """
        pos = np.ascontiguousarray(positions_av, dtype=float)
        kpts = np.atleast_2d(np.asarray(kpoints, float))
        comm = self._group_comm
        log = open(self._workdir / f"gpaw_group{self.group}.txt", "a") if comm.rank == 0 else None
        try:
            if log is not None:
                log.write(f"\n===== {self._label(pos)} ({self.settings.density}) at {len(kpts)} K-points =====\n")
            state = self._density_state(pos, comm, log)
            calc = state.fixed_density(kpts=kpts.tolist(), symmetry="off", communicator=comm, txt=log)
            kk = np.asarray(calc.wfs.kd.ibzk_kc)
            kmap = [int(np.flatnonzero(np.all(np.abs(kk - K) < 1e-10, axis=1))[0]) for K in kpts]
            h, s = self._extract(calc, comm, kmap)
            x = self._cross(calc.wfs.gd.cell_cv, calc.wfs.gd.pbc_c, self._spos_ref, calc.spos_ac, kpts)
        finally:
            if log is not None:
                log.close()
        return h, s, x

    def _scf_state(self, pos, comm, log):
        """GPAW at the converged density of ``pos`` (density = "scf"), checkpointed per configuration–bead.

        The SCF (restarted from the reference state) is written to ``scf_<hash>.gpw`` in the work
        folder (density, no wave functions; atomically), and H is always built from that file,
        so a resumed run that finds the file skips the SCF and gets bit-identical matrices.
        """
        import os
        from gpaw import GPAW
        saved = self._scf_file(pos)
        if not bool(comm.sum(int(saved.exists())) == comm.size):
            calc = GPAW(str(self._reference_file), communicator=comm, txt=log)
            atoms = calc.get_atoms()
            calc.scf.maxiter = int(self.settings.maxiter)   # (a restart keyword would drop GPAW 22.8's SCF loop)
            atoms.set_positions(pos)
            atoms.calc = calc
            try:
                atoms.get_potential_energy()
            except self.gpaw.KohnShamConvergenceError as exc:
                raise ConvergenceError(
                    f"GPAW SCF of {self._label(pos)} did not converge in {self.settings.maxiter} iterations "
                    f"(model.gpaw.maxiter, model.gpaw.convergence_density; log "
                    f"{self._workdir}/gpaw_group{self.group}.txt)") from exc
            tmp = saved.with_name(saved.stem + f".tmp{self.group}.gpw")
            calc.write(str(tmp))
            if comm.rank == 0:
                os.replace(tmp, saved)
            comm.barrier()
        calc = GPAW(str(saved), communicator=comm, txt=log)
        calc.set_positions(calc.get_atoms())
        return calc

    def _scf_file(self, pos, prefix="scf", suffix=".gpw") -> Path:
        """Work-folder file of one configuration–bead: name from the reference stamp and the positions."""
        import hashlib
        digest = hashlib.sha1(self._stamp.encode() + np.ascontiguousarray(pos, float).tobytes()).hexdigest()[:24]
        return self._workdir / f"{prefix}_{digest}{suffix}"

    def generalized_eigenvalues(self, positions_av, kpoint) -> np.ndarray:
        """Eigenvalues ε of H c = ε S c at K (eV, ascending, float [n_basis]); collective on the group.

        With density = "scf" they are also written to ``eig_<hash>.npy`` (all K) beside the SCF
        file, so the ensemble Fermi level of a resumed run needs no SCF file (deleted by
        :meth:`configuration_done`) and no SCF.
        """
        pos = np.ascontiguousarray(positions_av, dtype=float)
        ik = self._k_index(kpoint)
        if self.settings.density != "scf":
            return self._eigenvalues(pos, [ik])[0]
        comm = self._group_comm
        record = self._scf_file(pos, "eig", ".npy")
        if bool(comm.sum(int(record.exists())) == comm.size):
            return np.load(record)[ik]
        eps = self._eigenvalues(pos, range(len(self.kpoints)))
        if comm.rank == 0:
            import os
            tmp = record.with_name(record.stem + f".tmp{self.group}.npy")
            np.save(tmp, eps)
            os.replace(tmp, record)
        comm.barrier()
        return eps[ik]

    def _eigenvalues(self, pos, k_indices) -> np.ndarray:
        """Generalized eigenvalues (eV) at the given K indices, float [len, n_basis]: from the dense
        matrices, or in sparse mode from the group's rows gathered one K at a time (2 n² transient)."""
        from scipy.linalg import eigh
        if not self._sparse:
            h, s, _ = self.matrices(pos)
            return np.array([eigh(h[ik], s[ik], eigvals_only=True) for ik in k_indices])
        from spia_mpi.models.gpaw_sparse import gather_dense
        rows = self.sparse_rows(pos)
        return np.array([eigh(gather_dense(rows.h[ik], self._mpi_group), gather_dense(rows.s[ik], self._mpi_group),
                              eigvals_only=True) for ik in k_indices])

    def configuration_done(self, positions_bav):
        """The resolvents of every bead of this configuration are in the run's checkpoint: delete
        their SCF files (unless ``keep_scf``; the small eigenvalue records stay). Not collective:
        only rank 0 of a group deletes, so the caller may be the group leader alone."""
        if self.settings.density != "scf" or self._keep_scf or self._group_comm.rank != 0:
            return
        for pos in positions_bav:
            self._scf_file(pos).unlink(missing_ok=True)

    def forces(self, positions_av) -> np.ndarray:
        """Self-consistent forces (eV/Å, float [N, 3]) at ``positions_av`` (Å), whatever
        ``settings.density`` is: GPAW restarts from the reference state on this rank's group
        communicator and iterates to self-consistency (used by ``spia_mpi harmonic`` for Φ)."""
        from gpaw import GPAW
        pos = np.ascontiguousarray(positions_av, dtype=float)
        comm = self._group_comm
        log = open(self._workdir / f"gpaw_group{self.group}.txt", "a") if comm.rank == 0 else None
        try:
            if log is not None:
                log.write("\n===== forces of a displaced structure =====\n")
            calc = GPAW(str(self._reference_file), communicator=comm, txt=log)
            atoms = calc.get_atoms()
            calc.scf.maxiter = int(self.settings.maxiter)
            atoms.set_positions(pos)
            atoms.calc = calc
            try:
                return np.array(atoms.get_forces(), float)
            except self.gpaw.KohnShamConvergenceError as exc:
                raise ConvergenceError(f"GPAW SCF of a displaced structure (forces) did not converge in "
                                       f"{self.settings.maxiter} iterations (log {self._workdir}/gpaw_group"
                                       f"{self.group}.txt)") from exc
        finally:
            if log is not None:
                log.close()

    def bloch_gauge(self, positions_av, kpoint) -> np.ndarray:
        """Phases D (complex [n_basis]) that make H, S and Q continuous functions of the positions.

        GPAW builds its Bloch sums at K on the positions wrapped into the cell (scaled % 1), so
        an atom that crosses a cell face relative to R⁰ (a supercell lattice translation L_a
        of its position, unwrapped − wrapped, relative to R⁰'s) multiplies its orbitals by
        e^{−2πiK·L_a}. D = e^{2πiK·L_a} on atom a's orbitals undoes that: D*HD, D*SD and D*Q are
        continuous (needed for finite differences ∂/∂u; tests/test_paw_overlap.py checks it at
        K = ¼, where the sign matters — at K = 0 and ½ it does not); g = Q†(zS − H)⁻¹Q is the
        same either way.
        """
        def translations(positions, wrapped):
            unwrapped = np.linalg.solve(np.asarray(self.atoms.cell[:], float).T, np.asarray(positions, float).T).T
            return np.round(unwrapped - wrapped)

        atoms = self.atoms.copy()
        atoms.set_positions(positions_av)
        wrapped = atoms.get_scaled_positions() % 1.0           # GPAW's own wrapping (calculator.initialize_positions)
        shift = translations(positions_av, wrapped) - translations(self.reference_positions, self._spos_ref)
        phase_a = np.exp(2j * np.pi * (shift @ np.asarray(kpoint, float).reshape(3)))
        d = np.empty(self.n_basis, complex)
        for a, orbs in enumerate(self._orbitals):
            d[orbs] = phase_a[a]
        return d

    def _k_index(self, kpoint) -> int:
        d = np.abs(self.kpoints - np.asarray(kpoint, float).reshape(3)).max(axis=1)
        if d.min() > 1e-10:
            raise InputError(f"K-point {list(kpoint)} is not one of the model's supercell K-points")
        return int(np.argmin(d))

    # ------------------------------------------------------------------ ElectronicModel
    def hamiltonian_dense(self, positions_av, kpoint) -> np.ndarray:
        return self.matrices(positions_av)[0][self._k_index(kpoint)]

    def overlap_dense(self, positions_av, kpoint) -> np.ndarray:
        return self.matrices(positions_av)[1][self._k_index(kpoint)]

    def projected_problem_dense(self, positions_av, kpoint, p):
        """(H, S, Q = X† p): the resolvent in the common pseudo space is Q†[zS − H]⁻¹Q."""
        h, s, x = self.matrices(positions_av)
        ik = self._k_index(kpoint)
        return h[ik], s[ik], x[ik].conj().T @ p

    def projected_problem_petsc(self, positions_av, kpoint, p, comm):
        """As :meth:`projected_problem_dense`, H and S as PETSc AIJ matrices on ``comm``.

        Supercells with ≥ ``settings.aij_min_orbitals`` orbitals, with ``comm`` the group's ranks:
        each rank builds only its rows of H, S and Q (:meth:`sparse_rows`; the Mat's row layout is
        the rank's atom block); smaller ones: dense matrices on every rank, converted."""
        if not self.uses_sparse_rows(comm):
            h, s, q = self.projected_problem_dense(positions_av, kpoint, p)
            return dense_to_aij(h, comm), dense_to_aij(s, comm), q
        from spia_mpi.models import gpaw_sparse as gs
        rows = self.sparse_rows(positions_av)
        ik = self._k_index(kpoint)
        q_local = rows.xh[ik] @ p
        q = np.concatenate(comm.allgather(q_local)) if comm.size > 1 else np.asarray(q_local)
        return gs.to_aij(rows.h[ik], comm), gs.to_aij(rows.s[ik], comm), q

    def uses_sparse_rows(self, comm) -> bool:
        """Whether :meth:`projected_problem_petsc` on ``comm`` takes the row-distributed sparse path."""
        return self._sparse and comm.size == self._mpi_group.size and comm.rank == self._group_comm.rank

    def resolvent_preconditioner(self, kpoint):
        """The PETSc resolvent's default for this model: no Krylov preconditioner but one direct LU of
        z S − H per bead and K, shared by all reference states (:mod:`spia_mpi.engine.direct`; GMRES does
        not converge on the badly conditioned LCAO zS − H, docs/models.md "Resolvent solver for GPAW").
        ScaLAPACK (dense block-cyclic LU: 2.5× faster than MUMPS on a full n = 1744 matrix on 2 ranks,
        docs/benchmarks.md) unless the sparse rows store less than ``MUMPS_BELOW_FILL`` of H (dense
        matrices count as full), then MUMPS."""
        from spia_mpi.engine.direct import DirectSolve
        fill = 1.0 if self.nonzero_fraction is None else self.nonzero_fraction[0]
        return DirectSolve("mumps" if fill < self.MUMPS_BELOW_FILL else "scalapack")

    def hamiltonian_petsc(self, positions_av, kpoint, comm):
        return dense_to_aij(self.hamiltonian_dense(positions_av, kpoint), comm)

    def reference_states(self, kpoint, n_per_k: int) -> ReferenceStates:
        """The lowest ``n_per_k`` reference Bloch states of every primitive k folded onto K.

        ``vectors`` are LCAO coefficients c in the supercell basis at R⁽⁰⁾ with
        c† S(R⁽⁰⁾) c = 1 (S-orthonormal, not Euclidean), ``energies`` their reference band
        energies (eV; GPAW's eigenvalues of the reference state).
        """
        n_orb = int(self._prim_offsets[-1])
        if not 1 <= n_per_k <= n_orb:
            raise InputError(f"states per k = {n_per_k}: the GPAW primitive cell has {n_orb} orbitals")
        ik = self._k_index(kpoint)
        if ik not in self._reference:
            self._reference[ik] = self._k_resolved(ik)
        kpts, vecs, ens = self._reference[ik]
        cols = [(j, n) for j in range(len(kpts)) for n in range(n_per_k)]
        return ReferenceStates(np.stack([vecs[j][:, n] for j, n in cols], axis=1),
                               np.array([j for j, _ in cols]), np.array([n for _, n in cols]),
                               kpts, np.array([ens[j][n] for j, n in cols]))

    def bloch_sums(self, kpoint_prim) -> np.ndarray:
        """B_k: supercell coefficients of the primitive Bloch sums at k, complex [n_basis, n_orb_prim].

        B[(s, μ), (p(s), μ)] = exp(−2πi k·t_s)/√M, with t_s the primitive lattice vector from
        primitive atom p(s) to supercell atom s (reduced, as GPAW wraps the positions). The sign
        is that of GPAW's LCAO matrices as extracted here (their Bloch phase is the complex
        conjugate of e^{iK·L}): with it B_k†S B_k' = 0 for k ≠ k' at a complex K (at K = 0 or
        1/2 the phases are real and both signs agree); tests/test_spectral_gpaw.py checks it.
        """
        k = np.asarray(kpoint_prim, float)
        m_cells = len(supercells.lattice_points(self.supercell_matrix))
        b = np.zeros((self.n_basis, int(self._prim_offsets[-1])), complex)
        for s_atom, orbs in enumerate(self._orbitals):
            p = self.primitive_index[s_atom]
            phase = np.exp(-2j * np.pi * (k @ self._translations[s_atom])) / math.sqrt(m_cells)
            cols = np.arange(self._prim_offsets[p], self._prim_offsets[p + 1])
            b[orbs, cols] = phase
        return b

    def _k_resolved(self, ik):
        from scipy.linalg import eigh
        kpts = supercells.folded_kpoints(self.supercell_matrix, self.kpoints[ik])
        vecs, ens = [], []
        for k in kpts:
            b = self.bloch_sums(k)
            e, u = eigh(*self._reference_projected(ik, b))
            vecs.append(b @ u)
            ens.append(e)
        return kpts, vecs, ens


    def _reference_projected(self, ik, b) -> np.ndarray:
        """(B†H⁰B, B†S⁰B) at the ik-th K for Bloch sums B [n_basis, n_orb]: from the dense reference
        matrices, or from this group's sparse rows (row blocks summed over the group)."""
        if self._reference_matrices is not None:
            return np.stack([b.conj().T @ m[ik] @ b for m in self._reference_matrices])
        rows = self._reference_rows
        mine = b[rows.block.rows.start:rows.block.rows.stop].conj().T
        local = np.stack([mine @ (m[ik] @ b) for m in (rows.h, rows.s)])
        return self._mpi_group.allreduce(local) if self._mpi_group.size > 1 else local


class CrossOverlapCache:
    """:func:`spia_mpi.models.paw_overlap.cross_overlap` with GPAW's radial expansions made once."""

    def __init__(self, setups):
        from spia_mpi.models.paw_overlap import sphere_data, tci_expansions
        self.setups = setups
        self.expansions = tci_expansions(setups)
        self.spheres = sphere_data(setups)

    def __call__(self, cell_cv, pbc_c, spos_ref_ac, spos_ac, kpts_kc):
        from spia_mpi.models.paw_overlap import cross_overlap
        return cross_overlap(self.setups, cell_cv, pbc_c, spos_ref_ac, spos_ac, kpts_kc, self.expansions,
                             self.spheres)


def dense_to_aij(matrix: np.ndarray, comm):
    """A complex MPIAIJ Mat on ``comm`` holding the non-zeros of the dense ``matrix`` (rows split)."""
    from scipy.sparse import csr_matrix
    from spia_mpi.parallel import stack
    PETSc = stack.petsc()
    n = matrix.shape[0]
    layout = PETSc.Vec().create(comm=PETSc.Comm(comm))
    layout.setSizes(n)
    layout.setUp()
    r0, r1 = layout.getOwnershipRange()
    layout.destroy()
    block = csr_matrix(matrix[r0:r1])
    a = PETSc.Mat().createAIJ([[r1 - r0, n], [r1 - r0, n]],
                              csr=(block.indptr.astype(PETSc.IntType), block.indices.astype(PETSc.IntType),
                                   block.data.astype(PETSc.ScalarType)), comm=PETSc.Comm(comm))
    a.assemble()
    return a
