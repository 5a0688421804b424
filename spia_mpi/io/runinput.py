"""The input file of ``spia_mpi run``: TOML tables validated into frozen dataclasses.

Every key, its unit and default is listed by :func:`reference` (and in
docs/input.md, generated from this schema). Relative paths are taken relative
to the input file's folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spia_mpi.errors import InputError
from spia_mpi.io.harmonicinput import HarmonicInput
from spia_mpi.io.inputs import (all_of, in_range, load, nonempty, nonnegative, option, positive,
                             reference_markdown)
from spia_mpi.io.spectralinput import SpectralInput


def _int_matrix_or_diagonal(v):
    if len(v) == 3 and all(isinstance(x, int) for x in v):
        return None
    if len(v) == 3 and all(isinstance(r, (list, tuple)) and len(r) == 3 for r in v):
        return None
    return "must be 3 integers (diagonal) or a 3×3 integer matrix"


def _kpoint_list(v):
    for k in v:
        if len(k) != 3:
            return "must be a list of 3-component wavevectors, e.g. [[0, 0, 0], [0.5, 0, 0]]"
    return None


def _at_least_two(v):
    return None if v >= 2 else "must be ≥ 2"


def _bounded(lo, hi, unit: str, low_hint: str, high_hint: str):
    """Check for a physical quantity: positive and inside [lo, hi], else a message that names the
    likely unit mix-up (values outside are almost always eV/meV/K or Å/bohr/nm slips)."""
    def check(v):
        if not v > 0:
            return "must be > 0"
        if v < lo:
            return f"is below {lo:g} {unit}: {low_hint}"
        if v > hi:
            return f"is above {hi:g} {unit}: {high_hint}"
        return None
    return check


def _each(check):
    """``check`` applied to every entry of a list (the first message, naming the entry)."""
    def each(v):
        for i, x in enumerate(v):
            msg = check(x)
            if msg:
                return f"entry {i} ({x:g}) {msg}"
        return None
    return each


def _window(v):
    if len(v) != 2 or not v[0] < v[1]:
        return "must be [lower, upper], lower < upper"
    if not v[0] < 0 < v[1]:
        return ("must contain ε_F (lower < 0 < upper): the window is relative to ε_F and the Fermi-surface "
                "weights are centred there")
    if max(abs(x) for x in v) > 100.0:
        return "reaches more than 100 eV from ε_F: in meV? (give eV)"
    return None


def _fd_order(v):
    return None if v in (2, 4, 6, 8) else "must be 2, 4, 6 or 8"


def _grid_points(v):
    if len(v) != 3:
        return "must have 3 entries (points along a, b, c)"
    return None if all(n >= 2 for n in v) else "must be ≥ 2 along every vector (one point has no kinetic energy)"


_TEMPERATURE = _bounded(1.0, 1e5, "K", "a temperature in eV? (290 K = 0.025 eV; give kelvin)",
                        "a temperature in meV or °F? (give kelvin)")


# PETSc options whose values must be numbers (float) or integers (int)
_PETSC_NUMERIC = {"ksp_rtol": float, "ksp_atol": float, "ksp_divtol": float, "ksp_max_it": int,
                  "ksp_gmres_restart": int, "pc_factor_levels": int}


def _petsc_options(v):
    """Option names without '-' or the prefix; values string/number/boolean; known numeric keys typed."""
    for k, x in v.items():
        if not k or k.startswith("-") or k.startswith("spia_resolvent_") or not k.replace("_", "").isalnum():
            return f"has the option name '{k}': give PETSc option names without '-' and without the prefix"
        if isinstance(x, (dict, list)) or not isinstance(x, (str, int, float, bool)):
            return f"has {k} = {x!r}: PETSc option values must be strings, numbers or booleans"
        want = _PETSC_NUMERIC.get(k)
        if want is not None:
            ok = (isinstance(x, int) and not isinstance(x, bool)) if want is int else \
                (isinstance(x, (int, float)) and not isinstance(x, bool))
            if not ok:
                return f"has {k} = {x!r}: expected {'an integer' if want is int else 'a number'}"
            if x <= 0:
                return f"has {k} = {x!r}: must be > 0"
    return None


@dataclass(frozen=True)
class HolsteinInput:
    lattice_constant_ang: float = option(1.0, units="Å", check=_bounded(0.3, 50.0, "Å", "give ångström",
                                                                        "in bohr or pm? (give ångström)"),
                                         doc="simple cubic lattice constant a (0.3–50 Å)")
    hopping_ev: float = option(1.0, units="eV", check=_bounded(1e-3, 20.0, "eV", "give eV",
                                                               "in meV? (give eV)"),
                               doc="nearest-neighbour hopping t (band −2tΣcos k_α a; 1 meV – 20 eV)")
    coupling_ev_per_ang: float = option(0.5, units="eV/Å", doc="Holstein coupling g: on-site energy g·u_z")
    electrons_per_site: float = option(1.0, check=in_range(1e-6, 2.0), doc="filling, both spins (1 = half filling)")
    mass_amu: float = option(1.0, units="amu", check=_bounded(0.5, 300.0, "amu", "an electron mass? (give amu)",
                                                              "in units of the electron mass? (give amu)"),
                             doc="ion mass (0.5–300 amu)")


@dataclass(frozen=True)
class GridInput:
    structure: str = option("", doc="primitive structure: file ASE reads or shipped example name (any cell, "
                                    "also non-orthogonal; any supercell matrix)")
    grid_per_cell: tuple[int, ...] = option((6, 6, 6), check=_grid_points,
                                            doc="grid points per primitive cell along a, b, c (each ≥ 2; a non-diagonal "
                                                "supercell gets its own grid at the finest of these spacings, commensurate with the "
                                                "primitive translations)")
    spacing_ang: float | None = option(None, units="Å", check=_bounded(0.01, 2.0, "Å", "in nm? (give Å: 0.01 nm = 0.1 Å)",
                                                                        "in bohr or pm? (give Å; typical 0.1–0.3 Å)"),
                                       doc="target grid spacing h (0.01–2 Å) instead of grid_per_cell: ⌈|a_i|/h⌉ "
                                           "points (at least 2) along each primitive vector a_i, so the actual "
                                           "spacing is ≤ h")
    fd_order: int = option(4, check=_fd_order, doc="finite-difference order of the kinetic energy: 2, 4, 6 or 8")
    screening: Literal["lindhard", "thomas-fermi", "none"] = option("lindhard", doc="dielectric screening of the pseudopotentials")
    potential_files: str | tuple[str, ...] = option(
        "", doc="V(r) per configuration and bead from DFT local-potential files instead of the pseudopotentials: "
                "a pattern with {c} (configuration, numbered as in the configuration source before skip/stride) "
                "and {b} (bead), e.g. \"pot/conf{c}_bead{b}.LOCPOT\", or a list with one file per (c, b), index "
                "c·N_b + b. Formats: VASP LOCPOT/CHGCAR layout, Gaussian cube. Each file's cell must equal the "
                "supercell, its grid the model grid (supercell × grid_per_cell) or an integer multiple of it "
                "(Fourier-truncated), its atoms the configuration's positions (1e-3 Å)")
    potential_format: Literal["auto", "vasp", "cube"] = option(
        "auto", doc="format of the potential files; 'auto': '.cube' → cube, 'LOCPOT'/'CHGCAR' in the name → vasp")
    potential_units: Literal["auto", "ev", "hartree", "rydberg"] = option(
        "auto", doc="energy unit of the file values; 'auto': eV for VASP (LOCPOT), Hartree for cube files")
    potential_sign: int = option(1, check=lambda v: None if v in (1, -1) else "must be +1 or -1", doc="+1: the file holds the potential energy of an electron (VASP LOCPOT); "
                                        "−1: it holds the electrostatic potential φ (V = −eφ, e.g. Gaussian cubegen)")
    potential_zero_mean: bool = option(True, doc="subtract each file's grid average (G = 0 dropped, as for the "
                                                 "pseudopotentials), removing the arbitrary potential reference")
    reference_potential_file: str = option(
        "", doc="potential file of the reference structure (for the reference Fermi level); needed with "
                "potential_files unless spia.fermi_level_ev is given")


def _three_positive(v):
    return None if len(v) == 3 else "must have 3 entries (a Γ-centred n1 × n2 × n3 grid)"


@dataclass(frozen=True)
class GpawInput:
    structure: str = option("", doc="primitive reference structure: file ASE reads or shipped example name; the "
                                    "supercell (supercell.matrix) of it is R⁽⁰⁾")
    reference: str = option("", doc="superionic phase: `spia_mpi analyze`'s results file (analysis.h5); R⁽⁰⁾ is then "
                                    "structure with every atom at the mean of its density peaks (the solid-like "
                                    "sites and the peaks of the diffusing ions, paper Sec. S-D; one peak per ion and "
                                    "primitive cell). Default '': R⁽⁰⁾ = structure")
    mode: Literal["lcao"] = option("lcao", doc="GPAW mode: 'lcao' (atom-centred orbitals; the only mode so far)")
    basis: str = option("dzp", doc="LCAO basis set, e.g. 'dzp' or 'sz(dzp)' (its single-zeta part); "
                                   "Debian's gpaw-data ships dzp")
    xc: str = option("PBE", doc="exchange–correlation functional (PAW setups must exist for it: LDA, PBE, ...)")
    kpts: tuple[int, ...] = option((1, 1, 1), check=all_of(positive, _three_positive),
                                   doc="Γ-centred k-point grid of the supercell SCF; every supercell.kpoints K must "
                                       "lie on it")
    smearing_ev: float = option(0.1, units="eV", check=positive, doc="Fermi–Dirac smearing width of the SCF")
    h_ang: float = option(0.2, units="Å", check=positive, doc="real-space grid spacing of density and potential")
    density: Literal["scf", "frozen"] = option(
        "scf", doc="'scf': self-consistent for every configuration–bead, restarted from the reference state "
                   "(the paper's approach); 'frozen': the reference density (pseudo density on the grid and "
                   "atomic density matrices), one Hamiltonian, no SCF — cheap, see docs/models.md for its error")
    convergence_density: float = option(1e-6, check=positive,
                                         doc="GPAW's SCF density criterion (electrons per valence electron)")
    maxiter: int = option(100, check=positive, doc="SCF iterations before a configuration–bead counts as failed")
    keep_scf: bool = option(False, doc="keep each configuration–bead's SCF file (<checkpoint>/gpaw/scf_*.gpw) "
                                       "after its resolvents are in the checkpoint (default: deleted then; a "
                                       "resumed run never needs them again)")
    aij_min_orbitals: int = option(1000, check=nonnegative,
                                   doc="with spia.resolvent = 'petsc': supercells with at least this many LCAO "
                                       "orbitals build H, S and the cross overlap as row-distributed sparse PETSc "
                                       "AIJ from GPAW's atom-pair blocks (each rank of a group only its rows, "
                                       "no dense n × n copy); smaller ones dense on every rank of the group, then "
                                       "converted (the same numbers to 1e-10; dense is faster for small cells: "
                                       "docs/benchmarks.md)")


@dataclass(frozen=True)
class ModelInput:
    kind: Literal["holstein", "grid", "gpaw"] = option(
        "holstein", doc="'holstein': tight-binding Holstein metal (simple cubic); 'grid': real-space grid with "
                        "screened local pseudopotentials; 'gpaw': PAW DFT (GPAW LCAO) for every configuration–bead")
    holstein: HolsteinInput = option(default_factory=HolsteinInput)
    grid: GridInput = option(default_factory=GridInput)
    gpaw: GpawInput = option(default_factory=GpawInput)


@dataclass(frozen=True)
class SupercellInput:
    matrix: list = option(default_factory=lambda: [4, 4, 4], check=_int_matrix_or_diagonal,
                          doc="supercell matrix S (A = S·a): 3 integers (diagonal) or 3×3 integers")
    kpoints: list = option(default_factory=lambda: [[0.0, 0.0, 0.0]], check=all_of(nonempty, _kpoint_list),
                           doc="supercell wavevectors K (reduced coordinates of the supercell reciprocal lattice)")
    kgrid: tuple[int, ...] | None = option(None, check=positive,
                                           doc="primitive k-grid n1 n2 n3: use the K-points whose folded k cover it "
                                               "exactly once (overrides kpoints; needed by `spia_mpi combine`)")


@dataclass(frozen=True)
class EinsteinInput:
    hbar_omega_ev: float = option(0.1, units="eV", check=_bounded(1e-4, 5.0, "eV", "give eV (1 meV = 0.001)",
                                                                  "in meV or cm⁻¹? (give eV: 100 meV = 0.1)"),
                                  doc="Einstein phonon energy ħΩ (0.1 meV – 5 eV)")
    temperature_k: float = option(300.0, units="K", check=_TEMPERATURE,
                                  doc="temperature of the sampled ring polymers (1 K – 10⁵ K)")
    n_samples: int = option(96, check=_at_least_two, doc="independent configurations")
    n_beads: int = option(16, check=positive, doc="beads (Trotter number) N_b")
    seed: int = option(1, check=nonnegative, doc="random seed (same seed ⇒ same samples)")


@dataclass(frozen=True)
class ConfigurationsInput:
    source: Literal["einstein", "file"] = option(
        "einstein", doc="'einstein': exact harmonic ring-polymer samples; 'file': an HDF5 configurations file")
    file: str = option("", doc="configurations HDF5 file (source = 'file'), e.g. from `spia_mpi sample`")
    skip: int = option(0, check=nonnegative, doc="configurations dropped at the start (equilibration)")
    stride: int = option(1, check=positive, doc="keep every stride-th configuration")
    einstein: EinsteinInput = option(default_factory=EinsteinInput)


@dataclass(frozen=True)
class SpiaInput:
    matsubara_j: int = option(16, check=in_range(0, 10000), doc="z = ε_F + i(2J+1)πk_BT: the Matsubara index J")
    states_per_k: int | None = option(
        None, check=in_range(1, 100000),
        doc="reference Bloch states per primitive k (the lowest ones; all of them span Ḡ, T, the BSE and N_γ unless "
            "window_ev is given). Default: automatic — the states with ε − ε_F within ±W, W = max(20 γ_max, 4η), "
            "η = (2J+1)πk_BT, out of a pool grown until it holds them, or every band when the model has few enough "
            "to hold them all (docs/spia.md, 'The default state space')")
    gamma_ev: tuple[float, ...] = option((0.2, 0.4, 0.8), units="eV",
                                         check=all_of(nonempty, _each(_bounded(1e-4, 10.0, "eV", "give eV (1 meV = 0.001)",
                                                                               "in meV? (give eV: 200 meV = 0.2)"))),
                                         doc="Lorentzian half widths γ of the Fermi-surface weights (each 0.1 meV – 10 eV)")
    mode: Literal["bse", "born"] = option("bse", doc="'bse': Bethe–Salpeter W; 'born': W = Γ")
    bse_solver: Literal["dense", "petsc"] = option(
        "dense", doc="linear solver of each Bethe–Salpeter bead slice: LAPACK (numpy) or PETSc's dense LU")
    bse_distributed_min_states: int = option(
        4096, check=positive,
        doc="Bethe–Salpeter slices with at least this many states are solved by one distributed LU over the "
            "ranks of a configuration group (ranks_per_group > 1; each rank then holds only its rows of that "
            "K-point's resolvents, moment sums, Γ and W, in BSE and Born mode); "
            "smaller slices are shared whole among the group's ranks (docs/spia.md, 'Bethe–Salpeter over ranks')")
    bse_distributed_solver: Literal["scalapack", "mumps"] = option(
        "scalapack", doc="PETSc package of that distributed LU: ScaLAPACK (dense, block-cyclic; faster and leaner "
                         "here, docs/benchmarks.md) or MUMPS (on a sparse matrix holding every entry)")
    resolvent: Literal["dense", "petsc"] = option("dense", doc="resolvent solver: LAPACK or PETSc KSP")
    resolvent_options: dict[str, Any] = option(
        default_factory=dict, check=_petsc_options,
        doc="PETSc options of the resolvent KSP (resolvent = 'petsc'), without the 'spia_resolvent_' prefix, "
            "overriding the defaults ksp_type = 'gmres', pc_type = 'auto' (the grid model's kinetic-energy FFT "
            "preconditioner, 'model', for kind = 'grid'; for kind = 'gpaw' the model's choice is a direct LU "
            "by ScaLAPACK or, for sparse cells, MUMPS — pc_factor_mat_solver_type = 'scalapack', 'mumps' or "
            "'petsc' chooses —, as ksp_type = 'preonly' with pc_type = 'lu' gives for any model; 'jacobi' "
            "otherwise), ksp_rtol = 1e-11, "
            "ksp_atol = 1e-14, ksp_max_it = 2000, ksp_gmres_restart = 100, and options of spia_mpi's: "
            "warm_start = true (bead b's Krylov solves start from bead b − 1's solution; false: from zero), "
            "warm_projection = false (true: that guess is first improved by a minimal-residual projection), "
            "block_size = 'auto' (n > 1: the reference states are solved n at a time by batched GMRES, with "
            "pc_type auto, model or jacobi; 1: one at a time by PETSc's KSP; 'auto': 8 with the grid model's "
            "preconditioner and ksp_type = 'gmres', else 1), block_restart = 4 (its restart length) and "
            "recycle = 0 (k > 0: the batched GMRES is deflated by a subspace of k vectors recycled from bead to "
            "bead, fewer iterations for k applications of the operator per bead) and mixed_precision = true "
            "(the batched GMRES's Krylov cycles in single precision, refined by double-precision residuals to the "
            "same tolerance; docs/spia.md); "
            "a TOML table, e.g. "
            "{ ksp_rtol = 1e-9, pc_type = 'bjacobi' }. Not part of the checkpoint fingerprint: a run stopped by "
            "a solver failure can be resumed with other options and keeps its finished tasks")
    n_blocks: int = option(32, check=_at_least_two,
                           doc="configuration blocks (work units, jackknife errors; at most the number of "
                               "configurations, each block should be longer than the trajectory's correlation time)")
    ranks_per_group: int = option(1, check=positive,
                                  doc="MPI ranks sharing one distributed PETSc resolvent (a configuration group); "
                                      "must divide the number of ranks; > 1 needs resolvent = 'petsc'. Use it when "
                                      "one Hamiltonian is too big for one rank's memory or there are fewer work units "
                                      "(K-points × blocks) than ranks")
    window_ev: tuple[float, ...] | None = option(
        None, units="eV", check=_window,
        doc="state space by energy: of the states_per_k lowest reference states per k (automatic: a pool that "
            "holds the window) keep those with ε − ε_F in [lower, upper] (lower < 0 < upper, within ±100 eV; all k); "
            "Ḡ, T, the BSE and N_γ use the same set, and the fraction of the Lorentzian Fermi-surface weight it "
            "captures is reported (/lambda/window_captured_fraction). Default: the automatic window ±W of "
            "states_per_k when states_per_k is not given, no window when it is")
    fermi_level: Literal["ensemble", "reference", "renormalised"] | float = option(
        "ensemble", check=lambda v: None if isinstance(v, str) else in_range(-1000.0, 1000.0)(v), doc="the Fermi level that centres the Lorentzian Fermi-surface weights and z = ε_F + iη: "
                        "'ensemble' (N_e electrons in the eigenvalues of the configuration-bead Hamiltonians, "
                        "smeared by fermi_smearing_ev, per configuration, averaged over fermi_configurations "
                        "configurations), 'reference' (the static reference structure's bands, Fermi–Dirac at T; "
                        "for the grid model from its reference bands), 'renormalised' (Lorentzian occupations of "
                        "the renormalised bands; needs a subspace with every band; z then uses the reference "
                        "level) or a number in eV. Every available candidate is recorded in /bands")
    fermi_level_ev: float | None = option(None, units="eV", check=in_range(-1000.0, 1000.0),
                                          doc="a given ε_F (eV) for z and the weights; overrides fermi_level")
    fermi_smearing_ev: float = option(0.2, units="eV", check=_bounded(1e-4, 10.0, "eV", "give eV (1 meV = 0.001)",
                                                                     "in meV? (give eV: 200 meV = 0.2)"),
                                      doc="smearing σ of the occupations of fermi_level = 'ensemble' (0.1 meV – 10 eV)")
    fermi_smearing: Literal["fermi-dirac", "gaussian"] = option(
        "fermi-dirac", doc="occupations of fermi_level = 'ensemble': 1/(e^{(ε−μ)/σ} + 1) or ½ erfc((ε−μ)/σ)")
    fermi_configurations: int = option(16, check=nonnegative,
                                       doc="configurations (evenly spaced, all beads) for fermi_level = 'ensemble'; "
                                           "0: all")
    bead_correction: Literal["interpolate", "harmonic", "none"] = option(
        "interpolate", doc="finite-bead (Trotter) correction of λ(m), which the bead transform gives at the "
                           "ring-polymer frequencies Ω_m = 2N_b k_BT sin(πm/N_b) instead of ν_m: 'interpolate' "
                           "(W(τ) interpolated linearly onto tau_refine points per bead interval, the authors' "
                           "choice), 'harmonic' (λ(m)·(Ω_m/ν_m)², exact for a harmonic tail) or 'none'. The raw "
                           "λ(m) is stored too (/lambda/lambda_m_raw); T_c, ω̄₂ and plots use the corrected one")
    tau_refine: int = option(16, check=in_range(1, 10000), doc="τ-points per bead interval of bead_correction = 'interpolate'")
    symmetrize_m: bool = option(True, doc="average Γ(m) and Γ(−m) before the Bethe–Salpeter equation (equal in "
                                          "expectation: the ring-polymer ensemble is invariant under reversing the "
                                          "bead order); halves part of the noise")
    anisotropy_bins: Literal["none", "band", "kpoint", "energy"] = option(
        "none", doc="also store the state-pair coupling W_st(m) summed over bins of the Fermi surface "
                    "(/anisotropy, the input of `gap --anisotropic`): 'band' (band index), 'kpoint' (primitive "
                    "k-point; one supercell K-point only: states of different K are never paired), 'energy' (anisotropy_n_bins clusters of the states by renormalised energy) or "
                    "'none'; costs one more contraction of W per K-point and block")
    anisotropy_n_bins: int = option(4, check=positive, doc="number of clusters of anisotropy_bins = 'energy'")
    rigid_translations: Literal["auto", "remove", "keep"] = option(
        "auto", doc="every bead's rigid translation (mass-weighted mean of the minimum-image displacements from the "
                    "reference sites, atoms off their site — hops of diffusing ions — left out of the mean) is "
                    "subtracted from the configurations before anything uses them ('remove') or not ('keep'). "
                    "'auto': 'remove' for the grid and gpaw models (electrons in the ions' potential: a rigid "
                    "translation is a zero mode with no coupling in the infinite crystal, but in a finite supercell it "
                    "rotates the projected states, which the Bethe–Salpeter ladder mistreats), 'keep' for holstein "
                    "(on-site coupling to a fixed lattice: a uniform displacement is the real q = 0 Einstein phonon). "
                    "`spectral` follows the same rule. docs/spia.md, 'Rigid translations'")


@dataclass(frozen=True)
class EliashbergInput:
    mustar: tuple[float, ...] = option((0.10, 0.16), check=all_of(nonempty, in_range(0.0, 0.99)),
                                       doc="Coulomb pseudopotentials μ*")
    nfreq: int | None = option(None, check=_at_least_two, doc="fixed number of fermionic frequencies (default: automatic)")
    tc_errors: bool = option(True, doc="propagate the jackknife errors of λ(m) to T_c (one extra T_c solve "
                                       "per configuration block, μ* and γ; false: tc_K_error is NaN)")


@dataclass(frozen=True)
class OutputInput:
    file: str = option("spia_results.h5", doc="results HDF5 file")
    checkpoint: str = option("", doc="checkpoint folder (default: <file>.ckpt)")
    restart: bool = option(True, doc="reuse finished work from the checkpoint folder")
    plots: bool = option(True, doc="write PNG/PDF figures next to the results file")


@dataclass(frozen=True)
class RunInput:
    model: ModelInput = option(default_factory=ModelInput)
    supercell: SupercellInput = option(default_factory=SupercellInput)
    configurations: ConfigurationsInput = option(default_factory=ConfigurationsInput)
    spia: SpiaInput = option(default_factory=SpiaInput)
    eliashberg: EliashbergInput = option(default_factory=EliashbergInput)
    output: OutputInput = option(default_factory=OutputInput)
    spectral: SpectralInput = option(default_factory=SpectralInput)
    harmonic: HarmonicInput = option(default_factory=HarmonicInput)


def load_run_input(path) -> tuple[RunInput, Path]:
    """Read and validate a run input file; returns (input, folder of the file)."""
    path = Path(path)
    inp = load(RunInput, path)
    if inp.model.kind == "grid" and not inp.model.grid.structure:
        raise InputError(f"{path}: model.kind = 'grid' needs model.grid.structure")
    if inp.model.kind == "gpaw" and not inp.model.gpaw.structure:
        raise InputError(f"{path}: model.kind = 'gpaw' needs model.gpaw.structure")
    if inp.configurations.source == "file" and not inp.configurations.file:
        raise InputError(f"{path}: configurations.source = 'file' needs configurations.file")
    if not inp.spectral.energy_min_ev < inp.spectral.energy_max_ev:
        raise InputError(f"{path}: spectral.energy_min_ev = {inp.spectral.energy_min_ev} must be below "
                         f"spectral.energy_max_ev = {inp.spectral.energy_max_ev}")
    return inp, path.resolve().parent


def resolve(folder: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else folder / p


def reference() -> str:
    """Markdown reference of every key (used for docs/input.md)."""
    return reference_markdown(RunInput)
