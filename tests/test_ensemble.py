"""Ensembles: members on the same samples, rank-averaged per date, one checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ci_config

from alphaseq.config import parse_config
from alphaseq.ensemble import EnsembleForecaster, rank_average
from alphaseq.errors import ConfigError
from alphaseq.experiment import fit_fold, make_forecaster, prepare, run
from alphaseq.experiment.build import ensemble_members
from alphaseq.forecaster import Forecaster

SMALL = "model.params={hidden_size: 8, num_layers: 1, attention_heads: 2, dropout: 0.0}"
ENSEMBLE = "model.ensemble={seeds: [0, 1], members: [{name: ridge, params: {}}]}"


def test_rank_average_against_pandas_ranks():
    rng = np.random.default_rng(0)
    dates = np.repeat([3, 1, 2], 5)
    scores = rng.normal(size=(15, 3)) * [1.0, 100.0, 0.01]  # scales must not matter
    scores[4, 1] = np.nan
    frame = pd.DataFrame(scores).assign(date=dates)
    grouped = frame.groupby("date")
    ranks = (grouped.rank() - 0.5) / grouped.transform("count") - 0.5
    expected = ranks.mean(axis=1, skipna=True).to_numpy()
    np.testing.assert_allclose(rank_average(scores, dates), expected)
    # Ties share their rank; a lone forecast on its date is averaged as it is.
    np.testing.assert_allclose(
        rank_average(np.array([[1.0, 2.0], [1.0, 4.0]]), [0, 0]), [-0.125, 0.125]
    )
    np.testing.assert_allclose(rank_average(np.array([[0.02, -0.01]]), [7]), [0.005])
    assert np.isnan(rank_average(np.array([[np.nan, np.nan]]), [0]))[0]
    with pytest.raises(ValueError, match="samples, members"):
        rank_average(np.zeros(3), [0, 0, 0])


def test_config_expands_members_and_refuses_a_lone_one():
    config = ci_config(ENSEMBLE, "training.seed=5")
    assert ensemble_members(config) == [
        {"model": "lstm", "model_params": dict(config.model.params), "seed": 0},
        {"model": "lstm", "model_params": dict(config.model.params), "seed": 1},
        {"model": "ridge", "model_params": {}, "seed": 0},
        {"model": "ridge", "model_params": {}, "seed": 1},
    ]
    default_seed = ci_config("model.ensemble={members: [{name: ridge}]}", "training.seed=5")
    assert [m["seed"] for m in ensemble_members(default_seed)] == [5, 5]
    assert isinstance(make_forecaster(config), EnsembleForecaster)
    with pytest.raises(ConfigError, match="at least two members"):
        ci_config("model.ensemble={seeds: [0]}")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        ci_config("model.ensemble={members: [{name: nope}]}")
    with pytest.raises(ConfigError, match="has no parameter"):
        ci_config("model.ensemble={members: [{name: ridge, params: {depth: 3}}]}")
    values = ci_config().model_dump(mode="json")
    values["model"]["ensemble"] = {"seeds": []}
    with pytest.raises(ConfigError, match="seeds"):
        parse_config(values)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    config = ci_config(
        SMALL, "model.ensemble={seeds: [0, 1], members: [{name: ridge}]}", "training.epochs=2"
    )
    data = prepare(config)
    fold = data.folds[0]
    model = fit_fold(data.config, data.panel, fold, features=data.features, labels=data.labels)
    return data, fold, model


def test_members_train_on_the_same_samples_and_combine_by_rank(fitted):
    data, fold, model = fitted
    assert [type(m).__name__ for m in model.members_] == [
        "Forecaster",
        "Forecaster",
        "TabularForecaster",
        "TabularForecaster",
    ]
    dates = [str(d)[:10] for d in data.panel.dates[fold.test.start : fold.test.start + 3]]
    frames = [m.predict(data.panel, dates, feature_set=data.features) for m in model.members_]
    combined = model.predict(data.panel, dates, feature_set=data.features)
    scores = np.column_stack([f["prediction"] for f in frames])
    np.testing.assert_array_equal(combined["prediction"], rank_average(scores, combined["date"]))
    # Seeds differ: the two LSTMs are different models of the same samples.
    assert not np.allclose(frames[0]["prediction"], frames[1]["prediction"])
    label = model.regression_names_[0]
    np.testing.assert_allclose(combined[label], np.mean([f[label] for f in frames], axis=0))
    # Its validation figures are the combined forecast's own, with their noise.
    entry = model.history_[model.best_epoch_]
    assert {"val_ic", "val_rank_ic", "val_ic_se"} <= set(entry) and entry["val_ic_se"] > 0
    summary = model.member_summary()
    assert [(m["model"], m["seed"]) for m in summary] == [
        ("lstm", 0),
        ("lstm", 1),
        ("ridge", 0),
        ("ridge", 1),
    ]
    assert model.n_parameters_ == sum(m["n_parameters"] for m in summary)


def test_ensemble_checkpoint_round_trip_records_members(fitted, tmp_path):
    data, fold, model = fitted
    path = tmp_path / "ensemble.ckpt"
    model.save(path)
    loaded = Forecaster.load(path)
    assert isinstance(loaded, EnsembleForecaster)
    assert json.loads(json.dumps(loaded.members)) == model._member_specs()
    assert loaded.member_summary() == model.member_summary()
    dates = [str(d)[:10] for d in data.panel.dates[fold.test.start : fold.test.start + 2]]
    pd.testing.assert_frame_equal(
        loaded.predict(data.panel, dates), model.predict(data.panel, dates), check_exact=True
    )
    _, weights = loaded.attention(data.panel, dates)
    assert weights.shape[1] == 1 and np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


def test_an_ensemble_run_reports_one_model_and_its_member_fits(tmp_path):
    config = ci_config(SMALL, "model.ensemble={members: [{name: ridge}]}", "training.epochs=1")
    result = run(config, tmp_path / "ensemble")
    training = result.metrics["training"]
    assert training["fits"] == 2 * training["folds"]
    assert all(len(fold) == 2 for fold in training["best_epochs"])
    assert {r["strategy"] for r in result.returns.to_dict("records")} >= {"model_topk"}
    fold = json.loads((tmp_path / "ensemble" / "folds" / "00" / "fold.json").read_text())
    assert [m["model"] for m in fold["record"]["members"]] == ["lstm", "ridge"]
