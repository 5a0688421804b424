"""The gap file of `spia_mpi gap` (``spia_mpi_file = 'gap'``): its content, written like the results file.

One group ``/mustar_<i>`` per μ* (layout in docs/output.md). The content is collected in a
:class:`~spia_mpi.io.results.ResultsContent` and written by :func:`~spia_mpi.io.results.write_results`
(rank 0 alone, atomically, provenance and the λ source in ``/input``).
"""
from __future__ import annotations

from pathlib import Path

from spia_mpi.io.results import ResultsContent, write_results


def write_gap_file(path: Path, states, lam, meta: dict, comm, anisotropic=None):
    """Write the gap file: ``states`` SuperconductingState per μ*, ``lam`` the LambdaOfNu used,
    ``anisotropic`` an AnisotropicState (or None) per μ*; ``meta`` the λ source (→ /input)."""
    content = gap_content(states, lam, anisotropic) if comm is None or comm.rank == 0 else None
    write_results(path, content, comm, "gap", {**meta, "omega2_eV": lam.omega2_ev}, kind="gap")


def gap_content(states, lam, anisotropic=None) -> ResultsContent:
    """Everything the gap file holds, as a ResultsContent."""
    out = ResultsContent()
    out.set_attrs("lambda", temperature_K=lam.temperature_k, omega2_eV=lam.omega2_ev)
    out.add("lambda/lambda_m", lam.lambda_m, "1", "λ(m) used, at ν_m = 2πm k_B T0")
    for i, s in enumerate(states):
        _state(out, f"mustar_{i}", s)
        if anisotropic and anisotropic[i] is not None:
            _anisotropic(out, f"mustar_{i}/anisotropic", anisotropic[i])
    return out


def _state(out, g, s):
    out.set_attrs(g, mustar=s.mustar, tc_K=s.tc_k, tc_from_gap_K=s.tc_from_gap_k, delta0_imag_eV=s.delta0_imag_ev,
                  delta0_edge_eV=s.delta0_edge_ev, ratio_2delta0_kTc_imag=s.ratio_imag,
                  ratio_2delta0_kTc_edge=s.ratio_edge, specific_heat_jump_ratio=s.jump.ratio)
    c = s.curve
    out.add(f"{g}/temperature_K", c.temperature_k, "K", "temperatures of the Δ(T) curve")
    out.add(f"{g}/delta0_eV", c.delta0_ev, "eV", "Δ(iω_0) at each T")
    out.add(f"{g}/z0", c.z0, "1", "Z(iω_0) at each T")
    out.add(f"{g}/iterations", c.iterations, "1", "Anderson iterations at each T")
    low = c.solutions[0]
    out.add(f"{g}/matsubara_omega_eV", low.omega_ev, "eV", "ω_n at the lowest T")
    out.add(f"{g}/matsubara_delta_eV", low.delta_ev, "eV", "Δ(iω_n) at the lowest T")
    out.add(f"{g}/matsubara_z", low.z, "1", "Z(iω_n) at the lowest T")
    r = s.real_axis
    out.set_attrs(f"{g}/real_axis", n_pade=r.n_pade, eta_eV=r.eta_ev, temperature_K=low.temperature_k,
                  method="pade" if r.n_pade else "iterative")
    out.add(f"{g}/real_axis/omega_eV", r.omega_ev, "eV", "real frequencies ω (evaluated at ω + iη)")
    out.add(f"{g}/real_axis/delta_eV", r.delta_ev, "eV", "Δ(ω), complex (Padé or iterative: attrs['method'])")
    out.add(f"{g}/real_axis/z", r.z, "1", "Z(ω), complex")
    out.add(f"{g}/real_axis/dos", r.dos, "1", "quasiparticle DOS N_s(ω)/N(0)")
    out.add(f"{g}/specific_heat/temperature_K", s.jump.temperature_k, "K", "temperatures of the ΔF fit (fixed N)")
    out.add(f"{g}/specific_heat/free_energy_eV2", s.jump.free_energy_ev2, "eV^2", "ΔF/N(0) (Bardeen–Stephen)")


def _anisotropic(out, g, a):
    lin, c = a.linear, a.curve
    out.set_attrs(g, tc_aniso_K=lin.tc_aniso_k, tc_iso_K=lin.tc_iso_k)
    out.add(f"{g}/weights", lin.weights, "1", "bin weights w_i (Σ = 1)")
    out.add(f"{g}/gap_ratio", lin.gap_ratio, "1", "Δ_i(iω_0)/⟨Δ⟩ at T_c⁻ per bin (leading eigenvector)")
    out.add(f"{g}/temperature_K", c.temperature_k, "K", "temperatures of Δ_i(T) (fractions of T_c^aniso)")
    out.add(f"{g}/delta0_eV", c.delta0_ev, "eV", "Δ_i(iω_0) at each T [T, bin] (nonlinear anisotropic equations)")
    out.add(f"{g}/z0", c.z0, "1", "Z_i(iω_0) at each T [T, bin]")
    out.add(f"{g}/iterations", c.iterations, "1", "Anderson iterations at each T")
    low = c.solutions[0]
    out.add(f"{g}/matsubara_omega_eV", low.omega_ev, "eV", "ω_n at the lowest T")
    out.add(f"{g}/matsubara_delta_eV", low.delta_ev, "eV", "Δ_i(iω_n) at the lowest T [bin, n]")
    out.add(f"{g}/matsubara_z", low.z, "1", "Z_i(iω_n) at the lowest T [bin, n]")
