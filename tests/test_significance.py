"""Significance of Sharpe ratios: published examples, hand computations, properties, Monte Carlo.

* The deflated Sharpe ratio against the numerical example of Bailey & López de Prado
  (2014): N = 100 trials, V[SR] = 1/2 (annual), T = 1250 daily returns, annual SR 2.5,
  skewness -3, kurtosis 10 -> SR0 = 0.1132 per day and DSR = 0.9004.
* Memmel's corrected Jobson-Korkie statistic against a hand computation in its
  (mean, std, covariance) form, a different algebra from the implementation's.
* Moments against scipy; the expected maximum of N normals against numerical integration.
* Under i.i.d. zero-mean normal returns, p-values are roughly uniform (seeded simulations).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from alphaseq.backtest.significance import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_statistics,
    sharpe_difference_test,
    significance_report,
)

A = [0.010, -0.020, 0.015, 0.030, -0.005, 0.020, -0.010, 0.005]
B = [0.005, -0.010, 0.020, 0.010, 0.000, 0.015, -0.020, 0.010]


def series(values, start="2021-01-04") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


# ------------------------------------------------------------- published worked example
def test_deflated_sharpe_paper_example():
    # Bailey & López de Prado (2014), numerical example: annual figures over 250 days.
    sr0 = expected_maximum_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = psr_from_statistics(2.5 / math.sqrt(250), 1250, -3.0, 10.0, benchmark_sharpe=sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_normal_moments_is_lo_formula():
    # Kurtosis is the non-excess one: normal returns (3) give Lo's (2002) 1 + SR^2 / 2.
    sr, n = 0.08, 500
    expected = stats.norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr**2 / 2))
    assert psr_from_statistics(sr, n, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    # An excess kurtosis of 0 passed by mistake would shrink the spread, not keep it.
    assert psr_from_statistics(sr, n, 0.0, 0.0) > expected


def test_psr_uses_sample_skewness_and_raw_kurtosis():
    rng = np.random.default_rng(3)
    r = rng.standard_t(4, 300) * 0.01 + 0.001
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r, bias=True)
    g4 = stats.kurtosis(r, fisher=False, bias=True)
    z = (sr - 0.02) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert probabilistic_sharpe_ratio(series(r), 0.02) == pytest.approx(
        stats.norm.cdf(z), rel=1e-12
    )
    assert probabilistic_sharpe_ratio(r, 0.02) == probabilistic_sharpe_ratio(series(r), 0.02)


@pytest.mark.parametrize("n", [2, 10, 100, 1000])
def test_expected_maximum_against_integration(n):
    # E[max of n standard normals] = integral of x n phi(x) Phi(x)^(n-1).
    exact, _ = integrate.quad(
        lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), -12, 12
    )
    assert expected_maximum_sharpe(n, 1.0) == pytest.approx(exact, rel=0.08)
    assert expected_maximum_sharpe(n, 4.0) == pytest.approx(2 * expected_maximum_sharpe(n, 1.0))


# -------------------------------------------------------------- Jobson-Korkie / Memmel
def test_memmel_statistic_by_hand():
    a, b = np.array(A), np.array(B)
    t = len(a)
    mu_a, mu_b = sum(A) / t, sum(B) / t
    var_a = sum((x - mu_a) ** 2 for x in A) / (t - 1)
    var_b = sum((x - mu_b) ** 2 for x in B) / (t - 1)
    cov = sum((x - mu_a) * (y - mu_b) for x, y in zip(A, B, strict=True)) / (t - 1)
    s_a, s_b = math.sqrt(var_a), math.sqrt(var_b)
    # Memmel (2003) in Jobson & Korkie's notation: the statistic on s_b mu_a - s_a mu_b.
    theta = (
        2 * var_a * var_b
        - 2 * s_a * s_b * cov
        + 0.5 * mu_a**2 * var_b
        + 0.5 * mu_b**2 * var_a
        - mu_a * mu_b / (s_a * s_b) * cov**2
    ) / t
    z = (s_b * mu_a - s_a * mu_b) / math.sqrt(theta)
    out = sharpe_difference_test(series(A), series(B))
    assert out["z"] == pytest.approx(z, rel=1e-12)
    assert out["p_value"] == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), rel=1e-12)
    assert out["sharpe_a"] == pytest.approx(mu_a / s_a, rel=1e-12)
    assert out["sharpe_diff_ann"] == pytest.approx((mu_a / s_a - mu_b / s_b) * math.sqrt(252))
    assert out["correlation"] == pytest.approx(cov / (s_a * s_b), rel=1e-12)
    assert out["n_obs"] == t
    # The uncorrected Jobson-Korkie last term gives a different statistic.
    jk = (
        theta
        + (
            mu_a * mu_b / (s_a * s_b) * cov**2
            - mu_a * mu_b / (2 * s_a * s_b) * (cov**2 + var_a * var_b)
        )
        / t
    )
    assert abs((s_b * mu_a - s_a * mu_b) / math.sqrt(jk) - z) > 1e-3
    assert sharpe_difference_test(a, b)["z"] == out["z"]


def test_identical_series_and_antisymmetry():
    r = series(A)
    same = sharpe_difference_test(r, r)
    assert (same["z"], same["p_value"], same["sharpe_diff"]) == (0.0, 1.0, 0.0)
    scaled = sharpe_difference_test(r, 3 * r)  # same Sharpe ratio up to rounding, rho = 1
    assert scaled["z"] == pytest.approx(0.0, abs=1e-6)
    assert scaled["p_value"] == pytest.approx(1.0, abs=1e-6)
    ab, ba = sharpe_difference_test(r, series(B)), sharpe_difference_test(series(B), r)
    assert ab["z"] == pytest.approx(-ba["z"], rel=1e-12)
    assert ab["p_value"] == pytest.approx(ba["p_value"], rel=1e-12)


def test_common_dates_only():
    a = series(A)
    b = series([*B[2:], 0.01, -0.03], start="2021-01-06")  # starts two days later
    common = a.index.intersection(b.index)
    out = sharpe_difference_test(a, b)
    assert out["n_obs"] == len(common) == 6
    assert out == sharpe_difference_test(a.loc[common].to_numpy(), b.loc[common].to_numpy())


def test_undefined_cases_give_none():
    flat = sharpe_difference_test(series(A), series([0.001] * 8))
    assert flat["sharpe_b"] is None and flat["z"] is None and flat["p_value"] is None
    short = sharpe_difference_test(series([0.01]), series([0.02]))
    assert short["z"] is None and short["n_obs"] == 1
    none = sharpe_difference_test(series(A), series(B, start="2030-01-01"))
    assert none["n_obs"] == 0 and none["z"] is None
    assert math.isnan(probabilistic_sharpe_ratio(series([0.01] * 5)))
    assert math.isnan(probabilistic_sharpe_ratio(series([0.01])))
    assert math.isnan(psr_from_statistics(0.1, 1))


# ------------------------------------------------------------------------- properties
def test_psr_increases_with_sharpe_and_decreases_with_benchmark():
    noise = np.random.default_rng(1).normal(0.0, 0.01, 250)
    psr = [probabilistic_sharpe_ratio(noise + shift) for shift in np.linspace(-2e-3, 2e-3, 21)]
    assert np.all(np.diff(psr) > 0)
    r = noise + 5e-4
    by_benchmark = [probabilistic_sharpe_ratio(r, sr) for sr in (-0.05, 0.0, 0.05, 0.1)]
    assert np.all(np.diff(by_benchmark) < 0)


def test_dsr_decreases_with_trials_and_equals_psr_for_one():
    r = np.random.default_rng(2).normal(8e-4, 0.01, 750)
    one = deflated_sharpe_ratio(r, 1)
    assert one["dsr"] == one["psr"] == probabilistic_sharpe_ratio(r, 0.0)
    assert one["expected_max_sharpe"] == 0.0
    dsr = [deflated_sharpe_ratio(r, n)["dsr"] for n in (1, 2, 5, 10, 100, 1000)]
    assert np.all(np.diff(dsr) < 0)
    # The default variance is that of a zero-Sharpe estimate from T returns.
    assert one["sharpe_variance"] == pytest.approx(1 / 749)
    given = deflated_sharpe_ratio(r, 10, sharpe_variance=4 / 749)
    assert given["expected_max_sharpe"] == pytest.approx(
        2 * deflated_sharpe_ratio(r, 10)["expected_max_sharpe"]
    )


def test_bad_arguments():
    r = series(A)
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe_ratio(r, 0)
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe_ratio(r, 2.5)
    with pytest.raises(ValueError, match="sharpe_variance"):
        deflated_sharpe_ratio(r, 3, sharpe_variance=-1.0)
    with pytest.raises(ValueError, match="non-finite"):
        probabilistic_sharpe_ratio(series([0.01, np.nan, 0.02]))
    with pytest.raises(TypeError, match="both"):
        sharpe_difference_test(r, np.array(B))
    with pytest.raises(ValueError, match="must match"):
        sharpe_difference_test(np.array(A), np.array(B[:5]))


# ----------------------------------------------------------------------------- report
def test_report_is_json_safe_and_complete():
    rng = np.random.default_rng(4)
    model = series(rng.normal(8e-4, 0.01, 300))
    benchmark = series(rng.normal(3e-4, 0.01, 300))
    report = significance_report(
        {"model": model, "flat": series([0.0] * 300), "short": series([0.01]), "empty": series([])},
        {"benchmark": benchmark, "model": model},
        n_trials=20,
    )
    json.dumps(report, allow_nan=False)  # raises on NaN or infinity
    entry = report["model"]
    assert set(entry["vs"]) == {"benchmark"}  # not tested against itself
    direct = sharpe_difference_test(model, benchmark)
    assert entry["vs"]["benchmark"]["z"] == direct["z"]
    assert entry["vs"]["benchmark"]["p_value"] == direct["p_value"]
    assert entry["psr"] == pytest.approx(probabilistic_sharpe_ratio(model))
    assert entry["dsr"] == deflated_sharpe_ratio(model, 20)["dsr"]
    assert entry["dsr"] < entry["psr"]
    assert entry["n_trials"] == 20 and entry["n_obs"] == 300
    for name in ("flat", "short", "empty"):
        assert report[name]["psr"] is None and report[name]["dsr"] is None
        assert report[name]["vs"]["model"]["z"] is None
        assert set(report[name]["vs"]) == {"benchmark", "model"}


# ------------------------------------------------------------------------ Monte Carlo
def test_monte_carlo_size_under_the_null():
    # I.i.d. normal, zero mean: both strategies have a true Sharpe ratio of 0.
    rng = np.random.default_rng(20240601)
    n_sims, t = 400, 250
    common = rng.normal(0.0, 0.01, (n_sims, t))
    a = common + rng.normal(0.0, 0.01, (n_sims, t))  # correlation 0.5 between a and b
    b = common + rng.normal(0.0, 0.01, (n_sims, t))
    p_values = np.array([sharpe_difference_test(a[i], b[i])["p_value"] for i in range(n_sims)])
    assert 0.02 <= np.mean(p_values < 0.05) <= 0.085
    assert stats.kstest(p_values, "uniform").pvalue > 0.01
    # One-sided test of SR > 0: 1 - PSR(0) is a p-value, roughly uniform too.
    psr = np.array([probabilistic_sharpe_ratio(a[i]) for i in range(n_sims)])
    assert 0.02 <= np.mean(psr > 0.95) <= 0.085
    assert stats.kstest(1 - psr, "uniform").pvalue > 0.01


def test_monte_carlo_expected_maximum_sharpe():
    # The best of 10 zero-skill strategies: its mean Sharpe ratio is what the DSR deflates.
    rng = np.random.default_rng(7)
    n_sims, n_trials, t = 400, 10, 250
    r = rng.normal(0.0, 0.01, (n_sims, n_trials, t))
    sharpe = r.mean(axis=2) / r.std(axis=2, ddof=1)
    best = sharpe.max(axis=1)
    sr0 = deflated_sharpe_ratio(r[0, 0], n_trials)["expected_max_sharpe"]
    assert best.mean() == pytest.approx(sr0, rel=0.1)


def test_verdicts_call_a_planted_loser_worse_and_noise_no_difference():
    import pandas as pd

    from alphaseq.backtest.significance import significance_report, verdicts

    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2015-01-01", periods=1500)
    ew = pd.Series(rng.normal(0.0005, 0.01, len(dates)), index=dates)
    worse = ew - 0.002 + rng.normal(0, 0.002, len(dates))  # the same risk, 50 % a year less
    noise = ew + rng.normal(0, 0.002, len(dates))
    report = significance_report(
        {"model_topk": worse, "tilt": noise, "equal_weight": ew}, {"equal_weight": ew}
    )
    lines = verdicts(report)
    assert len(lines) == 2  # one per model strategy, none for the baseline itself
    loser = next(line for line in lines if line.startswith("model_topk"))
    assert loser.startswith("model_topk vs equal_weight: worse (ΔSharpe -")
    assert "p 0.000" in loser and "DSR" in loser
    assert next(line for line in lines if line.startswith("tilt")).startswith(
        "tilt vs equal_weight: no significant difference"
    )
