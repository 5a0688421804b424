"""`sample … --out` and `gap --output` never replace an existing file unless given --force."""
import numpy as np

from spia_mpi.eliashberg import linearised as el


def test_sample_refuses_to_overwrite_without_force(tmp_path, spia_cli):
    """An existing --out is refused before any work (exit 2, one clean message naming the option
    and the file, the file untouched); with --force it is replaced by a configurations file."""
    from spia_mpi.ions.configurations import read_h5
    out = tmp_path / "c.h5"
    out.write_text("precious")
    args = ["sample", "harmonic", "--structure", "li2mgh16-solid", "--einstein", 0.15, "--temperature", 290,
            "--beads", 2, "--samples", 2, "--out", out]
    r = spia_cli(args)
    assert r.returncode == 2 and f"--out {out} exists" in r.stderr and "--force" in r.stderr, r
    assert "Traceback" not in r.stderr and out.read_text() == "precious"
    r = spia_cli(args + ["--force"])
    assert r.returncode == 0, r
    assert read_h5(out).positions.shape == (2, 2, 38, 3)


def test_gap_refuses_to_overwrite_without_force(tmp_path, spia_cli):
    lam = el.einstein_lambda(1.5, 0.05, 100.0, 64)
    f = tmp_path / "lam.dat"
    f.write_text("# lambda(m)\n" + "\n".join(f"{x:.15e}" for x in lam) + "\n")
    out = tmp_path / "g.h5"
    out.write_text("precious")
    args = ["gap", "--lambda", f, "--temperature", 100, "--mustar", 0.1, "--fractions", "0.5", "--n-omega", 50,
            "--output", out]
    r = spia_cli(args)
    assert r.returncode == 2 and f"--output {out} exists" in r.stderr and "--force" in r.stderr, r
    assert out.read_text() == "precious"
    r = spia_cli(args + ["--force"])
    assert r.returncode == 0, r
    import h5py
    with h5py.File(out, "r") as h:
        assert h.attrs["spia_mpi_file"] == "gap" and np.isfinite(h["mustar_0/delta0_eV"][...]).all()
