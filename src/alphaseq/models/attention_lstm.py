"""Recurrent forecasters with temporal attention: :class:`AttentionLSTM` and :class:`AttentionGRU`.

Architecture, for windows ``x`` of shape (B, L, F)::

    x -> LayerNorm(F)? -> LSTM/GRU (num_layers, bidirectional?) -> outputs (B, L, D)
    query = outputs[:, -1]                          (the last day's state)
    context = MultiHeadAttention(query, keys=values=outputs)   (B, D), weights (B, heads, L)
    rep = LayerNorm(query + context)?  -> dropout -> regression (B, H_reg)
                                                  -> classifier (B, H_cls, C)

with ``D = hidden_size * directions``. The attention is written out by hand: with a
single query the key and value projections can be folded into the query and into the
pooled outputs, so that no (B, L, D) key or value tensor is ever built (see
:meth:`AttentionLSTM._attend`), and the weights come out of the same pass.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from alphaseq.errors import ConfigError
from alphaseq.models._cpu_precision import run_recurrent
from alphaseq.models.base import (
    ForecastModel,
    ModelOutput,
    check_bool,
    check_fraction,
    check_int,
    register_model,
)

__all__ = ["AttentionGRU", "AttentionLSTM"]


@register_model("lstm")
class AttentionLSTM(ForecastModel):
    """LSTM over the lookback window with multi-head temporal attention from the last day.

    Parameters
    ----------
    n_features : int
        Number of input features F.
    hidden_size : int, default 128
        Hidden units per direction H.
    num_layers : int, default 2
        Stacked recurrent layers.
    dropout : float, default 0.3
        Dropout between recurrent layers (when ``num_layers > 1``) and on the final
        representation, before the heads.
    bidirectional : bool, default False
        Also run the window backwards; the state width becomes ``D = 2 * hidden_size``.
        Every window only holds past data, so this is no look-ahead.
    layer_norm : bool, default True
        LayerNorm over the residual ``last + context`` representation.
    input_norm : bool, default False
        Also LayerNorm over the features of each day at the input (skipped when
        ``n_features == 1``, where it would map every value to zero). Off by default:
        features are already scaled, and it costs ~15 % of a GPU training step.
    attention_heads : int, default 8
        Attention heads; ``D`` must be divisible by it. 0 disables attention: the
        representation is then the last day's state (layer-normed when ``layer_norm``,
        so that an ablation differs only by the attention).
    n_regression : int, default 1
        Regression outputs (one per regression horizon); 0 for none.
    n_classification : int, default 0
        Classification horizons; 0 for none.
    n_classes : int, default 3
        Classes per classification horizon.

    Attributes
    ----------
    config : dict
        The hyper-parameters above, JSON-ready: ``build_model(type(m).registry_name,
        **m.config)`` rebuilds the same architecture.
    rnn : torch.nn.LSTM or torch.nn.GRU
        The recurrent layers (the fused cuDNN/ATen kernels: no Python loop over days).
    regression, classifier : torch.nn.Linear or None
        The output heads.

    Raises
    ------
    ConfigError
        For a value out of range, ``D`` not divisible by ``attention_heads``, or no head.

    Examples
    --------
    >>> import torch
    >>> from alphaseq.models import AttentionLSTM
    >>> model = AttentionLSTM(5, hidden_size=16, attention_heads=4, n_classification=2)
    >>> out = model(torch.randn(8, 30, 5), return_attention=True)
    >>> out.regression.shape, out.logits.shape, out.attention.shape
    (torch.Size([8, 1]), torch.Size([8, 2, 3]), torch.Size([8, 4, 30]))
    """

    #: The recurrent module class (subclasses swap the cell).
    _rnn_class: ClassVar[type[nn.RNNBase]] = nn.LSTM

    def __init__(
        self,
        n_features: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.3,
        bidirectional: bool = False,
        layer_norm: bool = True,
        input_norm: bool = False,
        attention_heads: int = 8,
        n_regression: int = 1,
        n_classification: int = 0,
        n_classes: int = 3,
    ) -> None:
        super().__init__()
        self.config = {
            "n_features": check_int("n_features", n_features, 1),
            "hidden_size": check_int("hidden_size", hidden_size, 1),
            "num_layers": check_int("num_layers", num_layers, 1),
            "dropout": check_fraction("dropout", dropout),
            "bidirectional": check_bool("bidirectional", bidirectional),
            "layer_norm": check_bool("layer_norm", layer_norm),
            "input_norm": check_bool("input_norm", input_norm),
            "attention_heads": check_int("attention_heads", attention_heads, 0),
            "n_regression": check_int("n_regression", n_regression, 0),
            "n_classification": check_int("n_classification", n_classification, 0),
            "n_classes": check_int("n_classes", n_classes, 2),
        }
        self.n_features = int(n_features)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.directions = 2 if bidirectional else 1
        self.heads = int(attention_heads)
        width = self.hidden_size * self.directions
        self.width = width
        if self.heads and width % self.heads:
            raise ConfigError(
                f"attention_heads={self.heads} must divide the recurrent state width "
                f"hidden_size * directions = {self.hidden_size} * {self.directions} = {width}; "
                f"choose e.g. attention_heads in {_divisors(width)} or change hidden_size"
            )

        # Off by default: features arrive scaled by the training-window scaler, and a
        # per-day norm across (few, unlike) features mixes them while costing ~15 % of
        # a GPU step (its backward over B x L rows of F values is slow).
        self.input_norm = nn.LayerNorm(n_features) if input_norm and n_features > 1 else None
        self.rnn = self._rnn_class(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # torch warns (and does nothing) for dropout with a single layer.
            dropout=float(dropout) if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self._init_recurrent_weights()

        if self.heads:
            self.head_dim = width // self.heads
            self.query = nn.Linear(width, width)
            # A key bias adds the same q.b to every day's score and cancels in the softmax.
            self.key = nn.Linear(width, width, bias=False)
            self.value = nn.Linear(width, width)
            self.out = nn.Linear(width, width)
        self.output_norm = nn.LayerNorm(width) if layer_norm else None
        self.dropout = nn.Dropout(float(dropout))
        self._init_heads(width, int(n_regression), int(n_classification), int(n_classes))

    def _init_recurrent_weights(self) -> None:
        """Start the LSTM's forget gates open (bias 1) so that memory lasts from the start."""
        if self._rnn_class is not nn.LSTM:
            return
        h = self.hidden_size
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):  # gate order: input, forget, cell, output
                    param[h : 2 * h].fill_(1.0)
                elif name.startswith("bias_hh"):
                    param[h : 2 * h].fill_(0.0)

    # ------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, return_attention: bool = False) -> ModelOutput:
        """Forecast from a batch of windows.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, F) windows, oldest day first; cast to the parameters' floating type.
        return_attention : bool, default False
            Also return the attention weights (B, heads, L) (None without attention).

        Returns
        -------
        ModelOutput
            ``regression`` (B, n_regression) and/or ``logits`` (B, n_classification,
            n_classes), and ``attention`` when asked for.
        """
        rep, weights = self._encode(x)
        regression, logits = self._apply_heads(self.dropout(rep))
        return ModelOutput(
            regression=regression, logits=logits, attention=weights if return_attention else None
        )

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each window's representation (B, D) and its temporal attention (B, heads, L)
        (None without attention): everything before the output heads."""
        x = self._check_input(x)
        if self.input_norm is not None:
            x = self.input_norm(x)
        outputs = run_recurrent(self.rnn, x)  # (B, L, D)
        last = outputs[:, -1]
        weights = None
        if self.heads:
            context, weights = self._attend(last, outputs)
            rep = last + context  # skip connection: attention refines the last state
        else:
            rep = last
        if self.output_norm is not None:
            rep = self.output_norm(rep)
        return rep, weights

    def _attend(
        self, last: torch.Tensor, outputs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Multi-head attention of the single query ``last`` (B, D) over ``outputs`` (B, L, D).

        Identical to :class:`torch.nn.MultiheadAttention` with the last day as the query,
        but cheaper: for head h with projections ``W_k[h]``, ``W_v[h]`` (d x D),

        * score_l = q_h . (W_k[h] o_l) = (W_k[h]^T q_h) . o_l, so the key projection is
          applied once to the query instead of to all L outputs;
        * context_h = sum_l w_l (W_v[h] o_l + b_v[h]) = W_v[h] (sum_l w_l o_l) + b_v[h],
          since the weights sum to one, so the value projection is applied to H pooled
          vectors instead of to all L outputs.

        This costs O(B L D heads) instead of O(B L D^2) and stores no (B, L, D) tensor
        besides ``outputs``, which the recurrent layer keeps anyway.
        """
        batch, width = last.shape
        heads, dim = self.heads, self.head_dim
        q = self.query(last).view(batch, heads, dim)
        w_k = self.key.weight.view(heads, dim, width)
        q_in = torch.einsum("bhd,hdw->bhw", q, w_k)  # query pulled back into output space
        scores = torch.einsum("bhw,blw->bhl", q_in, outputs) / math.sqrt(dim)
        # Softmax in at least float32: under bf16 autocast the weights are then exact
        # enough to sum to one and to be reported.
        weights = scores.softmax(-1, dtype=torch.promote_types(scores.dtype, torch.float32))
        pooled = torch.einsum("bhl,blw->bhw", weights.to(outputs.dtype), outputs)
        w_v = self.value.weight.view(heads, dim, width)
        context = torch.einsum("bhw,hdw->bhd", pooled, w_v).reshape(batch, width)
        context = context + self.value.bias
        return self.out(context), weights

    # ------------------------------------------------------------------------- memory
    def estimate_training_memory(
        self,
        batch_size: int,
        lookback: int,
        dtype_bytes: int = 4,
        *,
        param_bytes: int | None = None,
    ) -> int:
        """Estimate the peak memory of one Adam training step, in bytes.

        An estimate, not a measurement: it counts the large tensors and ignores
        allocator rounding and fragmentation. It is linear in ``batch_size`` (a fixed
        part for the parameters plus a per-window part), so that a batch-size finder
        can solve for the largest batch within a memory budget. On an H100 (cuDNN 9,
        float32 and bf16 autocast, hidden sizes 32 to 512, 1 to 3 layers, lookbacks
        60 to 250) it was within 0.8x to 1.3x of ``torch.cuda.max_memory_allocated``.

        Counted:

        * parameters, their gradients and Adam's two moments (``4 x P x param_bytes``),
          plus a low-precision copy of the weights when ``dtype_bytes < param_bytes``
          (autocast caches one);
        * per recurrent layer, direction, window and day, the activations kept for
          backward: the gates (4H for the LSTM, 3H for the GRU), the hidden state and
          the LSTM's cell state or the GRU's candidate terms (``W_hn h + b_hn`` and its
          reset-gated product): 6H for both cells;
        * the recurrent kernel's temporary workspace per direction, window and day:
          ``min(24 H, 3072)`` values, as measured with cuDNN (the largest item for one
          or two layers);
        * the last layer's output (B, L, D), the input windows and the input
          LayerNorm's output (B, L, F), and the attention's (B, heads, L) scores and
          weights and (B, heads, D) projected queries and pooled states.

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

        h, f, width = self.hidden_size, self.n_features, self.width
        per_day = self.num_layers * self.directions * 6 * h  # kept for backward
        per_day += self.directions * min(_WORKSPACE_PER_UNIT * h, _WORKSPACE_MAX)  # workspace
        per_day += width + 2 * f  # last layer's output; windows and their normalised copy
        per_window = per_day * lookback
        if self.heads:
            per_window += 2 * self.heads * lookback + 3 * self.heads * width
        per_window += 8 * width  # last state, context, representation, norms, dropout
        return fixed + batch_size * per_window * dtype_bytes


#: Temporary workspace of the fused recurrent kernel per direction, window and day, in
#: values: measured with cuDNN 9 on an H100, in float32 and bf16 alike, it grows like
#: 23-25 per hidden unit up to H = 128 and then stays near 2300-3300 (H = 256, 512).
_WORKSPACE_PER_UNIT = 24
_WORKSPACE_MAX = 3072


@register_model("gru")
class AttentionGRU(AttentionLSTM):
    """:class:`AttentionLSTM` with GRU cells: same parameters, attention and heads.

    A GRU has three gate blocks instead of four and no cell state: about 25 % fewer
    recurrent parameters and less memory per window, often as accurate on noisy
    financial series.
    """

    _rnn_class: ClassVar[type[nn.RNNBase]] = nn.GRU


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0][:8]
