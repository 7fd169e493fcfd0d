"""Shared risk estimates (issue 17): the same weights as each constructor on its own,
no look-ahead through the cache, constraints intact, one estimate per window.

References are skfolio's estimators fitted directly, or the constructors' own path
(``estimates=None``), which fits them at every rebalance.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from skfolio.moments import OAS, EmpiricalCovariance, LedoitWolf
from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction
from skfolio.prior import EmpiricalPrior

import alphaseq
from alphaseq.backtest import backtest, month_end_rows, tradable
from alphaseq.errors import ConfigError
from alphaseq.portfolio import (
    HRP,
    ForecastMu,
    MeanVariance,
    PortfolioConstraints,
    PrecomputedCovariance,
    RiskEstimates,
    Tilt,
    make_policy,
)
from alphaseq.portfolio.hrp import hrp_bisection, hrp_ordering

NAN = float("nan")
CAPPED = PortfolioConstraints(max_weight=0.12, max_turnover=0.15)
FREE = PortfolioConstraints(max_turnover=None)

RISK_CONSTRUCTORS = {
    "hrp": lambda c: HRP(constraints=c),
    "tilt_hrp": lambda c: Tilt(base="hrp", strength=0.7, constraints=c),
    "mean_variance": lambda c: MeanVariance(constraints=c),
    "mean_variance_oas": lambda c: MeanVariance(covariance="oas", risk_aversion=4.0, constraints=c),
    "mean_variance_empirical": lambda c: MeanVariance(covariance="empirical", constraints=c),
}


def planted_returns(seed: int, days: int, assets: int) -> np.ndarray:
    """Daily returns with three sector factors, so that the hierarchy has structure."""
    rng = np.random.default_rng(seed)
    sector = rng.integers(0, 3, assets)
    factors = rng.normal(0.0, 0.01, (days, 3))
    scale = rng.uniform(0.5, 2.0, assets)
    return factors[:, sector] * scale + rng.normal(0.0, 0.012, (days, assets)) * scale


@pytest.fixture(scope="module")
def market():
    """The packaged S&P 500 sample 2014-2020, a delisting and a late listing planted."""
    panel = alphaseq.load_panel("sp500").slice_dates("2014-01-01", "2020-12-31")
    close = panel.close.astype(np.float64).copy()
    dates = panel.dates
    close[dates >= np.datetime64("2017-06-15"), 3] = NAN
    close[dates < np.datetime64("2016-03-10"), 7] = NAN
    first = int(np.flatnonzero(dates >= np.datetime64("2015-01-01"))[0])
    rows = month_end_rows(dates, start_row=first)[:-1]
    with np.errstate(invalid="ignore"):
        scores = (close[rows] / close[rows - 63] - 1.0) / 3.0  # ~ a month's return
    return close, rows, scores


def run(build, close, rows, scores, estimates):
    policy = make_policy(build(), close, scores, estimates=estimates)
    return backtest(close, rows, policy, cost_bps=10.0), policy


# ----------------------------------------------------------- same weights as before
@pytest.mark.parametrize("constraints", [CAPPED, FREE], ids=["capped", "free"])
@pytest.mark.parametrize("name", list(RISK_CONSTRUCTORS))
def test_shared_estimates_give_each_constructors_own_weights(market, name, constraints):
    close, rows, scores = market
    build = RISK_CONSTRUCTORS[name]
    own, _ = run(lambda: build(constraints), close, rows, scores, None)
    shared, policy = run(lambda: build(constraints), close, rows, scores, RiskEstimates())
    # The same covariance bits give the same problem: the weights agree to rounding.
    np.testing.assert_allclose(shared.weights_after, own.weights_after, rtol=0, atol=1e-12)
    assert policy.constructor.n_failures == 0
    # Constructors project onto their constraints: every rebalance must pass the check.
    for r, row in enumerate(rows):
        w, before = shared.weights_after[r], shared.weights_before[r]
        assert constraints.check(w, before, tradable(close, row)) == []


@pytest.mark.parametrize("cap", [1.0, 0.05, 1 / 30])
def test_shared_hrp_equals_skfolio_on_a_hierarchy_with_binding_caps(cap):
    returns = planted_returns(7, 252, 60)
    weights = RiskEstimates().hrp_weights(returns, cap)
    reference = HierarchicalRiskParity(max_weights=cap).fit(returns).weights_
    np.testing.assert_allclose(weights, reference, rtol=0, atol=1e-13)
    assert weights.sum() == pytest.approx(1.0) and weights.max() <= cap + 1e-12
    if cap < 1.0:
        assert np.isclose(weights, cap).any()  # the cap bound at least one split


def test_shared_hrp_equals_skfolio_on_the_us600_panel(us600_path):
    panel = alphaseq.load_panel(us600_path).slice_dates("2009-01-01", "2010-06-30")
    close = panel.close.astype(np.float64)
    row = int(month_end_rows(panel.dates)[-2])
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = close[row - 252 : row + 1]
        returns = returns[1:] / returns[:-1] - 1.0
    keep = np.isfinite(returns).all(axis=0) & (np.ptp(returns, axis=0) > 0)
    returns = np.ascontiguousarray(returns[:, keep][:, :250])
    reference = HierarchicalRiskParity().fit(returns).weights_
    np.testing.assert_allclose(RiskEstimates().hrp_weights(returns), reference, atol=1e-13)


def test_precomputed_covariance_gives_mean_risk_the_same_optimum():
    returns = planted_returns(3, 252, 25)
    mu = np.random.default_rng(3).normal(0.0, 1e-3, 25)

    def solve(covariance_estimator):
        prior = EmpiricalPrior(
            mu_estimator=ForecastMu(mu), covariance_estimator=covariance_estimator
        )
        model = MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_aversion=2.0,
            prior_estimator=prior,
            max_weights=0.3,
        )
        return model.fit(returns).weights_

    covariance = LedoitWolf().fit(returns).covariance_
    np.testing.assert_allclose(
        solve(PrecomputedCovariance(covariance)), solve(LedoitWolf()), atol=1e-9
    )
    with pytest.raises(ValueError, match=r"covariance has shape \(25, 25\), expected \(3, 3\)"):
        PrecomputedCovariance(covariance).fit(returns[:, :3])


@pytest.mark.parametrize("assets", [4, 60, 300])
@pytest.mark.parametrize("estimator", [LedoitWolf, OAS, EmpiricalCovariance])
def test_shared_covariance_is_skfolios_bit_for_bit(estimator, assets):
    """The shrunk estimates skip skfolio's nearest-PD check only where it is a no-op."""
    returns = planted_returns(9, 252, assets)
    # BLAS threads left as the reference runs them: their number changes the rounding.
    shared = RiskEstimates(threads=None).covariance(returns, estimator, estimator.__name__)
    np.testing.assert_array_equal(shared, estimator().fit(returns).covariance_)


# ---------------------------------------------------------------- one estimate each
def test_hrp_and_the_hrp_tilt_share_every_hierarchy(market):
    close, rows, scores = market
    estimates = RiskEstimates()
    run(lambda: Tilt(base="hrp", constraints=CAPPED), close, rows, scores, estimates)
    fitted = estimates.misses
    assert fitted == 2 * len(rows)  # one covariance and one allocation per rebalance
    # The baseline of a run: the same max_weight, no turnover cap.
    baseline = PortfolioConstraints(max_weight=CAPPED.max_weight, max_turnover=None)
    run(lambda: HRP(constraints=baseline), close, rows, scores, estimates)
    assert estimates.misses == fitted and estimates.hits == len(rows)


def test_mean_variance_constructors_share_a_covariance():
    returns = planted_returns(4, 252, 12)
    history = np.vstack([np.zeros((1, 12)), returns])
    scores = np.random.default_rng(4).normal(0.0, 0.02, 12)
    estimates = RiskEstimates()
    ok = np.ones(12, dtype=bool)
    first = MeanVariance(risk_aversion=1.0, estimates=estimates)
    second = MeanVariance(risk_aversion=8.0, estimates=estimates)
    first.weights(scores, history, np.zeros(12), ok)
    second.weights(scores, history, np.zeros(12), ok)
    assert (estimates.misses, estimates.hits) == (1, 1)
    MeanVariance(covariance="oas", estimates=estimates).weights(scores, history, np.zeros(12), ok)
    assert estimates.misses == 2  # another estimator is another estimate


def test_the_cache_keeps_the_most_recent_estimates_only():
    estimates = RiskEstimates(max_covariances=1, max_allocations=1)
    a, b = planted_returns(1, 252, 8), planted_returns(2, 252, 8)
    estimates.hrp_weights(a)
    estimates.hrp_weights(b)  # evicts a
    estimates.hrp_weights(a)
    assert (estimates.misses, estimates.hits) == (6, 0)
    estimates.hrp_weights(a)
    assert estimates.hits == 1


# --------------------------------------------------------------------- no look-ahead
def test_the_estimate_at_a_rebalance_reads_no_later_returns(market):
    close, rows, scores = market
    r = 30
    row = int(rows[r])
    drifted = np.full(close.shape[1], 1 / close.shape[1])
    estimates = RiskEstimates()
    builds = [
        lambda: Tilt(base="hrp", constraints=CAPPED),
        lambda: MeanVariance(constraints=CAPPED),
    ]
    before = [make_policy(b(), close, scores, estimates=estimates)(r, row, drifted) for b in builds]
    changed = close.copy()
    noise = np.random.default_rng(0).uniform(0.5, 2.0, changed[row + 1 :].shape)
    changed[row + 1 :] *= noise
    for build, expected in zip(builds, before, strict=True):
        # Through the warm cache and through a cold one: bit-identical.
        for shared in (estimates, RiskEstimates()):
            after = make_policy(build(), changed, scores, estimates=shared)(r, row, drifted)
            np.testing.assert_array_equal(after, expected)


def test_a_changed_window_is_a_new_estimate_not_a_stale_hit(market):
    close, rows, scores = market
    r, row = 30, int(rows[30])
    estimates = RiskEstimates()
    drifted = np.zeros(close.shape[1])
    policy = make_policy(HRP(constraints=FREE), close, scores, estimates=estimates)
    first = policy(r, row, drifted)
    changed = close.copy()
    changed[row - 5, 0] *= 1.2  # inside the window
    misses = estimates.misses
    second = make_policy(HRP(constraints=FREE), changed, scores, estimates=estimates)(
        r, row, drifted
    )
    assert estimates.misses == misses + 2 and not np.array_equal(first, second)


# ---------------------------------------------------------------- failures and misuse
def test_a_failing_shared_estimate_falls_back_to_the_drifted_weights(monkeypatch, caplog):
    def broken(self, returns, max_weight=1.0):
        raise np.linalg.LinAlgError("planted")

    monkeypatch.setattr(RiskEstimates, "hrp_weights", broken)
    model = HRP(constraints=PortfolioConstraints(max_turnover=0.1), estimates=RiskEstimates())
    drifted = np.array([0.3, 0.3, 0.4])
    history = planted_returns(5, 253, 3)
    with caplog.at_level(logging.WARNING, logger="alphaseq"):
        weights = model.weights(np.zeros(3), history, drifted, np.ones(3, bool))
    np.testing.assert_allclose(weights, drifted)
    assert model.n_failures == 1 and "planted" in caplog.text


def test_cached_estimates_are_read_only_and_outputs_are_fresh():
    estimates = RiskEstimates()
    returns = planted_returns(6, 253, 6)
    cached = estimates.hrp_weights(returns[1:])
    with pytest.raises(ValueError, match="read-only"):
        cached[0] = 1.0
    model = HRP(constraints=FREE, estimates=estimates)
    out = model.weights(np.zeros(6), returns, np.zeros(6), np.ones(6, bool))
    out[:] = 0.0  # a caller writing into its weights leaves the estimate alone
    np.testing.assert_array_equal(estimates.hrp_weights(returns[1:]), cached)


def test_bisection_rejects_a_degenerate_covariance():
    covariance = np.diag([1e-4, 0.0, 2e-4])
    with pytest.raises(ValueError, match="positive variance"):
        hrp_bisection(covariance, np.arange(3))
    assert list(hrp_ordering(np.zeros((5, 1)))) == [0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RiskEstimates(max_covariances=-1), "max_covariances must be an integer >= 0"),
        (lambda: RiskEstimates(threads=0), "threads must be an integer >= 1 or None"),
        (lambda: HRP(estimates="shared"), "estimates must be a RiskEstimates or None"),
        (
            lambda: make_policy(HRP(), np.ones((5, 2)), np.ones((1, 2)), estimates={}),
            "estimates must be a RiskEstimates or None",
        ),
    ],
)
def test_bad_estimates_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_the_strategy_stage_passes_its_risk_estimates_to_constructors(market):
    """The strategy stage hands one RiskEstimates to every constructor it trades."""
    from alphaseq.experiment import strategies

    close, rows, scores = market
    panel = alphaseq.load_panel("sp500").slice_dates("2014-01-01", "2020-12-31")
    estimates = RiskEstimates()
    caps = PortfolioConstraints(max_weight=0.12, max_turnover=None)
    last = int(rows[-1]) + 5
    tilt = strategies._traded(
        panel, close, rows, last, Tilt(base="hrp", constraints=caps), scores, 10.0, None, estimates
    )
    fitted = estimates.misses
    hrp = strategies._traded(
        panel, close, rows, last, HRP(constraints=caps), scores, 10.0, None, estimates
    )
    assert estimates.misses == fitted and estimates.hits == len(rows)
    assert tilt["construction"]["violations"] == hrp["construction"]["violations"] == 0


def test_constructors_traded_side_by_side_equal_one_after_another(ci_run, tmp_path, monkeypatch):
    """Mean-variance, the HRP tilt and the HRP baseline traded in threads at once give the
    weights and returns each gives alone, and leave the process's warning filters and
    BLAS threads as they were."""
    import shutil
    import warnings

    import pandas as pd
    from threadpoolctl import threadpool_info

    from alphaseq.experiment import rebacktest
    from alphaseq.experiment import strategies as stage

    constructors = (
        "portfolio.constructors=[{name: mv, type: mean_variance},"
        " {name: tilt_hrp, type: tilt, base: hrp}]"
    )
    tables = {}
    for cores in (1, 2):
        monkeypatch.setattr(stage, "available_cores", lambda cores=cores: cores)
        folder = tmp_path / f"cores{cores}"
        shutil.copytree(ci_run.run_dir, folder)
        filters = list(warnings.filters)
        blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
        result = rebacktest(folder, [constructors, "portfolio.hrp_baseline=true"], report=False)
        assert list(warnings.filters) == filters
        assert [(i["internal_api"], i["num_threads"]) for i in threadpool_info()] == blas
        tables[cores] = (result.weights, result.returns)
    assert {"mv", "tilt_hrp", "hrp"} <= set(tables[2][1]["strategy"])
    for one, two in zip(tables[1], tables[2], strict=True):
        pd.testing.assert_frame_equal(one, two, check_exact=True)
