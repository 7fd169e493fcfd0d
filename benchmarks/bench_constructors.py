"""Portfolio construction on 600 tickers: mean-variance, HRP and an HRP tilt (issue 17).

    python benchmarks/bench_constructors.py [PATH] [--rebalances 107] [--before-every 5]
                                            [--threads 1]

Backtests the three risk-based constructors of a us600 run on the real 600-stock panel
(month ends from December 2008: 107 rebalances, a 252-day window each) with planted
forecasts (normal, 2 % monthly dispersion; the forecasts only steer mean-variance and
the tilt, the cost is the same for any). Prints wall and process CPU seconds of:

* **after**: the three constructors sharing one :class:`RiskEstimates`, as a run trades
  them (the configured tilt first, then mean-variance, then the HRP baseline, which
  finds every hierarchy already fitted);
* **before**: each constructor fitting skfolio's estimators itself (``estimates=None``,
  the path before issue 17), and **before1**, the same on one BLAS thread (what the
  thread limit alone gains), against *after* on every ``--before-every``-th rebalance
  (interleaved per constructor, so that the three see the same load);
* **side by side**: the three traded in threads at once, as a run now does (the
  solvers release the GIL), against *after* one after another;
* **floors**, per rebalance: the covariance estimates alone (Ledoit-Wolf and the
  empirical one, skfolio's), the Ward tree with optimal leaf ordering alone (scipy), and
  the Clarabel solves inside mean-variance (as Clarabel times them, during *after*).

The load average before and after is printed: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def timed(action) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = action()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared/data/us_stocks_600_2005_2017.parquet"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(default))
    parser.add_argument("--rebalances", type=int, default=107)
    parser.add_argument("--before-every", type=int, default=5, help="0: skip the old path")
    parser.add_argument("--threads", type=int, default=1, help="RiskEstimates(threads=...)")
    args = parser.parse_args()

    import cvxpy
    from skfolio.moments import EmpiricalCovariance, LedoitWolf
    from threadpoolctl import threadpool_limits

    from alphaseq import load_panel
    from alphaseq.backtest import backtest, month_end_rows, tradable
    from alphaseq.portfolio import HRP, MeanVariance, PortfolioConstraints, Tilt, make_policy
    from alphaseq.portfolio import constructors as constructors_module
    from alphaseq.portfolio.constructors import _risk_universe
    from alphaseq.portfolio.estimates import RiskEstimates
    from alphaseq.portfolio.hrp import hrp_ordering

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    panel = load_panel(args.path)
    close = panel.close.astype(np.float64)
    last = len(panel.dates) - 1
    first = int(np.searchsorted(panel.dates, np.datetime64("2008-12-01")))
    rows = month_end_rows(panel.dates, start_row=first, end_row=last)
    rows = rows[rows < last][: args.rebalances]
    scores = np.random.default_rng(0).normal(0.0, 0.02, (len(rows), panel.n_tickers))
    capped = PortfolioConstraints(max_turnover=0.1)  # a run's defaults (us600.yaml)
    free = PortfolioConstraints(max_turnover=None)  # the HRP baseline
    constructors = {
        "tilt_hrp": lambda: Tilt(base="hrp", constraints=capped, name="tilt_hrp"),
        "mean_variance": lambda: MeanVariance(constraints=capped),
        "hrp": lambda: HRP(constraints=free),
    }
    print(
        f"{panel.n_tickers} tickers, {len(rows)} monthly rebalances "
        f"{np.datetime_as_string(panel.dates[rows[0]], unit='D')} .. "
        f"{np.datetime_as_string(panel.dates[rows[-1]], unit='D')}; lookback 252"
    )

    def run(name: str, chosen: np.ndarray, estimates: RiskEstimates | None):
        policy = make_policy(
            constructors[name](), close, scores[np.searchsorted(rows, chosen)], estimates=estimates
        )
        return backtest(close, chosen, policy, cost_bps=10.0, end_row=last)

    # The Clarabel solves inside mean-variance, as Clarabel itself times them.
    solves: list[float] = []
    solve = cvxpy.Problem.solve

    def recorded(problem, *args, **kwargs):
        out = solve(problem, *args, **kwargs)
        solves.append(problem.solver_stats.solve_time or 0.0)
        return out

    shared = RiskEstimates(threads=args.threads)
    after: dict[str, tuple[float, float]] = {}
    for name in constructors:
        cvxpy.Problem.solve = recorded
        try:
            wall, cpu, _ = timed(lambda name=name: run(name, rows, shared))
        finally:
            cvxpy.Problem.solve = solve
        after[name] = (wall, cpu)
        print(
            f"after  {name:14s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
            f"({wall / len(rows) * 1e3:6.0f} ms per rebalance)"
        )
    total = (sum(w for w, _ in after.values()), sum(c for _, c in after.values()))
    print(f"after  {'total':14s} wall {total[0]:7.2f} s  cpu {total[1]:7.2f} s  {shared}")

    # As a run trades them now: the three side by side in threads (experiment.strategies),
    # on fresh estimates; the same weights as one after another.
    from alphaseq.experiment.strategies import _trade_side_by_side

    fresh = RiskEstimates(threads=args.threads)
    wall, cpu, side = timed(
        lambda: _trade_side_by_side(
            lambda name, _: run(name, rows, fresh), [(name, None) for name in constructors]
        )
    )
    alone = [run(name, rows[:3], RiskEstimates()).weights_after for name in constructors]
    assert all(np.array_equal(a, s.weights_after[:3]) for a, s in zip(alone, side, strict=True)), (
        "side by side changed the weights"
    )
    print(
        f"side by side (threads)  wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
        f"({total[0] / wall:.2f}x the one-after-another wall)"
    )

    if args.before_every > 0:
        # The old path as it ran (BLAS threads left alone), and on one BLAS thread (what
        # the thread limit alone gains), against the new one on the same rebalances;
        # interleaved per constructor so that all three see the same load.
        subset = rows[:: args.before_every]
        variants = {"after": RiskEstimates(threads=args.threads), "before": None, "before1": None}
        sums = {label: np.zeros(2) for label in variants}
        for name in constructors:
            for label, estimates in variants.items():
                if name == "tilt_hrp" and estimates is None:
                    constructors_module._HRP_CACHE.clear()  # the old path's own memo
                limit = 1 if label == "before1" else None
                with threadpool_limits(limits=limit, user_api="blas"):
                    wall, cpu, _ = timed(lambda name=name, e=estimates: run(name, subset, e))
                sums[label] += (wall, cpu)
                print(
                    f"{label:7s} {name:14s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  on "
                    f"{len(subset)} rebalances"
                )
        for label in ("before", "before1"):
            wall, cpu = sums[label] / sums["after"]
            print(f"{label:7s}/ after: wall {wall:5.2f}x  cpu {cpu:5.2f}x  (the three together)")

    # Floors: what any implementation of these estimators pays per rebalance.
    windows = []
    for row in rows:
        with np.errstate(invalid="ignore", divide="ignore"):
            history = close[row - 252 : row + 1]
            history = history[1:] / history[:-1] - 1.0
        window, universe = _risk_universe(history, tradable(close, row), 252)
        windows.append(np.ascontiguousarray(window[:, universe]))
    with RiskEstimates().limits():
        cov = timed(lambda: [LedoitWolf().fit(w) for w in windows])
        emp = timed(lambda: [EmpiricalCovariance().fit(w) for w in windows])
        tree = timed(lambda: [hrp_ordering(w) for w in windows])
    n_mean = np.mean([w.shape[1] for w in windows])
    print(
        f"floor  Ledoit-Wolf    wall {cov[0]:7.2f} s  cpu {cov[1]:7.2f} s  "
        f"({cov[0] / len(rows) * 1e3:.0f} ms per rebalance, {n_mean:.0f} assets on average)"
    )
    print(
        f"floor  empirical cov  wall {emp[0]:7.2f} s  cpu {emp[1]:7.2f} s  "
        f"({emp[0] / len(rows) * 1e3:.0f} ms per rebalance, nearest-PD check included)"
    )
    print(
        f"floor  Ward + OLO     wall {tree[0]:7.2f} s  cpu {tree[1]:7.2f} s  "
        f"({tree[0] / len(rows) * 1e3:.0f} ms per rebalance)"
    )
    print(
        f"floor  Clarabel solves wall {sum(solves):7.2f} s  ({len(solves)} solves inside "
        f"mean-variance, {sum(solves) / after['mean_variance'][0]:.0%} of its wall)"
    )
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
