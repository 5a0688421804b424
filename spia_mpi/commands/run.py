"""``run``: the whole SPIA pipeline from one TOML input file."""
from __future__ import annotations

import json
import logging
import math
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
        if len(g.grid_per_cell) != 3:
            raise InputError(f"model.grid.grid_per_cell must have 3 entries, got {list(g.grid_per_cell)}")
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
    return GpawModel(load_structure(name), S, settings, run_kpoints(inp))


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
    want = np.asarray(model.atoms.numbers)
    if not np.array_equal(conf.numbers, want):
        a = int(np.flatnonzero(conf.numbers != want)[0])
        raise InputError(f"{conf.source}: atom {a} is {chemical_symbols[conf.numbers[a]]}, the model's "
                         f"supercell has {chemical_symbols[want[a]]} there (the configurations must hold the "
                         f"model's atoms in the same order)")
    if not np.allclose(conf.cell, model.atoms.cell[:], atol=1e-6):
        raise InputError(f"{conf.source}: configuration cell {conf.cell.tolist()} differs from the model "
                         f"supercell {np.asarray(model.atoms.cell[:]).tolist()}")
    return conf


def _file_stamps(paths) -> list:
    """(path, size, modification time in ns) of every file, for the checkpoint fingerprint."""
    out = []
    for p in paths:
        st = Path(p).stat()
        out.append((str(p), st.st_size, st.st_mtime_ns))
    return out


def execute(inp, folder: Path, comm, dry_run: bool = False, source: str = "") -> int:
    from spia_mpi.eliashberg import linearised
    from spia_mpi.io import hdf5
    from spia_mpi.io.checkpoint import TaskStore, fingerprint
    from spia_mpi.io.inputs import to_dict
    from spia_mpi.io.log import Stage
    from spia_mpi.parallel.mpi import on_root
    from spia_mpi.io.runinput import resolve
    from spia_mpi.engine.workflow import ConfigurationGroups, compute_lambda

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
        conf = on_root(comm, load_configurations, inp, folder, model)
        potentials = attach_potential_files(inp, folder, model, conf, comm)
    if inp.model.kind == "gpaw":
        ConfigurationGroups.check(comm.size, inp.spia.ranks_per_group, inp.spia.resolvent)
        with Stage("GPAW reference SCF", logger, timings):
            model.prepare(comm, inp.spia.ranks_per_group, ckpt / "gpaw", conf.positions)
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
    ns = model.reference_states(kpoints[0], inp.spia.states_per_k).n_states
    units_per_group = -(-n_units // n_groups)
    # per leader: resolvents of its configurations (n_b·n_s² complex each) + 2 fluctuation sums per
    # unit (n_b·n_s², complex + real) + the running and total sums of one K; plus one Hamiltonian
    mem = (units_per_group * (conf.n_conf / max(1, n_units)) * conf.n_beads * ns * ns * 16
           + (units_per_group + 2) * conf.n_beads * ns * ns * 24
           + 400 * model.n_basis / rpg) / 2**20
    if comm.rank == 0:
        logger.info("system: %d sites, %d states per K, %d K-point(s); %d configurations × %d beads at %g K",
                    model.n_basis, ns, len(kpoints), conf.n_conf, conf.n_beads, conf.temperature_k)
        logger.info("decomposition: %d work units (K × blocks) over %d group(s) of %d rank(s); %d resolvent "
                    "tasks; ≈ %.1f MiB per rank", n_units, n_groups, rpg, n_tasks, mem)
    if dry_run:
        if comm.rank == 0:
            print(json.dumps({"ranks": comm.size, "ranks_per_group": rpg, "groups": n_groups,
                              "work_units": n_units, "tasks": n_tasks, "states_per_K": ns,
                              "n_configurations": conf.n_conf, "n_beads": conf.n_beads,
                              "memory_per_rank_MiB": round(mem, 2)}, indent=1))
        return 0

    # fail early on an unwritable output before hours of work
    on_root(comm, _check_output, out_path)
    fp = fingerprint({"model": resolved["model"], "supercell": resolved["supercell"],
                      # not the resolvent options: a run stopped by a solver failure resumes with
                      # other options and keeps its finished tasks (each converged to its tolerance)
                      "spia": {k: resolved["spia"][k] for k in ("matsubara_j", "states_per_k", "resolvent",
                                                                  "fermi_level_ev", "fermi_level", "fermi_smearing_ev",
                                                                  "fermi_smearing", "fermi_configurations",
                                                                  "window_ev")},
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
                             bead_correction=inp.spia.bead_correction, tau_refine=inp.spia.tau_refine,
                             symmetrize_m=inp.spia.symmetrize_m)

    with Stage("Eliashberg T_c", logger, timings):
        tc, ad, mc, w2, wlog, notes = [], [], [], [], [], []
        for ig, gam in enumerate(res.gamma_ev):
            try:
                r = linearised.solve_tc(res.lambda_m[ig], conf.temperature_k, inp.eliashberg.mustar,
                                        n_freq=inp.eliashberg.nfreq, comm=comm)
                tc.append(r.tc_k), ad.append(r.allen_dynes_k), mc.append(r.mcmillan_k)
                w2.append(r.omega2_ev), wlog.append(r.omega_log_ev)
                notes.append("; ".join(f"μ*={k}: {v}" for k, v in r.errors.items()))
            except InputError as exc:
                nan = [math.nan] * len(inp.eliashberg.mustar)
                tc.append(nan), ad.append(nan), mc.append(nan), w2.append(math.nan), wlog.append(math.nan)
                notes.append(str(exc))
    tc_err = _tc_errors(inp, res, conf, tc, notes, comm, timings)

    with Stage("write results", logger, timings):
        timings.update({f"spia_{k}": v for k, v in res.timings.items()})
        timings.update(getattr(model, "timings", {}))      # GPAW model: density, H/S, cross overlaps (rank 0)
        write_results(out_path, comm, inp, resolved, res, conf, tc, ad, mc, w2, wlog, notes, timings, source,
                      tc_err=tc_err)
    if comm.rank == 0:
        _summary(out_path, res, inp.eliashberg.mustar, tc, tc_err, notes)
        if inp.output.plots:
            try:
                from spia_mpi.io import plotting
                with hdf5.open_h5(out_path, "r", None) as f:
                    written = plotting.plot_results(f, out_path.with_name(out_path.stem + "_plots"))
                logger.info("figures: %s", ", ".join(str(p) for p in written if p.suffix == ".png"))
            except ImportError:
                logger.warning("matplotlib not available: no figures")
    return 0


def _tc_errors(inp, res, conf, tc, notes, comm, timings):
    """σ(T_c) [gamma, mustar] (K) from the jackknife replicas of λ(m); NaN when switched off.

    One T_c solve per configuration block, μ* and γ (linearised.tc_errors = false skips
    them); replica failures are appended to ``notes``.
    """
    from spia_mpi.eliashberg import linearised
    from spia_mpi.io.log import Stage
    mustars = inp.eliashberg.mustar
    err = np.full((len(res.gamma_ev), len(mustars)), math.nan)
    if not inp.eliashberg.tc_errors or res.lambda_m_jackknife is None:
        return err
    with Stage("Eliashberg T_c errors (jackknife)", logger, timings):
        for ig in range(len(res.gamma_ev)):
            jk = linearised.jackknife_tc(res.lambda_m_jackknife[:, ig], conf.temperature_k, mustars, tc[ig],
                                         n_freq=inp.eliashberg.nfreq, comm=comm)
            err[ig] = jk.tc_error_k
            extra = [f"μ*={k}: T_c error: {v}" for k, v in jk.errors.items() if v != "no central T_c"]
            if extra:
                notes[ig] = "; ".join(x for x in [notes[ig], *extra] if x)
    return err


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


def write_results(path, comm, inp, resolved, res, conf, tc, ad, mc, w2, wlog, notes, timings, source,
                  tc_err=None):
    from spia_mpi.io import hdf5
    info = hdf5.provenance(comm, f"run {source}")
    if comm.size > 1:     # the collective write needs identical metadata on every rank (date, timings)
        info, timings = comm.bcast((info, timings), root=0)
    with hdf5.atomic_h5(path, comm, kind="results") as f:
        hdf5.write_provenance(f, info, resolved)
        t = f.create_group("timings")
        for k, v in timings.items():
            t.attrs[k] = float(v)
        g = f.create_group("lambda")
        g.attrs["temperature_K"] = conf.temperature_k
        g.attrs["n_beads"] = conf.n_beads
        g.attrs["n_configurations"] = conf.n_conf
        g.attrs["mode"] = res.mode
        g.attrs["error_method"] = f"jackknife over {inp.spia.n_blocks} configuration blocks"
        m = np.arange(res.lambda_m.shape[1])
        hdf5.write_dataset(g, "m", m, "1", "bosonic Matsubara index")
        from spia_mpi.units import bosonic_frequency_ev
        hdf5.write_dataset(g, "nu_eV", bosonic_frequency_ev(m, conf.temperature_k), "eV", "ν_m = 2πm k_B T")
        hdf5.write_dataset(g, "gamma_eV", res.gamma_ev, "eV", "Lorentzian half widths")
        hdf5.write_dataset(g, "lambda_m", res.lambda_m, "1", "λ(m) [gamma, m]")
        hdf5.write_dataset(g, "lambda_m_error", res.lambda_m_error, "1", "standard error of λ(m)")
        _write_raw_lambda(g, res)
        _write_state_space(g, res.state_space)
        if res.lambda_m_jackknife is not None:
            hdf5.write_dataset(g, "lambda_m_jackknife", res.lambda_m_jackknife, "1",
                             "λ(m) with configuration block i deleted [block, gamma, m] (delete-one "
                             "jackknife replicas behind lambda_m_error; `tc` uses them for T_c errors)")
        hdf5.write_dataset(g, "omega2_eV", np.array(w2), "eV", "ω̄₂ fitted to the tail of λ(m)")
        hdf5.write_dataset(g, "omega2_m_eV", _omega2_m(res, conf.temperature_k), "eV",
                         "ω̄₂(m) = ν_m √(λ(m)/λ(0)) [gamma, m] (0 at m = 0; NaN where λ(m) ≤ 0 or λ(0) ≤ 0)")
        for name, desc in (("gamma_fs", "Fermi-surface average ⟨Γ(m)⟩_FS = Σ w_s Γ_st(m) w_t / (Σ w_s)² "
                                        "over the sampled pairs [gamma, m]"),
                           ("w_fs", "Fermi-surface average ⟨W(m)⟩_FS of the interaction used for λ "
                                    "(= ⟨Γ⟩_FS in Born mode) [gamma, m]; λ = −N_γ (M/N_cells) ⟨W⟩_FS"),
                           ("gamma_diag_abs", "mean over all states s of |Γ_ss(m)| [m]")):
            val = getattr(res, name, None)
            if val is not None:
                hdf5.write_dataset(g, f"{name}_eV", val, "eV", desc)
                hdf5.write_dataset(g, f"{name}_error_eV", getattr(res, f"{name}_error"), "eV",
                                 f"jackknife standard error of {name}_eV")
        hdf5.write_dataset(g, "n_gamma_per_cell", res.n_gamma_per_cell, "1/eV",
                         "Lorentzian DOS N_γ per primitive cell per spin")
        q = f.create_group("lambda_q")
        hdf5.write_dataset(q, "qpoints_frac", res.qpoints_frac, "1", "q = k' − k, primitive reduced")
        hdf5.write_dataset(q, "lambda_qm", res.lambda_q, "1", "q-resolved λ [gamma, q, m]; Σ_q = λ(m)")
        hdf5.write_dataset(q, "pair_sums", res.pair_sums_q, "1/eV",
                         "Σ over pairs (k, k+q) of w W w [gamma, q, m] (for combining supercells)")
        hdf5.write_dataset(q, "pair_sums_jackknife", res.pair_sums_q_jackknife, "1/eV",
                         "pair_sums with one configuration block deleted [block, gamma, q, m]")
        q.attrs["cells_per_supercell"] = res.cells_per_supercell
        q.attrs["n_kpoints"] = res.n_kpoints
        q.attrs["supercell_matrix"] = json.dumps(np.asarray(model_matrix(inp)).tolist())
        e = f.create_group("eliashberg")
        hdf5.write_dataset(e, "mustar", np.array(inp.eliashberg.mustar), "1")
        hdf5.write_dataset(e, "tc_K", np.array(tc), "K", "T_c [gamma, mustar]")
        hdf5.write_dataset(e, "tc_K_error", np.full(np.shape(tc), np.nan) if tc_err is None else np.asarray(tc_err),
                         "K", "jackknife standard error of T_c from λ(m)'s block replicas [gamma, mustar]"
                         " (NaN: not computed)")
        hdf5.write_dataset(e, "allen_dynes_K", np.array(ad), "K")
        hdf5.write_dataset(e, "mcmillan_K", np.array(mc), "K")
        hdf5.write_dataset(e, "omega_log_eV", np.array(wlog), "eV", "ω_log of the α²F estimate")
        e.attrs["notes"] = json.dumps(notes)
        b = f.create_group("bands")
        for k, v in res.fermi.as_attrs().items():     # the level used and every candidate (NaN: n/a)
            b.attrs[k] = v
        b.attrs["eta_eV"] = res.eta_ev
        b.attrs["gbar_offdiagonal_ratio"] = json.dumps(res.offdiag_ratio)
        en = np.concatenate([bb["energies"] for bb in res.bands])
        hw = np.concatenate([bb["half_width"] for bb in res.bands])
        ref = np.concatenate([bb["reference_energies"] for bb in res.bands])
        kp = np.concatenate([bb["kpoints_frac"][bb["k_index"]] for bb in res.bands])
        hdf5.write_dataset(b, "energies_eV", en[:, None], "eV", "renormalised band energies [state, 1]")
        hdf5.write_dataset(b, "half_width_eV", hw[:, None], "eV", "half widths γ_nk")
        hdf5.write_dataset(b, "reference_energies_eV", ref[:, None], "eV", "reference band energies")
        hdf5.write_dataset(b, "kpoints_frac", kp, "1", "primitive k of each state")
        for k, v in res.iterations.items():
            b.attrs[k] = v


def _write_raw_lambda(g, res):
    """The uncorrected λ(m) and the finite-bead correction that turned it into /lambda/lambda_m."""
    from spia_mpi.io import hdf5
    bc = res.bead_correction
    g.attrs["bead_correction"] = bc.method
    g.attrs["tau_refine"] = bc.tau_refine
    hdf5.write_dataset(g, "bead_correction_factor", bc.factor, "1",
                       f"f(m) with lambda_m = f · lambda_m_raw (bead_correction '{bc.method}')")
    hdf5.write_dataset(g, "lambda_m_raw", res.raw.value, "1",
                       "λ(m) before the finite-bead correction (at the ring-polymer frequencies Ω_m) [gamma, m]")
    hdf5.write_dataset(g, "lambda_m_raw_error", res.raw.error, "1", "jackknife standard error of lambda_m_raw")
    hdf5.write_dataset(g, "lambda_m_raw_jackknife", res.raw.replicas, "1",
                       "lambda_m_raw with configuration block i deleted [block, gamma, m]")


def _write_state_space(g, space):
    """The state space of Ḡ, T, the BSE and N_γ: window, pool and captured Fermi-surface weight."""
    from spia_mpi.io import hdf5
    g.attrs["window_eV"] = json.dumps(None if space.window_ev is None else list(space.window_ev))
    g.attrs["states_pool_per_k"] = space.pool_per_k
    g.attrs["states_pool_complete"] = bool(space.pool_complete)
    hdf5.write_dataset(g, "n_states_per_kpoint", space.n_states, "1", "reference states kept per supercell K")
    hdf5.write_dataset(g, "window_captured_fraction", space.captured, "1",
                       "Σ w over the kept states / Σ w over the states_per_k pool (reference energies) [gamma]")


def _summary(path, res, mustars, tc, tc_err=None, notes=None):
    lines = [f"results: {path}",
             f"T = {res.temperature_k:g} K, {res.n_conf} configurations × {res.n_beads} beads, mode {res.mode}"]
    for ig, gam in enumerate(res.gamma_ev):
        lam = ", ".join(f"{x:.4f}±{e:.4f}" for x, e in zip(res.lambda_m[ig], res.lambda_m_error[ig]))
        lines.append(f"γ = {gam:g} eV: λ(m) = {lam}")
        errs = tc_err[ig] if tc_err is not None else [math.nan] * len(mustars)
        lines.append("          T_c = " + ", ".join(
            (f"{t:.1f} ± {s:.2g} K" if math.isfinite(s) else f"{t:.1f} K") + f" (μ*={mu})"
            for t, s, mu in zip(tc[ig], errs, mustars)))
        if notes and notes[ig]:                   # why a T_c (or its error) is missing
            lines.append(f"          ({notes[ig]})")
    print("\n".join(lines))
