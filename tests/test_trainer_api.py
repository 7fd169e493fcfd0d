"""The loop knows nothing of finance: an injected scorer, callbacks; estimator params."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from test_training import FAST, _dataset, planted_panel  # noqa: F401  (fixture)

from alphaseq.analysis.scoring import SignalScorer, signal_score, validation_metrics
from alphaseq.errors import ConfigError
from alphaseq.forecaster import Forecaster
from alphaseq.models import build_model
from alphaseq.models.base import ModelOutput
from alphaseq.training import Trainer
from alphaseq.training.callbacks import TrainerCallback


def small_model():
    torch.manual_seed(0)
    return build_model("lstm", 1, hidden_size=8, num_layers=1, attention_heads=2, dropout=0.0)


def test_without_a_scorer_only_the_loss_is_validated(planted_panel):  # noqa: F811
    data = _dataset(planted_panel)
    trainer = Trainer({"epochs": 1, "monitor": "loss", **FAST})
    result = trainer.fit(small_model(), data, data)
    assert {k for k in result.history[0] if k.startswith("val_")} == {"val_loss"}


def test_monitoring_a_figure_nobody_computes_is_a_clear_error(planted_panel):  # noqa: F811
    data = _dataset(planted_panel)
    with pytest.raises(ConfigError, match=r"training.monitor is 'ic'.*give the trainer a scorer"):
        Trainer({"epochs": 1, "monitor": "ic", **FAST}).fit(small_model(), data, data)


def test_callbacks_see_every_hook_in_order(planted_panel):  # noqa: F811
    data = _dataset(planted_panel)
    calls: list[str] = []

    class Recorder(TrainerCallback):
        def on_fit_start(self, trainer, n_epochs):
            calls.append(f"fit_start {n_epochs}")

        def on_epoch_start(self, trainer, epoch, n_batches):
            calls.append(f"epoch_start {epoch} {n_batches}")

        def on_batch_end(self, trainer, step, running_loss, steps):
            calls.append("batch")

        def on_epoch_end(self, trainer, epoch, entry):
            calls.append(f"epoch_end {epoch} {sorted(entry)[:2]}")

        def on_fit_end(self, trainer, result):
            calls.append(f"fit_end {len(result.history)}")

    plain: list[int] = []
    trainer = Trainer(
        {"epochs": 2, "monitor": "loss", "max_batches_per_epoch": 3, **FAST},
        callbacks=[Recorder(), lambda epoch, entry: plain.append(epoch)],
    )
    trainer.fit(small_model(), data, data)
    expected = ["fit_start 2"]
    for epoch in (0, 1):
        expected += [f"epoch_start {epoch} 3", "batch", "batch", "batch"]
        expected += [f"epoch_end {epoch} ['epoch', 'lr']"]
    assert calls == [*expected, "fit_end 2"]
    assert plain == [0, 1]  # a plain function still works, after each epoch


def test_signal_scorer_scores_the_head_it_is_given():
    rng = np.random.default_rng(0)
    n = 400
    target = torch.tensor(rng.normal(size=(n, 2)), dtype=torch.float32)
    group = torch.tensor(np.repeat(np.arange(20), 20))
    # head 0 predicts column 0, head 1 predicts column 1: each scores well only on its own
    output = ModelOutput(regression=target + 0.1 * torch.randn(n, 2), logits=None)

    class Data:  # the two attributes a scorer reads of a WindowDataset
        t, i = group, torch.arange(n)
        labels = torch.zeros((20, n, 2))

    Data.labels[Data.t, Data.i] = target
    first = SignalScorer(0, 0)(output, Data)
    second = SignalScorer(1, 1)(output, Data)
    crossed = SignalScorer(1, 0)(output, Data)
    assert first["ic"] > 0.9 and second["ic"] > 0.9 and abs(crossed["ic"]) < 0.2
    expected = validation_metrics(signal_score(output, 1), target[:, 1], group)
    assert second == expected
    logits = torch.zeros((n, 2, 3))
    logits[:, 1, 2] = 5.0  # head 1: P(up) - P(down) = (e^5 - 1) / (e^5 + 2)
    classes = ModelOutput(regression=None, logits=logits)
    assert torch.allclose(signal_score(classes, 1), torch.full((n,), 0.9801), atol=1e-3)
    assert torch.allclose(signal_score(classes, 0), torch.zeros(n))


def test_forecaster_params_clone_and_set_params():
    model = Forecaster(model="gru", model_params={"hidden_size": 8}, lookback=10, trainer={})
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert copy.model_params is not model.model_params  # deep-copied, as sklearn does
    assert not hasattr(copy, "model_")
    assert copy.set_params(lookback=20, stride=3) is copy
    assert (copy.lookback, copy.stride, model.lookback) == (20, 3, 10)
    with pytest.raises(ConfigError, match="did you mean 'lookback'"):
        copy.set_params(lookbak=5)
    assert set(model.get_params()) >= {"model", "trainer", "signal_horizon", "valid_fraction"}
    assert "model='gru'" in repr(model) and "scaler" not in repr(model)


def _scoring_data(target: torch.Tensor, group: torch.Tensor):
    class Data:  # the attributes a scorer reads of a WindowDataset
        t, i = group, torch.arange(len(target))
        labels = torch.zeros((int(group.max()) + 1, len(target), 1))

    Data.labels[Data.t, Data.i, 0] = target
    return Data


def test_validation_standard_errors_match_a_pandas_newey_west_reference():
    rng = np.random.default_rng(3)
    n_dates, n_assets, lags = 120, 30, 4
    group = torch.tensor(np.repeat(np.arange(n_dates), n_assets))
    target = torch.tensor(rng.normal(size=n_dates * n_assets), dtype=torch.float32)
    pred = target + 3.0 * torch.tensor(rng.normal(size=len(target)), dtype=torch.float32)
    figures = validation_metrics(pred, target, group, lags=lags)

    frame = pd.DataFrame({"d": group.numpy(), "p": pred.numpy(), "y": target.numpy()})
    daily = frame.groupby("d").apply(lambda g: g["p"].corr(g["y"]), include_groups=False)
    e = daily.to_numpy() - daily.mean()
    n = len(e)
    long_run = e @ e / n + 2 * sum(
        (1 - k / (lags + 1)) * (e[k:] @ e[:-k]) / n for k in range(1, lags + 1)
    )
    assert figures["ic"] == pytest.approx(daily.mean(), abs=1e-6)
    assert figures["ic_se"] == pytest.approx(np.sqrt(long_run / n), rel=1e-5)
    # without lags: the plain standard error of the mean (ddof 0)
    plain = validation_metrics(pred, target, group)
    assert plain["ic_se"] == pytest.approx(daily.std(ddof=0) / np.sqrt(n), rel=1e-5)
    assert plain["rank_ic_se"] > 0 and plain["ic_se"] < figures["ic_se"] * 2


def test_signal_scorer_tells_a_learned_gain_from_validation_noise():
    rng = np.random.default_rng(4)
    n_dates, n_assets = 200, 40
    group = torch.tensor(np.repeat(np.arange(n_dates), n_assets))
    target = torch.tensor(rng.normal(size=n_dates * n_assets), dtype=torch.float32)
    data = _scoring_data(target, group)

    def noise() -> ModelOutput:
        return ModelOutput(regression=torch.randn(len(target), 1), logits=None)

    learned = ModelOutput(
        regression=(target + 2.0 * torch.randn(len(target)))[:, None], logits=None
    )
    scorer = SignalScorer(overlap=5)
    first = scorer(noise(), data)
    assert "ic_gain_t" not in first and first["ic_se"] > 0
    assert scorer(learned, data)["ic_gain_t"] > 5  # a real signal over noise: far beyond 2
    assert abs(scorer(noise(), data)["rank_ic_gain_t"]) < 3  # noise over noise: no gain
    # a scorer restored from the state of this one compares with the same first epoch
    restored = SignalScorer(overlap=5)
    restored.load_state_dict(scorer.state_dict())
    again = restored(learned, data)
    assert again["ic_gain_t"] == pytest.approx(scorer(learned, data)["ic_gain_t"], rel=1e-6)
    with pytest.raises(ValueError, match="overlap"):
        SignalScorer(overlap=0)


def test_signal_scorer_gain_over_the_same_epoch_is_zero():
    rng = np.random.default_rng(5)
    group = torch.tensor(np.repeat(np.arange(50), 10))
    target = torch.tensor(rng.normal(size=500), dtype=torch.float32)
    output = ModelOutput(regression=torch.randn(500, 1), logits=None)
    scorer = SignalScorer()
    data = _scoring_data(target, group)
    scorer(output, data)
    same = scorer(output, data)
    assert same["ic_gain_t"] == 0.0 and same["rank_ic_gain_t"] == 0.0
    # other dates (the training samples scored after fitting): no gain, not a NaN one
    other = _scoring_data(target, group + 1000)
    elsewhere = scorer(output, other)
    assert "ic_gain_t" not in elsewhere and "rank_ic_gain_t" not in elsewhere
    assert np.isfinite(elsewhere["ic"])


def test_auto_dates_per_batch_fills_the_batch_with_whole_dates():
    from alphaseq.windows import WindowDataset, valid_samples

    rng = np.random.default_rng(6)
    values = rng.normal(size=(50, 6, 2)).astype(np.float32)
    labels = rng.normal(size=(50, 6, 1)).astype(np.float32)
    data = WindowDataset(values, valid_samples(values, 5, labels=labels), labels)
    trainer = Trainer(
        {"date_major": True, "dates_per_batch": "auto", "batch_size": 12, **FAST, "epochs": 1}
    )
    assert trainer._dates_per_batch(data) == 2  # 6 windows a date, 12 a batch
    batches = list(trainer._batches(data, 0))
    assert len(batches) == trainer._n_batches(data) == -(-data.samples.n_dates() // 2)
    for _, _, positions in batches:
        dates, counts = torch.unique(data.t[positions], return_counts=True)
        assert len(dates) <= 2 and (counts == 6).all()  # whole cross-sections only
