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
#: Per-date normalisations of a training target across tickers (see :func:`cross_section_targets`).
TARGET_NORMALIZATIONS = ("rank", "zscore", "demean")
#: What a training target can be measured in excess of (see :func:`excess_targets`).
TARGET_EXCESS = ("benchmark", "mean")
#: Standard deviation of a uniform variable on [0, 1] is 1 / sqrt(12): ranks centred and
#: multiplied by sqrt(12) have unit variance (Qlib's CSRankNorm uses 3.46).
_RANK_SCALE = float(np.sqrt(12.0))
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


# ------------------------------------------------------------------- training targets
def cross_section_targets(values: np.ndarray, method: str) -> np.ndarray:
    """Normalise labels across tickers on each date (market-neutral training targets).

    Only the target the model learns changes: forecasts are still evaluated and traded
    against the raw labels. Each date uses that date's labels only (all of them known at
    the same close, ``t + h``), so nothing crosses dates and purging is unchanged.

    Parameters
    ----------
    values : numpy.ndarray
        Labels (T, N) or (T, N, H), NaN where unknown.
    method : {"rank", "zscore", "demean"}
        ``rank``: the percentile rank among the date's known labels (``rank / n`` with
        average ranks for ties, as pandas' ``rank(pct=True)``), centred and scaled to
        about unit variance, ``(pct - 0.5) * sqrt(12)`` — Qlib's ``CSRankNorm``. ``zscore``: minus
        the date's mean, divided by its standard deviation (ddof=0). ``demean``: minus
        the date's mean (the return in excess of the equal-weighted cross-section).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype. NaN where the label is unknown, and on dates with fewer
        than two known labels (a cross-section of one has nothing to be relative to); a
        date whose labels are all equal gets 0 (``zscore``: its spread is 0).
    """
    if method not in TARGET_NORMALIZATIONS:
        raise ConfigError(
            f"unknown label cross-section normalisation {method!r}; "
            f"allowed: {list(TARGET_NORMALIZATIONS)} or null"
        )
    array = np.asarray(values)
    x = array.astype(np.float64)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"labels must be (T, N) or (T, N, H), got shape {array.shape}")
    known = np.isfinite(x)
    count = known.sum(axis=1, keepdims=True)
    enough = count >= 2
    if method == "rank":
        # Average ranks among the known labels of each (date, horizon): a (T, N, H)
        # argsort over tickers, with NaN sorted last and left out by the mask.
        out = np.full_like(x, np.nan)
        for t in np.flatnonzero(enough.any(axis=(1, 2))):
            for h in range(x.shape[2]):
                row = x[t, :, h]
                ok = known[t, :, h]
                if ok.sum() < 2:
                    continue
                ranks = _average_ranks(row[ok])
                out[t, ok, h] = (ranks / ok.sum() - 0.5) * _RANK_SCALE  # pandas' pct rank
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(x, axis=1, keepdims=True) / np.maximum(count, 1)
            out = x - mean
            if method == "zscore":
                std = np.sqrt(np.nansum(out**2, axis=1, keepdims=True) / np.maximum(count, 1))
                out = np.where(std > 0, out / np.where(std > 0, std, 1.0), 0.0)
        out = np.where(known & enough, out, np.nan)
    out = out.astype(array.dtype, copy=False)
    return out[..., 0] if squeeze else out


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (scipy's ``rankdata``)."""
    from scipy.stats import rankdata

    return rankdata(values, method="average")


def excess_targets(
    values: np.ndarray, horizons: Sequence[int], over: str, benchmark: np.ndarray | None = None
) -> np.ndarray:
    """Forward returns in excess of the benchmark's (or the cross-section's mean).

    Parameters
    ----------
    values : numpy.ndarray
        Forward returns (T, N, H), NaN where unknown; column ``k`` looks ``horizons[k]``
        days ahead.
    horizons : sequence of int
        Horizon of each column.
    over : {"benchmark", "mean"}
        Subtract the benchmark's simple return over the same days, or the date's mean
        label (equal-weighted cross-section, as ``demean``).
    benchmark : numpy.ndarray or None
        Benchmark prices (T,), NaN where missing; needed for ``over="benchmark"``.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; NaN where the label or the benchmark's return is unknown.
    """
    if over not in TARGET_EXCESS:
        raise ConfigError(f"unknown label excess {over!r}; allowed: {list(TARGET_EXCESS)} or null")
    if over == "mean":
        return cross_section_targets(values, "demean")
    if benchmark is None:
        raise ConfigError(
            "labels.excess is 'benchmark' but the data has no benchmark (set "
            "data.benchmark, or use labels.excess: mean)"
        )
    prices = np.asarray(benchmark, dtype=np.float64)
    if prices.shape != values.shape[:1]:
        raise ValueError(f"benchmark has shape {prices.shape}, expected ({values.shape[0]},)")
    out = np.asarray(values).astype(np.float64)
    for k, h in enumerate(horizons):
        with np.errstate(invalid="ignore", divide="ignore"):
            bench = _ahead(prices, int(h)) / prices - 1.0
        out[..., k] -= bench[:, None]
    return out.astype(np.asarray(values).dtype, copy=False)
