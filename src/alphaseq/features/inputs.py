"""The prepared price arrays every feature function reads."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property

import numpy as np

from alphaseq.data.panel import Panel
from alphaseq.features._rolling import forward_fill

#: Trading days a ticker without a close keeps its forward-filled features. On a day
#: without a close nobody knows yet whether the ticker will trade again (a gap) or never
#: (it stopped trading), so "alive" must not depend on later data: features stay defined
#: for up to this many days after the last close, then are NaN until the next close.
MAX_FILL_DAYS = 10

#: Bytes of sibling results :meth:`FeatureInputs.shared` keeps for later features.
SHARED_BYTES = 256 * 2**20


def causal_alive(mask: np.ndarray, max_fill: int = MAX_FILL_DAYS) -> np.ndarray:
    """True from a ticker's first close on while its last close is <= ``max_fill`` rows old.

    Unlike :meth:`Panel.in_life` (which needs the ticker's *last* close, a future
    fact), the value at row t only reads ``mask`` at rows <= t.
    """
    rows = np.arange(len(mask))[:, None]
    last_close = np.maximum.accumulate(np.where(mask, rows, -1), axis=0)
    return (last_close >= 0) & (rows - last_close <= max_fill)


class FeatureInputs:
    """Float64 views of a panel, forward-filled from each ticker's first close.

    Forward filling is causal: a gap day repeats the last known close, and its
    open, high and low become that close (a flat bar), so its return is 0 and
    the next trading day's return covers both days. A missing open, high or low on
    a day with a close is also taken as that close. Before a ticker's first valid
    close everything is NaN. :attr:`alive` (see :func:`causal_alive`) says where
    features are reported: a ticker that stops trading, for good or for a while,
    has features for :data:`MAX_FILL_DAYS` more days, then NaN until it trades again.

    Parameters
    ----------
    panel : Panel
        The panel to read.
    """

    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        mask = panel.mask
        #: True from the first close on: where the inputs are forward-filled.
        self.started = np.logical_or.accumulate(mask, axis=0)
        #: Where features are defined; causal, see :func:`causal_alive`.
        self.alive = causal_alive(mask)
        self._shared: dict[Hashable, dict[str, np.ndarray]] = {}

    def has(self, field: str) -> bool:
        """Whether the panel carries ``field``."""
        return field in self.panel.fields

    def shared(
        self, key: Hashable, part: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> np.ndarray:
        """One part of a computation that several features share.

        A rolling regression gives slope, R² and residual at once, one sort of each
        window gives both quantiles: the first feature that asks runs ``compute`` and
        gets its ``part``; the other parts are kept for the sibling features, handed
        out once each, and dropped oldest first beyond :data:`SHARED_BYTES` (a
        dropped part is recomputed if asked for later).

        Parameters
        ----------
        key : hashable
            Names the computation and its arguments, e.g. ``("ols", 20)``.
        part : str
            The result wanted, one of the keys ``compute`` returns.
        compute : callable
            ``compute() -> {part: (T, N) array}``.

        Returns
        -------
        numpy.ndarray
        """
        parts = self._shared.pop(key, None)
        if parts is None or part not in parts:
            parts = compute()
        value = parts.pop(part)
        if parts:
            self._shared[key] = parts
            held = sum(a.nbytes for p in self._shared.values() for a in p.values())
            while held > SHARED_BYTES and self._shared:
                oldest = self._shared.pop(next(iter(self._shared)))
                held -= sum(a.nbytes for a in oldest.values())
        return value

    @cached_property
    def close(self) -> np.ndarray:
        """Close, forward-filled from the first close on, (T, N) float64."""
        return forward_fill(self.panel.close.astype(np.float64), self.started)

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
        """Volume, forward-filled from the first close on."""
        return forward_fill(self.panel.fields["volume"].astype(np.float64), self.started)

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
