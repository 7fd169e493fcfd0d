"""The :class:`Panel`: a dense daily price panel, the input of every later step."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaseq.errors import DataError

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
FIELDS: tuple[str, ...] = (*PRICE_FIELDS, "volume")


@dataclass(frozen=True)
class Repair:
    """One counted change the loader made to the input, reported in the log and by ``data check``.

    Parameters
    ----------
    kind : str
        Short machine name of the repair, e.g. ``"non_positive_price"``.
    count : int
        How many cells, rows or tickers it touched.
    detail : str
        One human sentence with the count and the first examples.
    """

    kind: str
    count: int
    detail: str


@dataclass(frozen=True, eq=False)
class Panel:
    """A daily panel of T dates by N tickers held as dense ``float32`` arrays.

    Missing cells are NaN. ``mask[t, i]`` is True where ticker ``i`` has a usable
    close price on date ``t``; the other fields may still be NaN there (a missing
    open, say), and features deal with that.

    Parameters
    ----------
    dates : numpy.ndarray
        Trading dates, ``datetime64[ns]``, strictly increasing, shape (T,).
    tickers : numpy.ndarray
        Ticker names, unique strings, shape (N,).
    fields : dict of str to numpy.ndarray
        ``close`` and optionally ``open``, ``high``, ``low``, ``volume``; each (T, N) float32.
    benchmark : numpy.ndarray or None
        Price of a benchmark (an index) on the same dates, shape (T,), or None.
    benchmark_name : str or None
        Name of the benchmark.
    name : str
        Name of the data set (a built-in name or the file's name).
    repairs : tuple of Repair
        Counted changes the loader made to the input.
    meta : dict
        Free-form facts about the source (format, rows, provenance, survivorship bias).
    """

    dates: np.ndarray
    tickers: np.ndarray
    fields: dict[str, np.ndarray]
    benchmark: np.ndarray | None = None
    benchmark_name: str | None = None
    name: str = "panel"
    repairs: tuple[Repair, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dates = np.asarray(self.dates, dtype="datetime64[ns]")
        tickers = np.asarray(self.tickers).astype(str)
        object.__setattr__(self, "dates", dates)
        object.__setattr__(self, "tickers", tickers)
        if "close" not in self.fields:
            raise DataError("a Panel needs a 'close' field")
        unknown = set(self.fields) - set(FIELDS)
        if unknown:
            raise DataError(f"unknown panel fields {sorted(unknown)}; allowed: {list(FIELDS)}")
        shape = (len(dates), len(tickers))
        fields = {}
        for key in FIELDS:  # a fixed order keeps fingerprints stable
            if key in self.fields:
                values = np.asarray(self.fields[key], dtype=np.float32)
                if values.shape != shape:
                    raise DataError(f"field '{key}' has shape {values.shape}, expected {shape}")
                fields[key] = values
        object.__setattr__(self, "fields", fields)
        if len(dates) > 1 and not (np.diff(dates) > np.timedelta64(0, "ns")).all():
            raise DataError("panel dates must be strictly increasing")
        if len(np.unique(tickers)) != len(tickers):
            raise DataError("panel tickers must be unique")
        if self.benchmark is not None:
            bench = np.asarray(self.benchmark, dtype=np.float32)
            if bench.shape != (len(dates),):
                raise DataError(f"benchmark has shape {bench.shape}, expected ({len(dates)},)")
            object.__setattr__(self, "benchmark", bench)

    # ------------------------------------------------------------------ shape
    @property
    def n_dates(self) -> int:
        """Number of dates T."""
        return len(self.dates)

    @property
    def n_tickers(self) -> int:
        """Number of tickers N."""
        return len(self.tickers)

    @property
    def shape(self) -> tuple[int, int]:
        """``(T, N)``."""
        return (self.n_dates, self.n_tickers)

    @property
    def close(self) -> np.ndarray:
        """Close prices (T, N)."""
        return self.fields["close"]

    @property
    def mask(self) -> np.ndarray:
        """True where the ticker has a usable close on that date, (T, N) bool."""
        return np.isfinite(self.fields["close"])

    @property
    def has_ohlc(self) -> bool:
        """Whether open, high and low are present (close always is)."""
        return all(key in self.fields for key in PRICE_FIELDS)

    @property
    def has_volume(self) -> bool:
        """Whether volume is present."""
        return "volume" in self.fields

    def lifetime(self) -> tuple[np.ndarray, np.ndarray]:
        """Index of each ticker's first and last valid date, shape (N,) each.

        A ticker with no valid date gets ``first = T`` and ``last = -1``.
        """
        mask = self.mask
        any_valid = mask.any(axis=0)
        first = np.where(any_valid, mask.argmax(axis=0), self.n_dates)
        last = np.where(any_valid, self.n_dates - 1 - mask[::-1].argmax(axis=0), -1)
        return first, last

    def in_life(self) -> np.ndarray:
        """True between each ticker's first and last valid date (inclusive), (T, N) bool."""
        first, last = self.lifetime()
        t = np.arange(self.n_dates)[:, None]
        return (t >= first[None, :]) & (t <= last[None, :])

    # ------------------------------------------------------------- selection
    def select_tickers(self, tickers: list[str] | np.ndarray) -> Panel:
        """A panel with only the given tickers, in the given order."""
        position = {name: i for i, name in enumerate(self.tickers)}
        missing = [t for t in tickers if t not in position]
        if missing:
            raise DataError(f"tickers not in panel '{self.name}': {missing[:10]}")
        index = np.array([position[t] for t in tickers], dtype=np.int64)
        return self._replace(
            tickers=self.tickers[index],
            fields={k: v[:, index] for k, v in self.fields.items()},
        )

    def slice_dates(self, start: str | None = None, end: str | None = None) -> Panel:
        """A panel restricted to ``start <= date <= end`` (either bound optional)."""
        keep = np.ones(self.n_dates, dtype=bool)
        if start is not None:
            keep &= self.dates >= np.datetime64(pd.Timestamp(start), "ns")
        if end is not None:
            keep &= self.dates <= np.datetime64(pd.Timestamp(end), "ns")
        return self._replace(
            dates=self.dates[keep],
            fields={k: v[keep] for k, v in self.fields.items()},
            benchmark=None if self.benchmark is None else self.benchmark[keep],
        )

    def _replace(self, **changes: Any) -> Panel:
        values = {
            "dates": self.dates,
            "tickers": self.tickers,
            "fields": self.fields,
            "benchmark": self.benchmark,
            "benchmark_name": self.benchmark_name,
            "name": self.name,
            "repairs": self.repairs,
            "meta": self.meta,
        }
        values.update(changes)
        return Panel(**values)

    # ------------------------------------------------------------ conversion
    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per valid (date, ticker), columns ``date, ticker, <fields>``."""
        t_idx, i_idx = np.nonzero(self.mask)
        frame = pd.DataFrame(
            {"date": self.dates[t_idx], "ticker": self.tickers[i_idx]}
            | {key: values[t_idx, i_idx] for key, values in self.fields.items()}
        )
        return frame

    def fingerprint(self) -> str:
        """SHA-256 of dates, tickers and every field: identifies the exact data a model saw."""
        digest = hashlib.sha256()
        digest.update(self.dates.astype("int64").tobytes())
        digest.update("\x1f".join(self.tickers.tolist()).encode())
        for key, values in self.fields.items():
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(values).tobytes())
        if self.benchmark is not None:
            digest.update(self.benchmark.tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        if self.n_dates:
            span = f"{_day(self.dates[0])}..{_day(self.dates[-1])}"
        else:
            span = "no dates"
        return (
            f"Panel(name={self.name!r}, dates={self.n_dates} [{span}], "
            f"tickers={self.n_tickers}, fields={list(self.fields)}, "
            f"benchmark={self.benchmark_name!r})"
        )


def _day(value: np.datetime64) -> str:
    return str(np.datetime_as_string(value, unit="D"))
