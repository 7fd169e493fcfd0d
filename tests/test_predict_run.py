"""``alphaseq predict RUN_DIR``: a fold's model on a chosen date, the data loaded as the
run loaded it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaseq.cli import app
from alphaseq.data import load_panel
from alphaseq.errors import AlphaseqError
from alphaseq.experiment import RunRecord
from alphaseq.experiment.predict import predict_run, trading_day
from alphaseq.forecaster import Forecaster

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(ci_run):
    return ci_run.run_dir


def _test_day(run_dir, fold: int) -> str:
    window = RunRecord(run_dir).read_fold(fold).record["test_window"]
    return window["start_date"]


def test_the_default_is_the_last_fold_on_the_last_date(run_dir):
    record = RunRecord(run_dir)
    result = predict_run(run_dir)
    assert result.fold == record.finished_folds()[-1]
    frame = result.forecasts
    assert frame["date"].nunique() == 1 and frame["date"].iloc[0] == result.date
    assert list(frame.columns[:5]) == ["date", "ticker", "prediction", "rank", "fold"]
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    assert frame["prediction"].is_monotonic_decreasing
    assert (frame["fold"] == result.fold).all()


def test_equals_the_fold_checkpoint_and_the_runs_own_forecasts(run_dir):
    fold = 0
    day = _test_day(run_dir, fold)
    result = predict_run(run_dir, fold=fold, date=day)
    assert not result.notes  # a trading day inside the fold's test window
    by_hand = Forecaster.load(RunRecord(run_dir).checkpoint_path(fold)).predict(
        load_panel("sp500"), day
    )
    merged = result.forecasts.merge(by_hand, on=["date", "ticker"], suffixes=("", "_hand"))
    assert len(merged) == len(by_hand) == len(result.forecasts)
    np.testing.assert_allclose(merged["prediction"], merged["prediction_hand"], rtol=1e-6)
    # The run forecast that date out of sample with the same model: the same numbers.
    stored = pd.read_parquet(run_dir / "predictions.parquet")
    stored = stored[(stored["date"] == pd.Timestamp(day)) & (stored["fold"] == fold)]
    merged = result.forecasts.merge(stored, on=["date", "ticker"], suffixes=("", "_run"))
    assert len(merged) == len(stored) > 0
    np.testing.assert_allclose(merged["prediction"], merged["prediction_run"], rtol=1e-5)


def test_a_weekend_uses_the_friday_before_and_says_so(run_dir):
    friday = predict_run(run_dir, fold=0, date="2017-06-02")
    saturday = predict_run(run_dir, fold=0, date="2017-06-03")
    assert saturday.date == pd.Timestamp("2017-06-02")
    assert any("not a trading day" in note and "2017-06-02" in note for note in saturday.notes)
    pd.testing.assert_frame_equal(friday.forecasts, saturday.forecasts)


def test_a_date_beyond_the_tested_range_is_flagged(run_dir):
    result = predict_run(run_dir, fold=0, date="2020-12-31")
    assert any("beyond fold 0's tested range" in note for note in result.notes)
    later = predict_run(run_dir, fold=0, date="2031-01-01")
    assert any("after the last date" in note for note in later.notes)


def test_the_run_data_options_are_used(run_dir, tmp_path):
    """Not cut at data.end (2020-12-31 in the ci config): the data after it is usable."""
    result = predict_run(run_dir, date="2021-06-01")
    assert result.date == pd.Timestamp("2021-06-01")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fold", "99"], "fold 99 is not a finished fold"),
        (["--date", "2017-13-01"], "--date"),
        (["--date", "1970-01-01"], "before the first date"),
        (["--out", "x.txt"], "--out must end in .parquet or .csv"),
    ],
)
def test_cli_errors_are_one_line(run_dir, args, message):
    result = runner.invoke(app, ["predict", str(run_dir), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_needs_a_run_or_a_checkpoint(tmp_path):
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 2 and "run directory or --checkpoint" in result.output
    result = runner.invoke(app, ["predict", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "run directory not found" in result.output


def test_cli_prints_ranks_and_writes_files(run_dir, tmp_path):
    result = runner.invoke(app, ["predict", str(run_dir), "--date", "2017-06-03"])
    assert result.exit_code == 0, result.output
    assert "not a trading day" in result.output and "Forecasts for 2017-06-02" in result.output
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["predict", str(run_dir), "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    written = pd.read_parquet(out)
    assert {"rank", "fold", "prediction", "ticker"} <= set(written.columns)


def test_trading_day_edges():
    dates = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"]).to_numpy()
    notes: list[str] = []
    assert trading_day(dates, None, "x", notes) == pd.Timestamp("2020-01-06") and not notes
    assert trading_day(dates, "2020-01-05", "x", notes) == pd.Timestamp("2020-01-03")
    assert len(notes) == 1
    with pytest.raises(AlphaseqError, match="before the first date"):
        trading_day(dates, "2019-12-31", "x", [])
