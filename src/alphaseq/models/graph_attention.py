"""Graph attention across assets: :class:`GraphAttentionLSTM` (``gat``) and
:class:`GraphAttentionTransformer` (``gat_transformer``).

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

With ``neighbours = k`` each asset attends only to itself and the ``k`` assets whose
daily returns correlated most with its own over the fold's training window
(:func:`correlation_neighbours`, computed by the forecaster before training, from
training prices only, and kept in the checkpoint by ticker).

The trainer gives the model whole dates (date-major batches), the ``group`` (date) and
the ``asset`` (panel column) of each window, because the model declares
``cross_sectional = True``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from alphaseq.errors import ConfigError
from alphaseq.models.attention_lstm import AttentionLSTM
from alphaseq.models.base import ModelOutput, check_fraction, check_int, register_model
from alphaseq.models.transformer import TemporalTransformer

__all__ = [
    "AssetAttention",
    "GraphAttentionLSTM",
    "GraphAttentionTransformer",
    "correlation_neighbours",
    "pad_by_group",
]


def correlation_neighbours(close: np.ndarray, k: int, min_periods: int = 20) -> np.ndarray:
    """Each asset's ``k`` most correlated peers by daily log returns, as an adjacency.

    Parameters
    ----------
    close : numpy.ndarray
        (T, N) closes of the window to learn from (NaN where missing); only these rows
        are read, so passing the training window keeps the neighbourhood causal.
    k : int
        Peers per asset (fewer when fewer have ``min_periods`` common returns).
    min_periods : int, default 20
        Common returns a pair needs for its correlation to count.

    Returns
    -------
    numpy.ndarray
        (N, N) bool: row i marks what asset i may attend to, itself included.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(np.log(close.astype(np.float64)), axis=0)
    corr = pd.DataFrame(returns).corr(min_periods=min_periods).to_numpy(copy=True)
    n = corr.shape[0]
    corr[~np.isfinite(corr)] = -np.inf
    np.fill_diagonal(corr, -np.inf)
    adjacency = np.eye(n, dtype=bool)
    if n > 1 and k > 0:
        top = np.argsort(-corr, axis=1, kind="stable")[:, : min(k, n - 1)]
        rows = np.repeat(np.arange(n), top.shape[1])
        known = np.isfinite(corr[rows, top.ravel()])
        adjacency[rows[known], top.ravel()[known]] = True
    return adjacency


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


class AssetAttention:
    """The attention across the assets of each date, for a model with an ``_encode``
    giving one (B, width) representation per window (see :class:`GraphAttentionLSTM`).

    Mixed in before the encoder's class: ``_init_graph`` builds the layer after the
    encoder, ``_mix_assets`` applies it to the encoder's output.
    """

    #: The trainer serves whole dates and passes ``group`` and ``asset`` to such models.
    cross_sectional: ClassVar[bool] = True

    def _init_graph(
        self,
        graph_heads: int,
        neighbours: int,
        neighbour_tickers: list[str] | None,
        dropout: float,
        layer_norm: bool,
    ) -> None:
        graph_heads = check_int("graph_heads", graph_heads, 1)
        if self.width % graph_heads:
            raise ConfigError(
                f"graph_heads={graph_heads} must divide the representation width {self.width}"
            )
        self.neighbours = check_int("neighbours", neighbours, 0)
        tickers = None if neighbour_tickers is None else [str(t) for t in neighbour_tickers]
        self.config |= {
            "graph_heads": graph_heads,
            "neighbours": self.neighbours,
            "neighbour_tickers": tickers,
        }
        # (n, n) by the tickers above; the forecaster fills it from training prices.
        n = 0 if tickers is None else len(tickers)
        self.register_buffer("adjacency", torch.eye(n, dtype=torch.bool))
        self._aligned: torch.Tensor | None = None  # adjacency in a panel's column order
        self.graph_heads = graph_heads
        self.graph = nn.MultiheadAttention(
            self.width, graph_heads, dropout=check_fraction("dropout", dropout), batch_first=True
        )
        self.graph_norm = nn.LayerNorm(self.width) if layer_norm else None

    # ------------------------------------------------------------------ neighbourhood
    def set_neighbourhood(self, tickers: list[str], adjacency: np.ndarray) -> None:
        """Store which assets each asset may attend to (row i: asset i's peers), indexed
        by ``tickers``, in the order of the panel the model trains on."""
        adjacency = torch.as_tensor(np.asarray(adjacency, dtype=bool))
        if adjacency.shape != (len(tickers), len(tickers)):
            raise ConfigError(
                f"adjacency must be ({len(tickers)}, {len(tickers)}), got {tuple(adjacency.shape)}"
            )
        self.config["neighbour_tickers"] = [str(t) for t in tickers]
        self.adjacency = (adjacency | torch.eye(len(tickers), dtype=torch.bool)).to(
            self.adjacency.device
        )
        self._aligned = None

    def align_assets(self, tickers: list[str]) -> None:
        """Re-index the neighbourhood to a panel's columns before forecasting on it: a
        ticker the training panel did not have attends to itself only."""
        known = self.config.get("neighbour_tickers")
        if not self.neighbours or known is None:
            return
        position = {t: j for j, t in enumerate(known)}
        index = torch.tensor([position.get(str(t), -1) for t in tickers], dtype=torch.long)
        found = index >= 0
        safe = index.clamp(min=0).to(self.adjacency.device)
        aligned = self.adjacency[safe][:, safe] & (found[:, None] & found[None, :]).to(
            self.adjacency.device
        )
        self._aligned = aligned | torch.eye(len(tickers), dtype=torch.bool, device=aligned.device)

    def _graph_mask(
        self, asset: torch.Tensor, row: torch.Tensor, slot: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor | None:
        """(G * graph_heads, M, M) True where a present asset may not attend, or None."""
        if not self.neighbours or self.config.get("neighbour_tickers") is None:
            return None
        table = self._aligned if self._aligned is not None else self.adjacency
        table = table.to(asset.device)
        ids = torch.full(present.shape, -1, dtype=torch.long, device=asset.device)
        ids[row, slot] = asset
        if int(ids.max()) >= len(table):
            raise ConfigError(
                f"asset index {int(ids.max())} beyond the {len(table)} assets of the "
                f"neighbourhood: align_assets(panel tickers) before forecasting"
            )
        safe = ids.clamp(min=0)
        allowed = table[safe[:, :, None], safe[:, None, :]]  # (G, M, M)
        # Only rows of present assets are restricted: a padding row stays unrestricted so
        # that no softmax row is empty (its output is discarded anyway).
        blocked = present[:, :, None] & ~allowed
        return blocked.repeat_interleave(self.graph_heads, dim=0)

    def forward(
        self,
        x: torch.Tensor,
        return_attention: bool = False,
        group: torch.Tensor | None = None,
        asset: torch.Tensor | None = None,
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
        asset : torch.Tensor, optional
            (B,) the panel column of each window; with ``neighbours`` it restricts the
            attention to each asset's peers (without it, to nothing but the date).
        """
        rep, weights = self._encode(x)
        rep = self._mix_assets(rep, group, asset)
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
        """The encoder's estimate (see :meth:`AttentionLSTM.estimate_training_memory`,
        :meth:`TemporalTransformer.estimate_training_memory`) plus the attention across
        assets: per window, ``graph_heads`` scores and weights
        against every asset of its date (``assets_per_date``), and the padded
        representation, its projections and output (about ``6 D``)."""
        base = super().estimate_training_memory(
            batch_size, lookback, dtype_bytes, param_bytes=param_bytes
        )
        assets = check_int("assets_per_date", assets_per_date, 1)
        return base + batch_size * (2 * self.graph_heads * assets + 6 * self.width) * dtype_bytes

    def _mix_assets(
        self, rep: torch.Tensor, group: torch.Tensor | None, asset: torch.Tensor | None
    ) -> torch.Tensor:
        """Each window's representation plus what it reads from its date's assets."""
        if group is None:
            group = torch.zeros(len(rep), dtype=torch.long, device=rep.device)
        elif group.shape != (len(rep),):
            raise ConfigError(f"group must have one date per window, got {tuple(group.shape)}")
        padded, present, row, slot = pad_by_group(rep, group)
        mask = None if asset is None else self._graph_mask(asset, row, slot, present)
        mixed, _ = self.graph(
            padded,
            padded,
            padded,
            key_padding_mask=~present,
            attn_mask=mask,
            need_weights=False,
        )
        rep = rep + self.dropout(mixed[row, slot])  # skip connection: the asset's own state
        return rep if self.graph_norm is None else self.graph_norm(rep)


@register_model("gat")
class GraphAttentionLSTM(AssetAttention, AttentionLSTM):
    """The attention LSTM's encoder, then attention across the assets of each date.

    Takes every :class:`~alphaseq.models.AttentionLSTM` parameter plus:

    Parameters
    ----------
    graph_heads : int, default 4
        Heads of the attention across assets; must divide the representation width
        ``hidden_size * directions``.
    cell : {"lstm", "gru"}, default "lstm"
        The recurrent cell of the encoder.
    neighbours : int, default 0
        0: every asset attends to all assets of its date. ``k > 0``: to itself and its
        ``k`` most correlated peers of the training window (see
        :meth:`set_neighbourhood`).
    neighbour_tickers : list of str, optional
        The tickers the stored neighbourhood is indexed by (set by
        :meth:`set_neighbourhood`; part of ``config`` so that a checkpoint rebuilds it).

    Notes
    -----
    ``forward(x, group=...)`` needs the date of each window; without ``group`` the whole
    batch is taken as one date's cross-section (how :meth:`forward` is used on a single
    date). The temporal attention weights it returns are the encoder's: the graph step
    comes after them.
    """

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
        neighbours: int = 0,
        neighbour_tickers: list[str] | None = None,
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
        self._init_graph(graph_heads, neighbours, neighbour_tickers, dropout, layer_norm)
        self.config |= {"cell": cell}


@register_model("gat_transformer")
class GraphAttentionTransformer(AssetAttention, TemporalTransformer):
    """The temporal Transformer's encoder, then attention across the assets of each date.

    Takes every :class:`~alphaseq.models.TemporalTransformer` parameter plus
    ``graph_heads`` (must divide ``d_model``), ``neighbours`` and ``neighbour_tickers``
    as :class:`GraphAttentionLSTM` does; ``forward`` takes ``group`` and ``asset`` the
    same way, and the attention weights it returns are the encoder's last-day attention.
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
        graph_heads: int = 4,
        neighbours: int = 0,
        neighbour_tickers: list[str] | None = None,
        n_regression: int = 1,
        n_classification: int = 0,
        n_classes: int = 3,
    ) -> None:
        super().__init__(
            n_features,
            d_model=d_model,
            num_layers=num_layers,
            attention_heads=attention_heads,
            ff_size=ff_size,
            dropout=dropout,
            input_norm=input_norm,
            n_regression=n_regression,
            n_classification=n_classification,
            n_classes=n_classes,
        )
        self._init_graph(graph_heads, neighbours, neighbour_tickers, dropout, layer_norm=True)
