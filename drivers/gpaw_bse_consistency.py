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
              (drivers/harmonic_reduction_gpaw.bse_of_born): what SPIA's BSE gives if Γ had no ladder term.
Compared are the raw λ(m) of `run` (/lambda/lambda_m_raw: the bead form λ_harm also has).

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
    ap.add_argument("--ranks", type=int, default=2, help="MPI ranks of each run and of the harmonic side")
    ap.add_argument("--harmonic-part", metavar="JSON", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# --------------------------------------------------------------------------
# the orchestrator (one process, launches mpirun)

def code_version() -> dict:
    """Where the imported spia_mpi lives and its git commit (dirty flag)."""
    import spia_mpi
    root = Path(spia_mpi.__file__).resolve().parents[1]
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    branch = subprocess.run([*git, "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"path": str(root), "commit": head + ("+dirty" if dirty else ""), "branch": branch}


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


def prepare_workdir(args) -> Path:
    import tempfile
    from spia_mpi.errors import InputError
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gpaw_bse_consistency_"))
    if work.exists() and any(work.iterdir()) and not args.resume:
        raise InputError(f"--workdir {work} is not empty: give a new folder, or --resume to reuse its finished "
                         "cases (only with the same code version: checkpoints do not know the code)")
    work.mkdir(parents=True, exist_ok=True)
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


def case_input(base: dict, input_folder: Path, case: Path, mode: str) -> Path:
    """WORKDIR/s<s>/<mode>.toml: the input with the scaled samples, this mode, outputs in the case folder."""
    import tomllib
    sys.path.insert(0, str(HERE.parent / "jobscripts"))
    from make_task_list import absolute_paths, dump, set_key
    d = tomllib.loads(dump(base))
    absolute_paths(d, input_folder)
    for key, value in (("configurations.file", str(case / "conf.h5")), ("configurations.skip", 0),
                       ("configurations.stride", 1), ("spia.mode", mode), ("output.file", str(case / f"{mode}.h5")),
                       ("output.checkpoint", str(case / "checkpoint")), ("output.plots", False)):
        set_key(d, key, value)
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


def orchestrate(args) -> int:
    from spia_mpi.io.log import setup_logging
    from spia_mpi.io.runinput import load_run_input
    from spia_mpi.parallel.mpi import mpirun_prefix
    import tomllib
    setup_logging(None)
    work = prepare_workdir(args)
    version = code_version()
    env = child_env(version["path"])
    logger.info("gpaw_bse_consistency: spia_mpi %s (%s) in %s", version["commit"], version["path"], work)
    source = Path(args.input).resolve() if args.input else tutorial_input(work, env)
    inp, folder = load_run_input(source)
    check_input(inp)
    base = tomllib.loads(source.read_text())
    mpi = mpirun_prefix() + ["-n", str(args.ranks)]
    cases, seconds = {}, {}
    for s in args.scales:
        case = work / f"s{s:g}"
        case.mkdir(exist_ok=True)
        if not (case / "conf.h5").exists():
            scaled_configurations(inp, folder, s, case / "conf.h5")
        for mode in MODES:
            path = case_input(base, folder, case, mode)
            if not (args.resume and finished(case / f"{mode}.h5")):
                logger.info("s = %g, %s: running (%s)", s, mode, path)
                seconds[f"s{s:g}_{mode}"] = launch([*mpi, sys.executable, "-m", "spia_mpi", "run", str(path)], case,
                                                   mode, env)
                logger.info("s = %g, %s: done in %.0f s", s, mode, seconds[f"s{s:g}_{mode}"])
            cases[(s, mode)] = read_case(case / f"{mode}.h5")
    harm_json = work / "harmonic.json"
    if not (args.resume and harm_json.exists()):
        logger.info("harmonic side: compute_harmonic on %d ranks", args.ranks)
        seconds["harmonic"] = launch([*mpi, sys.executable, str(Path(__file__).resolve()), "--harmonic-part",
                                      str(harm_json), "--input", str(source), "--einstein", str(args.einstein),
                                      "--scales", *map(str, args.scales)], work, "harmonic", env)
        logger.info("harmonic side: done in %.0f s", seconds["harmonic"])
    harm = json.loads(harm_json.read_text())
    table = markdown(args.scales, cases, harm)
    print(table)
    (work / "consistency.md").write_text(table + "\n")
    (work / "consistency.json").write_text(json.dumps(
        {"code": version, "input": str(source), "einstein_eV": args.einstein, "scales": args.scales,
         "runs": {f"s{s:g}_{m}": v for (s, m), v in cases.items()}, "harmonic": harm, "seconds": seconds},
        indent=1))
    logger.info("wrote %s and %s", work / "consistency.md", work / "consistency.json")
    return 0


def markdown(scales, cases, harm) -> str:
    """λ(0) rows per s and γ: Born ± σ, BSE ± σ, λ_harm (× s²), BSE(W₀), and BSE − Born in σ."""
    lines = ["| s | γ (eV) | Born λ(0) | BSE λ(0) | λ_harm(0) | BSE(W₀)(0) | (BSE − Born)/σ | states per K |",
             "|---|---|---|---|---|---|---|---|"]
    for s in scales:
        born, bse = cases[(s, "born")], cases[(s, "bse")]
        for ig, g in enumerate(born["gamma_eV"]):
            b, eb = born["lambda_raw"][ig][0], born["error_raw"][ig][0]
            x, ex = bse["lambda_raw"][ig][0], bse["error_raw"][ig][0]
            lh = s * s * harm["lambda_bead"][ig][0]
            w0 = harm["bse_w0"][f"{s:g}"][ig][0]
            lines.append(f"| {s:g} | {g:g} | {b:.4f} ± {eb:.4f} | {x:.4f} ± {ex:.4f} | {lh:.4f} | {w0:.4f} | "
                         f"{(x - b) / np.hypot(eb, ex):+.1f} | {'/'.join(map(str, born['n_states_per_K']))} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the harmonic side (under mpirun: every rank)

def harmonic_part(args) -> int:
    import dataclasses
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
    sys.path.insert(0, str(HERE))
    from harmonic_reduction_gpaw import bse_of_born
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
        bse_w0 = {f"{s:g}": bse_of_born(dataclasses.replace(h, couplings=[g * s for g in h.couplings]), zm).tolist()
                  for s in args.scales}
        lam = h.lambda_bead - (h.lambda_zero_bead if zm == "drop" else 0.0)
        out.write_text(json.dumps({"lambda_bead": lam.tolist(), "lambda_continuum": h.lambda_continuum.tolist(),
                                   "bse_w0": bse_w0, "gamma_eV": h.gamma_ev.tolist(), "fermi_level_eV": ef,
                                   "eta_eV": h.eta_ev, "zero_modes": zm, "temperature_K": h.temperature_k,
                                   "n_beads": h.n_beads, "n_states_per_K": [len(e) for e in h.energies],
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
