"""The stages of an experiment, each reading what the previous one left in the run record.

``walk_forward`` (per fold: fit, forecast the test window, attention, history; each fold
written as soon as it ends) -> ``stitch`` (one out-of-sample record) -> ``strategies``
(every strategy from the stored forecasts) -> ``summarize`` (metrics.json, written last).
The report is a view of the finished record (:func:`alphaseq.report.build_report`).
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alphaseq._logging import logger
from alphaseq.analysis.attention import attention_summary, average_by_lag, plot_attention_heatmap
from alphaseq.analysis.classification import (
    classification_block,
    direction_summary,
    regression_block,
)
from alphaseq.analysis.factor import forecast_study
from alphaseq.backtest import (
    forecast_metrics,
    month_end_rows,
    performance_metrics,
    relative_metrics,
    return_distribution,
    significance_report,
)
from alphaseq.backtest.metrics import finite_or_none
from alphaseq.config import ExperimentConfig
from alphaseq.data import Panel
from alphaseq.errors import DataError
from alphaseq.experiment.build import ExperimentData, fit_fold
from alphaseq.experiment.record import FoldResult, RunRecord
from alphaseq.experiment.strategies import build_strategies
from alphaseq.training.checkpoint import library_versions
from alphaseq.training.distributed import run_on_main
from alphaseq.training.trainer import resolve_device
from alphaseq.validation import Fold

if TYPE_CHECKING:
    from alphaseq.experiment.executors import FoldExecutor

__all__ = [
    "PREDICTION_COLUMNS",
    "run_fold",
    "save_fold_model",
    "stitch",
    "store_fold",
    "strategies",
    "summarize",
    "train_fold",
    "walk_forward",
]

#: Columns of the stitched ``predictions.parquet`` (other tasks add their heads).
PREDICTION_COLUMNS = ("date", "ticker", "fold", "prediction", "label")


# ------------------------------------------------------------------------ walk forward
def train_fold(data: ExperimentData, fold: Fold) -> tuple[FoldResult, Any]:
    """Fit one fold and forecast its test window once: ``(result, fitted forecaster)``.

    Nothing is written: any executor (this process, a worker process, a Ray task) runs
    this, and :func:`store_fold` files the result in the run directory.
    """
    started = time.perf_counter()
    config, panel = data.config, data.panel
    model = fit_fold(config, panel, fold, features=data.features, labels=data.labels)
    device = str(resolve_device(config.training.device))
    test_dates = [_day(d) for d in panel.dates[fold.test.start : fold.test.end + 1]]
    frame = model.predict(panel, test_dates, feature_set=data.features, device=device)
    frame["fold"] = fold.index
    rows, cols = _rows_of(panel, frame["date"]), _cols_of(panel, frame["ticker"])
    if data.members is not None:
        # Only the members in force on each date are forecast (and so ranked and held).
        member = data.members[rows, cols]
        frame = frame[member].reset_index(drop=True)
        rows, cols = rows[member], cols[member]
    for j, name in enumerate(data.labels.names):
        frame[f"true_{name}"] = data.labels.values[rows, cols, j]
    frame["label"] = data.labels.values[rows, cols, data.signal.index]  # the signal's truth
    _, weights = model.attention(panel, test_dates, feature_set=data.features, device=device)
    best = model.history_[model.best_epoch_] if model.best_epoch_ >= 0 else {}
    result = FoldResult(
        fold=fold,
        predictions=frame,
        record=fold.to_dict()
        | {
            "epochs": len(model.history_),
            "best_epoch": model.best_epoch_,
            "best_score": model.best_score_,
            "monitor": config.training.monitor,
            "signal": {"horizon": data.signal.horizon, "label": data.signal.label},
            "history": model.history_,
            "train": model.train_metrics_,
            "valid": {k: v for k, v in best.items() if k.startswith("val_")},
            "test": _forecast_block(config, frame, data.signal.label),
            "checkpoint": None,
        }
        | ({"members": model.member_summary()} if hasattr(model, "member_summary") else {}),
        attention=None if weights is None else average_by_lag(weights).tolist(),
        attention_count=0 if weights is None else len(weights),
    )
    result.record["seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "fold %d: test %s..%s, test IC %s",
        fold.index,
        fold.test.start_date,
        fold.test.end_date,
        result.record["test"].get("ic"),
    )
    return result, model


def save_fold_model(data: ExperimentData, fold: Fold, model: Any, path: Path) -> None:
    """Write a fold's fitted forecaster to ``path`` with the fold and data it belongs to."""
    model.save(
        path,
        metadata={
            "fold": fold.to_dict(),
            "data": data.config.data.model_dump(mode="json"),
            "run": data.config.name,
        },
    )


def store_fold(
    record: RunRecord, result: FoldResult, write_checkpoint: Callable[[Path], None]
) -> None:
    """File a trained fold in ``record``: ``write_checkpoint(path)`` writes its model,
    then its forecasts and record; the fold's files appear together, when complete."""
    with record.writing_fold(result.fold.index) as folder:
        write_checkpoint(folder / "model.ckpt")
        result.record["checkpoint"] = str(
            record.checkpoint_path(result.fold.index).relative_to(record.run_dir)
        )
        record.write_fold(result, folder)


def run_fold(data: ExperimentData, fold: Fold, record: RunRecord | None = None) -> FoldResult:
    """Fit one fold, forecast its test window once, and (with a record) store it all."""
    result, model = train_fold(data, fold)
    if record is not None:
        store_fold(record, result, partial(save_fold_model, data, fold, model))
    return result


def walk_forward(
    data: ExperimentData,
    record: RunRecord | None,
    *,
    on_fold: Callable[[int, int], None] | None = None,
    executor: FoldExecutor | None = None,
) -> list[FoldResult]:
    """Every fold: finished ones are read back, the others trained and stored.

    A fold's result depends on the config, the data and the fold only (every fit starts
    from the configured seed), so a resumed run gives what an uninterrupted one gives,
    and folds trained in parallel (``executor``) give what one process gives.

    Parameters
    ----------
    data : ExperimentData
        The experiment's shared pieces.
    record : RunRecord or None
        Where finished folds are read from and new ones stored, each as soon as it ends.
        None in the other ranks of a data-parallel (``torchrun``) launch: they train every
        fold with rank 0, which alone reads and writes the run directory.
    on_fold : callable, optional
        ``on_fold(done, total)`` after each fold.
    executor : FoldExecutor, optional
        Where the folds train (see :mod:`alphaseq.experiment.executors`); default: one
        after another in this process.

    Returns
    -------
    list of FoldResult
        In fold order (empty in the ranks without a record).
    """
    # Decided by rank 0 and shared under torchrun (a plain call in one process).
    done = set(run_on_main(lambda: record.finished_folds()))
    if done and record is not None:
        logger.info("resuming: folds %s are finished and read back", sorted(done))
    results: dict[int, FoldResult] = {}
    pending = [fold for fold in data.folds if fold.index not in done]
    if record is not None:
        for fold in data.folds:
            if fold.index in done:
                results[fold.index] = _read_stored_fold(record, fold)
    total = len(data.folds)
    if on_fold is not None and results:
        on_fold(len(results), total)
    if executor is None:
        for fold in pending:
            result, model = train_fold(data, fold)
            write = partial(save_fold_model, data, fold, model)
            # Under torchrun rank 0 stores it while the others wait (and hear of a failure).
            run_on_main(partial(_store_if_recorded, record, result, write))
            results[fold.index] = result
            if on_fold is not None:
                on_fold(len(results), total)
    else:
        for trained in executor.train(data, pending):
            assert record is not None, "an executor's folds are stored by its driver"
            store_fold(record, trained.result, trained.write_checkpoint)
            results[trained.result.fold.index] = trained.result
            if on_fold is not None:
                on_fold(len(results), total)
    return [results[fold.index] for fold in data.folds] if record is not None else []


def _store_if_recorded(
    record: RunRecord | None, result: FoldResult, write: Callable[[Path], None]
) -> None:
    if record is not None:
        store_fold(record, result, write)


def _read_stored_fold(record: RunRecord, fold: Fold) -> FoldResult:
    stored = record.read_fold(fold.index)
    if stored.fold != fold:
        raise DataError(
            f"stored fold {fold.index} of '{record.run_dir}' has other windows than "
            f"the config gives ({stored.fold.test} vs {fold.test})"
        )
    return stored


# ------------------------------------------------------------------------------ stitch
def stitch(config: ExperimentConfig, results: list[FoldResult]) -> pd.DataFrame:
    """The out-of-sample record: every fold's test forecasts, one after the other.

    Regression runs keep ``date, ticker, fold, prediction, label``; trend and
    classification runs add their heads (``trend_30``, ``direction_30_p1``, ...).
    """
    full = pd.concat([r.predictions for r in results], ignore_index=True)
    if config.task == "regression":
        return full[list(PREDICTION_COLUMNS)]
    heads = [c for c in full.columns if c not in PREDICTION_COLUMNS and not c.startswith("true_")]
    return full[[*PREDICTION_COLUMNS, *heads]]


# -------------------------------------------------------------------------- strategies
def strategies(
    config: ExperimentConfig, panel: Panel, results: list[FoldResult], predictions: pd.DataFrame
) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """Every strategy of ``config`` traded over the stitched test windows."""
    first, last = results[0].fold.test.start, results[-1].fold.test.end
    horizon = results[0].fold.label_horizon
    skill = {
        r.fold.index: (r.record.get("valid") or {}).get("val_rank_ic", float("nan"))
        for r in results
    }
    return build_strategies(
        config,
        panel,
        predictions,
        first_row=first,
        last_row=last,
        horizon=horizon,
        fold_skill=skill,
    )


def strategy_tables(strategies: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(weights, returns)`` long tables of every strategy."""
    returns = pd.concat(
        [
            pd.DataFrame(
                {
                    "date": s["returns"].index,
                    "strategy": name,
                    "net_return": s["returns"].to_numpy(),
                    # One-way turnover traded at that close; NaN on days without a trade.
                    "turnover": _turnover_on(s, s["returns"].index),
                }
            )
            for name, s in strategies.items()
        ],
        ignore_index=True,
    )
    weights = pd.concat(
        [s["weights"].assign(strategy=name) for name, s in strategies.items() if "weights" in s],
        ignore_index=True,
    )[["date", "ticker", "strategy", "weight"]]
    return weights, returns


#: The passive references every strategy is measured against, when the run has them.
RELATIVE_REFERENCES = ("equal_weight", "benchmark", "buy_and_hold")


def _relative_block(strategies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Alpha, beta, correlation, tracking error and capture of every strategy against
    each passive reference (equal weight, the benchmark or buy-and-hold)."""
    references = [r for r in RELATIVE_REFERENCES if r in strategies]
    return {
        name: {
            ref: relative_metrics(s["returns"], strategies[ref]["returns"])
            for ref in references
            if ref != name
        }
        for name, s in strategies.items()
    }


def _universe_block(config: ExperimentConfig, predictions: pd.DataFrame) -> dict | None:
    """``data.universe``'s rule and the tickers actually forecast per date under it."""
    if config.data.universe is None:
        return None
    per_date = predictions.groupby("date")["ticker"].nunique()
    return config.data.universe.model_dump(mode="json") | {
        "forecast_per_date": {
            "mean": float(per_date.mean()) if len(per_date) else None,
            "min": int(per_date.min()) if len(per_date) else None,
        },
        "distinct_tickers": int(predictions["ticker"].nunique()),
    }


def _turnover_on(strategy: dict[str, Any], dates: pd.Index) -> np.ndarray:
    """The strategy's one-way turnover on ``dates`` (NaN where it did not rebalance)."""
    series = strategy.get("rebalance_turnover")
    if series is None:
        return np.full(len(dates), np.nan)
    return series.reindex(dates).to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------- summarize
def summarize(
    config: ExperimentConfig,
    panel: Panel,
    results: list[FoldResult],
    predictions: pd.DataFrame,
    strategies: dict[str, dict[str, Any]],
    baselines: tuple[str, ...],
    *,
    seconds: float,
    command: str = "run",
) -> dict[str, Any]:
    """The content of ``metrics.json``: strategies, significance, forecast quality per
    task, attention, construction records, folds, data provenance and the run."""
    full = pd.concat([r.predictions for r in results], ignore_index=True)
    reference = strategies.get("benchmark", strategies.get("buy_and_hold", {})).get("returns")
    tried = config.configurations_tried  # set by alphaseq tune in best.yaml
    strategy_metrics = {
        name: s.get("metrics")
        or performance_metrics(s["returns"], benchmark=reference, turnover=s.get("turnover"))
        for name, s in strategies.items()
    }
    folds = [r.fold for r in results]
    return {
        "strategies": strategy_metrics,
        "significance": significance_report(
            {name: s["returns"] for name, s in strategies.items()},
            {name: strategies[name]["returns"] for name in baselines if name in strategies},
            n_trials=tried,
        ),
        "relative": _relative_block(strategies),
        "distribution": {name: return_distribution(s["returns"]) for name, s in strategies.items()},
        **_task_blocks(config, full),
        "attention": attention_summary(
            [None if r.attention is None else np.asarray(r.attention) for r in results],
            [r.attention_count for r in results],
        ),
        "construction": {
            name: s["construction"] for name, s in strategies.items() if "construction" in s
        },
        "forecast": _forecast_block(
            config,
            predictions,
            (results[0].record.get("signal") or {}).get("label") or _signal_label(config),
        ),
        "diagnostics": _diagnostics(config, panel, results, predictions),
        "training": training_summary(results),
        "folds": [{k: v for k, v in r.record.items() if k != "history"} for r in results],
        "data": {
            "name": panel.name,
            "source": str(panel.meta.get("source", config.data.source)),
            "tickers": panel.n_tickers,
            "dates": panel.n_dates,
            "first_date": _day(panel.dates[0]),
            "last_date": _day(panel.dates[-1]),
            "fingerprint": panel.fingerprint(),
            "benchmark": panel.benchmark_name or config.data.benchmark,
            "survivorship_bias": config.data.survivorship_bias
            or panel.meta.get("survivorship_bias"),
            "repairs": [r.detail for r in panel.repairs],
            "universe": _universe_block(config, predictions),
        },
        "run": {
            "name": config.name,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            # ``seconds``: the command that wrote these results (a re-backtest takes
            # seconds); ``training_seconds``: the folds' own time, however they were made.
            "command": command,
            "seconds": round(seconds, 2),
            "training_seconds": round(sum(r.record.get("seconds") or 0.0 for r in results), 2),
            "out_of_sample": {
                "start": _day(panel.dates[folds[0].test.start]),
                "end": _day(panel.dates[folds[-1].test.end]),
            },
            "configurations_tried": tried,
            "mode": config.mode,
            "top_k": strategies.get("model_topk", {}).get("k"),
            "cost_bps": config.portfolio.cost_bps,
            "versions": library_versions(),
        },
    }


def draw_attention(config: ExperimentConfig, results: list[FoldResult], record: RunRecord) -> None:
    """``attention.png``; a figure that fails to draw is logged and skipped."""
    profiles = [None if r.attention is None else np.asarray(r.attention) for r in results]
    if all(p is None for p in profiles):
        return
    tmp = record.attention_path.with_name(f".attention.{os.getpid()}.png")
    try:
        plot_attention_heatmap(
            profiles,
            tmp,
            title=f"{config.name}: mean attention by lag (0 = most recent day)",
            fold_labels=[f"fold {r.fold.index} ({r.fold.test.start_date[:4]})" for r in results],
            counts=[r.attention_count for r in results],
        )
        os.replace(tmp, record.attention_path)
    except Exception as exc:  # a figure is a view of results that are already stored
        logger.warning("could not draw attention.png: %s: %s", type(exc).__name__, exc)
    finally:
        if tmp.exists():
            tmp.unlink()


def training_summary(results: list[FoldResult]) -> dict[str, Any]:
    """How training went across folds: best epochs, the share stopped at the first, and
    whether the kept epoch beat the first by more than validation noise.

    A model whose validation figure is best after its first epoch (or first boosting
    round, or first penalty) has not learned from training what validation rewards.
    ``selection`` reads the monitored figure (IC or rank IC) at each fold's kept epoch:
    its Newey–West standard error on the validation window (``validation_se``) and the
    paired t-statistic of its gain over the first epoch (``gain_t``; 0 when the first
    epoch was kept). ``significant_gains`` counts folds with ``gain_t >= 2``: in the
    others, per-epoch selection picked among epochs validation cannot tell apart.
    """
    if any("members" in r.record for r in results):
        return _ensemble_training_summary(results)
    best = [r.record.get("best_epoch") for r in results]
    known = [b for b in best if isinstance(b, int) and b >= 0]
    summary: dict[str, Any] = {
        "folds": len(results),
        "best_epochs": best,
        "epochs": [r.record.get("epochs") for r in results],
        "first_epoch_stops": sum(b == 0 for b in known),
        "first_epoch_share": (sum(b == 0 for b in known) / len(known)) if known else None,
    }
    selection = _selection_noise(results)
    if selection is not None:
        summary["selection"] = selection
    return summary


def _ensemble_training_summary(results: list[FoldResult]) -> dict[str, Any]:
    """An ensemble's members each trained on their own: first-epoch stops are counted
    over every member fit (``fits``), best epochs listed per fold and member."""
    members = [r.record.get("members") or [] for r in results]
    best = [[m.get("best_epoch") for m in fold] for fold in members]
    known = [b for fold in best for b in fold if isinstance(b, int) and b >= 0]
    return {
        "folds": len(results),
        "fits": sum(len(fold) for fold in members),
        "best_epochs": best,
        "epochs": [[m.get("epochs") for m in fold] for fold in members],
        "first_epoch_stops": sum(b == 0 for b in known),
        "first_epoch_share": (sum(b == 0 for b in known) / len(known)) if known else None,
    }


def _selection_noise(results: list[FoldResult]) -> dict[str, Any] | None:
    monitors = {r.record.get("monitor") for r in results}
    monitor = monitors.pop() if len(monitors) == 1 else None
    if monitor not in ("ic", "rank_ic"):
        return None
    errors: list[float | None] = []
    gains: list[float | None] = []
    for r in results:
        history, kept = r.record.get("history") or [], r.record.get("best_epoch")
        entry = history[kept] if isinstance(kept, int) and 0 <= kept < len(history) else {}
        errors.append(finite_or_none(entry.get(f"val_{monitor}_se")))
        gains.append(0.0 if kept == 0 else finite_or_none(entry.get(f"val_{monitor}_gain_t")))
    if all(e is None for e in errors):
        return None  # a model family without per-epoch figures (trees, ridge)
    known = [g for g in gains if g is not None]
    return {
        "monitor": monitor,
        "validation_se": errors,
        "gain_t": gains,
        "significant_gains": sum(g >= 2 for g in known),
        "folds_scored": len(known),
    }


def _diagnostics(
    config: ExperimentConfig, panel: Panel, results: list[FoldResult], predictions: pd.DataFrame
) -> dict[str, Any] | None:
    """Factor diagnostics of the forecasts and the reference factors on the same samples
    (cross-section only: one instrument has no cross-section to sort)."""
    if config.mode == "timing" or len(predictions) == 0:
        return None
    first, last = results[0].fold.test.start, results[-1].fold.test.end
    rebalances = panel.dates[month_end_rows(panel.dates, start_row=first, end_row=last)]
    horizon = int(results[0].record.get("signal", {}).get("horizon") or max(config.labels.horizons))
    return forecast_study(panel, predictions, horizon, rebalance_dates=rebalances)


# ---------------------------------------------------------------------------- helpers
def _forecast_block(config: ExperimentConfig, frame: pd.DataFrame, label: str) -> dict[str, Any]:
    block = (
        _time_series_forecast_metrics(frame)
        if config.mode == "timing"
        else _cross_section_forecast_metrics(frame)
    )
    known = frame.dropna(subset=["label"]) if "label" in frame else frame.iloc[0:0]
    if len(known):
        # One definition of direction accuracy for the CLI, the report and metrics.json,
        # with the thresholds of the task's forecast and label (see direction_accuracy).
        realised_threshold = _REALISED_UP.get(config.labels.kind, 0.0)
        block |= direction_summary(
            known["prediction"], known["label"], 0.0, realised_threshold=realised_threshold
        )
    block["label"] = label  # what the forecast was scored against
    return block


#: Boundary between a realised "down" and "up" of each label kind's codes: class labels
#: are 0/1 (direction) and 0/1/2 (three_class, FLAT left out); others are signed values.
_REALISED_UP = {"direction": 0.5, "three_class": 1.0}


def _signal_label(config: ExperimentConfig) -> str:
    """The signal horizon's label, for fold records written before they named it (a
    model trained on a normalised or excess label is still scored on the raw one)."""
    horizon = config.labels.signal_horizon or max(config.labels.horizons)
    return f"{config.labels.kind}_{horizon}"


def _task_blocks(config: ExperimentConfig, frame: pd.DataFrame) -> dict[str, Any]:
    """Per-horizon regression figures and, for classifiers, the classification report."""
    blocks: dict[str, Any] = {"task": config.task}
    horizons = list(config.labels.horizons)
    truths = [c[len("true_") :] for c in frame.columns if c.startswith("true_")]
    n_classes = 3 if config.labels.kind == "three_class" else 2
    if config.task == "regression":
        regression, classes = truths, []
    elif config.task == "trend":
        regression, classes = truths[: len(horizons)], truths[len(horizons) :]
    else:
        regression, classes = [], truths
    per_horizon: dict[str, Any] = {}
    for k, name in enumerate(regression):
        figures = regression_block(frame[name], frame[f"true_{name}"])
        figures |= direction_summary(frame[name], frame[f"true_{name}"])
        if classes:  # trend: the direction head is a forecast of its own
            cls = classes[k]
            head = direction_summary(
                frame[f"{cls}_p1"], frame[f"true_{cls}"], 0.5, realised_threshold=0.5
            )
            figures["direction_head_accuracy"] = head["direction_accuracy"]
        per_horizon[str(horizons[k])] = {"label": name, **figures}
    if per_horizon:
        blocks["horizons"] = per_horizon
    if config.task == "classification":
        names = ("DOWN", "UP") if n_classes == 2 else ("DOWN", "FLAT", "UP")
        reports = {}
        for k, name in enumerate(classes):
            probs = frame[[f"{name}_p{c}" for c in range(n_classes)]].to_numpy()
            truth = frame[f"true_{name}"].to_numpy()
            known = np.isfinite(truth)
            reports[str(horizons[k])] = classification_block(
                truth[known].astype(int),
                probs[known].argmax(axis=1),
                labels=tuple(range(n_classes)),
                names=names,
            )
        blocks["classification"] = reports
    return blocks


def _time_series_forecast_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    """One instrument: correlation over time instead of across tickers."""
    known = frame.dropna(subset=["label"])
    if len(known) < 3:
        return {"n_predictions": len(known)}
    pred, label = known["prediction"], known["label"]
    moved = label != 0
    return {
        "time_series_ic": float(pred.corr(label)),
        "time_series_rank_ic": float(pred.rank().corr(label.rank())),
        "mse": float(((pred - label) ** 2).mean()),
        "direction_accuracy": float((np.sign(pred[moved]) == np.sign(label[moved])).mean()),
        "n_predictions": len(known),
    }


def _cross_section_forecast_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    known = frame.dropna(subset=["label"]) if "label" in frame else frame.iloc[0:0]
    if len(known) == 0:
        return {"n_predictions": 0}
    return forecast_metrics(known["prediction"], known["label"], known["date"])


def _rows_of(panel: Panel, dates: pd.Series) -> np.ndarray:
    return np.searchsorted(panel.dates, pd.DatetimeIndex(dates).to_numpy("datetime64[ns]"))


def _cols_of(panel: Panel, tickers: pd.Series) -> np.ndarray:
    position = {t: k for k, t in enumerate(panel.tickers)}
    return np.array([position[t] for t in tickers], dtype=np.int64)


def _day(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="D"))
