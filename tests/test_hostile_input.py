"""Hostile and careless input: names that would escape a directory, spreadsheet formulas."""

from __future__ import annotations

import os

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
