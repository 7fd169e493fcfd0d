"""Data-parallel training (DDP under torchrun) against one process, in one run.

The same fit (same global batches, same steps) runs in one process and then under
``torchrun --nproc_per_node N``; the figure is the second epoch's samples per second
(the first warms up). Three rows a repeat: one process with all ``--threads``
threads, one process with one rank's share (``--threads / N``; on CUDA: one GPU), and
N processes with that share each. The ratio is over the second row, one rank alone:
perfect data-parallel scaling gives N.

Usage::

    python benchmarks/bench_ddp.py                           # CPU, gloo, 2 processes
    python benchmarks/bench_ddp.py --device cuda --nproc 4 --precision bf16 --batch 16384
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def worker(args: argparse.Namespace) -> None:
    """One process (or one rank) of the fit; rank 0 writes its figures to ``args.out``."""
    import torch

    from alphaseq.models import build_model
    from alphaseq.training import Trainer, distributed
    from alphaseq.windows import WindowDataset, valid_samples

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.dates, args.tickers, 8)).astype(np.float32)
    y = (0.5 * x[..., :1] + rng.normal(size=(args.dates, args.tickers, 1))).astype(np.float32)
    config = {
        "epochs": 2,
        "batch_size": args.batch,
        "monitor": "loss",
        "precision": args.precision,
        "device": args.device,
        "progress": False,
        "max_batches_per_epoch": args.batches,
    }
    trainer = Trainer(config)
    samples = valid_samples(x, args.lookback, labels=y, label_horizon=1)
    data = WindowDataset(x, samples, y, device=trainer.device)
    torch.manual_seed(0)
    model = build_model(
        "lstm", 8, hidden_size=args.hidden, num_layers=2, attention_heads=4, dropout=0.0
    )
    began_wall, began_cpu = time.perf_counter(), time.process_time()
    result = trainer.fit(model, data)
    figures = {
        "world_size": 1 if trainer.distributed is None else trainer.distributed.world_size,
        "threads": torch.get_num_threads(),
        "samples_per_second": result.history[-1]["samples_per_second"],
        "epoch_seconds": result.history[-1]["seconds"],
        "train_loss": [entry["train_loss"] for entry in result.history],
        "fit_wall": time.perf_counter() - began_wall,
        "fit_cpu": time.process_time() - began_cpu,
    }
    if distributed.is_main_process():
        Path(args.out).write_text(json.dumps(figures))


def launch(args: argparse.Namespace, nproc: int, threads: int, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    worker_args = [__file__, "--worker", "--out", str(out)] + [
        f"--{key}={getattr(args, key)}"
        for key in (
            "device",
            "precision",
            "batch",
            "hidden",
            "lookback",
            "batches",
            "dates",
            "tickers",
        )
    ]
    if nproc == 1:
        command = [sys.executable, *worker_args]
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes=1",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
            *worker_args,
        ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = json.loads(out.read_text())
    figures["process_wall"] = time.perf_counter() - began
    figures["process_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lookback", type=int, default=30)
    parser.add_argument("--batches", type=int, default=12, help="batches per epoch")
    parser.add_argument("--dates", type=int, default=400)
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"load average before: {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        share = max(1, args.threads // args.nproc)
        for repeat in range(args.repeats):
            one = launch(args, 1, args.threads, Path(folder) / f"one{repeat}.json")
            alone = launch(args, 1, share, Path(folder) / f"alone{repeat}.json")
            many = launch(args, args.nproc, share, Path(folder) / f"many{repeat}.json")
            rows.append((one, alone, many))
    print(
        f"device {args.device}, {args.precision}, global batch {args.batch}, 2x{args.hidden} "
        f"LSTM, lookback {args.lookback}, {args.batches} batches an epoch"
    )
    print("repeat | procs x threads | samples/s | epoch s | fit wall s | all CPU s | ratio")
    for repeat, (one, alone, many) in enumerate(rows):
        for figures in (one, alone, many):
            ratio = figures["samples_per_second"] / alone["samples_per_second"]
            print(
                f"{repeat} | {figures['world_size']} x {figures['threads']} | "
                f"{figures['samples_per_second']:,.0f} | {figures['epoch_seconds']:.2f} | "
                f"{figures['fit_wall']:.2f} | {figures['process_cpu']:.1f} | {ratio:.2f}"
            )
        gap = max(abs(a - b) for a, b in zip(one["train_loss"], many["train_loss"], strict=True))
        print(f"  largest train-loss difference, 1 vs {args.nproc} processes: {gap:.2e}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
