"""The run directory and its one reader/writer, :class:`RunRecord`.

Layout (schema version :data:`SCHEMA_VERSION`)::

    RUN_DIR/
      run.json              manifest: schema, digests, data fingerprint, folds, status
      config.yaml           the resolved experiment
      run.log               the whole log
      folds/NN/             one folder per finished fold, renamed into place when complete
        fold.json           windows, purged ranges, training history, figures, timing
        predictions.parquet every output head and its truth over the test window
        model.ckpt          the verified forecaster checkpoint
      predictions.parquet   stitched out-of-sample forecasts (date, ticker, fold, prediction, label)
      weights.parquet       weights after each rebalance, per strategy
      returns.parquet       net daily returns, per strategy
      universe.parquet      members chosen at each month end (with data.universe)
      folds.json            every fold's record, in order
      attention.png         mean attention by lag
      metrics.json          written last: its presence marks a complete run
      report.html           the self-contained report

Every file is written to a temporary name and renamed, and a fold's folder is built
under a temporary name and renamed as a whole, so nothing is ever half-written under
its final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from alphaseq import __version__
from alphaseq._atomic import (
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    fsync_dir,
)
from alphaseq._logging import logger
from alphaseq.config import ExperimentConfig, parse_config
from alphaseq.errors import AlphaseqError, ConfigError
from alphaseq.validation import Fold

__all__ = [
    "RETRAIN_FREE_KEYS",
    "SCHEMA_VERSION",
    "FoldResult",
    "RunRecord",
    "RunRecordError",
    "forecast_digest",
    "retraining_keys",
]

#: Version of the run directory layout; a newer one is refused with a clear message.
SCHEMA_VERSION = 1

#: Config keys that only change what is done with the forecasts (portfolios, costs,
#: timing rules, the run's name): ``alphaseq backtest`` may change them without
#: retraining, and they are left out of :func:`forecast_digest`.
RETRAIN_FREE_KEYS: tuple[str, ...] = (
    "name",
    "configurations_tried",
    "portfolio",
    "timing.mode",
    "timing.cap",
    "timing.threshold",
    "training.progress",
)

_TABLES = ("predictions", "weights", "returns", "universe")


class RunRecordError(AlphaseqError):
    """A run directory that cannot be created, resumed or read as asked."""


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def _forecast_values(config: ExperimentConfig) -> dict[str, Any]:
    flat = _flatten(config.model_dump(mode="json"))
    return {
        key: value
        for key, value in flat.items()
        if not any(key == free or key.startswith(f"{free}.") for free in RETRAIN_FREE_KEYS)
    }


def forecast_digest(config: ExperimentConfig) -> str:
    """SHA-256 of every config value that shapes the forecasts (not portfolio keys)."""
    text = json.dumps(_forecast_values(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def retraining_keys(old: ExperimentConfig, new: ExperimentConfig) -> list[str]:
    """Dotted keys whose change from ``old`` to ``new`` needs the models retrained."""
    a, b = _forecast_values(old), _forecast_values(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _read_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object; a damaged one gives one clear message."""
    try:
        value = json.loads(path.read_text())
    except ValueError:
        raise RunRecordError(
            f"'{path}' is not valid JSON (a damaged or half-written file)"
        ) from None
    if not isinstance(value, dict):
        raise RunRecordError(f"'{path}' does not hold a JSON object")
    return value


@dataclass
class FoldResult:
    """What one fold left behind.

    Attributes
    ----------
    fold : Fold
        The fold's windows and purged sample ranges.
    predictions : pandas.DataFrame
        Test-window forecasts: ``date, ticker, fold, prediction``, every output head,
        ``true_<label>`` for every label column and ``label`` (the signal's truth).
    record : dict
        JSON-ready: ``fold.to_dict()`` plus epochs, history, train/valid/test figures,
        ``seconds`` and the checkpoint's path relative to the run directory.
    attention : list of float or None
        Mean test-window attention by lag (oldest day first), None without attention.
    attention_count : int
        Samples averaged into ``attention``.
    """

    fold: Fold
    predictions: pd.DataFrame
    record: dict[str, Any]
    attention: list[float] | None = None
    attention_count: int = 0


class RunRecord:
    """The one reader and writer of a run directory (see the module docstring).

    Parameters
    ----------
    run_dir : str or Path
        The run directory.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunRecord('{self.run_dir}')"

    # ---------------------------------------------------------------- create/open
    @classmethod
    def create(cls, run_dir: str | Path, *, force: bool = False) -> RunRecord:
        """A new, empty run directory.

        Raises
        ------
        RunRecordError
            When the directory holds files and ``force`` is not set.
        """
        folder = Path(run_dir)
        if not force:
            cls.check_new(folder)
        elif folder.exists() and not folder.is_dir():
            raise RunRecordError(f"'{folder}' is a file, not a run directory")
        if folder.exists() and any(folder.iterdir()):
            logger.info("replacing the contents of %s (--force)", folder)
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder)

    @staticmethod
    def check_new(run_dir: str | Path) -> None:
        """Raise unless ``run_dir`` is absent or an empty folder (a new run may go there).

        Raises
        ------
        RunRecordError
            Naming ``--resume`` and ``--force``.
        """
        folder = Path(run_dir)
        if folder.exists() and not folder.is_dir():
            raise RunRecordError(f"'{folder}' is a file, not a run directory")
        if folder.exists() and any(folder.iterdir()):
            raise RunRecordError(
                f"run directory '{folder}' is not empty: add --resume to continue the "
                f"run in it, --force to replace it, or choose another --out"
            )

    @classmethod
    def open(cls, run_dir: str | Path) -> RunRecord:
        """An existing run directory (complete or not).

        Raises
        ------
        RunRecordError
            When it is missing, has no manifest, or was written by a newer schema.
        """
        record = cls(run_dir)
        folder = record.run_dir
        if not folder.is_dir():
            raise RunRecordError(f"run directory not found: '{folder}'")
        if not record.manifest_path.is_file():
            raise RunRecordError(f"'{folder}' is not an alphaseq run directory (no run.json in it)")
        version = record.manifest().get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RunRecordError(
                f"'{folder}' uses run directory schema {version!r}; this alphaseq reads up "
                f"to {SCHEMA_VERSION} (upgrade alphaseq)"
            )
        return record

    # ------------------------------------------------------------------- manifest
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "run.json"

    def manifest(self) -> dict[str, Any]:
        """``run.json`` (empty when absent)."""
        if not self.manifest_path.is_file():
            return {}
        return _read_object(self.manifest_path)

    def write_manifest(self, **values: Any) -> dict[str, Any]:
        """Update ``run.json`` with ``values`` (schema version and times kept)."""
        manifest = self.manifest()
        manifest.setdefault("schema_version", SCHEMA_VERSION)
        manifest.setdefault("alphaseq_version", __version__)
        manifest.setdefault("created", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        manifest.update(values)
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    def start(self, config: ExperimentConfig, *, data_fingerprint: str, n_folds: int) -> None:
        """Record a new run: its config and the facts a resumption must match."""
        self.write_config(config)
        self.write_manifest(
            name=config.name,
            forecast_digest=forecast_digest(config),
            data_fingerprint=data_fingerprint,
            n_folds=n_folds,
            status="training",
        )

    def check_resumable(self, config: ExperimentConfig, *, data_fingerprint: str) -> None:
        """Raise unless ``config`` and the data are those the run was started with.

        Raises
        ------
        RunRecordError
            Naming the keys that differ, or saying that the data changed.
        """
        manifest = self.manifest()
        if not manifest:
            raise RunRecordError(
                f"'{self.run_dir}' holds no run to resume (no run.json); start it without --resume"
            )
        if manifest.get("forecast_digest") != forecast_digest(config):
            changed: list[str] | None = None
            with contextlib.suppress(AlphaseqError):
                changed = retraining_keys(self.read_config(), config)
            if changed == []:
                # Same experiment: the digest was taken by a version whose config had
                # fewer keys (a key added since reads as its default on both sides).
                self.write_manifest(forecast_digest=forecast_digest(config))
                return self.check_resumable(config, data_fingerprint=data_fingerprint)
            raise RunRecordError(
                f"cannot resume '{self.run_dir}': the config differs from the one it was "
                f"started with in {changed or 'its forecasting keys'}; use the same config, "
                f"or --force to start again"
            )
        if manifest.get("data_fingerprint") != data_fingerprint:
            raise RunRecordError(
                f"cannot resume '{self.run_dir}': the data differ from those it was started "
                f"with (fingerprint {str(manifest.get('data_fingerprint'))[:12]}..., now "
                f"{data_fingerprint[:12]}...); use the same data, or --force to start again"
            )

    # --------------------------------------------------------------------- config
    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.yaml"

    def write_config(self, config: ExperimentConfig) -> None:
        """Write ``config.yaml`` (the fully resolved experiment)."""
        text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        atomic_write_text(self.config_path, text)

    def read_config(self) -> ExperimentConfig:
        """The run's validated config."""
        if not self.config_path.is_file():
            raise RunRecordError(f"'{self.run_dir}' has no config.yaml")
        try:
            values = yaml.safe_load(self.config_path.read_text()) or {}
        except yaml.YAMLError:
            raise RunRecordError(f"'{self.config_path}' is not valid YAML") from None
        try:
            return parse_config(values, source=f"'{self.config_path}'")
        except ConfigError as exc:
            raise RunRecordError(str(exc)) from None

    def config_values(self) -> dict[str, Any]:
        """``config.yaml`` as a plain dict (not validated)."""
        values = yaml.safe_load(self.config_path.read_text()) if self.config_path.is_file() else {}
        return values if isinstance(values, dict) else {}

    # ---------------------------------------------------------------------- folds
    @property
    def folds_dir(self) -> Path:
        return self.run_dir / "folds"

    def fold_dir(self, index: int) -> Path:
        """``folds/NN`` of fold ``index``."""
        return self.folds_dir / f"{index:02d}"

    def checkpoint_path(self, index: int) -> Path:
        """The forecaster checkpoint of fold ``index``."""
        return self.fold_dir(index) / "model.ckpt"

    def finished_folds(self) -> list[int]:
        """Indices of the folds whose folder is complete, in order."""
        if not self.folds_dir.is_dir():
            return []
        done = []
        for child in self.folds_dir.iterdir():
            if child.is_dir() and child.name.isdigit() and (child / "fold.json").is_file():
                done.append(int(child.name))
        return sorted(done)

    @contextlib.contextmanager
    def writing_fold(self, index: int) -> Iterator[Path]:
        """A temporary folder to fill with fold ``index``'s files; renamed to
        ``folds/NN`` when the block ends without error (removed otherwise)."""
        final = self.fold_dir(index)
        partial = self.folds_dir / f".{index:02d}.partial-{os.getpid()}"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        try:
            yield partial
            if final.exists():  # a stale copy of this fold: the new one replaces it
                shutil.rmtree(final)
            os.replace(partial, final)
            fsync_dir(self.folds_dir)
        finally:
            if partial.exists():
                shutil.rmtree(partial)

    def write_fold(self, result: FoldResult, folder: Path) -> None:
        """Write a fold's forecasts and record into ``folder`` (see :meth:`writing_fold`)."""
        atomic_write_parquet(folder / "predictions.parquet", result.predictions)
        atomic_write_json(
            folder / "fold.json",
            {
                "record": result.record,
                "attention": result.attention,
                "attention_count": result.attention_count,
            },
        )

    def read_fold(self, index: int) -> FoldResult:
        """The stored result of fold ``index``."""
        folder = self.fold_dir(index)
        try:
            stored = json.loads((folder / "fold.json").read_text())
            predictions = pd.read_parquet(folder / "predictions.parquet")
        except (OSError, ValueError) as exc:
            raise RunRecordError(
                f"fold {index} of '{self.run_dir}' cannot be read ({exc}); rerun with "
                f"--resume after removing '{folder}'"
            ) from None
        record = stored["record"]
        return FoldResult(
            fold=Fold.from_dict(record),
            predictions=predictions,
            record=record,
            attention=stored.get("attention"),
            attention_count=int(stored.get("attention_count", 0)),
        )

    def read_folds(self) -> list[FoldResult]:
        """Every finished fold, in order."""
        return [self.read_fold(k) for k in self.finished_folds()]

    # --------------------------------------------------------------------- tables
    def table_path(self, name: str) -> Path:
        if name not in _TABLES:
            raise ValueError(f"unknown table {name!r}; tables: {list(_TABLES)}")
        return self.run_dir / f"{name}.parquet"

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Write ``predictions``, ``weights`` or ``returns`` (Parquet, atomically)."""
        atomic_write_parquet(self.table_path(name), frame)

    def read_table(self, name: str) -> pd.DataFrame | None:
        """A table, or None when absent."""
        path = self.table_path(name)
        if not path.is_file():
            return None
        frame = pd.read_parquet(path)
        if name == "returns" and "return" in frame.columns and "net_return" not in frame.columns:
            # Runs written before 0.2 named the column after a Python keyword.
            frame = frame.rename(columns={"return": "net_return"})
        return frame

    def write_folds_summary(self, records: list[dict[str, Any]]) -> None:
        """``folds.json``: every fold's record, in order."""
        atomic_write_json(self.run_dir / "folds.json", records)

    # -------------------------------------------------------------------- metrics
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.json"

    @property
    def attention_path(self) -> Path:
        return self.run_dir / "attention.png"

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json`` (last of all: it marks the run complete)."""
        atomic_write_json(self.metrics_path, metrics)
        self.write_manifest(status="complete")

    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` of a complete run."""
        if not self.metrics_path.is_file():
            raise RunRecordError(
                f"'{self.run_dir}' is not a complete run (no metrics.json): continue it with "
                f"'alphaseq run ... --out {self.run_dir} --resume' or 'alphaseq backtest "
                f"{self.run_dir}'"
            )
        return _read_object(self.metrics_path)

    @property
    def is_complete(self) -> bool:
        """Whether ``metrics.json`` exists."""
        return self.metrics_path.is_file()

    def clear_results(self) -> None:
        """Remove what the strategies and summary stages wrote (before re-running them)."""
        for path in (
            self.metrics_path,
            self.table_path("weights"),
            self.table_path("returns"),
            self.table_path("universe"),
            self.run_dir / "report.html",
        ):
            if path.exists():
                path.unlink()

    # ------------------------------------------------------------------------ log
    @contextlib.contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """Append the package's INFO log to ``run.log`` for the duration of the block."""
        handler = logging.FileHandler(self.run_dir / "run.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        previous = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)  # the log file gets the whole story
        try:
            yield
        finally:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(previous)
