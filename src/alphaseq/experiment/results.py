"""The Python face of a walk-forward experiment: :func:`run` one, :func:`load_run` its
results as pandas tables.

Both read and write through :class:`~alphaseq.experiment.record.RunRecord`; the
experiment itself is :func:`alphaseq.experiment.runner.run`, as on the command line.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from alphaseq._safe import path_safe_name
from alphaseq.config import ExperimentConfig
from alphaseq.errors import ConfigError
from alphaseq.experiment.configs import experiment_config
from alphaseq.experiment.record import RunRecord, RunRecordError

__all__ = ["RunResults", "load_run", "run"]


class RunResults:
    """A finished run directory, read as pandas tables (one call per table and shape).

    Tables are read on first use and cached; the directory is never written.

    Parameters
    ----------
    run_dir : str or Path
        A complete run directory (``metrics.json`` present).

    Raises
    ------
    RunRecordError
        When it is not an alphaseq run directory or the run is not complete.

    Examples
    --------
    >>> results = alphaseq.load_run("runs/ci-20240101-120000")  # doctest: +SKIP
    >>> results.returns(wide=True).add(1).cumprod().tail()  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.record = RunRecord.open(run_dir)
        self.metrics: dict[str, Any] = self.record.read_metrics()
        self._tables: dict[str, pd.DataFrame] = {}

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return self.record.run_dir

    @cached_property
    def config(self) -> ExperimentConfig:
        """The fully resolved experiment the run recorded (``config.yaml``)."""
        return self.record.read_config()

    @cached_property
    def folds(self) -> list[dict[str, Any]]:
        """Every fold's record (``folds.json``): windows, history, figures."""
        path = self.run_dir / "folds.json"
        return json.loads(path.read_text()) if path.is_file() else []

    @property
    def report_path(self) -> Path:
        """Where the HTML report is (written by the run; see :meth:`write_report`)."""
        return self.run_dir / "report.html"

    def write_report(self) -> Path:
        """(Re)write ``report.html`` from the stored results; return its path."""
        from alphaseq.report import build_report

        return build_report(self.run_dir)

    def _table(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            frame = self.record.read_table(name)
            if frame is None:
                raise RunRecordError(f"'{self.run_dir}' has no {name}.parquet")
            self._tables[name] = frame
        return self._tables[name].copy()

    @property
    def strategies(self) -> list[str]:
        """Names of the traded strategies, in the order of ``metrics.json``."""
        return list(self.metrics.get("strategies", {}))

    def performance(self) -> pd.DataFrame:
        """Performance figures, one row per strategy (``metrics["strategies"]``)."""
        table = pd.DataFrame.from_dict(self.metrics.get("strategies", {}), orient="index")
        table.index.name = "strategy"
        return table

    def forecasts(self, wide: bool = False, *, values: str = "prediction") -> pd.DataFrame:
        """The stitched out-of-sample forecasts.

        Parameters
        ----------
        wide : bool, default=False
            False: tidy, one row per (date, ticker) with ``date, ticker, fold,
            prediction, label`` (and any other output column). True: dates by tickers.
        values : str, default="prediction"
            The column spread wide (``label`` for the realised truth).

        Returns
        -------
        pandas.DataFrame
            Wide: a :class:`pandas.DatetimeIndex` named ``date``, one column per ticker,
            NaN where a ticker has no forecast.
        """
        tidy = self._table("predictions")
        if not wide:
            return tidy
        return _spread(tidy, "ticker", values, "forecasts")

    def returns(self, wide: bool = False) -> pd.DataFrame:
        """Daily net returns of every strategy.

        Parameters
        ----------
        wide : bool, default=False
            False: tidy ``date, strategy, net_return, turnover``. True: dates by
            strategies of ``net_return`` (NaN before a strategy starts).
        """
        tidy = self._table("returns")
        if not wide:
            return tidy
        wide_table = _spread(tidy, "strategy", "net_return", "returns")
        order = [s for s in self.strategies if s in wide_table.columns]
        return wide_table[order + [c for c in wide_table.columns if c not in order]]

    def weights(self, strategy: str | None = None, wide: bool = False) -> pd.DataFrame:
        """Weights held after each rebalance.

        Parameters
        ----------
        strategy : str, optional
            One strategy (default: all; ``wide=True`` needs one).
        wide : bool, default=False
            False: tidy ``date, ticker, strategy, weight`` (non-zero weights only). True:
            rebalance dates by tickers, 0 where a ticker is not held.

        Raises
        ------
        ConfigError
            For an unknown strategy, or ``wide=True`` without one.
        """
        tidy = self._table("weights")
        names = list(pd.unique(tidy["strategy"]))
        if strategy is None:
            if wide:
                raise ConfigError(f"weights(wide=True) needs a strategy, one of {names}")
            return tidy
        if strategy not in names:
            raise ConfigError(f"no weights for strategy {strategy!r}; strategies: {names}")
        one = tidy[tidy["strategy"] == strategy].reset_index(drop=True)
        if not wide:
            return one
        return _spread(one, "ticker", "weight", "weights").fillna(0.0)

    def __repr__(self) -> str:
        folds = len(self.folds)
        return (
            f"RunResults('{self.run_dir}', name={self.metrics.get('run', {}).get('name')!r}, "
            f"{folds} folds, strategies={self.strategies})"
        )


def _spread(tidy: pd.DataFrame, columns: str, values: str, what: str) -> pd.DataFrame:
    if values not in tidy.columns:
        raise ConfigError(f"{what} have no column {values!r}; columns: {[c for c in tidy.columns]}")
    wide = tidy.pivot(index="date", columns=columns, values=values)
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    wide.columns.name = columns
    return wide.sort_index()


def load_run(run_dir: str | Path) -> RunResults:
    """Read a finished run directory (``alphaseq run`` or :func:`run`).

    Parameters
    ----------
    run_dir : str or Path
        The run directory.

    Returns
    -------
    RunResults
        ``.metrics``, ``.config``, ``.forecasts()``, ``.returns()``, ``.weights()``, each
        tidy or ``wide=True``.
    """
    return RunResults(run_dir)


def run(
    config: ExperimentConfig | Mapping[str, Any] | str | Path,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    panel: Any = None,
    resume: bool = False,
    force: bool = False,
    on_fold: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    executor: str = "local",
    address: str | None = None,
) -> RunResults | None:
    """Run a walk-forward experiment from Python, as ``alphaseq run`` does.

    Parameters
    ----------
    config : ExperimentConfig, dict, str or Path
        The experiment: a validated config, a dict of sections, a YAML path, or a
        packaged config name (``"quickstart"``, ``"ci"``, ...).
    out : str or Path, optional
        The run directory (default: ``runs/NAME-TIMESTAMP``). It must be absent or
        empty unless ``resume`` or ``force``.
    overrides : dict or sequence of str, optional
        Config changes, e.g. ``{"data.source": "prices.csv", "training.epochs": 2}``.
    panel : Panel, optional
        Use these prices instead of loading ``data.source``.
    resume : bool, default=False
        Continue an interrupted run in ``out`` from its first unfinished fold.
    force : bool, default=False
        Replace whatever ``out`` holds.
    on_fold : callable, optional
        ``on_fold(done, total)`` after each fold.
    workers : int, optional
        Train this many folds at once (local processes, or Ray tasks with
        ``executor="ray"``); a script doing so needs ``if __name__ == "__main__":``.
    executor : {"local", "ray"}, default="local"
        Where the folds train.
    address : str, optional
        The Ray cluster (``executor="ray"``); default ``RAY_ADDRESS`` or a local one.

    Returns
    -------
    RunResults or None
        The finished run, read back from ``out`` (None in the ranks other than 0 of a
        ``torchrun`` launch, which train with rank 0 and write nothing).

    Raises
    ------
    ConfigError, DataError
        For a bad config or data (one message saying what and where).
    RunRecordError
        When ``out`` holds files and neither ``resume`` nor ``force`` is given.
    """
    from alphaseq.experiment.runner import run as run_experiment

    experiment = experiment_config(config, overrides)
    if out is None:
        if resume:
            raise ConfigError("resume=True needs the run directory to continue: pass out=")
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{path_safe_name(experiment.name)}-{stamp}"
    result = run_experiment(
        experiment,
        out,
        panel=panel,
        on_fold=on_fold,
        resume=resume,
        force=force,
        workers=workers,
        executor=executor,
        address=address,
    )
    if result is None:  # a rank other than 0 of a torchrun launch: it wrote nothing
        return None
    return RunResults(result.run_dir)
