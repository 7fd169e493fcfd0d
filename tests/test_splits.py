"""Walk-forward and fixed splits: explicit split tables, purge/embargo and integrity checks.

The tables are written out by hand (dates of every window) on a business-day calendar
and on the real NYSE calendar of the embedded ``sp500`` data set, so a change in the
calendar arithmetic shows up as a readable diff. A property test then checks, for random
parameters, that every produced fold is purged and ordered, with segments that are
exactly the trading dates of their calendar months.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alphaseq
from alphaseq.errors import ConfigError, DataError
from alphaseq.validation import (
    FixedSplit,
    Fold,
    LeakageError,
    Segment,
    WalkForwardSplit,
    check_integrity,
    describe,
    stitched_test_rows,
)

BDATES = pd.bdate_range("2010-01-01", "2016-12-31").values  # 1826 weekdays, no holidays

WINDOWS = ["train_start", "train_end", "valid_start", "valid_end", "test_start", "test_end"]
PURGED = ["train_last_sample", "valid_last_sample"]


@pytest.fixture(scope="module")
def sp500_dates() -> np.ndarray:
    return alphaseq.load_panel("sp500").dates


def table(folds: list[Fold], columns: list[str]) -> list[tuple[str | None, ...]]:
    """``describe`` as plain ISO strings (None for NaT), one tuple per fold."""
    frame = describe(folds)[columns]
    return [
        tuple(None if pd.isna(value) else value.strftime("%Y-%m-%d") for value in row)
        for row in frame.itertuples(index=False)
    ]


# ----------------------------------------------------------------------------- tables
def test_default_36_12_12_on_business_days():
    folds = WalkForwardSplit().split(BDATES, label_horizon=21)
    assert table(folds, WINDOWS + PURGED) == [
        # train                    valid                     test                      last samples
        ("2010-01-01", "2012-12-31", "2013-01-01", "2013-12-31", "2014-01-01", "2014-12-31",
         "2012-11-30", "2013-12-02"),
        ("2011-01-03", "2013-12-31", "2014-01-01", "2014-12-31", "2015-01-01", "2015-12-31",
         "2013-12-02", "2014-12-02"),
        ("2012-01-02", "2014-12-31", "2015-01-01", "2015-12-31", "2016-01-01", "2016-12-30",
         "2014-12-02", "2015-12-02"),
    ]  # fmt: skip
    assert [f.index for f in folds] == [0, 1, 2]
    # the three test windows tile 2014..2016: one continuous out-of-sample record
    first = int(np.searchsorted(BDATES, np.datetime64("2014-01-01")))
    np.testing.assert_array_equal(stitched_test_rows(folds), np.arange(first, len(BDATES)))
    report = check_integrity(folds)
    assert report.continuous and report.test_days == len(BDATES) - first
    assert report.test_overhang == (21, 21, 21)


def test_monthly_step_on_business_days():
    folds = WalkForwardSplit(step_months=1, test_months=1).split(BDATES, label_horizon=21)
    assert len(folds) == 36  # one per month of 2014..2016
    assert table(folds[:3], WINDOWS + PURGED) == [
        ("2010-01-01", "2012-12-31", "2013-01-01", "2013-12-31", "2014-01-01", "2014-01-31",
         "2012-11-30", "2013-12-02"),
        ("2010-02-01", "2013-01-31", "2013-02-01", "2014-01-31", "2014-02-03", "2014-02-28",
         "2013-01-02", "2014-01-02"),
        ("2010-03-01", "2013-02-28", "2013-03-01", "2014-02-28", "2014-03-03", "2014-03-31",
         "2013-01-30", "2014-01-30"),
    ]  # fmt: skip
    assert table(folds[-1:], WINDOWS) == [
        ("2012-12-03", "2015-11-30", "2015-12-01", "2016-11-30", "2016-12-01", "2016-12-30")
    ]
    assert check_integrity(folds).continuous


def test_expanding_on_business_days():
    folds = WalkForwardSplit(expanding=True).split(BDATES, label_horizon=21)
    assert table(folds, WINDOWS) == [
        ("2010-01-01", "2012-12-31", "2013-01-01", "2013-12-31", "2014-01-01", "2014-12-31"),
        ("2010-01-01", "2013-12-31", "2014-01-01", "2014-12-31", "2015-01-01", "2015-12-31"),
        ("2010-01-01", "2014-12-31", "2015-01-01", "2015-12-31", "2016-01-01", "2016-12-30"),
    ]


def test_without_validation_on_business_days():
    folds = WalkForwardSplit(valid_months=0).split(BDATES, label_horizon=21)
    assert table(folds, WINDOWS + PURGED) == [
        ("2010-01-01", "2012-12-31", None, None, "2013-01-01", "2013-12-31", "2012-11-30", None),
        ("2011-01-03", "2013-12-31", None, None, "2014-01-01", "2014-12-31", "2013-12-02", None),
        ("2012-01-02", "2014-12-31", None, None, "2015-01-01", "2015-12-31", "2014-12-02", None),
        ("2013-01-01", "2015-12-31", None, None, "2016-01-01", "2016-12-30", "2015-12-02", None),
    ]
    assert all(f.valid is None and f.valid_samples is None for f in folds)


def test_fixed_60_20_20_on_business_days():
    (fold,) = FixedSplit().split(BDATES, label_horizon=21)
    # 1826 dates: 1096 train (round(0.6 * 1826)), 365 valid, 365 test
    assert (len(fold.train), len(fold.valid), len(fold.test)) == (1096, 365, 365)
    assert table([fold], WINDOWS + PURGED) == [
        ("2010-01-01", "2014-03-14", "2014-03-17", "2015-08-07", "2015-08-10", "2016-12-30",
         "2014-02-13", "2015-07-09"),
    ]  # fmt: skip


def test_fixed_split_without_validation():
    (fold,) = FixedSplit(train=0.75, valid=0.0, test=0.25).split(BDATES[:1000], label_horizon=0)
    assert (fold.train.rows, fold.valid, fold.test.rows) == (range(750), None, range(750, 1000))
    assert fold.train_samples == fold.train  # h = 0, no embargo: nothing purged


def test_horizon_21_embargo_5_purges_26_trading_days():
    folds = WalkForwardSplit(embargo_days=5).split(BDATES, label_horizon=21)
    for fold in folds:
        assert fold.train_samples.start == fold.train.start
        assert fold.train_samples.end == fold.train.end - 26
        assert fold.valid_samples.end == fold.valid.end - 26
        assert fold.train.last_sample(21, 5) == fold.train_samples.end
    # 26 weekdays before Monday 2012-12-31 is Friday 2012-11-23
    assert (folds[0].train.end_date, folds[0].train_samples.end_date) == (
        "2012-12-31",
        "2012-11-23",
    )
    assert (folds[0].valid.end_date, folds[0].valid_samples.end_date) == (
        "2013-12-31",
        "2013-11-25",
    )
    # the last training label ends 5 free trading days before validation starts
    gap = folds[0].valid.start - (folds[0].train_samples.end + 21) - 1
    assert gap == 5


def test_default_on_the_real_calendar(sp500_dates):
    folds = WalkForwardSplit(start="2005-01-01", end="2012-12-31").split(
        sp500_dates, label_horizon=21
    )
    # NYSE: 2007-01-02 was closed (national day of mourning), so 2007 starts on the 3rd
    assert table(folds, WINDOWS + PURGED) == [
        ("2005-01-03", "2007-12-31", "2008-01-02", "2008-12-31", "2009-01-02", "2009-12-31",
         "2007-11-29", "2008-12-01"),
        ("2006-01-03", "2008-12-31", "2009-01-02", "2009-12-31", "2010-01-04", "2010-12-31",
         "2008-12-01", "2009-12-01"),
        ("2007-01-03", "2009-12-31", "2010-01-04", "2010-12-31", "2011-01-03", "2011-12-30",
         "2009-12-01", "2010-12-01"),
        ("2008-01-02", "2010-12-31", "2011-01-03", "2011-12-30", "2012-01-03", "2012-12-31",
         "2010-12-01", "2011-11-30"),
    ]  # fmt: skip
    # row numbers: the train window of fold 0 starts at the first row of 2005
    assert sp500_dates[folds[0].train.start] == np.datetime64("2005-01-03")


def test_full_real_calendar_reaches_the_end_of_the_data(sp500_dates):
    folds = WalkForwardSplit().split(sp500_dates, label_horizon=21)
    assert len(folds) == 29  # test years 1994..2022
    assert table([folds[0], folds[-1]], WINDOWS) == [
        ("1990-01-02", "1992-12-31", "1993-01-04", "1993-12-31", "1994-01-03", "1994-12-30"),
        ("2018-01-02", "2020-12-31", "2021-01-04", "2021-12-31", "2022-01-03", "2022-12-28"),
    ]
    # the data stop on 2022-12-28: the last test window is partial and kept
    assert folds[-1].test.end == len(sp500_dates) - 1
    rows = stitched_test_rows(folds)
    np.testing.assert_array_equal(rows, np.arange(folds[0].test.start, len(sp500_dates)))


def test_monthly_on_the_real_calendar(sp500_dates):
    folds = WalkForwardSplit(step_months=1, test_months=1, start="2005-01-01").split(
        sp500_dates, label_horizon=21
    )
    assert table(folds[:3], WINDOWS) == [
        ("2005-01-03", "2007-12-31", "2008-01-02", "2008-12-31", "2009-01-02", "2009-01-30"),
        ("2005-02-01", "2008-01-31", "2008-02-01", "2009-01-30", "2009-02-02", "2009-02-27"),
        ("2005-03-01", "2008-02-29", "2008-03-03", "2009-02-27", "2009-03-02", "2009-03-31"),
    ]
    # December 2022 is cut short (19 trading days to the 28th): kept, >= min_test_days=15
    assert table(folds[-1:], ["test_start", "test_end"]) == [("2022-12-01", "2022-12-28")]
    assert len(folds) == 14 * 12  # 2009-01 .. 2022-12
    assert check_integrity(folds).continuous
    # with a one-month minimum the short December is dropped
    strict = WalkForwardSplit(step_months=1, test_months=1, start="2005-01-01", min_test_days=21)
    assert strict.split(sp500_dates, 21)[-1].test.end_date == "2022-11-30"


def test_step_longer_than_test_leaves_noted_gaps():
    folds = WalkForwardSplit(12, 0, 6, 12).split(BDATES, label_horizon=5)
    assert table(folds, ["test_start", "test_end"]) == [
        ("2011-01-03", "2011-06-30"),
        ("2012-01-02", "2012-06-29"),
        ("2013-01-01", "2013-06-28"),
        ("2014-01-01", "2014-06-30"),
        ("2015-01-01", "2015-06-30"),
        ("2016-01-01", "2016-06-30"),
    ]
    report = check_integrity(folds)
    assert not report.continuous
    assert [index for index, _ in report.test_gaps] == [1, 2, 3, 4, 5]
    assert all(days > 120 for _, days in report.test_gaps)
    assert any("without a test forecast" in note for note in report.notes)


# ----------------------------------------------------------------------------- records
def test_to_dict_is_json_ready_and_round_trips():
    folds = WalkForwardSplit(embargo_days=5).split(BDATES, label_horizon=21)
    text = json.dumps([fold.to_dict() for fold in folds])
    record = json.loads(text)[0]
    assert record["train_window"] == {
        "start_date": "2010-01-01",
        "end_date": "2012-12-31",
        "start": 0,
        "end": 781,
        "days": 782,
    }
    assert record["train_samples"]["end_date"] == "2012-11-23"
    assert (record["label_horizon"], record["embargo"]) == (21, 5)
    assert record["valid_window"]["start_date"] == "2013-01-01"
    assert record["test_window"]["end_date"] == "2014-12-31"
    assert [Fold.from_dict(item) for item in json.loads(text)] == folds


def test_describe_columns_and_types():
    frame = describe(WalkForwardSplit(valid_months=0).split(BDATES, 21))
    assert list(frame.columns[:9]) == ["fold", *WINDOWS, *PURGED]
    assert all(pd.api.types.is_datetime64_any_dtype(frame[c]) for c in WINDOWS + PURGED)
    assert frame["valid_start"].isna().all()
    assert (frame["valid_days"] == 0).all()


def test_repr_and_params():
    split = WalkForwardSplit(step_months=1, test_months=1)
    assert "step_months=1" in repr(split)
    assert split.get_params()["train_months"] == 36


# ----------------------------------------------------------------------------- integrity
def seg(start: int, end: int, dates: np.ndarray = BDATES) -> Segment:
    return Segment.from_rows(dates, start, end)


def test_overlapping_train_and_valid_are_caught():
    good = Fold.from_rows(
        BDATES, index=0, train=(0, 99), valid=(100, 149), test=(150, 199), label_horizon=5
    )
    bad = dataclasses.replace(good, valid=seg(90, 149))
    with pytest.raises(LeakageError, match=r"fold 0: the training window 2010-01-01\.\.2010-05-20"):
        check_integrity([bad])
    bad = dataclasses.replace(good, test=seg(140, 199))
    with pytest.raises(LeakageError, match=r"validation window .* overlaps .* test window"):
        check_integrity([bad])


def test_overlapping_test_windows_across_folds_are_caught():
    a = Fold.from_rows(BDATES, index=0, train=(0, 99), valid=None, test=(100, 149), label_horizon=0)
    b = Fold.from_rows(
        BDATES, index=1, train=(50, 139), valid=None, test=(140, 189), label_horizon=0
    )
    with pytest.raises(LeakageError, match=r"test windows of fold 0 .* and fold 1 .* overlap"):
        check_integrity([a, b])
    with pytest.raises(LeakageError, match="overlap"):
        stitched_test_rows([a, b])
    with pytest.raises(LeakageError, match="out of order"):
        check_integrity([b, a])  # also overlapping, and in the wrong order


def test_a_leaking_label_is_caught():
    # Purged for 5-day labels, used with 21-day labels: the last samples leak.
    fold = Fold.from_rows(
        BDATES, index=3, train=(0, 99), valid=(100, 149), test=(150, 199), label_horizon=5
    )
    check_integrity([fold])  # fine for its own horizon
    with pytest.raises(LeakageError, match=r"fold 3: the last training sample 2010-05-13 \(row 94\)"
                       r" has a 21-day label ending at row 115, reaching into the next window "
                       r"starting 2010-05-21"):  # fmt: skip
        check_integrity([fold], label_horizon=21)
    with pytest.raises(LeakageError, match=r"label ending on 2010-06-11 \(row 115\)"):
        check_integrity([fold], label_horizon=21, dates=BDATES)
    # A hand-made fold whose training samples run to the window's end.
    hand_made = dataclasses.replace(fold, train_samples=seg(0, 99))
    with pytest.raises(LeakageError, match="fold 3: the last training sample"):
        check_integrity([hand_made])
    # Validation samples past the test start.
    hand_made = dataclasses.replace(fold, valid_samples=seg(100, 149))
    with pytest.raises(LeakageError, match="validation sample"):
        check_integrity([hand_made])


def test_a_missing_embargo_is_caught():
    fold = Fold.from_rows(
        BDATES, index=0, train=(0, 99), valid=None, test=(100, 149), label_horizon=5
    )
    with pytest.raises(LeakageError, match="fewer than the 5-day embargo"):
        check_integrity([dataclasses.replace(fold, embargo=5)])


def test_segments_must_match_the_dates():
    fold = Fold.from_rows(
        BDATES, index=0, train=(0, 99), valid=None, test=(100, 149), label_horizon=0
    )
    check_integrity([fold], dates=BDATES)
    with pytest.raises(LeakageError, match="does not match the dates"):
        check_integrity([fold], dates=BDATES[1:])
    with pytest.raises(LeakageError, match="ends past the last date"):
        check_integrity([fold], dates=BDATES[:120])


def test_segment_rules():
    with pytest.raises(ConfigError, match="0 <= start <= end"):
        Segment(5, 4, "2010-01-08", "2010-01-07")
    segment = seg(10, 40)
    assert len(segment) == 31 and segment.rows == range(10, 41)
    assert segment.last_sample(21, 5) == 14
    assert segment.last_sample(30, 5) < segment.start  # no sample fits


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train_months": 0}, "train_months must be an integer >= 1, got 0"),
        ({"valid_months": -1}, "valid_months must be an integer >= 0"),
        ({"test_months": 0}, "test_months must be an integer >= 1"),
        ({"step_months": 0}, "step_months must be an integer >= 1"),
        ({"step_months": 1}, r"test_months must be in \[1, step_months=1\], got 12"),
        ({"embargo_days": -2}, "embargo_days must be an integer >= 0"),
        ({"train_months": 1.5}, "train_months must be an integer"),
        ({"train_months": True}, "train_months must be an integer"),
        ({"expanding": "yes"}, "expanding must be true or false"),
        ({"min_test_days": 0}, "min_test_days must be an integer >= 1"),
        ({"start": "not a date"}, "start must be a date"),
        ({"start": "2030-01-01"}, "no date in start"),
    ],
)
def test_walk_forward_parameters_are_validated(params, message):
    with pytest.raises(ConfigError, match=message):
        WalkForwardSplit(**params).split(BDATES, label_horizon=21)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train": 0.0, "valid": 0.5, "test": 0.5}, r"train must be a fraction in \(0, 1\]"),
        ({"train": 0.8, "valid": 0.2, "test": 0.0}, r"test must be a fraction in \(0, 1\]"),
        ({"valid": -0.1}, r"valid must be a fraction in \[0, 1\]"),
        ({"train": 0.6, "valid": 0.2, "test": 0.3}, "must sum to 1 .* = 1.1"),
        ({"embargo_days": -1}, "embargo_days must be an integer >= 0"),
    ],
)
def test_fixed_parameters_are_validated(params, message):
    with pytest.raises(ConfigError, match=message):
        FixedSplit(**params).split(BDATES, label_horizon=21)


def test_fractions_summing_to_one_within_tolerance_are_accepted():
    (fold,) = FixedSplit(0.7, 0.1, 0.2).split(BDATES, label_horizon=0)  # 0.7+0.1+0.2 != 1.0
    assert fold.test.end == len(BDATES) - 1


def test_label_horizon_is_validated():
    with pytest.raises(ConfigError, match="label_horizon must be an integer >= 0"):
        WalkForwardSplit().split(BDATES, label_horizon=-1)


def test_bad_dates_are_refused():
    with pytest.raises(DataError, match="strictly increasing"):
        WalkForwardSplit().split(BDATES[::-1], label_horizon=21)
    with pytest.raises(DataError, match="non-empty"):
        WalkForwardSplit().split(BDATES[:0], label_horizon=21)


def test_data_too_short_names_the_months():
    dates = pd.bdate_range("2010-01-01", "2013-06-30").values  # 42 months
    with pytest.raises(ConfigError, match=r"needs train_months \+ valid_months = 48 months "
                       r"from 2010-01 .* \(60 months for a full test window\); available: "
                       r"42 months \(2010-01-01\.\.2013-06-28\)"):  # fmt: skip
        WalkForwardSplit().split(dates, label_horizon=21)
    with pytest.raises(ConfigError, match="leave a window empty"):
        FixedSplit().split(dates[:2], label_horizon=0)


def test_window_too_short_for_the_horizon():
    # one-month validation windows (~21 days) cannot hold a 21-day label plus embargo
    with pytest.raises(
        ConfigError, match=r"fold 0: the validation window .* too few for one sample"
    ):
        WalkForwardSplit(valid_months=1, embargo_days=5).split(BDATES, label_horizon=21)


# ----------------------------------------------------------------------------- property
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.integers(0, 400),
    spare_days=st.integers(-80, 1500),
    train=st.integers(1, 36),
    valid=st.integers(0, 12),
    step=st.integers(1, 12),
    test_share=st.floats(0, 1),
    expanding=st.booleans(),
    embargo=st.integers(0, 10),
    horizon=st.integers(0, 30),
    min_test=st.integers(1, 25),
)
def test_every_fold_is_purged_ordered_and_calendar_exact(
    first, spare_days, train, valid, step, test_share, expanding, embargo, horizon, min_test
):
    test = max(1, round(test_share * step))
    # about enough weekdays for the windows, give or take: most draws fit, some do not
    n_dates = max(20, (train + valid + test) * 22 + spare_days)
    start = pd.Timestamp("2001-01-01") + pd.Timedelta(days=first)
    dates = pd.bdate_range(start, periods=n_dates).values
    split = WalkForwardSplit(train, valid, test, step, expanding, embargo, min_test_days=min_test)
    try:
        folds = split.split(dates, label_horizon=horizon)
    except LeakageError:
        raise
    except ConfigError as error:
        assert "months" in str(error) or "too few for one sample" in str(error)
        return

    check_integrity(folds, horizon, dates=dates)
    months = dates.astype("datetime64[M]").astype(np.int64)
    m0 = months[0]
    for k, fold in enumerate(folds):
        assert fold.index == k
        nxt = [s for s in (fold.valid, fold.test) if s is not None]
        for segment, samples, following in (
            (fold.train, fold.train_samples, nxt[0]),
            (fold.valid, fold.valid_samples, fold.test),
        ):
            if segment is None:
                continue
            t = np.arange(samples.start, samples.end + 1)
            assert (t + horizon + embargo <= segment.end).all()
            assert (t + horizon < following.start).all()
            # nothing usable is thrown away
            assert samples.start == segment.start
            assert samples.end == segment.end - horizon - embargo

        # each segment is exactly the trading dates of its calendar months
        anchor = m0 + k * step
        expected = {
            "train": (m0 if expanding else anchor, anchor + train),
            "valid": (anchor + train, anchor + train + valid),
            "test": (anchor + train + valid, anchor + train + valid + test),
        }
        for name, (month_from, month_to) in expected.items():
            segment = getattr(fold, name)
            if name == "valid" and valid == 0:
                assert segment is None
                continue
            assert months[segment.start] >= month_from and months[segment.end] < month_to
            assert segment.start == 0 or months[segment.start - 1] < month_from
            assert segment.end == len(dates) - 1 or months[segment.end + 1] >= month_to

    rows = stitched_test_rows(folds)
    assert (np.diff(rows) > 0).all()
    if test == step:
        assert check_integrity(folds).continuous
        # the record reaches the end of the data, but for a short last stub
        assert len(dates) - 1 - folds[-1].test.end < min_test


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(2, 800),
    train=st.floats(0.05, 0.9),
    valid_share=st.floats(0, 1),
    embargo=st.integers(0, 10),
    horizon=st.integers(0, 30),
)
def test_fixed_split_covers_every_date_once_and_purges(
    n_dates, train, valid_share, embargo, horizon
):
    valid = (1 - train) * valid_share * 0.9  # leaves test > 0
    dates = BDATES[:n_dates]
    split = FixedSplit(train, valid, 1 - train - valid, embargo_days=embargo)
    try:
        (fold,) = split.split(dates, label_horizon=horizon)
    except LeakageError:
        raise
    except ConfigError as error:
        assert "leave a window empty" in str(error) or "too few for one sample" in str(error)
        return
    segments = [s for s in (fold.train, fold.valid, fold.test) if s is not None]
    covered = np.concatenate([np.arange(s.start, s.end + 1) for s in segments])
    np.testing.assert_array_equal(covered, np.arange(n_dates))
    assert abs(len(fold.train) - train * n_dates) <= 1
    for segment, samples in ((fold.train, fold.train_samples), (fold.valid, fold.valid_samples)):
        if segment is not None:
            assert samples.end + horizon + embargo == segment.end
    check_integrity([fold], horizon, dates=dates)
