"""Compute every Alpha158-style factor (group ``alpha158``) on the 600-stock panel.

Prints, per repeat, wall-clock and process CPU seconds of ``compute_features`` for the
154 factors, the same for the 22 default features as a yardstick measured in the same
run (cost per feature, ratio), the machine's load average before and after, and the
peak resident memory of the process. ``--by-group`` adds one timed pass per group.
Target (issue 13): all 154 factors under 30 s and 3 GB on 2 CPU cores.

Usage: python benchmarks/bench_features.py [PATH] [--repeat 2] [--by-group]
(default PATH: ../shared/data/us_stocks_600_2005_2017.parquet beside the repository)
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def timed(function, *args, **kwargs):
    """``(result, wall seconds, process CPU seconds)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared/data/us_stocks_600_2005_2017.parquet"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--by-group", action="store_true", help="also time each group once")
    args = parser.parse_args()
    if not args.path.exists():
        raise SystemExit(f"reference panel not found: {args.path}")

    from alphaseq import load_panel
    from alphaseq.features import FEATURE_GROUPS, compute_features

    print(f"before: {load()}")
    baseline = peak_rss_mb()
    panel, wall, _ = timed(load_panel, args.path)
    print(f"panel: {panel.n_dates} dates x {panel.n_tickers} tickers, loaded in {wall:.1f} s")
    after_load = peak_rss_mb()

    walls = []
    for k in range(args.repeat):
        features, wall, cpu = timed(compute_features, panel, ["alpha158"])
        walls.append(wall)
        print(
            f"alpha158 run {k + 1}: {features.n_features} factors in {wall:6.2f} s wall, "
            f"{cpu:6.2f} s CPU ({1000 * wall / features.n_features:.0f} ms per factor)"
        )
        size = features.values.nbytes / 2**20
        del features
    peak = peak_rss_mb()

    if args.by_group:
        for group in ("alpha158_kbar", "alpha158_close", "alpha158_range", "alpha158_volume"):
            _, wall, cpu = timed(compute_features, panel, [group])
            n = len(FEATURE_GROUPS[group])
            print(f"  {group:16s} {n:3d} factors {wall:6.2f} s wall, {cpu:6.2f} s CPU")

    yardstick, d_wall, d_cpu = timed(compute_features, panel)
    per_default = d_wall / yardstick.n_features
    per_alpha = min(walls) / len(FEATURE_GROUPS["alpha158"])
    print(
        f"default set: {yardstick.n_features} features in {d_wall:.2f} s wall, {d_cpu:.2f} s CPU "
        f"({1000 * per_default:.0f} ms per feature); per factor, alpha158 / default = "
        f"{per_alpha / per_default:.2f}"
    )
    print(f"alpha158 best of {args.repeat}: {min(walls):.2f} s (target < 30 s)")
    print(
        f"peak RSS {peak:.0f} MiB (after imports {baseline:.0f}, after load {after_load:.0f}; "
        f"the (T, N, 154) float32 result is {size:.0f} MiB; target < 3072 MiB)"
    )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
