"""Where a run's folds train: worker processes on this machine, or Ray tasks on a cluster.

Walk-forward folds are independent: each is a recipe (the experiment's shared data + one
:class:`~alphaseq.validation.Fold`) whose result depends on nothing else, every fit
starting from the configured seed. An executor ships that recipe to workers and yields
each fold as it finishes; :func:`~alphaseq.experiment.stages.walk_forward` files it in the
run directory at once, so a run stopped half-way keeps every finished fold and resumes.

* :class:`ProcessFolds` -- ``alphaseq run --workers N``: N local processes, torch's
  threads divided between them (workers × threads ≤ cores), the shared data sent once to
  each worker.
* :class:`RayFolds` -- ``alphaseq run --executor ray [--address ADDR]``: one Ray task per
  fold, one GPU each when the cluster has GPUs; the shared data is put in Ray's object
  store once; a task whose worker dies is retried.

Workers send back the fold's result, its checkpoint file's bytes and its log lines; the
driver writes them, so a cluster's nodes need no shared file system.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import pickle
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphaseq._logging import logger
from alphaseq.errors import AlphaseqError, ConfigError

if TYPE_CHECKING:
    from alphaseq.experiment.build import ExperimentData
    from alphaseq.experiment.record import FoldResult
    from alphaseq.validation import Fold

__all__ = [
    "EXECUTORS",
    "FoldExecutor",
    "ProcessFolds",
    "RayFolds",
    "TrainedFold",
    "available_cores",
    "make_executor",
]

#: The ``--executor`` choices.
EXECUTORS = ("local", "ray")

#: How often Ray runs a fold task again after its worker process died.
RAY_TASK_RETRIES = 3


@dataclass
class TrainedFold:
    """A fold trained elsewhere: its result, its checkpoint file and its log lines."""

    result: FoldResult
    checkpoint: bytes
    log: list[str] = field(default_factory=list)

    def write_checkpoint(self, path: Path) -> None:
        """Write the fold's model checkpoint at ``path``."""
        path.write_bytes(self.checkpoint)


class FoldExecutor(ABC):
    """Trains folds somewhere and yields each one as it finishes (in any order)."""

    @abstractmethod
    def train(self, data: ExperimentData, folds: Sequence[Fold]) -> Iterator[TrainedFold]:
        """Train ``folds`` of ``data``; yield each as soon as it is done."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None, cores: int) -> int:
    """torch threads of each of ``workers`` processes: ``threads`` when set, else the
    cores divided between them; refuses a product above ``cores``."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers > cores:
        raise ConfigError(
            f"--workers {workers} exceeds the {cores} CPU cores of this machine: each "
            f"worker needs a core of its own; use --workers {cores} or fewer"
        )
    if threads is None:
        return max(1, cores // workers)
    if workers * threads > cores:
        raise ConfigError(
            f"--workers {workers} × training.threads {threads} = {workers * threads} "
            f"threads exceed the {cores} CPU cores: lower one of them (or leave "
            f"training.threads unset to divide the cores between the workers)"
        )
    return threads


# ------------------------------------------------------------------- the fold recipe
def train_elsewhere(data: ExperimentData, fold: Fold, threads: int | None) -> TrainedFold:
    """Train one fold in a worker: its result, checkpoint bytes and log lines.

    The function every worker runs, whichever executor started it.
    """
    from alphaseq.experiment.stages import save_fold_model, train_fold

    if threads is not None and data.config.training.threads is None:
        import torch

        torch.set_num_threads(threads)
    with _captured_log() as lines, tempfile.TemporaryDirectory(prefix="alphaseq-fold-") as tmp:
        result, model = train_fold(data, fold)
        path = Path(tmp) / "model.ckpt"
        save_fold_model(data, fold, model, path)
        checkpoint = path.read_bytes()
    return TrainedFold(result, checkpoint, lines)


class _LineCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter(f"[worker {os.getpid()}] %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _captured_log() -> Iterator[list[str]]:
    """The package's INFO lines of the block, kept to be replayed in the run's log."""
    handler = _LineCollector()
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _replay(trained: TrainedFold) -> TrainedFold:
    for line in trained.log:
        logger.info("%s", line)
    return trained


# ------------------------------------------------------------------ local processes
_WORKER_DATA: ExperimentData | None = None
_WORKER_THREADS: int | None = None


def _start_worker(data_file: str, threads: int) -> None:
    """A worker's start: the experiment's data, read once from the file the driver wrote
    (a file rather than the process arguments: a worker that dies while starting must not
    leave the driver writing hundreds of megabytes into a pipe nobody reads)."""
    global _WORKER_DATA, _WORKER_THREADS
    with open(data_file, "rb") as handle:
        _WORKER_DATA = pickle.load(handle)
    _WORKER_THREADS = threads


def _worker_task(fold: Fold) -> TrainedFold:
    assert _WORKER_DATA is not None, "the worker was not started with the experiment's data"
    return train_elsewhere(_WORKER_DATA, fold, _WORKER_THREADS)


def check_not_in_spawned_import() -> None:
    """Refuse to start worker processes from a script that a starting worker is importing.

    Worker processes are started fresh (spawn) and import the caller's ``__main__`` script;
    a script that calls :func:`alphaseq.run` at its top level would start workers again
    from every worker (Python's own check only says so after a crash).
    """
    # multiprocessing marks a process that is still importing its parent's main module.
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError(
            "alphaseq.run(..., workers=N) was called while a worker process imported "
            "your script: put the call under 'if __name__ == \"__main__\":'"
        )


class ProcessFolds(FoldExecutor):
    """Folds trained in ``workers`` local processes.

    Parameters
    ----------
    workers : int
        Processes (at most the CPU cores).
    threads : int, optional
        ``training.threads``; default the cores divided between the workers.
    """

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        self.threads = threads_per_worker(workers, threads, available_cores())

    def train(self, data: ExperimentData, folds: Sequence[Fold]) -> Iterator[TrainedFold]:
        if not folds:
            return
        check_not_in_spawned_import()
        workers = min(self.workers, len(folds))
        logger.info(
            "training %d fold(s) in %d worker processes, %d torch thread(s) each",
            len(folds),
            workers,
            self.threads,
        )
        with tempfile.TemporaryDirectory(prefix="alphaseq-workers-") as scratch:
            data_file = Path(scratch) / "data.pickle"
            with open(data_file, "wb") as handle:
                pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
            # spawn, not fork: a forked copy of a process that has started torch's thread
            # pools (or CUDA) can deadlock.
            with cf.ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(str(data_file), self.threads),
            ) as pool:
                futures = [pool.submit(_worker_task, fold) for fold in folds]
                try:
                    for future in cf.as_completed(futures):
                        yield _replay(future.result())
                except cf.process.BrokenProcessPool:
                    raise AlphaseqError(
                        "a worker process died (killed, out of memory, or it could not "
                        "start: see the messages above)"
                    ) from None
                finally:
                    for future in futures:
                        future.cancel()  # folds not started yet; running ones finish


# ------------------------------------------------------------------------------ Ray
def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, which is not installed: pip install 'alphaseq[ray]'"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected for the block to the cluster at ``address``
    (``auto``: the one started on this machine with ``ray start``; None: ``RAY_ADDRESS``
    or a new local instance); disconnected afterwards if this block connected."""
    ray = _import_ray()
    owned = not ray.is_initialized()
    # Without an address: RAY_ADDRESS, else a new local instance ("local"). Ray's own
    # default would join the last cluster 'ray start' left a note of, and wait minutes
    # for it when that cluster is gone; 'auto' asks for that one explicitly.
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if owned:
        try:
            # log_to_driver off: the workers' lines come back with each fold.
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except ConnectionError as exc:
            raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
    try:
        yield ray
    finally:
        if owned:
            ray.shutdown()


class RayFolds(FoldExecutor):
    """One Ray task per fold on a Ray cluster.

    Parameters
    ----------
    address : str, optional
        The cluster (``auto``, ``ray://host:10001``, ``host:6379``); default
        ``RAY_ADDRESS`` or a new local Ray instance.
    workers : int, optional
        At most this many folds at once; default as many as the cluster's resources
        allow.
    threads : int, optional
        CPUs (and torch threads) per fold task; default ``training.threads`` or 1.
    """

    def __init__(
        self, address: str | None = None, workers: int | None = None, threads: int | None = None
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        self.address = address
        self.workers = workers
        self.threads = threads
        _import_ray()  # a missing extra answers before any data is prepared

    def train(self, data: ExperimentData, folds: Sequence[Fold]) -> Iterator[TrainedFold]:
        if not folds:
            return
        threads = self.threads or data.config.training.threads or 1
        with ray_session(self.address) as ray:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            task = ray.remote(train_elsewhere).options(
                num_cpus=threads,
                num_gpus=gpus,
                max_retries=RAY_TASK_RETRIES,  # a dead worker's fold runs again
                name="alphaseq-fold",
            )
            shared = ray.put(data)  # once, not once per task
            queue = list(folds)
            limit = self.workers or len(queue)
            logger.info(
                "training %d fold(s) as Ray tasks (%d CPU%s each, GPU: %s, at most %d at once)",
                len(queue),
                threads,
                "s" if threads > 1 else "",
                "yes" if gpus else "no",
                limit,
            )
            running: list[Any] = []
            try:
                while queue or running:
                    while queue and len(running) < limit:
                        running.append(task.remote(shared, queue.pop(0), threads))
                    ready, running = ray.wait(running, num_returns=1)
                    yield _replay(_ray_result(ray, ready[0]))
            except BaseException:
                for ref in running:
                    ray.cancel(ref)
                raise


def _ray_result(ray: Any, ref: Any) -> TrainedFold:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        if isinstance(cause, AlphaseqError):
            raise cause from None
        raise
    except ray.exceptions.WorkerCrashedError:
        raise AlphaseqError(
            f"a fold's Ray worker died {RAY_TASK_RETRIES + 1} times; see the Ray logs"
        ) from None


# -------------------------------------------------------------------------- factory
def make_executor(
    executor: str = "local",
    *,
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
) -> FoldExecutor | None:
    """The executor of ``--executor``/``--workers``: None (one process, folds in order),
    :class:`ProcessFolds` or :class:`RayFolds`."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}: choose one of {list(EXECUTORS)}")
    if executor == "ray":
        return RayFolds(address=address, workers=workers, threads=threads)
    if address is not None:
        raise ConfigError("--address names a Ray cluster: use it with --executor ray")
    if workers is None or workers == 1:
        return None
    return ProcessFolds(workers, threads)
