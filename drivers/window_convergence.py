"""λ(0), λ(1) with an energy window ±W against the full-band state space, and the automatic window.

Li₂MgH₁₆ (primitive cell) with the grid model at K = Γ on a grid small enough to keep every band
(6³ points per cell: 216 plane waves), exact Einstein ring polymers; the same samples for every W,
so the ratios show the truncation alone. Prints one line per W; docs/spia.md ("The default state
space") quotes the result.

  python drivers/window_convergence.py               # ≈ 3 min serial on a loaded 2-core machine
"""
import argparse


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=16, help="configurations (default 16)")
    p.add_argument("--beads", type=int, default=8, help="beads (default 8)")
    p.add_argument("--einstein", type=float, default=0.08, help="ħΩ of the Einstein samples, eV (default 0.08)")
    p.add_argument("--windows", type=float, nargs="+", default=[4.0, 8.0, 12.0, 16.0, 24.0],
                   help="half widths W to compare, eV")
    args = p.parse_args()

    import numpy as np
    from spia_mpi.engine.workflow import compute_lambda
    from spia_mpi.ions import configurations as cf
    from spia_mpi.lattice.structures import load_structure
    from spia_mpi.models.grid import GridModel
    atoms = load_structure("li2mgh16-solid")
    model = GridModel(atoms, np.eye(3, dtype=int), (6, 6, 6), 4)
    pos = cf.sample_einstein_ring_polymers(args.samples, args.beads, atoms.get_masses(), args.einstein, 290.0,
                                           atoms.positions, np.random.default_rng(1))
    kw = dict(gammas=(0.2, 0.8), n_blocks=8)
    full = compute_lambda(model, pos, [[0, 0, 0]], 290.0, n_per_k=model.n_basis, **kw)
    print(f"full band: {full.state_space.n_states[0]} states (complete: {full.state_space.pool_complete}), "
          f"ε_F = {full.fermi.z:.3f} eV; λ(0) at γ = 0.2, 0.8 eV = {np.round(full.lambda_m[:, 0], 4)} "
          f"± {np.round(full.lambda_m_error[:, 0], 4)}")

    def line(label, r):
        print(f"{label}: {r.state_space.n_states[0]:4d} states, captured {np.round(r.state_space.captured, 4)}, "
              f"λ(0)/λ_full(0) = {np.round(r.lambda_m[:, 0] / full.lambda_m[:, 0], 4)}, "
              f"λ(1)/λ_full(1) = {np.round(r.lambda_m[:, 1] / full.lambda_m[:, 1], 4)}")
    for w in args.windows:
        line(f"W = {w:5.1f} eV", compute_lambda(model, pos, [[0, 0, 0]], 290.0, n_per_k=model.n_basis,
                                               window_ev=(-w, w), **kw))
    auto = compute_lambda(model, pos, [[0, 0, 0]], 290.0, n_per_k=None, **kw)
    line(f"automatic (W = {auto.state_space.window_ev[1]:g} eV)", auto)


if __name__ == "__main__":
    main()
