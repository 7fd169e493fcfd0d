"""Each quantity decided in one place: purged ranges, labels, the signal head."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ci_config

from alphaseq.backtest import per_date_ic
from alphaseq.experiment import fit_fold, make_forecaster, prepare
from alphaseq.forecaster import resolve_signal
from alphaseq.tuning import ValidationObjective
from alphaseq.validation import LeakageError


@pytest.fixture(scope="module")
def trend():
    config = ci_config(
        "task=trend",
        "labels.horizons=[7, 30]",
        "labels.signal_horizon=30",
        "training.epochs=2",
        "training.patience=5",
    )
    data = prepare(config)
    fold = data.folds[0]
    model = fit_fold(data.config, data.panel, fold, features=data.features, labels=data.labels)
    return data, fold, model


def valid_ic(data, fold, model, head: str, column: int) -> tuple[float, float]:
    """Mean per-date IC and rank IC of one head over the fold's validation samples."""
    panel = data.panel
    rows = range(fold.valid_samples.start, fold.valid_samples.end + 1)
    dates = [str(np.datetime_as_string(panel.dates[r], unit="D")) for r in rows]
    frame = model.predict(panel, dates, feature_set=data.features)
    t = np.searchsorted(panel.dates, frame["date"].to_numpy("datetime64[ns]"))
    i = np.array([list(panel.tickers).index(x) for x in frame["ticker"]])
    truth = data.labels.values[t, i]
    known = np.isfinite(truth).all(axis=1)  # validation samples need every label
    daily = per_date_ic(frame[head][known], truth[known, column], frame["date"][known])
    return float(daily["ic"].mean()), float(daily["rank_ic"].mean())


def test_signal_is_resolved_once():
    assert resolve_signal([7, 30]).index == 1  # default: the longest
    assert resolve_signal([7, 30], 7, ("trend_7", "trend_30")).label == "trend_7"
    with pytest.raises(Exception, match="not one of the horizons"):
        resolve_signal([7, 30], 21)


def test_trend_early_stopping_tuning_and_portfolio_use_the_same_head(trend):
    data, fold, model = trend
    assert (data.signal.index, data.signal.label) == (1, "trend_30")
    assert model.signal_ == data.signal
    best = model.history_[model.best_epoch_]
    # early stopping monitored the 30-day head against the 30-day truth ...
    ic, rank_ic = valid_ic(data, fold, model, "trend_30", 1)
    assert best["val_ic"] == pytest.approx(ic, abs=1e-5)
    assert best["val_rank_ic"] == pytest.approx(rank_ic, abs=1e-5)
    other, _ = valid_ic(data, fold, model, "trend_7", 0)
    assert abs(other - ic) > 1e-4  # ... not the 7-day one
    # the portfolio trades the same head
    frame = model.predict(data.panel, fold.test.end_date, feature_set=data.features)
    np.testing.assert_array_equal(frame["prediction"], frame["trend_30"])
    # and the tuning objective scores it: the same fit on the panel cut at the validation end
    objective = ValidationObjective(
        data.config.model_dump(mode="json"), {}, panel=data.panel, metric="rank_ic"
    )
    assert objective.fold_value(data.config, fold) == pytest.approx(best["val_rank_ic"], abs=1e-6)


def test_fit_on_a_fold_equals_fit_on_its_date_ranges():
    config = ci_config("training.epochs=1", "validation.embargo_days=3")
    data = prepare(config)
    fold = data.folds[0]
    assert fold.embargo == 3
    by_fold = fit_fold(data.config, data.panel, fold, features=data.features, labels=data.labels)
    by_dates = make_forecaster(data.config).fit(
        data.panel,
        train=(fold.train.start_date, fold.train.end_date),
        valid=(fold.valid.start_date, fold.valid.end_date),
        embargo=fold.embargo,
    )
    strip = [
        {k: v for k, v in e.items() if k not in ("seconds", "samples_per_second")}
        for e in by_fold.history_
    ]
    assert strip == [
        {k: v for k, v in e.items() if k not in ("seconds", "samples_per_second")}
        for e in by_dates.history_
    ]
    assert by_fold.train_range_ == by_dates.train_range_


def test_fit_refuses_a_fold_purged_for_shorter_labels():
    data = prepare(ci_config())
    fold = data.folds[0]
    longer = ci_config("labels.horizons=[63]")
    model = make_forecaster(longer)
    with pytest.raises(LeakageError, match="63 days ahead"):
        model.fit(data.panel, fold=fold, feature_set=data.features)


def test_labels_given_must_match_the_forecaster():
    data = prepare(ci_config())
    model = make_forecaster(ci_config("labels.horizons=[5]"))
    with pytest.raises(Exception, match="do not match"):
        model.fit(data.panel, fold=data.folds[0], labels=data.labels)
