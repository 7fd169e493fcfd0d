"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A reader (or a crash, or a full disk) never sees a half-written file under its final
name: either the old content or the complete new one.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; the folder is created when absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON atomically (numpy scalars and dates allowed)."""
    return atomic_write_text(path, json.dumps(value, indent=2, default=json_default))


def atomic_write_parquet(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (without its index) atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return atomic_write_bytes(path, buffer.getvalue())


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars and arrays, dates as ``YYYY-MM-DD``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)[:10]
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
