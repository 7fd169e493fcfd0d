"""Optional experiment tracking: copy a finished run or tuning study into MLflow.

Tracking reads what a run directory (or a tuning output directory) already holds and
logs it after the fact, so a run never depends on a tracking server being up, and an
old run can be logged later with :func:`log_run`. MLflow is an optional extra
(``pip install 'alphaseq[mlflow]'``) and is imported only inside these functions.

What is logged for a run (:func:`log_run`):

* params: the resolved ``config.yaml`` flattened to dotted keys (``training.epochs``,
  ``model.params.hidden_size``); lists and other non-text values as JSON;
* per-fold metrics, ``step`` = fold index: ``fold/valid_ic``, ``fold/test_rank_ic``,
  ``fold/best_epoch``, ``fold/seconds``, ... (every number in the fold records);
* final metrics from ``metrics.json``: ``<strategy>/<figure>`` for every strategy
  (``model_topk/sharpe``, ``model_topk/ann_return``, ``.../ann_vol``,
  ``.../max_drawdown``, ``.../turnover``, ...), ``<strategy>/psr`` and ``/dsr``,
  ``forecast/<figure>`` (IC, rank IC, ICIR, ...) and ``run/seconds``;
* artifacts: report, metrics, config, fold records, run manifest and the
  predictions / returns / weights tables (not the model checkpoints);
* tags: ``alphaseq.version``, ``alphaseq.run_dir``, ``alphaseq.task``, ``alphaseq.mode``.

A tuning study (:func:`log_tuning`) becomes one parent run holding the search summary
and one nested run per trial.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import numbers
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphaseq import __version__
from alphaseq._safe import path_safe_name
from alphaseq.errors import AlphaseqError, ConfigError

if TYPE_CHECKING:  # mlflow is optional: imported inside the functions that need it
    from mlflow import MlflowClient

__all__ = [
    "TRACKERS",
    "TrackingError",
    "check_tracker",
    "flatten_params",
    "log_run",
    "log_tuning",
    "metric_key",
    "resolve_tracking_uri",
]

#: Experiment trackers ``--track`` accepts.
TRACKERS = ("mlflow",)

#: MLflow's limits (``mlflow.utils.validation``): longer param values are refused and a
#: batch request holds at most this many params / metrics.
MAX_PARAM_LENGTH = 6000
MAX_KEY_LENGTH = 250
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_TRUNCATED = "...[truncated]"

#: Files of a run directory copied as artifacts, when present.
RUN_ARTIFACTS = (
    "report.html",
    "metrics.json",
    "config.yaml",
    "folds.json",
    "run.json",
    "predictions.parquet",
    "returns.parquet",
    "weights.parquet",
)
TUNING_ARTIFACTS = ("tuning.json", "trials.parquet", "best.yaml")

#: Optuna trial state -> MLflow run status (the exact state is also a tag).
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}

_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")
_INSTALL_HINT = "pip install 'alphaseq[mlflow]'"


class TrackingError(AlphaseqError):
    """The tracking server or store refused or could not be reached."""


# ----------------------------------------------------------------------------- setup
def check_tracker(name: str) -> None:
    """Refuse an unknown tracker, or a known one whose package is not installed.

    Called before a run starts, so a typo or a missing extra does not cost a training.

    Raises
    ------
    ConfigError
        For a name outside :data:`TRACKERS`, or ``mlflow`` without the package.
    """
    if name not in TRACKERS:
        raise ConfigError(f"unknown tracker --track {name!r}; allowed: {list(TRACKERS)}")
    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(f"--track mlflow needs MLflow: {_INSTALL_HINT}")


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError(f"experiment tracking needs MLflow: {_INSTALL_HINT}") from None
    return mlflow


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI to log to.

    ``tracking_uri`` when given, else the ``MLFLOW_TRACKING_URI`` environment variable,
    else a SQLite database ``mlflow.db`` in the current directory (as an absolute
    ``sqlite:///`` URI). MLflow 3 refuses its old ``./mlruns`` file store unless told
    otherwise and made SQLite its own default; SQLite needs no server and works with
    MLflow 2 as well.
    """
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def _client(uri: str) -> MlflowClient:
    # A client, not mlflow.set_tracking_uri / start_run: no process-wide state changes,
    # so logging from a library call cannot redirect the caller's own MLflow runs.
    return _mlflow().MlflowClient(tracking_uri=uri)


def _experiment_id(client: MlflowClient, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        # MLflow would put a SQLite store's artifacts under ./mlruns of whatever the
        # current directory is; beside the database they stay together.
        db = Path(uri.removeprefix("sqlite:///"))
        location = (db.parent / "mlruns" / path_safe_name(name)).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


# ------------------------------------------------------------------------------ keys
def metric_key(key: str) -> str:
    """``key`` with every character MLflow refuses in a name replaced by ``_``.

    MLflow allows letters, digits, ``_ - . /`` and space, at most 250 characters, and no
    name that a path would normalise to another one (``a//b``, ``./a``, ``/a``).
    """
    text = _BAD_KEY_CHARS.sub("_", str(key))
    parts = [part for part in text.split("/") if part not in ("", ".", "..")]
    text = "/".join(parts)[:MAX_KEY_LENGTH]
    return text or "_"


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - len(_TRUNCATED)] + _TRUNCATED
    return text


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow params: dotted keys, text values.

    Parameters
    ----------
    values : mapping
        A config (or any nested mapping).
    prefix : str, default=""
        Put before every key (``"best_params."``).

    Returns
    -------
    dict of str to str
        ``{"training.epochs": "2", "features.names": '["ret_1", ...]', ...}``; text is
        kept as is, every other value (numbers, lists, None) as JSON; an empty mapping
        as ``{}``. Values over MLflow's 6000 characters end in ``...[truncated]``.
    """
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten_params(value, f"{name}.")
        else:
            flat[metric_key(name)] = _param_text(value)
    return flat


def _number(value: Any) -> float | None:
    """A finite number as float; None for text, bools, None and NaN/inf."""
    # numbers.Real: numpy's scalars too (a parquet column gives numpy.int64).
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _numbers(values: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The finite numbers of a flat mapping as ``{prefix + key: value}``."""
    out = {}
    for key, value in values.items():
        number = _number(value)
        if number is not None:
            out[metric_key(f"{prefix}{key}")] = number
    return out


# --------------------------------------------------------------------------- logging
class _Batch:
    """Logs one MLflow run's params, metrics and tags in as few requests as allowed."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for chunk in _chunks(items, _PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=chunk)

    def metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, step) for key, value in metrics.items()]
        for chunk in _chunks(items, _METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=chunk)

    def tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(key, str(value)) for key, value in tags.items() if value is not None]
        for chunk in _chunks(items, _PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=chunk)

    def artifacts(self, folder: Path, names: Iterable[str]) -> None:
        for name in names:
            if (folder / name).is_file():
                self.client.log_artifact(self.run_id, str(folder / name))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def _logging_to(uri: str, what: str, again: str) -> Iterator[None]:
    """Turn MLflow's own failures (server down, refused value) into one clear error."""
    try:
        yield
    except AlphaseqError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:400]
        raise TrackingError(
            f"could not log {what} to MLflow at {uri}: {type(exc).__name__}: {reason} "
            f"(the files on disk are intact: log them later with {again})"
        ) from exc


# ------------------------------------------------------------------------------- runs
def _fold_records(record: Any) -> list[dict[str, Any]]:
    """Every fold's record: ``folds.json``, else each ``folds/NN/fold.json``."""
    summary = record.run_dir / "folds.json"
    if summary.is_file():
        records = json.loads(summary.read_text())
        if isinstance(records, list):
            return [r for r in records if isinstance(r, dict)]
    return [fold.record for fold in record.read_folds()]


def _fold_metrics(fold: Mapping[str, Any]) -> dict[str, float]:
    """One fold record's numbers: ``fold/<block>_<figure>`` and ``fold/<figure>``."""
    metrics = _numbers(
        {k: fold.get(k) for k in ("best_epoch", "best_score", "epochs", "seconds")}, "fold/"
    )
    # The blocks' own prefixes (train_ic, val_ic) give way to one per block.
    for block, strip in (("train", "train_"), ("valid", "val_"), ("test", "")):
        values = fold.get(block)
        if isinstance(values, Mapping):
            named = {k.removeprefix(strip) if strip else k: v for k, v in values.items()}
            metrics |= _numbers(named, f"fold/{block}_")
    return metrics


def _final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics.json``'s headline figures as flat MLflow metric names."""
    out: dict[str, float] = {}
    for name, figures in (metrics.get("strategies") or {}).items():
        if isinstance(figures, Mapping):
            out |= _numbers(figures, f"{name}/")
    for name, figures in (metrics.get("significance") or {}).items():
        if isinstance(figures, Mapping):
            out |= _numbers({k: figures.get(k) for k in ("psr", "dsr")}, f"{name}/")
    forecast = metrics.get("forecast")
    if isinstance(forecast, Mapping):
        out |= _numbers(forecast, "forecast/")
    run = metrics.get("run")
    if isinstance(run, Mapping):
        out |= _numbers({k: run.get(k) for k in ("seconds", "training_seconds")}, "run/")
    return out


def log_run(
    run_dir: str | Path,
    *,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log a finished run directory to MLflow as one new MLflow run.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory (written by ``alphaseq run``; ``metrics.json`` present).
    experiment : str or None, default=None
        MLflow experiment, created when absent; default the config's ``name``.
    tracking_uri : str or None, default=None
        Where to log; default :func:`resolve_tracking_uri`.
    tags : mapping or None, default=None
        Extra tags, added to (and overriding) the ones listed in the module docstring.

    Returns
    -------
    str
        The MLflow run id.

    Raises
    ------
    ConfigError
        When MLflow is not installed.
    RunRecordError
        When ``run_dir`` is not a complete run directory.
    TrackingError
        When MLflow refuses the run or cannot be reached.
    """
    from alphaseq.experiment import RunRecord

    _mlflow()  # a missing extra answers before anything is read
    record = RunRecord.open(run_dir)
    metrics = record.read_metrics()  # refuses an unfinished run
    config = record.config_values()
    manifest = record.manifest()
    folds = _fold_records(record)
    folder = record.run_dir.resolve()
    name = experiment or str(config.get("name") or manifest.get("name") or "alphaseq")
    uri = resolve_tracking_uri(tracking_uri)
    run_info = metrics.get("run") if isinstance(metrics.get("run"), Mapping) else {}
    all_tags = {
        "alphaseq.version": manifest.get("alphaseq_version", __version__),
        "alphaseq.run_dir": str(folder),
        "alphaseq.task": metrics.get("task", config.get("task")),
        "alphaseq.mode": run_info.get("mode", config.get("mode")),
        "alphaseq.command": run_info.get("command", "run"),
        "alphaseq.forecast_digest": manifest.get("forecast_digest"),
        "alphaseq.data_fingerprint": manifest.get("data_fingerprint"),
        **(tags or {}),
    }
    with _logging_to(uri, f"run '{folder}'", f"alphaseq.tracking.log_run('{folder}')"):
        client = _client(uri)
        experiment_id = _experiment_id(client, uri, name)
        run = client.create_run(experiment_id, run_name=folder.name)
        batch = _Batch(client, run.info.run_id)
        try:
            batch.tags(all_tags)
            batch.params(flatten_params(config))
            for fold in folds:
                batch.metrics(_fold_metrics(fold), step=int(fold.get("index", 0)))
            batch.metrics(_final_metrics(metrics))
            batch.artifacts(folder, RUN_ARTIFACTS)
        except BaseException:
            client.set_terminated(run.info.run_id, status="FAILED")
            raise
        client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


# ----------------------------------------------------------------------------- tuning
def _millis(value: Any) -> int | None:
    """A trial's start or end time (pandas Timestamp, NaT or None) in epoch ms."""
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    return int(pd.Timestamp(value).timestamp() * 1000)


def _missing(value: Any) -> bool:
    """None or NaN (an empty cell of ``trials.parquet``)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _trial_params(row: Mapping[str, Any]) -> dict[str, str]:
    params = {}
    for column, value in row.items():
        if str(column).startswith("params_") and not _missing(value):
            if hasattr(value, "item"):  # numpy scalar -> Python
                value = value.item()
            if isinstance(value, float) and value.is_integer():
                # An integer parameter's column turns float where another model family
                # left it empty; 16 reads as the run's config does, not 16.0.
                value = int(value)
            params[metric_key(str(column).removeprefix("params_"))] = _param_text(value)
    return params


def _trial_folds(row: Mapping[str, Any]) -> dict[int, float]:
    folds = {}
    for column, value in row.items():
        suffix = str(column).removeprefix("fold_")
        if suffix != str(column) and suffix.isdigit():
            number = _number(value)
            if number is not None:
                folds[int(suffix)] = number
    return folds


def _tuning_name(out: Path, summary: Mapping[str, Any]) -> str:
    """The tuned config's ``name`` (from ``best.yaml``), else the study's name."""
    import yaml

    best = out / "best.yaml"
    if best.is_file():
        try:
            values = yaml.safe_load(best.read_text())
        except yaml.YAMLError:
            values = None
        if isinstance(values, dict) and values.get("name"):
            return str(values["name"])
    return str(summary.get("study_name") or "alphaseq-tuning")


def log_tuning(
    out_dir: str | Path,
    *,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Log a tuning study (``alphaseq tune`` output) as a parent run with nested trials.

    The parent's params are the search summary of ``tuning.json`` (``best_params.*``
    flattened), its metric ``best_value``, its artifacts ``tuning.json``,
    ``trials.parquet`` and ``best.yaml``. Each row of ``trials.parquet`` becomes a
    nested run (tag ``mlflow.parentRunId``) named ``trial N``: params = the sampled
    ``params_*`` columns (prefix removed, empty ones skipped), metric ``value`` (the mean
    validation figure, complete trials only), ``fold/value`` per fold with ``step`` = fold
    index, ``duration_s``; tags ``alphaseq.trial_state`` and ``alphaseq.trial_number``.

    Parameters
    ----------
    out_dir : str or Path
        The tuning output directory (``tuning.json`` and ``trials.parquet`` in it).
    experiment : str or None, default=None
        MLflow experiment; default the tuned config's ``name`` (from ``best.yaml``),
        else the study name.
    tracking_uri : str or None, default=None
        Where to log; default :func:`resolve_tracking_uri`.
    tags : mapping or None, default=None
        Extra tags for the parent run.

    Returns
    -------
    str
        The parent run's id.

    Raises
    ------
    ConfigError
        When MLflow is not installed.
    DataError
        When ``tuning.json`` or ``trials.parquet`` is missing or unreadable.
    TrackingError
        When MLflow refuses a run or cannot be reached.
    """
    import pandas as pd

    from alphaseq.errors import DataError

    _mlflow()
    out = Path(out_dir).resolve()
    try:
        summary = json.loads((out / "tuning.json").read_text())
        trials = pd.read_parquet(out / "trials.parquet")
    except (OSError, ValueError) as exc:
        raise DataError(
            f"'{out}' is not a tuning output directory (tuning.json and trials.parquet "
            f"written by alphaseq tune): {exc}"
        ) from None
    if not isinstance(summary, dict):
        raise DataError(f"'{out / 'tuning.json'}' does not hold a JSON object")
    name = experiment or _tuning_name(out, summary)
    uri = resolve_tracking_uri(tracking_uri)
    parent_tags = {
        "alphaseq.version": __version__,
        "alphaseq.tuning_dir": str(out),
        "alphaseq.command": "tune",
        "alphaseq.study": summary.get("study_name"),
        **(tags or {}),
    }
    with _logging_to(uri, f"study '{out}'", f"alphaseq.tracking.log_tuning('{out}')"):
        client = _client(uri)
        experiment_id = _experiment_id(client, uri, name)
        study = summary.get("study_name") or out.name
        parent = client.create_run(experiment_id, run_name=f"tune {study}")
        parent_id = parent.info.run_id
        try:
            batch = _Batch(client, parent_id)
            batch.tags(parent_tags)
            batch.params(flatten_params(summary))
            best = _number(summary.get("best_value"))
            batch.metrics({} if best is None else {"best_value": best})
            batch.artifacts(out, TUNING_ARTIFACTS)
            for row in trials.to_dict(orient="records"):
                _log_trial(client, experiment_id, parent_id, row)
        except BaseException:
            client.set_terminated(parent_id, status="FAILED")
            raise
        client.set_terminated(parent_id, status="FINISHED")
    return parent_id


def _log_trial(
    client: MlflowClient, experiment_id: str, parent_id: str, row: Mapping[str, Any]
) -> None:
    """One trial row as a nested run of ``parent_id``."""
    number = int(row["number"])
    state = str(row.get("state"))
    run = client.create_run(
        experiment_id,
        start_time=_millis(row.get("datetime_start")),
        # The tag MLflow's own nested runs carry: the UI draws the trial under the study.
        tags={"mlflow.parentRunId": parent_id},
        run_name=f"trial {number}",
    )
    batch = _Batch(client, run.info.run_id)
    invalid = row.get("invalid")
    batch.tags(
        {
            "alphaseq.trial_number": number,
            "alphaseq.trial_state": state,
            "alphaseq.worker": row.get("worker"),
            "alphaseq.invalid": None if _missing(invalid) else invalid,
        }
    )
    batch.params(_trial_params(row))
    final = {"value": row.get("value"), "duration_s": row.get("duration_s")}
    batch.metrics({k: v for k in final if (v := _number(final[k])) is not None})
    for step, value in sorted(_trial_folds(row).items()):
        batch.metrics({"fold/value": value}, step=step)
    client.set_terminated(
        run.info.run_id,
        status=_STATUS.get(state, "FINISHED"),
        end_time=_millis(row.get("datetime_complete")),
    )
