"""``gap``: the superconducting state below T_c from λ(m) (nonlinear Eliashberg equations)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

NAME = "gap"
HELP = "gap Δ(T), 2Δ₀/k_BT_c, ΔC/γT_c and the real-axis gap and DOS from λ(m)"
ORDER = 41
DESCRIPTION = """\
Solve the nonlinear isotropic Eliashberg equations on the imaginary axis below T_c.

λ(m) is read as by `tc` (a text file, one value per line for m = 0, 1, …, with
--temperature T0; or the results HDF5 of `spia_mpi run`). For each μ* the
linearised T_c is found first; then Z(iω_n), Δ(iω_n) are solved at T/T_c in
--fractions (Anderson mixing; temperatures spread over the MPI ranks), giving
Δ(T), 2Δ₀/k_BT_c (imaginary axis and real-axis gap edge), the T where Δ vanishes,
ΔC/γT_c (Bardeen–Stephen free energy) and, by Padé continuation at the lowest T,
Δ(ω), Z(ω) and the quasiparticle DOS N_s(ω)/N(0) (or, with --real-axis iterative, by the
Marsiglio–Schossmann–Carbotte real-axis equations). Results go to an HDF5 file
(--output, layout in docs/output.md); --plots draws Δ(T), Δ(ω) and N_s(ω).
With --anisotropic FILE (binned couplings W_ij(m) and bin weights instead of λ(m): a run's
results file with /anisotropy, or a hand-made file) the anisotropic linearised T_c, the gap
distribution at T_c⁻ and the nonlinear gaps Δ_i(T) of every bin at T/T_c^aniso in --fractions
are added.
See docs/eliashberg.md.

examples:
  python -m spia_mpi gap --lambda lambda.dat --temperature 290 --mustar 0.10 --output gap.h5
  mpirun -n 2 python -m spia_mpi gap --lambda results.h5 --mustar 0.1 --mustar 0.16 --plots
"""


def add_arguments(p):
    p.add_argument("--lambda", dest="lambda_file", metavar="FILE",
                   help="λ(m): text file (m = 0, 1, …) or spia_mpi results HDF5")
    p.add_argument("--anisotropic", metavar="FILE",
                   help="instead of --lambda: a results file of a run with spia.anisotropy_bins (its "
                        "/anisotropy group; --gamma picks the row) or an HDF5 with binned couplings /w_ij_m "
                        "[n_b, n_b, n_m], bin weights /weights [n_b] and attrs['temperature_K']; adds "
                        "T_c^aniso and the gap distribution at T_c⁻ (the isotropic part uses "
                        "λ(m) = Σ w_i W_ij w_j)")
    p.add_argument("--temperature", type=float, metavar="T0",
                   help="temperature T0 (K) at which λ(m) was computed (required for text files)")
    p.add_argument("--mustar", type=float, action="append", metavar="MU",
                   help="Coulomb pseudopotential μ* (repeat for several; default 0.10)")
    p.add_argument("--gamma", type=float, metavar="G",
                   help="HDF5 input: Lorentzian half width γ (eV) of the λ(m) row (nearest; default first)")
    p.add_argument("--omega2", type=float, metavar="W", help="fix ω̄₂ (eV) instead of fitting it")
    p.add_argument("--nfreq", type=int, metavar="N",
                   help="exactly N positive fermionic frequencies at every T (default: ω_c ≥ 12 ω̄₂)")
    p.add_argument("--fractions", type=str, metavar="LIST",
                   help="comma-separated T/T_c for Δ(T), each in (0, 1) (default 0.1,0.2,…,0.99); "
                        "the lowest gives Δ₀ and the real-axis gap")
    p.add_argument("--real-axis", choices=["pade", "iterative"], default="pade",
                   help="real-axis continuation at the lowest T: 'pade' (default) or 'iterative' (the "
                        "Marsiglio–Schossmann–Carbotte equations with α²F fitted to λ(m))")
    p.add_argument("--npade", type=int, default=120, metavar="M",
                   help="Matsubara points for the Padé continuation (default 120)")
    p.add_argument("--omega-max", type=float, metavar="E",
                   help="top of the real-frequency grid (eV; default 3 ω̄₂)")
    p.add_argument("--n-omega", type=int, default=2000, metavar="K",
                   help="real-frequency points (default 2000)")
    p.add_argument("--output", default="gap.h5", metavar="FILE", help="HDF5 output (default gap.h5)")
    p.add_argument("--force", action="store_true", help="replace an existing --output file")
    p.add_argument("--plots", action="store_true", help="also write gap_T, gap_omega and dos figures "
                   "(PNG + PDF) next to the output")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _fractions(text):
    from spia_mpi.eliashberg.superconducting import DEFAULT_FRACTIONS
    if text is None:
        return list(DEFAULT_FRACTIONS)
    try:
        fr = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--fractions '{text}': give comma-separated numbers, e.g. 0.2,0.5,0.9") from None
    if not fr or min(fr) <= 0 or max(fr) >= 1:
        raise InputError(f"--fractions '{text}': every T/T_c must lie in (0, 1)")
    return fr


def _validate(args):
    if args.npade < 4:
        raise InputError(f"--npade {args.npade}: need at least 4 Padé points")
    if args.n_omega < 10:
        raise InputError(f"--n-omega {args.n_omega}: need at least 10 real frequencies")
    if args.omega_max is not None and args.omega_max <= 0:
        raise InputError(f"--omega-max {args.omega_max} eV must be positive")
    if args.omega2 is not None and args.omega2 <= 0:
        raise InputError(f"--omega2 {args.omega2} eV must be positive")
    if args.nfreq is not None and args.nfreq < 4:
        raise InputError(f"--nfreq {args.nfreq}: need at least 4 fermionic frequencies")
    for mu in args.mustar or []:
        if not 0.0 <= mu < 1.0:
            raise InputError(f"--mustar {mu} out of range [0, 1)")
    from spia_mpi.io import hdf5
    from spia_mpi.io.outputs import refuse_overwrite
    refuse_overwrite(args.output, args.force, "--output")
    err = hdf5.check_writable(Path(args.output))
    if err:
        raise InputError(err)


def _load(args):
    from spia_mpi.commands.tc import load_lambda
    from spia_mpi.eliashberg.anisotropic import isotropic_average
    _validate(args)
    if (args.lambda_file is None) == (args.anisotropic is None):
        raise InputError("give exactly one of --lambda FILE and --anisotropic FILE")
    aniso = None
    if args.anisotropic:
        from spia_mpi.io.anisotropyfile import read_anisotropy
        W, w, t0, meta = read_anisotropy(Path(args.anisotropic), args.gamma)
        lam, aniso = isotropic_average(W, w), (W, w)
    else:
        lam, t0, meta, _ = load_lambda(args)
    if t0 <= 0:
        raise InputError(f"temperature T0 = {t0} K must be positive")
    return lam, t0, meta, _fractions(args.fractions), aniso


def run(args, comm):
    from spia_mpi.eliashberg import superconducting
    from spia_mpi.eliashberg.linearised import LambdaOfNu
    from spia_mpi.parallel.mpi import on_root
    from spia_mpi.eliashberg.anisotropic_gap import solve_anisotropic_state
    from spia_mpi.io.gapfile import write_gap_file
    lam_m, t0, meta, fractions, aniso = on_root(comm, _load, args)
    lam = LambdaOfNu(lam_m, t0, args.omega2)
    mustars = args.mustar or [0.10]
    states = [superconducting.solve_state(lam, mu, fractions, args.npade, args.omega_max,
                                          args.n_omega, n_freq=args.nfreq, comm=comm, real_axis=args.real_axis)
              for mu in mustars]
    anis = [solve_anisotropic_state(aniso[0], aniso[1], t0, mu, fractions, args.omega2, args.nfreq, comm=comm)
            for mu in mustars] if aniso else [None] * len(mustars)
    out = Path(args.output)
    write_gap_file(out, states, lam, meta, comm, anis)
    summary = [_summary(s, a) for s, a in zip(states, anis)]
    if comm.rank == 0:
        if args.plots:
            from spia_mpi.io import gapplots
            from spia_mpi.io.hdf5 import open_finished
            with open_finished(out, "gap") as f:
                figures = gapplots.plot_gap_file(f, out.parent, out.stem)
            if not args.json:
                print("\n".join(str(p) for p in figures))
        if args.json:
            print(json.dumps({"output": str(out), **meta, "states": summary}, indent=1))
        else:
            _print_table(summary, out)
    return 0


def _summary(s, aniso=None) -> dict:
    from spia_mpi import units
    from spia_mpi.eliashberg import superconducting as sc
    from spia_mpi.commands.tc import _json_safe
    extra = {}
    if aniso is not None:
        lin, low = aniso.linear, aniso.curve.solutions[0]
        extra = {"tc_aniso_K": lin.tc_aniso_k, "tc_iso_K": lin.tc_iso_k,
                 "gap_ratio_min": float(lin.gap_ratio.min()), "gap_ratio_max": float(lin.gap_ratio.max()),
                 "aniso_temperature_K": low.temperature_k, "aniso_delta0_eV": low.delta0_ev,
                 "aniso_ratio_2delta0_kTc": 2.0 * low.delta0_ev / (units.KB_EV_PER_K * lin.tc_aniso_k),
                 "aniso_max_iterations": int(np.max(aniso.curve.iterations))}
    return _json_safe({**extra,
        "mustar": s.mustar, "tc_K": s.tc_k, "tc_from_gap_K": s.tc_from_gap_k,
        "delta0_imag_eV": s.delta0_imag_ev, "delta0_edge_eV": s.delta0_edge_ev,
        "ratio_2delta0_kTc_imag": s.ratio_imag, "ratio_2delta0_kTc_edge": s.ratio_edge,
        "specific_heat_jump_ratio": s.jump.ratio,
        "carbotte_gap_ratio_omega2": sc.carbotte_gap_ratio(s.tc_k, s.omega2_ev),
        "max_iterations": int(np.max(s.curve.iterations)),
    })


def _print_table(summary, out):
    print(f"{'μ*':>6} {'T_c (K)':>9} {'Δ→0 at (K)':>11} {'Δ(iω₀) meV':>11} {'Δ₀ edge meV':>12} "
          f"{'2Δ₀/kTc':>8} {'ΔC/γTc':>7}")
    for o in summary:
        edge = o["delta0_edge_eV"]
        print(f"{o['mustar']:>6.3f} {o['tc_K']:>9.3f} {o['tc_from_gap_K']:>11.3f} "
              f"{o['delta0_imag_eV'] * 1e3:>11.4f} "
              f"{(edge * 1e3 if edge is not None else float('nan')):>12.4f} "
              f"{(o['ratio_2delta0_kTc_edge'] or o['ratio_2delta0_kTc_imag']):>8.3f} "
              f"{o['specific_heat_jump_ratio']:>7.3f}")
    for o in summary:
        if "tc_aniso_K" in o:
            print(f"μ* = {o['mustar']}: anisotropic T_c = {o['tc_aniso_K']:.3f} K (isotropic average "
                  f"{o['tc_iso_K']:.3f} K), Δ_i/⟨Δ⟩ at T_c⁻ from {o['gap_ratio_min']:.3f} to "
                  f"{o['gap_ratio_max']:.3f}; at T = {o['aniso_temperature_K']:.4g} K Δ_i(iω₀) = "
                  + ", ".join(f"{1e3 * d:.4g}" for d in o["aniso_delta0_eV"]) + " meV")
    print(f"written: {out}")
