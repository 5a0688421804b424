"""``run``: the whole SPIA pipeline from one TOML input file."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "run"
HELP = "λ(m) with error bars and T_c(μ*) from PIMD configurations (input: TOML file)"
ORDER = 20
DESCRIPTION = """\
Run the SPIA pipeline: configurations → resolvents → Ḡ → renormalised bands →
T-matrices → Γ(m) → Bethe–Salpeter W(m) → λ(m) (± jackknife errors) → T_c(μ*).

Work (configuration blocks × K-points) is distributed over the MPI ranks; every
finished configuration is checkpointed, so re-running the same command after a
crash or kill resumes (with any number of ranks) and gives identical results.
Every key of INPUT is documented in docs/input.md (`--print-reference`).

examples:
  mpirun -n 4 python -m spia_mpi run input.toml
  python -m spia_mpi run input.toml --dry-run
"""

logger = logging.getLogger("spia_mpi")


def add_arguments(p):
    p.add_argument("input", nargs="?", help="TOML input file")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the input, print the work decomposition and a memory estimate, stop")
    p.add_argument("--print-reference", action="store_true", help="print every input key (markdown) and exit")


def run(args, comm):
    from spia_mpi.io import runinput
    from spia_mpi.parallel.mpi import on_root
    if args.print_reference:
        if comm.rank == 0:
            print(runinput.reference())
        return 0
    if not args.input:
        raise InputError("give the TOML input file: python -m spia_mpi run INPUT.toml")
    inp, folder = on_root(comm, runinput.load_run_input, args.input)
    return execute(inp, folder, comm, dry_run=args.dry_run, source=str(args.input))


# --------------------------------------------------------------------------

def build_model(inp, folder=None):
    from spia_mpi.models.tightbinding import holstein_cubic
    from spia_mpi.lattice.supercells import as_supercell_matrix
    S = as_supercell_matrix(inp.supercell.matrix)
    if inp.model.kind == "grid":
        from spia_mpi.models.grid import GridModel
        from spia_mpi.lattice.structures import EXAMPLES, load_structure
        g = inp.model.grid
        name = g.structure
        if name not in EXAMPLES and folder is not None:
            from spia_mpi.io.runinput import resolve
            name = str(resolve(folder, name))
        prim = load_structure(name)
        grid = g.grid_per_cell
        if g.spacing_ang is not None:
            from spia_mpi.models.grid import grid_for_spacing
            grid = grid_for_spacing(prim.cell[:], g.spacing_ang)
        return GridModel(prim, S, grid, g.fd_order, g.screening)
    if inp.model.kind == "gpaw":
        return build_gpaw_model(inp, folder, S)
    h = inp.model.holstein
    return holstein_cubic(S, h.lattice_constant_ang, h.hopping_ev, h.coupling_ev_per_ang,
                          h.electrons_per_site, h.mass_amu)


def build_gpaw_model(inp, folder, S):
    """The GPAW model of ``[model.gpaw]`` (cheap: the reference SCF runs in ``model.prepare``)."""
    from dataclasses import fields
    from spia_mpi.models.gpaw import GpawModel, GpawSettings
    from spia_mpi.lattice.structures import EXAMPLES, load_structure
    g = inp.model.gpaw
    name = g.structure
    if name not in EXAMPLES and folder is not None:
        from spia_mpi.io.runinput import resolve
        name = str(resolve(folder, name))
    settings = GpawSettings(**{f.name: getattr(g, f.name) for f in fields(GpawSettings)})
    prim = load_structure(name)
    if g.reference:                          # superionic R⁽⁰⁾: sites at the density peaks of `analyze`
        from spia_mpi.io.analysisfile import read_peaks
        from spia_mpi.io.runinput import resolve
        from spia_mpi.lattice.reference import primitive_from_peaks
        path = resolve(folder, g.reference) if folder is not None else g.reference
        peaks = read_peaks(path)
        prim = primitive_from_peaks(prim, peaks.cell, peaks.numbers, peaks.centres_frac, peaks.liquid_like,
                                    f"model.gpaw.reference ({path})")
    return GpawModel(prim, S, settings, run_kpoints(inp))


def run_kpoints(inp):
    """Supercell K-points of the run: supercell.kpoints, or those covering supercell.kgrid."""
    if inp.supercell.kgrid is not None:
        from spia_mpi.lattice.supercells import supercell_kgrid
        return supercell_kgrid(model_matrix(inp), inp.supercell.kgrid)
    return np.asarray(inp.supercell.kpoints, float)


def attach_potential_files(inp, folder, model, conf, comm=None):
    """``model.grid.potential_files``: V(r) per configuration/bead read from DFT files.

    Sets ``model.external_potential`` (every rank; files are read where and when a Hamiltonian
    is built). With ``comm``, rank 0 first checks that every file exists and that the one of
    configuration 0, bead 0 (cell, grid, atoms) is valid. Returns the provider or None.
    """
    g = inp.model.grid
    if inp.model.kind != "grid" or not g.potential_files:
        return None
    from spia_mpi.models.grid import PotentialFiles
    from spia_mpi.io.runinput import resolve
    files = g.potential_files
    files = str(resolve(folder, files)) if isinstance(files, str) else [str(resolve(folder, f)) for f in files]
    ref = str(resolve(folder, g.reference_potential_file)) if g.reference_potential_file else None
    if ref is None and inp.spia.fermi_level_ev is None:
        raise InputError("model.grid.potential_files needs model.grid.reference_potential_file (the reference "
                         "Fermi level is computed from the reference structure's potential) or spia.fermi_level_ev")
    c = inp.configurations
    pot = PotentialFiles(model, files, conf.positions, c.skip + c.stride * np.arange(conf.n_conf), ref,
                         g.potential_format, g.potential_units, g.potential_sign, g.potential_zero_mean)
    if comm is not None:
        from spia_mpi.parallel.mpi import on_root
        on_root(comm, pot.check, conf.positions[0, 0])
    model.external_potential = pot
    return pot


def load_configurations(inp, folder, model):
    """Configurations object (rank-0 work): sampled exactly or read from HDF5, validated."""
    from spia_mpi.ions import configurations as cf
    c = inp.configurations
    if c.source == "einstein":
        e = c.einstein
        rng = np.random.default_rng(e.seed)
        pos = cf.sample_einstein_ring_polymers(e.n_samples, e.n_beads, model.atoms.get_masses(),
                                               e.hbar_omega_ev, e.temperature_k, model.reference_positions, rng)
        conf = cf.Configurations(pos, model.atoms.cell[:], model.atoms.numbers, model.atoms.get_masses(),
                                 e.temperature_k, 0.0, "einstein sampler")
    else:
        from spia_mpi.io.runinput import resolve
        conf = cf.read_h5(resolve(folder, c.file))
    conf = conf.select(c.skip, c.stride)
    if conf.n_atoms != len(model.atoms):
        raise InputError(f"{conf.source}: configurations have {conf.n_atoms} atoms, the model's supercell "
                         f"has {len(model.atoms)}")
    from ase.data import chemical_symbols
    bad = [int(z) for z in conf.numbers if not 0 < z < len(chemical_symbols)]
    if bad:
        raise InputError(f"{conf.source}: /configurations/numbers holds {bad[0]}, not an atomic number "
                         f"(expected 1 … {len(chemical_symbols) - 1})")
    if not np.allclose(conf.cell, model.atoms.cell[:], atol=1e-6):
        raise InputError(f"{conf.source}: configuration cell {conf.cell.tolist()} differs from the model "
                         f"supercell {np.asarray(model.atoms.cell[:]).tolist()}")
    from spia_mpi.ions.atomorder import to_model_order
    return to_model_order(conf, model.atoms, model.reference_positions)


def rigid_translations_removed(inp) -> bool:
    """Whether `run` removes every bead's rigid translation (spia.rigid_translations; 'auto': for the
    models whose Hamiltonian a rigid translation of all ions leaves unchanged in the infinite crystal,
    grid without potential files and gpaw — docs/spia.md, 'Rigid translations')."""
    choice = inp.spia.rigid_translations
    from_files = inp.model.kind == "grid" and bool(inp.model.grid.potential_files)
    if choice == "remove" and from_files:
        raise InputError("spia.rigid_translations = 'remove' cannot be used with model.grid.potential_files: the "
                         "files' potentials belong to the configurations as they are (use 'keep' or 'auto')")
    if choice == "auto":
        return inp.model.kind in ("grid", "gpaw") and not from_files
    return choice == "remove"


def run_configurations(inp, folder, model):
    """(configurations, removed :class:`~spia_mpi.ions.translations.RigidShifts` or None): the loaded
    configurations (:func:`load_configurations`) with every bead's rigid translation removed when
    :func:`rigid_translations_removed` (rank-0 work; minimum images from the model's reference sites,
    atoms off their site left out of the mean: spia_mpi.ions.translations)."""
    conf = load_configurations(inp, folder, model)
    if not rigid_translations_removed(inp):
        return conf, None
    import dataclasses

    from spia_mpi.ions.translations import rigid_shifts
    shifts = rigid_shifts(conf.positions, model.reference_positions, conf.masses, conf.cell, conf.numbers)
    logger.info("rigid translations removed: rms %.4f Å, largest %.4f Å per bead%s", shifts.rms_ang,
                float(np.linalg.norm(shifts.shift_ang, axis=-1).max()),
                f"; {int(shifts.off_site.sum())} atom-beads off their site left out of the mean"
                if shifts.off_site.any() else "")
    return dataclasses.replace(conf, positions=shifts.applied(conf.positions)), shifts


def _check_blocks(conf, n_blocks: int):
    """InputError naming the configurations' source unless every jackknife replica keeps 2 configurations."""
    from spia_mpi.engine.workflow import check_blocks
    try:
        check_blocks(conf.n_conf, n_blocks)
    except InputError as exc:
        raise InputError(f"{conf.source}: {exc}") from None


def _file_stamps(paths) -> list:
    """(path, size, modification time in ns) of every file, for the checkpoint fingerprint."""
    out = []
    for p in paths:
        st = Path(p).stat()
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return out


def execute(inp, folder: Path, comm, dry_run: bool = False, source: str = "") -> int:
    from spia_mpi.io.checkpoint import TaskStore, fingerprint
    from spia_mpi.io.inputs import to_dict
    from spia_mpi.io.log import Stage
    from spia_mpi.io.results import write_results
    from spia_mpi.io.runinput import resolve
    from spia_mpi.parallel.mpi import on_root
    from spia_mpi.engine.workflow import ConfigurationGroups, compute_lambda
    from spia_mpi.engine.statespace import initial_pool_per_k

    timings = {}
    resolved = to_dict(inp)
    if comm.rank == 0:
        logger.info("spia_mpi run %s on %d rank(s); the resolved input (every key) goes to /input of the "
                    "results file (-v prints it here)", source, comm.size)
        for line in json.dumps(resolved, indent=1).splitlines():
            logger.debug("  %s", line)
    out_path = resolve(folder, inp.output.file)
    ckpt = resolve(folder, inp.output.checkpoint) if inp.output.checkpoint else \
        out_path.with_name(out_path.name + ".ckpt")

    with Stage("model and configurations", logger, timings):
        if inp.model.kind == "gpaw":             # importing GPAW is collective (its own MPI world)
            from spia_mpi.models.gpaw import require_gpaw
            require_gpaw()
        # validate on rank 0 (one clear error), then every rank builds its own copy
        on_root(comm, lambda: build_model(inp, folder) and None)
        model = build_model(inp, folder)
        conf, shifts = on_root(comm, run_configurations, inp, folder, model)
        on_root(comm, _check_blocks, conf, inp.spia.n_blocks)   # before the GPAW SCFs and resolvents
        potentials = attach_potential_files(inp, folder, model, conf, comm)
    gpaw_plan = None
    if inp.model.kind == "gpaw":
        ConfigurationGroups.check(comm.size, inp.spia.ranks_per_group, inp.spia.resolvent)
        if dry_run:                  # sizes from GPAW's setups; no reference SCF
            model.count_orbitals()
            gpaw_plan = model.plan(inp.spia.states_per_k or initial_pool_per_k(model), conf.n_conf * conf.n_beads,
                                   inp.spia.ranks_per_group)
        else:
            with Stage("GPAW reference SCF", logger, timings):
                model.prepare(comm, inp.spia.ranks_per_group, ckpt / "gpaw", conf.positions,
                              keep_scf=inp.model.gpaw.keep_scf)
    kpoints = run_kpoints(inp)
    if inp.supercell.kgrid is not None:
        if comm.rank == 0:
            logger.info("supercell K-points covering the %s primitive k-grid: %d", list(inp.supercell.kgrid),
                        len(kpoints))
    n_tasks = len(kpoints) * conf.n_conf
    n_units = len(kpoints) * min(inp.spia.n_blocks, conf.n_conf)
    rpg = inp.spia.ranks_per_group
    ConfigurationGroups.check(comm.size, rpg, inp.spia.resolvent)
    n_groups = comm.size // rpg
    space = {} if gpaw_plan or not dry_run else on_root(comm, dry_run_state_space, inp, model, kpoints, conf)
    ns = gpaw_plan["states_per_K"] if gpaw_plan else space["states_per_K"] if space else \
        model.reference_states(kpoints[0], inp.spia.states_per_k or initial_pool_per_k(model)).n_states
    units_per_group = -(-n_units // n_groups)
    # per leader: resolvents of its configurations (n_b·n_s² complex each) + 2 fluctuation sums per
    # unit (n_b·n_s², complex + real) + the running and total sums of one K; plus one Hamiltonian
    mem = (units_per_group * (conf.n_conf / max(1, n_units)) * conf.n_beads * ns * ns * 16
           + (units_per_group + 2) * conf.n_beads * ns * ns * 24
           + 400 * model.n_basis / rpg) / 2**20
    if comm.rank == 0:
        first = "" if space or gpaw_plan or inp.spia.states_per_k is not None or ns == model.n_basis else \
            " (the first pool: the automatic state space is chosen once ε_F is known)"
        logger.info("system: %d sites, %d states per K%s, %d K-point(s); %d configurations × %d beads at %g K",
                    model.n_basis, ns, first, len(kpoints), conf.n_conf, conf.n_beads, conf.temperature_k)
        if gpaw_plan:
            logger.info("GPAW (no SCF run by --dry-run): %s", json.dumps(gpaw_plan))
        logger.info("decomposition: %d work units (K × blocks) over %d group(s) of %d rank(s); %d resolvent "
                    "tasks; ≈ %.1f MiB per rank", n_units, n_groups, rpg, n_tasks, mem)
    if dry_run:
        if comm.rank == 0:
            print(json.dumps({"ranks": comm.size, "ranks_per_group": rpg, "groups": n_groups,
                              "work_units": n_units, "tasks": n_tasks, "states_per_K": ns,
                              "n_configurations": conf.n_conf, "n_beads": conf.n_beads,
                              "memory_per_rank_MiB": round(mem, 2), **space,
                              **({"gpaw": gpaw_plan} if gpaw_plan else {})}, indent=1))
        return 0

    # fail early on an unwritable output before hours of work
    on_root(comm, _check_output, out_path)
    model_keys = {**resolved["model"], "gpaw": {k: v for k, v in resolved["model"]["gpaw"].items()
                                                if k not in ("keep_scf", "aij_min_orbitals")}}   # housekeeping
    if inp.model.kind == "gpaw":                 # resolvents of another cross-overlap form must not be reused
        from spia_mpi.models.paw_overlap import FORM
        model_keys["cross_overlap_form"] = FORM
    fp = fingerprint({"model": model_keys, "supercell": resolved["supercell"],
                      # not the resolvent options: a run stopped by a solver failure resumes with
                      # other options and keeps its finished tasks (each converged to its tolerance)
                      "spia": {k: resolved["spia"][k] for k in ("matsubara_j", "states_per_k", "resolvent",
                                                                  "fermi_level_ev", "fermi_level", "fermi_smearing_ev",
                                                                  "fermi_smearing", "fermi_configurations",
                                                                  "window_ev", "rigid_translations")},
                      "positions": np.ascontiguousarray(conf.positions), "T": conf.temperature_k,
                      # regenerated potential files (same names) must not reuse old resolvents
                      "potential_files": on_root(comm, _file_stamps, potentials.paths()) if potentials else None})
    store = TaskStore.open(ckpt, n_tasks, fp, comm, restart=inp.output.restart)

    fermi = None                     # the reference structure's level (a candidate of spia.fermi_level)
    if inp.spia.fermi_level_ev is None and inp.model.kind == "gpaw":
        fermi = model.fermi_level_ev
        if comm.rank == 0:
            logger.info("reference Fermi level %.4f eV (GPAW reference SCF)", fermi)
    if inp.spia.fermi_level_ev is None and inp.model.kind == "grid":
        from spia_mpi.models.grid import fermi_level_of_reference
        with Stage("reference Fermi level (reference bands)", logger, timings):
            fermi = on_root(comm, fermi_level_of_reference, model, kpoints, conf.temperature_k)
        if comm.rank == 0:
            logger.info("reference Fermi level %.4f eV", fermi)
    with Stage("SPIA λ(m)", logger, timings):
        res = compute_lambda(model, conf.positions, kpoints, conf.temperature_k, J=inp.spia.matsubara_j,
                             n_per_k=inp.spia.states_per_k, gammas=inp.spia.gamma_ev, mode=inp.spia.mode,
                             solver=inp.spia.resolvent, n_blocks=inp.spia.n_blocks,
                             fermi_level=inp.spia.fermi_level, fermi_level_ev=inp.spia.fermi_level_ev,
                             reference_fermi_level_ev=fermi, fermi_smearing_ev=inp.spia.fermi_smearing_ev,
                             fermi_smearing=inp.spia.fermi_smearing,
                             fermi_configurations=inp.spia.fermi_configurations,
                             window_ev=inp.spia.window_ev, comm=comm, store=store,
                             solver_options=dict(inp.spia.resolvent_options) or None,
                             ranks_per_group=inp.spia.ranks_per_group, bse_solver=inp.spia.bse_solver,
                             bse_distributed_min_states=inp.spia.bse_distributed_min_states,
                             bse_distributed_solver=inp.spia.bse_distributed_solver,
                             bead_correction=inp.spia.bead_correction, tau_refine=inp.spia.tau_refine,
                             symmetrize_m=inp.spia.symmetrize_m, anisotropy_bins=inp.spia.anisotropy_bins,
                             anisotropy_n_bins=inp.spia.anisotropy_n_bins)

    if comm.rank == 0:
        sp = res.state_space
        logger.info("state space: %s states per K out of a pool of %d per k%s, %s",
                    "/".join(map(str, sp.n_states)), sp.pool_per_k, " (every band)" if sp.pool_complete else "",
                    "no energy window" if sp.window_ev is None else
                    "window [%.3g, %.3g] eV around ε_F" % tuple(sp.window_ev))
    with Stage("Eliashberg T_c", logger, timings):
        records = solve_tc_records(res, conf.temperature_k, inp.eliashberg, comm)
    records = _add_tc_errors(records, res, conf.temperature_k, inp.eliashberg, comm, timings)

    with Stage("write results", logger, timings):
        timings.update({f"spia_{k}": v for k, v in res.timings.items()})
        timings.update(getattr(model, "timings", {}))      # GPAW model: density, H/S, cross overlaps (rank 0)
        content = results_content(inp, res, conf, records, timings, shifts) if comm.rank == 0 else None
        write_results(out_path, content, comm, f"run {source}", resolved)
    if comm.rank == 0:
        _summary(out_path, res, records)
        if inp.output.plots:
            from spia_mpi.io import plotting
            plotting.figures_beside(out_path)
    return 0


def dry_run_state_space(inp, model, kpoints, conf) -> dict:
    """The state space a run would use, for ``--dry-run`` (rank-0 work): {'states_per_K' (the most
    over the K-points), 'states_pool_per_k', 'window_eV' (None: every pool state), 'fermi_level_eV'}.
    With the automatic state space the pool is grown and the window cut as `run` does
    (:func:`statespace.choose`), around spia.fermi_level_ev or the reference structure's ε_F (the
    grid model's reference bands, computed here as the run does; the run's default 'ensemble'
    level differs from it by the configurations' shift, so the count is an estimate)."""
    from spia_mpi.engine import statespace
    from spia_mpi.engine.resolvent import matsubara_eta
    refs = statespace.first_pool(model, kpoints, inp.spia.states_per_k)
    complete = all(r.n_states == model.n_basis for r in refs)
    if complete and inp.spia.window_ev is None or inp.spia.states_per_k is not None and inp.spia.window_ev is None:
        ef = None                                              # the pool is the state space: no level needed
    elif inp.spia.fermi_level_ev is not None or not isinstance(inp.spia.fermi_level, str):
        ef = float(inp.spia.fermi_level_ev if inp.spia.fermi_level_ev is not None else inp.spia.fermi_level)
    elif inp.model.kind == "grid":
        from spia_mpi.models.grid import fermi_level_of_reference
        ef = fermi_level_of_reference(model, kpoints, conf.temperature_k)
    else:
        raise InputError("run --dry-run: the state space is cut around ε_F, which only the run itself finds for "
                         f"model.kind = '{inp.model.kind}' with a subspace that does not hold every band: give "
                         "spia.fermi_level_ev to see it")
    if ef is not None:
        refs, space = statespace.choose(model, kpoints, refs, ef, np.asarray(inp.spia.gamma_ev, float),
                                        matsubara_eta(inp.spia.matsubara_j, conf.temperature_k),
                                        inp.spia.states_per_k, inp.spia.window_ev, complete)
        pool, window = space.pool_per_k, space.window_ev
    else:
        pool, window = refs[0].n_states // len(refs[0].kpoints_frac), None
    return {"states_per_K": int(max(r.n_states for r in refs)), "states_pool_per_k": int(pool),
            "window_eV": None if window is None else [float(x) for x in window],
            "fermi_level_eV": ef}


@dataclass(frozen=True)
class TcRecord:
    """T_c of one (γ, μ*): temperatures K, energies eV; NaN where there is none.

    ``omega2_ev`` and ``omega_log_ev`` belong to γ's λ(m) (the same for every μ*);
    ``notes``: why a number is missing (solver and jackknife messages).
    """

    gamma_index: int
    mustar: float
    tc_k: float
    allen_dynes_k: float
    mcmillan_k: float
    omega2_ev: float
    omega_log_ev: float
    tc_error_k: float = math.nan
    notes: tuple = ()


def solve_tc_records(res, temperature_k: float, eli, comm) -> list:
    """One :class:`TcRecord` per (γ, μ*) (γ-major) from the λ(m) of ``res``; ``eli``: the
    input's [eliashberg] table. A γ whose λ(m) gives no T_c at all gets NaN records."""
    from spia_mpi.eliashberg import linearised
    records = []
    for ig in range(len(res.gamma_ev)):
        try:
            r = linearised.solve_tc(res.lambda_m[ig], temperature_k, eli.mustar, n_freq=eli.nfreq, comm=comm)
        except InputError as exc:
            records += [TcRecord(ig, mu, math.nan, math.nan, math.nan, math.nan, math.nan, notes=(str(exc),))
                        for mu in eli.mustar]
            continue
        records += [TcRecord(ig, mu, r.tc_k[j], r.allen_dynes_k[j], r.mcmillan_k[j], r.omega2_ev,
                             r.omega_log_ev, notes=(r.errors[str(mu)],) if str(mu) in r.errors else ())
                    for j, mu in enumerate(eli.mustar)]
    return records


def _add_tc_errors(records, res, temperature_k: float, eli, comm, timings) -> list:
    """``records`` with σ(T_c) (K) from the jackknife replicas of λ(m) (one T_c solve per
    configuration block, μ* and γ; ``eliashberg.tc_errors = false`` skips them) and the
    replicas' failures in ``notes``."""
    import dataclasses

    from spia_mpi.eliashberg import linearised
    from spia_mpi.io.log import Stage
    if not eli.tc_errors or res.lambda_m_jackknife is None:
        return records
    out = []
    with Stage("Eliashberg T_c errors (jackknife)", logger, timings):
        for ig in range(len(res.gamma_ev)):
            mine = [r for r in records if r.gamma_index == ig]
            jk = linearised.jackknife_tc(res.lambda_m_jackknife[:, ig], temperature_k, eli.mustar,
                                         [r.tc_k for r in mine], n_freq=eli.nfreq, comm=comm)
            for r, sigma in zip(mine, jk.tc_error_k):
                why = jk.errors.get(str(r.mustar))
                extra = (f"T_c error: {why}",) if why and why != "no central T_c" else ()
                out.append(dataclasses.replace(r, tc_error_k=float(sigma), notes=r.notes + extra))
    return out


def _check_output(path: Path):
    """InputError naming output.file unless ``path`` can really be created (a probe write)."""
    from spia_mpi.io.hdf5 import check_writable
    problem = check_writable(path)
    if problem:
        raise InputError(f"output.file: {problem}")


def _omega2_m(res, temperature_k):
    """ω̄₂(m) (eV) of every γ, float [n_gamma, n_m]; a row of NaN where it cannot be formed."""
    from spia_mpi.eliashberg import linearised
    out = np.full(res.lambda_m.shape, np.nan)
    for ig, lam in enumerate(res.lambda_m):
        try:
            out[ig] = linearised.fit_omega2(lam, temperature_k).omega2_m_ev
        except InputError:
            pass
    return out


def model_matrix(inp):
    from spia_mpi.lattice.supercells import as_supercell_matrix
    return as_supercell_matrix(inp.supercell.matrix)


def results_content(inp, res, conf, records, timings, shifts=None):
    """Everything the results file holds (docs/output.md), as a ResultsContent; ``shifts``: the removed
    rigid translations (:func:`run_configurations`), None if kept."""
    from spia_mpi.io.results import ResultsContent
    out = ResultsContent()
    out.set_attrs("timings", **{k: float(v) for k, v in timings.items()})
    _lambda_entries(out, inp, res, conf, records)
    translation_entries(out, shifts, "lambda")
    _lambda_q_entries(out, inp, res)
    _eliashberg_entries(out, inp, records, len(res.gamma_ev))
    _band_entries(out, res)
    if res.anisotropy is not None:
        from spia_mpi.io.anisotropyfile import add_anisotropy
        add_anisotropy(out, res.anisotropy, res.gamma_ev, res.lambda_m)
    return out


def _lambda_entries(out, inp, res, conf, records):
    """/lambda: λ(m), its errors and replicas, ω̄₂, the Fermi-surface averages of Γ and W."""
    from spia_mpi.units import bosonic_frequency_ev
    out.set_attrs("lambda", temperature_K=conf.temperature_k, n_beads=conf.n_beads, n_configurations=conf.n_conf,
                  mode=res.mode, error_method=f"jackknife over {inp.spia.n_blocks} configuration blocks")
    m = np.arange(res.lambda_m.shape[1])
    out.add("lambda/m", m, "1", "bosonic Matsubara index")
    out.add("lambda/nu_eV", bosonic_frequency_ev(m, conf.temperature_k), "eV", "ν_m = 2πm k_B T")
    out.add("lambda/gamma_eV", res.gamma_ev, "eV", "Lorentzian half widths")
    out.add("lambda/lambda_m", res.lambda_m, "1", "λ(m) [gamma, m]")
    out.add("lambda/lambda_m_error", res.lambda_m_error, "1", "standard error of λ(m)")
    _raw_lambda_entries(out, res)
    _state_space_entries(out, res.state_space)
    if res.lambda_m_jackknife is not None:
        out.add("lambda/lambda_m_jackknife", res.lambda_m_jackknife, "1",
                "λ(m) with configuration block i deleted [block, gamma, m] (delete-one "
                "jackknife replicas behind lambda_m_error; `tc` uses them for T_c errors)")
    omega2 = [next(r.omega2_ev for r in records if r.gamma_index == ig) for ig in range(len(res.gamma_ev))]
    out.add("lambda/omega2_eV", np.array(omega2), "eV", "ω̄₂ fitted to the tail of λ(m)")
    out.add("lambda/omega2_m_eV", _omega2_m(res, conf.temperature_k), "eV",
            "ω̄₂(m) = ν_m √(λ(m)/λ(0)) [gamma, m] (0 at m = 0; NaN where λ(m) ≤ 0 or λ(0) ≤ 0)")
    for name, desc in (("gamma_fs", "Fermi-surface average ⟨Γ(m)⟩_FS = Σ w_s Γ_st(m) w_t / (Σ w_s)² "
                                    "over the sampled pairs [gamma, m]"),
                       ("w_fs", "Fermi-surface average ⟨W(m)⟩_FS of the interaction used for λ "
                                "(= ⟨Γ⟩_FS in Born mode) [gamma, m]; λ = −N_γ (M/N_cells) ⟨W⟩_FS"),
                       ("gamma_diag_abs", "mean over all states s of |Γ_ss(m)| [m]")):
        val = getattr(res, name, None)
        if val is not None:
            out.add(f"lambda/{name}_eV", val, "eV", desc)
            out.add(f"lambda/{name}_error_eV", getattr(res, f"{name}_error"), "eV",
                    f"jackknife standard error of {name}_eV")
    out.add("lambda/n_gamma_per_cell", res.n_gamma_per_cell, "1/eV", "Lorentzian DOS N_γ per primitive cell per spin")
    out.add("lambda/n_gamma_per_cell_jackknife", res.n_gamma_jackknife / (res.n_gamma / res.n_gamma_per_cell), "1/eV",
            "N_γ per primitive cell of each jackknife replica (its own Ḡ) [block, gamma]")


def translation_entries(out, shifts, group: str):
    """/<group> attribute rigid_translations ('removed' or 'kept') and, when removed, the shifts
    (/<group>/rigid_translation_ang, /<group>/rigid_translation_off_site); `run` and `spectral`."""
    out.set_attrs(group, rigid_translations="kept" if shifts is None else "removed")
    if shifts is not None:
        out.add(f"{group}/rigid_translation_ang", shifts.shift_ang, "Å",
                "rigid translation t_cb removed from every atom of configuration c, bead b [conf, bead, 3] "
                "(spia.rigid_translations)")
        out.add(f"{group}/rigid_translation_off_site", shifts.off_site, "1",
                "atoms off their reference site, left out of t_cb's mean [conf, bead]")


def _raw_lambda_entries(out, res):
    """The uncorrected λ(m) and the finite-bead correction that turned it into /lambda/lambda_m."""
    bc = res.bead_correction
    out.set_attrs("lambda", bead_correction=bc.method, tau_refine=bc.tau_refine)
    out.add("lambda/bead_correction_factor", bc.factor, "1",
            f"f(m) with lambda_m = f · lambda_m_raw (bead_correction '{bc.method}')")
    out.add("lambda/lambda_m_raw", res.raw.value, "1",
            "λ(m) before the finite-bead correction (at the ring-polymer frequencies Ω_m) [gamma, m]")
    out.add("lambda/lambda_m_raw_error", res.raw.error, "1", "jackknife standard error of lambda_m_raw")
    out.add("lambda/lambda_m_raw_jackknife", res.raw.replicas, "1",
            "lambda_m_raw with configuration block i deleted [block, gamma, m]")


def _state_space_entries(out, space):
    """The state space of Ḡ, T, the BSE and N_γ: window, pool and captured Fermi-surface weight."""
    out.set_attrs("lambda", window_eV=json.dumps(None if space.window_ev is None else list(space.window_ev)),
                  states_pool_per_k=space.pool_per_k, states_pool_complete=bool(space.pool_complete))
    out.add("lambda/n_states_per_kpoint", space.n_states, "1", "reference states kept per supercell K")
    out.add("lambda/window_captured_fraction", space.captured, "1",
            "Σ w over the kept states / Σ w over the states_per_k pool (reference energies) [gamma]")


def _lambda_q_entries(out, inp, res):
    """/lambda_q: q-resolved λ and the pair sums behind it (for combining supercells)."""
    out.add("lambda_q/qpoints_frac", res.qpoints_frac, "1", "q = k' − k, primitive reduced")
    out.add("lambda_q/lambda_qm", res.lambda_q, "1", "q-resolved λ [gamma, q, m]; Σ_q = λ(m)")
    out.add("lambda_q/pair_sums", res.pair_sums_q, "1/eV",
            "Σ over pairs (k, k+q) of w W w [gamma, q, m] (for combining supercells)")
    out.add("lambda_q/pair_sums_jackknife", res.pair_sums_q_jackknife, "1/eV",
            "pair_sums with one configuration block deleted [block, gamma, q, m]")
    out.set_attrs("lambda_q", cells_per_supercell=res.cells_per_supercell, n_kpoints=res.n_kpoints,
                  supercell_matrix=json.dumps(np.asarray(model_matrix(inp)).tolist()))


def _eliashberg_entries(out, inp, records, n_gamma):
    """/eliashberg: T_c and its estimates [gamma, mustar] from the (γ, μ*) records."""
    mustars = inp.eliashberg.mustar

    def table(field):
        return np.array([getattr(r, field) for r in records], float).reshape(n_gamma, len(mustars))
    out.add("eliashberg/mustar", np.array(mustars), "1")
    out.add("eliashberg/tc_K", table("tc_k"), "K", "T_c [gamma, mustar]")
    out.add("eliashberg/tc_K_error", table("tc_error_k"), "K",
            "jackknife standard error of T_c from λ(m)'s block replicas [gamma, mustar] (NaN: not computed)")
    out.add("eliashberg/allen_dynes_K", table("allen_dynes_k"), "K")
    out.add("eliashberg/mcmillan_K", table("mcmillan_k"), "K")
    out.add("eliashberg/omega_log_eV", table("omega_log_ev")[:, 0], "eV", "ω_log of the α²F estimate")
    out.set_attrs("eliashberg", notes=json.dumps([gamma_notes(records, ig) for ig in range(n_gamma)]))


def gamma_notes(records, ig: int) -> str:
    """Why T_c numbers of γ number ``ig`` are missing: 'μ*=…: reason; …' ('' if none)."""
    return "; ".join(f"μ*={r.mustar}: {n}" for r in records if r.gamma_index == ig for n in r.notes)


def _band_entries(out, res):
    """/bands: renormalised and reference energies and half widths of every state."""
    out.set_attrs("bands", **res.fermi.as_attrs())      # the level used and every candidate (NaN: n/a)
    out.set_attrs("bands", eta_eV=res.eta_ev, gbar_offdiagonal_ratio=json.dumps(res.offdiag_ratio), **res.iterations)

    def column(key):
        return np.concatenate([bb[key] for bb in res.bands])[:, None]
    out.add("bands/energies_eV", column("energies"), "eV", "renormalised band energies [state, 1]")
    out.add("bands/half_width_eV", column("half_width"), "eV", "half widths γ_nk")
    out.add("bands/reference_energies_eV", column("reference_energies"), "eV", "reference band energies")
    out.add("bands/kpoints_frac", np.concatenate([bb["kpoints_frac"][bb["k_index"]] for bb in res.bands]), "1",
            "primitive k of each state")


def _summary(path, res, records):
    lines = [f"results: {path}",
             f"T = {res.temperature_k:g} K, {res.n_conf} configurations × {res.n_beads} beads, mode {res.mode}"]
    for ig, gam in enumerate(res.gamma_ev):
        lam = ", ".join(f"{x:.4f}±{e:.4f}" for x, e in zip(res.lambda_m[ig], res.lambda_m_error[ig]))
        lines.append(f"γ = {gam:g} eV: λ(m) = {lam}")
        lines.append("          T_c = " + ", ".join(
            (f"{r.tc_k:.1f} ± {r.tc_error_k:.2g} K" if math.isfinite(r.tc_error_k) else f"{r.tc_k:.1f} K")
            + f" (μ*={r.mustar})" for r in records if r.gamma_index == ig))
        if gamma_notes(records, ig):              # why a T_c (or its error) is missing
            lines.append(f"          ({gamma_notes(records, ig)})")
    print("\n".join(lines))
