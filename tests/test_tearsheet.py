"""Tear-sheet figures against hand computations on small planted series.

Each figure is written out with plain arithmetic on a handful of values (or checked
against an independent routine: :mod:`statistics`, :mod:`scipy.stats`, an underwater
curve written in pandas), so that a change of definition shows up as a failing number.
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alphaseq.backtest import (
    DISTRIBUTION_KEYS,
    DRAWDOWN_COLUMNS,
    RELATIVE_KEYS,
    drawdown_periods,
    performance_metrics,
    relative_metrics,
    return_distribution,
    rolling_beta,
    rolling_volatility,
    yearly_returns,
)

PPY = 252


def series(values, start="2021-01-04") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


def assert_json_safe(figures: dict) -> None:
    # allow_nan=False: a NaN or an infinity anywhere would raise here.
    json.dumps(figures, allow_nan=False)
    for value in figures.values():
        assert value is None or type(value) in (float, int, str)


# ------------------------------------------------------------------ relative figures
BENCH = [0.01, -0.02, 0.015, 0.003, -0.007, 0.012, -0.004, 0.008]


def test_alpha_beta_of_a_planted_linear_strategy():
    b = series(BENCH)
    r = 0.001 + 1.5 * b
    m = relative_metrics(r, b)
    assert tuple(m) == RELATIVE_KEYS
    assert m["beta"] == pytest.approx(1.5, rel=1e-12)
    assert m["alpha"] == pytest.approx(0.001 * 252, rel=1e-9)  # 0.252
    assert m["correlation"] == pytest.approx(1.0, rel=1e-12)
    # r - b = 0.001 + 0.5 b, whose std is half the benchmark's.
    assert m["tracking_error"] == pytest.approx(
        0.5 * statistics.stdev(BENCH) * math.sqrt(252), rel=1e-12
    )
    assert m["n_days"] == 8
    assert_json_safe(m)


def test_beta_and_correlation_by_hand():
    b = [0.01, -0.01, 0.02, 0.0]
    r = [0.02, 0.0, 0.01, -0.01]
    m = relative_metrics(series(r), series(b), periods_per_year=10)
    # means: b 0.005, r 0.005; deviations b .005 -.015 .015 -.005, r .015 -.005 .005 -.015
    sxy = 0.005 * 0.015 + 0.015 * 0.005 + 0.015 * 0.005 + 0.005 * 0.015  # 3e-4
    sxx = 0.005**2 + 0.015**2 + 0.015**2 + 0.005**2  # 5e-4, also for r
    assert m["beta"] == pytest.approx(sxy / sxx, rel=1e-12)  # 0.6
    assert m["alpha"] == pytest.approx((0.005 - 0.6 * 0.005) * 10, rel=1e-9)
    assert m["correlation"] == pytest.approx(sxy / sxx, rel=1e-12)
    diff = [0.01, 0.01, -0.01, -0.01]  # mean 0, squares 4e-4 over ddof=1
    assert m["tracking_error"] == pytest.approx(math.sqrt(4e-4 / 3) * math.sqrt(10), rel=1e-12)
    assert np.mean(diff) == 0


def test_capture_ratios_by_hand():
    b = [0.01, -0.02, 0.02, -0.01, 0.0]
    r = [0.02, -0.01, 0.03, -0.03, 0.005]
    # Up days (b > 0): 0 and 2; down days (b < 0): 1 and 3; the flat day is in neither.
    up_r, up_b = 1.02 * 1.03, 1.01 * 1.02
    down_r, down_b = 0.99 * 0.97, 0.98 * 0.99
    m = relative_metrics(series(r), series(b))
    assert m["up_capture"] == pytest.approx(
        (up_r ** (252 / 2) - 1) / (up_b ** (252 / 2) - 1), rel=1e-10
    )
    assert m["down_capture"] == pytest.approx(
        (down_r ** (252 / 2) - 1) / (down_b ** (252 / 2) - 1), rel=1e-10
    )
    # With two periods a year, two days are one year: no annualising exponent at all.
    m = relative_metrics(series(r), series(b), periods_per_year=2)
    assert m["up_capture"] == pytest.approx(0.0506 / 0.0302, rel=1e-10)
    assert m["down_capture"] == pytest.approx(0.0397 / 0.0298, rel=1e-10)


def test_capture_of_the_benchmark_itself_is_one():
    b = series(BENCH)
    m = relative_metrics(b, b)
    assert m["up_capture"] == pytest.approx(1.0, rel=1e-12)
    assert m["down_capture"] == pytest.approx(1.0, rel=1e-12)
    assert m["tracking_error"] == 0.0
    assert m["alpha"] == pytest.approx(0.0, abs=1e-15)


def test_relative_metrics_use_common_dates_only():
    b = series(BENCH)
    r = 0.001 + 1.5 * b
    # The strategy lacks the first two dates; the benchmark lacks the last one.
    m = relative_metrics(r.iloc[2:], b.iloc[:-1])
    assert m["n_days"] == 5
    assert m["beta"] == pytest.approx(1.5, rel=1e-12)
    assert m["alpha"] == pytest.approx(0.252, rel=1e-9)


def test_relative_undefined_cases_are_none():
    b = series(BENCH)
    one = relative_metrics(b.iloc[:1], b.iloc[:1])
    assert one == {**dict.fromkeys(RELATIVE_KEYS), "n_days": 1}
    apart = relative_metrics(series([0.01, 0.02]), series([0.01, 0.02], start="2022-01-03"))
    assert apart == {**dict.fromkeys(RELATIVE_KEYS), "n_days": 0}

    flat = relative_metrics(b, series([0.001] * 8))  # constant benchmark: no beta
    assert flat["alpha"] is flat["beta"] is flat["correlation"] is None
    assert flat["down_capture"] is None  # it is never down
    assert flat["up_capture"] is not None
    assert flat["tracking_error"] == pytest.approx(
        statistics.stdev(BENCH) * math.sqrt(252), rel=1e-12
    )

    still = relative_metrics(series([0.002] * 8), b)  # constant strategy
    assert still["correlation"] is None
    assert still["beta"] == pytest.approx(0.0, abs=1e-12)
    assert still["alpha"] == pytest.approx(0.002 * 252, rel=1e-9)

    rising = relative_metrics(series([0.01, 0.02, 0.0]), series([0.01, 0.02, 0.03]))
    assert rising["down_capture"] is None and rising["up_capture"] is not None
    # A NAV below zero on the up days has no annualised return, hence no ratio.
    ruin = relative_metrics(series([-1.5, 0.01]), series([0.01, -0.01]))
    assert ruin["up_capture"] is None
    for figures in (one, apart, flat, still, rising, ruin):
        assert_json_safe(figures)


# ------------------------------------------------------------------------ drawdowns
# Planted NAV: peak 1.10 on day 0, a 10 % fall to 0.99, a new high of 1.21 on day 3
# (recovered), then a 20 % fall to 0.968 on day 4 that is still under water at the end.
NAV = [1.10, 0.99, 1.045, 1.21, 0.968, 1.089, 1.0, 1.05]


def planted_drawdowns() -> pd.Series:
    nav = np.array([1.0, *NAV])
    return series(nav[1:] / nav[:-1] - 1.0)


def test_drawdown_periods_on_a_planted_path():
    r = planted_drawdowns()
    d = r.index
    table = drawdown_periods(r)
    assert tuple(table.columns) == DRAWDOWN_COLUMNS
    assert len(table) == 2
    worst, second = table.iloc[0], table.iloc[1]
    # The open one: peak day 3, trough day 4, still below 1.21 on the last day (day 7).
    assert (worst["start"], worst["trough"]) == (d[3], d[4])
    assert pd.isna(worst["recovery"]) and not worst["recovered"]
    assert worst["depth"] == pytest.approx(0.968 / 1.21 - 1, rel=1e-9)  # -0.2
    assert worst["days"] == 7 - 3
    # The recovered one: peak day 0, trough day 1, back above 1.10 on day 3.
    assert (second["start"], second["trough"], second["recovery"]) == (d[0], d[1], d[3])
    assert second["recovered"]
    assert second["depth"] == pytest.approx(0.99 / 1.10 - 1, rel=1e-9)  # -0.1
    assert second["days"] == 3
    assert table["days"].dtype == np.int64 and table["recovered"].dtype == bool
    assert table["depth"].dtype == np.float64


def test_drawdown_periods_top_and_first_day_loss():
    r = planted_drawdowns()
    assert len(drawdown_periods(r, top=1)) == 1
    assert len(drawdown_periods(r, top=None)) == 2
    assert drawdown_periods(r, top=1)["depth"].iloc[0] == pytest.approx(-0.2, rel=1e-9)
    # A loss on the first day falls from the starting NAV of 1, dated to the first day.
    # NAV 0.95, 0.969, 1.00776: back above 1 on day 2.
    first = series([-0.05, 0.02, 0.04])
    row = drawdown_periods(first).iloc[0]
    assert (row["start"], row["trough"]) == (first.index[0], first.index[0])
    assert row["recovery"] == first.index[2]
    assert row["days"] == 2
    assert row["depth"] == pytest.approx(-0.05, rel=1e-12)


def test_drawdown_periods_peak_is_the_last_date_at_the_peak():
    # A flat day at the peak moves the start to it, as max_drawdown_start does.
    r = series([0.02, 0.0, -0.01, 0.03])
    row = drawdown_periods(r).iloc[0]
    assert row["start"] == r.index[1]
    assert (row["trough"], row["recovery"]) == (r.index[2], r.index[3])
    assert row["days"] == 2


def test_drawdown_periods_empty_without_a_drawdown():
    table = drawdown_periods(series([0.01, 0.0, 0.02]))
    assert table.empty and tuple(table.columns) == DRAWDOWN_COLUMNS


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_worst_drawdown_matches_performance_metrics(seed):
    rng = np.random.default_rng(seed)
    r = series(rng.normal(0.0004, 0.015, 600))
    table = drawdown_periods(r, top=None)
    m = performance_metrics(r)
    worst = table.iloc[0]
    assert worst["depth"] == m["max_drawdown"]  # bit-identical, same arithmetic
    assert worst["start"].date().isoformat() == m["max_drawdown_start"]
    assert worst["trough"].date().isoformat() == m["max_drawdown_end"]
    assert table["depth"].is_monotonic_increasing  # worst first

    # Against a pandas underwater curve (the report's definition): each episode's minimum
    # is its depth, the curve is 0 on its recovery, and the episodes cover every
    # underwater day exactly once.
    nav = (1.0 + r).cumprod()
    curve = nav / nav.cummax().clip(lower=1.0) - 1.0
    position = {date: i for i, date in enumerate(r.index)}
    covered = np.zeros(len(r), dtype=int)
    for row in table.itertuples():
        start = position[row.start]
        end = position[row.recovery] if row.recovered else len(r)
        span = curve.iloc[start:end]
        assert span.min() == row.depth and curve.loc[row.trough] == row.depth
        if row.recovered:
            assert curve.loc[row.recovery] == 0.0
        covered[start + (curve.iloc[start] == 0) : end] += 1
        assert row.days == (end if row.recovered else len(r) - 1) - start
    assert (covered == (curve < 0).to_numpy()).all()


# ------------------------------------------------------------------------- calendar
def test_yearly_returns_across_a_year_boundary():
    dates = pd.DatetimeIndex(
        ["2021-12-29", "2021-12-30", "2021-12-31", "2022-01-03", "2022-01-04", "2022-01-05"]
    )
    wide = pd.DataFrame(
        {
            "model": [0.01, -0.02, 0.03, 0.02, np.nan, -0.01],
            "late": [np.nan, np.nan, np.nan, 0.05, 0.01, np.nan],
        },
        index=dates,
    )
    table = yearly_returns(wide)
    assert list(table.index) == [2021, 2022] and table.index.name == "year"
    assert table.index.dtype == np.int64
    assert list(table.columns) == ["model", "late"]
    assert table.loc[2021, "model"] == pytest.approx(1.01 * 0.98 * 1.03 - 1, rel=1e-12)
    assert table.loc[2022, "model"] == pytest.approx(1.02 * 0.99 - 1, rel=1e-12)  # NaN skipped
    assert np.isnan(table.loc[2021, "late"])  # no return that year: NaN, not 0
    assert table.loc[2022, "late"] == pytest.approx(1.05 * 1.01 - 1, rel=1e-12)


# -------------------------------------------------------------------------- rolling
def test_rolling_volatility_by_hand():
    a = [0.01, -0.02, 0.03, 0.0, -0.01]
    wide = pd.DataFrame({"a": a, "b": [np.nan, 0.01, 0.02, 0.04, 0.0]}, index=series(a).index)
    vol = rolling_volatility(wide, 3)
    assert vol.shape == wide.shape and list(vol.columns) == ["a", "b"]
    assert vol["a"].iloc[:2].isna().all()
    for end in (3, 4, 5):
        expected = statistics.stdev(a[end - 3 : end]) * math.sqrt(252)
        assert vol["a"].iloc[end - 1] == pytest.approx(expected, rel=1e-10)
    assert vol["b"].iloc[:3].isna().all()  # the first full window of b ends on day 3
    assert vol["b"].iloc[3] == pytest.approx(statistics.stdev([0.01, 0.02, 0.04]) * math.sqrt(252))
    quarterly = rolling_volatility(wide, 3, periods_per_year=4)
    assert quarterly["a"].iloc[2] == pytest.approx(statistics.stdev(a[:3]) * 2, rel=1e-10)


def test_rolling_beta_by_hand():
    b = series([0.01, -0.01, 0.02, 0.0, 0.005, 0.005, 0.005, -0.01])
    wide = pd.DataFrame(
        {
            "levered": 0.001 + 2.0 * b,
            "hand": [0.02, 0.0, 0.01, -0.01, 0.0, 0.01, 0.0, 0.01],
            "late": [np.nan, np.nan, *(0.5 * b.iloc[2:])],
        },
        index=b.index,
    )
    beta = rolling_beta(wide, b, 4)
    assert beta.shape == wide.shape
    assert beta.iloc[:3].isna().all().all()
    # Days 4-6 of the benchmark are flat, but every 4-day window also holds a moving
    # day, so beta is defined in all full windows: 2 for the levered copy.
    np.testing.assert_allclose(beta["levered"].iloc[3:], 2.0, rtol=1e-9)
    # First window of "hand" is the one of test_beta_and_correlation_by_hand: 0.6.
    assert beta["hand"].iloc[3] == pytest.approx(0.6, rel=1e-9)
    assert beta["late"].iloc[:5].isna().all()  # first full window ends on day 5
    np.testing.assert_allclose(beta["late"].iloc[5:], 0.5, rtol=1e-9)


def test_rolling_beta_constant_or_missing_benchmark_is_nan():
    b = series([0.01, 0.003, 0.003, 0.003, -0.02, 0.01])
    wide = pd.DataFrame({"s": [0.01, 0.02, -0.01, 0.0, 0.01, 0.02]}, index=b.index)
    beta = rolling_beta(wide, b, 3)
    assert np.isnan(beta["s"].iloc[3])  # benchmark constant over days 1-3
    assert beta["s"].iloc[[2, 4, 5]].notna().all()
    # A date the benchmark lacks breaks every window that contains it.
    gappy = rolling_beta(wide, b.drop(b.index[4]), 3)
    assert gappy["s"].iloc[4:].isna().all()
    assert np.isfinite(gappy["s"].iloc[2])


# --------------------------------------------------------------------- distribution
TWENTY = [
    -0.06, -0.04, -0.03, -0.02, -0.015, -0.01, -0.005, 0.0, 0.002, 0.004,
    0.006, 0.008, 0.01, 0.012, 0.014, 0.016, 0.018, 0.02, 0.025, 0.03,
]  # fmt: skip


@pytest.mark.parametrize(
    ("level", "var", "cvar"),
    [
        # Quantile position (1 - level) * 19 between the sorted values s[0] .. s[19].
        (0.95, -0.06 + 0.95 * 0.02, -0.06),  # 0.95: s0 + .95 (s1 - s0) = -0.041
        (0.90, -0.04 + 0.90 * 0.01, (-0.06 - 0.04) / 2),  # 1.9: -0.031
        (0.75, -0.015 + 0.75 * 0.005, (-0.06 - 0.04 - 0.03 - 0.02 - 0.015) / 5),  # 4.75
    ],
)
def test_var_and_cvar_on_twenty_values(level, var, cvar):
    shuffled = np.random.default_rng(7).permutation(TWENTY)
    figures = return_distribution(series(shuffled), level=level)
    assert figures["var"] == pytest.approx(var, rel=1e-9)
    assert figures["cvar"] == pytest.approx(cvar, rel=1e-9)
    assert figures["n_days"] == 20


def test_shape_figures_match_scipy():
    shuffled = np.random.default_rng(7).permutation(TWENTY)
    figures = return_distribution(series(shuffled))
    assert figures["skew"] == pytest.approx(stats.skew(TWENTY, bias=False), rel=1e-9)
    assert figures["kurtosis"] == pytest.approx(
        stats.kurtosis(TWENTY, fisher=True, bias=False), rel=1e-9
    )


def test_best_and_worst_day_and_month():
    dates = pd.DatetimeIndex(
        ["2021-01-28", "2021-01-29", "2021-02-01", "2021-02-26", "2021-03-01", "2021-03-02"]
    )
    r = pd.Series([0.01, 0.02, -0.03, 0.01, 0.005, -0.001], index=dates)
    figures = return_distribution(r)
    assert tuple(figures) == DISTRIBUTION_KEYS
    assert (figures["best_day"], figures["best_day_date"]) == (0.02, "2021-01-29")
    assert (figures["worst_day"], figures["worst_day_date"]) == (-0.03, "2021-02-01")
    # Jan 1.01 * 1.02 - 1 = 0.0302; Feb 0.97 * 1.01 - 1 = -0.0203; Mar 1.005 * 0.999 - 1.
    assert figures["best_month"] == pytest.approx(0.0302, rel=1e-12)
    assert figures["best_month_label"] == "2021-01"
    assert figures["worst_month"] == pytest.approx(-0.0203, rel=1e-12)
    assert figures["worst_month_label"] == "2021-02"
    assert figures["positive_months"] == pytest.approx(2 / 3)
    assert figures["n_days"] == 6
    assert_json_safe(figures)


def test_distribution_undefined_cases_are_none():
    flat = return_distribution(series([0.001] * 5))
    assert flat["skew"] is None and flat["kurtosis"] is None
    assert flat["var"] == pytest.approx(0.001) and flat["cvar"] == pytest.approx(0.001)
    assert flat["positive_months"] == 1.0
    short = return_distribution(series([0.01, -0.02]))
    assert short["skew"] is None and short["kurtosis"] is None
    assert short["worst_month"] == pytest.approx(1.01 * 0.98 - 1)
    assert short["positive_months"] == 0.0
    for figures in (flat, short):
        assert_json_safe(figures)


# ----------------------------------------------------------------------- validation
GOOD = series([0.01, -0.02, 0.03, 0.0, 0.01])
WIDE = GOOD.to_frame("s")
UNORDERED = GOOD.iloc[[1, 0, 2, 3, 4]]
DUPLICATED = pd.Series(GOOD.to_numpy(), index=GOOD.index[[0, 1, 1, 2, 3]])
WITH_NAN = GOOD.where(GOOD.index != GOOD.index[2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: drawdown_periods(GOOD.iloc[:0]), "returns is empty"),
        (lambda: drawdown_periods(list(GOOD)), "returns must be a pandas Series"),
        (lambda: return_distribution(UNORDERED), "returns must have strictly increasing"),
        (lambda: return_distribution(DUPLICATED), "returns must have strictly increasing"),
        (lambda: return_distribution(WITH_NAN), "returns has a non-finite value"),
        (lambda: drawdown_periods(GOOD.replace(0.0, np.inf)), "returns has a non-finite"),
        (lambda: drawdown_periods(GOOD.astype(str) + "x"), "returns must hold numeric"),
        (lambda: relative_metrics(GOOD, WITH_NAN), "benchmark has a non-finite value"),
        (lambda: relative_metrics(GOOD.to_numpy(), GOOD), "returns must be a pandas Series"),
        (lambda: relative_metrics(GOOD, GOOD.iloc[:0]), "benchmark is empty"),
        (lambda: rolling_beta(WIDE, UNORDERED, 2), "benchmark must have strictly"),
        (lambda: yearly_returns(GOOD), "wide must be a pandas DataFrame"),
        (lambda: yearly_returns(WIDE.iloc[:0]), "wide is empty"),
        (lambda: yearly_returns(WIDE.iloc[[1, 0, 2]]), "wide must have strictly increasing"),
        (lambda: rolling_volatility(WIDE.replace(0.0, -np.inf), 2), "wide has an infinite"),
        (lambda: rolling_volatility(WIDE, 0), "window must be a positive integer"),
        (lambda: rolling_beta(WIDE, GOOD, 2.5), "window must be a positive integer"),
        (lambda: drawdown_periods(GOOD, top=0), "top must be a positive integer"),
        (lambda: return_distribution(GOOD, level=1.0), "level must be a number in"),
        (lambda: relative_metrics(GOOD, GOOD, periods_per_year=0), "periods_per_year must"),
    ],
)
def test_validation_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_nan_in_wide_means_not_trading_yet():
    wide = pd.DataFrame({"s": [np.nan, np.nan, 0.01, 0.02]}, index=GOOD.index[:4])
    assert yearly_returns(wide).loc[2021, "s"] == pytest.approx(1.01 * 1.02 - 1)
    assert rolling_volatility(wide, 2)["s"].notna().sum() == 1
