"""The report's charts: matplotlib figures rendered to PNG data URIs.

Every function draws one chart on its own :class:`~matplotlib.figure.Figure` with an Agg
canvas (no pyplot: no global figure registry, no display, safe in worker threads) and
returns ``data:image/png;base64,...`` ready for an ``<img src>``. The styling lives in
one ``rc_context`` so the process's matplotlib settings are left untouched.

Drawing is most of a report's time, and nearly all of it is matplotlib's per-artist
Python work (ticks, text layout), not rasterising: so each figure is drawn exactly once
(:func:`png_data_uri`), many same-styled shapes are one collection rather than one
artist each (the IC bars), and the PNG is RGB. Creating a figure costs about a
millisecond, so reusing one between charts would gain nothing; SVG would skip the
rasteriser but not the per-artist work, and is larger for daily lines.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullLocator,
    PercentFormatter,
)
from PIL import Image

from alphaseq.backtest.significance import BASELINE_STRATEGIES

__all__ = [
    "DPI",
    "WIDTH",
    "chart_selection",
    "drawdown_chart",
    "equity_chart",
    "holdings_chart",
    "holdings_heatmap",
    "ic_chart",
    "legend_columns",
    "line_style",
    "metric_bar_chart",
    "png_bytes",
    "png_data_uri",
    "return_histogram",
    "rolling_chart",
    "rolling_ic_chart",
    "rolling_sharpe_chart",
    "strategy_colors",
    "training_curves",
    "turnover_chart",
]

DPI = 144
"""Resolution of every chart (crisp on high-density screens at the page's width)."""

WIDTH = 7.4
"""Width in inches of the full-width charts."""

_STYLE = {
    # Run names, strategies and tickers are user strings: "$10k_$20k" is text, not math.
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.edgecolor": "#8a8f98",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.7,
    "xtick.color": "#4a4f57",
    "ytick.color": "#4a4f57",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    # Long enough for the baselines' dash patterns to be told apart in the legend.
    "legend.handlelength": 3.0,
    "lines.linewidth": 1.4,
    "lines.solid_capstyle": "butt",
    "lines.dash_capstyle": "butt",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

# Okabe–Ito (colour-blind safe), without its yellow, which vanishes on white. The model
# strategies take the saturated hues in this order, the main model always the blue.
_MAIN_MODELS = ("model_topk", "model_timing")
_MODEL_PALETTE = (
    "#0072B2",  # blue: the main model
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    # Okabe–Ito has no more hues that stay clear of the baselines' orange and black:
    # two of Paul Tol's colour-blind safe "muted" set.
    "#882255",  # wine
    "#999933",  # olive
)
# Baselines: fixed hues outside the model palette (orange for equal weight, so it can
# never be mistaken for a model line), drawn thin, translucent and dashed (line_style).
_BASELINE_COLORS = {
    "benchmark": "#000000",
    "buy_and_hold": "#333333",  # the timing runs' passive reference; never next to benchmark
    "equal_weight": "#E69F00",
    "momentum": "#7F7F7F",
    "hrp": "#8C564B",
}
_BASELINE_DASHES: dict[str, tuple[float, tuple[float, ...]]] = {
    "benchmark": (0, (5.0, 2.0)),
    "buy_and_hold": (0, (5.0, 2.0)),
    "equal_weight": (0, (7.0, 2.0, 1.5, 2.0)),
    "momentum": (0, (2.5, 1.5)),
    "hrp": (0, (1.2, 1.2)),
}
_OTHER_BASELINE_DASHES = (0, (4.0, 1.5, 1.0, 1.5, 1.0, 1.5))
_FALLBACK = "#7F7F7F"
_HOLDING_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
)
_OTHER = "#c9cdd3"
_IC_GREEN = "#009E73"
_AXIS_LINE = "#8a8f98"


def _is_baseline(name: str) -> bool:
    return name in BASELINE_STRATEGIES


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    """A stable, colour-blind safe colour per strategy.

    The main model (``model_topk`` / ``model_timing``) is always ``#0072B2`` (blue);
    every other model strategy takes the next saturated hue of the Okabe–Ito palette
    (vermillion, bluish green, reddish purple, sky blue, then wine and olive), in the
    order of ``names``. The baselines have fixed hues outside that set: ``benchmark``
    black, ``buy_and_hold`` near black, ``equal_weight`` orange, ``momentum`` grey,
    ``hrp`` brown.

    Parameters
    ----------
    names : sequence of str
        Strategy names, in report order.

    Returns
    -------
    dict of str to str
        Hex colour of each name, in the order of ``names``: distinct for up to 7 model
        strategies and the 5 baselines; more model strategies cycle the palette.
    """
    fixed = {n: _MODEL_PALETTE[0] for n in names if n in _MAIN_MODELS}
    fixed |= {n: _BASELINE_COLORS[n] for n in names if n in _BASELINE_COLORS}
    # The main model's blue is kept for it; the other models start at the next hue.
    spare = [c for c in _MODEL_PALETTE if c not in fixed.values()] or list(_MODEL_PALETTE)
    colors: dict[str, str] = {}
    k = 0
    for name in names:
        if name in colors:
            continue
        if name in fixed:
            colors[name] = fixed[name]
        else:
            # Past the distinct hues: cycle the whole model palette.
            colors[name] = spare[k] if k < len(spare) else _MODEL_PALETTE[(k - len(spare)) % 7]
            k += 1
    return colors


def line_style(name: str, *, main: str | None = None) -> dict[str, object]:
    """Keyword arguments of ``Axes.plot`` for a strategy's line (colour excepted).

    Model strategies are emphasised: solid, opaque and thick, the main model
    (``model_topk`` / ``model_timing``, or ``main``) the heaviest and on top. Baselines
    (the names in :data:`alphaseq.backtest.significance.BASELINE_STRATEGIES`) are muted:
    thin, translucent, below the models, each with its own dash pattern
    (``benchmark`` / ``buy_and_hold`` dashed, ``equal_weight`` dash-dot, ``momentum``
    short dashes, ``hrp`` dotted).

    Parameters
    ----------
    name : str
        Strategy name.
    main : str, optional
        The report's main strategy, drawn like the main model whatever its name.

    Returns
    -------
    dict
        ``linewidth``, ``linestyle``, ``alpha`` and ``zorder``.
    """
    if name in _MAIN_MODELS or (main is not None and name == main):
        return {"linewidth": 2.4, "linestyle": "-", "alpha": 1.0, "zorder": 6}
    if not _is_baseline(name):
        return {"linewidth": 1.7, "linestyle": "-", "alpha": 0.95, "zorder": 5}
    dashes = _BASELINE_DASHES.get(name, _OTHER_BASELINE_DASHES)
    # The passive reference is the one baseline a reader compares everything with.
    reference = name in ("benchmark", "buy_and_hold")
    return {
        "linewidth": 1.3 if reference else 1.15,
        "linestyle": dashes,
        "alpha": 0.8 if reference else 0.7,
        "zorder": 4 if reference else 3,
    }


def chart_selection(
    names: Sequence[str],
    main: str | None,
    reference: str | None,
    scores: Mapping[str, float | None] | None = None,
    limit: int = 6,
) -> tuple[list[str], list[str]]:
    """Which strategies a line chart draws, so that it stays readable.

    Priority: ``main``, then ``equal_weight``, then ``reference``, then the other model
    strategies by descending score (None or NaN last, ties in input order), then the
    other baselines in input order. The first ``limit`` are drawn; ``main``,
    ``equal_weight`` and ``reference`` (those present in ``names``) are always drawn,
    even when they alone exceed ``limit``.

    Parameters
    ----------
    names : sequence of str
        Every strategy, in report order.
    main : str or None
        The main strategy.
    reference : str or None
        The strategy the others are compared with (e.g. ``benchmark``).
    scores : mapping of str to float or None, optional
        Ranking score of each strategy (Sharpe ratio); missing names score None.
    limit : int, default 6
        Most lines drawn.

    Returns
    -------
    drawn : list of str
        The chosen strategies, in the order of ``names``.
    left_out : list of str
        Every other name, in the order of ``names``.

    Raises
    ------
    ValueError
        When ``limit`` < 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    unique = list(dict.fromkeys(names))
    scores = scores or {}

    def score(name: str) -> float:
        value = scores.get(name)
        if value is None or not math.isfinite(float(value)):
            return -math.inf
        return float(value)

    required = [n for n in dict.fromkeys((main, "equal_weight", reference)) if n in unique]
    rest = [n for n in unique if n not in required]
    models = [n for n in rest if not _is_baseline(n)]
    # sorted() is stable: equal (and missing) scores keep the input order.
    models.sort(key=lambda n: (score(n) == -math.inf, -score(n)))
    baselines = [n for n in rest if _is_baseline(n)]
    chosen = set(required) | set([*models, *baselines][: max(0, limit - len(required))])
    return [n for n in unique if n in chosen], [n for n in unique if n not in chosen]


def _color(colors: Mapping[str, str], name: str) -> str:
    return colors.get(name) or strategy_colors([name])[name]


def _pct_text(value: float, decimals: int = 1, signed: bool = False) -> str:
    """``-0.0184`` -> ``"−1.8 %"`` (a true minus sign, a space before the percent)."""
    text = f"{value * 100:{'+' if signed else ''}.{decimals}f}"
    return text.replace("-", "−") + " %"


def legend_columns(labels: Sequence[str], wanted: int, width: float) -> int:
    """The most legend columns, up to ``wanted``, whose row fits in ``width`` inches.

    Measures each label in the current legend font and lays the entries out as
    matplotlib does: column by column, the first columns one entry longer, each
    column as wide as its widest entry, ``legend.columnspacing`` between columns.

    Parameters
    ----------
    labels : sequence of str
        The legend's labels, in order.
    wanted : int
        Most columns.
    width : float
        Room in inches (a legend anchored to an Axes should not be wider than it).

    Returns
    -------
    int
        Between 1 and ``max(1, min(wanted, len(labels)))``.
    """
    rc = mpl.rcParams
    prop = FontProperties(size=rc["legend.fontsize"])
    em = prop.get_size_in_points()
    handle = (rc["legend.handlelength"] + rc["legend.handletextpad"]) * em
    entries = [
        handle + text_to_path.get_text_width_height_descent(str(label), prop, ismath=False)[0]
        for label in labels
    ]
    room = width * 72.0 - 2 * rc["legend.borderpad"] * em
    for ncols in range(min(wanted, len(entries)), 1, -1):
        rows, longer = divmod(len(entries), ncols)
        counts = [rows + 1] * longer + [rows] * (ncols - longer)
        starts = np.cumsum([0, *counts[:-1]])
        columns = [max(entries[s : s + c]) for s, c in zip(starts, counts, strict=True)]
        if sum(columns) + (ncols - 1) * rc["legend.columnspacing"] * em <= room:
            return ncols
    return 1


def _legend_above(ax: Axes, n: int, ncols: int = 4, **kwargs: object) -> None:
    """The legend in a band above the plot area: it never hides a line.

    At most ``ncols`` columns, fewer when the labels would not fit the plot's width:
    a wider legend would make the layout shrink the plot to make room for it.
    """
    if n == 0:
        return
    labels = ax.get_legend_handles_labels()[1]
    # The plot is the figure less its y tick labels and axis label (about an inch).
    room = max(1.0, ax.get_figure(root=True).get_figwidth() - 1.1)
    ax.legend(
        loc="lower left",
        bbox_to_anchor=(0.0, 1.01),
        borderaxespad=0.0,
        ncols=legend_columns(labels, ncols, room),
        **kwargs,
    )


def png_bytes(fig: Figure) -> bytes:
    """Draw ``fig`` once on its Agg canvas and encode the pixels as an RGB PNG.

    The figure is opaque (white face), so the alpha channel carries nothing: RGB has a
    quarter fewer bytes to compress, and the PNG comes out about 10 % smaller.
    """
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    size = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="png", dpi=(fig.dpi, fig.dpi))
    return buffer.getvalue()


def png_data_uri(draw: Callable[[Figure], None], size: tuple[float, float]) -> str:
    """Render ``draw(figure)`` to a PNG and return it as a base64 data URI.

    The figure is laid out by matplotlib's constrained layout and drawn once, at
    :data:`DPI`, straight from its canvas: ``savefig`` would draw it twice (a dry run
    for the layout engine and ``bbox_inches="tight"``, then the real one).

    Parameters
    ----------
    draw : callable
        Draws on the (empty) figure it is given.
    size : tuple of float
        Figure size in inches.

    Returns
    -------
    str
        ``"data:image/png;base64,..."``.
    """
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        png = png_bytes(fig)
        fig.clear()  # release the artists now rather than at garbage collection
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _date_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _percent(decimals: int = 0, signed: bool = False) -> FuncFormatter:
    sign = "+" if signed else ""
    return FuncFormatter(lambda v, _: f"{v * 100:{sign}.{decimals}f}%")


def _log_ticks(low: float, high: float) -> list[float]:
    """Readable wealth levels between ``low`` and ``high`` for a log axis (4 to ~9)."""
    low, high = max(low, 1e-6), max(high, low * 1.0001)
    for mantissas in (
        (1.0, 2.0, 5.0),
        (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
        (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
        tuple(np.round(np.arange(1.0, 10.0, 0.05), 2)),
    ):
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
            for m in mantissas
            if low <= m * 10.0**k <= high
        ]
        if len(ticks) >= 4:
            step = max(1, math.ceil(len(ticks) / 9))
            return ticks[::step]
    return ticks


def _plot_strategy(
    ax: Axes,
    series: pd.Series,
    name: str,
    colors: Mapping[str, str],
    label: str,
    main: str | None = None,
    **kwargs: object,
) -> None:
    """One strategy's line in its colour and model/baseline style."""
    ax.plot(
        series.index.to_numpy(),
        series.to_numpy(dtype=np.float64),
        color=_color(colors, name),
        label=label,
        **(line_style(name, main=main) | kwargs),
    )


def equity_chart(
    wealth: pd.DataFrame,
    colors: Mapping[str, str],
    out_of_sample_start: pd.Timestamp | None = None,
) -> str:
    """Cumulative net return of every strategy on a log scale.

    Parameters
    ----------
    wealth : pandas.DataFrame
        Growth of 1 per strategy (columns), indexed by date.
    colors : mapping
        Colour of each strategy.
    out_of_sample_start : pandas.Timestamp, optional
        Marked with a vertical line.

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        drawn = 0
        for name in wealth.columns:
            series = wealth[name].dropna()
            if series.empty:
                continue
            final = series.iloc[-1] - 1.0
            _plot_strategy(ax, series, name, colors, f"{name}  ({_pct_text(final, signed=True)})")
            drawn += 1
        ax.axhline(1.0, color=_AXIS_LINE, linewidth=0.8, zorder=1)
        ax.set_yscale("log")
        values = wealth.to_numpy(dtype=np.float64)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            low, high = float(values.min()), float(values.max())
            low, high = min(low, 1.0), max(high, 1.0)
            pad = (high / low) ** 0.04
            ax.set_ylim(low / pad, high * pad)
            ax.yaxis.set_major_locator(FixedLocator(_log_ticks(low / pad, high * pad)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{(v - 1) * 100:+.0f}%"))
        if out_of_sample_start is not None:
            ax.axvline(
                out_of_sample_start.to_datetime64(),
                color="#c0392b",
                linewidth=1.0,
                linestyle=":",
                zorder=2,
            )
            ax.annotate(
                "out of sample →",
                xy=(out_of_sample_start.to_datetime64(), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(4, -4),
                textcoords="offset points",
                ha="left",
                va="top",
                color="#c0392b",
                fontsize=8,
            )
        ax.set_ylabel("cumulative net return (log scale)")
        _date_axis(ax)
        _legend_above(ax, drawn, ncols=3)

    return png_data_uri(draw, (WIDTH, 3.9))


def drawdown_chart(underwater: pd.DataFrame, colors: Mapping[str, str], main: str | None) -> str:
    """Underwater curves: the loss from the running peak of every strategy.

    Parameters
    ----------
    underwater : pandas.DataFrame
        Drawdowns (≤ 0) per strategy, indexed by date.
    colors : mapping
        Colour of each strategy.
    main : str or None
        The strategy whose area is shaded (and drawn heaviest).

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        drawn = 0
        for name in underwater.columns:
            series = underwater[name].dropna()
            if series.empty:
                continue
            worst = float(series.min())
            _plot_strategy(ax, series, name, colors, f"{name}  (max {_pct_text(worst)})", main=main)
            if name == main:
                ax.fill_between(
                    series.index.to_numpy(),
                    series.to_numpy(dtype=np.float64),
                    0.0,
                    color=_color(colors, name),
                    alpha=0.12,
                    linewidth=0,
                )
            drawn += 1
        ax.axhline(0.0, color=_AXIS_LINE, linewidth=0.8)
        ax.yaxis.set_major_formatter(_percent())
        ax.set_ylabel("drawdown from peak")
        _date_axis(ax)
        _legend_above(ax, drawn, ncols=3)

    return png_data_uri(draw, (WIDTH, 3.0))


def rolling_chart(
    frame: pd.DataFrame,
    colors: Mapping[str, str],
    ylabel: str,
    *,
    percent: bool = False,
    reference_line: float | None = None,
) -> str:
    """A rolling statistic of every strategy (volatility, beta, Sharpe ratio ...).

    Parameters
    ----------
    frame : pandas.DataFrame
        One column per strategy, indexed by date; NaN (before the first full window)
        is skipped, an all-NaN column is left out.
    colors : mapping
        Colour of each strategy.
    ylabel : str
        Axis label.
    percent : bool, default False
        Format the y axis as a percentage (the values are fractions).
    reference_line : float, optional
        A horizontal line at this level (1.0 for a beta, 0 for a Sharpe ratio).

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        drawn = 0
        for name in frame.columns:
            series = frame[name].dropna()
            if series.empty:
                continue
            _plot_strategy(ax, series, name, colors, str(name))
            drawn += 1
        if reference_line is not None:
            ax.axhline(reference_line, color=_AXIS_LINE, linewidth=0.9, zorder=1)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel(ylabel)
        _date_axis(ax)
        _legend_above(ax, drawn, ncols=6)

    return png_data_uri(draw, (WIDTH, 3.0))


def rolling_sharpe_chart(sharpe: pd.DataFrame, colors: Mapping[str, str], window: int) -> str:
    """Trailing annualised Sharpe ratio of every strategy (:func:`rolling_chart`).

    Parameters
    ----------
    sharpe : pandas.DataFrame
        Rolling Sharpe per strategy (NaN before the first full window).
    colors : mapping
        Colour of each strategy.
    window : int
        Days per window (for the axis label).

    Returns
    -------
    str
        PNG data URI.
    """
    return rolling_chart(
        sharpe, colors, f"Sharpe ratio, trailing {window} days", reference_line=0.0
    )


def return_histogram(
    returns: Mapping[str, pd.Series],
    colors: Mapping[str, str],
    var: Mapping[str, float | None] | None = None,
) -> str:
    """Distribution of the daily returns of up to three strategies, with their VaR.

    Outline (step) histograms on shared bins, as the share of each strategy's days per
    bin. The x axis spans the 0.5–99.5 % quantiles of the pooled returns, so that one
    extreme day does not squash the rest (the days beyond are counted, not drawn).

    Parameters
    ----------
    returns : mapping of str to pandas.Series
        Daily net returns of each strategy; only the first three are drawn.
    colors : mapping
        Colour of each strategy.
    var : mapping of str to float or None, optional
        95 % value at risk of each strategy (a return, ≤ 0 as a rule), drawn as a
        dashed vertical line of its colour and given in the legend.

    Returns
    -------
    str
        PNG data URI.
    """
    shown = {
        name: values[np.isfinite(values)]
        for name, series in list(returns.items())[:3]
        if (values := np.asarray(series, dtype=np.float64)).size
    }
    var = var or {}

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        pooled = np.concatenate([v for v in shown.values()]) if shown else np.empty(0)
        if pooled.size == 0:
            ax.text(0.5, 0.5, "no daily returns", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return
        low, high = (float(q) for q in np.quantile(pooled, [0.005, 0.995]))
        if high - low < 1e-9:  # a constant series: a small window around it
            low, high = low - 1e-3, high + 1e-3
        edges = np.linspace(low, high, 61)
        lines = [
            float(v) for n in shown if (v := var.get(n)) is not None and math.isfinite(float(v))
        ]
        for k, (name, values) in enumerate(shown.items()):
            color = _color(colors, name)
            style = line_style(name)
            level = var.get(name)
            has_var = level is not None and math.isfinite(float(level))
            label = f"{name} (VaR 95 % {_pct_text(float(level))})" if has_var else str(name)
            ax.hist(
                values,
                bins=edges,
                weights=np.full(values.size, 1.0 / max(values.size, 1)),
                histtype="step",
                color=color,
                linewidth=style["linewidth"],
                alpha=style["alpha"],
                zorder=style["zorder"],
                label=label,
            )
            if k == 0:  # a light fill under the first (main) strategy only: no mud
                ax.hist(
                    values,
                    bins=edges,
                    weights=np.full(values.size, 1.0 / max(values.size, 1)),
                    histtype="stepfilled",
                    color=color,
                    alpha=0.10,
                    linewidth=0,
                    zorder=1,
                )
            if has_var:
                ax.axvline(
                    float(level),
                    color=color,
                    linestyle=(0, (4.0, 2.0)),
                    linewidth=1.2,
                    alpha=0.9,
                    zorder=7,
                )
        span = high - low
        ax.set_xlim(min([low, *lines]) - 0.02 * span, max([high, *lines]) + 0.02 * span)
        ax.axvline(0.0, color=_AXIS_LINE, linewidth=0.8, zorder=0)
        ax.set_ylim(bottom=0.0)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("daily net return")
        ax.set_ylabel("share of days")
        ax.grid(axis="x", visible=False)
        _legend_above(ax, len(shown), ncols=3)

    return png_data_uri(draw, (WIDTH, 3.0))


def _date_bars(
    ax: Axes,
    centres: np.ndarray,
    heights: pd.Series,
    width: np.timedelta64,
    color: str,
    label: str,
) -> PolyCollection:
    """Vertical bars from 0 at datetime ``centres``, drawn as one collection.

    Looks like ``ax.bar(..., alpha=0.8)``, but ``bar`` makes one patch artist per bar
    and each costs its own Python drawing work: a ten-year monthly chart has 240.
    Missing heights draw no bar.
    """
    values = heights.to_numpy(dtype=np.float64)
    keep = np.isfinite(values)
    middle = date2num(centres[keep])
    half = width / np.timedelta64(1, "D") / 2.0
    top = values[keep]
    verts = np.stack(
        [
            np.column_stack([middle - half, np.zeros_like(top)]),
            np.column_stack([middle - half, top]),
            np.column_stack([middle + half, top]),
            np.column_stack([middle + half, np.zeros_like(top)]),
        ],
        axis=1,
    )
    bars = PolyCollection(verts, facecolors=color, alpha=0.8, linewidths=0, label=label)
    bars.sticky_edges.y.append(0.0)  # as bar(): no autoscale margin below a zero base
    ax.add_collection(bars)
    return bars


def ic_chart(monthly: pd.DataFrame) -> str:
    """Monthly mean IC and rank IC (bars) with their cumulative sums (lines, right axis).

    Parameters
    ----------
    monthly : pandas.DataFrame
        As :func:`alphaseq.report.data.monthly_ic` returns it.

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = monthly.index.to_numpy()
        width = np.timedelta64(11, "D")
        ax.xaxis_date()
        _date_bars(ax, x - width / 2, monthly["ic"], width, "#0072B2", "IC (monthly mean)")
        _date_bars(
            ax, x + width / 2, monthly["rank_ic"], width, "#E69F00", "rank IC (monthly mean)"
        )
        ax.axhline(0.0, color="#8a8f98", linewidth=0.8)
        ax.set_ylabel("mean daily IC in the month")
        right = ax.twinx()
        right.grid(False)
        right.spines["right"].set_visible(True)
        right.plot(
            x, monthly["cum_ic"].to_numpy(), color="#003E62", linewidth=1.8, label="cumulative IC"
        )
        right.plot(
            x,
            monthly["cum_rank_ic"].to_numpy(),
            color="#9A5B00",
            linewidth=1.8,
            linestyle=(0, (5, 2)),
            label="cumulative rank IC",
        )
        right.set_ylabel("cumulative sum of monthly IC")
        _date_axis(ax)
        handles = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left", ncols=2)

    return png_data_uri(draw, (WIDTH, 3.1))


def rolling_ic_chart(rolling: pd.DataFrame, window: int) -> str:
    """Trailing time-series correlation of one instrument's forecast with its outcome.

    Parameters
    ----------
    rolling : pandas.DataFrame
        As :func:`alphaseq.report.data.rolling_time_series_ic` returns it.
    window : int
        Days per window (for the labels).

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = rolling.index.to_numpy()
        ax.plot(x, rolling["ic"].to_numpy(), color="#0072B2", label=f"Pearson, {window} days")
        ax.plot(
            x,
            rolling["rank_ic"].to_numpy(),
            color="#E69F00",
            linewidth=1.1,
            label=f"Spearman, {window} days",
        )
        ax.axhline(0.0, color="#8a8f98", linewidth=0.8)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel("time-series correlation")
        _date_axis(ax)
        ax.legend(loc="lower left", ncols=2)

    return png_data_uri(draw, (WIDTH, 2.8))


def turnover_chart(
    turnover: Mapping[str, pd.Series], colors: Mapping[str, str], ylabel: str
) -> str:
    """Turnover at each rebalance (or per period) of every strategy with weights.

    Parameters
    ----------
    turnover : mapping of str to pandas.Series
        One-way turnover (½ Σ|Δw|, a fraction of the book) per date of each strategy.
    colors : mapping
        Colour of each strategy.
    ylabel : str
        Axis label (what one point is).

    Returns
    -------
    str
        PNG data URI; the axis and the legend's means are in percent.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        many = max((len(s) for s in turnover.values()), default=0) > 80
        for name, series in turnover.items():
            mean = float(series.mean()) if len(series) else float("nan")
            label = f"{name}  (mean {_pct_text(mean)})" if math.isfinite(mean) else str(name)
            _plot_strategy(
                ax,
                series,
                name,
                colors,
                label,
                marker=None if many else "o",
                markersize=3,
            )
        ax.set_ylim(bottom=0.0)
        # Decimals follow the axis range: 2.5 % steps are not rounded to "2%".
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel(ylabel)
        _date_axis(ax)
        _legend_above(ax, len(turnover), ncols=3)

    return png_data_uri(draw, (WIDTH, 2.9))


def metric_bar_chart(values: Mapping[str, float], colors: Mapping[str, str], label: str) -> str:
    """A horizontal bar per strategy (the fallback when only summary figures exist).

    Parameters
    ----------
    values : mapping of str to float
        One value per strategy.
    colors : mapping
        Colour of each strategy.
    label : str
        Axis label.

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = list(values)
        y = np.arange(len(names))
        ax.barh(y, [values[n] for n in names], color=[colors[n] for n in names], height=0.6)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(label)

    return png_data_uri(draw, (WIDTH * 0.7, 0.6 + 0.4 * len(values)))


def holdings_chart(
    table: pd.DataFrame, ylabel: str = "weight", average_days: int | None = None
) -> str:
    """Stacked target weights over time (constant between rebalances).

    Parameters
    ----------
    table : pandas.DataFrame
        Date × holding weights (as :func:`alphaseq.report.data.holdings` returns them).
    ylabel : str, default "weight"
        Axis label.
    average_days : int, optional
        Also draw the trailing mean of the total over this many rows (for daily
        positions, whose steps are too dense to read).

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = list(table.columns)
        colors = [
            _OTHER if n == "other" else _HOLDING_COLORS[k % len(_HOLDING_COLORS)]
            for k, n in enumerate(names)
        ]
        # Weights hold from one rebalance to the next: steps, the last one held a period.
        x = table.index.to_numpy()
        values = table.to_numpy().T
        if len(x) > 1:
            x = np.append(x, x[-1] + (x[-1] - x[-2]))
            values = np.concatenate([values, values[:, -1:]], axis=1)
        ax.stackplot(x, values, labels=names, colors=colors, step="post", linewidth=0)
        if average_days:
            total = table.sum(axis=1).rolling(average_days, min_periods=1).mean()
            ax.plot(
                total.index.to_numpy(),
                total.to_numpy(),
                color="#111111",
                linewidth=1.2,
                label=f"{average_days}-day average",
            )
        totals = table.to_numpy()
        top = float(np.nansum(np.clip(totals, 0, None), axis=1).max())
        bottom = float(np.nansum(np.clip(totals, None, 0), axis=1).min())
        ax.set_ylim(min(0.0, bottom * 1.02), max(1.0, top) * 1.02)
        ax.yaxis.set_major_formatter(_percent())
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)
        _date_axis(ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), reverse=True)

    return png_data_uri(draw, (WIDTH, 3.1))


def holdings_heatmap(table: pd.DataFrame) -> str:
    """Target weights at each rebalance as a heat map: tickers as rows, dates as columns.

    Every ticker keeps one row over the whole period (heaviest on top, in the table's
    column order), so a holding reads along its row instead of as a band whose colour
    and place change every month. A final ``"other"`` column (every other ticker summed)
    is drawn last, set apart by a gap and in grey on its own 0–100 % scale, its mean in
    the row label. Cells hold from one rebalance to the next; the last one a typical
    rebalance interval.

    Parameters
    ----------
    table : pandas.DataFrame
        Rebalance dates × tickers target weights (as
        :func:`alphaseq.report.data.holdings` returns them), columns heaviest first.

    Returns
    -------
    str
        PNG data URI.
    """
    tickers = [c for c in table.columns if c != "other"]
    other = "other" in table.columns
    values = table[tickers].to_numpy(dtype=np.float64).T if tickers else np.empty((0, len(table)))
    dates = pd.DatetimeIndex(table.index).to_numpy()
    # Column edges: each rebalance to the next; the last cell is as wide as the median gap.
    step = np.median(np.diff(dates)) if len(dates) > 1 else np.timedelta64(30, "D")
    edges = np.append(dates, dates[-1] + step) if len(dates) else dates
    n_rows = len(tickers) + (1 if other else 0)
    gap = 0.35 if other and tickers else 0.0
    height = min(1.25 + 0.22 * (n_rows + gap), 9.0)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        if not len(dates) or n_rows == 0:
            ax.text(0.5, 0.5, "no holdings", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 0.0
        bottom = float(finite.min()) if finite.size else 0.0
        if bottom < -1e-12:
            # Short positions: a diverging scale around zero instead of one hue.
            span = max(abs(bottom), top, 1e-9)
            cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
            norm: Normalize = TwoSlopeNorm(0.0, -span, span)
        else:
            # Blues without its near-white start: a small weight stays visibly not zero.
            blues = mpl.colormaps["Blues"](np.linspace(0.12, 1.0, 256))
            cmap = ListedColormap(blues, name="weights").with_extremes(bad="white")
            norm = Normalize(0.0, max(top, 1e-9))
        # Not held is white, not the palest blue: an exact zero is masked.
        shown = np.ma.masked_where(~np.isfinite(values) | (np.abs(values) < 1e-12), values)
        labels, centres = [str(t) for t in tickers], [k + 0.5 for k in range(len(tickers))]
        mesh = None
        if tickers:
            mesh = ax.pcolormesh(
                edges, np.arange(len(tickers) + 1), shown, cmap=cmap, norm=norm, linewidth=0
            )
        if other:
            rest = table["other"].to_numpy(dtype=np.float64)[None, :]
            start = len(tickers) + gap
            greys = mpl.colormaps["Greys"].with_extremes(bad="white")
            ax.pcolormesh(
                edges,
                [start, start + 1],
                np.ma.masked_where(~np.isfinite(rest) | (np.abs(rest) < 1e-12), rest),
                cmap=greys,
                norm=Normalize(0.0, 1.25),  # up to 100 % without reaching black
                linewidth=0,
            )
            labels.append(f"other (sum, mean {_pct_text(float(np.nanmean(rest)), 0)})")
            centres.append(start + 0.5)
        ax.set_ylim(len(tickers) + gap + (1 if other else 0), 0)  # heaviest on top
        ax.set_yticks(centres, labels, fontsize=7.5)
        ax.tick_params(axis="y", length=0)
        ax.grid(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        _date_axis(ax)
        if mesh is not None:
            colorbar = fig.colorbar(mesh, ax=ax, pad=0.015, fraction=0.04, aspect=30)
            colorbar.set_label("target weight")
            colorbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            colorbar.outline.set_visible(False)

    return png_data_uri(draw, (WIDTH, height))


def training_curves(folds: Sequence[Mapping[str, object]], columns: int = 4) -> str | None:
    """Per-fold training curves as small multiples.

    Each panel shows the training and validation loss by epoch (left axis) and the
    validation IC (right axis, when finite), with the best epoch marked.

    Parameters
    ----------
    folds : sequence of mapping
        Fold records with a ``history`` list of per-epoch dicts (``epoch``,
        ``train_loss``, ``val_loss``, ``val_ic``), ``index``, ``best_epoch`` and
        ``test_window``; folds without history are left out.
    columns : int, default 4
        Panels per row.

    Returns
    -------
    str or None
        PNG data URI, None when no fold has a history.
    """
    shown = [f for f in folds if isinstance(f.get("history"), list) and f["history"]]
    if not shown:
        return None
    n_cols = min(columns, len(shown))
    n_rows = math.ceil(len(shown) / n_cols)

    def draw(fig: Figure) -> None:
        # Room between panels for the right (IC) axis of one and the left of the next.
        fig.get_layout_engine().set(w_pad=0.06, wspace=0.06)
        grid = fig.add_gridspec(n_rows, n_cols)
        handles: dict[str, object] = {}
        for k, fold in enumerate(shown):
            # Only the panels that show a fold: creating an Axes costs ~10 ms, even
            # one that is then hidden.
            ax = fig.add_subplot(grid[divmod(k, n_cols)])
            history = pd.DataFrame(fold["history"])
            epochs = (
                history["epoch"].to_numpy() + 1
                if "epoch" in history
                else np.arange(1, len(history) + 1)
            )
            for key, label, color, style in (
                ("train_loss", "train loss", "#0072B2", "-"),
                ("val_loss", "validation loss", "#D55E00", "-"),
            ):
                if key in history and np.isfinite(history[key].astype(float)).any():
                    (line,) = ax.plot(
                        epochs,
                        history[key].astype(float),
                        color=color,
                        linestyle=style,
                        marker="o",
                        markersize=2.5,
                        label=label,
                    )
                    handles[label] = line
            best = fold.get("best_epoch")
            if isinstance(best, int) and best >= 0:
                line = ax.axvline(
                    best + 1, color="#8a8f98", linestyle=":", linewidth=1.0, label="best epoch"
                )
                handles["best epoch"] = line
            if "val_ic" in history and np.isfinite(history["val_ic"].astype(float)).any():
                right = ax.twinx()
                right.grid(False)
                right.spines["right"].set_visible(True)
                ic = history["val_ic"].astype(float).to_numpy()
                (line,) = right.plot(
                    epochs,
                    ic,
                    color=_IC_GREEN,
                    linestyle=(0, (4, 2)),
                    marker="s",
                    markersize=2.5,
                    label="validation IC",
                )
                handles["validation IC"] = line
                low, high = float(np.nanmin(ic)), float(np.nanmax(ic))
                if high - low < 0.01:  # one or two epochs: no ±5 % of nothing as a scale
                    middle = (low + high) / 2
                    right.set_ylim(middle - 0.006, middle + 0.006)
                right.tick_params(labelsize=7, colors=_IC_GREEN, pad=1.5)
                right.yaxis.set_major_locator(MaxNLocator(nbins=3, steps=[1, 2, 5, 10]))
            # Integer epochs only, and a half epoch of room on each side: one epoch is a
            # single tick "1", not five fractional labels on top of each other.
            n_epochs = max(1, int(np.nanmax(epochs)))
            ax.set_xlim(0.5, n_epochs + 0.5)
            ax.xaxis.set_major_locator(
                FixedLocator(range(1, n_epochs + 1))
                if n_epochs <= 6
                else MaxNLocator(integer=True, nbins=5)
            )
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.tick_params(labelsize=7, pad=1.5)
            test = fold.get("test_window") or {}
            year = str(test.get("start_date", ""))[:7] if isinstance(test, Mapping) else ""
            title = f"fold {fold.get('index', k)}"
            # An explicit y: matplotlib then skips re-measuring both y axes of the panel
            # at every draw to lift the title above any top ticks (there are none).
            ax.set_title(f"{title} · test {year}" if year else title, fontsize=8, y=1.0)
            if k % n_cols == 0:
                ax.set_ylabel("loss", fontsize=8)
            if k >= len(shown) - n_cols:
                ax.set_xlabel("epoch", fontsize=8)
        fig.legend(
            list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles)
        )

    return png_data_uri(draw, (WIDTH, 0.5 + 1.9 * n_rows))
