"""Folds in parallel: one process vs ``--workers N``, and Ray's overhead per fold task.

Runs the same experiment (the packaged ``ci`` config with a 2×32 model, every training
date and twelve epochs, so that a fold trains for seconds, not a fraction of one) several
ways in one go and prints wall and process CPU time (the children's CPU included) of each:

* ``sequential, T threads``: one process, every fold in turn, T = the cores;
* ``sequential, 1 thread``: the same with one thread (the reference ``--workers`` equals);
* ``--workers W``: W local processes, the cores divided between them;
* ``ray, W tasks``: on a local Ray instance started beforehand (its start-up is timed
  on its own), so the difference from ``--workers W`` is Ray's cost per fold task: the
  object store, scheduling, a fresh worker process importing torch.

Every parallel run's forecasts are checked equal to the 1-thread sequential run's.

    python benchmarks/bench_parallel.py [--repeats 2] [--workers 2] [--epochs 12] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from alphaseq.experiment import run
from alphaseq.experiment.configs import experiment_config
from alphaseq.experiment.executors import available_cores

OVERRIDES = [
    "windows.stride=1",  # every training date: folds of seconds, not a fraction of one
    "model.params.hidden_size=32",
    "model.params.num_layers=2",
]


def cpu_seconds() -> float:
    """This process's and its finished children's CPU time."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


EPOCHS = 12


def timed(label: str, out: Path, threads: int | None, **kwargs) -> tuple[float, float, Path]:
    extra = [] if threads is None else [f"training.threads={threads}"]
    epochs = [f"training.epochs={EPOCHS}", f"training.patience={EPOCHS}"]
    config = experiment_config("ci", [*OVERRIDES, *epochs, *extra])
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = run(config, out, force=True, **kwargs)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"  {label:<28} wall {wall:6.1f} s   CPU {cpu:6.1f} s   ({len(result.folds)} folds)")
    return wall, cpu, result.run_dir


def overhead_per_fold(wall: float, workers: int, run_dir: Path) -> float:
    """Seconds per fold spent outside its own training (start-up, shipping data and
    results, storing): the workers' busy time less the folds' own recorded seconds."""
    folds = json.loads((run_dir / "folds.json").read_text())
    trained = sum(fold["seconds"] for fold in folds)
    return (wall * min(workers, len(folds)) - trained) / len(folds)


def same_forecasts(a: Path, b: Path) -> bool:
    pa, pb = (pd.read_parquet(d / "predictions.parquet") for d in (a, b))
    return pa.equals(pb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=min(2, available_cores()))
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--epochs", type=int, default=12, help="longer folds: more epochs")
    args = parser.parse_args()
    global EPOCHS
    EPOCHS = args.epochs
    cores = available_cores()
    print(f"{cores} cores, {EPOCHS} epochs a fold; load average before: {os.getloadavg()}")
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for repeat in range(args.repeats):
            print(f"repeat {repeat + 1}")
            seq_all = timed(f"sequential, {cores} threads", root / "seq", cores)
            seq_one = timed("sequential, 1 thread", root / "one", 1)
            parallel = timed(f"--workers {args.workers}", root / "par", None, workers=args.workers)
            assert same_forecasts(parallel[2], seq_one[2]), "--workers changed the forecasts"
            rows.setdefault("sequential_all", []).append(seq_all[0])
            rows.setdefault("sequential_one", []).append(seq_one[0])
            rows.setdefault("workers", []).append(parallel[0])
            rows.setdefault("workers_overhead", []).append(
                overhead_per_fold(parallel[0], args.workers, parallel[2])
            )
            if not args.no_ray:
                if repeat == 0:
                    import ray

                    started = time.perf_counter()
                    ray.init("local", num_cpus=cores, log_to_driver=False, logging_level="ERROR")
                    took = time.perf_counter() - started
                    print(f"  {'ray.init (local instance)':<28} wall {took:6.1f} s")
                ray_run = timed(
                    f"ray, {args.workers} tasks at once",
                    root / "ray",
                    1,
                    executor="ray",
                    workers=args.workers,
                )
                assert same_forecasts(ray_run[2], seq_one[2]), "Ray changed the forecasts"
                rows.setdefault("ray", []).append(ray_run[0])
                rows.setdefault("ray_overhead", []).append(
                    overhead_per_fold(ray_run[0], args.workers, ray_run[2])
                )
    best = {k: min(v) for k, v in rows.items()}
    print(f"load average after: {os.getloadavg()}")
    print(
        f"best of {args.repeats}: speed-up of --workers {args.workers} over one process "
        f"with {cores} threads {best['sequential_all'] / best['workers']:.2f}x, over one "
        f"process with 1 thread {best['sequential_one'] / best['workers']:.2f}x"
    )
    print(
        f"--workers {args.workers}: {best['workers_overhead']:.2f} s per fold outside its "
        f"training (process start, imports, data, results)"
    )
    if "ray" in best:
        print(
            f"ray, {args.workers} tasks: {best['ray'] / best['workers']:.2f}x the wall of "
            f"--workers {args.workers}; {best['ray_overhead']:.2f} s per fold task outside "
            f"its training (object store, dispatch, results; worker processes reused)"
        )


if __name__ == "__main__":
    main()
