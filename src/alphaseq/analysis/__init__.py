"""Analysis of fitted models: temporal attention by lag, class and regression quality.

Attention profiles are indexed by lag (0 = the most recent day of the window); see
:mod:`alphaseq.analysis.attention`. The quality blocks return JSON-safe dicts for
``metrics.json``; see :mod:`alphaseq.analysis.classification`.
"""

from alphaseq.analysis.attention import (
    attention_summary,
    attention_weights,
    average_by_lag,
    plot_attention_heatmap,
    ticker_attention,
    top_lags,
)
from alphaseq.analysis.classification import (
    class_weights_balanced,
    classification_block,
    direction_accuracy,
    direction_summary,
    regression_block,
)

__all__ = [
    "attention_summary",
    "attention_weights",
    "average_by_lag",
    "class_weights_balanced",
    "classification_block",
    "direction_accuracy",
    "direction_summary",
    "plot_attention_heatmap",
    "regression_block",
    "ticker_attention",
    "top_lags",
]
