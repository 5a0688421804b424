"""Checkpoint task store: atomic, verified, refuses foreign runs."""
import numpy as np
import pytest

from spia_mpi.io.checkpoint import TaskStore, fingerprint
from spia_mpi.errors import InputError


def test_roundtrip_and_corruption_detected(tmp_path):
    fp = fingerprint({"model": "holstein", "g": 0.1, "pos": np.arange(6.0)})
    store = TaskStore.open(tmp_path / "ck", 5, fp)
    g = (np.arange(8.0) + 1j).reshape(2, 2, 2)
    store.save(3, g=g)
    assert store.finished() == [3]
    back = store.load(3)
    assert np.array_equal(back["g"], g)
    # flip bytes in the middle of the file: checksum or zip CRC must catch it
    p = store.path(3)
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    assert store.load(3) is None
    assert store.finished() == []          # the corrupt file was removed
    store.path(1).write_bytes(b"truncated")
    assert store.load(1) is None


def test_foreign_checkpoint_refused(tmp_path):
    TaskStore.open(tmp_path / "ck", 5, fingerprint({"a": 1}))
    with pytest.raises(InputError, match="different run"):
        TaskStore.open(tmp_path / "ck", 5, fingerprint({"a": 2}))
    with pytest.raises(InputError, match="different run"):
        TaskStore.open(tmp_path / "ck", 6, fingerprint({"a": 1}))


def test_fingerprint_sensitive_to_array_content():
    a = np.zeros(4)
    b = a.copy()
    b[2] = 1e-300
    assert fingerprint({"x": a}) != fingerprint({"x": b})
    assert fingerprint({"x": a, "y": 1}) == fingerprint({"y": 1, "x": a.copy()})
