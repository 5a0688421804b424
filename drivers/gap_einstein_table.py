"""Strong-coupling table for Einstein spectra: `gap` quantities against Carbotte's fits.

    PYTHONPATH=. python drivers/gap_einstein_table.py

For λ(ν) = λ0 Ω²/(Ω²+ν²) (Ω = 50 meV, μ* = 0.1; μ* = 0 for λ0 = 0.3) prints T_c/ω_ln,
the T where Δ(T) vanishes relative to the linearised T_c, 2Δ₀/k_BT_c on the imaginary axis
(Δ(iω_0) at 0.1 T_c), at the Padé gap edge and at the gap edge of the iterative real-axis
equations (α²F fitted to λ(m)), Carbotte's fit, ΔC/γT_c and its fit.
The numbers are quoted in docs/eliashberg.md.
"""
import argparse
import numpy as np

from spia_mpi.eliashberg import linearised as el
from spia_mpi.eliashberg import realaxis as ra
from spia_mpi.eliashberg import superconducting as sc
from spia_mpi.units import KB_EV_PER_K

OMEGA = 0.05


def main():
    print(f"{'λ0':>5} {'μ*':>5} {'Tc/ωln':>7} {'T(Δ=0)/Tc-1':>12} {'2Δ(iω0)/kTc':>11} {'2Δedge/kTc':>10} "
          f"{'iterative':>9} {'Carbotte':>8} {'ΔC/γTc':>7} {'fit':>6}")
    for lambda0, mu in ((0.3, 0.0), (0.5, 0.1), (1.0, 0.1), (1.5, 0.1), (2.0, 0.1), (3.0, 0.1)):
        t0 = 100.0
        lam = el.LambdaOfNu(el.einstein_lambda(lambda0, OMEGA, t0, 400), t0, omega2_ev=OMEGA)
        s = sc.solve_state(lam, mu, n_omega=200)
        x = KB_EV_PER_K * s.tc_k / OMEGA
        low = s.curve.solutions[0]
        it = ra.continue_gap_iterative(low, ra.Spectrum.from_lambda(lam.lambda_m, t0), np.linspace(0, 3 * OMEGA, 3000))
        it_ratio = 2 * it.gap_edge_ev / (KB_EV_PER_K * s.tc_k)
        print(f"{lambda0:>5.1f} {mu:>5.2f} {x:>7.4f} {s.tc_from_gap_k / s.tc_k - 1:>12.1e} "
              f"{s.ratio_imag:>11.3f} {s.ratio_edge:>10.3f} {it_ratio:>9.3f} {sc.carbotte_gap_ratio(s.tc_k, OMEGA):>8.3f} "
              f"{s.jump.ratio:>7.3f} {sc.carbotte_jump_ratio(s.tc_k, OMEGA):>6.3f}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    np.set_printoptions(precision=4)
    main()
