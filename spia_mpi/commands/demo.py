"""``demo``: the whole pipeline on the built-in example, in a few minutes on 2 cores."""
from __future__ import annotations

import logging
import os
import shutil
from importlib import resources
from pathlib import Path

import numpy as np

NAME = "demo"
HELP = "run the built-in example (Holstein metal with quantum Einstein ions) end to end"
ORDER = 10
DESCRIPTION = """\
Copy the built-in input (spia_mpi/data/demo.toml) into OUT (default ./demo-output),
run it exactly as `spia_mpi run` would (resolvents with PETSc, Bethe–Salpeter,
λ(m) with jackknife errors, T_c(μ*)), write the HDF5 results and PNG/PDF
figures, compare λ(m) with the exact harmonic (Born) answer, and print the harmonic
baseline of `spia_mpi harmonic` (λ_harm(m), α²F, T_c^harm) next to the SPIA result.

  mpirun -n 2 python -m spia_mpi demo
  python -m spia_mpi demo --small          # a smaller, faster variant (used by the tests)

SPIA_SMALL=1 in the environment has the effect of --small (docs/tutorial.md's size knob).
"""

logger = logging.getLogger("spia_mpi")


def add_arguments(p):
    p.add_argument("--out", default="demo-output", help="output folder (created; default ./demo-output)")
    p.add_argument("--small", action="store_true", help="a smaller, faster variant (tests)")
    p.add_argument("--model", choices=["holstein", "grid"], default="holstein",
                   help="holstein: tight-binding metal with an exact harmonic answer (default); "
                        "grid: real-space dense hydrogen with screened pseudopotentials")


def run(args, comm):
    from spia_mpi.io import inputs
    from spia_mpi.io import runinput
    from spia_mpi.commands.run import execute
    from spia_mpi.parallel.mpi import on_root

    out = Path(args.out)

    def prepare():
        out.mkdir(parents=True, exist_ok=True)
        name = "demo.toml" if args.model == "holstein" else "demo_grid.toml"
        src = resources.files("spia_mpi") / "data" / name
        target = out / name
        with resources.as_file(src) as p:
            shutil.copyfile(p, target)
        data = inputs.load_toml(target)
        small = args.small or os.environ.get("SPIA_SMALL", "") not in ("", "0")
        if small and args.model == "holstein":
            data["supercell"]["matrix"] = [3, 3, 3]
            data["supercell"]["kpoints"] = [[0.0, 0.0, 0.0]]
            data["configurations"]["einstein"].update(n_samples=32, n_beads=8)
            data["spia"]["n_blocks"] = 4
        elif small:
            data["configurations"]["einstein"].update(n_samples=8, n_beads=4)
            data["spia"]["n_blocks"] = 4
        return inputs.build(runinput.RunInput, data, str(target)), out.resolve()

    inp, folder = on_root(comm, prepare)
    name = "demo.toml" if args.model == "holstein" else "demo_grid.toml"
    code = execute(inp, folder, comm, source=str(out / name))
    if comm.rank == 0 and args.model == "holstein":
        _compare_with_oracle(inp, folder)
    # the conventional harmonic baseline of the same input, printed next to the SPIA result
    from spia_mpi.commands import harmonic
    harmonic.execute(inp, folder, comm, compare=folder / inp.output.file, source=str(out / name))
    if comm.rank == 0:
        logger.info("demo finished: input %s, results %s, figures %s", folder / name,
                    folder / inp.output.file, folder / (Path(inp.output.file).stem + "_plots"))
    return code


def _compare_with_oracle(inp, folder):
    """Print the raw λ(m) next to the exact ring-polymer Born value N_γ g²/(κ + MΩ_m²) and the
    bead-corrected λ(m) next to the continuum one N_γ g²/(κ + Mν_m²)."""
    from spia_mpi import units
    from spia_mpi.io import hdf5
    from spia_mpi.ions.configurations import einstein_spring
    from spia_mpi.engine.spia import born_lambda
    h = inp.model.holstein
    e = inp.configurations.einstein
    with hdf5.open_h5(folder / inp.output.file, "r", None) as f:
        lam = f["lambda/lambda_m"][...]
        err = f["lambda/lambda_m_error"][...]
        raw = f["lambda/lambda_m_raw"][...]
        raw_err = f["lambda/lambda_m_raw_error"][...]
        correction = f["lambda"].attrs["bead_correction"]
        ngam = f["lambda/n_gamma_per_cell"][...]
        gammas = f["lambda/gamma_eV"][...]
        mus = f["eliashberg/mustar"][...]
        tc = f["eliashberg/tc_K"][...]
        tc_err = f["eliashberg/tc_K_error"][...] if "tc_K_error" in f["eliashberg"] else np.full(tc.shape, np.nan)
    kappa = float(einstein_spring(h.mass_amu, e.hbar_omega_ev))
    nu = units.bosonic_frequency_ev(np.arange(lam.shape[1]), e.temperature_k)
    m_nu2 = h.mass_amu * nu ** 2 / units.HBAR2_OVER_AMU_A2_EV
    print("\nλ(m) (SPIA, Bethe–Salpeter) vs the exact Born limit of the harmonic model: raw λ(m) vs N_γ g²/(κ + MΩ_m²) "
          f"(ring polymer), {correction}-corrected λ(m) vs N_γ g²/(κ + Mν_m²) (continuum):")
    if inp.spia.mode == "bse":
        print("(the Born value is exact to O(g²) only: the Bethe–Salpeter ladder adds higher orders; at this input "
              "BSE lies 1.4 % (m = 0) and 2.6 % (m = 1) below Born on the same samples — docs/spia.md, "
              "\"Are the error bars honest?\")")
    conts = []
    for ig, gam in enumerate(gammas):
        ring = born_lambda(ngam[ig], h.coupling_ev_per_ang, kappa, h.mass_amu, e.n_beads,
                           e.temperature_k, lam.shape[1])
        cont = ngam[ig] * h.coupling_ev_per_ang ** 2 / (kappa + m_nu2)
        conts.append(cont)
        print(f"  γ = {gam:g} eV")
        for m in range(min(lam.shape[1], 5)):
            print(f"    m = {m}: raw {raw[ig, m]:.4f} ± {raw_err[ig, m]:.4f} vs {ring[m]:.4f}"
                  f" ({(raw[ig, m] - ring[m]) / max(raw_err[ig, m], 1e-300):+.1f} σ);"
                  f"  corrected {lam[ig, m]:.4f} ± {err[ig, m]:.4f} vs {cont[m]:.4f}"
                  f" ({(lam[ig, m] - cont[m]) / max(err[ig, m], 1e-300):+.1f} σ)")
    if inp.output.plots:              # lambda_m.png again, with the exact answer overlaid
        from spia_mpi.io import plotting
        with hdf5.open_h5(folder / inp.output.file, "r", None) as f:
            plotting.plot_lambda(f, folder / (Path(inp.output.file).stem + "_plots"),
                                 reference=("exact harmonic Born limit (continuum)", np.array(conts)))
    print("\nT_c (K) ± jackknife error propagated from λ(m):")
    for ig, gam in enumerate(gammas):
        print(f"  γ = {gam:g} eV: " + ", ".join(
            f"μ* = {mu:g}: {t:.1f} ± {s:.2g}" for mu, t, s in zip(mus, tc[ig], tc_err[ig])))
    np.seterr(all="ignore")
