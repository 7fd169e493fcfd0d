"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from alphaseq.cli import app

runner = CliRunner()


def test_data_check_on_embedded_data():
    result = runner.invoke(app, ["data", "check", "sp500"])
    assert result.exit_code == 0, result.output
    for text in ("tickers", "20", "1990-01-02", "2022-12-28", "one-day moves over 50%"):
        assert text in result.output
    assert "S&P 500 index" in result.output


def test_data_check_json_has_the_summary_fields():
    result = runner.invoke(app, ["data", "check", "sp500", "--json", "--lookback", "30"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tickers"] == 20
    assert summary["lookback"] == 30
    assert summary["missing_in_life"] == {"close": 0.0}
    assert summary["large_moves"] >= 1  # RRC fell 67% in one day in 1990
    assert summary["large_move_examples"][0]["ticker"] == "RRC"


def test_data_check_reports_repairs_and_short_tickers(tmp_path):
    path = tmp_path / "p.csv"
    rows = ["date,ticker,close,volume"]
    dates = [f"2020-01-{d:02d}" for d in range(1, 29)]
    rows += [f"{d},AAA,{10 + k},{0 if k == 3 else 100}" for k, d in enumerate(dates)]
    rows += [f"{d},BBB,{5 + k * 0.1 if k != 5 else -1}" + ",10" for k, d in enumerate(dates[:10])]
    rows.append("2020-01-29,AAA,60,100")  # +62% in a day
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["data", "check", str(path), "--json", "--lookback", "20"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["non_positive_prices"] == 1
    assert summary["zero_volume_cells"] == 1
    assert summary["short_tickers"] == ["AAA", "BBB"]  # both < 20 + 21 days
    assert summary["large_moves"] == 1
    kinds = {r["kind"] for r in summary["repairs"]}
    assert kinds == {"non_positive_price", "gaps", "unsorted_rows"}  # rows grouped by ticker


def test_unusable_input_exits_nonzero_with_one_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("date,ticker,open\n2020-01-02,AAA,1\n")
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 2
    assert "missing the required column 'close'" in result.output
    assert "Traceback" not in result.output


def test_missing_file_exits_nonzero():
    result = runner.invoke(app, ["data", "check", "no/such/file.csv"])
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_features_and_data_list():
    result = runner.invoke(app, ["features"])
    assert result.exit_code == 0 and "rsi" in result.output and "default set" in result.output
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0 and "sp500" in result.output


def test_installed_script_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "alphaseq.cli", "data", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown file type" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) <= 2  # one message (rich may wrap it)


def test_piped_output_keeps_every_figure(ci_run, tmp_path):
    """rich renders at 80 columns into a pipe and cut figures to '+11…'; the script's
    entry point widens the result tables when stdout is not a terminal."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    command = ["backtest", str(ci_run.run_dir), "--out", str(tmp_path / "again")]
    done = subprocess.run(
        [sys.executable, "-m", "alphaseq.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "…" not in done.stdout
    assert "ann. return" in done.stdout and "ΔSharpe (p) vs equal_weight" in done.stdout

    # One definition per figure: turnover and direction accuracy read the same in
    # metrics.json, the CLI summary and the report.
    metrics = json.loads((tmp_path / "again" / "metrics.json").read_text())
    tables = _report_tables((tmp_path / "again" / "report.html").read_text())
    strategies = tables["strategies"][0]
    column = strategies[0].index("Turnover")
    for name, figures in metrics["strategies"].items():
        if figures["turnover"] is None:
            continue
        text = f"{figures['turnover'] * 100:.1f}%"
        row = next(r for r in strategies if r[0] == name)
        assert row[column] == text, (name, row[column], text)
        cli_row = next(line for line in done.stdout.splitlines() if f"│ {name} " in line)
        assert text in cli_row, (name, cli_row)
    forecast = metrics["forecast"]
    accuracy = f"{forecast['direction_accuracy'] * 100:.1f}%"
    always_up = f"{forecast['always_up_accuracy'] * 100:.1f}%"
    assert f"direction accuracy {accuracy} (always up {always_up})" in done.stdout
    summary = tables["ic"][0]
    shown = dict(zip(summary[0], summary[1], strict=True))
    assert shown["direction accuracy"] == accuracy and shown["always up"] == always_up
    horizon = metrics["horizons"][str(metrics["folds"][0]["signal"]["horizon"])]
    assert horizon["direction_accuracy"] == forecast["direction_accuracy"]


def _report_tables(page: str) -> dict[str, list[list[list[str]]]]:
    """Every table of the report by section id, as rows of cell texts (header first)."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: dict[str, list[list[list[str]]]] = {}
            self.section = ""
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.section = dict(attrs).get("id", "")
            elif tag == "table":
                self.found.setdefault(self.section, []).append([])
            elif tag == "tr":
                self.found[self.section][-1].append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.found[self.section][-1][-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Tables()
    parser.feed(page)
    return parser.found


def test_a_logged_run_has_one_line_per_epoch_and_fold_and_no_blank_lines(tmp_path):
    import os
    import subprocess
    import sys

    run = ["run", "ci", "--out", str(tmp_path / "r"), "--set", "training.progress=true"]
    done = subprocess.run(
        [sys.executable, "-m", "alphaseq.cli", *run, "--set", "training.epochs=1"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert not [line for line in lines if not line.strip()]  # no leftover bar lines
    epochs = [line for line in lines if line.startswith("epoch 1/1: train_loss")]
    folds = [line for line in lines if line.startswith("fold ") and line.endswith(" done")]
    assert len(epochs) == 4 and len(folds) == 4 and "val_rank_ic" in epochs[0]
