"""Hierarchical risk parity from a given covariance: the seriation and the bisection.

The same allocation as skfolio's :class:`~skfolio.optimization.HierarchicalRiskParity`
with its defaults (Pearson distance of the returns, Ward linkage with optimal leaf
ordering, variance as the risk of a cluster, weight bounds applied at each split),
computed from a covariance that the caller estimated once and shares
(:class:`alphaseq.portfolio.estimates.RiskEstimates`).

skfolio evaluates the risk of every cluster through a ``Portfolio`` object (about half
a millisecond each, some 1,600 of them for 550 assets) and estimates the number of
clusters, which the ordering does not use; here a cluster's variance is one quadratic
form on a contiguous block of the reordered covariance. The tree, the ordering and the
estimators stay skfolio's and scipy's.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.hierarchy as sch
from skfolio.cluster import HierarchicalClustering
from skfolio.distance import PearsonDistance

__all__ = ["hrp_bisection", "hrp_ordering"]


def hrp_ordering(returns: np.ndarray) -> np.ndarray:
    """Order of the assets by the leaves of their Ward tree (optimal leaf ordering).

    Parameters
    ----------
    returns : numpy.ndarray
        Daily returns, (L, n), finite, every column with some variance.

    Returns
    -------
    numpy.ndarray
        A permutation of ``range(n)``, int64.
    """
    n = returns.shape[1]
    if n < 2:
        return np.arange(n)
    distance = PearsonDistance().fit(returns).distance_
    # One cluster asked for: the labels are not used, and estimating their number
    # costs a sixth of the fit; the linkage is the same whatever it is.
    tree = HierarchicalClustering(max_clusters=1).fit(distance)
    linkage = sch.optimal_leaf_ordering(tree.linkage_matrix_, tree.condensed_distance_)
    return sch.leaves_list(linkage).astype(np.int64)


def hrp_bisection(
    covariance: np.ndarray, ordering: np.ndarray, max_weight: float = 1.0
) -> np.ndarray:
    """Weights of the recursive bisection of hierarchical risk parity.

    The ordered assets are split in halves, recursively; each half's risk is the
    variance of its inverse-variance portfolio, and the weight of the pair is shared
    in inverse proportion to those risks (``alpha = 1 - risk_left / (risk_left +
    risk_right)`` to the left). Each split is then bounded so that neither half needs
    more than ``max_weight`` per asset, as skfolio bounds it.

    Parameters
    ----------
    covariance : numpy.ndarray
        Covariance of the assets, (n, n), with positive variances.
    ordering : numpy.ndarray
        The seriation, a permutation of ``range(n)`` (see :func:`hrp_ordering`).
    max_weight : float, default=1.0
        Upper bound of every weight; ``max_weight * n >= 1`` for the bound to be
        feasible.

    Returns
    -------
    numpy.ndarray
        Weights, (n,), in the order of ``covariance``, summing to 1.

    Raises
    ------
    ValueError
        On a variance that is not finite and positive, or a split of zero or
        non-finite risk.
    """
    n = len(ordering)
    ordered = covariance[np.ix_(ordering, ordering)]
    variances = np.diag(ordered).copy()
    if not np.isfinite(variances).all() or (variances <= 0).any():
        raise ValueError("HRP needs a finite, positive variance for every asset")
    inverse = 1.0 / variances
    weights = np.ones(n)
    clusters = [(0, n)]
    while clusters:
        halves = []
        for lo, hi in clusters:
            if hi - lo < 2:
                continue
            mid = lo + (hi - lo) // 2
            left = _cluster_variance(ordered, inverse, lo, mid)
            right = _cluster_variance(ordered, inverse, mid, hi)
            if not np.isfinite(left + right) or left + right == 0:
                raise ValueError("HRP cannot split clusters of zero or non-finite risk")
            alpha = 1.0 - left / (left + right)
            # Every asset of the cluster holds the same weight before its split.
            held = weights[lo]
            alpha = min(max_weight * (mid - lo) / held, alpha)
            alpha = 1.0 - min(max_weight * (hi - mid) / held, 1.0 - alpha)
            weights[lo:mid] *= alpha
            weights[mid:hi] *= 1.0 - alpha
            halves += [(lo, mid), (mid, hi)]
        clusters = halves
    out = np.empty(n)
    out[ordering] = weights
    return out


def _cluster_variance(ordered: np.ndarray, inverse: np.ndarray, lo: int, hi: int) -> float:
    """Variance of the inverse-variance portfolio of the assets ``lo:hi`` (ordered)."""
    w = inverse[lo:hi] / inverse[lo:hi].sum()
    return float(w @ ordered[lo:hi, lo:hi] @ w)
