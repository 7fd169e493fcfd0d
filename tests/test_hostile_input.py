"""Hostile and careless input: names that would escape a directory, spreadsheet formulas."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaseq._safe import path_safe_name, spreadsheet_safe
from alphaseq.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x", "x"),
        ("/etc/passwd", "etc-passwd"),
        ("..", "experiment"),
        ("", "experiment"),
        ("my run (v2)", "my-run-v2"),
        ("a/../b", "a-.-b"),
        ("quickstart_2026.1", "quickstart_2026.1"),
        (".hidden", "hidden"),
        ("x" * 300, "x" * 100),
    ],
)
def test_path_safe_name_is_one_harmless_component(name, expected):
    safe = path_safe_name(name)
    assert safe == expected
    assert "/" not in safe and safe not in (".", "..") and not safe.startswith(".")


def test_run_named_to_escape_runs_stays_inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    os.chdir(tmp_path / "work")
    result = runner.invoke(
        app, ["run", "ci", "--set", "name=../../escaped", "--set", "training.epochs=1"]
    )
    assert result.exit_code == 0, result.output
    made = [p.name for p in (tmp_path / "work" / "runs").iterdir()]
    assert len(made) == 1 and made[0].startswith("escaped-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing outside


def test_csv_cells_that_would_run_as_formulas_are_neutralised():
    frame = pd.DataFrame(
        {
            "ticker": ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "AAPL", None],
            "prediction": [-0.5, 0.1, -0.2, 0.3, 0.0, 1.0, 2.0],
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["ticker"].tolist()[:6] == [
        "'=cmd|' /C calc'!A0",
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "AAPL",
    ]
    assert pd.isna(safe["ticker"].iloc[6])  # missing stays missing
    assert safe["prediction"].tolist() == frame["prediction"].tolist()  # numbers untouched
    assert frame["ticker"].iloc[0].startswith("=")  # the input is not changed


def test_predict_csv_of_hostile_tickers_opens_as_text(ci_run, tmp_path):
    """A ticker written as a formula reaches the CSV as text, not as a formula."""
    from alphaseq.data import load_panel

    panel = load_panel("sp500")  # the ci run's data
    close = pd.DataFrame(panel.close, index=panel.dates, columns=panel.tickers)
    hostile = {panel.tickers[0]: '=HYPERLINK("http://x")', panel.tickers[1]: "@SUM(A1)"}
    close = close.rename(columns=hostile)
    long = (
        close.rename_axis("date").reset_index().melt("date", var_name="ticker", value_name="close")
    )
    data = tmp_path / "prices.csv"
    long.dropna().to_csv(data, index=False)
    checkpoint = next((ci_run.run_dir / "folds").glob("*/model.ckpt"))
    out = tmp_path / "forecasts.csv"
    result = runner.invoke(
        app, ["predict", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text
    assert not any(line.startswith(("=", "@", "+")) for line in text.splitlines())


# ----------------------------------------------------------------------------- config values
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs=true", "training: epochs must be a number, got true"),
        ("portfolio.top_k=false", "portfolio: top_k must be a number, got false"),
        ("data.start=banana", "data.start: must be a date written YYYY-MM-DD, got 'banana'"),
        ("data.start=31/01/2014", "data.start: must be a date written YYYY-MM-DD"),
        ("data.end=2014-02-30", "--set data.end: '2014-02-30' is not valid"),
        ("data.end='2014-02-30'", "data.end: '2014-02-30' is not a calendar date"),
        ("data.end=3000-01-01", "'3000-01-01' is outside the dates supported"),
        ("training.device=banana", "training.device: device must be 'auto', 'cpu', 'cuda'"),
    ],
)
def test_careless_config_values_get_one_message_and_exit_2(override, message, tmp_path):
    result = runner.invoke(app, ["run", "ci", "--set", override, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    lines.append("name: *a8")  # 9**9 strings once expanded: ~3 GB as a repr
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["run", str(bomb)])
    assert result.exit_code == 2
    assert "name: Input should be a valid string" in result.output
    assert len(result.output) < 5000  # the value is shortened, not expanded


def test_oversized_config_file_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "# padding\n" * 120_000)
    result = runner.invoke(app, ["run", str(big)])
    assert result.exit_code == 2
    assert "experiment files are limited to 1 MiB" in result.output


def test_predict_date_that_is_not_a_date(tmp_path):
    result = runner.invoke(
        app, ["predict", "--checkpoint", str(tmp_path / "none.ckpt"), "--date", "banana"]
    )
    assert result.exit_code == 2
    assert "--date must be a date written YYYY-MM-DD, got 'banana'" in result.output


def test_out_pointing_at_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["run", "ci", "--out", str(blocker / "run")])
    assert result.exit_code == 2, result.output
    assert "cannot read or write" in result.output and "Traceback" not in result.output


def test_unexpected_errors_are_one_line_and_point_to_verbose(monkeypatch, capsys):
    import alphaseq.cli as cli

    def broken():
        raise KeyError("history")

    monkeypatch.setattr(cli, "_VERBOSE", False)
    wrapped = cli._user_errors(broken)
    with pytest.raises(cli.typer.Exit) as exit_info:
        wrapped()
    assert exit_info.value.exit_code == 1
    printed = " ".join(capsys.readouterr().err.split())
    assert "internal error: KeyError: 'history'" in printed and "--verbose" in printed
    monkeypatch.setattr(cli, "_VERBOSE", True)
    with pytest.raises(KeyError):  # --verbose: the traceback, for a bug report
        wrapped()


# ----------------------------------------------------------------------------- universes
def test_one_ticker_in_cross_sectional_mode_points_at_timing(tmp_path):
    from alphaseq.config import parse_config
    from alphaseq.data import load_panel
    from alphaseq.errors import ConfigError
    from alphaseq.experiment import check_universe

    dates = pd.bdate_range("2014-01-01", periods=30)
    one = load_panel(pd.DataFrame({"date": dates, "ticker": "SPY", "close": range(1, 31)}))
    with pytest.raises(ConfigError, match="needs at least 2; to trade one instrument set mode"):
        check_universe(parse_config({}), one)


def test_top_k_at_or_above_the_universe_is_refused():
    result = runner.invoke(app, ["run", "ci", "--set", "portfolio.top_k=20"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "portfolio.top_k = 20 but" in text and "holds 20 tickers" in text
    assert "same portfolio as equal weight" in text


def test_a_constructor_failing_at_every_rebalance_is_reported_failed(monkeypatch):
    from alphaseq.data import load_panel
    from alphaseq.experiment import strategies
    from alphaseq.portfolio.constructors import HRP, OptimizationFailed, PortfolioConstraints

    def always_fails(self, scores, history, drifted, tradable):
        raise OptimizationFailed("planted")

    monkeypatch.setattr(HRP, "_target", always_fails)
    panel = load_panel("sp500")
    close = panel.close.astype(np.float64)
    rows = np.arange(300, 400, 21)
    record = strategies._traded(
        panel,
        close,
        rows,
        420,
        HRP(constraints=PortfolioConstraints()),
        np.zeros_like(close),
        10.0,
    )
    construction = record["construction"]
    assert construction["failed"] is True and construction["fallbacks"] == len(rows)
    assert "failed at every rebalance (5 of 5)" in construction["failure"]


def test_the_cli_marks_a_failed_strategy_instead_of_showing_flat_cash(capsys):
    from alphaseq.cli import _print_strategies

    figures = {"sharpe": None, "total_return": 0.0, "ann_vol": 0.0}
    metrics = {
        "run": {"top_k": 5, "cost_bps": 10, "out_of_sample": {"start": "a", "end": "b"}},
        "strategies": {"equal_weight": {"sharpe": 1.0}, "hrp": figures},
        "construction": {"hrp": {"failed": True, "failure": "it held no position"}},
    }
    _print_strategies(metrics)
    printed = capsys.readouterr().out
    assert "failed" in printed and "strategy hrp failed: it held no position" in printed
    assert "+0.0%" not in printed  # no flat-cash figures on its row


def test_prices_beyond_float32_are_counted_repairs_not_inf_or_zero():
    from alphaseq.data import load_panel

    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2014-01-01", periods=3), 2),
            "ticker": ["A", "B"] * 3,
            "close": [1.0, 2.0, 1e39, 2.0, 1e-40, 2.0],
        }
    )
    panel = load_panel(frame)
    assert np.isnan(panel.close[1:, 0]).all() and np.isfinite(panel.close[:, 1]).all()
    repair = next(r for r in panel.repairs if r.kind == "out_of_float32_range")
    assert repair.count == 2 and "close of A on 2014-01-02" in repair.detail


# ----------------------------------------------------------------------------- files
def test_a_signed_checkpoint_missing_an_entry_is_a_checkpoint_error(ci_run, tmp_path):
    from alphaseq.training.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(next((ci_run.run_dir / "folds").glob("*/model.ckpt")))
    del state["history"]
    save_checkpoint(tmp_path / "thin.ckpt", state)  # correctly signed, one entry short
    result = runner.invoke(app, ["predict", "--checkpoint", str(tmp_path / "thin.ckpt")])
    assert result.exit_code == 2
    assert "lacks the entry 'history' of a forecaster" in result.output


def test_report_on_a_metrics_file_that_is_not_an_object(ci_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(ci_run.run_dir, copy)
    (copy / "metrics.json").write_text("[1, 2, 3]")
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "metrics.json" in result.output
