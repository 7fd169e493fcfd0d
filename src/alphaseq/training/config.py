"""The training loop's settings (the ``training`` section of an experiment config).

Apart from the trainer so that reading and checking a config does not import torch.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from alphaseq._config_base import SettingsSection

#: Device names: ``auto`` or a torch device type with an optional index.
_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")

Monitor = Literal["loss", "ic", "rank_ic", "sharpe"]


class TrainerConfig(SettingsSection):
    """Every knob of the training loop (validated; unknown keys are errors)."""

    epochs: int = Field(20, ge=1, description="Largest number of passes over the training samples.")
    batch_size: int = Field(512, ge=1, description="Training samples per optimiser step.")
    eval_batch_size: int = Field(
        8192, ge=1, description="Samples per forward pass when predicting (no gradients)."
    )
    learning_rate: float = Field(1e-3, gt=0, description="Optimiser step size.")
    weight_decay: float = Field(1e-5, ge=0, description="L2 penalty (decoupled for adamw).")
    optimizer: Literal["adam", "adamw"] = Field(
        "adamw", description="adam or adamw (decoupled weight decay)."
    )
    scheduler: Literal["plateau", "cosine", "none"] = Field(
        "plateau",
        description="plateau: cut the rate when validation stalls; cosine: anneal over the epochs.",
    )
    plateau_factor: float = Field(
        0.5, gt=0, lt=1, description="plateau: factor the learning rate is multiplied by."
    )
    plateau_patience: int = Field(
        2, ge=0, description="plateau: epochs without improvement before a cut."
    )
    min_learning_rate: float = Field(
        1e-6, ge=0, description="Floor of the learning rate under either scheduler."
    )
    patience: int = Field(5, ge=1, description="Epochs without improvement before stopping.")
    monitor: Monitor = Field(
        "ic", description="Validation figure that picks the kept epoch and stops early."
    )
    grad_clip: float | None = Field(
        1.0, gt=0, description="Clip the gradient norm to this; null: no clipping."
    )
    accumulation_steps: int = Field(
        1, ge=1, description="Batches whose gradients add up before each optimiser step."
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="fp32, or mixed precision bf16/fp16 (autocast; fp16 with a gradient scaler).",
    )
    loss: str = Field(
        "mse", description="Loss name (mse, huber, ic, rank_ic, multi_task, direction_ce, ...)."
    )
    loss_params: dict[str, Any] = Field(default_factory=dict, description="Arguments of the loss.")
    date_major: bool | None = Field(None, description="Default: when the loss needs it.")
    dates_per_batch: int | Literal["auto"] = Field(
        16,
        description="Dates per date-major batch; auto: as many whole dates as hold about "
        "batch_size samples (at least one).",
    )
    seed: int = Field(0, description="Seed of weights, sampling and dropout.")
    device: str = Field(
        "auto", description="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:<index> or mps."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads torch uses (torch.set_num_threads); default: torch's own "
        "choice, one per core.",
    )
    progress: bool = Field(
        True, description="Show progress bars (a terminal) or per-epoch log lines (a pipe)."
    )
    max_batches_per_epoch: int | None = Field(
        None, ge=1, description="Stop each epoch after this many batches (quick checks)."
    )

    @field_validator("device")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if value == "auto":
            return value
        # The forms torch.device accepts, checked without importing torch.
        if not _DEVICE.fullmatch(value):
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps', got {shown!r}"
            ) from None
        return value

    @field_validator("dates_per_batch", mode="before")
    @classmethod
    def _dates_per_batch_value(cls, value: Any) -> Any:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"dates_per_batch must be an integer >= 1 or 'auto', got {value!r}")
        return value
