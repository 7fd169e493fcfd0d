"""Safe, versioned checkpoint files.

Layout of a file::

    ALPHASEQ-CHECKPOINT\\n
    <format version> <sha256 of payload> <payload length>\\n
    <payload: torch.save of plain containers and tensors>

Writes are atomic (a temporary file in the same folder, fsync, then rename), so a
crash never leaves a half-written checkpoint under the final name. Loading checks
the header, the length (truncation) and the SHA-256 (corruption) before anything is
deserialised, and deserialises with ``torch.load(weights_only=True)``, which refuses
arbitrary pickled objects: a checkpoint can never run code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import pickle
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alphaseq._atomic import atomic_write_bytes
from alphaseq.errors import AlphaseqError

MAGIC = b"ALPHASEQ-CHECKPOINT\n"
FORMAT_VERSION = 1


class CheckpointError(AlphaseqError):
    """A checkpoint that is missing, corrupted, truncated, unsafe or does not fit."""


def library_versions() -> dict[str, str]:
    """Versions worth recording next to a trained model."""
    from alphaseq import __version__

    return {
        "alphaseq": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Write ``payload`` atomically to ``path``; return the payload's SHA-256.

    Parameters
    ----------
    path : str or Path
        Destination file; its folder is created if needed.
    payload : dict
        Plain containers (dict, list, tuple, str, int, float, bool, None) and tensors
        only, so that it loads with ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dict(payload)
    body.setdefault("format_version", FORMAT_VERSION)
    body.setdefault("versions", library_versions())
    body.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    buffer = io.BytesIO()
    torch.save(body, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    header = MAGIC + f"{FORMAT_VERSION} {digest} {len(data)}\n".encode()
    atomic_write_bytes(path, header + data)
    return digest


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify and read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        When the file is missing, not a checkpoint, of a newer format, truncated,
        corrupted (hash mismatch) or holds anything but plain data and tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: '{path}'")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise CheckpointError(
            f"'{path}' is not an alphaseq checkpoint (no '{MAGIC.decode().strip()}' header)"
        )
    header_end = raw.find(b"\n", len(MAGIC))
    try:
        version_text, digest, length_text = raw[len(MAGIC) : header_end].decode().split(" ")
        version, length = int(version_text), int(length_text)
    except ValueError:
        raise CheckpointError(f"'{path}' has a damaged checkpoint header") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' uses checkpoint format {version}; this alphaseq reads up to "
            f"{FORMAT_VERSION} (upgrade alphaseq)"
        )
    data = raw[header_end + 1 :]
    if len(data) != length:
        raise CheckpointError(
            f"'{path}' is truncated or padded: {len(data)} payload bytes, expected {length}"
        )
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"'{path}' is corrupted: its SHA-256 does not match its header")
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"'{path}' was refused: it holds objects other than plain data and tensors "
            f"({first[:200]})"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"'{path}' does not hold a checkpoint dictionary")
    return payload
