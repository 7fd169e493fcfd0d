"""alphaseq: attention-LSTM forecasts for stock panels, constrained portfolios and
leak-free walk-forward backtests."""

from alphaseq.data import Panel, load_panel
from alphaseq.errors import AlphaseqError, ConfigError, DataError

__version__ = "0.1.0"

__all__ = ["AlphaseqError", "ConfigError", "DataError", "Panel", "__version__", "load_panel"]
