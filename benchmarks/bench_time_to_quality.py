"""CPU time for alphaseq's default configuration to reach Qlib's best validation rank IC.

Qlib's side is not run here: its figures are the ones recorded in
``benchmarks/README.md`` (Microsoft Qlib's LSTM, 2x64, batch 2000, lookback 60, on the
same split): **77 CPU-s** to its best validation rank IC **0.026**. This script runs
alphaseq's side on the same split:

* data: the built-in ``sp500`` panel (skfolio's 20 S&P 500 stocks, adjusted close only);
* train 2005-01-01 .. 2014-12-31, validation 2015-01-01 .. 2016-12-31 (labels purged
  at each range's end), 21-day forward-return label; no test window is ever read;
* the default configuration: ``src/alphaseq/configs/quickstart.yaml`` (what
  ``alphaseq run`` uses) with the pydantic defaults beside it: the attention LSTM 2x32,
  4 heads, dropout 0.2; the default close-derived feature set (every input is computed
  from the close alone, as Qlib's close-only input); robust scaler; lookback 60,
  stride 2; AdamW lr 1e-3, batch 256, 8 epochs, patience 3 on validation IC, plateau
  scheduler, gradient clipping 1.0; torch's default thread count.

Per epoch it records the process CPU seconds since the start of ``Forecaster.fit``
(features, scaling, sample selection, training and each epoch's validation: everything
but loading the prices) and the validation rank IC (mean over dates of the
cross-sectional Spearman correlation, as Qlib's), and reports the CPU seconds at which
the rank IC first reaches Qlib's best, and their ratio to Qlib's 77 CPU-s (target
<= 1/3).

Usage::

    python benchmarks/bench_time_to_quality.py                 # seed 0 (the default)
    python benchmarks/bench_time_to_quality.py --seeds 0,1,2   # other weight seeds
"""

from __future__ import annotations

import argparse
import os
import time
from importlib.resources import files
from unittest import mock

import torch

import alphaseq.forecaster as forecaster_module
from alphaseq.config import load_config
from alphaseq.data import load_dataset
from alphaseq.experiment.build import make_forecaster
from alphaseq.training import Trainer
from alphaseq.training.callbacks import TrainerCallback

#: Qlib's LSTM on this split, as recorded in benchmarks/README.md (issue 17).
QLIB_CPU_SECONDS = 77.0
QLIB_BEST_RANK_IC = 0.026
TRAIN = ("2005-01-01", "2014-12-31")
VALID = ("2015-01-01", "2016-12-31")


class _CpuClock(TrainerCallback):
    """Stamps every epoch's entry with the process CPU seconds since ``start``."""

    def __init__(self, start: float) -> None:
        self.start = start

    def on_epoch_end(self, trainer, epoch, entry) -> None:
        entry["cpu_seconds"] = time.process_time() - self.start


def run(seed: int, epochs: int | None, threads: int | None) -> list[dict[str, float]]:
    """Fit the default forecaster once; its history with cumulative CPU seconds."""
    config = load_config(files("alphaseq") / "configs" / "quickstart.yaml")
    updates = {"seed": seed, "progress": False, "device": "cpu"}
    if epochs is not None:
        updates["epochs"] = epochs
    if threads is not None:
        updates["threads"] = threads
    config = config.model_copy(update={"training": config.training.model_copy(update=updates)})
    forecaster = make_forecaster(config)
    panel = load_dataset("sp500")
    start = time.process_time()
    clock = _CpuClock(start)

    # Forecaster builds its own Trainer: hand it one that also wears the CPU clock.
    class ClockedTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.callbacks.append(clock)

    with mock.patch.object(forecaster_module, "Trainer", ClockedTrainer):
        forecaster.fit(panel, train=TRAIN, valid=VALID)
    return forecaster.history_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="training.seed values, comma-separated")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's 8")
    parser.add_argument(
        "--threads", type=int, default=None, help="training.threads (default: torch's choice)"
    )
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f} (1 min)"
    )
    print(f"Qlib (recorded): {QLIB_CPU_SECONDS:.0f} CPU-s to val rank IC {QLIB_BEST_RANK_IC}")
    for seed in (int(s) for s in args.seeds.split(",")):
        wall = time.perf_counter()
        history = run(seed, args.epochs, args.threads)
        wall = time.perf_counter() - wall
        print(
            f"seed {seed}, threads {torch.get_num_threads()}: {len(history)} epochs, "
            f"{wall:.1f} s wall, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"  {'epoch':>5}{'CPU s':>9}{'wall s':>9}{'val rank IC':>13}{'val IC':>9}")
        reached = None
        for entry in history:
            rank_ic = entry.get("val_rank_ic", float("nan"))
            print(
                f"  {int(entry['epoch']):>5}{entry['cpu_seconds']:>9.1f}{entry['seconds']:>9.1f}"
                f"{rank_ic:>13.4f}{entry.get('val_ic', float('nan')):>9.4f}"
            )
            if reached is None and rank_ic >= QLIB_BEST_RANK_IC:
                reached = entry
        best = max(history, key=lambda e: e.get("val_rank_ic", float("-inf")))
        print(f"  best val rank IC {best['val_rank_ic']:.4f} at epoch {int(best['epoch'])}")
        if reached is None:
            print(f"  never reached {QLIB_BEST_RANK_IC} within {len(history)} epochs")
        else:
            cpu = reached["cpu_seconds"]
            print(
                f"  reached {QLIB_BEST_RANK_IC} at epoch {int(reached['epoch'])}: {cpu:.1f} CPU-s, "
                f"{cpu / QLIB_CPU_SECONDS:.2f}x Qlib's {QLIB_CPU_SECONDS:.0f} CPU-s (target 0.33)"
            )
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")


if __name__ == "__main__":
    main()
