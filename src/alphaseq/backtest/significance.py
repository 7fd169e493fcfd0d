"""Is a strategy's Sharpe ratio real? Tests against baselines and against luck.

* :func:`sharpe_difference_test` — are two Sharpe ratios different? The Jobson & Korkie
  (1981) test with the correction of Memmel (2003).
* :func:`probabilistic_sharpe_ratio` — probability that the true Sharpe ratio exceeds a
  benchmark, allowing for skewed and fat-tailed returns (Bailey & López de Prado, 2012).
* :func:`deflated_sharpe_ratio` — the same against the Sharpe ratio that the best of
  ``n_trials`` worthless strategies would show by luck (Bailey & López de Prado, 2014).
* :func:`significance_report` — all of them for every strategy of a run, JSON-safe.

Conventions. Every Sharpe ratio here is **per period** (``mean / std`` of the periodic
returns, ``std`` with ``ddof=1``, risk-free rate 0), because the test statistics are
written in the returns' own sampling frequency; only fields named ``*_ann`` are
annualised (``* sqrt(periods_per_year)``). Skewness and kurtosis are the moment
estimators ``m3 / m2**1.5`` and ``m4 / m2**2`` with ``m_k = mean((r - mean(r))**k)``;
the kurtosis is the **non-excess** one (3 for normal returns).

References
----------
.. [JK81] Jobson, J. D. and Korkie, B. M. (1981). Performance hypothesis testing with
   the Sharpe and Treynor measures. *Journal of Finance* 36(4), 889-908.
.. [Mem03] Memmel, C. (2003). Performance hypothesis testing with the Sharpe ratio.
   *Finance Letters* 1, 21-23.
.. [BLdP12] Bailey, D. H. and López de Prado, M. (2012). The Sharpe ratio efficient
   frontier. *Journal of Risk* 15(2), 3-44.
.. [BLdP14] Bailey, D. H. and López de Prado, M. (2014). The deflated Sharpe ratio:
   correcting for selection bias, backtest overfitting and non-normality. *Journal of
   Portfolio Management* 40(5), 94-107.
.. [LW08] Ledoit, O. and Wolf, M. (2008). Robust performance hypothesis testing with the
   Sharpe ratio. *Journal of Empirical Finance* 15(5), 850-859.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from alphaseq.backtest.metrics import finite_or_none


# The standard normal's tails from the standard library: scipy.stats costs about a second
# to import, more than a report spends on everything else it computes here.
def _normal_sf(x: float) -> float:
    """P(Z > x) for a standard normal Z (accurate in the far tail: erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _normal_isf(p: float) -> float:
    """The x with P(Z > x) = p."""
    return -NormalDist().inv_cdf(p)


#: The Euler-Mascheroni constant, used by the expected maximum of ``n`` normal draws.
EULER_MASCHERONI = 0.5772156649015329


# ------------------------------------------------------------------------------ inputs
def _values(returns: Any, what: str) -> np.ndarray:
    """Finite float64 values of a return series (a Series or a 1-D array-like)."""
    values = returns.to_numpy() if isinstance(returns, pd.Series) else returns
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must hold numbers: {exc}") from None
    if values.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        where = returns.index[bad][0] if isinstance(returns, pd.Series) else int(np.argmax(bad))
        raise ValueError(f"{what} has a non-finite value at {where}")
    return values


def _aligned(returns_a: Any, returns_b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values of two return series on their common dates (or equal-length arrays)."""
    if isinstance(returns_a, pd.Series) and isinstance(returns_b, pd.Series):
        for what, series in (("returns_a", returns_a), ("returns_b", returns_b)):
            if series.index.has_duplicates:
                raise ValueError(f"{what} has duplicate dates")
        common = returns_a.index.intersection(returns_b.index).sort_values()
        return (
            _values(returns_a.loc[common], "returns_a"),
            _values(returns_b.loc[common], "returns_b"),
        )
    if isinstance(returns_a, pd.Series) or isinstance(returns_b, pd.Series):
        raise TypeError("pass both returns as pandas Series (aligned by date) or both as arrays")
    a, b = _values(returns_a, "returns_a"), _values(returns_b, "returns_b")
    if a.shape != b.shape:
        raise ValueError(f"returns_a has {len(a)} values and returns_b {len(b)}; arrays must match")
    return a, b


def _sharpe(values: np.ndarray) -> float | None:
    """Per-period ``mean / std(ddof=1)``; None for fewer than 2 values or constant ones."""
    # An exact ptp test: the std of identical floats can come out as 1e-19, not 0.
    if len(values) < 2 or np.ptp(values) == 0:
        return None
    return float(values.mean() / values.std(ddof=1))


def _moments(values: np.ndarray) -> tuple[float, float, float] | None:
    """Per-period Sharpe ratio, skewness and non-excess kurtosis; None when undefined."""
    sharpe = _sharpe(values)
    if sharpe is None:
        return None
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    skewness = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    return sharpe, skewness, kurtosis


# ------------------------------------------------------------------ Jobson-Korkie/Memmel
def sharpe_difference_test(
    returns_a: pd.Series | np.ndarray,
    returns_b: pd.Series | np.ndarray,
    *,
    periods_per_year: int = 252,
) -> dict[str, float | int | None]:
    """Test whether two Sharpe ratios differ: Jobson-Korkie with Memmel's correction.

    On the ``T`` common dates, with per-period Sharpe ratios ``SR_a``, ``SR_b`` and the
    correlation ``rho`` of the two return series, the asymptotic variance of
    ``SR_a - SR_b`` under i.i.d. jointly normal returns is ([JK81]_ as corrected by
    [Mem03]_)::

        V = (2 - 2 rho + (SR_a**2 + SR_b**2 - 2 SR_a SR_b rho**2) / 2) / T

    and ``z = (SR_a - SR_b) / sqrt(V)`` is standard normal when the true Sharpe ratios
    are equal. (Jobson and Korkie's original last term, ``SR_a SR_b (1 + rho**2) / 2``,
    is the error Memmel corrected.)

    Parameters
    ----------
    returns_a, returns_b : pandas.Series or array-like
        Periodic simple returns. Two Series are compared on their common dates; two
        arrays must have the same length and are taken as aligned.
    periods_per_year : int, default=252
        Periods per year, for ``sharpe_diff_ann`` only.

    Returns
    -------
    dict
        * ``sharpe_a``, ``sharpe_b``: per-period Sharpe ratios on the common dates.
        * ``sharpe_diff``: ``sharpe_a - sharpe_b``; ``sharpe_diff_ann``: the same
          ``* sqrt(periods_per_year)``.
        * ``correlation``: Pearson correlation of the two series.
        * ``z``: the test statistic (positive when ``a`` has the higher Sharpe ratio).
        * ``p_value``: two-sided, ``2 * (1 - Phi(|z|))``.
        * ``n_obs``: number of common dates.

        Figures that are undefined — fewer than 2 common dates or a constant series
        (no Sharpe ratio) — are None. Identical Sharpe ratios give ``z = 0`` and
        ``p_value = 1`` even where ``V = 0`` (identical series).

    Notes
    -----
    The variance assumes i.i.d. normal returns; with fat tails or autocorrelation the
    test over-rejects and a studentised bootstrap ([LW08]_) is the robust alternative.
    """
    a, b = _aligned(returns_a, returns_b)
    n_obs = len(a)
    sharpe_a, sharpe_b = _sharpe(a), _sharpe(b)
    out: dict[str, float | int | None] = {
        "sharpe_a": sharpe_a,
        "sharpe_b": sharpe_b,
        "sharpe_diff": None,
        "sharpe_diff_ann": None,
        "correlation": None,
        "z": None,
        "p_value": None,
        "n_obs": n_obs,
    }
    if sharpe_a is None or sharpe_b is None:
        return out
    # Clipped: rounding can put |rho| a hair above 1 and make V negative.
    rho = float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
    diff = sharpe_a - sharpe_b
    variance = (
        2.0 - 2.0 * rho + 0.5 * (sharpe_a**2 + sharpe_b**2 - 2.0 * sharpe_a * sharpe_b * rho**2)
    ) / n_obs
    if diff == 0.0:
        # Equal Sharpe ratios; also the only case with V = 0, as V >= (SR_a - SR_b)**2 / 2T.
        z, p_value = 0.0, 1.0
    elif variance > 0:
        z = diff / math.sqrt(variance)
        p_value = 2.0 * _normal_sf(abs(z))
    else:
        z = p_value = None
    out.update(
        sharpe_diff=finite_or_none(diff),
        sharpe_diff_ann=finite_or_none(diff * math.sqrt(periods_per_year)),
        correlation=finite_or_none(rho),
        z=finite_or_none(z),
        p_value=finite_or_none(p_value),
    )
    return out


# ------------------------------------------------------------------------------- PSR
def psr_from_statistics(
    sharpe: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    benchmark_sharpe: float = 0.0,
) -> float:
    """Probabilistic Sharpe ratio from summary statistics ([BLdP12]_)::

        PSR(SR*) = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR**2))

    Parameters
    ----------
    sharpe : float
        Observed per-period (not annualised) Sharpe ratio ``SR``.
    n_obs : int
        Number of returns ``T``.
    skewness : float, default=0.0
        Skewness ``g3`` of the returns.
    kurtosis : float, default=3.0
        **Non-excess** kurtosis ``g4`` of the returns (3 for normal returns; pass
        ``excess + 3`` if you have the excess kurtosis).
    benchmark_sharpe : float, default=0.0
        Per-period benchmark Sharpe ratio ``SR*``.

    Returns
    -------
    float
        The probability that the true Sharpe ratio exceeds ``SR*``; NaN when
        ``n_obs < 2``, an input is not finite or the variance term is not positive.
    """
    inputs = (sharpe, skewness, kurtosis, benchmark_sharpe)
    if n_obs < 2 or not all(math.isfinite(x) for x in inputs):
        return float("nan")
    # Non-negative for sample moments by Pearson's inequality g4 >= 1 + g3**2, which
    # makes it >= (1 - g3 SR / 2)**2; zero only for a two-point distribution.
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        return float("nan")
    statistic = (sharpe - benchmark_sharpe) * math.sqrt(n_obs - 1) / math.sqrt(spread)
    return _normal_sf(-statistic)


def probabilistic_sharpe_ratio(
    returns: pd.Series | np.ndarray, benchmark_sharpe: float = 0.0
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` ([BLdP12]_).

    :func:`psr_from_statistics` with the per-period Sharpe ratio, skewness and
    non-excess kurtosis of ``returns`` (see the module's conventions).

    Parameters
    ----------
    returns : pandas.Series or array-like
        Periodic simple returns, all finite.
    benchmark_sharpe : float, default=0.0
        Per-period benchmark Sharpe ratio (an annual one divided by
        ``sqrt(periods_per_year)``).

    Returns
    -------
    float
        PSR in [0, 1]; NaN for fewer than 2 returns or constant returns.
    """
    values = _values(returns, "returns")
    moments = _moments(values)
    if moments is None:
        return float("nan")
    sharpe, skewness, kurtosis = moments
    return psr_from_statistics(sharpe, len(values), skewness, kurtosis, benchmark_sharpe)


# ------------------------------------------------------------------------------- DSR
def expected_maximum_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` independent zero-skill trials.

    ([BLdP14]_, with the trials' mean Sharpe ratio 0)::

        E[max SR] = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    with ``gamma`` the Euler-Mascheroni constant. The approximation is for ``N >> 1``;
    for ``N = 1`` the formula diverges (``Phi^-1(0) = -inf``) and the exact value, 0
    (the mean of one zero-skill trial), is returned.

    Parameters
    ----------
    n_trials : int
        Number of independent trials ``N`` (>= 1).
    sharpe_variance : float
        Variance ``V`` of the trials' Sharpe ratios (>= 0), in the same units as the
        Sharpe ratios (per period here).

    Returns
    -------
    float
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if not (math.isfinite(sharpe_variance) and sharpe_variance >= 0):
        raise ValueError(f"sharpe_variance must be a finite number >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    # isf(p) = Phi^-1(1 - p) = -Phi^-1(p), without the cancellation of 1 - p for large N.
    z_max = (1.0 - EULER_MASCHERONI) * _normal_isf(1.0 / n) + EULER_MASCHERONI * _normal_isf(
        1.0 / (n * math.e)
    )
    return float(math.sqrt(sharpe_variance) * z_max)


def deflated_sharpe_ratio(
    returns: pd.Series | np.ndarray, n_trials: int, sharpe_variance: float | None = None
) -> dict[str, float | int | None]:
    """Deflated Sharpe ratio: PSR against the best Sharpe ratio luck would give ([BLdP14]_).

    ``DSR = PSR(SR0)`` with ``SR0 = expected_maximum_sharpe(n_trials, V)``: the
    probability that the strategy's true Sharpe ratio exceeds what the best of
    ``n_trials`` independent zero-skill strategies is expected to show. With
    ``n_trials = 1``, ``SR0 = 0`` and the DSR is ``PSR(0)``.

    Parameters
    ----------
    returns : pandas.Series or array-like
        Periodic simple returns of the selected strategy, all finite.
    n_trials : int
        Number of independent strategy configurations tried before this one was chosen
        (e.g. the number of hyper-parameter trials), >= 1.
    sharpe_variance : float or None, default=None
        Variance of the trials' **per-period** Sharpe ratios (an annualised variance
        divided by ``periods_per_year``). When None, ``1 / (T - 1)`` is used: the
        sampling variance of the Sharpe ratio estimated from ``T`` returns when its true
        value is 0 — the spread of the trials if they all were pure noise (the DSR's null
        hypothesis) and differed only by estimation error; it matches the ``sqrt(T - 1)``
        of the PSR. It is the smallest plausible spread (trials whose true Sharpe ratios
        differ spread more), so the default deflates the least: pass the variance
        measured across the actual trials whenever it is known.

    Returns
    -------
    dict
        * ``dsr``: the deflated Sharpe ratio, in [0, 1].
        * ``psr``: ``PSR(0)`` of the same returns.
        * ``sharpe``: per-period Sharpe ratio; ``skewness``; ``kurtosis`` (non-excess).
        * ``expected_max_sharpe``: ``SR0``, per period.
        * ``sharpe_variance``: the ``V`` used; ``n_trials``; ``n_obs``.

        Figures that need a Sharpe ratio are None for fewer than 2 or constant
        returns; ``expected_max_sharpe`` and ``sharpe_variance`` only need the
        variance (given, or 2 returns for the default).

    Raises
    ------
    ValueError
        When ``n_trials`` is not an integer >= 1 or ``sharpe_variance`` is negative or
        not finite.
    """
    values = _values(returns, "returns")
    n_obs = len(values)
    if sharpe_variance is not None:
        variance: float | None = float(sharpe_variance)
    else:
        variance = 1.0 / (n_obs - 1) if n_obs >= 2 else None
    # Validates n_trials and an explicit variance even when the returns are unusable.
    sr0 = expected_maximum_sharpe(n_trials, 0.0 if variance is None else variance)
    out: dict[str, float | int | None] = {
        "dsr": None,
        "psr": None,
        "sharpe": None,
        "skewness": None,
        "kurtosis": None,
        "expected_max_sharpe": None if variance is None else finite_or_none(sr0),
        "sharpe_variance": finite_or_none(variance),
        "n_trials": int(n_trials),
        "n_obs": n_obs,
    }
    moments = _moments(values)
    if moments is None:
        return out
    sharpe, skewness, kurtosis = moments
    out.update(
        dsr=finite_or_none(psr_from_statistics(sharpe, n_obs, skewness, kurtosis, sr0)),
        psr=finite_or_none(psr_from_statistics(sharpe, n_obs, skewness, kurtosis, 0.0)),
        sharpe=finite_or_none(sharpe),
        skewness=finite_or_none(skewness),
        kurtosis=finite_or_none(kurtosis),
    )
    return out


# ---------------------------------------------------------------------------- report
def significance_report(
    strategies: Mapping[str, pd.Series],
    against: Mapping[str, pd.Series],
    n_trials: int = 1,
    *,
    sharpe_variance: float | None = None,
    periods_per_year: int = 252,
) -> dict[str, dict[str, Any]]:
    """PSR, DSR and Sharpe-difference tests of every strategy against every baseline.

    Parameters
    ----------
    strategies : mapping of str to pandas.Series
        Daily net returns of the strategies to judge, by name.
    against : mapping of str to pandas.Series
        Daily net returns of the baselines, by name. A baseline with the same name as
        the strategy is skipped (a strategy is not tested against itself).
    n_trials : int, default=1
        Trials behind each strategy, for the DSR (see :func:`deflated_sharpe_ratio`).
    sharpe_variance : float or None, default=None
        Per-period variance of the trials' Sharpe ratios, for the DSR; None for the
        default of :func:`deflated_sharpe_ratio`.
    periods_per_year : int, default=252
        Periods per year, for the annualised figures.

    Returns
    -------
    dict
        ``{strategy: {...}}`` with, for each strategy:

        * ``n_obs``; ``sharpe_ann`` (annualised Sharpe ratio);
        * ``psr``: ``PSR(0)``; ``dsr`` and ``expected_max_sharpe_ann`` (``SR0``
          annualised) for ``n_trials``; ``n_trials``;
        * ``vs``: ``{baseline: {"z", "p_value", "sharpe_diff_ann", "n_obs"}}`` from
          :func:`sharpe_difference_test` on the common dates (``z > 0`` when the
          strategy has the higher Sharpe ratio).

        Every figure is a Python float, int or None — None where it is undefined (short
        or constant series), never NaN or infinity.
    """
    root = math.sqrt(periods_per_year)
    report: dict[str, dict[str, Any]] = {}
    for name, returns in strategies.items():
        deflated = deflated_sharpe_ratio(returns, n_trials, sharpe_variance)
        sharpe, sr0 = deflated["sharpe"], deflated["expected_max_sharpe"]
        versus = {}
        for base_name, base in against.items():
            if base_name == name:
                continue
            test = sharpe_difference_test(returns, base, periods_per_year=periods_per_year)
            versus[base_name] = {
                "z": test["z"],
                "p_value": test["p_value"],
                "sharpe_diff_ann": test["sharpe_diff_ann"],
                "n_obs": test["n_obs"],
            }
        report[name] = {
            "n_obs": deflated["n_obs"],
            "sharpe_ann": None if sharpe is None else finite_or_none(sharpe * root),
            "psr": deflated["psr"],
            "dsr": deflated["dsr"],
            "expected_max_sharpe_ann": None if sr0 is None else finite_or_none(sr0 * root),
            "n_trials": deflated["n_trials"],
            "vs": versus,
        }
    return report


#: Strategies that are yardsticks, not the model's: no verdict of their own.
BASELINE_STRATEGIES = frozenset({"equal_weight", "benchmark", "momentum", "buy_and_hold", "hrp"})


def verdict_table(significance: dict[str, Any], level: float = 0.05) -> list[dict[str, Any]]:
    """The verdict of every model strategy against each reference it was tested against.

    Parameters
    ----------
    significance : dict
        The ``significance`` block of ``metrics.json`` (:func:`significance_report`).
    level : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    list of dict
        One per (model strategy, reference) pair, in the block's order, with
        ``strategy``, ``reference``, ``verdict`` ("better", "worse" or "no significant
        difference" at ``level``), ``sharpe_diff`` (annualised), ``ci`` (its 95 %
        interval from the test's z, standard error ``|diff / z|``; None without z),
        ``p_value`` and ``dsr`` (the strategy's deflated Sharpe ratio, or None).
    """
    rows = []
    for name, block in significance.items():
        if name in BASELINE_STRATEGIES or not isinstance(block, dict):
            continue
        for reference, test in (block.get("vs") or {}).items():
            diff, z, p = test.get("sharpe_diff_ann"), test.get("z"), test.get("p_value")
            if diff is None or p is None:
                continue
            half = 1.96 * abs(diff / z) if z else None
            word = difference_verdict(test, level)
            rows.append(
                {
                    "strategy": name,
                    "reference": reference,
                    "verdict": word,
                    "sharpe_diff": diff,
                    "ci": None if half is None else [diff - half, diff + half],
                    "p_value": p,
                    "dsr": block.get("dsr"),
                }
            )
    return rows


def verdict_sentence(row: dict[str, Any]) -> str:
    """One row of :func:`verdict_table` as a sentence, e.g. ``model_topk vs
    equal_weight: worse (ΔSharpe -0.46 [-0.90, -0.02], p 0.039; DSR 0.12)``."""
    interval = "" if row["ci"] is None else f" [{row['ci'][0]:+.2f}, {row['ci'][1]:+.2f}]"
    dsr = "" if row["dsr"] is None else f"; DSR {row['dsr']:.2f}"
    return (
        f"{row['strategy']} vs {row['reference']}: {row['verdict']} (ΔSharpe "
        f"{row['sharpe_diff']:+.2f}{interval}, p {row['p_value']:.3f}{dsr})"
    )


def verdicts(significance: dict[str, Any], level: float = 0.05) -> list[str]:
    """One sentence per model strategy against each reference it was tested against.

    The sentences of :func:`verdict_table`: the Sharpe difference (annualised) with
    its 95 % interval, its p-value, and "better", "worse" or "no significant
    difference" at ``level``, with the strategy's deflated Sharpe ratio.

    Parameters
    ----------
    significance : dict
        The ``significance`` block of ``metrics.json`` (:func:`significance_report`).
    level : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    list of str
    """
    return [verdict_sentence(row) for row in verdict_table(significance, level)]


def difference_text(test: dict[str, Any]) -> str | None:
    """A Sharpe-difference test as ``"-0.46 (p 0.039)"``: the p-value never without the
    sign of the difference it tests. None when the test has no figures."""
    diff, p = test.get("sharpe_diff_ann"), test.get("p_value")
    if diff is None or p is None:
        return None
    return f"{diff:+.2f} (p {p:.3f})"


def difference_verdict(test: dict[str, Any], level: float = 0.05) -> str | None:
    """ "better", "worse" or "no significant difference" for one test (None without one)."""
    diff, p = test.get("sharpe_diff_ann"), test.get("p_value")
    if diff is None or p is None:
        return None
    if p >= level:
        return "no significant difference"
    return "better" if diff > 0 else "worse"
