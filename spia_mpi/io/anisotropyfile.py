"""The ``/anisotropy`` group of a results file: W_st(m) binned on the Fermi surface (docs/output.md).

Written by ``run`` (``spia.anisotropy_bins``) through :class:`~spia_mpi.io.results.ResultsContent`
and read by ``gap --anisotropic``, which also accepts a hand-made file with /w_ij_m, /weights
and the attribute temperature_K on / (one row, no γ axis).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spia_mpi.errors import InputError

LABEL_DOC = {"band": "band index of each bin [bin, 1]",
             "kpoint": "reduced primitive k-point of each bin [bin, 3]",
             "energy": "lowest and highest renormalised energy − ε_F of each bin's states [bin, 2] (eV)"}


def add_anisotropy(content, binned, gamma_ev, lambda_m):
    """Add /anisotropy to a :class:`ResultsContent` from a workflow ``BinnedCoupling``."""
    b = binned.bins
    content.set_attrs("anisotropy", kind=b.kind, n_bins=b.n_bins,
                      definition="W_ij(m) = -f(m) N P_ij(m)/(N_i N_j), P_ij = sum over s in i, t in j of "
                                 "w_s W_st(m) w_t (all K), w_i = N_i/N; sum_ij w_i W_ij w_j = lambda(m)")
    content.add("anisotropy/gamma_eV", np.asarray(gamma_ev, float), "eV", "Lorentzian half widths γ [gamma]")
    content.add("anisotropy/w_ij_m", binned.w_ij_m, "1",
                "binned coupling W_ij(m) at ν_m = 2πm k_B T, bead-corrected like λ(m) [gamma, bin, bin, m]")
    content.add("anisotropy/w_ij_m_error", binned.w_ij_m_error, "1", "jackknife standard error of W_ij(m)")
    content.add("anisotropy/weights", binned.weights, "1", "bin weights w_i = N_i/N_γ (Σ_i = 1) [gamma, bin]")
    content.add("anisotropy/n_bin", binned.n_bin, "1/eV", "N_i = Σ_{s∈i} w_s per spin [gamma, bin]")
    content.add("anisotropy/isotropic_lambda_m", np.einsum("gi,gijm,gj->gm", binned.weights, binned.w_ij_m,
                                                           binned.weights), "1",
                "Σ_ij w_i W_ij(m) w_j (equals /lambda/lambda_m) [gamma, m]")
    content.add("anisotropy/labels", b.labels, "eV" if b.kind == "energy" else "1", LABEL_DOC[b.kind])
    content.add("anisotropy/bin_of_state", np.concatenate(b.of_state), "1",
                "bin of every state, in the order of /bands/energies_eV [state]")


def read_anisotropy(path: Path, gamma: float | None = None):
    """(W_ij(m) [n_b, n_b, n_m], weights [n_b], T0 in K, metadata dict) from a results file with
    /anisotropy (row of the γ nearest ``gamma``, default the first) or from a hand-made file."""
    from spia_mpi.eliashberg.anisotropic import check_inputs
    from spia_mpi.io import hdf5
    with hdf5.open_existing(path, "anisotropic") as f:
        if f.attrs.get("spia_mpi_file") is not None:
            hdf5.require_complete(f, path, "results")
            if "anisotropy" not in f:
                raise InputError(f"{path}: no /anisotropy group (run with spia.anisotropy_bins = 'band', "
                                 "'kpoint' or 'energy')")
            g = f["anisotropy"]
            gammas = g["gamma_eV"][...]
            row = 0 if gamma is None else int(np.argmin(np.abs(gammas - gamma)))
            W, w = check_inputs(g["w_ij_m"][row], g["weights"][row])
            meta = {"source": str(path), "gamma_eV": float(gammas[row]), "bins": str(g.attrs["kind"])}
            return W, w, float(f["lambda"].attrs["temperature_K"]), meta
        for name in ("w_ij_m", "weights"):
            if name not in f:
                raise InputError(f"{path}: no dataset /{name}")
        if "temperature_K" not in f.attrs:
            raise InputError(f"{path}: no attribute 'temperature_K' on /")
        W, w = check_inputs(f["w_ij_m"][...], f["weights"][...])
        return W, w, float(f.attrs["temperature_K"]), {"source": str(path)}
