"""``build_report(run_dir)``: one self-contained HTML page per run.

The page is a single file readable offline: inline CSS, charts as PNG data URIs, no
script, font or stylesheet from the network, no JavaScript. Each part of the page is a
``<section id="...">`` with an ``<h2>``; the optional ones (significance, attention,
classification, horizons) are left out when the run has no data for them, and the
others say what is missing instead of failing.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from alphaseq._atomic import atomic_write_text
from alphaseq._logging import logger
from alphaseq.backtest import drawdown_periods, rolling_beta, rolling_volatility, yearly_returns
from alphaseq.backtest.significance import (
    BASELINE_STRATEGIES,
    difference_text,
    difference_verdict,
    verdict_sentence,
    verdict_table,
)
from alphaseq.report import figures
from alphaseq.report.data import (
    TRADING_DAYS,
    RunData,
    cross_section_ic,
    drawdowns,
    holdings,
    load_run,
    monthly_ic,
    monthly_returns,
    rebalance_turnover,
    rolling_sharpe,
    rolling_time_series_ic,
    wealth,
    wide_returns,
)

__all__ = ["SECTION_IDS", "build_report", "render_report"]

SECTION_IDS = (
    "header",
    "strategies",
    "significance",
    "relative",
    "equity",
    "drawdowns",
    "rolling-sharpe",
    "rolling-risk",
    "monthly-returns",
    "yearly",
    "distribution",
    "ic",
    "diagnostics",
    "turnover",
    "weights",
    "training",
    "attention",
    "classification",
    "horizons",
    "folds",
)
"""Every section id the page can have, in page order."""

OPTIONAL_SECTIONS = frozenset(
    {
        "significance",
        "relative",
        "rolling-risk",
        "distribution",
        "diagnostics",
        "attention",
        "classification",
        "horizons",
    }
)
"""Sections left out entirely when the run has no data for them."""

TIMING_IC_WINDOW = 63
"""Days in the rolling time-series correlation of single-instrument (timing) runs."""

_DASH = "–"

_STRATEGY_NOTES = {
    "model_topk": "equal weight over the k best forecasts, rebalanced at month ends",
    "model_timing": "the instrument held long/flat (or long/short), sized by the forecast",
    "equal_weight": "every tradable stock in equal weight",
    "benchmark": "the benchmark index, bought and held",
    "buy_and_hold": "the instrument, bought and held",
    "momentum": "12-1 month momentum top-k",
    "hrp": "hierarchical risk parity",
}


# --------------------------------------------------------------------------- formatting


def _number(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing, NaN, text)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _pct(value: Any, decimals: int = 1, signed: bool = False) -> str:
    number = _number(value)
    if number is None:
        return _DASH
    return f"{number * 100:{'+' if signed else ''}.{decimals}f}%"


def _fixed(value: Any, decimals: int = 2) -> str:
    number = _number(value)
    return _DASH if number is None else f"{number:.{decimals}f}"


def _integer(value: Any) -> str:
    number = _number(value)
    return _DASH if number is None else f"{round(number):,}"


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


_MONITORS = {"ic": "IC", "rank_ic": "rank IC", "sharpe": "Sharpe", "loss": "loss"}


def _monitor_name(monitor: Any) -> str:
    """Display name of a training monitor (``ic`` -> ``IC``)."""
    return _MONITORS.get(str(monitor), str(monitor))


def _text(value: Any) -> str:
    return _DASH if value is None or value == "" else str(value)


@dataclass(frozen=True)
class _Cell:
    """One table cell: its text (escaped on output) and how it is shown."""

    text: str
    numeric: bool = False
    best: bool = False
    classes: str = ""
    style: str = ""
    header: bool = False

    def render(self) -> str:
        classes = " ".join(
            c
            for c in ("num" if self.numeric else "", "best" if self.best else "", self.classes)
            if c
        )
        attributes = f' class="{classes}"' if classes else ""
        if self.style:
            attributes += f' style="{escape(self.style)}"'
        body = escape(self.text)
        if self.best:
            body = f"<strong>{body}</strong>"
        tag = "th" if self.header else "td"
        scope = ' scope="row"' if self.header else ""
        return f"<{tag}{scope}{attributes}>{body}</{tag}>"


def _num(text: str, **kwargs: Any) -> _Cell:
    return _Cell(text, numeric=True, **kwargs)


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[_Cell | str]],
    *,
    numeric_headers: Sequence[bool] | None = None,
    classes: str = "",
    caption: str | None = None,
    row_headers: bool = True,
) -> str:
    """An HTML table; string cells are plain text.

    With ``row_headers`` the first cell of every body row is a ``<th scope="row">``.
    """
    numeric = list(numeric_headers or [False] * len(headers))
    head = "".join(
        f'<th scope="col" class="num">{escape(h)}</th>'
        if numeric[k]
        else f'<th scope="col">{escape(h)}</th>'
        for k, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for k, cell in enumerate(row):
            if isinstance(cell, str):
                cell = _Cell(cell)
            if k == 0 and row_headers and not cell.header:
                cell = replace(cell, header=True)
            cells.append(cell.render())
        body.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    cls = f' class="{escape(classes)}"' if classes else ""
    return (
        f'<div class="table-wrap"><table{cls}>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _draw(name: str, chart: Callable[..., str | None], *args: Any, **kwargs: Any) -> Any:
    """``chart(*args, **kwargs)``, or the exception it raised, logged as a warning.

    The one place where the page calls a chart function: a figure that fails to draw
    costs only itself (:func:`_figure` shows a note instead), not its section's tables
    nor the report.
    """
    try:
        return chart(*args, **kwargs)
    except Exception as exc:
        logger.warning(
            "report: figure %r could not be drawn: %s: %s", name, type(exc).__name__, exc
        )
        logger.info("report: figure %r failed", name, exc_info=True)  # the traceback, for run.log
        return exc


def _figure(uri: str | Exception, alt: str, caption: str) -> str:
    """A figure with its caption; a failed chart (see :func:`_draw`) becomes a note."""
    if isinstance(uri, Exception):
        return _note(f"Figure could not be drawn: {type(uri).__name__}: {uri}")
    return (
        f'<figure><img src="{uri}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _section(section_id: str, title: str, body: str, lead: str | None = None) -> str:
    intro = f'<p class="lead">{escape(lead)}</p>' if lead else ""
    return f'<section id="{section_id}">\n<h2>{escape(title)}</h2>\n{intro}{body}\n</section>'


def _best_flags(values: Sequence[float | None], direction: str | None) -> list[bool]:
    """Which values are the best of their column (ties all marked; needs 2 values)."""
    known = [v for v in values if v is not None]
    if direction is None or len(known) < 2:
        return [False] * len(values)
    target = max(known) if direction == "max" else min(known)
    return [v is not None and math.isclose(v, target, rel_tol=1e-9, abs_tol=1e-12) for v in values]


# --------------------------------------------------------------------------- sections


def _header(data: RunData, main: str | None, reference: str | None) -> str:
    metrics, config = data.metrics, data.config
    run = metrics.get("run") or {}
    source = metrics.get("data") or {}
    model = config.get("model") or {}
    labels = config.get("labels") or {}
    windows = config.get("windows") or {}
    training = config.get("training") or {}
    validation = config.get("validation") or {}
    portfolio = config.get("portfolio") or {}
    name = run.get("name") or config.get("name") or data.run_dir.name

    params = model.get("params") or {}
    model_text = str(model.get("name") or _DASH)
    if params:
        model_text += " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    ensemble = model.get("ensemble")
    if isinstance(ensemble, Mapping):
        others = [
            str(m.get("name")) for m in ensemble.get("members") or [] if isinstance(m, Mapping)
        ]
        seeds = ensemble.get("seeds") or [training.get("seed", 0)]
        model_text += (
            f"; ensemble of {', '.join([str(model.get('name')), *others])} × seeds "
            f"{', '.join(str(x) for x in seeds)}, rank-averaged per date"
        )
    if windows.get("lookback"):
        model_text += f"; lookback {windows['lookback']} days"
    task = metrics.get("task") or config.get("task") or _DASH
    task_text = f"{task} / {data.mode}"
    trained = _trained_labels(labels, str(task))
    oos = run.get("out_of_sample") or {}
    versions = run.get("versions") or {}
    created = run.get("created")
    created_text = _text(created).replace("T", " ").replace("+00:00", " UTC")
    if run.get("seconds") is not None:
        command = _text(run.get("command") or "run")
        created_text += f" by alphaseq {command} in {_fixed(run['seconds'], 1)} s"
        if _number(run.get("training_seconds")):
            created_text += f"; training took {_fixed(run['training_seconds'], 1)} s"
    data_range = f"{_text(source.get('first_date'))} – {_text(source.get('last_date'))}"
    window = config.get("data") or {}
    if window.get("start") or window.get("end"):
        first = window.get("start") or "first date"
        last = window.get("end") or "last date"
        data_range += f" (experiment window {first} – {last})"
    tickers = _integer(source.get("tickers"))
    universe = f"{tickers} {'ticker' if tickers == '1' else 'tickers'}"
    if source.get("benchmark"):
        universe += f"; benchmark: {source['benchmark']}"
    if validation:
        scheme = str(validation.get("scheme", "walk_forward")).replace("_", "-")
        validation_text = (
            f"{scheme}: {validation.get('train_months')} months train, "
            f"{validation.get('valid_months')} validation, {validation.get('test_months')} "
            f"test, step {validation.get('step_months')}; {len(data.folds)} folds"
        )
        if validation.get("embargo_days"):
            validation_text += f"; embargo {validation['embargo_days']} days"
    else:
        validation_text = f"{len(data.folds)} folds"
    training_text = ", ".join(
        f"{label} {training[key]}"
        for key, label in (
            ("epochs", "epochs"),
            ("batch_size", "batch"),
            ("learning_rate", "lr"),
            ("loss", "loss"),
            ("monitor", "monitor"),
            ("precision", "precision"),
        )
        if training.get(key) is not None
    )
    portfolio_text = []
    if run.get("top_k"):
        portfolio_text.append(f"top-k {run['top_k']}")
    if portfolio.get("rebalance") and data.mode != "timing":
        portfolio_text.append(f"rebalance {portfolio['rebalance']}")
    if portfolio.get("max_turnover") is not None and data.mode != "timing":
        portfolio_text.append(f"max turnover {_pct(portfolio['max_turnover'], 0)}")
    if data.mode == "timing" and config.get("timing"):
        timing = config["timing"]
        portfolio_text.append(f"{timing.get('mode')}, position cap {timing.get('cap')}")
    cost = run.get("cost_bps", portfolio.get("cost_bps"))

    facts = [
        ("Data set", f"{_text(source.get('name'))} — {_text(source.get('source'))}"),
        ("Universe", universe),
        ("Data range", data_range),
        ("Task / mode", task_text),
        ("Trained on", trained or _DASH),
        (
            "Scored against",
            f"{_text((metrics.get('forecast') or {}).get('label'))} (out of sample)",
        ),
        ("Model", model_text),
        ("Training", training_text or _DASH),
        ("Validation", validation_text),
        ("Out of sample", f"{_text(oos.get('start'))} – {_text(oos.get('end'))}"),
        ("Portfolio", "; ".join(portfolio_text) or _DASH),
        ("Costs", f"{_fixed(cost, 1)} bps per unit traded"),
        ("Configurations tried", _integer(run.get("configurations_tried"))),
        ("Config digest", f"sha256 {data.config_digest}" if data.config_digest else _DASH),
        ("Data fingerprint", str(source.get("fingerprint") or _DASH)[:12]),
        ("Created", created_text),
        ("Library versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or _DASH),
    ]
    repairs = source.get("repairs") or []
    if repairs:
        facts.append(
            (
                "Data repairs",
                "; ".join(map(str, repairs[:5]))
                + (f" (+{len(repairs) - 5} more)" if len(repairs) > 5 else ""),
            )
        )
    facts_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)

    parts = [
        '<p class="eyebrow">alphaseq run report</p>',
        f"<h1>{escape(str(name))}</h1>",
        f'<p class="subtitle">{escape(_text(source.get("name")))} · {escape(task_text)} · '
        f"trained on {escape(trained or _DASH)} · out of sample "
        f"{escape(_text(oos.get('start')))} – {escape(_text(oos.get('end')))}</p>",
        _verdict(data),
    ]
    bias = source.get("survivorship_bias")
    if bias:
        parts.append(
            '<div class="warning" role="note"><strong>Survivorship bias.</strong> '
            f"{escape(_sentence(str(bias)))} Returns of every strategy trading this universe are "
            "flattered; compare strategies with each other, not with the market.</div>"
        )
    for problem in data.problems:
        parts.append(f'<div class="warning" role="note">{escape(problem)}.</div>')
    parts.append(_key_figures(data, main, reference))
    parts.append(f'<h2>Run overview</h2><dl class="facts">{facts_html}</dl>')
    return '<section id="header">\n' + "\n".join(parts) + "\n</section>"


def _trained_labels(labels: Mapping[str, Any], task: str) -> str:
    """The labels the model was trained on, as the config defines them."""
    kind = str(labels.get("kind") or "forward_return")
    horizons = [str(h) for h in labels.get("horizons") or [21]]
    if task == "trend":
        text = (
            ", ".join(f"trend_{h}" for h in horizons)
            + " (trend scores) and "
            + ", ".join(f"direction_{h}" for h in horizons)
            + " (up/down heads)"
        )
    elif task == "classification":
        classes = "DOWN/FLAT/UP" if kind == "three_class" else "DOWN/UP"
        text = ", ".join(f"{kind}_{h}" for h in horizons) + f" ({classes} classes)"
    else:
        text = ", ".join(f"{kind}_{h}" for h in horizons)
    notes = []
    if labels.get("excess"):
        notes.append(f"in excess of the {labels['excess']}")
    if labels.get("cross_section"):
        notes.append(
            {"rank": "ranked", "zscore": "z-scored", "demean": "demeaned"}.get(
                str(labels["cross_section"]), str(labels["cross_section"])
            )
            + " across tickers per date"
        )
    if labels.get("signal_horizon") and len(horizons) > 1:
        notes.append(f"the {labels['signal_horizon']}-day forecast trades")
    return text + (f" ({'; '.join(notes)})" if notes else "")


_VERDICT_CLASS = {"better": "better", "worse": "worse"}


def _verdict(data: RunData) -> str:
    """The verdict, first: one sentence per model strategy and reference, coloured."""
    rows = verdict_table(data.metrics.get("significance") or {})
    if not rows:
        return (
            '<div class="verdict" id="verdict" role="note"><p class="verdict-title">Verdict'
            "</p>"
            + _note("No significance test in this run: no verdict against the baselines.")
            + "</div>"
        )
    items = "".join(
        f'<li class="{_VERDICT_CLASS.get(r["verdict"], "neutral")}">'
        f"{escape(verdict_sentence(r))}.</li>"
        for r in rows
    )
    return (
        '<div class="verdict" id="verdict" role="note"><p class="verdict-title">Verdict: '
        "the model strategies against the baselines, out of sample</p>"
        f'<ul>{items}</ul><p class="verdict-note">ΔSharpe: annualised Sharpe difference '
        "with its 95 % interval; p: two-sided Jobson–Korkie test with Memmel's correction "
        "(better or worse at 5 %); DSR: probability that the true Sharpe ratio is above "
        "zero, deflated for the configurations tried.</p></div>"
    )


def _model_strategies(data: RunData) -> list[str]:
    """The strategies built from the forecasts (everything but the baselines)."""
    return [n for n in data.strategies if n not in BASELINE_STRATEGIES]


def _best_model(data: RunData) -> str | None:
    """The model strategy with the highest out-of-sample Sharpe ratio (failed ones out)."""
    strategies = data.metrics.get("strategies") or {}
    construction = data.metrics.get("construction") or {}
    scored = [
        (sharpe, -k, n)
        for k, n in enumerate(_model_strategies(data))
        if not (construction.get(n) or {}).get("failed")
        and (sharpe := _number((strategies.get(n) or {}).get("sharpe"))) is not None
    ]
    return max(scored)[2] if scored else data.main_strategy


def _card_reference(data: RunData) -> str | None:
    """What the key figures compare with: equal weight when the universe carries
    survivorship bias (the index is then no fair yardstick), else the benchmark."""
    biased = (data.metrics.get("data") or {}).get("survivorship_bias")
    if biased and "equal_weight" in data.strategies:
        return "equal_weight"
    return data.reference_strategy


def _key_figures(data: RunData, main: str | None, reference: str | None) -> str:
    """Headline cards: the model's return, Sharpe, drawdown (vs the reference) and IC."""
    reference = _card_reference(data)
    strategies = data.metrics.get("strategies") or {}
    figures_ = strategies.get(main) if main else None
    if not isinstance(figures_, Mapping):
        return ""
    ref = strategies.get(reference) if reference else None
    ref = ref if isinstance(ref, Mapping) else {}

    def card(label: str, value: str, detail: str) -> str:
        return (
            f'<div class="card"><div class="card-label">{escape(label)}</div>'
            f'<div class="card-value">{escape(value)}</div>'
            f'<div class="card-detail">{escape(detail)}</div></div>'
        )

    versus = f"{reference}: " if reference else ""
    cards = [
        card(
            "Annualised return",
            _pct(figures_.get("ann_return"), signed=True),
            f"{versus}{_pct(ref.get('ann_return'), signed=True)}" if reference else main or "",
        ),
        card(
            "Sharpe ratio",
            _fixed(figures_.get("sharpe")),
            f"{versus}{_fixed(ref.get('sharpe'))}" if reference else main or "",
        ),
        card(
            "Max drawdown",
            _pct(figures_.get("max_drawdown")),
            f"{versus}{_pct(ref.get('max_drawdown'))}" if reference else main or "",
        ),
    ]
    forecast = data.metrics.get("forecast") or {}
    if _number(forecast.get("ic")) is not None:
        cards.append(
            card(
                "Forecast IC",
                _fixed(forecast["ic"], 3),
                f"rank IC {_fixed(forecast.get('rank_ic'), 3)}",
            )
        )
    elif _number(forecast.get("time_series_ic")) is not None:
        cards.append(
            card(
                "Time-series IC",
                _fixed(forecast["time_series_ic"], 3),
                f"direction accuracy {_pct(forecast.get('direction_accuracy'))} (always up "
                f"{_pct(forecast.get('always_up_accuracy'))})",
            )
        )
    against = f" against <code>{escape(reference)}</code>" if reference else ""
    if reference == "equal_weight" and data.reference_strategy:
        against += (
            " (not the index: the universe carries survivorship bias, so strategies are "
            "compared with each other)"
        )
    return (
        f'<p class="lead">Key figures of <code>{escape(str(main))}</code> out of sample'
        f'{against}.</p><div class="cards">{"".join(cards)}</div>'
    )


# (key, header, format, best direction)
_STRATEGY_COLUMNS: tuple[tuple[str, str, Callable[[Any], str], str | None], ...] = (
    ("total_return", "Total return", lambda v: _pct(v, signed=True), "max"),
    ("ann_return", "Ann. return", lambda v: _pct(v, signed=True), "max"),
    ("ann_vol", "Ann. vol", _pct, "min"),
    ("sharpe", "Sharpe", _fixed, "max"),
    ("sortino", "Sortino", _fixed, "max"),
    ("max_drawdown", "Max drawdown", _pct, "max"),
    ("calmar", "Calmar", _fixed, "max"),
    ("hit_rate", "Hit rate", _pct, "max"),
    ("turnover", "Turnover", _pct, "min"),
    ("information_ratio", "IR", _fixed, "max"),
)
_TIMING_COLUMNS: tuple[tuple[str, str, Callable[[Any], str], str | None], ...] = (
    ("time_in_market", "Time in market", _pct, None),
    ("win_rate", "Win rate", _pct, None),
    ("n_trades", "Trades", _integer, None),
)


def _strategies(data: RunData, names: Sequence[str]) -> str:
    if not names:
        return _section("strategies", "Strategies", _note("No strategy figures in this run."))
    strategies = data.metrics.get("strategies") or {}
    rows_data = {
        n: strategies.get(n) if isinstance(strategies.get(n), Mapping) else {} for n in names
    }
    columns = list(_STRATEGY_COLUMNS)
    if any(any(k in rows_data[n] for k, *_ in _TIMING_COLUMNS) for n in names):
        columns += _TIMING_COLUMNS
    flags = {
        key: _best_flags([_number(rows_data[n].get(key)) for n in names], direction)
        for key, _, _, direction in columns
    }
    rows = []
    for i, name in enumerate(names):
        figures_ = rows_data[name]
        cells: list[_Cell] = [_Cell(name, classes="strategy")]
        for key, _, fmt, _ in columns:
            cells.append(_num(fmt(figures_.get(key)), best=flags[key][i]))
        start, end = figures_.get("max_drawdown_start"), figures_.get("max_drawdown_end")
        cells.append(_num(f"{start} → {end}" if start and end else _DASH, classes="dates"))
        rows.append(cells)
    headers = ["Strategy", *(h for _, h, _, _ in columns), "Drawdown peak → trough"]
    table = _table(
        headers, rows, numeric_headers=[False, *[True] * (len(headers) - 1)], classes="metrics"
    )
    run = data.metrics.get("run") or {}
    oos = run.get("out_of_sample") or {}
    lead = (
        f"Out of sample {_text(oos.get('start'))} – {_text(oos.get('end'))}, daily net "
        f"returns after {_fixed(run.get('cost_bps'), 1)} bps per unit traded. Best value of "
        "each column in bold: highest returns, Sharpe, Sortino, Calmar, hit rate and IR; "
        "least negative drawdown; lowest volatility and turnover."
    )
    construction = data.metrics.get("construction") or {}
    notes = [
        f"<li><code>{escape(n)}</code>: {escape(_STRATEGY_NOTES[n])}</li>"
        for n in names
        if n in _STRATEGY_NOTES and n not in construction
    ]
    for name, block in construction.items():
        if not isinstance(block, Mapping):
            continue
        limits = block.get("constraints") or {}
        limit_text = ", ".join(f"{k} {v}" for k, v in limits.items() if v is not None)
        notes.append(
            f"<li><code>{escape(str(name))}</code>: {escape(str(block.get('type', 'constructed')))}"
            f" portfolio ({escape(limit_text or 'no constraints')}); "
            f"{escape(_integer(block.get('rebalances_checked')))} rebalances checked, "
            f"{escape(_integer(block.get('violations')))} violations, "
            f"{escape(_integer(block.get('fallbacks')))} optimiser fallbacks"
            + (
                f"; <strong>failed</strong>: {escape(str(block.get('failure')))}, it never "
                "traded and its row is flat cash, not a result"
                if block.get("failed")
                else ""
            )
            + "</li>"
        )
    explain = (
        "Turnover is the average one-way turnover per rebalance, ½ Σ|Δw| (1 = the whole "
        "book replaced; drift included, the initial build left out); "
        "hit rate the share of days with a positive return; IR the information ratio "
        "against the reference."
    )
    if any(k == "time_in_market" for k, *_ in columns):
        explain += (
            " Time in market is the share of days with a position; win rate the share of "
            "winning trades."
        )
    body = table + (f'<ul class="legend-list">{"".join(notes)}</ul>' if notes else "")
    return _section("strategies", "Strategies", body + _note(explain), lead)


def _significance(data: RunData, names: Sequence[str]) -> str | None:
    block = data.metrics.get("significance")
    if not isinstance(block, Mapping) or not block:
        return None
    rows_names = [n for n in names if isinstance(block.get(n), Mapping)]
    rows_names += [n for n in block if n not in rows_names and isinstance(block[n], Mapping)]
    if not rows_names:
        return None
    baselines: list[str] = []
    for n in rows_names:
        for b in block[n].get("vs") or {}:
            if b not in baselines:
                baselines.append(b)
    headers = ["Strategy", "Sharpe (ann.)", "PSR", "DSR", "Trials", "E[max Sharpe]"]
    for b in baselines:
        headers.append(f"ΔSharpe (p) vs {b}")
    rows = []
    for n in rows_names:
        entry = block[n]
        cells = [
            _Cell(n, classes="strategy"),
            _num(_fixed(entry.get("sharpe_ann"))),
            _num(_fixed(entry.get("psr"))),
            _num(_fixed(entry.get("dsr"))),
            _num(_integer(entry.get("n_trials"))),
            _num(_fixed(entry.get("expected_max_sharpe_ann"))),
        ]
        for b in baselines:
            test = (entry.get("vs") or {}).get(b)
            if not isinstance(test, Mapping):
                cells.append(_num(_DASH))
                continue
            verdict = difference_verdict(dict(test))
            cells.append(
                _num(
                    difference_text(dict(test)) or _DASH,
                    classes=f"sig-{verdict}" if verdict in ("better", "worse") else "",
                )
            )
        rows.append(cells)
    table = _table(headers, rows, numeric_headers=[False, *[True] * (len(headers) - 1)])
    lead = (
        "PSR is the probability that the true Sharpe ratio is above zero; DSR deflates it for "
        "the number of configurations tried (E[max Sharpe] is the best Sharpe expected from "
        "that many trials by luck). Each comparison shows the annualised Sharpe difference "
        "against the baseline with the p-value of its two-sided Jobson–Korkie test with "
        "Memmel's correction: green when significantly better at 5 %, red when "
        "significantly worse."
    )
    return _section("significance", "Statistical significance", table, lead)


def _references(data: RunData) -> list[str]:
    """The passive references of the relative figures, in the order they are shown."""
    return [n for n in ("equal_weight", "benchmark", "buy_and_hold") if n in data.strategies]


def _relative(data: RunData, names: Sequence[str]) -> str | None:
    block = data.metrics.get("relative")
    if not isinstance(block, Mapping) or not block:
        return None
    models = set(_model_strategies(data))
    rows = []
    for name in names:
        against = block.get(name)
        if not isinstance(against, Mapping):
            continue
        for reference, figures_ in against.items():
            if not isinstance(figures_, Mapping):
                continue
            rows.append(
                [
                    _Cell(name, classes="strategy model" if name in models else "strategy"),
                    _Cell(str(reference)),
                    _num(_pct(figures_.get("alpha"), signed=True)),
                    _num(_fixed(figures_.get("beta"))),
                    _num(_fixed(figures_.get("correlation"))),
                    _num(_pct(figures_.get("tracking_error"))),
                    _num(_fixed(figures_.get("up_capture"))),
                    _num(_fixed(figures_.get("down_capture"))),
                ]
            )
    if not rows:
        return None
    headers = [
        "Strategy",
        "Against",
        "Alpha (ann.)",
        "Beta",
        "Correlation",
        "Tracking error",
        "Up capture",
        "Down capture",
    ]
    table = _table(headers, rows, numeric_headers=[False, False, *[True] * 6])
    lead = (
        "Each strategy against each passive reference on their common days: Jensen's alpha "
        "(the intercept of the daily regression on the reference, × 252, zero risk-free "
        "rate), beta (its slope), correlation, tracking error (annualised volatility of the "
        "difference) and the up and down capture ratios (annualised return on the days the "
        "reference rose, or fell, over the reference's own on those days; below 1 on the "
        "way down is protection)."
    )
    return _section("relative", "Relative risk: alpha, beta and capture", table, lead)


def _drawdown_table(wide: pd.DataFrame, shown: Sequence[str], top: int = 5) -> str:
    """The ``top`` worst drawdowns of each shown strategy: peak, trough, recovery."""
    rows = []
    for name in shown:
        if name not in wide:
            continue
        series = wide[name].dropna()
        if series.empty:
            continue
        periods = drawdown_periods(series, top=top)
        for k, period in enumerate(periods.itertuples(index=False)):
            recovery = (
                pd.Timestamp(period.recovery).date().isoformat()
                if period.recovered
                else "not recovered"
            )
            rows.append(
                [
                    _Cell(name if k == 0 else "", classes="strategy"),
                    _num(str(k + 1)),
                    _num(_pct(period.depth)),
                    _Cell(pd.Timestamp(period.start).date().isoformat(), classes="dates"),
                    _Cell(pd.Timestamp(period.trough).date().isoformat(), classes="dates"),
                    _Cell(recovery, classes="dates"),
                    _num(_integer(period.days) + ("" if period.recovered else "+")),
                ]
            )
    if not rows:
        return ""
    return _table(
        ["Strategy", "#", "Depth", "Peak", "Trough", "Recovery", "Trading days"],
        rows,
        numeric_headers=[False, True, True, False, False, False, True],
        caption=f"The {top} worst drawdowns (trading days from peak to recovery; + still "
        "under water at the end)",
    )


def _rolling_risk(
    data: RunData, wide: pd.DataFrame | None, colors: Mapping[str, str], shown: Sequence[str]
) -> str | None:
    if wide is None or wide.empty:
        return None
    n = int(wide.notna().sum().max())
    window = TRADING_DAYS // 2 if n >= TRADING_DAYS else 63
    if n < window + 5:
        return None
    columns = [c for c in shown if c in wide]
    parts = []
    volatility = rolling_volatility(wide[columns], window)
    uri = _draw(
        "Rolling volatility",
        figures.rolling_chart,
        volatility,
        colors,
        f"annualised volatility, trailing {window} days",
        percent=True,
    )
    parts.append(
        _figure(
            uri,
            "Rolling volatility",
            f"Annualised volatility of daily net returns over the trailing {window} trading days.",
        )
    )
    base = data.reference_strategy or ("equal_weight" if "equal_weight" in wide else None)
    if base is not None and base in wide:
        betas = [c for c in columns if c != base]
        if betas:
            beta = rolling_beta(wide[betas], wide[base].fillna(0.0), window)
            uri = _draw(
                "Rolling beta",
                figures.rolling_chart,
                beta,
                colors,
                f"beta to {base}, trailing {window} days",
                reference_line=1.0,
            )
            parts.append(
                _figure(
                    uri,
                    "Rolling beta",
                    f"Beta of each strategy's daily returns to {base} over the trailing "
                    f"{window} trading days (1 = moves one for one with it).",
                )
            )
    return _section("rolling-risk", "Rolling volatility and beta", "".join(parts))


def _yearly(data: RunData, wide: pd.DataFrame | None, names: Sequence[str]) -> str:
    title = "Yearly returns"
    if wide is None or wide.empty:
        return _section("yearly", title, _note("No daily returns in this run."))
    columns = [n for n in names if n in wide]
    table = yearly_returns(wide[columns])
    if table.empty:
        return _section("yearly", title, _note("No daily returns in this run."))
    best, reference = _best_model(data), data.reference_strategy
    excess = best is not None and reference is not None and best in table and reference in table
    values = table.to_numpy(dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)])
    scale = float(np.quantile(finite, 0.95)) if finite.size else 0.0
    rows = []
    for year, row in table.iterrows():
        cells = [_Cell(str(year))]
        for name in columns:
            value = _number(row[name])
            cells.append(
                _num(_pct(value, signed=True), style=_heat_color(value, scale))
                if value is not None
                else _num(_DASH)
            )
        if excess:
            gap = _number(row[best] - row[reference])
            cells.append(_num(_pct(gap, signed=True), classes="year"))
        rows.append(cells)
    headers = ["Year", *columns]
    if excess:
        headers.append(f"{best} − {reference}")
    html_table = _table(
        headers, rows, numeric_headers=[False, *[True] * (len(headers) - 1)], classes="heatmap"
    )
    lead = (
        "Compounded net return of every strategy in each calendar year (partial first and "
        "last years)"
        + (
            f"; the last column is the best model strategy's ({best}) return minus the "
            f"{reference}'s."
            if excess
            else "."
        )
    )
    return _section("yearly", title, html_table, lead)


_DISTRIBUTION_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("var", "VaR 95 %", lambda v: _pct(v, 2)),
    ("cvar", "CVaR 95 %", lambda v: _pct(v, 2)),
    ("skew", "Skew", _fixed),
    ("kurtosis", "Excess kurtosis", _fixed),
    ("best_day", "Best day", lambda v: _pct(v, 2, signed=True)),
    ("worst_day", "Worst day", lambda v: _pct(v, 2, signed=True)),
    ("best_month", "Best month", lambda v: _pct(v, 1, signed=True)),
    ("worst_month", "Worst month", lambda v: _pct(v, 1, signed=True)),
    ("positive_months", "Positive months", _pct),
)


def _distribution(
    data: RunData,
    wide: pd.DataFrame | None,
    names: Sequence[str],
    colors: Mapping[str, str],
    shown: Sequence[str],
) -> str | None:
    block = data.metrics.get("distribution")
    if not isinstance(block, Mapping) or not block:
        return None
    rows = []
    for name in names:
        entry = block.get(name)
        if not isinstance(entry, Mapping):
            continue
        cells = [_Cell(name, classes="strategy")]
        for key, _, fmt in _DISTRIBUTION_COLUMNS:
            text = fmt(entry.get(key))
            when = entry.get(f"{key}_date") or entry.get(f"{key}_label")
            cells.append(_num(f"{text} ({when})" if when and text != _DASH else text))
        rows.append(cells)
    if not rows:
        return None
    headers = ["Strategy", *(h for _, h, _ in _DISTRIBUTION_COLUMNS)]
    table = _table(
        headers, rows, numeric_headers=[False, *[True] * (len(headers) - 1)], classes="metrics"
    )
    parts = []
    if wide is not None and not wide.empty:
        picked = [n for n in shown if n in wide][:3]
        uri = _draw(
            "Distribution of daily returns",
            figures.return_histogram,
            {n: wide[n].dropna() for n in picked},
            colors,
            {n: _number((block.get(n) or {}).get("var")) for n in picked},
        )
        parts.append(
            _figure(
                uri,
                "Distribution of daily returns",
                "Histogram of daily net returns (the 0.5 % most extreme days on each side "
                "beyond the axis); dashed lines: each strategy's 95 % value at risk.",
            )
        )
    lead = (
        "Tails of the daily net returns: historical value at risk (the 5th percentile of "
        "daily returns) and conditional VaR (the mean of the days at or below it), skew "
        "and excess kurtosis (0 for a normal distribution), and the best and worst day and "
        "calendar month with their dates."
    )
    return _section("distribution", "Return distribution", "".join(parts) + table, lead)


def _left_out_text(wide: pd.DataFrame, shown: Sequence[str]) -> str:
    """The caption's note on the strategies a chart leaves out to stay readable."""
    hidden = [c for c in wide.columns if c not in shown]
    if not hidden:
        return ""
    return f" Not drawn, to keep the chart readable (see the tables): {', '.join(hidden)}."


def _equity(
    data: RunData, wide: pd.DataFrame | None, colors: Mapping[str, str], shown: Sequence[str]
) -> str:
    if wide is None or wide.empty:
        return _section("equity", "Cumulative return", _note("No daily returns in this run."))
    cost = (data.metrics.get("run") or {}).get("cost_bps")
    uri = _draw(
        "Cumulative net return",
        figures.equity_chart,
        wealth(wide[[c for c in shown if c in wide]]),
        colors,
        data.out_of_sample_start,
    )
    caption = (
        f"Growth of 1 invested, net of {_fixed(cost, 1)} bps costs, on a log scale; the "
        "axis reads as cumulative return and the legend gives the final figure. The dotted "
        "line marks the start of the out-of-sample period; the record starts at the first "
        "rebalance. Model strategies are drawn solid and heavy, baselines thin and dashed."
    ) + _left_out_text(wide, shown)
    return _section("equity", "Cumulative return", _figure(uri, "Cumulative net return", caption))


def _drawdowns(
    wide: pd.DataFrame | None,
    colors: Mapping[str, str],
    main: str | None,
    shown: Sequence[str],
    tabled: Sequence[str],
) -> str:
    if wide is None or wide.empty:
        return _section("drawdowns", "Drawdowns", _note("No daily returns in this run."))
    drawn = wide[[c for c in shown if c in wide]]
    uri = _draw("Drawdowns", figures.drawdown_chart, drawdowns(drawn), colors, main)
    caption = (
        "Loss from the running peak of each strategy's wealth (underwater curve)."
        + _left_out_text(wide, shown)
    )
    body = _figure(uri, "Drawdowns", caption) + _drawdown_table(wide, tabled)
    return _section("drawdowns", "Drawdowns", body)


def _rolling_sharpe(
    wide: pd.DataFrame | None, colors: Mapping[str, str], shown: Sequence[str]
) -> str:
    title = "Rolling Sharpe ratio"
    if wide is None or wide.empty:
        return _section("rolling-sharpe", title, _note("No daily returns in this run."))
    n = int(wide.notna().sum().max())
    window = TRADING_DAYS if n >= TRADING_DAYS + 21 else 63
    if n < window + 5:
        return _section(
            "rolling-sharpe",
            title,
            _note(f"Only {n} days of returns: too short for a rolling window."),
        )
    uri = _draw(
        "Rolling Sharpe ratio",
        figures.rolling_sharpe_chart,
        rolling_sharpe(wide[[c for c in shown if c in wide]], window),
        colors,
        window,
    )
    label = "12-month" if window == TRADING_DAYS else "3-month"
    caption = (
        f"Annualised Sharpe ratio over the trailing {window} trading days ({label} window"
        + ("" if window == TRADING_DAYS else ", the record being too short for 12 months")
        + "), zero risk-free rate."
        + _left_out_text(wide, shown)
    )
    return _section("rolling-sharpe", f"Rolling {label} Sharpe ratio", _figure(uri, title, caption))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _heat_color(value: float, scale: float) -> str:
    """Background colour: blue for gains, red for losses, white at zero (a diverging
    pair that colour-blind readers tell apart, unlike green and red)."""
    strength = min(abs(value) / scale, 1.0) * 0.7 if scale > 0 else 0.0
    target = (33, 102, 172) if value >= 0 else (214, 47, 39)
    r, g, b = (round(255 + (t - 255) * strength) for t in target)
    return f"background-color: rgb({r}, {g}, {b})"


def _monthly_table(daily: pd.Series, name: str) -> str:
    """The years × months heat map of one strategy's compounded returns."""
    table = monthly_returns(daily)
    if table.empty:
        return ""
    months = table[list(range(1, 13))].to_numpy(dtype=np.float64)
    finite = np.abs(months[np.isfinite(months)])
    scale = float(np.quantile(finite, 0.95)) if finite.size else 0.0
    years = table["Year"].to_numpy(dtype=np.float64)
    year_scale = float(np.nanmax(np.abs(years))) if np.isfinite(years).any() else 0.0
    rows = []
    for year, row in table.iterrows():
        cells = [_Cell(str(year))]
        for m in range(1, 13):
            value = _number(row[m])
            cells.append(
                _num(_pct(value), style=_heat_color(value, scale))
                if value is not None
                else _num("")
            )
        total = _number(row["Year"])
        cells.append(
            _num(_pct(total), classes="year", style=_heat_color(total, year_scale))
            if total is not None
            else _num(_DASH, classes="year")
        )
        rows.append(cells)
    headers = ["Year", *_MONTHS, "Total"]
    return f"<h3>{escape(name)}</h3>" + _table(
        headers, rows, numeric_headers=[False, *[True] * 13], classes="heatmap"
    )


def _monthly(wide: pd.DataFrame | None, shown: Sequence[str]) -> str:
    title = "Monthly returns"
    present = [n for n in dict.fromkeys(shown) if n and wide is not None and n in wide]
    tables = [t for n in present if (t := _monthly_table(wide[n], n))]
    if not tables:
        return _section("monthly-returns", title, _note("No daily returns of the model strategy."))
    lead = (
        f"Compounded net return in each calendar month of {' and of '.join(present)}; the "
        "last column compounds the months of the year shown (partial first and last years). "
        "Blue for gains, red for losses, each table on its own scale."
    )
    return _section("monthly-returns", title, "".join(tables), lead)


def _ic(data: RunData) -> str:
    title = "Information coefficient"
    forecast = data.metrics.get("forecast") or {}
    summary_items = [
        (label, fmt(forecast.get(key)))
        for key, label, fmt in (
            ("ic", "IC", lambda v: _fixed(v, 3)),
            ("rank_ic", "rank IC", lambda v: _fixed(v, 3)),
            ("icir", "ICIR", _fixed),
            ("rank_icir", "rank ICIR", _fixed),
            ("time_series_ic", "time-series IC", lambda v: _fixed(v, 3)),
            ("time_series_rank_ic", "time-series rank IC", lambda v: _fixed(v, 3)),
            ("direction_accuracy", "direction accuracy", _pct),
            ("always_up_accuracy", "always up", _pct),
            ("mse", "MSE", lambda v: f"{v:.3g}" if _number(v) is not None else _DASH),
            ("n_dates", "dates", _integer),
            ("n_predictions", "predictions", _integer),
        )
        if key in forecast
    ]
    summary = ""
    if summary_items:
        summary = _table(
            [label for label, _ in summary_items],
            [[_num(v) for _, v in summary_items]],
            numeric_headers=[True] * len(summary_items),
            classes="compact",
            row_headers=False,
            caption=f"Out-of-sample forecasts against {_text(forecast.get('label'))}; "
            "direction accuracy: share of forecasts with the realised sign, beside the share "
            "an always-up forecast would get",
        )
    predictions = data.predictions
    needed = {"date", "ticker", "prediction", "label"}
    if predictions is None or not needed <= set(predictions.columns) or predictions.empty:
        return _section(
            "ic", title, summary + _note("No predictions in this run: no IC over time.")
        )
    single = predictions["ticker"].nunique() == 1
    if single:
        rolling = rolling_time_series_ic(predictions, TIMING_IC_WINDOW)
        if rolling.empty:
            body = _note(f"Fewer than {TIMING_IC_WINDOW} realised labels: no rolling correlation.")
        else:
            caption = (
                "One instrument has no cross-section to rank, so this is the time-series "
                f"correlation of the forecast with the realised label over the trailing "
                f"{TIMING_IC_WINDOW} trading days (Pearson and Spearman). Labels of "
                "neighbouring days overlap, so the series is smooth and its swings are noisy "
                "estimates."
            )
            uri = _draw(
                "Rolling time-series IC", figures.rolling_ic_chart, rolling, TIMING_IC_WINDOW
            )
            body = _figure(uri, "Rolling time-series IC", caption)
        return _section("ic", "Forecast correlation over time", summary + body)
    monthly = monthly_ic(cross_section_ic(predictions))
    if monthly.empty:
        return _section("ic", title, summary + _note("No date with 3 or more realised labels."))
    caption = (
        "Bars: the monthly mean of the daily cross-sectional IC (Pearson) and rank IC "
        "(Spearman) of the forecast against the realised label, computed from "
        "predictions.parquet; lines (right axis): their cumulative sums. A steadily rising "
        "line is a forecast that keeps working."
    )
    uri = _draw("Monthly IC and rank IC", figures.ic_chart, monthly)
    body = _figure(uri, "Monthly IC and rank IC", caption)
    return _section("ic", title, summary + body)


def _turnover(
    data: RunData, names: Sequence[str], colors: Mapping[str, str], shown: Sequence[str]
) -> str:
    title = "Turnover"
    series = rebalance_turnover(data.weights, list(names), data.returns)
    hidden = [n for n in series if n not in shown]
    series = {n: v for n, v in series.items() if n in shown}
    recorded = data.returns is not None and "turnover" in data.returns.columns
    if series:
        gaps = [np.diff(pd.DatetimeIndex(s.index).to_numpy()) for s in series.values()]
        spacing = max(
            (float(np.median(g) / np.timedelta64(1, "D")) for g in gaps if g.size), default=0.0
        )
        if 0 < spacing < 5:  # daily positions (timing): the monthly mean of the daily figure
            series = {
                n: s.groupby(pd.DatetimeIndex(s.index).to_period("M")).mean()
                for n, s in series.items()
            }
            series = {
                n: s.set_axis(s.index.to_timestamp(how="end").normalize())
                for n, s in series.items()
            }
            ylabel, what = "one-way turnover per rebalance", "averaged over each month"
        else:
            ylabel, what = "one-way turnover per rebalance", "at each rebalance"
        uri = _draw("Turnover", figures.turnover_chart, series, colors, ylabel)
        missing = [n for n in names if n not in series]
        caption = (
            f"One-way turnover ½ Σ|Δw| {what} (1 = the whole book replaced), the initial "
            "build from cash left out"
            + (
                ": the backtest's own figure, drift between rebalances included, whose mean "
                "is the strategy table's turnover."
                if recorded
                else ": computed between consecutive target weights in weights.parquet (this "
                "run predates the recorded figure), so drift is not counted and equal weight "
                "shows none."
            )
        )
        missing = [n for n in missing if n not in hidden]
        if missing:
            caption += f" Not shown (fewer than two rebalances): {', '.join(missing)}."
        if hidden:
            caption += (
                f" Not drawn, to keep the chart readable (see the strategy table): "
                f"{', '.join(hidden)}."
            )
        return _section("turnover", title, _figure(uri, "Turnover", caption))
    strategies = data.metrics.get("strategies") or {}
    values = {
        n: v
        for n in names
        if isinstance(strategies.get(n), Mapping)
        and (v := _number(strategies[n].get("turnover"))) is not None
    }
    if not values:
        return _section(
            "turnover", title, _note("Neither weights nor turnover figures in this run.")
        )
    uri = _draw(
        "Average turnover",
        figures.metric_bar_chart,
        values,
        colors,
        "average one-way turnover per rebalance",
    )
    caption = (
        "Average one-way turnover ½ Σ|Δw| per rebalance from metrics.json (no per-rebalance "
        "record in this run)."
    )
    return _section("turnover", title, _figure(uri, "Average turnover", caption))


def _weights(data: RunData, main: str | None) -> str:
    title = "Holdings"
    weights = data.weights
    needed = {"date", "ticker", "strategy", "weight"}
    if (
        weights is None
        or main is None
        or not needed <= set(weights.columns)
        or not (weights["strategy"] == main).any()
    ):
        return _section("weights", title, _note(f"No weights of {main or 'the model'} recorded."))
    table = holdings(weights, main, top=20)
    if table.empty:
        return _section("weights", title, _note(f"No weights of {main} recorded."))
    if table.shape[1] == 1 and table.columns[0] != "other":
        ticker = table.columns[0]
        uri = _draw(
            "Position",
            figures.holdings_chart,
            table,
            ylabel=f"position in {ticker}",
            average_days=21,
        )
        caption = (
            f"Position in {ticker} decided at each close (one instrument, so this is the "
            "exposure over time instead of a breakdown of holdings; 0 = flat), with its "
            "21-day average as a line."
        )
        return _section("weights", f"Position of {main}", _figure(uri, "Position", caption))
    uri = _draw("Holdings", figures.holdings_heatmap, table)
    shown = [c for c in table.columns if c != "other"]
    caption = (
        f"Target weights of {main} at each rebalance (columns), one row per ticker for the "
        f"whole period: the {len(shown)} tickers with the largest average weight, heaviest "
        "on top"
        + (
            ", every other ticker summed in the last row, “other”"
            if "other" in table.columns
            else ""
        )
        + ". White is not held; drift between rebalances is not drawn."
    )
    return _section("weights", f"Holdings of {main}", _figure(uri, "Holdings", caption))


def _training(data: RunData) -> str:
    title = "Training curves"
    uri = _draw("Training curves per fold", figures.training_curves, data.folds)
    if uri is None:
        return _section("training", title, _note("No per-epoch training history in this run."))
    monitor = next((f.get("monitor") for f in data.folds if f.get("monitor")), None)
    caption = (
        "One panel per walk-forward fold: training and validation loss by epoch (left axis) "
        "and the validation IC (right axis, when the run has a cross-section), epochs "
        "numbered from 1; the dotted line is the epoch kept"
        + (f" (best validation {_monitor_name(monitor)})" if monitor else "")
        + ". A validation loss that rises while the training loss falls is overfitting."
    )
    return _section("training", title, _figure(uri, "Training curves per fold", caption))


def _attention(data: RunData) -> str | None:
    block = data.metrics.get("attention")
    block = block if isinstance(block, Mapping) else None
    if data.attention_png is None and block is None:
        return None
    parts = []
    if data.attention_png is not None:
        uri = "data:image/png;base64," + base64.b64encode(data.attention_png).decode("ascii")
        parts.append(
            _figure(
                uri,
                "Mean attention by lag",
                "Mean temporal attention weight by lag (0 = the forecast date, higher = further "
                "back) for each fold's test windows and out of sample, from the run's "
                "attention.png.",
            )
        )
    top = (block or {}).get("top_lags") or []
    uniform = _number((block or {}).get("uniform"))
    if top:
        rows = [
            [
                _num(_integer(item.get("lag"))),
                _num(_fixed(item.get("weight"), 4)),
                _num(
                    _fixed(_number(item.get("weight")) / uniform, 2)
                    if uniform and _number(item.get("weight")) is not None
                    else _DASH
                ),
            ]
            for item in top
            if isinstance(item, Mapping)
        ]
        parts.append(
            _table(
                ["Lag (days)", "Mean weight", "× uniform"],
                rows,
                numeric_headers=[True, True, True],
                classes="compact",
                caption="Lags with the most attention out of sample",
            )
        )
    lead = (
        "Where in the lookback window the model looks. Uniform attention puts "
        + (f"{uniform:.4f}" if uniform else "1/L")
        + " on every lag; a flat profile means the order of the window carries little."
    )
    return _section("attention", "Attention", "".join(parts), lead)


def _classification(data: RunData) -> str | None:
    block = data.metrics.get("classification")
    if not isinstance(block, Mapping) or not block:
        return None
    parts = []
    for horizon, entry in block.items():
        if not isinstance(entry, Mapping):
            continue
        report = entry.get("report") or {}
        classes = [
            k
            for k, v in report.items()
            if isinstance(v, Mapping) and k not in ("macro_avg", "weighted_avg")
        ]
        rows = []
        for name in [*classes, "macro_avg", "weighted_avg"]:
            figures_ = report.get(name)
            if not isinstance(figures_, Mapping):
                continue
            rows.append(
                [
                    _Cell(name.replace("_", " ")),
                    _num(_fixed(figures_.get("precision"), 3)),
                    _num(_fixed(figures_.get("recall"), 3)),
                    _num(_fixed(figures_.get("f1"), 3)),
                    _num(_integer(figures_.get("support"))),
                ]
            )
        parts.append(f"<h3>Horizon {escape(str(horizon))} days</h3>")
        summary = (
            f"Accuracy {_pct(report.get('accuracy'))} over {_integer(entry.get('n'))} "
            "forecasts; always predicting the majority class "
            f"({_text(entry.get('majority_class'))}) would score "
            f"{_pct(entry.get('majority_class_rate'))}."
        )
        parts.append(f"<p>{escape(summary)}</p>")
        if rows:
            parts.append(
                _table(
                    ["Class", "Precision", "Recall", "F1", "Support"],
                    rows,
                    numeric_headers=[False, True, True, True, True],
                    caption="Classification report",
                    classes="compact",
                )
            )
        confusion = entry.get("confusion") or {}
        labels = [str(x) for x in confusion.get("labels") or []]
        matrix = np.asarray(confusion.get("matrix") or [], dtype=np.float64)
        if labels and matrix.shape == (len(labels), len(labels)):
            totals = matrix.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = np.where(totals > 0, matrix / totals, np.nan)
            rows = []
            for i, label in enumerate(labels):
                cells = [_Cell(f"true {label}")]
                for j in range(len(labels)):
                    share = shares[i, j]
                    text = f"{int(matrix[i, j]):,}"
                    style = ""
                    if np.isfinite(share):
                        text += f" ({share * 100:.0f}%)"
                        alpha = 0.08 + 0.6 * share
                        style = f"background-color: rgba(31, 95, 168, {alpha:.2f})"
                    cells.append(_num(text, style=style, classes="diag" if i == j else ""))
                cells.append(_num(f"{int(totals[i, 0]):,}"))
                rows.append(cells)
            parts.append(
                _table(
                    ["", *(f"predicted {x}" for x in labels), "Total"],
                    rows,
                    numeric_headers=[False, *[True] * (len(labels) + 1)],
                    classes="confusion",
                    caption="Confusion matrix (rows: realised class; share of the row)",
                )
            )
    if not parts:
        return None
    lead = "Out-of-sample class predictions (the most probable class) against the realised class."
    return _section("classification", "Classification", "".join(parts), lead)


def _horizons(data: RunData) -> str | None:
    block = data.metrics.get("horizons")
    if not isinstance(block, Mapping) or not block:
        return None
    rows = []
    for horizon, entry in block.items():
        if not isinstance(entry, Mapping):
            continue
        rows.append(
            [
                _Cell(f"{horizon} days"),
                _Cell(_text(entry.get("label"))),
                _num(f"{entry['mse']:.3g}" if _number(entry.get("mse")) is not None else _DASH),
                _num(_fixed(entry.get("rmse"), 4)),
                _num(_fixed(entry.get("mae"), 4)),
                _num(_fixed(entry.get("correlation"), 3)),
                _num(_pct(entry.get("direction_accuracy"))),
                _num(_pct(entry.get("always_up_accuracy"))),
                *(
                    [_num(_pct(entry.get("direction_head_accuracy")))]
                    if any(
                        isinstance(e, Mapping) and "direction_head_accuracy" in e
                        for e in block.values()
                    )
                    else []
                ),
                _num(_integer(entry.get("n"))),
            ]
        )
    if not rows:
        return None
    heads = any(isinstance(e, Mapping) and "direction_head_accuracy" in e for e in block.values())
    headers = [
        "Horizon",
        "Label",
        "MSE",
        "RMSE",
        "MAE",
        "Correlation",
        "Direction accuracy",
        "Always up",
        *(["Direction head accuracy"] if heads else []),
        "N",
    ]
    table = _table(headers, rows, numeric_headers=[False, False, *[True] * (len(headers) - 2)])
    lead = (
        "Out-of-sample forecast errors per horizon, pooled over dates and tickers; direction "
        "accuracy is the share of forecasts with the realised sign (the same figure as in "
        "the CLI and the IC summary), beside the share an always-up forecast gets"
        + (
            "; the direction head's accuracy is its own up/down classifier (P(up) > 0.5)."
            if heads
            else "."
        )
    )
    return _section("horizons", "Forecast quality by horizon", table, lead)


def _interval_text(pair: Any, decimals: int = 3, percent: bool = False) -> str:
    if not isinstance(pair, Sequence) or len(pair) != 2:
        return _DASH
    low, high = pair
    if percent:
        return f"{_pct(low, 2, signed=True)} to {_pct(high, 2, signed=True)}"
    return f"{_fixed(low, decimals)} to {_fixed(high, decimals)}"


def _diagnostics(data: RunData) -> str | None:
    """The forecast as a factor (quintiles, decay, turnover) beside single factors."""
    block = data.metrics.get("diagnostics")
    if not isinstance(block, Mapping) or not isinstance(block.get("model"), Mapping):
        return None
    horizon = block.get("horizon")
    model = block["model"]
    signals = {"model forecast": model, **(block.get("factors") or {})}
    rows = []
    for name, entry in signals.items():
        ic = entry.get("rank_ic") or {}
        q = entry.get("quantiles") or {}
        rows.append(
            [
                _Cell(_text(name)),
                _num(_fixed(ic.get("rank_ic"), 3)),
                _num(_interval_text(ic.get("rank_ic_ci"))),
                _num(_fixed(ic.get("rank_ic_t"), 2)),
                _num(_pct(q.get("spread"), 2, signed=True)),
                _num(_interval_text(q.get("spread_ci"), percent=True)),
            ]
        )
    headers = ["Signal", "Rank IC", "95 % interval", "t", "Top − bottom quintile", "95 % interval"]
    body = _table(
        headers,
        rows,
        numeric_headers=[False, *[True] * 5],
        caption=f"Against the raw {horizon}-day forward return, on the same (date, ticker) samples",
    )
    means = (model.get("quantiles") or {}).get("mean_return") or []
    if means:
        body += _table(
            [f"Q{k + 1}" for k in range(len(means))],
            [[_num(_pct(m, 2, signed=True)) for m in means]],
            numeric_headers=[True] * len(means),
            caption="Mean forward return per forecast quintile (Q1 lowest forecasts)",
            row_headers=False,
        )
    decay = model.get("decay") or {}
    if decay:
        body += _table(
            ["Horizon", "Rank IC", "95 % interval", "Dates"],
            [
                [
                    _Cell(f"{h} days"),
                    _num(_fixed(v.get("rank_ic"), 3)),
                    _num(_interval_text(v.get("ci"))),
                    _num(_integer(v.get("n_dates"))),
                ]
                for h, v in decay.items()
                if isinstance(v, Mapping)
            ],
            numeric_headers=[False, True, True, True],
            caption="Rank IC of the same forecasts against forward returns over other horizons",
        )
    notes = []
    auto = (model.get("autocorrelation") or {}).get("mean")
    if _number(auto) is not None:
        notes.append(
            f"Rank autocorrelation of the forecast from one rebalance to the next: "
            f"{_fixed(auto, 2)} (1 = the ranking never changes; low values mean high "
            "turnover of the signal)."
        )
    training = data.metrics.get("training") or {}
    if _number(training.get("first_epoch_share")) is not None:
        of = (
            f"{_integer(training.get('fits'))} member fits"
            if "fits" in training
            else f"{_integer(training.get('folds'))} folds"
        )
        text = (
            f"Early stopping kept the first epoch in "
            f"{_integer(training.get('first_epoch_stops'))} of {of}."
        )
        selection = training.get("selection") or {}
        if _number(selection.get("folds_scored")):
            text += (
                f" The kept epoch beat the first by more than validation noise (paired "
                f"Newey–West t ≥ 2 on the validation window's daily "
                f"{'rank IC' if selection.get('monitor') == 'rank_ic' else 'IC'}) in "
                f"{_integer(selection.get('significant_gains'))} of "
                f"{_integer(selection.get('folds_scored'))} folds."
            )
        notes.append(text)
    body += "".join(_note(n) for n in notes)
    lead = (
        "The forecast scored as a factor, the way alphalens does, with 95 % intervals from "
        "Newey–West standard errors (overlapping labels make neighbouring days' figures "
        "correlated), and the classic single factors scored on the very same samples. An "
        "interval that contains 0 is a signal that cannot be told from none."
    )
    return _section("diagnostics", "Factor diagnostics", body, lead)


def _window_text(window: Any) -> str:
    if not isinstance(window, Mapping):
        return _DASH
    return f"{_text(window.get('start_date'))} – {_text(window.get('end_date'))}"


def _folds(data: RunData) -> str:
    title = "Walk-forward folds"
    if not data.folds:
        return _section("folds", title, _note("No fold records in this run."))
    monitors = {str(f.get("monitor")) for f in data.folds if f.get("monitor")}
    monitor = _monitor_name(monitors.pop()) if len(monitors) == 1 else "score"
    columns: list[tuple[str, bool, list[_Cell]]] = [
        ("Fold", True, []),
        ("Train", False, []),
        ("Validation", False, []),
        ("Test", False, []),
        ("Epochs", True, []),
        ("Best epoch", True, []),
        (f"Best val. {monitor}", True, []),
        ("Train IC", True, []),
        ("Valid IC", True, []),
        ("Test IC", True, []),
    ]
    for k, fold in enumerate(data.folds):
        train = fold.get("train") if isinstance(fold.get("train"), Mapping) else {}
        valid = fold.get("valid") if isinstance(fold.get("valid"), Mapping) else {}
        test = fold.get("test") if isinstance(fold.get("test"), Mapping) else {}
        best = fold.get("best_epoch")
        values = [
            _num(_integer(fold.get("index", k))),
            _Cell(_window_text(fold.get("train_window")), classes="dates"),
            _Cell(_window_text(fold.get("valid_window")), classes="dates"),
            _Cell(_window_text(fold.get("test_window")), classes="dates"),
            _num(_integer(fold.get("epochs"))),
            _num(_integer(best + 1 if isinstance(best, int) and best >= 0 else None)),
            _num(_fixed(fold.get("best_score"), 4)),
            _num(_fixed(train.get("train_ic"), 3)),
            _num(_fixed(valid.get("val_ic"), 3)),
            _num(_fixed(test.get("ic", test.get("time_series_ic")), 3)),
        ]
        for (_, _, cells), cell in zip(columns, values, strict=True):
            cells.append(cell)
    # Train / valid IC are undefined without a cross-section (timing): drop empty columns.
    kept = [
        c
        for c in columns
        if c[0] not in ("Train IC", "Valid IC") or any(cell.text != _DASH for cell in c[2])
    ]
    rows = [[c[2][i] for c in kept] for i in range(len(data.folds))]
    table = _table([c[0] for c in kept], rows, numeric_headers=[c[1] for c in kept])
    lead = (
        "Each fold trains on its training window, picks the epoch with the best validation "
        f"{monitor} (epochs numbered from 1) and predicts its test window once; the test "
        "windows are stitched into the out-of-sample record. A train IC far above the "
        "validation IC is overfitting. Test IC is the cross-sectional IC (time-series IC for "
        "one instrument)."
    )
    return _section("folds", title, table, lead)


# --------------------------------------------------------------------------- page

_CSS = """
:root { --ink: #1d2127; --muted: #5f6670; --line: #dde1e6; --soft: #f5f7f9;
  --accent: #1f5fa8; --warn-bg: #fff6e0; --warn-line: #e0a526; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #eef1f4; color: var(--ink);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 1080px; margin: 24px auto; padding: 28px 40px 40px; background: #fff;
  border: 1px solid var(--line); border-radius: 6px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
section { margin: 0 0 34px; }
p { margin: 6px 0 12px; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--soft); padding: 1px 4px; border-radius: 3px; }
.eyebrow { text-transform: uppercase; letter-spacing: 0.08em; font-size: 12px;
  color: var(--muted); margin: 0 0 2px; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
.lead { color: var(--muted); font-size: 14px; }
.note { color: var(--muted); font-size: 13.5px; font-style: italic; }
nav.toc { font-size: 13px; margin: 0 0 26px; padding: 10px 14px; background: var(--soft);
  border-radius: 4px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav.toc a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line);
  border-left: 5px solid var(--warn-line); padding: 10px 14px; border-radius: 4px;
  margin: 0 0 16px; font-size: 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 22px; }
.card { flex: 1 1 180px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.card-label { font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--muted); }
.card-value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card-detail { font-size: 12.5px; color: var(--muted); }
dl.facts { display: grid; grid-template-columns: 190px 1fr; gap: 4px 16px; margin: 0;
  font-size: 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; margin: 0 0 10px; }
table { border-collapse: collapse; font-size: 13.5px; width: 100%;
  font-variant-numeric: tabular-nums; }
table.compact { width: auto; }
caption { caption-side: top; text-align: left; font-size: 13px; color: var(--muted);
  padding: 0 0 4px; }
th, td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { font-size: 12px; font-weight: 600; color: var(--muted); border-bottom: 2px solid #c8ced6;
  vertical-align: bottom; }
thead th.num { white-space: normal; }
table.metrics th, table.metrics td { padding: 5px 7px; }
table.metrics td.dates { white-space: normal; min-width: 6.5em; }
caption { white-space: nowrap; }
tbody th { font-weight: 500; }
tbody tr:hover { background: #fafbfc; }
.num { text-align: right; white-space: nowrap; }
td.best { background: #eaf3ea; }
td.best strong { font-weight: 700; }
td.sig-better { font-weight: 700; color: #0b6e3a; background: #e6f4ec; }
td.sig-worse { font-weight: 700; color: #a11d1d; background: #fbe9e9; }
.verdict { border: 1px solid var(--line); border-left: 5px solid var(--accent);
  border-radius: 4px; padding: 10px 14px; margin: 0 0 16px; font-size: 14.5px; }
.verdict-title { font-weight: 700; margin: 0 0 4px; }
.verdict ul { margin: 0; padding-left: 20px; }
.verdict li { margin: 2px 0; }
.verdict li.better { color: #0b6e3a; }
.verdict li.worse { color: #a11d1d; }
.verdict li.better::marker, .verdict li.worse::marker { font-weight: 700; }
.verdict-note { font-size: 12.5px; color: var(--muted); margin: 6px 0 0; }
.two-col { display: grid; grid-template-columns: 1fr 1fr; gap: 0 22px; }
@media (max-width: 720px) { .two-col { grid-template-columns: 1fr; } }
td.dates, th.dates { white-space: nowrap; font-size: 12.5px; color: var(--muted); }
table.heatmap td { font-size: 12.5px; padding: 4px 6px; }
table.heatmap td.year { font-weight: 600; border-left: 2px solid #c8ced6; }
table.confusion { width: auto; }
table.confusion td.diag { font-weight: 600; }
ul.legend-list { font-size: 13px; color: var(--muted); margin: 4px 0 8px; padding-left: 18px; }
figure { margin: 8px 0 6px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
  padding-top: 10px; }
@media (max-width: 720px) { main { padding: 18px; margin: 0; border: 0; }
  dl.facts { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } main { border: 0; margin: 0; max-width: none; }
  section { break-inside: avoid-page; } nav.toc { display: none; } }
"""

_TITLES = {
    "header": "Overview",
    "strategies": "Strategies",
    "significance": "Significance",
    "relative": "Relative risk",
    "equity": "Cumulative return",
    "drawdowns": "Drawdowns",
    "rolling-sharpe": "Rolling Sharpe",
    "rolling-risk": "Rolling risk",
    "monthly-returns": "Monthly returns",
    "yearly": "Yearly returns",
    "distribution": "Return distribution",
    "ic": "IC",
    "diagnostics": "Diagnostics",
    "turnover": "Turnover",
    "weights": "Holdings",
    "training": "Training",
    "attention": "Attention",
    "classification": "Classification",
    "horizons": "Horizons",
    "folds": "Folds",
}


def render_report(data: RunData) -> str:
    """The report page of a loaded run, as one HTML string.

    Parameters
    ----------
    data : RunData
        As :func:`alphaseq.report.data.load_run` returns it.

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    names = data.strategies
    colors = figures.strategy_colors(names)
    main, reference = data.main_strategy, data.reference_strategy
    wide = None
    if data.returns is not None and {"date", "strategy", "net_return"} <= set(data.returns.columns):
        wide = wide_returns(data.returns, names)
        names = list(dict.fromkeys([*names, *wide.columns]))
        colors = figures.strategy_colors(names)
    strategy_figures = data.metrics.get("strategies") or {}
    sharpe = {
        n: _number((strategy_figures.get(n) or {}).get("sharpe"))
        if isinstance(strategy_figures.get(n), Mapping)
        else None
        for n in names
    }
    # At most six lines per chart: the model strategies first, the rest in the tables.
    shown, _ = figures.chart_selection(names, main, reference, sharpe)
    best = _best_model(data)
    baseline = "equal_weight" if "equal_weight" in names else reference
    focus = [n for n in dict.fromkeys([best, baseline]) if n in names]
    focus_ref = [n for n in dict.fromkeys([*focus, reference]) if n in names]

    builders: dict[str, Callable[[], str | None]] = {
        "header": lambda: _header(data, main, reference),
        "strategies": lambda: _strategies(data, names),
        "significance": lambda: _significance(data, names),
        "relative": lambda: _relative(data, names),
        "equity": lambda: _equity(data, wide, colors, shown),
        "drawdowns": lambda: _drawdowns(wide, colors, main, shown, focus_ref),
        "rolling-sharpe": lambda: _rolling_sharpe(wide, colors, shown),
        "rolling-risk": lambda: _rolling_risk(data, wide, colors, focus_ref),
        "monthly-returns": lambda: _monthly(wide, focus),
        "yearly": lambda: _yearly(data, wide, names),
        "distribution": lambda: _distribution(data, wide, names, colors, focus_ref),
        "ic": lambda: _ic(data),
        "diagnostics": lambda: _diagnostics(data),
        "turnover": lambda: _turnover(data, names, colors, shown),
        "weights": lambda: _weights(data, main),
        "training": lambda: _training(data),
        "attention": lambda: _attention(data),
        "classification": lambda: _classification(data),
        "horizons": lambda: _horizons(data),
        "folds": lambda: _folds(data),
    }
    sections: dict[str, str] = {}
    for section_id in SECTION_IDS:
        try:
            html = builders[section_id]()
        except Exception as exc:  # one broken part must not cost the whole page
            logger.warning(
                "report: section %r was skipped: %s: %s", section_id, type(exc).__name__, exc
            )
            logger.info("report: section %r failed", section_id, exc_info=True)  # run.log
            if section_id in OPTIONAL_SECTIONS:
                continue
            html = _section(
                section_id,
                _TITLES[section_id],
                _note(f"This part could not be drawn ({type(exc).__name__}: {exc})."),
            )
        if html:
            sections[section_id] = html

    run = data.metrics.get("run") or {}
    name = str(run.get("name") or data.config.get("name") or data.run_dir.name)
    toc = "".join(
        f'<a href="#{sid}">{escape(_TITLES[sid])}</a>' for sid in sections if sid != "header"
    )
    made = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    footer = (
        f"<footer>Report written {escape(made)} by alphaseq from {escape(str(data.run_dir))} "
        f"(pandas {escape(pd.__version__)}, matplotlib {escape(matplotlib.__version__)}). "
        "Every figure is computed from the files of the run directory.</footer>"
    )
    header = sections.pop("header", "")
    body = "\n".join(sections.values())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(name)} — alphaseq report</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{header}\n"
        f'<nav class="toc" aria-label="contents">{toc}</nav>\n'
        f"{body}\n{footer}\n</main>\n</body>\n</html>\n"
    )


def build_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html``, one self-contained page about the run.

    Parameters
    ----------
    run_dir : str or Path
        A run directory written by :func:`alphaseq.pipeline.run`. Only ``metrics.json``
        is required; the charts and tables of missing files are skipped.

    Returns
    -------
    Path
        The written ``report.html``.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` has no ``metrics.json``.
    """
    data = load_run(run_dir)
    page = render_report(data)
    return atomic_write_text(data.run_dir / "report.html", page)
