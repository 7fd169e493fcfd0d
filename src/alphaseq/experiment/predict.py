"""Forecasts from a finished run: one fold's model on a chosen date, with the data loaded
exactly as the run loaded it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from alphaseq.config import ExperimentConfig
from alphaseq.errors import ConfigError, DataError
from alphaseq.experiment.build import load_run_panel, timing_setup, universe_selection
from alphaseq.experiment.record import RunRecord

__all__ = ["RunForecast", "predict_run", "trading_day"]


@dataclass
class RunForecast:
    """What :func:`predict_run` returns.

    Attributes
    ----------
    forecasts : pandas.DataFrame
        ``date, ticker, prediction, rank, fold`` and one column per model output, best
        forecast first (``rank`` 1).
    fold : int
        The fold whose model made them.
    date : pandas.Timestamp
        The trading day forecast.
    notes : list of str
        What the user should know: a date moved to the last trading day before it, a
        date beyond the range the model was tested on.
    """

    forecasts: pd.DataFrame
    fold: int
    date: pd.Timestamp
    notes: list[str] = field(default_factory=list)


def predict_run(
    run_dir: str | Path,
    *,
    fold: int | None = None,
    date: str | None = None,
    source: str | None = None,
    device: str = "cpu",
) -> RunForecast:
    """Forecast every ticker on one date with a fold's model from a run directory.

    The prices are loaded as the run loaded them (its ``data`` section: source,
    benchmark, minimum history, stale-ticker filter, tickers, timezone; timing runs keep
    their instrument; a ``data.universe`` is chosen on the forecast date), except that
    they are not cut at ``data.end``: forecasting after the backtest is the point.
    Features only read data up to the forecast date.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`alphaseq.experiment.run`.
    fold : int, optional
        Which fold's model (default: the last finished one, trained on the latest data).
    date : str, optional
        ``YYYY-MM-DD``; a weekend or holiday means the last trading day on or before it.
        Default: the last date of the data.
    source : str, optional
        Other prices to forecast from (e.g. a newer file of the same universe); default:
        the run's ``data.source``.
    device : str
        Where to run the model.

    Returns
    -------
    RunForecast
    """
    from alphaseq.forecaster import Forecaster

    record = RunRecord(run_dir)
    if not record.run_dir.is_dir():
        raise ConfigError(f"run directory not found: '{record.run_dir}'")
    config = record.read_config()
    finished = record.finished_folds()
    if not finished:
        raise ConfigError(f"'{record.run_dir}' has no finished fold to forecast with")
    index = finished[-1] if fold is None else fold
    if index not in finished:
        raise ConfigError(f"fold {index} is not a finished fold of '{record.run_dir}' {finished}")
    checkpoint = record.checkpoint_path(index)
    if not checkpoint.is_file():
        raise ConfigError(f"fold {index} of '{record.run_dir}' kept no model ('{checkpoint}')")

    panel = _run_panel(config, source)
    notes: list[str] = []
    day = trading_day(panel.dates, date, panel.name, notes)
    fold_record = record.read_fold(index).record
    _note_beyond_tested(config, fold_record, index, day, notes)

    model = Forecaster.load(checkpoint)
    frame = model.predict(panel, str(day.date()), device=device)
    row = int(np.searchsorted(panel.dates, day.to_datetime64()))
    chosen = universe_selection(config, panel, [row])
    if chosen is not None:
        # The run's point-in-time universe, chosen on the forecast date itself.
        members = set(panel.tickers[chosen[0]].tolist())
        frame = frame[frame["ticker"].isin(members)]
        notes.append(f"universe: {len(members)} tickers chosen on {day.date()} (data.universe)")
    frame = frame.sort_values(["prediction", "ticker"], ascending=[False, True], kind="stable")
    frame.insert(3, "rank", np.arange(1, len(frame) + 1))
    frame.insert(4, "fold", index)
    return RunForecast(forecasts=frame.reset_index(drop=True), fold=index, date=day, notes=notes)


def _run_panel(config: ExperimentConfig, source: str | None):
    # The run's data options without its end date (the forecast may be later).
    data = config.data.model_copy(update={"end": None})
    config = config.model_copy(update={"data": data})
    panel = load_run_panel(config, source)
    if config.mode == "timing":
        panel, _ = timing_setup(config, panel)
    return panel


def trading_day(dates: np.ndarray, date: str | None, name: str, notes: list[str]) -> pd.Timestamp:
    """The last trading day of ``dates`` on or before ``date`` (default: the last one);
    a note in ``notes`` when that is not ``date`` itself."""
    index = pd.DatetimeIndex(dates)
    if date is None:
        return index[-1]
    wanted = pd.Timestamp(date)
    position = index.searchsorted(wanted, side="right") - 1
    if position < 0:
        raise DataError(f"{date} is before the first date of {name!r} ({index[0].date()})")
    day = index[position]
    if position == len(index) - 1 and wanted > day:
        notes.append(
            f"{date} is after the last date of {name!r}: forecasting for {day.date()}, "
            "its last trading day"
        )
    elif day != wanted:
        notes.append(
            f"{date} is not a trading day of {name!r}: forecasting for {day.date()}, "
            "the last trading day before it"
        )
    return day


def _note_beyond_tested(
    config: ExperimentConfig, record: dict, index: int, day: pd.Timestamp, notes: list[str]
) -> None:
    """A note when ``day`` is later than the fold's model was ever tested: its training
    end plus a full test window (the test window itself may have been cut by the data)."""
    test = record.get("test_window") or {}
    train = record.get("train_window") or {}
    if not test.get("start_date"):
        return
    start, end = pd.Timestamp(test["start_date"]), pd.Timestamp(test["end_date"])
    if config.validation.scheme == "walk_forward":
        end = max(end, start + pd.DateOffset(months=config.validation.test_months))
    if day > end:
        notes.append(
            f"{day.date()} is beyond fold {index}'s tested range (trained to "
            f"{train.get('end_date')}, tested up to {end.date()}): retrain before relying "
            "on these forecasts"
        )
