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
