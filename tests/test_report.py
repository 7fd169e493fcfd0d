"""The HTML report: one self-contained page per run directory, built from real small runs."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from alphaseq.cli import _config_values
from alphaseq.config import apply_overrides, parse_config
from alphaseq.pipeline import run
from alphaseq.report import SECTION_IDS, build_report
from alphaseq.report.data import (
    cross_section_ic,
    drawdowns,
    monthly_returns,
    rebalance_turnover,
)

REQUIRED = (
    "header",
    "strategies",
    "equity",
    "drawdowns",
    "rolling-sharpe",
    "monthly-returns",
    "yearly",
    "ic",
    "turnover",
    "weights",
    "training",
    "folds",
)
OPTIONAL = ("significance", "attention", "classification", "horizons")


def ci_config(*overrides: str):
    values, _ = _config_values("ci")
    return parse_config(apply_overrides(values, list(overrides)))


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {section_id!r}"
    return match.group(1)


def built(tmp_path_factory, name: str, *overrides: str):
    """Run the ci experiment with ``overrides`` and build its report explicitly."""
    run_dir = tmp_path_factory.mktemp("report") / name
    result = run(ci_config(*overrides), run_dir)
    path = build_report(run_dir)
    page = path.read_text(encoding="utf-8")
    assert "could not be drawn" not in page  # no section failed
    return result, path, page


@pytest.fixture(scope="module")
def lstm_run(ci_run):
    """The shared ci run (an attention LSTM), its report built explicitly."""
    path = build_report(ci_run.run_dir)
    page = path.read_text(encoding="utf-8")
    assert "could not be drawn" not in page  # no section failed
    return ci_run, path, page


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    return built(
        tmp_path_factory, "linear", "model.name=linear", "model.params={}", "training.epochs=1"
    )


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    return built(
        tmp_path_factory,
        "classification",
        "task=classification",
        "labels.kind=three_class",
        "labels.flat_band=0.02",
        "training.epochs=1",
    )


@pytest.fixture(scope="module")
def timing_run(tmp_path_factory):
    return built(
        tmp_path_factory, "timing", "mode=timing", "timing.ticker=AAPL", "training.epochs=1"
    )


def test_report_is_one_self_contained_file(lstm_run):
    result, path, page = lstm_run
    assert path == result.run_dir / "report.html" and path.is_file()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # nothing fetched from anywhere: no external src/href, no script, no stylesheet link
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', page)
    assert len(sources) >= 7
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for href in re.findall(r'href="([^"]+)"', page):
        assert href.startswith("#") and href[1:] in section_ids(page)


def test_every_section_is_present_in_order_with_a_heading(lstm_run):
    _, _, page = lstm_run
    ids = section_ids(page)
    assert set(REQUIRED) <= set(ids)
    assert {"significance", "attention", "horizons", "relative", "distribution"} <= set(ids)
    assert "classification" not in ids  # a regression run
    assert ids == [s for s in SECTION_IDS if s in ids]  # page order, each once
    for section_id in ids:
        assert "<h2>" in section(page, section_id), section_id


def test_header_describes_the_run(lstm_run):
    result, _, page = lstm_run
    header = section(page, "header")
    digest = hashlib.sha256((result.run_dir / "config.yaml").read_bytes()).hexdigest()[:12]
    assert digest in header
    assert "lstm" in header and "hidden_size=8" in header and "sp500" in header
    oos = result.metrics["run"]["out_of_sample"]
    assert oos["start"] in header and oos["end"] in header
    assert "10.0 bps" in header and "torch" in header
    assert 'class="warning"' in header and "Survivorship bias" in header


def strategy_cells(page: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Headers and, per strategy, the (class, text) of each cell of the strategy table."""
    table = section(page, "strategies")
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', table)
    rows = {}
    for name, cells in re.findall(
        r'<tr><th scope="row" class="strategy">(.*?)</th>(.*?)</tr>', table
    ):
        rows[name] = re.findall(r'<td class="([^"]*)"[^>]*>(.*?)</td>', cells)
    return headers, rows


@pytest.mark.parametrize(
    ("key", "header", "best"),
    [
        ("sharpe", "Sharpe", max),
        ("ann_return", "Ann. return", max),
        ("ann_vol", "Ann. vol", min),
        ("max_drawdown", "Max drawdown", max),  # the least negative
        ("turnover", "Turnover", min),
    ],
)
def test_best_value_of_each_column_is_marked(lstm_run, key, header, best):
    result, _, page = lstm_run
    headers, rows = strategy_cells(page)
    column = headers.index(header) - 1  # the first header is the row-header column
    figures = result.metrics["strategies"]
    assert set(rows) == set(figures)
    winner = best(figures, key=lambda name: figures[name][key])
    for name, cells in rows.items():
        css, text = cells[column]
        tied = np.isclose(figures[name][key], figures[winner][key], rtol=1e-9, atol=1e-12)
        assert ("best" in css.split()) == bool(tied), (name, key)
        assert (text.startswith("<strong>")) == bool(tied)
        assert "num" in css.split()  # numbers are right-aligned


def test_linear_regression_run_omits_attention_and_classification(linear_run):
    result, _, page = linear_run
    assert result.metrics["attention"] is None
    assert not (result.run_dir / "attention.png").exists()
    ids = section_ids(page)
    assert set(REQUIRED) <= set(ids)
    assert "attention" not in ids and "classification" not in ids
    assert "horizons" in ids and "significance" in ids
    assert "linear" in section(page, "header")


def test_classification_run_shows_its_report_and_confusion_matrix(classification_run):
    result, _, page = classification_run
    assert "classification" in section_ids(page)
    block = section(page, "classification")
    assert "Confusion matrix" in block and "predicted UP" in block and "true DOWN" in block
    support = result.metrics["classification"]["21"]["report"]["weighted_avg"]["support"]
    assert f"{support:,}" in block
    assert set(REQUIRED) <= set(section_ids(page))


def test_timing_run_shows_timing_figures_and_its_position(timing_run):
    result, _, page = timing_run
    assert set(result.metrics["strategies"]) == {"model_timing", "buy_and_hold"}
    assert set(REQUIRED) <= set(section_ids(page))
    headers, rows = strategy_cells(page)
    assert {"Time in market", "Win rate", "Trades"} <= set(headers)
    assert set(rows) == {"model_timing", "buy_and_hold"}
    assert "time-series correlation" in section(page, "ic")
    assert "Position" in section(page, "weights")
    monthly = section(page, "monthly-returns")
    assert "<h3>model_timing</h3>" in monthly and "<h3>buy_and_hold</h3>" in monthly


def test_missing_optional_inputs_are_skipped(lstm_run, tmp_path):
    result, _, _ = lstm_run
    stripped = tmp_path / "stripped"
    shutil.copytree(result.run_dir, stripped, ignore=shutil.ignore_patterns("checkpoints"))
    for name in ("attention.png", "weights.parquet", "predictions.parquet", "report.html"):
        (stripped / name).unlink()
    metrics = json.loads((stripped / "metrics.json").read_text())
    for key in ("significance", "attention", "horizons", "classification"):
        metrics.pop(key, None)
    (stripped / "metrics.json").write_text(json.dumps(metrics))
    folds = json.loads((stripped / "folds.json").read_text())
    (stripped / "folds.json").write_text(json.dumps([dict(f, history=[]) for f in folds]))

    page = build_report(stripped).read_text(encoding="utf-8")
    ids = section_ids(page)
    assert set(REQUIRED) <= set(ids) and not set(OPTIONAL) & set(ids)
    assert "No per-epoch training history" in section(page, "training")
    assert "No predictions" in section(page, "ic")
    # No weights: the turnover recorded beside the returns still draws the chart.
    assert "the backtest&#x27;s own figure" in section(page, "turnover")
    assert "could not be drawn" not in page

    (stripped / "returns.parquet").unlink()
    (stripped / "folds.json").unlink()  # the folds of metrics.json remain
    page = build_report(stripped).read_text(encoding="utf-8")
    assert set(REQUIRED) <= set(section_ids(page))
    assert "No daily returns" in section(page, "equity")
    assert "from metrics.json" in section(page, "turnover")  # the fallback bar chart
    assert "2017-07-03" in section(page, "folds")


def test_a_folder_without_metrics_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"metrics\.json"):
        build_report(tmp_path)


def test_report_series_match_the_run_and_hand_computations(lstm_run):
    result, _, _ = lstm_run
    # The report's per-date IC and metrics.json's come from one function: the same figures.
    daily = cross_section_ic(result.predictions)
    assert daily["ic"].mean() == pytest.approx(result.metrics["forecast"]["ic"], abs=1e-12)
    assert daily["rank_ic"].mean() == pytest.approx(
        result.metrics["forecast"]["rank_ic"], abs=1e-12
    )
    assert len(daily) == result.metrics["forecast"]["n_dates"]

    dates = pd.to_datetime(["2020-01-31", "2020-02-03", "2020-02-04"])
    returns = pd.DataFrame({"a": [-0.1, 0.1, 0.05]}, index=dates)
    np.testing.assert_allclose(drawdowns(returns)["a"], [-0.1, -0.01, 0.0], atol=1e-12)
    table = monthly_returns(returns["a"])
    assert table.loc[2020, 1] == pytest.approx(-0.1)
    assert table.loc[2020, 2] == pytest.approx(1.1 * 1.05 - 1)
    assert table.loc[2020, "Year"] == pytest.approx(0.9 * 1.1 * 1.05 - 1)

    weights = pd.DataFrame(
        {
            "date": pd.to_datetime(["2020-01-31"] * 2 + ["2020-02-28"] * 2),
            "ticker": ["A", "B", "A", "C"],
            "strategy": "s",
            "weight": [0.5, 0.5, 0.7, 0.3],
        }
    )
    turnover = rebalance_turnover(weights)["s"]
    assert list(turnover.index) == [pd.Timestamp("2020-02-28")]  # the build is left out
    assert turnover.iloc[0] == pytest.approx((0.2 + 0.5 + 0.3) / 2)  # one-way


def test_the_turnover_chart_draws_the_figures_the_table_averages(lstm_run):
    result, _, _ = lstm_run
    series = rebalance_turnover(None, None, result.returns)
    for name, figures in result.metrics["strategies"].items():
        if figures["turnover"] is not None and name in series:
            assert series[name].mean() == pytest.approx(figures["turnover"], rel=1e-12), name


def test_diagnostics_section_shows_the_figures_of_metrics_json(lstm_run):
    result, _, page = lstm_run
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    block = metrics["diagnostics"]
    text = section(page, "diagnostics")
    assert f"{block['model']['rank_ic']['rank_ic']:.3f}" in text
    low, high = block["model"]["rank_ic"]["rank_ic_ci"]
    assert f"{low:.3f} to {high:.3f}" in text
    for name, factor in block["factors"].items():
        assert name in text and f"{factor['rank_ic']['rank_ic']:.3f}" in text
    training = metrics["training"]
    assert f"in {training['first_epoch_stops']} of {training['folds']} folds" in text
    assert "diagnostics" in section_ids(page)


def test_verdict_comes_first_and_key_figures_compare_with_equal_weight(lstm_run):
    result, _, page = lstm_run
    header = section(page, "header")
    # The verdict precedes every table and the key-figure cards.
    assert header.index('id="verdict"') < header.index('class="cards"')
    from alphaseq.backtest import verdict_sentence, verdict_table

    rows = verdict_table(result.metrics["significance"])
    assert rows and all(r["strategy"] not in ("equal_weight", "benchmark") for r in rows)
    for row in rows:
        assert html.escape(verdict_sentence(row)) in header
    # A survivorship-biased universe: the cards compare with equal weight, not the index.
    cards = header[header.index("Key figures") :]
    assert "<code>equal_weight</code>" in cards and "equal_weight: " in cards
    assert "Trained on" in header and "forward_return_21" in header


def test_tear_sheet_sections_agree_with_hand_computations(lstm_run):
    from alphaseq.report.data import wide_returns

    result, _, page = lstm_run
    metrics = result.metrics
    returns = wide_returns(result.returns)
    # Drawdown table: the worst episode of equal weight is its max drawdown.
    table = section(page, "drawdowns")
    worst = metrics["strategies"]["equal_weight"]
    assert f"{worst['max_drawdown'] * 100:.1f}%" in table
    assert worst["max_drawdown_start"] in table and worst["max_drawdown_end"] in table
    # Up capture of the model against the benchmark, by hand (empyrical's definition).
    r, b = returns["model_topk"], returns["benchmark"]
    both = pd.concat([r, b], axis=1, keys=["r", "b"]).dropna()
    up = both[both["b"] > 0]
    annual = lambda x: np.prod(1 + x) ** (252 / len(x)) - 1  # noqa: E731
    capture = annual(up["r"]) / annual(up["b"])
    recorded = metrics["relative"]["model_topk"]["benchmark"]
    assert recorded["up_capture"] == pytest.approx(capture, rel=1e-9)
    beta = np.cov(both["r"], both["b"])[0, 1] / np.var(both["b"], ddof=1)
    assert recorded["beta"] == pytest.approx(beta, rel=1e-9)
    relative = section(page, "relative")
    assert f"{recorded['beta']:.2f}" in relative and f"{capture:.2f}" in relative
    # Yearly returns: compounded within each calendar year.
    year = int(returns.index[-1].year)
    last = returns.loc[returns.index.year == year, "equal_weight"].dropna()
    assert f"{(np.prod(1 + last) - 1) * 100:+.1f}%" in section(page, "yearly")
    # VaR: the 5th percentile of daily returns.
    var = metrics["distribution"]["model_topk"]["var"]
    assert var == pytest.approx(np.quantile(returns["model_topk"].dropna(), 0.05))
    assert f"{var * 100:.2f}%" in section(page, "distribution")
    # Monthly heat maps for the best model strategy and for equal weight.
    assert "<h3>equal_weight</h3>" in section(page, "monthly-returns")


def test_a_planted_loser_is_called_worse_in_the_report(tmp_path):
    from alphaseq.backtest import significance_report

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2015-01-01", periods=1500)
    ew = pd.Series(rng.normal(0.0005, 0.01, len(dates)), index=dates)
    worse = ew - 0.002 + rng.normal(0, 0.002, len(dates))  # the same risk, far less return
    noise = ew + rng.normal(0, 0.002, len(dates))
    report = significance_report(
        {"model_topk": worse, "tilt": noise, "equal_weight": ew}, {"equal_weight": ew}
    )
    metrics = {"strategies": {n: {"sharpe": None} for n in report}, "significance": report}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(tmp_path).read_text(encoding="utf-8")
    header = section(page, "header")
    assert '<li class="worse">model_topk vs equal_weight: worse (ΔSharpe -' in header
    assert '<li class="neutral">tilt vs equal_weight: no significant difference' in header
    significance = section(page, "significance")
    assert re.search(r'class="num sig-worse">-\d\.\d\d \(p 0\.000\)', significance)


def test_attention_colours_are_centred_on_uniform_with_a_wide_floor():
    from alphaseq.analysis.attention import attention_color_span

    near_uniform = np.array([[0.01, -0.008, 0.002]])  # ±1 % around 1/L: noise
    assert attention_color_span(near_uniform) == 0.25  # drawn near white, not as structure
    assert attention_color_span(np.array([[0.6, -0.4]])) == pytest.approx(0.6)
