"""Market-neutral training targets: per-date normalisation and excess returns.

Checked against pandas on planted labels; the raw labels stay what forecasts are
evaluated and traded against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ci_config

from alphaseq.data import Panel
from alphaseq.errors import ConfigError
from alphaseq.experiment import make_forecaster, prepare
from alphaseq.features.labels import cross_section_targets, excess_targets, forward_return
from alphaseq.forecaster import Forecaster, task_labels


def planted(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.05, (40, 9, 2)).astype(np.float32)
    values[rng.random(values.shape) < 0.15] = np.nan  # unknown labels
    values[5, :, 0] = 0.02  # a date where every label is equal
    values[7, 1:, 1] = np.nan  # a date with one known label
    values[9, 3:6, 0] = values[9, 2, 0]  # ties
    return values


def per_date(values: np.ndarray, h: int) -> pd.DataFrame:
    return pd.DataFrame(values[:, :, h].astype(np.float64))


@pytest.mark.parametrize("h", [0, 1])
def test_rank_matches_pandas_pct_rank(h):
    values = planted()
    out = cross_section_targets(values, "rank")
    frame = per_date(values, h)
    expected = (frame.rank(axis=1, pct=True, method="average") - 0.5) * np.sqrt(12)
    expected[frame.notna().sum(axis=1) < 2] = np.nan
    np.testing.assert_allclose(out[:, :, h], expected.to_numpy(), rtol=1e-6, atol=1e-6)
    assert out.dtype == values.dtype and out.shape == values.shape
    # Unit variance for a large cross-section, as Qlib's CSRankNorm intends.
    big = cross_section_targets(np.random.default_rng(1).normal(size=(3, 5000)), "rank")
    assert np.nanstd(big, axis=1) == pytest.approx([1.0] * 3, abs=1e-3)


@pytest.mark.parametrize("h", [0, 1])
def test_zscore_and_demean_match_pandas(h):
    values = planted()
    frame = per_date(values, h)
    enough = frame.notna().sum(axis=1) >= 2
    demeaned = frame.sub(frame.mean(axis=1), axis=0)
    z = demeaned.div(frame.std(axis=1, ddof=0), axis=0)
    z[frame.std(axis=1, ddof=0) == 0] = frame[frame.std(axis=1, ddof=0) == 0] * 0.0
    demeaned[~enough], z[~enough] = np.nan, np.nan
    out_d = cross_section_targets(values, "demean")[:, :, h]
    out_z = cross_section_targets(values, "zscore")[:, :, h]
    np.testing.assert_allclose(out_d, demeaned.to_numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out_z, z.to_numpy(), rtol=1e-5, atol=1e-6)
    # Known exactly where the label is known (on dates with two or more labels).
    np.testing.assert_array_equal(
        np.isfinite(out_z), frame.notna().to_numpy() & enough.to_numpy()[:, None]
    )


def test_two_dimensional_labels_and_bad_method():
    values = planted()[:, :, 0]
    assert cross_section_targets(values, "rank").shape == values.shape
    with pytest.raises(ConfigError, match=r"unknown label cross-section normalisation 'ranks'"):
        cross_section_targets(values, "ranks")


def price_panel(n_dates: int = 120, n_tickers: int = 6, benchmark: bool = True) -> Panel:
    rng = np.random.default_rng(4)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, (n_dates, n_tickers)), axis=0)
    index = 100 * np.cumprod(1 + rng.normal(0, 0.008, n_dates))
    return Panel(
        dates=pd.bdate_range("2020-01-01", periods=n_dates).to_numpy(),
        tickers=np.array([f"T{i}" for i in range(n_tickers)]),
        fields={"close": close},
        benchmark=index if benchmark else None,
        benchmark_name="INDEX" if benchmark else None,
    )


def test_excess_over_the_benchmark_by_hand():
    panel = price_panel()
    raw = forward_return(panel, 5)[..., None]
    out = excess_targets(raw, [5], "benchmark", panel.benchmark)
    t, i = 17, 3
    by_hand = (
        panel.close[t + 5, i] / panel.close[t, i] - panel.benchmark[t + 5] / panel.benchmark[t]
    )
    assert out[t, i, 0] == pytest.approx(by_hand, rel=1e-4)  # log prices are float32
    assert np.isnan(out[-5:]).all()  # neither return is known yet
    np.testing.assert_allclose(
        excess_targets(raw, [5], "mean"), cross_section_targets(raw, "demean"), equal_nan=True
    )
    with pytest.raises(ConfigError, match="no benchmark"):
        excess_targets(raw, [5], "benchmark", None)


def test_task_labels_keep_raw_values_and_train_on_targets():
    panel = price_panel()
    raw = task_labels(panel, horizons=(5, 10))
    neutral = task_labels(panel, horizons=(5, 10), cross_section="zscore", excess="benchmark")
    np.testing.assert_array_equal(neutral.values, raw.values)  # evaluation truth untouched
    assert raw.targets is None and raw.training_values is raw.values
    expected = cross_section_targets(
        excess_targets(raw.values, (5, 10), "benchmark", panel.benchmark), "zscore"
    )
    np.testing.assert_allclose(neutral.training_values, expected, equal_nan=True)
    # Class columns are codes: a trend task normalises its score heads only.
    trend = task_labels(panel, "trend", "trend", (5,), cross_section="rank")
    np.testing.assert_array_equal(trend.targets[..., 1], trend.values[..., 1])
    assert not np.allclose(trend.targets[..., 0], trend.values[..., 0], equal_nan=True)


def test_neutral_targets_refuse_what_they_cannot_mean():
    with pytest.raises(ConfigError, match="one ticker"):
        task_labels(price_panel(n_tickers=1), cross_section="rank")
    with pytest.raises(ConfigError, match="only has classes"):
        task_labels(price_panel(), "classification", "direction", cross_section="rank")
    with pytest.raises(ConfigError, match="needs forward_return"):
        task_labels(price_panel(), "regression", "trend", excess="mean")
    with pytest.raises(ConfigError, match=r"data\.benchmark"):
        task_labels(price_panel(benchmark=False), excess="benchmark")
    with pytest.raises(ConfigError, match="cross_section"):
        ci_config("labels.cross_section=percentile")
    # Labels built without the normalisation are refused by a forecaster that wants it.
    panel = price_panel()
    forecaster = Forecaster(model="linear", lookback=10, label_cross_section="rank")
    with pytest.raises(ConfigError, match="label_cross_section"):
        forecaster.fit(panel, labels=task_labels(panel))


def test_a_run_trains_on_ranks_and_is_scored_on_raw_returns():
    config = ci_config("labels.cross_section=rank", "labels.excess=benchmark")
    forecaster = make_forecaster(config)
    assert (forecaster.label_cross_section, forecaster.label_excess) == ("rank", "benchmark")
    data = prepare(config)
    raw = prepare(ci_config()).labels
    np.testing.assert_array_equal(data.labels.values, raw.values)
    assert data.labels.targets is not None
    finite = np.isfinite(data.labels.targets[..., 0])
    # Ranks: bounded by sqrt(3) in magnitude, unlike raw returns.
    assert np.abs(data.labels.targets[..., 0][finite]).max() <= np.sqrt(3) + 1e-6
