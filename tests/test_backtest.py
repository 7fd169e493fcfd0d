"""The backtest engine: a hand-computed example, accounting identities, no look-ahead, errors.

Expected NAVs are written out with plain Python arithmetic from the prices, never with
the engine's own array code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaseq.backtest import (
    backtest,
    buy_and_hold,
    equal_weight_targets,
    month_end_rows,
    tradable,
)

NAN = float("nan")


def random_close(seed: int, n_dates: int = 60, n_tickers: int = 5, missing: float = 0.0):
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (n_dates, n_tickers)), axis=0))
    close[rng.random(close.shape) < missing] = np.nan
    return close


# ---------------------------------------------------------------- hand-computed example
# Rows 0..7; A trades every day, B has a gap at row 2, C stops trading after row 3.
HAND_CLOSE = np.array(
    [
        # A     B     C
        [10.0, 20.0, 50.0],
        [10.0, 20.0, 50.0],  # rebalance 1
        [11.0, NAN, 55.0],  # B: no price, keeps 20
        [12.0, 22.0, 60.0],
        [11.0, 21.0, NAN],  # C stopped: held at 60
        [12.0, 24.0, NAN],  # rebalance 2: C sold at 60
        [12.5, 24.0, NAN],
        [13.0, 25.0, NAN],
    ]
)
HAND_ROWS = np.array([1, 5])
HAND_TARGETS = np.array([[0.4, 0.3, 0.2], [0.5, 0.5, 0.0]])


def test_hand_computed_example():
    result = backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS, cost_bps=10.0)
    k = 10.0 / 1e4

    # Row 1: buy 0.4 + 0.3 + 0.2 from cash, keep 0.1 in cash.
    turnover_1 = 0.4 + 0.3 + 0.2
    nav_1 = 1.0 * (1 - k * turnover_1)
    # Rows 2..5: holdings per unit of post-trade NAV drift with close / close at row 1.
    g2 = 0.1 + 0.4 * 11 / 10 + 0.3 * 20 / 20 + 0.2 * 55 / 50
    g3 = 0.1 + 0.4 * 12 / 10 + 0.3 * 22 / 20 + 0.2 * 60 / 50
    g4 = 0.1 + 0.4 * 11 / 10 + 0.3 * 21 / 20 + 0.2 * 60 / 50
    g5 = 0.1 + 0.4 * 12 / 10 + 0.3 * 24 / 20 + 0.2 * 60 / 50
    nav_2, nav_3, nav_4 = nav_1 * g2, nav_1 * g3, nav_1 * g4
    nav_5_before = nav_1 * g5
    # Row 5: drifted weights, then trade to (0.5, 0.5, 0) and sell C at its last close.
    drift_5 = [0.4 * 12 / 10 / g5, 0.3 * 24 / 20 / g5, 0.2 * 60 / 50 / g5]
    turnover_5 = abs(0.5 - drift_5[0]) + abs(0.5 - drift_5[1]) + abs(0.0 - drift_5[2])
    nav_5 = nav_5_before * (1 - k * turnover_5)
    nav_6 = nav_5 * (0.5 * 12.5 / 12 + 0.5 * 24 / 24)
    nav_7 = nav_5 * (0.5 * 13 / 12 + 0.5 * 25 / 24)
    navs = [nav_1, nav_2, nav_3, nav_4, nav_5, nav_6, nav_7]

    np.testing.assert_array_equal(result.rows, np.arange(1, 8))
    np.testing.assert_allclose(result.nav, navs, rtol=1e-13)
    previous = [1.0, *navs[:-1]]
    np.testing.assert_allclose(
        result.returns, [n / p - 1 for n, p in zip(navs, previous, strict=True)], atol=1e-15
    )
    assert result.returns[0] == pytest.approx(-k * 0.9, abs=1e-16)
    np.testing.assert_allclose(
        result.gross_returns,
        [0.0, g2 - 1, g3 / g2 - 1, g4 / g3 - 1, g5 / g4 - 1, nav_6 / nav_5 - 1, nav_7 / nav_6 - 1],
        atol=1e-15,
    )
    np.testing.assert_allclose(result.traded, [turnover_1, turnover_5], rtol=1e-14)
    # Turnover is the one-way figure, half the amount traded.
    np.testing.assert_allclose(result.turnover, [turnover_1 / 2, turnover_5 / 2], rtol=1e-14)
    np.testing.assert_allclose(result.costs, [k * turnover_1, k * turnover_5], rtol=1e-14)
    np.testing.assert_allclose(result.weights_before, [[0.0, 0.0, 0.0], drift_5], rtol=1e-14)
    np.testing.assert_array_equal(result.weights_after, HAND_TARGETS)
    np.testing.assert_array_equal(result.rebalance_rows, HAND_ROWS)
    np.testing.assert_allclose(result.nav, np.cumprod(1 + result.returns), rtol=1e-15)


def test_end_row_truncates_and_matches_the_full_run():
    full = backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS)
    part = backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS, end_row=6)
    np.testing.assert_array_equal(part.rows, np.arange(1, 7))
    np.testing.assert_array_equal(part.returns, full.returns[:-1])


def test_rebalance_on_end_row_pays_its_cost():
    result = backtest(HAND_CLOSE, np.array([1, 5]), HAND_TARGETS, end_row=5)
    assert result.rows[-1] == 5
    assert result.returns[-1] == pytest.approx(
        (1 + result.gross_returns[-1]) * (1 - result.costs[-1]) - 1, abs=1e-15
    )


# ----------------------------------------------------------------- accounting identities
def test_daily_equal_weight_without_costs_is_the_mean_return():
    close = random_close(0, missing=0.1)
    rows = np.arange(len(close))
    result = backtest(close, rows, equal_weight_targets(close, rows), cost_bps=0.0)
    # A ticker bought at t-1 that has no price at t earns 0 that day; the move from its
    # last close is realised when it trades again.
    filled = pd.DataFrame(close).ffill().to_numpy()
    step = filled[1:] / filled[:-1] - 1
    held = np.isfinite(close[:-1])
    assert not np.isfinite(close).all()  # the example has gaps
    expected = [np.nan_to_num(step[t][held[t]]).mean() for t in range(len(step))]
    np.testing.assert_allclose(result.returns[1:], expected, atol=1e-14)
    assert result.returns[0] == 0.0


def test_zero_turnover_when_targets_equal_the_drifted_weights():
    close = random_close(1)
    rows = np.array([5, 20, 40])
    first = backtest(close, rows[:2], np.full((2, 5), 0.18))
    targets = np.vstack([np.full(5, 0.18), first.weights_before[1], np.full(5, 0.2)])
    result = backtest(close, rows, targets, cost_bps=25.0)
    assert result.turnover[1] == pytest.approx(0.0, abs=1e-15)
    assert result.costs[1] == pytest.approx(0.0, abs=1e-18)
    assert result.returns[rows[1] - rows[0]] == pytest.approx(
        result.gross_returns[rows[1] - rows[0]], abs=1e-15
    )


def test_costs_scale_linearly_with_cost_bps():
    close = random_close(2, missing=0.05)
    rows = month_end_rows(pd.bdate_range("2020-01-01", periods=len(close)))
    targets = equal_weight_targets(close, rows)
    runs = {bps: backtest(close, rows, targets, cost_bps=bps) for bps in (0.0, 10.0, 20.0)}
    np.testing.assert_allclose(runs[20.0].costs, 2 * runs[10.0].costs, rtol=1e-14)
    np.testing.assert_allclose(runs[10.0].costs, runs[10.0].traded * 1e-3, rtol=1e-14)
    np.testing.assert_array_equal(runs[0.0].costs, 0.0)
    for run in runs.values():
        np.testing.assert_array_equal(run.turnover, runs[0.0].turnover)
        np.testing.assert_array_equal(run.gross_returns, runs[0.0].gross_returns)
    np.testing.assert_array_equal(runs[0.0].returns, runs[0.0].gross_returns)
    assert runs[20.0].nav[-1] < runs[10.0].nav[-1] < runs[0.0].nav[-1]


def test_all_cash_earns_nothing_and_float32_prices_are_accepted():
    close = random_close(3).astype(np.float32)
    result = backtest(close, np.array([0, 30]), np.zeros((2, 5)))
    np.testing.assert_array_equal(result.returns, 0.0)
    np.testing.assert_array_equal(result.nav, 1.0)


def test_average_turnover_leaves_out_the_initial_buy():
    result = backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS)
    assert result.average_turnover == result.turnover[1]
    one = backtest(HAND_CLOSE, HAND_ROWS[:1], HAND_TARGETS[:1])
    assert np.isnan(one.average_turnover)


def test_to_series_is_indexed_by_the_traded_dates():
    dates = pd.bdate_range("2021-03-01", periods=len(HAND_CLOSE))
    series = backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS).to_series(dates.to_numpy())
    assert list(series.index) == list(dates[1:])


# ------------------------------------------------------------------------ no look-ahead
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    cutoff=st.integers(0, 59),
    every=st.integers(1, 15),
    mode=st.sampled_from(["noise", "nan", "stop", "jump"]),
)
def test_changing_prices_after_a_date_leaves_earlier_returns_unchanged(seed, cutoff, every, mode):
    close = random_close(seed % 1000, missing=0.1)
    rng = np.random.default_rng(seed)
    changed = close.copy()
    after = changed[cutoff + 1 :]
    if mode == "noise":
        after *= np.exp(rng.normal(0, 0.2, after.shape))
    elif mode == "nan":
        after[rng.random(after.shape) < 0.5] = np.nan
    elif mode == "stop":
        after[:, rng.random(after.shape[1]) < 0.5] = np.nan
    else:
        after *= 1e6
    rows = np.arange(3, len(close), every)
    # Targets come from each panel's own prices: a strategy sees only data up to its row.
    want = backtest(close, rows, equal_weight_targets(close, rows), cost_bps=15.0)
    got = backtest(changed, rows, equal_weight_targets(changed, rows), cost_bps=15.0)
    upto = got.rows <= cutoff
    np.testing.assert_array_equal(got.returns[upto], want.returns[upto])
    np.testing.assert_array_equal(got.gross_returns[upto], want.gross_returns[upto])
    np.testing.assert_array_equal(got.nav[upto], want.nav[upto])
    decided = rows <= cutoff
    np.testing.assert_array_equal(got.turnover[decided], want.turnover[decided])
    np.testing.assert_array_equal(got.weights_before[decided], want.weights_before[decided])


def test_the_rebalance_day_return_belongs_to_the_old_holdings():
    # Moving into A at row 2 must not capture A's jump on row 2 itself.
    close = np.array([[10.0, 10.0], [10.0, 10.0], [20.0, 10.0], [20.0, 10.0]])
    result = backtest(close, np.array([1, 2]), np.array([[0.0, 1.0], [1.0, 0.0]]), cost_bps=0)
    np.testing.assert_array_equal(result.returns, [0.0, 0.0, 0.0])


# ------------------------------------------------------------------------------ helpers
def test_tradable_and_equal_weight_targets():
    np.testing.assert_array_equal(tradable(HAND_CLOSE, 2), [True, False, True])
    targets = equal_weight_targets(HAND_CLOSE, np.array([2, 4]))
    np.testing.assert_allclose(targets, [[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    eligible = np.ones(HAND_CLOSE.shape, dtype=bool)
    eligible[4, 0] = False
    targets = equal_weight_targets(HAND_CLOSE, np.array([4]), eligible)
    np.testing.assert_allclose(targets, [[0.0, 1.0, 0.0]])
    empty = equal_weight_targets(np.full((2, 3), np.nan), np.array([1]))
    np.testing.assert_array_equal(empty, 0.0)


def test_buy_and_hold():
    prices = np.array([np.nan, 100.0, 110.0, np.nan, 121.0, 110.0])
    np.testing.assert_allclose(
        buy_and_hold(prices), [0.0, 0.0, 0.1, 0.0, 0.1, 110 / 121 - 1], atol=1e-15
    )
    np.testing.assert_allclose(
        buy_and_hold(prices, start_row=2, end_row=4), [0.0, 0.0, 0.1], atol=1e-15
    )


def test_month_end_rows():
    dates = pd.to_datetime(
        ["2020-01-30", "2020-01-31", "2020-02-03", "2020-02-28", "2020-03-02", "2020-03-03"]
    )
    np.testing.assert_array_equal(month_end_rows(dates), [1, 3, 5])
    np.testing.assert_array_equal(month_end_rows(dates, start_row=2, end_row=4), [3, 4])
    np.testing.assert_array_equal(month_end_rows(dates.to_numpy(), end_row=0), [0])


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("rows", "targets", "message"),
    [
        (np.array([1, 1]), HAND_TARGETS, "strictly increasing"),
        (np.array([5, 1]), HAND_TARGETS, "strictly increasing"),
        (np.array([], dtype=int), np.zeros((0, 3)), "non-empty"),
        (np.array([1, 9]), HAND_TARGETS, "within"),
        (np.array([1.0, 5.0]), HAND_TARGETS, "integers"),
        (HAND_ROWS, HAND_TARGETS[:, :2], "shape"),
        (HAND_ROWS, HAND_TARGETS[:1], "shape"),
        (HAND_ROWS, np.array([[0.5, 0.5, 0.1], [0.5, 0.5, 0.0]]), "row 1 sum to 1.1"),
        (HAND_ROWS, np.array([[0.4, np.nan, 0.2], [0.5, 0.5, 0.0]]), "not finite"),
        (HAND_ROWS, np.array([[0.4, 0.3, 0.2], [0.4, 0.3, 0.2]]), "column 2 at row 5"),
        (np.array([2, 5]), HAND_TARGETS, "column 1 at row 2"),
    ],
)
def test_bad_inputs_are_refused(rows, targets, message):
    with pytest.raises(ValueError, match=message):
        backtest(HAND_CLOSE, rows, targets)


def test_bad_prices_costs_and_end_row_are_refused():
    bad = HAND_CLOSE.copy()
    bad[3, 1] = 0.0
    with pytest.raises(ValueError, match="row 3, ticker column 1"):
        backtest(bad, HAND_ROWS, HAND_TARGETS)
    # A bad price after end_row is never read.
    assert len(backtest(bad, np.array([1]), HAND_TARGETS[:1], end_row=2).rows) == 2
    with pytest.raises(ValueError, match="cost_bps"):
        backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS, cost_bps=-1)
    with pytest.raises(ValueError, match="end_row"):
        backtest(HAND_CLOSE, HAND_ROWS, HAND_TARGETS, end_row=8)
    with pytest.raises(ValueError, match="close must be"):
        backtest(HAND_CLOSE[:, 0], HAND_ROWS, HAND_TARGETS)


def test_weights_within_tolerance_and_short_weights_are_accepted():
    targets = np.array([[1 / 3, 1 / 3, 1 / 3 + 1e-12], [1.2, -0.2, 0.0]])
    result = backtest(HAND_CLOSE, HAND_ROWS, targets, cost_bps=0.0)
    # Row 6 after the second trade: 1.2 * A's move - 0.2 * B's (flat) move.
    assert result.gross_returns[5] == pytest.approx(1.2 * (12.5 / 12 - 1), rel=1e-12)


def test_policy_sees_drifted_weights_and_matches_fixed_targets():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(60, 4)), axis=0))
    rows = np.array([5, 25, 45])
    targets = np.array([[0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25], [0, 0, 0.5, 0.5]])
    fixed = backtest(close, rows, targets, cost_bps=10)
    seen = []

    def policy(r, row, drifted):
        seen.append((r, row, drifted))
        return targets[r]

    sequential = backtest(close, rows, policy, cost_bps=10)
    np.testing.assert_array_equal(fixed.returns, sequential.returns)
    np.testing.assert_array_equal(sequential.weights_after, targets)
    assert [(r, row) for r, row, _ in seen] == [(0, 5), (1, 25), (2, 45)]
    np.testing.assert_array_equal(seen[1][2], fixed.weights_before[1])
    # drifted weights of the first holding: 0.5 each, moved by the two prices
    growth = close[25, :2] / close[5, :2]
    np.testing.assert_allclose(seen[1][2][:2], 0.5 * growth / (0.5 * growth).sum())


def test_policy_targets_are_checked():
    close = np.ones((10, 2))
    with pytest.raises(ValueError, match="sum to"):
        backtest(close, np.array([2]), lambda r, row, drifted: np.array([0.8, 0.8]))
