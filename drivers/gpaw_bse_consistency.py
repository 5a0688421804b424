#!/usr/bin/env python
"""GPAW BSE consistency harness: Born and BSE λ(0) of `spia_mpi run` against the harmonic baseline of the
same Einstein Φ, with every displacement from R⁰ scaled by s (the same draws), so the linear regime
(small s: Born ≈ λ_harm, and BSE should agree) and the anharmonic one (s = 1) are seen side by side.

For each scale s: the input's configurations with u → s·u (minimum-image displacements from the model's
reference sites; configurations.skip/stride applied first) are written to WORKDIR/s<s>/conf.h5; then
`mpirun -n RANKS python -m spia_mpi run` in Born mode and in BSE mode (BSE reuses Born's checkpointed
resolvents: the fingerprint does not hold spia.mode). The harmonic side (one `mpirun -n RANKS` of this
script with --harmonic-part) computes, with engine/harmonic.compute_harmonic for the same temperature,
N_b, J, γ, Fermi level, k-points and (automatic) state space as `run`:
  λ_harm(m)   discrete-bead λ_harm of the unscaled samples' Φ, × s² (linear coupling)
  BSE(W₀)(m)  the Bethe–Salpeter equation applied to the harmonic Born interaction W₀ of the couplings × s
              (as drivers/harmonic_reduction_gpaw.bse_of_born): what SPIA's BSE gives if Γ had no ladder term.
Compared are the raw λ(m) of `run` (/lambda/lambda_m_raw: the bead form λ_harm also has).
--windows W…: every case also with spia.window_ev = [−W, W], and the harmonic side on the same states
(|ε − ε_F| ≤ W; N_γ, Ḡ and the BSE restricted as in `run`). --harmonic-only: no runs (≈ 1 min).

Default input: the tutorial's step 3c (`spia_mpi tutorial` → gpaw.toml: bcc Li 2×2×2, GPAW LCAO dzp, frozen
density, K = Γ, every band; samples as README.txt writes them: `sample harmonic --einstein 0.025
--temperature 300 --beads 4 --samples 16`, seed 1). Writes WORKDIR/consistency.md (markdown table) and
WORKDIR/consistency.json (every number, errors, m ≥ 0, the spia_mpi code used, timings). Code version:
the spia_mpi that `import spia_mpi` finds (set PYTHONPATH to a worktree to test it); children get it too.

Every invocation starts from an empty WORKDIR (no checkpoint of another code version is reused) unless
--resume, which keeps finished cases (complete results files, the harmonic JSON) and checkpoints.
Runtime at load ≈ 3 on the shared 2-core machine, 2 ranks: ≈ 3 min per scale (Born: GPAW reference SCF +
64 resolvents; BSE reuses them: ≈ 0.5 min), ≈ 3 min harmonic side (3N = 24 displacements) —
≈ 12 min for the default three scales.

    PYTHONPATH=/path/to/worktree nice -n 19 python drivers/gpaw_bse_consistency.py --workdir /tmp/me/bse
    ... --input my_gpaw.toml --einstein 0.025 --scales 0.25 1 --ranks 2
"""
import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("spia_mpi")

#: the tutorial's samples (README.txt of `spia_mpi tutorial`, step 3c)
TUTORIAL_SAMPLES = ["sample", "harmonic", "--structure", "li-bcc.extxyz", "--supercell", "2", "2", "2",
                    "--einstein", "0.025", "--temperature", "300", "--beads", "4", "--samples", "16",
                    "--out", "conf_li.h5"]
MODES = ("born", "bse")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--input", default=None,
                    help="a `run` input (configurations.source = 'file', spia.fermi_level 'reference' or a number, "
                         "no window_ev); default: the tutorial's gpaw.toml and samples, written into WORKDIR/tutorial")
    ap.add_argument("--einstein", type=float, default=0.025,
                    help="ħΩ (eV) of the Einstein Φ the input's samples were drawn with (default 0.025)")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0],
                    help="amplitude scales s (default 0.25 0.5 1)")
    ap.add_argument("--workdir", default=None, help="folder of every case (default: a new temporary folder)")
    ap.add_argument("--resume", action="store_true",
                    help="keep finished cases and checkpoints in WORKDIR (same code version only!)")
    ap.add_argument("--windows", type=float, nargs="*", default=[], metavar="W",
                    help="also energy windows |ε − ε_F| ≤ W (eV): runs with spia.window_ev = [−W, W] and the harmonic "
                         "side on the same states (default: none; every case also runs the input's state space)")
    ap.add_argument("--harmonic-only", action="store_true",
                    help="only the harmonic side (λ_harm, BSE(W₀) for every s and window; no runs): seconds")
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks of each run and of the harmonic side")
    ap.add_argument("--harmonic-part", metavar="JSON", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# --------------------------------------------------------------------------
# the orchestrator (one process, launches mpirun)

def code_version() -> dict:
    """Where the imported spia_mpi lives, its git commit and, for a tree with uncommitted changes, a hash of
    them (``diff``): two invocations used the same code exactly when these agree."""
    import hashlib
    import spia_mpi
    root = Path(spia_mpi.__file__).resolve().parents[1]

    def git(*a):
        return subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True).stdout
    diff = git("diff", "HEAD", "--", "spia_mpi")
    return {"path": str(root), "commit": git("rev-parse", "--short", "HEAD").strip() + ("+dirty" if diff else ""),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD").strip(),
            "diff": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else ""}


def child_env(code_root: str) -> dict:
    """mpirun's environment with this spia_mpi first on PYTHONPATH (HDF5 through MPI as the project's)."""
    import os
    from spia_mpi.parallel.mpi import mpirun_env
    env = mpirun_env()
    env["PYTHONPATH"] = os.pathsep.join([code_root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.setdefault("H5PY_ALWAYS_USE_MPI", "1")
    return env


def launch(cmd, cwd, log_name: str, env) -> float:
    """Run ``cmd`` in ``cwd`` with stdout/stderr to ``log_name``.out/.err; seconds; RuntimeError on failure."""
    t0 = time.perf_counter()
    with open(Path(cwd) / f"{log_name}.out", "w") as out, open(Path(cwd) / f"{log_name}.err", "w") as err:
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
    if r.returncode != 0:
        tail = (Path(cwd) / f"{log_name}.err").read_text()[-3000:]
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}) in {cwd}:\n{tail}")
    return time.perf_counter() - t0


def prepare_workdir(args, version: dict) -> Path:
    """WORKDIR: new or empty (records the code in WORKDIR/code.json), or with --resume one whose code.json
    names this very code (spia_mpi path, commit, uncommitted changes): checkpoints do not know the code."""
    import tempfile
    from spia_mpi.errors import InputError
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gpaw_bse_consistency_"))
    stamp = work / "code.json"
    if work.exists() and any(work.iterdir()):
        if not args.resume:
            raise InputError(f"--workdir {work} is not empty: give a new folder, or --resume to finish an "
                             "interrupted invocation of the same code")
        old = json.loads(stamp.read_text()) if stamp.exists() else None
        if old != version:
            raise InputError(f"--resume: {work} was started with spia_mpi {old}, this is {version}: its "
                             "checkpoints and results belong to other code; use a new --workdir")
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(version))
    return work.resolve()


def tutorial_input(work: Path, env) -> Path:
    """WORKDIR/tutorial/gpaw.toml and its samples conf_li.h5, as `spia_mpi tutorial` and README.txt write them."""
    folder = work / "tutorial"
    if not (folder / "conf_li.h5").exists():
        env = {k: v for k, v in env.items() if k != "SPIA_SMALL"}
        folder.mkdir(exist_ok=True)
        launch([sys.executable, "-m", "spia_mpi", "tutorial", "--out", str(folder), "--force"], folder, "tutorial",
               env)
        launch([sys.executable, "-m", "spia_mpi", *TUTORIAL_SAMPLES], folder, "samples", env)
    return folder / "gpaw.toml"


def check_input(inp):
    from spia_mpi.errors import InputError
    if inp.configurations.source != "file":
        raise InputError("the harness scales the samples of a file: configurations.source must be 'file'")
    if inp.spia.window_ev is not None:
        raise InputError("spia.window_ev: the harmonic side (compute_harmonic) has the automatic state space or "
                         "spia.states_per_k only; remove window_ev")
    if inp.spia.fermi_level_ev is None and inp.spia.fermi_level not in ("reference",) and \
            isinstance(inp.spia.fermi_level, str):
        raise InputError(f"spia.fermi_level = '{inp.spia.fermi_level}' depends on the configurations (and on s): "
                         "use 'reference' or a number so that every case and the harmonic side share ε_F")


def scaled_configurations(inp, folder, s: float, path: Path):
    """Write the input's configurations (model atom order, skip/stride applied) with u → s·u to ``path``."""
    import dataclasses
    from spia_mpi.commands.run import build_model, load_configurations
    from spia_mpi.ions import configurations as cf
    from spia_mpi.ions.translations import site_displacements
    model = build_model(inp, folder)
    conf = load_configurations(inp, folder, model)
    r0 = model.reference_positions
    pos = r0 + s * site_displacements(conf.positions, r0, conf.cell)
    cf.write_h5(dataclasses.replace(conf, positions=pos, source=f"{conf.source}; displacements × {s:g}"), path)


def case_input(base: dict, input_folder: Path, case: Path, mode: str, half_width_ev=None) -> Path:
    """CASE/<mode>.toml: the input with the scaled samples, this mode, outputs in the case folder,
    spia.window_ev = [−W, W] for a half width W (None: the input's state space), and one μ*, 16 Matsubara
    frequencies and no T_c errors (T_c is not compared; its search is most of a BSE run's time otherwise)."""
    import tomllib
    sys.path.insert(0, str(HERE.parent / "jobscripts"))
    from make_task_list import absolute_paths, dump, set_key
    d = tomllib.loads(dump(base))
    absolute_paths(d, input_folder)
    for key, value in (("configurations.file", str(case / "conf.h5")), ("configurations.skip", 0),
                       ("configurations.stride", 1), ("spia.mode", mode), ("output.file", str(case / f"{mode}.h5")),
                       ("output.checkpoint", str(case / "checkpoint")), ("output.plots", False)):
        set_key(d, key, value)
    if half_width_ev is not None:
        set_key(d, "spia.window_ev", [-float(half_width_ev), float(half_width_ev)])
    mustar = (d.get("eliashberg", {}).get("mustar") or [0.1])[:1]
    for key, value in (("eliashberg.mustar", mustar), ("eliashberg.nfreq", 16), ("eliashberg.tc_errors", False)):
        set_key(d, key, value)                     # T_c is not compared: the cheapest Eliashberg solve
    path = case / f"{mode}.toml"
    path.write_text(f"# gpaw_bse_consistency: {mode} case of {input_folder}\n" + dump(d))
    from spia_mpi.io.runinput import load_run_input
    load_run_input(path)                                           # the run's own schema: fail before GPAW
    return path


def finished(path: Path) -> bool:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:
        return False


def read_case(path: Path) -> dict:
    import h5py
    with h5py.File(path, "r") as f:
        g = f["lambda"]
        return {"lambda_raw": g["lambda_m_raw"][...].tolist(), "error_raw": g["lambda_m_raw_error"][...].tolist(),
                "n_states_per_K": g["n_states_per_kpoint"][...].tolist(), "mode": str(g.attrs["mode"]),
                "rigid_translations": str(g.attrs.get("rigid_translations", "")),
                "gamma_eV": g["gamma_eV"][...].tolist()}


def window_label(w) -> str:
    return "all" if w is None else f"±{w:g}"


def orchestrate(args) -> int:
    from spia_mpi.io.log import setup_logging
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.parallel.mpi import mpirun_prefix
    import tomllib
    setup_logging(None)
    version = code_version()
    work = prepare_workdir(args, version)
    env = child_env(version["path"])
    logger.info("gpaw_bse_consistency: spia_mpi %s (%s) in %s", version["commit"], version["path"], work)
    source = Path(args.input).resolve() if args.input else tutorial_input(work, env)
    inp, folder = load_run_input(source)
    check_input(inp)
    base = tomllib.loads(source.read_text())
    mpi = mpirun_prefix() + ["-n", str(args.ranks)]
    windows = [None, *args.windows]
    cases, seconds = {}, {}
    for s in ([] if args.harmonic_only else args.scales):
        for w in windows:
            case = work / (f"s{s:g}" if w is None else f"s{s:g}_w{w:g}")
            case.mkdir(exist_ok=True)
            if not (case / "conf.h5").exists():
                scaled_configurations(inp, folder, s, case / "conf.h5")
            for mode in MODES:
                path = case_input(base, folder, case, mode, w)
                key = f"{case.name}_{mode}"
                if not (args.resume and finished(case / f"{mode}.h5")):
                    logger.info("s = %g, window %s, %s: running (%s)", s, window_label(w), mode, path)
                    seconds[key] = launch([*mpi, sys.executable, "-m", "spia_mpi", "run", str(path)], case, mode, env)
                    logger.info("s = %g, window %s, %s: done in %.0f s", s, window_label(w), mode, seconds[key])
                cases[(s, window_label(w), mode)] = read_case(case / f"{mode}.h5")
    harm_json = work / "harmonic.json"
    if not (args.resume and harm_json.exists() and same_harmonic(json.loads(harm_json.read_text()), args)):
        logger.info("harmonic side: compute_harmonic on %d ranks", args.ranks)
        seconds["harmonic"] = launch([*mpi, sys.executable, str(Path(__file__).resolve()), "--harmonic-part",
                                      str(harm_json), "--input", str(source), "--einstein", str(args.einstein),
                                      "--scales", *map(str, args.scales), "--windows", *map(str, args.windows)],
                                     work, "harmonic", env)
        logger.info("harmonic side: done in %.0f s", seconds["harmonic"])
    harm = json.loads(harm_json.read_text())
    table = markdown(args.scales, [window_label(w) for w in windows], cases, harm)
    print(table)
    (work / "consistency.md").write_text(table + "\n")
    (work / "consistency.json").write_text(json.dumps(
        {"code": version, "input": str(source), "einstein_eV": args.einstein, "scales": args.scales,
         "runs": {f"s{s:g}_{w}_{m}": v for (s, w, m), v in cases.items()}, "harmonic": harm, "seconds": seconds},
        indent=1))
    logger.info("wrote %s and %s", work / "consistency.md", work / "consistency.json")
    return 0


def same_harmonic(harm: dict, args) -> bool:
    """Whether a stored harmonic side holds every scale and window of ``args`` (same Einstein Φ)."""
    w = harm["windows"]
    return harm.get("einstein_eV") == args.einstein and all(window_label(x) in w for x in args.windows) and \
        all(f"{s:g}" in w["all"]["bse_w0"] for s in args.scales)


def markdown(scales, labels, cases, harm) -> str:
    """λ(0) rows per window, s and γ: Born ± σ, BSE ± σ, λ_harm (× s²), BSE(W₀), BSE − Born in σ (the run
    columns empty with --harmonic-only)."""
    lines = ["| window (eV) | s | γ (eV) | Born λ(0) | BSE λ(0) | λ_harm(0) | BSE(W₀)(0) | (BSE − Born)/σ | "
             "states per K |", "|---|---|---|---|---|---|---|---|---|"]
    for w in labels:
        hw = harm["windows"][w]
        for s in scales:
            for ig, g in enumerate(harm["gamma_eV"]):
                lh, w0 = s * s * hw["lambda_bead"][ig][0], hw["bse_w0"][f"{s:g}"][ig][0]
                run = ["", "", ""]
                if (s, w, "born") in cases:
                    born, bse = cases[(s, w, "born")], cases[(s, w, "bse")]
                    b, eb = born["lambda_raw"][ig][0], born["error_raw"][ig][0]
                    x, ex = bse["lambda_raw"][ig][0], bse["error_raw"][ig][0]
                    run = [f"{b:.4f} ± {eb:.4f}", f"{x:.4f} ± {ex:.4f}", f"{(x - b) / np.hypot(eb, ex):+.1f}"]
                lines.append(f"| {w} | {s:g} | {g:g} | {run[0]} | {run[1]} | {lh:.4f} | {w0:.4f} | {run[2]} | "
                             f"{'/'.join(map(str, hw['n_states_per_K']))} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the harmonic side (under mpirun: every rank)

def window_lambdas(h, zero_modes: str, half_width_ev, scales) -> dict:
    """λ_harm(m) (bead form, s = 1) and BSE(W₀)(m) per scale s (couplings × s), [γ, m] each, on the states
    with |ε − ε_F| ≤ ``half_width_ev`` (None: every state) of a compute_harmonic result with kept couplings,
    as `run` with spia.window_ev = [−W, W] restricts Ḡ, the BSE and N_γ. W₀ = born_interaction of the
    couplings (zero modes: none for 'drop', C|G|²/Ω_m² at m ≥ 1 for 'keep', as compute_harmonic)."""
    from spia_mpi.engine import spia
    from spia_mpi.engine.harmonic import born_interaction
    from spia_mpi.ions.configurations import ring_polymer_frequencies_ev
    from spia_mpi.units import beta_per_ev
    omega2 = np.where(h.zero, np.inf if zero_modes == "drop" else 0.0, h.hbar_omega ** 2)
    omegas = ring_polymer_frequencies_ev(h.n_beads, h.temperature_k)
    beta = beta_per_ev(h.temperature_k)
    born, bse, n_gamma, n_states = 0.0, {s: 0.0 for s in scales}, 0.0, []
    for g_kst, d, e in zip(h.couplings, h.gbar_abs2, h.energies):
        keep = np.arange(e.size) if half_width_ev is None else \
            np.flatnonzero(np.abs(e - h.fermi_level_ev) <= half_width_ev)
        n_states.append(int(keep.size))
        w0 = born_interaction(g_kst[:, keep][:, :, keep], omega2, omegas)
        wts = spia.lorentzian_weights(e[keep], h.fermi_level_ev, h.gamma_ev)
        n_gamma = n_gamma + wts.sum(axis=1)
        born = born - np.einsum("gs,mst,gt->gm", wts, w0, wts)
        for s in scales:
            w = spia.bethe_salpeter((s * s * w0).astype(complex), d[keep], beta).real
            bse[s] = bse[s] - np.einsum("gs,mst,gt->gm", wts, w, wts)
    n_m = h.n_beads // 2 + 1
    return {"lambda_bead": (born / n_gamma[:, None])[:, :n_m].tolist(), "n_states_per_K": n_states,
            "bse_w0": {f"{s:g}": (bse[s] / n_gamma[:, None])[:, :n_m].tolist() for s in scales}}


def harmonic_part(args) -> int:
    from spia_mpi.commands.harmonic import zero_modes
    from spia_mpi.commands.run import build_model, run_kpoints
    from spia_mpi.engine.harmonic import compute_harmonic
    from spia_mpi.io.log import Stage, setup_logging
    from spia_mpi.io.runinput import load_run_input, resolve
    from spia_mpi.ions import configurations as cf
    from spia_mpi.ions.forceconstants import einstein_force_constants
    from spia_mpi.parallel.mpi import on_root, world
    comm = world()
    setup_logging(comm)
    inp, folder = load_run_input(args.input)
    if inp.model.kind == "gpaw":
        from spia_mpi.models.gpaw import require_gpaw
        require_gpaw()
    model = build_model(inp, folder)
    conf = on_root(comm, cf.read_h5, resolve(folder, inp.configurations.file), slice(0, 1))
    timings = {}
    out = Path(args.harmonic_part)
    if inp.model.kind == "gpaw":
        with Stage("GPAW reference SCF", logger, timings):
            model.prepare(comm, 1, out.with_name("harmonic_gpaw"))
    ef = inp.spia.fermi_level_ev
    if ef is None:
        ef = float(inp.spia.fermi_level) if not isinstance(inp.spia.fermi_level, str) else model.fermi_level_ev
    zm = zero_modes(inp)
    phi = einstein_force_constants(model.atoms.get_masses(), args.einstein)
    with Stage("harmonic λ(m) and couplings", logger, timings):
        h = compute_harmonic(model, phi, run_kpoints(inp), conf.temperature_k, conf.n_beads, J=inp.spia.matsubara_j,
                             n_per_k=inp.spia.states_per_k, gammas=inp.spia.gamma_ev, fermi_level_ev=ef, centre_ev=ef,
                             keep_couplings=True, zero_modes=zm, comm=comm)
    if comm.rank == 0:
        windows = {window_label(w): window_lambdas(h, zm, w, args.scales) for w in [None, *args.windows]}
        whole = h.lambda_bead - (h.lambda_zero_bead if zm == "drop" else 0.0)
        # the couplings' own λ_harm over every state = compute_harmonic's (its pair sums by q): a self-check
        np.testing.assert_allclose(windows["all"]["lambda_bead"], whole, rtol=1e-8, atol=1e-14)
        out.write_text(json.dumps({"windows": windows, "lambda_continuum": h.lambda_continuum.tolist(),
                                   "gamma_eV": h.gamma_ev.tolist(), "fermi_level_eV": ef, "eta_eV": h.eta_ev,
                                   "zero_modes": zm, "temperature_K": h.temperature_k, "n_beads": h.n_beads,
                                   "einstein_eV": args.einstein,
                                   "energies_eV": [e.tolist() for e in h.energies],
                                   "n_gamma_per_cell": h.n_gamma_per_cell.tolist(), "seconds": timings}, indent=1))
    comm.Barrier()
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    if importlib.util.find_spec("spia_mpi") is None:      # else PYTHONPATH decides which code is tested
        sys.path.insert(0, str(HERE.parent))
    from spia_mpi.errors import InputError
    try:
        return harmonic_part(args) if args.harmonic_part else orchestrate(args)
    except (InputError, RuntimeError) as exc:
        print(f"gpaw_bse_consistency: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
