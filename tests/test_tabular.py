"""LightGBM and ridge baselines: the same samples as the networks, learning, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ci_config

from alphaseq.data import Panel
from alphaseq.errors import ConfigError
from alphaseq.experiment import fit_fold, make_forecaster, prepare
from alphaseq.forecaster import Forecaster
from alphaseq.tabular import TabularForecaster, lagged_design
from alphaseq.windows import SampleIndex

TABULAR = ("lightgbm", "ridge")


def captured_inputs(monkeypatch, config, data):
    """The FitInputs that each family's training step receives on fold 0."""
    seen = {}
    for family in (Forecaster, TabularForecaster):
        original = family._train

        def spy(self, inputs, *, checkpoint, resume, _original=original):
            seen[self.model] = inputs
            return _original(self, inputs, checkpoint=checkpoint, resume=resume)

        monkeypatch.setattr(family, "_train", spy)
    fold = data.folds[0]
    fit_fold(config, data.panel, fold, features=data.features, labels=data.labels)
    return seen


def test_tabular_models_see_exactly_the_networks_samples(monkeypatch):
    seen = {}
    for name in ("lstm", *TABULAR):
        overrides = () if name == "lstm" else (f"model.name={name}", "model.params={}")
        config = ci_config(*overrides, "training.epochs=1")
        data = prepare(config)
        seen |= captured_inputs(monkeypatch, data.config, data)
    lstm = seen["lstm"]
    assert len(lstm.train) > 1000 and len(lstm.valid) > 500
    for name in TABULAR:
        inputs = seen[name]
        for part in ("train", "valid"):
            np.testing.assert_array_equal(getattr(inputs, part).t, getattr(lstm, part).t)
            np.testing.assert_array_equal(getattr(inputs, part).i, getattr(lstm, part).i)
        np.testing.assert_array_equal(inputs.values, lstm.values)  # same scaled features
        np.testing.assert_array_equal(inputs.targets, lstm.targets)  # same labels
    # Purged: no training label reaches past the training window (horizon 21).
    fold = prepare(ci_config()).folds[0]
    assert lstm.train.t.max() + 21 <= fold.train.end


def test_lagged_design_takes_days_of_the_window():
    values = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    samples = SampleIndex(np.array([5, 4]), np.array([1, 0]), 3)
    design = lagged_design(values, samples, [0, 2])
    np.testing.assert_array_equal(design[0], np.concatenate([values[5, 1], values[3, 1]]))
    np.testing.assert_array_equal(design[1], np.concatenate([values[4, 0], values[2, 0]]))


def planted_panel(seed: int = 0, n_dates: int = 700, n_tickers: int = 30) -> Panel:
    """Tomorrow's return follows a slow, observable drift: a learnable cross-section."""
    rng = np.random.default_rng(seed)
    drift = np.zeros((n_dates, n_tickers))
    for t in range(1, n_dates):
        drift[t] = 0.97 * drift[t - 1] + rng.normal(0, 0.0004, n_tickers)
    daily = np.empty_like(drift)
    daily[0] = 0.0
    # The return of day t + 1 is the drift known at t plus noise.
    daily[1:] = drift[:-1] * 3 + rng.normal(0, 0.01, (n_dates - 1, n_tickers))
    close = 100 * np.cumprod(1 + daily, axis=0)
    return Panel(
        dates=pd.bdate_range("2015-01-01", periods=n_dates).to_numpy(),
        tickers=np.array([f"S{i:02d}" for i in range(n_tickers)]),
        fields={"close": close},
    )


@pytest.mark.parametrize("name", TABULAR)
def test_tabular_models_find_a_planted_signal_and_round_trip(tmp_path, name):
    panel = planted_panel()
    model = TabularForecaster(
        model=name,
        model_params={"lags": [0, 1, 5]},
        features=["ret_1", "ret_5", "ret_21"],
        horizons=(5,),
        lookback=10,
        trainer={"seed": 3},
    )
    model.fit(panel, train=("2015-01-01", "2016-06-30"), valid=("2016-07-01", "2016-12-31"))
    assert model.best_epoch_ >= 0 and len(model.history_) >= 1
    assert model.history_[model.best_epoch_]["val_ic"] == pytest.approx(model.best_score_)
    dates = [str(d)[:10] for d in panel.dates[-150:-10]]
    frame = model.predict(panel, dates)
    truth = panel.close[np.searchsorted(panel.dates, frame["date"].to_numpy()) + 5]
    # Out of sample, the forecast ranks the next days' returns.
    rows = np.searchsorted(panel.dates, frame["date"].to_numpy())
    cols = np.searchsorted(panel.tickers, frame["ticker"].to_numpy())
    forward = panel.close[rows + 5, cols] / panel.close[rows, cols] - 1
    assert truth.shape[0] == len(frame)
    ic = pd.DataFrame({"d": frame["date"], "p": frame["prediction"], "y": forward})
    daily = ic.groupby("d").apply(lambda g: g["p"].corr(g["y"], method="spearman"))
    assert daily.mean() > 0.1

    path = tmp_path / f"{name}.ckpt"
    model.save(path, metadata={"run": "test"})
    loaded = Forecaster.load(path)
    assert isinstance(loaded, TabularForecaster) and loaded.metadata_ == {"run": "test"}
    pd.testing.assert_frame_equal(loaded.predict(panel, dates), frame, check_exact=True)
    assert loaded.history_ == model.history_ and loaded.lags_ == [0, 1, 5]
    # Same seed, same data: the same model (resumed runs depend on it).
    again = TabularForecaster(**model.get_params()).fit(
        panel, train=("2015-01-01", "2016-06-30"), valid=("2016-07-01", "2016-12-31")
    )
    pd.testing.assert_frame_equal(again.predict(panel, dates), frame, check_exact=True)
    assert loaded.attention(panel, dates[:2])[1] is None


def test_tabular_models_refuse_what_they_cannot_do():
    panel = planted_panel(n_dates=300, n_tickers=8)
    short = {"features": ["ret_1", "ret_5"], "lookback": 10}
    with pytest.raises(ConfigError, match=r"lags \[30\] fall outside the 10-day window"):
        TabularForecaster(model="ridge", model_params={"lags": [0, 30]}, **short).fit(panel)
    with pytest.raises(ConfigError, match="regression tasks only"):
        TabularForecaster(model="lightgbm", label="direction", **short).fit(panel)
    with pytest.raises(ConfigError, match="has no parameter"):
        TabularForecaster(model="ridge", model_params={"num_leaves": 3}, **short).fit(panel)
    with pytest.raises(ConfigError, match="num_trees"):
        ci_config("model.name=lightgbm", "model.params={num_trees: 5}")
    with pytest.raises(ConfigError, match="unknown model 'xgboost'"):
        ci_config("model.name=xgboost", "model.params={}")
    assert isinstance(
        make_forecaster(ci_config("model.name=ridge", "model.params={}")), TabularForecaster
    )


def test_ridge_picks_its_penalty_on_validation_only():
    panel = planted_panel(n_dates=500, n_tickers=20)
    model = TabularForecaster(
        model="ridge",
        model_params={"lags": [0], "alpha": [0.1, 1e6]},
        features=["ret_1", "ret_5", "ret_21"],
        horizons=(5,),
        lookback=5,
    )
    model.fit(panel, train=("2015-01-01", "2016-01-31"), valid=("2016-02-01", "2016-09-30"))
    assert [h["alpha"] for h in model.history_] == [0.1, 1e6]
    scores = [h["val_ic"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(scores))
