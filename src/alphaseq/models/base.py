"""What every forecasting model returns, and the registry that builds models by name."""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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
    """Build a registered model by name, with a clear error for unknown names or keys.

    Parameters
    ----------
    name : str
        Registry name (a key of :data:`MODELS`, e.g. ``"lstm"``, ``"gru"``, ``"linear"``).
    n_features : int
        Number of input features F.
    **hyper
        The model's keyword hyper-parameters. ``build_model(name, **model.config)``
        rebuilds an identical architecture.

    Raises
    ------
    ConfigError
        For an unknown name, an unknown hyper-parameter (with the accepted ones and the
        closest match) or a value the model refuses.
    """
    try:
        cls = MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {sorted(MODELS)}") from None
    accepted = _keyword_names(cls)
    if accepted is not None:
        unknown = sorted(set(hyper) - accepted)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, accepted, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(
                f"model {name!r} has no hyper-parameter {', '.join(hints)}; "
                f"accepted: {sorted(accepted)}"
            )
    try:
        return cls(n_features, **hyper)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


def _keyword_names(cls: type) -> set[str] | None:
    """Keyword names ``cls(n_features, **kw)`` accepts, or None when it takes ``**kwargs``."""
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params[1:] if p.kind in kinds}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- building blocks
class ForecastModel(nn.Module):
    """Base class of the built-in models: output heads, config and memory bookkeeping.

    Subclasses call :meth:`_init_heads` in their constructor and :meth:`_apply_heads`
    on their (B, width) representation. The heads are plain attributes so that they
    can be reached as ``model.regression`` and ``model.classifier`` (None when absent).
    """

    #: Name under which :func:`register_model` registered the class.
    registry_name: ClassVar[str]

    config: dict[str, Any]
    regression: nn.Linear | None
    classifier: nn.Linear | None

    def _init_heads(
        self, width: int, n_regression: int, n_classification: int, n_classes: int
    ) -> None:
        if n_regression == 0 and n_classification == 0:
            raise ConfigError(
                f"{type(self).__name__} needs at least one output head: "
                "set n_regression >= 1 or n_classification >= 1"
            )
        self.n_regression = n_regression
        self.n_classification = n_classification
        self.n_classes = n_classes
        self.regression = nn.Linear(width, n_regression) if n_regression else None
        # One linear layer for every classification horizon at once, reshaped in forward.
        self.classifier = (
            nn.Linear(width, n_classification * n_classes) if n_classification else None
        )

    def _apply_heads(self, rep: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        regression = None if self.regression is None else self.regression(rep)
        logits = None
        if self.classifier is not None:
            logits = self.classifier(rep).view(-1, self.n_classification, self.n_classes)
        return regression, logits

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Check the (B, L, F) shape and cast to the parameters' floating type."""
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise ConfigError(
                f"{type(self).__name__} expects windows of shape (batch, lookback, "
                f"{self.n_features}), got {tuple(x.shape)}"
            )
        # float64 windows into a float32 model (or the reverse) would fail deep inside
        # the recurrent kernel; under autocast the parameters stay float32 and autocast
        # picks the compute type itself.
        dtype = next(self.parameters()).dtype
        return x if x.dtype == dtype else x.to(dtype)

    def _memory_inputs(
        self, batch_size: int, lookback: int, dtype_bytes: int, param_bytes: int | None
    ) -> tuple[int, int, int, int]:
        """Checked ``(batch_size, lookback, dtype_bytes)`` and the batch-independent bytes:
        parameters, gradients, Adam's moments, and autocast's low-precision weight copy
        when activations are narrower than the parameters."""
        batch_size = check_int("batch_size", batch_size, 1)
        lookback = check_int("lookback", lookback, 1)
        dtype_bytes = check_int("dtype_bytes", dtype_bytes, 1)
        n_params, fixed = self._parameter_state_bytes(param_bytes)
        if param_bytes is None:
            param_bytes = next(self.parameters()).element_size()
        if dtype_bytes < param_bytes:
            fixed += n_params * dtype_bytes
        return batch_size, lookback, dtype_bytes, fixed

    def _parameter_state_bytes(self, param_bytes: int | None) -> tuple[int, int]:
        """(number of parameters, bytes for parameters + gradients + Adam's two moments)."""
        n_params = count_parameters(self)
        if param_bytes is None:
            param_bytes = next(self.parameters()).element_size()
        return n_params, 4 * n_params * param_bytes


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a :class:`ConfigError` naming ``name``."""
    # bool is an int subclass: refuse it, ``hidden_size=True`` is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1), or a :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a real bool, or a :class:`ConfigError` naming ``name``."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value
