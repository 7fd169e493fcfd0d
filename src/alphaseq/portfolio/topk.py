"""Top-k long-only portfolios: equal weight over the k best scores of each date."""

from __future__ import annotations

import numpy as np

from alphaseq.errors import ConfigError


def default_top_k(n_tickers: int) -> int:
    """A sensible k for a universe: ``max(5, N // 10)``, at most N."""
    return max(1, min(n_tickers, max(5, n_tickers // 10)))


def top_k_weights(scores: np.ndarray, k: int) -> np.ndarray:
    """Equal weights over the ``k`` highest finite scores of each row.

    Parameters
    ----------
    scores : numpy.ndarray
        (R, N) scores; NaN marks tickers that cannot be held on that date.
    k : int
        Positions per row; fewer when fewer tickers have a score (the rest stays
        in cash only if no ticker has a score at all).

    Returns
    -------
    numpy.ndarray
        (R, N) weights, each row summing to 1 (or 0 when no score is finite).
        Ties are broken by column order, deterministically.
    """
    if k < 1:
        raise ConfigError(f"top_k must be >= 1, got {k}")
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    # Sort descending with NaN last; a stable sort keeps ties in column order.
    keyed = np.where(finite, -scores, np.inf)
    order = np.argsort(keyed, axis=1, kind="stable")
    n_held = np.minimum(finite.sum(axis=1), k)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :], axis=1)
    chosen = (rank < n_held[:, None]) & finite
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(chosen, 1.0 / n_held[:, None], 0.0)
    return np.nan_to_num(weights)


def momentum_scores(
    close: np.ndarray, rows: np.ndarray, lookback: int = 252, skip: int = 21
) -> np.ndarray:
    """12-1 momentum at each row: ``close[t - skip] / close[t - lookback] - 1``.

    Uses prices up to t only; NaN where the ticker has no price at t (it cannot be
    traded) or at either end of the momentum window.
    """
    close = np.asarray(close, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full((len(rows), close.shape[1]), np.nan)
    ok = rows - lookback >= 0
    r = rows[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = close[r - skip] / close[r - lookback] - 1.0
    value[~np.isfinite(close[r])] = np.nan
    out[ok] = value
    return out
