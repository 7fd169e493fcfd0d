"""Forward-looking targets ("labels") for each (date, ticker).

A label at date t looks ``h`` trading days ahead: it is known at the close of
t + h and only then. :attr:`LabelSet.horizon` is the largest such ``h``; the
walk-forward splits purge every sample whose label reaches past its window.

A label is NaN where it is unknown: the ticker has no close at t or at t + h. A
close carried forward over days without trading is never used as the end price: on
such a day nobody knows yet whether the ticker is in a gap or has stopped for good
(telling them apart would need data after t + h), and a delisted ticker's last return
is not invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError
from alphaseq.features._rolling import rolling_std
from alphaseq.features.inputs import FeatureInputs

LABEL_KINDS = ("forward_return", "trend", "direction", "three_class")
#: Class codes of :func:`three_class_label`.
DOWN, FLAT, UP = 0, 1, 2
CLASS_NAMES = ("DOWN", "FLAT", "UP")


def _ahead(x: np.ndarray, h: int) -> np.ndarray:
    """``x[t + h]`` at row t, NaN for the last h rows."""
    out = np.full_like(x, np.nan)
    if h < len(x):
        out[: len(x) - h] = x[h:]
    return out


def _forward_log_return(inputs: FeatureInputs, horizon: int) -> np.ndarray:
    mask = inputs.panel.mask
    traded = mask & (_ahead(mask.astype(np.float64), horizon) == 1.0)  # a close at t and t+h
    value = _ahead(inputs.log_close, horizon) - inputs.log_close
    return np.where(traded, value, np.nan)


def forward_return(panel: Panel, horizon: int = 21, *, inputs: FeatureInputs | None = None):
    """Simple return ``close_{t+h} / close_t - 1`` over ``horizon`` trading days, (T, N)."""
    inputs = inputs or FeatureInputs(panel)
    return np.expm1(_forward_log_return(inputs, horizon))


def trend_score(
    panel: Panel,
    horizon: int,
    *,
    vol_window: int = 63,
    inputs: FeatureInputs | None = None,
) -> np.ndarray:
    """Bounded trend score ``tanh(log(c_{t+h} / c_t) / (sigma_t * sqrt(h)))`` in (-1, 1).

    ``sigma_t`` is the standard deviation of the last ``vol_window`` daily log
    returns up to t, so the score says how many "expected moves" the price went.
    """
    inputs = inputs or FeatureInputs(panel)
    sigma = rolling_std(inputs.log_return, vol_window, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = _forward_log_return(inputs, horizon) / (sigma * np.sqrt(horizon))
    return np.where(sigma > 0, np.tanh(z), np.nan)


def direction_label(
    panel: Panel, horizon: int = 21, *, inputs: FeatureInputs | None = None
) -> np.ndarray:
    """1.0 if the forward return over ``horizon`` is positive, else 0.0 (NaN if unknown)."""
    r = _forward_log_return(inputs or FeatureInputs(panel), horizon)
    return np.where(np.isfinite(r), (r > 0).astype(np.float64), np.nan)


def three_class_label(
    panel: Panel,
    horizon: int = 21,
    *,
    flat_band: float = 0.01,
    inputs: FeatureInputs | None = None,
) -> np.ndarray:
    """DOWN (0), FLAT (1) or UP (2): FLAT when ``|forward return| <= flat_band``."""
    if flat_band < 0:
        raise ConfigError(f"flat_band must be >= 0, got {flat_band}")
    r = np.expm1(_forward_log_return(inputs or FeatureInputs(panel), horizon))
    label = np.where(r > flat_band, UP, np.where(r < -flat_band, DOWN, FLAT)).astype(np.float64)
    return np.where(np.isfinite(r), label, np.nan)


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Labels of a panel as one dense array.

    Attributes
    ----------
    values : numpy.ndarray
        (T, N, H) float32, NaN where unknown.
    names : tuple of str
        Name of each of the H label columns, e.g. ``"forward_return_21"``.
    horizons : tuple of int
        Trading days each column looks ahead.
    kind : str
        The label kind (one of :data:`LABEL_KINDS`).
    """

    values: np.ndarray
    names: tuple[str, ...]
    horizons: tuple[int, ...]
    kind: str

    @property
    def horizon(self) -> int:
        """The furthest a label looks ahead, in trading days (what purging must cover)."""
        return max(self.horizons)


def make_labels(
    panel: Panel,
    kind: str = "forward_return",
    horizons: Sequence[int] = (21,),
    *,
    flat_band: float = 0.01,
    vol_window: int = 63,
) -> LabelSet:
    """Build labels of one kind over one or several horizons.

    Parameters
    ----------
    panel : Panel
        Input prices.
    kind : {"forward_return", "trend", "direction", "three_class"}
        What to predict.
    horizons : sequence of int
        Trading days ahead, e.g. ``(21,)`` or ``(7, 30)``.
    flat_band : float
        Half-width of the FLAT class for ``three_class``, in return units.
    vol_window : int
        Volatility window of the ``trend`` score.

    Returns
    -------
    LabelSet
    """
    if kind not in LABEL_KINDS:
        raise ConfigError(f"unknown label kind {kind!r}; allowed: {list(LABEL_KINDS)}")
    horizons = tuple(int(h) for h in horizons)
    if not horizons or min(horizons) < 1:
        raise ConfigError(f"label horizons must be positive integers, got {list(horizons)}")
    inputs = FeatureInputs(panel)
    columns = []
    for h in horizons:
        if kind == "forward_return":
            columns.append(forward_return(panel, h, inputs=inputs))
        elif kind == "trend":
            columns.append(trend_score(panel, h, vol_window=vol_window, inputs=inputs))
        elif kind == "direction":
            columns.append(direction_label(panel, h, inputs=inputs))
        else:
            columns.append(three_class_label(panel, h, flat_band=flat_band, inputs=inputs))
    values = np.stack(columns, axis=-1).astype(np.float32)
    names = tuple(f"{kind}_{h}" for h in horizons)
    return LabelSet(values, names, horizons, kind)
