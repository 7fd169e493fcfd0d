"""Backtests of pandas tables: wide prices and target weights in, labelled results out.

The pandas face of :func:`alphaseq.backtest.engine.backtest` (the one engine: same
timing, drift and cost rules). ``alphaseq.backtest(prices, weights)`` calls
:func:`backtest_frame`. Every input is checked here first, so a mistake is reported
with the date and ticker it concerns, not with a row or column number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alphaseq.backtest.engine import WEIGHT_SUM_TOLERANCE, BacktestResult
from alphaseq.backtest.engine import backtest as engine_backtest
from alphaseq.backtest.metrics import performance_metrics
from alphaseq.errors import ConfigError, DataError

__all__ = ["PortfolioBacktest", "backtest_frame", "check_date_frame", "check_price_frame"]


def _day(stamp: Any) -> str:
    stamp = pd.Timestamp(stamp)
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


def check_date_frame(frame: Any, what: str) -> pd.DataFrame:
    """Check that ``frame`` is a non-empty wide table on strictly increasing dates.

    Parameters
    ----------
    frame : pandas.DataFrame
        Dates (a :class:`pandas.DatetimeIndex`) by tickers.
    what : str
        Its name in messages (``prices``, ``weights``, ...).

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself.

    Raises
    ------
    DataError
        When it is not a DataFrame, is empty, or its index is not dates, has NaT, a
        duplicate or unsorted dates, or its columns repeat a ticker.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"{what} must be a pandas DataFrame (dates x tickers), got {type(frame).__name__}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataError(f"{what} is empty (shape {frame.shape}): it needs dates and tickers")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"{what} must be indexed by dates (a DatetimeIndex), got a "
            f"{type(frame.index).__name__} starting with {frame.index[0]!r}: "
            f"use {what}.index = pandas.to_datetime({what}.index)"
        )
    if frame.index.hasnans:
        raise DataError(f"{what} has a missing date (NaT) in its index")
    duplicated = frame.index[frame.index.duplicated()]
    if len(duplicated):
        raise DataError(f"{what} has the date {_day(duplicated[0])} more than once")
    if not frame.index.is_monotonic_increasing:
        position = int(np.flatnonzero(np.diff(frame.index.asi8) < 0)[0])
        raise DataError(
            f"{what} dates are not sorted: {_day(frame.index[position + 1])} comes after "
            f"{_day(frame.index[position])} (use {what}.sort_index())"
        )
    columns = frame.columns[frame.columns.duplicated()]
    if len(columns):
        raise DataError(f"{what} has the ticker column {columns[0]!r} more than once")
    return frame


def _numbers(frame: pd.DataFrame, what: str) -> np.ndarray:
    """The values as float64, naming the first column that is not numeric."""
    for column in frame.columns:
        if not (
            pd.api.types.is_numeric_dtype(frame[column])
            and not pd.api.types.is_bool_dtype(frame[column])
        ):
            raise DataError(
                f"{what} column {column!r} is not numeric (dtype {frame[column].dtype})"
            )
    return frame.to_numpy(dtype=np.float64)


def check_price_frame(prices: Any) -> pd.DataFrame:
    """Check a wide table of close prices and return it.

    Parameters
    ----------
    prices : pandas.DataFrame
        Close prices, a :class:`pandas.DatetimeIndex` of strictly increasing dates by
        one column per ticker; NaN where a ticker does not trade.

    Returns
    -------
    pandas.DataFrame
        ``prices`` itself (not copied).

    Raises
    ------
    DataError
        When it is not such a table, or a price is infinite, zero or negative (the
        message names the date and ticker).
    """
    prices = check_date_frame(prices, "prices")
    values = _numbers(prices, "prices")
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (values <= 0)
    if bad.any():
        t, i = np.argwhere(bad)[0]
        raise DataError(
            f"prices of {prices.columns[i]!r} on {_day(prices.index[t])} is {values[t, i]}; "
            "prices must be positive (NaN marks a day without a price)"
        )
    return prices


def _check_weights(weights: Any, prices: pd.DataFrame) -> pd.DataFrame:
    """The targets on ``prices``' columns (missing tickers 0), every rule checked."""
    weights = check_date_frame(weights, "weights")
    unknown = [c for c in weights.columns if c not in prices.columns]
    if unknown:
        raise DataError(
            f"weights name {len(unknown)} ticker(s) that prices lack: {unknown[:10]} "
            f"(prices has {len(prices.columns)} tickers, e.g. {list(prices.columns[:5])})"
        )
    outside = ~weights.index.isin(prices.index)
    if outside.any():
        first = weights.index[outside][0]
        raise DataError(
            f"weights date {_day(first)} is not a date of prices ({outside.sum()} such "
            f"date(s)): rebalance on trading dates, between {_day(prices.index[0])} and "
            f"{_day(prices.index[-1])}"
        )
    values = _numbers(weights, "weights")
    if not np.isfinite(values).all():
        t, i = np.argwhere(~np.isfinite(values))[0]
        raise DataError(
            f"weight of {weights.columns[i]!r} on {_day(weights.index[t])} is {values[t, i]}; "
            "weights must be finite numbers (0 for no position)"
        )
    totals = values.sum(axis=1)
    over = totals > 1.0 + WEIGHT_SUM_TOLERANCE
    if over.any():
        t = int(np.flatnonzero(over)[0])
        raise DataError(
            f"weights on {_day(weights.index[t])} sum to {totals[t]:.12g} > 1; the rest of "
            "1 is held in cash and borrowing is not modelled"
        )
    close = prices.loc[weights.index, weights.columns].to_numpy(dtype=np.float64)
    blocked = (values != 0) & ~np.isfinite(close)
    if blocked.any():
        t, i = np.argwhere(blocked)[0]
        raise DataError(
            f"weight {values[t, i]:.6g} on {weights.columns[i]!r} on {_day(weights.index[t])}, "
            "which has no price that day and cannot be traded (give it weight 0)"
        )
    return weights.reindex(columns=prices.columns, fill_value=0.0)


def _check_cost(cost_bps: Any) -> float:
    if (
        isinstance(cost_bps, bool)
        or not isinstance(cost_bps, int | float | np.integer | np.floating)
        or not math.isfinite(cost_bps)
        or cost_bps < 0
    ):
        raise ConfigError(f"cost_bps must be a finite number >= 0 (basis points), got {cost_bps!r}")
    return float(cost_bps)


def _end_row(prices: pd.DataFrame, end: Any, last_rebalance: pd.Timestamp) -> int:
    if end is None:
        return len(prices.index) - 1
    try:
        stamp = pd.Timestamp(end)
    except (TypeError, ValueError):
        raise ConfigError(f"end must be a date, got {end!r}") from None
    row = int(prices.index.searchsorted(stamp, side="right")) - 1
    if row < 0 or prices.index[row] < last_rebalance:
        raise ConfigError(
            f"end={_day(stamp)} is before the last rebalance date {_day(last_rebalance)}"
        )
    return row


@dataclass(frozen=True, eq=False)
class PortfolioBacktest:
    """The result of :func:`backtest_frame`, labelled by dates and tickers.

    Attributes
    ----------
    returns : pandas.Series
        Net daily returns ``net_return`` from the first rebalance date on (the first one
        is minus the cost of the initial buy).
    gross_returns : pandas.Series
        Daily returns before costs.
    weights : pandas.DataFrame
        Weights held right after each rebalance (rebalance dates x tickers).
    drifted_weights : pandas.DataFrame
        Weights the portfolio drifted to just before each rebalance (zeros at the first).
    turnover : pandas.Series
        One-way turnover ``1/2 sum_i |w_after_i - w_before_i|`` of each rebalance.
    costs : pandas.Series
        Cost of each rebalance, as a fraction of the NAV before the trade.
    equity : pandas.Series
        NAV after costs at each close, starting from 1 before the first trade.
    cost_bps : float
        The cost rate used, in basis points per unit traded.
    engine_result : BacktestResult
        The engine's own arrays (row-indexed), for anything not labelled here.
    """

    returns: pd.Series
    gross_returns: pd.Series
    weights: pd.DataFrame
    drifted_weights: pd.DataFrame
    turnover: pd.Series
    costs: pd.Series
    equity: pd.Series
    cost_bps: float
    engine_result: BacktestResult

    def metrics(
        self, benchmark: pd.Series | None = None, *, periods_per_year: int = 252
    ) -> dict[str, float | str | None]:
        """Performance figures of the net returns (see
        :func:`alphaseq.backtest.metrics.performance_metrics`).

        Parameters
        ----------
        benchmark : pandas.Series, optional
            Daily benchmark returns for the information ratio.
        periods_per_year : int, default=252
            Periods per year used to annualise.

        Returns
        -------
        dict
            ``total_return``, ``ann_return``, ``sharpe``, ``max_drawdown``, ... and
            ``turnover``: the mean one-way turnover per rebalance after the initial buy.
        """
        return performance_metrics(
            self.returns,
            benchmark=benchmark,
            turnover=self.engine_result.average_turnover,
            periods_per_year=periods_per_year,
        )

    def __repr__(self) -> str:
        first, last = self.returns.index[0], self.returns.index[-1]
        total = float(self.equity.iloc[-1]) - 1.0
        mean_turnover = self.engine_result.average_turnover
        turnover = "n/a" if math.isnan(mean_turnover) else f"{mean_turnover:.3f}"
        return (
            f"PortfolioBacktest({_day(first)}..{_day(last)}, {len(self.returns)} days, "
            f"{self.weights.shape[1]} tickers, {len(self.weights)} rebalances, "
            f"total_return={total:+.2%}, mean turnover={turnover}, cost_bps={self.cost_bps:g})"
        )


def backtest_frame(
    prices: pd.DataFrame,
    weights: pd.DataFrame,
    cost_bps: float = 10.0,
    *,
    end: str | pd.Timestamp | None = None,
) -> PortfolioBacktest:
    """Backtest target weights given as pandas tables; also ``alphaseq.backtest(...)``.

    Weights of a date are traded at that date's close and earn returns from the next
    trading date on; between rebalances the positions drift with prices; each trade
    costs ``cost_bps`` basis points of the amount traded. A ticker without a price on a
    day keeps its last close. See :mod:`alphaseq.backtest.engine`, which computes it.

    Parameters
    ----------
    prices : pandas.DataFrame
        Close prices: strictly increasing dates (a :class:`pandas.DatetimeIndex`) by one
        column per ticker; NaN where a ticker does not trade.
    weights : pandas.DataFrame
        Target weights (fractions of NAV) at each rebalance date, dates by tickers. Every
        date must be a date of ``prices``, every ticker one of its columns; tickers left
        out get weight 0. A row sums to at most 1 (the rest is cash); a non-zero weight
        needs a price that day.
    cost_bps : float, default=10.0
        Cost per unit of notional traded, in basis points.
    end : date-like, optional
        Last date simulated (default: the last date of ``prices``).

    Returns
    -------
    PortfolioBacktest
        Daily returns and equity, and the weights, turnover and costs of each rebalance.

    Raises
    ------
    DataError
        For a bad table: not a DataFrame, dates not a sorted DatetimeIndex without
        duplicates, a non-positive price, an unknown ticker, a weight date that is not a
        price date, a non-finite weight, weights summing to more than 1, or a weight on
        a ticker without a price that day.
    ConfigError
        For a negative or non-finite ``cost_bps`` or an ``end`` before the last rebalance.

    Examples
    --------
    >>> import alphaseq
    >>> result = alphaseq.backtest(prices, weights, cost_bps=5)  # doctest: +SKIP
    >>> result.metrics()["sharpe"]  # doctest: +SKIP
    """
    prices = check_price_frame(prices)
    targets = _check_weights(weights, prices)
    cost = _check_cost(cost_bps)
    end_row = _end_row(prices, end, targets.index[-1])
    rows = prices.index.get_indexer(targets.index)
    try:
        result = engine_backtest(
            prices.to_numpy(dtype=np.float64),
            rows,
            targets.to_numpy(dtype=np.float64),
            cost_bps=cost,
            end_row=end_row,
        )
    except ValueError as error:  # every case is checked above; never a bare traceback
        raise DataError(f"the backtest refused its inputs: {error}") from None
    days = pd.DatetimeIndex(prices.index[result.rows], name="date")
    rebalances = pd.DatetimeIndex(prices.index[result.rebalance_rows], name="date")
    tickers = prices.columns

    def daily(values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=days, name=name)

    def per_rebalance(values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=rebalances, name=name)

    return PortfolioBacktest(
        returns=daily(result.returns, "net_return"),
        gross_returns=daily(result.gross_returns, "gross_return"),
        weights=pd.DataFrame(result.weights_after, index=rebalances, columns=tickers),
        drifted_weights=pd.DataFrame(result.weights_before, index=rebalances, columns=tickers),
        turnover=per_rebalance(result.turnover, "turnover"),
        costs=per_rebalance(result.costs, "cost"),
        equity=daily(result.nav, "equity"),
        cost_bps=cost,
        engine_result=result,
    )
