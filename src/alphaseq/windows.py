"""Lookback windows: which (date, ticker) samples are usable, and gathering them in batches.

A sample is a pair ``(t, i)``: the window covers dates ``t - L + 1 .. t`` of ticker
``i`` and its label is the forward quantity from t. Windows are never
materialised for the whole panel: :func:`gather_windows` builds a batch
``(B, L, F)`` from the dense ``(T, N, F)`` tensor by index, on that tensor's device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from alphaseq.errors import ConfigError


@dataclass(frozen=True, eq=False)
class SampleIndex:
    """Usable samples, sorted by date then ticker.

    Attributes
    ----------
    t : numpy.ndarray
        Date row of each sample, int64.
    i : numpy.ndarray
        Ticker column of each sample, int64.
    lookback : int
        Window length L the samples were chosen for.
    """

    t: np.ndarray
    i: np.ndarray
    lookback: int

    def __len__(self) -> int:
        return len(self.t)

    def n_dates(self) -> int:
        """Number of distinct dates among the samples."""
        return len(np.unique(self.t))


def valid_samples(
    features: np.ndarray,
    lookback: int = 60,
    *,
    labels: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    start: int = 0,
    end: int | None = None,
    label_horizon: int = 0,
    stride: int = 1,
) -> SampleIndex:
    """Find every sample with a complete window (and a known label, when asked).

    Parameters
    ----------
    features : numpy.ndarray
        (T, N, F) features; a window is complete when all its L x F values are finite.
    lookback : int, default 60
        Window length L in trading days.
    labels : numpy.ndarray, optional
        (T, N, H) labels; when given, samples need every label finite.
    mask : numpy.ndarray, optional
        (T, N) bool; when given, the ticker must trade at t (``Panel.mask``).
    start, end : int
        Only dates ``start <= t <= end`` (row indices, ``end`` inclusive; default: last row).
    label_horizon : int, default 0
        Purge: only t with ``t + label_horizon <= end``, so that no label reaches past
        ``end``. Use the label set's horizon for training and validation ranges.
    stride : int, default 1
        Keep every ``stride``-th date from ``start`` (neighbouring windows overlap L-1
        of L days, so a stride loses little and trains faster).

    Returns
    -------
    SampleIndex
    """
    if features.ndim != 3:
        raise ConfigError(f"features must be (T, N, F), got shape {features.shape}")
    n_dates = features.shape[0]
    if lookback < 1:
        raise ConfigError(f"lookback must be >= 1, got {lookback}")
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    if label_horizon < 0:
        raise ConfigError(f"label_horizon must be >= 0, got {label_horizon}")
    end = n_dates - 1 if end is None else min(end, n_dates - 1)
    last = end - label_horizon
    if start < 0 or start > n_dates:
        raise ConfigError(f"start must be in [0, {n_dates}], got {start}")

    complete = np.isfinite(features).all(axis=-1)  # (T, N)
    # A window is complete when no incomplete day falls in it: count incomplete days.
    incomplete = np.cumsum(~complete, axis=0, dtype=np.int32)
    in_window = incomplete.copy()
    in_window[lookback:] -= incomplete[:-lookback]
    ok = in_window == 0
    ok[: lookback - 1] = False
    if mask is not None:
        ok &= mask
    if labels is not None:
        ok &= np.isfinite(labels).all(axis=-1)
    rows = np.zeros(n_dates, dtype=bool)
    if last >= start:
        rows[start : last + 1 : stride] = True
    ok &= rows[:, None]
    t, i = np.nonzero(ok)  # row-major: sorted by date, then ticker
    return SampleIndex(t.astype(np.int64), i.astype(np.int64), lookback)


def gather_windows(
    values: torch.Tensor, t: torch.Tensor, i: torch.Tensor, lookback: int
) -> torch.Tensor:
    """Build the windows of a batch of samples by index, on ``values``' device.

    Parameters
    ----------
    values : torch.Tensor
        (T, N, F) features.
    t, i : torch.Tensor
        (B,) date rows and ticker columns (int64, same device); ``t >= lookback - 1``.
    lookback : int
        Window length L.

    Returns
    -------
    torch.Tensor
        (B, L, F): ``out[b, k] = values[t[b] - L + 1 + k, i[b]]``, oldest day first.
    """
    n_tickers = values.shape[1]
    offsets = torch.arange(1 - lookback, 1, device=values.device)
    rows = (t[:, None] + offsets) * n_tickers + i[:, None]  # (B, L) flat cell index
    flat = values.reshape(-1, values.shape[-1])
    return flat.index_select(0, rows.reshape(-1)).reshape(len(t), lookback, values.shape[-1])


def random_batches(
    n_samples: int,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield sample positions in shuffled batches of ``batch_size``."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n_samples, generator=generator).to(device)
    stop = n_samples - n_samples % batch_size if drop_last else n_samples
    for begin in range(0, stop, batch_size):
        yield order[begin : begin + batch_size]


def date_batches(
    t: np.ndarray | torch.Tensor,
    dates_per_batch: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[torch.Tensor]:
    """Yield sample positions grouped by whole cross-sections (date-major batches).

    Every batch holds all samples of ``dates_per_batch`` dates, so cross-sectional
    losses (IC, Sharpe) see complete cross-sections.

    Parameters
    ----------
    t : array of int
        Date row of each sample, sorted ascending (as :func:`valid_samples` returns them).
    dates_per_batch : int
        Dates per batch.
    shuffle : bool
        Visit dates in random order (the samples of a date stay together).
    """
    if dates_per_batch < 1:
        raise ConfigError(f"dates_per_batch must be >= 1, got {dates_per_batch}")
    t = torch.as_tensor(np.asarray(t) if not isinstance(t, torch.Tensor) else t).cpu()
    if len(t) and (t[1:] < t[:-1]).any():
        raise ConfigError("date_batches needs samples sorted by date")
    _, counts = torch.unique_consecutive(t, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    order = torch.randperm(len(counts), generator=generator) if shuffle else None
    for begin in range(0, len(counts), dates_per_batch):
        chosen = torch.arange(begin, min(begin + dates_per_batch, len(counts)))
        if order is not None:
            chosen = order[chosen]
        sizes = counts[chosen]
        # positions = start of each chosen date + 0..count-1, without a Python loop
        base = torch.repeat_interleave(starts[chosen] - (torch.cumsum(sizes, 0) - sizes), sizes)
        yield (base + torch.arange(int(sizes.sum()))).to(device)


class WindowDataset:
    """Features, labels and samples kept on one device, served as batches of windows.

    Parameters
    ----------
    features : numpy.ndarray or torch.Tensor
        (T, N, F) features (NaN outside complete windows is never read).
    samples : SampleIndex
        The samples to serve.
    labels : numpy.ndarray or torch.Tensor, optional
        (T, N, H) labels.
    device : str or torch.device
        Where the tensors live and windows are gathered.
    dtype : torch.dtype
        Floating type of the features on the device.
    aux : dict of str to array, optional
        Extra (T, N) per-sample quantities served by :meth:`aux_batch`, e.g.
        ``"weight"`` (per-sample loss weights) or ``"volatility"``.
    """

    def __init__(
        self,
        features: np.ndarray | torch.Tensor,
        samples: SampleIndex,
        labels: np.ndarray | torch.Tensor | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        aux: dict[str, np.ndarray | torch.Tensor] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.lookback = samples.lookback
        self.features = torch.as_tensor(features, dtype=dtype).to(self.device)
        self.labels = (
            None if labels is None else torch.as_tensor(labels, dtype=torch.float32).to(self.device)
        )
        self.samples = samples
        self.t = torch.as_tensor(samples.t, dtype=torch.int64).to(self.device)
        self.i = torch.as_tensor(samples.i, dtype=torch.int64).to(self.device)
        self.aux = {
            name: torch.as_tensor(values, dtype=torch.float32).to(self.device)
            for name, values in (aux or {}).items()
        }

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Windows (B, L, F) and labels (B, H) (or None) of the samples at ``positions``."""
        t, i = self.t[positions], self.i[positions]
        x = gather_windows(self.features, t, i, self.lookback)
        y = None if self.labels is None else self.labels[t, i]
        return x, y

    def aux_batch(self, name: str, positions: torch.Tensor) -> torch.Tensor | None:
        """The auxiliary quantity ``name`` for the samples at ``positions`` (None if absent)."""
        values = self.aux.get(name)
        if values is None:
            return None
        return values[self.t[positions], self.i[positions]]

    def batch_positions(
        self,
        batch_size: int = 512,
        *,
        by_date: bool = False,
        dates_per_batch: int = 8,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ) -> Iterator[torch.Tensor]:
        """Yield the sample positions of each batch :meth:`batches` serves, without
        gathering windows (a data-parallel rank gathers only its share of each)."""
        if by_date:
            return date_batches(
                self.samples.t,
                dates_per_batch,
                shuffle=shuffle,
                generator=generator,
                device=self.device,
            )
        if shuffle:
            return random_batches(len(self), batch_size, generator=generator, device=self.device)
        return (
            torch.arange(b, min(b + batch_size, len(self)), device=self.device)
            for b in range(0, len(self), batch_size)
        )

    def batches(
        self,
        batch_size: int = 512,
        *,
        by_date: bool = False,
        dates_per_batch: int = 8,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        """Yield ``(x, y, positions)`` batches: random, or date-major when ``by_date``."""
        groups = self.batch_positions(
            batch_size,
            by_date=by_date,
            dates_per_batch=dates_per_batch,
            shuffle=shuffle,
            generator=generator,
        )
        for positions in groups:
            x, y = self.batch(positions)
            yield x, y, positions
