"""Readable charts: which strategies a chart draws, their colours and line styles."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from alphaseq.report import figures

NAMES = [
    "model_topk",
    "equal_weight",
    "benchmark",
    "momentum",
    "fw",
    "tilt",
    "mv",
    "hrp",
]


def test_chart_selection_keeps_six_lines_models_first():
    sharpe = {"fw": 0.4, "tilt": 0.9, "mv": None, "momentum": 2.0, "hrp": 1.5}
    drawn, left_out = figures.chart_selection(NAMES, "model_topk", "benchmark", sharpe)
    assert len(drawn) == 6 and sorted(drawn + left_out) == sorted(NAMES)
    assert {"model_topk", "equal_weight", "benchmark"} <= set(drawn)
    # The other model strategies before any baseline, best Sharpe first, None last.
    assert {"tilt", "fw", "mv"} <= set(drawn) and left_out == ["momentum", "hrp"]
    assert drawn == [n for n in NAMES if n in drawn]  # report order kept
    few, none = figures.chart_selection(NAMES[:3], "model_topk", "benchmark")
    assert few == NAMES[:3] and none == []


def test_colours_are_distinct_and_models_outweigh_baselines():
    colors = figures.strategy_colors(NAMES)
    assert len(set(colors.values())) == len(NAMES)  # equal_weight no longer ~ mean-variance
    assert colors["model_topk"].lower() == "#0072b2"
    for model in ("model_topk", "fw", "mv"):
        for baseline in ("equal_weight", "benchmark", "momentum", "hrp"):
            assert (
                figures.line_style(model)["linewidth"] > figures.line_style(baseline)["linewidth"]
            )
    assert figures.line_style("benchmark")["linestyle"] != "-"


def _png_size(uri: str) -> tuple[int, int]:
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(raw)).shape[:2]


def test_new_charts_render_on_edge_cases():
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2020-01-01", periods=300)
    wide = pd.DataFrame(rng.normal(0, 0.01, (300, 3)), index=dates, columns=NAMES[:3])
    wide.iloc[:50, 2] = np.nan
    colors = figures.strategy_colors(NAMES[:3])
    assert min(_png_size(figures.rolling_chart(wide, colors, "vol", percent=True))) > 100
    assert min(_png_size(figures.rolling_chart(wide[["model_topk"]], colors, "beta"))) > 100
    hist = figures.return_histogram(
        {n: wide[n].dropna() for n in wide}, colors, {"model_topk": -0.016, "benchmark": None}
    )
    assert min(_png_size(hist)) > 100
    months = pd.date_range("2020-01-31", periods=12, freq="ME")
    weights = pd.DataFrame(rng.uniform(0, 0.2, (12, 4)), index=months, columns=list("ABCD"))
    weights["other"] = 1 - weights.sum(axis=1)
    assert min(_png_size(figures.holdings_heatmap(weights))) > 100
    assert min(_png_size(figures.holdings_heatmap(weights.iloc[:1, :2]))) > 50


@pytest.mark.parametrize("epochs", [1, 2])
def test_training_curves_of_short_folds_draw(epochs):
    history = [{"epoch": e, "train_loss": 1.0 - e / 10, "val_loss": 1.0} for e in range(epochs)]
    folds = [{"index": k, "history": history, "best_epoch": 0} for k in range(3)]
    assert min(_png_size(figures.training_curves(folds))) > 100
