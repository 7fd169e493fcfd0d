"""What the training loop reports to, kept out of the loop (as PyTorch Lightning does).

The :class:`~alphaseq.training.trainer.Trainer` calls the hooks of every callback it is
given; the progress bar and the per-epoch log line are callbacks like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from alphaseq._logging import logger
from alphaseq._progress import active as active_run_progress

if TYPE_CHECKING:
    from alphaseq._progress import RunProgress
    from alphaseq.training.trainer import Trainer, TrainingResult

__all__ = ["EpochLogger", "ProgressBar", "TrainerCallback", "as_callback"]


class TrainerCallback:
    """Base class: override the hooks you need (each does nothing by default)."""

    def on_fit_start(self, trainer: Trainer, n_epochs: int) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int, n_batches: int) -> None:
        """Before an epoch's first batch."""

    def on_batch_end(
        self, trainer: Trainer, step: int, running_loss: torch.Tensor | None, steps: int
    ) -> None:
        """After a batch; ``running_loss`` (the sum over ``steps`` batches, on the device)
        is passed only now and then, because reading it synchronises the device."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, entry: dict[str, float]) -> None:
        """After an epoch's validation and checkpoint; ``entry`` is its history record."""

    def on_fit_end(self, trainer: Trainer, result: TrainingResult) -> None:
        """After training, once the best weights are restored."""


class _FunctionCallback(TrainerCallback):
    def __init__(self, function: Callable[[int, dict[str, float]], Any]) -> None:
        self.function = function

    def on_epoch_end(self, trainer: Trainer, epoch: int, entry: dict[str, float]) -> None:
        self.function(epoch, entry)


def as_callback(value: TrainerCallback | Callable[[int, dict[str, float]], Any]) -> TrainerCallback:
    """A callback object; a plain ``function(epoch, entry)`` becomes its ``on_epoch_end``."""
    return value if isinstance(value, TrainerCallback) else _FunctionCallback(value)


class EpochLogger(TrainerCallback):
    """One INFO line per epoch with every figure of its history record."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, entry: dict[str, float]) -> None:
        figures = ", ".join(f"{k}={v:.4g}" for k, v in entry.items() if k != "epoch")
        logger.info("epoch %d: %s", epoch, figures)


class ProgressBar(TrainerCallback):
    """The running epoch's batches, running loss and the previous epoch's validation
    figures on stderr.

    Inside a run's live display (:class:`alphaseq._progress.RunProgress`, which the CLI
    opens) the batches are a transient task of that one display, which also shows the
    fold, the epoch and the ETA; elsewhere in a terminal, a transient rich bar of its own
    per epoch; where stderr is not a terminal, one plain line per epoch instead (a bar
    would leave a blank line in the log).
    """

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None
        self._last: dict[str, float] = {}
        self._run: RunProgress | None = None  # the run display reported to, if any

    def on_fit_start(self, trainer: Trainer, n_epochs: int) -> None:
        self._run = active_run_progress()
        if self._run is not None:
            self._run.fit_start()

    def on_epoch_start(self, trainer: Trainer, epoch: int, n_batches: int) -> None:
        if self._run is None:  # driven without on_fit_start: look again
            self._run = active_run_progress()
        # The previous epoch's validation figures, while this one runs.
        shown = {k[4:]: v for k, v in self._last.items() if k.startswith("val_")}
        if self._run is not None:  # the main ones: the row has the terminal's width
            brief = " ".join(
                f"{k} {v:.3g}" for k, v in shown.items() if k in ("loss", "ic", "rank_ic")
            )
            self._run.epoch_start(epoch, trainer.config.epochs, n_batches, note=brief)
            return
        console = Console(stderr=True)
        if not console.is_terminal:
            return  # a log file: one line per epoch (on_epoch_end), no bars
        title = f"epoch {epoch + 1}/{trainer.config.epochs}"
        if shown:
            title += " (" + ", ".join(f"{k} {v:.3g}" for k, v in shown.items()) + ")"
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task(title, total=n_batches, loss="-")
        self._progress.start()

    def on_batch_end(
        self, trainer: Trainer, step: int, running_loss: torch.Tensor | None, steps: int
    ) -> None:
        if self._run is None and self._progress is None:
            return  # nothing drawn: never read the loss (that synchronises the device)
        loss = None if running_loss is None else f"{running_loss.item() / steps:.4g}"
        if self._run is not None:
            self._run.batch_end(step, loss)
            return
        assert self._progress is not None
        if loss is not None:
            self._progress.update(self._task, completed=step + 1, loss=loss)
        else:
            self._progress.update(self._task, completed=step + 1)

    def on_epoch_end(self, trainer: Trainer, epoch: int, entry: dict[str, float]) -> None:
        self._last = entry
        if self._run is not None:
            self._run.epoch_end(epoch)
            return
        if self._progress is None:  # not a terminal: the epoch as one plain line
            shown = ", ".join(
                f"{k} {v:.4g}"
                for k, v in entry.items()
                if k in ("train_loss", "val_loss", "val_ic", "val_rank_ic")
            )
            Console(stderr=True).print(
                f"epoch {epoch + 1}/{trainer.config.epochs}: {shown}",
                highlight=False,
                soft_wrap=True,  # one line each, whatever the log's width
            )
        self._stop()

    def on_fit_end(self, trainer: Trainer, result: TrainingResult) -> None:
        if self._run is not None:
            self._run.fit_end()
            self._run = None
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
