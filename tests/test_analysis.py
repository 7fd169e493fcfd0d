"""Attention analysis (weights, lag order, fold summary, heat map, per ticker) and the
classification and regression quality blocks, each checked against hand computations
or scikit-learn's own numbers. Models are tiny; the file runs in a few seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import classification_report, confusion_matrix

from alphaseq.analysis import (
    attention_summary,
    attention_weights,
    average_by_lag,
    class_weights_balanced,
    classification_block,
    direction_accuracy,
    plot_attention_heatmap,
    regression_block,
    ticker_attention,
    top_lags,
)
from alphaseq.models import build_model
from alphaseq.windows import WindowDataset, valid_samples

T, N, F, L = 40, 5, 3, 10
HEADS = 2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def panel() -> tuple[np.ndarray, np.ndarray]:
    """(T, N, F) features with gaps, and a (T, N) mask with a ticker that stops trading."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal((T, N, F)).astype(np.float32)
    values[15, 1, 0] = np.nan  # breaks ticker 1's windows for L days
    mask = np.ones((T, N), dtype=bool)
    mask[30:, 4] = False
    return values, mask


@pytest.fixture(scope="module")
def lstm() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("lstm", F, hidden_size=8, num_layers=1, attention_heads=HEADS)


@pytest.fixture(scope="module")
def dataset(panel) -> WindowDataset:
    values, mask = panel
    return WindowDataset(values, valid_samples(values, L, mask=mask))


# --------------------------------------------------------------------------- attention
def test_attention_weights_shape_order_and_normalisation(lstm, dataset):
    lstm.train()
    weights = attention_weights(lstm, dataset, batch_size=7)  # several uneven batches
    assert lstm.training  # the caller's mode is restored
    assert weights.dtype == np.float32
    assert weights.shape == (len(dataset), HEADS, L)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert (weights >= 0).all()

    # Same as one direct forward pass over the same windows, in the same order.
    x, _ = dataset.batch(torch.arange(len(dataset)))
    with torch.no_grad():
        expected = lstm.eval()(x, return_attention=True).attention.numpy()
    np.testing.assert_allclose(weights, expected, atol=1e-6)


def test_attention_weights_none_without_attention(dataset):
    linear = build_model("linear", F)
    assert attention_weights(linear, dataset) is None
    no_heads = build_model("lstm", F, hidden_size=8, num_layers=1, attention_heads=0)
    assert attention_weights(no_heads, dataset) is None


def test_attention_weights_of_an_empty_dataset(lstm, panel):
    values, _ = panel
    empty = WindowDataset(values, valid_samples(values, L, start=T, end=T - 1))
    assert attention_weights(lstm, empty).shape == (0, HEADS, L)
    assert attention_weights(build_model("linear", F), empty) is None


def test_average_by_lag_reverses_window_order():
    # Window order: index 0 = oldest. Plant weight on the oldest and the last day.
    weights = np.zeros((2, 2, 4))
    weights[0, 0] = [0.7, 0.1, 0.1, 0.1]
    weights[0, 1] = [0.1, 0.1, 0.1, 0.7]
    weights[1, 0] = [0.0, 0.0, 0.0, 1.0]
    weights[1, 1] = [0.0, 0.0, 0.2, 0.8]
    profile = average_by_lag(weights)
    # lag 0 = last window step, lag 3 = oldest.
    np.testing.assert_allclose(profile, [(0.1 + 0.7 + 1.0 + 0.8) / 4, 0.4 / 4, 0.2 / 4, 0.8 / 4])
    assert profile[-1] == pytest.approx((0.7 + 0.1) / 4)
    assert profile.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(average_by_lag(np.array([0.5, 0.3, 0.2])), [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="no attention"):
        average_by_lag(np.zeros((0, 2, 4)))


def test_top_lags_descending():
    profile = np.array([0.1, 0.4, 0.1, 0.3, 0.1])
    assert top_lags(profile, n=3) == [
        {"lag": 1, "weight": 0.4},
        {"lag": 3, "weight": 0.3},
        {"lag": 0, "weight": 0.1},  # ties: the more recent lag first
    ]
    assert len(top_lags(profile, n=10)) == 5
    assert all(type(d["lag"]) is int and type(d["weight"]) is float for d in top_lags(profile))


def test_attention_summary_weights_folds_by_sample_count():
    a = np.array([0.5, 0.3, 0.2])
    b = np.array([0.1, 0.1, 0.8])
    summary = attention_summary([a, None, b], [30, 0, 10])
    expected = (30 * a + 10 * b) / 40
    np.testing.assert_allclose(summary["out_of_sample"], expected)
    assert summary["folds"] == [0, 2]
    assert summary["counts"] == [30, 10]
    assert summary["per_fold"] == [a.tolist(), b.tolist()]
    assert summary["uniform"] == pytest.approx(1 / 3)
    assert summary["lookback"] == 3
    assert summary["top_lags"][0] == {"lag": 0, "weight": pytest.approx(expected[0])}
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready, no numpy scalars

    assert attention_summary([None, None], [5, 5]) is None
    assert attention_summary([a], [0]) is None  # a fold without samples says nothing
    with pytest.raises(ValueError, match="lookbacks"):
        attention_summary([a, np.ones(4) / 4], [1, 1])
    with pytest.raises(ValueError, match="sample counts"):
        attention_summary([a, b], [1])


def test_plot_attention_heatmap_writes_a_png(tmp_path, lstm, dataset):
    profile = average_by_lag(attention_weights(lstm, dataset))
    rng = np.random.default_rng(1)
    other = rng.dirichlet(np.ones(L))
    path = plot_attention_heatmap(
        [profile, None, other],
        tmp_path / "figures" / "attention.png",
        title="tiny model",
        fold_labels=["2019", "2020", "2021"],
        counts=[3, 0, 1],
    )
    assert path == tmp_path / "figures" / "attention.png"
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000
    with pytest.raises(ValueError, match="no fold"):
        plot_attention_heatmap([None], tmp_path / "none.png")
    with pytest.raises(ValueError, match="labels"):
        plot_attention_heatmap([profile], tmp_path / "x.png", fold_labels=["a", "b"])


def test_ticker_attention_one_date(lstm, panel):
    values, mask = panel
    tickers = [f"T{k}" for k in range(N)]
    # Row 20: ticker 1's window holds the NaN of row 15; ticker 4 still trades.
    frame = ticker_attention(lstm, values, mask, L, 20, tickers)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["T0", "T2", "T3", "T4"]
    assert frame.index.name == "ticker"
    assert list(frame.columns) == [f"lag_{k}" for k in range(L)]
    np.testing.assert_allclose(frame.sum(axis=1), 1.0, atol=1e-5)

    # Lag 0 is the window's last step: compare with the model's own output.
    x = torch.as_tensor(values[20 - L + 1 : 21, 0][None])
    with torch.no_grad():
        direct = lstm.eval()(x, return_attention=True).attention[0].mean(0).numpy()
    np.testing.assert_allclose(frame.loc["T0"].to_numpy(), direct[::-1], atol=1e-6)

    # The last row: ticker 4 stopped trading; negative rows count from the end.
    assert list(ticker_attention(lstm, values, mask, L, -1, tickers).index) == [
        "T0",
        "T1",
        "T2",
        "T3",
    ]
    early = ticker_attention(lstm, values, mask, L, L - 2, tickers)  # no complete window
    assert early.empty and list(early.columns) == [f"lag_{k}" for k in range(L)]
    assert ticker_attention(build_model("linear", F), values, mask, L, 20, tickers) is None
    with pytest.raises(ValueError, match="outside"):
        ticker_attention(lstm, values, mask, L, T, tickers)


# ----------------------------------------------------------------------- classification
Y_TRUE = [0, 0, 1, 2, 2, 2, 1, 0, 2, 2, 1, 2]
Y_PRED = [0, 2, 1, 2, 2, 0, 2, 0, 2, 1, 2, 2]


def test_classification_block_matches_sklearn():
    block = classification_block(Y_TRUE, Y_PRED)
    names = ["DOWN", "FLAT", "UP"]
    expected = classification_report(
        Y_TRUE, Y_PRED, labels=[0, 1, 2], target_names=names, output_dict=True, zero_division=0
    )
    report = block["report"]
    for name in names:
        for key, sk_key in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert report[name][key] == pytest.approx(expected[name][sk_key])
        assert report[name]["support"] == expected[name]["support"]
    for ours, theirs in [("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")]:
        assert report[ours]["f1"] == pytest.approx(expected[theirs]["f1-score"])
        assert report[ours]["precision"] == pytest.approx(expected[theirs]["precision"])
    assert report["accuracy"] == pytest.approx(7 / 12)
    # By hand: UP has 6 true samples, 4 found; 7 UP predictions, 4 right.
    assert report["UP"]["recall"] == pytest.approx(4 / 6)
    assert report["UP"]["precision"] == pytest.approx(4 / 7)

    matrix = confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2]).tolist()
    assert block["confusion"] == {"labels": names, "matrix": matrix}
    assert matrix == [[2, 0, 1], [0, 1, 2], [1, 1, 4]]  # rows = true, columns = predicted
    assert block["majority_class"] == "UP"
    assert block["majority_class_rate"] == pytest.approx(6 / 12)
    assert block["n"] == 12
    assert json.loads(json.dumps(block)) == block


def test_classification_block_binary_zero_division_and_nan():
    # Float labels with NaN (unknown), a class never predicted (zero_division=0).
    y_true = np.array([1.0, 0.0, 1.0, np.nan, 1.0])
    y_pred = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    block = classification_block(y_true, y_pred, labels=(0, 1), names=("DOWN", "UP"))
    assert block["n"] == 4
    assert block["report"]["DOWN"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert block["report"]["accuracy"] == pytest.approx(0.75)
    assert block["majority_class_rate"] == pytest.approx(0.75)
    assert block["confusion"]["matrix"] == [[0, 1], [0, 3]]
    with pytest.raises(ValueError, match="outside labels"):
        classification_block([0, 3], [0, 1])
    with pytest.raises(ValueError, match="no pair"):
        classification_block([np.nan], [1])


def test_class_weights_balanced_by_hand():
    y = [0, 0, 0, 0, 1, 2, 2, 2]  # n = 8, C = 3
    assert class_weights_balanced(y, 3) == pytest.approx([8 / 12, 8 / 3, 8 / 9])
    # n = 3 once NaN is dropped: 3 / (3 * 1), 3 / (3 * 2); absent class 2 gets 1.0.
    assert class_weights_balanced([0, 1, 1, np.nan], 3) == pytest.approx([1.0, 0.5, 1.0])
    assert class_weights_balanced([], 2) == [1.0, 1.0]
    with pytest.raises(ValueError, match="outside"):
        class_weights_balanced([0, 3], 3)
    with pytest.raises(ValueError, match="non-integer"):
        class_weights_balanced([0.5], 3)


def test_regression_block_by_hand():
    pred = np.array([1.0, 2.0, 3.0, np.nan])
    true = np.array([1.0, 1.0, 5.0, 2.0])
    block = regression_block(pred, true)
    # Errors 0, 1, -2 -> mse 5/3, mae 1.
    assert block["n"] == 3
    assert block["mse"] == pytest.approx(5 / 3)
    assert block["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert block["mae"] == pytest.approx(1.0)
    # dp = (-1, 0, 1), dy = (-4/3, -4/3, 8/3): r = 4 / sqrt(2 * 32/3).
    assert block["correlation"] == pytest.approx(4 / math.sqrt(2 * 32 / 3))
    assert block["correlation"] == pytest.approx(np.corrcoef(pred[:3], true[:3])[0, 1])

    constant = regression_block([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert constant["correlation"] is None and constant["mse"] == pytest.approx(5 / 3)
    assert regression_block([np.nan], [1.0]) == {
        "mse": None,
        "rmse": None,
        "mae": None,
        "correlation": None,
        "n": 0,
    }


def test_direction_accuracy_conventions():
    # Returns: signs; zeros have no direction.
    assert direction_accuracy([0.1, -0.2, 0.3, 0.0], [0.05, 0.1, 0.2, 0.3]) == pytest.approx(2 / 3)
    # P(up) against 0/1 direction labels.
    assert direction_accuracy(
        [0.9, 0.2, 0.6, 0.4], [1, 0, 0, 0], threshold=0.5, realised_threshold=0.5
    ) == pytest.approx(3 / 4)
    # P(up) - P(down) against DOWN/FLAT/UP codes: FLAT (1) is left out.
    assert direction_accuracy(
        [0.3, -0.1, 0.2, -0.4], [2, 1, 0, 0], realised_threshold=1.0
    ) == pytest.approx(2 / 3)
    assert direction_accuracy([0.0], [1.0]) is None
