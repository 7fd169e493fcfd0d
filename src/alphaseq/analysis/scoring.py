"""Forecast scoring on the device: per-date IC, rank IC, a top-quintile Sharpe, and the
validation scorer the trainer is given (it knows nothing of finance itself).

All functions take flat per-sample tensors plus a ``group`` tensor (the date of each
sample) and work with segment sums, without Python loops over dates.
"""

from __future__ import annotations

import numpy as np
import torch

from alphaseq.analysis.factor import newey_west_mean
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
    return dated_correlation(pred, target, group)[1]


def dated_correlation(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`per_date_correlation` with the dates it kept: ``(dates, correlations)``,
    dates ascending."""
    pred, target = pred.double(), target.double()
    dates, index = torch.unique(group, return_inverse=True)
    n = len(dates)
    count = _segment_sum(torch.ones_like(pred), index, n)
    mean_p = _segment_sum(pred, index, n) / count
    mean_t = _segment_sum(target, index, n) / count
    dp = pred - mean_p[index]
    dt = target - mean_t[index]
    cov = _segment_sum(dp * dt, index, n)
    var_p = _segment_sum(dp * dp, index, n)
    var_t = _segment_sum(dt * dt, index, n)
    ok = (count >= 2) & (var_p > 0) & (var_t > 0)
    return dates[ok], (cov[ok] / torch.sqrt(var_p[ok] * var_t[ok])).float()


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


def validation_series(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-date IC and rank IC: ``{"ic": (dates, values), "rank_ic": (dates, values)}``.

    Non-finite samples are dropped first; dates without two distinct values on both
    sides are left out (see :func:`dated_correlation`).
    """
    finite = torch.isfinite(pred) & torch.isfinite(target)
    pred, target, group = pred[finite], target[finite], group[finite]
    ranks = (per_date_rank(pred.double(), group), per_date_rank(target.double(), group))
    return {
        "ic": dated_correlation(pred, target, group),
        "rank_ic": dated_correlation(*ranks, group),
    }


def _mean_and_error(values: torch.Tensor, lags: int) -> tuple[float, float]:
    summary = newey_west_mean(values.double().cpu().numpy(), lags)
    mean, error = summary["mean"], summary["std_error"]
    return (
        float("nan") if mean is None else float(mean),
        float("nan") if error is None else float(error),
    )


def _gain_t(gain: np.ndarray, lags: int) -> float:
    """Newey–West t-statistic of a per-date gain; 0 for no gain at all (the same
    figures), NaN when undefined."""
    if len(gain) and not np.any(gain):
        return 0.0
    t_stat = newey_west_mean(gain, lags)["t_stat"]
    return float("nan") if t_stat is None else float(t_stat)


def validation_metrics(
    pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor, *, lags: int = 0
) -> dict[str, float]:
    """IC, rank IC (means over dates) with their standard errors, and the Sharpe ratio
    of a top-quintile portfolio.

    ``ic_se`` and ``rank_ic_se`` are Newey–West standard errors of the means with
    ``lags`` autocovariances: a label ``h`` days ahead makes neighbouring dates'
    figures share ``h - 1`` days, so pass ``lags = h - 1``. They say how precisely a
    validation window knows the figure. ``sharpe`` is mean / std over dates of the
    equal-weighted top-20 % forward return, not annualised (the label horizon sets its
    scale); 0 when undefined.
    """
    finite = torch.isfinite(pred) & torch.isfinite(target)
    pred, target, group = pred[finite], target[finite], group[finite]
    if len(pred) == 0:
        nan = float("nan")
        return {"ic": nan, "ic_se": nan, "rank_ic": nan, "rank_ic_se": nan, "sharpe": nan}
    figures: dict[str, float] = {}
    for name, (_, values) in validation_series(pred, target, group).items():
        figures[name], figures[f"{name}_se"] = _mean_and_error(values, lags)
    top = top_quantile_returns(pred, target, group)
    sharpe = (top.mean() / top.std()).item() if len(top) > 1 and top.std() > 0 else 0.0
    return figures | {"sharpe": sharpe}


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
    """Validation scorer of one head: IC, rank IC and top-quintile Sharpe against its truth,
    and whether each epoch's IC and rank IC beat the first epoch's beyond noise.

    The caller resolves which head is the signal (:func:`alphaseq.forecaster.resolve_signal`)
    so that early stopping, the tuning objective and the portfolio all use the same one.

    Besides :func:`validation_metrics` (with ``lags = overlap - 1``), every call after the
    first also returns ``ic_gain_t`` and ``rank_ic_gain_t``: the Newey–West t-statistic
    of the per-date difference between this call's figure and the first call's, on the
    dates both scored (omitted when they share none). It is a paired test, so the noise
    the two epochs share (the same validation dates) cancels. A best epoch whose gain
    has ``t < 2`` was chosen by validation noise as much as by learning. The first
    call's series is the scorer's state (:meth:`state_dict`), kept in training
    checkpoints so a resumed run compares with the same epoch.

    Parameters
    ----------
    prediction_column : int, default 0
        Output head scored (see :func:`signal_score`).
    target_column : int, default 0
        Label column it is scored against.
    overlap : int, default 1
        Days each label spans (its horizon): neighbouring dates' figures are correlated
        over ``overlap - 1`` lags.
    """

    def __init__(self, prediction_column: int = 0, target_column: int = 0, overlap: int = 1):
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 1:
            raise ValueError(f"overlap must be an integer >= 1, got {overlap!r}")
        self.prediction_column = prediction_column
        self.target_column = target_column
        self.overlap = overlap
        self._first: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def __repr__(self) -> str:
        return f"SignalScorer({self.prediction_column}, {self.target_column}, {self.overlap})"

    def __call__(self, output: ModelOutput, data: WindowDataset) -> dict[str, float]:
        target = data.labels[data.t, data.i][:, self.target_column].float()
        pred = signal_score(output, self.prediction_column)
        lags = self.overlap - 1
        figures = validation_metrics(pred, target, data.t, lags=lags)
        series = {
            name: (dates.cpu(), values.cpu())
            for name, (dates, values) in validation_series(pred, target, data.t).items()
        }
        if self._first is None:
            self._first = series
            return figures
        for name, (dates, values) in series.items():
            first_dates, first_values = self._first[name]
            _, mine, theirs = np.intersect1d(
                dates.numpy(), first_dates.numpy(), assume_unique=True, return_indices=True
            )
            if not len(mine):
                continue  # other dates (the training samples): no paired comparison
            gain = values.double().numpy()[mine] - first_values.double().numpy()[theirs]
            figures[f"{name}_gain_t"] = _gain_t(gain, lags)
        return figures

    def state_dict(self) -> dict[str, dict[str, list]] | None:
        """The first call's per-date series (plain lists), or None before any call."""
        if self._first is None:
            return None
        return {
            name: {"dates": dates.tolist(), "values": values.tolist()}
            for name, (dates, values) in self._first.items()
        }

    def load_state_dict(self, state: dict[str, dict[str, list]] | None) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._first = (
            None
            if state is None
            else {
                name: (torch.tensor(part["dates"]), torch.tensor(part["values"]))
                for name, part in state.items()
            }
        )
