"""Reading a column of trading dates: formats, day-first ambiguity, offsets, range.

Trading dates are calendar days of the exchange. The rules:

* ``YYYY-MM-DD`` (optionally with a time) is read as written. Other numeric layouts
  such as ``31/01/2014`` or ``01/02/2014`` are accepted only when the data themselves
  say which number is the day (some first number above 12: day-first; some second
  number above 12: month-first); otherwise, or when rows disagree, the loader stops
  and asks for ``data.date_format`` (a :func:`datetime.datetime.strptime` format).
  Reading ``31/01/2014`` month-first where possible is how a panel gets weekend dates
  and fake 50 % moves.
* A timestamp with a UTC offset (``2014-01-02T00:00:00-05:00``) is on the local
  calendar day it was written in; converting it to UTC first can move it to the day
  before. With ``data.timezone`` (an IANA name such as ``America/New_York``) offset
  and timezone-aware values are converted to that zone's calendar instead.
* Dates must fit numpy's ``datetime64[ns]`` (1677-09-22 to 2262-04-11).
"""

from __future__ import annotations

import zoneinfo

import numpy as np
import pandas as pd

from alphaseq._config_base import FIRST_DATE, LAST_DATE, short_repr
from alphaseq.errors import DataError

_EXAMPLES = 3
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
_NUMERIC_DAY = r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})\b"


def parse_dates(
    values: pd.Series,
    label: str,
    column: str,
    *,
    date_format: str | None = None,
    timezone: str | None = None,
) -> np.ndarray:
    """Parse a column of dates into ``datetime64[ns]``; fail with the fix on anything
    missing, unparseable, ambiguous or out of range.

    Parameters
    ----------
    values : pandas.Series
        The raw column (text, datetimes, timezone-aware datetimes).
    label, column : str
        The input and the column, for messages.
    date_format : str, optional
        A ``strptime`` format for every value (``%d/%m/%Y``).
    timezone : str, optional
        IANA zone whose calendar offset and aware timestamps are converted to.

    Returns
    -------
    numpy.ndarray
        ``datetime64[ns]`` values, one per row.
    """
    missing = values.isna().to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise DataError(
            f"{label}: {len(rows)} rows have no value in date column {column!r} "
            f"(first at row {rows[0] + 1})"
        )
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        local = values.dt.tz_convert(_zone(timezone, label)) if timezone else values
        parsed = local.dt.tz_localize(None)
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    else:
        # Timestamp objects (mixed offsets) read through their ISO text like any string.
        text = values.astype(str).str.strip()
        if date_format is not None:
            parsed = pd.to_datetime(text, format=date_format, errors="coerce")
            if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                parsed = parsed.dt.tz_localize(None)
        else:
            _check_day_order(text, label, column)
            parsed = _parse_text(text, label, timezone)
    _check_range(parsed, label, column)
    bad = parsed.isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        examples = ", ".join(
            f"row {r + 1}: {short_repr(values.iloc[r], 40)}" for r in rows[:_EXAMPLES]
        )
        hint = f" with format {date_format!r}" if date_format else ""
        raise DataError(
            f"{label}: {len(rows)} values in date column {column!r} are not dates{hint} "
            f"({examples}); dates must lie between {FIRST_DATE} and {LAST_DATE}"
        )
    return parsed.to_numpy(dtype="datetime64[ns]")


def _zone(timezone: str, label: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DataError(
            f"{label}: unknown timezone {timezone!r} (data.timezone takes an IANA name "
            f"such as 'America/New_York')"
        ) from None


def _parse_text(text: pd.Series, label: str, timezone: str | None) -> pd.Series:
    """Text dates; offsets kept as local wall-clock days (or converted to ``timezone``)."""
    has_offset = text.str.contains(_OFFSET, regex=True)
    naive = text.where(~has_offset, text.str.replace(_OFFSET, "", regex=True))
    parsed = pd.to_datetime(naive, errors="coerce", format="mixed")
    if timezone and has_offset.any():
        aware = pd.to_datetime(text[has_offset], errors="coerce", utc=True, format="mixed")
        local = aware.dt.tz_convert(_zone(timezone, label)).dt.tz_localize(None)
        parsed = parsed.copy()
        parsed[has_offset] = local
    return parsed


def _check_day_order(text: pd.Series, label: str, column: str) -> None:
    """Refuse numeric dates whose day and month cannot be told apart from the data."""
    parts = text.str.extract(_NUMERIC_DAY)
    matched = parts[0].notna()
    if not matched.any():
        return
    first = parts.loc[matched, 0].astype(int)
    second = parts.loc[matched, 2].astype(int)
    separator = parts.loc[matched, 1].iloc[0]
    year = "%Y" if len(parts.loc[matched, 3].iloc[0]) == 4 else "%y"
    day_first = first > 12
    month_first = second > 12

    rows = np.flatnonzero(matched.to_numpy())  # positions: the index may repeat

    def example(mask: pd.Series) -> str:
        row = rows[np.flatnonzero(mask.to_numpy())[0]]
        return f"row {row + 1}: {short_repr(text.iloc[row], 40)}"

    day_month = f"%d{separator}%m{separator}{year}"
    month_day = f"%m{separator}%d{separator}{year}"
    if day_first.any() and month_first.any():
        raise DataError(
            f"{label}: date column {column!r} mixes day-first ({example(day_first)}) and "
            f"month-first ({example(month_first)}) dates; write them as YYYY-MM-DD"
        )
    if day_first.any():
        raise DataError(
            f"{label}: dates in column {column!r} are written day-first "
            f"({example(day_first)}); set data.date_format: '{day_month}' "
            f"(data check: --date-format), or write them as YYYY-MM-DD"
        )
    if not month_first.any():
        first = short_repr(text.iloc[rows[0]], 40)
        raise DataError(
            f"{label}: dates in column {column!r} such as {first} could "
            f"be day-first or month-first; set data.date_format: '{day_month}' or "
            f"'{month_day}' (data check: --date-format), or write them as YYYY-MM-DD"
        )


def _check_range(values: pd.Series, label: str, column: str) -> None:
    """Datetimes of a coarser unit (Parquet's us/ms, pandas' own inference) may lie beyond
    what ns holds: converting them would wrap around silently."""
    unit = np.datetime_data(values.dtype)[0]
    if unit == "ns":
        return
    raw = values.to_numpy()
    present = ~np.isnat(raw)
    low = np.datetime64(FIRST_DATE.isoformat(), unit)
    high = np.datetime64(LAST_DATE.isoformat(), unit)
    outside = present & ((raw < low) | (raw > high))
    if outside.any():
        rows = np.flatnonzero(outside)
        examples = ", ".join(
            f"row {r + 1}: {np.datetime_as_string(raw[r], unit='D')}" for r in rows[:_EXAMPLES]
        )
        raise DataError(
            f"{label}: {len(rows)} dates in column {column!r} lie outside {FIRST_DATE} to "
            f"{LAST_DATE} ({examples})"
        )
