"""Backtests of target weights (drift, linear costs, no look-ahead) and their metrics.

This package is also callable: ``alphaseq.backtest(prices, weights, cost_bps=10.0)``
backtests wide pandas tables (see :func:`alphaseq.backtest.frame.backtest_frame`), while
``alphaseq.backtest.backtest`` stays the array engine
(:func:`alphaseq.backtest.engine.backtest`).
"""

import sys
import types
from typing import Any

from alphaseq.backtest.engine import (
    BacktestResult,
    backtest,
    buy_and_hold,
    equal_weight_targets,
    month_end_rows,
    tradable,
)
from alphaseq.backtest.frame import PortfolioBacktest, backtest_frame
from alphaseq.backtest.metrics import (
    PERFORMANCE_KEYS,
    forecast_metrics,
    per_date_ic,
    performance_metrics,
)
from alphaseq.backtest.significance import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_difference_test,
    significance_report,
    verdict_sentence,
    verdict_table,
    verdicts,
)
from alphaseq.backtest.tearsheet import (
    DISTRIBUTION_KEYS,
    DRAWDOWN_COLUMNS,
    RELATIVE_KEYS,
    drawdown_periods,
    relative_metrics,
    return_distribution,
    rolling_beta,
    rolling_volatility,
    yearly_returns,
)
from alphaseq.backtest.timing import TIMING_KEYS, timing_backtest

__all__ = [
    "DISTRIBUTION_KEYS",
    "DRAWDOWN_COLUMNS",
    "PERFORMANCE_KEYS",
    "RELATIVE_KEYS",
    "TIMING_KEYS",
    "BacktestResult",
    "PortfolioBacktest",
    "backtest",
    "backtest_frame",
    "buy_and_hold",
    "deflated_sharpe_ratio",
    "drawdown_periods",
    "equal_weight_targets",
    "forecast_metrics",
    "month_end_rows",
    "per_date_ic",
    "performance_metrics",
    "probabilistic_sharpe_ratio",
    "relative_metrics",
    "return_distribution",
    "rolling_beta",
    "rolling_volatility",
    "sharpe_difference_test",
    "significance_report",
    "timing_backtest",
    "tradable",
    "verdict_sentence",
    "verdict_table",
    "verdicts",
    "yearly_returns",
]


class _CallablePackage(types.ModuleType):
    """This package's module type: calling it runs :func:`backtest_frame`.

    ``import alphaseq.backtest.engine`` makes ``alphaseq.backtest`` the package itself
    (the import system sets that attribute), so the package, not a function shadowing
    it, has to be what users call.
    """

    def __call__(
        self, prices: Any, weights: Any, cost_bps: float = 10.0, **options: Any
    ) -> PortfolioBacktest:
        """Backtest wide pandas tables: see :func:`backtest_frame`."""
        return backtest_frame(prices, weights, cost_bps, **options)


# Documented: a module's __class__ may be set to a ModuleType subclass (Python >= 3.5).
sys.modules[__name__].__class__ = _CallablePackage
