"""The report's charts: which lines are drawn, their colours and styles, and that every
chart renders to a decodable PNG, edge cases included."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from alphaseq.analysis.attention import attention_color_span, plot_attention_heatmap
from alphaseq.backtest.significance import BASELINE_STRATEGIES
from alphaseq.report import figures
from alphaseq.report.figures import (
    chart_selection,
    holdings_heatmap,
    line_style,
    return_histogram,
    rolling_chart,
    rolling_sharpe_chart,
    strategy_colors,
    training_curves,
    turnover_chart,
)

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["model_topk", "fw", "mv", "tilt", "equal_weight", "benchmark", "momentum", "hrp"]


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    """Draw at a low resolution: the same artists, a quarter of the pixels to encode."""
    monkeypatch.setattr(figures, "DPI", 60)


def decoded_size(uri: str) -> tuple[int, int]:
    """Width and height of the PNG in a data URI (fails unless it decodes)."""
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix) :], validate=True)
    assert data.startswith(PNG)
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def assert_png(uri: str) -> None:
    width, height = decoded_size(uri)
    assert width > 50 and height > 25


# --- chart_selection ---------------------------------------------------------------------


def test_selection_keeps_at_most_limit_and_partitions_the_names():
    drawn, left_out = chart_selection(NAMES, "model_topk", "benchmark", limit=4)
    assert len(drawn) == 4
    assert sorted(drawn + left_out) == sorted(NAMES)
    assert not set(drawn) & set(left_out)
    # Both lists follow the input order.
    assert drawn == [n for n in NAMES if n in drawn]
    assert left_out == [n for n in NAMES if n in left_out]


def test_selection_always_keeps_main_equal_weight_and_reference():
    names = ["hrp", "benchmark", "a", "b", "momentum", "equal_weight", "main"]
    drawn, _ = chart_selection(names, "main", "benchmark", {"a": 3.0, "b": 2.0}, limit=3)
    assert drawn == ["benchmark", "equal_weight", "main"]
    # Even when they alone exceed the limit.
    drawn, left_out = chart_selection(names, "main", "benchmark", limit=1)
    assert set(drawn) == {"main", "equal_weight", "benchmark"}
    assert set(left_out) == {"hrp", "a", "b", "momentum"}


def test_selection_ranks_other_models_by_score_none_last_then_baselines():
    names = ["model_topk", "equal_weight", "benchmark", "a", "b", "c", "d", "momentum"]
    scores = {"a": None, "b": 0.4, "c": float("nan"), "d": 1.2, "momentum": 9.0}
    drawn, left_out = chart_selection(names, "model_topk", "benchmark", scores, limit=5)
    assert drawn == ["model_topk", "equal_weight", "benchmark", "b", "d"]
    assert left_out == ["a", "c", "momentum"]
    # None / NaN scores still come before the baselines, in input order.
    drawn, left_out = chart_selection(names, "model_topk", "benchmark", scores, limit=6)
    assert left_out == ["c", "momentum"]
    assert "a" in drawn
    drawn, left_out = chart_selection(names, "model_topk", "benchmark", scores, limit=7)
    assert left_out == ["momentum"]
    # Room for everything: nothing is left out.
    drawn, left_out = chart_selection(names, "model_topk", "benchmark", scores, limit=20)
    assert drawn == names and left_out == []


def test_selection_without_main_reference_or_scores():
    names = ["x", "momentum", "y", "hrp"]
    drawn, left_out = chart_selection(names, None, None, limit=3)
    assert drawn == ["x", "momentum", "y"] and left_out == ["hrp"]
    drawn, _ = chart_selection(names, "missing", "also_missing", limit=2)
    assert drawn == ["x", "y"]
    with pytest.raises(ValueError, match="limit"):
        chart_selection(names, None, None, limit=0)


# --- colours and styles ------------------------------------------------------------------


def test_colors_separate_the_reported_clash_and_are_distinct():
    colors = strategy_colors(NAMES)
    assert list(colors) == NAMES
    assert colors["model_topk"] == "#0072B2"
    clash = [colors[n] for n in ("model_topk", "equal_weight", "benchmark", "mv")]
    assert len(set(clash)) == 4
    assert len(set(colors.values())) == len(NAMES)
    # Up to 7 model strategies and the 5 baselines: all different.
    many = ["model_topk", *(f"m{k}" for k in range(6)), *sorted(BASELINE_STRATEGIES)]
    assert len(set(strategy_colors(many).values())) == len(many)
    # The main model's blue is not given to another model, with or without it.
    assert "#0072B2" not in {strategy_colors(many)[f"m{k}"] for k in range(6)}
    assert strategy_colors(["model_timing", "buy_and_hold"])["model_timing"] == "#0072B2"
    # Beyond the palette: colours cycle, never fail.
    assert len(strategy_colors([f"m{k}" for k in range(20)])) == 20


def test_colors_are_stable_whatever_else_is_in_the_run():
    alone = strategy_colors(["equal_weight", "benchmark"])
    mixed = strategy_colors(["fw", "equal_weight", "model_topk", "benchmark"])
    assert alone["equal_weight"] == mixed["equal_weight"]
    assert alone["benchmark"] == mixed["benchmark"]


def test_baselines_are_drawn_thinner_and_fainter_than_models():
    main, model = line_style("model_topk"), line_style("mv")
    assert main["linewidth"] > model["linewidth"]
    assert line_style("model_timing") == main
    assert line_style("fw", main="fw") == main
    for name in BASELINE_STRATEGIES:
        style = line_style(name)
        assert style["linewidth"] < model["linewidth"], name
        assert style["alpha"] < model["alpha"], name
        assert style["zorder"] < model["zorder"], name
        assert style["linestyle"] != "-", name
    # Each baseline has its own dash pattern (the two passive references share one).
    dashes = {line_style(n)["linestyle"] for n in ("equal_weight", "momentum", "hrp")}
    assert len(dashes) == 3 and line_style("benchmark")["linestyle"] not in dashes


# --- charts render -----------------------------------------------------------------------


@pytest.fixture
def returns() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-01", periods=260)
    names = ["model_topk", "mv", "equal_weight", "benchmark"]
    return pd.DataFrame(rng.normal(3e-4, 0.01, (len(dates), 4)), index=dates, columns=names)


def test_rolling_chart_and_its_sharpe_wrapper(returns):
    colors = strategy_colors(list(returns.columns))
    vol = returns.rolling(63).std() * math.sqrt(252)
    assert_png(rolling_chart(vol, colors, "volatility", percent=True))
    beta = (
        returns.rolling(63)
        .cov(returns["benchmark"])
        .div(returns["benchmark"].rolling(63).var(), axis=0)
    )
    assert_png(rolling_chart(beta, colors, "beta", reference_line=1.0))
    # One line drawn next to an all-NaN column, under a name without a colour.
    edge = vol[["mv"]].rename(columns={"mv": "new"}).assign(mv=np.nan)
    assert_png(rolling_chart(edge, colors, "volatility"))
    assert_png(rolling_chart(vol[["mv"]] * np.nan, colors, "volatility"))  # nothing to draw
    sharpe = returns.rolling(63).mean() / returns.rolling(63).std() * math.sqrt(252)
    assert_png(rolling_sharpe_chart(sharpe, colors, 63))


def test_return_histogram(returns):
    colors = strategy_colors(list(returns.columns))
    picked = {n: returns[n] for n in ("model_topk", "mv", "equal_weight")}
    picked["model_topk"] = picked["model_topk"].copy()
    picked["model_topk"].iloc[5] = -0.5  # one extreme day
    var = {n: float(np.quantile(s, 0.05)) for n, s in picked.items()}
    assert_png(return_histogram(picked, colors, var))
    assert_png(return_histogram({"mv": returns["mv"]}, colors))  # var None
    # More than three strategies (the first three are drawn), VaR None or NaN.
    everything = {n: returns[n] for n in returns}
    assert_png(return_histogram(everything, colors, {"mv": None, "model_topk": float("nan")}))
    assert_png(return_histogram({"mv": pd.Series(0.0, index=returns.index)}, colors))


def test_turnover_chart_and_the_line_charts(returns):
    colors = strategy_colors(list(returns.columns))
    months = pd.date_range("2021-01-31", periods=12, freq="ME")
    turnover = {n: pd.Series(np.linspace(0.02, 0.2, 12), index=months) for n in returns}
    assert_png(turnover_chart(turnover, colors, "one-way turnover per rebalance"))
    assert_png(turnover_chart({"mv": turnover["mv"].iloc[:1]}, colors, "turnover"))
    wealth = (1 + returns).cumprod()
    assert_png(figures.equity_chart(wealth, colors, returns.index[100]))
    assert_png(figures.drawdown_chart(wealth / wealth.cummax() - 1, colors, "model_topk"))


def holdings_table(n_dates: int, other: bool) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    dates = pd.date_range("2020-01-31", periods=n_dates, freq="ME")
    weights = rng.dirichlet(np.ones(12), n_dates)
    table = pd.DataFrame(weights[:, :8], index=dates, columns=[f"T{k}" for k in range(8)])
    table = table[table.mean().sort_values(ascending=False).index]
    table.iloc[::2, 2] = 0.0  # a ticker sometimes not held: white cells
    if other:
        table["other"] = weights[:, 8:].sum(axis=1)
    return table


@pytest.mark.parametrize(("n_dates", "other"), [(1, True), (2, False)])
def test_holdings_heatmap(n_dates, other):
    assert_png(holdings_heatmap(holdings_table(n_dates, other)))


def test_holdings_heatmap_grows_with_its_rows_and_edge_cases():
    few = decoded_size(holdings_heatmap(holdings_table(24, True).iloc[:, [0, 1, -1]]))
    many = decoded_size(holdings_heatmap(holdings_table(24, True)))
    assert many[1] > few[1]
    only_other = holdings_table(6, True)[["other"]]
    assert_png(holdings_heatmap(only_other))
    short = holdings_table(6, False)
    short.iloc[:, 0] = -short.iloc[:, 0]  # a short book: a diverging scale
    assert_png(holdings_heatmap(short))
    assert_png(holdings_heatmap(short.iloc[:0]))


def history(epochs: int) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 1.0 - 0.1 * e, "val_loss": 1.1 - 0.05 * e, "val_ic": 0.02}
        for e in range(epochs)
    ]


def test_training_curves_with_one_and_two_epoch_folds():
    folds = [
        {"index": k, "history": history(n), "best_epoch": 0, "test_window": {}}
        for k, n in enumerate([1, 2, 9])
    ]
    assert_png(training_curves(folds))
    assert_png(training_curves(folds[:1]))
    assert training_curves([{"index": 0, "history": []}]) is None


# --- attention heat map ------------------------------------------------------------------


def test_attention_color_scale_is_centred_on_uniform():
    rng = np.random.default_rng(0)
    lookback = 20
    near = np.full((4, lookback), 1.0 / lookback) * (1 + rng.normal(0, 0.01, (4, lookback)))
    # The heat map colours weight ÷ (1/L) − 1 on the symmetric scale ±span.
    assert attention_color_span(near * lookback - 1.0) == pytest.approx(0.25)
    assert attention_color_span(np.zeros(lookback)) == 0.25
    # Wider only when the data exceed ±25 %: lag 0 twice uniform.
    peaked = np.full(lookback, 1.0 / lookback)
    peaked[0] *= 2.0
    assert attention_color_span(peaked * lookback - 1.0) == pytest.approx(1.0)
    assert attention_color_span(np.array([-0.6, np.nan, 0.1])) == pytest.approx(0.6)


def test_attention_heatmap_of_near_uniform_profiles_writes_a_png(tmp_path):
    rng = np.random.default_rng(1)
    profiles = [rng.dirichlet(np.full(15, 500.0)) for _ in range(3)]
    path = plot_attention_heatmap(profiles, tmp_path / "a.png", counts=[1, 2, 3])
    assert path.read_bytes().startswith(PNG)
    with Image.open(path) as image:
        assert image.size[0] > 100
