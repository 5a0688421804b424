"""``spectral``: the unfolded spectral function ρ(k, E) on a k-path (paper Fig. 2(a), Eqs. S26–S27)."""
from __future__ import annotations

import json
import logging

import numpy as np

from spia_mpi.errors import InputError

NAME = "spectral"
HELP = "spectral function ρ(k, E) and renormalised bands along a k-path (input: the run's TOML file)"
ORDER = 25
DESCRIPTION = """\
Unfold the eigenstates of every configuration and bead onto the primitive cell along an ASE
k-path: ρ(k, E) = ⟨Σ_N W_N(k) δ_γ(E − ε_N)⟩ with jackknife errors, the static (reference)
bands, and the Green's-function route −Im Ḡ(k, E + iγ)/π with the renormalised bands ε_nk
and half widths γ_nk. Reads the same input file as `run` plus its [spectral] table
(docs/spectral.md); work units (K × configuration block × bead) are distributed over the
MPI ranks and checkpointed, so re-running resumes.

examples:
  mpirun -n 2 python -m spia_mpi spectral input.toml
  python -m spia_mpi spectral input.toml --dry-run
"""

logger = logging.getLogger("spia_mpi")


def add_arguments(p):
    p.add_argument("input", help="TOML input file (the run's, with a [spectral] table)")
    p.add_argument("--dry-run", action="store_true", help="validate, print the work decomposition, stop")


def run(args, comm):
    from spia_mpi.io import runinput
    from spia_mpi.parallel.mpi import on_root
    inp, folder = on_root(comm, runinput.load_run_input, args.input)
    return execute(inp, folder, comm, dry_run=args.dry_run, source=str(args.input))


def reference_fermi_level(inp, model, temperature_k: float, comm) -> float:
    """ε_F (eV): spia.fermi_level_ev, else from the reference bands on the run's K-points (as `run`)."""
    from spia_mpi.parallel.mpi import on_root
    if inp.spia.fermi_level_ev is not None:
        return float(inp.spia.fermi_level_ev)
    if inp.model.kind == "gpaw":
        return float(model.fermi_level_ev)                 # GPAW's, of the reference SCF
    kpoints = np.asarray(inp.supercell.kpoints, float)
    if inp.supercell.kgrid is not None:
        from spia_mpi.lattice.supercells import supercell_kgrid
        kpoints = supercell_kgrid(model.supercell_matrix, inp.supercell.kgrid)
    if inp.model.kind == "grid":
        from spia_mpi.models.grid import fermi_level_of_reference
        return on_root(comm, fermi_level_of_reference, model, kpoints, temperature_k)
    from spia_mpi.models.bands import fermi_level as fermi
    n_prim = len(model.primitive)
    energies = np.concatenate([model.reference_states(K, n_prim).energies for K in kpoints])
    return fermi(energies, 0.5 * model.n_electrons * len(kpoints), temperature_k)


def greens_states_per_k(inp, model, path, z, fermi: float) -> int:
    """Reference states per path k of the Green's route: spia.states_per_k, else the automatic
    pool of `run` (engine/statespace.py) at the path's supercell K-points, grown until it holds
    spia.window_ev or ±W around ε_F; 1 without a Green's route (unused). Rank-0 work."""
    if inp.spia.states_per_k is not None or z is None:
        return inp.spia.states_per_k or 1
    from spia_mpi.engine import statespace, unfolding
    K, _ = unfolding.group_by_supercell_k(model.supercell_matrix, path.kpoints_frac)
    return statespace.pool_for_window(model, K, fermi, inp.spia.gamma_ev, float(np.imag(z)), inp.spia.window_ev)


def execute(inp, folder, comm, dry_run: bool = False, source: str = "") -> int:
    from spia_mpi.commands.run import attach_potential_files, build_model, run_configurations
    from spia_mpi.engine import spectral
    from spia_mpi.engine.resolvent import matsubara_eta
    from spia_mpi.io.checkpoint import TaskStore, fingerprint
    from spia_mpi.io.inputs import to_dict
    from spia_mpi.io.log import Stage
    from spia_mpi.io.runinput import resolve
    from spia_mpi.lattice.kpath import bandpath
    from spia_mpi.parallel.mpi import on_root

    sp = inp.spectral
    timings = {}
    resolved = to_dict(inp)
    if comm.rank == 0:
        logger.info("spia_mpi spectral %s on %d rank(s)", source, comm.size)
        for line in json.dumps({k: resolved[k] for k in ("model", "supercell", "configurations", "spectral")},
                               indent=1).splitlines():
            logger.info("  %s", line)
    out_path = resolve(folder, sp.file)
    ckpt = resolve(folder, sp.checkpoint) if sp.checkpoint else out_path.with_name(out_path.name + ".ckpt")
    with Stage("model and configurations", logger, timings):
        if inp.model.kind == "gpaw":             # importing GPAW is collective (its own MPI world)
            from spia_mpi.models.gpaw import require_gpaw
            require_gpaw()
        on_root(comm, lambda: build_model(inp, folder) and None)
        model = build_model(inp, folder)
        conf, shifts = on_root(comm, run_configurations, inp, folder, model)     # spia.rigid_translations as run
        potentials = attach_potential_files(inp, folder, model, conf, comm)
        path = on_root(comm, bandpath, model.primitive.cell[:], sp.path, sp.n_kpoints)
        on_root(comm, special_indices, path, sp.summary_points)
    if inp.model.kind == "gpaw":
        if dry_run:
            return _gpaw_dry_run(model, path, conf, inp, comm)
        model = _prepare_gpaw(model, conf, ckpt, comm, timings)
    fermi = reference_fermi_level(inp, model, conf.temperature_k, comm)
    z = fermi + 1j * matsubara_eta(inp.spia.matsubara_j, conf.temperature_k) if sp.greens else None
    grid = np.linspace(sp.energy_min_ev, sp.energy_max_ev, sp.n_energies)
    setup = on_root(comm, spectral.make_setup, model, path.kpoints_frac, grid, sp.broadening_ev, fermi,
                    sp.n_bands, sp.eigensolver, z, greens_states_per_k(inp, model, path, z, fermi), inp.spia.resolvent,
                    dict(inp.spia.resolvent_options) or None)
    n_blocks = min(inp.spia.n_blocks, conf.n_conf)
    if sp.bead_groups > conf.n_beads:
        raise InputError(f"spectral.bead_groups = {sp.bead_groups} exceeds the {conf.n_beads} beads")
    n_units = setup.K.shape[0] * n_blocks * sp.bead_groups
    if comm.rank == 0:
        logger.info("path %s: %d k-points on %d supercell K-points; %d configurations × %d beads; ε_F = %.4f eV",
                    path.path, len(path.kpoints_frac), setup.K.shape[0], conf.n_conf, conf.n_beads, fermi)
        logger.info("decomposition: %d work units (K × block × bead group) over %d rank(s); %d eigenpairs per "
                    "Hamiltonian (%s)", n_units, comm.size, setup.n_bands, setup.eigensolver)
    if dry_run:
        if comm.rank == 0:
            print(json.dumps({"ranks": comm.size, "path": path.path, "kpoints": len(path.kpoints_frac),
                              "supercell_K": int(setup.K.shape[0]), "work_units": n_units,
                              "eigenpairs_per_hamiltonian": setup.n_bands,
                              "hamiltonians": int(setup.K.shape[0] * conf.n_conf * conf.n_beads),
                              "fermi_level_eV": fermi}, indent=1))
        return 0
    from spia_mpi.commands.run import _check_output, _file_stamps
    on_root(comm, _check_output, out_path)
    from spia_mpi.models.paw_overlap import FORM           # GPAW: the unfolding weights use the cross overlap
    fp = fingerprint({"model": resolved["model"], "supercell": resolved["supercell"],
                      **({"cross_overlap_form": FORM} if inp.model.kind == "gpaw" else {}),
                      "spectral": {k: v for k, v in resolved["spectral"].items()
                                   if k not in ("file", "checkpoint", "summary_points")},
                      "spia": {k: resolved["spia"][k] for k in ("matsubara_j", "states_per_k", "n_blocks",
                                                                  "rigid_translations")},
                      "fermi_level_eV": fermi, "positions": np.ascontiguousarray(conf.positions),
                      "T": conf.temperature_k,
                      "potential_files": on_root(comm, _file_stamps, potentials.paths()) if potentials else None})
    store = TaskStore.open(ckpt, n_units, fp, comm, restart=inp.output.restart)
    with Stage("spectral function", logger, timings):
        res = spectral.compute_spectral(model, conf.positions, setup, n_blocks=n_blocks,
                                        bead_groups=sp.bead_groups, comm=comm, store=store)
    summary = summary_table(res, setup, path, sp.summary_points) if comm.rank == 0 else None   # res: rank 0's
    with Stage("write results", logger, timings):
        write_spectral(out_path, comm, resolved, res, setup, path, summary, conf, timings, source, shifts)
    if comm.rank == 0:
        print(format_summary(out_path, res, summary, fermi))
        if inp.output.plots:
            from spia_mpi.io import plotting
            plotting.figures_beside(out_path)
    return 0


def _prepare_gpaw(model, conf, ckpt, comm, timings):
    """The GPAW reference SCF (all ranks, one GPAW group per rank: units are spread over the ranks)
    and the model at the path's K-points (:class:`spia_mpi.models.gpaw_path.GpawPathModel`)."""
    from spia_mpi.io.log import Stage
    from spia_mpi.models.gpaw_path import GpawPathModel
    with Stage("GPAW reference SCF", logger, timings):
        model.prepare(comm, 1, ckpt / "gpaw", conf.positions)
    return GpawPathModel(model)


def _gpaw_dry_run(model, path, conf, inp, comm) -> int:
    """--dry-run for kind = gpaw: the plan without the reference SCF (basis size and ε_F come from it)."""
    from spia_mpi.engine.unfolding import group_by_supercell_k
    K, _ = group_by_supercell_k(model.supercell_matrix, path.kpoints_frac)
    n_units = K.shape[0] * min(inp.spia.n_blocks, conf.n_conf) * inp.spectral.bead_groups
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "path": path.path, "kpoints": len(path.kpoints_frac),
                          "supercell_K": int(K.shape[0]), "work_units": n_units,
                          "gpaw_evaluations": int(K.shape[0] * conf.n_conf * conf.n_beads),
                          "note": "kind = gpaw: basis size and ε_F come from the reference SCF, not run here"},
                         indent=1))
    return 0


def special_indices(path, wanted=()) -> list:
    """(label, path index) of the labelled points (first occurrence of each label), in path order;
    ``wanted`` restricts them to those labels ('G' means Γ); an unknown label is an InputError."""
    labels = [("Γ" if w == "G" else w) for w in wanted]
    missing = [w for w in labels if w not in path.labels]
    if missing:
        raise InputError(f"spectral.summary_points: {missing[0]} is not a labelled point of the path "
                         f"{path.path} ({', '.join(dict.fromkeys(path.labels))})")
    out, seen = [], set()
    for lab, sx in zip(path.labels, path.special_x):
        if lab in seen or (labels and lab not in labels):
            continue
        seen.add(lab)
        out.append((lab, int(np.argmin(np.abs(path.x - sx)))))
    return out


def summary_table(res, setup, path, wanted=()) -> dict:
    """Broadening/shift summary at the labelled points: arrays over rows (point, band).

    Green's route (when computed): reference ε⁰_nk, renormalised ε_nk ± σ, shift ε − ε⁰,
    half width γ_nk ± σ; unfolded ρ: centroid and spread of the spectral weight at k (± σ).
    Energies relative to ε_F (eV).
    """
    rows = {"label": [], "k_index": [], "band": [], "reference": [], "energy": [], "energy_error": [],
            "half_width": [], "half_width_error": [], "centroid": [], "centroid_error": [], "spread": [],
            "spread_error": []}
    for lab, ik in special_indices(path, wanted):
        n_bands = setup.states_per_k if res.greens is not None else 1
        for n in range(n_bands):
            g = res.greens
            rows["label"].append(lab)
            rows["k_index"].append(ik)
            rows["band"].append(n)
            for key, src in (("reference", "reference"), ("energy", "bands"), ("energy_error", "bands_error"),
                             ("half_width", "half_width"), ("half_width_error", "half_width_error")):
                rows[key].append(g[src][ik, n] if g is not None else np.nan)
            for key in ("centroid", "centroid_error", "spread", "spread_error"):
                rows[key].append(getattr(res, key)[ik])
    return {k: (v if k == "label" else np.asarray(v)) for k, v in rows.items()}


def format_summary(out_path, res, summary, fermi) -> str:
    lines = [f"spectral function: {out_path}  ({res.n_samples} configuration-beads, {res.n_blocks} blocks; "
             f"ε_F = {fermi:.4f} eV; energies relative to ε_F)",
             "point band  ε⁰ (eV)   ε (eV)            shift (eV)  γ (eV)            ρ centroid (eV)   "
             "ρ spread (eV)"]
    for i, lab in enumerate(summary["label"]):
        s = {k: v[i] for k, v in summary.items() if k != "label"}
        lines.append(f"{lab:>5} {s['band']:4d} {s['reference']:9.4f} {s['energy']:8.4f} ± {s['energy_error']:.4f}"
                     f" {s['energy'] - s['reference']:10.4f} {s['half_width']:8.4f} ± {s['half_width_error']:.4f}"
                     f" {s['centroid']:8.4f} ± {s['centroid_error']:.4f} {s['spread']:7.4f} ± {s['spread_error']:.4f}")
    return "\n".join(lines)


def write_spectral(path, comm, resolved, res, setup, kpath, summary, conf, timings, source, shifts=None):
    """The spectral HDF5 file (layout in docs/output.md, group /spectral): rank 0 writes it alone
    (:func:`spia_mpi.io.results.write_results`, kind 'spectral'); every rank returns when it is complete.
    ``shifts``: the rigid translations removed from the configurations (None: kept)."""
    from spia_mpi.io.results import write_results
    content = spectral_content(res, setup, kpath, summary, conf, timings, shifts) if comm.rank == 0 else None
    write_results(path, content, comm, f"spectral {source}", resolved, kind="spectral")


def spectral_content(res, setup, kpath, summary, conf, timings, shifts=None):
    """Everything the spectral file holds, as a :class:`spia_mpi.io.results.ResultsContent`."""
    from spia_mpi.commands.run import translation_entries
    from spia_mpi.io.results import ResultsContent
    out = ResultsContent()
    out.set_attrs("timings", **{k: float(v) for k, v in timings.items()})
    out.set_attrs("spectral", fermi_level_eV=setup.fermi_level, broadening_eV=setup.broadening, path=kpath.path,
                  labels=json.dumps(kpath.labels), n_samples=res.n_samples, n_blocks=res.n_blocks,
                  n_bands=setup.n_bands, temperature_K=conf.temperature_k)
    translation_entries(out, shifts, "spectral")
    for name, data, unit, doc in (
            ("kpoints_frac", setup.kpath_frac, "1", "path k, reduced primitive reciprocal coordinates [k, 3]"),
            ("x", kpath.x, "1/Å", "distance along the path [k]"),
            ("special_x", kpath.special_x, "1/Å", "positions of the labelled points (attrs labels)"),
            ("supercell_kpoints_frac", setup.K, "1", "supercell K of the path [K, 3]"),
            ("k_to_K", setup.k_of_K, "1", "K index of every path k [k]"),
            ("energies_eV", setup.grid_ev, "eV", "energy grid relative to ε_F [e]"),
            ("rho", res.rho, "1/eV", "ρ(k, E) per primitive cell per spin, unfolded (Eq. S27) [k, e]"),
            ("rho_error", res.rho_error, "1/eV", "jackknife standard error of rho [k, e]"),
            ("weight", res.weight, "1", "⟨Σ_N W_N(k)⟩: bands per primitive cell in the window [k]"),
            ("weight_error", res.weight_error, "1", "jackknife error of weight [k]"),
            ("centroid_eV", res.centroid, "eV", "⟨Σ W ε⟩/⟨Σ W⟩ relative to ε_F [k]"),
            ("centroid_error_eV", res.centroid_error, "eV", "jackknife error [k]"),
            ("spread_eV", res.spread, "eV", "standard deviation of the spectral weight in energy [k]"),
            ("spread_error_eV", res.spread_error, "eV", "jackknife error [k]"),
            ("static_bands_eV", res.static_bands, "eV",
             "reference-structure bands on the path relative to ε_F (unfolded; NaN-padded) [k, n]")):
        out.add(f"spectral/{name}", data, unit, doc)
    if res.greens is not None:
        g = res.greens
        out.set_attrs("spectral/greens", eta_eV=g["eta"], states_per_k=setup.states_per_k)
        for name, key, unit, doc in (
                ("bands_eV", "bands", "eV", "renormalised bands ε_nk relative to ε_F [k, n]"),
                ("bands_error_eV", "bands_error", "eV", "jackknife error [k, n]"),
                ("half_width_eV", "half_width", "eV", "half widths γ_nk [k, n]"),
                ("half_width_error_eV", "half_width_error", "eV", "jackknife error [k, n]"),
                ("reference_bands_eV", "reference", "eV", "reference states' energies [k, n]"),
                ("rho", "rho", "1/eV", "−Im Ḡ(k, E + iγ)/π from the renormalised bands [k, e]"),
                ("rho_error", "rho_error", "1/eV", "jackknife error [k, e]"),
                ("gbar_offdiagonal_ratio", "offdiag", "1",
                 "‖k-off-diagonal blocks of Ḡ‖/‖Ḡ‖ per K (vanishes with sampling) [K]")):
            out.add(f"spectral/greens/{name}", g[key], unit, doc)
    out.set_attrs("spectral/summary", labels=json.dumps(summary["label"]))
    for key, unit in (("k_index", "1"), ("band", "1"), ("reference", "eV"), ("energy", "eV"),
                      ("energy_error", "eV"), ("half_width", "eV"), ("half_width_error", "eV"),
                      ("centroid", "eV"), ("centroid_error", "eV"), ("spread", "eV"), ("spread_error", "eV")):
        out.add(f"spectral/summary/{key}", summary[key], unit)
    return out
