"""Normalisation of features: per date across tickers, or per feature over a fitted range.

Cross-sectional normalisation only looks at one date at a time, so it is causal
by construction. :class:`FeatureScaler` learns its statistics from the rows it is
fitted on (the training window) and nothing else.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from alphaseq.errors import ConfigError

#: Scale of a median absolute deviation that makes it a standard deviation for normal data.
MAD_TO_STD = 1.4826
CROSS_SECTION_METHODS = ("rank", "robust_zscore")


def cross_sectional_rank(values: np.ndarray) -> np.ndarray:
    """Percentile rank of each ticker among the finite values of its date, centred.

    ``(rank / n - 0.5) * sqrt(12)`` with average ranks for ties, which has about unit
    variance (Qlib's ``CSRankNorm`` convention). NaN stays NaN.

    Parameters
    ----------
    values : numpy.ndarray
        (T, N) or (T, N, F); ranks are taken over axis 1.
    """
    values = np.asarray(values)
    from scipy.stats import rankdata  # here: scipy.stats costs ~0.7 s to import

    ranks = rankdata(values, axis=1, nan_policy="omit", method="average")
    count = np.isfinite(values).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ranks / count - 0.5) * np.sqrt(12.0)
    return np.where(np.isfinite(values), out, np.nan).astype(values.dtype, copy=False)


def cross_sectional_robust_zscore(values: np.ndarray, clip: float = 3.0) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)`` per date over finite tickers, clipped to ``+-clip``.

    A date whose MAD is 0 gives 0 for every finite value.
    """
    values = np.asarray(values)
    with np.errstate(invalid="ignore"):
        median = _nanmedian(values, axis=1)
        mad = _nanmedian(np.abs(values - median), axis=1) * MAD_TO_STD
        z = np.where(mad > 0, (values - median) / np.where(mad > 0, mad, 1.0), 0.0)
    z = np.clip(z, -clip, clip)
    return np.where(np.isfinite(values), z, np.nan).astype(values.dtype, copy=False)


def cross_sectional_normalize(values: np.ndarray, method: str) -> np.ndarray:
    """Apply a cross-sectional method by name: ``"rank"`` or ``"robust_zscore"``."""
    if method == "rank":
        return cross_sectional_rank(values)
    if method == "robust_zscore":
        return cross_sectional_robust_zscore(values)
    raise ConfigError(
        f"unknown cross-sectional normalisation {method!r}; allowed: {list(CROSS_SECTION_METHODS)}"
    )


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    # All-NaN slices are normal (a date before any ticker starts): no warning, NaN result.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=axis, keepdims=True)


class FeatureScaler:
    """Per-feature scaling whose statistics come from a training range only.

    Parameters
    ----------
    method : {"robust", "standard"}
        ``robust``: centre by the median, scale by 1.4826 * MAD;
        ``standard``: centre by the mean, scale by the standard deviation.
    clip : float or None, default 3.0
        Clip scaled values to ``+-clip`` (None: no clipping).

    Attributes
    ----------
    center_ : numpy.ndarray
        (F,) centre of each feature, learned by :meth:`fit`.
    scale_ : numpy.ndarray
        (F,) scale of each feature (1 where the training data had no spread).
    n_samples_ : numpy.ndarray
        (F,) number of finite cells each statistic was computed from.
    """

    def __init__(self, method: Literal["robust", "standard"] = "robust", clip: float | None = 3.0):
        self.method = method
        self.clip = clip

    def fit(self, values: np.ndarray, rows: slice | np.ndarray | None = None) -> FeatureScaler:
        """Learn the statistics from ``values[rows]`` (the training dates) only.

        Parameters
        ----------
        values : numpy.ndarray
            (T, N, F) features.
        rows : slice or array of int, optional
            The date rows to fit on; all rows when omitted.
        """
        if self.method not in ("robust", "standard"):
            raise ConfigError(
                f"unknown scaler method {self.method!r}; allowed: ['robust', 'standard']"
            )
        block = np.asarray(values if rows is None else values[rows], dtype=np.float64)
        flat = block.reshape(-1, block.shape[-1])
        finite = np.isfinite(flat)
        self.n_samples_ = finite.sum(axis=0)
        if (self.n_samples_ == 0).any():
            empty = np.flatnonzero(self.n_samples_ == 0).tolist()
            raise ConfigError(
                f"cannot fit the scaler: features at positions {empty} have no finite value "
                f"in the fitting rows"
            )
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.method == "robust":
                center = np.nanmedian(flat, axis=0)
                scale = np.nanmedian(np.abs(flat - center), axis=0) * MAD_TO_STD
            else:
                center = np.nanmean(flat, axis=0)
                scale = np.nanstd(flat, axis=0)
        self.center_ = center
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale ``values`` (..., F) with the fitted statistics; NaN stays NaN."""
        if not hasattr(self, "center_"):
            raise ConfigError("FeatureScaler.transform called before fit")
        out = (np.asarray(values, dtype=np.float64) - self.center_) / self.scale_
        if self.clip is not None:
            out = np.clip(out, -self.clip, self.clip)
        return out.astype(np.float32)

    def fit_transform(self, values: np.ndarray, rows: slice | np.ndarray | None = None):
        """Fit on ``values[rows]``, then transform all of ``values``."""
        return self.fit(values, rows).transform(values)

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, safe to store in a checkpoint."""
        return {
            "method": self.method,
            "clip": self.clip,
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "n_samples": self.n_samples_.tolist(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FeatureScaler:
        """Rebuild a fitted scaler from :meth:`state_dict`."""
        scaler = cls(method=state["method"], clip=state["clip"])
        scaler.center_ = np.asarray(state["center"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        scaler.n_samples_ = np.asarray(state["n_samples"], dtype=np.int64)
        return scaler

    def __repr__(self) -> str:
        return f"FeatureScaler(method={self.method!r}, clip={self.clip!r})"
