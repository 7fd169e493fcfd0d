"""Named features, selectable in config and extendable with user functions.

A feature name is a family name, optionally followed by ``_<window>``:
``ret_21``, ``vol_63``, ``rsi_14``, ``ma_dist_200``. A bare family name takes the
family's default window (``rsi`` is ``rsi_14``). A group name stands for a list of
feature names (``alpha158``, ``alpha158_close``, ...; see :data:`FEATURE_GROUPS`).
:func:`compute_features` turns a list of names into one (T, N, F) array.
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
from alphaseq.features import alpha158
from alphaseq.features import technical as tech
from alphaseq.features.inputs import FeatureInputs
from alphaseq.features.normalize import cross_sectional_normalize

FeatureFunction = Callable[[FeatureInputs, int | None], np.ndarray]

#: Feature columns written to the (T, N, F) array at once (see compute_features).
_WRITE_BATCH = 16


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
    min_window : int
        Smallest window the family accepts (2 for a sample standard deviation).
    """

    name: str
    function: FeatureFunction
    requires: tuple[str, ...] = ("close",)
    default_window: int | None = None
    description: str = ""
    min_window: int = 1

    def feature_name(self, window: int | None) -> str:
        """The canonical feature name for ``window``."""
        return self.name if window is None else f"{self.name}_{window}"


#: Family name -> family. Add to it with :func:`register_feature`.
FEATURE_FAMILIES: dict[str, FeatureFamily] = {}

#: Group name -> the feature names it stands for. Add to it with
#: :func:`register_feature_group`.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {}

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register_feature(
    name: str,
    function: FeatureFunction,
    *,
    requires: Sequence[str] = ("close",),
    default_window: int | None = None,
    description: str = "",
    min_window: int = 1,
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
    min_window : int, default 1
        Smallest window accepted in a name.
    overwrite : bool
        Replace an existing family of the same name.

    Returns
    -------
    FeatureFamily
    """
    _check_name(name, "feature family")
    if name in FEATURE_GROUPS:
        raise ConfigError(f"{name!r} is already the name of a feature group")
    if name in FEATURE_FAMILIES and not overwrite:
        raise ConfigError(f"feature family {name!r} already exists (pass overwrite=True)")
    family = FeatureFamily(
        name, function, tuple(requires), default_window, description, int(min_window)
    )
    FEATURE_FAMILIES[name] = family
    return family


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name) or re.search(r"_\d+$", name):
        raise ConfigError(
            f"{what} name {name!r} must be lower-case letters, digits and '_' "
            f"and must not end in '_<digits>'"
        )


def register_feature_group(
    name: str, names: Sequence[str], *, overwrite: bool = False
) -> tuple[str, ...]:
    """Register a group name that stands for a list of feature names in configs.

    Parameters
    ----------
    name : str
        Group name (letters, digits and ``_``; not a family name).
    names : sequence of str
        The feature names, in order; each must resolve (see :func:`resolve_feature`).
    overwrite : bool
        Replace an existing group of the same name.

    Returns
    -------
    tuple of str
        The group's feature names.
    """
    _check_name(name, "feature group")
    if name in FEATURE_FAMILIES:
        raise ConfigError(f"{name!r} is already the name of a feature family")
    if name in FEATURE_GROUPS and not overwrite:
        raise ConfigError(f"feature group {name!r} already exists (pass overwrite=True)")
    members = tuple(names)
    if not members:
        raise ConfigError(f"feature group {name!r} is empty")
    for member in members:
        resolve_feature(member)
    FEATURE_GROUPS[name] = members
    return members


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

# Alpha158's factors: candles take no window, rolling families default to 20 days.
for _name, _function, _requires, _group, _min_window, _description in alpha158.FAMILIES:
    register_feature(
        _name,
        _function,
        requires=_requires,
        default_window=None if _group == "kbar" else 20,
        min_window=_min_window,
        description=f"{_description} [alpha158_{_group}]",
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
    if name in FEATURE_GROUPS:
        raise ConfigError(
            f"{name!r} is a group of {len(FEATURE_GROUPS[name])} features, not one feature "
            f"(expand it with expand_feature_names)"
        )
    if name in FEATURE_FAMILIES:
        family = FEATURE_FAMILIES[name]
        return family, family.default_window
    match = re.fullmatch(r"(.+)_(\d+)", name)
    if match and match.group(1) in FEATURE_FAMILIES:
        family = FEATURE_FAMILIES[match.group(1)]
        window = int(match.group(2))
        if family.default_window is None:
            raise ConfigError(f"feature {family.name!r} takes no window; use {family.name!r}")
        if window < family.min_window:
            raise ConfigError(f"feature {name!r}: the window must be at least {family.min_window}")
        return family, window
    raise ConfigError(
        f"unknown feature {name!r}; known families: {sorted(FEATURE_FAMILIES)} "
        f"(add '_<window>' to set a window, e.g. 'ret_5'); "
        f"known groups: {sorted(FEATURE_GROUPS)}"
    )


def expand_feature_names(names: Sequence[str]) -> list[str]:
    """The feature names of a config list, with each group name replaced by its members.

    A feature that a group brings in and that is also listed, or brought in by another
    group, appears once, where it first comes (``[alpha158, roc_20]`` is ``alpha158``).
    A name listed twice by hand stays twice, for :func:`compute_features` to report.

    Parameters
    ----------
    names : sequence of str
        Feature names (``roc_20``, ``rsi``) and group names (``alpha158_close``).

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        Naming the first entry that is neither a feature nor a group, with what is known.
    """
    expanded: list[str] = []
    listed: set[str] = set()
    grouped: set[str] = set()
    for name in names:
        if isinstance(name, str) and name in FEATURE_GROUPS:
            for member in FEATURE_GROUPS[name]:
                family, window = resolve_feature(member)
                canonical = family.feature_name(window)
                if canonical not in listed and canonical not in grouped:
                    grouped.add(canonical)
                    expanded.append(member)
            continue
        family, window = resolve_feature(name)
        canonical = family.feature_name(window)
        if canonical in grouped:
            continue
        listed.add(canonical)
        expanded.append(name)
    return expanded


for _group, _members in alpha158.GROUPS.items():
    register_feature_group(_group, _members)


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
        Feature names (see :data:`FEATURE_FAMILIES`) and group names (see
        :data:`FEATURE_GROUPS`, expanded by :func:`expand_feature_names`; a group's
        features need their fields like any named feature). Default: :data:`DEFAULT_FEATURES`
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
        chosen = expand_feature_names(names)
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
    # Columns are staged _WRITE_BATCH at a time and written as one (T, N, batch) slab:
    # writing a single column of the (T, N, F) array touches a cache line per value,
    # which costs ~5x more than the feature itself for the simpler ones.
    batch = min(_WRITE_BATCH, len(resolved))
    staged = np.empty((batch, *panel.shape), dtype=np.float32)
    for k, (family, window) in enumerate(resolved):
        start = time.perf_counter()
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            column = np.asarray(family.function(inputs, window), dtype=np.float64)
        if column.shape != panel.shape:
            raise DataError(
                f"feature {canonical[k]!r} returned shape {column.shape}, expected {panel.shape}"
            )
        staged[k % batch] = np.where(alive & np.isfinite(column), column, np.nan)
        if k % batch == batch - 1 or k == len(resolved) - 1:
            first = k - k % batch
            values[:, :, first : k + 1] = np.moveaxis(staged[: k + 1 - first], 0, -1)
        logger.debug("feature %s in %.3fs", canonical[k], time.perf_counter() - start)
    del staged
    if cross_section is not None:
        values = cross_sectional_normalize(values, cross_section)
    return FeatureSet(values, tuple(canonical), panel.dates, panel.tickers)
