"""The training loop: device-agnostic, mixed precision, early stopping, resumable.

The loop knows nothing of finance beyond the validation figures it monitors, and the
model knows nothing of the loop. Data stays on the training device: batches are
gathered there by :class:`~alphaseq.windows.WindowDataset`. Launched by ``torchrun``,
the same loop trains data-parallel (see :mod:`alphaseq.training.distributed`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from alphaseq._logging import logger
from alphaseq.errors import ConfigError
from alphaseq.losses import LossBatch, make_loss, needs_date_major
from alphaseq.models.base import ModelOutput
from alphaseq.training.callbacks import (
    EpochLogger,
    ProgressBar,
    TrainerCallback,
    as_callback,
)
from alphaseq.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from alphaseq.training.config import TrainerConfig
from alphaseq.training.distributed import (
    DistributedContext,
    barrier,
    gather_objects,
    gather_rows,
    run_on_main,
    setup,
    shard,
)
from alphaseq.windows import WindowDataset


@dataclass
class TrainingResult:
    """What :meth:`Trainer.fit` learned about the run.

    Attributes
    ----------
    history : list of dict
        One entry per epoch: ``epoch, train_loss, val_loss, val_ic, val_rank_ic,
        val_sharpe, lr, seconds, samples_per_second``.
    best_epoch : int
        Epoch (0-based) whose weights were restored.
    best_score : float
        The monitored validation figure at the best epoch.
    stopped_early : bool
        Whether early stopping ended the run before ``epochs``.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("nan")
    stopped_early: bool = False


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


class Trainer:
    """Fit a model on window datasets.

    Parameters
    ----------
    config : TrainerConfig or dict
        The loop's settings.
    checkpoint_path : str or Path, optional
        Written after every epoch (atomically); with ``resume=True`` in :meth:`fit`,
        training continues from it.
    metadata : dict, optional
        Extra JSON-ready facts stored in every checkpoint (feature names, data
        fingerprint, scaler statistics, the resolved experiment config ...).
    scorer : callable, optional
        ``scorer(output, data) -> {name: value}``: the validation figures beside the loss
        (recorded as ``val_<name>``; ``config.monitor`` may name one). The loop knows
        nothing of what they mean; without a scorer only the loss is recorded.
    callbacks : list of TrainerCallback or callable, optional
        Told of every epoch and batch (see :class:`~alphaseq.training.callbacks.TrainerCallback`);
        a plain ``callback(epoch, entry)`` is called after each epoch's checkpoint is
        written. The epoch log line and (with ``config.progress``) the progress bar are
        added by default.

    Attributes
    ----------
    device : torch.device
        Where training happens (the datasets must live there).
    distributed : DistributedContext or None
        This process's rank when launched by ``torchrun`` with more than one process
        (then :meth:`fit` trains data-parallel and only rank 0 writes checkpoints and
        calls the callbacks); None in a single process.
    """

    def __init__(
        self,
        config: TrainerConfig | dict[str, Any] | None = None,
        *,
        checkpoint_path: str | Path | None = None,
        metadata: dict[str, Any] | None = None,
        scorer: Callable[[ModelOutput, WindowDataset], dict[str, float]] | None = None,
        callbacks: list[TrainerCallback | Callable[[int, dict[str, float]], None]] | None = None,
    ) -> None:
        if config is None:
            config = TrainerConfig()
        elif isinstance(config, dict):
            config = TrainerConfig(**config)
        self.config = config
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.metadata = metadata or {}
        self.scorer = scorer
        # The loop reports to callbacks; its own log line and progress bar are two of them.
        self.callbacks: list[TrainerCallback] = [
            EpochLogger(),
            *([ProgressBar()] if config.progress else []),
            *(as_callback(c) for c in callbacks or []),
        ]
        if config.threads is not None:
            # Process-wide in torch: a run with several trainers uses one setting.
            torch.set_num_threads(config.threads)
        # Launched by torchrun (WORLD_SIZE > 1): join the process group, one device a rank.
        self.distributed: DistributedContext | None = setup(config.device)
        self.device = (
            resolve_device(config.device) if self.distributed is None else self.distributed.device
        )
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("precision 'fp16' needs a CUDA device; use 'bf16' on CPU")
        self.loss_fn = make_loss(config.loss, **config.loss_params)
        self.date_major = (
            needs_date_major(config.loss) if config.date_major is None else config.date_major
        )
        if needs_date_major(config.loss) and not self.date_major:
            raise ConfigError(f"loss {config.loss!r} needs date_major batches")

    # ----------------------------------------------------------------- set-up
    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        return cls(
            model.parameters(),
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
            # One fused kernel instead of a multi-tensor loop: ~2.5 ms less per H100 step.
            # On the CPU torch's default is a Python loop over the parameters; the
            # multi-tensor kernels give bit-identical weights with fewer dispatches.
            **({"fused": True} if self.device.type == "cuda" else {}),
            **({"foreach": True} if self.device.type == "cpu" else {}),
        )

    def _scheduler(self, optimizer: torch.optim.Optimizer):
        c = self.config
        if c.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="min" if c.monitor == "loss" else "max",
                factor=c.plateau_factor,
                patience=c.plateau_patience,
                min_lr=c.min_learning_rate,
            )
        if c.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=c.epochs, eta_min=c.min_learning_rate
            )
        return None

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # --------------------------------------------------------------- training
    def fit(
        self,
        model: nn.Module,
        train: WindowDataset,
        valid: WindowDataset | None = None,
        *,
        resume: bool = False,
    ) -> TrainingResult:
        """Train ``model`` in place and restore its best epoch's weights.

        Parameters
        ----------
        model : nn.Module
            Returns a :class:`~alphaseq.models.base.ModelOutput` from (B, L, F) windows.
        train, valid : WindowDataset
            Samples to train on and to validate on (early stopping, scheduler). Without
            ``valid`` the training loss is monitored instead.
        resume : bool
            Continue from ``checkpoint_path`` when that file exists.

        Notes
        -----
        Data-parallel (see :attr:`distributed`): every rank passes the same model,
        datasets and settings; each runs its share of every global batch of
        ``batch_size`` samples, and the step equals the single-process step on that
        batch. Validation runs on rank 0, which broadcasts its figures, so every rank
        stops at the same epoch and ends with the same weights.
        """
        c = self.config
        if len(train) == 0:
            raise ConfigError("the training set has no samples")
        for name, data in (("train", train), ("valid", valid)):
            if data is not None and data.device != self.device:
                raise ConfigError(
                    f"{name} data lives on {data.device}, the trainer on {self.device}: "
                    f"build the WindowDataset with device={str(self.device)!r}"
                )
        torch.manual_seed(c.seed)
        context = self.distributed
        if context is not None:
            # Each rank draws its own dropout masks; rank 0 those of a single process.
            torch.manual_seed(c.seed + context.rank)
        if is_cross_sectional(model):
            # Assets attend to their date's cross-section: batches must hold whole dates.
            if c.date_major is False:
                raise ConfigError(
                    f"model {getattr(model, 'registry_name', type(model).__name__)!r} looks "
                    "across the assets of each date and needs date_major batches: remove "
                    "training.date_major: false"
                )
            self.date_major = True
        model.to(self.device)
        optimizer = self._optimizer(model)
        scheduler = self._scheduler(optimizer)
        grad_scaler = torch.amp.GradScaler("cuda", enabled=c.precision == "fp16")
        result = TrainingResult()
        best_state: dict[str, torch.Tensor] | None = None
        stale = 0
        start_epoch = 0
        monitor = c.monitor if valid is not None else "loss"
        sign = -1.0 if monitor == "loss" else 1.0  # larger sign * score is better

        state = None
        if resume and self.checkpoint_path is not None:
            state = run_on_main(self._resume_state)
        if state is not None:
            model.load_state_dict(state["model_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            if scheduler is not None and state.get("scheduler_state") is not None:
                scheduler.load_state_dict(state["scheduler_state"])
            grad_scaler.load_state_dict(state["grad_scaler_state"])
            result.history = list(state["history"])
            result.best_epoch = state["best_epoch"]
            result.best_score = state["best_score"]
            best_state = state["best_state"]
            stale = state["stale_epochs"]
            if hasattr(self.scorer, "load_state_dict"):
                self.scorer.load_state_dict(state.get("scorer_state"))
            start_epoch = state["epoch"] + 1
            # RNG states are CPU byte tensors, wherever map_location put the checkpoint.
            torch.set_rng_state(state["rng_cpu"].cpu())
            if self.device.type == "cuda" and state.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
            self._restore_rank_rng(state)
            logger.info("resumed from %s after epoch %d", self.checkpoint_path, start_epoch - 1)
            if stale >= c.patience:
                start_epoch = c.epochs  # it had already stopped early

        net: nn.Module = model
        if context is not None:
            # After the resumed state is loaded: DDP starts every rank from rank 0's weights.
            net = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        listeners = self._listeners()
        for callback in listeners:
            callback.on_fit_start(self, c.epochs)
        for epoch in range(start_epoch, c.epochs):
            begin = time.perf_counter()
            train_loss, seen = self._train_epoch(net, train, optimizer, grad_scaler, epoch)
            # Decided once (rank 0) and shared: ranks that disagreed on stopping would hang.
            entry = run_on_main(partial(self._epoch_entry, model, valid, epoch, train_loss))
            if monitor != "loss" and f"val_{monitor}" not in entry:
                given = sorted(k[4:] for k in entry if k.startswith("val_"))
                raise ConfigError(
                    f"training.monitor is {monitor!r}, but validation gives {given}: "
                    f"monitor 'loss' or give the trainer a scorer"
                )
            score = entry["train_loss"] if monitor == "loss" else entry[f"val_{monitor}"]
            if monitor == "loss" and valid is not None and len(valid):
                score = entry["val_loss"]
            entry["lr"] = optimizer.param_groups[0]["lr"]
            entry["seconds"] = time.perf_counter() - begin
            entry["samples_per_second"] = seen / max(entry["seconds"], 1e-9)
            result.history.append(entry)

            improved = math.isfinite(score) and (
                result.best_epoch < 0
                or not math.isfinite(result.best_score)
                or sign * score > sign * result.best_score
            )
            if improved:
                result.best_epoch, result.best_score = epoch, float(score)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                stale = 0
            else:
                stale += 1
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score if math.isfinite(score) else sign * -math.inf)
            elif scheduler is not None:
                scheduler.step()
            if self.checkpoint_path is not None:
                self._checkpoint(
                    model, optimizer, scheduler, grad_scaler, result, best_state, stale, epoch
                )
            for callback in listeners:
                callback.on_epoch_end(self, epoch, entry)
            if stale >= c.patience:
                result.stopped_early = True
                logger.info("early stop after epoch %d (best: %d)", epoch, result.best_epoch)
                break

        if best_state is not None:
            model.load_state_dict(best_state)
        for callback in listeners:
            callback.on_fit_end(self, result)
        return result

    def _epoch_entry(
        self, model: nn.Module, valid: WindowDataset | None, epoch: int, train_loss: float
    ) -> dict[str, float]:
        entry: dict[str, float] = {"epoch": epoch, "train_loss": train_loss}
        if valid is not None and len(valid):
            entry.update(self.evaluate(model, valid))
        return entry

    def _listeners(self) -> list[TrainerCallback]:
        # Progress, log lines and user callbacks (which may write files): rank 0 only.
        return self.callbacks if self.distributed is None or self.distributed.is_main else []

    def _batch_settings(self, data: WindowDataset, epoch: int) -> dict[str, Any]:
        # One generator per epoch, seeded from (seed, epoch): the batch order of an
        # epoch does not depend on what ran before it, so a resumed run sees the same,
        # and so does every rank of a data-parallel run.
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return {
            "batch_size": self.config.batch_size,
            "by_date": self.date_major,
            "dates_per_batch": self._dates_per_batch(data),
            "shuffle": True,
            "generator": generator,
        }

    def _batches(
        self, data: WindowDataset, epoch: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        return data.batches(**self._batch_settings(data, epoch))

    def _positions(self, data: WindowDataset, epoch: int) -> Iterator[torch.Tensor]:
        return data.batch_positions(**self._batch_settings(data, epoch))

    def _dates_per_batch(self, data: WindowDataset) -> int:
        given = self.config.dates_per_batch
        if given != "auto":
            return int(given)
        # Whole cross-sections, about batch_size windows a step: the same number of
        # steps as random batches, with every date's assets seen together.
        per_date = len(data) / max(data.samples.n_dates(), 1)
        return max(1, round(self.config.batch_size / max(per_date, 1.0)))

    def _n_batches(self, data: WindowDataset) -> int:
        if self.date_major:
            n = -(-data.samples.n_dates() // self._dates_per_batch(data))
        else:
            n = -(-len(data) // self.config.batch_size)
        cap = self.config.max_batches_per_epoch
        return min(n, cap) if cap else n

    def _train_epoch(
        self,
        model: nn.Module,
        data: WindowDataset,
        optimizer: torch.optim.Optimizer,
        grad_scaler: torch.amp.GradScaler,
        epoch: int,
    ) -> tuple[float, int]:
        c = self.config
        model.train()
        total = torch.zeros((), device=self.device)
        steps = 0
        seen = 0
        n_batches = self._n_batches(data)
        listeners = self._listeners()
        batch_loss = self._batch_loss if self.distributed is None else self._sharded_batch_loss
        optimizer.zero_grad(set_to_none=True)
        for callback in listeners:
            callback.on_epoch_start(self, epoch, n_batches)
        for step, positions in enumerate(self._positions(data, epoch)):
            if step >= n_batches:
                break
            last = step + 1 == n_batches
            stepping = (step + 1) % c.accumulation_steps == 0 or last
            with _gradient_sync(model, stepping):
                with self._autocast():
                    loss, objective = batch_loss(model, data, positions)
                grad_scaler.scale(objective / c.accumulation_steps).backward()
            if stepping:
                if c.grad_clip is not None:
                    grad_scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
                grad_scaler.step(optimizer)
                grad_scaler.update()
                optimizer.zero_grad(set_to_none=True)
            total += loss.detach().float()
            steps += 1
            seen += len(positions)
            # Reading the loss forces a device sync: do it only now and then.
            running = total if step % 20 == 0 or last else None
            for callback in listeners:
                callback.on_batch_end(self, step, running, steps)
        return (total / max(steps, 1)).item(), seen

    @staticmethod
    def _loss_batch(
        data: WindowDataset, positions: torch.Tensor, target: torch.Tensor
    ) -> LossBatch:
        return LossBatch(
            target=target,
            group=data.t[positions],
            weight=data.aux_batch("weight", positions),
            volatility=data.aux_batch("volatility", positions),
        )

    def _batch_loss(
        self, model: nn.Module, data: WindowDataset, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss, twice: the figure to report and the one to differentiate."""
        x, y = data.batch(positions)
        batch = self._loss_batch(data, positions, y)
        loss = self.loss_fn(forward(model, x, batch.group, data.i[positions]), batch)
        return loss, loss

    def _sharded_batch_loss(
        self, model: DistributedDataParallel, data: WindowDataset, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_batch_loss` of the global batch at ``positions``, this rank running
        its share of the windows only."""
        context = self.distributed
        assert context is not None
        cross_sectional = is_cross_sectional(model.module)
        group = data.t[positions]
        shares = shard(positions, context.world_size, group if cross_sectional else None)
        sizes = [len(share) for share in shares]
        mine = shares[context.rank]
        if not len(mine):
            # Fewer samples (dates) than ranks: DDP needs a backward from every rank,
            # so run one window anyway; gather_rows drops its output.
            mine = positions[:1]
        x, _ = data.batch(mine)
        if cross_sectional:
            local = model(x, group=data.t[mine], asset=data.i[mine])
        else:
            local = model(x)
        heads = [h.float() for h in (local.regression, local.logits) if h is not None]
        gathered = iter([gather_rows(h, sizes, context.rank) for h in heads])
        output = ModelOutput(
            regression=None if local.regression is None else next(gathered),
            logits=None if local.logits is None else next(gathered),
        )
        target = data.labels[group, data.i[positions]]
        loss = self.loss_fn(output, self._loss_batch(data, positions, target))
        # Every rank computes the whole batch's loss, only its own rows carrying a
        # gradient; DDP averages over the ranks, hence the factor. The zero term gives
        # every parameter a gradient on every rank (DDP's all-reduce waits for them all).
        touch = sum(h.sum() for h in heads)
        return loss, loss * context.world_size + 0.0 * touch

    def predict(self, model: nn.Module, data: WindowDataset) -> ModelOutput:
        """Outputs for every sample of ``data``, in its order (eval mode, no gradients)."""
        return predict_outputs(model, data, self.config.eval_batch_size, self._autocast)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: WindowDataset) -> dict[str, float]:
        """Validation loss and the scorer's figures of ``model`` on ``data``."""
        output = self.predict(model, data)
        target = data.labels[data.t, data.i]
        group = data.t
        positions = torch.arange(len(data), device=self.device)
        batch = LossBatch(
            target=target,
            group=group,
            weight=data.aux_batch("weight", positions),
            volatility=data.aux_batch("volatility", positions),
        )
        loss = self.loss_fn(output, batch).item()
        figures = {} if self.scorer is None else self.scorer(output, data)
        return {"val_loss": loss} | {f"val_{k}": v for k, v in figures.items()}

    # ------------------------------------------------------------ checkpoints
    def _resume_state(self) -> dict[str, Any] | None:
        """The checked state of ``checkpoint_path``, None when there is none yet."""
        assert self.checkpoint_path is not None
        if not self.checkpoint_path.exists():
            return None
        # Data-parallel: rank 0 reads it for every rank, on the CPU, then broadcasts it.
        where = self.device if self.distributed is None else torch.device("cpu")
        state = load_checkpoint(self.checkpoint_path, map_location=where)
        self._check_resumable(state)
        return state

    def _rng_states(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _restore_rank_rng(self, state: dict[str, Any]) -> None:
        # A data-parallel run restores each rank's own stream (same number of ranks).
        ranks = state.get("rng_ranks")
        context = self.distributed
        if context is None or not ranks or len(ranks) != context.world_size:
            return
        cpu, cuda = ranks[context.rank]
        torch.set_rng_state(cpu)
        if self.device.type == "cuda" and cuda is not None:
            torch.cuda.set_rng_state(cuda, self.device)

    def _checkpoint(self, *args: Any) -> None:
        """Write the epoch's checkpoint: in rank 0 only, the other ranks waiting."""
        if self.distributed is None:
            self._save(*args)
            return
        ranks = gather_objects(self._rng_states())  # every rank's dropout stream
        if self.distributed.is_main:
            self._save(*args, rng_ranks=ranks)
        barrier()

    def _fingerprint(self) -> str:
        # What must not change between a run and its resumption.
        settings = self.config.model_dump(exclude={"progress", "device", "threads", "epochs"})
        return json.dumps(settings, sort_keys=True, default=str)

    def _check_resumable(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "training":
            raise CheckpointError(
                f"'{self.checkpoint_path}' is not a training checkpoint; cannot resume"
            )
        if state.get("trainer") != self._fingerprint():
            raise CheckpointError(
                f"'{self.checkpoint_path}' was written with other trainer settings; "
                f"remove it or use the same settings to resume"
            )

    def _save(
        self,
        model,
        optimizer,
        scheduler,
        grad_scaler,
        result,
        best_state,
        stale,
        epoch,
        rng_ranks=None,
    ):
        payload = {
            "kind": "training",
            "trainer": self._fingerprint(),
            "epoch": epoch,
            "model_state": model.state_dict(),
            "model_config": json.dumps(getattr(model, "config", {})),
            "model_name": getattr(type(model), "registry_name", type(model).__name__),
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": None if scheduler is None else scheduler.state_dict(),
            "grad_scaler_state": grad_scaler.state_dict(),
            "history": result.history,
            "best_epoch": result.best_epoch,
            "best_score": result.best_score,
            "best_state": best_state,
            "stale_epochs": stale,
            # A scorer with memory (the first epoch it scored) resumes with it.
            "scorer_state": (
                self.scorer.state_dict() if hasattr(self.scorer, "state_dict") else None
            ),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": (
                torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
            ),
            "metadata": json.dumps(self.metadata, default=str),
        }
        if rng_ranks is not None:  # data-parallel: every rank's (cpu, cuda) stream
            payload["rng_ranks"] = [list(states) for states in rng_ranks]
        save_checkpoint(self.checkpoint_path, payload)


@torch.no_grad()
def predict_outputs(
    model: nn.Module,
    data: WindowDataset,
    batch_size: int = 8192,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> ModelOutput:
    """Run ``model`` in eval mode over every sample of ``data``, in order, without gradients.

    A cross-sectional model (see :func:`is_cross_sectional`) is given whole dates, as
    many as fit in ``batch_size`` windows (at least one), and the date and asset of each
    window.
    """
    model.eval()
    parts: list[ModelOutput] = []
    places: list[torch.Tensor] = []
    if is_cross_sectional(model) and len(data):
        largest = int(torch.unique(data.t, return_counts=True)[1].max())
        batches = data.batches(
            by_date=True, dates_per_batch=max(1, batch_size // largest), shuffle=False
        )
    else:
        batches = data.batches(batch_size, shuffle=False)
    for x, _, positions in batches:
        with autocast():
            parts.append(forward(model, x, data.t[positions], data.i[positions]))
        places.append(positions)
    output = ModelOutput(
        regression=_cat([p.regression for p in parts]),
        logits=_cat([p.logits for p in parts]),
    )
    if places and not _in_order(places):
        inverse = torch.empty_like(order := torch.cat(places))
        inverse[order] = torch.arange(len(order), device=order.device)
        output = ModelOutput(
            regression=None if output.regression is None else output.regression[inverse],
            logits=None if output.logits is None else output.logits[inverse],
        )
    return output


def _gradient_sync(model: nn.Module, stepping: bool) -> contextlib.AbstractContextManager:
    """DDP averages gradients at the backward of the batch that steps; while
    accumulating, each rank keeps adding to its own."""
    if isinstance(model, DistributedDataParallel) and not stepping:
        return model.no_sync()
    return contextlib.nullcontext()


def is_cross_sectional(model: nn.Module) -> bool:
    """Whether ``model`` looks across the assets of a date (it then takes ``group``)."""
    return bool(getattr(model, "cross_sectional", False))


def forward(
    model: nn.Module, x: torch.Tensor, group: torch.Tensor, asset: torch.Tensor | None = None
) -> ModelOutput:
    """``model(x)``, with the date and the asset (panel column) of each window for a
    cross-sectional model."""
    return model(x, group=group, asset=asset) if is_cross_sectional(model) else model(x)


def _in_order(places: list[torch.Tensor]) -> bool:
    order = torch.cat(places)
    return bool(torch.equal(order, torch.arange(len(order), device=order.device)))


def _cat(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    if not parts or parts[0] is None:
        return None
    return torch.cat(parts)
