"""The run's one live display: folds, epochs, ETA and the running epoch's batches."""

from __future__ import annotations

import io
import re
import types

import pytest
import rich.live
import torch
from rich.console import Console

from alphaseq import _progress
from alphaseq._progress import RunProgress, active, trained_fits
from alphaseq.config import parse_config
from alphaseq.training.callbacks import ProgressBar

ENTRY = {"epoch": 0, "train_loss": 0.3, "val_loss": 0.25, "val_ic": 0.012, "val_rank_ic": 0.02}


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def _trainer(epochs: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(config=types.SimpleNamespace(epochs=epochs))


@pytest.fixture
def lives(monkeypatch):
    """Every rich Live started (a Progress starts one), whatever its console."""
    started: list[rich.live.Live] = []
    start = rich.live.Live.start

    def counting(self, *args, **kwargs):
        started.append(self)
        return start(self, *args, **kwargs)

    monkeypatch.setattr(rich.live.Live, "start", counting)
    return started


def _epoch(bar, trainer, epoch, n_batches=4, checks=None):
    bar.on_epoch_start(trainer, epoch, n_batches)
    for step in range(n_batches):
        loss = torch.tensor(0.5 * (step + 1)) if step % 2 else None
        bar.on_batch_end(trainer, step, loss, step + 1)
        if checks is not None:
            checks(step)
    bar.on_epoch_end(trainer, epoch, ENTRY | {"epoch": epoch})


def _final_frame(text: str) -> str:
    """What stays on screen: the text after the display's last cursor move."""
    last = text.rsplit("\x1b[2K", 1)[-1]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", last)


def test_one_display_shows_fold_epoch_and_eta_and_advances_by_epochs(lives):
    console, out = _terminal()
    trainer = _trainer(2)
    display = RunProgress(console, epochs=2, fits=1)
    with display:
        assert active() is display
        display.fold_done(0, 3)  # the total, before the first fold
        task = display.run_task()
        assert task.total == 6  # folds x epochs
        for fold in range(3):
            bar = ProgressBar()
            bar.on_fit_start(trainer, 2)
            for epoch in range(2):
                seen = []

                def check(step, fold=fold, epoch=epoch, seen=seen):
                    title = f"fold {fold + 1}/3 · epoch {epoch + 1}/2"
                    assert display.run_task().description == title
                    assert len(display.progress.tasks) == 2  # run + this epoch's batches
                    seen.append(display.run_task().completed)
                    display.progress.refresh()  # draw now, as the 10 Hz refresh would

                _epoch(bar, trainer, epoch, checks=check)
                assert seen == sorted(seen) and seen[0] < seen[-1]  # moves with the batches
                assert seen[-1] == pytest.approx(fold * 2 + epoch + 1)
                assert len(display.progress.tasks) == 1  # the batch task is gone
            bar.on_fit_end(trainer, None)
            display.fold_done(fold + 1, 3)
            assert display.run_task().completed == pytest.approx(2 * (fold + 1))
        assert display.run_task().description == "folds 3/3 done"
    assert active() is None
    assert len(lives) == 1  # the trainer's bar drew on the run's display, never its own
    text = out.getvalue()
    assert "fold 2/3 · epoch 2/2" in text and "ETA" in text
    assert "val loss 0.25 ic 0.012 rank_ic 0.02" in text  # the previous epoch's figures
    final = _final_frame(text)
    assert "folds 3/3 done" in final and "6/6" in final
    assert "epoch" not in final and len(final.strip().splitlines()) == 1  # no batch bar
    assert not [line for line in final.splitlines() if not line.strip()]  # no blank lines


def test_early_stopping_jumps_to_the_fold_boundary():
    console, _ = _terminal()
    trainer = _trainer(5)
    with RunProgress(console, epochs=5, fits=1) as display:
        display.fold_done(0, 2)
        bar = ProgressBar()
        bar.on_fit_start(trainer, 5)
        for epoch in range(2):  # stops early after two epochs of five
            _epoch(bar, trainer, epoch)
        assert display.run_task().completed == pytest.approx(2)
        bar.on_fit_end(trainer, None)
        display.fold_done(1, 2)
        assert display.run_task().completed == pytest.approx(5)
        assert display.run_task().description == "fold 2/2"


def test_ensemble_members_are_counted_within_the_fold():
    console, _ = _terminal()
    trainer = _trainer(2)
    with RunProgress(console, epochs=2, fits=3) as display:
        display.fold_done(0, 4)
        assert display.run_task().total == 4 * 3 * 2
        for member in range(3):
            bar = ProgressBar()
            bar.on_fit_start(trainer, 2)
            bar.on_epoch_start(trainer, 1, 3)
            assert display.run_task().description == f"fold 1/4 · member {member + 1}/3 · epoch 2/2"
            bar.on_epoch_end(trainer, 1, ENTRY)
            bar.on_fit_end(trainer, None)
            assert display.run_task().completed == pytest.approx(2 * (member + 1))


def test_a_resumed_run_starts_at_its_finished_folds_without_skewing_the_eta():
    console, _ = _terminal()
    with RunProgress(console, epochs=3, folds_done=2) as display:
        assert display.run_task().completed == 6
        display.fold_done(0, 4)
        for done in (1, 2):  # the stored folds, read back
            display.fold_done(done, 4)
        task = display.run_task()
        assert task.completed == 6 and task.total == 12
        assert task.speed is None  # the read-back folds count as no progress per second
        assert display.run_task().description == "fold 3/4"


def test_folds_only_when_the_epochs_are_unknown():
    console, _ = _terminal()
    with RunProgress(console, epochs=None) as display:
        display.fold_done(1, 3)
        assert display.run_task().completed == 1 and display.run_task().total == 3


def test_an_interrupted_epoch_leaves_no_bar_and_no_active_display():
    console, out = _terminal()
    trainer = _trainer(2)
    with pytest.raises(KeyboardInterrupt), RunProgress(console, epochs=2) as display:
        bar = ProgressBar()
        bar.on_fit_start(trainer, 2)
        bar.on_epoch_start(trainer, 0, 10)
        bar.on_batch_end(trainer, 0, torch.tensor(1.0), 1)
        raise KeyboardInterrupt
    assert display.progress is None and active() is None
    final = _final_frame(out.getvalue())
    assert "fold 1 · epoch 1/2" in final  # where it stopped
    assert "  epoch" not in final and len(final.strip().splitlines()) == 1  # no batch bar


def test_not_a_terminal_draws_nothing_and_keeps_one_line_per_epoch(capsys, lives):
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    trainer = _trainer(2)
    with RunProgress(console, epochs=2) as display:
        assert not display.live and active() is None
        display.fold_done(0, 1)
        bar = ProgressBar()
        bar.on_fit_start(trainer, 2)
        for epoch in range(2):
            _epoch(bar, trainer, epoch)
        bar.on_fit_end(trainer, None)
        display.fold_done(1, 1)
    assert out.getvalue() == "" and not lives
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "epoch 1/2: train_loss 0.3, val_loss 0.25, val_ic 0.012, val_rank_ic 0.02",
        "epoch 2/2: train_loss 0.3, val_loss 0.25, val_ic 0.012, val_rank_ic 0.02",
    ]


def test_without_a_run_display_a_terminal_gets_the_trainers_own_bar(monkeypatch, lives):
    console, _ = _terminal()
    monkeypatch.setattr(
        "alphaseq.training.callbacks.Console", lambda **kwargs: console
    )  # a Forecaster.fit from Python in a terminal
    trainer = _trainer(2)
    bar = ProgressBar()
    bar.on_fit_start(trainer, 2)
    _epoch(bar, trainer, 0)
    bar.on_fit_end(trainer, None)
    assert len(lives) == 1 and bar._progress is None


def test_a_second_run_display_does_not_start_a_second_live(lives):
    console, _ = _terminal()
    with RunProgress(console, epochs=1) as outer, RunProgress(console, epochs=1) as inner:
        assert active() is outer and not inner.live
    assert len(lives) == 1 and _progress._active is None


def test_trained_fits_counts_every_trained_member_and_seed():
    base = {"data": {"source": "sp500"}, "model": {"name": "lstm"}}
    assert trained_fits(parse_config(base)) == 1
    assert trained_fits(parse_config(base | {"model": {"name": "ridge"}})) == 0
    ensemble = {"members": [{"name": "gru"}, {"name": "ridge"}], "seeds": [1, 2]}
    config = parse_config(base | {"model": {"name": "lstm", "ensemble": ensemble}})
    assert trained_fits(config) == 4  # lstm and gru, two seeds each; ridge has no trainer
