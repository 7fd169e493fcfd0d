"""No look-ahead: changing every input after a date D leaves everything at dates <= D unchanged.

The property is checked end to end, loader included: the long-format input is edited
after D (noise, huge jumps, NaN, infinities, zero and negative prices, deleted rows,
deleted dates, tickers that stop trading), re-loaded with :func:`alphaseq.load_panel`,
and every feature (raw, ranked and robust z-scored across tickers), every window of
a sample at t <= D and every label whose horizon ends by D must be bit-identical to
those of the unchanged input. Labels legitimately look ``h`` days ahead, so a label
at t is only compared when ``t + h <= D``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alphaseq
from alphaseq.data.panel import Panel
from alphaseq.features import (
    FEATURE_FAMILIES,
    LABEL_KINDS,
    FeatureScaler,
    compute_features,
    make_labels,
    register_feature,
)
from alphaseq.features.normalize import cross_sectional_normalize
from alphaseq.windows import gather_windows, valid_samples

CROSS_SECTIONS = (None, "rank", "robust_zscore")
HORIZONS = (1, 5, 21)
LOOKBACK = 20
FIELDS = ("close", "open", "high", "low", "volume")
FIELD_MODES = ("noise", "jump", "nan", "inf", "nonpositive")
DELETIONS = ("none", "random_rows", "ticker_tails", "whole_dates", "everything")
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ----------------------------------------------------------------------------- helpers
def assert_bit_identical(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Same shape, dtype, NaN cells and bit pattern of every other cell."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if got.dtype.kind != "f":
        same = got == want
    else:
        bits = np.dtype(f"u{got.dtype.itemsize}")
        nan_got, nan_want = np.isnan(got), np.isnan(want)
        same = (nan_got & nan_want) | (~nan_got & ~nan_want & (got.view(bits) == want.view(bits)))
    if not same.all():
        bad = np.argwhere(~same)
        first = tuple(int(k) for k in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} cells differ, first at index {first}: "
            f"{got[first]!r} (changed input) != {want[first]!r} (original input)"
        )


def features_by_method(panel: Panel, names=None) -> dict[str | None, np.ndarray]:
    values = {}
    for method in CROSS_SECTIONS:
        feature_set = compute_features(panel, names, cross_section=method)
        values[method] = feature_set.values
    return values


def features_once(panel: Panel, names) -> dict[str | None, np.ndarray]:
    """:func:`features_by_method` computing the raw features once: for large sets."""
    raw = compute_features(panel, names).values
    values: dict[str | None, np.ndarray] = {None: raw}
    for method in CROSS_SECTIONS[1:]:
        values[method] = cross_sectional_normalize(raw, method)
    return values


def labels_by_kind(panel: Panel) -> dict[str, np.ndarray]:
    return {kind: make_labels(panel, kind, HORIZONS).values for kind in LABEL_KINDS}


@dataclass(repr=False)
class Case:
    """A long-format input, its panel and everything computed from it once."""

    name: str
    frame: pd.DataFrame
    panel: Panel
    features: dict[str | None, np.ndarray]
    labels: dict[str, np.ndarray]
    interesting: list[int] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example
        return f"<{self.name} case: {self.panel!r}>"


def make_case(name: str, frame: pd.DataFrame) -> Case:
    frame = frame.sort_values(["date", "ticker"]).reset_index(drop=True)
    panel = alphaseq.load_panel(frame)
    n_dates = panel.n_dates
    gaps = panel.in_life() & ~panel.mask
    first, last = panel.lifetime()
    # D rows where a look-ahead would most likely show: gap days, the last trade before a
    # gap, a ticker's last day and the day before a ticker's first day.
    rows = set(np.flatnonzero(gaps.any(axis=1)).tolist())
    rows |= set(np.flatnonzero((gaps[1:] & panel.mask[:-1]).any(axis=1)).tolist())
    rows |= set(last.tolist()) | set((first - 1).tolist())
    interesting = sorted(r for r in rows if 0 <= r <= n_dates - 2)
    return Case(name, frame, panel, features_by_method(panel), labels_by_kind(panel), interesting)


@dataclass(frozen=True)
class Change:
    """What is done to the input after the row ``row`` (D is ``panel.dates[row]``)."""

    row: int
    seed: int
    modes: dict[str, tuple[str, ...]]
    fraction: float
    deletion: str


def _apply_mode(mode: str, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if mode == "noise":
        return values * np.exp(rng.normal(0.0, 0.3, len(values)))
    if mode == "jump":
        return values * rng.choice([1e-6, 1e-3, 1e3, 1e6], len(values))
    if mode == "nan":
        return np.full_like(values, np.nan)
    if mode == "inf":
        return rng.choice([np.inf, -np.inf], len(values))
    if mode == "nonpositive":  # the loader turns these prices (and negative volumes) to NaN
        return np.where(rng.random(len(values)) < 0.5, 0.0, -np.abs(values))
    raise ValueError(mode)


def apply_change(case: Case, change: Change) -> pd.DataFrame:
    """The case's long-format input, edited after date D as ``change`` says."""
    rng = np.random.default_rng(change.seed)
    date = case.panel.dates[change.row]
    dates = case.frame["date"].to_numpy()
    after = dates > date
    rows = np.flatnonzero(after)
    out = case.frame.copy()
    for column, modes in change.modes.items():
        values = out[column].to_numpy(dtype=np.float64, copy=True)
        for mode in modes:
            hit = rows[rng.random(len(rows)) < change.fraction]
            values[hit] = _apply_mode(mode, values[hit], rng)
        out[column] = values
    keep = np.ones(len(out), dtype=bool)
    if change.deletion == "random_rows":
        keep[rows[rng.random(len(rows)) < change.fraction]] = False
    elif change.deletion == "ticker_tails":
        # Tickers that stop trading after D: every ticker without a close at D (in a gap,
        # not started yet) and a random quarter of the others.
        not_trading = ~case.panel.mask[change.row]
        chosen = not_trading | (rng.random(case.panel.n_tickers) < 0.25)
        keep &= ~(after & out["ticker"].isin(case.panel.tickers[chosen]).to_numpy())
    elif change.deletion == "whole_dates":
        later = np.unique(dates[after])
        if len(later):
            gone = later[rng.random(len(later)) < max(change.fraction, 1.0 / len(later))]
            keep &= ~np.isin(dates, gone)
    elif change.deletion == "everything":
        keep &= ~after
    return out[keep]


def check_no_look_ahead(
    case: Case,
    changed: Panel,
    row: int,
    features: dict[str | None, np.ndarray] | None = None,
) -> None:
    """Assert that everything ``changed`` gives at rows <= ``row`` equals the case's."""
    base = case.panel
    n = row + 1
    assert_bit_identical(changed.dates[:n], base.dates[:n], "dates <= D")
    assert changed.n_dates == n or changed.dates[n] > base.dates[row], "a date <= D appeared"
    position = {ticker: k for k, ticker in enumerate(base.tickers)}
    assert set(changed.tickers) <= set(position), "the changed input grew a ticker"
    cols = np.array([position[t] for t in changed.tickers], dtype=np.int64)
    dropped = np.setdiff1d(np.arange(base.n_tickers), cols)
    # A ticker disappears only when it had no valid close at all up to D.
    assert not base.mask[:n, dropped].any(), "a ticker that traded by D was dropped"
    assert_bit_identical(changed.mask[:n], base.mask[:n][:, cols], "mask <= D")

    features = features or features_by_method(changed)
    base_features = case.features
    for method, values in features.items():
        what = f"features (cross_section={method})"
        want = base_features[method]
        assert_bit_identical(values[:n], want[:n][:, cols], f"{what} at dates <= D")
        assert np.isnan(want[:n][:, dropped]).all(), f"{what}: dropped ticker had values"

        # Windows of every sample at t <= D: the same samples, the same numbers.
        got_samples = valid_samples(values, LOOKBACK, mask=changed.mask, end=row)
        want_samples = valid_samples(want, LOOKBACK, mask=base.mask, end=row)
        assert_bit_identical(got_samples.t, want_samples.t, f"{what}: sample dates")
        assert_bit_identical(cols[got_samples.i], want_samples.i, f"{what}: sample tickers")
        if len(got_samples):
            got_x = gather_windows(
                torch.from_numpy(values),
                torch.from_numpy(got_samples.t),
                torch.from_numpy(got_samples.i),
                LOOKBACK,
            )
            want_x = gather_windows(
                torch.from_numpy(want),
                torch.from_numpy(want_samples.t),
                torch.from_numpy(want_samples.i),
                LOOKBACK,
            )
            assert_bit_identical(got_x.numpy(), want_x.numpy(), f"{what}: windows t <= D")

    labels = labels_by_kind(changed)
    for kind, values in labels.items():
        want = case.labels[kind]
        for k, horizon in enumerate(HORIZONS):
            known = max(n - horizon, 0)  # rows t with t + horizon <= D
            assert_bit_identical(
                values[:known, :, k],
                want[:known][:, cols, k],
                f"labels {kind}_{horizon} at t + h <= D",
            )
    # Purged training samples up to D (labels must end by D) are the same samples.
    values = features[None]
    got_train = valid_samples(
        values,
        LOOKBACK,
        labels=labels["forward_return"],
        mask=changed.mask,
        end=row,
        label_horizon=max(HORIZONS),
    )
    want_train = valid_samples(
        base_features[None],
        LOOKBACK,
        labels=case.labels["forward_return"],
        mask=base.mask,
        end=row,
        label_horizon=max(HORIZONS),
    )
    assert_bit_identical(got_train.t, want_train.t, "purged samples: dates")
    assert_bit_identical(cols[got_train.i], want_train.i, "purged samples: tickers")


def draw_change(data: st.DataObject, case: Case) -> Change:
    n_dates = case.panel.n_dates
    rows = st.integers(0, n_dates - 2)
    if case.interesting:
        rows = rows | st.sampled_from(case.interesting)
    row = data.draw(rows, label="row of D")
    columns = [c for c in FIELDS if c in case.frame]
    modes = {
        column: tuple(
            data.draw(
                st.lists(st.sampled_from(FIELD_MODES), max_size=3, unique=True),
                label=f"{column} changes",
            )
        )
        for column in columns
    }
    return Change(
        row=row,
        seed=data.draw(st.integers(0, 2**32 - 1), label="seed"),
        modes=modes,
        fraction=data.draw(st.sampled_from([0.02, 0.3, 1.0]), label="fraction"),
        deletion=data.draw(st.sampled_from(DELETIONS), label="deletion"),
    )


# ----------------------------------------------------------------------------- cases
@pytest.fixture(scope="module")
def sp500_case() -> Case:
    """The embedded sp500 panel (last 700 days), with planted holes.

    The embedded panel has no gaps and every ticker spans the whole sample, so gaps,
    late starts, an early stop and a long halt are planted by deleting rows.
    """
    frame = alphaseq.load_panel("sp500").to_frame()
    dates = np.unique(frame["date"].to_numpy())[-700:]
    frame = frame[frame["date"] >= dates[0]].reset_index(drop=True)
    tickers = np.unique(frame["ticker"].to_numpy())
    rng = np.random.default_rng(20240601)
    drop = np.zeros(len(frame), dtype=bool)
    drop[rng.choice(len(frame), 40, replace=False)] = True  # one-day gaps
    date_col, ticker_col = frame["date"].to_numpy(), frame["ticker"].to_numpy()
    drop |= (ticker_col == tickers[0]) & (date_col > dates[300]) & (date_col <= dates[315])
    drop |= (ticker_col == tickers[1]) & (date_col < dates[150])  # starts late
    drop |= (ticker_col == tickers[2]) & (date_col < dates[420])  # starts late
    drop |= (ticker_col == tickers[3]) & (date_col > dates[550])  # stops trading
    return make_case("sp500", frame[~drop])


@pytest.fixture(scope="module")
def us600_case(us600_path: Path) -> Case:
    """~30 tickers x 600 days of the US 600 reference panel (OHLCV), chosen for gaps,
    late starts and real data errors."""
    frame = pd.read_parquet(us600_path)
    dates = np.unique(frame["date"].to_numpy())
    window = dates[1287 : 1287 + 600]  # 2010-02 .. 2012-06: many gaps in real data
    frame = frame[(frame["date"] >= window[0]) & (frame["date"] <= window[-1])]
    panel = alphaseq.load_panel(frame)
    gap_days = (panel.in_life() & ~panel.mask).sum(axis=0)
    gapped = np.argsort(-gap_days, kind="stable")[:12]  # the gappiest tickers of the window
    first, _ = panel.lifetime()
    late = np.flatnonzero(first > 20)
    others = np.setdiff1d(np.arange(panel.n_tickers), np.union1d(gapped, late))
    chosen = np.unique(np.concatenate([gapped, late[:8], others[::60][:10]]))
    frame = frame[frame["ticker"].isin(panel.tickers[chosen])]
    return make_case("us600", pd.DataFrame(frame))


def test_cases_exercise_gaps_starts_and_stops(sp500_case: Case) -> None:
    panel = sp500_case.panel
    first, last = panel.lifetime()
    assert (panel.in_life() & ~panel.mask).sum() >= 40
    assert (first > 0).sum() == 2 and (last < panel.n_dates - 1).sum() == 1
    assert len(sp500_case.interesting) > 20


# ----------------------------------------------------------------------------- properties
@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_look_ahead_sp500(sp500_case: Case, data: st.DataObject) -> None:
    change = draw_change(data, sp500_case)
    changed = alphaseq.load_panel(apply_change(sp500_case, change))
    check_no_look_ahead(sp500_case, changed, change.row)


@pytest.mark.shared_data
@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_look_ahead_us600(us600_case: Case, data: st.DataObject) -> None:
    change = draw_change(data, us600_case)
    changed = alphaseq.load_panel(apply_change(us600_case, change))
    check_no_look_ahead(us600_case, changed, change.row)


# Alpha158's 154 factors (OHLCV) and its 75 close-only ones. Fewer examples than the
# default set: each one recomputes every factor of the changed input.
ALPHA158_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=8)


def _with_features(case: Case, names: list[str]) -> Case:
    return Case(
        f"{case.name} {names}",
        case.frame,
        case.panel,
        features_once(case.panel, names),
        case.labels,
        case.interesting,
    )


@pytest.fixture(scope="module")
def sp500_alpha158_case(sp500_case: Case) -> Case:
    return _with_features(sp500_case, ["alpha158_close"])


@pytest.fixture(scope="module")
def us600_alpha158_case(us600_case: Case) -> Case:
    return _with_features(us600_case, ["alpha158"])


@ALPHA158_SETTINGS
@given(data=st.data())
def test_no_look_ahead_alpha158_close_sp500(sp500_alpha158_case: Case, data: st.DataObject) -> None:
    change = draw_change(data, sp500_alpha158_case)
    changed = alphaseq.load_panel(apply_change(sp500_alpha158_case, change))
    features = features_once(changed, ["alpha158_close"])
    check_no_look_ahead(sp500_alpha158_case, changed, change.row, features)


@pytest.mark.shared_data
@ALPHA158_SETTINGS
@given(data=st.data())
def test_no_look_ahead_alpha158_us600(us600_alpha158_case: Case, data: st.DataObject) -> None:
    change = draw_change(data, us600_alpha158_case)
    changed = alphaseq.load_panel(apply_change(us600_alpha158_case, change))
    features = features_once(changed, ["alpha158"])
    check_no_look_ahead(us600_alpha158_case, changed, change.row, features)


@pytest.mark.parametrize("deletion", ["ticker_tails", "everything"])
def test_alpha158_on_gap_days(sp500_alpha158_case: Case, deletion: str) -> None:
    """D on a gap day, then everything after it changed: the close factors do not show it."""
    case = sp500_alpha158_case
    panel = case.panel
    gap_rows = np.flatnonzero((panel.in_life() & ~panel.mask).any(axis=1))
    for row in gap_rows[[0, -1]]:
        change = _change_for(case, int(row), deletion)
        changed = alphaseq.load_panel(apply_change(case, change))
        features = features_once(changed, ["alpha158_close"])
        check_no_look_ahead(case, changed, int(row), features)


def _change_for(case: Case, row: int, deletion: str, seed: int = 7) -> Change:
    """Every field of the case changed in 30% of the rows after D, plus ``deletion``."""
    modes = {c: ("noise", "jump", "nan", "nonpositive") for c in FIELDS if c in case.frame}
    return Change(row, seed, modes, 0.3, deletion)


@pytest.mark.parametrize("deletion", DELETIONS)
def test_every_deletion_on_a_gap_day(sp500_case: Case, deletion: str) -> None:
    """D on a day where a ticker is in a gap: whether it trades again must not show."""
    panel = sp500_case.panel
    gap_rows = np.flatnonzero((panel.in_life() & ~panel.mask).any(axis=1))
    for row in gap_rows[[0, len(gap_rows) // 2, -1]]:
        change = _change_for(sp500_case, int(row), deletion)
        changed = alphaseq.load_panel(apply_change(sp500_case, change))
        check_no_look_ahead(sp500_case, changed, int(row))


def test_gap_day_does_not_reveal_whether_the_ticker_trades_again() -> None:
    """A ticker without a close on D: its features on D (and the cross-sectional ranks of
    the others) must be the same whether it resumes trading after D or never does."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=120)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (120, 4)), axis=0))
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, 4),
            "ticker": np.tile(["A", "B", "C", "D"], 120),
            "close": close.reshape(-1),
        }
    )
    gap = (frame["ticker"] == "B") & frame["date"].isin(dates[70:73])  # B halts 3 days
    case = make_case("planted", frame[~gap.to_numpy()])
    for row in (70, 71, 72):
        delisted = apply_change(case, Change(row, 0, {}, 0.0, "ticker_tails"))
        assert "B" not in set(delisted.loc[delisted["date"] > dates[row], "ticker"])
        check_no_look_ahead(case, alphaseq.load_panel(delisted), row)


def test_the_check_catches_a_leaky_feature(sp500_case: Case) -> None:
    """A feature that peeks one day ahead must make the comparison fail."""

    def peek(inputs, window):
        ahead = np.full_like(inputs.close, np.nan)
        ahead[:-1] = inputs.close[1:]
        return ahead

    register_feature("leaky_peek", peek, overwrite=True)
    try:
        names = ["ret_1", "leaky_peek"]
        row = 400
        change = _change_for(sp500_case, row, "none")
        changed = alphaseq.load_panel(apply_change(sp500_case, change))
        case = Case(
            sp500_case.name,
            sp500_case.frame,
            sp500_case.panel,
            features_by_method(sp500_case.panel, names),
            sp500_case.labels,
        )
        with pytest.raises(AssertionError, match=r"features \(cross_section="):
            check_no_look_ahead(case, changed, row, features_by_method(changed, names))
    finally:
        FEATURE_FAMILIES.pop("leaky_peek", None)


# ----------------------------------------------------------------------------- scaler
@pytest.mark.parametrize("method", ["robust", "standard"])
@pytest.mark.parametrize("cross_section", CROSS_SECTIONS)
def test_scaler_fit_ignores_rows_after_the_fit_range(
    sp500_case: Case, method: str, cross_section: str | None
) -> None:
    a, b = 120, 450
    change = _change_for(sp500_case, b, "random_rows")
    changed = alphaseq.load_panel(apply_change(sp500_case, change))
    assert_bit_identical(changed.tickers, sp500_case.panel.tickers, "tickers")
    base_values = sp500_case.features[cross_section]
    changed_values = compute_features(changed, cross_section=cross_section).values
    assert not np.array_equal(base_values[b + 1 :], changed_values[b + 1 :], equal_nan=True)

    fitted = FeatureScaler(method).fit(base_values, slice(a, b + 1))
    refitted = FeatureScaler(method).fit(changed_values, slice(a, b + 1))
    for attribute in ("center_", "scale_", "n_samples_"):
        assert_bit_identical(
            getattr(refitted, attribute), getattr(fitted, attribute), f"scaler {attribute}"
        )
    assert_bit_identical(
        refitted.transform(changed_values[: b + 1]),
        fitted.transform(base_values[: b + 1]),
        "scaled features at dates <= b",
    )
    # fit_transform on the whole array uses the same rows only.
    assert_bit_identical(
        FeatureScaler(method).fit_transform(changed_values, np.arange(a, b + 1))[: b + 1],
        fitted.transform(base_values)[: b + 1],
        "fit_transform at dates <= b",
    )
