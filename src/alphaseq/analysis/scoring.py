"""Forecast scoring on the device: per-date IC, rank IC, a top-quintile Sharpe, and the
validation scorer the trainer is given (it knows nothing of finance itself).

All functions take flat per-sample tensors plus a ``group`` tensor (the date of each
sample) and work with segment sums, without Python loops over dates.
"""

from __future__ import annotations

import torch

from alphaseq.models.base import ModelOutput
from alphaseq.windows import WindowDataset


def _segments(group: torch.Tensor) -> tuple[torch.Tensor, int]:
    _, inverse = torch.unique(group, return_inverse=True)
    return inverse, int(inverse.max()) + 1 if len(inverse) else 0


def _segment_sum(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def per_date_correlation(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    """Pearson correlation between ``pred`` and ``target`` within each date.

    Returns one value per date that has at least two samples and non-zero variance
    on both sides; other dates are left out.
    """
    pred, target = pred.double(), target.double()
    index, n = _segments(group)
    count = _segment_sum(torch.ones_like(pred), index, n)
    mean_p = _segment_sum(pred, index, n) / count
    mean_t = _segment_sum(target, index, n) / count
    dp = pred - mean_p[index]
    dt = target - mean_t[index]
    cov = _segment_sum(dp * dt, index, n)
    var_p = _segment_sum(dp * dp, index, n)
    var_t = _segment_sum(dt * dt, index, n)
    ok = (count >= 2) & (var_p > 0) & (var_t > 0)
    return (cov[ok] / torch.sqrt(var_p[ok] * var_t[ok])).float()


def per_date_rank(values: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Rank (0-based, ties broken by position) of each value within its date."""
    # Sort by value, then stably by group: within a group, values end up ascending.
    order = torch.argsort(values, stable=True)
    order = order[torch.argsort(group[order], stable=True)]
    sorted_group = group[order]
    position = torch.arange(len(values), device=values.device)
    start = torch.ones_like(sorted_group, dtype=torch.bool)
    start[1:] = sorted_group[1:] != sorted_group[:-1]
    first = torch.cummax(torch.where(start, position, 0), dim=0).values
    ranks = torch.empty_like(position)
    ranks[order] = position - first
    return ranks.to(values.dtype)


def top_quantile_returns(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor, quantile: float = 0.2
) -> torch.Tensor:
    """Per date, the mean ``target`` of the top ``quantile`` of samples ranked by ``pred``."""
    index, n = _segments(group)
    count = _segment_sum(torch.ones_like(pred, dtype=torch.float64), index, n)
    rank_from_top = count[index] - 1 - per_date_rank(pred.double(), group)
    keep = rank_from_top < torch.clamp(torch.ceil(count[index] * quantile), min=1)
    chosen = _segment_sum(keep.double(), index, n)
    total = _segment_sum(torch.where(keep, target.double(), 0.0), index, n)
    return (total / chosen).float()


def validation_metrics(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> dict[str, float]:
    """IC, rank IC (means over dates) and the Sharpe ratio of a top-quintile portfolio.

    ``sharpe`` is mean / std over dates of the equal-weighted top-20 % forward return,
    not annualised (the label horizon sets its scale); 0 when undefined.
    """
    finite = torch.isfinite(pred) & torch.isfinite(target)
    pred, target, group = pred[finite], target[finite], group[finite]
    if len(pred) == 0:
        return {"ic": float("nan"), "rank_ic": float("nan"), "sharpe": float("nan")}
    ic = per_date_correlation(pred, target, group)
    rank_ic = per_date_correlation(
        per_date_rank(pred.double(), group), per_date_rank(target.double(), group), group
    )
    top = top_quantile_returns(pred, target, group)
    sharpe = (top.mean() / top.std()).item() if len(top) > 1 and top.std() > 0 else 0.0
    return {
        "ic": ic.mean().item() if len(ic) else float("nan"),
        "rank_ic": rank_ic.mean().item() if len(rank_ic) else float("nan"),
        "sharpe": sharpe,
    }


def signal_score(output: ModelOutput, column: int = 0) -> torch.Tensor:
    """One ranking score per sample from output head ``column``.

    The regression output of that head when the model has regression outputs, else
    for a classifier P(last class) - P(first class) of that head (P(up) - P(down)).
    """
    if output.regression is not None:
        return output.regression[:, column].float()
    if output.logits is None:
        raise ValueError("the model returned neither regression outputs nor logits")
    probs = torch.softmax(output.logits[:, column].float(), dim=-1)
    return probs[:, -1] - probs[:, 0]


def prediction_score(output: ModelOutput) -> torch.Tensor:
    """The first head's score (:func:`signal_score` of column 0)."""
    return signal_score(output, 0)


class SignalScorer:
    """Validation scorer of one head: IC, rank IC and top-quintile Sharpe against its truth.

    The caller resolves which head is the signal (:func:`alphaseq.forecaster.resolve_signal`)
    so that early stopping, the tuning objective and the portfolio all use the same one.

    Parameters
    ----------
    prediction_column : int, default 0
        Output head scored (see :func:`signal_score`).
    target_column : int, default 0
        Label column it is scored against.
    """

    def __init__(self, prediction_column: int = 0, target_column: int = 0) -> None:
        self.prediction_column = prediction_column
        self.target_column = target_column

    def __repr__(self) -> str:
        return f"SignalScorer({self.prediction_column}, {self.target_column})"

    def __call__(self, output: ModelOutput, data: WindowDataset) -> dict[str, float]:
        target = data.labels[data.t, data.i][:, self.target_column].float()
        return validation_metrics(signal_score(output, self.prediction_column), target, data.t)
