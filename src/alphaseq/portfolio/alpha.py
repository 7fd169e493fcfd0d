"""Forecast scores in return units, for constructors that read forecasts as returns.

A model trained on market-neutral targets (per-date ranks or z-scores, see
``labels.cross_section``) forecasts a score, not a return. Mean-variance needs expected
returns; the standard bridge is Grinold's rule (Grinold & Kahn, *Active Portfolio
Management*, 2000, ch. 10): ``alpha = IC * dispersion * z``, where ``z`` is the
forecast's cross-sectional z-score, ``dispersion`` the cross-sectional spread of the
returns over the forecast horizon and ``IC`` the forecast's skill. Each input is known
when the portfolio is formed: the skill measured on the fold's validation window, the
dispersion of the returns that ended at the rebalance.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grinold_alpha", "return_dispersion"]


def return_dispersion(close: np.ndarray, rows: np.ndarray, horizon: int) -> np.ndarray:
    """Cross-sectional standard deviation of the ``horizon``-day returns ending at each row.

    Parameters
    ----------
    close : numpy.ndarray
        Close prices (T, N), NaN where missing.
    rows : numpy.ndarray
        Rebalance rows, (R,).
    horizon : int
        Days of each return, >= 1.

    Returns
    -------
    numpy.ndarray
        (R,) population standard deviation over the tickers with both closes; NaN for a
        row with fewer than two such tickers or before ``horizon`` days of history.
    """
    close = np.asarray(close, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), np.nan)
    for r, row in enumerate(rows):
        if row < horizon:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            moves = close[row] / close[row - horizon] - 1.0
        moves = moves[np.isfinite(moves)]
        if len(moves) >= 2:
            out[r] = moves.std()
    return out


def grinold_alpha(scores: np.ndarray, skill: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """Expected returns ``skill * dispersion * z`` from forecast scores (Grinold's rule).

    Parameters
    ----------
    scores : numpy.ndarray
        Forecasts (R, N) at each rebalance, NaN where there is none.
    skill : numpy.ndarray
        (R,) information coefficient behind each row's forecasts; negative or unknown
        skill counts as none (alpha 0: the forecasts are not trusted).
    dispersion : numpy.ndarray
        (R,) cross-sectional spread of returns over the forecast horizon.

    Returns
    -------
    numpy.ndarray
        (R, N) expected returns over the horizon, NaN where the score is NaN; 0 on a
        row whose scores do not vary or whose skill or dispersion is unknown.
    """
    scores = np.asarray(scores, dtype=np.float64)
    known = np.isfinite(scores)
    count = known.sum(axis=1, keepdims=True)
    filled = np.where(known, scores, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    spread = np.sqrt(
        np.where(known, (filled - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(spread > 0, (filled - mean) / np.where(spread > 0, spread, 1.0), 0.0)
    scale = np.clip(np.nan_to_num(np.asarray(skill, np.float64), nan=0.0), 0.0, None)
    scale = scale * np.nan_to_num(np.asarray(dispersion, np.float64), nan=0.0)
    return np.where(known, z * scale[:, None], np.nan)
