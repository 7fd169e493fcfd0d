"""Causal feature functions: each maps :class:`FeatureInputs` to one (T, N) array.

Conventions (so that a pandas user can reproduce every number):

* returns are log returns of the filled close;
* volatilities are sample standard deviations (``ddof=1``) of daily log returns,
  annualised with sqrt(252);
* Wilder smoothing (RSI, ATR) is ``ewm(alpha=1/window, adjust=False)`` with
  ``min_periods=window``; MACD uses ``ewm(span=..., adjust=False)``;
* Bollinger bands use the population standard deviation (``ddof=0``) and 2 bands.
"""

from __future__ import annotations

import numpy as np

from alphaseq.features._rolling import (
    ema,
    rolling_max_drawdown,
    rolling_mean,
    rolling_std,
    shift,
)
from alphaseq.features.inputs import FeatureInputs

TRADING_DAYS = 252


def log_return(x: FeatureInputs, window: int) -> np.ndarray:
    """``log(close_t / close_{t-window})``."""
    return x.log_close - shift(x.log_close, window)


def realized_volatility(x: FeatureInputs, window: int) -> np.ndarray:
    """Annualised standard deviation of the last ``window`` daily log returns."""
    return rolling_std(x.log_return, window, ddof=1) * np.sqrt(TRADING_DAYS)


def volume_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Z-score of today's ``log(1 + volume)`` within the last ``window`` days (0 if flat)."""
    lv = np.log1p(x.volume)
    spread = rolling_std(lv, window, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (lv - rolling_mean(lv, window)) / spread
    return np.where(spread > 0, z, np.where(np.isfinite(spread), 0.0, np.nan))


def log_dollar_volume(x: FeatureInputs, window: int) -> np.ndarray:
    """``log(1 + mean(close * volume))`` over the last ``window`` days."""
    return np.log1p(rolling_mean(x.close * x.volume, window))


def high_low_range(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """``log(high / low)``: the day's range."""
    return np.log(x.high / x.low)


def close_open_return(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """``log(close / open)``: the intraday move."""
    return np.log(x.close / x.open)


def overnight_gap(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """``log(open_t / close_{t-1})``: the overnight gap."""
    return np.log(x.open) - shift(x.log_close, 1)


def rsi(x: FeatureInputs, window: int) -> np.ndarray:
    """Relative strength index (Wilder), in [0, 100]; 50 when the price did not move."""
    delta = x.close - shift(x.close, 1)
    gain = ema(np.where(np.isnan(delta), np.nan, np.maximum(delta, 0.0)), 1 / window, window)
    loss = ema(np.where(np.isnan(delta), np.nan, np.maximum(-delta, 0.0)), 1 / window, window)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 100.0 * gain / total  # equals 100 - 100 / (1 + gain / loss)
    return np.where(total > 0, value, np.where(np.isfinite(total), 50.0, np.nan))


def _macd_line(x: FeatureInputs) -> np.ndarray:
    fast = ema(x.close, 2 / (12 + 1), min_periods=12)
    slow = ema(x.close, 2 / (26 + 1), min_periods=26)
    return fast - slow


def macd(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """MACD line (EMA12 - EMA26 of close) divided by close."""
    return _macd_line(x) / x.close


def macd_histogram(x: FeatureInputs, window: int | None = None) -> np.ndarray:
    """MACD line minus its 9-day EMA signal line, divided by close."""
    line = _macd_line(x)
    signal = ema(line, 2 / (9 + 1), min_periods=9)
    return (line - signal) / x.close


def bollinger_percent_b(x: FeatureInputs, window: int) -> np.ndarray:
    """Bollinger %B: position of close between the bands ``mean +- 2 std`` (0.5 if flat)."""
    mean = rolling_mean(x.close, window)
    spread = rolling_std(x.close, window, ddof=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (x.close - (mean - 2 * spread)) / (4 * spread)
    return np.where(spread > 0, value, np.where(np.isfinite(spread), 0.5, np.nan))


def moving_average_distance(x: FeatureInputs, window: int) -> np.ndarray:
    """``close / SMA(close, window) - 1``."""
    return x.close / rolling_mean(x.close, window) - 1.0


def average_true_range(x: FeatureInputs, window: int) -> np.ndarray:
    """Wilder's average true range divided by close."""
    prev_close = shift(x.close, 1)
    true_range = np.fmax(
        x.high - x.low,
        np.fmax(np.abs(x.high - prev_close), np.abs(x.low - prev_close)),
    )  # fmax: on a ticker's first day there is no previous close, TR = high - low
    return ema(true_range, 1 / window, window) / x.close


def max_drawdown(x: FeatureInputs, window: int) -> np.ndarray:
    """Worst peak-to-trough loss of close inside the last ``window`` days (<= 0)."""
    return rolling_max_drawdown(x.close, window)
