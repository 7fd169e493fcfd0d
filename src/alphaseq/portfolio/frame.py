"""Constructors on pandas tables: wide prices and forecasts in, wide weights out.

What :meth:`PortfolioConstructor.fit` runs. The weights come from the very per-date
logic the experiments use (:func:`~alphaseq.portfolio.constructors.make_policy` driven
by :func:`alphaseq.backtest.engine.backtest`), so a constructor sees the weights the
portfolio drifted to, and the result backtests with ``alphaseq.backtest(prices,
weights)`` to the same returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alphaseq.backtest.engine import backtest as engine_backtest
from alphaseq.backtest.engine import month_end_rows
from alphaseq.backtest.frame import check_date_frame, check_price_frame
from alphaseq.errors import ConfigError, DataError

if TYPE_CHECKING:
    from alphaseq.portfolio.constructors import PortfolioConstructor

__all__ = ["constructor_weights"]


def _day(stamp: Any) -> str:
    return pd.Timestamp(stamp).date().isoformat()


def _forecast_table(forecasts: Any, prices: pd.DataFrame) -> pd.DataFrame | None:
    """Wide forecasts on ``prices``' tickers (NaN: no forecast); tidy input is spread."""
    if forecasts is None:
        return None
    if isinstance(forecasts, pd.DataFrame) and {"date", "ticker", "prediction"} <= set(
        forecasts.columns
    ):
        duplicated = forecasts.duplicated(["date", "ticker"])
        if duplicated.any():
            row = forecasts[duplicated].iloc[0]
            raise DataError(
                f"forecasts have {row['ticker']!r} on {_day(row['date'])} more than once"
            )
        forecasts = forecasts.pivot(index="date", columns="ticker", values="prediction")
        forecasts.index = pd.DatetimeIndex(forecasts.index, name="date")
    forecasts = check_date_frame(forecasts, "forecasts")
    unknown = [c for c in forecasts.columns if c not in prices.columns]
    if unknown:
        raise DataError(f"forecasts name {len(unknown)} ticker(s) that prices lack: {unknown[:10]}")
    values = forecasts.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    raw = forecasts.to_numpy()
    bad = np.isinf(values) | (np.isnan(values) & pd.notna(raw))
    if bad.any():
        t, i = np.argwhere(bad)[0]
        raise DataError(
            f"forecast of {forecasts.columns[i]!r} on {_day(forecasts.index[t])} is "
            f"{raw[t, i]!r}; forecasts must be finite numbers (NaN: no forecast)"
        )
    table = pd.DataFrame(values, index=forecasts.index, columns=forecasts.columns)
    return table.reindex(columns=prices.columns)


def _rebalance_dates(
    rebalance: Any, prices: pd.DataFrame, forecasts: pd.DataFrame | None
) -> pd.DatetimeIndex:
    if rebalance is None:
        if forecasts is not None:
            return forecasts.index
        rebalance = "month_end"
    if isinstance(rebalance, str):
        if rebalance != "month_end":
            raise ConfigError(
                f"rebalance must be None, 'month_end' or a list of dates, got {rebalance!r}"
            )
        # Month ends within the forecasts' span: no forecast is carried beyond its last.
        first, last = 0, len(prices.index) - 1
        if forecasts is not None:
            first = int(prices.index.searchsorted(forecasts.index[0]))
            last = int(prices.index.searchsorted(forecasts.index[-1], side="right")) - 1
        if first > last:
            raise DataError("the forecasts' dates lie outside the dates of prices")
        return prices.index[month_end_rows(prices.index, first, last)]
    if not isinstance(rebalance, Sequence | pd.Index | np.ndarray):
        raise ConfigError(
            f"rebalance must be None, 'month_end' or a list of dates, got {rebalance!r}"
        )
    try:
        dates = pd.DatetimeIndex(rebalance)
    except (TypeError, ValueError):
        raise ConfigError(f"rebalance dates are not dates: {list(rebalance)[:5]}") from None
    return check_date_frame(pd.DataFrame(index=dates, columns=["_"]), "rebalance dates").index


def constructor_weights(
    constructor: PortfolioConstructor,
    prices: pd.DataFrame,
    forecasts: pd.DataFrame | None = None,
    *,
    rebalance: str | Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Target weights of ``constructor`` at each rebalance date, as a wide table.

    Parameters
    ----------
    constructor : PortfolioConstructor
        Any constructor (:class:`~alphaseq.portfolio.constructors.TopK`, ...).
    prices : pandas.DataFrame
        Close prices, dates by tickers (NaN: no price); risk models read the returns of
        the rows up to each rebalance date only.
    forecasts : pandas.DataFrame, optional
        Scores, dates by tickers (NaN: no forecast), or tidy ``date, ticker,
        prediction`` (as :meth:`alphaseq.load_run` gives). Needed by constructors that
        use scores; at a rebalance the last forecast row at or before its date is used.
    rebalance : None, "month_end" or sequence of dates
        When to rebalance: the forecasts' dates (default; month ends without
        forecasts), the last trading date of each month within the forecasts' span, or
        these dates. Every date must be a date of ``prices``.

    Returns
    -------
    pandas.DataFrame
        Rebalance dates by ``prices``' tickers: the weights right after each trade.

    Raises
    ------
    DataError, ConfigError
        For bad tables (naming the date and ticker) or a bad ``rebalance``.
    """
    from alphaseq.portfolio.constructors import make_policy

    prices = check_price_frame(prices)
    table = _forecast_table(forecasts, prices)
    if table is None and constructor.uses_scores:
        raise ConfigError(f"{type(constructor).__name__} ranks forecasts: pass forecasts=")
    dates = _rebalance_dates(rebalance, prices, table)
    outside = ~dates.isin(prices.index)
    if outside.any():
        raise DataError(
            f"rebalance date {_day(dates[outside][0])} is not a date of prices "
            f"({_day(prices.index[0])}..{_day(prices.index[-1])})"
        )
    if table is None:
        scores = np.full((len(dates), prices.shape[1]), np.nan)
    else:
        scores = table.reindex(dates, method="ffill").to_numpy(dtype=np.float64)
    close = prices.to_numpy(dtype=np.float64)
    rows = prices.index.get_indexer(dates)
    policy = make_policy(constructor, close, scores)
    # Weights do not depend on costs (they scale the NAV, not its split): run free.
    result = engine_backtest(close, rows, policy, cost_bps=0.0, end_row=int(rows[-1]))
    return pd.DataFrame(
        result.weights_after, index=pd.DatetimeIndex(dates, name="date"), columns=prices.columns
    )
