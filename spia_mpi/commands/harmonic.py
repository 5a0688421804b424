"""``harmonic``: the conventional (harmonic, linear-coupling) λ(m) from the same input as ``run``."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "harmonic"
HELP = "harmonic baseline: Φ, phonons, deformation potentials → λ_harm(m), α²F, ω_log, T_c^harm (input: TOML file)"
ORDER = 22
DESCRIPTION = """\
From the same [model], [supercell], [spia] and [eliashberg] tables as `run`, plus [harmonic]:
force constants Φ (Einstein springs, finite displacements with an ASE calculator or the
model's forces, or a phonopy FORCE_CONSTANTS file; acoustic sum rule imposed), phonons,
deformation potentials ∂H/∂u by central differences projected on run's reference states,
and the conventional coupling on the same k/q sets:

  λ_harm(m) = (1/N_γ) Σ w w' |g_ν|² 2ω_ν/(ω_ν² + ν_m²)     (continuum, ν_m = 2πm k_BT)

and its discrete-bead form with Ω_m = 2N_b k_BT sin(πm/N_b) (what raw SPIA output on
exact harmonic samples converges to), α²F(ω), ω_log, ω̄₂, T_c^harm(μ*) through the same
Eliashberg solver. With harmonic.samples_file it also writes exact harmonic ring-polymer
samples with the same Φ. --compare puts a SPIA results file side by side (3σ + 3 % test).
Equations and conventions: docs/harmonic.md.

examples:
  python -m spia_mpi harmonic input.toml
  mpirun -n 2 python -m spia_mpi harmonic input.toml --compare spia_results.h5
"""

logger = logging.getLogger("spia_mpi")


def add_arguments(p):
    p.add_argument("input", help="TOML input file (the run's, with an optional [harmonic] table)")
    p.add_argument("--compare", metavar="RESULTS_H5",
                   help="a `run` results file of the same system: print λ_SPIA(m) next to the discrete-bead "
                        "λ_harm(m) and T_c side by side, and plot the comparison")


def run(args, comm):
    from spia_mpi.io import runinput
    from spia_mpi.parallel.mpi import on_root
    inp, folder = on_root(comm, runinput.load_run_input, args.input)
    if args.compare:
        on_root(comm, _check_compare, Path(args.compare))
    return execute(inp, folder, comm, compare=Path(args.compare) if args.compare else None, source=str(args.input))


def _check_compare(path: Path):
    from spia_mpi.io import hdf5
    with hdf5.open_finished(path, "results"):
        pass


# --------------------------------------------------------------------------

def temperature_and_beads(inp, folder):
    """(T in K, N_b) of the harmonic baseline: [harmonic] values, else the configuration source's."""
    h, c = inp.harmonic, inp.configurations
    t, nb = c.einstein.temperature_k, c.einstein.n_beads
    if c.source == "file" and (h.temperature_k is None or h.n_beads is None):
        from spia_mpi.io.runinput import resolve
        from spia_mpi.ions import configurations as cf
        path = resolve(folder, c.file)
        if not path.exists():
            raise InputError(f"configurations.file {path} does not exist: give harmonic.temperature_k and "
                             "harmonic.n_beads")
        conf = cf.read_h5(path, slice(0, 1))
        t, nb = conf.temperature_k, conf.n_beads
    return (h.temperature_k if h.temperature_k is not None else t,
            h.n_beads if h.n_beads is not None else nb)


def force_constants(inp, folder, model, comm) -> np.ndarray:
    """Φ of the model's supercell (eV/Å², [3N, 3N]) from the [harmonic] table, on every rank.

    Finite displacements with the model's forces (``force_constants = "model"``, e.g. GPAW's
    SCF forces) are shared by the ranks; the other sources and the checks run on rank 0."""
    from spia_mpi.ions import forceconstants as fc
    from spia_mpi.parallel.mpi import on_root
    h = inp.harmonic
    if h.force_constants != "model":
        return on_root(comm, _rank0_force_constants, inp, folder, model)
    forces = getattr(model, "forces", None)
    if forces is None:
        raise InputError(f"harmonic.force_constants = 'model': the {inp.model.kind} model has no ionic forces "
                         "(use 'calculator', 'file' or 'einstein')")
    if comm.rank == 0:
        logger.info("force constants: %d finite displacements (δ = %g Å) with the %s model's forces on %d rank(s)",
                    6 * len(model.atoms), h.displacement_ang, inp.model.kind, comm.size)
    phi = fc.finite_displacement_force_constants(model.reference_positions, forces, h.displacement_ang, comm)
    return on_root(comm, _checked_force_constants, phi, inp, model, f"{inp.model.kind} model forces")


def _rank0_force_constants(inp, folder, model) -> np.ndarray:
    from spia_mpi.ions import forceconstants as fc
    h = inp.harmonic
    atoms = model.atoms
    if h.force_constants == "einstein":
        return fc.einstein_force_constants(atoms.get_masses(), inp.configurations.einstein.hbar_omega_ev)
    if h.force_constants == "file":
        if not h.force_constants_file:
            raise InputError("harmonic.force_constants = 'file' needs harmonic.force_constants_file")
        from spia_mpi.io.runinput import resolve
        path = resolve(folder, h.force_constants_file)
        return _checked_force_constants(_read_force_constants(path, len(atoms)), inp, model, str(path))
    source = f"{h.calculator} calculator"
    logger.info("force constants: %d finite displacements (δ = %g Å) with the %s", 6 * len(atoms),
                h.displacement_ang, source)
    phi = fc.finite_displacement_force_constants(model.reference_positions,
                                                 fc.calculator_forces(atoms, _calculator(inp, model)),
                                                 h.displacement_ang)
    return _checked_force_constants(phi, inp, model, source)


def _checked_force_constants(phi, inp, model, source: str) -> np.ndarray:
    """Φ with the acoustic sum rule imposed (or validated as given), stable, or a clear InputError."""
    from spia_mpi.ions import forceconstants as fc
    from spia_mpi.ions.configurations import harmonic_modes, validate_force_constants
    atoms = model.atoms
    logger.info("force constants: asymmetry %.3g eV/Å², acoustic-sum-rule violation %.3g eV/Å² (%s)",
                float(np.abs(phi - phi.T).max()), fc.acoustic_sum_rule_violation(phi),
                "imposed" if inp.harmonic.acoustic_sum_rule else "kept")
    phi = fc.enforce_acoustic_sum_rule(phi) if inp.harmonic.acoustic_sum_rule else \
        validate_force_constants(phi, len(atoms), source, symmetry_tol=1e-3)
    harmonic_modes(phi, atoms.get_masses(), source=source)            # stable, or a clear InputError
    return phi


def _read_force_constants(path: Path, n_atoms: int) -> np.ndarray:
    """A phonopy FORCE_CONSTANTS file (first line 'N' or 'N N'), a .npy or a text matrix."""
    from spia_mpi.ions import forceconstants as fc
    if not path.exists():
        raise InputError(f"harmonic.force_constants_file {path} does not exist")
    if path.suffix == ".npy":
        phi = np.load(path, allow_pickle=False)
        return phi.transpose(0, 2, 1, 3).reshape(3 * n_atoms, 3 * n_atoms) if phi.ndim == 4 else phi
    first = path.read_text().split("\n", 1)[0].split()
    if 1 <= len(first) <= 2 and all(x.isdigit() for x in first):
        return fc.read_phonopy_force_constants(path, n_atoms)
    try:
        return np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path}: not a phonopy FORCE_CONSTANTS file or a text matrix ({exc})") from None


def _calculator(inp, model):
    from spia_mpi.ions.calculators import YukawaPair, thomas_fermi_length
    h = inp.harmonic
    lam = h.yukawa_screening_length_ang
    if lam is None:
        lam = thomas_fermi_length(model.n_electrons / model.atoms.get_volume())
    return YukawaPair(lam, None, h.yukawa_cutoff_ang)


def kpoints_of(inp, model) -> np.ndarray:
    from spia_mpi.lattice.supercells import supercell_kgrid
    if inp.supercell.kgrid is not None:
        return supercell_kgrid(model.supercell_matrix, inp.supercell.kgrid)
    return np.asarray(inp.supercell.kpoints, float)


def execute(inp, folder: Path, comm, compare: Path | None = None, source: str = "") -> int:
    from spia_mpi.commands.run import build_model
    from spia_mpi.engine.harmonic import compute_harmonic
    from spia_mpi.io.inputs import to_dict
    from spia_mpi.io.log import Stage
    from spia_mpi.io.results import write_results
    from spia_mpi.io.runinput import resolve
    from spia_mpi.parallel.mpi import on_root
    timings = {}
    h = inp.harmonic
    if inp.model.kind == "gpaw":                 # importing GPAW is collective (its own MPI world)
        from spia_mpi.models.gpaw import require_gpaw
        require_gpaw()
        if h.vertex != "quasi_static":
            raise InputError(f"harmonic.vertex = '{h.vertex}' is defined for an orthonormal basis only; the gpaw "
                             "model's basis moves with the ions: use the generalised 'quasi_static' vertex")
    if inp.model.kind == "grid" and inp.model.grid.potential_files:
        raise InputError("harmonic: model.grid.potential_files gives V only at the sampled positions; the "
                         "deformation potentials need the pseudopotential model (remove potential_files)")
    out_path = resolve(folder, h.output_file)
    with Stage("model, temperature and force constants", logger, timings):
        on_root(comm, lambda: build_model(inp, folder) and None)
        model = build_model(inp, folder)
        temperature_k, n_beads = on_root(comm, temperature_and_beads, inp, folder)
        on_root(comm, _check_output, out_path)
    if inp.model.kind == "gpaw":
        with Stage("GPAW reference SCF", logger, timings):      # one GPAW group per rank: ranks share displacements
            model.prepare(comm, 1, out_path.with_name(out_path.stem + "_gpaw"))
    with Stage("force constants", logger, timings):
        phi = force_constants(inp, folder, model, comm)
    if h.mass_scale != 1.0:                     # after Φ: the same springs, heavier ions
        model.atoms.set_masses(h.mass_scale * model.atoms.get_masses())
    kpoints = kpoints_of(inp, model)
    fermi = inp.spia.fermi_level_ev
    if fermi is None and inp.model.kind == "gpaw":
        fermi = model.fermi_level_ev
    if fermi is None and inp.model.kind == "grid":
        from spia_mpi.models.grid import fermi_level_of_reference
        fermi = on_root(comm, fermi_level_of_reference, model, kpoints, temperature_k)
    with Stage("harmonic λ(m)", logger, timings):
        res = compute_harmonic(model, phi, kpoints, temperature_k, n_beads, J=inp.spia.matsubara_j,
                               n_per_k=inp.spia.states_per_k, gammas=inp.spia.gamma_ev, fermi_level_ev=fermi,
                               step_ang=h.deformation_step_ang, vertex=h.vertex,
                               centre_ev=inp.spia.fermi_level_ev, zero_modes=zero_modes(inp), comm=comm)
    timings.update(getattr(model, "timings", {}))      # GPAW model: density, H/S, cross overlaps (this rank)
    with Stage("Eliashberg T_c (harmonic)", logger, timings):
        tc = harmonic_tc(res, inp.eliashberg.mustar, inp.eliashberg.nfreq, comm)
    if h.samples_file:
        with Stage("exact harmonic ring-polymer samples", logger, timings):
            on_root(comm, write_samples, model, phi, temperature_k, n_beads, h, resolve(folder, h.samples_file),
                    zero_modes(inp))
    with Stage("write results", logger, timings):
        content = on_root(comm, results_content, inp, model, phi, kpoints, res, tc, timings)
        write_results(out_path, content, comm, f"harmonic {source}", to_dict(inp), kind="harmonic")
    if comm.rank == 0:
        print(summary(out_path, res, inp.eliashberg.mustar, tc))
        if compare is not None:
            print(comparison_text(res, compare, tc, inp.eliashberg.mustar))
        if h.plots:
            _plots(out_path, compare)
    if comm.size > 1:
        comm.Barrier()
    return 0


def _check_output(path: Path):
    from spia_mpi.io.hdf5 import check_writable
    problem = check_writable(path)
    if problem:
        raise InputError(f"harmonic.output_file: {problem}")


def harmonic_tc(res, mustars, n_freq, comm) -> dict:
    """T_c (K) [gamma, mustar] of the continuum λ_harm(m) through the linearised Eliashberg solver,
    with the exact ω̄₂ of the harmonic spectrum as the tail; plus Allen–Dynes and McMillan from
    the exact ω_log, ω̄₂, λ. A γ without a solution gets NaN and the reason in ``notes``. The γ
    are shared by the ranks of ``comm``, each solved on one rank (results independent of the
    rank count), and gathered on every rank."""
    from spia_mpi.eliashberg import linearised
    from spia_mpi.parallel.mpi import allgather_dict, partition, self_comm
    from spia_mpi.parallel import stack
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    stack.petsc(), stack.slepc()        # initialised (a collective) by every rank before the split
    mine = {}
    for ig in partition(res.gamma_ev.size, size, rank):
        try:
            r = linearised.solve_tc(res.lambda_continuum[ig], res.temperature_k, mustars, n_freq=n_freq,
                                    omega2_ev=float(res.omega2_ev[ig]), comm=self_comm())
            mine[ig] = (list(r.tc_k), "; ".join(f"μ*={k}: {v}" for k, v in r.errors.items()))
        except InputError as exc:
            mine[ig] = ([math.nan] * len(mustars), str(exc))
    mine = allgather_dict(mine, comm)
    lam0, wlog, w2 = res.lambda0, res.omega_log_ev, res.omega2_ev
    return {"tc_K": np.array([mine[ig][0] for ig in range(res.gamma_ev.size)]),
            "notes": [mine[ig][1] for ig in range(res.gamma_ev.size)],
            "allen_dynes_K": np.array([[linearised.allen_dynes_tc(lam0[ig], mu, wlog[ig], w2[ig]) for mu in mustars]
                                       for ig in range(res.gamma_ev.size)]),
            "mcmillan_K": np.array([[linearised.mcmillan_tc(lam0[ig], mu, wlog[ig]) for mu in mustars]
                                    for ig in range(res.gamma_ev.size)])}


def zero_modes(inp) -> str:
    """harmonic.zero_modes resolved: 'auto' → 'drop' where `run` on the same input removes every bead's
    rigid translation (:func:`spia_mpi.commands.run.rigid_translations_removed`), else 'keep'."""
    if inp.harmonic.zero_modes != "auto":
        return inp.harmonic.zero_modes
    from spia_mpi.commands.run import rigid_translations_removed
    return "drop" if rigid_translations_removed(inp) else "keep"


def write_samples(model, phi, temperature_k, n_beads, h, path, zero_modes: str):
    """Exact harmonic ring-polymer samples with Φ (configurations HDF5; rank-0 work); ``zero_modes``
    resolved ('drop': every bead's centre-of-mass displacement removed)."""
    from spia_mpi.ions import configurations as cf
    atoms = model.atoms
    rng = np.random.default_rng(h.seed)
    pos = cf.sample_harmonic_ring_polymers(h.n_samples, n_beads, atoms.get_masses(), phi, temperature_k,
                                           model.reference_positions, rng)
    if zero_modes == "drop":
        from spia_mpi.ions.translations import remove_rigid_translations
        pos = remove_rigid_translations(pos, model.reference_positions, atoms.get_masses())
    conf = cf.Configurations(pos, atoms.cell[:], atoms.numbers, atoms.get_masses(), temperature_k, 0.0,
                             f"harmonic sampler, force constants of `spia_mpi harmonic` seed={h.seed} "
                             f"zero_modes={zero_modes}")
    cf.write_h5(conf, path)
    logger.info("%s: %d exact harmonic samples × %d beads", path, conf.n_conf, conf.n_beads)


def results_content(inp, model, phi, kpoints, res, tc, timings):
    """The harmonic results file's datasets and attributes (rank-0 work); layout in docs/output.md."""
    from spia_mpi.ions.forceconstants import phonons_at_q
    from spia_mpi.engine.workflow import transfer_index
    from spia_mpi.io.results import ResultsContent
    from spia_mpi.lattice.supercells import build_supercell, lattice_points
    from spia_mpi.units import bosonic_frequency_ev
    from spia_mpi.ions.configurations import ring_polymer_frequencies_ev
    refs0 = model.reference_states(kpoints[0], inp.spia.states_per_k or 1)
    qs, _ = transfer_index(refs0.kpoints_frac)
    _, lat_idx, prim_idx = build_supercell(model.primitive, model.supercell_matrix)
    w_q = phonons_at_q(phi, model.atoms.get_masses(), lattice_points(model.supercell_matrix), lat_idx, prim_idx, qs)
    n_m = res.lambda_bead.shape[1]
    m = np.arange(n_m)
    omega_grid = np.linspace(0.0, 1.2 * max(res.hbar_omega.max(), 1e-3), 600)
    out = ResultsContent()
    out.set_attrs("timings", **{k: float(v) for k, v in timings.items()})
    out.set_attrs("lambda", temperature_K=res.temperature_k, n_beads=res.n_beads, vertex=res.vertex,
                  zero_modes=res.zero_modes,
                  fermi_level_eV=res.fermi_level_ev, z_fermi_level_eV=res.z_fermi_level_ev, eta_eV=res.eta_ev,
                  cells_per_supercell=res.cells_per_supercell, n_kpoints=res.n_kpoints)
    out.add("lambda/m", m, "1", "bosonic Matsubara index")
    out.add("lambda/nu_eV", bosonic_frequency_ev(m, res.temperature_k), "eV", "ν_m = 2πm k_B T")
    out.add("lambda/Omega_m_eV", ring_polymer_frequencies_ev(res.n_beads, res.temperature_k)[:n_m], "eV",
            "Ω_m = 2N_b k_B T sin(πm/N_b) (discrete beads)")
    out.add("lambda/gamma_eV", res.gamma_ev, "eV", "Lorentzian half widths")
    out.add("lambda/lambda_m_bead", res.lambda_bead, "1",
            "discrete-bead λ_harm(m) [gamma, m] (Ω_m; compare with raw SPIA λ(m))")
    out.add("lambda/lambda_m", res.lambda_continuum, "1",
            "continuum λ_harm(ν_m) [gamma, m] (ν_m; no zero modes; used for T_c)")
    out.add("lambda/lambda_m_zero_modes_bead", res.lambda_zero_bead, "1",
            "the zero (acoustic Γ) modes' share of lambda_m_bead [gamma, m] (m ≥ 1 only)")
    out.add("lambda/n_gamma_per_cell", res.n_gamma_per_cell, "1/eV", "Lorentzian DOS N_γ per primitive cell per spin")
    out.add("lambda/band_energies_eV", np.concatenate(res.energies), "eV",
            "band energies of the weights, all K in order [state]")
    out.add("lambda_q/qpoints_frac", res.qpoints_frac, "1", "q = k' − k, primitive reduced (run's transfers)")
    out.add("lambda_q/lambda_qm", res.lambda_q_continuum, "1",
            "q-resolved continuum λ_harm(ν_m) [gamma, q, m]; Σ_q = lambda/lambda_m")
    out.add("lambda_q/lambda_qm_bead", res.lambda_q_bead, "1",
            "q-resolved discrete-bead λ_harm(m) [gamma, q, m]; Σ_q = lambda/lambda_m_bead (compare with a run's "
            "raw λ_q = −pair_sums/N_γ)")
    out.set_attrs("lambda_q", cells_per_supercell=res.cells_per_supercell, n_kpoints=res.n_kpoints,
                  supercell_matrix=json.dumps(np.asarray(model.supercell_matrix).tolist()))
    out.add("phonons/force_constants_eV_A2", phi, "eV/Å²", "Φ of the supercell [3N, 3N], row 3a + α")
    out.add("phonons/masses_amu", model.atoms.get_masses(), "amu", "ionic masses of the baseline [N]")
    out.add("phonons/hbar_omega_eV", res.hbar_omega, "eV", "supercell (Γ) modes ħω_k [3N]")
    out.add("phonons/zero_mode", res.zero.astype(np.int8), "1", "1 for a zero (acoustic translation) mode")
    out.add("phonons/lambda_mode", res.lambda_mode, "1", "λ_k of every supercell mode [gamma, 3N]")
    out.add("phonons/qpoints_frac", qs, "1", "transfers q commensurate with the supercell (primitive reduced)")
    out.add("phonons/hbar_omega_q_eV", w_q, "eV", "ħω_qν [q, branch] (negative: imaginary)")
    out.add("alpha2f/omega_eV", omega_grid, "eV", "phonon energy grid")
    out.add("alpha2f/alpha2f", res.alpha2f(omega_grid, inp.harmonic.alpha2f_smearing_ev), "1",
            "α²F(ω) [gamma, ω], Gaussian smearing harmonic.alpha2f_smearing_ev")
    out.add("alpha2f/lambda", res.lambda0, "1", "λ = 2∫α²F/ω = Σ_k λ_k [gamma]")
    out.add("alpha2f/omega_log_eV", res.omega_log_ev, "eV", "ω_log [gamma]")
    out.add("alpha2f/omega2_eV", res.omega2_ev, "eV", "ω̄₂ [gamma]")
    out.set_attrs("alpha2f", smearing_eV=inp.harmonic.alpha2f_smearing_ev)
    out.add("eliashberg/mustar", np.array(inp.eliashberg.mustar), "1")
    out.add("eliashberg/tc_K", tc["tc_K"], "K", "T_c^harm [gamma, mustar] (linearised Eliashberg)")
    out.add("eliashberg/allen_dynes_K", tc["allen_dynes_K"], "K", "Allen–Dynes with the exact ω_log, ω̄₂")
    out.add("eliashberg/mcmillan_K", tc["mcmillan_K"], "K", "McMillan with the exact ω_log")
    out.set_attrs("eliashberg", notes=json.dumps(tc["notes"]))
    return out


def summary(path, res, mustars, tc) -> str:
    lines = [f"harmonic results: {path}",
             f"T = {res.temperature_k:g} K, N_b = {res.n_beads}, vertex {res.vertex}, "
             f"{int((~res.zero).sum())} + {int(res.zero.sum())} zero supercell modes, "
             f"ħω = {res.hbar_omega[~res.zero].min():.4g} … {res.hbar_omega.max():.4g} eV"]
    for ig, gam in enumerate(res.gamma_ev):
        lines.append(f"γ = {gam:g} eV: λ_harm(m) bead      = " + ", ".join(f"{x:.5g}" for x in res.lambda_bead[ig]))
        lines.append("           λ_harm(ν_m) continuum = " + ", ".join(f"{x:.5g}" for x in res.lambda_continuum[ig]))
        lines.append(f"           λ = {res.lambda0[ig]:.5g}, ω_log = {1000 * res.omega_log_ev[ig]:.4g} meV, "
                     f"ω̄₂ = {1000 * res.omega2_ev[ig]:.4g} meV; T_c^harm = " +
                     ", ".join(f"{t:.1f} K (μ*={mu})" for t, mu in zip(tc["tc_K"][ig], mustars)))
    return "\n".join(lines)


def comparison_rows(res, spia_path: Path):
    """Rows (γ, m, λ_SPIA, σ, λ_harm bead, z, within 3σ + 3 %) for the γ both files share; λ_SPIA is
    the raw bead-transform value (``lambda_m_raw``, at the ring-polymer frequencies Ω_m)."""
    from spia_mpi.io import hdf5
    with hdf5.open_finished(spia_path, "results") as f:
        g = f["lambda"]
        raw = "lambda_m_raw" if "lambda_m_raw" in g else "lambda_m"      # before the finite-bead correction
        lam, err, gam = g[raw][...], g[f"{raw}_error"][...], g["gamma_eV"][...]
        t_spia, n_b = float(f["lambda"].attrs["temperature_K"]), int(f["lambda"].attrs["n_beads"])
    if abs(t_spia - res.temperature_k) > 1e-9 or n_b != res.n_beads:
        raise InputError(f"{spia_path}: T = {t_spia:g} K, N_b = {n_b}; the harmonic baseline has "
                         f"T = {res.temperature_k:g} K, N_b = {res.n_beads}")
    rows = []
    for ig, g in enumerate(res.gamma_ev):
        hit = np.flatnonzero(np.isclose(gam, g))
        if hit.size == 0:
            continue
        j = hit[0]
        for m in range(min(lam.shape[1], res.lambda_bead.shape[1])):
            ref = res.lambda_bead[ig, m]
            z = (lam[j, m] - ref) / err[j, m] if err[j, m] > 0 else math.inf
            ok = abs(lam[j, m] - ref) <= 3 * err[j, m] + 0.03 * abs(ref)
            rows.append((float(g), m, float(lam[j, m]), float(err[j, m]), float(ref), float(z), bool(ok)))
    return rows


def comparison_text(res, spia_path: Path, tc, mustars) -> str:
    from spia_mpi.io import hdf5
    rows = comparison_rows(res, spia_path)
    with hdf5.open_finished(spia_path, "results") as f:
        mode = str(f["lambda"].attrs["mode"])
        tc_spia = f["eliashberg/tc_K"][...]
        gam = f["lambda/gamma_eV"][...]
    lines = [f"\nSPIA raw λ(m) ({mode}, {spia_path}) vs harmonic discrete-bead λ_harm(m); test: |Δ| ≤ 3σ + 3 %"]
    for g, m, lam, err, ref, z, ok in rows:
        lines.append(f"  γ = {g:g} eV, m = {m}: SPIA {lam:.5g} ± {err:.2g}   harmonic {ref:.5g}   "
                     f"({z:+.1f} σ, {100 * (lam / ref - 1) if ref else math.nan:+.1f} %) {'ok' if ok else 'FAIL'}")
    lines.append("T_c (K): SPIA vs harmonic")
    for ig, g in enumerate(res.gamma_ev):
        hit = np.flatnonzero(np.isclose(gam, g))
        if hit.size:
            lines.append(f"  γ = {g:g} eV: " + ", ".join(f"μ* = {mu:g}: {a:.1f} vs {b:.1f}" for mu, a, b in
                                                       zip(mustars, tc_spia[hit[0]], tc["tc_K"][ig])))
    lines.append(f"all within 3σ + 3 %: {'yes' if all(r[-1] for r in rows) else 'NO'}")
    return "\n".join(lines)


def _plots(out_path: Path, compare):
    try:
        from spia_mpi.io import hdf5, plotting
    except ImportError:
        return
    try:
        with hdf5.open_h5(out_path, "r", None) as f:
            spia = hdf5.open_finished(compare, "results") if compare is not None else None
            try:
                written = plotting.plot_harmonic(f, out_path.with_name(out_path.stem + "_plots"), spia)
            finally:
                if spia is not None:
                    spia.close()
        logger.info("figures: %s", ", ".join(str(p) for p in written if p.suffix == ".png"))
    except ImportError:
        logger.warning("matplotlib not available: no figures")
