"""alphaseq: attention-LSTM forecasts for stock panels, constrained portfolios and
leak-free walk-forward backtests."""

from __future__ import annotations

import importlib
from typing import Any

from alphaseq.errors import AlphaseqError, ConfigError, DataError

__version__ = "0.1.0"

#: Public names and the module that defines each. They are imported on first use, so
#: ``import alphaseq`` (and so the CLI's ``--help`` and config errors) stays fast: pandas,
#: torch and the optimisers load only when something needs them.
_LAZY = {
    "Panel": "alphaseq.data",
    "load_panel": "alphaseq.data",
}

__all__ = ["AlphaseqError", "ConfigError", "DataError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alphaseq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
