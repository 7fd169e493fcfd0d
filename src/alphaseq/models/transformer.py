"""Temporal self-attention over the lookback window: :class:`TemporalTransformer`.

Architecture, for windows ``x`` of shape (B, L, F)::

    x -> LayerNorm(F)? -> Linear(F, d) + sinusoidal position of each day's age
      -> (num_layers - 1) pre-norm blocks: x + Attention(LN(x)), x + FeedForward(LN(x))
      -> last block, for the last day only: its query attends to every day's keys
      -> LayerNorm(d) -> dropout -> regression (B, H_reg) / classifier (B, H_cls, C)

Every window holds days ``t - L + 1 .. t`` only, so the attention needs no causal mask:
attending to the whole window is no look-ahead. The earlier blocks use PyTorch's fused
``scaled_dot_product_attention`` (flash / memory-efficient kernels on GPUs); the last
block computes one query per window, L times cheaper than a full block, and its weights
(B, heads, L) are the attention the report shows, as for the attention LSTM.

Positions are encoded by age (0 for the last day, L - 1 for the oldest), so a model
trained on 60-day windows reads today's row the same way at any lookback.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from alphaseq.errors import ConfigError
from alphaseq.models.base import (
    ForecastModel,
    ModelOutput,
    check_bool,
    check_fraction,
    check_int,
    register_model,
)

__all__ = ["TemporalTransformer"]


def age_encoding(lookback: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoidal encoding (Vaswani et al., 2017, section 3.5) of each day's age.

    Row ``l`` of the (lookback, width) result encodes age ``lookback - 1 - l``: the
    last row (today) is age 0 whatever the lookback.
    """
    age = torch.arange(lookback - 1, -1, -1, device=device, dtype=torch.float32)[:, None]
    half = torch.arange(0, width, 2, device=device, dtype=torch.float32)
    angle = age * torch.exp(-math.log(10000.0) * half / width)
    encoding = torch.zeros(lookback, width, device=device, dtype=torch.float32)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : width // 2])
    return encoding.to(dtype)


class _Block(nn.Module):
    """Pre-norm Transformer block: self-attention, then a two-layer feed-forward net."""

    def __init__(self, width: int, heads: int, ff_size: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(
            nn.Linear(width, ff_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_size, width)
        )
        self.dropout = nn.Dropout(dropout)
        self.attention_dropout = dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, D) -> (B, heads, L, head_dim)
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every day attends to every day of its window: (B, L, D) -> (B, L, D)."""
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        context = F.scaled_dot_product_attention(
            self._split(q),
            self._split(k),
            self._split(v),
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        batch, length, width = x.shape
        context = context.transpose(1, 2).reshape(batch, length, width)
        x = x + self.dropout(self.out(context))
        return x + self.dropout(self.ff(self.norm2(x)))

    def forward_last(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Only the last day's query: (B, L, D) -> its output (B, D) and weights (B, heads, L)."""
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        q = self._split(q[:, -1:])  # (B, heads, 1, head_dim)
        scores = (q @ self._split(k).transpose(-1, -2)).squeeze(2) / math.sqrt(self.head_dim)
        # Softmax in at least float32: under bf16 autocast the weights then sum to one.
        weights = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32))
        values = self._split(v)
        context = (weights.to(values.dtype).unsqueeze(2) @ values).squeeze(2)  # (B, h, d)
        last = x[:, -1] + self.dropout(self.out(context.flatten(1)))
        return last + self.dropout(self.ff(self.norm2(last))), weights


@register_model("transformer")
class TemporalTransformer(ForecastModel):
    """Transformer encoder over the lookback window, read out at the last day.

    Parameters
    ----------
    n_features : int
        Number of input features F.
    d_model : int, default 64
        Width D of every day's representation; ``attention_heads`` must divide it.
    num_layers : int, default 2
        Transformer blocks; the last one computes the last day's output only.
    attention_heads : int, default 4
        Heads of every block's self-attention.
    ff_size : int, optional
        Hidden units of each block's feed-forward net; default ``4 * d_model``.
    dropout : float, default 0.1
        Dropout on attention weights, block outputs and the final representation.
    input_norm : bool, default False
        LayerNorm over the features of each day before the embedding (skipped when
        ``n_features == 1``).
    n_regression : int, default 1
        Regression outputs (one per regression horizon); 0 for none.
    n_classification : int, default 0
        Classification horizons; 0 for none.
    n_classes : int, default 3
        Classes per classification horizon.

    Attributes
    ----------
    config : dict
        The hyper-parameters above, JSON-ready (``ff_size`` resolved).
    width : int
        ``d_model``, the representation the heads read.

    Raises
    ------
    ConfigError
        For a value out of range, ``d_model`` not divisible by ``attention_heads`` or
        no head.

    Examples
    --------
    >>> import torch
    >>> from alphaseq.models import TemporalTransformer
    >>> model = TemporalTransformer(5, d_model=16, attention_heads=4, n_classification=2)
    >>> out = model(torch.randn(8, 30, 5), return_attention=True)
    >>> out.regression.shape, out.logits.shape, out.attention.shape
    (torch.Size([8, 1]), torch.Size([8, 2, 3]), torch.Size([8, 4, 30]))
    """

    def __init__(
        self,
        n_features: int,
        *,
        d_model: int = 64,
        num_layers: int = 2,
        attention_heads: int = 4,
        ff_size: int | None = None,
        dropout: float = 0.1,
        input_norm: bool = False,
        n_regression: int = 1,
        n_classification: int = 0,
        n_classes: int = 3,
    ) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, 1)
        heads = check_int("attention_heads", attention_heads, 1)
        ff_size = 4 * d_model if ff_size is None else check_int("ff_size", ff_size, 1)
        self.config = {
            "n_features": check_int("n_features", n_features, 1),
            "d_model": d_model,
            "num_layers": check_int("num_layers", num_layers, 1),
            "attention_heads": heads,
            "ff_size": ff_size,
            "dropout": check_fraction("dropout", dropout),
            "input_norm": check_bool("input_norm", input_norm),
            "n_regression": check_int("n_regression", n_regression, 0),
            "n_classification": check_int("n_classification", n_classification, 0),
            "n_classes": check_int("n_classes", n_classes, 2),
        }
        if d_model % heads:
            divisors = [k for k in range(1, d_model + 1) if d_model % k == 0][:8]
            raise ConfigError(
                f"attention_heads={heads} must divide d_model={d_model}; "
                f"choose e.g. attention_heads in {divisors} or change d_model"
            )
        self.n_features = int(n_features)
        self.width = d_model
        self.heads = heads
        self.num_layers = int(num_layers)
        self.ff_size = ff_size
        self.input_norm = nn.LayerNorm(n_features) if input_norm and n_features > 1 else None
        self.embed = nn.Linear(n_features, d_model)
        self.blocks = nn.ModuleList(
            _Block(d_model, heads, ff_size, float(dropout)) for _ in range(num_layers)
        )
        self.output_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(float(dropout))
        self._init_heads(d_model, int(n_regression), int(n_classification), int(n_classes))

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> ModelOutput:
        """Forecast from a batch of windows.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, F) windows, oldest day first; cast to the parameters' floating type.
        return_attention : bool, default False
            Also return the last block's attention of the last day (B, heads, L).

        Returns
        -------
        ModelOutput
        """
        rep, weights = self._encode(x)
        regression, logits = self._apply_heads(self.dropout(rep))
        return ModelOutput(
            regression=regression, logits=logits, attention=weights if return_attention else None
        )

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each window's representation (B, D) and its last-day attention (B, heads, L)."""
        x = self._check_input(x)
        if self.input_norm is not None:
            x = self.input_norm(x)
        h = self.embed(x)
        h = h + age_encoding(x.shape[1], self.width, device=h.device, dtype=h.dtype)
        for block in self.blocks[:-1]:
            h = block(h)
        last, weights = self.blocks[-1].forward_last(h)
        return self.output_norm(last), weights

    def estimate_training_memory(
        self,
        batch_size: int,
        lookback: int,
        dtype_bytes: int = 4,
        *,
        param_bytes: int | None = None,
    ) -> int:
        """Estimate the peak memory of one Adam training step, in bytes.

        Like :meth:`AttentionLSTM.estimate_training_memory`, linear in ``batch_size``:
        parameters, gradients and Adam's moments, plus per window and day, for every
        full block, the activations kept for backward (norms, q/k/v, context,
        projections, residuals, dropout masks: about ``10 D``, and ``3 ff_size`` in the
        feed-forward net) and the (heads, L) attention scores and weights that the
        unfused kernel (CPU) materialises; then the embedding and the last block's
        single-query terms. An upper bound on GPUs, where the fused kernels keep no
        (L, L) matrix.

        Parameters
        ----------
        batch_size : int
            Windows per batch B.
        lookback : int
            Window length L.
        dtype_bytes : int, default 4
            Bytes per activation element (4 for float32, 2 under bf16/fp16 autocast).
        param_bytes : int, optional
            Bytes per parameter element; default: the parameters' current type.

        Returns
        -------
        int
            Estimated bytes.
        """
        batch_size, lookback, dtype_bytes, fixed = self._memory_inputs(
            batch_size, lookback, dtype_bytes, param_bytes
        )
        d, f, heads = self.width, self.n_features, self.heads
        full_block = lookback * (10 * d + 3 * self.ff_size + 2 * heads * lookback)
        per_window = (self.num_layers - 1) * full_block
        per_window += lookback * (2 * f + 6 * d)  # inputs, embedding, the last block's k/v
        per_window += 2 * heads * lookback + 10 * d + 3 * self.ff_size  # its single query
        return fixed + batch_size * per_window * dtype_bytes
