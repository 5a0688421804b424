"""The engine's Fermi-surface-binned coupling W_ij(m) (spia.anisotropy_bins) and `gap --anisotropic`
on a real run's results file.

Oracles: the bin sums reproduce the isotropic λ(m) of the engine's separate q-resolved path,
Σ_ij N_i λ_ij / N = λ (λ_ij = W_ij N_j/N, N_i summed here from the Lorentzian formula), to 1e-12;
1 rank = 2 ranks bit for bit; a two-band tight-binding model with a local (Holstein) coupling
gives distinct bins (intra-band ≫ inter-band at q = 0).
"""
import json

import numpy as np
import pytest

from spia_mpi.engine.workflow import compute_lambda
from spia_mpi.errors import InputError
from spia_mpi.ions.configurations import sample_einstein_ring_polymers

T = 300.0


def two_band_model():
    """CsCl-type two-orbital tight binding (on-site ∓1 eV, hoppings −0.8/−0.3 eV), Holstein 0.8 eV/Å,
    a quarter filled: two bands, both within a few γ of ε_F at the 2×2×2 supercell's k-points."""
    from ase import Atoms
    from spia_mpi.models.tightbinding import TightBindingModel
    prim = Atoms("H2", positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=np.eye(3), pbc=True)

    def hop(d):
        return -0.8 if abs(d - np.sqrt(3) / 2) < 1e-6 else (-0.3 if abs(d - 1) < 1e-6 else 0.0)
    return TightBindingModel(prim, np.diag([2, 2, 2]), hop, 1.01, onsite=[-1.0, 1.0], coupling=0.8,
                             electrons_per_site=0.5)


def run_bins(kind, comm=None, kpoints=((0, 0, 0),), n_conf=24, **kw):
    model = two_band_model()
    pos = sample_einstein_ring_polymers(n_conf, 4, np.full(16, 1.0), 0.1, T, model.reference_positions,
                                        np.random.default_rng(3))
    return compute_lambda(model, pos, [list(k) for k in kpoints], T, n_per_k=2, gammas=(0.3, 0.6), n_blocks=4,
                          fermi_level="reference", anisotropy_bins=kind, comm=comm, **kw)


@pytest.fixture(scope="module")
def runs():
    return {kind: run_bins(kind, anisotropy_n_bins=3) for kind in ("band", "kpoint", "energy")}


@pytest.mark.parametrize("kind", ["band", "kpoint", "energy"])
def test_bin_sums_equal_isotropic_lambda(runs, kind):
    """N_i = Σ_{s∈i} w_s (Lorentzian weights of the stored renormalised energies, summed here) equals the
    stored N_i; with λ_ij = W_ij N_j/N, Σ_ij N_i λ_ij/N equals the λ(m) of the q-resolved path to 1e-12."""
    res = runs[kind]
    a = res.anisotropy
    assert a.bins.kind == kind
    for ig, g in enumerate(res.gamma_ev):
        n_i = np.zeros(a.bins.n_bins)
        for bands, b in zip(res.bands, a.bins.of_state):
            w = (g / np.pi) / ((bands["energies"] - res.fermi.weights) ** 2 + g * g)
            np.add.at(n_i, b, w)
        assert np.allclose(a.n_bin[ig], n_i, rtol=1e-12)
        n = n_i.sum()
        assert n == pytest.approx(res.n_gamma[ig], rel=1e-12)
        lam_ij = a.w_ij_m[ig] * (n_i / n)[None, :, None]
        iso = np.einsum("i,ijm->m", n_i / n, lam_ij)
        assert np.max(np.abs(iso - res.lambda_m[ig])) < 1e-12 * res.lambda_m[ig, 0], (iso, res.lambda_m[ig])
        assert np.allclose(a.w_ij_m[ig], a.w_ij_m[ig].transpose(1, 0, 2))
        assert np.all(a.w_ij_m_error[ig] >= 0) and np.all(np.isfinite(a.w_ij_m_error[ig]))


def test_band_bins_of_two_band_model_are_distinct(runs):
    """Band bins: at every k the lower renormalised state is band 0, the upper band 1; the local coupling
    at q = 0 (one K) scatters within a band, so W_01(0) is below a tenth of W_00(0) and W_11(0), each
    diagonal more than 5 jackknife σ above the off-diagonal."""
    res = runs["band"]
    a = res.anisotropy
    assert a.bins.labels[:, 0].tolist() == [0.0, 1.0]
    e, k, b = res.bands[0]["energies"], res.bands[0]["k_index"], a.bins.of_state[0]
    for kk in np.unique(k):
        idx = np.flatnonzero(k == kk)
        assert b[idx[np.argmin(e[idx])]] == 0 and b[idx[np.argmax(e[idx])]] == 1
    W, err = a.w_ij_m[0, :, :, 0], a.w_ij_m_error[0, :, :, 0]
    for i in (0, 1):
        assert W[0, 1] < 0.1 * W[i, i]
        assert W[i, i] - W[0, 1] > 5 * np.hypot(err[i, i], err[0, 1]), (W, err)


def test_kpoint_and_energy_bins(runs):
    """kpoint bins are the 8 primitive k-points of the 2×2×2 supercell (each holds its 2 states); energy
    bins are 3 clusters of 16/3 states ordered in energy, labelled by their [lowest, highest] ε − ε_F."""
    a = runs["kpoint"].anisotropy
    assert a.bins.n_bins == 8
    assert sorted(np.bincount(a.bins.of_state[0]).tolist()) == [2] * 8
    grid = {tuple(x) for x in np.array(np.meshgrid([0, 0.5], [0, 0.5], [0, 0.5])).reshape(3, -1).T}
    assert {tuple(x) for x in a.bins.labels} == grid
    e = runs["energy"]
    a = e.anisotropy
    assert sorted(np.bincount(a.bins.of_state[0]).tolist()) == [5, 5, 6]
    assert np.all(a.bins.labels[:-1, 1] <= a.bins.labels[1:, 0])
    energies = e.bands[0]["energies"] - e.fermi.weights
    for i in range(3):
        sel = energies[a.bins.of_state[0] == i]
        assert a.bins.labels[i].tolist() == pytest.approx([sel.min(), sel.max()], abs=1e-12)


def test_no_bins_by_default_and_bad_kind():
    """No /anisotropy by default; an unknown kind and k-point bins with two supercell K-points are refused."""
    res = run_bins("none", n_conf=4)
    assert res.anisotropy is None
    with pytest.raises(InputError, match="anisotropy_bins"):
        run_bins("orbital", n_conf=4)
    with pytest.raises(InputError, match="'kpoint' needs one supercell K-point"):
        run_bins("kpoint", kpoints=((0, 0, 0), (0.5, 0, 0)), n_conf=4)


@pytest.mark.mpi(ranks=2)
def test_binned_coupling_two_ranks_bit_identical_to_one():
    """Two K-points × 4 blocks over 2 ranks: W_ij(m), its error and the weights equal the serial run
    (on rank 0, the one that writes them; the other rank holds none)."""
    from spia_mpi.parallel.mpi import world
    comm = world()
    kp = ((0, 0, 0), (0.5, 0, 0))
    run = run_bins("band", comm=comm, kpoints=kp, n_conf=8)
    ser = run_bins("band", comm=None, kpoints=kp, n_conf=8)
    assert (run.anisotropy is None) == (comm.rank != 0)
    par = comm.bcast(run.anisotropy, root=0)
    for name in ("w_ij_m", "w_ij_m_error", "weights", "n_bin"):
        assert np.array_equal(getattr(par, name), getattr(ser.anisotropy, name)), name
    assert all(np.array_equal(x, y) for x, y in zip(par.bins.of_state, ser.anisotropy.bins.of_state))


def test_run_writes_anisotropy_and_gap_reads_it(tmp_path, spia_cli, small_run):
    """`run` with spia.anisotropy_bins = 'energy' (2 clusters) writes /anisotropy (units on every dataset,
    Σ w W w = /lambda/lambda_m); `gap --anisotropic results.h5` on 2 ranks solves the isotropic part for
    that λ (T_c = the run's /eliashberg/tc_K) and T_c^aniso ≥ T_c^iso; `tc --anisotropic` gives the same
    T_c^aniso."""
    import h5py
    toml = small_run.toml.replace("[spia]\n", "[spia]\nanisotropy_bins = 'energy'\nanisotropy_n_bins = 2\n")
    (tmp_path / "in.toml").write_text(toml.format(out="res.h5", resolvent="dense"))
    r = spia_cli(["run", tmp_path / "in.toml"], ranks=2)
    assert r.returncode == 0, r
    res = tmp_path / "res.h5"
    with h5py.File(res, "r") as h:
        g = h["anisotropy"]
        assert g.attrs["kind"] == "energy" and g.attrs["n_bins"] == 2
        for name in g:
            assert "units" in g[name].attrs, name
        W, w, lam = g["w_ij_m"][0], g["weights"][0], h["lambda/lambda_m"][0]
        assert np.allclose(np.einsum("i,ijm,j->m", w, W, w), lam, rtol=1e-12, atol=0)
        assert g["bin_of_state"].shape == (h["bands/energies_eV"].shape[0],)
        tc_run = h["eliashberg/tc_K"][0, 0]
    out = spia_cli(["gap", "--anisotropic", res, "--mustar", 0.1, "--fractions", "0.3,0.9", "--n-omega", 50,
                    "--output", tmp_path / "g.h5", "--json"], ranks=2)
    assert out.returncode == 0, out
    o = json.loads(out.stdout)
    s = o["states"][0]
    assert s["tc_K"] == pytest.approx(tc_run, rel=1e-7)
    assert s["tc_aniso_K"] >= s["tc_iso_K"] * (1 - 1e-9)
    assert o["bins"] == "energy"
    t = spia_cli(["tc", "--lambda", res, "--mustar", 0.1, "--anisotropic", "--json"])
    assert t.returncode == 0, t
    ta = json.loads(t.stdout)["anisotropic"][0]
    assert ta["tc_aniso_K"] == pytest.approx(s["tc_aniso_K"], rel=1e-9) and ta["n_bins"] == 2
    r = spia_cli(["gap", "--anisotropic", tmp_path / "g.h5", "--output", tmp_path / "x.h5"])
    assert r.returncode == 2 and "expected 'results'" in r.stderr, r
