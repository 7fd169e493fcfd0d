"""Load price panels from CSV, Parquet, a DataFrame or a built-in data set.

Two layouts are understood:

* **long**: one row per (date, ticker) with ``open, high, low, close, volume`` and
  optionally ``adj_close``;
* **wide**: a date column and one price column per ticker (taken as close prices).

A file without a ticker column whose columns are price fields (``Date, Open, ...,
Close``) is one instrument, named after the file. Column names match
case-insensitively, with common aliases (``Date``/``timestamp``, ``Symbol``/``Name``,
``Adj Close``/``adjusted_close``).

Anything that cannot be used raises :class:`~alphaseq.errors.DataError` naming the
file, column, ticker and date. Everything the loader changes is counted, logged and
kept on the panel as :class:`~alphaseq.data.panel.Repair` records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from alphaseq._config_base import short_repr
from alphaseq._logging import logger
from alphaseq.data.dates import parse_dates
from alphaseq.data.panel import FIELDS, PRICE_FIELDS, Panel, Repair
from alphaseq.errors import DataError

#: Canonical column name -> accepted spellings (after lower-casing and ``_`` for separators).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "timestamp", "datetime", "time", "day", "trade_date", "trading_date"),
    "ticker": ("ticker", "symbol", "name", "asset", "instrument", "security", "code"),
    "open": ("open", "open_price"),
    "high": ("high", "high_price"),
    "low": ("low", "low_price"),
    "close": ("close", "close_price", "last", "price"),
    "adj_close": ("adj_close", "adjclose", "adjusted_close", "adj_price", "adjusted_price"),
    "volume": ("volume", "vol", "shares_traded"),
}
_CANONICAL = {alias: key for key, aliases in COLUMN_ALIASES.items() for alias in aliases}
_VALUE_COLUMNS = (*FIELDS, "adj_close")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXAMPLES = 3
_REPAIR_WORDS = {
    "infinite_value": "infinite",
    "out_of_float32_range": "out-of-range (beyond float32: |x| > 3.4e38 or 0 < |x| < 1.2e-38)",
    "non_positive_price": "zero or negative price",
    "negative_volume": "negative volume",
}


def load_panel(
    source: str | Path | pd.DataFrame,
    *,
    min_history: int = 0,
    benchmark: str | None = None,
    ticker: str | None = None,
    name: str | None = None,
    date_format: str | None = None,
    timezone: str | None = None,
) -> Panel:
    """Load a daily price panel.

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        A CSV or Parquet file, a DataFrame (long or wide), or the name of a
        built-in data set (see :data:`alphaseq.data.datasets.DATASETS`).
    min_history : int, default 0
        Tickers with fewer valid closes than this are excluded (counted and logged).
        Pass the lookback plus the label horizon to drop tickers that can never
        give a labelled sample. The count is taken over the whole input, so this is
        a universe choice made with hindsight: it removes no training sample (such a
        ticker has none), but it does change cross-sections (ranks, equal-weight
        baselines) on the dates the excluded tickers traded.
    benchmark : str, optional
        A ticker of the input to take out of the universe and keep as the benchmark.
    ticker : str, optional
        Name of the instrument for single-instrument input (default: the file's stem).
    name : str, optional
        Name of the panel (default: the file's name or the data set's name).
    date_format : str, optional
        ``strptime`` format of the date column, for layouts such as ``%d/%m/%Y`` whose
        day and month the data cannot tell apart (see :mod:`alphaseq.data.dates`).
    timezone : str, optional
        IANA zone whose calendar days timestamps with offsets are read in (default: the
        day as written, in the offset's own local time).

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        When the input cannot be used; the message names the file, column, ticker and date.
    """
    from alphaseq.data.datasets import DATASETS, load_dataset

    if isinstance(source, pd.DataFrame):
        label = name or "DataFrame"
        frame = source
        panel = panel_from_frame(
            frame,
            label,
            ticker=ticker,
            name=name or "dataframe",
            date_format=date_format,
            timezone=timezone,
        )
    else:
        path = Path(source)
        if not path.exists():
            if isinstance(source, str) and source.lower() in DATASETS:
                panel = load_dataset(source.lower())
                return _finish(panel, min_history=min_history, benchmark=benchmark)
            known = ", ".join(sorted(DATASETS))
            if path.suffix or len(path.parts) > 1:
                raise DataError(f"file not found: '{path}' (working directory: {Path.cwd()})")
            raise DataError(
                f"'{source}' is neither an existing file nor a built-in data set "
                f"(built-in: {known})"
            )
        frame = read_table(path)
        panel = panel_from_frame(
            frame,
            f"'{path}'",
            ticker=ticker or _stem(path),
            name=name or path.name,
            date_format=date_format,
            timezone=timezone,
        )
        panel = panel._replace(meta=panel.meta | {"source": str(path)})
    return _finish(panel, min_history=min_history, benchmark=benchmark)


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame with clear errors for unusable files."""
    if path.is_dir():
        raise DataError(f"'{path}' is a directory, expected a .csv or .parquet file")
    lower = path.name.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        reader: Callable[[Path], pd.DataFrame] = pd.read_parquet
        kind = "Parquet"
    elif lower.endswith(_CSV_SUFFIXES):
        reader = pd.read_csv
        kind = "CSV"
    else:
        suffix = "".join(path.suffixes) or "(none)"
        raise DataError(
            f"unknown file type {suffix!r} for '{path}'; use .csv (optionally compressed) "
            f"or .parquet"
        )
    if path.stat().st_size == 0:
        raise DataError(f"file '{path}' is empty")
    try:
        frame = reader(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"file '{path}' is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read '{path}' as {kind}: {first_line}") from None
    if frame.shape[0] == 0:
        columns = [str(c) for c in frame.columns]
        raise DataError(f"file '{path}' has no data rows (columns: {columns})")
    return frame


# --------------------------------------------------------------------------- layout
def panel_from_frame(
    frame: pd.DataFrame,
    label: str,
    *,
    ticker: str | None,
    name: str,
    date_format: str | None = None,
    timezone: str | None = None,
) -> Panel:
    """A checked :class:`Panel` from a long (or wide, with ``ticker``) price frame;
    ``label`` names the input in error messages (what :func:`load_panel` uses)."""
    date_options = {"date_format": date_format, "timezone": timezone}
    if frame.shape[0] == 0:
        raise DataError(f"{label} has no rows")
    frame = _index_to_columns(frame)
    columns = _canonical_columns(frame, label)
    if "date" not in columns:
        raise DataError(
            f"{label} has no date column; looked for {list(COLUMN_ALIASES['date'])} "
            f"(any case), columns seen: {_seen(frame)}"
        )
    if "ticker" in columns:
        return _from_long(frame, columns, label, name, date_options)
    if "close" in columns or "adj_close" in columns:  # Date, Open, ..., Close: one instrument
        single = frame.copy()
        instrument = ticker or name
        single["__ticker__"] = instrument
        columns = dict(columns) | {"ticker": "__ticker__"}
        logger.info("%s has no ticker column; read as one instrument %r", label, instrument)
        return _from_long(single, columns, label, name, date_options)
    return _from_wide(frame, columns["date"], label, name, date_options)


def _index_to_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Move a date (or date, ticker) index into columns so both layouts look alike."""
    index_names = [n for n in frame.index.names if n is not None]
    if isinstance(frame.index, pd.DatetimeIndex) or index_names:
        frame = frame.reset_index()
        if "index" in frame.columns and not any(
            _key(c) in COLUMN_ALIASES["date"] for c in frame.columns if c != "index"
        ):
            frame = frame.rename(columns={"index": "date"})
    return frame


def _key(column: object) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(column).strip().lower()).strip("_")


def _canonical_columns(frame: pd.DataFrame, label: str) -> dict[str, str]:
    """Map canonical names (date, ticker, close, ...) to the frame's own column names.

    When several columns match one name, the earlier alias wins (``ticker`` over
    ``name``); two columns with the same alias (``Close`` and ``close``) are an error.
    """
    found: dict[str, tuple[int, str]] = {}
    for column in frame.columns:
        key = _key(column)
        canonical = _CANONICAL.get(key)
        if canonical is None:
            continue
        rank = COLUMN_ALIASES[canonical].index(key)
        if canonical in found:
            other_rank, other = found[canonical]
            if other_rank == rank:
                raise DataError(
                    f"{label}: columns {other!r} and {column!r} both look like "
                    f"the {canonical!r} column; keep one"
                )
            if rank > other_rank:
                continue
        found[canonical] = (rank, column)
    return {canonical: column for canonical, (_, column) in found.items()}


def _seen(frame: pd.DataFrame, limit: int = 20) -> str:
    names = [str(c) for c in frame.columns]
    extra = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return str(names[:limit]) + extra


# ------------------------------------------------------------------------ parsing
def _row(position: int) -> int:
    """1-based data row number as a user sees it in a spreadsheet (header excluded)."""
    return int(position) + 1


def _parse_numbers(
    values: pd.Series,
    label: str,
    column: str,
    where: Callable[[np.ndarray], list[str]],
) -> np.ndarray:
    """Convert a column to float64; fail, naming ticker and date, on non-numeric text."""
    if pd.api.types.is_bool_dtype(values.dtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype)
    ):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = (numbers.isna() & values.notna()).to_numpy()
        if pd.api.types.is_bool_dtype(values.dtype):
            bad = values.notna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            places = where(rows[:_EXAMPLES])
            examples = ", ".join(
                f"{place}: {short_repr(values.iloc[r], 40)}"
                for place, r in zip(places, rows, strict=False)
            )
            raise DataError(
                f"{label}: column {column!r} has {len(rows)} non-numeric values ({examples})"
            )
        values = numbers
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _day(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="D"))


# --------------------------------------------------------------------------- long
def _from_long(
    frame: pd.DataFrame, columns: dict[str, str], label: str, name: str, date_options: dict
) -> Panel:
    if "close" not in columns and "adj_close" not in columns:
        raise DataError(
            f"{label} is missing the required column 'close' (or 'adj_close'); "
            f"columns seen: {_seen(frame)}"
        )
    ignored = [str(c) for c in frame.columns if c not in columns.values()]
    if ignored:
        logger.info("%s: ignored columns %s", label, ignored)

    dates = parse_dates(frame[columns["date"]], label, columns["date"], **date_options)
    raw_tickers = frame[columns["ticker"]]
    blank = (raw_tickers.isna() | (raw_tickers.astype(str).str.strip() == "")).to_numpy()
    if blank.any():
        rows = np.flatnonzero(blank)
        raise DataError(
            f"{label}: {len(rows)} rows have no ticker in column {columns['ticker']!r} "
            f"(first at row {_row(rows[0])}, date {_day(dates[rows[0]])})"
        )
    tickers = raw_tickers.astype(str).str.strip().to_numpy(dtype=object)

    def where(rows: np.ndarray) -> list[str]:
        return [f"ticker {tickers[r]} on {_day(dates[r])} (row {_row(r)})" for r in rows]

    values = {
        key: _parse_numbers(frame[columns[key]], label, columns[key], where)
        for key in _VALUE_COLUMNS
        if key in columns
    }

    date_codes, date_values = pd.factorize(dates, sort=True)
    ticker_codes, ticker_values = pd.factorize(tickers, sort=True)
    shape = (len(date_values), len(ticker_values))
    flat = date_codes.astype(np.int64) * shape[1] + ticker_codes
    _check_duplicates(flat, label, lambda r: f"{tickers[r]} on {_day(dates[r])}")

    repairs: list[Repair] = []
    out_of_order = int((np.diff(flat) < 0).sum())
    if out_of_order:
        repairs.append(
            Repair(
                "unsorted_rows",
                out_of_order,
                f"rows were not sorted by (date, ticker): {out_of_order} rows out of order; sorted",
            )
        )

    dense: dict[str, np.ndarray] = {}
    for key, column in values.items():
        grid = np.full(shape, np.nan)
        grid.reshape(-1)[flat] = column
        dense[key] = grid
    repairs += _clean_values(dense, np.asarray(date_values), np.asarray(ticker_values, str))
    _apply_adjustment(dense, label)
    meta = {"format": "long", "rows": len(frame), "adjusted": "adj_close" in values}
    return _make_panel(dense, date_values, ticker_values, name, repairs, meta)


def _check_duplicates(flat: np.ndarray, label: str, describe: Callable[[int], str]) -> None:
    order = np.argsort(flat, kind="stable")
    sorted_keys = flat[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeated):
        first_rows = order[repeated]  # one row of each repeated pair, in key order
        second_rows = order[repeated + 1]
        examples = ", ".join(
            f"{describe(a)} (rows {_row(a)} and {_row(b)})"
            for a, b in zip(first_rows[:_EXAMPLES], second_rows[:_EXAMPLES], strict=False)
        )
        n_keys = len(np.unique(sorted_keys[repeated]))
        raise DataError(
            f"{label}: {len(repeated)} duplicate (date, ticker) rows over {n_keys} keys, "
            f"e.g. {examples}"
        )


# --------------------------------------------------------------------------- wide
def _from_wide(
    frame: pd.DataFrame, date_column: str, label: str, name: str, date_options: dict
) -> Panel:
    price_columns = [c for c in frame.columns if c != date_column]
    if not price_columns:
        raise DataError(
            f"{label} has a date column but no ticker or price columns; columns seen: "
            f"{_seen(frame)}"
        )
    dates = parse_dates(frame[date_column], label, date_column, **date_options)
    counts = pd.Series(dates).value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        examples = ", ".join(_day(d) for d in duplicated.index.to_numpy()[:_EXAMPLES])
        raise DataError(
            f"{label}: {int(duplicated.sum() - len(duplicated))} duplicate rows for "
            f"{len(duplicated)} dates in a wide file (one row per date expected), e.g. {examples}"
        )
    tickers = np.array([str(c).strip() for c in price_columns], dtype=object)
    if len(set(tickers)) != len(tickers):
        seen: set[str] = set()
        twice = [t for t in tickers if t in seen or seen.add(t)]
        raise DataError(f"{label}: ticker columns appear twice: {twice[:_EXAMPLES]}")

    close = np.empty((len(dates), len(price_columns)))
    for j, column in enumerate(price_columns):

        def where(rows: np.ndarray, ticker: str = tickers[j]) -> list[str]:
            return [f"ticker {ticker} on {_day(dates[r])} (row {_row(r)})" for r in rows]

        close[:, j] = _parse_numbers(frame[column], label, str(column), where)

    order = np.argsort(dates, kind="stable")
    repairs: list[Repair] = []
    out_of_order = int((np.diff(dates.astype("int64")) < 0).sum())
    if out_of_order:
        repairs.append(
            Repair(
                "unsorted_rows",
                out_of_order,
                f"rows were not sorted by date: {out_of_order} rows out of order; sorted",
            )
        )
    dates = dates[order]
    dense = {"close": close[order]}
    repairs += _clean_values(dense, dates, tickers.astype(str))
    meta = {"format": "wide", "rows": len(frame), "adjusted": None}
    return _make_panel(dense, dates, tickers, name, repairs, meta)


# ------------------------------------------------------------------ clean & build
def _beyond_float32(values: np.ndarray) -> np.ndarray:
    """Finite values that float32 cannot hold: too large, or so small they become 0."""
    info = np.finfo(np.float32)
    magnitude = np.abs(values)
    return np.isfinite(values) & (
        (magnitude > info.max) | ((magnitude > 0) & (magnitude < info.tiny))
    )


def _clean_values(
    dense: dict[str, np.ndarray], dates: np.ndarray, tickers: np.ndarray
) -> list[Repair]:
    """Turn infinities, values beyond float32, non-positive prices and negative volumes
    into NaN, counted."""
    repairs = []
    for kind, test, fields in (
        ("infinite_value", np.isinf, (*_VALUE_COLUMNS,)),
        # Panels are float32: beyond its range a value would become inf or 0 silently.
        ("out_of_float32_range", _beyond_float32, (*_VALUE_COLUMNS,)),
        ("non_positive_price", lambda v: v <= 0, (*PRICE_FIELDS, "adj_close")),
        ("negative_volume", lambda v: v < 0, ("volume",)),
    ):
        per_field = {}
        first: tuple[str, str, str] | None = None
        for key in fields:
            if key not in dense:
                continue
            with np.errstate(invalid="ignore"):
                bad = test(dense[key])
            count = int(bad.sum())
            if count:
                per_field[key] = count
                t, i = np.argwhere(bad)[0]
                if first is None:
                    first = (key, str(tickers[i]), _day(dates[t]))
                dense[key][bad] = np.nan
        if per_field:
            total = sum(per_field.values())
            breakdown = ", ".join(f"{k}: {v}" for k, v in per_field.items())
            assert first is not None
            repairs.append(
                Repair(
                    kind,
                    total,
                    f"{total} {_REPAIR_WORDS[kind]} cells treated as missing ({breakdown}; "
                    f"first: {first[0]} of {first[1]} on {first[2]})",
                )
            )
    return repairs


def _apply_adjustment(dense: dict[str, np.ndarray], label: str) -> None:
    """Scale OHLC by adj_close / close so that prices are adjusted for splits and dividends."""
    adjusted = dense.pop("adj_close", None)
    if adjusted is None:
        return
    if "close" not in dense:
        dense["close"] = adjusted
        logger.info("%s: no 'close' column; using 'adj_close' as close", label)
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = adjusted / dense["close"]
    for key in ("open", "high", "low"):
        if key in dense:
            dense[key] = dense[key] * factor
    dense["close"] = adjusted


def _make_panel(
    dense: dict[str, np.ndarray],
    dates: np.ndarray,
    tickers: np.ndarray,
    name: str,
    repairs: list[Repair],
    meta: dict,
) -> Panel:
    close = dense["close"]
    has_close = np.isfinite(close)

    empty_dates = ~has_close.any(axis=1)
    if empty_dates.any():
        n = int(empty_dates.sum())
        examples = ", ".join(_day(d) for d in np.asarray(dates)[empty_dates][:_EXAMPLES])
        repairs.append(
            Repair("empty_date", n, f"{n} dates without any valid close removed (e.g. {examples})")
        )
    empty_tickers = ~has_close.any(axis=0)
    if empty_tickers.any():
        n = int(empty_tickers.sum())
        names = ", ".join(np.asarray(tickers, str)[empty_tickers][:_EXAMPLES].tolist())
        repairs.append(
            Repair("empty_ticker", n, f"{n} tickers without any valid close removed ({names})")
        )
    keep_t, keep_i = ~empty_dates, ~empty_tickers
    if not keep_i.any():
        raise DataError(f"{name}: no valid (finite, positive) close price in the whole input")
    if keep_t.all() and keep_i.all():
        fields = dense  # nothing to drop: avoid copying every field
    else:
        fields = {k: v[keep_t][:, keep_i] for k, v in dense.items()}
    panel = Panel(
        dates=np.asarray(dates)[keep_t],
        tickers=np.asarray(tickers, str)[keep_i],
        fields=fields,
        name=name,
        repairs=tuple(repairs),
        meta=meta,
    )
    gaps = panel.in_life() & ~panel.mask
    n_gaps = int(gaps.sum())
    if n_gaps:
        t, i = np.argwhere(gaps)[0]
        n_tickers = int(gaps.any(axis=0).sum())
        panel = panel._replace(
            repairs=(
                *panel.repairs,
                Repair(
                    "gaps",
                    n_gaps,
                    f"{n_gaps} missing closes inside the trading life of {n_tickers} tickers "
                    f"are masked (first: {panel.tickers[i]} on {_day(panel.dates[t])})",
                ),
            )
        )
    return panel


def _finish(panel: Panel, *, min_history: int, benchmark: str | None) -> Panel:
    """Apply the options common to every source, then log every repair once."""
    if benchmark is not None:
        if benchmark not in set(panel.tickers):
            raise DataError(
                f"benchmark ticker {benchmark!r} is not in {panel.name!r} "
                f"({panel.n_tickers} tickers, e.g. {panel.tickers[:5].tolist()})"
            )
        keep = panel.tickers[panel.tickers != benchmark]
        bench = panel.close[:, panel.tickers.tolist().index(benchmark)]
        panel = panel.select_tickers(keep)._replace(benchmark=bench, benchmark_name=benchmark)
    if min_history < 0:
        raise DataError(f"min_history must be >= 0, got {min_history}")
    if min_history:
        counts = panel.mask.sum(axis=0)
        short = counts < min_history
        if short.all():
            raise DataError(
                f"{panel.name}: every ticker has fewer than {min_history} valid closes "
                f"(longest: {int(counts.max())})"
            )
        if short.any():
            names = panel.tickers[short]
            panel = panel.select_tickers(panel.tickers[~short])
            panel = panel._replace(
                repairs=(
                    *panel.repairs,
                    Repair(
                        "short_history",
                        len(names),
                        f"{len(names)} tickers with fewer than {min_history} valid closes "
                        f"excluded (e.g. {', '.join(names[:_EXAMPLES])})",
                    ),
                )
            )
    for repair in panel.repairs:
        log = logger.info if repair.kind in ("unsorted_rows", "gaps") else logger.warning
        log("%s: %s", panel.name, repair.detail)
    return panel


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (*_CSV_SUFFIXES, *_PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
