"""Throughput of gathering lookback windows by index, against a plain memory-copy floor.

The panel tensor (T, N, F) sits on the device; each batch gathers B windows of L days.
Floor: copying the same number of bytes from a contiguous tensor (``clone`` of a slice),
which no gather can beat. Prints samples/s and the ratio gather / floor.

Usage: python benchmarks/bench_gather.py [--device cuda] [--batch 4096]
"""

from __future__ import annotations

import argparse
import time

import torch

from alphaseq.windows import gather_windows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--lookback", type=int, default=60)
    parser.add_argument("--dates", type=int, default=3239)
    parser.add_argument("--tickers", type=int, default=600)
    parser.add_argument("--features", type=int, default=22)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(args.dates, args.tickers, args.features, generator=gen).to(device)
    t = torch.randint(args.lookback - 1, args.dates, (args.batch,), generator=gen).to(device)
    i = torch.randint(0, args.tickers, (args.batch,), generator=gen).to(device)
    flat = values.reshape(-1, args.features)
    n_rows = args.batch * args.lookback

    gather = timed(lambda: gather_windows(values, t, i, args.lookback), device, args.repeats)
    floor = timed(lambda: flat[:n_rows].clone(), device, args.repeats)
    print(
        f"device {device}, panel {tuple(values.shape)}, batch {args.batch} x "
        f"{args.lookback} x {args.features}"
    )
    print(f"gather_windows : {args.batch / gather:12,.0f} samples/s  ({gather * 1e3:.3f} ms)")
    print(f"copy floor     : {args.batch / floor:12,.0f} samples/s  ({floor * 1e3:.3f} ms)")
    print(f"gather / floor : {floor / gather:.2f}")


if __name__ == "__main__":
    main()
