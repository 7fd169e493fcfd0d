"""Data-quality summary of a panel, as printed by ``alphaseq data check``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alphaseq.data.panel import Panel

#: A one-day close-to-close move above this (in absolute value) is flagged as suspicious.
LARGE_MOVE = 0.5

#: A ticker whose close stays unchanged (or whose volume stays zero) for this many
#: consecutive trading days in its life is flagged as not trading (a suspended stock).
STALE_RUN = 63


@dataclass
class DataSummary:
    """What a user should know about a panel before training on it.

    Every count refers to the panel as loaded, after the loader's counted repairs
    (which are listed in ``repairs``).
    """

    name: str
    source: str
    layout: str
    input_rows: int | None
    tickers: int
    dates: int
    first_date: str
    last_date: str
    fields: list[str]
    valid_cells: int
    missing_in_life: dict[str, float]
    zero_volume_cells: int | None
    non_positive_prices: int
    large_moves: int
    large_move_examples: list[dict[str, Any]]
    lookback: int
    horizon: int
    short_tickers: list[str]
    benchmark: str | None
    survivorship_bias: str | None
    repairs: list[dict[str, Any]] = field(default_factory=list)
    weekend_dates: list[str] = field(default_factory=list)
    stale_tickers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return asdict(self)


def summarize(panel: Panel, *, lookback: int = 60, horizon: int = 21) -> DataSummary:
    """Summarise a panel's coverage and the data errors worth a look.

    Parameters
    ----------
    panel : Panel
        The loaded panel.
    lookback : int
        Window length the user plans to train with.
    horizon : int
        Label horizon; a ticker needs ``lookback + horizon`` valid days for one labelled
        sample.
    """
    mask = panel.mask
    alive = panel.in_life()
    n_alive = max(int(alive.sum()), 1)
    missing = {
        key: round(float((alive & ~np.isfinite(values)).sum()) / n_alive, 6)
        for key, values in panel.fields.items()
    }
    zero_volume = None
    if panel.has_volume:
        zero_volume = int(((panel.fields["volume"] == 0) & mask).sum())

    close = panel.close.astype(np.float64)
    # Compare each valid close with the ticker's previous valid close (gaps skipped).
    rows = np.where(mask, np.arange(panel.n_dates)[:, None], -1)
    previous_row = np.maximum.accumulate(rows, axis=0)
    prev = np.full_like(previous_row, -1)
    prev[1:] = previous_row[:-1]
    has_prev = mask & (prev >= 0)
    prev_close = np.take_along_axis(close, np.maximum(prev, 0), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        move = np.where(has_prev, close / prev_close - 1.0, np.nan)
    large = np.abs(np.nan_to_num(move)) > LARGE_MOVE
    t_idx, i_idx = np.nonzero(large)
    order = np.argsort(-np.abs(move[t_idx, i_idx]))[:5]
    examples = [
        {
            "ticker": str(panel.tickers[i_idx[k]]),
            "date": str(np.datetime_as_string(panel.dates[t_idx[k]], unit="D")),
            "move": round(float(move[t_idx[k], i_idx[k]]), 4),
        }
        for k in order
    ]

    counts = mask.sum(axis=0)
    short = panel.tickers[counts < lookback + horizon].tolist()
    non_positive = sum(r.count for r in panel.repairs if r.kind == "non_positive_price")

    def day(value: np.datetime64) -> str:
        return str(np.datetime_as_string(value, unit="D"))

    weekday = (panel.dates.astype("datetime64[D]").astype(np.int64) + 3) % 7  # Monday = 0
    weekend = [day(d) for d in panel.dates[weekday >= 5]]

    return DataSummary(
        name=panel.name,
        source=str(panel.meta.get("source", panel.name)),
        layout=str(panel.meta.get("format", "unknown")),
        input_rows=panel.meta.get("rows"),
        tickers=panel.n_tickers,
        dates=panel.n_dates,
        first_date=day(panel.dates[0]) if panel.n_dates else "",
        last_date=day(panel.dates[-1]) if panel.n_dates else "",
        fields=list(panel.fields),
        valid_cells=int(mask.sum()),
        missing_in_life=missing,
        zero_volume_cells=zero_volume,
        non_positive_prices=int(non_positive),
        large_moves=len(t_idx),
        large_move_examples=examples,
        lookback=lookback,
        horizon=horizon,
        short_tickers=short,
        benchmark=panel.benchmark_name,
        survivorship_bias=panel.meta.get("survivorship_bias"),
        repairs=[{"kind": r.kind, "count": r.count, "detail": r.detail} for r in panel.repairs],
        weekend_dates=weekend,
        stale_tickers=stale_tickers(panel),
    )


def stale_tickers(panel: Panel, min_run: int = STALE_RUN) -> list[dict[str, Any]]:
    """Tickers that stop trading inside their life: ``min_run`` or more consecutive
    valid days with an unchanged close or a zero volume, longest run first.

    Returns
    -------
    list of dict
        ``ticker``, ``days`` (the longest such run), ``since`` and ``until`` (its dates).
    """
    close = panel.close.astype(np.float64)
    mask = panel.mask
    flat = np.zeros_like(mask)
    flat[1:] = mask[1:] & mask[:-1] & (close[1:] == close[:-1])
    if panel.has_volume:
        flat |= mask & (panel.fields["volume"] == 0)
    found = []
    for i in np.flatnonzero(flat.sum(axis=0) >= min_run):
        run, best, end = 0, 0, 0
        for t, value in enumerate(flat[:, i]):
            run = run + 1 if value else 0
            if run > best:
                best, end = run, t
        if best >= min_run:
            found.append(
                {
                    "ticker": str(panel.tickers[i]),
                    "days": int(best),
                    "since": str(np.datetime_as_string(panel.dates[end - best + 1], unit="D")),
                    "until": str(np.datetime_as_string(panel.dates[end], unit="D")),
                }
            )
    return sorted(found, key=lambda r: -r["days"])
