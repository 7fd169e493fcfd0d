"""Data-parallel training across processes: PyTorch DDP, launched with ``torchrun``.

One process per GPU (or per CPU worker, on the gloo backend) trains the same model on
one fold. Every process holds the whole panel on its own device and draws the same
global batches (same seed); each gathers and runs only its share of every batch, the
model outputs are gathered, and every process computes the loss of the *whole* global
batch. :class:`torch.nn.parallel.DistributedDataParallel` then averages the gradients,
so one optimiser step on N processes is the step a single process takes on the same
global batch (up to float rounding): the loss trajectory does not depend on the number
of processes, and every loss works, the cross-sectional ones (IC, Sharpe) included.

Launch any script that trains through :class:`~alphaseq.training.Trainer` (a
:class:`~alphaseq.forecaster.Forecaster` does) with ``torchrun``; only rank 0 should
write what the script writes::

    # train.py
    from alphaseq import load_panel
    from alphaseq.forecaster import Forecaster
    from alphaseq.training import distributed

    model = Forecaster(trainer={"batch_size": 16384, "precision": "bf16"})
    model.fit(load_panel("sp500"))
    if distributed.is_main_process():
        model.save("model.ckpt")

    torchrun --standalone --nproc_per_node 4 train.py          # 4 GPUs of one machine
    torchrun --standalone --nproc_per_node 2 train.py          # CPU: gloo, 2 processes

The trainer sees ``WORLD_SIZE > 1`` in the environment torchrun sets, joins the process
group (``nccl`` on CUDA, ``gloo`` on CPU), puts each process on ``cuda:LOCAL_RANK``
(with ``training.device`` ``auto`` or ``cuda``) and trains data-parallel; nothing in the
configuration changes. ``training.batch_size`` stays the *global* batch, so the same
config gives the same numbers on 1 or N GPUs; raise it to use N GPUs fully. Only the
main process (rank 0) writes checkpoints and reports progress; the others wait for it.
Validation is computed on rank 0 and its figures broadcast, so early stopping and the
learning-rate schedule decide the same on every rank.

What differs from one process: sums run in another order, so figures agree to float
rounding (1e-7 relative), not bit for bit, and a parameter the loss cannot see (the
last bias under the IC loss, which ignores a shift of a date's predictions) drifts
apart with that rounding; dropout draws other masks (each rank has its own random
stream); a parameter the loss does not reach gets a zero gradient rather than none
(weight decay still shrinks it);
a model that normalised over the batch (none of the built-in ones does) would see its
share only. A cross-sectional model (``gat``) is given whole dates: the dates of each
batch are dealt out to the ranks.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from alphaseq.errors import ConfigError

__all__ = [
    "DistributedContext",
    "LaunchEnvironment",
    "barrier",
    "current",
    "environment",
    "gather_objects",
    "gather_rows",
    "is_main_process",
    "run_on_main",
    "setup",
    "shard",
    "teardown",
    "torchrun_command",
]

T = TypeVar("T")

#: How long a rank waits for the others (rank 0 validating, writing a checkpoint).
DEFAULT_TIMEOUT = _dt.timedelta(minutes=30)


@dataclass(frozen=True)
class LaunchEnvironment:
    """What ``torchrun`` told this process through its environment.

    Attributes
    ----------
    rank : int
        This process among all of them (``RANK``), 0 is the main one.
    world_size : int
        Number of processes (``WORLD_SIZE``).
    local_rank : int
        This process among those of its machine (``LOCAL_RANK``): its GPU.
    master_addr, master_port : str, int
        Where the processes meet (``MASTER_ADDR``, ``MASTER_PORT``).
    """

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a running process group.

    Attributes
    ----------
    rank, world_size, local_rank : int
        As in :class:`LaunchEnvironment`.
    backend : str
        ``"nccl"`` (CUDA) or ``"gloo"`` (CPU).
    device : torch.device
        Where this process trains: ``cuda:<local_rank>`` or ``cpu``.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files."""
        return self.rank == 0


def _integer(name: str, world_size: int) -> int:
    text = os.environ.get(name)
    if text is None:
        raise ConfigError(
            f"WORLD_SIZE={world_size} says this process is one of {world_size}, but {name} "
            f"is not set: launch with torchrun (torchrun --nproc_per_node {world_size} ...), "
            "which sets RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT"
        )
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {text!r}") from None


def environment() -> LaunchEnvironment | None:
    """The launch environment ``torchrun`` set, or None for a single process.

    Returns None when ``WORLD_SIZE`` is unset or 1.

    Raises
    ------
    ConfigError
        When ``WORLD_SIZE > 1`` but the rest is missing or inconsistent (a rank outside
        ``0..WORLD_SIZE-1``, no ``MASTER_ADDR``/``MASTER_PORT``, ...).
    """
    text = os.environ.get("WORLD_SIZE")
    if text is None:
        return None
    try:
        world_size = int(text)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be an integer, got {text!r}") from None
    if world_size < 1:
        raise ConfigError(f"WORLD_SIZE must be >= 1, got {world_size}")
    if world_size == 1:
        return None
    rank = _integer("RANK", world_size)
    local_rank = _integer("LOCAL_RANK", world_size)
    if not 0 <= rank < world_size:
        raise ConfigError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    if not 0 <= local_rank < min(local_size, world_size):
        raise ConfigError(
            f"LOCAL_RANK={local_rank} is outside 0..{min(local_size, world_size) - 1} "
            f"(WORLD_SIZE={world_size}, LOCAL_WORLD_SIZE={local_size})"
        )
    addr = os.environ.get("MASTER_ADDR")
    port = os.environ.get("MASTER_PORT")
    if not addr or not port:
        raise ConfigError(
            f"WORLD_SIZE={world_size} but MASTER_ADDR/MASTER_PORT are not set: launch with "
            "torchrun, which sets them"
        )
    try:
        port_number = int(port)
    except ValueError:
        port_number = -1
    if not 0 < port_number < 65536:
        raise ConfigError(f"MASTER_PORT must be a port number, got {port!r}")
    return LaunchEnvironment(rank, world_size, local_rank, addr, port_number)


def _device(name: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank``, from a ``training.device`` value."""
    kind, _, index = name.partition(":")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if kind != "cuda":
        raise ConfigError(
            f"device {name!r}: distributed training runs on CUDA (nccl) or on CPU (gloo)"
        )
    if index:
        raise ConfigError(
            f"device {name!r} names one GPU, but distributed training runs one process per "
            "GPU (cuda:LOCAL_RANK): use device 'auto' or 'cuda', and CUDA_VISIBLE_DEVICES "
            "to choose the GPUs"
        )
    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise ConfigError(
            f"LOCAL_RANK={local_rank} but this machine shows {count} GPU(s): launch at most "
            f"--nproc_per_node {count}"
        )
    return torch.device("cuda", local_rank)


def setup(
    device: str = "auto",
    *,
    backend: str | None = None,
    timeout: _dt.timedelta = DEFAULT_TIMEOUT,
) -> DistributedContext | None:
    """Join the process group of a ``torchrun`` launch (once per process).

    Parameters
    ----------
    device : str, default "auto"
        A ``training.device`` value: ``auto``, ``cuda`` (each process takes
        ``cuda:LOCAL_RANK``) or ``cpu``.
    backend : str, optional
        Default: ``nccl`` on CUDA, ``gloo`` on CPU.
    timeout : datetime.timedelta
        How long collectives wait for the slowest rank.

    Returns
    -------
    DistributedContext or None
        None in a single process (no ``WORLD_SIZE > 1`` and no process group of more
        than one process); calling again returns the same group (for this device).

    Raises
    ------
    ConfigError
        For an inconsistent launch environment or a device data-parallel training
        cannot use.
    """
    if dist.is_available() and dist.is_initialized():
        # Already joined (by an earlier trainer, the experiment runner or the user).
        world_size = dist.get_world_size()
        if world_size == 1:
            return None
        rank, backend = dist.get_rank(), str(dist.get_backend())
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        where = _device(device, local_rank)
        if backend == "nccl" and where.type != "cuda":
            raise ConfigError(
                f"device {device!r}: this process group uses nccl, which moves CUDA tensors "
                "only; train on 'cuda' or 'auto'"
            )
        return DistributedContext(rank, world_size, local_rank, backend, where)
    launch = environment()
    if launch is None:
        return None
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed: cannot train data-parallel")
    where = _device(device, launch.local_rank)
    backend = backend or ("nccl" if where.type == "cuda" else "gloo")
    if where.type == "cuda":
        torch.cuda.set_device(where)
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=launch.rank,
        world_size=launch.world_size,
        timeout=timeout,
    )
    atexit.register(teardown)
    return DistributedContext(launch.rank, launch.world_size, launch.local_rank, backend, where)


def current() -> DistributedContext | None:
    """The process group this process joined (device: its default), or None."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return setup("cuda" if dist.get_backend() == "nccl" else "cpu")


def is_main_process() -> bool:
    """True in rank 0 of a process group and in a single process: the one that writes."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    """Wait until every rank reaches this point (nothing to wait for in one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def teardown() -> None:
    """Leave the process group (registered at exit by :func:`setup`; safe to repeat)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_on_main(function: Callable[[], T]) -> T:
    """``function()`` on rank 0, its result (or its error) given to every rank.

    For what must be decided once and agree everywhere (validation figures that drive
    early stopping, the checkpoint a run resumes from): ranks that decided differently
    would wait for each other forever. In a single process, just ``function()``.
    """
    context = current()
    if context is None:
        return function()
    box: list[object] = [None]
    failure: BaseException | None = None
    if context.is_main:
        try:
            box[0] = ("ok", function())
        except Exception as exc:  # re-raised below, on every rank
            failure = exc
            try:
                pickle.dumps(exc)
                box[0] = ("error", exc)
            except Exception:  # an unpicklable error still reaches the others
                box[0] = ("error", RuntimeError(f"rank 0 failed: {type(exc).__name__}: {exc}"))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]  # type: ignore[misc]
    if kind == "error":
        raise failure if failure is not None else value
    return value


def gather_objects(value: T) -> list[T]:
    """Every rank's ``value`` (picklable), in rank order; ``[value]`` in a single process."""
    context = current()
    if context is None:
        return [value]
    values: list[T | None] = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values  # type: ignore[return-value]


def shard(
    positions: torch.Tensor, world_size: int, group: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Deal one global batch out to ``world_size`` ranks, in order.

    Parameters
    ----------
    positions : torch.Tensor
        (B,) sample positions of the global batch.
    world_size : int
        Number of ranks.
    group : torch.Tensor, optional
        (B,) date of each sample, the samples of a date next to each other (as
        date-major batches are). When given, whole dates are dealt out (for models that
        look across a date's assets); otherwise contiguous runs of samples whose sizes
        differ by at most one.

    Returns
    -------
    list of torch.Tensor
        One (possibly empty) slice of ``positions`` per rank; concatenated in rank order
        they are ``positions`` again.
    """
    if group is None:
        return list(torch.tensor_split(positions, world_size))
    _, counts = torch.unique_consecutive(group, return_counts=True)
    per_rank = [int(part.sum()) for part in torch.tensor_split(counts, world_size)]
    return list(torch.split(positions, per_rank))


def gather_rows(local: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
    """The rows of every rank concatenated in rank order; this rank's keep their gradient.

    Parameters
    ----------
    local : torch.Tensor
        (>= sizes[rank], ...) this rank's rows (rows beyond ``sizes[rank]`` are padding
        and dropped).
    sizes : list of int
        Rows of each rank (known to every rank: all deal out the same global batch).
    rank : int
        This rank.

    Notes
    -----
    The other ranks' rows arrive as constants, so the gradient of a loss of the
    concatenation reaches this rank's rows only. Every rank computes the same loss;
    scaled by the world size, DDP's gradient average is that loss's gradient.
    """
    mine = local[: sizes[rank]]
    # all_gather moves equal shapes: pad to the largest share, cut the padding after.
    padded = local.new_zeros((max(sizes), *local.shape[1:]))
    padded[: sizes[rank]] = mine.detach()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    rows = [part[:size] for part, size in zip(parts, sizes, strict=True)]
    rows[rank] = mine
    return torch.cat(rows)


def torchrun_command(arguments: list[str], nproc_per_node: int | None = None) -> list[str]:
    """The command that runs ``python -m alphaseq <arguments>`` under torchrun on one machine.

    Parameters
    ----------
    arguments : list of str
        Command-line arguments of ``alphaseq`` (without any flag asking for DDP).
    nproc_per_node : int, optional
        Processes to start; default: one per visible GPU (at least one).

    Returns
    -------
    list of str
        ``[python, -m, torch.distributed.run, --standalone, --nproc_per_node, N, -m,
        alphaseq, *arguments]``, for :func:`subprocess.run`.
    """
    if nproc_per_node is None:
        nproc_per_node = max(torch.cuda.device_count(), 1)
    if nproc_per_node < 1:
        raise ConfigError(f"nproc_per_node must be >= 1, got {nproc_per_node}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc_per_node),
        "-m",
        "alphaseq",
        *arguments,
    ]
