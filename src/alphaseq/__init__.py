"""alphaseq: attention-LSTM forecasts for stock panels, constrained portfolios and
leak-free walk-forward backtests."""

from __future__ import annotations

from alphaseq._lazy import lazy_exports
from alphaseq.errors import AlphaseqError, ConfigError, DataError

__version__ = "0.1.0"

#: Public names and the module that defines each, imported on first use: ``import
#: alphaseq`` (and so the CLI's ``--help`` and config errors) stays fast.
_LAZY = {
    "Panel": "alphaseq.data",
    "load_panel": "alphaseq.data",
}

__all__ = ["AlphaseqError", "ConfigError", "DataError", "__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
