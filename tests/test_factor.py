"""Factor diagnostics against hand computations and planted signals.

The Newey–West mean is checked against autocovariances written out by hand on a
six-value series, quantile returns against per-quintile means of a tiny frame, and the
signal tests on a synthetic panel whose labels are overlapping 21-day sums of daily
shocks (so per-date figures are autocorrelated, as with real overlapping labels).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alphaseq.analysis.factor import (
    REFERENCE_FACTORS,
    Z_95,
    _quantile_codes,
    factor_diagnostics,
    forecast_study,
    forward_returns_by_horizon,
    ic_decay,
    newey_west_mean,
    quantile_returns,
    rank_ic_summary,
    reference_factors,
    signal_autocorrelation,
)
from alphaseq.data.panel import Panel

H = 21
HAND = [0.01, -0.02, 0.03, 0.0, -0.01, 0.02]


def _overlapping(rng: np.random.Generator, n_dates: int, n_tickers: int) -> np.ndarray:
    """Sums of ``H`` consecutive daily shocks, one per date: overlapping H-day returns."""
    shocks = rng.normal(0.0, 0.01, (n_dates + H - 1, n_tickers))
    total = np.vstack([np.zeros(n_tickers), np.cumsum(shocks, axis=0)])
    return total[H:] - total[:-H]


def _planted(seed: int, signal: float, n_dates: int = 250, n_tickers: int = 50) -> pd.DataFrame:
    """``prediction = signal * label + noise``, the noise persistent like a real forecast."""
    rng = np.random.default_rng(seed)
    label = _overlapping(rng, n_dates, n_tickers)
    prediction = signal * label + _overlapping(rng, n_dates, n_tickers)
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_tickers),
            "ticker": np.tile([f"T{i:02d}" for i in range(n_tickers)], n_dates),
            "prediction": prediction.ravel(),
            "label": label.ravel(),
        }
    )


def _covers_zero(interval: list[float | None]) -> bool:
    low, high = interval
    return low <= 0.0 <= high


# ------------------------------------------------------------------- Newey–West
def test_newey_west_by_hand():
    # e = x - 0.005 = [5, -25, 25, -5, -15, 15] * 1e-3; autocovariances divide by n = 6:
    # 6 * gamma_0 = 1750e-6, 6 * gamma_1 = -1025e-6, 6 * gamma_2 = -200e-6.
    # lags=1: 6 * lrv = 1750 - 1025 = 725; lags=2: 1750 - 2*(2/3)*1025 - 2*(1/3)*200 = 250.
    # se = sqrt(lrv / 6) = sqrt(6 * lrv) / 6 (in units of 1e-3).
    for lags, six_lrv in ((0, 1750.0), (1, 725.0), (2, 250.0)):
        out = newey_west_mean(HAND, lags)
        se = math.sqrt(six_lrv) / 6000.0
        assert out["mean"] == pytest.approx(0.005, rel=1e-12)
        assert out["std_error"] == pytest.approx(se, rel=1e-12)
        assert out["t_stat"] == pytest.approx(0.005 / se, rel=1e-12)
        assert out["ci_low"] == pytest.approx(0.005 - Z_95 * se, rel=1e-12)
        assert out["ci_high"] == pytest.approx(0.005 + Z_95 * se, rel=1e-12)
        assert (out["n"], out["lags"]) == (6, lags)


def test_newey_west_lag_zero_is_iid_standard_error_with_ddof_zero():
    x = np.random.default_rng(3).normal(size=40)
    out = newey_west_mean(x, 0)
    assert out["std_error"] == pytest.approx(x.std(ddof=0) / math.sqrt(len(x)), rel=1e-12)


def test_newey_west_edge_cases():
    # Non-finite values are dropped before anything else.
    assert newey_west_mean([*HAND, np.nan, np.inf], 1) == newey_west_mean(HAND, 1)
    # Lags past the series add no term but set the weights: 1 - k/11 for k = 1..5.
    e = np.asarray(HAND) - 0.005
    lrv = e @ e / 6 + sum(2 * (1 - k / 11) * (e[k:] @ e[:-k]) / 6 for k in range(1, 6))
    assert newey_west_mean(HAND, 10)["std_error"] == pytest.approx(math.sqrt(lrv / 6))
    short = newey_west_mean([1.0, np.nan], 3)
    assert short["n"] == 1 and short["mean"] is None and short["std_error"] is None
    constant = newey_west_mean([0.02] * 5, 2)
    assert constant["mean"] == pytest.approx(0.02)
    assert constant["std_error"] is None and constant["t_stat"] is None
    assert constant["ci_low"] is None and constant["ci_high"] is None


# ---------------------------------------------------------------- planted signal
def test_planted_signal_is_found():
    frame = _planted(seed=7, signal=0.25)
    ic = rank_ic_summary(frame, horizon=H)
    assert ic["n_dates"] == 250 and ic["lags"] == H - 1
    assert ic["rank_ic_ci"][0] > 0
    assert ic["rank_ic_t"] > 2 and ic["ic"] > 0 and ic["rank_icir"] > 0
    q = quantile_returns(frame, quantiles=5, horizon=H)
    assert q["spread"] > 0 and q["spread_ci"][0] > 0
    assert q["monotonic_increasing"] is True
    assert q["mean_return"] == sorted(q["mean_return"])


def test_noise_is_not_found_and_newey_west_is_wider_than_iid():
    # Over 100 seeds, the NW rank-IC interval covered 0 in 92 (the spread's in 89): with
    # 20 lags on 250 dates Bartlett weights run slightly short. The iid interval covered
    # 0 in only 39: overlapping labels and a persistent forecast make it far too narrow.
    covered_ic = covered_spread = 0
    for seed in range(300, 310):
        frame = _planted(seed, signal=0.0)
        ic = rank_ic_summary(frame, horizon=H)
        covered_ic += _covers_zero(ic["rank_ic_ci"])
        covered_spread += _covers_zero(quantile_returns(frame, horizon=H)["spread_ci"])
        iid = rank_ic_summary(frame, horizon=1)  # lags = 0
        assert iid["rank_ic"] == ic["rank_ic"]
        assert ic["rank_ic_se"] > 1.5 * iid["rank_ic_se"]
    assert covered_ic >= 9
    assert covered_spread >= 9


# --------------------------------------------------------------------- quantiles
def test_quantile_codes_match_qcut_of_ranks():
    for q in range(2, 11):
        for n in range(q, 45):
            ranks = np.arange(1, n + 1)
            got = _quantile_codes(ranks, np.full(n, n), q)
            np.testing.assert_array_equal(np.unique(got), np.arange(1, q + 1))
            assert (np.diff(got) >= 0).all()
            sizes = np.bincount(got)[1:]
            assert sizes.max() - sizes.min() <= 1, f"n={n} q={q}"
            # qcut computes its edges in floating point: a rank exactly on an edge may
            # land in either bin there, so compare only the ranks off the edges.
            off_edge = (ranks - 1) * q % (n - 1) != 0
            expected = pd.qcut(ranks, q, labels=False) + 1
            np.testing.assert_array_equal(got[off_edge], expected[off_edge], f"n={n} q={q}")


def test_quantile_returns_by_hand():
    # Date 1: label = prediction / 100, so quintile k holds predictions 2k-2 and 2k-1.
    # Date 2: predictions reversed against the labels, one label NaN (that row is left
    # out, leaving 9 tickers). Date 3 has 4 tickers < 5 quantiles and is skipped.
    d1, d2, d3 = pd.Timestamp("2021-01-04"), pd.Timestamp("2021-01-05"), pd.Timestamp("2021-01-06")
    p1 = np.array([3, 0, 9, 4, 1, 8, 2, 7, 5, 6], dtype=float)
    l1 = p1 / 100
    p2 = np.arange(10, dtype=float)
    l2 = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0], dtype=float) / 100
    l2[9] = np.nan
    rows = [(d1, f"T{i}", p1[i], l1[i]) for i in range(10)]
    rows += [(d2, f"T{i}", p2[i], l2[i]) for i in range(10)]
    rows += [(d3, f"T{i}", float(i), float(i)) for i in range(4)]
    frame = pd.DataFrame(rows, columns=["date", "ticker", "prediction", "label"])
    out = quantile_returns(frame, quantiles=5, horizon=1)

    q1 = [(0 + 1) / 200, (2 + 3) / 200, (4 + 5) / 200, (6 + 7) / 200, (8 + 9) / 200]
    # Date 2, 9 tickers: pd.qcut of ranks 1..9 into 5 -> sizes 2, 2, 1, 2, 2.
    q2 = [(9 + 8) / 200, (7 + 6) / 200, 5 / 100, (4 + 3) / 200, (2 + 1) / 200]
    expected = [(a + b) / 2 for a, b in zip(q1, q2, strict=True)]
    assert out["n_dates"] == 2 and out["quantiles"] == 5
    assert out["mean_return"] == pytest.approx(expected, rel=1e-12)
    spreads = np.array([q1[4] - q1[0], q2[4] - q2[0]])
    assert out["spread"] == pytest.approx(spreads.mean(), rel=1e-12)
    se = spreads.std(ddof=0) / math.sqrt(2)
    assert out["spread_t"] == pytest.approx(spreads.mean() / se, rel=1e-12)
    assert out["spread_ci"] == pytest.approx(
        [spreads.mean() - Z_95 * se, spreads.mean() + Z_95 * se], rel=1e-12
    )
    assert out["monotonic_increasing"] is False  # 0.045, 0.045, 0.0475, 0.05, 0.05: not strict


def test_quantile_returns_without_usable_date():
    frame = pd.DataFrame(
        {"date": ["2021-01-04"] * 3, "ticker": ["A", "B", "C"], "prediction": [1, 2, 3]}
    ).assign(label=[0.1, 0.2, 0.3])
    out = quantile_returns(frame, quantiles=5)
    assert out["n_dates"] == 0 and out["mean_return"] == [None] * 5
    assert out["spread"] is None and out["monotonic_increasing"] is None


# ---------------------------------------------------------------------- IC decay
def _price_panel(seed: int, n_dates: int, n_tickers: int) -> tuple[Panel, np.ndarray]:
    rng = np.random.default_rng(seed)
    daily = rng.normal(0.0, 0.01, (n_dates, n_tickers))
    close = 100.0 * np.cumprod(1.0 + daily, axis=0)
    panel = Panel(
        dates=pd.bdate_range("2020-01-01", periods=n_dates).to_numpy(),
        tickers=np.array([f"T{i:02d}" for i in range(n_tickers)]),
        fields={"close": close},
    )
    return panel, daily


def test_forward_returns_by_horizon_looks_up_the_panel():
    panel, _ = _price_panel(seed=1, n_dates=30, n_tickers=4)
    dates = pd.DatetimeIndex(panel.dates)
    predictions = pd.DataFrame(
        {
            "date": [dates[0], dates[10], dates[28], dates[3], pd.Timestamp("1999-01-01")],
            "ticker": ["T00", "T03", "T01", "ZZZ", "T02"],
            "prediction": [0.0] * 5,
        }
    )
    out = forward_returns_by_horizon(panel, predictions, horizons=[1, 5])
    close = panel.close.astype(np.float64)
    f5 = out[5]["forward_return"].to_numpy()
    assert list(out[5]["ticker"]) == list(predictions["ticker"])
    assert f5[0] == pytest.approx(close[5, 0] / close[0, 0] - 1, rel=1e-9)
    assert f5[1] == pytest.approx(close[15, 3] / close[10, 3] - 1, rel=1e-9)
    assert np.isnan(f5[2:]).all()  # past the panel's end, unknown ticker, unknown date
    f1 = out[1]["forward_return"].to_numpy()
    assert f1[2] == pytest.approx(close[29, 1] / close[28, 1] - 1, rel=1e-9)


def test_ic_decay_of_a_one_day_signal():
    n_dates, n_tickers = 120, 40
    panel, daily = _price_panel(seed=5, n_dates=n_dates + H, n_tickers=n_tickers)
    noise = np.random.default_rng(6).normal(0.0, 0.01, (n_dates, n_tickers))
    prediction = daily[1 : n_dates + 1] + noise  # knows tomorrow's return, nothing more
    predictions = pd.DataFrame(
        {
            "date": np.repeat(panel.dates[:n_dates], n_tickers),
            "ticker": np.tile(panel.tickers, n_dates),
            "prediction": prediction.ravel(),
        }
    )
    forward = forward_returns_by_horizon(panel, predictions, (1, 5, 21))
    decay = ic_decay(predictions, forward, horizons=(1, 5, 21))
    assert set(decay) == {"1", "5", "21"}
    assert decay["1"]["n_dates"] == n_dates
    assert decay["1"]["rank_ic"] > decay["5"]["rank_ic"] > decay["21"]["rank_ic"]
    assert decay["1"]["ci"][0] > decay["21"]["ci"][1]
    # A (date, ticker)-indexed Series is accepted as well.
    series = forward[1].set_index(["date", "ticker"])["forward_return"]
    assert ic_decay(predictions, {1: series}, horizons=(1,)) == {"1": decay["1"]}


# --------------------------------------------------------------- autocorrelation
def _wide_to_long(values: np.ndarray) -> pd.DataFrame:
    n_dates, n_tickers = values.shape
    return pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2021-01-01", periods=n_dates), n_tickers),
            "ticker": np.tile([f"T{i}" for i in range(n_tickers)], n_dates),
            "prediction": values.ravel(),
        }
    )


def test_signal_autocorrelation_extremes():
    rng = np.random.default_rng(11)
    order = np.argsort(rng.normal(size=20)).astype(float)
    scale = rng.uniform(0.5, 2.0, size=(12, 1))  # values change, the ranking does not
    steady = signal_autocorrelation(_wide_to_long(order * scale))
    assert steady["mean"] == pytest.approx(1.0) and steady["n_pairs"] == 11
    flipping = order * np.where(np.arange(12) % 2 == 0, 1.0, -1.0)[:, None]
    reversed_ = signal_autocorrelation(_wide_to_long(flipping))
    assert reversed_["mean"] == pytest.approx(-1.0) and reversed_["n_pairs"] == 11


def test_signal_autocorrelation_by_hand():
    values = np.array(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [2.0, 1.0, 3.0, 5.0, np.nan],  # T4 missing: the pair uses T0..T3
            [5.0, 4.0, 3.0, 2.0, 1.0],
        ]
    )
    frame = _wide_to_long(values)
    # Pair 1 on T0..T3: ranks (1,2,3,4) vs (2,1,3,4), sum d^2 = 2: 1 - 6*2/(4*15) = 0.8.
    # Pair 2 on T0..T3: ranks (2,1,3,4) vs (4,3,2,1), sum d^2 = 4+4+1+9 = 18: 1 - 108/60.
    out = signal_autocorrelation(frame)
    assert out["n_pairs"] == 2
    assert out["mean"] == pytest.approx((0.8 + (1 - 108 / 60)) / 2)
    # Rebalancing on the first and last date only: a full reversal on 5 tickers.
    dates = pd.DatetimeIndex(frame["date"].unique())
    skip = signal_autocorrelation(frame, dates=[dates[0], dates[2], pd.Timestamp("1990-01-01")])
    assert skip == {"mean": pytest.approx(-1.0), "n_pairs": 1}
    assert signal_autocorrelation(frame, dates=[dates[1]]) == {"mean": None, "n_pairs": 0}


# --------------------------------------------------------------------- combined
def test_factor_diagnostics_is_json_ready():
    frame = _planted(seed=2, signal=0.25, n_dates=60, n_tickers=20)
    frame.loc[::7, "label"] = np.nan  # NaN labels must not leak into the output
    forward = {5: frame.rename(columns={"label": "forward_return"})}
    month_ends = frame["date"].drop_duplicates().groupby(frame["date"].dt.month).max()
    out = factor_diagnostics(
        frame, horizon=H, forward_returns=forward, rebalance_dates=month_ends, quantiles=4
    )
    assert set(out) == {"rank_ic", "quantiles", "decay", "autocorrelation"}
    assert out["rank_ic"] == rank_ic_summary(frame, horizon=H)
    assert out["quantiles"] == quantile_returns(frame, quantiles=4, horizon=H)
    assert set(out["decay"]) == {"5"}
    assert out["autocorrelation"]["n_pairs"] == len(month_ends) - 1
    json.dumps(out, allow_nan=False)
    assert factor_diagnostics(frame, horizon=H)["decay"] is None

    empty = frame.assign(label=np.nan)
    summary = rank_ic_summary(empty)
    assert summary["n_dates"] == 0 and summary["rank_ic"] is None
    assert summary["rank_ic_ci"] == [None, None]
    json.dumps(factor_diagnostics(empty), allow_nan=False)


# -------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_error():
    frame = _planted(seed=0, signal=0.0, n_dates=5, n_tickers=6)
    with pytest.raises(ValueError, match=r"missing column 'label'.*'date', 'ticker'"):
        rank_ic_summary(frame.drop(columns="label"))
    with pytest.raises(ValueError, match="missing column 'target'"):
        quantile_returns(frame, label_column="target")
    with pytest.raises(ValueError, match="missing column 'ticker'"):
        signal_autocorrelation(frame.drop(columns="ticker"))
    with pytest.raises(ValueError, match="missing column 'prediction'"):
        factor_diagnostics(frame.drop(columns="prediction"))
    with pytest.raises(ValueError, match="quantiles must be an integer >= 2, got 1"):
        quantile_returns(frame, quantiles=1)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        rank_ic_summary(frame, horizon=0)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        factor_diagnostics(frame, horizon=0)
    with pytest.raises(ValueError, match="lags must be an integer >= 0, got -1"):
        newey_west_mean(HAND, -1)
    forward = {1: frame.rename(columns={"label": "forward_return"})}
    with pytest.raises(ValueError, match=r"no horizon 5; it has \[1\]"):
        ic_decay(frame, forward, horizons=(5,))
    with pytest.raises(ValueError, match="more than one row for date"):
        signal_autocorrelation(pd.concat([frame, frame.iloc[:1]]))


# --------------------------------------------------------------- single factors
def test_reference_factors_by_hand():
    panel, _ = _price_panel(seed=2, n_dates=320, n_tickers=3)
    factors = reference_factors(panel)
    assert set(factors) == set(REFERENCE_FACTORS)
    log_close = np.log(panel.close.astype(np.float32)).astype(np.float64)
    t, i = 300, 1
    assert factors["momentum_12_1"][t, i] == pytest.approx(
        log_close[t - 21, i] - log_close[t - 252, i], abs=1e-6
    )
    assert factors["reversal_1m"][t, i] == pytest.approx(
        log_close[t - 21, i] - log_close[t, i], abs=1e-6
    )
    daily = np.diff(log_close[:, i])[t - 63 : t]
    assert factors["low_volatility"][t, i] == pytest.approx(-daily.std(ddof=1), rel=1e-3)
    assert np.isnan(factors["momentum_12_1"][251]).all()  # a year of history is needed


def test_forecast_study_finds_a_planted_momentum_and_scores_factors_on_the_same_samples():
    # Returns continue the past year's trend: momentum is the signal, the model is noise.
    rng = np.random.default_rng(9)
    n_dates, n_tickers = 700, 40
    trend = rng.normal(0, 0.0015, n_tickers)
    daily = trend + rng.normal(0, 0.01, (n_dates, n_tickers))
    close = 100 * np.exp(np.cumsum(daily, axis=0))
    panel = Panel(
        dates=pd.bdate_range("2015-01-01", periods=n_dates).to_numpy(),
        tickers=np.array([f"T{k:02d}" for k in range(n_tickers)]),
        fields={"close": close},
    )
    rows = np.arange(300, 650)
    predictions = pd.DataFrame(
        {
            "date": np.repeat(panel.dates[rows], n_tickers),
            "ticker": np.tile(panel.tickers, len(rows)),
            "prediction": rng.normal(size=len(rows) * n_tickers),
        }
    )
    study = forecast_study(panel, predictions, 21, decay_horizons=(1, 21))
    assert study["horizon"] == 21 and set(study["model"]["decay"]) == {"1", "21"}
    momentum = study["factors"]["momentum_12_1"]["rank_ic"]
    assert momentum["rank_ic_ci"][0] > 0  # found
    low, high = study["model"]["rank_ic"]["rank_ic_ci"]
    assert low < 0 < high  # noise is not
    assert momentum["n_dates"] == study["model"]["rank_ic"]["n_dates"] == len(rows)
    json.dumps(study)  # JSON-ready
