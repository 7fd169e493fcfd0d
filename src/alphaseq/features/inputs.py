"""The prepared price arrays every feature function reads."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from alphaseq.data.panel import Panel
from alphaseq.features._rolling import forward_fill


class FeatureInputs:
    """Float64 views of a panel, forward-filled inside each ticker's life.

    Forward filling is causal: a gap day repeats the last known close, and its
    open, high and low become that close (a flat bar), so its return is 0 and
    the next trading day's return covers both days. A missing open, high or low on
    a day with a close is also taken as that close. Outside a ticker's life
    (before its first or after its last valid close) everything is NaN.

    Parameters
    ----------
    panel : Panel
        The panel to read.
    """

    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        self.alive = panel.in_life()

    def has(self, field: str) -> bool:
        """Whether the panel carries ``field``."""
        return field in self.panel.fields

    @cached_property
    def close(self) -> np.ndarray:
        """Close, forward-filled in life, (T, N) float64."""
        return forward_fill(self.panel.close.astype(np.float64), self.alive)

    def _bar(self, field: str) -> np.ndarray:
        raw = self.panel.fields[field].astype(np.float64)
        today = np.where(np.isfinite(raw), raw, self.panel.close)
        # On gap days (and outside life, where close is NaN) the bar is the carried close.
        return np.where(self.panel.mask, today, self.close)

    @cached_property
    def open(self) -> np.ndarray:
        """Open (missing -> that day's close; gap days -> carried close)."""
        return self._bar("open")

    @cached_property
    def high(self) -> np.ndarray:
        """High (missing -> that day's close; gap days -> carried close)."""
        return self._bar("high")

    @cached_property
    def low(self) -> np.ndarray:
        """Low (missing -> that day's close; gap days -> carried close)."""
        return self._bar("low")

    @cached_property
    def volume(self) -> np.ndarray:
        """Volume, forward-filled in life."""
        return forward_fill(self.panel.fields["volume"].astype(np.float64), self.alive)

    @cached_property
    def log_close(self) -> np.ndarray:
        """Natural log of the filled close."""
        return np.log(self.close)

    @cached_property
    def log_return(self) -> np.ndarray:
        """Daily log return ``log(c_t / c_{t-1})``, NaN on a ticker's first day."""
        out = np.full_like(self.log_close, np.nan)
        out[1:] = self.log_close[1:] - self.log_close[:-1]
        return out
