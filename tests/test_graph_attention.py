"""Graph attention across assets (``gat``): dates stay apart, lead-lag is learned, causal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from alphaseq import load_panel
from alphaseq.errors import ConfigError
from alphaseq.forecaster import Forecaster
from alphaseq.models import build_model
from alphaseq.models.graph_attention import pad_by_group
from alphaseq.training import Trainer
from alphaseq.training.trainer import predict_outputs
from alphaseq.windows import WindowDataset, valid_samples

SMALL = {"hidden_size": 16, "num_layers": 1, "attention_heads": 2, "dropout": 0.0}


def lead_lag_frame(n_followers: int = 15, n_dates: int = 500, seed: int = 0) -> pd.DataFrame:
    """One loud leader (T00) whose return today is half of every follower's tomorrow:
    nothing in a follower's own history predicts it, the leader's today does."""
    rng = np.random.default_rng(seed)
    n = n_followers + 1
    r = rng.normal(0, 0.006, size=(n_dates, n))
    r[:, 0] = rng.normal(0, 0.03, size=n_dates)
    r[1:, 1:] += 0.5 * r[:-1, [0]]
    close = 50 * np.exp(np.cumsum(r, axis=0))
    dates = pd.bdate_range("2015-01-01", periods=n_dates)
    return pd.DataFrame(
        {
            "date": np.repeat(dates, n),
            "ticker": np.tile([f"T{k:02d}" for k in range(n)], n_dates),
            "close": close.reshape(-1),
        }
    )


TRANSFORMER = {"d_model": 16, "num_layers": 1, "attention_heads": 2, "dropout": 0.0}


def small(name: str) -> dict:
    """Small hyper-parameters of ``name``."""
    if name == "gat_transformer":
        return TRANSFORMER | {"graph_heads": 2}
    return SMALL | ({"graph_heads": 2} if name == "gat" else {})


def forecaster(name: str) -> Forecaster:
    params = small(name)
    return Forecaster(
        model=name,
        model_params=params,
        features=["ret_1", "vol_21"],
        horizons=(1,),
        lookback=10,
        scaler="standard",
        trainer={
            "epochs": 6,
            "batch_size": 256,
            "learning_rate": 1e-2,
            "dates_per_batch": 8,
            "monitor": "loss",
            "patience": 6,
            "device": "cpu",
            "progress": False,
        },
    )


@pytest.fixture(scope="module")
def lead_lag():
    panel = load_panel(lead_lag_frame())
    fitted = {
        name: forecaster(name).fit(
            panel, train=(None, "2016-03-31"), valid=("2016-04-01", "2016-07-31")
        )
        for name in ("lstm", "gat", "gat_transformer")
    }
    return panel, fitted


def held_out_correlation(panel, model) -> float:
    dates = [str(d)[:10] for d in panel.dates[-80:-2]]
    frame = model.predict(panel, dates)
    close = pd.DataFrame(panel.close, index=panel.dates, columns=panel.tickers)
    forward = (close.shift(-1) / close - 1).stack()
    truth = forward.reindex(pd.MultiIndex.from_arrays([frame["date"], frame["ticker"]]))
    followers = (frame["ticker"] != "T00").to_numpy()
    return float(np.corrcoef(frame["prediction"][followers], truth.to_numpy()[followers])[0, 1])


def test_a_planted_lead_lag_is_learned_across_assets(lead_lag):
    panel, fitted = lead_lag
    gat, lstm, gat_t = (
        held_out_correlation(panel, fitted[n]) for n in ("gat", "lstm", "gat_transformer")
    )
    # Measured: gat 0.91, lstm 0.06 (the LSTM sees each follower's own history only).
    assert gat > 0.6 and gat > lstm + 0.4, (gat, lstm)
    assert gat_t > 0.6 and gat_t > lstm + 0.4, (gat_t, lstm)  # on the Transformer's encoder


def test_forecasts_at_t_ignore_every_assets_data_after_t(lead_lag):
    panel, fitted = lead_lag
    model = fitted["gat"]
    cut = panel.n_dates - 40
    rng = np.random.default_rng(1)
    close = panel.close.copy()
    close[cut + 1 :] *= rng.lognormal(0, 0.05, size=close[cut + 1 :].shape).astype(np.float32)
    perturbed = panel._replace(fields=dict(panel.fields) | {"close": close})
    dates = [str(d)[:10] for d in panel.dates[cut - 5 : cut + 1]]
    pd.testing.assert_frame_equal(model.predict(panel, dates), model.predict(perturbed, dates))
    later = [str(panel.dates[cut + 5])[:10]]
    assert not model.predict(panel, later).equals(model.predict(perturbed, later))


def test_checkpoint_round_trip(lead_lag, tmp_path):
    panel, fitted = lead_lag
    fitted["gat"].save(tmp_path / "gat.ckpt")
    loaded = Forecaster.load(tmp_path / "gat.ckpt")
    dates = [str(d)[:10] for d in panel.dates[-3:]]
    pd.testing.assert_frame_equal(loaded.predict(panel, dates), fitted["gat"].predict(panel, dates))
    assert loaded.model_.config == fitted["gat"].model_.config


@pytest.mark.parametrize("name", ["gat", "gat_transformer"])
def test_assets_attend_within_their_date_only(name):
    torch.manual_seed(0)
    model = build_model(name, 3, **(small(name) | {"graph_heads": 2}), n_regression=2).eval()
    x = torch.randn(9, 5, 3)
    group = torch.tensor([4, 4, 4, 7, 7, 9, 9, 9, 9])
    together = model(x, group=group).regression
    alone = torch.cat([model(x[group == g]).regression for g in (4, 7, 9)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    # A missing asset is simply absent: date 9 without its last asset is date 9 of three.
    fewer = model(x[:8], group=group[:8]).regression
    torch.testing.assert_close(fewer[5:], model(x[5:8]).regression, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fewer[:5], together[:5], rtol=1e-5, atol=1e-6)
    # Shuffling the batch shuffles the forecasts and changes nothing else.
    order = torch.randperm(9)
    torch.testing.assert_close(
        model(x[order], group=group[order]).regression, together[order], rtol=1e-5, atol=1e-6
    )


def test_heads_attention_and_padding():
    model = build_model("gat", 4, **SMALL, n_regression=2, n_classification=3, n_classes=3)
    out = model(torch.randn(6, 7, 4), return_attention=True, group=torch.tensor([0, 0, 1, 1, 1, 2]))
    assert out.regression.shape == (6, 2) and out.logits.shape == (6, 3, 3)
    assert out.attention.shape == (6, 2, 7)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(6, 2))
    padded, present, row, slot = pad_by_group(
        torch.arange(10.0).view(5, 2), torch.tensor([3, 1, 3, 3, 1])
    )
    assert padded.shape == (2, 3, 2) and present.sum() == 5
    torch.testing.assert_close(padded[row, slot], torch.arange(10.0).view(5, 2))
    with pytest.raises(ConfigError, match="graph_heads"):
        build_model("gat", 4, hidden_size=6, attention_heads=2, graph_heads=4)
    with pytest.raises(ConfigError, match="cell"):
        build_model("gat", 4, cell="rnn")
    small = model.estimate_training_memory(256, 7, assets_per_date=50)
    assert model.estimate_training_memory(256, 7, assets_per_date=500) > small


def test_the_trainer_serves_whole_dates_and_keeps_the_order():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(40, 6, 2)).astype(np.float32)
    labels = rng.normal(size=(40, 6, 1)).astype(np.float32)
    samples = valid_samples(values, 5, labels=labels)
    data = WindowDataset(values, samples, labels)
    model = build_model("gat", 2, **SMALL).eval()
    # A batch smaller than one date still gets whole dates, and the outputs come back in
    # the samples' order.
    by_date = predict_outputs(model, data, batch_size=4).regression
    expected = torch.cat(
        [
            model(data.batch(torch.nonzero(data.t == t).flatten())[0]).regression
            for t in torch.unique(data.t)
        ]
    )
    torch.testing.assert_close(by_date, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="date_major"):
        Trainer({"date_major": False, "epochs": 1, "device": "cpu", "progress": False}).fit(
            model, data, data
        )
    trainer = Trainer(
        {"epochs": 1, "device": "cpu", "progress": False, "dates_per_batch": 3, "monitor": "loss"}
    )
    trainer.fit(model.train(), data, data)
    assert trainer.date_major


# ----------------------------------------------------------------------------- neighbourhood
def test_correlation_neighbours_find_the_planted_clusters():
    from alphaseq.models.graph_attention import correlation_neighbours

    rng = np.random.default_rng(0)
    common = rng.normal(0, 0.02, size=(300, 2))
    r = rng.normal(0, 0.005, size=(300, 6)) + np.repeat(common, 3, axis=1)  # {0,1,2}, {3,4,5}
    close = 50 * np.exp(np.cumsum(r, axis=0))
    close[:250, 5] = np.nan  # a late starter: its 49 common returns still count
    adjacency = correlation_neighbours(close, k=2)
    assert adjacency.diagonal().all()
    assert adjacency[0].tolist() == [True, True, True, False, False, False]
    assert adjacency[4, 3] and not adjacency[4, :3].any()
    assert adjacency.sum(axis=1).max() == 3  # k peers plus itself


def test_a_restricted_asset_reads_only_its_neighbours():
    torch.manual_seed(0)
    model = build_model("gat", 3, **SMALL, graph_heads=2, neighbours=1).eval()
    adjacency = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)  # A-B, C alone
    model.set_neighbourhood(["A", "B", "C"], adjacency)
    x = torch.randn(3, 5, 3)
    asset = torch.tensor([0, 1, 2])
    base = model(x, asset=asset).regression
    changed = x.clone()
    changed[0] += 3.0  # A moves
    moved = model(changed, asset=asset).regression
    assert not torch.allclose(moved[1], base[1])  # B reads A
    torch.testing.assert_close(moved[2], base[2])  # C does not
    unrestricted = model(changed).regression  # no asset ids: the whole date, as before
    assert not torch.allclose(unrestricted[2], base[2])
    # aligned to another panel's columns, the same tickers give the same forecasts
    model.align_assets(["C", "Z", "A", "B"])
    order = [2, 0, 1]
    again = model(x[order], asset=torch.tensor([0, 2, 3])).regression
    torch.testing.assert_close(again, base[order])
    # a ticker the training panel lacked attends to itself only
    lone = model(torch.cat([x[order], x[:1]]), asset=torch.tensor([0, 2, 3, 1])).regression
    torch.testing.assert_close(lone[:3], base[order])


def test_the_neighbourhood_comes_from_training_prices_and_survives_a_checkpoint(tmp_path):
    panel = load_panel(lead_lag_frame(n_followers=7, n_dates=300))
    spec = forecaster("gat")
    spec.model_params = spec.model_params | {"neighbours": 2}
    spec.trainer = spec.trainer | {"epochs": 1}
    train, valid = (None, "2015-09-30"), ("2015-10-01", "2015-12-31")
    fitted = Forecaster(**spec.get_params()).fit(panel, train=train, valid=valid)
    adjacency = fitted.model_.adjacency
    assert adjacency.shape == (8, 8) and (adjacency.sum(1) == 3).all()
    # prices after the training window do not change it
    close = panel.close.copy()
    later = panel.dates > np.datetime64("2015-09-30")
    close[later] *= (
        np.random.default_rng(2).lognormal(0, 0.2, close[later].shape).astype(np.float32)
    )
    perturbed = panel._replace(fields=dict(panel.fields) | {"close": close})
    refit = Forecaster(**spec.get_params()).fit(perturbed, train=train, valid=valid)
    assert torch.equal(refit.model_.adjacency, adjacency)
    fitted.save(tmp_path / "gat.ckpt")
    loaded = Forecaster.load(tmp_path / "gat.ckpt")
    assert torch.equal(loaded.model_.adjacency, adjacency)
    dates = [str(d)[:10] for d in panel.dates[-3:]]
    pd.testing.assert_frame_equal(loaded.predict(panel, dates), fitted.predict(panel, dates))
