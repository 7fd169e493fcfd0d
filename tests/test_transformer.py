"""Temporal Transformer: its attention against a hand computation, positions by age,
the single-query last block, and learning a planted lag through the trainer's API."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from alphaseq.models import TemporalTransformer, build_model
from alphaseq.models.transformer import age_encoding

F = 5


def test_age_encoding_gives_today_the_same_code_at_any_lookback():
    short, long = age_encoding(20, 16), age_encoding(60, 16)
    torch.testing.assert_close(short, long[-20:])
    assert torch.equal(long[-1, 0::2], torch.zeros(8))  # age 0: sin 0
    assert torch.equal(long[-1, 1::2], torch.ones(8))  # and cos 0
    # every age has its own code
    assert torch.cdist(long, long).add(torch.eye(60)).min() > 1e-3
    assert age_encoding(7, 5).shape == (7, 5)  # odd widths work


def test_blocks_match_a_hand_written_multi_head_attention():
    torch.manual_seed(0)
    model = TemporalTransformer(F, d_model=8, attention_heads=2, num_layers=2, dropout=0.0)
    model.eval()
    block = model.blocks[0]
    h = torch.randn(3, 10, 8)
    with torch.no_grad():
        q, k, v = block.qkv(block.norm1(h)).chunk(3, dim=-1)
        heads = []
        for i in range(2):
            part = slice(4 * i, 4 * i + 4)
            w = (q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(4)).softmax(-1)
            heads.append(w @ v[..., part])
        mid = h + block.out(torch.cat(heads, -1))
        expected = mid + block.ff(block.norm2(mid))
        torch.testing.assert_close(block(h), expected, atol=1e-5, rtol=1e-5)
        # the single-query path is the full block's last row, with its weights
        last, weights = block.forward_last(h)
        torch.testing.assert_close(last, expected[:, -1], atol=1e-5, rtol=1e-5)
        w0 = (q[:, -1:, :4] @ k[..., :4].transpose(1, 2) / 2).softmax(-1).squeeze(1)
        torch.testing.assert_close(weights[:, 0], w0, atol=1e-6, rtol=1e-5)


def test_only_the_window_is_read_and_every_day_of_it_can_matter():
    torch.manual_seed(1)
    model = TemporalTransformer(F, d_model=16, attention_heads=4, dropout=0.0).eval()
    x = torch.randn(4, 12, F, requires_grad=True)
    model(x).regression.sum().backward()
    # every day of the window reaches the forecast (no accidental mask or truncation)
    assert (x.grad.abs().sum(dim=(0, 2)) > 0).all()
    # and the forecast of window b depends on window b only
    x2 = x.detach().clone()
    x2[1:] = 1e3
    with torch.no_grad():
        torch.testing.assert_close(model(x2).regression[0], model(x.detach()).regression[0])


def test_a_planted_lag_is_learnt_and_the_attention_points_at_it():
    """y = the value 7 days before the last: the age encoding lets the last day's query
    find that day by position alone, so the loss falls far below the target's variance
    and the last block's attention peaks on the planted day."""
    torch.set_num_threads(1)
    lookback, lag = 20, 7
    day = lookback - 1 - lag
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TemporalTransformer(1, d_model=16, num_layers=1, attention_heads=2, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        x = torch.randn(64, lookback, 1, generator=generator)
        loss = nn.functional.mse_loss(model(x).regression, x[:, day])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        x = torch.randn(512, lookback, 1, generator=generator)
        out = model(x, return_attention=True)
    loss = nn.functional.mse_loss(out.regression, x[:, day]).item()
    attention = out.attention.mean(dim=(0, 1))
    assert loss < 0.1, loss  # the target has variance 1
    assert attention.argmax().item() == day and attention[day] > 3 / lookback, attention


def test_bf16_autocast_keeps_weights_a_distribution():
    model = build_model("transformer", F, d_model=16, attention_heads=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(6, 12, F), return_attention=True)
    assert torch.isfinite(out.regression.float()).all()
    assert out.attention.dtype == torch.float32
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(6, 4), atol=1e-5, rtol=0)


@pytest.mark.parametrize("lookback", [1, 3])
def test_short_windows_work(lookback):
    model = build_model("transformer", F, d_model=8, attention_heads=2, num_layers=2)
    out = model(torch.randn(2, lookback, F), return_attention=True)
    assert out.regression.shape == (2, 1) and out.attention.shape == (2, 2, lookback)


def test_forecaster_learns_a_planted_lag_with_a_transformer_and_reloads_it(tmp_path):
    """Returns with r[t] = 0.8 r[t-3] + noise: the trained Transformer's held-out IC is
    high, and the saved checkpoint predicts the same numbers."""
    import pandas as pd

    from alphaseq.data import load_panel
    from alphaseq.forecaster import Forecaster

    rng = np.random.default_rng(0)
    n_dates, n_tickers, lag = 500, 30, 3
    r = rng.normal(0, 0.01, size=(n_dates, n_tickers))
    for t in range(lag, n_dates):
        r[t] += 0.8 * r[t - lag]
    dates = pd.bdate_range("2015-01-01", periods=n_dates)
    panel = load_panel(
        pd.DataFrame(
            {
                "date": np.repeat(dates, n_tickers),
                "ticker": np.tile([f"T{k:02d}" for k in range(n_tickers)], n_dates),
                "close": (50 * np.exp(np.cumsum(r, axis=0))).reshape(-1),
            }
        )
    )
    forecaster = Forecaster(
        model="transformer",
        model_params={"d_model": 16, "attention_heads": 2, "num_layers": 1, "dropout": 0.0},
        features=["ret_1"],
        horizons=(1,),
        lookback=10,
        trainer={"epochs": 4, "batch_size": 128, "learning_rate": 3e-3, "progress": False},
    ).fit(panel, train=(None, "2016-03-31"), valid=("2016-04-01", "2016-06-30"))
    test_dates = [str(d)[:10] for d in panel.dates[-40:-1]]
    predictions = forecaster.predict(panel, test_dates)
    close = pd.DataFrame(panel.close, index=panel.dates, columns=panel.tickers)
    forward = (close.shift(-1) / close - 1).stack().rename("forward")
    joined = predictions.join(forward, on=["date", "ticker"]).dropna()
    ic = joined.groupby("date").apply(lambda g: g["prediction"].corr(g["forward"])).mean()
    assert ic > 0.4, f"held-out IC {ic:.3f}"
    forecaster.save(tmp_path / "model.ckpt")
    again = Forecaster.load(tmp_path / "model.ckpt")
    pd.testing.assert_frame_equal(again.predict(panel, test_dates), predictions)
