"""The report's charts: matplotlib figures rendered to PNG data URIs.

Every function draws one chart on its own :class:`~matplotlib.figure.Figure` with an Agg
canvas (no pyplot: no global figure registry, no display, safe in worker threads) and
returns ``data:image/png;base64,...`` ready for an ``<img src>``. The styling lives in
one ``rc_context`` so the process's matplotlib settings are left untouched.
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
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

__all__ = [
    "DPI",
    "drawdown_chart",
    "equity_chart",
    "holdings_chart",
    "ic_chart",
    "metric_bar_chart",
    "png_data_uri",
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
    "lines.linewidth": 1.4,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

_MODEL = "#1f5fa8"
_REFERENCE = "#2b2b2b"
_NAMED_COLORS = {
    "model_topk": _MODEL,
    "model_timing": _MODEL,
    "benchmark": _REFERENCE,
    "buy_and_hold": _REFERENCE,
    "equal_weight": "#e08a1e",
    "momentum": "#3a9d5d",
    "hrp": "#8e5ba8",
}
_PALETTE = ("#c0392b", "#17a2b8", "#b8860b", "#d35d9c", "#6c7a89", "#7f5539", "#2e8b57")
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


def strategy_colors(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per strategy: the model blue, the benchmark near black.

    Parameters
    ----------
    names : sequence of str
        Strategy names, in report order.

    Returns
    -------
    dict of str to str
        Hex colour of each name; unknown names take the next palette colour.
    """
    colors: dict[str, str] = {}
    spare = iter(_PALETTE * (1 + len(names) // len(_PALETTE)))
    for name in names:
        colors[name] = _NAMED_COLORS.get(name) or next(spare)
    return colors


def _line_style(name: str) -> dict[str, object]:
    """The model drawn heavier, passive references dashed."""
    if name in ("model_topk", "model_timing"):
        return {"linewidth": 2.0, "zorder": 5}
    if name in ("benchmark", "buy_and_hold"):
        return {"linewidth": 1.3, "linestyle": (0, (5, 2)), "zorder": 4}
    return {"linewidth": 1.2, "zorder": 3}


def png_data_uri(draw: Callable[[Figure], None], size: tuple[float, float]) -> str:
    """Render ``draw(figure)`` to a PNG and return it as a base64 data URI.

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
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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
        for name in wealth.columns:
            series = wealth[name].dropna()
            if series.empty:
                continue
            final = series.iloc[-1] - 1.0
            ax.plot(
                series.index.to_numpy(),
                series.to_numpy(),
                color=colors[name],
                label=f"{name}  ({final * 100:+.1f}%)",
                **_line_style(name),
            )
        ax.axhline(1.0, color="#8a8f98", linewidth=0.8, zorder=1)
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
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.94))

    return png_data_uri(draw, (WIDTH, 3.7))


def drawdown_chart(underwater: pd.DataFrame, colors: Mapping[str, str], main: str | None) -> str:
    """Underwater curves: the loss from the running peak of every strategy.

    Parameters
    ----------
    underwater : pandas.DataFrame
        Drawdowns (≤ 0) per strategy, indexed by date.
    colors : mapping
        Colour of each strategy.
    main : str or None
        The strategy whose area is shaded.

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for name in underwater.columns:
            series = underwater[name].dropna()
            if series.empty:
                continue
            x, y = series.index.to_numpy(), series.to_numpy()
            ax.plot(
                x,
                y,
                color=colors[name],
                label=f"{name}  ({y.min() * 100:.1f}%)",
                **_line_style(name),
            )
            if name == main:
                ax.fill_between(x, y, 0.0, color=colors[name], alpha=0.12, linewidth=0)
        ax.axhline(0.0, color="#8a8f98", linewidth=0.8)
        ax.yaxis.set_major_formatter(_percent())
        ax.set_ylabel("drawdown from peak")
        _date_axis(ax)
        ax.legend(loc="lower left", title="strategy  (max drawdown)", title_fontsize=8)

    return png_data_uri(draw, (WIDTH, 2.8))


def rolling_sharpe_chart(sharpe: pd.DataFrame, colors: Mapping[str, str], window: int) -> str:
    """Trailing annualised Sharpe ratio of every strategy.

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

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for name in sharpe.columns:
            series = sharpe[name].dropna()
            if not series.empty:
                ax.plot(
                    series.index.to_numpy(),
                    series.to_numpy(),
                    color=colors[name],
                    label=name,
                    **_line_style(name),
                )
        ax.axhline(0.0, color="#8a8f98", linewidth=0.8)
        ax.set_ylabel(f"Sharpe ratio, trailing {window} days")
        _date_axis(ax)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(4, len(sharpe.columns)))

    return png_data_uri(draw, (WIDTH, 2.8))


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
        ax.bar(
            x - width / 2,
            monthly["ic"].to_numpy(),
            width=width,
            color="#1f5fa8",
            alpha=0.75,
            label="IC (monthly mean)",
            align="center",
        )
        ax.bar(
            x + width / 2,
            monthly["rank_ic"].to_numpy(),
            width=width,
            color="#e08a1e",
            alpha=0.75,
            label="rank IC (monthly mean)",
            align="center",
        )
        ax.axhline(0.0, color="#8a8f98", linewidth=0.8)
        ax.set_ylabel("mean daily IC in the month")
        right = ax.twinx()
        right.grid(False)
        right.spines["right"].set_visible(True)
        right.plot(
            x, monthly["cum_ic"].to_numpy(), color="#0d3b73", linewidth=1.8, label="cumulative IC"
        )
        right.plot(
            x,
            monthly["cum_rank_ic"].to_numpy(),
            color="#a35c00",
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
        ax.plot(x, rolling["ic"].to_numpy(), color="#1f5fa8", label=f"Pearson, {window} days")
        ax.plot(
            x,
            rolling["rank_ic"].to_numpy(),
            color="#e08a1e",
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
        Turnover per date of each strategy.
    colors : mapping
        Colour of each strategy.
    ylabel : str
        Axis label (what one point is).

    Returns
    -------
    str
        PNG data URI.
    """

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        many = max(len(s) for s in turnover.values()) > 80
        for name, series in turnover.items():
            ax.plot(
                series.index.to_numpy(),
                series.to_numpy(),
                color=colors[name],
                marker=None if many else "o",
                markersize=3,
                label=f"{name}  (mean {series.mean():.2f})",
                **_line_style(name),
            )
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel(ylabel)
        _date_axis(ax)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(4, len(turnover)))

    return png_data_uri(draw, (WIDTH, 2.7))


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
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        handles: dict[str, object] = {}
        for k, ax in enumerate(axes.flat):
            if k >= len(shown):
                ax.set_visible(False)
                continue
            fold = shown[k]
            history = pd.DataFrame(fold["history"])
            epochs = (
                history["epoch"].to_numpy() + 1
                if "epoch" in history
                else np.arange(1, len(history) + 1)
            )
            for key, label, color, style in (
                ("train_loss", "train loss", "#1f5fa8", "-"),
                ("val_loss", "validation loss", "#e08a1e", "-"),
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
                (line,) = right.plot(
                    epochs,
                    history["val_ic"].astype(float),
                    color="#3a9d5d",
                    linestyle=(0, (4, 2)),
                    marker="s",
                    markersize=2.5,
                    label="validation IC",
                )
                handles["validation IC"] = line
                right.tick_params(labelsize=7, colors="#3a9d5d")
                right.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.tick_params(labelsize=7)
            test = fold.get("test_window") or {}
            year = str(test.get("start_date", ""))[:7] if isinstance(test, Mapping) else ""
            title = f"fold {fold.get('index', k)}"
            ax.set_title(f"{title} · test from {year}" if year else title, fontsize=8.5)
            if k % n_cols == 0:
                ax.set_ylabel("loss", fontsize=8)
            if k >= len(shown) - n_cols:
                ax.set_xlabel("epoch", fontsize=8)
        fig.legend(
            list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles)
        )

    return png_data_uri(draw, (WIDTH, 0.5 + 1.9 * n_rows))
