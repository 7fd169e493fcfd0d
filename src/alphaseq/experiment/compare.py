"""A forecast study: several configurations on the same folds, one table.

Each configuration is an ordinary run (its own run directory under the study's, so a
study that stops is resumed run by run, fold by fold); the table puts side by side what
decides whether a forecast is worth trading: its rank IC with a 95 % interval, the
top-minus-bottom quintile spread, the model's top-k Sharpe ratio and its difference
from equal weight with the p-value of that difference, the cost in time and how often
early stopping kept the first epoch. The single factors (momentum, reversal, low
volatility) are scored on the same samples and listed as rows of their own.

Every configuration of a study counts as a trial: the deflated Sharpe ratio of each
row is deflated for all of them (Bailey & López de Prado 2014).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alphaseq._atomic import atomic_write_text
from alphaseq._safe import path_safe_name
from alphaseq.backtest.significance import deflated_sharpe_ratio
from alphaseq.config import ExperimentConfig
from alphaseq.errors import ConfigError
from alphaseq.experiment.runner import RunResult, run

__all__ = ["STUDY_COLUMNS", "Study", "compare"]

#: Columns of the study table: key, header, format.
STUDY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("valid_rank_ic", "valid rank IC", "{:.3f}"),
    ("valid_rank_ic_se", "± SE", "{:.3f}"),
    ("ic", "IC", "{:.3f}"),
    ("rank_ic", "rank IC", "{:.3f}"),
    ("rank_ic_ci", "95 % interval", "{}"),
    ("rank_icir", "rank ICIR", "{:.2f}"),
    ("spread", "Q5-Q1 / h", "{:+.2%}"),
    ("spread_t", "t", "{:.2f}"),
    ("sharpe", "top-k Sharpe", "{:.2f}"),
    ("sharpe_vs_ew", "ΔSharpe vs EW", "{:+.2f}"),
    ("p_vs_ew", "p", "{:.3f}"),
    ("dsr", "DSR", "{:.2f}"),
    ("fit_seconds", "fit s", "{:.1f}"),
    ("first_epoch_share", "first-epoch stops", "{:.0%}"),
    ("significant_gain_share", "gain t≥2", "{:.0%}"),
)


@dataclass(frozen=True)
class Study:
    """The result of :func:`compare`.

    Attributes
    ----------
    rows : list of dict
        One per configuration, then one per single factor and equal weight (``kind``:
        ``model``, ``factor`` or ``baseline``), keyed as :data:`STUDY_COLUMNS` plus
        ``name`` and ``run_dir``. ``valid_rank_ic`` is the mean over folds of the
        validation rank IC at the kept epoch: choose between configurations by it, never
        by the out-of-sample columns, and mind its standard error ``valid_rank_ic_se``
        (the folds' Newey–West errors combined: the validation windows do not overlap).
        ``significant_gain_share``: the share of folds whose kept epoch beat the first
        with a paired t-statistic of at least 2 on the validation window.
    configurations_tried : int
        Trials the DSR is deflated for: the number of configurations, or more when the
        study extends an earlier one.
    out_dir : Path
        The study directory (``study.json``, ``study.md`` and one run per config).
    """

    rows: list[dict[str, Any]]
    configurations_tried: int
    out_dir: Path

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame, one row per configuration or factor."""
        return pd.DataFrame(self.rows).set_index("name")

    def to_markdown(self) -> str:
        """The table as GitHub-flavoured Markdown (for ``benchmarks/README.md``)."""
        headers = ["", *(header for _, header, _ in STUDY_COLUMNS)]
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for row in self.rows:
            cells = [row["name"], *(format_cell(row, key, fmt) for key, _, fmt in STUDY_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def format_cell(row: dict[str, Any], key: str, fmt: str) -> str:
    """One cell of the table as text ("-" when unknown)."""
    value = row.get(key)
    if value is None:
        return "-"
    if key == "rank_ic_ci":
        low, high = value
        return "-" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"
    return fmt.format(value)


def _check_same_folds(configs: Sequence[ExperimentConfig]) -> None:
    """Same data and same splits: otherwise the rows are not comparable."""
    first = configs[0]
    for config in configs[1:]:
        for section in ("data", "validation"):
            mine = getattr(config, section).model_dump(mode="json")
            theirs = getattr(first, section).model_dump(mode="json")
            if mine != theirs:
                differ = sorted(k for k in mine if mine.get(k) != theirs.get(k))
                raise ConfigError(
                    f"config {config.name!r} has other {section} settings than "
                    f"{first.name!r} ({', '.join(f'{section}.{k}' for k in differ)}): a study "
                    "compares forecasts on the same folds of the same data"
                )
        if config.mode != "cross_section":
            raise ConfigError(
                f"config {config.name!r} is a timing run; a study compares cross-sections"
            )
    if first.mode != "cross_section":
        raise ConfigError(f"config {first.name!r} is a timing run; a study compares cross-sections")


def _unique_names(configs: Sequence[ExperimentConfig]) -> list[str]:
    names: list[str] = []
    for config in configs:
        # Each name is a directory of the study: one safe path component.
        base = path_safe_name(config.name)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _model_row(name: str, result: RunResult, n_trials: int) -> dict[str, Any]:
    metrics = result.metrics
    forecast = metrics.get("forecast") or {}
    diagnostics = (metrics.get("diagnostics") or {}).get("model") or {}
    rank_ic = diagnostics.get("rank_ic") or {}
    quantiles = diagnostics.get("quantiles") or {}
    topk = (metrics.get("strategies") or {}).get("model_topk") or {}
    vs_ew = ((metrics.get("significance") or {}).get("model_topk") or {}).get("vs", {})
    vs_ew = vs_ew.get("equal_weight") or {}
    returns = result.returns
    topk_returns = returns.loc[returns["strategy"] == "model_topk", "net_return"]
    dsr = deflated_sharpe_ratio(topk_returns.to_numpy(), n_trials) if len(topk_returns) > 2 else {}
    seconds = [f.get("seconds") for f in result.folds]
    # The validation rank IC at each fold's kept epoch: the only figure a choice between
    # configurations may be based on (the test windows are for reporting). Rank IC, not
    # the monitored figure: it is the same whatever per-date normalisation the targets
    # had, so configurations trained on raw returns and on ranks compare fairly.
    valid = _finite([(f.get("valid") or {}).get("val_rank_ic") for f in result.folds])
    errors = _finite([(f.get("valid") or {}).get("val_rank_ic_se") for f in result.folds])
    selection = (metrics.get("training") or {}).get("selection") or {}
    scored = selection.get("folds_scored")
    return {
        "name": name,
        "kind": "model",
        "run_dir": str(result.run_dir),
        "valid_rank_ic": sum(valid) / len(valid) if valid else None,
        "valid_rank_ic_se": (
            math.sqrt(sum(e * e for e in errors)) / len(errors) if errors else None
        ),
        "ic": forecast.get("ic"),
        "rank_ic": rank_ic.get("rank_ic"),
        "rank_ic_ci": rank_ic.get("rank_ic_ci"),
        "rank_icir": rank_ic.get("rank_icir"),
        "spread": quantiles.get("spread"),
        "spread_t": quantiles.get("spread_t"),
        "sharpe": topk.get("sharpe"),
        "sharpe_vs_ew": vs_ew.get("sharpe_diff_ann"),
        "p_vs_ew": vs_ew.get("p_value"),
        "dsr": dsr.get("dsr"),
        "fit_seconds": sum(s for s in seconds if isinstance(s, int | float)) or None,
        "first_epoch_share": (metrics.get("training") or {}).get("first_epoch_share"),
        "significant_gain_share": selection["significant_gains"] / scored if scored else None,
    }


def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def _factor_rows(result: RunResult) -> list[dict[str, Any]]:
    """The single factors of the first run, scored on its samples."""
    factors = ((result.metrics.get("diagnostics") or {}).get("factors")) or {}
    strategies = result.metrics.get("strategies") or {}
    vs = (result.metrics.get("significance") or {}).get("momentum", {}).get("vs", {})
    rows = []
    for name, block in factors.items():
        rank_ic, quantiles = block.get("rank_ic") or {}, block.get("quantiles") or {}
        row = {
            "name": name,
            "kind": "factor",
            "run_dir": str(result.run_dir),
            "ic": rank_ic.get("ic"),
            "rank_ic": rank_ic.get("rank_ic"),
            "rank_ic_ci": rank_ic.get("rank_ic_ci"),
            "rank_icir": rank_ic.get("rank_icir"),
            "spread": quantiles.get("spread"),
            "spread_t": quantiles.get("spread_t"),
        }
        if name == "momentum_12_1" and "momentum" in strategies:
            # The run's own momentum strategy: top-k by 12-1 momentum, same costs.
            row["sharpe"] = strategies["momentum"].get("sharpe")
            row["sharpe_vs_ew"] = (vs.get("equal_weight") or {}).get("sharpe_diff_ann")
            row["p_vs_ew"] = (vs.get("equal_weight") or {}).get("p_value")
        rows.append(row)
    ew = strategies.get("equal_weight")
    if ew:
        rows.append({"name": "equal_weight", "kind": "baseline", "sharpe": ew.get("sharpe")})
    return rows


def compare(
    configs: Sequence[ExperimentConfig],
    out_dir: str | Path,
    *,
    on_run: Callable[[int, int, str], None] | None = None,
    configurations_tried: int | None = None,
) -> Study:
    """Run every configuration on the same folds and tabulate their forecasts.

    Parameters
    ----------
    configs : sequence of ExperimentConfig
        Two or more configurations with the same ``data`` and ``validation`` sections.
    out_dir : str or Path
        The study directory: each configuration runs in ``out_dir/<name>``; a run
        already there (finished or not) is resumed, so an interrupted study continues
        where it stopped. ``study.json`` and ``study.md`` are written last.
    on_run : callable, optional
        ``on_run(k, total, name)`` before each configuration's run (progress display).
    configurations_tried : int, optional
        Trials to deflate the DSR for; default the number of ``configs``. Give the
        study's whole count when these configurations extend one run before (it may not
        be fewer than ``configs``).

    Returns
    -------
    Study

    Raises
    ------
    ConfigError
        On fewer than one config, different data or splits, a timing config, or
        ``configurations_tried`` below the number of configs.
    """
    configs = list(configs)
    if not configs:
        raise ConfigError("compare needs at least one config")
    tried = len(configs) if configurations_tried is None else configurations_tried
    if isinstance(tried, bool) or not isinstance(tried, int) or tried < len(configs):
        raise ConfigError(
            f"configurations_tried must be an integer of at least the {len(configs)} "
            f"configurations given, got {configurations_tried!r}"
        )
    _check_same_folds(configs)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    names = _unique_names(configs)
    rows, first = [], None
    for k, (name, config) in enumerate(zip(names, configs, strict=True)):
        if on_run is not None:
            on_run(k, len(configs), name)
        result = run(config, folder / name, resume=True)
        first = first or result
        rows.append(_model_row(name, result, tried))
    rows.extend(_factor_rows(first))
    study = Study(rows=rows, configurations_tried=tried, out_dir=folder)
    atomic_write_text(
        folder / "study.json",
        json.dumps({"configurations_tried": tried, "rows": rows}, indent=2, allow_nan=False),
    )
    atomic_write_text(folder / "study.md", study.to_markdown())
    return study
