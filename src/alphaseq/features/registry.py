"""Named features, selectable in config and extendable with user functions.

A feature name is a family name, optionally followed by ``_<window>``:
``ret_21``, ``vol_63``, ``rsi_14``, ``ma_dist_200``. A bare family name takes the
family's default window (``rsi`` is ``rsi_14``). :func:`compute_features` turns a
list of names into one (T, N, F) array.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from alphaseq._logging import logger
from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError, DataError
from alphaseq.features import technical as tech
from alphaseq.features.inputs import FeatureInputs
from alphaseq.features.normalize import cross_sectional_normalize

FeatureFunction = Callable[[FeatureInputs, int | None], np.ndarray]


@dataclass(frozen=True)
class FeatureFamily:
    """A family of features sharing one function and differing by window.

    Parameters
    ----------
    name : str
        Family name, the prefix of every feature name of the family.
    function : callable
        ``function(inputs, window) -> (T, N) array``; must be causal.
    requires : tuple of str
        Panel fields the function reads (``close`` is always present).
    default_window : int or None
        Window of the bare family name; None for features without a window.
    description : str
        One line for ``alphaseq features``.
    """

    name: str
    function: FeatureFunction
    requires: tuple[str, ...] = ("close",)
    default_window: int | None = None
    description: str = ""

    def feature_name(self, window: int | None) -> str:
        """The canonical feature name for ``window``."""
        return self.name if window is None else f"{self.name}_{window}"


#: Family name -> family. Add to it with :func:`register_feature`.
FEATURE_FAMILIES: dict[str, FeatureFamily] = {}


def register_feature(
    name: str,
    function: FeatureFunction,
    *,
    requires: Sequence[str] = ("close",),
    default_window: int | None = None,
    description: str = "",
    overwrite: bool = False,
) -> FeatureFamily:
    """Register a feature family so that its names can be used in configs.

    Parameters
    ----------
    name : str
        Family name (letters, digits and ``_``; must not end in ``_<digits>``).
    function : callable
        ``function(inputs: FeatureInputs, window: int | None) -> (T, N) array``.
        It must read data at dates <= t only for the value at t.
    requires : sequence of str
        Panel fields the function needs.
    default_window : int, optional
        Window used when the name is given without one.
    description : str
        One line shown by ``alphaseq features``.
    overwrite : bool
        Replace an existing family of the same name.

    Returns
    -------
    FeatureFamily
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or re.search(r"_\d+$", name):
        raise ConfigError(
            f"feature family name {name!r} must be lower-case letters, digits and '_' "
            f"and must not end in '_<digits>'"
        )
    if name in FEATURE_FAMILIES and not overwrite:
        raise ConfigError(f"feature family {name!r} already exists (pass overwrite=True)")
    family = FeatureFamily(name, function, tuple(requires), default_window, description)
    FEATURE_FAMILIES[name] = family
    return family


for _name, _function, _requires, _window, _description in (
    ("ret", tech.log_return, ("close",), 21, "log return over the window"),
    ("vol", tech.realized_volatility, ("close",), 21, "annualised realised volatility"),
    ("volume_z", tech.volume_zscore, ("volume",), 21, "z-score of log volume in the window"),
    (
        "log_dollar_volume",
        tech.log_dollar_volume,
        ("volume",),
        21,
        "log of mean dollar volume in the window",
    ),
    ("hl_range", tech.high_low_range, ("high", "low"), None, "log(high / low)"),
    ("co_return", tech.close_open_return, ("open",), None, "log(close / open)"),
    ("gap", tech.overnight_gap, ("open",), None, "log(open / previous close)"),
    ("rsi", tech.rsi, ("close",), 14, "Wilder's relative strength index, 0..100"),
    ("macd", tech.macd, ("close",), None, "(EMA12 - EMA26) / close"),
    ("macd_hist", tech.macd_histogram, ("close",), None, "(MACD - 9-day signal) / close"),
    ("bollinger", tech.bollinger_percent_b, ("close",), 20, "Bollinger %B (2 std bands)"),
    ("ma_dist", tech.moving_average_distance, ("close",), 50, "close / moving average - 1"),
    ("atr", tech.average_true_range, ("high", "low"), 14, "Wilder's ATR / close"),
    ("max_drawdown", tech.max_drawdown, ("close",), 21, "worst drawdown in the window"),
):
    register_feature(
        _name, _function, requires=_requires, default_window=_window, description=_description
    )

#: The default feature set of the issue; OHLC and volume features drop out when absent.
DEFAULT_FEATURES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_21",
    "ret_63",
    "ret_126",
    "ret_252",
    "vol_21",
    "vol_63",
    "volume_z_21",
    "log_dollar_volume_21",
    "hl_range",
    "co_return",
    "gap",
    "rsi_14",
    "macd",
    "macd_hist",
    "bollinger_20",
    "ma_dist_20",
    "ma_dist_50",
    "ma_dist_200",
    "atr_14",
    "max_drawdown_21",
)


def resolve_feature(name: str) -> tuple[FeatureFamily, int | None]:
    """Find the family and window of a feature name, with a clear error if unknown."""
    if not isinstance(name, str):
        raise ConfigError(f"feature names must be strings, got {name!r}")
    if name in FEATURE_FAMILIES:
        family = FEATURE_FAMILIES[name]
        return family, family.default_window
    match = re.fullmatch(r"(.+)_(\d+)", name)
    if match and match.group(1) in FEATURE_FAMILIES:
        family = FEATURE_FAMILIES[match.group(1)]
        window = int(match.group(2))
        if family.default_window is None:
            raise ConfigError(f"feature {family.name!r} takes no window; use {family.name!r}")
        if window < 1:
            raise ConfigError(f"feature {name!r}: the window must be at least 1")
        return family, window
    raise ConfigError(
        f"unknown feature {name!r}; known families: {sorted(FEATURE_FAMILIES)} "
        f"(add '_<window>' to set a window, e.g. 'ret_5')"
    )


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features of a panel as one dense array.

    Attributes
    ----------
    values : numpy.ndarray
        (T, N, F) float32; NaN where a feature is not defined (warm-up, before a
        ticker's first close, more than ``MAX_FILL_DAYS`` days after its last close).
    names : tuple of str
        The F feature names, in order.
    dates, tickers : numpy.ndarray
        The panel's dates (T,) and tickers (N,).
    """

    values: np.ndarray
    names: tuple[str, ...]
    dates: np.ndarray
    tickers: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of features F."""
        return len(self.names)

    def warmup(self) -> dict[str, int]:
        """Rows each feature needs after a ticker's start before it is defined."""
        defined = np.isfinite(self.values).any(axis=1)  # (T, F)
        return {n: int(defined[:, k].argmax()) for k, n in enumerate(self.names)}


def compute_features(
    panel: Panel,
    names: Sequence[str] | None = None,
    *,
    cross_section: str | None = None,
) -> FeatureSet:
    """Compute named features over the whole panel at once.

    Parameters
    ----------
    panel : Panel
        Input prices.
    names : sequence of str, optional
        Feature names (see :data:`FEATURE_FAMILIES`). Default: :data:`DEFAULT_FEATURES`
        less those needing fields the panel lacks (logged). An explicitly named
        feature whose fields are missing is an error.
    cross_section : {None, "rank", "robust_zscore"}
        Optional per-date normalisation across tickers (see
        :func:`~alphaseq.features.normalize.cross_sectional_normalize`).

    Returns
    -------
    FeatureSet
        Every value at date t uses data up to and including t only.
    """
    inputs = FeatureInputs(panel)
    if names is None:
        chosen = []
        skipped = []
        for name in DEFAULT_FEATURES:
            family, _ = resolve_feature(name)
            (chosen if all(inputs.has(f) for f in family.requires) else skipped).append(name)
        if skipped:
            logger.info(
                "%s has no %s: skipped features %s",
                panel.name,
                "/".join(sorted({f for n in skipped for f in resolve_feature(n)[0].requires})),
                skipped,
            )
    else:
        chosen = list(names)
        if not chosen:
            raise ConfigError("the feature list is empty")
    resolved = [resolve_feature(name) for name in chosen]
    canonical = [family.feature_name(window) for family, window in resolved]
    duplicated = {n for n in canonical if canonical.count(n) > 1}
    if duplicated:
        raise ConfigError(f"features listed twice: {sorted(duplicated)}")
    for family, window in resolved:
        missing = [f for f in family.requires if not inputs.has(f)]
        if missing:
            raise DataError(
                f"feature {family.feature_name(window)!r} needs field(s) {missing}, which "
                f"panel {panel.name!r} does not have (it has {list(panel.fields)})"
            )

    values = np.empty((*panel.shape, len(resolved)), dtype=np.float32)
    alive = inputs.alive
    for k, (family, window) in enumerate(resolved):
        start = time.perf_counter()
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            column = np.asarray(family.function(inputs, window), dtype=np.float64)
        if column.shape != panel.shape:
            raise DataError(
                f"feature {canonical[k]!r} returned shape {column.shape}, expected {panel.shape}"
            )
        column = np.where(alive & np.isfinite(column), column, np.nan)
        values[:, :, k] = column
        logger.debug("feature %s in %.3fs", canonical[k], time.perf_counter() - start)
    if cross_section is not None:
        values = cross_sectional_normalize(values, cross_section)
    return FeatureSet(values, tuple(canonical), panel.dates, panel.tickers)
