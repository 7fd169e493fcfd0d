"""Build an experiment's pieces from its config: panel, splitter, forecaster, per-fold fit.

``alphaseq run`` and ``alphaseq tune`` both build through these functions, so that a
fold is trained the same way whichever command asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaseq._logging import logger
from alphaseq.backtest.engine import month_end_rows
from alphaseq.config import ExperimentConfig, resolve_config
from alphaseq.data import Panel, load_panel
from alphaseq.data.universe import (
    membership_on_rows,
    restrict_tickers,
    select_members,
    universe_table,
)
from alphaseq.ensemble import EnsembleForecaster
from alphaseq.errors import ConfigError, DataError
from alphaseq.features import FeatureSet, compute_features
from alphaseq.forecaster import Forecaster, Signal, TaskLabels
from alphaseq.tabular import TABULAR_MODELS, TabularForecaster
from alphaseq.validation import FixedSplit, Fold, WalkForwardSplit

__all__ = [
    "ExperimentData",
    "check_universe",
    "fit_fold",
    "load_run_panel",
    "make_forecaster",
    "make_splitter",
    "prepare",
    "resolve_config",
    "run_universe_table",
    "timing_setup",
    "universe_selection",
]


def load_run_panel(config: ExperimentConfig, source: str | None = None) -> Panel:
    """The panel of an experiment: its data source (or ``source``), cut at ``data.end``."""
    data = config.data
    panel = load_panel(
        source or data.source,
        min_history=data.min_history,
        benchmark=data.benchmark,
        date_format=data.date_format,
        timezone=data.timezone,
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
    if data.tickers is not None:
        panel = restrict_tickers(panel, data.tickers)
    if data.universe is not None and panel.fields.get("volume") is None:
        raise DataError(
            f"data.universe ranks tickers by dollar volume, but {panel.name!r} has no volume "
            "column; use data.tickers for a fixed list"
        )
    if data.exclude_stale:
        panel = _exclude_stale(panel)
    # Only the end is cut: history before data.start still warms up the features (a
    # 252-day return needs a year of prices); the folds start at data.start.
    if data.end:
        panel = panel.slice_dates(None, data.end)
    if panel.n_dates == 0 or (
        data.start and panel.dates[-1] < np.datetime64(pd.Timestamp(data.start), "ns")
    ):
        raise DataError(f"no date of {panel.name!r} falls in {data.start}..{data.end}")
    return panel


def universe_selection(config: ExperimentConfig, panel: Panel, rows) -> np.ndarray | None:
    """``data.universe`` chosen on each of ``rows`` from data up to that row, (R, N) bool;
    None without one."""
    spec = config.data.universe
    if spec is None:
        return None
    return select_members(
        panel.close,
        panel.fields["volume"],
        np.asarray(rows, dtype=np.int64),
        panel.tickers,
        top_n=spec.top_n,
        window=spec.window,
        min_price=spec.min_price,
        min_coverage=spec.min_coverage,
    )


def run_universe_table(
    config: ExperimentConfig, panel: Panel, dates: pd.Series
) -> pd.DataFrame | None:
    """``universe.parquet``: the members chosen at each month end of ``dates``' span
    (``date, ticker, rank, dollar_volume``), or None without ``data.universe``."""
    if config.data.universe is None or not len(dates):
        return None
    first, last = pd.DatetimeIndex(panel.dates).get_indexer([dates.min(), dates.max()])
    rows = month_end_rows(panel.dates, first, last)
    members = universe_selection(config, panel, rows)
    return universe_table(panel, rows, members, config.data.universe.window)


def _exclude_stale(panel: Panel) -> Panel:
    """The panel without the tickers :func:`~alphaseq.data.checks.stale_tickers` flags,
    recorded as a repair (the flag reads the whole history: a hindsight choice)."""
    from alphaseq.data import Repair
    from alphaseq.data.checks import STALE_RUN, stale_tickers

    stale = [s["ticker"] for s in stale_tickers(panel)]
    if not stale:
        return panel
    keep = panel.tickers[~np.isin(panel.tickers, stale)]
    if not len(keep):
        raise DataError(f"{panel.name}: every ticker stops trading for {STALE_RUN}+ days")
    detail = (
        f"{len(stale)} tickers that stop trading for {STALE_RUN}+ days excluded "
        f"(data.exclude_stale; e.g. {', '.join(stale[:3])})"
    )
    logger.warning("%s: %s", panel.name, detail)
    repair = Repair("stale_tickers", len(stale), detail)
    return panel.select_tickers(keep)._replace(repairs=(*panel.repairs, repair))


def timing_setup(config: ExperimentConfig, panel: Panel) -> tuple[Panel, ExperimentConfig]:
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


def check_universe(config: ExperimentConfig, panel: Panel) -> None:
    """Refuse a cross-sectional run whose universe makes its comparisons empty.

    With one ticker there is nothing to rank; with ``top_k`` at or above the number of
    tickers the model's top-k holds them all, so it is equal weight under another name
    and every comparison with the baselines reads as a tie.
    """
    n = panel.n_tickers
    if config.data.universe is not None:
        n = min(n, config.data.universe.top_n)
        if n < 2:
            raise ConfigError("data.universe.top_n must be at least 2 for a cross-sectional run")
    if n < 2:
        raise ConfigError(
            f"{panel.name} holds {n} ticker(s): a cross-sectional run ranks tickers "
            f"against each other and needs at least 2; to trade one instrument set "
            f"mode: timing"
        )
    top_k = config.portfolio.top_k
    if top_k is not None and top_k >= n:
        raise ConfigError(
            f"portfolio.top_k = {top_k} but the universe holds {n} tickers: the model's "
            f"top-k would hold every ticker, the same portfolio as equal weight; choose "
            f"top_k < {n} (e.g. {max(1, n // 5)}, a fifth of the universe)"
        )


def make_splitter(config: ExperimentConfig) -> WalkForwardSplit | FixedSplit:
    """The splitter of ``config.validation`` (folds start at ``data.start``)."""
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


def make_forecaster(config: ExperimentConfig) -> Forecaster:
    """An unfitted :class:`Forecaster` with the config's features, labels, model and loop
    (a :class:`~alphaseq.tabular.TabularForecaster` for ``lightgbm`` and ``ridge``, an
    :class:`~alphaseq.ensemble.EnsembleForecaster` with ``model.ensemble``)."""
    family = TabularForecaster if config.model.name in TABULAR_MODELS else Forecaster
    extra: dict = {}
    if config.model.ensemble is not None:
        family, extra = EnsembleForecaster, {"members": ensemble_members(config)}
    return family(
        **extra,
        model=config.model.name,
        model_params=dict(config.model.params),
        features=config.features.names,
        cross_section=config.features.cross_section,
        scaler=config.features.scaler,
        scaler_clip=config.features.clip,
        label=config.labels.kind,
        horizons=tuple(config.labels.horizons),
        flat_band=config.labels.flat_band,
        label_cross_section=config.labels.cross_section,
        label_excess=config.labels.excess,
        task=config.task,
        class_weights=config.labels.class_weights,
        signal_horizon=config.labels.signal_horizon,
        vol_window=config.labels.vol_window,
        lookback=config.windows.lookback,
        stride=config.windows.stride,
        trainer=config.training,
    )


def ensemble_members(config: ExperimentConfig) -> list[dict]:
    """``model.name`` and ``model.ensemble.members``, each with every seed, as
    :class:`~alphaseq.ensemble.EnsembleForecaster` member specs (model-major order)."""
    ensemble = config.model.ensemble
    if ensemble is None:
        return []
    seeds = ensemble.seeds or [config.training.seed]
    families = [(config.model.name, config.model.params)]
    families += [(m.name, m.params) for m in ensemble.members]
    return [
        {"model": name, "model_params": dict(params), "seed": int(seed)}
        for name, params in families
        for seed in seeds
    ]


@dataclass(frozen=True, eq=False)
class ExperimentData:
    """What every fold of one experiment shares, computed once.

    Attributes
    ----------
    config : ExperimentConfig
        The resolved config (timing set-up and task defaults applied).
    panel : Panel
        The prices (one instrument for timing).
    features : FeatureSet
        Causal features of the whole panel.
    labels : TaskLabels
        The task's labels of the whole panel.
    signal : Signal
        The head that drives early stopping, tuning and the portfolio.
    folds : list of Fold
        The walk-forward (or fixed) folds, purged for the labels' horizon.
    members : numpy.ndarray or None
        (T, N) membership of ``data.universe`` on every day: the selection of the latest
        month end on or before it (each from data up to that day); forecasts are kept
        for the members in force on their date.
    """

    config: ExperimentConfig
    panel: Panel
    features: FeatureSet
    labels: TaskLabels
    signal: Signal
    folds: list[Fold]
    members: np.ndarray | None = None


def prepare(config: ExperimentConfig, panel: Panel | None = None) -> ExperimentData:
    """Load (or take) the panel, compute features and labels once, and split the folds."""
    panel = panel if panel is not None else load_run_panel(config)
    if config.mode == "timing":
        if config.data.universe is not None:
            raise ConfigError("data.universe chooses tickers to rank: not for mode: timing")
        panel, config = timing_setup(config, panel)
    else:
        check_universe(config, panel)
    config = resolve_config(config)
    members = None
    ends = month_end_rows(panel.dates)
    chosen = universe_selection(config, panel, ends)
    if chosen is not None:
        members = membership_on_rows(chosen, ends, np.arange(panel.n_dates))
    features = compute_features(
        panel, config.features.names, cross_section=config.features.cross_section
    )
    labels = make_forecaster(config).task_labels(panel)
    signal = labels.signal(config.labels.signal_horizon)
    folds = make_splitter(config).split(panel.dates, labels.horizon)
    return ExperimentData(config, panel, features, labels, signal, folds, members)


def fit_fold(
    config: ExperimentConfig,
    panel: Panel,
    fold: Fold,
    *,
    features: FeatureSet | None = None,
    labels: TaskLabels | None = None,
    progress: bool | None = None,
) -> Forecaster:
    """Train one fold's forecaster on its purged training samples, early-stopping on its
    validation samples.

    Parameters
    ----------
    config : ExperimentConfig
        The resolved experiment.
    panel : Panel
        Prices; a panel cut at the validation end (tuning) gives the same rows.
    fold : Fold
        The fold; its purged sample ranges are used as they are.
    features, labels : optional
        Computed once on ``panel`` and shared across folds.
    progress : bool, optional
        Override ``training.progress``.
    """
    if progress is not None and progress != config.training.progress:
        training = config.training.model_copy(update={"progress": progress})
        config = config.model_copy(update={"training": training})
    model = make_forecaster(config)
    # The universe as known at the training start: a ticker that becomes liquid later
    # is not trained on in this fold.
    chosen = universe_selection(config, panel, [fold.train.start])
    return model.fit(
        panel,
        fold=fold,
        embargo=fold.embargo,
        feature_set=features,
        labels=labels,
        universe=None if chosen is None else chosen[0],
    )
