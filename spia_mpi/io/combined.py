"""Files of ``spia_mpi combine``: supercell runs in, one results file out.

The combined file is a ``results`` file like the one of ``spia_mpi run`` (so ``tc``,
``plot`` and ``gap`` read it the same way): ``/lambda`` (λ(m), its error and the
combined jackknife replicas), ``/lambda_q`` (λ_q on the full q-grid, star-filled, and
the irreducible q with the file each came from), ``/eliashberg`` (T_c ± σ) and
``/combine`` with the provenance of every input run (path, SHA-256, its
``/provenance`` and resolved ``/input``). See docs/output.md.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

# input keys that must agree between the combined runs ("<table>.<key>" of the run input)
_AGREE = ("model", "spia.matsubara_j", "spia.states_per_k", "spia.mode", "spia.fermi_level_ev",
          "spia.bead_correction", "spia.tau_refine")


def _settings(resolved: dict) -> dict:
    out = {}
    for key in _AGREE:
        v = resolved
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        out[key] = v
    return out


def read_supercell_run(path):
    """A :class:`~spia_mpi.engine.combine.SupercellRun` from a finished results file of `run`."""
    from spia_mpi.engine.combine import SupercellRun
    from spia_mpi.io import hdf5
    with hdf5.open_finished(path, "results") as f:
        if "lambda_q" not in f or "pair_sums" not in f["lambda_q"]:
            raise InputError(f"{path}: no /lambda_q/pair_sums (a combined file, or not written by `spia_mpi "
                             "run`): combine the results files of the supercell runs")
        g, lam = f["lambda_q"], f["lambda"]
        M, n_k = int(g.attrs["cells_per_supercell"]), int(g.attrs["n_kpoints"])
        ks = np.unique(np.round(np.mod(f["bands/kpoints_frac"][...], 1.0), 8) % 1.0, axis=0)
        if len(ks) != M * n_k:
            raise InputError(f"{path}: /bands/kpoints_frac holds {len(ks)} distinct k, expected "
                             f"{M} cells × {n_k} K-points")
        resolved = json.loads(f["input"].attrs["json"]) if "input" in f else {}
        return SupercellRun(
            path=str(path), qpoints_frac=g["qpoints_frac"][...], pair_sums=g["pair_sums"][...],
            pair_sums_jackknife=g["pair_sums_jackknife"][...], cells_per_supercell=M,
            supercell_matrix=np.array(json.loads(g.attrs["supercell_matrix"])), kpoints_frac=ks,
            gamma_ev=lam["gamma_eV"][...], n_gamma=lam["n_gamma_per_cell"][...] * M * n_k,
            fermi_level_ev=float(f["bands"].attrs["fermi_level_eV"]), temperature_k=float(lam.attrs["temperature_K"]), n_beads=int(lam.attrs["n_beads"]),
            settings=_settings(resolved),
            bead_factor=lam["bead_correction_factor"][...] if "bead_correction_factor" in lam else None,
            n_gamma_jackknife=lam["n_gamma_per_cell_jackknife"][...] * M * n_k
            if "n_gamma_per_cell_jackknife" in lam else None)


def run_provenance(path) -> dict:
    """Where a results file came from: path, size, SHA-256, its /provenance and /input."""
    from spia_mpi.io import hdf5
    p = Path(path)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    with hdf5.open_finished(p, "results") as f:
        prov = {k: (v.item() if hasattr(v, "item") else hdf5._s(v)) for k, v in f["provenance"].attrs.items()} \
            if "provenance" in f else {}
        resolved = f["input"].attrs["json"] if "input" in f else "{}"
        n_conf = int(f["lambda"].attrs.get("n_configurations", 0))
    return dict(path=str(p.resolve()), size_bytes=p.stat().st_size, sha256=digest,
                provenance=json.dumps(prov, sort_keys=True), input=hdf5._s(resolved), n_configurations=n_conf)


def write_combined(path, comb, tc, info: dict, resolved: dict, runs_info: list, mode: str):
    """Write the combined results file (serial; ``info`` from :func:`hdf5.provenance`).

    ``tc``: dict with mustar, tc_K, tc_K_error, allen_dynes_K, mcmillan_K [gamma, mustar],
    omega2_eV, omega_log_eV [gamma], omega2_m_eV [gamma, m] and notes [gamma].
    """
    from spia_mpi.io import hdf5
    from spia_mpi.units import bosonic_frequency_ev
    with hdf5.atomic_h5(path, None, kind="results") as f:
        hdf5.write_provenance(f, info, resolved)
        g = f.create_group("lambda")
        g.attrs["temperature_K"] = comb.temperature_k
        g.attrs["n_beads"] = comb.n_beads
        g.attrs["n_configurations"] = sum(r["n_configurations"] for r in runs_info)
        g.attrs["mode"] = mode
        g.attrs["error_method"] = ("jackknife over the configuration blocks of each supercell, supercells "
                                   "independent (errors in quadrature)")
        m = np.arange(comb.lambda_m.shape[1])
        hdf5.write_dataset(g, "m", m, "1", "bosonic Matsubara index")
        hdf5.write_dataset(g, "nu_eV", bosonic_frequency_ev(m, comb.temperature_k), "eV", "ν_m = 2πm k_B T")
        hdf5.write_dataset(g, "gamma_eV", comb.gamma_ev, "eV", "Lorentzian half widths")
        hdf5.write_dataset(g, "lambda_m", comb.lambda_m, "1", "λ(m) on the q-grid [gamma, m]")
        hdf5.write_dataset(g, "lambda_m_error", comb.lambda_m_error, "1", "standard error of λ(m)")
        g.attrs["bead_correction"] = comb.bead_correction
        if comb.lambda_m_raw is not None:
            hdf5.write_dataset(g, "lambda_m_raw", comb.lambda_m_raw, "1",
                               "λ(m) before the runs' finite-bead correction [gamma, m]")
        hdf5.write_dataset(g, "lambda_m_jackknife", comb.lambda_m_jackknife, "1",
                           "combined jackknife replicas [replica, gamma, m]: every supercell's delete-one-block "
                           "replicas, centred on the combined mean and scaled so that the delete-one formula "
                           "over all replicas gives lambda_m_error (used by `tc` for T_c errors)")
        hdf5.write_dataset(g, "omega2_eV", np.asarray(tc["omega2_eV"]), "eV", "ω̄₂ fitted to the tail of λ(m)")
        hdf5.write_dataset(g, "omega2_m_eV", np.asarray(tc["omega2_m_eV"]), "eV",
                           "ω̄₂(m) = ν_m √(λ(m)/λ(0)) [gamma, m] (NaN where it cannot be formed)")
        hdf5.write_dataset(g, "n_gamma_per_cell", comb.n_gamma_per_cell, "1/eV",
                           "Lorentzian DOS N_γ per primitive cell per spin of each supercell group [group, gamma]")
        q = f.create_group("lambda_q")
        hdf5.write_dataset(q, "qpoints_frac", comb.qpoints, "1", "the full q-grid, primitive reduced")
        hdf5.write_dataset(q, "lambda_qm", comb.lambda_q, "1",
                           "λ_q [gamma, q, m], each q the value of its star's representative; Σ_q = λ(m)")
        hdf5.write_dataset(q, "irreducible_qpoints_frac", comb.irreducible_q, "1", "irreducible q [q_irr, 3]")
        hdf5.write_dataset(q, "star_weights", comb.weights, "1", "star sizes of the irreducible q")
        hdf5.write_dataset(q, "lambda_irreducible_qm", comb.lambda_irr_q, "1", "λ_q [gamma, q_irr, m]")
        q.attrs["source"] = json.dumps(comb.source)
        q.attrs["n_kpoints_primitive"] = comb.n_kpoints
        e = f.create_group("eliashberg")
        hdf5.write_dataset(e, "mustar", np.asarray(tc["mustar"]), "1")
        hdf5.write_dataset(e, "tc_K", np.asarray(tc["tc_K"]), "K", "T_c [gamma, mustar]")
        hdf5.write_dataset(e, "tc_K_error", np.asarray(tc["tc_K_error"]), "K",
                           "jackknife standard error of T_c from the combined replicas [gamma, mustar] "
                           "(NaN: not computed)")
        hdf5.write_dataset(e, "allen_dynes_K", np.asarray(tc["allen_dynes_K"]), "K")
        hdf5.write_dataset(e, "mcmillan_K", np.asarray(tc["mcmillan_K"]), "K")
        hdf5.write_dataset(e, "omega_log_eV", np.asarray(tc["omega_log_eV"]), "eV", "ω_log of the α²F estimate")
        e.attrs["notes"] = json.dumps(tc["notes"])
        c = f.create_group("combine")
        c.attrs["groups"] = json.dumps(comb.groups)
        for i, r in enumerate(runs_info):
            gr = c.create_group(f"run{i:03d}")
            for k, v in r.items():
                gr.attrs[k] = v
