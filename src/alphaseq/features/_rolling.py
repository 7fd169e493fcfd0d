"""Causal rolling operations over the time axis of (T, N) float64 arrays.

Every function here computes the value at row t from rows <= t only, so that a
change after date D cannot alter any output at or before D. A window with any
NaN gives NaN ("full window required"); callers forward-fill inside each
ticker's life first, so NaN only appears before a ticker starts or after it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Rows of sliding windows processed at once: bounds the temporary (rows, N, w) array.
_CHUNK_CELLS = 4_000_000


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """``x[t - k]`` at row t (k >= 0), NaN for the first k rows."""
    if k < 0:
        raise ValueError("shift only looks backwards (k >= 0) to stay causal")
    out = np.full_like(x, np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k] if k else x
    return out


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over rows t-window+1 .. t; NaN unless all ``window`` values are finite."""
    finite = np.isfinite(x)
    csum = np.cumsum(np.where(finite, x, 0.0), axis=0)
    ccount = np.cumsum(finite, axis=0, dtype=np.int64)
    out = np.full_like(x, np.nan)
    if window > len(x):
        return out
    total = csum[window - 1 :].copy()
    total[1:] -= csum[: len(x) - window]
    count = ccount[window - 1 :].copy()
    count[1:] -= ccount[: len(x) - window]
    out[window - 1 :] = np.where(count == window, total, np.nan)
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` rows (full window required)."""
    return rolling_sum(x, window) / window


def _rolling_reduce(x: np.ndarray, window: int, reduce) -> np.ndarray:
    """Apply ``reduce(windows) -> (rows, N)`` over sliding windows, in row chunks."""
    out = np.full_like(x, np.nan)
    if window > len(x):
        return out
    views = sliding_window_view(x, window, axis=0)  # (T - w + 1, N, w), no copy
    step = max(1, _CHUNK_CELLS // max(1, x.shape[1] * window))
    for start in range(0, len(views), step):
        block = views[start : start + step]
        out[window - 1 + start : window - 1 + start + len(block)] = reduce(block)
    return out


def rolling_std(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Standard deviation over the last ``window`` rows (two-pass, full window required).

    Each window is shifted by its first value before the two passes: the result is
    unchanged mathematically, but a flat window (a run of forward-filled gap days)
    gives exactly 0 instead of rounding noise such as 1e-15, which the "0 if flat"
    branches of the z-score features rely on.
    """
    return _rolling_reduce(x, window, lambda w: np.std(w - w[..., :1], axis=-1, ddof=ddof))


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Maximum over the last ``window`` rows (full window required)."""
    return _rolling_reduce(x, window, lambda w: np.max(w, axis=-1))


def rolling_max_drawdown(price: np.ndarray, window: int) -> np.ndarray:
    """Worst peak-to-trough loss inside the last ``window`` rows, as a number <= 0."""

    def worst(block: np.ndarray) -> np.ndarray:
        peak = np.maximum.accumulate(block, axis=-1)
        return np.min(block / peak - 1.0, axis=-1)

    return _rolling_reduce(price, window, worst)


def ema(x: np.ndarray, alpha: float, min_periods: int = 1) -> np.ndarray:
    """Exponential moving average ``y_t = alpha * x_t + (1 - alpha) * y_{t-1}``.

    Each column starts at its first finite value (``y = x`` there), as pandas'
    ``ewm(alpha=alpha, adjust=False)`` does; the first ``min_periods - 1`` values
    after the start are NaN. Values must be finite from the start on (forward-fill
    first): a NaN after the start propagates to the end of the column.
    """
    finite = np.isfinite(x)
    started = np.logical_or.accumulate(finite, axis=0)
    first = finite & ~np.vstack([np.zeros((1, x.shape[1]), bool), started[:-1]])
    # Zeros before the start keep the filter's state at 0; dividing the first value
    # by alpha makes the first output equal to it. lfilter runs the recursion in C.
    driven = np.where(started, x, 0.0)
    driven = np.where(first, driven / alpha, driven)
    from scipy.signal import lfilter  # here: scipy.signal costs ~1 s to import

    out = lfilter([alpha], [1.0, alpha - 1.0], driven, axis=0)
    out[~started] = np.nan
    if min_periods > 1:
        periods = np.cumsum(started, axis=0)
        out[periods < min_periods] = np.nan
    return out


def forward_fill(x: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Carry the last finite value forward down each column, NaN where ``alive`` is False."""
    finite = np.isfinite(x)
    rows = np.where(finite, np.arange(len(x))[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = np.take_along_axis(x, rows, axis=0)
    return np.where(alive, filled, np.nan)


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """Minimum over the last ``window`` rows (full window required)."""
    return _rolling_reduce(x, window, lambda w: np.min(w, axis=-1))


# Lag loops: the window statistics below add up ``window`` shifted copies of the
# panel, one lag at a time, on row blocks small enough to stay in the CPU cache.
# Only element-wise operations in a fixed order are used, so a value depends on its
# own window's numbers alone: not on the panel's length, its other tickers or the
# block boundaries (the no-look-ahead test compares results bit for bit).
_BLOCK_CELLS = 16_384  # ~128 KiB per float64 operand: measured fastest of 16-128 Ki


def _blocks(x: np.ndarray, window: int):
    """Row blocks ``(start, stop)`` covering rows ``window - 1`` .. T - 1."""
    rows = max(1, _BLOCK_CELLS // max(1, x.shape[1]))
    for start in range(window - 1, len(x), rows):
        yield start, min(len(x), start + rows)


def full_windows(x: np.ndarray, window: int) -> np.ndarray:
    """(T, N) bool: True where the last ``window`` rows of ``x`` are all finite."""
    count = np.cumsum(np.isfinite(x), axis=0, dtype=np.int64)
    out = np.zeros(x.shape, dtype=bool)
    if window > len(x):
        return out
    in_window = count[window - 1 :].copy()
    in_window[1:] -= count[: len(x) - window]
    out[window - 1 :] = in_window == window
    return out


@dataclass(frozen=True)
class WindowMoments:
    """Centred sums over each trailing window, from :func:`rolling_moments`.

    Attributes
    ----------
    window : int
        The window length w.
    mean_x : numpy.ndarray
        Mean of x over the window.
    sxx : numpy.ndarray
        ``sum((x - mean_x) ** 2)``; exactly 0 on a flat window.
    mean_y, syy, sxy : numpy.ndarray or None
        The same for y and ``sum((x - mean_x) * (y - mean_y))``, when y was given.
    sxt : numpy.ndarray or None
        ``sum((x - mean_x) * (p - mean_p))`` with p = 0 .. w-1 the position in the
        window (oldest first), when ``trend=True``.
    """

    window: int
    mean_x: np.ndarray
    sxx: np.ndarray
    mean_y: np.ndarray | None = None
    syy: np.ndarray | None = None
    sxy: np.ndarray | None = None
    sxt: np.ndarray | None = None


def rolling_moments(
    x: np.ndarray, window: int, y: np.ndarray | None = None, *, trend: bool = False
) -> WindowMoments:
    """Centred first and second moments of x (and y, and time) over each trailing window.

    The sums are taken over deviations from the window's last value (``x_{t-j} - x_t``),
    so that a flat window gives exactly 0 (no rounding noise such as 1e-15 that a
    "0 if flat" branch would miss) and price levels do not cancel digits away.
    Full window required: NaN where any of the ``window`` values is NaN.

    Parameters
    ----------
    x : numpy.ndarray
        (T, N) float64.
    window : int
        Window length w >= 1.
    y : numpy.ndarray, optional
        A second (T, N) series for the cross moment.
    trend : bool
        Also return the cross moment with the position in the window (rolling OLS).

    Returns
    -------
    WindowMoments
    """
    shape = x.shape
    sums = {k: np.full(shape, np.nan) for k in ("dx", "dxx")}
    if y is not None:
        sums.update({k: np.full(shape, np.nan) for k in ("dy", "dyy", "dxy")})
    if trend:
        sums["dxt"] = np.full(shape, np.nan)
    centre = (window - 1) / 2.0
    for a, b in _blocks(x, window):
        x_now = x[a:b]
        acc = {k: np.zeros_like(x_now) for k in sums}
        dx = np.empty_like(x_now)
        dy = np.empty_like(x_now)
        tmp = np.empty_like(x_now)
        for j in range(window):  # j = 0 is today: its deviation is 0 (or NaN)
            np.subtract(x[a - j : b - j], x_now, out=dx)
            acc["dx"] += dx
            np.multiply(dx, dx, out=tmp)
            acc["dxx"] += tmp
            if trend:
                # position p = w - 1 - j, so p - mean(p) = centre - j
                np.multiply(dx, centre - j, out=tmp)
                acc["dxt"] += tmp
            if y is not None:
                np.subtract(y[a - j : b - j], y[a:b], out=dy)
                acc["dy"] += dy
                np.multiply(dy, dy, out=tmp)
                acc["dyy"] += tmp
                np.multiply(dx, dy, out=tmp)
                acc["dxy"] += tmp
        for k, v in acc.items():
            sums[k][a:b] = v
    # Shifting by the last value leaves centred sums unchanged: S = sum(d^2) - sum(d)^2/w.
    sxx = np.maximum(sums["dxx"] - sums["dx"] * sums["dx"] / window, 0.0)
    moments = {"mean_x": x + sums["dx"] / window, "sxx": sxx}
    if y is not None:
        moments["mean_y"] = y + sums["dy"] / window
        moments["syy"] = np.maximum(sums["dyy"] - sums["dy"] * sums["dy"] / window, 0.0)
        moments["sxy"] = sums["dxy"] - sums["dx"] * sums["dy"] / window
    if trend:
        moments["sxt"] = sums["dxt"]  # sum(p - mean(p)) = 0: the shift drops out
    return WindowMoments(window, **moments)


def rolling_quantiles(x: np.ndarray, window: int, qs: Sequence[float]) -> list[np.ndarray]:
    """Quantiles ``qs`` of the last ``window`` rows, with linear interpolation.

    Linear interpolation between order statistics is numpy's and pandas' default
    (``rolling(w).quantile(q)``); each window is sorted once for every quantile.
    Full window required.
    """
    outs = [np.full_like(x, np.nan) for _ in qs]
    if window > len(x):
        return outs
    positions = []
    for q in qs:
        pos = q * (window - 1)
        low = int(np.floor(pos))
        positions.append((low, min(low + 1, window - 1), pos - low))
    views = sliding_window_view(x, window, axis=0)
    step = max(1, _CHUNK_CELLS // max(1, x.shape[1] * window))
    for start in range(0, len(views), step):
        block = np.sort(views[start : start + step], axis=-1)
        rows = slice(window - 1 + start, window - 1 + start + len(block))
        for out, (low, high, frac) in zip(outs, positions, strict=True):
            out[rows] = block[..., low] + (block[..., high] - block[..., low]) * frac
    full = full_windows(x, window)  # np.sort moves NaN to the end instead of propagating it
    return [np.where(full, out, np.nan) for out in outs]


def rolling_rank(x: np.ndarray, window: int) -> np.ndarray:
    """Percentile rank of today's value among the last ``window`` rows, in (0, 1].

    Ties take their average rank, as ``pandas.Series.rolling(w).rank(pct=True)``:
    ``(#smaller + (#equal + 1) / 2) / window`` where #equal counts today itself.
    Full window required.
    """
    out = np.full_like(x, np.nan)
    for a, b in _blocks(x, window):
        x_now = x[a:b]
        smaller = np.zeros(x_now.shape, dtype=np.int64)
        equal = np.zeros(x_now.shape, dtype=np.int64)
        for j in range(window):
            lag = x[a - j : b - j]
            smaller += lag < x_now
            equal += lag == x_now
        out[a:b] = (smaller + (equal + 1) / 2.0) / window
    return np.where(full_windows(x, window), out, np.nan)


def _days_since(x: np.ndarray, window: int, extreme: np.ndarray) -> np.ndarray:
    """Rows since the oldest row of each window equal to that window's ``extreme``."""
    out = np.full_like(x, np.nan)
    for a, b in _blocks(x, window):
        target = extreme[a:b]
        age = np.zeros_like(target)
        hit = np.empty(target.shape, dtype=bool)
        for j in range(window):  # walking back in time, the last hit is the oldest
            np.equal(x[a - j : b - j], target, out=hit)
            np.copyto(age, float(j), where=hit)
        out[a:b] = age
    return np.where(np.isnan(extreme), np.nan, out)  # a NaN in the window: no extreme


def rolling_days_since_max(x: np.ndarray, window: int) -> np.ndarray:
    """Rows since the maximum of the last ``window`` rows (0: today), full window required.

    On ties the oldest occurrence counts, as ``numpy.argmax`` (first index) does.
    """
    return _days_since(x, window, rolling_max(x, window))


def rolling_days_since_min(x: np.ndarray, window: int) -> np.ndarray:
    """Rows since the minimum of the last ``window`` rows (0: today); ties: the oldest."""
    return _days_since(x, window, rolling_min(x, window))
