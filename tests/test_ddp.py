"""Data-parallel training (DDP under torchrun, gloo, 2 CPU processes) takes the very
steps of one process on the same global batches.

Run as a script under torchrun, this file is also the worker of that test:
``torchrun --nproc_per_node 2 tests/test_ddp.py OUT_DIR``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.parallel import DistributedDataParallel

from alphaseq.errors import ConfigError
from alphaseq.models import build_model
from alphaseq.training import Trainer, distributed
from alphaseq.windows import WindowDataset, valid_samples

LOOKBACK = 8
LSTM = {"hidden_size": 8, "num_layers": 2, "attention_heads": 2, "dropout": 0.0}
BASE = {
    "batch_size": 23,
    "learning_rate": 1e-2,
    "monitor": "loss",
    "patience": 10,
    "progress": False,
    "device": "cpu",
}
#: name -> (model, trainer settings). The training set has 300 samples of 50 dates
#: (6 assets): 23-sample batches leave a last batch of 1 (one rank has none), 7-date
#: batches a last one of 1 date.
RUNS: dict[str, tuple[str, dict]] = {
    "random_mse": ("lstm", {"epochs": 3}),
    "ic_date_major": (
        "lstm",
        {"epochs": 3, "loss": "ic", "dates_per_batch": 3, "accumulation_steps": 2},
    ),
    "gat_whole_dates": ("gat", {"epochs": 2, "dates_per_batch": 7, "scheduler": "cosine"}),
}
#: Parameters (or parts: a slice) the loss cannot see. Their gradient is zero but for
#: float noise, which Adam's normalised steps turn into a random walk, so two runs that
#: add up in another order part ways on them: the IC ignores a shift of all predictions
#: of a date (the last biases), a softmax a shift of its scores (the key bias of the
#: attention across assets, the middle third of ``in_proj_bias``).
UNSEEN: dict[str, dict[str, slice | None]] = {
    "ic_date_major": {"output_norm.bias": None, "regression.bias": None},
    "gat_whole_dates": {"graph.in_proj_bias": slice(8, 16)},
}


def planted_data() -> tuple[WindowDataset, WindowDataset]:
    """Labels that the window predicts: y[t] = 0.8 x[t - 3, feature 0] + noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6, 2)).astype(np.float32)
    y = np.full((80, 6, 1), np.nan, dtype=np.float32)
    y[3:, :, 0] = 0.8 * x[:-3, :, 0] + 0.3 * rng.normal(size=(77, 6))
    train = valid_samples(x, LOOKBACK, labels=y, end=57, label_horizon=1)
    valid = valid_samples(x, LOOKBACK, labels=y, start=58, label_horizon=1)
    return WindowDataset(x, train, y), WindowDataset(x, valid, y)


def new_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    extra = {"graph_heads": 2} if name == "gat" else {}
    return build_model(name, 2, **LSTM, **extra)


def train_run(name: str, checkpoint: Path | None = None, *, epochs=None, resume=False):
    """Fit run ``name``; its history (without timings) and final weights."""
    model_name, settings = RUNS[name]
    config = BASE | settings | ({} if epochs is None else {"epochs": epochs})
    train, valid = planted_data()
    model = new_model(model_name)
    result = Trainer(config, checkpoint_path=checkpoint).fit(model, train, valid, resume=resume)
    history = [
        {k: v for k, v in entry.items() if k not in ("seconds", "samples_per_second")}
        for entry in result.history
    ]
    return {"history": history, "state": model.state_dict(), "best_epoch": result.best_epoch}


def batch_gradients(name: str) -> list[dict[str, torch.Tensor]]:
    """Gradients of the first and the last batch of run ``name``'s first epoch, at the
    initial weights (the last batch: 1 sample or 1 date, which one rank sits out)."""
    model_name, settings = RUNS[name]
    trainer = Trainer(BASE | settings)
    trainer.date_major |= model_name == "gat"  # as fit does for a cross-sectional model
    train, _ = planted_data()
    model = new_model(model_name)
    if trainer.distributed is None:
        net, batch_loss = model, trainer._batch_loss
    else:
        net, batch_loss = DistributedDataParallel(model), trainer._sharded_batch_loss
    batches = list(trainer._positions(train, 0))
    gradients = []
    for positions in (batches[0], batches[-1]):
        model.zero_grad(set_to_none=True)
        _, objective = batch_loss(net, train, positions)
        objective.backward()
        gradients.append({k: p.grad.clone() for k, p in model.named_parameters()})
    return gradients


def worker(out: Path) -> None:
    """One rank of the torchrun launch: every run, with checkpoints, then a resume."""
    from alphaseq.training import trainer as trainer_module

    rank = int(os.environ["RANK"])
    writes: list[str] = []
    save = trainer_module.save_checkpoint

    def counted_save(path, payload):
        writes.append(Path(path).name)
        return save(path, payload)

    trainer_module.save_checkpoint = counted_save
    gradients = {name: batch_gradients(name) for name in RUNS}
    results = {name: train_run(name, out / f"{name}.ckpt") for name in RUNS}
    # Continue the first run for a fourth epoch: rank 0 reads, every rank resumes.
    results["resumed"] = train_run("random_mse", out / "random_mse.ckpt", epochs=4, resume=True)
    context = distributed.current()
    results["context"] = (context.rank, context.world_size, context.backend)
    results["writes"] = writes
    results["gradients"] = gradients
    torch.save(results, out / f"rank{rank}.pt")


needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="this torch build has no gloo backend",
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The reference runs in this process: a tiny model gains nothing from threads, and
    # on a busy machine waiting for a descheduled one costs seconds.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("ddp")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "--max_restarts",
        "0",
        "--monitor_interval",
        "0.2",
        __file__,
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name in RUNS:
        assert (out / f"{name}.ckpt").exists()
    return results


def assert_same_run(got: dict, expected: dict, unseen: dict[str, slice | None] = {}) -> None:  # noqa: B006
    assert got["best_epoch"] == expected["best_epoch"]
    assert len(got["history"]) == len(expected["history"])
    for mine, theirs in zip(got["history"], expected["history"], strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (key, mine, theirs)
    for key, value in expected["state"].items():
        mine, seen = got["state"][key], torch.ones(value.shape, dtype=torch.bool)
        if key in unseen:
            seen[unseen[key] or slice(None)] = False
        torch.testing.assert_close(mine[seen], value[seen], rtol=1e-4, atol=1e-5, msg=key)


@needs_gloo
def test_the_averaged_gradient_is_the_one_process_gradient(ranks):
    for name in RUNS:
        expected = batch_gradients(name)
        for rank in ranks:
            for got, theirs in zip(rank["gradients"][name], expected, strict=True):
                # float rounding, relative to the gradient's scale: ~1e-6 measured
                scale = max(float(value.abs().max()) for value in theirs.values())
                for key, value in theirs.items():
                    torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5 * scale)


@needs_gloo
def test_data_parallel_run_equals_one_process_on_the_same_global_batch(ranks):
    train, _ = planted_data()
    assert len(train) % BASE["batch_size"] == 1  # a last batch that one rank must sit out
    assert [r["context"] for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
    for name in RUNS:
        assert_same_run(ranks[0][name], train_run(name), UNSEEN.get(name, {}))
        # the ranks end identical: one model, trained in lockstep
        for key, value in ranks[0][name]["state"].items():
            assert torch.equal(ranks[1][name]["state"][key], value), (name, key)
        assert ranks[0][name]["history"] == ranks[1][name]["history"]


@needs_gloo
def test_only_rank_0_writes_checkpoints_and_a_resumed_run_continues(ranks):
    epochs = {name: settings["epochs"] for name, (_, settings) in RUNS.items()}
    expected = [f"{name}.ckpt" for name in RUNS for _ in range(epochs[name])]
    assert ranks[0]["writes"] == [*expected, "random_mse.ckpt"]  # + the resumed 4th epoch
    assert ranks[1]["writes"] == []
    resumed = ranks[0]["resumed"]
    assert resumed["history"][:3] == ranks[0]["random_mse"]["history"]
    assert_same_run(resumed, train_run("random_mse", epochs=4))


# ------------------------------------------------------------------- in one process
def test_a_single_process_is_not_distributed():
    assert distributed.environment() is None
    assert distributed.setup("auto") is None and distributed.current() is None
    assert distributed.is_main_process()
    distributed.barrier()  # nothing to wait for
    assert distributed.run_on_main(lambda: 7) == 7
    assert distributed.gather_objects("x") == ["x"]
    assert Trainer(BASE).distributed is None


LAUNCH = {
    "WORLD_SIZE": "2",
    "RANK": "1",
    "LOCAL_RANK": "1",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29500",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"RANK": None}, "RANK is not set: launch with torchrun"),
        ({"RANK": "2"}, r"RANK=2 is outside 0\.\.1"),
        ({"LOCAL_RANK": "x"}, "LOCAL_RANK must be an integer"),
        ({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "1"}, r"LOCAL_RANK=1 is outside 0\.\.0"),
        ({"MASTER_PORT": None}, "MASTER_ADDR/MASTER_PORT are not set"),
        ({"MASTER_PORT": "99999"}, "MASTER_PORT must be a port number"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1"),
    ],
)
def test_an_inconsistent_launch_is_a_clear_error(monkeypatch, changes, message):
    for key, value in (LAUNCH | changes).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        distributed.setup("cpu")


def test_a_launch_is_read_and_devices_are_checked_before_joining(monkeypatch):
    for key, value in LAUNCH.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.environment() is None  # torchrun with one process: not distributed
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.environment() == distributed.LaunchEnvironment(1, 2, 1, "127.0.0.1", 29500)
    with pytest.raises(ConfigError, match="names one GPU"):
        distributed.setup("cuda:1")
    with pytest.raises(ConfigError, match=r"CUDA \(nccl\) or on CPU \(gloo\)"):
        distributed.setup("mps")
    assert not torch.distributed.is_initialized()


def test_shards_cover_the_batch_in_order():
    positions = torch.arange(100, 111)  # 11 samples
    parts = distributed.shard(positions, 2)
    assert [len(p) for p in parts] == [6, 5] and torch.equal(torch.cat(parts), positions)
    assert [len(p) for p in distributed.shard(positions[:1], 2)] == [1, 0]
    # whole dates: 3 dates of 4, 2 and 5 samples over 2 ranks -> dates (0, 1) and (2,)
    group = torch.tensor([5] * 4 + [9] * 2 + [2] * 5)
    parts = distributed.shard(positions, 2, group)
    assert [len(p) for p in parts] == [6, 5] and torch.equal(torch.cat(parts), positions)
    assert [len(p) for p in distributed.shard(positions[:4], 2, group[:4])] == [4, 0]


def test_torchrun_command():
    command = distributed.torchrun_command(["run", "quickstart"], 2)
    assert command[1:] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "alphaseq",
        "run",
        "quickstart",
    ]
    with pytest.raises(ConfigError, match="nproc_per_node"):
        distributed.torchrun_command([], 0)


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
