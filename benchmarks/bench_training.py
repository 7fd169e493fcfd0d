"""Training throughput of the Trainer against the bare LSTM floor, in one run.

Floor: a plain PyTorch loop doing only ``nn.LSTM`` forward (last step -> linear),
MSE, backward and the Adam step on the *same* pre-gathered batches. The trainer
additionally gathers every window on the device, runs the attention, layer norm and
heads, clips gradients, decays weights (AdamW) and tracks the loss. Target: trainer /
floor >= 0.9 on CPU, for 1 and 2 threads.

Every repeat times, for each thread count (``torch.set_num_threads``) and each model,
the floor and then the trainer (its second epoch, after a warm-up epoch), so that the
ratios compare measurements taken seconds apart on a shared machine. Wall and process
CPU seconds are printed beside each other: on a busy machine the CPU time shows whether
a slow figure was work or waiting for a core. ``--ablate`` also times the trainer
without attention and without gradient clipping, and the floor gathering its windows
from the panel each step, to attribute the difference.

``--zoo`` times the other model families through the same trainer on the same kind of
batches (whole dates of all 600 tickers, so that graph attention sees full
cross-sections), beside the floor of the first ``--models`` entry (first thread count).

Usage::

    python benchmarks/bench_training.py                 # CPU: 2x32 and 2x128, 1 and 2 threads
    python benchmarks/bench_training.py --repeats 5 --ablate
    python benchmarks/bench_training.py --device cuda --precision bf16 --batch 4096 --threads 0
    python benchmarks/bench_training.py --models 32x2:4 --zoo  # + gru, transformer, gat
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from alphaseq.models import build_model, count_parameters
from alphaseq.training import Trainer
from alphaseq.training.callbacks import TrainerCallback
from alphaseq.windows import SampleIndex, WindowDataset, gather_windows

T_DATES, N_TICKERS, N_FEATURES = 3239, 600, 22


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Timing:
    """Samples/s, wall and process CPU seconds of one timed pass."""

    def __init__(self, samples: int, wall: float, cpu: float) -> None:
        self.samples, self.wall, self.cpu = samples, wall, cpu

    @property
    def rate(self) -> float:
        return self.samples / max(self.wall, 1e-9)


def floor_timing(
    hidden: int, layers: int, data: WindowDataset, chunks, batches, targets, args, gather=False
) -> Timing:
    """The bare LSTM forward + backward + Adam step; on pre-gathered batches, or
    gathering each batch's windows from the panel (``gather``)."""
    device = data.device
    torch.manual_seed(0)
    lstm = nn.LSTM(N_FEATURES, hidden, num_layers=layers, batch_first=True).to(device)
    head = nn.Linear(hidden, 1).to(device)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def step(k):
        if gather:
            chunk = chunks[k]
            x = gather_windows(data.features, data.t[chunk], data.i[chunk], data.lookback)
        else:
            x = batches[k]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out, _ = lstm(x)
            loss = nn.functional.mse_loss(head(out[:, -1]).squeeze(-1).float(), targets[k])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for k in range(min(3, len(batches))):  # warm-up (cuDNN plans, allocator caches)
        step(k)
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(len(batches)):
        step(k)
    _sync(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Timing(sum(len(x) for x in batches), wall, cpu)


class _EpochClock(TrainerCallback):
    """Wall and CPU seconds of the last epoch, from its first batch to its log entry."""

    def on_epoch_start(self, trainer, epoch, n_batches) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, trainer, epoch, entry) -> None:
        _sync(trainer.device)
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


#: Model families timed by ``--zoo``, sized like the CPU study configs' 2x32 LSTM.
ZOO = {
    "gru 2x32, 4 heads": ("gru", {"hidden_size": 32, "num_layers": 2, "attention_heads": 4}),
    "transformer 2x32, 4 heads": (
        "transformer",
        {"d_model": 32, "num_layers": 2, "attention_heads": 4},
    ),
    "gat 2x32, 4+2 heads": (
        "gat",
        {"hidden_size": 32, "num_layers": 2, "attention_heads": 4, "graph_heads": 2},
    ),
}


def model_timing(
    name: str, params: dict, data: WindowDataset, args, **settings
) -> tuple[Timing, int]:
    """Timing (second epoch) and parameter count of Trainer.fit for any registered model."""
    torch.manual_seed(0)
    model = build_model(name, N_FEATURES, dropout=0.0, **params)
    clock = _EpochClock()
    trainer = Trainer(
        {
            "epochs": 2,
            "batch_size": args.batch,
            "max_batches_per_epoch": args.batches,
            "precision": args.precision,
            "device": str(data.device),
            "progress": False,
            "scheduler": "none",
            "patience": 10,
            "monitor": "loss",
            # whole dates of about batch_size windows for the cross-sectional model
            **({"dates_per_batch": "auto"} if getattr(model, "cross_sectional", False) else {}),
            **settings,
        },
        callbacks=[clock],
    )
    result = trainer.fit(model, data)
    seen = result.history[-1]["samples_per_second"] * result.history[-1]["seconds"]
    return Timing(round(seen), clock.wall, clock.cpu), count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--lookback", type=int, default=60)
    parser.add_argument(
        "--models",
        default="32x2:4,128x2:8",
        help="hidden x layers : heads, comma-separated",
    )
    parser.add_argument(
        "--threads", default="1,2", help="torch thread counts, comma-separated (0: leave as is)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ablate", action="store_true", help="also time ablations")
    parser.add_argument("--zoo", action="store_true", help="also time gru, transformer, gat")
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(T_DATES, N_TICKERS, N_FEATURES, generator=gen)
    labels = torch.randn(T_DATES, N_TICKERS, 1, generator=gen)
    n = args.batch * args.batches * 2
    t = torch.randint(args.lookback - 1, T_DATES, (n,), generator=gen).numpy()
    i = torch.randint(0, N_TICKERS, (n,), generator=gen).numpy()
    order = np.lexsort((i, t))
    samples = SampleIndex(t[order], i[order], args.lookback)
    data = WindowDataset(values, samples, labels, device=device)

    # The floor's batches: the same windows, gathered once up front (outside the timing).
    batches, targets = [], []
    perm = torch.randperm(len(samples), generator=gen)[: args.batch * args.batches]
    chunks = [chunk.to(device) for chunk in perm.split(args.batch)]
    for chunk in chunks:
        batches.append(gather_windows(data.features, data.t[chunk], data.i[chunk], args.lookback))
        targets.append(data.labels[data.t[chunk], data.i[chunk], 0])

    thread_counts = [int(v) for v in args.threads.split(",")]
    print(
        f"device {device}, precision {args.precision}, batch {args.batch} x {args.lookback} "
        f"days x {N_FEATURES} features, {args.batches} batches, torch {torch.__version__}, "
        f"threads {thread_counts}, {args.repeats} repeats, "
        f"load average {os.getloadavg()[0]:.2f} (1 min)"
    )
    header = f"{'rep':>3}{'thr':>4} {'model':<16}{'variant':<16}{'params':>9}"
    header += f"{'samples/s':>11}{'wall s':>8}{'CPU s':>8}{'ratio':>7}{'CPU ratio':>10}"
    print(header)
    # ratio: samples per wall second over the floor's; CPU ratio: the same per CPU second
    # (on a shared machine the CPU figure is less disturbed by waiting for a core).
    ratios: dict[tuple[int, str, str], list[tuple[float, float]]] = defaultdict(list)
    first_floor = None
    for repeat in range(args.repeats):
        for threads in thread_counts:
            if threads:
                torch.set_num_threads(threads)
            for spec in args.models.split(","):
                size, heads = spec.split(":")
                hidden, layers = (int(v) for v in size.split("x"))
                name = f"{layers}x{hidden}, {heads} heads"
                floor = floor_timing(hidden, layers, data, chunks, batches, targets, args)
                first_floor = floor.rate if first_floor is None else first_floor
                params = {"hidden_size": hidden, "num_layers": layers}
                variants = {"trainer": ({"attention_heads": int(heads)}, {})}
                if args.ablate:
                    variants["no attention"] = ({"attention_heads": 0}, {})
                    variants["no clipping"] = ({"attention_heads": int(heads)}, {"grad_clip": None})
                rows = [("floor", floor, None)]
                for variant, (model_params, settings) in variants.items():
                    timing, n_params = model_timing(
                        "lstm", params | model_params, data, args, **settings
                    )
                    rows.append((variant, timing, n_params))
                if args.ablate:
                    gathered = floor_timing(
                        hidden, layers, data, chunks, batches, targets, args, gather=True
                    )
                    rows.append(("floor + gather", gathered, None))
                for variant, timing, n_params in rows:
                    ratio = timing.rate / floor.rate
                    cpu_ratio = (timing.samples / timing.cpu) / (floor.samples / floor.cpu)
                    ratios[(threads, name, variant)].append((ratio, cpu_ratio))
                    print(
                        f"{repeat:>3}{threads:>4} {name:<16}{variant:<16}"
                        f"{'' if n_params is None else f'{n_params:,}':>9}"
                        f"{timing.rate:>11,.0f}{timing.wall:>8.2f}{timing.cpu:>8.2f}{ratio:>7.2f}"
                        f"{cpu_ratio:>10.2f}"
                    )
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) after the repeats")
    print("ratio to the floor of the same repeat, wall | CPU: median (min - max) over repeats")
    for (threads, name, variant), pairs in ratios.items():
        if variant == "floor":
            continue
        columns = zip(*pairs, strict=True)
        text = [f"{statistics.median(v):.2f} ({min(v):.2f} - {max(v):.2f})" for v in columns]
        print(f"  {threads} thread(s) {name:<16}{variant:<16}{text[0]} | {text[1]}")
    if args.zoo:
        if thread_counts[0]:
            torch.set_num_threads(thread_counts[0])
        dates = torch.randperm(T_DATES - args.lookback, generator=gen)[: max(2, n // N_TICKERS)]
        t = np.repeat(np.sort(dates.numpy()) + args.lookback - 1, N_TICKERS)
        i = np.tile(np.arange(N_TICKERS), len(dates))
        whole = WindowDataset(values, SampleIndex(t, i, args.lookback), labels, device=device)
        print(f"zoo: whole dates; ratio to the first model's floor ({first_floor:,.0f}/s)")
        print(f"{'model':<26}{'params':>10}{'samples/s':>12}{'CPU s':>8}{'ratio':>8}")
        for name, (model_name, params) in ZOO.items():
            timing, n_params = model_timing(model_name, params, whole, args)
            print(
                f"{name:<26}{n_params:>10,}{timing.rate:>12,.0f}{timing.cpu:>8.2f}"
                f"{timing.rate / first_floor:>8.2f}"
            )


if __name__ == "__main__":
    main()
