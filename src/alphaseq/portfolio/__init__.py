"""From forecasts (or simple rules) to portfolio weights at each rebalance."""

from alphaseq.portfolio.topk import default_top_k, momentum_scores, top_k_weights

__all__ = ["default_top_k", "momentum_scores", "top_k_weights"]
