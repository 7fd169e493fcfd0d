"""Causal rolling operations over the time axis of (T, N) float64 arrays.

Every function here computes the value at row t from rows <= t only, so that a
change after date D cannot alter any output at or before D. A window with any
NaN gives NaN ("full window required"); callers forward-fill inside each
ticker's life first, so NaN only appears before a ticker starts or after it stops.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

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
