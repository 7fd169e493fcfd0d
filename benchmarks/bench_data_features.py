"""Load the 600-stock reference panel and compute every default feature and label.

Prints wall-clock seconds per stage and the peak resident memory of the process.
Target (issue 2): under 10 s and under 2 GB on 2 CPU cores.

Usage: python benchmarks/bench_data_features.py [PATH]
(default PATH: ../shared/data/us_stocks_600_2005_2017.parquet beside the repository)
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared/data/us_stocks_600_2005_2017.parquet"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not path.exists():
        sys.exit(f"reference panel not found: {path}")

    import pandas as pd  # noqa: F401  (import cost kept out of the timed stages)
    import torch  # noqa: F401

    from alphaseq import load_panel
    from alphaseq.features import compute_features, make_labels
    from alphaseq.windows import valid_samples

    baseline = peak_rss_mb()
    start = time.perf_counter()
    panel = load_panel(path)
    loaded = time.perf_counter()
    features = compute_features(panel)
    featured = time.perf_counter()
    labels = [
        make_labels(panel, "forward_return", (21,)),
        make_labels(panel, "trend", (7, 30)),
        make_labels(panel, "direction", (21,)),
        make_labels(panel, "three_class", (21,)),
    ]
    labelled = time.perf_counter()
    samples = valid_samples(
        features.values, 60, labels=labels[0].values, mask=panel.mask, label_horizon=21
    )
    indexed = time.perf_counter()

    # Floor: reading the same file into pandas, with nothing else done.
    floor_start = time.perf_counter()
    pd_frame = __import__("pandas").read_parquet(path)
    floor = time.perf_counter() - floor_start
    del pd_frame

    total = indexed - start
    print(f"panel: {panel.n_dates} dates x {panel.n_tickers} tickers, {len(panel.fields)} fields")
    print(f"features: {features.n_features}  ({features.values.nbytes / 2**20:.0f} MiB float32)")
    print(f"labelled samples (60-day windows, 21-day label): {len(samples):,}")
    print(f"load            {loaded - start:6.2f} s")
    print(f"features        {featured - loaded:6.2f} s")
    print(f"labels (4 kinds){labelled - featured:6.2f} s")
    print(f"sample index    {indexed - labelled:6.2f} s")
    print(f"total           {total:6.2f} s   (target < 10 s)")
    print(f"floor: pandas.read_parquet alone {floor:.2f} s; total / floor = {total / floor:.1f}x")
    print(
        f"peak RSS        {peak_rss_mb():6.0f} MiB (after imports: {baseline:.0f} MiB; "
        f"target < 2048 MiB)"
    )
    assert np.isfinite(features.values[samples.t, samples.i]).all()


if __name__ == "__main__":
    main()
