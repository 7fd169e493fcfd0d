"""Training throughput of the Trainer against the bare LSTM floor, in one run.

Floor: a plain PyTorch loop doing only ``nn.LSTM`` forward (last step -> linear),
MSE, backward and the Adam step on the *same* pre-gathered batches. The trainer
additionally gathers every window on the device, runs the attention, layer norms and
heads, clips gradients and tracks the loss. Target: trainer / floor >= 0.85 on CPU.

Usage::

    python benchmarks/bench_training.py                 # CPU: small and reference model
    python benchmarks/bench_training.py --device cuda --precision bf16 --batch 4096
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from alphaseq.models import build_model, count_parameters
from alphaseq.training import Trainer
from alphaseq.windows import SampleIndex, WindowDataset, gather_windows

T_DATES, N_TICKERS, N_FEATURES = 3239, 600, 22


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def floor_throughput(
    hidden: int, layers: int, batches: list[torch.Tensor], targets, device, precision
) -> float:
    """Samples/s of the bare LSTM forward + backward + Adam step on pre-gathered batches."""
    torch.manual_seed(0)
    lstm = nn.LSTM(N_FEATURES, hidden, num_layers=layers, batch_first=True).to(device)
    head = nn.Linear(hidden, 1).to(device)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step(x, y):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out, _ = lstm(x)
            loss = nn.functional.mse_loss(head(out[:, -1]).squeeze(-1).float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for x, y in zip(batches[:3], targets[:3], strict=True):  # warm-up (cuDNN plans, caches)
        step(x, y)
    _sync(device)
    start = time.perf_counter()
    for x, y in zip(batches, targets, strict=True):
        step(x, y)
    _sync(device)
    return sum(len(x) for x in batches) / (time.perf_counter() - start)


def trainer_throughput(
    hidden: int, layers: int, heads: int, data: WindowDataset, args, device
) -> tuple[float, int]:
    """Samples/s of Trainer.fit (second epoch, after warm-up) on the same number of batches."""
    torch.manual_seed(0)
    model = build_model(
        "lstm",
        N_FEATURES,
        hidden_size=hidden,
        num_layers=layers,
        attention_heads=heads,
        dropout=0.0,
    )
    trainer = Trainer(
        {
            "epochs": 2,
            "batch_size": args.batch,
            "max_batches_per_epoch": args.batches,
            "precision": args.precision,
            "device": str(device),
            "progress": False,
            "scheduler": "none",
            "patience": 10,
            "monitor": "loss",
        }
    )
    result = trainer.fit(model, data)
    return result.history[-1]["samples_per_second"], count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser()
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
    for chunk in perm.split(args.batch):
        chunk = chunk.to(device)
        batches.append(gather_windows(data.features, data.t[chunk], data.i[chunk], args.lookback))
        targets.append(data.labels[data.t[chunk], data.i[chunk], 0])

    print(
        f"device {device}, precision {args.precision}, batch {args.batch} x {args.lookback} "
        f"days x {N_FEATURES} features, {args.batches} batches, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(f"{'model':<22}{'params':>10}{'floor/s':>12}{'trainer/s':>12}{'ratio':>8}")
    for spec in args.models.split(","):
        size, heads = spec.split(":")
        hidden, layers = (int(v) for v in size.split("x"))
        floor = floor_throughput(hidden, layers, batches, targets, device, args.precision)
        trained, params = trainer_throughput(hidden, layers, int(heads), data, args, device)
        name = f"{layers}x{hidden}, {heads} heads"
        print(f"{name:<22}{params:>10,}{floor:>12,.0f}{trained:>12,.0f}{trained / floor:>8.2f}")


if __name__ == "__main__":
    main()
