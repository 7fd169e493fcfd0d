"""The trainer and the Forecaster API on planted and real data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from alphaseq import load_panel
from alphaseq.analysis.scoring import per_date_rank, validation_metrics
from alphaseq.errors import ConfigError, DataError
from alphaseq.features import compute_features, make_labels
from alphaseq.forecaster import Forecaster
from alphaseq.models import build_model
from alphaseq.training import CheckpointError, Trainer, TrainerConfig
from alphaseq.windows import WindowDataset, valid_samples

FAST = {"progress": False, "device": "cpu"}
SMALL_LSTM = {"hidden_size": 16, "num_layers": 1, "dropout": 0.0, "attention_heads": 2}


def planted_frame(n_tickers: int = 40, n_dates: int = 700, lag: int = 5, seed: int = 0):
    """Daily log returns with r[t] = 0.8 * r[t - lag] + noise: tomorrow's return is
    predictable from the return ``lag - 1`` days ago, which sits inside the window."""
    rng = np.random.default_rng(seed)
    r = np.zeros((n_dates, n_tickers))
    noise = rng.normal(0, 0.01, size=(n_dates, n_tickers))
    for t in range(n_dates):
        r[t] = noise[t] + (0.8 * r[t - lag] if t >= lag else 0.0)
    close = 50 * np.exp(np.cumsum(r, axis=0))
    dates = pd.bdate_range("2015-01-01", periods=n_dates)
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n_tickers),
            "ticker": np.tile([f"T{k:02d}" for k in range(n_tickers)], n_dates),
            "close": close.reshape(-1),
        }
    )


@pytest.fixture(scope="module")
def planted_panel():
    return load_panel(planted_frame())


def forecaster(**trainer) -> Forecaster:
    return Forecaster(
        model="lstm",
        model_params=SMALL_LSTM,
        features=["ret_1"],
        horizons=(1,),
        lookback=20,
        trainer={"epochs": 6, "batch_size": 256, "learning_rate": 3e-3, **FAST, **trainer},
    )


def test_planted_pattern_is_learned_out_of_sample(planted_panel):
    model = forecaster().fit(
        planted_panel, train=(None, "2016-09-30"), valid=("2016-10-01", "2017-01-31")
    )
    # Held out: dates after the validation range, never seen by training or early stopping.
    test_dates = [str(d)[:10] for d in planted_panel.dates[-60:]]
    predictions = model.predict(planted_panel, test_dates)
    close = pd.DataFrame(
        planted_panel.close, index=planted_panel.dates, columns=planted_panel.tickers
    )
    forward = (close.shift(-1) / close - 1).stack().rename("forward")
    joined = predictions.join(forward, on=["date", "ticker"]).dropna()
    ic = joined.groupby("date").apply(lambda g: g["prediction"].corr(g["forward"])).mean()
    assert ic > 0.5, f"held-out IC {ic:.3f}"
    assert model.history_[model.best_epoch_]["val_ic"] > 0.5
    assert {"train_loss", "val_loss", "val_ic", "val_rank_ic", "val_sharpe", "lr"} <= set(
        model.history_[0]
    )


def test_same_seed_same_weights(planted_panel):
    a = forecaster(epochs=2, seed=3).fit(planted_panel)
    b = forecaster(epochs=2, seed=3).fit(planted_panel)
    c = forecaster(epochs=2, seed=4).fit(planted_panel)
    for key, value in a.model_.state_dict().items():
        assert torch.equal(value, b.model_.state_dict()[key]), key
    assert any(
        not torch.equal(v, c.model_.state_dict()[k]) for k, v in a.model_.state_dict().items()
    )


def test_best_epoch_weights_are_restored(planted_panel):
    model = forecaster(epochs=4, monitor="loss", scheduler="none").fit(planted_panel)
    best = model.history_[model.best_epoch_]
    assert best["val_loss"] == min(h["val_loss"] for h in model.history_)
    # Re-evaluating the restored weights gives the best epoch's validation loss.
    values = model.scaler_.transform(compute_features(planted_panel, ["ret_1"]).values)
    labels = make_labels(planted_panel, "forward_return", (1,))
    split = int(planted_panel.n_dates * 0.8)
    samples = valid_samples(
        values, 20, labels=labels.values, mask=planted_panel.mask, start=split, label_horizon=1
    )
    data = WindowDataset(values, samples, labels.values / np.float32(model.label_scale_[0]))
    trainer = Trainer({"epochs": 1, **FAST})
    again = trainer.evaluate(model.model_, data)
    assert again["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def _dataset(panel, lookback=20):
    values = compute_features(panel, ["ret_1"]).values
    values = np.nan_to_num(values / 0.02, nan=np.nan)
    labels = make_labels(panel, "forward_return", (1,))
    samples = valid_samples(
        values, lookback, labels=labels.values, mask=panel.mask, label_horizon=1
    )
    return WindowDataset(values, samples, labels.values)


def test_gradient_accumulation_equals_a_bigger_batch(planted_panel):
    data = _dataset(planted_panel)
    results = []
    for batch_size, accumulation in ((128, 1), (64, 2)):
        torch.manual_seed(0)
        model = build_model("lstm", 1, **SMALL_LSTM)
        config = {
            "epochs": 1,
            "batch_size": batch_size,
            "accumulation_steps": accumulation,
            "max_batches_per_epoch": 2 * accumulation,
            "grad_clip": None,
            "scheduler": "none",
            **FAST,
        }
        Trainer(config).fit(model, data)
        results.append(model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scheduler", ["plateau", "cosine"])
def test_bf16_and_schedulers_run(planted_panel, scheduler):
    model = forecaster(epochs=2, precision="bf16", scheduler=scheduler).fit(planted_panel)
    assert np.isfinite(model.history_[-1]["train_loss"])
    if scheduler == "cosine":
        assert model.history_[1]["lr"] < model.history_[0]["lr"]


@pytest.mark.parametrize("loss", ["ic", "sharpe"])
def test_cross_sectional_losses_train_date_major(planted_panel, loss):
    model = forecaster(epochs=2, loss=loss, dates_per_batch=8).fit(planted_panel)
    assert np.isfinite(model.history_[-1]["train_loss"])
    assert model.history_[-1]["val_ic"] > 0.2


def test_classifier_forecaster(planted_panel):
    model = Forecaster(
        model="gru",
        model_params=SMALL_LSTM,
        features=["ret_1"],
        label="direction",
        horizons=(1,),
        lookback=20,
        trainer={"epochs": 3, "batch_size": 256, "learning_rate": 3e-3, **FAST},
    ).fit(planted_panel)
    frame = model.predict(planted_panel)
    assert {"prediction", "direction_1_p0", "direction_1_p1"} <= set(frame.columns)
    np.testing.assert_allclose(frame["direction_1_p0"] + frame["direction_1_p1"], 1, rtol=1e-5)
    assert model.history_[model.best_epoch_]["val_ic"] > 0.3


def test_save_load_predicts_the_same(planted_panel, tmp_path):
    model = forecaster(epochs=1).fit(planted_panel)
    path = tmp_path / "model.ckpt"
    model.save(path)
    again = Forecaster.load(path)
    pd.testing.assert_frame_equal(model.predict(planted_panel), again.predict(planted_panel))
    assert again.feature_names_ == ["ret_1"]
    # JSON has no tuples: the horizons come back as a list
    assert again.get_params() == {**model.get_params(), "horizons": [1]}
    training_ckpt = tmp_path / "train.ckpt"
    forecaster(epochs=1).fit(planted_panel, checkpoint=training_ckpt)
    with pytest.raises(CheckpointError, match="not a forecaster"):
        Forecaster.load(training_ckpt)


def test_predict_errors(planted_panel):
    model = forecaster(epochs=1).fit(planted_panel)
    with pytest.raises(DataError, match="dates not in panel"):
        model.predict(planted_panel, "1999-01-04")
    with pytest.raises(ConfigError, match="not fitted"):
        Forecaster().predict(planted_panel)
    ohlc = Forecaster(features=["hl_range"], trainer=FAST)
    with pytest.raises(DataError, match="needs field"):
        ohlc.fit(planted_panel)


def test_bad_trainer_settings():
    with pytest.raises(ConfigError, match="fp16"):
        Trainer({"precision": "fp16", "device": "cpu"})
    with pytest.raises(ConfigError):
        Trainer({"loss": "nope", **FAST})
    with pytest.raises(Exception, match="epochs"):
        TrainerConfig(epochs=0)


RESUME_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, torch
    sys.path.insert(0, {tests!r})
    from test_training import planted_frame, SMALL_LSTM
    from alphaseq import load_panel
    from alphaseq.forecaster import Forecaster

    mode, ckpt, out = sys.argv[1], sys.argv[2], sys.argv[3]
    panel = load_panel(planted_frame(n_tickers=12, n_dates=260))
    params = dict(SMALL_LSTM, dropout=0.2, num_layers=2)
    model = Forecaster(model="lstm", model_params=params, features=["ret_1", "ret_5"],
                       horizons=(1,), lookback=20,
                       trainer={{"epochs": 4, "batch_size": 64, "progress": False,
                                "device": "cpu", "patience": 10}})
    if mode == "kill":
        from alphaseq.training import trainer as trainer_module
        original = trainer_module.Trainer.__init__
        def init(self, *args, **kwargs):
            original(self, *args, **kwargs)
            def die(epoch, entry):
                if epoch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
            self.callbacks.append(trainer_module.as_callback(die))
        trainer_module.Trainer.__init__ = init
    model.fit(panel, checkpoint=None if mode == "full" else ckpt, resume=(mode == "resume"))
    model.save(out)
    """
)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(Path(__file__).parent)))
    ckpt = tmp_path / "train.ckpt"

    def run(mode: str, out: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), mode, str(ckpt), str(tmp_path / out)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    full = run("full", "full.ckpt")
    assert full.returncode == 0, full.stderr
    killed = run("kill", "never.ckpt")
    assert killed.returncode == -9, killed.stderr  # SIGKILL after epoch 1's checkpoint
    assert ckpt.exists() and not (tmp_path / "never.ckpt").exists()
    resumed = run("resume", "resumed.ckpt")
    assert resumed.returncode == 0, resumed.stderr

    a = Forecaster.load(tmp_path / "full.ckpt")
    b = Forecaster.load(tmp_path / "resumed.ckpt")
    assert len(a.history_) == len(b.history_) == 4
    for key, value in a.model_.state_dict().items():
        assert torch.equal(value, b.model_.state_dict()[key]), key
    assert [h["val_loss"] for h in a.history_] == [h["val_loss"] for h in b.history_]
    # The scorer's memory (the first epoch's per-date figures) resumes too: every
    # epoch's gain over the first is the same as without the interruption.
    for key in ("val_ic_gain_t", "val_rank_ic_gain_t", "val_ic_se"):
        full_values = [h.get(key) for h in a.history_]
        resumed_values = [h.get(key) for h in b.history_]
        assert np.allclose(
            np.array(full_values[1:], dtype=float),
            np.array(resumed_values[1:], dtype=float),
            equal_nan=True,
        ), key
    assert "val_ic_gain_t" not in a.history_[0] and "val_ic_gain_t" in a.history_[1]


def test_resume_refuses_other_settings(planted_panel, tmp_path):
    ckpt = tmp_path / "train.ckpt"
    forecaster(epochs=1).fit(planted_panel, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="other trainer settings"):
        forecaster(epochs=2, learning_rate=1e-2).fit(planted_panel, checkpoint=ckpt, resume=True)


def test_validation_metrics_by_hand():
    pred = torch.tensor([1.0, 2.0, 3.0, 3.0, 1.0, 2.0])
    target = torch.tensor([0.1, 0.2, 0.3, -0.3, 0.1, -0.2])
    group = torch.tensor([7, 7, 7, 9, 9, 9])
    figures = validation_metrics(pred, target, group)
    # date 7: perfectly correlated (+1); date 9: corr([3,1,2], [-.3,.1,-.2]) by hand
    p, t = np.array([3.0, 1, 2]), np.array([-0.3, 0.1, -0.2])
    c9 = ((p - p.mean()) * (t - t.mean())).sum() / np.sqrt(
        ((p - p.mean()) ** 2).sum() * ((t - t.mean()) ** 2).sum()
    )
    assert figures["ic"] == pytest.approx((1 + c9) / 2, rel=1e-6)
    assert figures["rank_ic"] == pytest.approx((1 + -1.0) / 2, abs=1e-6)
    # top 20% of 3 samples -> 1 per date: date 7 -> 0.3, date 9 -> -0.3
    assert figures["sharpe"] == pytest.approx(0.0, abs=1e-6)
    assert per_date_rank(
        torch.tensor([5.0, 1.0, 3.0, 0.0]), torch.tensor([1, 1, 1, 2])
    ).tolist() == [
        2,
        0,
        1,
        0,
    ]


def test_real_data_smoke_on_embedded_sp500():
    panel = load_panel("sp500").slice_dates("2015-01-01", "2019-12-31")
    model = Forecaster(
        model="lstm",
        model_params={"hidden_size": 16, "num_layers": 1, "attention_heads": 2},
        lookback=30,
        stride=5,
        trainer={"epochs": 2, "batch_size": 256, **FAST},
    ).fit(panel)
    frame = model.predict(panel)
    assert len(frame) == 20 and frame["prediction"].notna().all()
    assert model.feature_names_[0] == "ret_1"


def test_largest_batch_size_respects_the_budget():
    from alphaseq.training.memory import largest_batch_size

    model = build_model("lstm", 22, hidden_size=128, num_layers=2)
    budget, resident = 12 * 2**30, 400 * 2**20  # a 12 GB card holding the panel
    batch = largest_batch_size(model, 60, budget, resident_bytes=resident, dtype_bytes=2)
    assert batch % 64 == 0 and batch >= 64
    used = model.estimate_training_memory(batch, 60, 2) + resident
    more = model.estimate_training_memory(batch + 64, 60, 2) + resident
    assert used <= 0.8 * budget < more or batch == 65_536
    with pytest.raises(ConfigError, match="do not fit"):
        largest_batch_size(model, 60, 2**20)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_on_cuda(planted_panel, precision):
    model = forecaster(epochs=3, precision=precision, device="cuda").fit(planted_panel)
    assert np.isfinite(model.history_[-1]["train_loss"])
    assert model.history_[model.best_epoch_]["val_ic"] > 0.3
    assert next(model.model_.parameters()).device.type == "cuda"


def test_planted_regime_classifier_beats_the_majority_class(planted_panel):
    model = Forecaster(
        model="lstm",
        model_params=SMALL_LSTM,
        features=["ret_1"],
        task="classification",
        label="three_class",
        horizons=(1,),
        flat_band=0.005,
        class_weights="balanced",
        lookback=20,
        trainer={"epochs": 6, "batch_size": 256, "learning_rate": 3e-3, **FAST},
    ).fit(planted_panel, train=(None, "2016-09-30"), valid=("2016-10-01", "2017-01-31"))
    test_dates = [str(d)[:10] for d in planted_panel.dates[-60:-1]]
    frame = model.predict(planted_panel, test_dates)
    labels = make_labels(planted_panel, "three_class", (1,), flat_band=0.005).values[..., 0]
    rows = np.searchsorted(planted_panel.dates, frame["date"].to_numpy("datetime64[ns]"))
    cols = [list(planted_panel.tickers).index(t) for t in frame["ticker"]]
    truth = labels[rows, cols]
    predicted = frame[["three_class_1_p0", "three_class_1_p1", "three_class_1_p2"]].to_numpy()
    accuracy = (predicted.argmax(axis=1) == truth).mean()
    majority = np.bincount(truth.astype(int)).max() / len(truth)
    assert accuracy > majority + 0.15, (accuracy, majority)


def test_ticker_attention_for_one_date(planted_panel):
    model = forecaster(epochs=1).fit(planted_panel)
    table = model.ticker_attention(planted_panel, str(planted_panel.dates[-1])[:10])
    assert table.shape == (40, 20)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)
    assert list(table.columns[:2]) == ["lag_0", "lag_1"]
