"""Factor diagnostics of out-of-sample forecasts: the figures alphalens reports.

Each function takes a long ``predictions`` frame, one row per (date, ticker), with the
columns ``date``, ``ticker``, ``prediction`` and a realised target (``label`` by
default), and returns a JSON-safe ``dict``: Python ``float``, ``int``, ``bool``, lists
of them, or ``None`` for a figure that cannot be computed from the data, never NaN.

* :func:`rank_ic_summary`: mean per-date rank IC with a Newey–West interval.
* :func:`quantile_returns`: mean forward return of each forecast quantile, and the
  top-minus-bottom spread with a Newey–West interval.
* :func:`ic_decay`: rank IC against forward returns over several horizons.
* :func:`signal_autocorrelation`: rank autocorrelation of the forecast from one
  rebalance date to the next (low values mean high signal turnover).
* :func:`factor_diagnostics`: all of the above in one ``dict``.

Labels over ``h`` days computed every day overlap, so the per-date figures are
autocorrelated up to lag ``h - 1`` and an iid standard error would be too small; the
intervals use the heteroskedasticity and autocorrelation consistent (HAC) standard
error of Newey & West (1987), see :func:`newey_west_mean`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alphaseq.backtest.metrics import per_date_ic
from alphaseq.data.panel import Panel
from alphaseq.features.inputs import FeatureInputs
from alphaseq.features.labels import forward_return

#: Two-sided 95 % quantile of the standard normal distribution.
Z_95 = 1.959964
#: Default horizons of :func:`ic_decay`, in trading days.
DECAY_HORIZONS: tuple[int, ...] = (1, 5, 10, 21)

#: The single-factor signals every run's forecasts are compared with (see
#: :func:`reference_factors`).
REFERENCE_FACTORS: tuple[str, ...] = ("momentum_12_1", "reversal_1m", "low_volatility")

__all__ = [
    "DECAY_HORIZONS",
    "REFERENCE_FACTORS",
    "factor_diagnostics",
    "forecast_study",
    "forward_returns_by_horizon",
    "ic_decay",
    "newey_west_mean",
    "quantile_returns",
    "rank_ic_summary",
    "reference_factors",
    "signal_autocorrelation",
]


# -------------------------------------------------------------------------- helpers
def _number(value: Any) -> float | None:
    """A finite Python float, or None for NaN, infinities and None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _check_int(value: Any, name: str, minimum: int) -> int:
    # bool is an Integral too, but quantiles=True is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_columns(frame: Any, columns: Iterable[str], what: str = "predictions") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    for column in columns:
        if column not in frame.columns:
            raise ValueError(
                f"{what} is missing column {column!r}; it has columns {list(frame.columns)}"
            )


def _check_unique(frame: pd.DataFrame, what: str) -> None:
    # A repeated (date, ticker) would count one ticker twice in a merge or a pivot.
    repeated = frame.duplicated(["date", "ticker"])
    if repeated.any():
        first = frame.loc[repeated, ["date", "ticker"]].iloc[0]
        raise ValueError(
            f"{what} has more than one row for date {first['date']} and ticker {first['ticker']!r}"
        )


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=np.float64)


def _forecast_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """``date, ticker, prediction`` checked (columns, one row per pair) and typed."""
    _check_columns(predictions, ("date", "ticker", "prediction"))
    _check_unique(predictions, "predictions")
    return pd.DataFrame(
        {
            "date": pd.to_datetime(predictions["date"]),
            "ticker": predictions["ticker"].astype(str),
            "prediction": _floats(predictions, "prediction"),
        }
    )


def _daily_rank_ic(dates: Any, prediction: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    """:func:`per_date_ic` on the finite pairs; an empty frame when there is none."""
    keep = np.isfinite(prediction) & np.isfinite(target)
    if not keep.any():  # per_date_ic raises here; no pair is simply no IC
        return pd.DataFrame({"date": [], "ic": [], "rank_ic": [], "n": []})
    return per_date_ic(prediction[keep], target[keep], np.asarray(dates)[keep])


def _interval(summary: dict[str, Any]) -> list[float | None]:
    return [summary["ci_low"], summary["ci_high"]]


def _icir(values: np.ndarray) -> float | None:
    """``mean / std(ddof=1)`` over dates, not annualised; None if undefined."""
    if len(values) < 2 or np.ptp(values) == 0:  # exact test: std of constants may be 1e-19
        return None
    return _number(values.mean() / values.std(ddof=1))


# ------------------------------------------------------------------- Newey–West mean
def newey_west_mean(values: Any, lags: int) -> dict[str, float | int | None]:
    """Mean of a time series with its Newey–West (HAC) standard error.

    The long-run variance is ``gamma_0 + 2 * sum_{k=1..lags} w_k * gamma_k`` with the
    Bartlett weights ``w_k = 1 - k / (lags + 1)`` (Newey & West 1987), and the standard
    error of the mean is ``sqrt(long_run_variance / n)``. The autocovariances divide by
    ``n`` (not ``n - k``): ``gamma_k = sum_{t=k..n-1} e_t * e_{t-k} / n`` with
    ``e = x - mean(x)``. This is the Newey–West convention and keeps the estimate
    non-negative; with ``lags=0`` the standard error is ``std(x, ddof=0) / sqrt(n)``.

    Parameters
    ----------
    values : array-like
        The series, in time order, (n,). Non-finite values are dropped first.
    lags : int
        Number of autocovariances kept, >= 0. Lags of ``n`` or more add nothing (there
        is no such pair) but still set the weights of the shorter ones.

    Returns
    -------
    dict
        ``mean``, ``std_error``, ``t_stat`` (``mean / std_error``), ``ci_low`` and
        ``ci_high`` (``mean -/+ 1.959964 * std_error``, a normal 95 % interval), ``n``
        (finite values used) and ``lags``. With fewer than 2 finite values every figure
        is None; when the variance estimate is not positive (a constant series) the
        mean is kept and the other figures are None.

    Raises
    ------
    ValueError
        When ``lags`` is not an integer >= 0 or ``values`` is not one-dimensional.
    """
    lags = _check_int(lags, "lags", 0)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    x = x[np.isfinite(x)]
    n = len(x)
    out: dict[str, float | int | None] = {
        "mean": None,
        "std_error": None,
        "t_stat": None,
        "ci_low": None,
        "ci_high": None,
        "n": n,
        "lags": lags,
    }
    if n < 2:
        return out
    mean = float(x.mean())
    out["mean"] = mean
    e = x - mean
    variance = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        weight = 1.0 - k / (lags + 1)
        variance += 2.0 * weight * float(e[k:] @ e[:-k]) / n
    # Bartlett weights keep this >= 0 in exact arithmetic; a constant series gives 0.
    if not variance > 0 or np.ptp(x) == 0:
        return out
    std_error = math.sqrt(variance / n)
    out["std_error"] = std_error
    out["t_stat"] = _number(mean / std_error)
    out["ci_low"] = mean - Z_95 * std_error
    out["ci_high"] = mean + Z_95 * std_error
    return out


# ------------------------------------------------------------------------- rank IC
def rank_ic_summary(
    predictions: pd.DataFrame, label_column: str = "label", horizon: int = 21
) -> dict[str, Any]:
    """Mean per-date rank IC of the forecasts, with a Newey–West 95 % interval.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``prediction`` and ``label_column``, one row per (date, ticker).
        Rows with a non-finite prediction or label are left out.
    label_column : str, default="label"
        Column of the realised target.
    horizon : int, default=21
        Horizon of the label in trading days, >= 1. Daily forecasts of overlapping
        ``horizon``-day returns share ``horizon - 1`` days of return with their
        neighbours, so the rank IC series is autocorrelated up to that lag and the
        standard error uses ``lags = horizon - 1``. Lags count dates of the series, so
        this assumes one forecast date per trading day (it is conservative for sparser
        forecast dates).

    Returns
    -------
    dict
        * ``rank_ic``: mean over dates of the cross-sectional Spearman correlation (see
          :func:`alphaseq.backtest.metrics.per_date_ic` for the dates that count).
        * ``rank_ic_se``, ``rank_ic_t``, ``rank_ic_ci``: its Newey–West standard error,
          t-statistic and ``[low, high]`` 95 % interval (see :func:`newey_west_mean`).
        * ``ic``: mean over dates of the Pearson correlation.
        * ``rank_icir``: mean / std (ddof=1) of the rank IC over dates, not annualised.
        * ``n_dates``: dates with a rank IC; ``lags``: the lags used.

    Raises
    ------
    ValueError
        When a column is missing or ``horizon`` < 1.
    """
    horizon = _check_int(horizon, "horizon", 1)
    _check_columns(predictions, ("date", "prediction", label_column))
    daily = _daily_rank_ic(
        predictions["date"].to_numpy(),
        _floats(predictions, "prediction"),
        _floats(predictions, label_column),
    )
    rank_ic = daily["rank_ic"].to_numpy(dtype=np.float64)
    ic = daily["ic"].to_numpy(dtype=np.float64)
    nw = newey_west_mean(rank_ic, horizon - 1)
    return {
        "rank_ic": _number(rank_ic.mean()) if len(rank_ic) else None,
        "rank_ic_se": nw["std_error"],
        "rank_ic_t": nw["t_stat"],
        "rank_ic_ci": _interval(nw),
        "ic": _number(np.nanmean(ic)) if np.isfinite(ic).any() else None,
        "rank_icir": _icir(rank_ic),
        "n_dates": len(daily),
        "lags": horizon - 1,
    }


# ----------------------------------------------------------------------- quantiles
def _quantile_codes(rank: np.ndarray, size: np.ndarray, quantiles: int) -> np.ndarray:
    """Quantile 1..q of rank 1..n: the bins of ``pd.qcut(ranks, q)``, in exact arithmetic.

    ``qcut`` of the ranks 1..n cuts at ``1 + (n - 1) * j / q`` and puts rank r in the
    first bin whose right edge is >= r, i.e. ``ceil((r - 1) * q / (n - 1))`` (rank 1 in
    bin 1). Integers keep a rank that sits exactly on an edge in the lower bin, where
    qcut's floating-point edges can tip it either way, and need no loop over dates.
    """
    r = rank.astype(np.int64) - 1
    n = size.astype(np.int64) - 1
    return np.maximum(-((-r * quantiles) // n), 1)


def quantile_returns(
    predictions: pd.DataFrame,
    label_column: str = "label",
    quantiles: int = 5,
    horizon: int = 21,
) -> dict[str, Any]:
    """Mean forward return of each forecast quantile and the top-minus-bottom spread.

    On each date the tickers with a finite prediction and label are ranked by
    prediction (ties broken by row order, like ``rank(method="first")``) and cut into
    ``quantiles`` groups of equal count, as ``pd.qcut`` cuts the ranks: quantile 1 holds
    the lowest forecasts, quantile ``q`` the highest, and group sizes differ by at most
    one. Dates with fewer than ``quantiles`` such tickers are skipped.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``prediction`` and ``label_column``.
    label_column : str, default="label"
        Column of the realised forward return.
    quantiles : int, default=5
        Number of groups, >= 2.
    horizon : int, default=21
        Horizon of the label in trading days, >= 1; the spread's Newey–West standard
        error uses ``lags = horizon - 1`` (see :func:`rank_ic_summary`).

    Returns
    -------
    dict
        * ``quantiles``: q.
        * ``mean_return``: q floats, lowest quantile first: the mean over dates of each
          quantile's equal-weighted mean label on the date (None without a date).
        * ``spread``, ``spread_t``, ``spread_ci``: mean over dates of top minus bottom,
          its Newey–West t-statistic and ``[low, high]`` 95 % interval.
        * ``monotonic_increasing``: whether ``mean_return`` is strictly increasing (None
          without a date).
        * ``n_dates``: dates used.

    Raises
    ------
    ValueError
        When a column is missing, ``quantiles`` < 2 or ``horizon`` < 1.
    """
    quantiles = _check_int(quantiles, "quantiles", 2)
    horizon = _check_int(horizon, "horizon", 1)
    _check_columns(predictions, ("date", "prediction", label_column))
    prediction = _floats(predictions, "prediction")
    label = _floats(predictions, label_column)
    keep = np.isfinite(prediction) & np.isfinite(label)
    frame = pd.DataFrame(
        {
            "date": predictions["date"].to_numpy()[keep],
            "prediction": prediction[keep],
            "label": label[keep],
        }
    )
    size = frame.groupby("date", sort=True)["prediction"].transform("size").to_numpy()
    frame = frame[size >= quantiles]
    size = size[size >= quantiles]

    if len(frame) == 0:
        return {
            "quantiles": quantiles,
            "mean_return": [None] * quantiles,
            "spread": None,
            "spread_t": None,
            "spread_ci": [None, None],
            "monotonic_increasing": None,
            "n_dates": 0,
        }
    rank = frame.groupby("date", sort=True)["prediction"].rank(method="first").to_numpy()
    frame = frame.assign(quantile=_quantile_codes(rank, size, quantiles))
    # Dates x quantiles; every date has every quantile because it has >= q tickers.
    table = frame.groupby(["date", "quantile"], sort=True)["label"].mean().unstack("quantile")
    table = table.reindex(columns=range(1, quantiles + 1))
    mean_return = [_number(v) for v in table.mean(axis=0).to_numpy()]
    spread = (table[quantiles] - table[1]).to_numpy()
    nw = newey_west_mean(spread, horizon - 1)
    steps = np.diff(np.asarray(mean_return, dtype=np.float64))
    return {
        "quantiles": quantiles,
        "mean_return": mean_return,
        "spread": _number(spread.mean()),
        "spread_t": nw["t_stat"],
        "spread_ci": _interval(nw),
        "monotonic_increasing": bool((steps > 0).all()),
        "n_dates": len(table),
    }


# ------------------------------------------------------------------------ IC decay
def _forward_frame(value: Any, horizon: int) -> pd.DataFrame:
    """``date, ticker, forward_return`` from a frame or a (date, ticker)-indexed Series."""
    what = f"forward_returns[{horizon}]"
    if isinstance(value, pd.Series):
        if value.index.nlevels != 2:
            raise ValueError(f"{what} as a Series needs a (date, ticker) MultiIndex")
        value = pd.DataFrame(
            {
                "date": value.index.get_level_values(0),
                "ticker": value.index.get_level_values(1),
                "forward_return": value.to_numpy(),
            }
        )
    _check_columns(value, ("date", "ticker", "forward_return"), what)
    _check_unique(value, what)
    return pd.DataFrame(
        {
            "date": pd.to_datetime(value["date"]),
            "ticker": value["ticker"].astype(str),
            "forward_return": _floats(value, "forward_return"),
        }
    )


def ic_decay(
    predictions: pd.DataFrame,
    forward_returns: Mapping[int, pd.DataFrame | pd.Series],
    horizons: Sequence[int] = DECAY_HORIZONS,
) -> dict[str, dict[str, Any]]:
    """Mean rank IC of the forecast against forward returns over several horizons.

    A forecast whose rank IC falls quickly with the horizon predicts short moves only;
    it needs frequent rebalancing to be worth anything.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``ticker`` and ``prediction``.
    forward_returns : mapping of int to DataFrame or Series
        For each horizon h, the realised h-day forward return per (date, ticker): a
        frame with columns ``date``, ``ticker``, ``forward_return``, or a Series with a
        (date, ticker) MultiIndex. See :func:`forward_returns_by_horizon`.
    horizons : sequence of int, default=(1, 5, 10, 21)
        Horizons to report, each >= 1 and a key of ``forward_returns``.

    Returns
    -------
    dict
        ``{str(h): {"rank_ic", "ci": [low, high], "n_dates"}}``, the interval from
        :func:`newey_west_mean` with ``lags = h - 1``.

    Raises
    ------
    ValueError
        When a column or a horizon is missing, a horizon is < 1 or a (date, ticker)
        pair repeats.
    """
    base = _forecast_frame(predictions)
    out: dict[str, dict[str, Any]] = {}
    for h in horizons:
        h = _check_int(h, "horizon", 1)
        if h not in forward_returns:
            raise ValueError(
                f"forward_returns has no horizon {h}; it has {sorted(forward_returns)}"
            )
        merged = base.merge(_forward_frame(forward_returns[h], h), on=["date", "ticker"])
        daily = _daily_rank_ic(
            merged["date"].to_numpy(),
            merged["prediction"].to_numpy(),
            merged["forward_return"].to_numpy(),
        )
        nw = newey_west_mean(daily["rank_ic"].to_numpy(dtype=np.float64), h - 1)
        rank_ic = daily["rank_ic"].to_numpy(dtype=np.float64)
        out[str(h)] = {
            "rank_ic": _number(rank_ic.mean()) if len(rank_ic) else None,
            "ci": _interval(nw),
            "n_dates": len(daily),
        }
    return out


def forward_returns_by_horizon(
    panel: Panel, predictions: pd.DataFrame, horizons: Iterable[int] = DECAY_HORIZONS
) -> dict[int, pd.DataFrame]:
    """Realised forward returns at each forecast's (date, ticker), for :func:`ic_decay`.

    Parameters
    ----------
    panel : Panel
        The price panel the forecasts were made on.
    predictions : pandas.DataFrame
        Columns ``date`` and ``ticker``.
    horizons : iterable of int, default=(1, 5, 10, 21)
        Horizons in trading days, each >= 1.

    Returns
    -------
    dict of int to pandas.DataFrame
        For each horizon, a frame with the rows of ``predictions`` in their order and
        the columns ``date``, ``ticker`` and ``forward_return``: the simple return
        ``close[t + h] / close[t] - 1`` of :func:`alphaseq.features.labels.forward_return`,
        NaN where it is unknown or the date or ticker is not in the panel.

    Raises
    ------
    ValueError
        When a column is missing or a horizon is < 1.
    """
    _check_columns(predictions, ("date", "ticker"))
    horizons = [_check_int(h, "horizon", 1) for h in horizons]
    dates = pd.to_datetime(predictions["date"]).to_numpy(dtype="datetime64[ns]")
    tickers = predictions["ticker"].astype(str).to_numpy()
    row = pd.Index(panel.dates).get_indexer(dates)
    column = pd.Index(panel.tickers).get_indexer(tickers)
    known = (row >= 0) & (column >= 0)
    inputs = FeatureInputs(panel)  # shared: the log closes are computed once
    out: dict[int, pd.DataFrame] = {}
    for h in horizons:
        values = forward_return(panel, h, inputs=inputs)
        looked_up = np.full(len(dates), np.nan)
        looked_up[known] = values[row[known], column[known]]
        out[h] = pd.DataFrame({"date": dates, "ticker": tickers, "forward_return": looked_up})
    return out


# ---------------------------------------------------------------- autocorrelation
def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman correlation (average ranks for ties); None when a side is constant."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx = pd.Series(x).rank(method="average").to_numpy()
    ry = pd.Series(y).rank(method="average").to_numpy()
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return _number((rx @ ry) / math.sqrt((rx @ rx) * (ry @ ry)))


def signal_autocorrelation(predictions: pd.DataFrame, dates: Any = None) -> dict[str, Any]:
    """Rank autocorrelation of the forecast from one rebalance date to the next.

    For each pair of consecutive rebalance dates, the Spearman correlation between the
    forecasts of the tickers that have a finite forecast on both (alphalens' "factor
    rank autocorrelation"). A value near 1 means the ranking barely changes; low values
    mean high signal turnover, hence high trading costs.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``ticker`` and ``prediction``.
    dates : array-like or None, default=None
        Rebalance dates (e.g. month ends); those without a forecast are ignored. None
        takes every date of ``predictions``.

    Returns
    -------
    dict
        ``mean``: the mean over consecutive pairs (None without one); ``n_pairs``: pairs
        with a correlation (at least 3 common tickers, non-constant forecasts).

    Raises
    ------
    ValueError
        When a column is missing or a (date, ticker) pair repeats.
    """
    frame = _forecast_frame(predictions)
    wide = frame.pivot(index="date", columns="ticker", values="prediction").sort_index()
    if dates is not None:
        wanted = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates).ravel()))
        wide = wide.loc[wide.index.isin(wanted)]
    values = wide.to_numpy(dtype=np.float64)
    correlations = []
    for before, after in itertools.pairwise(values):
        both = np.isfinite(before) & np.isfinite(after)
        rho = _spearman(before[both], after[both])
        if rho is not None:
            correlations.append(rho)
    return {
        "mean": _number(np.mean(correlations)) if correlations else None,
        "n_pairs": len(correlations),
    }


# ---------------------------------------------------------------------- all at once
def factor_diagnostics(
    predictions: pd.DataFrame,
    label_column: str = "label",
    horizon: int = 21,
    forward_returns: Mapping[int, pd.DataFrame | pd.Series] | None = None,
    rebalance_dates: Any = None,
    quantiles: int = 5,
) -> dict[str, Any]:
    """Rank IC, quantile returns, IC decay and signal autocorrelation in one ``dict``.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``ticker``, ``prediction`` and ``label_column``.
    label_column : str, default="label"
        Column of the realised forward return over ``horizon`` days.
    horizon : int, default=21
        Horizon of the label in trading days, >= 1.
    forward_returns : mapping of int to DataFrame or Series, or None, default=None
        Forward returns by horizon for :func:`ic_decay` (every key is reported); None
        leaves the decay out.
    rebalance_dates : array-like or None, default=None
        Dates for :func:`signal_autocorrelation`; None takes every forecast date.
    quantiles : int, default=5
        Number of forecast groups of :func:`quantile_returns`, >= 2.

    Returns
    -------
    dict
        ``{"rank_ic": rank_ic_summary(...), "quantiles": quantile_returns(...),
        "decay": ic_decay(...) or None, "autocorrelation": signal_autocorrelation(...)}``.

    Raises
    ------
    ValueError
        On a missing column, ``horizon`` < 1 or ``quantiles`` < 2.
    """
    _check_int(horizon, "horizon", 1)
    _check_int(quantiles, "quantiles", 2)
    _check_columns(predictions, ("date", "ticker", "prediction", label_column))
    return {
        "rank_ic": rank_ic_summary(predictions, label_column, horizon),
        "quantiles": quantile_returns(predictions, label_column, quantiles, horizon),
        "decay": (
            None
            if forward_returns is None
            else ic_decay(predictions, forward_returns, sorted(forward_returns))
        ),
        "autocorrelation": signal_autocorrelation(predictions, rebalance_dates),
    }


# ---------------------------------------------------------------- single factors
def reference_factors(panel: Panel) -> dict[str, np.ndarray]:
    """Classic single-factor signals, (T, N) each, known at the close of each date.

    * ``momentum_12_1``: ``log(close[t - 21] / close[t - 252])``, the past year's return
      skipping the last month (Jegadeesh & Titman 1993);
    * ``reversal_1m``: ``-log(close[t] / close[t - 21])``, last month's losers first
      (Jegadeesh 1990);
    * ``low_volatility``: minus the standard deviation of the last 63 daily log returns
      (the low-volatility anomaly, Ang et al. 2006).

    Each reads closes at or before ``t`` only (NaN where a close in reach is missing),
    so it can be scored on the very samples a model forecast.
    """
    from alphaseq.features._rolling import rolling_std

    inputs = FeatureInputs(panel)
    log_close = inputs.log_close.astype(np.float64)

    def back(days: int) -> np.ndarray:
        out = np.full_like(log_close, np.nan)
        out[days:] = log_close[:-days]
        return out

    return {
        "momentum_12_1": back(21) - back(252),
        "reversal_1m": back(21) - log_close,
        "low_volatility": -rolling_std(inputs.log_return, 63, ddof=1).astype(np.float64),
    }


def forecast_study(
    panel: Panel,
    predictions: pd.DataFrame,
    horizon: int,
    *,
    rebalance_dates: Any = None,
    decay_horizons: Iterable[int] = DECAY_HORIZONS,
) -> dict[str, Any]:
    """Diagnostics of a run's forecasts and of the reference factors on the same samples.

    The forecasts are scored against the raw forward return over ``horizon`` days (the
    signal's horizon), whatever the model was trained on; every reference factor is
    scored on exactly the (date, ticker) pairs that were forecast.

    Parameters
    ----------
    panel : Panel
        The prices the forecasts were made on.
    predictions : pandas.DataFrame
        Columns ``date``, ``ticker``, ``prediction``.
    horizon : int
        The signal's horizon in trading days.
    rebalance_dates : array-like or None
        Dates of the signal autocorrelation (the portfolio's rebalances).
    decay_horizons : iterable of int
        Horizons of the IC decay.

    Returns
    -------
    dict
        ``model``: :func:`factor_diagnostics` of the forecasts; ``factors``: per
        reference factor, its ``rank_ic`` summary and ``quantiles`` on the same samples.
    """
    _check_columns(predictions, ("date", "ticker", "prediction"))
    horizons = sorted({_check_int(horizon, "horizon", 1), *decay_horizons})
    forward = forward_returns_by_horizon(panel, predictions, horizons)
    frame = predictions[["date", "ticker", "prediction"]].reset_index(drop=True)
    frame = frame.assign(label=forward[horizon]["forward_return"].to_numpy())
    decay = {h: forward[h] for h in horizons if h in set(decay_horizons)}
    study: dict[str, Any] = {
        "horizon": int(horizon),
        "model": factor_diagnostics(
            frame, "label", horizon, forward_returns=decay, rebalance_dates=rebalance_dates
        ),
        "factors": {},
    }
    rows = pd.Index(panel.dates).get_indexer(frame["date"].to_numpy(dtype="datetime64[ns]"))
    cols = pd.Index(panel.tickers).get_indexer(frame["ticker"].astype(str).to_numpy())
    for name, values in reference_factors(panel).items():
        signal = frame.assign(prediction=values[rows, cols])
        study["factors"][name] = {
            "rank_ic": rank_ic_summary(signal, "label", horizon),
            "quantiles": quantile_returns(signal, "label", 5, horizon),
        }
    return study
