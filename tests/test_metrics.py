"""Performance and forecast metrics against independent computations.

Performance figures are checked against skfolio's measures where skfolio has one
(mean, sample standard deviation, semi-deviation, compounded drawdowns) and against
formulas written out by hand on a six-value series otherwise. Forecast figures are
checked date by date against :func:`scipy.stats.pearsonr` and :func:`scipy.stats.spearmanr`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from skfolio import measures

from alphaseq.backtest import (
    PERFORMANCE_KEYS,
    forecast_metrics,
    per_date_ic,
    performance_metrics,
)

PPY = 252
HAND = [0.01, -0.02, 0.03, 0.0, -0.01, 0.02]


def series(values, start="2021-01-04") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


# ------------------------------------------------------------------- performance figures
def test_hand_series_by_hand():
    m = performance_metrics(series(HAND), turnover=0.25)
    total = 1.01 * 0.98 * 1.03 * 1.0 * 0.99 * 1.02 - 1
    mean = 0.03 / 6
    # Deviations from 0.005: .005 -.025 .025 -.005 -.015 .015; squares sum to 1750e-6.
    std = math.sqrt(1750e-6 / 5)
    downside = math.sqrt((0.02**2 + 0.01**2) / 6)
    assert m["total_return"] == pytest.approx(total, rel=1e-12)
    assert m["ann_return"] == pytest.approx((1 + total) ** (252 / 6) - 1, rel=1e-12)
    assert m["ann_vol"] == pytest.approx(std * math.sqrt(252), rel=1e-12)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252), rel=1e-12)
    # NAV 1.01, 0.9898, ...: the worst fall is day 2's 2 % from day 1's peak.
    assert m["max_drawdown"] == pytest.approx(-0.02, rel=1e-12)
    assert (m["max_drawdown_start"], m["max_drawdown_end"]) == ("2021-01-04", "2021-01-05")
    assert m["calmar"] == pytest.approx(m["ann_return"] / 0.02, rel=1e-12)
    assert m["hit_rate"] == 3 / 5  # the 0.0 day is left out
    assert m["turnover"] == 0.25
    assert m["information_ratio"] is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_skfolio_measures(seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0004, 0.012, 500)
    m = performance_metrics(series(r), periods_per_year=PPY)
    mean, std = measures.mean(r), measures.standard_deviation(r)  # sample std (ddof 1)
    downside = measures.semi_deviation(r, min_acceptable_return=0.0, biased=True)
    wealth = measures.get_cumulative_returns(r, compounded=True)
    drawdowns = measures.get_drawdowns(r, compounded=True)  # peak starts at wealth 1
    assert m["total_return"] == pytest.approx(wealth[-1] - 1, rel=1e-10)
    assert m["ann_return"] == pytest.approx(wealth[-1] ** (PPY / 500) - 1, rel=1e-10)
    assert m["ann_vol"] == pytest.approx(std * math.sqrt(PPY), rel=1e-12)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(PPY), rel=1e-10)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(PPY), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(-measures.max_drawdown(drawdowns), rel=1e-12)
    trough = int(np.argmin(drawdowns))
    assert m["max_drawdown_end"] == series(r).index[trough].date().isoformat()


def test_drawdown_dates_on_a_planted_path():
    r = series([0.05, 0.05, -0.1, 0.02, -0.2, 0.3, 0.1, -0.05], start="2022-03-01")
    m = performance_metrics(r)
    # Peak 1.05**2 on 2 March, trough 1.05**2 * 0.9 * 1.02 * 0.8 on 7 March (a Monday).
    assert m["max_drawdown"] == pytest.approx(0.9 * 1.02 * 0.8 - 1, rel=1e-12)
    assert (m["max_drawdown_start"], m["max_drawdown_end"]) == ("2022-03-02", "2022-03-07")


def test_drawdown_from_the_starting_nav_and_a_flat_peak():
    m = performance_metrics(series([-0.1, 0.05, 0.0, 0.2]))
    assert m["max_drawdown"] == pytest.approx(-0.1)
    assert m["max_drawdown_start"] == "2021-01-04"  # the starting NAV is the peak
    assert m["max_drawdown_end"] == "2021-01-04"
    # A peak held for two days: the drawdown starts on the last day at the peak.
    m = performance_metrics(series([0.1, 0.0, -0.05]))
    assert (m["max_drawdown_start"], m["max_drawdown_end"]) == ("2021-01-05", "2021-01-06")


def test_no_drawdown():
    m = performance_metrics(series([0.01, 0.02, 0.0]))
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_start"] is m["max_drawdown_end"] is m["calmar"] is None
    assert m["sortino"] is None  # no downside


def test_information_ratio_on_common_dates():
    r = series(HAND)
    b = series([0.02, 0.0, 0.01, 0.01, 0.0, 0.02, 0.03], start="2021-01-05")  # dates 2..8
    m = performance_metrics(r, benchmark=b)
    active = [-0.02 - 0.02, 0.03 - 0.0, 0.0 - 0.01, -0.01 - 0.01, 0.02 - 0.0]
    mean = sum(active) / 5
    std = math.sqrt(sum((a - mean) ** 2 for a in active) / 4)
    assert m["information_ratio"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-12)
    assert performance_metrics(r, benchmark=r)["information_ratio"] is None  # constant


def test_constant_and_single_returns():
    m = performance_metrics(series([0.001] * 10))
    assert m["sharpe"] is None  # std is 0: undefined, not infinite
    assert m["ann_vol"] == 0.0
    assert m["hit_rate"] == 1.0
    m = performance_metrics(series([0.0] * 5))
    assert m["hit_rate"] is None and m["sharpe"] is None and m["total_return"] == 0.0
    m = performance_metrics(series([0.01]))
    assert m["ann_vol"] is None and m["sharpe"] is None


def test_total_loss_and_negative_nav():
    m = performance_metrics(series([0.1, -1.0, 0.0]))
    assert m["ann_return"] == -1.0 and m["max_drawdown"] == -1.0 and m["calmar"] == -1.0
    assert performance_metrics(series([0.1, -1.5]))["ann_return"] is None


def test_keys_and_json_safety():
    m = performance_metrics(series(HAND), benchmark=series(HAND[::-1]), turnover=float("nan"))
    assert tuple(m) == PERFORMANCE_KEYS
    assert m["turnover"] is None
    json.dumps(m, allow_nan=False)
    assert all(value is None or type(value) in (float, str) for value in m.values())


def test_bad_return_series_are_refused():
    with pytest.raises(ValueError, match="empty"):
        performance_metrics(series([]))
    with pytest.raises(ValueError, match="non-finite value at 2021-01-05"):
        performance_metrics(series([0.01, np.nan]))
    with pytest.raises(ValueError, match="increasing dates"):
        performance_metrics(series(HAND)[::-1])
    with pytest.raises(TypeError, match="pandas Series"):
        performance_metrics(np.array(HAND))


# ---------------------------------------------------------------------- forecast figures
def forecast_sample(seed: int = 0):
    """Shuffled (date, prediction, label) samples with ties, NaN and dates to skip."""
    rng = np.random.default_rng(seed)
    dates = np.repeat(pd.bdate_range("2020-01-01", periods=12).to_numpy(), 15)
    pred = np.round(rng.normal(size=len(dates)), 1)  # rounding makes ties
    label = 0.3 * pred + rng.normal(size=len(dates))
    pred[rng.random(len(dates)) < 0.1] = np.nan
    label[rng.random(len(dates)) < 0.1] = np.nan
    day = pd.DatetimeIndex(dates)
    pred[(day == day[0]) & ~np.isin(np.arange(len(dates)), [0, 1])] = np.nan  # 2 samples
    pred[day == day[15]] = 0.7  # constant prediction
    order = rng.permutation(len(dates))
    return pred[order], label[order], dates[order]


def scipy_per_date(pred, label, dates):
    rows = []
    for day in np.unique(dates):
        on = (dates == day) & np.isfinite(pred) & np.isfinite(label)
        p, y = pred[on], label[on]
        if on.sum() < 3 or np.ptp(p) == 0 or np.ptp(y) == 0:
            continue
        rows.append((day, stats.pearsonr(p, y)[0], stats.spearmanr(p, y)[0], int(on.sum())))
    return pd.DataFrame(rows, columns=["date", "ic", "rank_ic", "n"])


def test_per_date_ic_matches_scipy():
    pred, label, dates = forecast_sample()
    got = per_date_ic(pred, label, dates)
    want = scipy_per_date(pred, label, dates)
    assert len(want) == 10  # two of the twelve dates are skipped
    assert list(got.columns) == ["date", "ic", "rank_ic", "n"]
    np.testing.assert_array_equal(got["date"].to_numpy(), want["date"].to_numpy())
    np.testing.assert_array_equal(got["n"].to_numpy(), want["n"].to_numpy())
    np.testing.assert_allclose(got["ic"], want["ic"], rtol=1e-12)
    np.testing.assert_allclose(got["rank_ic"], want["rank_ic"], rtol=1e-12)


def test_forecast_metrics_against_scipy_and_by_hand():
    pred, label, dates = forecast_sample(1)
    m = forecast_metrics(pred, label, dates)
    want = scipy_per_date(pred, label, dates)
    ic, rank_ic = want["ic"].to_numpy(), want["rank_ic"].to_numpy()
    assert m["ic"] == pytest.approx(ic.mean(), rel=1e-12)
    assert m["rank_ic"] == pytest.approx(rank_ic.mean(), rel=1e-12)
    assert m["icir"] == pytest.approx(ic.mean() / ic.std(ddof=1), rel=1e-10)
    assert m["rank_icir"] == pytest.approx(rank_ic.mean() / rank_ic.std(ddof=1), rel=1e-10)
    assert m["n_dates"] == 10
    finite = np.isfinite(pred) & np.isfinite(label)
    assert m["n_predictions"] == int(finite.sum())
    assert m["mse"] == pytest.approx(np.mean((pred[finite] - label[finite]) ** 2), rel=1e-12)
    json.dumps(m, allow_nan=False)


def test_mse_and_direction_accuracy_by_hand():
    pred = [1.0, -1.0, 0.0, 2.0, 0.5]
    label = [0.5, 0.5, 1.0, -1.0, 0.25]
    m = forecast_metrics(pred, label, ["d"] * 5)
    # Pairs without a zero: agree, disagree, disagree, agree.
    assert m["direction_accuracy"] == 2 / 4
    assert m["mse"] == pytest.approx((0.25 + 2.25 + 1.0 + 9.0 + 0.0625) / 5)
    assert m["n_dates"] == 1 and m["icir"] is None and m["rank_icir"] is None
    assert m["ic"] == pytest.approx(stats.pearsonr(pred, label)[0], rel=1e-12)


def test_panel_inputs_equal_flat_inputs():
    rng = np.random.default_rng(3)
    pred, label = rng.normal(size=(6, 9)), rng.normal(size=(6, 9))
    days = pd.bdate_range("2021-01-01", periods=6).to_numpy()
    flat = forecast_metrics(pred.ravel(), label.ravel(), np.repeat(days, 9))
    assert forecast_metrics(pred, label, days) == flat


def test_forecast_edge_cases():
    m = forecast_metrics([1.0, 1.0, 1.0], [0.1, 0.2, 0.3], ["d"] * 3)
    assert m["ic"] is None and m["n_dates"] == 0 and m["n_predictions"] == 3
    assert per_date_ic([1.0, 1.0, 1.0], [0.1, 0.2, 0.3], ["d"] * 3).empty
    with pytest.raises(ValueError, match="finite"):
        forecast_metrics([np.nan, 1.0], [1.0, np.nan], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        forecast_metrics([1.0, 2.0], [1.0], ["a", "b"])
    with pytest.raises(ValueError, match="dates"):
        forecast_metrics([1.0, 2.0], [1.0, 2.0], ["a"])
