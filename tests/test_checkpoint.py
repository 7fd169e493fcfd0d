"""Checkpoint files: atomic, verified, and never a way to run code."""

from __future__ import annotations

import hashlib
import io
import os
import pickle

import pytest
import torch

from alphaseq.training.checkpoint import (
    MAGIC,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def payload() -> dict:
    return {"kind": "test", "weights": torch.arange(6.0).reshape(2, 3), "meta": {"a": [1, 2]}}


def test_round_trip_records_versions(tmp_path):
    path = tmp_path / "sub" / "model.ckpt"
    digest = save_checkpoint(path, payload())
    state = load_checkpoint(path)
    assert torch.equal(state["weights"], payload()["weights"])
    assert state["meta"] == {"a": [1, 2]}
    assert state["versions"]["torch"] == torch.__version__
    assert "alphaseq" in state["versions"] and state["format_version"] == 1
    assert digest in path.read_bytes()[:200].decode(errors="ignore")
    # no temporary file left behind
    assert [p.name for p in path.parent.iterdir()] == ["model.ckpt"]


def test_corrupted_file_is_refused(tmp_path):
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, payload())
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, payload())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_foreign_files_are_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save(payload(), plain)
    with pytest.raises(CheckpointError, match="not an alphaseq checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, payload())
    raw = path.read_bytes()
    path.write_bytes(raw.replace(MAGIC + b"1 ", MAGIC + b"9 ", 1))
    with pytest.raises(CheckpointError, match="format 9"):
        load_checkpoint(path)


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _forge(path, obj) -> None:
    """A file with a valid header and hash around a malicious payload."""
    buffer = io.BytesIO()
    torch.save({"kind": "forecaster", "evil": obj}, buffer, pickle_protocol=2)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path.write_bytes(MAGIC + f"1 {digest} {len(data)}\n".encode() + data)


def test_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    _forge(path, _Exploit(str(marker)))
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_raw_pickle_with_header_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Exploit(str(marker)))
    digest = hashlib.sha256(data).hexdigest()
    path = tmp_path / "evil.ckpt"
    path.write_bytes(MAGIC + f"1 {digest} {len(data)}\n".encode() + data)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()


def test_crash_during_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    save_checkpoint(path, payload())
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"kind": "newer", "weights": torch.zeros(3)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]
