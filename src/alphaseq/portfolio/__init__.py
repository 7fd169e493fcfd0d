"""From forecasts (or simple rules) to portfolio weights at each rebalance."""

from alphaseq.portfolio.constraints import CHECK_TOLERANCE, PortfolioConstraints
from alphaseq.portfolio.constructors import (
    CONSTRUCTORS,
    HRP,
    ConstructorPolicy,
    EqualWeight,
    ForecastMu,
    MeanVariance,
    OptimizationFailed,
    PortfolioConstructor,
    Tilt,
    TopK,
    make_policy,
)
from alphaseq.portfolio.timing import TIMING_KEYS, timing_backtest, timing_positions
from alphaseq.portfolio.topk import default_top_k, momentum_scores, top_k_weights

__all__ = [
    "CHECK_TOLERANCE",
    "CONSTRUCTORS",
    "HRP",
    "TIMING_KEYS",
    "ConstructorPolicy",
    "EqualWeight",
    "ForecastMu",
    "MeanVariance",
    "OptimizationFailed",
    "PortfolioConstraints",
    "PortfolioConstructor",
    "Tilt",
    "TopK",
    "default_top_k",
    "make_policy",
    "momentum_scores",
    "timing_backtest",
    "timing_positions",
    "top_k_weights",
]
