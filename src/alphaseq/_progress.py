"""The one live display of a run in a terminal: folds, epochs, elapsed time and ETA, and
the running epoch's batches, all in one rich :class:`~rich.progress.Progress`.

The CLI enters a :class:`RunProgress`; while it is live, the trainer's
:class:`~alphaseq.training.callbacks.ProgressBar` finds it with :func:`active` and reports
there (a batch task added and removed per epoch) instead of starting a display of its own.
Where the console is not a terminal nothing is drawn and nothing is registered, so the
callbacks keep their one plain line per epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

if TYPE_CHECKING:
    from alphaseq.config import ExperimentConfig

__all__ = ["RunProgress", "active", "trained_fits"]

_active: RunProgress | None = None


def active() -> RunProgress | None:
    """The run display that is live now, if any."""
    return _active


def trained_fits(config: ExperimentConfig) -> int:
    """How many models the trainer fits per fold of ``config`` (ensemble members with
    every seed; tabular models train without it and count 0)."""
    from alphaseq.experiment.build import ensemble_members
    from alphaseq.tabular import TABULAR_MODELS

    models = [m["model"] for m in ensemble_members(config)] or [config.model.name]
    return sum(1 for name in models if name not in TABULAR_MODELS)


class _Eta(ProgressColumn):
    """``ETA`` and rich's time remaining; nothing once the task is finished."""

    def __init__(self) -> None:
        super().__init__()
        self.remaining = TimeRemainingColumn()

    def render(self, task: Task) -> RenderableType:
        if task.finished:
            return Text("")
        shown = self.remaining.render(task)
        if isinstance(shown, Text) and shown.plain:  # blank while the total is unknown
            return Text.assemble("ETA ", shown)
        return shown


def _tasks_table(columns: tuple[ProgressColumn, ...], tasks: list[Task]) -> Table:
    """One grid row per task, as :meth:`rich.progress.Progress.make_tasks_table` draws it."""
    table = Table.grid(*(c.get_table_column().copy() for c in columns), padding=(0, 1))
    for task in tasks:
        if task.visible:
            table.add_row(*(column(task) for column in columns))
    return table


class _RunAndBatch(Progress):
    """One Progress (one Live) whose run task and batch task each have their own columns,
    so that the long batch row does not widen the run row's columns."""

    def __init__(self, run_columns: tuple[ProgressColumn, ...], **kwargs: Any) -> None:
        self.run_columns = run_columns  # set first: Progress draws itself on creation
        self.batch_columns: tuple[ProgressColumn, ...] = (
            TextColumn("  batch"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[note]}", table_column=Column(no_wrap=True, overflow="ellipsis")
            ),
        )
        super().__init__(*run_columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        tasks = self.tasks
        yield _tasks_table(self.run_columns, [t for t in tasks if t.fields.get("run")])
        batches = [t for t in tasks if not t.fields.get("run")]
        if batches:
            yield _tasks_table(self.batch_columns, batches)


class RunProgress:
    """The run-level display: a bar over every epoch of every fold and a transient bar
    of the running epoch's batches.

    Progress is counted in epochs: ``epochs × fits`` per fold (``fits`` models trained
    per fold, e.g. ensemble members), or one per fold when ``epochs`` is unknown. A
    fold that stops early jumps to its boundary when :meth:`fold_done` is called, so the
    ETA counts the epochs still to run only.

    Parameters
    ----------
    console : Console
        Where to draw; nothing is drawn unless it is a terminal.
    epochs : int, optional
        Epochs per fit (``training.epochs``); ``None`` counts folds only.
    fits : int, default 1
        Models trained per fold; 0 (tabular models) counts folds only.
    folds_done : int, default 0
        Folds already finished (a resumed run): the bar starts there.
    speed_period : float, default 300
        Seconds of recent progress the ETA is estimated from.
    """

    def __init__(
        self,
        console: Console,
        *,
        epochs: int | None = None,
        fits: int = 1,
        folds_done: int = 0,
        speed_period: float = 300.0,
    ) -> None:
        self.console = console
        self.fits = max(int(fits), 1)
        self.epochs = epochs if epochs and fits > 0 else None
        self.per_fold = float((self.epochs or 1) * (self.fits if self.epochs else 1))
        self.folds_done = int(folds_done)
        self.n_folds: int | None = None
        self.progress: Progress | None = None
        self._speed_period = speed_period
        self._run: TaskID | None = None
        self._batch: TaskID | None = None
        self._fit = 0  # fits begun in the current fold
        self._epoch: tuple[int, int] | None = None  # (epoch, of epochs) running
        self._note = ""

    @classmethod
    def for_config(
        cls, console: Console, config: ExperimentConfig, *, folds_done: int = 0
    ) -> RunProgress:
        """The display of a run of ``config`` (epochs shown only when the trainer
        reports them, i.e. with ``training.progress``)."""
        fits = trained_fits(config) if config.training.progress else 0
        return cls(console, epochs=config.training.epochs, fits=fits, folds_done=folds_done)

    # ------------------------------------------------------------------ live
    @property
    def live(self) -> bool:
        return self.progress is not None

    def __enter__(self) -> RunProgress:
        global _active
        if not self.console.is_terminal or _active is not None:
            return self  # a log (one line per epoch and fold), or a display already up
        self.progress = _RunAndBatch(
            (
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                _Eta(),
            ),
            console=self.console,
            speed_estimate_period=self._speed_period,
        )
        self._run = self.progress.add_task(
            self._description(),
            total=None,
            completed=self.folds_done * self.per_fold,
            run=True,
        )
        self.progress.start()
        _active = self
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _active
        if self.progress is None:
            return
        self._remove_batch()  # an interrupted epoch leaves no half bar behind
        self.progress.stop()
        self.progress = None
        if _active is self:
            _active = None

    # ----------------------------------------------------------------- folds
    def fold_done(self, done: int, total: int) -> None:
        """Fold ``done`` of ``total`` is finished (trained or read back): the bar goes to
        that fold's end, whatever epochs early stopping skipped."""
        self.n_folds = total
        self.folds_done = max(self.folds_done, done)
        self._fit, self._epoch = 0, None
        if self.progress is None or self._run is None:
            return
        self._remove_batch()
        self.progress.update(self._run, total=total * self.per_fold)
        self._advance_to(0.0)
        self._redraw()

    # -------------------------------------------------------- trainer hooks
    def fit_start(self) -> None:
        """A model of the current fold starts training."""
        self._fit += 1
        self._epoch = None
        self._redraw()

    def epoch_start(self, epoch: int, n_epochs: int, n_batches: int, note: str = "") -> None:
        """Epoch ``epoch`` (0-based) of ``n_epochs`` starts with ``n_batches`` batches;
        ``note`` (the previous epoch's validation figures) follows its batch bar."""
        self._epoch = (epoch, n_epochs)
        self._note = note
        if self.progress is None:
            return
        self._remove_batch()
        self._advance_in_fit(epoch)
        self._redraw()  # the run row names the epoch before its batch row appears
        self._batch = self.progress.add_task(
            f"epoch {epoch + 1}/{n_epochs}", total=n_batches, note=self._batch_note("-")
        )

    def batch_end(self, step: int, loss: str | None = None) -> None:
        """Batch ``step`` (0-based) is done; ``loss``, the running loss, when read."""
        if self.progress is None or self._batch is None or self._epoch is None:
            return
        if loss is not None:
            self.progress.update(self._batch, completed=step + 1, note=self._batch_note(loss))
        else:
            self.progress.update(self._batch, completed=step + 1)
        total = self._task(self._batch).total
        self._advance_in_fit(self._epoch[0] + ((step + 1) / total if total else 0.0))

    def epoch_end(self, epoch: int) -> None:
        """Epoch ``epoch`` is validated and saved: its batch bar goes."""
        self._remove_batch()
        if self._epoch is not None:
            self._advance_in_fit(epoch + 1)

    def fit_end(self) -> None:
        """The current model is trained (maybe stopped early): the bar goes to its end."""
        self._remove_batch()
        if self._epoch is not None:
            self._advance_in_fit(self._epoch[1])
        self._epoch = None
        self._redraw()

    # --------------------------------------------------------------- helpers
    def _description(self) -> str:
        if self.n_folds is not None and self.folds_done >= self.n_folds:
            return f"folds {self.folds_done}/{self.n_folds} done"
        parts = [f"fold {self.folds_done + 1}" + (f"/{self.n_folds}" if self.n_folds else "")]
        if self.fits > 1 and self._fit:
            parts.append(f"member {self._fit}/{self.fits}")
        if self._epoch is not None:
            parts.append(f"epoch {self._epoch[0] + 1}/{self._epoch[1]}")
        return " · ".join(parts)

    def _batch_note(self, loss: str) -> str:
        return f"loss {loss}" + (f" · val {self._note}" if self._note else "")

    def _redraw(self) -> None:
        if self.progress is not None and self._run is not None:
            self.progress.update(self._run, description=self._description())

    def _advance_in_fit(self, epochs_done: float) -> None:
        """Move the run task to ``epochs_done`` epochs into the current fit."""
        if self.epochs is None or self._epoch is None or not self._epoch[1]:
            return  # folds only: the bar moves at fold boundaries
        fits_before = max(self._fit - 1, 0)
        share = (fits_before + min(epochs_done / self._epoch[1], 1.0)) / self.fits
        self._advance_to(min(share, 1.0) * self.per_fold)

    def _advance_to(self, position: float) -> None:
        """Move the run task forward, never back, to ``position`` units into the fold."""
        if self.progress is None or self._run is None:
            return
        target = self.folds_done * self.per_fold + min(position, self.per_fold)
        if target > self._task(self._run).completed:
            self.progress.update(self._run, completed=target)

    def _task(self, task_id: TaskID) -> Task:
        assert self.progress is not None
        return next(t for t in self.progress.tasks if t.id == task_id)

    def _remove_batch(self) -> None:
        if self.progress is not None and self._batch is not None:
            self.progress.remove_task(self._batch)
        self._batch = None

    def run_task(self) -> Task | None:
        """The run task (for inspection), or ``None`` when not live."""
        if self.progress is None or self._run is None:
            return None
        return self._task(self._run)
