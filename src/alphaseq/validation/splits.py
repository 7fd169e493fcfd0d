"""Walk-forward and fixed train / validation / test splits with purge and embargo.

A split cuts the trading dates of a panel into *segments* of consecutive rows. Each
:class:`Fold` holds a training, an optional validation and a test segment, in that
order and without overlap::

    rows ->  |------------- train -------------|---- valid ----|---- test ----|
    samples: [start ...... end - h - embargo]   [start .. end - h - embargo]   every date

A sample at row ``t`` has a label that ends at row ``t + h`` (``h`` = label horizon in
trading days). Training and validation samples are *purged*: only rows with
``t + h + embargo <= segment.end`` are used, so no label reads a price from a later
segment and at least ``embargo`` further trading days separate the last label from the
next segment (rule 2 of the design notes). Test segments are forecast on every date:
a forecast needs no label, and test labels are only ever evaluated, never trained on.

Conventions
-----------
* Segments hold inclusive row indices into the panel's dates (``start <= t <= end``)
  plus the matching ISO dates, so that ``folds.json`` can be read by people.
* ``embargo_days`` counts trading days (rows), like the label horizon.
* The purged sample ranges are stored in each fold (``train_samples``,
  ``valid_samples``). To select windows, pass them to
  :func:`alphaseq.windows.valid_samples` as ``start=fold.train_samples.start,
  end=fold.train_samples.end`` (no further ``label_horizon``), or pass the segment and
  ``label_horizon=h + embargo``: both select the same rows.
* :func:`check_integrity` runs at the end of every ``split`` and raises
  :class:`LeakageError` on any overlap or leaking label.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphaseq._logging import logger
from alphaseq.errors import ConfigError, DataError

__all__ = [
    "FixedSplit",
    "Fold",
    "IntegrityReport",
    "LeakageError",
    "Segment",
    "WalkForwardSplit",
    "check_integrity",
    "describe",
    "stitched_test_rows",
]

_FRACTION_TOL = 1e-9


class LeakageError(ConfigError):
    """A split that lets information cross segments, or counts out-of-sample dates twice.

    The message names the fold, the segments and their dates.
    """


# ------------------------------------------------------------------------ segments and folds
@dataclass(frozen=True)
class Segment:
    """Consecutive trading dates, as inclusive row indices into the panel's dates.

    Parameters
    ----------
    start, end : int
        First and last row (inclusive), ``0 <= start <= end``.
    start_date, end_date : str
        The same dates as ISO strings (``YYYY-MM-DD``), for people and ``folds.json``.
    """

    start: int
    end: int
    start_date: str
    end_date: str

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ConfigError(
                f"a segment needs 0 <= start <= end, got rows {self.start}..{self.end} "
                f"({self.start_date}..{self.end_date})"
            )

    @classmethod
    def from_rows(cls, dates: np.ndarray, start: int, end: int) -> Segment:
        """The segment of rows ``start..end`` (inclusive) of ``dates``."""
        return cls(int(start), int(end), _iso(dates[start]), _iso(dates[end]))

    def __len__(self) -> int:
        return self.end - self.start + 1

    @property
    def rows(self) -> range:
        """The rows of the segment, ``range(start, end + 1)``."""
        return range(self.start, self.end + 1)

    def last_sample(self, label_horizon: int, embargo: int = 0) -> int:
        """Last row whose sample may be trained or validated on inside this segment.

        A sample at row ``t`` has a label ending at ``t + label_horizon``; it is kept
        when ``t + label_horizon + embargo <= end``, so the usable rows are
        ``start .. end - label_horizon - embargo``.

        Parameters
        ----------
        label_horizon : int
            Trading days between a sample's date and its label's last date.
        embargo : int, default 0
            Further trading days kept free between the last label and the segment end.

        Returns
        -------
        int
            ``end - label_horizon - embargo``; smaller than ``start`` when the segment
            is too short to hold any sample.
        """
        return self.end - label_horizon - embargo

    def purged(self, dates: np.ndarray, label_horizon: int, embargo: int = 0) -> Segment:
        """The rows whose samples may be used: ``start .. last_sample(h, embargo)``.

        This is the one place that decides purging; folds and
        :meth:`alphaseq.forecaster.Forecaster.fit` both call it.

        Raises
        ------
        ConfigError
            When the segment is too short to hold one sample.
        """
        last = self.last_sample(label_horizon, embargo)
        if last < self.start:
            raise ConfigError(
                f"the window {self} has {len(self)} trading days, too few for one sample "
                f"whose {label_horizon}-day label plus {embargo}-day embargo ends inside it"
            )
        return Segment.from_rows(dates, self.start, last)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates, rows and the number of trading days."""
        return {
            "start_date": self.start_date,
            "end_date": self.end_date,
            "start": self.start,
            "end": self.end,
            "days": len(self),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        """Inverse of :meth:`to_dict` (``days`` is ignored)."""
        return cls(int(data["start"]), int(data["end"]), data["start_date"], data["end_date"])

    def __str__(self) -> str:
        return f"{self.start_date}..{self.end_date} (rows {self.start}..{self.end})"


@dataclass(frozen=True)
class Fold:
    """One train / validation / test split and its purged sample ranges.

    Parameters
    ----------
    index : int
        Position of the fold in the walk-forward sequence (0 = earliest test window).
    train : Segment
        Training window.
    valid : Segment or None
        Validation window (hyper-parameters, early stopping), or None.
    test : Segment
        Test window: forecasts are made for every date in it.
    label_horizon : int
        Label horizon ``h`` (trading days) the fold was purged for.
    embargo : int
        Embargo (trading days) the fold was purged with.
    train_samples : Segment
        Rows whose samples may be trained on: ``train.start .. train.last_sample(h,
        embargo)``.
    valid_samples : Segment or None
        The same for validation; None when there is no validation window.

    Notes
    -----
    Build folds with :meth:`from_rows`, which computes the purged ranges; the plain
    constructor takes them as given, and :func:`check_integrity` verifies them.
    """

    index: int
    train: Segment
    valid: Segment | None
    test: Segment
    label_horizon: int
    embargo: int
    train_samples: Segment
    valid_samples: Segment | None

    @classmethod
    def from_rows(
        cls,
        dates: np.ndarray,
        *,
        index: int,
        train: tuple[int, int],
        valid: tuple[int, int] | None,
        test: tuple[int, int],
        label_horizon: int,
        embargo: int = 0,
    ) -> Fold:
        """Build a fold from inclusive row ranges and purge its training and validation.

        Raises
        ------
        ConfigError
            If the training or validation window is too short to hold one sample whose
            label (plus embargo) ends inside it.
        """
        segments = {
            name: None if rows is None else Segment.from_rows(dates, *rows)
            for name, rows in (("train", train), ("valid", valid), ("test", test))
        }
        purged = {
            name: _purged(segments[name], index, name, label_horizon, embargo, dates)
            for name in ("train", "valid")
        }
        return cls(
            index=index,
            train=segments["train"],
            valid=segments["valid"],
            test=segments["test"],
            label_horizon=label_horizon,
            embargo=embargo,
            train_samples=purged["train"],
            valid_samples=purged["valid"],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (dates, rows and purged sample ranges) for ``folds.json``.

        Keys: ``index, label_horizon, embargo, train_window, train_samples, valid_window,
        valid_samples, test_window`` (each window a :meth:`Segment.to_dict`, or None);
        ``*_window`` rather than ``train``/``test`` leaves those names free for metrics
        merged into the same record.
        """

        def seg(segment: Segment | None) -> dict[str, Any] | None:
            return None if segment is None else segment.to_dict()

        return {
            "index": self.index,
            "label_horizon": self.label_horizon,
            "embargo": self.embargo,
            "train_window": seg(self.train),
            "train_samples": seg(self.train_samples),
            "valid_window": seg(self.valid),
            "valid_samples": seg(self.valid_samples),
            "test_window": seg(self.test),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fold:
        """Inverse of :meth:`to_dict`."""

        def seg(key: str) -> Segment | None:
            value = data.get(key)
            return None if value is None else Segment.from_dict(value)

        return cls(
            index=int(data["index"]),
            train=seg("train_window"),
            valid=seg("valid_window"),
            test=seg("test_window"),
            label_horizon=int(data["label_horizon"]),
            embargo=int(data["embargo"]),
            train_samples=seg("train_samples"),
            valid_samples=seg("valid_samples"),
        )


def _purged(
    segment: Segment | None,
    index: int,
    name: str,
    label_horizon: int,
    embargo: int,
    dates: np.ndarray,
) -> Segment | None:
    if segment is None:
        return None
    last = segment.last_sample(label_horizon, embargo)
    if last < segment.start:
        raise ConfigError(
            f"fold {index}: the {_LONG[name]} window {segment} has {len(segment)} trading "
            f"days, too few for one sample whose {label_horizon}-day label plus "
            f"{embargo}-day embargo ends inside it (needs more than "
            f"{label_horizon + embargo}); lengthen the window or shorten the label horizon "
            f"or embargo"
        )
    return segment.purged(dates, label_horizon, embargo)


_LONG = {"train": "training", "valid": "validation", "test": "test"}


# ------------------------------------------------------------------------ integrity
@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check_integrity` found besides errors (it raises on those).

    Attributes
    ----------
    n_folds : int
        Folds checked.
    label_horizon : int
        The label horizon checked against.
    test_days : int
        Trading days in the stitched out-of-sample record.
    test_gaps : tuple of (int, int)
        ``(fold index, trading days)`` for every fold whose test window does not start
        right after the previous one (no test forecast on those days).
    test_overhang : tuple of int
        Per fold, how many test dates have labels that end after the test window:
        they are evaluated, never trained on.
    notes : tuple of str
        The same in words, for logs and reports.
    """

    n_folds: int
    label_horizon: int
    test_days: int
    test_gaps: tuple[tuple[int, int], ...] = ()
    test_overhang: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def continuous(self) -> bool:
        """True when the test windows stitch into one gap-free out-of-sample record."""
        return not self.test_gaps


def check_integrity(
    folds: Sequence[Fold],
    label_horizon: int | None = None,
    *,
    dates: np.ndarray | None = None,
) -> IntegrityReport:
    """Verify that a list of folds cannot leak, and that its test windows stitch.

    Checks, per fold: segments ordered train < valid < test without overlap; purged
    sample ranges inside their segment with ``last + h + embargo <= segment.end``
    (hence every training label ends before the validation and test windows, and every
    validation label before the test window, with at least ``embargo`` free days).
    Across folds: test windows increasing and disjoint.

    Parameters
    ----------
    folds : sequence of Fold
        The folds, in walk-forward order.
    label_horizon : int, optional
        Horizon of the labels that will actually be used. Default: each fold's own.
        A fold purged for a shorter horizon than this one leaks, and is reported.
    dates : numpy.ndarray, optional
        The panel's dates; when given, every segment's rows must exist and carry the
        segment's ISO dates.

    Returns
    -------
    IntegrityReport
        Gaps between test windows and test labels that run past their window (notes,
        not errors).

    Raises
    ------
    LeakageError
        On any overlap or leaking label, naming the fold, segments and dates.
    ConfigError
        On an empty fold list or a negative horizon or embargo.
    """
    if not folds:
        raise ConfigError("check_integrity needs at least one fold, got none")
    if label_horizon is not None:
        label_horizon = _check_int("label_horizon", label_horizon, 0)
    for fold in folds:
        _check_fold(fold, fold.label_horizon if label_horizon is None else label_horizon, dates)

    gaps: list[tuple[int, int]] = []
    for before, after in itertools.pairwise(folds):
        if after.test.start <= before.test.end:
            raise LeakageError(
                f"the test windows of fold {before.index} ({before.test}) and fold "
                f"{after.index} ({after.test}) overlap or are out of order: the stitched "
                f"out-of-sample record would count dates twice; use test_months <= "
                f"step_months"
            )
        missing = after.test.start - before.test.end - 1
        if missing:
            gaps.append((after.index, missing))

    horizon = folds[-1].label_horizon if label_horizon is None else label_horizon
    overhang = tuple(
        min(fold.label_horizon if label_horizon is None else label_horizon, len(fold.test))
        for fold in folds
    )
    notes = [
        f"fold {index}: {days} trading days without a test forecast before its test window"
        for index, days in gaps
    ]
    if any(overhang):
        notes.append(
            f"in each fold the last {max(overhang)} test dates have labels that end after "
            f"the test window; they are evaluated, never trained on"
        )
    return IntegrityReport(
        n_folds=len(folds),
        label_horizon=horizon,
        test_days=sum(len(fold.test) for fold in folds),
        test_gaps=tuple(gaps),
        test_overhang=overhang,
        notes=tuple(notes),
    )


def _check_fold(fold: Fold, horizon: int, dates: np.ndarray | None) -> None:
    name = f"fold {fold.index}"
    embargo = fold.embargo
    if not isinstance(embargo, numbers.Integral) or embargo < 0:
        raise ConfigError(f"{name}: embargo must be an integer >= 0, got {embargo!r}")
    if (fold.valid is None) != (fold.valid_samples is None):
        raise LeakageError(f"{name}: a validation window needs its purged sample range")

    # Order: train < valid < test, no overlap.
    chain = [("train", fold.train), ("valid", fold.valid), ("test", fold.test)]
    chain = [(key, seg) for key, seg in chain if seg is not None]
    for (key_a, a), (key_b, b) in itertools.pairwise(chain):
        if a.end >= b.start:
            raise LeakageError(
                f"{name}: the {_LONG[key_a]} window {a} overlaps or follows the "
                f"{_LONG[key_b]} window {b}; windows must be ordered train < valid < test"
            )

    # Purge and embargo: samples inside their window, labels (+ embargo) inside it too.
    for key, segment, samples in (
        ("train", fold.train, fold.train_samples),
        ("valid", fold.valid, fold.valid_samples),
    ):
        if segment is None:
            continue
        if samples.start < segment.start or samples.end > segment.end:
            raise LeakageError(
                f"{name}: the {_LONG[key]} samples {samples} lie outside the "
                f"{_LONG[key]} window {segment}"
            )
        label_end = samples.end + horizon
        if label_end + embargo > segment.end:
            following = fold.valid if key == "train" and fold.valid is not None else fold.test
            if label_end >= following.start:
                where = (
                    f"reaching into the next window starting {following.start_date} "
                    f"(row {following.start})"
                )
            elif label_end > segment.end:
                where = f"after the window's last date {segment.end_date}"
            else:
                where = (
                    f"only {segment.end - label_end} days before the window end, fewer than "
                    f"the {embargo}-day embargo"
                )
            ending = f"at row {label_end}"
            if dates is not None and label_end < len(dates):
                ending = f"on {_iso(dates[label_end])} (row {label_end})"
            raise LeakageError(
                f"{name}: the last {_LONG[key]} sample {samples.end_date} (row "
                f"{samples.end}) has a {horizon}-day label ending {ending}, "
                f"{where}; the {_LONG[key]} window {segment} needs every sample "
                f"t + {horizon} + {embargo} <= {segment.end} (fold purged for "
                f"label_horizon={fold.label_horizon}, embargo={embargo})"
            )

    if dates is not None:
        segments = [*chain, ("train samples", fold.train_samples)]
        if fold.valid_samples is not None:
            segments.append(("valid samples", fold.valid_samples))
        for key, segment in segments:
            if segment.end >= len(dates):
                raise LeakageError(
                    f"{name}: the {key} segment {segment} ends past the last date "
                    f"(row {len(dates) - 1})"
                )
            actual = (_iso(dates[segment.start]), _iso(dates[segment.end]))
            if actual != (segment.start_date, segment.end_date):
                raise LeakageError(
                    f"{name}: the {key} segment {segment} does not match the dates, whose "
                    f"rows {segment.start}..{segment.end} are {actual[0]}..{actual[1]}"
                )


def stitched_test_rows(folds: Sequence[Fold]) -> np.ndarray:
    """Rows of the continuous out-of-sample record: every fold's test rows, in order.

    Parameters
    ----------
    folds : sequence of Fold
        Folds in walk-forward order.

    Returns
    -------
    numpy.ndarray
        int64 rows, strictly increasing.

    Raises
    ------
    LeakageError
        If two test windows overlap or are out of order.
    """
    for before, after in itertools.pairwise(folds):
        if after.test.start <= before.test.end:
            raise LeakageError(
                f"the test windows of fold {before.index} ({before.test}) and fold "
                f"{after.index} ({after.test}) overlap or are out of order"
            )
    if not folds:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(
        [np.arange(fold.test.start, fold.test.end + 1, dtype=np.int64) for fold in folds]
    )


def describe(folds: Sequence[Fold]) -> pd.DataFrame:
    """One row per fold with the dates of every window and of the last purged samples.

    Returns
    -------
    pandas.DataFrame
        Columns ``fold, train_start, train_end, valid_start, valid_end, test_start,
        test_end, train_last_sample, valid_last_sample`` (dates; NaT without
        validation) and ``train_days, valid_days, test_days`` (trading days).
    """

    def date(segment: Segment | None, attr: str) -> pd.Timestamp:
        return pd.NaT if segment is None else pd.Timestamp(getattr(segment, attr))

    rows = [
        {
            "fold": fold.index,
            "train_start": date(fold.train, "start_date"),
            "train_end": date(fold.train, "end_date"),
            "valid_start": date(fold.valid, "start_date"),
            "valid_end": date(fold.valid, "end_date"),
            "test_start": date(fold.test, "start_date"),
            "test_end": date(fold.test, "end_date"),
            "train_last_sample": date(fold.train_samples, "end_date"),
            "valid_last_sample": date(fold.valid_samples, "end_date"),
            "train_days": len(fold.train),
            "valid_days": 0 if fold.valid is None else len(fold.valid),
            "test_days": len(fold.test),
        }
        for fold in folds
    ]
    frame = pd.DataFrame(rows, columns=_DESCRIBE_COLUMNS)
    for column in _DESCRIBE_COLUMNS[1:9]:
        frame[column] = pd.to_datetime(frame[column])
    return frame


_DESCRIBE_COLUMNS = [
    "fold",
    "train_start",
    "train_end",
    "valid_start",
    "valid_end",
    "test_start",
    "test_end",
    "train_last_sample",
    "valid_last_sample",
    "train_days",
    "valid_days",
    "test_days",
]


# ------------------------------------------------------------------------ splitters
class _Splitter:
    """Shared plumbing: parameters stored as given (scikit-learn style), repr, params."""

    _params: tuple[str, ...] = ()

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, e.g. to record them next to ``folds.json``."""
        return {name: getattr(self, name) for name in self._params}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _finish(self, folds: list[Fold], dates: np.ndarray, label_horizon: int) -> list[Fold]:
        # Every split is checked by the same code that checks hand-made folds.
        report = check_integrity(folds, label_horizon, dates=dates)
        for note in report.notes:
            logger.info("%s: %s", type(self).__name__, note)
        return folds


class WalkForwardSplit(_Splitter):
    """Rolling (or expanding) calendar-month windows: train, validate, test, step, repeat.

    Fold ``k`` starts its training window at month ``m0 + k * step_months`` (always at
    ``m0`` when ``expanding``), where ``m0`` is the month of ``start`` (default: of the
    first date). Training runs ``train_months`` months, then validation
    ``valid_months``, then test ``test_months``; each window holds the trading dates
    inside its months. With ``test_months == step_months`` (the default) the test
    windows tile the calendar and stitch into one continuous out-of-sample record.

    Parameters
    ----------
    train_months : int, default 36
        Length of each training window (initial length when ``expanding``), >= 1.
    valid_months : int, default 12
        Length of each validation window, >= 0; 0 means no validation (``valid=None``).
    test_months : int, default 12
        Length of each test window, 1 .. ``step_months`` (longer test windows would
        overlap and could not be stitched).
    step_months : int, default 12
        Months between successive folds, >= 1; 1 retrains every month (then use
        ``test_months=1``).
    expanding : bool, default False
        Keep every training window anchored at ``m0`` (growing) instead of rolling.
    embargo_days : int, default 0
        Trading days kept free between the last training (validation) label and the
        end of its window, >= 0.
    start, end : date-like, optional
        Use only dates in ``[start, end]``.
    min_test_days : int, default 15
        The last test window may be cut short by the end of the data; it is kept when it
        holds at least this many trading days (three weeks, most of a month), so the
        out-of-sample record reaches the end of the data. A test window is complete (always kept)
        when the data reach the last weekday of its final month.

    Notes
    -----
    A sample at row ``t`` is trained on only if ``t + label_horizon + embargo_days <=
    train.end`` (purge), and the same for validation, so no label reads prices of a later
    window. When the data start mid-month, the first training window is shorter.

    .. warning::

        Test windows are forecast on every date. The labels of the last ``h`` test dates
        end after the test window (in the next fold's test window); they are evaluated,
        never trained on, and the next fold's training window is purged against its own
        validation and test windows.

    Examples
    --------
    >>> import pandas as pd
    >>> dates = pd.bdate_range("2010-01-01", "2016-12-31").values
    >>> folds = WalkForwardSplit().split(dates, label_horizon=21)
    >>> [(f.test.start_date, f.test.end_date) for f in folds]
    [('2014-01-01', '2014-12-31'), ('2015-01-01', '2015-12-31'), ('2016-01-01', '2016-12-30')]
    """

    _params = (
        "train_months",
        "valid_months",
        "test_months",
        "step_months",
        "expanding",
        "embargo_days",
        "start",
        "end",
        "min_test_days",
    )

    def __init__(
        self,
        train_months: int = 36,
        valid_months: int = 12,
        test_months: int = 12,
        step_months: int = 12,
        expanding: bool = False,
        embargo_days: int = 0,
        start: Any = None,
        end: Any = None,
        min_test_days: int = 15,
    ) -> None:
        self.train_months = train_months
        self.valid_months = valid_months
        self.test_months = test_months
        self.step_months = step_months
        self.expanding = expanding
        self.embargo_days = embargo_days
        self.start = start
        self.end = end
        self.min_test_days = min_test_days

    def _validate(self) -> None:
        _check_int("train_months", self.train_months, 1)
        _check_int("valid_months", self.valid_months, 0)
        _check_int("step_months", self.step_months, 1)
        _check_int("test_months", self.test_months, 1)
        if self.test_months > self.step_months:
            raise ConfigError(
                f"test_months must be in [1, step_months={self.step_months}], got "
                f"{self.test_months}: successive test windows would overlap and could not "
                f"be stitched into one out-of-sample record (monthly retraining: "
                f"step_months=1, test_months=1)"
            )
        _check_int("embargo_days", self.embargo_days, 0)
        _check_int("min_test_days", self.min_test_days, 1)
        if not isinstance(self.expanding, bool | np.bool_):
            raise ConfigError(f"expanding must be true or false, got {self.expanding!r}")

    def split(self, dates: np.ndarray, label_horizon: int) -> list[Fold]:
        """Cut ``dates`` into walk-forward folds, purged for ``label_horizon``.

        Parameters
        ----------
        dates : numpy.ndarray of datetime64
            The panel's trading dates, strictly increasing (``Panel.dates``).
        label_horizon : int
            Trading days from a sample's date to its label's last date (>= 0).

        Returns
        -------
        list of Fold
            In walk-forward order, test windows increasing and disjoint.

        Raises
        ------
        ConfigError
            On a parameter out of range, or data too short for one fold (the message
            says how many months are needed and available).
        LeakageError
            If the folds fail :func:`check_integrity` (a bug: please report it).
        """
        self._validate()
        horizon = _check_int("label_horizon", label_horizon, 0)
        dates = _as_dates(dates)
        lo, hi = _bounds(dates, self.start, self.end)
        months = dates.astype("datetime64[M]").astype(np.int64)
        m0 = int(months[lo] if self.start is None else _month(_as_date(self.start, "start")))
        last_month = int(months[hi])
        last_date = dates[hi].astype("datetime64[D]")

        def rows(month_from: int, month_to: int) -> tuple[int, int] | None:
            # Rows whose month is in [month_from, month_to), within [lo, hi].
            first = max(lo, int(np.searchsorted(months, month_from, side="left")))
            last = min(hi, int(np.searchsorted(months, month_to, side="left")) - 1)
            return (first, last) if first <= last else None

        folds: list[Fold] = []
        k = 0
        while True:
            anchor = m0 + k * self.step_months
            k += 1
            valid_from = anchor + self.train_months
            test_from = valid_from + self.valid_months
            test_to = test_from + self.test_months
            if test_from > last_month:
                break
            test = rows(test_from, test_to)
            if test is None:  # a hole in the calendar: nothing to forecast
                logger.info("walk-forward: no trading date in test months %s", _span(test_from))
                continue
            short = test[1] - test[0] + 1 < self.min_test_days
            if short and not _complete(test_to, last_month, last_date):
                break  # only the last window can be cut short by the end of the data
            train_from = m0 if self.expanding else anchor
            train = rows(train_from, valid_from)
            valid = rows(valid_from, test_from) if self.valid_months else None
            # A hole in the calendar can empty a window; say which instead of training on nothing.
            windows = [("training", train, train_from, valid_from)]
            if self.valid_months:
                windows.append(("validation", valid, valid_from, test_from))
            for key, window, month_from, month_to in windows:
                if window is None:
                    raise ConfigError(
                        f"fold {len(folds)}: the {key} window {_span(month_from)}.."
                        f"{_span(month_to - 1)} holds no trading date"
                    )
            folds.append(
                Fold.from_rows(
                    dates,
                    index=len(folds),
                    train=train,
                    valid=valid,
                    test=test,
                    label_horizon=horizon,
                    embargo=self.embargo_days,
                )
            )

        if not folds:
            before_test = self.train_months + self.valid_months
            raise ConfigError(
                f"data too short for one walk-forward fold: it needs train_months + "
                f"valid_months = {before_test} months from {_span(m0)} plus at least "
                f"{self.min_test_days} trading days of test "
                f"({before_test + self.test_months} months for a full test window); "
                f"available: {last_month - m0 + 1} months "
                f"({_iso(dates[lo])}..{_iso(dates[hi])})"
            )
        return self._finish(folds, dates, horizon)


class FixedSplit(_Splitter):
    """One fold: the first ``train`` fraction of the dates trains, then valid, then test.

    Parameters
    ----------
    train, valid, test : float, default 0.6, 0.2, 0.2
        Fractions of the trading dates (rows), in time order; each in [0, 1], ``train``
        and ``test`` > 0, summing to 1 (within 1e-9). ``valid=0`` means no validation.
    embargo_days : int, default 0
        Trading days kept free between the last training (validation) label and the end
        of its window, >= 0.
    start, end : date-like, optional
        Use only dates in ``[start, end]``.

    Notes
    -----
    Purged exactly like :class:`WalkForwardSplit`: a sample at row ``t`` is trained on
    only if ``t + label_horizon + embargo_days <= train.end``.

    Examples
    --------
    >>> import pandas as pd
    >>> dates = pd.bdate_range("2010-01-01", periods=1000).values
    >>> (fold,) = FixedSplit().split(dates, label_horizon=5)
    >>> len(fold.train), len(fold.valid), len(fold.test)
    (600, 200, 200)
    """

    _params = ("train", "valid", "test", "embargo_days", "start", "end")

    def __init__(
        self,
        train: float = 0.6,
        valid: float = 0.2,
        test: float = 0.2,
        embargo_days: int = 0,
        start: Any = None,
        end: Any = None,
    ) -> None:
        self.train = train
        self.valid = valid
        self.test = test
        self.embargo_days = embargo_days
        self.start = start
        self.end = end

    def _validate(self) -> tuple[float, float, float]:
        fractions = []
        for name in ("train", "valid", "test"):
            value = getattr(self, name)
            low = "[0, 1]" if name == "valid" else "(0, 1]"
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = ok and (0 <= value <= 1 if name == "valid" else 0 < value <= 1)
            if not ok:
                raise ConfigError(f"{name} must be a fraction in {low}, got {value!r}")
            fractions.append(float(value))
        if abs(sum(fractions) - 1) > _FRACTION_TOL:
            raise ConfigError(
                f"train + valid + test must sum to 1 (within {_FRACTION_TOL:g}), got "
                f"{fractions[0]} + {fractions[1]} + {fractions[2]} = {sum(fractions)}"
            )
        _check_int("embargo_days", self.embargo_days, 0)
        return fractions[0], fractions[1], fractions[2]

    def split(self, dates: np.ndarray, label_horizon: int) -> list[Fold]:
        """Cut ``dates`` into one train / validation / test fold, purged for ``label_horizon``.

        Parameters
        ----------
        dates : numpy.ndarray of datetime64
            The panel's trading dates, strictly increasing.
        label_horizon : int
            Trading days from a sample's date to its label's last date (>= 0).

        Returns
        -------
        list of Fold
            One fold.

        Raises
        ------
        ConfigError
            On a parameter out of range, or too few dates for every segment to hold one
            purged sample.
        """
        train, valid, _ = self._validate()
        horizon = _check_int("label_horizon", label_horizon, 0)
        dates = _as_dates(dates)
        lo, hi = _bounds(dates, self.start, self.end)
        n = hi - lo + 1
        # Cut on cumulative fractions so rounding never loses or double-counts a row.
        cut_train = lo + round(train * n)
        cut_valid = lo + round((train + valid) * n)
        if cut_train <= lo or cut_valid >= hi + 1 or (valid > 0 and cut_valid <= cut_train):
            raise ConfigError(
                f"data too short for a fixed split {train:g}/{valid:g}/{1 - train - valid:g}: "
                f"{n} trading dates ({_iso(dates[lo])}..{_iso(dates[hi])}) leave a window "
                f"empty"
            )
        fold = Fold.from_rows(
            dates,
            index=0,
            train=(lo, cut_train - 1),
            valid=(cut_train, cut_valid - 1) if valid > 0 else None,
            test=(cut_valid, hi),
            label_horizon=horizon,
            embargo=self.embargo_days,
        )
        return self._finish([fold], dates, horizon)


# ------------------------------------------------------------------------ helpers
def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _iso(date: np.datetime64) -> str:
    return str(np.datetime_as_string(np.datetime64(date, "D"), unit="D"))


def _month(date: np.datetime64) -> int:
    return int(date.astype("datetime64[M]").astype(np.int64))


def _span(month: int) -> str:
    """ISO year-month of a month index (months since 1970-01)."""
    return str(np.datetime64(month, "M"))


def _complete(month_to: int, last_month: int, last_date: np.datetime64) -> bool:
    """Whether the data cover the window ending before ``month_to`` to its last weekday."""
    if month_to - 1 < last_month:
        return True
    month_end = np.datetime64(month_to, "M").astype("datetime64[D]") - np.timedelta64(1, "D")
    return bool(last_date >= np.busday_offset(month_end, 0, roll="backward"))


def _as_date(value: Any, name: str) -> np.datetime64:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a date such as '2015-01-01', got {value!r}") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{name} must be a date such as '2015-01-01', got {value!r}")
    return np.datetime64(stamp.tz_localize(None) if stamp.tzinfo else stamp, "ns")


def _as_dates(dates: Any) -> np.ndarray:
    try:
        values = np.asarray(dates, dtype="datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise DataError(f"dates must be datetime64 values: {exc}") from exc
    if values.ndim != 1 or len(values) == 0:
        raise DataError(f"dates must be a non-empty 1-d array, got shape {values.shape}")
    if np.isnat(values).any():
        raise DataError("dates contain NaT")
    if len(values) > 1 and not (np.diff(values) > np.timedelta64(0, "ns")).all():
        raise DataError("dates must be strictly increasing")
    return values


def _bounds(dates: np.ndarray, start: Any, end: Any) -> tuple[int, int]:
    """Inclusive rows of the dates in ``[start, end]``."""
    lo = 0 if start is None else int(np.searchsorted(dates, _as_date(start, "start"), "left"))
    hi = (
        len(dates) - 1
        if end is None
        else int(np.searchsorted(dates, _as_date(end, "end"), "right")) - 1
    )
    if lo > hi:
        raise ConfigError(
            f"no date in start={start!r} .. end={end!r}; the data cover "
            f"{_iso(dates[0])}..{_iso(dates[-1])}"
        )
    return lo, hi
