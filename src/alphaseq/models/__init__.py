"""Forecasting models, built by name from a registry.

Every model maps (B, L, F) windows to a :class:`ModelOutput` and stores its
hyper-parameters in ``model.config`` so that ``build_model(name, **model.config)``
rebuilds it. Built-in names: ``"lstm"`` (:class:`AttentionLSTM`), ``"gru"``
(:class:`AttentionGRU`), ``"transformer"`` (:class:`TemporalTransformer`, self-attention
over the window), ``"gat"`` (:class:`GraphAttentionLSTM`, attention across the
assets of each date), ``"gat_transformer"`` (the same on the Transformer's encoder)
and ``"linear"`` (:class:`LinearBaseline`).
"""

from alphaseq.models.attention_lstm import AttentionGRU, AttentionLSTM
from alphaseq.models.base import (
    MODELS,
    ForecastModel,
    ModelOutput,
    build_model,
    count_parameters,
    register_model,
)
from alphaseq.models.graph_attention import GraphAttentionLSTM, GraphAttentionTransformer
from alphaseq.models.linear import LinearBaseline
from alphaseq.models.transformer import TemporalTransformer

__all__ = [
    "MODELS",
    "AttentionGRU",
    "AttentionLSTM",
    "ForecastModel",
    "GraphAttentionLSTM",
    "GraphAttentionTransformer",
    "LinearBaseline",
    "ModelOutput",
    "TemporalTransformer",
    "build_model",
    "count_parameters",
    "register_model",
]
