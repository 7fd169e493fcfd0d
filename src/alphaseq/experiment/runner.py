"""Whole experiments from stages: :func:`run` (train and trade), :func:`rebacktest` (trade
again from stored forecasts, no retraining).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alphaseq._logging import logger
from alphaseq.config import TABULAR_MODEL_NAMES, ExperimentConfig, apply_overrides, parse_config
from alphaseq.data import Panel
from alphaseq.errors import AlphaseqError, ConfigError, DataError
from alphaseq.experiment.build import (
    load_run_panel,
    prepare,
    run_universe_table,
    timing_setup,
)
from alphaseq.experiment.executors import make_executor
from alphaseq.experiment.record import (
    RETRAIN_FREE_KEYS,
    FoldResult,
    RunRecord,
    RunRecordError,
    retraining_keys,
)
from alphaseq.experiment.stages import (
    draw_attention,
    stitch,
    strategies,
    strategy_tables,
    summarize,
    walk_forward,
)
from alphaseq.training import distributed

__all__ = ["RunResult", "StageFailed", "rebacktest", "run"]


class StageFailed(AlphaseqError):
    """A stage after (or during) training failed; what was finished is on disk and the
    message says how to continue."""


@dataclass
class RunResult:
    """What :func:`run` or :func:`rebacktest` produced.

    Attributes
    ----------
    run_dir : Path
        Where every output file was written.
    metrics : dict
        The content of ``metrics.json``.
    predictions, weights, returns : pandas.DataFrame
        The content of the Parquet outputs.
    folds : list of dict
        Every fold's record (``folds.json``).
    """

    run_dir: Path
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    weights: pd.DataFrame
    returns: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)


def run(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    panel: Panel | None = None,
    on_fold: Callable[[int, int], None] | None = None,
    resume: bool = False,
    force: bool = False,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
) -> RunResult | None:
    """Run one experiment end to end and write its run directory.

    Parameters
    ----------
    config : ExperimentConfig
        The validated experiment.
    out_dir : str or Path
        The run directory: absent or empty, or (``resume``) an interrupted run of the
        same config and data, or (``force``) anything to replace.
    panel : Panel, optional
        Use this panel instead of loading ``config.data.source``.
    on_fold : callable, optional
        ``on_fold(done, total)`` after each fold (progress display), and once with
        ``done=0`` before the first, so that a display knows ``total`` from the start.
    resume : bool, default False
        Continue an interrupted run from its first unfinished fold. Its config (every
        key but the portfolio ones) and data must be those it was started with; the
        result is the one an uninterrupted run gives.
    force : bool, default False
        Replace whatever ``out_dir`` holds.
    workers : int, optional
        Train this many folds at once: local processes (torch's threads divided between
        them), or with ``executor="ray"`` at most this many Ray tasks. The results are
        those of one process with the same threads per fit.
    executor : {"local", "ray"}, default "local"
        Where the folds train (see :mod:`alphaseq.experiment.executors`).
    address : str, optional
        The Ray cluster of ``executor="ray"`` (default ``RAY_ADDRESS`` or a new local
        Ray instance).

    Returns
    -------
    RunResult or None
        None in the processes other than rank 0 of a ``torchrun`` launch (data-parallel
        training, see :mod:`alphaseq.training.distributed`): they train with rank 0,
        which alone writes the run directory.

    Raises
    ------
    RunRecordError
        When ``out_dir`` holds files and neither flag is given, or the run to resume
        was started with another config or other data.
    StageFailed
        When training, the strategies, the summary or the report fails; every finished
        fold stays on disk and the message says how to continue.
    """
    if resume and force:
        raise ConfigError("--resume and --force contradict each other: choose one")
    started = time.perf_counter()
    # Before anything is written: a bad --workers or a missing Ray answers at once.
    fold_executor = make_executor(
        executor, workers=workers, address=address, threads=config.training.threads
    )
    # Under torchrun every process joins here and trains every fold with the others;
    # rank 0 alone writes the run directory and trades the forecasts.
    group = distributed.setup(config.training.device)
    if group is not None:
        _check_data_parallel(config, fold_executor)
        if not group.is_main:
            logger.setLevel(logging.WARNING)  # rank 0 tells the story
            walk_forward(prepare(config, panel), None)
            return None
    folder = Path(out_dir)
    resuming = resume and folder.is_dir() and any(folder.iterdir())
    record = RunRecord.open(folder) if resuming else RunRecord.create(folder, force=force)
    with record.logging_to_file():
        data = prepare(config, panel)
        fingerprint = data.panel.fingerprint()
        if resuming:
            record.check_resumable(data.config, data_fingerprint=fingerprint)
            record.clear_results()
            record.write_config(data.config)  # portfolio keys may have changed
            record.write_manifest(name=data.config.name, status="training")
        else:
            record.start(data.config, data_fingerprint=fingerprint, n_folds=len(data.folds))
        logger.info("data: %r", data.panel)
        logger.info("%d folds", len(data.folds))
        if on_fold is not None:
            on_fold(0, len(data.folds))
        try:
            results = walk_forward(data, record, on_fold=on_fold, executor=fold_executor)
        except Exception as exc:
            done = len(record.finished_folds())
            if done == 0 and isinstance(exc, AlphaseqError):
                raise
            logger.info("training stopped", exc_info=True)  # the traceback goes to run.log only
            raise StageFailed(
                f"training stopped: {_describe(exc)}. The {done} finished fold(s) are kept "
                f"in '{record.folds_dir}'; continue with 'alphaseq run ... --out "
                f"{record.run_dir} --resume'"
            ) from exc
        command = "run --resume" if resuming else "run"
        return _trade_and_summarize(
            data.config, data.panel, results, record, started, command=command
        )


def _check_data_parallel(config: ExperimentConfig, executor: object) -> None:
    """Refuse what a ``torchrun`` launch cannot combine with data-parallel training."""
    if executor is not None:
        raise ConfigError(
            "under torchrun every process trains each fold together: --workers and "
            "--executor ray cannot be combined with it (or with --ddp)"
        )
    if config.model.name in TABULAR_MODEL_NAMES:
        raise ConfigError(
            f"model {config.model.name!r} is not trained by gradient steps: it cannot "
            "train data-parallel under torchrun (--ddp); run it in one process"
        )


def rebacktest(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    *,
    out_dir: str | Path | None = None,
    panel: Panel | None = None,
    force: bool = False,
    report: bool = True,
) -> RunResult:
    """Trade a finished (or fully trained) run's stored forecasts again, without retraining.

    Portfolio construction, costs, baselines, significance, metrics and the report are
    recomputed from the forecasts in ``RUN_DIR/folds``.

    Parameters
    ----------
    run_dir : str or Path
        A run directory whose every fold is finished.
    overrides : sequence of str
        ``dotted.key=value`` changes; only :data:`RETRAIN_FREE_KEYS` (the ``portfolio``
        section, timing rules, the name) are allowed.
    out_dir : str or Path, optional
        Write the new results there (the folds are copied); default: in place.
    panel : Panel, optional
        The prices, instead of loading the run's data source; they must be the data
        the run was trained on (same fingerprint).
    force : bool, default False
        Replace a non-empty ``out_dir``.
    report : bool, default True
        Write ``report.html`` (most of the time a re-backtest takes; leave it out when
        sweeping many settings).
    """
    started = time.perf_counter()
    source = RunRecord.open(run_dir)
    base = source.read_config()
    config = parse_config(
        apply_overrides(source.config_values(), list(overrides)), source="--set overrides"
    )
    changed = retraining_keys(base, config)
    if changed:
        raise ConfigError(
            f"{changed} would need the models retrained; alphaseq backtest only changes "
            f"{list(RETRAIN_FREE_KEYS)}: use alphaseq run for the others"
        )
    manifest = source.manifest()
    results: list[FoldResult] = source.read_folds()
    expected = manifest.get("n_folds")
    if not results or (expected is not None and len(results) != expected):
        raise RunRecordError(
            f"'{source.run_dir}' has {len(results)} of {expected} folds finished: continue "
            f"the training with 'alphaseq run ... --out {source.run_dir} --resume'"
        )
    prices = panel if panel is not None else load_run_panel(config)
    if config.mode == "timing":
        prices, _ = timing_setup(config, prices)
    fingerprint = prices.fingerprint()
    if manifest.get("data_fingerprint") != fingerprint:
        raise DataError(
            f"the prices of {config.data.source!r} are not those '{source.run_dir}' was "
            f"trained on (its data fingerprint differs): the stored forecasts do not belong "
            f"to them"
        )
    if out_dir is None:
        target = source
    else:
        target = RunRecord.create(out_dir, force=force)
        shutil.copytree(source.folds_dir, target.folds_dir)
        target.write_manifest(**{k: v for k, v in manifest.items() if k != "created"})
        target.write_manifest(rebacktest_of=str(source.run_dir))
    with target.logging_to_file():
        logger.info("re-backtesting the stored forecasts of %s", source.run_dir)
        target.clear_results()
        target.write_config(config)
        target.write_manifest(name=config.name)
        return _trade_and_summarize(
            config, prices, results, target, started, report=report, command="backtest"
        )


def _trade_and_summarize(
    config: ExperimentConfig,
    panel: Panel,
    results: list[FoldResult],
    record: RunRecord,
    started: float,
    *,
    report: bool = True,
    command: str = "run",
) -> RunResult:
    """The stages after training, shared by :func:`run` and :func:`rebacktest`."""
    try:
        predictions = stitch(config, results)
        trades, baselines = strategies(config, panel, results, predictions)
        weights, returns = strategy_tables(trades)
        metrics = summarize(
            config,
            panel,
            results,
            predictions,
            trades,
            baselines,
            seconds=time.perf_counter() - started,
            command=command,
        )
        draw_attention(config, results, record)
        record.write_table("predictions", predictions)
        record.write_table("weights", weights)
        record.write_table("returns", returns)
        members = run_universe_table(config, panel, predictions["date"])
        if members is not None:
            record.write_table("universe", members)
        folds = [r.record for r in results]
        record.write_folds_summary(folds)
        record.write_metrics(metrics)  # last: marks the run complete
    except Exception as exc:
        logger.info(
            "the run stopped after training", exc_info=True
        )  # the traceback goes to run.log only
        record.write_manifest(status="failed after training")
        raise StageFailed(
            f"the run stopped after training: {_describe(exc)}. The forecasts of all "
            f"{len(results)} folds are kept in '{record.folds_dir}'; fix the cause, then run "
            f"'alphaseq backtest {record.run_dir}' (no retraining)"
        ) from exc
    try:
        if report:
            from alphaseq.report import build_report

            build_report(record.run_dir)
    except Exception as exc:
        logger.info("report failed", exc_info=True)  # the traceback goes to run.log only
        raise StageFailed(
            f"the results are complete in '{record.run_dir}', but report.html could not be "
            f"written: {_describe(exc)}; run 'alphaseq report {record.run_dir}' to retry"
        ) from exc
    logger.info("run written to %s in %.1fs", record.run_dir, time.perf_counter() - started)
    return RunResult(record.run_dir, metrics, predictions, weights, returns, folds)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AlphaseqError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
