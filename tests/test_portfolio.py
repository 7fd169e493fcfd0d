"""Constrained portfolio construction: the projection, the constructors, the policy.

Closed forms are derived here with plain numpy, never with the optimisers under test.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from skfolio.optimization import HierarchicalRiskParity
from sklearn.covariance import ledoit_wolf

import alphaseq
from alphaseq.backtest import backtest, month_end_rows, tradable
from alphaseq.errors import ConfigError
from alphaseq.portfolio import (
    HRP,
    EqualWeight,
    MeanVariance,
    PortfolioConstraints,
    Tilt,
    TopK,
    make_policy,
)
from alphaseq.portfolio import constructors as constructors_module

NAN = float("nan")
NO_CAPS = PortfolioConstraints(max_turnover=None)


# ------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def market():
    """S&P 500 sample 2014-2020 with a delisting, a late listing and a price gap."""
    panel = alphaseq.load_panel("sp500").slice_dates("2014-01-01", "2020-12-31")
    close = panel.close.astype(np.float64).copy()
    dates = panel.dates
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    close[dates >= np.datetime64("2017-06-15"), 3] = NAN  # stops trading mid-2017
    close[dates < np.datetime64("2016-03-10"), 7] = NAN  # lists in March 2016
    gap = np.flatnonzero(
        (dates >= np.datetime64("2018-05-29")) & (dates <= np.datetime64("2018-06-05"))
    )
    close[gap, 11] = NAN  # no price on the May 2018 month end
    first = int(np.flatnonzero(year >= 2015)[0])
    rows = month_end_rows(dates, start_row=first)[:-1]
    # Stand-in forecast: trailing 3-month return (prices up to the rebalance row only).
    with np.errstate(invalid="ignore"):
        scores = close[rows] / close[rows - 63] - 1.0
    return close, rows, scores


CONSTRUCTORS = [
    lambda c: TopK(5, constraints=c),
    lambda c: TopK(6, weighting="forecast", constraints=c),
    lambda c: Tilt(constraints=c),
    lambda c: Tilt(base="hrp", strength=0.5, constraints=c),
    lambda c: MeanVariance(risk_aversion=5.0, constraints=c),
    lambda c: HRP(constraints=c),
    lambda c: EqualWeight(constraints=c),
]
CONSTRAINT_SETS = {
    # Turnover caps are one-way (half the amount traded).
    "topk8_max20_turn10": PortfolioConstraints(top_k=8, max_weight=0.2, max_turnover=0.1),
    "max10_cash_turn5": PortfolioConstraints(
        max_weight=0.1, max_turnover=0.05, fully_invested=False
    ),
}


@pytest.mark.parametrize("constraints_name", sorted(CONSTRAINT_SETS))
@pytest.mark.parametrize("build", CONSTRUCTORS, ids=lambda b: b(PortfolioConstraints()).name)
def test_constraints_hold_after_every_rebalance(market, build, constraints_name):
    close, rows, scores = market
    constraints = CONSTRAINT_SETS[constraints_name]
    constructor = build(constraints)
    result = backtest(close, rows, make_policy(constructor, close, scores))

    assert constructor.n_failures == 0
    for r, row in enumerate(rows):
        problems = constraints.check(
            result.weights_after[r], result.weights_before[r], tradable(close, row)
        )
        assert problems == [], f"rebalance {r} (row {row}): {problems}"
    # Ticker 3 stopped trading: sold at the first rebalance after, never bought again.
    stopped = rows >= np.flatnonzero(np.isnan(close[:, 3]))[0]
    assert (result.weights_after[stopped, 3] == 0).all()
    # The cap is enforced on real trading, not vacuously: it binds at some rebalance
    # (one-way turnover = cap + half the exempt trims of positions above max_weight).
    trims = np.maximum(result.weights_before - constraints.max_weight, 0.0).sum(axis=1)
    binding = np.isclose(result.turnover, constraints.max_turnover + trims / 2, atol=1e-9)
    assert binding[1:].any() or constructor.name in ("equal_weight", "hrp")


# ---------------------------------------------------------------- mean-variance
def _two_asset_history(seed: int = 3, days: int = 252) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chol = np.array([[0.012, 0.0], [0.004, 0.009]])
    return rng.normal(0.0, 1.0, (days, 2)) @ chol.T


@pytest.mark.parametrize("covariance", ["empirical", "ledoit_wolf"])
def test_mean_variance_matches_closed_form_two_assets(covariance):
    history = _two_asset_history()
    horizon, lam = 21, 10.0
    mu = np.array([0.02, 0.01])  # 21-day return forecasts
    sigma = np.cov(history, rowvar=False) if covariance == "empirical" else ledoit_wolf(history)[0]
    # max mu'w - (lam / 2) w' S w  s.t. 1'w = 1 with S = h * Sigma (h-day covariance):
    # w = S^-1 (mu - gamma 1) / lam, gamma = (1' S^-1 mu - lam) / (1' S^-1 1).
    s_inv = np.linalg.inv(horizon * sigma)
    ones = np.ones(2)
    gamma = (ones @ s_inv @ mu - lam) / (ones @ s_inv @ ones)
    expected = s_inv @ (mu - gamma * ones) / lam
    assert (expected > 0.05).all() and (expected < 0.95).all()  # interior: w >= 0 inactive

    model = MeanVariance(
        risk_aversion=lam, covariance=covariance, horizon=horizon, constraints=NO_CAPS
    )
    # From cash the cost sum|w - 0| = 1 is the same for every portfolio: no effect.
    weights = model.weights(mu, history, np.zeros(2), np.ones(2, dtype=bool))
    np.testing.assert_allclose(weights, expected, atol=1e-5)  # interior-point tolerance


def test_mean_variance_optimises_within_the_turnover_cap():
    rng = np.random.default_rng(5)
    history = rng.normal(0.0, 0.01, (252, 6))
    drifted = np.full(6, 1 / 6)
    ok = np.ones(6, dtype=bool)
    mu = np.array([0.05, -0.02, 0.0, 0.01, 0.04, -0.03])
    lam, cost = 5.0, 10.0 / 1e4

    def utility(w):  # the documented objective, in horizon units
        risk = w @ (21 * np.cov(history, rowvar=False)) @ w
        return mu @ w - cost * np.abs(w - drifted).sum() - lam / 2 * risk

    def model(turnover):
        c = PortfolioConstraints(max_weight=0.3, max_turnover=turnover)
        return MeanVariance(risk_aversion=lam, covariance="empirical", constraints=c)

    capped = model(0.075).weights(mu, history, drifted, ok)  # one-way: 0.15 traded
    free = model(None).weights(mu, history, drifted, ok)
    assert np.abs(free - drifted).sum() > 0.3  # the cap really binds
    assert np.abs(capped - drifted).sum() == pytest.approx(0.15, abs=1e-6)
    # Solved with the cap inside: better than shrinking the free optimum onto the cap.
    lam_move = 0.15 / np.abs(free - drifted).sum()
    shrunk = drifted + lam_move * (free - drifted)
    assert utility(capped) > utility(shrunk) + 1e-6


# ---------------------------------------------------------------------- turnover
def test_turnover_cap_binds_when_forecasts_flip(market):
    close, rows, _ = market
    close = close[:, 12:]  # eight tickers that trade throughout
    n = close.shape[1]
    ramp = np.arange(n, dtype=np.float64)
    scores = np.array([ramp if r % 2 == 0 else -ramp for r in range(len(rows))])
    constraints = PortfolioConstraints(max_turnover=0.05)  # one-way: 0.1 traded
    result = backtest(close, rows, make_policy(TopK(3, constraints=constraints), close, scores))

    assert result.turnover[0] == pytest.approx(0.5)  # initial build from cash: exempt
    assert result.traded[0] == pytest.approx(1.0)
    assert (result.turnover[1:] <= 0.05 + 1e-9).all()
    np.testing.assert_allclose(result.turnover[1:], 0.05, atol=1e-9)  # it binds every time
    # Only part of the way: the wanted top-3 portfolio is never reached after the first.
    wanted = np.where(scores >= np.sort(scores, axis=1)[:, [-3]], 1 / 3, 0.0)
    gap = np.abs(result.weights_after - wanted).sum(axis=1)
    assert gap[0] == pytest.approx(0.0) and (gap[1:] > 1e-3).all()
    # The portfolio keeps leaning to the first signal: it never gets far from it.
    assert (result.weights_after[:, 5:].sum(axis=1) > 0.5).all()
    for r, row in enumerate(rows):
        assert (
            constraints.check(
                result.weights_after[r], result.weights_before[r], tradable(close, row)
            )
            == []
        )


def test_forced_sales_and_max_weight_trims_are_exempt_from_the_cap():
    c = PortfolioConstraints(max_weight=0.4, max_turnover=0.05)  # one-way: 0.1 traded
    drifted = np.array([0.5, 0.3, 0.2, 0.0, 0.0])  # ticker 0 drifted above 0.4
    ok = np.array([True, True, False, True, True])  # ticker 2 stopped trading
    weights = c.apply(np.array([0.0, 1.0, 0.0, 1.0, 1.0]), drifted, ok)
    # Target t = 1/3 on tickers 1, 3, 4; hold point h = [0.4, 0.3, 0, 0, 0] (trimmed, the
    # forced sale dropped); the move h + lam (t - h) uses the whole cap: lam = 0.1 / |t - h|.
    t = np.array([0.0, 1 / 3, 0.0, 1 / 3, 1 / 3])
    h = np.array([0.4, 0.3, 0.0, 0.0, 0.0])
    lam = 0.1 / np.abs(t - h).sum()
    np.testing.assert_allclose(weights, h + lam * (t - h))
    turnover = np.abs(np.where(ok, weights - drifted, 0.0)).sum()
    assert turnover == pytest.approx(0.1 + 0.1)  # cap + the 0.1 trim; forced sale not counted
    assert c.check(weights, drifted, ok) == []


def test_build_from_cash_is_exempt():
    c = PortfolioConstraints(max_turnover=0.05)
    weights = c.apply(np.array([1.0, 1.0, 2.0]), np.zeros(3), np.ones(3, dtype=bool))
    np.testing.assert_allclose(weights, [0.25, 0.25, 0.5])
    assert c.check(weights, np.zeros(3), np.ones(3, dtype=bool)) == []


# ------------------------------------------------------------------ projection order
def test_apply_order_untradable_long_only_top_k_then_max_weight():
    c = PortfolioConstraints(top_k=3, max_weight=0.4, max_turnover=None)
    target = np.array([5.0, -1.0, 3.0, 1.0, 1.0, NAN, 9.0])
    ok = np.array([True, True, True, True, True, True, False])
    weights = c.apply(target, np.zeros(7), ok, preference=np.array([0, 0, 0, 1, 2, 0, 0.0]))
    # Column 6 untradable, 1 negative, 5 NaN; top 3 of [5, 3, 1, 1] with the tie of the
    # two 1s broken by preference (column 4); then [5, 3, 1] / 9 capped at 0.4 with the
    # excess spread in proportion: 0.4, then (3, 1) share 0.6 -> 0.45 > 0.4 -> 0.4, 0.2.
    np.testing.assert_allclose(weights, [0.4, 0, 0.4, 0, 0.2, 0, 0])


def test_apply_without_full_investment_clips_and_keeps_cash():
    c = PortfolioConstraints(max_weight=0.3, max_turnover=None, fully_invested=False)
    ok = np.ones(4, dtype=bool)
    np.testing.assert_allclose(
        c.apply(np.array([0.5, 0.1, 0.0, 0.0]), np.zeros(4), ok), [0.3, 0.1, 0, 0]
    )
    np.testing.assert_allclose(c.apply(np.array([0.3, 0.3, 0.3, 0.3]), np.zeros(4), ok), [0.25] * 4)


def test_empty_target_keeps_the_holdings():
    c = PortfolioConstraints(max_turnover=0.1)  # one-way: 0.2 traded
    drifted = np.array([0.3, 0.2, 0.5])
    ok = np.array([True, True, False])
    # Ticker 2 is force-sold (exempt); its cash goes back pro rata into what is held...
    no_cap = PortfolioConstraints(max_turnover=None)
    np.testing.assert_allclose(no_cap.apply(np.zeros(3), drifted, ok), [0.6, 0.4, 0.0])
    # ... within the cap: reinvesting is trading (0.5 wanted, 0.2 allowed).
    np.testing.assert_allclose(c.apply(np.zeros(3), drifted, ok), [0.42, 0.28, 0.0])
    assert c.apply(np.zeros(3), np.zeros(3), ok).sum() == 0.0  # nothing held: cash


def test_check_reports_each_violation():
    c = PortfolioConstraints(top_k=2, max_weight=0.5, max_turnover=0.1)
    ok = np.array([True, True, True, False])
    drifted = np.array([0.5, 0.5, 0.0, 0.0])
    assert c.check(np.array([0.5, 0.5, 0.0, 0.0]), drifted, ok) == []
    cases = {
        "tradable": np.array([0.5, 0.4, 0.0, 0.1]),
        "long_only": np.array([0.6, 0.5, -0.1, 0.0]),
        "budget": np.array([0.5, 0.5, 0.1, 0.0]),
        "max_weight": np.array([0.6, 0.4, 0.0, 0.0]),
        "max_turnover": np.array([0.5, 0.25, 0.25, 0.0]),
        "fully_invested": np.array([0.45, 0.45, 0.0, 0.0]),
    }
    for name, weights in cases.items():
        problems = c.check(weights, drifted, ok)
        assert any(p.startswith(name) for p in problems), (name, problems)
    # Three names without the cap binding: too many positions.
    three = np.array([0.45, 0.45, 0.1, 0.0])
    assert any(p.startswith("top_k") for p in c.check(three, three, ok))
    # While the cap binds, names beyond top_k are allowed only if they are being sold down.
    wide = PortfolioConstraints(top_k=2, max_turnover=0.075)
    start = np.array([0.3, 0.3, 0.2, 0.0])  # 20% cash
    assert wide.check(np.array([0.35, 0.35, 0.15, 0.0]), start, ok) == []
    problems = wide.check(np.array([0.35, 0.35, 0.25, 0.0]), start, ok)
    assert any(p.startswith("top_k") for p in problems)
    # ... and the invested fraction may not fall.
    problems = wide.check(np.array([0.35, 0.3, 0.1, 0.0]), start, ok)
    assert any(p.startswith("fully_invested") for p in problems)


@st.composite
def projection_case(draw):
    n = draw(st.integers(1, 8))
    floats = st.floats(-1.0, 3.0, allow_nan=False)
    target = np.array(draw(st.lists(floats | st.just(NAN), min_size=n, max_size=n)))
    raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    invested = draw(st.floats(0.0, 1.0))
    drifted = raw / raw.sum() * invested if raw.sum() > 0 else raw
    ok = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    top_k = draw(st.none() | st.integers(1, n + 1))
    max_weight = draw(st.none() | st.floats(0.05, 1.0))
    max_turnover = draw(st.none() | st.floats(0.01, 2.5))
    fully = draw(st.booleans())
    assume(not (fully and top_k and max_weight and top_k * max_weight < 1))
    c = PortfolioConstraints(
        top_k=top_k, max_weight=max_weight, max_turnover=max_turnover, fully_invested=fully
    )
    return c, target, drifted, ok


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(projection_case())
def test_apply_always_satisfies_check(case):
    c, target, drifted, ok = case
    weights = c.apply(target, drifted, ok)
    assert c.check(weights, drifted, ok) == []
    # A second pass from the same drifted weights does not move further than the first.
    again = c.apply(weights, drifted, ok)
    assert c.check(again, drifted, ok) == []


# ------------------------------------------------------------------ constructors
def test_forecast_weighted_top_k():
    ok = np.array([True, True, True, True, False, True])
    scores = np.array([0.04, -0.01, 0.02, NAN, 0.9, 0.01])
    model = TopK(3, weighting="forecast", constraints=NO_CAPS)
    # Top 3 tradable: 0.04, 0.02, 0.01 -> weights 4/7, 2/7, 1/7.
    np.testing.assert_allclose(
        model.weights(scores, None, np.zeros(6), ok), [4 / 7, 0, 2 / 7, 0, 0, 1 / 7]
    )
    # The top 3 include a negative forecast: it gets 0 (positive part).
    np.testing.assert_allclose(
        TopK(4, weighting="forecast", constraints=NO_CAPS).weights(scores, None, np.zeros(6), ok),
        [4 / 7, 0, 2 / 7, 0, 0, 1 / 7],
    )
    # All forecasts <= 0: equal weight over the top k (column 4 cannot trade).
    negative = np.array([-0.01, -0.03, -0.02, -0.05, 0.0, -0.04])
    np.testing.assert_allclose(
        model.weights(negative, None, np.zeros(6), ok), [1 / 3, 1 / 3, 1 / 3, 0, 0, 0]
    )
    equal = TopK(2, constraints=NO_CAPS).weights(scores, None, np.zeros(6), ok)
    np.testing.assert_allclose(equal, [0.5, 0, 0.5, 0, 0, 0])


def test_tilt_strength_zero_equals_base_and_formula():
    rng = np.random.default_rng(11)
    history = rng.normal(0.0, 0.01, (252, 7)) * np.linspace(0.5, 2.0, 7)
    ok = np.ones(7, dtype=bool)
    scores = rng.normal(0.0, 0.05, 7)
    scores[2] = NAN
    d = np.zeros(7)
    equal = EqualWeight(constraints=NO_CAPS).weights(scores, history, d, ok)
    hrp = HRP(constraints=NO_CAPS).weights(scores, history, d, ok)
    zero_eq = Tilt(strength=0.0, constraints=NO_CAPS).weights(scores, history, d, ok)
    zero_hrp = Tilt(base="hrp", strength=0.0, constraints=NO_CAPS).weights(scores, history, d, ok)
    np.testing.assert_allclose(zero_eq, equal, atol=1e-15)
    np.testing.assert_allclose(zero_hrp, hrp, atol=1e-15)

    tilted = Tilt(base="hrp", strength=0.7, clip=None, constraints=NO_CAPS)
    known = np.isfinite(scores)
    z = np.zeros(7)
    z[known] = (scores[known] - scores[known].mean()) / scores[known].std()
    expected = hrp * np.exp(0.7 * z)
    np.testing.assert_allclose(tilted.weights(scores, history, d, ok), expected / expected.sum())
    # The outperformers gain weight relative to the base, the name without a forecast
    # keeps its base weight relative to the normalisation.
    w = tilted.weights(scores, history, d, ok)
    best, worst = np.nanargmax(scores), np.nanargmin(scores)
    assert w[best] / hrp[best] > 1 > w[worst] / hrp[worst]


def test_hrp_matches_skfolio():
    rng = np.random.default_rng(2)
    history = rng.normal(0.0, 0.01, (300, 6)) @ rng.normal(0.0, 1.0, (6, 6))
    history[-20, 4] = NAN  # ticker 4 lacks a full window: left out
    ok = np.array([True, True, True, True, True, False])  # ticker 5 cannot trade
    weights = HRP(constraints=NO_CAPS).weights(np.full(6, NAN), history, np.zeros(6), ok)
    reference = HierarchicalRiskParity().fit(history[-252:, :4]).weights_
    np.testing.assert_allclose(weights[:4], reference, atol=1e-12)
    assert weights[4] == 0 and weights[5] == 0


def test_optimiser_failure_keeps_projected_drifted_weights(monkeypatch, caplog):
    class NaNCovariance(constructors_module.EmpiricalCovariance):
        def fit(self, X, y=None):
            super().fit(X)
            self.covariance_ = np.full_like(self.covariance_, np.nan)
            return self

    monkeypatch.setattr(constructors_module, "LedoitWolf", NaNCovariance)
    history = np.random.default_rng(0).normal(0.0, 0.01, (252, 4))
    drifted = np.array([0.5, 0.2, 0.2, 0.1])
    ok = np.array([True, True, True, False])  # ticker 3 force-sold
    c = PortfolioConstraints(max_weight=0.6)
    model = MeanVariance(constraints=c)
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        weights = model.weights(np.array([0.1, 0.0, 0.02, 0.0]), history, drifted, ok)
    # The drifted weights on tradable tickers, scaled back to full investment.
    np.testing.assert_allclose(weights, [5 / 9, 2 / 9, 2 / 9, 0.0])
    assert model.n_failures == 1
    assert "mean_variance: optimisation failed" in caplog.text
    assert c.check(weights, drifted, ok) == []


def test_hrp_solver_error_falls_back(monkeypatch, caplog):
    def broken(self, X, y=None):
        raise constructors_module.cp.SolverError("solver crashed")

    monkeypatch.setattr(HierarchicalRiskParity, "fit", broken)
    model = HRP(constraints=PortfolioConstraints(max_turnover=0.1))
    drifted = np.array([0.3, 0.3, 0.4])
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        weights = model.weights(
            np.zeros(3),
            np.random.default_rng(1).normal(0, 0.01, (252, 3)),
            drifted,
            np.ones(3, bool),
        )
    np.testing.assert_allclose(weights, drifted)
    assert model.n_failures == 1 and "solver crashed" in caplog.text


# -------------------------------------------------------------------------- policy
def test_policy_reads_no_data_after_the_rebalance(market):
    close, rows, scores = market
    r = 30
    row = int(rows[r])
    policy = make_policy(Tilt(base="hrp"), close, scores)
    history = policy.history_at(row)
    assert history.shape == (252, close.shape[1])
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(history[-1], close[row] / close[row - 1] - 1.0)
    drifted = np.full(close.shape[1], 1 / close.shape[1])
    before = policy(r, row, drifted)
    changed = close.copy()
    changed[row + 1 :] *= 3.0
    after = make_policy(Tilt(base="hrp"), changed, scores)(r, row, drifted)
    np.testing.assert_array_equal(before, after)


def test_policy_scores_by_panel_row_and_constraints_override(market):
    close, rows, scores = market
    model = TopK(4)
    override = PortfolioConstraints(top_k=2, max_turnover=None)
    policy = make_policy(model, close, {int(rows[0]): scores[0]}, constraints=override)
    assert policy.constructor is not model and model.constraints.top_k is None
    weights = policy(0, int(rows[0]), np.zeros(close.shape[1]))
    assert (weights > 0).sum() == 2 and weights.sum() == pytest.approx(1.0)
    # A row without forecasts and nothing held: stays in cash.
    assert policy(1, int(rows[1]), np.zeros(close.shape[1])).sum() == 0.0


# ---------------------------------------------------------------------- bad params
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PortfolioConstraints(top_k=0), "top_k must be an integer >= 1"),
        (lambda: PortfolioConstraints(max_weight=1.5), "max_weight must be a number in (0, 1]"),
        (
            lambda: PortfolioConstraints(max_turnover=0.0),
            "max_turnover must be a finite number > 0",
        ),
        (lambda: PortfolioConstraints(long_only=False), "long_only=False is not supported"),
        (lambda: PortfolioConstraints(top_k=3, max_weight=0.2), "cannot be fully invested"),
        (lambda: TopK(0), "TopK k must be an integer >= 1"),
        (lambda: TopK(3, weighting="rank"), "TopK weighting must be 'equal' or 'forecast'"),
        (lambda: Tilt(base="minvar"), "Tilt base must be 'equal' or 'hrp'"),
        (lambda: Tilt(strength=-1.0), "Tilt strength must be a finite number >= 0"),
        (lambda: MeanVariance(risk_aversion=0.0), "risk_aversion must be a finite number > 0"),
        (lambda: MeanVariance(covariance="sample"), "covariance must be one of ledoit_wolf"),
        (lambda: MeanVariance(horizon=0), "horizon must be an integer >= 1"),
        (lambda: MeanVariance(cost_bps=-1.0), "cost_bps must be a number >= 0"),
        (lambda: HRP(lookback=1), "lookback must be an integer >= 2"),
        (
            lambda: make_policy(HRP(), np.ones((5, 2)), np.ones((1, 2)), history_days=10),
            "shorter than the 252 days hrp reads",
        ),
    ],
)
def test_bad_parameters_raise_config_error(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)


def test_hrp_memo_gives_skfolio_weights_and_cannot_be_corrupted():
    rng = np.random.default_rng(5)
    window = rng.normal(0, 0.01, (252, 12))
    universe = np.ones(12, dtype=bool)
    universe[4] = False
    fresh = np.zeros(12)
    fresh[universe] = HierarchicalRiskParity(max_weights=0.3).fit(window[:, universe]).weights_
    first = constructors_module._hrp_weights(window, universe, 0.3)
    first[:] = 0.0  # a caller writing into its weights must not change the memo
    again = constructors_module._hrp_weights(window, universe, 0.3)
    np.testing.assert_array_equal(again, fresh)
    # Another cap or universe is another allocation, not the memoised one.
    other = universe.copy()
    other[7] = False
    assert constructors_module._hrp_weights(window, other, 0.3)[7] == 0.0
    cap = max(fresh.max() - 0.005, 1 / 11)  # binding, still feasible
    assert (
        fresh.max() > cap
        and constructors_module._hrp_weights(window, universe, cap).max() <= cap + 1e-9
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: HRP(constraints=NO_CAPS),
        lambda: Tilt(base="hrp", strength=0.5, constraints=NO_CAPS),
        lambda: MeanVariance(risk_aversion=5.0, constraints=NO_CAPS),
    ],
    ids=["hrp", "tilt_hrp", "mean_variance"],
)
def test_a_suspended_asset_is_dropped_from_the_risk_model_not_fatal(build):
    """One ticker with a constant price (zero returns for years) used to break HRP at
    every rebalance: the strategy then sat in cash for the whole test."""
    rng = np.random.default_rng(3)
    history = rng.normal(0.0, 0.01, (300, 6)) @ rng.normal(0.0, 1.0, (6, 6))
    history[:, 2] = 0.0  # suspended: constant close
    ok = np.ones(6, dtype=bool)
    constructor = build()
    weights = constructor.weights(rng.normal(size=6), history, np.zeros(6), ok)
    assert constructor.n_failures == 0
    assert weights[2] == 0 and weights.sum() == pytest.approx(1.0)
    if isinstance(constructor, HRP):
        live = [0, 1, 3, 4, 5]
        reference = HierarchicalRiskParity().fit(history[-252:, live]).weights_
        np.testing.assert_allclose(weights[live], reference, atol=1e-12)
