"""From forecasts (or simple rules) to portfolio weights at each rebalance."""

from alphaseq._lazy import lazy_exports

# Imported on first use: a config's constructor specs need neither skfolio nor cvxpy.
_LAZY = {
    "CHECK_TOLERANCE": "alphaseq.portfolio.constraints",
    "PortfolioConstraints": "alphaseq.portfolio.constraints",
    "CONSTRUCTORS": "alphaseq.portfolio.constructors",
    "HRP": "alphaseq.portfolio.constructors",
    "ConstructorPolicy": "alphaseq.portfolio.constructors",
    "EqualWeight": "alphaseq.portfolio.constructors",
    "ForecastMu": "alphaseq.portfolio.constructors",
    "MeanVariance": "alphaseq.portfolio.constructors",
    "OptimizationFailed": "alphaseq.portfolio.constructors",
    "PortfolioConstructor": "alphaseq.portfolio.constructors",
    "PrecomputedCovariance": "alphaseq.portfolio.estimates",
    "RiskEstimates": "alphaseq.portfolio.estimates",
    "Tilt": "alphaseq.portfolio.constructors",
    "TopK": "alphaseq.portfolio.constructors",
    "make_policy": "alphaseq.portfolio.constructors",
    "CONSTRUCTOR_SPECS": "alphaseq.portfolio.specs",
    "ConstructorConfig": "alphaseq.portfolio.specs",
    "ConstructorSpec": "alphaseq.portfolio.specs",
    "TIMING_KEYS": "alphaseq.portfolio.timing",
    "timing_backtest": "alphaseq.portfolio.timing",
    "timing_positions": "alphaseq.portfolio.timing",
    "default_top_k": "alphaseq.portfolio.topk",
    "momentum_scores": "alphaseq.portfolio.topk",
    "top_k_weights": "alphaseq.portfolio.topk",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
