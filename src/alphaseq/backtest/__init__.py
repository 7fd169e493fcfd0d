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
    "backtest",
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
