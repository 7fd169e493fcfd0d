"""Quality of class forecasts (report, confusion matrix, baselines) and of regressions.

Every function returns JSON-safe values (Python ``int``, ``float``, ``str``, lists and
dicts, ``None`` where a figure is undefined), ready for ``metrics.json``. Pairs with a
non-finite value on either side (unknown labels are NaN in the label arrays) are left
out before anything is computed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "class_weights_balanced",
    "classification_block",
    "direction_accuracy",
    "direction_summary",
    "regression_block",
]


def _number(value: Any) -> float | None:
    """A finite Python float, or None for NaN and infinities."""
    value = float(value)
    return value if math.isfinite(value) else None


def _finite_pairs(a: Any, b: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays flattened to float64, keeping the pairs finite on both sides."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {a.shape} and {b.shape}")
    a, b = a.reshape(-1), b.reshape(-1)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _class_codes(values: np.ndarray, labels: Sequence[int], what: str) -> np.ndarray:
    """Integer class codes, refusing fractions and codes outside ``labels``."""
    codes = np.rint(values)
    if not np.array_equal(codes, values):
        raise ValueError(f"{what} holds non-integer class codes, e.g. {values[codes != values][0]}")
    unknown = np.setdiff1d(codes, np.asarray(labels, dtype=np.float64))
    if unknown.size:
        raise ValueError(f"{what} holds classes {unknown.tolist()} outside labels {list(labels)}")
    return codes.astype(np.int64)


def classification_block(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[int] = (0, 1, 2),
    names: Sequence[str] = ("DOWN", "FLAT", "UP"),
) -> dict[str, Any]:
    """Per-class precision/recall/F1, accuracy and the confusion matrix of class forecasts.

    Parameters
    ----------
    y_true, y_pred : array-like
        Realised and predicted class codes (same shape, any number of dimensions). Pairs
        with a non-finite value are left out.
    labels : sequence of int, default (0, 1, 2)
        The class codes, in report order (``(0, 1)`` for the ``direction`` label).
    names : sequence of str, default ("DOWN", "FLAT", "UP")
        Name of each code (``("DOWN", "UP")`` for the ``direction`` label).

    Returns
    -------
    dict
        * ``report``: one entry per class name with ``precision``, ``recall``, ``f1``
          and ``support``; ``accuracy``; ``macro_avg`` and ``weighted_avg`` with the
          same four keys. From :func:`sklearn.metrics.classification_report`, with
          ``zero_division=0`` (a class never predicted has precision 0).
        * ``confusion``: ``{"labels": names, "matrix": [[...]]}``, rows = true class,
          columns = predicted class, in ``labels`` order.
        * ``majority_class`` and ``majority_class_rate``: the most frequent true class
          and its share, the accuracy of always predicting it (the bar to beat).
        * ``n``: the number of pairs.

    Raises
    ------
    ValueError
        On mismatched shapes, no finite pair, or codes that are not in ``labels``.
    """
    # Imported here: scikit-learn costs ~0.8 s, which only classifier runs should pay.
    from sklearn.metrics import classification_report, confusion_matrix

    labels = [int(c) for c in labels]
    names = [str(n) for n in names]
    if len(labels) != len(names) or len(set(labels)) != len(labels):
        raise ValueError(f"labels {labels} and names {names} must be unique and match one-to-one")
    true, pred = _finite_pairs(y_true, y_pred, "classification_block")
    if true.size == 0:
        raise ValueError("classification_block: no pair of finite true and predicted classes")
    true = _class_codes(true, labels, "y_true")
    pred = _class_codes(pred, labels, "y_pred")

    # Every code is in `labels`, so sklearn reports "accuracy" (not "micro avg").
    raw = classification_report(
        true, pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )

    def scores(entry: dict[str, float]) -> dict[str, float | int]:
        return {
            "precision": float(entry["precision"]),
            "recall": float(entry["recall"]),
            "f1": float(entry["f1-score"]),
            "support": int(entry["support"]),
        }

    report: dict[str, Any] = {name: scores(raw[name]) for name in names}
    report["accuracy"] = float(raw["accuracy"])
    report["macro_avg"] = scores(raw["macro avg"])
    report["weighted_avg"] = scores(raw["weighted avg"])

    matrix = confusion_matrix(true, pred, labels=labels)
    support = matrix.sum(axis=1)
    majority = int(np.argmax(support))  # ties: the first class in `labels` order
    return {
        "report": report,
        "confusion": {"labels": names, "matrix": matrix.astype(int).tolist()},
        "majority_class": names[majority],
        "majority_class_rate": float(support[majority] / true.size),
        "n": int(true.size),
    }


def class_weights_balanced(y: Any, n_classes: int) -> list[float]:
    """Per-class loss weights ``n / (C * count_c)``, scikit-learn's "balanced" weights.

    Each class then contributes the same total weight to the loss, so a classifier
    cannot win by always predicting the most frequent class.

    Parameters
    ----------
    y : array-like
        Class codes in ``0 .. n_classes - 1`` (non-finite values, unknown labels, are
        ignored), e.g. the training labels.
    n_classes : int
        Number of classes C.

    Returns
    -------
    list of float
        C weights. A class absent from ``y`` gets 1.0: it adds no term to the loss, so
        its weight never matters for that data, and 1.0 (unlike 0 or infinity) stays
        neutral if the weights are reused on data where it does occur. When ``y`` has
        no finite value at all every weight is 1.0.

    Raises
    ------
    ValueError
        For ``n_classes < 1`` or codes that are not integers in ``0 .. n_classes - 1``.
    """
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    values = np.asarray(y, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    codes = _class_codes(values, range(n_classes), "y")
    counts = np.bincount(codes, minlength=n_classes)
    n = counts.sum()
    weights = np.ones(n_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = n / (n_classes * counts[present])
    return [float(w) for w in weights]


def regression_block(pred: Any, true: Any) -> dict[str, float | int | None]:
    """Error and correlation of regression forecasts, pooled over all samples.

    Parameters
    ----------
    pred, true : array-like
        Forecasts and realised values, same shape; pairs with a non-finite value are
        left out.

    Returns
    -------
    dict
        ``mse``, ``rmse``, ``mae``, ``correlation`` (Pearson over all pairs pooled,
        not per date: see :func:`alphaseq.backtest.forecast_metrics` for the
        cross-sectional IC) and ``n`` (pairs). A figure is None when undefined: all of
        them without pairs, the correlation with fewer than two pairs or a constant side.
    """
    p, y = _finite_pairs(pred, true, "regression_block")
    n = int(p.size)
    if n == 0:
        return {"mse": None, "rmse": None, "mae": None, "correlation": None, "n": 0}
    error = p - y
    mse = float(np.mean(error**2))
    correlation = None
    if n >= 2:
        dp, dy = p - p.mean(), y - y.mean()
        denominator = math.sqrt(float(np.sum(dp**2)) * float(np.sum(dy**2)))
        # A constant forecast (or label) has no correlation, not a zero one.
        if denominator > 0:
            correlation = _number(np.clip(np.sum(dp * dy) / denominator, -1.0, 1.0))
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(error))),
        "correlation": correlation,
        "n": n,
    }


def direction_accuracy(
    score: Any,
    realised: Any,
    threshold: float = 0.0,
    *,
    realised_threshold: float = 0.0,
) -> float | None:
    """Share of samples whose forecast direction matches the realised direction.

    A forecast says "up" when ``score > threshold`` and "down" when
    ``score < threshold``; the outcome is "up" when ``realised > realised_threshold``
    and "down" when below. Pairs exactly at either threshold (no direction) and pairs
    with a non-finite value are left out. The usual settings:

    ==========================================  =============  ====================
    forecast vs realised                        ``threshold``  ``realised_threshold``
    ==========================================  =============  ====================
    return forecast vs forward return           0.0            0.0
    P(up) vs ``direction`` label (0/1)          0.5            0.5
    P(up) - P(down) vs ``three_class`` (0/1/2)  0.0            1.0 (FLAT left out)
    ==========================================  =============  ====================

    Parameters
    ----------
    score : array-like
        Forecasts: a predicted return, a probability of "up" or a ranking score.
    realised : array-like
        Realised values or class codes, same shape as ``score``.
    threshold : float, default 0.0
        Boundary between "down" and "up" forecasts (0.5 for a probability).
    realised_threshold : float, default 0.0
        Boundary between "down" and "up" outcomes.

    Returns
    -------
    float or None
        The hit rate in [0, 1]; None when no pair has a direction on both sides.
    """
    s, r = _finite_pairs(score, realised, "direction_accuracy")
    forecast = np.sign(s - threshold)
    outcome = np.sign(r - realised_threshold)
    directed = (forecast != 0) & (outcome != 0)
    if not directed.any():
        return None
    return float(np.mean(forecast[directed] == outcome[directed]))


def direction_summary(
    score: Any,
    realised: Any,
    threshold: float = 0.0,
    *,
    realised_threshold: float = 0.0,
) -> dict[str, float | int | None]:
    """Direction accuracy with its naive baseline, the one definition every view shows.

    Parameters are those of :func:`direction_accuracy`.

    Returns
    -------
    dict
        * ``direction_accuracy``: :func:`direction_accuracy` of the pairs.
        * ``always_up_accuracy``: the accuracy of always forecasting "up" on the same
          pairs (the share of realised ups among them): the bar a forecast must clear.
        * ``n_directed``: pairs with a direction on both sides.
    """
    s, r = _finite_pairs(score, realised, "direction_summary")
    forecast = np.sign(s - threshold)
    outcome = np.sign(r - realised_threshold)
    directed = (forecast != 0) & (outcome != 0)
    if not directed.any():
        return {"direction_accuracy": None, "always_up_accuracy": None, "n_directed": 0}
    return {
        "direction_accuracy": float(np.mean(forecast[directed] == outcome[directed])),
        "always_up_accuracy": float(np.mean(outcome[directed] > 0)),
        "n_directed": int(directed.sum()),
    }
