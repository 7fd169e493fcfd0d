"""Every strategy of a run, traded from the stored out-of-sample forecasts.

Model top-k, equal weight, 12-1 momentum, the benchmark, the configured constructors
and the HRP baseline (cross-section), or the model's timing of one instrument against
buy-and-hold, all through the same backtest engine and costs. Only the forecasts and
the prices are read, so the stage can be re-run without retraining.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from alphaseq._logging import logger
from alphaseq.backtest import backtest, month_end_rows
from alphaseq.backtest.timing import timing_backtest
from alphaseq.config import ExperimentConfig
from alphaseq.data import Panel
from alphaseq.errors import DataError
from alphaseq.experiment.build import universe_selection
from alphaseq.experiment.executors import available_cores
from alphaseq.portfolio import (
    PortfolioConstraints,
    PortfolioConstructor,
    default_top_k,
    make_policy,
    momentum_scores,
)
from alphaseq.portfolio.alpha import grinold_alpha, return_dispersion
from alphaseq.portfolio.estimates import RiskEstimates
from alphaseq.portfolio.specs import EqualWeightSpec, HRPSpec, TopKSpec
from alphaseq.portfolio.timing import timing_positions

__all__ = ["STRATEGIES", "build_strategies"]

#: The reference strategies of a cross-sectional run, in report order.
STRATEGIES = ("model_topk", "equal_weight", "benchmark", "momentum")


def build_strategies(
    config: ExperimentConfig,
    panel: Panel,
    predictions: pd.DataFrame,
    *,
    first_row: int,
    last_row: int,
    horizon: int,
    fold_skill: dict[int, float] | None = None,
) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """Backtest every strategy of ``config`` over rows ``first_row..last_row``.

    Parameters
    ----------
    config : ExperimentConfig
        Its ``portfolio`` (and ``timing``) sections decide the strategies.
    panel : Panel
        The prices the forecasts were made on.
    predictions : pandas.DataFrame
        Stitched forecasts: ``date, ticker, prediction``.
    first_row, last_row : int
        The out-of-sample record (first test row, last test row).
    horizon : int
        The labels' horizon (mean-variance scales its expected returns by it).
    fold_skill : dict of int to float, optional
        Each fold's validation rank IC. When the model learnt normalised targets
        (``labels.cross_section`` or ``labels.excess``), constructors that read forecasts
        as returns get :func:`alphaseq.portfolio.alpha.grinold_alpha` of them instead.

    Returns
    -------
    strategies : dict
        Per strategy: ``returns`` (Series), ``turnover``, ``weights`` (DataFrame) and,
        for constructed ones, ``construction``; timing strategies carry ``metrics``.
    baselines : tuple of str
        The strategies every other one is tested against.
    """
    if config.mode == "timing":
        return _timing_strategies(config, panel, predictions), ("buy_and_hold",)
    strategies = _strategies(
        config, panel, first_row, last_row, predictions, horizon, fold_skill or {}
    )
    return strategies, ("equal_weight", "benchmark")


def _strategies(
    config,
    panel: Panel,
    first: int,
    last: int,
    predictions: pd.DataFrame,
    horizon: int,
    fold_skill: dict[int, float],
) -> dict[str, dict]:
    """Weights and backtests of every cross-sectional strategy over the test record.

    Each one is a constructor under its constraints, called by the one engine at every
    month end with the weights the portfolio drifted to (constructor -> weight policy ->
    :func:`alphaseq.backtest.backtest`).
    """
    p = config.portfolio
    rows = month_end_rows(panel.dates, start_row=first, end_row=last)
    rows = rows[rows < last]  # a rebalance on the last day would earn nothing
    if len(rows) == 0:
        raise DataError("the out-of-sample record is shorter than one month: nothing to trade")
    close = panel.close.astype(np.float64)
    k = p.top_k or default_top_k(panel.n_tickers)

    scores = np.full((len(rows), panel.n_tickers), np.nan)
    wanted = pd.Series(np.arange(len(rows)), index=pd.DatetimeIndex(panel.dates[rows]))
    at_rebalance = predictions[predictions["date"].isin(wanted.index)]
    scores[wanted.loc[at_rebalance["date"]].to_numpy(), _cols_of(panel, at_rebalance["ticker"])] = (
        at_rebalance["prediction"].to_numpy()
    )
    momentum = momentum_scores(close, rows, p.momentum_lookback, p.momentum_skip)
    eligible = universe_selection(config, panel, rows)
    if eligible is not None:
        # Every strategy, baselines included, picks from the universe of each rebalance.
        scores = np.where(eligible, scores, np.nan)
        momentum = np.where(eligible, momentum, np.nan)
        k = p.top_k or default_top_k(min(panel.n_tickers, config.data.universe.top_n))

    # The reference strategies are plain rules: long-only, fully invested, no caps.
    free = PortfolioConstraints(max_turnover=None)
    context = {"top_k": k, "cost_bps": p.cost_bps, "horizon": horizon}
    references = {
        "model_topk": (TopKSpec(name="model_topk", type="topk"), scores),
        "equal_weight": (EqualWeightSpec(name="equal_weight", type="equal_weight"), scores),
        "momentum": (TopKSpec(name="momentum", type="topk"), momentum),
    }
    out: dict[str, dict] = {}
    for name, (spec, signal) in references.items():
        constructor = spec.build(free, **context)
        traded = _traded(panel, close, rows, last, constructor, signal, p.cost_bps, eligible)
        traded.pop("construction")  # recorded for the configured constructors only
        out[name] = traded | {"k": k}

    extra = [*p.constructors]
    if p.hrp_baseline:
        extra.append(HRPSpec(name="hrp", type="hrp"))
    as_returns = None
    if any(spec.reads_returns for spec in extra) and (
        config.labels.cross_section is not None
        or config.labels.excess is not None
        or config.model.ensemble is not None  # rank-averaged: scores, not returns
    ):
        # The forecasts are scores in the units of a normalised target: in return units
        # by Grinold's rule, with each fold's validation skill (known before its test).
        fold_at = at_rebalance.groupby("date")["fold"].first()
        folds = fold_at.reindex(pd.DatetimeIndex(panel.dates[rows])).to_numpy()
        skill = np.array([fold_skill.get(int(f), np.nan) if pd.notna(f) else np.nan for f in folds])
        as_returns = grinold_alpha(scores, skill, return_dispersion(close, rows, horizon))
    # One set of risk estimates for the run: the covariance and the HRP hierarchy of a
    # rebalance's window are computed once for every constructor that reads them.
    estimates = RiskEstimates()
    jobs = []
    for spec in extra:
        baseline = spec.name == "hrp" and isinstance(spec, HRPSpec) and p.hrp_baseline
        constraints = PortfolioConstraints(
            top_k=k if spec.limits_positions else None,
            max_weight=p.max_weight,
            max_turnover=None if baseline else p.max_turnover,
            fully_invested=p.fully_invested,
        )
        constructor = spec.build(constraints, **context)
        signal = as_returns if spec.reads_returns and as_returns is not None else scores
        jobs.append((constructor, signal))
    trades = _trade_side_by_side(
        lambda constructor, signal: _traded(
            panel, close, rows, last, constructor, signal, p.cost_bps, eligible, estimates
        ),
        jobs,
    )
    for spec, (_, signal), traded in zip(extra, jobs, trades, strict=True):
        traded["construction"] |= {"type": spec.type}
        if signal is as_returns:
            traded["construction"]["forecasts"] = "grinold_alpha"
        out[spec.name] = traded

    bench_prices = _benchmark_prices(config, panel)
    if bench_prices is not None:
        # Bought at the first rebalance and held: one trade, which costs nothing (an
        # index is the reference, not a position we pay for).
        hold = EqualWeightSpec(name="benchmark", type="equal_weight").build(free, **context)
        policy = make_policy(hold, bench_prices[:, None], np.zeros((1, 1)))
        result = backtest(bench_prices[:, None], rows[:1], policy, cost_bps=0.0, end_row=last)
        returns = pd.Series(
            result.returns, index=pd.DatetimeIndex(panel.dates[result.rows]), name="benchmark"
        )
        out["benchmark"] = {"returns": returns, "turnover": 0.0}
    else:
        logger.warning("no benchmark: the data has no index and data.benchmark is not set")
    order = [*STRATEGIES, *(spec.name for spec in extra)]
    return {name: out[name] for name in order if name in out}


def _trade_side_by_side(
    trade: Callable[[PortfolioConstructor, np.ndarray], dict[str, Any]],
    jobs: list[tuple[PortfolioConstructor, np.ndarray]],
) -> list[dict[str, Any]]:
    """``trade(constructor, signal)`` of every job, in threads when there are several
    and cores to run them: the optimisers spend their time in solvers that release the
    GIL (Clarabel), so mean-variance beside the HRP constructors uses the second core.

    Every constructor's weights are those of one thread: each is computed on its own,
    the shared estimates are deterministic, and linear algebra runs on one BLAS thread
    throughout (set here, once, for all of them: threadpoolctl's limit is process-wide).
    """
    threads = min(len(jobs), available_cores())
    if threads <= 1:
        return [trade(*job) for job in jobs]
    # catch_warnings and the BLAS limit are process-wide: set once around the threads
    # (the constructors' own catch_warnings blocks may then see each other's warnings,
    # which only go to the log), and restored whatever the threads did to them.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        warnings.catch_warnings(),
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="alphaseq-construct") as pool,
    ):
        futures = [pool.submit(trade, *job) for job in jobs]
        return [future.result() for future in futures]


def _traded(
    panel: Panel,
    close: np.ndarray,
    rows: np.ndarray,
    last: int,
    constructor: PortfolioConstructor,
    scores: np.ndarray,
    cost_bps: float,
    eligible: np.ndarray | None = None,
    estimates: RiskEstimates | None = None,
) -> dict[str, Any]:
    """Backtest one constructor through its weight policy, and check every rebalance
    against its constraints (constructors project onto them: a violation is a bug).
    ``estimates``: the run's shared risk estimates (None: the constructor's own)."""
    policy = make_policy(constructor, close, scores, eligible=eligible, estimates=estimates)
    result = backtest(close, rows, policy, cost_bps=cost_bps, end_row=last)
    constraints = policy.constructor.constraints
    tradable_rows = np.isfinite(close[rows])
    if eligible is not None:
        tradable_rows &= eligible  # the universe of each rebalance, as the policy saw it
    violations = [
        f"{np.datetime_as_string(panel.dates[row], unit='D')!s}: {message}"
        for r, row in enumerate(rows)
        for message in constraints.check(
            result.weights_after[r], result.weights_before[r], tradable_rows[r]
        )
    ]
    if violations:
        raise RuntimeError(f"strategy {constructor.name!r} broke its constraints: {violations[:3]}")
    weights = result.weights_after
    held = np.nonzero(weights)
    # A constructor whose optimiser failed at every rebalance, or that never held a
    # position, did not run a strategy: its flat returns must not read as one.
    failures = policy.constructor.n_failures
    failure = None
    if len(rows) and failures >= len(rows):
        failure = f"the optimisation failed at every rebalance ({failures} of {len(rows)})"
    elif len(rows) and not len(held[0]):
        failure = f"it held no position at any of its {len(rows)} rebalances"
    if failure is not None:
        logger.warning("strategy %r failed: %s; it never traded", constructor.name, failure)
    return {
        "returns": pd.Series(
            result.returns, index=pd.DatetimeIndex(panel.dates[result.rows]), name=constructor.name
        ),
        # One rebalance's trading on average, the initial buy left out (None with one).
        "turnover": (None if not np.isfinite(result.average_turnover) else result.average_turnover),
        # Each rebalance's one-way turnover (drift included), for returns.parquet.
        "rebalance_turnover": pd.Series(
            result.turnover, index=pd.DatetimeIndex(panel.dates[rows]), name="turnover"
        ),
        "weights": pd.DataFrame(
            {
                "date": panel.dates[rows][held[0]],
                "ticker": panel.tickers[held[1]],
                "weight": weights[held],
            }
        ),
        "construction": {
            "fallbacks": policy.constructor.n_failures,
            "constraints": {
                "top_k": constraints.top_k,
                "max_weight": constraints.max_weight,
                "max_turnover": constraints.max_turnover,
                "fully_invested": constraints.fully_invested,
            },
            "rebalances_checked": len(rows),
            "violations": 0,
            "failed": failure is not None,
            "failure": failure,
        },
    }


def _timing_strategies(config, panel: Panel, predictions: pd.DataFrame) -> dict[str, dict]:
    """The model's long/flat (or long/short) timing of one instrument against buy-and-hold."""
    ticker = predictions["ticker"].iloc[0]
    signal = predictions.set_index("date")["prediction"].sort_index()
    # A classifier's prediction is already P(up) - P(down); a trend score is in (-1, 1).
    kind = "regression" if config.task == "regression" else "classification"
    positions = pd.Series(
        timing_positions(
            signal.to_numpy(),
            mode=config.timing.mode,
            kind=kind,
            cap=config.timing.cap,
            threshold=config.timing.threshold,
        ),
        index=signal.index,
    )
    column = panel.tickers.tolist().index(ticker)
    prices = pd.Series(
        panel.close[:, column].astype(np.float64), index=pd.DatetimeIndex(panel.dates)
    ).reindex(signal.index)
    result = timing_backtest(prices, positions, cost_bps=config.portfolio.cost_bps)
    weights = pd.DataFrame(
        {"date": positions.index, "ticker": ticker, "weight": positions.to_numpy()}
    )
    return {
        "model_timing": {
            "returns": result["returns"],
            "metrics": result["metrics"],
            "weights": weights,
            "rebalance_turnover": result["turnover"],
        },
        "buy_and_hold": {
            "returns": result["buy_and_hold"]["returns"],
            "metrics": result["buy_and_hold"]["metrics"],
            "rebalance_turnover": result["buy_and_hold"]["turnover"],
        },
    }


def _benchmark_prices(config, panel: Panel) -> np.ndarray | None:
    if panel.benchmark is not None:
        return panel.benchmark.astype(np.float64)
    return None


def _cols_of(panel: Panel, tickers: pd.Series) -> np.ndarray:
    position = {t: k for k, t in enumerate(panel.tickers)}
    return np.array([position[t] for t in tickers], dtype=np.int64)
