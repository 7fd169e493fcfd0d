"""End-to-end walk-forward runs: the run directory, the no-look-ahead proof, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaseq.cli import _config_values, app
from alphaseq.config import apply_overrides, parse_config
from alphaseq.pipeline import STRATEGIES, load_run_panel, run

runner = CliRunner()
STRATEGY_KEYS = {
    "total_return",
    "ann_return",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_start",
    "max_drawdown_end",
    "calmar",
    "hit_rate",
    "turnover",
    "information_ratio",
}
FORECAST_KEYS = {"ic", "rank_ic", "icir", "rank_icir", "mse", "direction_accuracy"}


def ci_config(*overrides: str):
    values, _ = _config_values("ci")
    return parse_config(apply_overrides(values, list(overrides)))


def test_run_directory_and_metrics_schema(ci_run):
    run_dir = ci_run.run_dir
    for name in (
        "config.yaml",
        "metrics.json",
        "folds.json",
        "run.log",
        "predictions.parquet",
        "weights.parquet",
        "returns.parquet",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["strategies"]) == set(STRATEGIES)
    for name, figures in metrics["strategies"].items():
        assert STRATEGY_KEYS <= set(figures), name
    assert FORECAST_KEYS <= set(metrics["forecast"])
    assert metrics["data"]["tickers"] == 20 and metrics["data"]["survivorship_bias"]
    folds = json.loads((run_dir / "folds.json").read_text())
    assert len(folds) == len(metrics["folds"]) >= 3
    fold_dirs = sorted(p.name for p in (run_dir / "folds").iterdir())
    assert fold_dirs == [f"{k:02d}" for k in range(len(folds))]
    for k, fold in enumerate(folds):
        assert fold["checkpoint"] == f"folds/{k:02d}/model.ckpt"
        assert (run_dir / fold["checkpoint"]).is_file()
        assert {"fold.json", "predictions.parquet"} <= {
            p.name for p in (run_dir / "folds" / f"{k:02d}").iterdir()
        }
    for fold in folds:
        assert {"train", "valid", "test", "history", "epochs"} <= set(fold)
        assert "train_ic" in fold["train"] and "val_ic" in fold["valid"]

    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    assert list(predictions.columns) == ["date", "ticker", "fold", "prediction", "label"]
    weights = pd.read_parquet(run_dir / "weights.parquet")
    assert list(weights.columns) == ["date", "ticker", "strategy", "weight"]
    per_rebalance = weights.groupby(["strategy", "date"])["weight"].sum()
    np.testing.assert_allclose(per_rebalance.to_numpy(), 1.0, rtol=1e-9)
    topk = weights[weights["strategy"] == "model_topk"].groupby("date").size()
    assert (topk == 5).all()
    returns = pd.read_parquet(run_dir / "returns.parquet")
    assert set(returns["strategy"]) == set(STRATEGIES)
    # The test windows are stitched: one prediction date set, no overlap between folds.
    per_date_folds = predictions.groupby("date")["fold"].nunique()
    assert (per_date_folds == 1).all()


def test_rebalances_at_month_ends_and_trades_from_the_next_day(ci_run):
    weights = ci_run.weights
    dates = pd.DatetimeIndex(sorted(weights["date"].unique()))
    # each rebalance date is the last trading date of its month in the panel
    panel = load_run_panel(ci_config())
    calendar = pd.Series(pd.DatetimeIndex(panel.dates))
    month_last = calendar.groupby(calendar.dt.to_period("M")).max()
    assert set(dates) <= set(month_last)
    returns = ci_run.returns[ci_run.returns["strategy"] == "equal_weight"]
    assert returns["date"].min() == dates.min()  # the first day only pays the initial cost
    first = returns.sort_values("date").iloc[0]["net_return"]
    assert first == pytest.approx(-10e-4, rel=1e-9)  # buying 100 % at 10 bps


@pytest.mark.parametrize(
    "model",
    [
        (),
        ("model.name=lightgbm", "model.params={}"),
        ("model.name=ridge", "model.params={}"),
        (
            "model.name=gat",
            "model.params={hidden_size: 8, num_layers: 1, attention_heads: 2, graph_heads: 2,"
            " neighbours: 5}",
            "training.epochs=1",
        ),
        ("model.ensemble={members: [{name: ridge}]}", "training.epochs=1"),
        (
            "model.name=transformer",
            "model.params={d_model: 8, num_layers: 1, attention_heads: 2}",
            "training.epochs=1",
        ),
    ],
    ids=["lstm", "lightgbm", "ridge", "gat", "ensemble", "transformer"],
)
def test_no_look_ahead_end_to_end(tmp_path, model):
    """Change every price after D: predictions, weights decided <= D and returns <= D stay.

    For the attention LSTM, each tabular baseline, graph attention across assets (an
    asset reads other assets' data too), an ensemble and the Transformer, on the same
    folds."""
    config = ci_config(*model)
    panel = load_run_panel(config)
    reference = run(config, tmp_path / "reference", panel=panel)
    test_dates = pd.DatetimeIndex(sorted(reference.predictions["date"].unique()))
    cut = test_dates[len(test_dates) // 2]
    later = panel.dates > np.datetime64(cut)
    rng = np.random.default_rng(7)
    fields = {}
    for key, values in panel.fields.items():
        changed = values.copy()
        noise = rng.lognormal(0.0, 0.05, size=changed[later].shape).astype(np.float32)
        changed[later] = changed[later] * noise
        fields[key] = changed
    bench = panel.benchmark.copy()
    bench[later] *= rng.lognormal(0.0, 0.05, size=later.sum()).astype(np.float32)
    perturbed = panel._replace(fields=fields, benchmark=bench)
    assert not np.array_equal(perturbed.close, panel.close, equal_nan=True)
    changed = run(config, tmp_path / "changed", panel=perturbed)

    def upto(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        kept = frame[frame["date"] <= cut].drop(columns=[c for c in ("label",) if c in frame])
        return kept.sort_values(columns).reset_index(drop=True)

    keys = ["date", "ticker"]
    pd.testing.assert_frame_equal(
        upto(reference.predictions, keys), upto(changed.predictions, keys), check_exact=True
    )
    pd.testing.assert_frame_equal(
        upto(reference.weights, ["strategy", *keys]),
        upto(changed.weights, ["strategy", *keys]),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        upto(reference.returns, ["strategy", "date"]),
        upto(changed.returns, ["strategy", "date"]),
        check_exact=True,
    )
    # ... and the change did reach what comes after D.
    after = reference.returns["date"] > cut
    assert not np.array_equal(
        reference.returns.loc[after, "net_return"].to_numpy(),
        changed.returns.loc[after, "net_return"].to_numpy(),
    )


def test_cli_run_and_predict(tmp_path):
    out = tmp_path / "cli-run"
    result = runner.invoke(
        app,
        [
            "run",
            "ci",
            "--out",
            str(out),
            "--set",
            "training.epochs=1",
            "--set",
            "portfolio.top_k=3",
        ],
    )
    assert result.exit_code == 0, result.output
    for text in ("model_topk", "equal_weight", "benchmark", "momentum", "Out of sample"):
        assert text in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["top_k"] == 3
    checkpoint = out / "folds" / "00" / "model.ckpt"
    result = runner.invoke(app, ["predict", "--checkpoint", str(checkpoint)])
    assert result.exit_code == 0, result.output
    # the checkpoint remembers the data source; without --date it forecasts the last date
    assert "Forecasts for 2022-12-28" in result.output
    target = tmp_path / "forecasts.csv"
    result = runner.invoke(
        app,
        ["predict", "--checkpoint", str(checkpoint), "--date", "2019-06-28", "--out", str(target)],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(target)
    assert len(frame) == 20 and (frame["date"] == "2019-06-28").all()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "training.epochz=3"], "training.epochz: unknown key"),
        (["--set", "model.params.hidden=3"], "has no parameter(s) ['hidden']"),
        (["--set", "labels.kind=price"], "labels.kind: got 'price'"),
        (["--set", "nonsense"], "--set expects dotted.key=value"),
        (["--set", "validation.train_months=-1"], "validation.train_months"),
        (["--data", "no/such/file.parquet"], "file not found"),
    ],
)
def test_bad_configs_give_one_clear_message(tmp_path, args, expected):
    result = runner.invoke(app, ["run", "ci", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_unknown_config_name():
    result = runner.invoke(app, ["run", "nosuchconfig"])
    assert result.exit_code == 2
    assert "packaged config" in result.output and "quickstart" in result.output


@pytest.mark.parametrize("name", ["quickstart", "ci", "us600"])
def test_packaged_configs_are_valid(name):
    values, _ = _config_values(name)
    config = parse_config(values)
    assert config.name == name
    if name == "us600":
        assert config.training.precision == "bf16" and config.model.params["hidden_size"] == 128


def test_us600_panel_with_spy_benchmark(us600_path, spy_path):
    config = parse_config(
        apply_overrides(
            _config_values("us600")[0],
            [f"data.source={us600_path}", f"data.benchmark_source={spy_path}"],
        )
    )
    panel = load_run_panel(config)
    assert panel.n_tickers == 600 and panel.benchmark_name == "SPY"
    # SPY starts 2005-02-25: NaN before, prices after
    assert np.isnan(panel.benchmark[0]) and np.isfinite(panel.benchmark[-1])


def test_timing_run_on_the_embedded_index(tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "timing_sp500",
            "--out",
            str(tmp_path / "timing"),
            "--set",
            "data.start=2014-01-01",
            "--set",
            "training.epochs=2",
            "--set",
            "validation.train_months=36",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "timing" / "metrics.json").read_text())
    assert set(metrics["strategies"]) == {"model_timing", "buy_and_hold"}
    timing = metrics["strategies"]["model_timing"]
    assert {"time_in_market", "win_rate", "n_trades", "sharpe"} <= set(timing)
    assert 0 <= timing["time_in_market"] <= 1
    assert metrics["strategies"]["buy_and_hold"]["time_in_market"] == 1.0
    assert "buy_and_hold" in metrics["significance"]["model_timing"]["vs"]
    assert metrics["forecast"]["n_predictions"] > 200
    weights = pd.read_parquet(tmp_path / "timing" / "weights.parquet")
    assert weights["weight"].between(0, 1).all()  # long/flat, cap 1


def test_significance_block_in_cross_section_runs(ci_run):
    significance = ci_run.metrics["significance"]
    assert set(significance) == set(STRATEGIES)
    vs = significance["model_topk"]["vs"]
    assert set(vs) == {"equal_weight", "benchmark"}
    assert 0 <= vs["equal_weight"]["p_value"] <= 1
    assert significance["model_topk"]["n_trials"] == 1
    assert significance["model_topk"]["dsr"] == pytest.approx(significance["model_topk"]["psr"])


def test_constructed_strategies_hold_their_constraints(tmp_path):
    config = ci_config(
        "portfolio.max_weight=0.3",
        "portfolio.hrp_baseline=true",
        "portfolio.constructors=[{name: fw, type: topk, weighting: forecast},"
        " {name: tilt, type: tilt, base: hrp}, {name: mv, type: mean_variance}]",
    )
    result = run(config, tmp_path / "constructed")
    names = set(result.metrics["strategies"])
    assert {"fw", "tilt", "mv", "hrp"} <= names
    construction = result.metrics["construction"]
    for name in ("fw", "tilt", "mv"):
        assert construction[name]["violations"] == 0  # run() raises on any violation
        assert construction[name]["constraints"]["max_turnover"] == 0.1  # one-way
        assert construction[name]["rebalances_checked"] > 30
        # the cap binds; trims of positions that drifted above max_weight are exempt
        assert result.metrics["strategies"][name]["turnover"] <= 0.105
    assert construction["hrp"]["constraints"]["max_turnover"] is None  # a plain baseline
    weights = result.weights[result.weights["strategy"].isin(["fw", "tilt", "mv"])]
    assert weights["weight"].max() <= 0.3 + 1e-9
    assert "mv" in result.metrics["significance"]


def test_trend_task_reports_each_horizon(tmp_path):
    config = ci_config(
        "task=trend",
        "labels.horizons=[7, 30]",
        "training.loss_params={classification_weight: 0.5}",
    )
    result = run(config, tmp_path / "trend")
    metrics = result.metrics
    assert metrics["task"] == "trend"
    assert set(metrics["horizons"]) == {"7", "30"}
    for figures in metrics["horizons"].values():
        assert {"mse", "rmse", "mae", "correlation", "direction_accuracy"} <= set(figures)
        assert figures["rmse"] == pytest.approx(figures["mse"] ** 0.5)
    predictions = pd.read_parquet(tmp_path / "trend" / "predictions.parquet")
    assert {"trend_7", "trend_30", "direction_7_p1", "direction_30_p1"} <= set(predictions)
    assert predictions["trend_30"].abs().max() < 5  # a bounded score, not a return
    # the 30-day trend score is the signal (the longest horizon by default)
    np.testing.assert_array_equal(predictions["prediction"], predictions["trend_30"])


def test_classification_task_report_and_attention(tmp_path):
    config = ci_config(
        "task=classification",
        "labels.kind=three_class",
        "labels.flat_band=0.02",
        "labels.class_weights=balanced",
    )
    result = run(config, tmp_path / "cls")
    block = result.metrics["classification"]["21"]
    assert set(block["report"]) >= {"DOWN", "FLAT", "UP", "accuracy"}
    matrix = np.array(block["confusion"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == block["report"]["weighted_avg"]["support"]
    # the signal is P(up) - P(down) in [-1, 1]
    predictions = result.predictions
    assert predictions["prediction"].between(-1, 1).all()
    attention = result.metrics["attention"]
    assert abs(sum(attention["out_of_sample"]) - 1) < 1e-6
    assert len(attention["per_fold"]) == len(result.metrics["folds"])
    png = (tmp_path / "cls" / "attention.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
