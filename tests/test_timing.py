"""Single-asset timing: positions from signals and their backtest, checked by hand.

Every return of the six-day examples is written out from the rules of
:mod:`alphaseq.portfolio.timing`: the position decided at the close of day t earns
day t + 1's return, a short earns -r, and 10 bps are paid on every unit of position
traded at a close. A fraction of NAV drifts over the day (``drift``) and holding it
constant means trading the drift back, which is charged too: the engine's accounting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaseq.backtest import PERFORMANCE_KEYS, backtest, performance_metrics
from alphaseq.portfolio.timing import TIMING_KEYS, timing_backtest, timing_positions

K = 10 / 1e4  # 10 bps per unit traded


def drift(p: float, r: float) -> float:
    """The fraction of NAV that a position ``p`` has become after a return ``r``."""
    return p * (1 + r) / (1 + p * r)


def series(values, start="2021-01-04") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


# ---------------------------------------------------------------------------- positions
def test_regression_positions_by_hand():
    f = [0.01, -0.02, 0.005, 0.04]
    # Median |f| up to and including each day: 0.01, 0.015, 0.01, 0.015.
    np.testing.assert_allclose(timing_positions(f, mode="long_short"), [1, -1, 0.5, 1])
    np.testing.assert_allclose(timing_positions(f), [1, 0, 0.5, 1])  # long/flat
    np.testing.assert_allclose(
        timing_positions(f, mode="long_short", cap=0.8), [0.8, -0.8, 0.5, 0.8]
    )
    np.testing.assert_allclose(
        timing_positions(f, mode="long_short", scale=0.04), [0.25, -0.5, 0.125, 1]
    )
    np.testing.assert_allclose(
        timing_positions(f, mode="long_short", threshold=0.008), [1, -1, 0, 1]
    )
    # A Series works the same; NaN (no forecast) is flat and stays out of the scale.
    np.testing.assert_allclose(timing_positions(series([np.nan, 0.01, -0.005])), [0, 1, 0])
    np.testing.assert_allclose(
        timing_positions([np.nan, 0.01, -0.005], mode="long_short"), [0, 1, -0.005 / 0.0075]
    )
    # Mostly-zero forecasts so far: the typical size is 0 and a non-zero one gets the cap.
    np.testing.assert_allclose(
        timing_positions([0.0, 0.0, 0.01, -0.01], mode="long_short"), [0, 0, 1, -1]
    )


def test_classification_positions_by_hand():
    p_up_minus_down = [0.6, -0.2, 0.05, -0.9]
    np.testing.assert_allclose(
        timing_positions(p_up_minus_down, kind="classification", cap=0.5), [0.5, 0, 0.05, 0]
    )
    np.testing.assert_allclose(
        timing_positions(p_up_minus_down, kind="classification", mode="long_short", cap=0.5),
        [0.5, -0.2, 0.05, -0.5],
    )
    np.testing.assert_allclose(
        timing_positions(p_up_minus_down, kind="classification", mode="long_short", threshold=0.1),
        [0.6, -0.2, 0, -0.9],
    )


@pytest.mark.parametrize("cap", [0.25, 0.7, 1.0])
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_cap_respected(cap, kind):
    rng = np.random.default_rng(0)
    signal = np.tanh(rng.standard_t(2, 500))  # heavy tails, within [-1, 1]
    both = timing_positions(signal, kind=kind, mode="long_short", cap=cap)
    flat = timing_positions(signal, kind=kind, cap=cap)
    assert np.abs(both).max() == pytest.approx(cap)
    assert both.min() >= -cap and both.max() <= cap
    assert flat.min() == 0.0 and flat.max() <= cap
    np.testing.assert_array_equal(flat, np.maximum(both, 0.0))


# ---------------------------------------------------------------------------- backtest
PRICES = [100.0, 102.0, 99.0, 100.0, 98.0, 99.0]


def test_long_flat_short_path_by_hand():
    # Long for two days, flat, short for two days, flat on the last close.
    positions = timing_positions(
        [1.0, 1.0, 0.0, -1.0, -1.0, 0.0], kind="classification", mode="long_short"
    )
    np.testing.assert_array_equal(positions, [1, 1, 0, -1, -1, 0])
    out = timing_backtest(series(PRICES), series(positions))
    # The short drifts: -1 becomes -0.98 / 1.02 after -2 %, -99 / 97 after +1/98.
    resize, cover = 1 - 0.98 / 1.02, 99 / 97
    assert drift(-1, -0.02) == pytest.approx(-0.98 / 1.02) and drift(-1, 1 / 98) == cover * -1
    expected = [
        -K,  # buy 1 at the first close; nothing held yet
        0.02,  # long: 102 / 100 - 1 (a whole long position does not drift)
        (1 - 3 / 102) * (1 - K) - 1,  # long: 99 / 102 - 1, then sell 1
        -K,  # flat (the price's +1/99 is not earned), then short 1
        1.02 * (1 - K * resize) - 1,  # short: -(98 / 100 - 1), then sell the drift back
        (1 - 1 / 98) * (1 - K * cover) - 1,  # short: -(99 / 98 - 1), then buy back 99/97
    ]
    np.testing.assert_allclose(out["returns"].to_numpy(), expected, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(out["costs"].to_numpy(), K * np.array([1, 0, 1, 1, resize, cover]))
    assert out["returns"].index.equals(series(PRICES).index)

    m = out["metrics"]
    assert tuple(m) == PERFORMANCE_KEYS + TIMING_KEYS
    assert m["time_in_market"] == 4 / 5  # held on days 2, 3, 5, 6 of the 5 holding days
    assert m["n_trades"] == 2
    # Long trade: 1.02 * 99/102 * (1 - K)^2 - 1 < 0; the short trade wins after its costs.
    assert 0.99 * (1 - K) ** 2 < 1 < 1.02 * 97 / 98 * (1 - K) * (1 - K * resize) * (1 - K * cover)
    assert m["win_rate"] == 0.5
    turnover = (0 + 1 + 1 + resize + cover) / 5 / 2  # one-way, traded on days 2..6
    assert m["turnover"] == pytest.approx(turnover)
    assert m["total_return"] == pytest.approx(np.prod(1 + np.array(expected)) - 1, rel=1e-12)
    hold = out["buy_and_hold"]
    common = performance_metrics(out["returns"], benchmark=hold["returns"], turnover=turnover)
    for key in PERFORMANCE_KEYS:
        if isinstance(common[key], float):
            assert m[key] == pytest.approx(common[key], rel=1e-12), key
        else:
            assert m[key] == common[key], key

    np.testing.assert_allclose(
        hold["returns"].to_numpy(), [-K, 0.02, 99 / 102 - 1, 1 / 99, -0.02, 1 / 98], rtol=1e-13
    )
    hm = hold["metrics"]
    assert (hm["time_in_market"], hm["n_trades"], hm["win_rate"]) == (1.0, 1, 0.0)
    assert hm["total_return"] == pytest.approx(0.99 * (1 - K) - 1, rel=1e-12)
    assert hm["turnover"] == 0.0 and hm["information_ratio"] is None


def test_flip_and_resize_costs_by_hand():
    prices = series([100.0, 101.0, 100.0, 102.0])
    out = timing_backtest(prices, series([0.5, -1.0, -0.5, 0.5]), cost_bps=10.0)
    d1, d2, d3 = drift(0.5, 0.01), drift(-1, -1 / 101), drift(-0.5, 0.02)
    expected = [
        -0.5 * K,  # buy 0.5
        (1 + 0.5 * 0.01) * (1 - (1 + d1) * K) - 1,  # +0.5 * 1 %, then flip d1 -> -1
        (1 + 1 / 101) * (1 - (-0.5 - d2) * K) - 1,  # short 1 earns +1/101, cover d2 -> -0.5
        (1 - 0.5 * 0.02) * (1 - (0.5 - d3) * K) - 1,  # short 0.5 loses 1 %, flip to +0.5
    ]
    np.testing.assert_allclose(out["returns"].to_numpy(), expected, rtol=1e-13, atol=1e-16)
    # Trades: long on day 2 (entry 0.5, exit d1 of the flip) wins 1.005 * (1 - 0.5K)^2 - 1;
    # short on days 3-4 (entry 1, resize, exit) loses 102/101 * 0.99 * ... - 1.
    # The +0.5 opened at the last close has no holding day and is no trade.
    assert 1.005 * (1 - 0.5 * K) ** 2 > 1 > 102 / 101 * 0.99
    m = out["metrics"]
    assert (m["n_trades"], m["win_rate"], m["time_in_market"]) == (2, 0.5, 1.0)


def test_costs_decide_the_trade():
    # +0.15 % before costs, 2 x 10 bps of costs: a losing trade; 2 x 5 bps: a winning one.
    prices, positions = series([100.0, 100.15, 100.15]), series([1.0, 0.0, 0.0])
    assert 1.0015 * (1 - K) ** 2 < 1 < 1.0015 * (1 - K / 2) ** 2
    assert timing_backtest(prices, positions)["metrics"]["win_rate"] == 0.0
    assert timing_backtest(prices, positions, cost_bps=5)["metrics"]["win_rate"] == 1.0
    # At a flip the old trade pays for closing 1 only (1.0025 * (1 - K)^2 > 1), not for
    # the whole 2 traded (1.0025 * (1 - K) * (1 - 2K) < 1); the short then loses its costs.
    assert 1.0025 * (1 - K) * (1 - 2 * K) < 1 < 1.0025 * (1 - K) ** 2
    flip = timing_backtest(series([100.0, 100.25, 100.25]), series([1.0, -1.0, 0.0]))
    assert (flip["metrics"]["n_trades"], flip["metrics"]["win_rate"]) == (2, 0.5)


def test_trade_open_at_the_end_and_no_trades():
    prices = series([100.0, 101.0, 103.0])
    m = timing_backtest(prices, series([1.0, 1.0, 0.5]))["metrics"]
    # One long trade over days 2-3, resized to 0.5 at the last close and still open.
    assert (m["n_trades"], m["win_rate"], m["time_in_market"]) == (1, 1.0, 1.0)
    m = timing_backtest(prices, series([0.0, 0.0, 0.0]))["metrics"]
    assert (m["n_trades"], m["win_rate"], m["time_in_market"]) == (0, None, 0.0)
    assert m["total_return"] == 0.0 and m["sharpe"] is None
    one = timing_backtest(series([100.0]), series([1.0]))["metrics"]
    assert one["time_in_market"] is None and one["n_trades"] == 0


def test_classification_signal_path():
    # P(up) - P(down) from a classifier, long/flat at half size at most.
    signal = [0.3, 0.8, -0.4, 0.1, 0.6, -0.2]
    positions = timing_positions(signal, kind="classification", cap=0.5)
    np.testing.assert_allclose(positions, [0.3, 0.5, 0, 0.1, 0.5, 0])
    out = timing_backtest(series(PRICES), series(positions))
    r = [0, 0.02, 99 / 102 - 1, 1 / 99, -0.02, 1 / 98]
    p = [0.3, 0.5, 0, 0.1, 0.5, 0]
    held = [0, *p[:-1]]
    traded = [abs(p[t] - (drift(held[t], r[t]) if t else 0)) for t in range(6)]
    gross = [h * x for h, x in zip(held, r, strict=True)]
    expected = [(1 + g) * (1 - K * d) - 1 for g, d in zip(gross, traded, strict=True)]
    np.testing.assert_allclose(out["returns"].to_numpy(), expected, rtol=1e-13, atol=1e-16)
    m = out["metrics"]
    # Trades: days 2-3 (0.3, 0.5 long) and days 5-6 (0.1, 0.5 long).
    assert (m["n_trades"], m["time_in_market"]) == (2, 4 / 5)
    first = (1.006) * (1 + 0.5 * (99 / 102 - 1)) * np.prod([1 - K * d for d in traded[:3]])
    second = (1 - 0.002) * (1 + 0.5 / 98) * np.prod([1 - K * d for d in traded[3:]])
    assert first < 1 < second
    assert m["win_rate"] == 0.5


def test_timing_is_the_engine_rebalanced_daily():
    # The one backtest engine decides timing's returns: the same positions as daily
    # target weights give bit-identical returns, and a constant half position pays for
    # trading its drift back every day, while buy-and-hold pays once.
    rng = np.random.default_rng(3)
    prices = series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200))))
    positions = series(timing_positions(rng.normal(0, 0.01, 200), mode="long_short"))
    out = timing_backtest(prices, positions, cost_bps=7.0)
    close = prices.to_numpy()[:, None]
    engine = backtest(close, np.arange(200), positions.to_numpy()[:, None], cost_bps=7.0)
    np.testing.assert_array_equal(out["returns"].to_numpy(), engine.returns)
    hold = backtest(close, np.array([0]), np.ones((1, 1)), cost_bps=7.0)
    np.testing.assert_array_equal(out["buy_and_hold"]["returns"].to_numpy(), hold.returns)

    half = timing_backtest(prices, series(np.full(200, 0.5)))
    assert (half["costs"].to_numpy()[1:] > 0).all()
    assert half["metrics"]["n_trades"] == 1
    assert (half["buy_and_hold"]["costs"].to_numpy()[1:] == 0).all()


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_causality(kind):
    rng = np.random.default_rng(11)
    n, cut = 300, 150
    prices = series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))
    signal = np.tanh(rng.normal(0, 1, n)) * (0.01 if kind == "regression" else 1)
    before = timing_backtest(
        prices, series(timing_positions(signal, kind=kind, mode="long_short"))
    )["returns"]
    # Rewrite every price and signal after the cut.
    prices.iloc[cut + 1 :] = 100 * np.exp(rng.normal(0, 0.3, n - cut - 1))
    signal[cut + 1 :] = -signal[cut + 1 :] * 3 if kind == "regression" else -signal[cut + 1 :]
    after = timing_backtest(prices, series(timing_positions(signal, kind=kind, mode="long_short")))[
        "returns"
    ]
    np.testing.assert_array_equal(before.to_numpy()[: cut + 1], after.to_numpy()[: cut + 1])
    assert not np.array_equal(before.to_numpy()[cut + 1 :], after.to_numpy()[cut + 1 :])


# -------------------------------------------------------------------------- bad inputs
def test_bad_backtest_inputs():
    prices, positions = series(PRICES), series([1.0] * 6)
    with pytest.raises(ValueError, match="share the same index"):
        timing_backtest(prices, series([1.0] * 6, start="2021-01-05"))
    with pytest.raises(ValueError, match="5 dates and prices 6"):
        timing_backtest(prices, positions.iloc[:5])
    with pytest.raises(ValueError, match=r"2021-01-06.*finite and positive"):
        timing_backtest(series([100, 101, np.nan, 102, 103, 104]), positions)
    with pytest.raises(ValueError, match="finite and positive"):
        timing_backtest(series([100, 101, 0, 102, 103, 104]), positions)
    with pytest.raises(ValueError, match=r"within \[-1, 1\]"):
        timing_backtest(prices, series([1.5] * 6))
    with pytest.raises(ValueError, match="position at"):
        timing_backtest(prices, series([1.0, np.nan, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="increasing"):
        shuffled = prices.iloc[::-1]
        timing_backtest(shuffled, positions.iloc[::-1])
    with pytest.raises(ValueError, match="cost_bps"):
        timing_backtest(prices, positions, cost_bps=-1)
    with pytest.raises(TypeError, match="Series"):
        timing_backtest(prices, positions.to_numpy())


def test_bad_position_arguments():
    with pytest.raises(ValueError, match="mode"):
        timing_positions([0.1], mode="short_only")
    with pytest.raises(ValueError, match="kind"):
        timing_positions([0.1], kind="ranking")
    for cap in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match="cap"):
            timing_positions([0.1], cap=cap)
    with pytest.raises(ValueError, match="scale"):
        timing_positions([0.1], scale=0.0)
    with pytest.raises(ValueError, match="threshold"):
        timing_positions([0.1], threshold=-0.1)
    with pytest.raises(ValueError, match="infinite"):
        timing_positions([0.1, np.inf])
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        timing_positions([0.5, 1.2], kind="classification")
    with pytest.raises(ValueError, match="1-D"):
        timing_positions(np.zeros((3, 2)))
