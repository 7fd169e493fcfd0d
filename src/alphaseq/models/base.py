"""What every forecasting model returns, and the registry that builds models by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from alphaseq.errors import ConfigError


@dataclass
class ModelOutput:
    """Outputs of a forecasting model for a batch of B windows.

    Attributes
    ----------
    regression : torch.Tensor or None
        (B, H_reg) regression outputs, one per regression horizon.
    logits : torch.Tensor or None
        (B, H_cls, C) class logits, C classes for each classification horizon.
    attention : torch.Tensor or None
        (B, heads, L) temporal attention weights (each row sums to one), only when
        the model was asked for them and has attention.
    """

    regression: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    attention: torch.Tensor | None = None


#: Name -> model class. Every class takes ``n_features`` first and keyword
#: hyper-parameters, stores them in ``self.config`` (JSON-ready), and its
#: ``forward(x, return_attention=False)`` maps (B, L, F) to a :class:`ModelOutput`.
MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model class to :data:`MODELS` under ``name``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS[name] = cls
        cls.registry_name = name
        return cls

    return add


def build_model(name: str, n_features: int, **hyper: Any) -> nn.Module:
    """Build a registered model by name, with a clear error for unknown names or keys."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {sorted(MODELS)}") from None
    try:
        return cls(n_features, **hyper)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
