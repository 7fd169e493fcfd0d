"""The backtest engine: target weights at rebalance dates -> daily net returns.

Timing (DESIGN rule 5). Weights decided with data up to the close of row ``t`` are
traded at that close and earn returns from ``t + 1`` on; the return *of* a rebalance
row still belongs to the holdings before the trade. Between rebalances positions drift
with prices and nothing is traded.

Accounting, in fractions of NAV:

* capital is 1, all in cash, just before the first rebalance trade;
* at a rebalance the drifted weights ``w_before`` are traded to ``w_after``; the amount
  traded is ``sum_i |w_after_i - w_before_i|`` and the cost ``cost_bps / 1e4`` times
  that amount, of the pre-trade NAV. Turnover is the one-way figure, half the amount
  traded (``1/2 sum_i |dw_i|``: a full switch of a fully invested book is 1; the first
  rebalance's turnover is the initial buy);
* ``w_after`` then applies to the NAV after costs; ``1 - sum(w_after)`` is cash earning 0.

Missing prices: a ticker without a close keeps its last close (its return is 0 that day
and the move is realised when it trades again). A ticker that stops trading is held at
its last close until the next rebalance, where it is sold at that price like any other
trade. Buying needs a price: a non-zero target on a ticker without a close on the
rebalance row is an error (use :func:`tradable` when building targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Slack allowed on ``sum(weights) <= 1`` for rounding in the strategy's arithmetic.
WEIGHT_SUM_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Daily returns and rebalance records of one backtest.

    Daily arrays are aligned with :attr:`rows`; rebalance arrays with
    :attr:`rebalance_rows`.

    Parameters
    ----------
    rows : numpy.ndarray
        Panel row indices from the first rebalance row to ``end_row`` inclusive, (D,).
    returns : numpy.ndarray
        Net daily returns ``nav[t] / nav[t - 1] - 1``, (D,). The first entry is minus the
        cost of the initial buy (capital 1 is held in cash just before it).
    gross_returns : numpy.ndarray
        Daily returns before costs, (D,); the first entry is 0.
    turnover : numpy.ndarray
        One-way turnover ``1/2 sum_i |w_after_i - w_before_i|`` at each rebalance, (R,).
    traded : numpy.ndarray
        Amount traded ``sum_i |w_after_i - w_before_i|`` at each rebalance (twice the
        turnover), the base of the costs, (R,).
    costs : numpy.ndarray
        Cost of each rebalance as a fraction of the pre-trade NAV, (R,).
    weights_before : numpy.ndarray
        Drifted weights just before each trade, (R, N); zeros at the first rebalance.
    weights_after : numpy.ndarray
        Target weights held right after each trade, (R, N).
    nav : numpy.ndarray
        Net asset value after costs at the close of each row, (D,); ``cumprod(1 + returns)``.
    rebalance_rows : numpy.ndarray
        Row index of each rebalance, (R,).
    """

    rows: np.ndarray
    returns: np.ndarray
    gross_returns: np.ndarray
    turnover: np.ndarray
    traded: np.ndarray
    costs: np.ndarray
    weights_before: np.ndarray
    weights_after: np.ndarray
    nav: np.ndarray
    rebalance_rows: np.ndarray

    @property
    def average_turnover(self) -> float:
        """Mean one-way turnover per rebalance, leaving out the initial buy.

        The initial buy is the same for every fully invested strategy and would dominate
        short backtests. NaN when there is only one rebalance.
        """
        return float(self.turnover[1:].mean()) if len(self.turnover) > 1 else float("nan")

    def to_series(self, dates: np.ndarray | pd.DatetimeIndex) -> pd.Series:
        """Net daily returns as a :class:`pandas.Series` indexed by ``dates[rows]``.

        Parameters
        ----------
        dates : array-like of datetime64
            The panel's trading dates, (T,).
        """
        index = pd.DatetimeIndex(np.asarray(dates)[self.rows], name="date")
        return pd.Series(self.returns, index=index, name="net_return")


def tradable(close: np.ndarray, row: int) -> np.ndarray:
    """Tickers that can be bought at the close of ``row``: those with a positive close.

    Parameters
    ----------
    close : numpy.ndarray
        Close prices (T, N), NaN where there is no price.
    row : int
        Row index of the rebalance.

    Returns
    -------
    numpy.ndarray
        Boolean mask, (N,).
    """
    prices = np.asarray(close)[row]
    with np.errstate(invalid="ignore"):
        return np.isfinite(prices) & (prices > 0)


def _forward_filled(close: np.ndarray) -> np.ndarray:
    """Last close at or before each row (NaN before a ticker's first close), (T, N)."""
    valid = np.isfinite(close)
    last = np.where(valid, np.arange(close.shape[0])[:, None], -1)
    np.maximum.accumulate(last, axis=0, out=last)
    filled = np.take_along_axis(close, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, filled, np.nan)


def _check_inputs(
    close: np.ndarray, rows: np.ndarray, weights: np.ndarray | None, end_row: int
) -> None:
    n_dates, n_tickers = close.shape
    if rows.ndim != 1 or len(rows) == 0:
        raise ValueError("rebalance_rows must be a non-empty 1-D array of row indices")
    if len(rows) > 1 and not (np.diff(rows) > 0).all():
        bad = int(np.flatnonzero(np.diff(rows) <= 0)[0])
        raise ValueError(
            f"rebalance_rows must be strictly increasing; position {bad + 1} has row "
            f"{rows[bad + 1]} after row {rows[bad]}"
        )
    if not 0 <= end_row < n_dates:
        raise ValueError(f"end_row={end_row} is outside the panel's rows 0..{n_dates - 1}")
    if rows[0] < 0 or rows[-1] > end_row:
        raise ValueError(
            f"rebalance_rows must lie within 0..end_row={end_row}; got rows {rows[0]}..{rows[-1]}"
        )
    used = close[: end_row + 1]
    with np.errstate(invalid="ignore"):
        bad_price = np.isinf(used) | (used <= 0)
    if bad_price.any():
        t, i = np.argwhere(bad_price)[0]
        raise ValueError(
            f"close at row {t}, ticker column {i} is {used[t, i]}; prices must be positive "
            "(NaN marks a missing price)"
        )
    if weights is not None:
        if weights.shape != (len(rows), n_tickers):
            raise ValueError(
                f"target_weights has shape {weights.shape}, expected {(len(rows), n_tickers)} "
                "(one row per rebalance, one column per ticker)"
            )
        for r in range(len(rows)):
            _check_target(close, rows, r, weights[r])


def _check_target(close: np.ndarray, rows: np.ndarray, r: int, weights: np.ndarray) -> None:
    """One rebalance's targets: finite, no borrowing, only tickers with a price that day."""
    if weights.shape != (close.shape[1],):
        raise ValueError(
            f"target weights at row {rows[r]} have shape {weights.shape}, "
            f"expected ({close.shape[1]},)"
        )
    if not np.isfinite(weights).all():
        i = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(f"target weight at row {rows[r]}, ticker column {i} is not finite")
    total = weights.sum()
    if total > 1.0 + WEIGHT_SUM_TOLERANCE:
        raise ValueError(f"target weights at row {rows[r]} sum to {total:.12g} > 1 (no borrowing)")
    blocked = (weights != 0) & ~np.isfinite(close[rows[r]])
    if blocked.any():
        i = int(np.flatnonzero(blocked)[0])
        raise ValueError(
            f"target weight {weights[i]:.6g} on ticker column {i} at row {rows[r]}, "
            "which has no price that day and cannot be traded (select tickers with "
            "alphaseq.backtest.tradable)"
        )


#: ``policy(r, row, drifted) -> target weights``: decides rebalance ``r`` (at ``row``)
#: from the weights the portfolio drifted to; it may read data up to ``row`` only.
WeightPolicy = Callable[[int, int, np.ndarray], np.ndarray]


def backtest(
    close: np.ndarray,
    rebalance_rows: np.ndarray,
    target_weights: np.ndarray | WeightPolicy,
    *,
    cost_bps: float = 10.0,
    end_row: int | None = None,
) -> BacktestResult:
    """Simulate a portfolio rebalanced to target weights, with drift and linear costs.

    Parameters
    ----------
    close : numpy.ndarray
        Close prices (T, N), NaN where a ticker has no price.
    rebalance_rows : numpy.ndarray
        Strictly increasing row indices of the rebalances, (R,), all ``<= end_row``.
    target_weights : numpy.ndarray or callable
        Weights as fractions of NAV wanted right after the trade at the close of each
        rebalance row, (R, N). Each row must sum to at most 1 (the rest is cash earning
        0); negative weights are handled arithmetically. A non-zero weight needs a
        price on its rebalance row. Or a :data:`WeightPolicy` called at each rebalance
        with the drifted weights, for rules that depend on what is held (turnover caps).
    cost_bps : float, default=10.0
        Cost per unit of notional traded, in basis points of NAV.
    end_row : int or None, default=None
        Last row to simulate (inclusive); the last row of ``close`` when None.

    Returns
    -------
    BacktestResult
        Daily net and gross returns and NAV from the first rebalance row to ``end_row``,
        plus turnover, costs and weights of each rebalance.

    Raises
    ------
    ValueError
        On non-increasing or out-of-range rows, mismatched shapes, non-finite weights,
        weights summing to more than 1, non-positive prices, or a non-zero target on a
        ticker without a price on its rebalance row.

    Notes
    -----
    Returns at row ``t`` only read prices at rows ``<= t`` and targets decided at rows
    ``< t`` (the cost at a rebalance row reads that row's targets), so changing any
    input after ``t`` leaves every return up to ``t`` bit-identical.
    """
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 2:
        raise ValueError(f"close must be a (T, N) array, got shape {close.shape}")
    rows = np.asarray(rebalance_rows)
    if rows.ndim == 1 and len(rows) and not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"rebalance_rows must be integers, got dtype {rows.dtype}")
    rows = rows.astype(np.int64, copy=False)
    policy = target_weights if callable(target_weights) else None
    end_row = close.shape[0] - 1 if end_row is None else int(end_row)
    if policy is None:
        weights = np.asarray(target_weights, dtype=np.float64)
        _check_inputs(close, rows, weights, end_row)
    else:
        _check_inputs(close, rows, None, end_row)
        weights = np.zeros((len(rows), close.shape[1]))
    if cost_bps < 0 or not np.isfinite(cost_bps):
        raise ValueError(f"cost_bps must be a finite number >= 0, got {cost_bps}")

    cost_rate = cost_bps / 1e4
    start = int(rows[0])
    prices = _forward_filled(close[: end_row + 1])
    n_rebalances, n_tickers = weights.shape
    gross = np.zeros(end_row + 1 - start)
    traded = np.empty(n_rebalances)
    before = np.zeros((n_rebalances, n_tickers))

    # One vectorised step per holding period: values relative to the NAV right after
    # the trade are ``cash + sum_i w_i * P_i(t) / P_i(a)``, taken directly against the
    # trade-day price (no running product, so no accumulated rounding).
    drifted = np.zeros(n_tickers)
    for r, a in enumerate(rows):
        before[r] = drifted
        if policy is not None:
            target = np.asarray(policy(r, int(a), drifted.copy()), dtype=np.float64)
            _check_target(close, rows, r, target)
            weights[r] = target
        traded[r] = np.abs(weights[r] - drifted).sum()
        b = int(rows[r + 1]) if r + 1 < n_rebalances else end_row
        if b == a:
            continue
        held = np.flatnonzero(weights[r])
        w = weights[r, held]
        relative = prices[a + 1 : b + 1, held] / prices[a, held]
        positions = relative * w  # (L, k) value of each holding per unit of post-trade NAV
        value = (1.0 - w.sum()) + positions.sum(axis=1)
        gross[a + 1 - start : b + 1 - start] = value / np.concatenate(([1.0], value[:-1])) - 1.0
        drifted = np.zeros(n_tickers)
        drifted[held] = positions[-1] / value[-1]

    costs = cost_rate * traded
    net = gross.copy()
    at = rows - start
    net[at] = (1.0 + gross[at]) * (1.0 - costs) - 1.0
    return BacktestResult(
        rows=np.arange(start, end_row + 1),
        returns=net,
        gross_returns=gross,
        turnover=0.5 * traded,
        traded=traded,
        costs=costs,
        weights_before=before,
        weights_after=weights.copy(),
        nav=np.cumprod(1.0 + net),
        rebalance_rows=rows.copy(),
    )


def equal_weight_targets(
    close: np.ndarray, rebalance_rows: np.ndarray, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Equal weights over the tradable (and eligible) tickers at each rebalance row.

    Parameters
    ----------
    close : numpy.ndarray
        Close prices (T, N).
    rebalance_rows : numpy.ndarray
        Row indices of the rebalances, (R,).
    eligible : numpy.ndarray or None, default=None
        Boolean (T, N) universe mask (e.g. index membership); all tickers when None.

    Returns
    -------
    numpy.ndarray
        (R, N) weights summing to 1 on each row, or all 0 (cash) where no ticker is
        tradable.
    """
    close = np.asarray(close)
    rows = np.asarray(rebalance_rows, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        chosen = np.isfinite(close[rows]) & (close[rows] > 0)
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.shape != close.shape:
            raise ValueError(f"eligible has shape {eligible.shape}, expected {close.shape}")
        chosen &= eligible[rows]
    count = chosen.sum(axis=1, keepdims=True)
    return np.where(chosen, 1.0 / np.maximum(count, 1), 0.0)


def buy_and_hold(
    prices: np.ndarray, *, start_row: int = 0, end_row: int | None = None
) -> np.ndarray:
    """Daily returns of buying one instrument at the close of ``start_row`` and holding it.

    Aligned with :attr:`BacktestResult.rows` when given the same ``start_row`` (the first
    rebalance row) and ``end_row``: the first return is 0 (bought at that close, no cost).

    Parameters
    ----------
    prices : numpy.ndarray
        Prices of one instrument (T,), NaN where missing. A missing price keeps the last
        one (return 0); before the first price the position is cash (return 0).
    start_row : int, default=0
        Row of the purchase.
    end_row : int or None, default=None
        Last row (inclusive); the last row of ``prices`` when None.

    Returns
    -------
    numpy.ndarray
        Daily returns for rows ``start_row..end_row``.
    """
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1:
        raise ValueError(f"prices must be 1-D, got shape {prices.shape}")
    end_row = len(prices) - 1 if end_row is None else int(end_row)
    if not 0 <= start_row <= end_row < len(prices):
        raise ValueError(f"need 0 <= start_row <= end_row < {len(prices)}")
    filled = _forward_filled(prices[start_row : end_row + 1, None])[:, 0]
    out = np.zeros(len(filled))
    with np.errstate(invalid="ignore", divide="ignore"):
        step = filled[1:] / filled[:-1] - 1.0
    out[1:] = np.where(np.isfinite(step), step, 0.0)
    return out


def month_end_rows(
    dates: np.ndarray | pd.DatetimeIndex, start_row: int = 0, end_row: int | None = None
) -> np.ndarray:
    """Row of the last trading date of each calendar month within ``[start_row, end_row]``.

    The month of ``end_row`` counts with its last row in the range, even when the month
    continues after ``end_row`` (a partial last month still ends the range).

    Parameters
    ----------
    dates : array-like of datetime64
        The panel's strictly increasing trading dates, (T,).
    start_row : int, default=0
        First row considered.
    end_row : int or None, default=None
        Last row considered (inclusive); the last row when None.

    Returns
    -------
    numpy.ndarray
        Strictly increasing int64 row indices.
    """
    months = np.asarray(dates, dtype="datetime64[ns]").astype("datetime64[M]")
    end_row = len(months) - 1 if end_row is None else int(end_row)
    if not 0 <= start_row <= end_row < len(months):
        raise ValueError(f"need 0 <= start_row <= end_row < {len(months)}")
    window = months[start_row : end_row + 1]
    last = np.append(window[1:] != window[:-1], True)
    return np.flatnonzero(last).astype(np.int64) + start_row
