"""Many tuning workers at once, sharing one Optuna study through its RDB storage.

``alphaseq tune --workers N`` starts N workers as local processes, ``--executor ray``
as Ray tasks (on a cluster: ``--address``). Each worker is a plain :func:`tune` call
on the same storage URL and study name, adding its share of the trials; the study's
database is the only thing they share, so a worker that dies costs its running trial
(marked FAIL once its heartbeat stops) and nothing else. When they are done, the study's
results (``best.yaml``, ``trials.parquet``, ``tuning.json``) are written once, here.

SQLite (the default storage, ``{out_dir}/study.db``) serves workers on one machine; workers
on several machines need a database server: ``--storage postgresql://...``.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alphaseq._logging import logger
from alphaseq.config import parse_config
from alphaseq.errors import ConfigError
from alphaseq.experiment.executors import (
    EXECUTORS,
    available_cores,
    ray_session,
    threads_per_worker,
)
from alphaseq.tuning.search import TuningResult, tune

__all__ = ["trial_shares", "tune_in_parallel"]


def trial_shares(n_trials: int, workers: int) -> list[int]:
    """``n_trials`` split as evenly as possible over ``workers`` (none left empty)."""
    workers = min(workers, n_trials)
    base, extra = divmod(n_trials, workers)
    return [base + (k < extra) for k in range(workers)]


def _worker(
    values: dict[str, Any], n_trials: int, threads: int, kwargs: dict, panel: Any = None
) -> int:
    """One worker: its share of trials on the shared study; its own files go to a
    scratch folder (the study's results are written once, by the caller)."""
    import torch

    if panel is not None:
        kwargs = kwargs | {"panel": panel}
    if values.get("training", {}).get("threads") is None:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="alphaseq-tune-") as scratch:
        # A line per trial: workers on one terminal cannot share a progress bar.
        result = tune(values, n_trials=n_trials, out_dir=scratch, progress="lines", **kwargs)
    return result.n_trials


def tune_in_parallel(
    config_values: Mapping[str, Any],
    *,
    n_trials: int,
    workers: int,
    out_dir: str | Path,
    executor: str = "local",
    address: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    source: str = "config",
    **tune_kwargs: Any,
) -> TuningResult:
    """Run ``n_trials`` trials of one study in ``workers`` workers, then write its results.

    Parameters
    ----------
    config_values : dict
        The base experiment, as for :func:`~alphaseq.tuning.tune`.
    n_trials : int
        Trials in all, split evenly over the workers.
    workers : int
        Workers at once: local processes (the CPU cores divided between them) or Ray
        tasks.
    out_dir : str or Path
        Where the study's results (and the default SQLite study) are written.
    executor : {"local", "ray"}, default "local"
        Local processes or Ray tasks.
    address : str, optional
        The Ray cluster (``executor="ray"``).
    storage, study_name : str, optional
        As for :func:`~alphaseq.tuning.tune`; every worker gets the same.
    **tune_kwargs
        ``space``, ``pruner``, ``metric``, ``seed``, ``timeout``, ``panel``, ...: passed
        to every worker's :func:`~alphaseq.tuning.tune`.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}: choose one of {list(EXECUTORS)}")
    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1 with --workers, got {n_trials}")
    values = dict(config_values)
    base = parse_config(values, source=source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shared = {
        "storage": storage or f"sqlite:///{(out / 'study.db').resolve()}",
        "study_name": study_name or f"{base.name}-{base.model.name}",
        "source": source,
        **tune_kwargs,
    }
    # The study and its tables exist before the workers race to open them, and a bad
    # space, metric or storage answers here, once (its "no trial completed yet" is no news).
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        tune(values, n_trials=0, out_dir=out, progress=False, **shared)
    finally:
        logger.setLevel(previous)
    shares = trial_shares(n_trials, workers)
    logger.info(
        "tuning: %d trial(s) in %d %s worker(s) on study %r",
        n_trials,
        len(shares),
        "Ray" if executor == "ray" else "local",
        shared["study_name"],
    )
    if executor == "ray":
        _run_on_ray(values, shares, base.training.threads or 1, shared, address)
    else:
        if address is not None:
            raise ConfigError("--address names a Ray cluster: use it with --executor ray")
        threads = threads_per_worker(len(shares), base.training.threads, available_cores())
        with cf.ProcessPoolExecutor(
            max_workers=len(shares), mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = [pool.submit(_worker, values, k, threads, shared) for k in shares]
            for future in cf.as_completed(futures):
                future.result()
    return tune(values, n_trials=0, out_dir=out, progress=False, **shared)


def _run_on_ray(
    values: dict[str, Any], shares: list[int], threads: int, shared: dict, address: str | None
) -> None:
    shared = dict(shared)
    with ray_session(address) as ray:
        task = ray.remote(_worker).options(num_cpus=threads, name="alphaseq-tune-worker")
        # Prices given in Python go into the object store once (a top-level argument, so
        # that Ray hands each worker the panel, not a reference to it).
        panel = shared.pop("panel", None)
        panel = None if panel is None else ray.put(panel)
        refs = [task.remote(values, k, threads, shared, panel) for k in shares]
        ray.get(refs)
