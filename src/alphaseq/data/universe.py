"""Point-in-time universes: which tickers may be traded (and trained on) on each date.

A hand-picked universe chosen with today's knowledge is a look-ahead bias: the stocks
that are large and liquid today are the ones that did well. A point-in-time universe is
re-selected on each selection date from data up to that date only:

* the **liquidity** of a ticker on row ``t`` is its average dollar volume
  (``close * volume``) over the trailing ``window`` trading days ``t - window + 1 .. t``
  (inclusive: a selection is made after that day's close, like a rebalance);
* the **members** are the ``top_n`` most liquid tickers with a close on ``t`` (equal
  volumes ranked by ticker name), after the optional filters ``min_price`` (close on
  ``t``) and ``min_coverage`` (share of the window's days with a close and a volume).

Nothing after ``t`` is read, so changing any input after ``t`` leaves every selection
up to ``t`` unchanged. :meth:`Universe.daily` turns selections into a membership on
every trading day (the latest selection on or before the day).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaseq._config_base import did_you_mean
from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_WINDOW",
    "Universe",
    "liquidity",
    "membership_on_rows",
    "read_ticker_list",
    "restrict_tickers",
    "select_members",
    "select_universe",
    "universe_changes",
    "universe_table",
    "yearly_changes",
]

#: Trailing trading days of the average dollar volume (about three months).
DEFAULT_WINDOW = 63

#: Cells of one block of trailing windows summed at once (bounds the memory of a
#: selection on many dates: 2**22 float64 cells are 32 MiB).
_BLOCK_CELLS = 1 << 22


# ------------------------------------------------------------------------- liquidity
def liquidity(
    close: np.ndarray, volume: np.ndarray, rows: np.ndarray, window: int = DEFAULT_WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """Average dollar volume and coverage over the trailing window ending at each row.

    Parameters
    ----------
    close, volume : numpy.ndarray
        (T, N) prices and volumes, NaN where missing.
    rows : numpy.ndarray
        Rows ``t`` of the selections, (S,); each window is ``t - window + 1 .. t``
        (shorter at the start of the data).
    window : int, default 63
        Trailing trading days.

    Returns
    -------
    dollar_volume : numpy.ndarray
        (S, N) mean of ``close * volume`` over the window's days with a positive close
        and a volume >= 0 (a day without trades counts as 0); NaN without such a day.
    coverage : numpy.ndarray
        (S, N) share of the ``window`` days with such a close and volume, in [0, 1].
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ConfigError(f"window must be an integer >= 1 (trading days), got {window!r}")
    close = np.asarray(close, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    if close.shape != volume.shape or close.ndim != 2:
        raise ValueError(f"close {close.shape} and volume {volume.shape} must be the same (T, N)")
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    n_dates, n_tickers = close.shape
    if len(rows) and (rows.min() < 0 or rows.max() >= n_dates):
        raise ValueError(f"selection rows must lie in 0..{n_dates - 1}")
    with np.errstate(invalid="ignore"):
        observed = np.isfinite(close) & (close > 0) & np.isfinite(volume) & (volume >= 0)
        dollar = np.where(observed, close * volume, 0.0)
    # Zeros before the first row make every window full length; the first rows' windows
    # then hold fewer real days, which their coverage shows.
    pad = np.zeros((window - 1, n_tickers))
    dollar = np.concatenate([pad, dollar])
    counted = np.concatenate([pad, observed.astype(np.float64)])
    total = np.empty((len(rows), n_tickers))
    count = np.empty((len(rows), n_tickers))
    offsets = np.arange(window)
    block = max(1, _BLOCK_CELLS // max(1, window * n_tickers))
    for start in range(0, len(rows), block):  # blocks of dates, never a loop over tickers
        # Row t of the data is row t + window - 1 of the padded arrays: its window of
        # the padded arrays starts at row t.
        index = rows[start : start + block, None] + offsets[None, :]
        total[start : start + block] = dollar[index].sum(axis=1)
        count[start : start + block] = counted[index].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(count > 0, total / np.maximum(count, 1.0), np.nan)
    return average, count / window


def select_members(
    close: np.ndarray,
    volume: np.ndarray,
    rows: np.ndarray,
    tickers: np.ndarray | list[str],
    *,
    top_n: int,
    window: int = DEFAULT_WINDOW,
    min_price: float | None = None,
    min_coverage: float | None = None,
) -> np.ndarray:
    """The ``top_n`` most liquid tickers on each selection row, from rows up to it only.

    Parameters
    ----------
    close, volume : numpy.ndarray
        (T, N) prices and volumes, NaN where missing.
    rows : numpy.ndarray
        Selection rows, (S,).
    tickers : array-like of str
        The N ticker names: equal dollar volumes are ranked by name (A before B).
    top_n : int
        Members per selection (fewer when fewer tickers qualify).
    window : int, default 63
        Trailing trading days of the average dollar volume (see :func:`liquidity`).
    min_price : float, optional
        Only tickers whose close on the selection row is at least this.
    min_coverage : float, optional
        Only tickers with a close and a volume on at least this share of the window's
        days, in (0, 1].

    Returns
    -------
    numpy.ndarray
        (S, N) bool membership. A member has a close on its selection row and a
        positive average dollar volume.
    """
    _check_rule(top_n, min_price, min_coverage)
    close = np.asarray(close, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    names = np.asarray(tickers).astype(str)
    if names.shape != (close.shape[1],):
        raise ValueError(f"tickers has shape {names.shape}, expected ({close.shape[1]},)")
    average, coverage = liquidity(close, volume, rows, window)
    price = close[rows]
    with np.errstate(invalid="ignore"):
        candidate = np.isfinite(price) & (price > 0) & (average > 0)
        if min_price is not None:
            candidate &= price >= min_price
        if min_coverage is not None:
            candidate &= coverage >= min_coverage
    # Columns in name order, then a stable sort on minus the dollar volume: equal
    # volumes keep name order, whatever the panel's column order.
    by_name = np.argsort(names, kind="stable")
    key = np.where(candidate, -average, np.inf)[:, by_name]
    order = np.argsort(key, axis=1, kind="stable")[:, :top_n]
    chosen = np.zeros(key.shape, dtype=bool)
    np.put_along_axis(chosen, order, True, axis=1)
    chosen &= np.isfinite(key)
    members = np.zeros_like(chosen)
    members[:, by_name] = chosen
    return members


def _check_rule(top_n: Any, min_price: Any, min_coverage: Any) -> None:
    if isinstance(top_n, bool) or not isinstance(top_n, int | np.integer) or top_n < 1:
        raise ConfigError(f"top_n must be an integer >= 1, got {top_n!r}")
    if min_price is not None and not (np.isfinite(min_price) and min_price >= 0):
        raise ConfigError(f"min_price must be a price >= 0, got {min_price!r}")
    if min_coverage is not None and not 0 < min_coverage <= 1:
        raise ConfigError(f"min_coverage must be a fraction in (0, 1], got {min_coverage!r}")


# --------------------------------------------------------------------------- universe
def membership_on_rows(
    members: np.ndarray, member_rows: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Membership on ``rows``: that of the latest selection row on or before each row.

    Parameters
    ----------
    members : numpy.ndarray
        (S, N) bool selections.
    member_rows : numpy.ndarray
        Strictly increasing rows of the selections, (S,).
    rows : numpy.ndarray
        Rows to look up, (R,).

    Returns
    -------
    numpy.ndarray
        (R, N) bool; all False on a row before the first selection.
    """
    members = np.asarray(members, dtype=bool)
    member_rows = np.asarray(member_rows, dtype=np.int64)
    if len(member_rows) > 1 and not (np.diff(member_rows) > 0).all():
        raise ValueError("selection rows must be strictly increasing")
    latest = np.searchsorted(member_rows, np.asarray(rows, dtype=np.int64), side="right") - 1
    if not len(member_rows):
        return np.zeros((len(latest), members.shape[-1]), dtype=bool)
    out = members[np.maximum(latest, 0)].copy()
    out[latest < 0] = False
    return out


@dataclass(frozen=True, eq=False)
class Universe:
    """Selections of a point-in-time universe.

    Attributes
    ----------
    rows : numpy.ndarray
        Panel row of each selection, (S,), increasing.
    members : numpy.ndarray
        (S, N) bool: the members chosen on each row (from data up to it).
    dates : numpy.ndarray
        The selection dates, ``datetime64[ns]``, (S,).
    tickers : numpy.ndarray
        The panel's tickers, (N,).
    """

    rows: np.ndarray
    members: np.ndarray
    dates: np.ndarray
    tickers: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Members of each selection, (S,)."""
        return self.members.sum(axis=1)

    def daily(self, n_dates: int) -> np.ndarray:
        """(n_dates, N) membership on every panel row: the latest selection on or before
        the row (False before the first selection)."""
        return membership_on_rows(self.members, self.rows, np.arange(n_dates))

    def at(self, row: int) -> np.ndarray:
        """(N,) membership in force on panel row ``row``: the latest selection on or
        before it (all False before the first selection)."""
        return membership_on_rows(self.members, self.rows, np.array([int(row)]))[0]

    def to_frame(self) -> pd.DataFrame:
        """Boolean membership: selection dates by tickers."""
        return pd.DataFrame(
            self.members,
            index=pd.DatetimeIndex(self.dates, name="date"),
            columns=pd.Index(self.tickers, name="ticker"),
        )


def _require_volume(panel: Panel) -> np.ndarray:
    if not panel.has_volume:
        raise DataError(
            f"a universe ranks tickers by dollar volume (close x volume), but "
            f"{panel.name!r} has no volume column ({', '.join(panel.fields)}); use "
            f"data.tickers for a fixed list, or data with a volume column"
        )
    return panel.fields["volume"]


def _rows_of(panel: Panel, where: Any) -> np.ndarray:
    """Panel rows: integers as given, dates as their trading day (or the last before)."""
    values = np.atleast_1d(np.asarray(where))
    if values.dtype.kind in "iu":
        rows = values.astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= panel.n_dates):
            raise DataError(f"selection rows must lie in 0..{panel.n_dates - 1}")
        return rows
    wanted = pd.DatetimeIndex(pd.to_datetime(values)).to_numpy("datetime64[ns]")
    rows = np.searchsorted(panel.dates, wanted, side="right") - 1
    if (rows < 0).any():
        early = pd.Timestamp(wanted[rows < 0][0]).date()
        raise DataError(f"selection date {early} is before the first date of {panel.name!r}")
    return rows.astype(np.int64)


def select_universe(
    panel: Panel,
    rows: Any,
    *,
    top_n: int,
    window: int = DEFAULT_WINDOW,
    min_price: float | None = None,
    min_coverage: float | None = None,
) -> Universe:
    """The point-in-time universe of ``panel`` on each selection row (or date).

    Parameters
    ----------
    panel : Panel
        Prices with a ``volume`` field.
    rows : array-like of int or of dates
        Selection rows, increasing; dates are taken on their trading day (or the last
        one before).
    top_n, window, min_price, min_coverage
        The rule, see :func:`select_members`.

    Returns
    -------
    Universe

    Raises
    ------
    ConfigError
        When the panel has no volume, or the rule is out of range.
    """
    volume = _require_volume(panel)
    rows = _rows_of(panel, rows)
    members = select_members(
        panel.close,
        volume,
        rows,
        panel.tickers,
        top_n=top_n,
        window=window,
        min_price=min_price,
        min_coverage=min_coverage,
    )
    return Universe(rows, members, panel.dates[rows], panel.tickers)


# ---------------------------------------------------------------------------- changes
def universe_changes(
    chosen: Universe | pd.DataFrame,
    panel: Panel | None = None,
    *,
    by: str | None = None,
    examples: int = 3,
) -> list[dict[str, Any]] | pd.DataFrame:
    """How a universe changes from one selection to the next.

    Parameters
    ----------
    chosen : Universe or pandas.DataFrame
        Selections (:func:`select_universe`), or boolean membership by date.
    panel : Panel, optional
        Only for its ticker names (default: the selections' own).
    by : {None, "selection", "year"}, default None
        None: one JSON-ready dict per selection (``date``, ``members``, ``entries``,
        ``exits``, ``entered``, ``left``; the first selection enters every member).
        ``"selection"`` or ``"year"``: a table with one row per selection or calendar
        year, ``period, last_selection, members, entries, exits, entered, exited``, where
        the first selection is the starting universe (not counted as entries), entries
        and exits are summed over the period's selections and ``members`` is the size
        after its last selection.
    examples : int, default 3
        Names listed per row of the table (alphabetical).
    """
    if isinstance(chosen, pd.DataFrame):
        frame = chosen.sort_index()
        members = frame.to_numpy(dtype=bool)
        dates = frame.index.to_numpy("datetime64[ns]")
        tickers = np.asarray(frame.columns).astype(str)
    else:
        members = np.asarray(chosen.members, dtype=bool)
        dates = np.asarray(chosen.dates, dtype="datetime64[ns]")
        tickers = np.asarray(chosen.tickers).astype(str)
    if panel is not None:
        tickers = np.asarray(panel.tickers).astype(str)
    previous = np.zeros_like(members)
    previous[1:] = members[:-1]
    entered, left = members & ~previous, previous & ~members
    days = [str(np.datetime_as_string(d, unit="D")) for d in dates]
    if by is None:
        return [
            {
                "date": days[s],
                "members": int(members[s].sum()),
                "entries": int(entered[s].sum()),
                "exits": int(left[s].sum()),
                "entered": sorted(tickers[entered[s]].tolist()),
                "left": sorted(tickers[left[s]].tolist()),
            }
            for s in range(len(members))
        ]
    if by not in ("selection", "year"):
        raise ValueError(f"by must be None, 'selection' or 'year', got {by!r}")
    if len(members):
        entered[0] = False  # the starting universe
    periods = np.array([d[:4] if by == "year" else d for d in days])
    records = []
    for period in dict.fromkeys(periods.tolist()):
        at = np.flatnonzero(periods == period)
        records.append(
            {
                "period": period,
                "last_selection": days[at[-1]],
                "members": int(members[at[-1]].sum()),
                "entries": int(entered[at].sum()),
                "exits": int(left[at].sum()),
                "entered": sorted(tickers[entered[at].any(axis=0)].tolist())[:examples],
                "exited": sorted(tickers[left[at].any(axis=0)].tolist())[:examples],
            }
        )
    columns = ["period", "last_selection", "members", "entries", "exits", "entered", "exited"]
    return pd.DataFrame(records, columns=columns)


def yearly_changes(changes: list[dict[str, Any]], examples: int = 3) -> list[dict[str, Any]]:
    """:func:`universe_changes` (per selection) summed by calendar year; the first
    selection is the starting universe, not counted as entries.

    Returns
    -------
    list of dict
        ``year``, ``selections``, ``average_members``, ``entries``, ``exits`` and up to
        ``examples`` names of ``entered_examples`` and ``left_examples``.
    """
    years: dict[str, dict[str, Any]] = {}
    for k, change in enumerate(changes):
        if k == 0:  # the starting universe: its members are not entries
            change = change | {"entries": 0, "entered": []}
        year = years.setdefault(
            change["date"][:4],
            {
                "year": change["date"][:4],
                "selections": 0,
                "members": 0,
                "entries": 0,
                "exits": 0,
                "entered": [],
                "left": [],
            },
        )
        year["selections"] += 1
        year["members"] += change["members"]
        year["entries"] += change["entries"]
        year["exits"] += change["exits"]
        year["entered"] += change["entered"]
        year["left"] += change["left"]
    return [
        {
            "year": y["year"],
            "selections": y["selections"],
            "average_members": y["members"] / max(y["selections"], 1),
            "entries": y["entries"],
            "exits": y["exits"],
            "entered_examples": sorted(set(y["entered"]))[:examples],
            "left_examples": sorted(set(y["left"]))[:examples],
        }
        for y in years.values()
    ]


# ---------------------------------------------------------------------------- records
def universe_table(
    panel: Panel, rows: np.ndarray, members: np.ndarray, window: int = DEFAULT_WINDOW
) -> pd.DataFrame:
    """Long table of the members of each selection: ``date, ticker, rank, dollar_volume``.

    ``rank`` is 1 for the most liquid member; ``dollar_volume`` the trailing average the
    selection ranked by.
    """
    rows = np.asarray(rows, dtype=np.int64)
    members = np.asarray(members, dtype=bool)
    average, _ = liquidity(panel.close, _require_volume(panel), rows, window)
    by_name = np.argsort(panel.tickers, kind="stable")
    key = np.where(members, -average, np.inf)[:, by_name]
    order = np.argsort(key, axis=1, kind="stable")
    rank_by_name = np.empty_like(order)
    np.put_along_axis(rank_by_name, order, np.arange(1, key.shape[1] + 1)[None, :], axis=1)
    rank = np.empty_like(rank_by_name)
    rank[:, by_name] = rank_by_name
    s, i = np.nonzero(members)
    table = pd.DataFrame(
        {
            "date": panel.dates[rows[s]],
            "ticker": panel.tickers[i],
            "rank": rank[s, i].astype(np.int64),
            "dollar_volume": average[s, i],
        }
    )
    return table.sort_values(["date", "rank"], ignore_index=True)


# ----------------------------------------------------------------- explicit tickers
#: Largest ticker file read: a list of a few thousand names is well under this.
MAX_TICKER_FILE_BYTES = 1 << 20

_HEADERS = {"ticker", "tickers", "symbol", "symbols"}


def read_ticker_list(path: str | Path) -> list[str]:
    """The tickers of a text or CSV file: one per line (a CSV's first column), in order.

    Blank lines, ``#`` comments and a ``ticker``/``symbol`` header are skipped; names are
    stripped of spaces and quotes; repeats are kept once.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"data.tickers: ticker file not found: '{path}' (give a list such as "
            f"[AAPL, MSFT], or a text file with one ticker per line)"
        )
    if path.stat().st_size > MAX_TICKER_FILE_BYTES:
        raise ConfigError(f"data.tickers: '{path}' is over 1 MiB; is it the right file?")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"data.tickers: '{path}' is not a UTF-8 text file") from None
    names = []
    for line in text.splitlines():
        name = line.split("#", 1)[0].split(",", 1)[0].strip().strip("\"'").strip()
        if name:
            names.append(name)
    if names and names[0].lower() in _HEADERS:
        names = names[1:]  # a CSV header
    if not names:
        raise ConfigError(f"data.tickers: '{path}' lists no ticker")
    return list(dict.fromkeys(names))


def restrict_tickers(panel: Panel, tickers: list[str] | str | Path) -> Panel:
    """The panel with only ``tickers`` (a list, or a file :func:`read_ticker_list`
    reads), in the order listed.

    Raises
    ------
    ConfigError
        Naming the listed tickers the data does not hold, with the closest names.
    """
    wanted = read_ticker_list(tickers) if isinstance(tickers, str | Path) else list(tickers)
    wanted = list(dict.fromkeys(str(t) for t in wanted))
    present = set(panel.tickers.tolist())
    missing = [t for t in wanted if t not in present]
    if missing:
        hints = [f"{t!r}{did_you_mean(t, present)}" for t in missing[:10]]
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        benchmark = (
            f"; {panel.benchmark_name!r} is the benchmark, not a ticker"
            if panel.benchmark_name in missing
            else ""
        )
        raise ConfigError(
            f"data.tickers: {len(missing)} of {len(wanted)} listed tickers are not in "
            f"{panel.name!r}: {', '.join(hints)}{more}{benchmark}"
        )
    return panel.select_tickers(wanted)
