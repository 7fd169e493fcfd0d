"""Single-asset timing: in, out (or short) of one instrument, sized by the model's confidence.

:func:`timing_positions` turns a per-date signal into positions; the position ``p[t]``
is decided with data up to the close of date ``t`` and earns from ``t + 1`` on. Their
backtest and its accounting are in :mod:`alphaseq.backtest.timing`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

# The backtest of timing positions lives with the other backtests; kept importable here.
from alphaseq.backtest.timing import POSITION_TOLERANCE, TIMING_KEYS, timing_backtest

Mode = Literal["long_flat", "long_short"]
Kind = Literal["regression", "classification"]

__all__ = ["POSITION_TOLERANCE", "TIMING_KEYS", "timing_backtest", "timing_positions"]


# ---------------------------------------------------------------------------- positions
def _trailing_scale(forecasts: np.ndarray) -> np.ndarray:
    """Median of ``|forecast|`` over every date up to and including each date (causal).

    NaN forecasts are left out; NaN until the first finite forecast.
    """
    # expanding() reads rows up to t only, so the scale never looks ahead.
    return pd.Series(np.abs(forecasts)).expanding(min_periods=1).median().to_numpy()


def timing_positions(
    signal: pd.Series | np.ndarray,
    *,
    mode: Mode = "long_flat",
    kind: Kind = "regression",
    scale: float | None = None,
    cap: float = 1.0,
    threshold: float = 0.0,
) -> np.ndarray:
    """Target positions in one instrument from a per-date model signal.

    ``position[t] = clip(signal[t] / scale[t], -cap, cap)``, then

    * ``|signal[t]| <= threshold`` → 0 (a dead zone against trading on noise);
    * ``mode="long_flat"`` → negative positions become 0 (flat);
    * a NaN signal (no forecast that day) → 0.

    Parameters
    ----------
    signal : pandas.Series or array-like
        One value per date, decided at that date's close. ``kind="regression"``: return
        forecasts; the sign gives the side and ``|forecast| / scale`` the size.
        ``kind="classification"``: ``P(up) - P(down)`` in [-1, 1], already a signed
        confidence.
    mode : {"long_flat", "long_short"}, default="long_flat"
        Whether the strategy may go short.
    kind : {"regression", "classification"}, default="regression"
        What the signal is.
    scale : float or None, default=None
        Signal size that earns a full unit position (before the cap), > 0. When None:
        for regression, the median ``|forecast|`` over every date up to and including
        ``t`` (causal: a typical forecast earns a full position, a forecast twice the
        typical size is capped); for classification, 1.
    cap : float, default=1.0
        Largest absolute position, in (0, 1] (no borrowing).
    threshold : float, default=0.0
        Dead zone on the signal itself (forecast units for regression, probability
        difference for classification), >= 0.

    Returns
    -------
    numpy.ndarray
        Positions as fractions of NAV, (T,), in ``[-cap, cap]`` (``[0, cap]`` for
        long/flat). Where the trailing scale is 0 (most forecasts so far were 0), a
        non-zero forecast gets the full ``cap``.

    Raises
    ------
    ValueError
        On an unknown ``mode`` or ``kind``, a ``cap`` outside (0, 1], a non-positive
        ``scale``, a negative ``threshold``, an infinite signal, or a classification
        signal outside [-1, 1].
    """
    if mode not in ("long_flat", "long_short"):
        raise ValueError(f"mode must be 'long_flat' or 'long_short', got {mode!r}")
    if kind not in ("regression", "classification"):
        raise ValueError(f"kind must be 'regression' or 'classification', got {kind!r}")
    if not (np.isfinite(cap) and 0 < cap <= 1):
        raise ValueError(f"cap must be in (0, 1] (no borrowing), got {cap}")
    if scale is not None and not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0 or None, got {scale}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold}")
    values = signal.to_numpy() if isinstance(signal, pd.Series) else signal
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"signal must be 1-D (one value per date), got shape {values.shape}")
    if np.isinf(values).any():
        raise ValueError(
            f"signal is infinite at position {int(np.flatnonzero(np.isinf(values))[0])}"
        )
    if kind == "classification":
        outside = np.abs(values) > 1 + POSITION_TOLERANCE
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"classification signal must be P(up) - P(down) in [-1, 1]; "
                f"position {i} is {values[i]}"
            )

    if scale is not None:
        size = values / scale
    elif kind == "classification":
        size = values.copy()
    else:
        trailing = _trailing_scale(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            size = values / trailing
        # A zero typical forecast makes any non-zero forecast "large": full cap.
        zero_scale = (trailing == 0) & (values != 0)
        size[zero_scale] = np.sign(values[zero_scale]) * np.inf
    positions = np.clip(size, -cap, cap)
    positions[~np.isfinite(values) | (np.abs(values) <= threshold)] = 0.0
    if mode == "long_flat":
        positions = np.maximum(positions, 0.0)
    return positions + 0.0  # no -0.0 in the output
