"""``tc``: T_c from λ(m) by the linearised Eliashberg equation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from spia_mpi.errors import ConvergenceError, InputError

NAME = "tc"
HELP = "superconducting T_c from λ(m) (linearised Eliashberg equation)"
ORDER = 40
DESCRIPTION = """\
Solve the linearised Eliashberg equation for T_c from λ(m) computed at T0.

λ(m) is read from a text file (one value per line for m = 0, 1, 2, … at the
bosonic Matsubara frequencies ν_m = 2πm k_B T0; lines starting with # are
comments) or from the HDF5 results file of `spia_mpi run` (/lambda/lambda_m).
λ is treated as one function of ν (monotone interpolation, ω̄₂ tail beyond the
last point) so it can be evaluated at other temperatures; μ* is renormalised to
the frequency cutoff. With a results file that holds λ(m)'s jackknife
replicas (/lambda/lambda_m_jackknife) the statistical error of T_c is reported
too: T_c is solved for every delete-one-block replica (--no-tc-errors skips it).
--gap adds, per μ*, the superconducting state below T_c (nonlinear Eliashberg: Δ₀,
2Δ₀/k_BT_c, the T where Δ vanishes, ΔC/γT_c; `gap` writes all of it to a file);
--anisotropic adds T_c^aniso and the gap spread at T_c⁻ from the /anisotropy group of a
results file (run with spia.anisotropy_bins). See docs/eliashberg.md.

examples:
  python -m spia_mpi tc --lambda lambda.dat --temperature 290 --mustar 0.10 --mustar 0.16
  mpirun -n 4 python -m spia_mpi tc --lambda results.h5 --gamma 0.8 --mustar 0.1 --json
"""


def add_arguments(p):
    p.add_argument("--lambda", dest="lambda_file", required=True, metavar="FILE",
                   help="λ(m): text file (m = 0, 1, …) or spia_mpi results HDF5")
    p.add_argument("--temperature", type=float, metavar="T0",
                   help="temperature T0 (K) at which λ(m) was computed "
                        "(required for text files; read from HDF5 files)")
    p.add_argument("--mustar", type=float, action="append", metavar="MU",
                   help="Coulomb pseudopotential μ* (repeat for several; default 0.10)")
    p.add_argument("--nfreq", type=int, metavar="N",
                   help="use exactly N positive fermionic frequencies at every T "
                        "(default: enough for a cutoff ω_c ≥ 12 ω̄₂)")
    p.add_argument("--omega2", type=float, metavar="W",
                   help="fix ω̄₂ (eV) instead of fitting it to the tail of λ(m)")
    p.add_argument("--gamma", type=float, metavar="G",
                   help="HDF5 input: Lorentzian half width γ (eV) of the λ(m) row to use "
                        "(nearest; default: the first row)")
    p.add_argument("--method", choices=["auto", "dense", "slepc", "slepc-assembled"], default="auto",
                   help="leading-eigenvalue solver (default auto: dense LAPACK for small N on "
                        "one rank, SLEPc with a distributed matrix-free kernel otherwise)")
    p.add_argument("--no-tc-errors", action="store_true",
                   help="HDF5 input: skip the jackknife error of T_c (one T_c solve per block and μ*)")
    p.add_argument("--gap", action="store_true",
                   help="also solve the gap below T_c per μ* (Δ₀ at 0.1 T_c, 2Δ₀/k_BT_c from the Padé gap edge, "
                        "ΔC/γT_c); the full curves and real axis: `spia_mpi gap`")
    p.add_argument("--anisotropic", action="store_true",
                   help="results file with /anisotropy (spia.anisotropy_bins): also T_c^aniso and Δ_i/⟨Δ⟩ at "
                        "T_c⁻ of the binned couplings of the same γ row")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def read_lambda_text(path: Path) -> np.ndarray:
    """λ(m) from a text file: one number per line (first column), '#' comments."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text file (give λ(m) one value per line, or an .h5 file)") from exc
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        tok = s.split()[0].rstrip(",")
        try:
            v = float(tok)
        except ValueError:
            raise InputError(f"{path}, line {lineno}: '{tok}' is not a number "
                             "(expected one λ(m) per line)") from None
        if not math.isfinite(v):
            raise InputError(f"{path}, line {lineno}: λ = {tok} is not finite")
        values.append(v)
    if len(values) < 2:
        raise InputError(f"{path}: found {len(values)} λ(m) value(s); need at least m = 0 and 1")
    if values[0] <= 0:
        raise InputError(f"{path}: λ(0) = {values[0]} must be positive")
    return np.array(values)


def read_lambda_h5(path: Path, gamma: float | None, comm=None):
    """(λ(m), T0, γ, replicas, bead correction) from a spia_mpi results file.

    ``replicas`` is float [n_blocks, n_m], the delete-one-block jackknife replicas of
    the chosen γ row (/lambda/lambda_m_jackknife), or None if the file has none.
    """
    from spia_mpi.io import hdf5
    with hdf5.open_finished(path, "results") as f:
        if "lambda" not in f or "lambda_m" not in f["lambda"]:
            raise InputError(f"{path}: no dataset /lambda/lambda_m")
        g = f["lambda"]
        lam = np.atleast_2d(g["lambda_m"][...])
        gammas = g["gamma_eV"][...] if "gamma_eV" in g else np.full(lam.shape[0], np.nan)
        t0 = g.attrs.get("temperature_K")
        jk = g["lambda_m_jackknife"][...] if "lambda_m_jackknife" in g else None
        correction = str(g.attrs.get("bead_correction", "none (file written before the correction existed)"))
    if t0 is None:
        raise InputError(f"{path}: /lambda has no 'temperature_K' attribute")
    row = 0
    if gamma is not None:
        row = int(np.nanargmin(np.abs(gammas - gamma)))
    reps = None
    if jk is not None:
        if jk.ndim != 3 or jk.shape[1:] != lam.shape:
            raise InputError(f"{path}: /lambda/lambda_m_jackknife has shape {list(jk.shape)}, expected "
                             f"[n_blocks, {lam.shape[0]}, {lam.shape[1]}] (λ(m) is {list(lam.shape)})")
        reps = jk[:, row]
    return lam[row], float(t0), float(gammas[row]), reps, correction


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def load_lambda(args):
    path = Path(args.lambda_file)
    if not path.exists():
        raise InputError(f"λ file {path} does not exist")
    if path.is_dir():
        raise InputError(f"λ file {path} is a directory")
    if _is_hdf5(path):
        lam, t0, gamma, reps, correction = read_lambda_h5(path, args.gamma)
        if args.temperature is not None and abs(args.temperature - t0) > 1e-9 * t0:
            raise InputError(f"--temperature {args.temperature} K disagrees with {path} "
                             f"(computed at {t0} K)")
        return lam, t0, {"source": str(path), "gamma_eV": gamma, "bead_correction": correction}, reps
    if args.temperature is None:
        raise InputError(f"--temperature T0 (K) is required with a text λ file ({path})")
    return read_lambda_text(path), args.temperature, {"source": str(path)}, None


def _json_safe(x):
    """NaN/inf → null (strict JSON: jq and other parsers reject NaN); the reason is in the notes."""
    import math
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if hasattr(x, "tolist"):
        return _json_safe(x.tolist())
    return x


def run(args, comm):
    from spia_mpi.eliashberg import linearised
    from spia_mpi.parallel.mpi import on_root
    lam, t0, meta, reps = on_root(comm, load_lambda, args)
    if t0 <= 0:
        raise InputError(f"--temperature {t0} K must be positive")
    if args.omega2 is not None and args.omega2 <= 0:
        raise InputError(f"--omega2 {args.omega2} eV must be positive")
    mustars = args.mustar or [0.10]
    res = linearised.solve_tc(lam, t0, mustars, n_freq=args.nfreq, omega2_ev=args.omega2,
                              method=args.method, comm=comm)
    out = res.as_dict()
    out.update(meta)
    out["tc_K_error"], out["tc_K_error_notes"] = _tc_errors(reps, t0, mustars, res.tc_k, args, comm,
                                                            hdf5="gamma_eV" in meta)
    out["n_lambda"] = int(lam.size)
    out["mpi_ranks"] = comm.size
    if args.gap:
        out["gap"] = _gap_summary(lam, t0, mustars, args, comm)
    if args.anisotropic:
        out["anisotropic"] = _anisotropic_summary(args, mustars, comm)
    if comm.rank == 0:
        if args.json:
            print(json.dumps(_json_safe(out), indent=1))
        else:
            _print_table(out)
    return 0


def _gap_summary(lam, t0, mustars, args, comm) -> list:
    """Per μ*: the nonlinear gap at 0.1 T_c (the `gap` command's numbers, no file)."""
    from spia_mpi.eliashberg import superconducting
    from spia_mpi.eliashberg.linearised import LambdaOfNu
    lam_nu = LambdaOfNu(lam, t0, args.omega2)
    out = []
    for mu in mustars:
        try:
            s = superconducting.solve_state(lam_nu, mu, (0.1,), n_omega=1000, n_freq=args.nfreq, comm=comm)
        except (InputError, ConvergenceError) as exc:
            out.append({"mustar": mu, "error": str(exc)})
            continue
        out.append({"mustar": mu, "tc_K": s.tc_k, "tc_from_gap_K": s.tc_from_gap_k, "delta0_imag_eV": s.delta0_imag_ev,
                    "delta0_edge_eV": s.delta0_edge_ev, "ratio_2delta0_kTc_edge": s.ratio_edge,
                    "ratio_2delta0_kTc_imag": s.ratio_imag, "specific_heat_jump_ratio": s.jump.ratio})
    return out


def _anisotropic_summary(args, mustars, comm) -> list:
    """Per μ*: T_c^aniso, T_c^iso and the spread of Δ_i/⟨Δ⟩ at T_c⁻ from the file's /anisotropy."""
    from spia_mpi.eliashberg.anisotropic import solve_anisotropic_tc
    from spia_mpi.io.anisotropyfile import read_anisotropy
    from spia_mpi.parallel.mpi import on_root
    path = Path(args.lambda_file)
    if not _is_hdf5(path):
        raise InputError(f"--anisotropic needs a results file with /anisotropy, not the text file {path}")
    W, w, t0, _ = on_root(comm, read_anisotropy, path, args.gamma)
    out = []
    for mu in mustars:
        a = solve_anisotropic_tc(W, w, t0, mu, args.omega2, args.nfreq, comm)
        out.append({"mustar": mu, "tc_aniso_K": a.tc_aniso_k, "tc_iso_K": a.tc_iso_k, "n_bins": int(w.size),
                    "gap_ratio_min": float(a.gap_ratio.min()), "gap_ratio_max": float(a.gap_ratio.max())})
    return out


def _tc_errors(reps, t0, mustars, tc_k, args, comm, hdf5=True):
    """(σ_Tc per μ* in K, {μ*: reason}) from the λ(m) replicas (NaN where not available).

    The replicas of a results file go through :func:`linearised.jackknife_tc` with the same
    --nfreq/--omega2 as the central T_c (so a `run`'s /eliashberg/tc_K_error is reproduced).
    """
    from spia_mpi.eliashberg import linearised
    nan = [math.nan] * len(mustars)
    if reps is None:
        return nan, {"all": "the results file has no /lambda/lambda_m_jackknife (λ(m) replicas)" if hdf5
                     else "a text λ file has no replicas of λ(m)"}
    if args.no_tc_errors:
        return nan, {"all": "switched off (--no-tc-errors)"}
    if reps.shape[0] < 2:
        return nan, {"all": f"{reps.shape[0]} jackknife replica(s): need at least 2"}
    jk = linearised.jackknife_tc(reps, t0, mustars, tc_k, n_freq=args.nfreq, omega2_ev=args.omega2, comm=comm)
    return [float(x) for x in jk.tc_error_k], dict(jk.errors)


def _print_table(o):
    print(f"λ(m): {o['n_lambda']} values from {o['source']} at T0 = {o['temperature_K']:g} K"
          + (f", γ = {o['gamma_eV']:g} eV" if "gamma_eV" in o else ""))
    if "bead_correction" in o:
        print(f"finite-bead correction of λ(m): {o['bead_correction']} (/lambda/lambda_m; the raw values are "
              "/lambda/lambda_m_raw)")
    src = "fitted" if o["omega2_fitted"] else "given"
    print(f"λ(0) = {o['lambda0']:.4f}   ω̄₂ = {o['omega2_eV'] * 1e3:.2f} meV ({src}"
          + (f", ± {o['omega2_error_eV'] * 1e3:.2f}" if o["omega2_fitted"] else "")
          + f")   ω_log ≈ {o['omega_log_eV'] * 1e3:.2f} meV")
    print(f"leading eigenvalue ρ(T0) = {o['leading_eigenvalue']:.6f} "
          f"(μ* = {o['mustar'][0]}, N = {o['nfreq_at_T0']})")
    print(f"{'μ*':>6} {'T_c Eliashberg (K)':>20} {'Allen–Dynes (K)':>16} {'McMillan (K)':>13}")
    for mu, tc, ad, mc in zip(o["mustar"], o["tc_K"], o["allen_dynes_K"], o["mcmillan_K"]):
        print(f"{mu:>6.3f} {tc:>20.2f} {ad:>16.2f} {mc:>13.2f}")
    for mu, tc, err in zip(o["mustar"], o["tc_K"], o["tc_K_error"]):
        if math.isfinite(tc) and math.isfinite(err):
            print(f"μ* = {mu}: T_c = {tc:.2f} ± {err:.2g} K (jackknife over λ(m)'s blocks)")
    for mu, msg in o["tc_errors"].items():
        print(f"μ* = {mu}: {msg}")
    for mu, msg in o["tc_K_error_notes"].items():
        if msg != "no central T_c":            # that reason is already printed above
            print(f"T_c error{'' if mu == 'all' else f' (μ* = {mu})'}: {msg}")
    for g in o.get("gap", []):
        if "error" in g:
            print(f"μ* = {g['mustar']}: gap not solved: {g['error']}")
            continue
        edge = g["delta0_edge_eV"]
        print(f"μ* = {g['mustar']}: Δ(iω₀) = {1e3 * g['delta0_imag_eV']:.4g} meV at 0.1 T_c, 2Δ₀/k_BT_c = "
              f"{g['ratio_2delta0_kTc_edge'] if math.isfinite(edge) else g['ratio_2delta0_kTc_imag']:.3f}, "
              f"ΔC/γT_c = {g['specific_heat_jump_ratio']:.3f}, Δ → 0 at {g['tc_from_gap_K']:.2f} K")
    for a in o.get("anisotropic", []):
        print(f"μ* = {a['mustar']}: anisotropic T_c = {a['tc_aniso_K']:.2f} K over {a['n_bins']} bins (isotropic "
              f"average {a['tc_iso_K']:.2f} K), Δ_i/⟨Δ⟩ at T_c⁻ from {a['gap_ratio_min']:.3f} to "
              f"{a['gap_ratio_max']:.3f}")
