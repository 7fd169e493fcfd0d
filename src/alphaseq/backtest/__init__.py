"""Backtests of target weights (drift, linear costs, no look-ahead) and their metrics."""

from alphaseq.backtest.engine import (
    BacktestResult,
    backtest,
    buy_and_hold,
    equal_weight_targets,
    month_end_rows,
    tradable,
)
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
)
from alphaseq.backtest.timing import TIMING_KEYS, timing_backtest

__all__ = [
    "PERFORMANCE_KEYS",
    "TIMING_KEYS",
    "BacktestResult",
    "backtest",
    "buy_and_hold",
    "deflated_sharpe_ratio",
    "equal_weight_targets",
    "forecast_metrics",
    "month_end_rows",
    "per_date_ic",
    "performance_metrics",
    "probabilistic_sharpe_ratio",
    "sharpe_difference_test",
    "significance_report",
    "timing_backtest",
    "tradable",
]
