"""Training throughput of the Trainer against the bare LSTM floor, in one run.

Floor: a plain PyTorch loop doing only ``nn.LSTM`` forward (last step -> linear),
MSE, backward and the Adam step on the *same* pre-gathered batches. The trainer
additionally gathers every window on the device, runs the attention, layer norms and
heads, clips gradients and tracks the loss. Target: trainer / floor >= 0.85 on CPU.

``--zoo`` times the other model families through the same trainer on the same kind of
batches (whole dates of all 600 tickers, so that graph attention sees full
cross-sections), beside the floor of the first ``--models`` entry.

Usage::

    python benchmarks/bench_training.py                 # CPU: small and reference model
    python benchmarks/bench_training.py --device cuda --precision bf16 --batch 4096
    python benchmarks/bench_training.py --models 32x2:4 --zoo  # + gru, transformer, gat
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


def trainer_throughput(
    hidden: int, layers: int, heads: int, data: WindowDataset, args, device
) -> tuple[float, int]:
    """Samples/s of Trainer.fit (second epoch, after warm-up) on the same number of batches."""
    params = {"hidden_size": hidden, "num_layers": layers, "attention_heads": heads}
    return model_throughput("lstm", params, data, args, device)


def model_throughput(name: str, params: dict, data: WindowDataset, args, device):
    """Samples/s and parameter count of Trainer.fit for any registered model."""
    torch.manual_seed(0)
    model = build_model(name, N_FEATURES, dropout=0.0, **params)
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
            # whole dates of about batch_size windows for the cross-sectional model
            **({"dates_per_batch": "auto"} if getattr(model, "cross_sectional", False) else {}),
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
    first_floor = None
    for spec in args.models.split(","):
        size, heads = spec.split(":")
        hidden, layers = (int(v) for v in size.split("x"))
        floor = floor_throughput(hidden, layers, batches, targets, device, args.precision)
        trained, params = trainer_throughput(hidden, layers, int(heads), data, args, device)
        name = f"{layers}x{hidden}, {heads} heads"
        print(f"{name:<22}{params:>10,}{floor:>12,.0f}{trained:>12,.0f}{trained / floor:>8.2f}")
        first_floor = floor if first_floor is None else first_floor
    if args.zoo:
        dates = torch.randperm(T_DATES - args.lookback, generator=gen)[: max(2, n // N_TICKERS)]
        t = np.repeat(np.sort(dates.numpy()) + args.lookback - 1, N_TICKERS)
        i = np.tile(np.arange(N_TICKERS), len(dates))
        whole = WindowDataset(values, SampleIndex(t, i, args.lookback), labels, device=device)
        print(f"zoo: whole dates; ratio to the first model's floor ({first_floor:,.0f}/s)")
        for name, (model_name, params) in ZOO.items():
            trained, n_params = model_throughput(model_name, params, whole, args, device)
            print(f"{name:<26}{n_params:>10,}{'':>8}{trained:>12,.0f}{trained / first_floor:>8.2f}")


if __name__ == "__main__":
    main()
