"""Analysis of fitted models: temporal attention by lag, class and regression quality.

Attention profiles are indexed by lag (0 = the most recent day of the window); see
:mod:`alphaseq.analysis.attention`. The quality blocks return JSON-safe dicts for
``metrics.json``; see :mod:`alphaseq.analysis.classification`.
"""

from alphaseq._lazy import lazy_exports

# Imported on first use: the attention module needs torch, which importing a sibling
# such as alphaseq.analysis.classification or .factor should not load.
_LAZY = {
    "attention_summary": "alphaseq.analysis.attention",
    "attention_weights": "alphaseq.analysis.attention",
    "average_by_lag": "alphaseq.analysis.attention",
    "class_weights_balanced": "alphaseq.analysis.classification",
    "classification_block": "alphaseq.analysis.classification",
    "direction_accuracy": "alphaseq.analysis.classification",
    "direction_summary": "alphaseq.analysis.classification",
    "plot_attention_heatmap": "alphaseq.analysis.attention",
    "regression_block": "alphaseq.analysis.classification",
    "ticker_attention": "alphaseq.analysis.attention",
    "top_lags": "alphaseq.analysis.attention",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
