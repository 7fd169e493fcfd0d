"""Every built-in feature, label and normalisation against an independent pandas reference.

The reference is written from the documented conventions only (the docstrings of
``alphaseq.features.technical``, ``inputs`` and ``labels``), per ticker, with plain
pandas (``rolling``, ``ewm``, ``shift``, ``rank``) on the panel's prices:

* inputs: the close from the ticker's first valid close on, forward-filled; a missing
  open/high/low is that day's close; a gap day's bar is the carried close (flat);
  volume forward-filled;
* features are computed on those series and reported while the last real close is at
  most ``MAX_FILL_DAYS`` (10) rows old, NaN before the first close and after that
  (causal: whether a ticker trades again is not known on the day it misses);
* labels need a real close at both t and t + h.

Nothing from ``alphaseq.features`` is used to build an expected value (only the
``MAX_FILL_DAYS`` constant is read, so that the reference follows it).

Data: the embedded ``sp500`` set (20 stocks, close only, 1990-2022) and two slices of
the real OHLCV panel ``../shared/data/us_stocks_600_2005_2017.parquet``:

* 40 tickers over 2006-2012: late starters (V, PM, CHTR, TSLA, PDCE, ...), gap days
  (PDCE misses 121 days in 2012, one run of 61; 2011-02-17 is missing for about
  half the tickers), zero volumes on IPO days and a zero low (WPM on 2006-02-22,
  turned into a missing low by the loader);
* 8 tickers over 2016-07..2017-11: LVLT stops on 2017-10-31, before the panel ends.

Tests on the shared file skip when it is absent, unless ALPHASEQ_REQUIRE_SHARED_DATA=1
(CI), where they fail.

Tolerances: features and labels are stored as float32 (relative rounding 6e-8); the
library and pandas differ by float64 rounding only (two-pass vs. online rolling
moments, ``lfilter`` vs. pandas' EWM loop, cumulative-sum vs. Kahan rolling means).
Measured, the largest relative difference is 6e-8 (one float32 rounding) for every
feature and label. ``RTOL = 2e-6`` and ``ATOL = 1e-6`` leave ample room for that and
still catch any convention slip (a ddof, an ``adjust=True``, a one-day shift, a wrong
min_periods). The robust z-score is computed in float32 inside the library, hence
``ZSCORE_ATOL``. NaN positions must match exactly.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaseq import ConfigError, DataError, Panel, load_panel
from alphaseq.features import (
    FEATURE_FAMILIES,
    FeatureInputs,
    FeatureScaler,
    compute_features,
    cross_sectional_rank,
    cross_sectional_robust_zscore,
    make_labels,
    register_feature,
)
from alphaseq.features.inputs import MAX_FILL_DAYS

RTOL = 2e-6
ATOL = 1e-6
#: The robust z-score is computed in float32 (median, MAD and ``x - median``); with
#: |x| up to 100 (RSI) and MAD near 10 that costs a few 1e-6 absolute on z in [-3, 3].
ZSCORE_ATOL = 2e-5
ANNUAL = math.sqrt(252.0)
MAD_SCALE = 1.4826

# ----------------------------------------------------------------------------- data

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
US600_FILE = "us_stocks_600_2005_2017.parquet"
REQUIRE_SHARED_ENV = "ALPHASEQ_REQUIRE_SHARED_DATA"

#: 40 tickers of the 2006-2012 slice: long-lived large caps, late starters, gappy ones.
SLICE_2006_2012 = (
    "AAPL",
    "AGNC",  # starts 2008-05-14 with a zero-volume flat bar
    "AMZN",
    "AVGO",  # starts 2009-08-05
    "BAC",
    "BUD",  # starts 2009-07-01
    "C",  # zero volumes on 2009-12-17/18
    "CHTR",  # starts 2009-12-02, 25 gap days
    "CIT",
    "CPN",  # starts 2008-01-10
    "CSCO",
    "CVX",
    "DG",
    "DPS",
    "DUK",
    "EBAY",
    "ED",
    "F",
    "GE",
    "GIS",
    "GOOGL",
    "HD",
    "IBM",
    "INTC",
    "JPM",
    "KO",
    "LYB",
    "MMM",
    "MO",
    "MSFT",
    "NXPI",
    "PDCE",  # starts 2011-12-30, 121 gap days in 2012 (runs of 17, 19, 21 and 61)
    "PFE",
    "PM",  # starts 2008-03-17
    "T",
    "TSLA",  # starts 2010-06-28
    "V",  # starts 2008-03-18
    "WMT",
    "WPM",  # low of 0 on 2006-02-22: a missing low, taken as that day's close
    "XOM",
)
#: 8 tickers of the 2016-2017 slice; LVLT's life ends 2017-10-31, 8 rows before the panel's.
SLICE_2016_2017 = ("AAPL", "CHTR", "F", "GE", "LVLT", "PDCE", "TSLA", "XOM")


def require_shared(name: str) -> Path:
    """Path of a file in ../shared/data; skip when absent, fail instead in CI."""
    path = SHARED_DATA / name
    if not path.exists():
        reason = f"reference panel {path} is absent (../shared/data beside the repository)"
        if os.environ.get(REQUIRE_SHARED_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_SHARED_ENV}=1 requires it")
        pytest.skip(reason)
    return path


# ------------------------------------------------------------------------ reference


@dataclass
class Life:
    """One ticker's prices from its first close to the panel's end, as the conventions say."""

    raw_close: pd.Series  # the panel's close, NaN on gap days
    close: pd.Series  # forward-filled close
    traded: pd.Series  # True where the panel has a real close
    reported: pd.Series  # True while the last real close is at most MAX_FILL_DAYS rows old
    open: pd.Series | None = None
    high: pd.Series | None = None
    low: pd.Series | None = None
    volume: pd.Series | None = None


def _life(panel: Panel, i: int) -> Life | None:
    index = pd.DatetimeIndex(panel.dates)
    raw_close = pd.Series(panel.close[:, i].astype(np.float64), index=index)
    if raw_close.notna().sum() == 0:
        return None
    first = raw_close.first_valid_index()
    raw_close = raw_close.loc[first:]
    traded = raw_close.notna()
    row = pd.Series(np.arange(len(raw_close), dtype=np.float64), index=raw_close.index)
    rows_since_close = row - row.where(traded).ffill()
    life = Life(
        raw_close=raw_close,
        close=raw_close.ffill(),
        traded=traded,
        reported=rows_since_close <= MAX_FILL_DAYS,
    )
    for key in ("open", "high", "low"):
        if key in panel.fields:
            raw = pd.Series(panel.fields[key][:, i].astype(np.float64), index=index)
            bar = raw.loc[first:].fillna(raw_close)  # missing -> that day's close
            setattr(life, key, bar.where(traded, life.close))  # gap day -> carried close
    if "volume" in panel.fields:
        raw = pd.Series(panel.fields["volume"][:, i].astype(np.float64), index=index)
        life.volume = raw.loc[first:].ffill()
    return life


def _wilder(x: pd.Series, window: int) -> pd.Series:
    return x.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean()


def _ema(x: pd.Series, span: int) -> pd.Series:
    return x.ewm(span=span, adjust=False, min_periods=span).mean()


def _worst_drawdown(prices: np.ndarray) -> float:
    return float((prices / np.maximum.accumulate(prices) - 1.0).min())


def reference_feature(family: str, window: int | None, s: Life) -> pd.Series:
    """The feature of one ticker over its life, from the documented conventions."""
    c = s.close
    if family == "ret":
        return np.log(c / c.shift(window))
    if family == "vol":
        return np.log(c / c.shift(1)).rolling(window).std(ddof=1) * ANNUAL
    if family == "volume_z":
        lv = np.log1p(s.volume)
        sd = lv.rolling(window).std(ddof=1)
        z = (lv - lv.rolling(window).mean()) / sd
        return z.mask(sd == 0, 0.0)
    if family == "log_dollar_volume":
        return np.log1p((c * s.volume).rolling(window).mean())
    if family == "hl_range":
        return np.log(s.high / s.low)
    if family == "co_return":
        return np.log(c / s.open)
    if family == "gap":
        return np.log(s.open / c.shift(1))
    if family == "rsi":
        delta = c.diff()
        gain = _wilder(delta.clip(lower=0.0), window)
        loss = _wilder((-delta).clip(lower=0.0), window)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 100.0 - 100.0 / (1.0 + gain / loss)
        return value.mask((gain + loss) == 0, 50.0)
    if family in ("macd", "macd_hist"):
        line = _ema(c, 12) - _ema(c, 26)
        if family == "macd":
            return line / c
        return (line - _ema(line, 9)) / c
    if family == "bollinger":
        mean = c.rolling(window).mean()
        sd = c.rolling(window).std(ddof=0)
        lower, upper = mean - 2 * sd, mean + 2 * sd
        return ((c - lower) / (upper - lower)).mask(sd == 0, 0.5)
    if family == "ma_dist":
        return c / c.rolling(window).mean() - 1.0
    if family == "atr":
        prev = c.shift(1)
        ranges = pd.concat([s.high - s.low, (s.high - prev).abs(), (s.low - prev).abs()], axis=1)
        true_range = ranges.max(axis=1)  # skips the NaN previous close of the first day
        return _wilder(true_range, window) / c
    if family == "max_drawdown":
        return c.rolling(window).apply(_worst_drawdown, raw=True)
    raise AssertionError(f"no reference for {family}")


def reference_label(kind: str, h: int, s: Life, *, band: float, vol_window: int) -> pd.Series:
    """The label of one ticker; NaN unless it has a real close at both t and t + h."""
    c = s.close
    ratio = s.raw_close.shift(-h) / s.raw_close
    if kind == "forward_return":
        value = ratio - 1.0
    elif kind == "trend":
        sigma = np.log(c / c.shift(1)).rolling(vol_window).std(ddof=1)
        value = np.tanh(np.log(ratio) / (sigma * math.sqrt(h))).where(sigma > 0)
    elif kind == "direction":
        value = (ratio > 1.0).astype(float).where(ratio.notna())
    elif kind == "three_class":
        r = ratio - 1.0
        value = pd.Series(np.select([r > band, r < -band], [2.0, 0.0], 1.0), index=c.index)
        value = value.where(r.notna())
    else:
        raise AssertionError(kind)
    return value.where(ratio.notna())


@dataclass
class Case:
    """A panel, its per-ticker lives and the library's features, computed once."""

    name: str
    panel: Panel
    features: tuple[str, ...]
    lives: list[Life | None] = field(init=False)
    _computed: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.lives = [_life(self.panel, i) for i in range(self.panel.n_tickers)]

    def assemble(self, per_ticker) -> np.ndarray:
        """(T, N) float64 from ``per_ticker(life) -> Series`` over each life, NaN before."""
        index = pd.DatetimeIndex(self.panel.dates)
        out = np.full(self.panel.shape, np.nan)
        for i, life in enumerate(self.lives):
            if life is not None:
                out[:, i] = per_ticker(life).reindex(index).to_numpy(np.float64)
        return out

    def expected(self, name: str) -> np.ndarray:
        family, _, window = name.rpartition("_")
        if not window.isdigit():
            family, window = name, None
        window = None if window is None else int(window)
        return self.assemble(lambda s: reference_feature(family, window, s).where(s.reported))

    def reported(self) -> np.ndarray:
        """(T, N) bool: where features are reported."""
        return self.assemble(lambda s: s.reported.astype(float)) == 1.0

    def actual(self, cross_section: str | None = None):
        if cross_section not in self._computed:
            self._computed[cross_section] = compute_features(
                self.panel, self.features, cross_section=cross_section
            )
        return self._computed[cross_section]

    def column(self, name: str, cross_section: str | None = None) -> np.ndarray:
        fs = self.actual(cross_section)
        return fs.values[:, :, fs.names.index(name)]


CLOSE_FEATURES = (
    "ret_1",
    "ret_5",
    "ret_21",
    "ret_252",
    "vol_21",
    "vol_63",
    "rsi_14",
    "rsi_5",
    "macd",
    "macd_hist",
    "bollinger_20",
    "bollinger_5",
    "ma_dist_20",
    "ma_dist_200",
    "max_drawdown_21",
    "max_drawdown_63",
)
OHLCV_FEATURES = (
    "volume_z_21",
    "volume_z_5",
    "log_dollar_volume_21",
    "log_dollar_volume_5",
    "hl_range",
    "co_return",
    "gap",
    "atr_14",
    "atr_5",
)
ALL_BUILT_IN = (
    "ret",
    "vol",
    "volume_z",
    "log_dollar_volume",
    "hl_range",
    "co_return",
    "gap",
    "rsi",
    "macd",
    "macd_hist",
    "bollinger",
    "ma_dist",
    "atr",
    "max_drawdown",
)
SHARED = pytest.mark.shared_data
US600_2006_2012 = pytest.param("us600_2006_2012", marks=SHARED)
US600_2016_2017 = pytest.param("us600_2016_2017", marks=SHARED)
CASES = ("sp500", US600_2006_2012, US600_2016_2017)
OHLCV_CASES = (US600_2006_2012, US600_2016_2017)
_CASES: dict[str, Case] = {}


@pytest.fixture(scope="module")
def us600() -> Panel:
    return load_panel(require_shared(US600_FILE))


@pytest.fixture(scope="module")
def sp500() -> Panel:
    return load_panel("sp500")


@pytest.fixture
def case(request) -> Case:
    """A :class:`Case` by name (indirect parameter), built once per module."""
    name = request.param
    if name not in _CASES:
        if name == "sp500":
            _CASES[name] = Case(name, request.getfixturevalue("sp500"), CLOSE_FEATURES)
        else:
            full = request.getfixturevalue("us600")
            if name == "us600_2006_2012":
                panel = full.select_tickers(list(SLICE_2006_2012)).slice_dates(
                    "2006-01-01", "2012-12-31"
                )
            else:
                panel = full.select_tickers(list(SLICE_2016_2017)).slice_dates("2016-07-01")
            _CASES[name] = Case(name, panel, CLOSE_FEATURES + OHLCV_FEATURES)
    return _CASES[name]


def assert_matches(actual: np.ndarray, expected: np.ndarray, what: str, **tolerance) -> None:
    """Same NaN positions and values within the float32 tolerances."""
    nan_actual, nan_expected = np.isnan(actual), np.isnan(expected)
    if (nan_actual != nan_expected).any():
        t, i = np.argwhere(nan_actual != nan_expected)[0]
        raise AssertionError(
            f"{what}: NaN pattern differs at {(nan_actual != nan_expected).sum()} cells, "
            f"first at row {t}, column {i}: actual {actual[t, i]}, expected {expected[t, i]}"
        )
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=tolerance.get("rtol", RTOL),
        atol=tolerance.get("atol", ATOL),
        equal_nan=True,
        err_msg=what,
    )


# ------------------------------------------------------------------------- features


def test_every_built_in_family_is_covered():
    covered = {n.rpartition("_")[0] if n[-1].isdigit() else n for n in CLOSE_FEATURES}
    covered |= {n.rpartition("_")[0] if n[-1].isdigit() else n for n in OHLCV_FEATURES}
    assert covered == set(ALL_BUILT_IN)
    assert set(ALL_BUILT_IN) <= set(FEATURE_FAMILIES)


@pytest.mark.parametrize("name", CLOSE_FEATURES)
@pytest.mark.parametrize("case", CASES, indirect=True)
def test_close_feature_matches_pandas(case, name):
    actual = case.column(name)
    assert actual.dtype == np.float32
    expected = case.expected(name)
    assert np.isfinite(expected).any()
    assert_matches(actual.astype(np.float64), expected, f"{name} on {case.name}")


@pytest.mark.parametrize("name", OHLCV_FEATURES)
@pytest.mark.parametrize("case", OHLCV_CASES, indirect=True)
def test_ohlcv_feature_matches_pandas(case, name):
    actual = case.column(name).astype(np.float64)
    expected = case.expected(name)
    assert np.isfinite(expected).any()
    assert_matches(actual, expected, f"{name} on {case.name}")


@pytest.mark.parametrize("case", ["sp500"], indirect=True)
def test_warmup_rows_on_sp500(case):
    """Every sp500 ticker starts on the first date: the first defined row is the warm-up."""
    assert (case.panel.mask[0]).all()
    warmup = case.actual().warmup()
    assert {k: warmup[k] for k in CLOSE_FEATURES} == {
        "ret_1": 1,
        "ret_5": 5,
        "ret_21": 21,
        "ret_252": 252,
        "vol_21": 21,  # 21 returns need 22 closes
        "vol_63": 63,
        "rsi_14": 14,  # first delta on row 1, 14 of them by row 14
        "rsi_5": 5,
        "macd": 25,  # EMA26 with min_periods=26
        "macd_hist": 33,  # 9 MACD values from row 25
        "bollinger_20": 19,
        "bollinger_5": 4,
        "ma_dist_20": 19,
        "ma_dist_200": 199,
        "max_drawdown_21": 20,
        "max_drawdown_63": 62,
    }
    values = case.actual().values
    for name, row in warmup.items():
        column = values[:, :, case.actual().names.index(name)]
        assert np.isnan(column[:row]).all(), name
        assert np.isfinite(column[row]).all(), name  # every ticker at once


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["us600_2006_2012"], indirect=True)
def test_warmup_rows_follow_a_late_start(case):
    """For late starters, the warm-up counts from the ticker's own first day."""
    panel = case.panel
    first, _ = panel.lifetime()
    reported = case.reported()
    offsets = {
        "ret_21": 21,
        "vol_21": 21,
        "rsi_14": 14,
        "macd": 25,
        "macd_hist": 33,
        "bollinger_20": 19,
        "ma_dist_200": 199,
        "max_drawdown_21": 20,
        "volume_z_21": 20,
        "log_dollar_volume_21": 20,
        "hl_range": 0,
        "co_return": 0,
        "gap": 1,
        "atr_14": 13,
    }
    late = [t for t in ("V", "PM", "CHTR", "TSLA", "PDCE") if t in panel.tickers]
    assert len(late) == 5
    for ticker in late:
        i = panel.tickers.tolist().index(ticker)
        assert first[i] > 0, ticker
        for name, offset in offsets.items():
            column = case.column(name)[:, i]
            defined = np.flatnonzero(np.isfinite(column))
            # PDCE misses days early on: the first value is then on the first reported row.
            due = first[i] + offset + int(np.argmax(reported[first[i] + offset :, i]))
            assert defined[0] == due, (ticker, name)


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["us600_2006_2012"], indirect=True)
def test_gap_days_and_missing_bars(case):
    """Gap days are flat bars of the carried close, reported for MAX_FILL_DAYS days."""
    panel = case.panel
    tickers = panel.tickers.tolist()
    dates = pd.DatetimeIndex(panel.dates)
    # WPM's low of 0 on 2006-02-22 is a missing low: low = close = high that day.
    t, i = dates.get_loc(pd.Timestamp("2006-02-22")), tickers.index("WPM")
    assert np.isnan(panel.fields["low"][t, i]) and panel.mask[t, i]
    assert panel.fields["high"][t, i] == panel.close[t, i]
    assert case.column("hl_range")[t, i] == 0.0
    # PDCE's reported gap days: no move at all.
    i = tickers.index("PDCE")
    traded = panel.mask[:, i]
    gaps = np.logical_or.accumulate(traded) & ~traded
    reported_gaps = gaps & case.reported()[:, i]
    assert reported_gaps.sum() > 30
    for name in ("ret_1", "hl_range", "co_return", "gap"):
        assert (case.column(name)[reported_gaps, i] == 0.0).all(), name
    # Its longest run of gap days (61): reported for the first MAX_FILL_DAYS days, NaN
    # after that, and defined again on the day it trades again, with a return that
    # covers the whole run.
    run_start = max(
        (r for r in np.flatnonzero(gaps) if not gaps[r - 1]),
        key=lambda r: np.argmax(~gaps[r:]),
    )
    run_end = run_start + int(np.argmax(~gaps[run_start:]))  # first traded row after it
    assert run_end - run_start == 61
    values = case.actual().values[:, i, :]
    ret_1 = case.column("ret_1")[:, i]
    assert (ret_1[run_start : run_start + MAX_FILL_DAYS] == 0.0).all()
    assert np.isnan(values[run_start + MAX_FILL_DAYS : run_end]).all()
    expected = np.log(
        np.float64(panel.close[run_end, i]) / np.float64(panel.close[run_start - 1, i])
    )
    np.testing.assert_allclose(ret_1[run_end], expected, rtol=RTOL)


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["us600_2016_2017"], indirect=True)
def test_a_ticker_that_stops(case):
    """LVLT's last close is 8 rows before the panel ends: features carry, labels stop."""
    panel = case.panel
    i = panel.tickers.tolist().index("LVLT")
    last = int(np.flatnonzero(panel.mask[:, i])[-1])
    assert panel.n_dates - 1 - last == 8 < MAX_FILL_DAYS
    values = case.actual().values
    assert np.isfinite(values[last:, i, :]).all()
    assert (case.column("ret_1")[last + 1 :, i] == 0.0).all()
    labels = make_labels(panel, "forward_return", (1, 5)).values
    assert np.isnan(labels[last - 4 :, i, 1]).all()  # the last close is not invented
    assert np.isfinite(labels[last - 5, i, 1])
    assert np.isnan(labels[last:, i, 0]).all()
    assert np.isfinite(labels[last - 1, i, 0])


@pytest.mark.parametrize("case", ["sp500"], indirect=True)
def test_flat_windows_are_exactly_flat(case):
    """RRC's close is 3.322 for its first rows of 1990: the 'flat' branches must fire.

    Regression: the two-pass rolling std of identical values used to give rounding
    noise such as 1.8e-15 instead of 0, turning flat windows into arbitrary z-scores.
    """
    i = case.panel.tickers.tolist().index("RRC")
    close = case.panel.close[:, i]
    flat_rows = int(np.argmax(close != close[0]))  # rows 0..flat_rows-1 are flat
    assert flat_rows >= 23
    assert (case.column("bollinger_20")[19:flat_rows, i] == 0.5).all()
    assert (case.column("vol_21")[21:flat_rows, i] == 0.0).all()
    assert (case.column("rsi_14")[14:flat_rows, i] == 50.0).all()
    assert (case.column("max_drawdown_21")[20:flat_rows, i] == 0.0).all()
    # The same close with a volume held at PDCE's 191613 shares (carried over its gap
    # days in 2012, where the noise was first seen): the volume z-score is exactly 0.
    rows = 40
    panel = Panel(
        dates=case.panel.dates[:rows],
        tickers=["RRC"],
        fields={
            "close": close[:rows, None],
            "volume": np.full((rows, 1), 191613.0, dtype=np.float32),
        },
    )
    fs = compute_features(panel, ["volume_z_21", "volume_z_5", "log_dollar_volume_5"])
    np.testing.assert_array_equal(fs.values[20:, 0, 0], 0.0)
    np.testing.assert_array_equal(fs.values[4:, 0, 1], 0.0)
    assert np.isnan(fs.values[:20, 0, 0]).all()


@pytest.mark.shared_data
def test_slice_holds_the_files_prices(us600):
    """The reference starts from the file's own prices (the loader only turns 0 into NaN)."""
    raw = pd.read_parquet(require_shared(US600_FILE))
    raw = raw[raw["ticker"].isin(SLICE_2006_2012) & raw["date"].between("2006", "2012-12-31")]
    panel = us600.select_tickers(list(SLICE_2006_2012)).slice_dates("2006-01-01", "2012-12-31")
    index = pd.DatetimeIndex(panel.dates)
    for key in ("open", "high", "low", "close", "volume"):
        wide = raw.pivot(index="date", columns="ticker", values=key)
        wide = wide.reindex(index=index, columns=list(SLICE_2006_2012)).to_numpy()
        if key != "volume":
            wide = np.where(wide > 0, wide, np.nan)
        np.testing.assert_array_equal(panel.fields[key], wide.astype(np.float32), err_msg=key)


# --------------------------------------------------------------------------- labels

LABEL_BAND = 0.01


@pytest.mark.parametrize("kind", ["forward_return", "trend", "direction", "three_class"])
@pytest.mark.parametrize("case", CASES, indirect=True)
def test_labels_match_pandas(case, kind):
    horizons = (1, 5, 21)
    labels = make_labels(case.panel, kind, horizons, flat_band=LABEL_BAND, vol_window=63)
    assert labels.names == tuple(f"{kind}_{h}" for h in horizons)
    assert labels.horizon == 21
    assert labels.values.dtype == np.float32
    for k, h in enumerate(horizons):
        expected = case.assemble(
            lambda s, h=h: reference_label(kind, h, s, band=LABEL_BAND, vol_window=63)
        )
        actual = labels.values[:, :, k].astype(np.float64)
        if kind == "three_class":
            # A return within 1e-9 of the band edge may round to either side.
            r = case.assemble(lambda s, h=h: s.raw_close.shift(-h) / s.raw_close - 1.0)
            edge = np.abs(np.abs(r) - LABEL_BAND) < 1e-9
            assert edge.sum() <= 2
            actual, expected = np.where(edge, 1.0, actual), np.where(edge, 1.0, expected)
        assert_matches(actual, expected, f"{kind}_{h} on {case.name}")
        assert np.isnan(actual[-h:]).all()  # the last h dates cannot know their label
        assert np.isfinite(actual).any()
    if kind == "three_class":
        assert set(np.unique(labels.values[np.isfinite(labels.values)])) == {0.0, 1.0, 2.0}


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["us600_2006_2012"], indirect=True)
def test_labels_are_nan_on_gap_days(case):
    """A label needs a real close at t and at t + h: a carried close is never an end price."""
    panel = case.panel
    labels = make_labels(panel, "forward_return", (1, 5)).values
    gaps = np.logical_or.accumulate(panel.mask, axis=0) & ~panel.mask
    assert gaps.sum() > 100
    for k, h in enumerate((1, 5)):
        assert np.isnan(labels[:, :, k][gaps]).all()
        assert np.isnan(labels[:-h, :, k][gaps[h:]]).all()


@pytest.mark.parametrize("case", ["sp500"], indirect=True)
def test_trend_vol_window(case):
    labels = make_labels(case.panel, "trend", (10,), vol_window=21).values[:, :, 0]
    expected = case.assemble(
        lambda s: reference_label("trend", 10, s, band=LABEL_BAND, vol_window=21)
    )
    assert_matches(labels.astype(np.float64), expected, "trend_10, vol_window=21")
    assert np.isnan(labels[:21]).all()
    # Row 21 is the first with 21 returns; one 1990 price is flat for a month there
    # (sigma = 0 exactly), so its score stays NaN as in the reference.
    assert np.isfinite(labels[21]).sum() == case.panel.n_tickers - 1


# -------------------------------------------------------------- cross-sectional / scaler

CROSS_FEATURES = ("ret_1", "ret_21", "vol_21", "rsi_14", "ma_dist_200", "macd_hist")


def reference_rank(x: np.ndarray) -> np.ndarray:
    ranked = pd.DataFrame(x.astype(np.float64)).rank(axis=1, pct=True, method="average")
    return ((ranked - 0.5) * math.sqrt(12.0)).to_numpy()


def reference_robust_zscore(x: np.ndarray, clip: float = 3.0) -> np.ndarray:
    frame = pd.DataFrame(x.astype(np.float64))
    median = frame.median(axis=1)
    mad = frame.sub(median, axis=0).abs().median(axis=1) * MAD_SCALE
    z = frame.sub(median, axis=0).div(mad.where(mad > 0), axis=0).clip(-clip, clip)
    flat = np.broadcast_to((mad == 0).to_numpy()[:, None], frame.shape)
    z = z.mask(flat, 0.0)  # a date without spread: every value is 0
    return z.where(frame.notna()).to_numpy()


@pytest.mark.parametrize("case", ["sp500", US600_2006_2012], indirect=True)
def test_cross_sectional_rank_matches_pandas(case):
    raw = case.actual()
    ranked = case.actual("rank")
    assert ranked.names == raw.names
    assert ranked.values.dtype == np.float32
    for name in CROSS_FEATURES:
        x = case.column(name)
        expected = reference_rank(x)
        assert_matches(case.column(name, "rank").astype(np.float64), expected, name)
        assert_matches(cross_sectional_rank(x).astype(np.float64), expected, name)
    # Average ranks for ties: on 2011-02-17 about half of the us600 tickers have a gap
    # day (ret_1 = 0 exactly); pandas' tie handling is the reference.
    x = case.column("ret_1")
    ties = [(x[t] == 0).sum() for t in range(len(x))]
    assert max(ties) >= 2
    # (T, N, F) in one call equals F separate (T, N) calls.
    stacked = cross_sectional_rank(raw.values)
    for k in range(raw.n_features):
        np.testing.assert_array_equal(stacked[:, :, k], cross_sectional_rank(raw.values[:, :, k]))


@pytest.mark.parametrize("case", ["sp500", US600_2006_2012], indirect=True)
def test_cross_sectional_robust_zscore_matches_pandas(case):
    robust = case.actual("robust_zscore")
    assert robust.values.dtype == np.float32
    for name in CROSS_FEATURES:
        x = case.column(name)
        expected = reference_robust_zscore(x)
        assert np.nanmax(np.abs(expected)) == 3.0  # real data reaches the clip
        actual = case.column(name, "robust_zscore").astype(np.float64)
        assert_matches(actual, expected, name, atol=ZSCORE_ATOL)
        actual = cross_sectional_robust_zscore(x, clip=5.0).astype(np.float64)
        expected = reference_robust_zscore(x, clip=5.0)
        assert_matches(actual, expected, f"{name}, clip 5", atol=ZSCORE_ATOL)


def test_cross_sectional_edge_cases():
    x = np.array(
        [
            [np.nan, np.nan, np.nan, np.nan],  # nothing defined
            [1.0, np.nan, np.nan, np.nan],  # a single ticker
            [2.0, 2.0, 2.0, 5.0],  # MAD 0
            [1.0, 2.0, 2.0, np.nan],  # a tie
        ],
        dtype=np.float32,
    )
    assert_matches(cross_sectional_rank(x).astype(np.float64), reference_rank(x), "rank")
    assert_matches(
        cross_sectional_robust_zscore(x).astype(np.float64), reference_robust_zscore(x), "z"
    )
    np.testing.assert_array_equal(cross_sectional_robust_zscore(x)[2], [0, 0, 0, 0])


@pytest.mark.parametrize("case", ["sp500"], indirect=True)
def test_unknown_cross_section_is_a_config_error(case):
    with pytest.raises(ConfigError, match="zscore_typo"):
        compute_features(case.panel, ["ret_1"], cross_section="zscore_typo")


def reference_scaler_stats(block: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.DataFrame(block.reshape(-1, block.shape[-1]).astype(np.float64))
    if method == "robust":
        center = frame.median()
        scale = frame.sub(center).abs().median() * MAD_SCALE
    else:
        center = frame.mean()
        scale = frame.std(ddof=0)
    return center.to_numpy(), scale.where(scale > 0, 1.0).to_numpy()


@pytest.mark.parametrize("method", ["robust", "standard"])
@pytest.mark.parametrize("case", ["sp500", US600_2006_2012], indirect=True)
def test_feature_scaler_matches_pandas(case, method):
    values = case.actual().values
    rows = slice(300, 1200)
    scaler = FeatureScaler(method=method, clip=3.0).fit(values, rows)
    center, scale = reference_scaler_stats(values[rows], method)
    np.testing.assert_allclose(scaler.center_, center, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scaler.scale_, scale, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(
        scaler.n_samples_, np.isfinite(values[rows]).reshape(-1, values.shape[-1]).sum(axis=0)
    )
    out = scaler.transform(values)
    assert out.dtype == np.float32
    expected = np.clip((values.astype(np.float64) - center) / scale, -3.0, 3.0)
    np.testing.assert_allclose(out, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    # An index array of rows is the same as the slice.
    again = FeatureScaler(method=method).fit(values, np.arange(300, 1200))
    np.testing.assert_array_equal(again.center_, scaler.center_)
    # The state round-trips.
    restored = FeatureScaler.from_state_dict(scaler.state_dict())
    np.testing.assert_array_equal(restored.transform(values), out)


@pytest.mark.parametrize("method", ["robust", "standard"])
@pytest.mark.parametrize("case", ["sp500", US600_2006_2012], indirect=True)
def test_feature_scaler_sees_only_its_rows(case, method):
    values = case.actual().values
    rows = slice(300, 1200)
    before = FeatureScaler(method=method).fit(values, rows)
    changed = values.copy()
    changed[:300] = changed[:300] * 1000.0 + 7.0
    changed[1200:] = np.nan
    changed[1200:1250] = np.inf
    after = FeatureScaler(method=method).fit(changed, rows)
    np.testing.assert_array_equal(after.center_, before.center_)
    np.testing.assert_array_equal(after.scale_, before.scale_)
    np.testing.assert_array_equal(after.n_samples_, before.n_samples_)
    # ... while a change inside the rows does move them.
    inside = values.copy()
    inside[600] = inside[600] * 1000.0
    moved = FeatureScaler(method=method).fit(inside, rows)
    assert not np.array_equal(moved.center_, before.center_) or not np.array_equal(
        moved.scale_, before.scale_
    )


# ---------------------------------------------------------------- registry and errors


@pytest.fixture
def clean_registry():
    """Remove every family a test registers, whatever happens in the test."""
    before = set(FEATURE_FAMILIES)
    yield
    for name in set(FEATURE_FAMILIES) - before:
        del FEATURE_FAMILIES[name]


def _up_fraction(x: FeatureInputs, window: int | None) -> np.ndarray:
    """Share of up days among the last ``window`` (a user feature)."""
    delta = np.diff(x.close, axis=0, prepend=np.nan)
    up = np.where(np.isnan(delta), np.nan, (delta > 0).astype(np.float64))
    return pd.DataFrame(up).rolling(window).mean().to_numpy()


@pytest.mark.parametrize("case", CASES, indirect=True)
def test_user_registered_feature(case, clean_registry):
    register_feature("up_fraction", _up_fraction, default_window=10, description="share up")
    register_feature("everywhere_one", lambda x, w: np.ones(x.close.shape))
    fs = compute_features(case.panel, ["ret_1", "up_fraction", "up_fraction_3", "everywhere_one"])
    assert fs.names == ("ret_1", "up_fraction_10", "up_fraction_3", "everywhere_one")
    for name, window in (("up_fraction_10", 10), ("up_fraction_3", 3)):
        expected = case.assemble(
            lambda s, w=window: (
                (s.close.diff() > 0).astype(float).iloc[1:].rolling(w).mean().where(s.reported)
            )
        )
        actual = fs.values[:, :, fs.names.index(name)].astype(np.float64)
        assert_matches(actual, expected, name)
    # compute_features blanks what a user function returns where nothing is reported.
    ones = fs.values[:, :, 3]
    np.testing.assert_array_equal(np.isfinite(ones), case.reported())
    np.testing.assert_array_equal(ones[case.reported()], 1.0)


def test_registry_rejects_bad_families(sp500, clean_registry):
    with pytest.raises(ConfigError, match="already exists"):
        register_feature("rsi", _up_fraction, default_window=5)
    with pytest.raises(ConfigError, match="up_5"):
        register_feature("up_5", _up_fraction)
    register_feature("short_output", lambda x, w: x.close[:-1])
    with pytest.raises(DataError, match="short_output"):
        compute_features(sp500, ["short_output"])


@pytest.mark.parametrize("name", ["foo", "ret_x", "rsi14", "bollinger_band_20", "not_a_feature_5"])
def test_unknown_feature_is_a_config_error(sp500, name):
    with pytest.raises(ConfigError, match=f"unknown feature '{name}'"):
        compute_features(sp500, ["ret_1", name])


def test_feature_name_errors(sp500):
    with pytest.raises(ConfigError, match="takes no window"):
        compute_features(sp500, ["macd_12"])
    with pytest.raises(ConfigError, match="listed twice"):
        compute_features(sp500, ["rsi", "rsi_14"])
    with pytest.raises(ConfigError, match="at least 1"):
        compute_features(sp500, ["ret_0"])
    with pytest.raises(ConfigError, match="empty"):
        compute_features(sp500, [])


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("atr_14", ["high", "low"]),
        ("hl_range", ["high", "low"]),
        ("co_return", ["open"]),
        ("gap", ["open"]),
        ("volume_z_21", ["volume"]),
        ("log_dollar_volume", ["volume"]),
    ],
)
def test_ohlc_feature_on_close_only_panel_is_a_data_error(sp500, name, missing):
    assert list(sp500.fields) == ["close"]
    with pytest.raises(DataError) as error:
        compute_features(sp500, ["ret_1", name])
    message = str(error.value)
    assert repr(missing) in message
    assert "sp500" in message


def test_default_features_on_close_only_panel(sp500):
    fs = compute_features(sp500)
    assert not {"hl_range", "co_return", "gap", "atr_14", "volume_z_21"} & set(fs.names)
    assert {"ret_1", "rsi_14", "macd", "max_drawdown_21"} <= set(fs.names)
    assert fs.values.shape == (*sp500.shape, len(fs.names))
