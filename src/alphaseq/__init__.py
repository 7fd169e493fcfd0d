"""alphaseq: attention-LSTM forecasts for stock panels, constrained portfolios and
leak-free walk-forward backtests."""

from __future__ import annotations

from alphaseq._lazy import lazy_exports
from alphaseq.errors import AlphaseqError, ConfigError, DataError

__version__ = "0.1.0"

#: Public names and the module that defines each, imported on first use: ``import
#: alphaseq`` (and so the CLI's ``--help`` and config errors) stays fast.
_LAZY = {
    "Forecaster": "alphaseq.forecaster",
    "Panel": "alphaseq.data",
    "PortfolioBacktest": "alphaseq.backtest.frame",
    "RunResults": "alphaseq.experiment.results",
    # The subpackage itself, which is callable: alphaseq.backtest(prices, weights).
    "backtest": "alphaseq.backtest",
    "backtest_frame": "alphaseq.backtest.frame",
    "load_panel": "alphaseq.data",
    "load_run": "alphaseq.experiment.results",
    "run": "alphaseq.experiment.results",
    # Subpackages the Python API reads through: alphaseq.portfolio.TopK,
    # alphaseq.report.build_report, with nothing imported but alphaseq.
    "portfolio": "alphaseq.portfolio",
    "report": "alphaseq.report",
}

__all__ = ["AlphaseqError", "ConfigError", "DataError", "__version__", *_LAZY]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
