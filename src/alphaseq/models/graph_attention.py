"""Graph attention across assets: :class:`GraphAttentionLSTM` (``gat``).

Architecture, for the windows ``x`` (B, L, F) of a batch of whole cross-sections and
the date ``group`` (B,) of each window::

    x -> the attention LSTM's (or GRU's) encoder -> rep (B, D), temporal weights (B, heads, L)
    per date: z = rep + Dropout(MultiHeadAttention(rep, keys=values=rep of that date))
    z -> LayerNorm? -> dropout -> regression (B, H_reg) / classifier (B, H_cls, C)

Each asset's representation attends to every asset of the same date (itself included),
never to another date's: the cross-sections are padded into (dates, assets, D) with a
key-padding mask, so a missing asset is simply absent and a batch of several dates is
the same as each date on its own. Everything an asset reads is dated ``t`` or earlier
(the windows end at ``t``), so the model is as causal as its encoder.

The trainer gives the model whole dates (date-major batches) and the ``group`` of each
window, because the model declares ``cross_sectional = True``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from alphaseq.errors import ConfigError
from alphaseq.models.attention_lstm import AttentionLSTM
from alphaseq.models.base import ModelOutput, _check_fraction, check_int, register_model

__all__ = ["GraphAttentionLSTM", "pad_by_group"]


def pad_by_group(
    values: torch.Tensor, group: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scatter ``values`` (B, D) into one padded row per distinct ``group`` value.

    Returns
    -------
    padded : torch.Tensor
        (G, M, D), M the largest group; padding is zero.
    present : torch.Tensor
        (G, M) bool, True where a value sits.
    row, slot : torch.Tensor
        (B,) where each input went: ``padded[row, slot] == values``.
    """
    _, row, counts = torch.unique(group, return_inverse=True, return_counts=True)
    order = torch.argsort(row, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.empty_like(row)
    slot[order] = torch.arange(len(row), device=row.device) - starts[row[order]]
    padded = values.new_zeros((len(counts), int(counts.max()), values.shape[-1]))
    padded[row, slot] = values
    present = torch.zeros(padded.shape[:2], dtype=torch.bool, device=values.device)
    present[row, slot] = True
    return padded, present, row, slot


@register_model("gat")
class GraphAttentionLSTM(AttentionLSTM):
    """The attention LSTM's encoder, then attention across the assets of each date.

    Takes every :class:`~alphaseq.models.AttentionLSTM` parameter plus:

    Parameters
    ----------
    graph_heads : int, default 4
        Heads of the attention across assets; must divide the representation width
        ``hidden_size * directions``.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent cell of the encoder.

    Notes
    -----
    ``forward(x, group=...)`` needs the date of each window; without ``group`` the whole
    batch is taken as one date's cross-section (how :meth:`forward` is used on a single
    date). The temporal attention weights it returns are the encoder's: the graph step
    comes after them.
    """

    #: The trainer serves whole dates and passes ``group`` to cross-sectional models.
    cross_sectional: ClassVar[bool] = True

    def __init__(
        self,
        n_features: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.1,
        bidirectional: bool = False,
        layer_norm: bool = True,
        input_norm: bool = False,
        attention_heads: int = 4,
        graph_heads: int = 4,
        cell: str = "lstm",
        n_regression: int = 1,
        n_classification: int = 0,
        n_classes: int = 3,
    ) -> None:
        if cell not in ("lstm", "gru"):
            raise ConfigError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        # The class attribute picks the cell before the parent builds it.
        self._rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        super().__init__(
            n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            layer_norm=layer_norm,
            input_norm=input_norm,
            attention_heads=attention_heads,
            n_regression=n_regression,
            n_classification=n_classification,
            n_classes=n_classes,
        )
        graph_heads = check_int("graph_heads", graph_heads, 1)
        if self.width % graph_heads:
            raise ConfigError(
                f"graph_heads={graph_heads} must divide the representation width "
                f"hidden_size * directions = {self.width}"
            )
        self.config |= {"graph_heads": graph_heads, "cell": cell}
        self.graph_heads = graph_heads
        self.graph = nn.MultiheadAttention(
            self.width, graph_heads, dropout=_check_fraction("dropout", dropout), batch_first=True
        )
        self.graph_norm = nn.LayerNorm(self.width) if layer_norm else None

    def forward(
        self,
        x: torch.Tensor,
        return_attention: bool = False,
        group: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Forecast every window from its own history and its date's cross-section.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, F) windows, oldest day first.
        return_attention : bool, default False
            Also return the encoder's temporal attention (B, heads, L).
        group : torch.Tensor, optional
            (B,) the date of each window; assets attend within their date only.
            Default: the whole batch is one date.
        """
        rep, weights = self._encode(x)
        if group is None:
            group = torch.zeros(len(rep), dtype=torch.long, device=rep.device)
        elif group.shape != (len(rep),):
            raise ConfigError(f"group must have one date per window, got {tuple(group.shape)}")
        padded, present, row, slot = pad_by_group(rep, group)
        mixed, _ = self.graph(padded, padded, padded, key_padding_mask=~present, need_weights=False)
        rep = rep + self.dropout(mixed[row, slot])  # skip connection: the asset's own state
        if self.graph_norm is not None:
            rep = self.graph_norm(rep)
        regression, logits = self._apply_heads(self.dropout(rep))
        return ModelOutput(
            regression=regression, logits=logits, attention=weights if return_attention else None
        )

    def estimate_training_memory(
        self,
        batch_size: int,
        lookback: int,
        dtype_bytes: int = 4,
        *,
        param_bytes: int | None = None,
        assets_per_date: int = 512,
    ) -> int:
        """The encoder's estimate (see :meth:`AttentionLSTM.estimate_training_memory`)
        plus the attention across assets: per window, ``graph_heads`` scores and weights
        against every asset of its date (``assets_per_date``), and the padded
        representation, its projections and output (about ``6 D``)."""
        base = super().estimate_training_memory(
            batch_size, lookback, dtype_bytes, param_bytes=param_bytes
        )
        assets = check_int("assets_per_date", assets_per_date, 1)
        per_window = 2 * self.graph_heads * assets + 6 * self.width
        return base + batch_size * per_window * dtype_bytes
