"""Hyper-parameter search with Optuna over the validation windows only.

A trial draws one configuration from the search space, then for every walk-forward fold
trains a model on the fold's training window, stops early on its validation window and
reads the validation figure (rank IC by default) at the restored epoch. The trial's value
is the mean over folds; each fold's figure is reported to Optuna, so that a pruner can
stop a poor configuration after its first folds.

**The test windows are never read.** Before a fold trains, the panel is cut so that it
ends at the fold's validation end, and features and labels are computed on that
truncated panel: whatever follows -- the fold's test window -- is simply not there.
This is the only code path of the objective; ``tests/test_tuning.py`` proves it by
scrambling every price after a validation end and checking that the figures up to it
stay bit for bit the same.

Studies live in any SQLAlchemy database Optuna supports: SQLite by default
(``{out_dir}/study.db``), PostgreSQL or MySQL to let many worker processes on many
machines share one study. Running :func:`tune` again with the same storage and study
name resumes the study. Workers send a heartbeat; the trial of a worker that died is
marked FAIL once its heartbeat is older than the grace period, and the study goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import sqlalchemy.exc
import yaml

from alphaseq._logging import logger
from alphaseq.config import ExperimentConfig, parse_config
from alphaseq.data import Panel
from alphaseq.errors import AlphaseqError, ConfigError
from alphaseq.experiment import (
    check_universe,
    fit_fold,
    load_run_panel,
    make_forecaster,
    make_splitter,
    resolve_config,
    timing_setup,
)
from alphaseq.features import FeatureSet, compute_features
from alphaseq.forecaster import TaskLabels
from alphaseq.models import build_model
from alphaseq.tuning.sampler import TrialSeededSampler
from alphaseq.tuning.space import (
    ParamSpec,
    apply_params,
    check_space,
    load_search_space,
    space_for_model,
)
from alphaseq.validation import Fold

__all__ = ["METRICS", "TuningResult", "ValidationObjective", "make_pruner", "tune"]

#: Objective metrics: the validation figure each one reads from a fold's training history.
#: Every one is maximised (``loss`` is the negated validation loss).
METRICS = {"rank_ic": "val_rank_ic", "ic": "val_ic", "sharpe": "val_sharpe", "loss": "val_loss"}

#: A trial whose sampled configuration the model refuses (e.g. attention heads that do
#: not divide the hidden size) is pruned with this user attribute holding the reason.
INVALID_ATTR = "invalid"
#: Host and process id of the worker that ran a trial.
WORKER_ATTR = "worker"


class ValidationObjective:
    """Optuna objective: the mean validation figure of a configuration over the folds.

    Parameters
    ----------
    config_values : dict
        The base experiment (an unvalidated config dict, as read from YAML).
    space : mapping of str to ParamSpec
        The tuned parameters (see :mod:`alphaseq.tuning.space`).
    panel : Panel, optional
        The prices; default: the base config's data source (loaded once).
    metric : {"rank_ic", "ic", "sharpe", "loss"}, default "rank_ic"
        The validation figure at the best (restored) epoch of each fold: rank IC, IC,
        the Sharpe ratio of the top-quintile portfolio, or the negated loss (the only
        one for ``mode: timing``, which has no cross-section).
    source : str
        Where ``config_values`` came from, for error messages.

    Notes
    -----
    Features are cached per fold (they depend on the fold's truncated panel and the
    feature settings only, not on the model); a change of feature settings clears the
    cache.
    """

    def __init__(
        self,
        config_values: Mapping[str, Any],
        space: Mapping[str, ParamSpec],
        *,
        panel: Panel | None = None,
        metric: str = "rank_ic",
        source: str = "config",
    ) -> None:
        if metric not in METRICS:
            raise ConfigError(f"unknown tuning metric {metric!r}; allowed: {list(METRICS)}")
        self.config_values = dict(config_values)
        self.space = dict(space)
        self.metric = metric
        self.source = source
        self.base = parse_config(self.config_values, source=source)
        if self.base.mode == "timing" and metric != "loss":
            raise ConfigError(
                f"tuning metric {metric!r} needs a cross-section of tickers; timing trains on "
                f"one instrument: use metric 'loss'"
            )
        self.panel = panel if panel is not None else load_run_panel(self.base)
        if self.base.mode == "timing":
            timing_setup(self.base, self.panel)  # a wrong timing.ticker: say so now
        else:
            check_universe(self.base, self.panel)  # one ticker, top_k >= the universe
        self._cache_key: tuple | None = None
        self._cache: dict[str, tuple[FeatureSet, TaskLabels]] = {}

    # ------------------------------------------------------------------ configs
    def config_for(self, params: Mapping[str, Any]) -> ExperimentConfig:
        """The validated experiment with ``params`` (dotted keys) applied to the base.

        Raises
        ------
        ConfigError
            When the config or the model refuses the combination.
        """
        config = parse_config(apply_params(self.config_values, params), source=self.source)
        model = config.model
        # The model checks constraints between its parameters (heads dividing the width)
        # only when it is built: build a throw-away one now rather than fail mid-fold.
        build_model(model.name, 1, **dict(model.params))
        return config

    def folds(self, config: ExperimentConfig) -> list[Fold]:
        """The walk-forward folds of ``config`` (dates only: no price is read)."""
        # TaskLabels.horizon is the longest label horizon, for every task.
        folds = make_splitter(config).split(self.panel.dates, max(config.labels.horizons))
        missing = [fold.index for fold in folds if fold.valid is None]
        if missing:
            raise ConfigError(
                "tuning needs a validation window in every fold (folds without one: "
                f"{missing}); set validation.valid_months > 0"
            )
        return folds

    # --------------------------------------------------------------- evaluation
    def __call__(self, trial: optuna.Trial) -> float:
        """Draw a configuration, evaluate it fold by fold and return the mean figure.

        A combination the config or model refuses is pruned (user attribute
        ``invalid``); a NaN mean (a fold without a figure) makes Optuna fail the trial.
        """
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
        params = {key: spec.suggest(trial) for key, spec in self.space.items()}
        try:
            config = self.config_for(params)
        except ConfigError as exc:
            trial.set_user_attr(INVALID_ATTR, str(exc))
            raise optuna.TrialPruned(f"invalid configuration: {exc}") from None
        values = self.fold_values(config, trial)
        return float(np.mean(values))

    def fold_values(
        self, config: ExperimentConfig, trial: optuna.Trial | None = None
    ) -> list[float]:
        """The validation figure of every fold, reported to ``trial`` as they come.

        Raises
        ------
        optuna.TrialPruned
            When the trial's pruner stops it after a fold.
        """
        values = []
        for fold in self.folds(config):
            value = self.fold_value(config, fold)
            values.append(value)
            logger.info("fold %d: validation %s %.6g", fold.index, self.metric, value)
            if trial is not None and math.isfinite(value):
                trial.report(value, step=fold.index)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {fold.index}")
        return values

    def fold_value(self, config: ExperimentConfig, fold: Fold) -> float:
        """Train on the fold's training window, early-stop on its validation window, and
        return the validation figure at the restored epoch (NaN when there is none).

        The model gets the panel cut at the validation end: the test window's prices do
        not exist for it.
        """
        seen = self.panel.slice_dates(None, fold.valid.end_date)
        if config.mode == "timing":
            seen, config = timing_setup(config, seen)
        config = resolve_config(config)
        features, labels = self._inputs(config, seen, fold)
        # The very fit alphaseq run makes (same purged ranges, same signal head).
        model = fit_fold(config, seen, fold, features=features, labels=labels, progress=False)
        if model.best_epoch_ < 0:
            return float("nan")
        value = float(model.history_[model.best_epoch_].get(METRICS[self.metric], float("nan")))
        return -value if self.metric == "loss" else value

    def _inputs(
        self, config: ExperimentConfig, seen: Panel, fold: Fold
    ) -> tuple[FeatureSet, TaskLabels]:
        """Features and labels of the fold's truncated panel, computed once per fold."""
        key = (
            tuple(config.features.names or ()),
            config.features.cross_section,
            tuple(seen.tickers),
            config.task,
            config.labels.model_dump_json(),
        )
        if key != self._cache_key:
            self._cache_key, self._cache = key, {}
        if fold.valid.end_date not in self._cache:
            features = compute_features(
                seen, config.features.names, cross_section=config.features.cross_section
            )
            labels = make_forecaster(config).task_labels(seen)
            self._cache[fold.valid.end_date] = (features, labels)
        return self._cache[fold.valid.end_date]


@dataclass
class TuningResult:
    """What :func:`tune` did; the same facts as ``tuning.json``.

    Attributes
    ----------
    study_name, storage : str
        The study and its storage URL (password hidden).
    n_trials : int
        Configurations evaluated in the whole study (complete + pruned + failed; invalid
        combinations that were never trained are left out): the number of trials the
        deflated Sharpe ratio must account for.
    n_complete, n_pruned, n_failed, n_invalid, n_running : int
        Trials by outcome (running: started by a worker and not finished yet).
    n_configurations : int
        Distinct parameter sets among the evaluated trials: what the best run's
        deflated Sharpe ratio is corrected for (a repeated configuration is no new try).
    best_value : float or None
        The best mean validation figure.
    best_params : dict
        The best trial's parameters (dotted keys).
    best_config : Path or None
        ``best.yaml``: the base config with the best parameters applied.
    out_dir : Path
    """

    study_name: str
    storage: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_invalid: int
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None
    out_dir: Path
    n_running: int = 0
    n_configurations: int = 0
    study: optuna.Study | None = field(default=None, repr=False)


def make_pruner(pruner: str | optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """``"median"``, ``"halving"`` (successive halving), ``"none"``, or a pruner instance."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        # Folds are the steps: compare a trial's fold k with earlier trials' fold k.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {pruner!r}; allowed: ['median', 'halving', 'none']")


def tune(
    config_values: Mapping[str, Any],
    *,
    n_trials: int | None,
    out_dir: str | Path,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    space: str | Path | Mapping[str, Any] | None = None,
    pruner: str | optuna.pruners.BasePruner = "median",
    seed: int | None = 0,
    progress: bool | Literal["lines"] = True,
    metric: str = "rank_ic",
    panel: Panel | None = None,
    heartbeat_interval: int = 60,
    grace_period: int | None = None,
    source: str = "config",
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
) -> TuningResult:
    """Search hyper-parameters on the validation windows and write the study's results.

    Parameters
    ----------
    config_values : dict
        The base experiment (a config dict as read from YAML, before validation).
    n_trials : int or None
        Trials this call runs (added to those already in the study); None: until
        ``timeout``.
    out_dir : str or Path
        Where ``best.yaml``, ``trials.parquet``, ``tuning.json`` (and the default SQLite
        study) are written; created when absent.
    timeout : float, optional
        Stop starting new trials after this many seconds.
    storage : str, optional
        SQLAlchemy URL of the study database, e.g.
        ``postgresql://user:password@host/db``; default ``sqlite:///{out_dir}/study.db``.
        Every worker given the same URL and study name shares the study.
    study_name : str, optional
        Default: ``"{config name}-{model name}"``. An existing study is resumed.
    space : path, mapping or None
        Search space (see :mod:`alphaseq.tuning.space`); default: the packaged
        ``search_space.yaml``. The entry of the config's model is used.
    pruner : {"median", "halving", "none"} or optuna pruner, default "median"
        Stops poor trials after a fold (the folds are the pruning steps).
    seed : int or None, default 0
        Base seed of the TPE sampler; each trial's draws are seeded from it and the
        trial's number (see :class:`~alphaseq.tuning.sampler.TrialSeededSampler`), so
        workers sharing a study never repeat each other's draws and a resumed study
        draws new configurations. The same seed gives every worker the same settings.
    progress : bool or "lines", default True
        Show trials done and the best value so far (a rich bar in a terminal, a line per
        trial otherwise; ``"lines"``: a line per trial everywhere).
    metric : {"rank_ic", "ic", "sharpe", "loss"}, default "rank_ic"
        The validation figure maximised (``loss``: its negative).
    panel : Panel, optional
        Prices to use instead of loading the config's data source.
    heartbeat_interval : int, default 60
        Seconds between a running trial's heartbeats.
    grace_period : int, optional
        Seconds without heartbeat after which a running trial counts as dead and is
        marked FAIL (default: twice the interval).
    source : str
        Where ``config_values`` came from, for error messages.
    callbacks : list of callable, optional
        Extra Optuna callbacks ``callback(study, frozen_trial)`` after each trial.

    Returns
    -------
    TuningResult

    Raises
    ------
    ConfigError
        For a bad config, search space, pruner, metric or storage URL.
    """
    values = dict(config_values)
    base = parse_config(values, source=source)
    model_space = space_for_model(load_search_space(space), base.model.name)
    check_space(model_space, values, source="search space")
    if n_trials is not None and n_trials < 0:
        raise ConfigError(f"n_trials must be >= 0, got {n_trials}")
    objective = ValidationObjective(values, model_space, panel=panel, metric=metric, source=source)
    objective.folds(base)  # no validation window: say so before any trial starts
    chosen_pruner = make_pruner(pruner)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study_name or f"{base.name}-{base.model.name}"
    rdb = _storage(url, heartbeat_interval, grace_period or 2 * heartbeat_interval)
    started = time.perf_counter()
    with _quiet_optuna():  # the progress bar and tuning.json tell the story
        study = optuna.create_study(
            storage=rdb,
            study_name=name,
            direction="maximize",
            load_if_exists=True,
            pruner=chosen_pruner,
        )
        _fail_stale(study)
        _check_resumable(study, model_space, _hide_password(url))
        existing = len(study.get_trials(deepcopy=False))
        # Seeded per trial number: parallel workers and a resumed study draw anew.
        study.sampler = TrialSeededSampler(seed)
        logger.info("study %r in %s: %d trial(s) so far", name, _hide_password(url), existing)
        with _Progress(progress, n_trials, name) as display:
            study.optimize(
                objective,
                n_trials=n_trials,
                timeout=timeout,
                catch=(AlphaseqError,),
                callbacks=[display.update, *(callbacks or [])],
            )
        _fail_stale(study)
    result = _write_results(study, base, values, out, url)
    logger.info(
        "tuning: %d trial(s) in the study, best %s in %.1fs",
        result.n_trials,
        result.best_value,
        time.perf_counter() - started,
    )
    return result


# ------------------------------------------------------------------------------ helpers
def _storage(url: str, interval: int, grace: int) -> optuna.storages.RDBStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local processes may share one SQLite file: wait for its lock.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        # Long trials leave connections idle: check them before use.
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    # Workers starting together on a fresh database race to create Optuna's tables: the
    # loser gets an integrity error, and succeeds on a second try once they exist.
    attempts = 4
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=interval, grace_period=grace, **kwargs
                )
        except ImportError as exc:
            raise ConfigError(
                f"storage {_hide_password(url)!r} needs a database driver that is not "
                f"installed ({exc}); for PostgreSQL: pip install 'psycopg[binary]'"
            ) from None
        except sqlalchemy.exc.ArgumentError as exc:  # not a URL, or an unknown dialect
            raise ConfigError(f"bad study storage URL {_hide_password(url)!r}: {exc}") from None
        except Exception as exc:  # SQLAlchemy's connection and integrity errors
            if attempt == attempts - 1:
                raise ConfigError(
                    f"cannot open the study storage {_hide_password(url)!r}: {exc}"
                ) from None
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off (warnings stay), restored afterwards."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def _fail_stale(study: optuna.Study) -> None:
    """Mark FAIL the running trials whose worker stopped sending heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


#: Columns of ``trials.parquet`` before the per-parameter and per-fold ones.
TRIAL_COLUMNS = ("number", "state", "value")
#: Columns after them.
TRIAL_TAIL_COLUMNS = ("duration_s", "datetime_start", "datetime_complete", "worker", "invalid")


def trials_frame(trials: list[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """One row per trial, one column per parameter and per fold (``trials.parquet``).

    Parameters are ``params_<dotted key>`` (Optuna's ``trials_dataframe`` prefix), empty
    where a trial did not sample that key (another model family); each fold's validation
    figure is ``fold_<index>``. ``value`` is the mean over the folds of a complete trial.
    """
    params = sorted({key for t in trials for key in t.params})
    folds = sorted({step for t in trials for step in t.intermediate_values})
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            # Optuna gives a pruned trial its last fold's figure: not a mean, left out.
            "value": t.value if t.state == optuna.trial.TrialState.COMPLETE else None,
            **{f"params_{key}": t.params.get(key) for key in params},
            **{f"fold_{step}": t.intermediate_values.get(step) for step in folds},
            "duration_s": None if t.duration is None else t.duration.total_seconds(),
            "datetime_start": t.datetime_start,
            "datetime_complete": t.datetime_complete,
            "worker": t.user_attrs.get(WORKER_ATTR),
            "invalid": t.user_attrs.get(INVALID_ATTR),
        }
        for t in trials
    ]
    columns = [
        *TRIAL_COLUMNS,
        *(f"params_{key}" for key in params),
        *(f"fold_{step}" for step in folds),
        *TRIAL_TAIL_COLUMNS,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for key in params:
        column = frame[f"params_{key}"]
        kinds = {type(v) for v in column if v is not None}
        if len(kinds) > 1 and not kinds <= {int, float}:
            # A categorical mixing text and numbers: Parquet needs one type per column.
            frame[f"params_{key}"] = column.map(lambda v: None if v is None else str(v))
    return frame


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: nothing to hide
        return url


def _check_resumable(study: optuna.Study, space: Mapping[str, Any], url: str) -> None:
    """Refuse to continue a study whose trials drew a parameter in a way the search space
    no longer allows (Optuna would fail inside every new trial)."""
    for trial in study.get_trials(deepcopy=False):
        for key, old in trial.distributions.items():
            if key not in space:
                continue
            new = space[key].distribution()
            try:
                optuna.distributions.check_distribution_compatibility(old, new)
            except ValueError:
                raise ConfigError(
                    f"study {study.study_name!r} in {url} drew {key!r} from {old} (trial "
                    f"{trial.number}); the search space now gives {new}: keep the study's "
                    f"space, or start a new study (--study NAME)"
                ) from None


def _count(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    State = optuna.trial.TrialState
    invalid = [t for t in trials if INVALID_ATTR in t.user_attrs]
    valid = [t for t in trials if INVALID_ATTR not in t.user_attrs]
    counts = {
        "n_complete": sum(t.state == State.COMPLETE for t in valid),
        "n_pruned": sum(t.state == State.PRUNED for t in valid),
        "n_failed": sum(t.state == State.FAIL for t in valid),
        "n_invalid": len(invalid),
        "n_running": sum(t.state == State.RUNNING for t in trials),
    }
    counts["n_trials"] = counts["n_complete"] + counts["n_pruned"] + counts["n_failed"]
    evaluated = [t for t in valid if t.state in (State.COMPLETE, State.PRUNED, State.FAIL)]
    counts["n_configurations"] = len({json.dumps(t.params, sort_keys=True) for t in evaluated})
    return counts


def _write_results(
    study: optuna.Study,
    base: ExperimentConfig,
    values: dict[str, Any],
    out: Path,
    url: str,
) -> TuningResult:
    trials = study.get_trials(deepcopy=False)
    counts = _count(trials)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    best_path = None
    if best is not None:
        config = parse_config(apply_params(values, best.params), source="best trial")
        # The run of the best configuration deflates its Sharpe ratio by the distinct
        # configurations evaluated (a repeated draw is no new try).
        tried = max(counts["n_configurations"], 1)
        config = config.model_copy(update={"configurations_tried": tried})
        header = (
            f"# Best configuration of study {study.study_name!r}: trial {best.number}, mean "
            f"validation value {best.value:.6g} over {counts['n_trials']} trial(s), "
            f"{counts['n_configurations']} distinct configuration(s).\n"
            f"# Parameters: {json.dumps(best.params)}\n"
        )
        best_path = out / "best.yaml"
        best_path.write_text(
            header + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        )
    else:
        logger.warning("no trial of study %r completed: no best.yaml", study.study_name)

    frame = trials_frame(sorted(trials, key=lambda t: t.number))
    frame.to_parquet(out / "trials.parquet", index=False)

    shown_url = _hide_password(url)
    summary = {
        **{k: counts[k] for k in ("n_trials", "n_complete", "n_pruned", "n_failed")},
        "n_invalid": counts["n_invalid"],
        "n_running": counts["n_running"],
        "n_configurations": counts["n_configurations"],
        "best_value": None if best is None else best.value,
        "best_params": {} if best is None else best.params,
        "best_trial": None if best is None else best.number,
        "study_name": study.study_name,
        "storage": shown_url,
        "direction": "maximize",
    }
    (out / "tuning.json").write_text(json.dumps(summary, indent=2))
    return TuningResult(
        study_name=study.study_name,
        storage=shown_url,
        n_trials=counts["n_trials"],
        n_complete=counts["n_complete"],
        n_pruned=counts["n_pruned"],
        n_failed=counts["n_failed"],
        n_invalid=counts["n_invalid"],
        n_running=counts["n_running"],
        n_configurations=counts["n_configurations"],
        best_value=summary["best_value"],
        best_params=dict(summary["best_params"]),
        best_config=best_path,
        out_dir=out,
        study=study,
    )


class _Progress:
    """Trials done and best value so far, on a rich progress bar in a terminal, one line
    per trial in a log (number, state, value, parameters), or nothing."""

    def __init__(self, enabled: bool | str, total: int | None, name: str) -> None:
        from rich.console import Console

        self.enabled = enabled
        self.total = total
        self.name = name
        self._bar: Any = None
        self._task: Any = None
        self._console = Console(stderr=True)
        # "lines": one line per trial even in a terminal (workers sharing one terminal).
        self._lines = bool(enabled) and (enabled == "lines" or not self._console.is_terminal)

    def __enter__(self) -> _Progress:
        if self.enabled and not self._lines:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._bar.start()
            self._task = self._bar.add_task(f"{self.name}: trials", total=self.total)
        return self

    def update(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: one more trial finished."""
        if self._lines:
            value = "-" if trial.value is None else f"{trial.value:.4g}"
            self._console.print(
                f"{self.name}: trial {trial.number} {trial.state.name.lower()}, value "
                f"{value}, {json.dumps(trial.params)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            return
        if self._bar is None:
            return
        try:
            best = f"best {study.best_value:.4g}"
        except ValueError:  # no completed trial yet
            best = "no completed trial yet"
        self._bar.update(self._task, advance=1, description=f"{self.name}: {best}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
