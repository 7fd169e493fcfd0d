"""The Alpha158-style factors against independent pandas references, and their selection.

The reference follows the docstring of :mod:`alphaseq.features.alpha158` and the input
conventions of :mod:`tests.test_features_reference` (whose per-ticker ``Life`` it reuses:
forward-filled close and volume, flat bars on gap days, reported while the last real
close is at most ``MAX_FILL_DAYS`` rows old). Each family is written per ticker with
plain pandas: ``rolling(w).mean/std/max/min/quantile/rank/corr/cov/sum`` and, where
pandas has no built-in, ``rolling(w).apply`` of a numpy one-liner (days since the
extreme, the least-squares fit). Whether a window is flat is decided on the prices
(``max == min``), not on a computed spread, so that pandas' add/remove rounding cannot
move a case between the "flat" and the general branch.

Data: a planted OHLCV panel (late start, gap runs shorter and longer than
``MAX_FILL_DAYS``, a ticker that stops, a flat stretch, zero volumes, missing bar
fields, prices on a cent grid so that ties occur), the last 600 days of the embedded
``sp500`` set (close only) and the 8-ticker 2016-2017 slice of the real US panel
(skipped when ``../shared/data`` is absent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_features_reference import (
    SLICE_2016_2017,
    US600_FILE,
    Life,
    _life,
    assert_matches,
    require_shared,
)

from alphaseq import ConfigError, DataError, Panel, load_panel
from alphaseq.config import FeatureConfig
from alphaseq.features import (
    FEATURE_FAMILIES,
    FEATURE_GROUPS,
    compute_features,
    expand_feature_names,
    register_feature_group,
    resolve_feature,
)
from alphaseq.features import alpha158 as a158

WINDOWS = (5, 10, 20, 30, 60)
KBAR = ("kmid", "klen", "kmid2", "kup", "kup2", "klow", "klow2", "ksft", "ksft2")
CLOSE = (
    "roc",
    "ma",
    "std",
    "beta",
    "rsqr",
    "resi",
    "qtlu",
    "qtld",
    "rank",
    "cntp",
    "cntn",
    "cntd",
    "sump",
    "sumn",
    "sumd",
)
RANGE = ("max", "min", "rsv", "imax", "imin", "imxd")
VOLUME = ("corr", "cord", "vma", "vstd", "wvma", "vsump", "vsumn", "vsumd")


# ------------------------------------------------------------------------ reference
def _flat(x: pd.Series, window: int) -> pd.Series:
    """True where the last ``window`` values are all equal (decided on the values)."""
    return x.rolling(window).max() == x.rolling(window).min()


def _shares(delta: pd.Series, window: int, level: pd.Series, kind: str) -> pd.Series:
    rises = delta.clip(lower=0.0).rolling(window).sum()
    falls = (-delta).clip(lower=0.0).rolling(window).sum()
    total = rises + falls
    still = _flat(level, window + 1)  # no change in the window's w changes
    if kind == "p":
        return (rises / total).mask(still, 0.5)
    if kind == "n":
        return (falls / total).mask(still, 0.5)
    return ((rises - falls) / total).mask(still, 0.0)


def _days_since_max(a: np.ndarray) -> float:
    return float(len(a) - 1 - np.argmax(a))  # argmax: first, i.e. oldest, occurrence


def _days_since_min(a: np.ndarray) -> float:
    return float(len(a) - 1 - np.argmin(a))


def _corr(x: pd.Series, y: pd.Series, window: int) -> pd.Series:
    flat = _flat(x, window) | _flat(y, window)
    return x.rolling(window).corr(y).mask(flat, 0.0)


def reference(family: str, w: int | None, s: Life) -> pd.Series:
    """One ticker's feature over its life, from the documented formulas."""
    c, o, h, lo, v = s.close, s.open, s.high, s.low, s.volume
    span = None if h is None else (h - lo)
    if family == "kmid":
        return (c - o) / o
    if family == "klen":
        return (h - lo) / o
    if family in ("kmid2", "kup2", "klow2", "ksft2"):
        top = {
            "kmid2": c - o,
            "kup2": h - np.maximum(o, c),
            "klow2": np.minimum(o, c) - lo,
            "ksft2": 2 * c - h - lo,
        }[family]
        return (top / span).mask(span == 0, 0.0)
    if family == "kup":
        return (h - np.maximum(o, c)) / o
    if family == "klow":
        return (np.minimum(o, c) - lo) / o
    if family == "ksft":
        return (2 * c - h - lo) / o
    roll = c.rolling(w)
    if family == "roc":
        return c.shift(w) / c
    if family == "ma":
        return roll.mean() / c
    if family == "std":
        return roll.std(ddof=1) / c
    if family in ("beta", "rsqr", "resi"):
        p = pd.Series(np.arange(len(c), dtype=np.float64), index=c.index)
        slope = roll.cov(p) / p.rolling(w).var()
        if family == "beta":
            return slope / c
        if family == "rsqr":
            return (roll.corr(p) ** 2).mask(_flat(c, w), 0.0)
        return (c - (roll.mean() + slope * (w - 1) / 2)) / c
    if family == "max":
        return h.rolling(w).max() / c
    if family == "min":
        return lo.rolling(w).min() / c
    if family == "qtlu":
        return roll.quantile(0.8) / c
    if family == "qtld":
        return roll.quantile(0.2) / c
    if family == "rank":
        return roll.rank(pct=True)
    if family == "rsv":
        low, high = lo.rolling(w).min(), h.rolling(w).max()
        return ((c - low) / (high - low)).mask(high == low, 0.5)
    if family in ("imax", "imin", "imxd"):
        since_max = h.rolling(w).apply(_days_since_max, raw=True) / w
        since_min = lo.rolling(w).apply(_days_since_min, raw=True) / w
        return {"imax": since_max, "imin": since_min, "imxd": since_min - since_max}[family]
    delta = c.diff()
    if family in ("cntp", "cntn", "cntd"):
        up = (delta > 0).astype(float).where(delta.notna()).rolling(w).mean()
        down = (delta < 0).astype(float).where(delta.notna()).rolling(w).mean()
        return {"cntp": up, "cntn": down, "cntd": up - down}[family]
    if family in ("sump", "sumn", "sumd"):
        return _shares(delta, w, c, family[-1])
    if family in ("vsump", "vsumn", "vsumd"):
        return _shares(v.diff(), w, v, family[-1])
    if family == "corr":
        return _corr(c, np.log1p(v), w)
    if family == "cord":
        return _corr(c / c.shift(1), np.log1p(v).diff(), w)
    if family == "vma":
        return (v.rolling(w).mean() / v).where(v != 0)
    if family == "vstd":
        return (v.rolling(w).std(ddof=1) / v).where(v != 0)
    if family == "wvma":
        z = (c / c.shift(1) - 1.0).abs() * v
        return (z.rolling(w).std(ddof=1) / z.rolling(w).mean()).mask(z.rolling(w).max() == 0, 0.0)
    raise AssertionError(f"no reference for {family}")


def expected(panel: Panel, lives: list[Life | None], name: str) -> np.ndarray:
    family, window = resolve_feature(name)
    index = pd.DatetimeIndex(panel.dates)
    out = np.full(panel.shape, np.nan)
    for i, life in enumerate(lives):
        if life is not None:
            value = reference(family.name, window, life).where(life.reported)
            out[:, i] = value.reindex(index).to_numpy(np.float64)
    return out


# ----------------------------------------------------------------------------- data
def planted_frame(n_dates: int = 260, seed: int = 11) -> pd.DataFrame:
    """Six OHLCV tickers on a cent grid, each with one planted difficulty."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    tickers = ["A", "B", "C", "D", "E", "F"]
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.015, (n_dates, 6)), axis=0))
    close = np.round(close, 2)  # cent prices: equal closes (ties) happen
    close[60:140, 4] = close[60, 4]  # E: flat for 80 days (volume too, below)
    previous = np.vstack([close[:1], close[:-1]])
    opens = np.round(previous * np.exp(rng.normal(0, 0.004, close.shape)), 2)
    spread = np.exp(np.abs(rng.normal(0, 0.006, close.shape)))
    high = np.round(np.maximum(opens, close) * spread, 2)
    low = np.round(np.minimum(opens, close) / spread, 2)
    opens[60:140, 4] = high[60:140, 4] = low[60:140, 4] = close[60, 4]
    volume = np.round(rng.lognormal(12, 0.5, close.shape))
    volume[60:140, 4] = 5e5
    volume[[30, 31, 90], 5] = 0.0  # F: zero-volume days
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, 6),
            "ticker": np.tile(tickers, n_dates),
            "open": opens.reshape(-1),
            "high": high.reshape(-1),
            "low": low.reshape(-1),
            "close": close.reshape(-1),
            "volume": volume.reshape(-1),
        }
    )
    row = np.repeat(np.arange(n_dates), 6)
    ticker = frame["ticker"].to_numpy()
    drop = (ticker == "B") & (row < 70)  # B starts late
    drop |= (ticker == "C") & (((row >= 100) & (row < 103)) | ((row >= 150) & (row < 165)))
    drop |= (ticker == "D") & (row > 200)  # D stops
    frame = frame[~drop].copy()
    f_rows = frame["ticker"].to_numpy() == "F"
    frame.loc[f_rows & np.isin(frame["date"], dates[[50, 51]]), ["open", "high", "low"]] = np.nan
    return frame.reset_index(drop=True)


class Case:
    """A panel, its per-ticker lives and the library's features, computed once."""

    def __init__(self, name: str, panel: Panel, names: list[str]) -> None:
        self.name = name
        self.panel = panel
        self.lives = [_life(panel, i) for i in range(panel.n_tickers)]
        self.features = compute_features(panel, names)

    def column(self, name: str) -> np.ndarray:
        return self.features.values[:, :, self.features.names.index(name)].astype(np.float64)


_CASES: dict[str, Case] = {}


def get_case(name: str) -> Case:
    if name not in _CASES:
        if name == "planted":
            _CASES[name] = Case(name, load_panel(planted_frame()), ["alpha158"])
        elif name == "sp500":
            panel = load_panel("sp500")
            panel = panel.slice_dates(str(pd.Timestamp(panel.dates[-600]).date()))
            _CASES[name] = Case(name, panel, ["alpha158_close"])
        else:
            full = load_panel(require_shared(US600_FILE))
            panel = full.select_tickers(list(SLICE_2016_2017)).slice_dates("2016-07-01")
            _CASES[name] = Case(name, panel, ["alpha158"])
    return _CASES[name]


US600 = pytest.param("us600_2016_2017", marks=pytest.mark.shared_data)


def _names(families: tuple[str, ...]) -> list[str]:
    return [f for f in families if f in KBAR] + [
        f"{f}_{w}" for f in families if f not in KBAR for w in WINDOWS
    ]


# ------------------------------------------------------------------------ features
def test_every_alpha158_family_is_covered():
    assert set(KBAR + CLOSE + RANGE + VOLUME) == {f[0] for f in a158.FAMILIES}
    assert set(KBAR + CLOSE + RANGE + VOLUME) <= set(FEATURE_FAMILIES)
    assert len(FEATURE_GROUPS["alpha158"]) == 9 + 29 * 5


@pytest.mark.parametrize("family", KBAR + RANGE + VOLUME + CLOSE)
@pytest.mark.parametrize("case_name", ["planted", US600])
def test_ohlcv_family_matches_pandas(case_name, family):
    case = get_case(case_name)
    for name in _names((family,)):
        want = expected(case.panel, case.lives, name)
        assert np.isfinite(want).any(), name
        assert_matches(case.column(name), want, f"{name} on {case.name}")


@pytest.mark.parametrize("family", CLOSE)
def test_close_family_matches_pandas_on_sp500(family):
    case = get_case("sp500")
    for name in _names((family,)):
        assert_matches(case.column(name), expected(case.panel, case.lives, name), name)


def test_planted_case_exercises_its_difficulties():
    case = get_case("planted")
    panel, col = case.panel, case.panel.tickers.tolist().index
    first, last = panel.lifetime()
    assert first[col("B")] == 70 and last[col("D")] == 200
    assert (panel.in_life() & ~panel.mask)[:, col("C")].sum() == 18
    assert (panel.fields["volume"][:, col("F")] == 0).sum() == 3
    # Flat stretch of E: every "flat" branch fires, with its documented value.
    e = col("E")
    rows = slice(130, 140)  # 60-day windows inside the flat stretch (it starts at 60)
    for name, value in {
        "kmid2": 0.0,
        "ksft2": 0.0,
        "rsqr_60": 0.0,
        "rsv_60": 0.5,
        "sump_30": 0.5,
        "sumn_30": 0.5,
        "sumd_30": 0.0,
        "vsump_30": 0.5,
        "vsumd_30": 0.0,
        "corr_30": 0.0,
        "cord_30": 0.0,
        "wvma_30": 0.0,
        "std_30": 0.0,
        "imax_60": np.float32(59 / 60),  # float32 values; ties: the oldest day of the window counts
    }.items():
        np.testing.assert_array_equal(case.column(name)[rows, e], value, err_msg=name)
    # Zero volume today: the volume ratios are undefined, the rest is not.
    f = col("F")
    assert np.isnan(case.column("vma_5")[90, f]) and np.isnan(case.column("vstd_5")[90, f])
    assert np.isfinite(case.column("vsump_5")[90, f])
    # Ties on the cent grid occur, so rank's tie rule is exercised.
    close = panel.close.astype(np.float64)
    assert (close[1:] == close[:-1]).sum() > 20


@pytest.mark.parametrize("family", ["beta", "rsqr", "resi"])
def test_regression_matches_polyfit(family):
    """The closed-form rolling OLS against numpy's least squares, window by window."""
    case = get_case("planted")
    life = case.lives[0]
    for w in (5, 30):
        p = np.arange(w, dtype=np.float64)

        def fit(y, p=p, w=w):
            slope, intercept = np.polyfit(p, y, 1)
            if family == "beta":
                return slope / y[-1]
            if family == "resi":
                return (y[-1] - intercept - slope * (w - 1)) / y[-1]
            residual = y - intercept - slope * p
            return 1.0 - (residual @ residual) / ((y - y.mean()) @ (y - y.mean()))

        want = life.close.rolling(w).apply(fit, raw=True)
        got = pd.Series(case.column(f"{family}_{w}")[:, 0], index=case.panel.dates)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=2e-6, atol=1e-6)


def test_warmup_is_the_window():
    """All sp500 tickers start on the first row: a value needs a full window."""
    warmup = get_case("sp500").features.warmup()
    for w in WINDOWS:
        for family in ("ma", "std", "beta", "rsqr", "resi", "qtlu", "qtld", "rank"):
            assert warmup[f"{family}_{w}"] == w - 1, (family, w)  # w closes
        for family in ("roc", "cntp", "cntn", "cntd", "sump", "sumn", "sumd"):
            assert warmup[f"{family}_{w}"] == w, (family, w)  # w changes: w + 1 closes


def test_late_starter_waits_for_its_own_window():
    case = get_case("planted")
    b = case.panel.tickers.tolist().index("B")
    offsets = {"kmid": 0, "ma_20": 19, "roc_20": 20, "imax_30": 29, "cord_10": 10}
    for name, offset in offsets.items():
        column = case.column(name)[:, b]
        assert np.isnan(column[: 70 + offset]).all() and np.isfinite(column[70 + offset]), name


def test_shared_parts_equal_features_computed_alone():
    """Siblings computed together (one regression, one sort) give the same bits alone."""
    panel = get_case("planted").panel
    together = compute_features(panel, ["alpha158_range", "alpha158_close"])
    for name in ("rsqr_20", "resi_5", "qtld_10", "imxd_60", "imin_5", "sumn_30", "cntd_10"):
        alone = compute_features(panel, [name]).values[:, :, 0]
        np.testing.assert_array_equal(alone, together.values[:, :, together.names.index(name)])
    reverse = list(reversed(together.names))
    backwards = compute_features(panel, reverse)
    np.testing.assert_array_equal(backwards.values[:, :, ::-1], together.values)


# ------------------------------------------------------------------------ selection
def test_groups_expand_in_alpha158_order():
    names = expand_feature_names(["alpha158"])
    assert len(names) == 154 and len(set(names)) == 154
    assert names[:9] == list(KBAR)
    assert names[9:14] == ["roc_5", "roc_10", "roc_20", "roc_30", "roc_60"]
    assert set(FEATURE_GROUPS["alpha158_rolling"]) == set(names[9:])
    parts = ("alpha158_kbar", "alpha158_close", "alpha158_range", "alpha158_volume")
    assert sorted(sum((FEATURE_GROUPS[g] for g in parts), ())) == sorted(names)
    for group in parts:  # each group needs only the fields its name says
        fields = {f for n in FEATURE_GROUPS[group] for f in resolve_feature(n)[0].requires}
        assert (
            fields
            == {
                "alpha158_kbar": {"open", "high", "low"},
                "alpha158_close": {"close"},
                "alpha158_range": {"high", "low"},
                "alpha158_volume": {"volume"},
            }[group]
        )


def test_group_overlaps_are_listed_once():
    assert expand_feature_names(["rsi", "alpha158_close", "roc_20"]).count("roc_20") == 1
    assert expand_feature_names(["roc_20", "alpha158_close"])[0] == "roc_20"
    assert len(expand_feature_names(["alpha158", "alpha158_kbar", "kmid"])) == 154
    # By hand twice is still an error, with the feature named.
    with pytest.raises(ConfigError, match="roc_20"):
        compute_features(get_case("planted").panel, ["roc_20", "roc_20"])


def test_config_selects_groups_and_names_bad_entries():
    config = FeatureConfig(names=["alpha158_close", "rsi_14"])
    assert config.names == [*FEATURE_GROUPS["alpha158_close"], "rsi_14"]
    with pytest.raises(ValueError, match=r"'alpha15'.*known groups: \[.*'alpha158_kbar'"):
        FeatureConfig(names=["roc_20", "alpha15"])
    with pytest.raises(ValueError, match=r"'std_1'.*at least 2"):
        FeatureConfig(names=["std_1"])
    with pytest.raises(ValueError, match=r"'kmid' takes no window"):
        FeatureConfig(names=["kmid_5"])
    assert FeatureConfig(names=["roc", "std"]).names == ["roc", "std"]  # default window 20


def test_group_needs_the_fields_of_its_features():
    sp500 = get_case("sp500").panel  # close only
    with pytest.raises(DataError, match=r"'kmid' needs field\(s\) \['open', 'high', 'low'\]"):
        compute_features(sp500, ["alpha158"])
    assert compute_features(sp500, ["alpha158_close"]).n_features == 75


def test_user_groups():
    register_feature_group("my_mix", ["roc_5", "rsi"], overwrite=True)
    try:
        assert expand_feature_names(["my_mix"]) == ["roc_5", "rsi"]
        with pytest.raises(ConfigError, match="feature family"):
            register_feature_group("rsi", ["roc_5"])
        with pytest.raises(ConfigError, match="unknown feature 'nope'"):
            register_feature_group("bad_group", ["nope"])
        with pytest.raises(ConfigError, match="is a group"):
            resolve_feature("my_mix")
    finally:
        FEATURE_GROUPS.pop("my_mix", None)
