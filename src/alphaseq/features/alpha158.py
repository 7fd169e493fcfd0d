"""Alpha158-style price-volume factors: candle shapes and rolling-window statistics.

The factor set follows Qlib's Alpha158 handler (``qlib.contrib.data.handler.Alpha158``;
the formulas are listed in Qlib's documentation and in the feature config of
``qlib/contrib/data/loader.py``, class ``Alpha158DL``), written here from those formulas
for dense (T, N) panels. Each family is registered in
:mod:`alphaseq.features.registry` under Alpha158's name in lower case (``KMID`` is
``kmid``, ``ROC20`` is ``roc_20``) and belongs to one group; groups are selected as a
whole by name (see :data:`GROUPS`):

* ``alpha158_kbar`` — the day's candle, needs open, high and low (9 features);
* ``alpha158_close`` — rolling statistics of the close (15 families);
* ``alpha158_range`` — rolling statistics of high and low (6 families);
* ``alpha158_volume`` — rolling statistics of volume, alone and with the close
  (8 families);
* ``alpha158_rolling`` — the three rolling groups; ``alpha158`` — everything.

Rolling families are computed for :data:`WINDOWS` (5, 10, 20, 30, 60 days) in the
groups, and for any window by name (``std_120``).

Conventions (so that a pandas user can reproduce every number):

* inputs are :class:`~alphaseq.features.inputs.FeatureInputs`: forward-filled close
  and volume, flat bars on gap days; a value needs a full window (NaN during the
  warm-up: ``w`` rows, or ``w + 1`` for statistics of daily changes);
* standard deviations are sample ones (``ddof=1``), as pandas' ``rolling().std()``;
  quantiles interpolate linearly; ranks average ties; the regression is ordinary
  least squares of the close on the position in the window 0 .. w-1;
* where Alpha158 adds 1e-12 to a denominator that can be 0, the value of that case
  is stated instead and does not depend on the price scale: a flat bar has candle
  shares 0; a window without moves has ``sump = sumn = 0.5`` and ``sumd = 0`` (as
  :func:`~alphaseq.features.technical.rsi` gives 50), ``rsv = 0.5`` (as Bollinger %B),
  ``rsqr = 0``, ``corr = cord = 0`` and ``wvma = 0``. A zero volume today leaves
  ``vma`` and ``vstd`` undefined (NaN); Alpha158 divides by 1e-12 there;
* ``imax`` / ``imin`` are the days since the window's highest high / lowest low,
  divided by the window (0: today; on ties the older day counts). Qlib's ``IdxMax``
  counts from the start of the window instead, so Alpha158's IMAX is ``1 - imax``;
  ``imxd`` is the same as Alpha158's IMXD;
* ``cord`` correlates ``close_t / close_{t-1}`` with ``log(1 + volume_t) -
  log(1 + volume_{t-1})``: Alpha158 uses ``log(volume_t / volume_{t-1} + 1)``, which is
  undefined after a zero-volume day.

Every value at t reads rows <= t only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from alphaseq.features._rolling import (
    rolling_days_since_max,
    rolling_days_since_min,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_moments,
    rolling_quantiles,
    rolling_rank,
    rolling_sum,
    shift,
)
from alphaseq.features.inputs import FeatureInputs

#: Alpha158's windows, used by the groups.
WINDOWS: tuple[int, ...] = (5, 10, 20, 30, 60)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, flat: float) -> np.ndarray:
    """``numerator / denominator``, ``flat`` where the denominator is exactly 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = numerator / denominator
    return np.where(denominator == 0, flat, value)


# ----------------------------------------------------------------------------- candle
def kmid(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KMID: ``(close - open) / open``, the candle's body."""
    return (x.close - x.open) / x.open


def klen(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KLEN: ``(high - low) / open``, the candle's range."""
    return (x.high - x.low) / x.open


def kmid2(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KMID2: ``(close - open) / (high - low)``, the body's share of the range (0 if flat)."""
    return _ratio(x.close - x.open, x.high - x.low, 0.0)


def kup(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KUP: ``(high - max(open, close)) / open``, the upper shadow."""
    return (x.high - np.maximum(x.open, x.close)) / x.open


def kup2(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KUP2: the upper shadow's share of ``high - low`` (0 if flat)."""
    return _ratio(x.high - np.maximum(x.open, x.close), x.high - x.low, 0.0)


def klow(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KLOW: ``(min(open, close) - low) / open``, the lower shadow."""
    return (np.minimum(x.open, x.close) - x.low) / x.open


def klow2(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KLOW2: the lower shadow's share of ``high - low`` (0 if flat)."""
    return _ratio(np.minimum(x.open, x.close) - x.low, x.high - x.low, 0.0)


def ksft(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KSFT: ``(2 close - high - low) / open``, where the close sits in the range."""
    return (2.0 * x.close - x.high - x.low) / x.open


def ksft2(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """KSFT2: ``(2 close - high - low) / (high - low)`` (0 if flat)."""
    return _ratio(2.0 * x.close - x.high - x.low, x.high - x.low, 0.0)


# ------------------------------------------------------------------- rolling on close
def roc(x: FeatureInputs, window: int) -> np.ndarray:
    """ROC: ``close_{t-w} / close_t`` (Alpha158's rate of change, past over present)."""
    return shift(x.close, window) / x.close


def ma(x: FeatureInputs, window: int) -> np.ndarray:
    """MA: mean close of the window over today's close."""
    return rolling_mean(x.close, window) / x.close


def std(x: FeatureInputs, window: int) -> np.ndarray:
    """STD: sample standard deviation of the close in the window, over the close."""
    return np.sqrt(rolling_moments(x.close, window).sxx / (window - 1)) / x.close


def _ols(x: FeatureInputs, window: int) -> dict[str, np.ndarray]:
    """Least squares of the close on p = 0 .. w-1, closed form from centred sums."""
    m = rolling_moments(x.close, window, trend=True)
    stt = window * (window * window - 1) / 12.0  # sum((p - mean(p))^2)
    slope = m.sxt / stt
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.minimum(m.sxt * m.sxt / (stt * m.sxx), 1.0)
    fitted = m.mean_x + slope * (window - 1) / 2.0  # the line at p = w - 1, today
    return {
        "beta": slope / x.close,
        "rsqr": np.where(m.sxx == 0, 0.0, r2),
        "resi": (x.close - fitted) / x.close,
    }


def beta(x: FeatureInputs, window: int) -> np.ndarray:
    """BETA: slope of the window's least-squares line of close on time, over close."""
    return x.shared(("alpha158_ols", window), "beta", lambda: _ols(x, window))


def rsqr(x: FeatureInputs, window: int) -> np.ndarray:
    """RSQR: R² of the window's least-squares line of close on time (0 if flat)."""
    return x.shared(("alpha158_ols", window), "rsqr", lambda: _ols(x, window))


def resi(x: FeatureInputs, window: int) -> np.ndarray:
    """RESI: today's residual from the window's least-squares line, over close."""
    return x.shared(("alpha158_ols", window), "resi", lambda: _ols(x, window))


def max_high(x: FeatureInputs, window: int) -> np.ndarray:
    """MAX: highest high of the window over today's close."""
    return rolling_max(x.high, window) / x.close


def min_low(x: FeatureInputs, window: int) -> np.ndarray:
    """MIN: lowest low of the window over today's close."""
    return rolling_min(x.low, window) / x.close


def _quantiles(x: FeatureInputs, window: int) -> dict[str, np.ndarray]:
    upper, lower = rolling_quantiles(x.close, window, (0.8, 0.2))
    return {"qtlu": upper / x.close, "qtld": lower / x.close}


def qtlu(x: FeatureInputs, window: int) -> np.ndarray:
    """QTLU: 80 % quantile of the window's closes over today's close."""
    return x.shared(("alpha158_quantile", window), "qtlu", lambda: _quantiles(x, window))


def qtld(x: FeatureInputs, window: int) -> np.ndarray:
    """QTLD: 20 % quantile of the window's closes over today's close."""
    return x.shared(("alpha158_quantile", window), "qtld", lambda: _quantiles(x, window))


def rank(x: FeatureInputs, window: int) -> np.ndarray:
    """RANK: percentile of today's close among the window's closes (ties averaged)."""
    return rolling_rank(x.close, window)


def rsv(x: FeatureInputs, window: int) -> np.ndarray:
    """RSV: ``(close - lowest low) / (highest high - lowest low)`` (0.5 if flat)."""
    low = rolling_min(x.low, window)
    return _ratio(x.close - low, rolling_max(x.high, window) - low, 0.5)


def _extreme_ages(x: FeatureInputs, window: int) -> dict[str, np.ndarray]:
    since_max = rolling_days_since_max(x.high, window) / window
    since_min = rolling_days_since_min(x.low, window) / window
    return {"imax": since_max, "imin": since_min, "imxd": since_min - since_max}


def imax(x: FeatureInputs, window: int) -> np.ndarray:
    """IMAX: days since the window's highest high, over the window (0: today)."""
    return x.shared(("alpha158_age", window), "imax", lambda: _extreme_ages(x, window))


def imin(x: FeatureInputs, window: int) -> np.ndarray:
    """IMIN: days since the window's lowest low, over the window (0: today)."""
    return x.shared(("alpha158_age", window), "imin", lambda: _extreme_ages(x, window))


def imxd(x: FeatureInputs, window: int) -> np.ndarray:
    """IMXD: ``imin - imax``; > 0 when the highest high came after the lowest low."""
    return x.shared(("alpha158_age", window), "imxd", lambda: _extreme_ages(x, window))


def _close_change(x: FeatureInputs) -> np.ndarray:
    return x.close - shift(x.close, 1)


def _counts(x: FeatureInputs, window: int) -> dict[str, np.ndarray]:
    delta = _close_change(x)
    missing = np.isnan(delta)  # a ticker's first day has no change: the window waits
    up = rolling_mean(np.where(missing, np.nan, delta > 0), window)
    down = rolling_mean(np.where(missing, np.nan, delta < 0), window)
    return {"cntp": up, "cntn": down, "cntd": up - down}


def cntp(x: FeatureInputs, window: int) -> np.ndarray:
    """CNTP: share of the window's days whose close rose."""
    return x.shared(("alpha158_count", window), "cntp", lambda: _counts(x, window))


def cntn(x: FeatureInputs, window: int) -> np.ndarray:
    """CNTN: share of the window's days whose close fell."""
    return x.shared(("alpha158_count", window), "cntn", lambda: _counts(x, window))


def cntd(x: FeatureInputs, window: int) -> np.ndarray:
    """CNTD: ``cntp - cntn``."""
    return x.shared(("alpha158_count", window), "cntd", lambda: _counts(x, window))


def _up_down_shares(delta: np.ndarray, window: int, prefix: str) -> dict[str, np.ndarray]:
    """Shares of rises and falls in the sum of absolute changes over the window."""
    # np.maximum keeps NaN; rises + falls is exactly 0 on a window without a change.
    rises = rolling_sum(np.maximum(delta, 0.0), window)
    falls = rolling_sum(np.maximum(-delta, 0.0), window)
    total = rises + falls
    return {
        f"{prefix}p": _ratio(rises, total, 0.5),
        f"{prefix}n": _ratio(falls, total, 0.5),
        f"{prefix}d": _ratio(rises - falls, total, 0.0),
    }


def _close_shares(x: FeatureInputs, window: int, part: str) -> np.ndarray:
    return x.shared(
        ("alpha158_sum", window), part, lambda: _up_down_shares(_close_change(x), window, "sum")
    )


def sump(x: FeatureInputs, window: int) -> np.ndarray:
    """SUMP: sum of the window's gains over the sum of absolute changes (0.5 if none)."""
    return _close_shares(x, window, "sump")


def sumn(x: FeatureInputs, window: int) -> np.ndarray:
    """SUMN: sum of the window's losses over the sum of absolute changes (0.5 if none)."""
    return _close_shares(x, window, "sumn")


def sumd(x: FeatureInputs, window: int) -> np.ndarray:
    """SUMD: ``(gains - losses) / (gains + losses)`` over the window (0 if no move)."""
    return _close_shares(x, window, "sumd")


# ------------------------------------------------------------------ rolling on volume
def _correlation(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    m = rolling_moments(x, window, y)
    value = _ratio(m.sxy, np.sqrt(m.sxx * m.syy), 0.0)  # 0 if either side is flat
    return np.clip(value, -1.0, 1.0)


def corr(x: FeatureInputs, window: int) -> np.ndarray:
    """CORR: correlation of close and ``log(1 + volume)`` in the window (0 if flat)."""
    return _correlation(x.close, np.log1p(x.volume), window)


def cord(x: FeatureInputs, window: int) -> np.ndarray:
    """CORD: correlation of ``close_t / close_{t-1}`` and the change of ``log(1 + volume)``."""
    log_volume = np.log1p(x.volume)
    return _correlation(
        x.close / shift(x.close, 1),
        log_volume - shift(log_volume, 1),
        window,
    )


def vma(x: FeatureInputs, window: int) -> np.ndarray:
    """VMA: mean volume of the window over today's volume (NaN if today's is 0)."""
    return _ratio(rolling_mean(x.volume, window), x.volume, np.nan)


def vstd(x: FeatureInputs, window: int) -> np.ndarray:
    """VSTD: sample standard deviation of volume in the window, over today's volume."""
    spread = np.sqrt(rolling_moments(x.volume, window).sxx / (window - 1))
    return _ratio(spread, x.volume, np.nan)


def wvma(x: FeatureInputs, window: int) -> np.ndarray:
    """WVMA: std over mean of ``|close_t / close_{t-1} - 1| * volume`` (0 if all 0)."""
    weighted = np.abs(x.close / shift(x.close, 1) - 1.0) * x.volume
    m = rolling_moments(weighted, window)
    return _ratio(np.sqrt(m.sxx / (window - 1)), m.mean_x, 0.0)


def _volume_shares(x: FeatureInputs, window: int, part: str) -> np.ndarray:
    def compute() -> dict[str, np.ndarray]:
        return _up_down_shares(x.volume - shift(x.volume, 1), window, "vsum")

    return x.shared(("alpha158_vsum", window), part, compute)


def vsump(x: FeatureInputs, window: int) -> np.ndarray:
    """VSUMP: sum of volume increases over the sum of absolute changes (0.5 if none)."""
    return _volume_shares(x, window, "vsump")


def vsumn(x: FeatureInputs, window: int) -> np.ndarray:
    """VSUMN: sum of volume decreases over the sum of absolute changes (0.5 if none)."""
    return _volume_shares(x, window, "vsumn")


def vsumd(x: FeatureInputs, window: int) -> np.ndarray:
    """VSUMD: ``(increases - decreases) / (increases + decreases)`` (0 if no change)."""
    return _volume_shares(x, window, "vsumd")


# --------------------------------------------------------------------------- families
_OHLC = ("open", "high", "low")
_HL = ("high", "low")

#: ``(family, function, fields it needs, group, minimum window, description)``, in
#: Alpha158's order. The registry registers each one; a group is ``alpha158_<group>``.
FAMILIES: tuple[tuple[str, Callable, tuple[str, ...], str, int, str], ...] = (
    ("kmid", kmid, _OHLC, "kbar", 1, "(close - open) / open"),
    ("klen", klen, _OHLC, "kbar", 1, "(high - low) / open"),
    ("kmid2", kmid2, _OHLC, "kbar", 1, "(close - open) / (high - low)"),
    ("kup", kup, _OHLC, "kbar", 1, "upper shadow / open"),
    ("kup2", kup2, _OHLC, "kbar", 1, "upper shadow / (high - low)"),
    ("klow", klow, _OHLC, "kbar", 1, "lower shadow / open"),
    ("klow2", klow2, _OHLC, "kbar", 1, "lower shadow / (high - low)"),
    ("ksft", ksft, _OHLC, "kbar", 1, "(2 close - high - low) / open"),
    ("ksft2", ksft2, _OHLC, "kbar", 1, "(2 close - high - low) / (high - low)"),
    ("roc", roc, ("close",), "close", 1, "close w days ago / close"),
    ("ma", ma, ("close",), "close", 1, "mean close / close"),
    ("std", std, ("close",), "close", 2, "std of close / close"),
    ("beta", beta, ("close",), "close", 2, "OLS slope of close on time / close"),
    ("rsqr", rsqr, ("close",), "close", 2, "R² of close on time"),
    ("resi", resi, ("close",), "close", 2, "today's OLS residual / close"),
    ("max", max_high, _HL, "range", 1, "highest high / close"),
    ("min", min_low, _HL, "range", 1, "lowest low / close"),
    ("qtlu", qtlu, ("close",), "close", 1, "80% quantile of close / close"),
    ("qtld", qtld, ("close",), "close", 1, "20% quantile of close / close"),
    ("rank", rank, ("close",), "close", 1, "percentile of today's close in the window"),
    ("rsv", rsv, _HL, "range", 1, "(close - lowest low) / (highest high - lowest low)"),
    ("imax", imax, _HL, "range", 1, "days since the highest high / w"),
    ("imin", imin, _HL, "range", 1, "days since the lowest low / w"),
    ("imxd", imxd, _HL, "range", 1, "imin - imax"),
    ("corr", corr, ("volume",), "volume", 2, "corr(close, log(1 + volume))"),
    ("cord", cord, ("volume",), "volume", 2, "corr(close ratio, log(1 + volume) change)"),
    ("cntp", cntp, ("close",), "close", 1, "share of up days"),
    ("cntn", cntn, ("close",), "close", 1, "share of down days"),
    ("cntd", cntd, ("close",), "close", 1, "cntp - cntn"),
    ("sump", sump, ("close",), "close", 1, "gains / absolute changes"),
    ("sumn", sumn, ("close",), "close", 1, "losses / absolute changes"),
    ("sumd", sumd, ("close",), "close", 1, "(gains - losses) / absolute changes"),
    ("vma", vma, ("volume",), "volume", 1, "mean volume / volume"),
    ("vstd", vstd, ("volume",), "volume", 2, "std of volume / volume"),
    ("wvma", wvma, ("volume",), "volume", 2, "std / mean of |return| * volume"),
    ("vsump", vsump, ("volume",), "volume", 1, "volume increases / absolute changes"),
    ("vsumn", vsumn, ("volume",), "volume", 1, "volume decreases / absolute changes"),
    ("vsumd", vsumd, ("volume",), "volume", 1, "(increases - decreases) / abs. changes"),
)


def _members(groups: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for family, _, _, group, _, _ in FAMILIES:
        if group in groups:
            names += [family] if group == "kbar" else [f"{family}_{w}" for w in WINDOWS]
    return tuple(names)


#: Group name -> feature names, in Alpha158's order (family by family, windows rising).
GROUPS: dict[str, tuple[str, ...]] = {
    "alpha158": _members(("kbar", "close", "range", "volume")),
    "alpha158_kbar": _members(("kbar",)),
    "alpha158_close": _members(("close",)),
    "alpha158_range": _members(("range",)),
    "alpha158_volume": _members(("volume",)),
    "alpha158_rolling": _members(("close", "range", "volume")),
}
