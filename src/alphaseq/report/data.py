"""Read a run directory and derive the series the report shows.

Everything here is plain pandas / numpy and free of drawing: the loader
(:func:`load_run`) tolerates missing optional files, and every derivation is a small
pure function of the run's tables, so that the figures and the page only format.

Conventions
-----------
* Returns are simple daily net returns, one column per strategy (``returns.parquet``).
* Wealth starts at 1 before the first return; drawdowns are measured from the running
  peak of wealth, that starting 1 included.
* Weights are the targets decided at each rebalance (``weights.parquet``); turnover
  between two rebalances is ``Σ |w_t - w_{t-1}|`` over the tickers, ignoring the drift
  of the weights in between.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from alphaseq.backtest.metrics import per_date_ic

__all__ = [
    "TRADING_DAYS",
    "RunData",
    "cross_section_ic",
    "drawdowns",
    "holdings",
    "load_run",
    "monthly_ic",
    "monthly_returns",
    "rebalance_turnover",
    "rolling_sharpe",
    "rolling_time_series_ic",
    "wealth",
    "wide_returns",
]

TRADING_DAYS = 252
"""Trading days per year, for annualisation."""

_MAIN_STRATEGIES = ("model_topk", "model_timing")
_REFERENCE_STRATEGIES = ("benchmark", "buy_and_hold")


@dataclass
class RunData:
    """Everything a report reads from one run directory.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    metrics : dict
        ``metrics.json``.
    config : dict
        ``config.yaml`` (empty when the file is missing).
    config_digest : str or None
        First 12 hex digits of the SHA-256 of ``config.yaml``'s bytes.
    folds : list of dict
        ``folds.json`` (with training histories), else ``metrics["folds"]``.
    predictions, weights, returns : pandas.DataFrame or None
        The Parquet tables, None when absent or unreadable.
    attention_png : bytes or None
        The run's ``attention.png``.
    problems : list of str
        Files that exist but could not be read (shown in the report's header).
    """

    run_dir: Path
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    config_digest: str | None = None
    folds: list[dict[str, Any]] = field(default_factory=list)
    predictions: pd.DataFrame | None = None
    weights: pd.DataFrame | None = None
    returns: pd.DataFrame | None = None
    attention_png: bytes | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def strategies(self) -> list[str]:
        """Strategy names in the order of ``metrics.json``, then any only in returns."""
        names = list(self.metrics.get("strategies") or {})
        if self.returns is not None and "strategy" in self.returns:
            names += [s for s in pd.unique(self.returns["strategy"]) if s not in names]
        return names

    @property
    def mode(self) -> str:
        """``"cross_section"`` or ``"timing"``."""
        run = self.metrics.get("run") or {}
        return str(run.get("mode") or self.config.get("mode") or "cross_section")

    @property
    def main_strategy(self) -> str | None:
        """The model's own strategy (``model_topk`` / ``model_timing``), else the first."""
        names = self.strategies
        for name in _MAIN_STRATEGIES:
            if name in names:
                return name
        return names[0] if names else None

    @property
    def reference_strategy(self) -> str | None:
        """The passive reference (``benchmark`` / ``buy_and_hold``), if the run has one."""
        return next((n for n in _REFERENCE_STRATEGIES if n in self.strategies), None)

    @property
    def out_of_sample_start(self) -> pd.Timestamp | None:
        """First date of the stitched out-of-sample record."""
        start = ((self.metrics.get("run") or {}).get("out_of_sample") or {}).get("start")
        return pd.Timestamp(start) if start else None


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory written by :func:`alphaseq.pipeline.run`.

    Parameters
    ----------
    run_dir : str or Path
        The run directory. Only ``metrics.json`` is required; every other file is
        optional and its absence only removes what depends on it.

    Returns
    -------
    RunData

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` is not a directory or has no ``metrics.json``.
    alphaseq.experiment.RunRecordError
        When ``metrics.json`` is damaged or not a JSON object.
    """
    # The run record is the one reader of a run directory; the report only views it.
    from alphaseq.experiment.record import RunRecord

    record = RunRecord(run_dir)
    run_dir = record.run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: '{run_dir}'")
    if not record.is_complete:
        raise FileNotFoundError(f"'{run_dir}' is not a run directory: metrics.json is missing")
    metrics = record.read_metrics()  # a damaged file: one clear RunRecordError
    data = RunData(run_dir=run_dir, metrics=metrics)

    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        raw = config_path.read_bytes()
        data.config_digest = hashlib.sha256(raw).hexdigest()[:12]
        try:
            config = yaml.safe_load(raw)
            data.config = config if isinstance(config, dict) else {}
        except yaml.YAMLError:
            data.problems.append("config.yaml is not valid YAML")

    folds_path = run_dir / "folds.json"
    folds: Any = None
    if folds_path.is_file():
        try:
            folds = json.loads(folds_path.read_text())
        except ValueError:
            data.problems.append("folds.json is not valid JSON")
    if not isinstance(folds, list):
        folds = metrics.get("folds")
    data.folds = [f for f in folds or [] if isinstance(f, dict)]

    for name in ("predictions", "weights", "returns"):
        try:
            frame = record.read_table(name)
        except Exception as exc:  # a damaged table only removes its charts
            data.problems.append(f"{name}.parquet could not be read ({type(exc).__name__})")
            continue
        if frame is None:
            continue
        if "date" in frame:
            frame["date"] = pd.to_datetime(frame["date"])
        setattr(data, name, frame)

    png = record.attention_path
    if png.is_file():
        data.attention_png = png.read_bytes()
    return data


def wide_returns(returns: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Daily returns as a date × strategy table.

    Parameters
    ----------
    returns : pandas.DataFrame
        Long table with columns ``date``, ``strategy``, ``net_return``.
    order : list of str, optional
        Column order; strategies not listed follow in order of appearance.

    Returns
    -------
    pandas.DataFrame
        Sorted ``DatetimeIndex``; NaN where a strategy has no return that day.
    """
    wide = returns.pivot_table(index="date", columns="strategy", values="net_return", aggfunc="sum")
    wide = wide.sort_index()
    wide.columns.name = None
    names = [n for n in (order or []) if n in wide.columns]
    names += [n for n in pd.unique(returns["strategy"]) if n not in names]
    return wide[names].astype(np.float64)


def wealth(wide: pd.DataFrame) -> pd.DataFrame:
    """Growth of 1 invested at the start of each strategy's record (NaN days skipped)."""
    return (1.0 + wide).cumprod()


def drawdowns(wide: pd.DataFrame) -> pd.DataFrame:
    """Underwater curves: wealth over its running peak minus one (≤ 0).

    The initial wealth of 1 counts as a peak, so a loss on the first day is a drawdown.
    """
    value = wealth(wide)
    peak = value.cummax().clip(lower=1.0)
    return value / peak - 1.0


def rolling_sharpe(wide: pd.DataFrame, window: int = TRADING_DAYS) -> pd.DataFrame:
    """Annualised Sharpe ratio (zero risk-free rate) over a trailing window of days.

    Parameters
    ----------
    wide : pandas.DataFrame
        Daily returns, one column per strategy.
    window : int, default 252
        Trading days in the window; earlier dates are NaN.

    Returns
    -------
    pandas.DataFrame
        ``mean / std (ddof 1) * sqrt(252)`` per window; NaN when the std is zero.
    """
    rolling = wide.rolling(window, min_periods=window)
    std = rolling.std().replace(0.0, np.nan)
    return rolling.mean() / std * np.sqrt(TRADING_DAYS)


def monthly_returns(daily: pd.Series) -> pd.DataFrame:
    """Compounded monthly returns as a years × months table plus a ``Year`` column.

    Parameters
    ----------
    daily : pandas.Series
        Daily simple returns indexed by date (NaN days are skipped).

    Returns
    -------
    pandas.DataFrame
        Index: years; columns ``1 .. 12`` (NaN for months without any return) and
        ``"Year"``, the compounded return of the months present in that year.
    """
    daily = daily.dropna()
    columns: list[Any] = [*range(1, 13), "Year"]
    if daily.empty:
        return pd.DataFrame(columns=columns, dtype=np.float64)
    index = pd.DatetimeIndex(daily.index)
    growth = (1.0 + daily).groupby([index.year, index.month]).prod()
    table = (growth - 1.0).unstack().reindex(columns=range(1, 13))
    table["Year"] = growth.groupby(level=0).prod() - 1.0
    table.index.name = None
    table.columns.name = None
    return table


def cross_section_ic(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per-date IC and rank IC across tickers of the prediction against its label.

    The same figures as ``metrics.json`` (both come from
    :func:`alphaseq.backtest.metrics.per_date_ic`, the one definition of a per-date IC).

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``prediction``, ``label``; rows without a finite label or
        prediction are left out (the end of the sample has no realised label yet).

    Returns
    -------
    pandas.DataFrame
        Index: the dates that have an IC (see ``per_date_ic``); columns ``ic``
        (Pearson) and ``rank_ic`` (Spearman, ties averaged).
    """
    empty = pd.DataFrame(columns=["ic", "rank_ic"], dtype=np.float64)
    prediction = predictions["prediction"].to_numpy(np.float64)
    label = predictions["label"].to_numpy(np.float64)
    if not (np.isfinite(prediction) & np.isfinite(label)).any():
        return empty
    daily = per_date_ic(prediction, label, predictions["date"].to_numpy())
    out = daily.set_index(pd.DatetimeIndex(daily["date"]))[["ic", "rank_ic"]]
    out.index.name = None
    return out.astype(np.float64)


def monthly_ic(daily_ic: pd.DataFrame) -> pd.DataFrame:
    """Monthly means of per-date ICs and the running sum of those monthly means.

    Parameters
    ----------
    daily_ic : pandas.DataFrame
        As :func:`cross_section_ic` returns it.

    Returns
    -------
    pandas.DataFrame
        Index: the last calendar day of each month with data; columns ``ic``,
        ``rank_ic`` (monthly means) and ``cum_ic``, ``cum_rank_ic``.
    """
    if daily_ic.empty:
        return pd.DataFrame(columns=["ic", "rank_ic", "cum_ic", "cum_rank_ic"], dtype=np.float64)
    index = pd.DatetimeIndex(daily_ic.index)
    months = index.to_period("M")
    table = daily_ic.groupby(months).mean()
    table.index = table.index.to_timestamp(how="end").normalize()
    table["cum_ic"] = table["ic"].fillna(0.0).cumsum()
    table["cum_rank_ic"] = table["rank_ic"].fillna(0.0).cumsum()
    return table


def rolling_time_series_ic(predictions: pd.DataFrame, window: int = 63) -> pd.DataFrame:
    """Trailing time-series correlation of one instrument's prediction and label.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``date``, ``prediction``, ``label`` for one ticker.
    window : int, default 63
        Dates per window (about three months).

    Returns
    -------
    pandas.DataFrame
        Index: dates (from the ``window``-th known label on); columns ``ic`` (Pearson)
        and ``rank_ic`` (Spearman over the same window). Empty when fewer than
        ``window`` labels are known.
    """
    from scipy.stats import rankdata

    frame = predictions[["date", "prediction", "label"]].copy()
    frame = frame.astype({"prediction": np.float64, "label": np.float64})
    frame = frame[np.isfinite(frame["prediction"]) & np.isfinite(frame["label"])]
    frame = frame.groupby("date")[["prediction", "label"]].mean().sort_index()
    if len(frame) < window:
        return pd.DataFrame(columns=["ic", "rank_ic"], dtype=np.float64)
    pearson = frame["prediction"].rolling(window).corr(frame["label"])
    views = [
        np.lib.stride_tricks.sliding_window_view(frame[c].to_numpy(), window)
        for c in ("prediction", "label")
    ]
    rx, ry = (rankdata(v, axis=1) for v in views)
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        spearman = np.where(denominator > 0, (rx * ry).sum(axis=1) / denominator, np.nan)
    out = pd.DataFrame(
        {"ic": pearson.to_numpy()[window - 1 :], "rank_ic": spearman},
        index=pd.DatetimeIndex(frame.index[window - 1 :]),
    )
    return out.replace([np.inf, -np.inf], np.nan)


def _weight_table(weights: pd.DataFrame, strategy: str) -> pd.DataFrame:
    """Date × ticker target weights of one strategy (0 where not held)."""
    rows = weights[weights["strategy"] == strategy]
    table = rows.pivot_table(
        index="date", columns="ticker", values="weight", aggfunc="sum", fill_value=0.0
    )
    table.columns.name = None
    return table.sort_index().astype(np.float64)


def rebalance_turnover(
    weights: pd.DataFrame | None,
    order: list[str] | None = None,
    returns: pd.DataFrame | None = None,
) -> dict[str, pd.Series]:
    """One-way turnover ``1/2 Σ |Δw|`` at each rebalance of each strategy.

    Parameters
    ----------
    weights : pandas.DataFrame or None
        Columns ``date``, ``ticker``, ``strategy``, ``weight`` (target weights at each
        rebalance; tickers not listed on a date are not held). Used only for runs whose
        ``returns`` have no ``turnover`` column (written before it was recorded).
    order : list of str, optional
        Strategy order of the result.
    returns : pandas.DataFrame, optional
        ``returns.parquet`` with its ``turnover`` column: the backtest's own one-way
        turnover of each rebalance, drift included, NaN on days without one.

    Returns
    -------
    dict of str to pandas.Series
        Per strategy with at least two rebalances: turnover at each rebalance from the
        second on (the initial build from cash is left out, as in the strategy table's
        average). From ``returns`` these are exactly the figures the table averages;
        from ``weights`` alone they are computed between target weights, so the drift
        between rebalances is not counted.
    """
    if returns is not None and {"date", "strategy", "turnover"} <= set(returns.columns):
        rows = returns.dropna(subset=["turnover"])
        names = [n for n in (order or []) if n in set(rows["strategy"])]
        names += [n for n in pd.unique(rows["strategy"]) if n not in names]
        out: dict[str, pd.Series] = {}
        for name in names:
            mine = rows[rows["strategy"] == name].sort_values("date")
            if len(mine) >= 2:
                series = pd.Series(
                    mine["turnover"].to_numpy(np.float64), index=pd.DatetimeIndex(mine["date"])
                )
                out[name] = series.iloc[1:]
        return out
    if weights is None:
        return {}
    names = [n for n in (order or []) if n in set(weights["strategy"])]
    names += [n for n in pd.unique(weights["strategy"]) if n not in names]
    out = {}
    for name in names:
        table = _weight_table(weights, name)
        if len(table) < 2:
            continue
        out[name] = 0.5 * table.diff().abs().sum(axis=1).iloc[1:]
    return out


def holdings(weights: pd.DataFrame, strategy: str, top: int = 10) -> pd.DataFrame:
    """Target weights of the ``top`` tickers with the largest average weight, plus ``other``.

    Parameters
    ----------
    weights : pandas.DataFrame
        As in :func:`rebalance_turnover`.
    strategy : str
        Whose weights.
    top : int, default 10
        Tickers shown on their own; every other ticker is summed into ``"other"``.

    Returns
    -------
    pandas.DataFrame
        Index: rebalance dates; columns: the top tickers by average weight over all
        rebalances (heaviest first), then ``"other"`` when any other ticker is held.
        Empty when the strategy has no weights.
    """
    table = _weight_table(weights, strategy)
    if table.empty:
        return table
    order = table.mean().sort_values(ascending=False, kind="stable").index
    shown = table[order[:top]].copy()
    rest = table[order[top:]].sum(axis=1)
    if len(order) > top and (rest.abs() > 1e-12).any():
        shown["other"] = rest
    return shown
