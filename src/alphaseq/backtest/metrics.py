"""Performance figures of a return series and quality figures of forecasts.

Every function returns a JSON-safe ``dict`` (Python ``float``, ``int``, ``str`` or
``None``): a figure that is undefined for the data (a Sharpe ratio of constant returns,
an information ratio without a benchmark) is ``None``, never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: Keys of :func:`performance_metrics`, in report order.
PERFORMANCE_KEYS: tuple[str, ...] = (
    "total_return",
    "ann_return",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_start",
    "max_drawdown_end",
    "calmar",
    "hit_rate",
    "turnover",
    "information_ratio",
)
#: Fewest samples on a date for its cross-sectional correlation to count.
MIN_SAMPLES_PER_DATE = 3


def finite_or_none(value: Any) -> float | None:
    """A finite Python float, or None for NaN, infinities and None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return finite_or_none(numerator / denominator) if denominator > 0 else None


def _as_returns(returns: pd.Series, what: str) -> pd.Series:
    if not isinstance(returns, pd.Series):
        raise TypeError(f"{what} must be a pandas Series indexed by date, got {type(returns)}")
    if len(returns) == 0:
        raise ValueError(f"{what} is empty; performance figures need at least one return")
    values = pd.to_numeric(returns, errors="raise").astype(np.float64)
    if not np.isfinite(values.to_numpy()).all():
        first = values.index[~np.isfinite(values.to_numpy())][0]
        raise ValueError(f"{what} has a non-finite value at {first}")
    index = pd.DatetimeIndex(values.index)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise ValueError(f"{what} must have strictly increasing dates")
    return pd.Series(values.to_numpy(), index=index)


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).date().isoformat()


def _sharpe_like(values: np.ndarray, periods_per_year: int) -> float | None:
    """``mean / std(ddof=1) * sqrt(ppy)``; None for fewer than 2 values or constant ones."""
    # An exact ptp test: the std of identical floats can come out as 1e-19, not 0.
    if len(values) < 2 or np.ptp(values) == 0:
        return None
    return finite_or_none(values.mean() / values.std(ddof=1) * math.sqrt(periods_per_year))


def _annual_vol(values: np.ndarray, periods_per_year: int) -> float | None:
    if len(values) < 2:
        return None
    if np.ptp(values) == 0:
        return 0.0  # exactly, where std() could leave rounding noise
    return finite_or_none(values.std(ddof=1) * math.sqrt(periods_per_year))


def performance_metrics(
    returns: pd.Series,
    *,
    benchmark: pd.Series | None = None,
    turnover: float | None = None,
    periods_per_year: int = 252,
) -> dict[str, float | str | None]:
    """Return, risk and risk-adjusted figures of a daily net return series.

    Parameters
    ----------
    returns : pandas.Series
        Net simple returns per period, indexed by strictly increasing dates.
    benchmark : pandas.Series or None, default=None
        Benchmark simple returns; the information ratio uses the dates both series have.
    turnover : float or None, default=None
        Average turnover per rebalance, passed through (see
        :attr:`BacktestResult.average_turnover`).
    periods_per_year : int, default=252
        Periods per year used to annualise.

    Returns
    -------
    dict
        With exactly the keys of :data:`PERFORMANCE_KEYS`:

        * ``total_return``: ``prod(1 + r) - 1``.
        * ``ann_return``: ``(1 + total_return) ** (ppy / n) - 1`` (geometric); -1 after a
          total loss, None when the NAV went negative.
        * ``ann_vol``: ``std(r, ddof=1) * sqrt(ppy)``; 0 for constant returns, None for a
          single period.
        * ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(ppy)``, risk-free rate 0; None
          when the returns are constant (std 0) or there is a single period.
        * ``sortino``: ``mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(ppy)``, the downside
          deviation taken over all periods with target 0; None without a negative return.
        * ``max_drawdown``: ``min(nav / running_peak(nav) - 1)`` (<= 0) of the compounded
          NAV, which starts at 1 before the first return.
        * ``max_drawdown_start``, ``max_drawdown_end``: ISO dates of the peak and the
          trough of the worst drawdown. A peak at the starting NAV is reported as the
          first date (the day the portfolio was set up). None without a drawdown.
        * ``calmar``: ``ann_return / |max_drawdown|``; None without a drawdown.
        * ``hit_rate``: share of positive returns among the non-zero ones (days in cash
          or without price changes are left out); None when every return is 0.
        * ``turnover``: the ``turnover`` argument (None when not given or NaN).
        * ``information_ratio``: ``mean(r - b) / std(r - b, ddof=1) * sqrt(ppy)`` over
          the common dates; None without a benchmark, with fewer than 2 common dates or
          a constant difference.

    Raises
    ------
    ValueError
        When ``returns`` is empty, has non-finite values or unordered dates.
    """
    series = _as_returns(returns, "returns")
    r = series.to_numpy()
    n = len(r)
    ppy = periods_per_year

    growth = float(np.prod(1.0 + r))
    if growth > 0:
        ann_return = finite_or_none(growth ** (ppy / n) - 1.0)
    else:
        ann_return = -1.0 if growth == 0 else None

    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))

    nav = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.maximum(nav, 1.0))
    drawdown = nav / peak - 1.0
    trough = int(np.argmin(drawdown))
    max_drawdown = float(drawdown[trough])
    if max_drawdown < 0:
        # The peak is the last row up to the trough whose NAV equals the running peak;
        # none means the peak is the starting NAV of 1.
        at_peak = np.flatnonzero(nav[: trough + 1] == peak[trough])
        start = series.index[at_peak[-1]] if len(at_peak) else series.index[0]
        drawdown_start, drawdown_end = _iso(start), _iso(series.index[trough])
        calmar = None if ann_return is None else finite_or_none(ann_return / -max_drawdown)
    else:
        drawdown_start = drawdown_end = calmar = None

    moved = r[r != 0]
    information_ratio = None
    if benchmark is not None:
        bench = _as_returns(benchmark, "benchmark")
        common = series.index.intersection(bench.index)
        active = series.loc[common].to_numpy() - bench.loc[common].to_numpy()
        information_ratio = _sharpe_like(active, ppy)

    return {
        "total_return": finite_or_none(growth - 1.0),
        "ann_return": ann_return,
        "ann_vol": _annual_vol(r, ppy),
        "sharpe": _sharpe_like(r, ppy),
        "sortino": _ratio(float(r.mean()) * math.sqrt(ppy), downside),
        "max_drawdown": max_drawdown,
        "max_drawdown_start": drawdown_start,
        "max_drawdown_end": drawdown_end,
        "calmar": calmar,
        "hit_rate": float((moved > 0).mean()) if len(moved) else None,
        "turnover": finite_or_none(turnover),
        "information_ratio": information_ratio,
    }


# ------------------------------------------------------------------------ forecasts
def _forecast_frame(prediction: Any, label: Any, dates: Any) -> pd.DataFrame:
    """Finite (date, prediction, label) triples; 2-D inputs take one date per row."""
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    dates = np.asarray(dates)
    if prediction.shape != label.shape:
        raise ValueError(f"prediction has shape {prediction.shape}, label {label.shape}")
    if prediction.ndim == 2 and dates.shape == prediction.shape[:1]:
        dates = np.repeat(dates, prediction.shape[1])  # (T, N) panel with (T,) dates
        prediction, label = prediction.ravel(), label.ravel()
    if prediction.ndim != 1 or dates.shape != prediction.shape:
        raise ValueError(
            f"dates has shape {dates.shape}; expected {prediction.shape} (one per sample) "
            "or (T,) for (T, N) predictions"
        )
    keep = np.isfinite(prediction) & np.isfinite(label)
    if not keep.any():
        raise ValueError("no sample has both a finite prediction and a finite label")
    return pd.DataFrame({"date": dates[keep], "prediction": prediction[keep], "label": label[keep]})


def _grouped_correlation(frame: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Pearson correlation of two columns within each date (two-pass, demeaned)."""
    groups = frame.groupby("date", sort=True)
    dx = frame[x] - groups[x].transform("mean")
    dy = frame[y] - groups[y].transform("mean")
    sums = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy}).groupby(frame["date"]).sum()
    return sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])


def per_date_ic(prediction: Any, label: Any, dates: Any) -> pd.DataFrame:
    """Cross-sectional Pearson (IC) and Spearman (rank IC) correlation on each date.

    Parameters
    ----------
    prediction, label : array-like
        Per-sample forecasts and realised targets, (S,), or (T, N) panels.
    dates : array-like
        Date of each sample, (S,), or (T,) for (T, N) panels.

    Returns
    -------
    pandas.DataFrame
        Columns ``date, ic, rank_ic, n``, one row per date with at least
        :data:`MIN_SAMPLES_PER_DATE` finite pairs and non-constant predictions and labels
        (other dates are left out), sorted by date. Rank IC uses average ranks for ties,
        like :func:`scipy.stats.spearmanr`.
    """
    frame = _forecast_frame(prediction, label, dates)
    groups = frame.groupby("date", sort=True)
    stats = groups.agg(
        n=("prediction", "size"),
        p_min=("prediction", "min"),
        p_max=("prediction", "max"),
        l_min=("label", "min"),
        l_max=("label", "max"),
    )
    # Exact min/max tests: demeaned constants can leave 1e-17 noise and a garbage IC.
    usable = (
        (stats["n"] >= MIN_SAMPLES_PER_DATE)
        & (stats["p_min"] < stats["p_max"])
        & (stats["l_min"] < stats["l_max"])
    )
    frame = frame[frame["date"].isin(stats.index[usable])]
    ranks = frame.groupby("date")[["prediction", "label"]].rank(method="average")
    ranks["date"] = frame["date"]
    out = pd.DataFrame(
        {
            "ic": _grouped_correlation(frame, "prediction", "label"),
            "rank_ic": _grouped_correlation(ranks, "prediction", "label"),
            "n": stats["n"][usable].astype(np.int64),
        },
        index=stats.index[usable],
    )
    return out.rename_axis("date").reset_index()


def _mean_over_dates(values: np.ndarray) -> tuple[float | None, float | None]:
    """Mean and mean / std(ddof=1) of per-date figures (not annualised)."""
    if len(values) == 0:
        return None, None
    mean = float(values.mean())
    if len(values) < 2 or np.ptp(values) == 0:
        return mean, None
    return mean, finite_or_none(mean / values.std(ddof=1))


def forecast_metrics(prediction: Any, label: Any, dates: Any) -> dict[str, float | int | None]:
    """Quality of forecasts against realised labels, across tickers then over dates.

    Parameters
    ----------
    prediction, label : array-like
        Per-sample forecasts and realised targets, (S,), or (T, N) panels. Pairs with a
        non-finite value on either side are left out.
    dates : array-like
        Date of each sample, (S,), or (T,) for (T, N) panels.

    Returns
    -------
    dict
        * ``ic``, ``rank_ic``: mean over dates of the per-date Pearson and Spearman
          correlations (see :func:`per_date_ic` for the dates that count).
        * ``icir``, ``rank_icir``: their mean / std (ddof=1) over dates, not annualised;
          None with fewer than 2 dates or a constant figure.
        * ``mse``: mean squared error over all finite pairs.
        * ``direction_accuracy``: share of pairs whose prediction and label have the
          same sign, among pairs where neither is 0; None when there is none.
        * ``n_dates``: dates with a correlation; ``n_predictions``: finite pairs.

    Raises
    ------
    ValueError
        On mismatched shapes or when no pair is finite.
    """
    frame = _forecast_frame(prediction, label, dates)
    daily = per_date_ic(frame["prediction"], frame["label"], frame["date"])
    ic, icir = _mean_over_dates(daily["ic"].to_numpy())
    rank_ic, rank_icir = _mean_over_dates(daily["rank_ic"].to_numpy())
    p, y = frame["prediction"].to_numpy(), frame["label"].to_numpy()
    signed = (p != 0) & (y != 0)
    return {
        "ic": finite_or_none(ic),
        "rank_ic": finite_or_none(rank_ic),
        "icir": icir,
        "rank_icir": rank_icir,
        "mse": float(np.mean((p - y) ** 2)),
        "direction_accuracy": (
            float((np.sign(p[signed]) == np.sign(y[signed])).mean()) if signed.any() else None
        ),
        "n_dates": len(daily),
        "n_predictions": len(frame),
    }
