"""Experiment stages: a full run vs re-backtesting its stored forecasts vs resuming it.

    python benchmarks/bench_experiment.py [--config quickstart] [--repeat 3]

Prints wall and process CPU time of: one full ``alphaseq run`` (train every fold, trade,
report), ``alphaseq backtest`` on it (no retraining; target < 10 % of the run), and a
``--resume`` of a run whose every fold is stored (what resuming costs beyond the
folds: loading data, features and labels, reading the folds back). The ratios are
against the full run measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from alphaseq.cli import _config_values
from alphaseq.config import parse_config
from alphaseq.experiment import RunRecord, rebacktest, run


def timed(action) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    values, _ = _config_values(args.config)
    values.setdefault("training", {})["progress"] = False
    config = parse_config(values)
    print(f"config {args.config}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        full = timed(lambda: run(config, folder))
        print(f"full run           wall {full[0]:7.2f} s   cpu {full[1]:7.2f} s")
        for k in range(args.repeat):
            out = Path(tmp) / f"backtest-{k}"
            wall, cpu = timed(lambda out=out: rebacktest(folder, out_dir=out))
            print(
                f"backtest #{k + 1}        wall {wall:7.2f} s   cpu {cpu:7.2f} s   "
                f"{wall / full[0]:6.1%} of the run"
            )
        for k in range(args.repeat):
            out = Path(tmp) / f"backtest-bare-{k}"
            wall, cpu = timed(lambda out=out: rebacktest(folder, out_dir=out, report=False))
            print(
                f"backtest, no report #{k + 1} wall {wall:7.2f} s   cpu {cpu:7.2f} s   "
                f"{wall / full[0]:6.1%} of the run"
            )
        for k in range(args.repeat):
            copy = Path(tmp) / f"resume-{k}"
            shutil.copytree(folder, copy)
            record = RunRecord(copy)
            record.clear_results()  # as after a crash just before the strategies
            wall, cpu = timed(lambda copy=copy: run(config, copy, resume=True))
            print(
                f"resume, all stored #{k + 1} wall {wall:7.2f} s   cpu {cpu:7.2f} s   "
                f"{wall / full[0]:6.1%} of the run"
            )
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
