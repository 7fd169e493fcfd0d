"""Backtest of positions in one instrument (single-asset timing) against buy-and-hold.

Timing (DESIGN rule 5). The position ``p[t]`` is decided with data up to the close of
date ``t``, traded at that close and earns the instrument's return of ``t + 1``; the
return *of* date ``t`` belongs to the position held before the trade, ``p[t - 1]``.

Accounting: the positions are target weights of the one backtest engine,
:func:`alphaseq.backtest.backtest`, rebalanced at every close, so timing and the
cross-sectional strategies share their accounting. In fractions of NAV, capital 1 in
cash before the first date:

* gross return of date ``t``: ``p[t - 1] * r[t]`` with ``r[t] = price[t] / price[t - 1] - 1``
  (0 on the first date, when nothing is held yet); a short of size ``p < 0`` earns
  ``p * r`` and the rest of NAV is cash earning 0;
* over the day the holding drifts to ``d[t] = p[t - 1] * (1 + r[t]) / (1 + p[t - 1] * r[t])``
  of NAV (``d = p`` for ``p`` in {0, 1}); holding a constant fraction means trading
  that drift back, and it is charged like any other trade;
* cost of date ``t``: ``cost_bps / 1e4 * |p[t] - d[t]|`` (with ``d[0] = 0``) of the NAV
  at that close, so net ``(1 + gross) * (1 - cost) - 1``.

Buy-and-hold is bought at the first close and left to drift: one trade, one cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alphaseq.backtest.engine import backtest
from alphaseq.backtest.metrics import performance_metrics

__all__ = ["TIMING_KEYS", "timing_backtest"]

#: Extra keys of the timing metrics, after :data:`alphaseq.backtest.PERFORMANCE_KEYS`.
TIMING_KEYS: tuple[str, ...] = ("time_in_market", "win_rate", "n_trades")

#: Slack on ``|position| <= 1`` for rounding in the caller's arithmetic.
POSITION_TOLERANCE = 1e-9


# ----------------------------------------------------------------------------- backtest
def _check_series(prices: Any, positions: Any) -> None:
    for what, series in (("prices", prices), ("positions", positions)):
        if not isinstance(series, pd.Series):
            raise TypeError(f"{what} must be a pandas Series indexed by date, got {type(series)}")
    if len(prices) == 0:
        raise ValueError("prices is empty")
    if not prices.index.equals(positions.index):
        if len(prices) != len(positions):
            raise ValueError(
                f"positions has {len(positions)} dates and prices {len(prices)}; "
                "they must share the same index"
            )
        at = int(np.flatnonzero(prices.index != positions.index)[0])
        raise ValueError(
            f"positions and prices must share the same index; they differ at row {at} "
            f"({positions.index[at]} vs {prices.index[at]})"
        )
    index = prices.index
    if index.has_duplicates or not index.is_monotonic_increasing:
        raise ValueError("prices must have strictly increasing dates")
    price = prices.to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(price) & (price > 0))
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"price at {index[at]} is {price[at]}; prices must be finite and positive "
            "(fill or drop missing days before the backtest)"
        )
    position = positions.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(position) | (np.abs(position) > 1 + POSITION_TOLERANCE)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"position at {index[at]} is {position[at]}; positions must be finite and "
            "within [-1, 1] (fractions of NAV, no borrowing)"
        )


def _trades(
    position: np.ndarray, asset: np.ndarray, before: np.ndarray, cost_rate: float
) -> np.ndarray:
    """Net return of every trade (see :func:`timing_backtest` for the definition).

    ``before[u]`` is the position the holding drifted to just before the trade at the
    close of ``u`` (the engine's drifted weight), so the amounts traded are the
    engine's own and a trade pays exactly the costs the returns were charged.
    """
    held = position[:-1]  # held[t - 1] is the position earning the return of date t
    if len(held) == 0:
        return np.empty(0)
    side = np.sign(held)
    # Holding days 1..T-1; a trade is a maximal run of equal non-zero side.
    edges = np.flatnonzero(np.diff(side) != 0) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(held)])) - 1
    returns = []
    for s, e in zip(starts, ends, strict=True):
        if side[s] == 0:
            continue
        days = np.arange(s, e + 1) + 1  # dates whose return the trade earns
        growth = np.prod(1.0 + held[s : e + 1] * asset[days])
        # Trades at the closes of dates s .. e + 1 (held indices): the entry (only the
        # opening part of a flip), resizes within the trade (the drift is traded back
        # too), and the exit (only the closing part of a flip).
        traded = [abs(position[s])]
        for u in range(s + 1, e + 2):
            same_side = np.sign(position[u]) == side[s]
            traded.append(abs(position[u] - before[u]) if same_side else abs(before[u]))
        growth *= np.prod(1.0 - cost_rate * np.asarray(traded))
        returns.append(growth - 1.0)
    return np.asarray(returns, dtype=np.float64)


def _simulate(
    prices: pd.Series, position: np.ndarray, cost_rate: float, *, hold: bool = False
) -> tuple[pd.Series, pd.Series, dict[str, float | int | None]]:
    """Net returns, costs and timing figures of positions in one instrument.

    Daily target positions are traded by :func:`alphaseq.backtest.backtest` at every
    close (``hold``: bought at the first close only and left to drift).
    """
    price = prices.to_numpy(dtype=np.float64)
    asset = np.zeros(len(price))
    asset[1:] = price[1:] / price[:-1] - 1.0
    rows = np.zeros(1, dtype=np.int64) if hold else np.arange(len(price))
    result = backtest(
        price[:, None], rows, position[rows, None], cost_bps=cost_rate * 1e4, end_row=len(price) - 1
    )
    costs = np.zeros(len(price))
    costs[rows] = result.costs
    before = np.zeros(len(price))
    before[rows] = result.weights_before[:, 0]
    if hold:
        before[1:] = position[1:]  # a whole position does not drift
    held = position[:-1]
    trades = _trades(position, asset, before, cost_rate)
    figures: dict[str, float | int | None] = {
        "time_in_market": float(np.mean(held != 0)) if len(held) else None,
        "win_rate": float(np.mean(trades > 0)) if len(trades) else None,
        "n_trades": len(trades),
        # Mean traded per day, the initial trade left out like the engine's turnover.
        "turnover": (0.0 if hold else result.average_turnover) if len(price) > 1 else None,
    }
    index = prices.index
    turnover = pd.Series(result.turnover, index=index[rows], name="turnover")
    return (
        pd.Series(result.returns, index=index, name="net_return"),
        pd.Series(costs, index=index, name="cost"),
        figures,
        turnover,
    )


def timing_backtest(
    prices: pd.Series,
    positions: pd.Series,
    *,
    cost_bps: float = 10.0,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    """Backtest target positions in one instrument against buying and holding it.

    See the module docstring for the timing and accounting rules.

    Parameters
    ----------
    prices : pandas.Series
        Close (or adjusted close) prices, finite and positive, indexed by strictly
        increasing dates.
    positions : pandas.Series
        Target position decided at each date's close, as a fraction of NAV in [-1, 1]
        (e.g. from :func:`timing_positions`), with exactly the index of ``prices``.
    cost_bps : float, default=10.0
        Cost per unit of position traded, in basis points of NAV.
    periods_per_year : int, default=252
        Periods per year used to annualise.

    Returns
    -------
    dict
        * ``returns``: net daily returns (pandas.Series); the first is minus the cost of
          the first trade.
        * ``costs``: cost of each date as a fraction of NAV (pandas.Series).
        * ``metrics``: :func:`alphaseq.backtest.performance_metrics` of the net returns
          (information ratio against buy-and-hold; ``turnover`` is the mean daily
          one-way turnover ``|p[t] - d[t]| / 2`` after the first date) plus:

          - ``time_in_market``: share of the holding days (dates 2..T, whose return is
            earned by the previous close's position) with a non-zero position;
          - ``n_trades``: number of trades. A trade is a maximal run of consecutive
            holding days with the same non-zero position sign — entered at the close
            before its first day, exited at the close of its last day (where the
            position goes to 0 or flips); size changes within the run stay in the
            trade. A trade still open on the last date counts, valued at that close; a
            position opened at the last close has no holding day and does not count.
          - ``win_rate``: share of trades with a positive net return. A trade's return
            is ``prod(1 + p[t - 1] * r[t]) * prod(1 - cost_bps / 1e4 * traded) - 1``
            over its holding days and its trades: the entry ``|p|``, each resize
            ``|p[t] - d[t]|`` (the drift traded back included) and the exit ``|d|``
            (at a flip, the cost of closing goes to the
            old trade and the cost of opening to the new one). None without trades.

        * ``buy_and_hold``: ``{"returns", "costs", "metrics"}`` of holding a position of
          1 from the first close to the end through the same accounting (one entry cost,
          one trade, no information ratio).

    Raises
    ------
    TypeError
        When ``prices`` or ``positions`` is not a pandas Series.
    ValueError
        On different indexes, unordered or duplicate dates, missing, non-finite or
        non-positive prices, positions that are not finite or outside [-1, 1], or a
        negative ``cost_bps``.
    """
    _check_series(prices, positions)
    if not (np.isfinite(cost_bps) and cost_bps >= 0):
        raise ValueError(f"cost_bps must be a finite number >= 0, got {cost_bps}")
    cost_rate = cost_bps / 1e4
    position = np.clip(positions.to_numpy(dtype=np.float64), -1.0, 1.0)

    hold_returns, hold_costs, hold_figures, hold_turnover = _simulate(
        prices, np.ones(len(prices)), cost_rate, hold=True
    )
    net, costs, figures, turnover = _simulate(prices, position, cost_rate)

    def metrics(returns: pd.Series, extra: dict, benchmark: pd.Series | None) -> dict:
        common = performance_metrics(
            returns,
            benchmark=benchmark,
            turnover=extra["turnover"],
            periods_per_year=periods_per_year,
        )
        return {**common, **{key: extra[key] for key in TIMING_KEYS}}

    return {
        "returns": net,
        "costs": costs,
        "turnover": turnover,
        "metrics": metrics(net, figures, hold_returns),
        "buy_and_hold": {
            "returns": hold_returns,
            "costs": hold_costs,
            "turnover": hold_turnover,
            "metrics": metrics(hold_returns, hold_figures, None),
        },
    }
