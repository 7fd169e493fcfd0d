"""Choose a batch size that keeps training inside a memory budget (e.g. a GPU's VRAM)."""

from __future__ import annotations

from torch import nn

from alphaseq.errors import ConfigError


def largest_batch_size(
    model: nn.Module,
    lookback: int,
    budget_bytes: int,
    *,
    resident_bytes: int = 0,
    dtype_bytes: int = 4,
    safety: float = 0.8,
    multiple: int = 64,
    max_batch_size: int = 65_536,
) -> int:
    """The largest batch size whose estimated training memory fits the budget.

    Uses the model's ``estimate_training_memory(batch_size, lookback, dtype_bytes)``,
    which is linear in the batch size. ``safety`` keeps a margin for what the estimate
    leaves out (allocator rounding, workspace spikes; the estimate was measured at
    0.8-1.25x of the true peak on an H100).

    Parameters
    ----------
    model : nn.Module
        A model with ``estimate_training_memory``.
    lookback : int
        Window length.
    budget_bytes : int
        Memory available, e.g. ``12 * 2**30`` for a 12 GB card.
    resident_bytes : int
        Memory already taken by data kept on the device (the feature and label
        tensors of the panel).
    dtype_bytes : int
        Bytes per activation value: 4 for fp32, 2 under bf16/fp16 autocast.
    safety : float
        Share of the free budget the estimate may use.
    multiple : int
        Round down to a multiple of this (tensor-core friendly shapes).
    max_batch_size : int
        Upper bound on the answer.

    Returns
    -------
    int
    """
    if not 0 < safety <= 1:
        raise ConfigError(f"safety must be in (0, 1], got {safety}")
    estimate = getattr(model, "estimate_training_memory", None)
    if estimate is None:
        raise ConfigError(f"{type(model).__name__} cannot estimate its training memory")
    one = estimate(1, lookback, dtype_bytes)
    per_sample = estimate(2, lookback, dtype_bytes) - one
    fixed = one - per_sample
    free = safety * budget_bytes - resident_bytes - fixed
    if per_sample <= 0 or free < per_sample * multiple:
        need = (fixed + resident_bytes + per_sample * multiple) / safety / 2**20
        raise ConfigError(
            f"the model and data do not fit in {budget_bytes / 2**20:,.0f} MiB even with a "
            f"batch of {multiple}; about {need:,.0f} MiB would be needed"
        )
    batch = int(free // per_sample) // multiple * multiple
    return min(batch, max_batch_size // multiple * multiple)
