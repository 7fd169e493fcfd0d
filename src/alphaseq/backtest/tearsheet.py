"""Tear-sheet figures of daily return series: relative risk, drawdowns, calendar, tails.

The figures that quantstats / pyfolio users look for next to
:func:`~alphaseq.backtest.metrics.performance_metrics`, as pure functions of pandas
objects. Inputs are daily simple net returns indexed by strictly increasing dates:

* a ``returns`` / ``benchmark`` Series must be finite on every date;
* a ``wide`` DataFrame (dates × strategies) may hold NaN, meaning "not trading yet"
  (or no longer): NaN days are skipped, never read as a zero return.

Scalar figures come back in JSON-safe ``dict``\\ s (Python ``float``, ``int``, ``str`` or
``None``): a figure that is undefined for the data is ``None``, never NaN. Conventions
follow :mod:`alphaseq.backtest.metrics`: the NAV starts at 1 before the first return and
a peak at that starting NAV is dated to the first date.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from alphaseq.backtest.metrics import finite_or_none

__all__ = [
    "DISTRIBUTION_KEYS",
    "DRAWDOWN_COLUMNS",
    "RELATIVE_KEYS",
    "drawdown_periods",
    "relative_metrics",
    "return_distribution",
    "rolling_beta",
    "rolling_volatility",
    "yearly_returns",
]

#: Keys of :func:`relative_metrics`, in report order.
RELATIVE_KEYS: tuple[str, ...] = (
    "alpha",
    "beta",
    "correlation",
    "tracking_error",
    "up_capture",
    "down_capture",
    "n_days",
)
#: Columns of :func:`drawdown_periods`.
DRAWDOWN_COLUMNS: tuple[str, ...] = ("start", "trough", "recovery", "depth", "days", "recovered")
#: Keys of :func:`return_distribution`, in report order.
DISTRIBUTION_KEYS: tuple[str, ...] = (
    "var",
    "cvar",
    "skew",
    "kurtosis",
    "best_day",
    "best_day_date",
    "worst_day",
    "worst_day_date",
    "best_month",
    "best_month_label",
    "worst_month",
    "worst_month_label",
    "positive_months",
    "n_days",
)
TRADING_DAYS = 252


# ----------------------------------------------------------------------- validation
def _dates(index: pd.Index, what: str) -> pd.DatetimeIndex:
    try:
        dates = pd.DatetimeIndex(index)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be indexed by dates: {exc}") from None
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise ValueError(f"{what} must have strictly increasing dates (sorted, no duplicates)")
    return dates


def _check_series(returns: pd.Series, what: str) -> pd.Series:
    """A float64 copy of a finite return Series on a strictly increasing DatetimeIndex."""
    if not isinstance(returns, pd.Series):
        raise ValueError(f"{what} must be a pandas Series indexed by date, got {type(returns)}")
    if len(returns) == 0:
        raise ValueError(f"{what} is empty; tear-sheet figures need at least one return")
    try:
        values = pd.to_numeric(returns, errors="raise").to_numpy(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold numeric returns: {exc}") from None
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{what} has a non-finite value at {returns.index[~finite][0]}")
    return pd.Series(values, index=_dates(returns.index, what), name=returns.name)


def _check_wide(wide: pd.DataFrame, what: str = "wide") -> pd.DataFrame:
    """A float64 copy of a dates × strategies table; NaN allowed, infinities not."""
    if not isinstance(wide, pd.DataFrame):
        raise ValueError(
            f"{what} must be a pandas DataFrame of dates × strategies, got {type(wide)}"
        )
    if wide.shape[0] == 0 or wide.shape[1] == 0:
        raise ValueError(f"{what} is empty; it needs at least one date and one strategy")
    try:
        values = wide.apply(pd.to_numeric, errors="raise").to_numpy(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold numeric returns: {exc}") from None
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values).any(axis=1))[0])
        raise ValueError(f"{what} has an infinite value at {wide.index[row]}")
    return pd.DataFrame(values, index=_dates(wide.index, what), columns=wide.columns)


def _check_positive_int(value: int, what: str) -> int:
    # bool is an int subclass; window=True is a mistake, not a window of 1.
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _iso(stamp: pd.Timestamp) -> str:
    return pd.Timestamp(stamp).date().isoformat()


# ------------------------------------------------------------------ relative figures
def _annual_growth(values: np.ndarray, periods_per_year: int) -> float | None:
    """Geometric annualised return ``prod(1 + r) ** (ppy / n) - 1``; None if undefined."""
    growth = np.prod(1.0 + values)
    if growth < 0:
        return None  # a NAV below zero has no real root
    with np.errstate(over="ignore"):  # a huge growth over few days annualises to inf
        return finite_or_none(np.power(growth, periods_per_year / len(values)) - 1.0)


def _capture(r: np.ndarray, b: np.ndarray, days: np.ndarray, ppy: int) -> float | None:
    if not days.any():
        return None
    strategy, bench = _annual_growth(r[days], ppy), _annual_growth(b[days], ppy)
    if strategy is None or bench is None or bench == 0:
        return None
    return finite_or_none(strategy / bench)


def relative_metrics(
    returns: pd.Series,
    benchmark: pd.Series,
    *,
    periods_per_year: int = TRADING_DAYS,
) -> dict[str, float | int | None]:
    """Alpha, beta and the other figures of a strategy against its benchmark.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple net returns of the strategy, indexed by strictly increasing dates.
    benchmark : pandas.Series
        Daily simple returns of the benchmark; only the dates both series have count.
    periods_per_year : int, default=252
        Periods per year used to annualise.

    Returns
    -------
    dict
        With exactly the keys of :data:`RELATIVE_KEYS`, over the ``n`` common dates:

        * ``beta``: OLS slope of ``r`` on ``b``, ``cov(r, b) / var(b)`` (both ddof=1).
        * ``alpha``: annualised Jensen alpha with a zero risk-free rate, the OLS
          intercept times ``ppy``: ``(mean(r) - beta * mean(b)) * ppy``.
        * ``correlation``: Pearson correlation of ``r`` and ``b``.
        * ``tracking_error``: ``std(r - b, ddof=1) * sqrt(ppy)``; 0 when the difference
          is constant.
        * ``up_capture``: following empyrical ``up_capture``, the strategy's annualised
          geometric return on the days the benchmark was up (``b > 0``) divided by the
          benchmark's annualised geometric return on those same days, where the
          annualised return of ``k`` days is ``prod(1 + x) ** (ppy / k) - 1``.
        * ``down_capture``: the same on the days the benchmark was down (``b < 0``),
          following empyrical ``down_capture``; above 1 means the strategy lost more.
        * ``n_days``: number of common dates.

        A figure is None where it is undefined: fewer than 2 common dates (every figure
        but ``n_days``), a constant benchmark (``alpha``, ``beta``, ``correlation``), a
        constant strategy (``correlation``), no up / down day, a strategy NAV below 0
        over those days, or a zero denominator (the capture ratios).

    Raises
    ------
    ValueError
        When an input is not a Series, is empty, has non-finite values or unordered
        dates.

    References
    ----------
    empyrical ``up_capture`` / ``down_capture`` (Quantopian), the capture ratios of
    pyfolio's tear sheets.
    """
    ppy = _check_positive_int(periods_per_year, "periods_per_year")
    both = pd.concat(
        [_check_series(returns, "returns"), _check_series(benchmark, "benchmark")],
        axis=1,
        join="inner",  # both are finite: the common dates need no NaN dropping
    )
    r, b = both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()
    n = len(both)
    out: dict[str, float | int | None] = dict.fromkeys(RELATIVE_KEYS)
    out["n_days"] = n
    if n < 2:
        return out

    # Exact ptp tests: the variance of identical floats can come out as 1e-36, not 0.
    r_constant, b_constant = np.ptp(r) == 0, np.ptp(b) == 0
    if not b_constant:
        dr, db = r - r.mean(), b - b.mean()
        beta = float(dr @ db / (db @ db))  # the ddof cancels in cov / var
        out["beta"] = finite_or_none(beta)
        out["alpha"] = finite_or_none((r.mean() - beta * b.mean()) * ppy)
        if not r_constant:
            out["correlation"] = finite_or_none(dr @ db / math.sqrt((dr @ dr) * (db @ db)))
    active = r - b
    out["tracking_error"] = (
        0.0 if np.ptp(active) == 0 else finite_or_none(active.std(ddof=1) * math.sqrt(ppy))
    )
    out["up_capture"] = _capture(r, b, b > 0, ppy)
    out["down_capture"] = _capture(r, b, b < 0, ppy)
    return out


# ------------------------------------------------------------------------ drawdowns
def drawdown_periods(returns: pd.Series, top: int | None = 5) -> pd.DataFrame:
    """The worst drawdown episodes of the compounded NAV, deepest first.

    An episode is one peak-to-recovery span: it opens on the last date the NAV stood at
    its running peak, runs while the NAV is below that peak, and closes on the first date
    the NAV is back at or above it. Episodes therefore never overlap.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple net returns, indexed by strictly increasing dates. The NAV starts
        at 1 before the first return, as in
        :func:`~alphaseq.backtest.metrics.performance_metrics`.
    top : int or None, default=5
        Number of episodes kept; None keeps them all.

    Returns
    -------
    pandas.DataFrame
        One row per episode (at most ``top``), sorted by depth, worst first (ties in
        date order), with the columns of :data:`DRAWDOWN_COLUMNS`:

        * ``start``: the peak date; a peak at the starting NAV of 1 is dated to the
          first date, as ``max_drawdown_start`` is.
        * ``trough``: the date of the lowest NAV of the episode (the first one on ties).
        * ``recovery``: the first date the NAV regains the peak; NaT when it has not by
          the last date.
        * ``depth``: ``nav(trough) / peak - 1`` (< 0).
        * ``days``: trading days (index positions) from ``start`` to ``recovery``, or
          to the last date when not recovered.
        * ``recovered``: whether the peak was regained.

        The first row's ``depth``, ``start`` and ``trough`` are ``performance_metrics``'
        ``max_drawdown``, ``max_drawdown_start`` and ``max_drawdown_end``. Empty (with
        these columns) when the NAV never falls below its running peak.

    Raises
    ------
    ValueError
        When ``returns`` is not a Series, is empty, has non-finite values or unordered
        dates, or when ``top`` is not a positive integer.
    """
    series = _check_series(returns, "returns")
    if top is not None:
        top = _check_positive_int(top, "top")
    dates = series.index
    # The same arithmetic as performance_metrics, so that depths agree to the bit.
    nav = np.cumprod(1.0 + series.to_numpy())
    peak = np.maximum.accumulate(np.maximum(nav, 1.0))
    drawdown = nav / peak - 1.0

    under = np.concatenate([[False], drawdown < 0, [False]])
    edges = np.flatnonzero(np.diff(under.astype(np.int8)))
    rows = []
    for first, end in zip(edges[::2], edges[1::2], strict=True):  # under on [first, end)
        trough = first + int(np.argmin(drawdown[first:end]))
        recovered = end < len(nav)
        stop = end if recovered else len(nav) - 1
        start = max(first - 1, 0)  # an underwater first day peaks at the starting NAV
        rows.append(
            {
                "start": dates[start],
                "trough": dates[trough],
                "recovery": dates[end] if recovered else pd.NaT,
                "depth": float(drawdown[trough]),
                "days": int(stop - start),
                "recovered": bool(recovered),
            }
        )
    table = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    table = table.astype(
        {
            "start": dates.dtype,  # the input's unit (pandas may parse dates to us)
            "trough": dates.dtype,
            "recovery": dates.dtype,
            "depth": np.float64,
            "days": np.int64,
            "recovered": bool,
        }
    )
    # Stable sort: of two equally deep episodes the earlier comes first, as argmin has it.
    table = table.sort_values("depth", kind="stable").reset_index(drop=True)
    return table if top is None else table.head(top)


# ------------------------------------------------------------------------- calendar
def yearly_returns(wide: pd.DataFrame) -> pd.DataFrame:
    """Compounded return of each strategy in each calendar year.

    Parameters
    ----------
    wide : pandas.DataFrame
        Daily simple returns, dates × strategies; NaN where a strategy has no return.

    Returns
    -------
    pandas.DataFrame
        Index: the calendar years of ``wide``'s dates (``int``, named ``"year"``);
        columns: the strategies. Each cell is ``prod(1 + r) - 1`` over the days of that
        year the strategy has a return, NaN when it has none.

    Raises
    ------
    ValueError
        When ``wide`` is not a DataFrame, is empty, has infinite values or unordered
        dates.
    """
    frame = _check_wide(wide)
    years = pd.Index(frame.index.year.astype(np.int64), name="year")
    # min_count=1: a year without any return is NaN, not a product of nothing (0 %).
    growth = (1.0 + frame).groupby(years).prod(min_count=1)
    return growth - 1.0


def _monthly(series: pd.Series) -> pd.Series:
    """Compounded return of each calendar month, indexed by monthly Period."""
    months = series.index.to_period("M")
    return (1.0 + series).groupby(months).prod() - 1.0


# -------------------------------------------------------------------------- rolling
def rolling_volatility(
    wide: pd.DataFrame, window: int, *, periods_per_year: int = TRADING_DAYS
) -> pd.DataFrame:
    """Annualised volatility over a trailing window of days.

    Parameters
    ----------
    wide : pandas.DataFrame
        Daily simple returns, dates × strategies; NaN where a strategy has no return.
    window : int
        Trading days (rows) per window.
    periods_per_year : int, default=252
        Periods per year used to annualise.

    Returns
    -------
    pandas.DataFrame
        Like ``wide``: ``std(r, ddof=1) * sqrt(ppy)`` over the last ``window`` rows,
        NaN unless all of them hold a return (full windows only).

    Raises
    ------
    ValueError
        On an invalid ``wide`` (see :func:`yearly_returns`) or a non-positive
        ``window`` / ``periods_per_year``.
    """
    frame = _check_wide(wide)
    window = _check_positive_int(window, "window")
    ppy = _check_positive_int(periods_per_year, "periods_per_year")
    return frame.rolling(window, min_periods=window).std(ddof=1) * math.sqrt(ppy)


def rolling_beta(wide: pd.DataFrame, benchmark: pd.Series, window: int) -> pd.DataFrame:
    """Beta of each strategy against the benchmark over a trailing window of days.

    Parameters
    ----------
    wide : pandas.DataFrame
        Daily simple returns, dates × strategies; NaN where a strategy has no return.
    benchmark : pandas.Series
        Daily simple returns of the benchmark. It is aligned to ``wide``'s dates: its
        other dates are ignored, and a date of ``wide`` it lacks counts as missing.
    window : int
        Trading days (rows of ``wide``) per window.

    Returns
    -------
    pandas.DataFrame
        Like ``wide``: ``cov(r, b) / var(b)`` (ddof=1) over the last ``window`` rows,
        NaN unless both the strategy and the benchmark have a return on all of them
        (full windows only) or when the benchmark is constant over the window.

    Raises
    ------
    ValueError
        On an invalid ``wide`` or ``benchmark`` or a non-positive ``window``.
    """
    frame = _check_wide(wide)
    bench = _check_series(benchmark, "benchmark").reindex(frame.index)
    window = _check_positive_int(window, "window")
    out = {}
    for position in range(frame.shape[1]):  # by position: column names may repeat
        r = frame.iloc[:, position]
        both = r.notna() & bench.notna()
        # Mask both sides alike so the variance uses the dates the covariance uses.
        x, b = r.where(both), bench.where(both)
        cov = x.rolling(window, min_periods=window).cov(b)
        var = b.rolling(window, min_periods=window).var()  # exactly 0 for a constant window
        out[position] = cov / var.where(var > 0)
    result = pd.DataFrame(out, index=frame.index)
    result.columns = frame.columns
    return result


# --------------------------------------------------------------------- distribution
def return_distribution(
    returns: pd.Series, *, level: float = 0.95
) -> dict[str, float | int | str | None]:
    """Tail risk, shape and extremes of the daily and monthly returns.

    Parameters
    ----------
    returns : pandas.Series
        Daily simple net returns, indexed by strictly increasing dates.
    level : float, default=0.95
        Confidence level of the Value at Risk, in (0, 1).

    Returns
    -------
    dict
        With exactly the keys of :data:`DISTRIBUTION_KEYS`:

        * ``var``: historical daily Value at Risk, reported as a return (negative for a
          loss): the ``1 - level`` quantile of the daily returns, linearly interpolated
          between order statistics (``numpy.quantile``'s default).
        * ``cvar``: Conditional VaR (expected shortfall): the mean of the daily returns
          ``<= var``.
        * ``skew``, ``kurtosis``: pandas' bias-corrected sample skewness and excess
          kurtosis (:meth:`pandas.Series.skew`, :meth:`pandas.Series.kurt`); None with
          fewer than 3 (4) returns or constant returns.
        * ``best_day``, ``worst_day`` and their ISO dates ``best_day_date``,
          ``worst_day_date`` (the first one on ties).
        * ``best_month``, ``worst_month``: the highest and lowest compounded calendar
          month return ``prod(1 + r) - 1`` (partial first and last months included),
          with ``best_month_label`` / ``worst_month_label`` as ``"YYYY-MM"``.
        * ``positive_months``: share of calendar months with a return > 0.
        * ``n_days``: number of daily returns.

    Raises
    ------
    ValueError
        When ``returns`` is not a Series, is empty, has non-finite values or unordered
        dates, or when ``level`` is not in (0, 1).
    """
    series = _check_series(returns, "returns")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    r = series.to_numpy()
    var = float(np.quantile(r, 1.0 - level))
    constant = np.ptp(r) == 0
    best, worst = int(np.argmax(r)), int(np.argmin(r))
    months = _monthly(series)
    best_month, worst_month = months.idxmax(), months.idxmin()
    return {
        "var": finite_or_none(var),
        # The minimum is always <= any quantile, so the tail is never empty.
        "cvar": finite_or_none(r[r <= var].mean()),
        "skew": None if constant else finite_or_none(series.skew()),
        "kurtosis": None if constant else finite_or_none(series.kurt()),
        "best_day": float(r[best]),
        "best_day_date": _iso(series.index[best]),
        "worst_day": float(r[worst]),
        "worst_day_date": _iso(series.index[worst]),
        "best_month": finite_or_none(months[best_month]),
        "best_month_label": str(best_month),
        "worst_month": finite_or_none(months[worst_month]),
        "worst_month_label": str(worst_month),
        "positive_months": float((months > 0).mean()),
        "n_days": len(r),
    }
