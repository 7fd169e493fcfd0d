"""``run(config)``: one walk-forward experiment, from prices to a run directory.

prices -> panel -> features + labels -> walk-forward folds -> train -> forecasts
-> weights (model top-k and baselines) -> backtest with costs -> metrics -> files.

Every fold's model sees training and validation windows only; its test window is
predicted once, after training. The test windows are stitched into one out-of-sample
record, and every strategy trades that record through the same engine and costs.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from alphaseq._logging import logger
from alphaseq.analysis.attention import (
    attention_summary,
    average_by_lag,
    plot_attention_heatmap,
)
from alphaseq.analysis.classification import (
    classification_block,
    direction_accuracy,
    regression_block,
)
from alphaseq.backtest import (
    backtest,
    buy_and_hold,
    forecast_metrics,
    month_end_rows,
    performance_metrics,
    significance_report,
)
from alphaseq.config import ConstructorConfig, ExperimentConfig
from alphaseq.data import Panel, load_panel
from alphaseq.errors import ConfigError, DataError
from alphaseq.features import compute_features
from alphaseq.forecaster import Forecaster, TaskLabels, task_labels
from alphaseq.portfolio import (
    HRP,
    EqualWeight,
    MeanVariance,
    PortfolioConstraints,
    Tilt,
    TopK,
    default_top_k,
    make_policy,
    momentum_scores,
    top_k_weights,
)
from alphaseq.portfolio.timing import timing_backtest, timing_positions
from alphaseq.training.checkpoint import library_versions
from alphaseq.training.trainer import resolve_device
from alphaseq.validation import FixedSplit, Fold, WalkForwardSplit

STRATEGIES = ("model_topk", "equal_weight", "benchmark", "momentum")


@dataclass
class RunResult:
    """What :func:`run` produced.

    Attributes
    ----------
    run_dir : Path
        Where every output file was written.
    metrics : dict
        The content of ``metrics.json``.
    predictions, weights, returns : pandas.DataFrame
        The content of the Parquet outputs.
    """

    run_dir: Path
    metrics: dict[str, Any]
    predictions: pd.DataFrame
    weights: pd.DataFrame
    returns: pd.DataFrame
    folds: list[dict[str, Any]] = field(default_factory=list)


def load_run_panel(config: ExperimentConfig, source: str | None = None) -> Panel:
    """The panel of an experiment: its data source (or ``source``), sliced to its dates."""
    data = config.data
    panel = load_panel(
        source or data.source, min_history=data.min_history, benchmark=data.benchmark
    )
    if data.benchmark_source is not None:
        if data.benchmark is not None:
            raise ConfigError("set data.benchmark or data.benchmark_source, not both")
        other = load_panel(data.benchmark_source)
        if other.n_tickers != 1 and other.benchmark is None:
            raise DataError(
                f"benchmark source {data.benchmark_source!r} holds {other.n_tickers} tickers; "
                f"expected one instrument"
            )
        series = other.benchmark if other.benchmark is not None else other.close[:, 0]
        name = other.benchmark_name or str(other.tickers[0])
        aligned = (
            pd.Series(series, index=pd.DatetimeIndex(other.dates))
            .reindex(pd.DatetimeIndex(panel.dates))
            .to_numpy(np.float64)
        )
        panel = panel._replace(benchmark=aligned, benchmark_name=name)
    # Only the end is cut: history before data.start still warms up the features (a
    # 252-day return needs a year of prices); the folds start at data.start.
    if data.end:
        panel = panel.slice_dates(None, data.end)
    if panel.n_dates == 0 or (
        data.start and panel.dates[-1] < np.datetime64(pd.Timestamp(data.start), "ns")
    ):
        raise DataError(f"no date of {panel.name!r} falls in {data.start}..{data.end}")
    return panel


def _splitter(config: ExperimentConfig):
    v = config.validation
    start = config.data.start
    if v.scheme == "fixed":
        train, valid, test = v.fractions
        return FixedSplit(
            train=train, valid=valid, test=test, embargo_days=v.embargo_days, start=start
        )
    return WalkForwardSplit(
        start=start,
        train_months=v.train_months,
        valid_months=v.valid_months,
        test_months=v.test_months,
        step_months=v.step_months,
        expanding=v.expanding,
        embargo_days=v.embargo_days,
    )


def _forecaster(config: ExperimentConfig) -> Forecaster:
    return Forecaster(
        model=config.model.name,
        model_params=dict(config.model.params),
        features=config.features.names,
        cross_section=config.features.cross_section,
        scaler=config.features.scaler,
        scaler_clip=config.features.clip,
        label=config.labels.kind,
        horizons=tuple(config.labels.horizons),
        flat_band=config.labels.flat_band,
        task=config.task,
        class_weights=config.labels.class_weights,
        signal_horizon=config.labels.signal_horizon,
        vol_window=config.labels.vol_window,
        lookback=config.windows.lookback,
        stride=config.windows.stride,
        trainer=config.training,
    )


def run(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    panel: Panel | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run one experiment end to end and write its run directory.

    Parameters
    ----------
    config : ExperimentConfig
        The validated experiment.
    out_dir : str or Path
        The run directory (created; must be empty or absent).
    panel : Panel, optional
        Use this panel instead of loading ``config.data.source``.
    on_fold : callable, optional
        ``on_fold(done, total)`` after each fold (progress display).

    Returns
    -------
    RunResult
    """
    started = time.perf_counter()
    run_dir = Path(out_dir)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run directory '{run_dir}' is not empty; choose another --out")
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the log file gets the whole story
    try:
        return _run(config, run_dir, panel, on_fold, started)
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous_level)


def _run(config, run_dir, panel, on_fold, started) -> RunResult:
    panel = panel if panel is not None else load_run_panel(config)
    if config.mode == "timing":
        panel, config = _timing_setup(config, panel)
    if config.task != "regression" and "loss" not in config.training.model_fields_set:
        # Record the task's default loss in config.yaml, as the Forecaster will use it.
        loss = "multi_task" if config.task == "trend" else "direction_ce"
        training = config.training.model_copy(update={"loss": loss})
        config = config.model_copy(update={"training": training})
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    logger.info("data: %r", panel)
    feature_set = compute_features(
        panel, config.features.names, cross_section=config.features.cross_section
    )
    labels = task_labels(
        panel,
        config.task,
        config.labels.kind,
        config.labels.horizons,
        flat_band=config.labels.flat_band,
        vol_window=config.labels.vol_window,
    )
    horizons = list(config.labels.horizons)
    signal = horizons.index(config.labels.signal_horizon or max(horizons))
    attention_profiles: list[np.ndarray | None] = []
    attention_counts: list[int] = []
    folds = _splitter(config).split(panel.dates, labels.horizon)
    device = str(resolve_device(config.training.device))
    logger.info("%d folds", len(folds))

    fold_records: list[dict[str, Any]] = []
    predictions = []
    for fold in folds:
        model = _fit_fold(config, panel, feature_set, fold, run_dir)
        test_dates = _dates(panel, fold.test.start, fold.test.end)
        frame = model.predict(panel, test_dates, feature_set=feature_set, device=device)
        frame["fold"] = fold.index
        rows_, cols_ = _rows_of(panel, frame["date"]), _cols_of(panel, frame["ticker"])
        for j, name in enumerate(labels.names):
            frame[f"true_{name}"] = labels.values[rows_, cols_, j]
        frame["label"] = labels.values[rows_, cols_, signal]  # the signal column's truth
        predictions.append(frame)
        _, weights = model.attention(panel, test_dates, feature_set=feature_set, device=device)
        attention_profiles.append(None if weights is None else average_by_lag(weights))
        attention_counts.append(0 if weights is None else len(weights))
        record = fold.to_dict() | {
            "epochs": len(model.history_),
            "best_epoch": model.best_epoch_,
            "best_score": model.best_score_,
            "monitor": config.training.monitor,
            "history": model.history_,
            "train": model.train_metrics_,
            "valid": {
                k: v for k, v in model.history_[model.best_epoch_].items() if k.startswith("val_")
            }
            if model.best_epoch_ >= 0
            else {},
            "test": (
                _time_series_forecast_metrics(frame)
                if config.mode == "timing"
                else _safe_forecast_metrics(frame)
            ),
            "checkpoint": f"checkpoints/fold_{fold.index:02d}.ckpt",
        }
        fold_records.append(record)
        logger.info(
            "fold %d: test %s..%s, test IC %s",
            fold.index,
            fold.test.start_date,
            fold.test.end_date,
            record["test"].get("ic"),
        )
        if on_fold is not None:
            on_fold(fold.index + 1, len(folds))

    full_predictions = pd.concat(predictions, ignore_index=True)
    base_columns = ["date", "ticker", "fold", "prediction", "label"]
    heads = [c for c in full_predictions.columns if c not in base_columns]
    predictions_frame = full_predictions[
        base_columns + (heads if config.task != "regression" else [])
    ]
    task_blocks = _task_blocks(config, labels, full_predictions)
    attention = attention_summary(attention_profiles, attention_counts)
    if attention is not None:
        plot_attention_heatmap(
            attention_profiles,
            run_dir / "attention.png",
            title=f"{config.name}: mean attention by lag (0 = most recent day)",
            fold_labels=[f"fold {f.index} ({f.test.start_date[:4]})" for f in folds],
            counts=attention_counts,
        )
    if config.mode == "timing":
        strategies = _timing_strategies(config, panel, predictions_frame)
        baselines = ("buy_and_hold",)
    else:
        strategies = _strategies(config, panel, folds, predictions_frame, labels.horizon)
        baselines = ("equal_weight", "benchmark")

    returns_frame = pd.concat(
        [
            pd.DataFrame({"date": s["returns"].index, "strategy": name, "return": s["returns"]})
            for name, s in strategies.items()
        ],
        ignore_index=True,
    )
    weights_frame = pd.concat(
        [s["weights"].assign(strategy=name) for name, s in strategies.items() if "weights" in s],
        ignore_index=True,
    )[["date", "ticker", "strategy", "weight"]]

    reference = strategies.get("benchmark", strategies.get("buy_and_hold", {})).get("returns")
    tried = config.configurations_tried  # set by alphaseq tune in best.yaml
    strategy_metrics = {
        name: s.get("metrics")
        or performance_metrics(s["returns"], benchmark=reference, turnover=s.get("turnover"))
        for name, s in strategies.items()
    }
    metrics = {
        "strategies": strategy_metrics,
        "significance": significance_report(
            {name: s["returns"] for name, s in strategies.items()},
            {name: strategies[name]["returns"] for name in baselines if name in strategies},
            n_trials=tried,
        ),
        **task_blocks,
        "attention": attention,
        "construction": {
            name: s["construction"] for name, s in strategies.items() if "construction" in s
        },
        "forecast": (
            _time_series_forecast_metrics(predictions_frame)
            if config.mode == "timing"
            else _safe_forecast_metrics(predictions_frame)
        ),
        "folds": [{k: v for k, v in r.items() if k not in ("history",)} for r in fold_records],
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
        },
        "run": {
            "name": config.name,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 2),
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
    predictions_frame.to_parquet(run_dir / "predictions.parquet", index=False)
    weights_frame.to_parquet(run_dir / "weights.parquet", index=False)
    returns_frame.to_parquet(run_dir / "returns.parquet", index=False)
    (run_dir / "folds.json").write_text(json.dumps(fold_records, indent=2, default=_json))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json))
    try:
        from alphaseq.report import build_report

        build_report(run_dir)
    except Exception as exc:  # the results are on disk; the report is only a view of them
        logger.warning("could not write report.html (run 'alphaseq report %s'): %s", run_dir, exc)
    logger.info("run written to %s in %.1fs", run_dir, time.perf_counter() - started)
    return RunResult(
        run_dir, metrics, predictions_frame, weights_frame, returns_frame, fold_records
    )


def _task_blocks(config, labels: TaskLabels, frame: pd.DataFrame) -> dict[str, Any]:
    """Per-horizon regression figures and, for classifiers, the classification report."""
    blocks: dict[str, Any] = {"task": config.task}
    horizons = list(config.labels.horizons)
    per_horizon: dict[str, Any] = {}
    for k, name in enumerate(labels.regression_names):
        figures = regression_block(frame[name], frame[f"true_{name}"])
        if labels.class_names:  # trend: the direction head's accuracy at this horizon
            cls = labels.class_names[k]
            figures["direction_accuracy"] = direction_accuracy(
                frame[f"{cls}_p1"], frame[f"true_{cls}"], threshold=0.5, realised_threshold=0.5
            )
        else:
            figures["direction_accuracy"] = direction_accuracy(frame[name], frame[f"true_{name}"])
        per_horizon[str(horizons[k])] = {"label": name, **figures}
    if per_horizon:
        blocks["horizons"] = per_horizon
    if config.task == "classification":
        names = ("DOWN", "UP") if labels.n_classes == 2 else ("DOWN", "FLAT", "UP")
        reports = {}
        for k, name in enumerate(labels.class_names):
            probs = frame[[f"{name}_p{c}" for c in range(labels.n_classes)]].to_numpy()
            truth = frame[f"true_{name}"].to_numpy()
            known = np.isfinite(truth)
            reports[str(horizons[k])] = classification_block(
                truth[known].astype(int),
                probs[known].argmax(axis=1),
                labels=tuple(range(labels.n_classes)),
                names=names,
            )
        blocks["classification"] = reports
    return blocks


def _timing_setup(config: ExperimentConfig, panel: Panel) -> tuple[Panel, ExperimentConfig]:
    """Timing trains on the one instrument's own history and monitors the loss (no
    cross-section to rank, so no IC)."""
    ticker = config.timing.ticker
    if ticker is None:
        if panel.n_tickers != 1:
            raise ConfigError(
                f"timing needs one instrument; {panel.name!r} has {panel.n_tickers} tickers: "
                f"set timing.ticker"
            )
    else:
        if ticker not in set(panel.tickers):
            raise ConfigError(f"timing.ticker {ticker!r} is not in {panel.name!r}")
        panel = panel.select_tickers([ticker])
    if config.features.cross_section is not None:
        raise ConfigError("features.cross_section makes no sense for one instrument: set null")
    if config.training.monitor != "loss":
        logger.info("timing: monitoring the validation loss (IC needs a cross-section)")
        training = config.training.model_copy(update={"monitor": "loss"})
        config = config.model_copy(update={"training": training})
    return panel, config


def _fit_fold(config, panel, feature_set, fold: Fold, run_dir: Path) -> Forecaster:
    model = _forecaster(config)
    valid = None if fold.valid is None else (fold.valid.start_date, fold.valid.end_date)
    model.fit(
        panel,
        train=(fold.train.start_date, fold.train.end_date),
        valid=valid,
        embargo=fold.embargo,
        feature_set=feature_set,
    )
    model.save(
        run_dir / "checkpoints" / f"fold_{fold.index:02d}.ckpt",
        metadata={
            "fold": fold.to_dict(),
            "data": config.data.model_dump(mode="json"),
            "run": config.name,
        },
    )
    return model


def _strategies(
    config, panel: Panel, folds, predictions: pd.DataFrame, horizon: int
) -> dict[str, dict]:
    """Weights and backtests of the model's top-k and the baselines over the test record."""
    first, last = folds[0].test.start, folds[-1].test.end
    rows = month_end_rows(panel.dates, start_row=first, end_row=last)
    rows = rows[rows < last]  # a rebalance on the last day would earn nothing
    if len(rows) == 0:
        raise DataError("the out-of-sample record is shorter than one month: nothing to trade")
    close = panel.close.astype(np.float64)
    tradable = np.isfinite(close[rows])
    k = config.portfolio.top_k or default_top_k(panel.n_tickers)

    scores = np.full((len(rows), panel.n_tickers), np.nan)
    wanted = pd.Series(np.arange(len(rows)), index=pd.DatetimeIndex(panel.dates[rows]))
    at_rebalance = predictions[predictions["date"].isin(wanted.index)]
    scores[wanted.loc[at_rebalance["date"]].to_numpy(), _cols_of(panel, at_rebalance["ticker"])] = (
        at_rebalance["prediction"].to_numpy()
    )
    scores[~tradable] = np.nan

    targets = {
        "model_topk": top_k_weights(scores, k),
        "equal_weight": np.where(tradable, 1.0, 0.0)
        / np.maximum(tradable.sum(axis=1, keepdims=True), 1),
        "momentum": top_k_weights(
            momentum_scores(
                close, rows, config.portfolio.momentum_lookback, config.portfolio.momentum_skip
            ),
            k,
        ),
    }
    out: dict[str, dict] = {}
    for name, weights in targets.items():
        result = backtest(close, rows, weights, cost_bps=config.portfolio.cost_bps, end_row=last)
        out[name] = _strategy_record(panel, rows, result, name) | {"k": k}
    extra = [*config.portfolio.constructors]
    if config.portfolio.hrp_baseline:
        extra.append(ConstructorConfig(name="hrp", type="hrp"))
    for spec in extra:
        out[spec.name] = _constructed(config, spec, panel, rows, last, scores, k, horizon)
    bench_prices = _benchmark_prices(config, panel)
    if bench_prices is not None:
        index = out["model_topk"]["returns"].index
        span = slice(rows[0], last + 1)
        returns = pd.Series(buy_and_hold(bench_prices[span]), index=index, name="benchmark")
        out["benchmark"] = {"returns": returns, "turnover": 0.0}
    else:
        logger.warning("no benchmark: the data has no index and data.benchmark is not set")
    order = [*STRATEGIES, *(spec.name for spec in extra)]
    return {name: out[name] for name in order if name in out}


def _strategy_record(panel: Panel, rows: np.ndarray, result, name: str) -> dict[str, Any]:
    """Returns, average turnover and the weights held after each rebalance of a backtest."""
    weights = result.weights_after
    held = np.nonzero(weights)
    return {
        "returns": pd.Series(
            result.returns, index=pd.DatetimeIndex(panel.dates[result.rows]), name=name
        ),
        # One rebalance's trading on average, the initial buy left out (None with one).
        "turnover": (None if not np.isfinite(result.average_turnover) else result.average_turnover),
        "weights": pd.DataFrame(
            {
                "date": panel.dates[rows][held[0]],
                "ticker": panel.tickers[held[1]],
                "weight": weights[held],
            }
        ),
    }


def _constructed(config, spec, panel: Panel, rows, last, scores, k, horizon) -> dict[str, Any]:
    """Backtest one configured constructor under the portfolio constraints, sequentially
    (each rebalance sees the weights the previous one drifted to)."""
    p = config.portfolio
    close = panel.close.astype(np.float64)
    baseline = spec.type == "hrp" and spec.name == "hrp" and p.hrp_baseline
    constraints = PortfolioConstraints(
        top_k=k if spec.type == "topk" else None,
        max_weight=p.max_weight,
        max_turnover=None if baseline else p.max_turnover,
        fully_invested=p.fully_invested,
    )
    common = {"constraints": constraints, "name": spec.name}
    if spec.type == "topk":
        constructor = TopK(k, weighting=spec.weighting, **common)
    elif spec.type == "tilt":
        constructor = Tilt(base=spec.base, strength=spec.strength, lookback=spec.lookback, **common)
    elif spec.type == "mean_variance":
        constructor = MeanVariance(
            risk_aversion=spec.risk_aversion,
            lookback=spec.lookback,
            cost_bps=p.cost_bps,
            horizon=horizon,
            **common,
        )
    elif spec.type == "hrp":
        constructor = HRP(lookback=spec.lookback, **common)
    else:
        constructor = EqualWeight(**common)
    policy = make_policy(constructor, close, scores, history_days=spec.lookback)
    result = backtest(close, rows, policy, cost_bps=p.cost_bps, end_row=last)
    tradable_rows = np.isfinite(close[rows])
    violations = [
        f"{_day(panel.dates[row])}: {message}"
        for r, row in enumerate(rows)
        for message in constraints.check(
            result.weights_after[r], result.weights_before[r], tradable_rows[r]
        )
    ]
    if violations:  # constructors project onto the constraints: a violation is a bug
        raise RuntimeError(f"strategy {spec.name!r} broke its constraints: {violations[:3]}")
    return _strategy_record(panel, rows, result, spec.name) | {
        "construction": {
            "type": spec.type,
            "fallbacks": policy.constructor.n_failures,
            "constraints": {
                "top_k": constraints.top_k,
                "max_weight": constraints.max_weight,
                "max_turnover": constraints.max_turnover,
                "fully_invested": constraints.fully_invested,
            },
            "rebalances_checked": len(rows),
            "violations": 0,
        },
    }


def _timing_strategies(config, panel: Panel, predictions: pd.DataFrame) -> dict[str, dict]:
    """The model's long/flat (or long/short) timing of one instrument against buy-and-hold."""
    ticker = predictions["ticker"].iloc[0]
    signal = predictions.set_index("date")["prediction"].sort_index()
    # A classifier's prediction is already P(up) - P(down); a trend score is in (-1, 1).
    kind = "regression" if config.task == "regression" else "classification"
    positions = pd.Series(
        timing_positions(
            signal.to_numpy(),
            mode=config.timing.mode,
            kind=kind,
            cap=config.timing.cap,
            threshold=config.timing.threshold,
        ),
        index=signal.index,
    )
    column = panel.tickers.tolist().index(ticker)
    prices = pd.Series(
        panel.close[:, column].astype(np.float64), index=pd.DatetimeIndex(panel.dates)
    ).reindex(signal.index)
    result = timing_backtest(prices, positions, cost_bps=config.portfolio.cost_bps)
    weights = pd.DataFrame(
        {"date": positions.index, "ticker": ticker, "weight": positions.to_numpy()}
    )
    return {
        "model_timing": {
            "returns": result["returns"],
            "metrics": result["metrics"],
            "weights": weights,
        },
        "buy_and_hold": {
            "returns": result["buy_and_hold"]["returns"],
            "metrics": result["buy_and_hold"]["metrics"],
        },
    }


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


def _benchmark_prices(config, panel: Panel) -> np.ndarray | None:
    if panel.benchmark is not None:
        return panel.benchmark.astype(np.float64)
    return None


def _safe_forecast_metrics(frame: pd.DataFrame) -> dict[str, Any]:
    known = frame.dropna(subset=["label"]) if "label" in frame else frame.iloc[0:0]
    if len(known) == 0:
        return {"n_predictions": 0}
    return forecast_metrics(known["prediction"], known["label"], known["date"])


def _dates(panel: Panel, start: int, end: int) -> list[str]:
    return [_day(d) for d in panel.dates[start : end + 1]]


def _rows_of(panel: Panel, dates: pd.Series) -> np.ndarray:
    return np.searchsorted(panel.dates, pd.DatetimeIndex(dates).to_numpy("datetime64[ns]"))


def _cols_of(panel: Panel, tickers: pd.Series) -> np.ndarray:
    position = {t: k for k, t in enumerate(panel.tickers)}
    return np.array([position[t] for t in tickers], dtype=np.int64)


def _day(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="D"))


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)[:10]
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
