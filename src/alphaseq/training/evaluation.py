"""Validation figures computed on the device: per-date IC, rank IC and a top-quintile Sharpe.

All functions take flat per-sample tensors plus a ``group`` tensor (the date of each
sample) and work with segment sums, without Python loops over dates.
"""

from __future__ import annotations

import torch


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
