"""Every training loss in one place: functional losses and the registry the trainer uses.

Two layers:

* **Functional losses** (:func:`mse`, :func:`smooth_l1`, :func:`direction_cross_entropy`,
  :func:`volatility_weighted`, :func:`ic_loss`, :func:`sharpe_loss`,
  :func:`multi_task_loss`): tensors in, a differentiable scalar tensor out.
* **Named losses** (:data:`LOSSES`, :func:`make_loss`): ``make_loss(name, **params)``
  returns a callable ``loss(output, batch)`` of a :class:`~alphaseq.models.base.ModelOutput`
  and a :class:`LossBatch`, which is what the trainer calls.

Conventions shared by every loss:

* **Float32.** Inputs are cast with ``.float()`` first, so a loss is computed and
  returned in float32 even when the model runs in bfloat16 (autocast): sums over large
  batches and softmaxes lose too much precision in bfloat16.
* **NaN targets are ignored.** A target entry that is NaN means "unknown": it is masked
  out of the loss as if the sample were not in the batch (for a multi-column target,
  each (sample, column) entry separately; in the cross-sectional losses the sample is
  dropped from its date). :func:`~alphaseq.windows.valid_samples` already filters such
  samples, but a loss must never return NaN because of one. A batch with no usable
  entry gives a loss of 0 with a zero gradient (except :func:`sharpe_loss`, which needs
  two dates and says so). NaN *predictions* are not masked: they mean the model
  diverged, and hiding that would be wrong.
* **Weights.** ``weight`` is a finite, non-negative weight per sample, shape (B,). A
  weighted loss is the weighted mean ``sum_b w_b l_b / sum_b w_b`` over usable entries,
  so a sample with weight 0 does not change the loss and scaling all weights by a
  constant changes nothing. The named regression and classification losses use
  ``batch.weight`` whenever it is set (``"weighted_mse"`` insists on it); the
  cross-sectional ones (``"ic"``, ``"sharpe"``) ignore it.
* **Groups.** ``group`` holds the date id of each sample, shape (B,), any integer
  values: the samples sharing an id form one cross-section. Ids need not be sorted or
  contiguous; cross-sections are found with vectorised segment operations.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from alphaseq.errors import ConfigError

if TYPE_CHECKING:  # imported for annotations only: no import cycle with alphaseq.models
    from alphaseq.models.base import ModelOutput

__all__ = [
    "LOSSES",
    "Loss",
    "LossBatch",
    "direction_cross_entropy",
    "direction_from_returns",
    "ic_loss",
    "make_loss",
    "mse",
    "multi_task_loss",
    "needs_date_major",
    "register_loss",
    "sharpe_loss",
    "smooth_l1",
    "volatility_weighted",
]

RegressionKind = Literal["mse", "smooth_l1"]
_REGRESSION_KINDS = ("mse", "smooth_l1")
#: Relative variance below which a cross-section counts as constant in :func:`ic_loss`.
_ZERO_VARIANCE = 1e-10


# ------------------------------------------------------------------------------- batch
@dataclass(frozen=True, eq=False)
class LossBatch:
    """What a named loss needs to know about a batch besides the model's output.

    Attributes
    ----------
    target : torch.Tensor
        (B, H) float labels, NaN where unknown. Classification columns hold the class
        codes as floats (0/1 for ``direction``; 0=DOWN, 1=FLAT, 2=UP for ``three_class``).
    group : torch.Tensor or None
        (B,) integer date id of each sample (needed by the cross-sectional losses
        ``"ic"`` and ``"sharpe"``). Ids need not be sorted or contiguous.
    weight : torch.Tensor or None
        (B,) finite, non-negative per-sample weights.
    volatility : torch.Tensor or None
        (B,) trailing volatility of each sample (for ``"volatility_mse"``).
    """

    target: Tensor
    group: Tensor | None = None
    weight: Tensor | None = None
    volatility: Tensor | None = None

    def __post_init__(self) -> None:
        if self.target.ndim != 2:
            raise ValueError(
                f"LossBatch.target must be (B, H), got shape {tuple(self.target.shape)}"
            )
        n = self.target.shape[0]
        for name in ("group", "weight", "volatility"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (n,):
                raise ValueError(
                    f"LossBatch.{name} must have shape ({n},) like target's first axis, "
                    f"got {tuple(value.shape)}"
                )
        if self.group is not None and (self.group.is_floating_point() or self.group.is_complex()):
            raise ValueError(f"LossBatch.group must hold integer date ids, got {self.group.dtype}")


# ----------------------------------------------------------------------------- helpers
def _check_same_shape(pred: Tensor, target: Tensor, who: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{who}: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}"
        )


def _sample_weight(weight: Tensor | None, like: Tensor, who: str) -> Tensor | None:
    """``weight`` (B,) as float32, shaped to broadcast against ``like`` (B, ...)."""
    if weight is None:
        return None
    if weight.ndim != 1 or weight.shape[0] != like.shape[0]:
        raise ValueError(
            f"{who}: weight must have shape ({like.shape[0]},), got {tuple(weight.shape)}"
        )
    return weight.float().reshape((-1,) + (1,) * (like.ndim - 1))


def _weighted_mean(values: Tensor, entry_weight: Tensor) -> Tensor:
    """``sum(w * v) / sum(w)``, 0 when every weight is 0 (never 0/0)."""
    total = entry_weight.sum()
    # A safe denominator, not a clamp: tiny positive totals are legitimate.
    return (values * entry_weight).sum() / torch.where(total > 0, total, torch.ones_like(total))


def _elementwise(kind: str, diff: Tensor, beta: float) -> Tensor:
    """Per-entry regression loss of ``diff = pred - target``."""
    if kind == "mse":
        return diff * diff
    if kind == "smooth_l1":
        absolute = diff.abs()
        if beta == 0:
            return absolute
        return torch.where(absolute < beta, 0.5 * diff * diff / beta, absolute - 0.5 * beta)
    raise ConfigError(f"unknown regression loss {kind!r}; allowed: {list(_REGRESSION_KINDS)}")


def _regression(
    kind: str,
    pred: Tensor,
    target: Tensor,
    weight: Tensor | None,
    beta: float,
    who: str,
) -> Tensor:
    _check_same_shape(pred, target, who)
    if beta < 0:
        raise ConfigError(f"{who}: beta must be >= 0, got {beta}")
    pred, target = pred.float(), target.float()
    known = torch.isfinite(target)
    # Replace unknown targets *before* subtracting: masking NaN afterwards would still
    # send NaN back through the gradient (0 * NaN).
    diff = pred - torch.where(known, target, torch.zeros_like(target))
    entry_weight = known.float()
    w = _sample_weight(weight, pred, who)
    if w is not None:
        entry_weight = entry_weight * w
    return _weighted_mean(_elementwise(kind, diff, beta), entry_weight)


def _as_vector(x: Tensor, name: str, who: str) -> Tensor:
    """Accept (B,) or (B, 1)."""
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{who}: {name} must be (B,) or (B, 1), got shape {tuple(x.shape)}")
    return x


def _cross_sections(
    pred: Tensor, target: Tensor, group: Tensor | None, who: str
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Known samples as float32 vectors plus their date index ``0..n_dates-1``.

    Returns ``(pred, target, index, n_dates)`` restricted to samples with a finite target;
    ``index[k]`` is the position of sample k's date among the distinct dates.
    """
    pred = _as_vector(pred, "pred", who).float()
    target = _as_vector(target, "target", who).float()
    _check_same_shape(pred, target, who)
    if group is None:
        group = torch.zeros(pred.shape[0], dtype=torch.int64, device=pred.device)
    elif tuple(group.shape) != tuple(pred.shape):
        raise ValueError(
            f"{who}: group must have shape {tuple(pred.shape)}, got {tuple(group.shape)}"
        )
    elif group.is_floating_point() or group.is_complex():
        raise ValueError(f"{who}: group must hold integer date ids, got {group.dtype}")
    known = torch.isfinite(target)
    pred, target, group = pred[known], target[known], group[known]
    # Dense date index without sorting the samples or looping over dates.
    dates, index = torch.unique(group, return_inverse=True)
    return pred, target, index, int(dates.numel())


def _segment_sum(x: Tensor, index: Tensor, n: int) -> Tensor:
    """Per-date sums of ``x``: ``out[d] = sum(x[index == d])``."""
    return x.new_zeros(n).index_add(0, index, x)


# ------------------------------------------------------------------------ regression
def mse(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``sum_b w_b (p_b - y_b)^2 / sum_b w_b`` over known targets.

    Parameters
    ----------
    pred : torch.Tensor
        (B, ...) predictions.
    target : torch.Tensor
        Targets of the same shape, NaN where unknown (ignored).
    weight : torch.Tensor, optional
        (B,) per-sample weights, applied to every column of the sample.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.
    """
    return _regression("mse", pred, target, weight, 1.0, "mse")


def smooth_l1(
    pred: Tensor, target: Tensor, beta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """Huber-type loss: quadratic for small errors, linear for large ones (robust to outliers).

    Per entry with ``d = p - y``: ``0.5 d^2 / beta`` if ``|d| < beta`` else
    ``|d| - 0.5 beta`` (``beta = 0`` gives the absolute error), then the weighted mean over
    known targets as in :func:`mse`.

    Parameters
    ----------
    pred, target : torch.Tensor
        Same shape (B, ...); NaN targets are ignored.
    beta : float, default 1.0
        Where the loss turns from quadratic to linear, in target units (>= 0).
    weight : torch.Tensor, optional
        (B,) per-sample weights.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.
    """
    return _regression("smooth_l1", pred, target, weight, beta, "smooth_l1")


def volatility_weighted(
    pred: Tensor,
    target: Tensor,
    volatility: Tensor,
    base: RegressionKind = "mse",
    eps: float = 1e-4,
    *,
    beta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Regression loss that down-weights high-volatility samples.

    A 10 % move of a quiet stock is rarer (more informative) than of a volatile one;
    plain MSE is dominated by the volatile names. With the trailing volatility
    ``sigma_b`` of each sample::

        v_b    = 1 / max(sigma_b, eps)^2          (inverse variance)
        w~_b   = v_b / mean(v)                    (normalised to mean 1)
        loss   = sum_b w~_b l_b / sum_b 1         = sum_b v_b l_b / sum_b v_b

    where ``l_b`` is the ``base`` loss of the sample and the sums run over known targets
    (for several target columns, over known entries). Because the weights are normalised,
    the loss stays on the scale of the unweighted loss, and multiplying every volatility by
    a constant changes nothing. Samples whose volatility is NaN are ignored like unknown
    targets.

    Parameters
    ----------
    pred, target : torch.Tensor
        Same shape (B, ...); NaN targets are ignored.
    volatility : torch.Tensor
        (B,) trailing volatility of each sample, in any consistent unit.
    base : {"mse", "smooth_l1"}, default "mse"
        Per-entry loss ``l_b``.
    eps : float, default 1e-4
        Volatility floor (> 0): volatilities below ``eps`` count as ``eps``, so a
        zero-volatility sample cannot take all the weight.
    beta : float, default 1.0
        ``beta`` of ``smooth_l1``.
    weight : torch.Tensor, optional
        (B,) additional per-sample weights, multiplied into ``v_b``.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.
    """
    who = "volatility_weighted"
    if base not in _REGRESSION_KINDS:
        raise ConfigError(f"{who}: unknown base {base!r}; allowed: {list(_REGRESSION_KINDS)}")
    if not eps > 0:
        raise ConfigError(f"{who}: eps must be > 0, got {eps}")
    if volatility.ndim != 1 or volatility.shape[0] != pred.shape[0]:
        raise ValueError(
            f"{who}: volatility must have shape ({pred.shape[0]},), got {tuple(volatility.shape)}"
        )
    volatility = volatility.float()
    known = torch.isfinite(volatility)
    inverse_variance = torch.where(
        known, volatility.clamp_min(eps).pow(-2), torch.zeros_like(volatility)
    )
    if weight is not None:
        if weight.shape != volatility.shape:
            raise ValueError(
                f"{who}: weight must have shape {tuple(volatility.shape)}, "
                f"got {tuple(weight.shape)}"
            )
        inverse_variance = inverse_variance * weight.float()
    # The weighted mean divides by the sum of weights, which is the mean-1 normalisation.
    return _regression(base, pred, target, inverse_variance, beta, who)


# ---------------------------------------------------------------------- classification
def direction_from_returns(returns: Tensor, threshold: float = 0.0) -> Tensor:
    """Binary direction codes of returns: 1.0 where ``r > threshold``, else 0.0; NaN kept.

    Matches :func:`alphaseq.features.labels.direction_label` for ``threshold = 0``, so a
    forward-return target can train a two-class direction head.
    """
    returns = returns.float()
    codes = (returns > threshold).float()
    return torch.where(torch.isnan(returns), returns, codes)


def direction_cross_entropy(
    logits: Tensor,
    target_class: Tensor,
    weight: Tensor | None = None,
    class_weight: Tensor | Sequence[float] | None = None,
) -> Tensor:
    """Cross-entropy of class logits against integer class codes.

    Per entry ``l = -log softmax(z)[y]``; the loss is the weighted mean
    ``sum w_b c_{y} l / sum w_b c_{y}`` over known targets, with sample weights ``w`` and
    class weights ``c`` (the same normalisation as :func:`torch.nn.functional.cross_entropy`
    with class weights, so rebalancing classes does not change the loss's scale).

    Parameters
    ----------
    logits : torch.Tensor
        (B, C) or (B, H, C) unnormalised class scores.
    target_class : torch.Tensor
        (B,) or (B, H) class codes in ``0..C-1``: integers, or floats with NaN where
        unknown (ignored), as stored in label arrays.
    weight : torch.Tensor, optional
        (B,) per-sample weights.
    class_weight : torch.Tensor or sequence of float, optional
        (C,) non-negative weight of each class, e.g. inverse class frequencies.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.

    Raises
    ------
    ValueError
        If shapes disagree or a known target is not an integer code in ``0..C-1``.
    """
    who = "direction_cross_entropy"
    if logits.ndim < 2 or logits.shape[:-1] != target_class.shape:
        raise ValueError(
            f"{who}: logits must be (B, C) or (B, H, C) with targets (B,) or (B, H); got "
            f"logits {tuple(logits.shape)} and targets {tuple(target_class.shape)}"
        )
    n_classes = logits.shape[-1]
    if target_class.is_floating_point():
        known = torch.isfinite(target_class)
        codes = torch.where(known, target_class, torch.zeros_like(target_class))
        bad = known & ((codes != codes.round()) | (codes < 0) | (codes >= n_classes))
        codes = codes.long()
    else:
        known = torch.ones_like(target_class, dtype=torch.bool)
        codes = target_class.long()
        bad = (codes < 0) | (codes >= n_classes)
    # One host sync, but an out-of-range index would otherwise be a CUDA device assert.
    if bool(bad.any()):
        raise ValueError(
            f"{who}: class targets must be integer codes in 0..{n_classes - 1}, got "
            f"{target_class[bad][:5].tolist()}"
        )
    log_prob = torch.log_softmax(logits.float(), dim=-1)
    nll = -log_prob.gather(-1, codes.unsqueeze(-1)).squeeze(-1)
    entry_weight = known.float()
    if class_weight is not None:
        class_weight = torch.as_tensor(class_weight, dtype=torch.float32, device=logits.device)
        if class_weight.shape != (n_classes,):
            raise ValueError(
                f"{who}: class_weight must have {n_classes} entries, one per class, "
                f"got shape {tuple(class_weight.shape)}"
            )
        entry_weight = entry_weight * class_weight[codes]
    w = _sample_weight(weight, nll, who)
    if w is not None:
        entry_weight = entry_weight * w
    return _weighted_mean(nll, entry_weight)


# -------------------------------------------------------------------- cross-sectional
def ic_loss(pred: Tensor, target: Tensor, group: Tensor | None = None) -> Tensor:
    """Negative mean information coefficient (per-date Pearson correlation).

    For each date d with samples S_d::

        IC_d = sum (p - mean p)(y - mean y) / sqrt(sum (p - mean p)^2 * sum (y - mean y)^2)
        loss = -mean_d IC_d

    Only the ranking-like co-movement within a date matters, not the level or scale of the
    predictions. Dates with fewer than two known samples, or where the predictions or the
    targets have (numerically) zero variance — centred sum of squares below 1e-10 times
    the raw sum of squares — have no defined correlation and are skipped. When no date is
    left the loss is 0.

    Parameters
    ----------
    pred : torch.Tensor
        (B,) or (B, 1) predictions.
    target : torch.Tensor
        (B,) or (B, 1) targets (e.g. forward returns); NaN samples are dropped.
    group : torch.Tensor, optional
        (B,) integer date id of each sample; ``None`` means one date.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss in [-1, 1].
    """
    p, y, index, n = _cross_sections(pred, target, group, "ic_loss")
    count = _segment_sum(torch.ones_like(p), index, n)
    safe_count = count.clamp_min(1)
    # Two-pass (centred) moments: raw moments cancel catastrophically in float32.
    dp = p - (_segment_sum(p, index, n) / safe_count)[index]
    dy = y - (_segment_sum(y, index, n) / safe_count)[index]
    cov = _segment_sum(dp * dy, index, n)
    var_p = _segment_sum(dp * dp, index, n)
    var_y = _segment_sum(dy * dy, index, n)
    valid = (
        (count >= 2)
        & (var_p > _ZERO_VARIANCE * _segment_sum(p * p, index, n))
        & (var_y > _ZERO_VARIANCE * _segment_sum(y * y, index, n))
    )
    ones = torch.ones_like(var_p)
    # Safe denominators for skipped dates, so they send no inf/NaN gradient.
    denominator = torch.where(valid, var_p, ones).sqrt() * torch.where(valid, var_y, ones).sqrt()
    ic = cov / denominator
    n_valid = valid.sum().clamp_min(1)
    return -(ic * valid.float()).sum() / n_valid


def sharpe_loss(
    pred: Tensor,
    returns: Tensor,
    group: Tensor | None = None,
    temperature: float = 1.0,
    annualization: float = 1.0,
    eps: float = 1e-8,
) -> Tensor:
    """Negative Sharpe ratio of a long-only softmax portfolio, rebalanced each date.

    On date d the portfolio holds ``w_i = softmax(p / temperature)_i`` over that date's
    samples (non-negative, summing to one) and earns ``R_d = sum_i w_i r_i``. Over the
    D dates of the batch::

        loss = -sqrt(annualization) * mean_d(R_d) / sqrt(var_d(R_d) + eps)

    with the sample variance (ddof = 1). Samples with a NaN return are dropped from their
    date before the softmax.

    Parameters
    ----------
    pred : torch.Tensor
        (B,) or (B, 1) scores; higher means a larger weight.
    returns : torch.Tensor
        (B,) or (B, 1) realised (forward) returns of the samples.
    group : torch.Tensor, optional
        (B,) integer date id of each sample; ``None`` means one date (an error: see Raises).
    temperature : float, default 1.0
        Softmax temperature (> 0): small values concentrate the portfolio on the top
        scores, large values spread it towards equal weights.
    annualization : float, default 1.0
        Periods per year of the dates (> 0); the ratio is scaled by its square root. It
        only rescales the loss and its gradient.
    eps : float, default 1e-8
        Added to the variance (>= 0) so a constant portfolio return has a finite loss and
        gradient.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.

    Raises
    ------
    ConfigError
        (a ``ValueError``) if fewer than two dates have a known return: a Sharpe ratio
        needs a spread over dates, so use date-major batches with ``dates_per_batch >= 2``.
    """
    who = "sharpe_loss"
    if not temperature > 0:
        raise ConfigError(f"{who}: temperature must be > 0, got {temperature}")
    if not annualization > 0:
        raise ConfigError(f"{who}: annualization must be > 0, got {annualization}")
    if not eps >= 0:
        raise ConfigError(f"{who}: eps must be >= 0, got {eps}")
    p, r, index, n = _cross_sections(pred, returns, group, who)
    if n < 2:
        raise ConfigError(
            f"{who}: needs at least 2 dates with known returns in a batch, got {n}; "
            "use date-major batches with dates_per_batch >= 2"
        )
    z = p / temperature
    # Per-date max shift for a stable softmax; the softmax does not depend on it, so no grad.
    z_max = torch.full((n,), -math.inf, device=z.device).scatter_reduce(
        0, index, z.detach(), reduce="amax", include_self=False
    )
    e = torch.exp(z - z_max[index])
    w = e / _segment_sum(e, index, n)[index]
    portfolio = _segment_sum(w * r, index, n)  # (D,) return of each date
    mean = portfolio.mean()
    var = ((portfolio - mean) ** 2).sum() / (n - 1)
    return -math.sqrt(annualization) * mean / torch.sqrt(var + eps)


# -------------------------------------------------------------------------- multi-task
def multi_task_loss(
    output: ModelOutput,
    regression_target: Tensor | None,
    class_target: Tensor | None,
    regression_weight: float = 1.0,
    classification_weight: float = 1.0,
    regression: RegressionKind = "mse",
    weight: Tensor | None = None,
    class_weight: Tensor | Sequence[float] | None = None,
    *,
    beta: float = 1.0,
) -> Tensor:
    """Weighted sum of a regression loss and a classification loss.

    ``loss = regression_weight * R + classification_weight * CE`` where ``R`` is
    :func:`mse` or :func:`smooth_l1` of ``output.regression`` against
    ``regression_target`` and ``CE`` is :func:`direction_cross_entropy` of
    ``output.logits`` against ``class_target``. A part whose weight is 0 is not
    computed (its head and target may then be missing).

    Parameters
    ----------
    output : ModelOutput
        Model output with ``regression`` (B, Hr) and ``logits`` (B, Hc, C).
    regression_target : torch.Tensor or None
        (B, Hr) regression targets, NaN where unknown.
    class_target : torch.Tensor or None
        (B, Hc) class codes (integers, or floats with NaN where unknown).
    regression_weight, classification_weight : float, default 1.0
        Non-negative weights of the two parts.
    regression : {"mse", "smooth_l1"}, default "mse"
        Regression part.
    weight : torch.Tensor, optional
        (B,) per-sample weights, used by both parts.
    class_weight : torch.Tensor or sequence of float, optional
        (C,) class weights of the classification part.
    beta : float, default 1.0
        ``beta`` of ``smooth_l1``.

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.
    """
    who = "multi_task_loss"
    if regression not in _REGRESSION_KINDS:
        raise ConfigError(
            f"{who}: unknown regression loss {regression!r}; allowed: {list(_REGRESSION_KINDS)}"
        )
    if regression_weight < 0 or classification_weight < 0:
        raise ConfigError(
            f"{who}: weights must be >= 0, got regression_weight={regression_weight}, "
            f"classification_weight={classification_weight}"
        )
    if regression_weight == 0 and classification_weight == 0:
        raise ConfigError(f"{who}: regression_weight and classification_weight are both 0")
    parts = []
    if regression_weight > 0:
        if output.regression is None or regression_target is None:
            raise ValueError(
                f"{who}: regression_weight > 0 needs a regression head and a regression target"
            )
        parts.append(
            regression_weight
            * _regression(regression, output.regression, regression_target, weight, beta, who)
        )
    if classification_weight > 0:
        if output.logits is None or class_target is None:
            raise ValueError(
                f"{who}: classification_weight > 0 needs a classification head and class targets"
            )
        parts.append(
            classification_weight
            * direction_cross_entropy(output.logits, class_target, weight, class_weight)
        )
    return sum(parts[1:], parts[0])


# ---------------------------------------------------------------------------- registry
LossFunction = Callable[["ModelOutput", LossBatch], Tensor]


@dataclass(frozen=True, eq=False)
class Loss:
    """A named loss bound to its parameters: ``loss(output, batch) -> scalar tensor``.

    Attributes
    ----------
    name : str
        Registry name.
    params : dict
        Parameters it was made with (JSON-ready when the inputs were).
    function : callable
        ``function(output, batch)``.
    """

    name: str
    params: dict[str, Any]
    function: LossFunction = field(repr=False)

    def __call__(self, output: ModelOutput, batch: LossBatch) -> Tensor:
        return self.function(output, batch)

    @property
    def date_major(self) -> bool:
        """Whether the loss needs date-major batches (whole cross-sections)."""
        return needs_date_major(self.name)


#: Loss name -> factory. A factory takes keyword parameters and returns
#: ``function(output, batch)``; :func:`make_loss` validates the parameter names.
LOSSES: dict[str, Callable[..., LossFunction]] = {}
_DATE_MAJOR: set[str] = set()


def register_loss(
    name: str, *, date_major: bool = False
) -> Callable[[Callable[..., LossFunction]], Callable[..., LossFunction]]:
    """Decorator adding a loss factory to :data:`LOSSES` under ``name``.

    Parameters
    ----------
    name : str
        Registry name.
    date_major : bool, default False
        Whether the loss compares samples of one date (then the trainer must feed whole
        cross-sections, see :func:`needs_date_major`).
    """

    def add(factory: Callable[..., LossFunction]) -> Callable[..., LossFunction]:
        LOSSES[name] = factory
        if date_major:
            _DATE_MAJOR.add(name)
        else:
            _DATE_MAJOR.discard(name)
        return factory

    return add


def _factory(name: str) -> Callable[..., LossFunction]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r}; allowed: {sorted(LOSSES)}") from None


def make_loss(name: str, **params: Any) -> Loss:
    """Build a registered loss by name.

    Parameters
    ----------
    name : str
        One of :data:`LOSSES`: ``"mse"``, ``"smooth_l1"``, ``"weighted_mse"``,
        ``"volatility_mse"``, ``"direction_ce"``, ``"multi_task"``, ``"ic"``,
        ``"sharpe"``.
    **params
        Parameters of that loss (see each ``_make_*`` factory below).

    Returns
    -------
    Loss
        Callable ``loss(output, batch)`` returning a scalar float32 tensor.

    Raises
    ------
    ConfigError
        Unknown name, unknown parameter or bad parameter value; the message lists what
        is allowed.
    """
    factory = _factory(name)
    allowed = list(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"loss {name!r}: unknown parameter(s) {unknown}; allowed: {allowed}")
    return Loss(name, dict(params), factory(**params))


def needs_date_major(name: str) -> bool:
    """Whether loss ``name`` needs date-major batches (True for ``"ic"`` and ``"sharpe"``)."""
    _factory(name)
    return name in _DATE_MAJOR


# Parameter checks run when the loss is made, so a bad config fails before training.
def _check_columns(name: str, key: str, columns: Sequence[int] | None) -> list[int] | None:
    if columns is None:
        return None
    if isinstance(columns, int | str) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in columns
    ):
        raise ConfigError(
            f"loss {name!r}: {key} must be a list of column indices >= 0, got {columns!r}"
        )
    if not columns:
        raise ConfigError(f"loss {name!r}: {key} is empty")
    return list(columns)


def _check_column(name: str, key: str, column: int) -> int:
    if not isinstance(column, int) or isinstance(column, bool) or column < 0:
        raise ConfigError(f"loss {name!r}: {key} must be a column index >= 0, got {column!r}")
    return column


def _check_number(name: str, key: str, value: float, *, minimum: float, strict: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < minimum or (strict and value == minimum):
        relation = "" if minimum == -math.inf else (" > " if strict else " >= ") + str(minimum)
        raise ConfigError(f"loss {name!r}: {key} must be a finite number{relation}, got {value!r}")
    return float(value)


def _check_flag(name: str, key: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"loss {name!r}: {key} must be true or false, got {value!r}")
    return value


def _check_class_weight(name: str, class_weight: Sequence[float] | None) -> list[float] | None:
    if class_weight is None:
        return None
    try:
        values = [float(c) for c in class_weight]
    except (TypeError, ValueError):
        values = []
    if not values or not all(math.isfinite(c) and c >= 0 for c in values):
        raise ConfigError(
            f"loss {name!r}: class_weight must be a list of finite numbers >= 0, "
            f"got {class_weight!r}"
        )
    return values


def _regression_head(name: str, output: ModelOutput) -> Tensor:
    if output.regression is None:
        raise ConfigError(f"loss {name!r} needs a regression head; the model has none")
    return output.regression


def _class_head(name: str, output: ModelOutput) -> Tensor:
    if output.logits is None:
        raise ConfigError(f"loss {name!r} needs a classification head; the model has none")
    return output.logits


def _need(name: str, batch: LossBatch, key: str) -> Tensor:
    value = getattr(batch, key)
    if value is None:
        raise ConfigError(f"loss {name!r} needs batch.{key}, which is None")
    return value


def _class_codes(target: Tensor, from_returns: bool, threshold: float) -> Tensor:
    return direction_from_returns(target, threshold) if from_returns else target


@register_loss("mse")
def _make_mse() -> LossFunction:
    """``mse`` of the regression head against every target column (``batch.weight`` if set)."""

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        return mse(_regression_head("mse", output), batch.target, batch.weight)

    return loss


@register_loss("smooth_l1")
def _make_smooth_l1(beta: float = 1.0) -> LossFunction:
    """``smooth_l1`` of the regression head against every target column."""
    beta = _check_number("smooth_l1", "beta", beta, minimum=0, strict=False)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        return smooth_l1(_regression_head("smooth_l1", output), batch.target, beta, batch.weight)

    return loss


@register_loss("weighted_mse")
def _make_weighted_mse() -> LossFunction:
    """``mse`` weighted by ``batch.weight``, which must be set."""

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        weight = _need("weighted_mse", batch, "weight")
        return mse(_regression_head("weighted_mse", output), batch.target, weight)

    return loss


@register_loss("volatility_mse")
def _make_volatility_mse(eps: float = 1e-4) -> LossFunction:
    """:func:`volatility_weighted` MSE with ``batch.volatility`` (and ``batch.weight`` if set)."""
    eps = _check_number("volatility_mse", "eps", eps, minimum=0, strict=True)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        volatility = _need("volatility_mse", batch, "volatility")
        pred = _regression_head("volatility_mse", output)
        return volatility_weighted(pred, batch.target, volatility, "mse", eps, weight=batch.weight)

    return loss


@register_loss("direction_ce")
def _make_direction_ce(
    class_weight: Sequence[float] | None = None,
    columns: Sequence[int] | None = None,
    from_returns: bool = False,
    threshold: float = 0.0,
) -> LossFunction:
    """Cross-entropy of the classification head against class codes in ``batch.target``.

    ``columns`` picks the target columns of the Hc classification horizons (default: all
    columns). With ``from_returns`` those columns hold returns, turned into 0/1 direction
    codes by :func:`direction_from_returns` with ``threshold``.
    """
    name = "direction_ce"
    class_weight = _check_class_weight(name, class_weight)
    columns = _check_columns(name, "columns", columns)
    from_returns = _check_flag(name, "from_returns", from_returns)
    threshold = _check_number(name, "threshold", threshold, minimum=-math.inf, strict=False)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        target = batch.target if columns is None else batch.target[:, columns]
        codes = _class_codes(target, from_returns, threshold)
        logits = _class_head(name, output)
        return direction_cross_entropy(logits, codes, batch.weight, class_weight)

    return loss


@register_loss("multi_task")
def _make_multi_task(
    regression_columns: Sequence[int] | None = None,
    class_columns: Sequence[int] | None = None,
    regression_weight: float = 1.0,
    classification_weight: float = 1.0,
    regression: str = "mse",
    beta: float = 1.0,
    class_weight: Sequence[float] | None = None,
    from_returns: bool = False,
    threshold: float = 0.0,
) -> LossFunction:
    """:func:`multi_task_loss` with targets taken from columns of ``batch.target``.

    Defaults, for a model with Hr regression and Hc classification horizons: the
    regression head reads target columns ``0..Hr-1`` and the classification head columns
    ``Hr..Hr+Hc-1`` — or, with ``from_returns``, the regression columns again, turned
    into 0/1 direction codes (one forward-return label trains both heads).
    """
    name = "multi_task"
    regression_columns = _check_columns(name, "regression_columns", regression_columns)
    class_columns = _check_columns(name, "class_columns", class_columns)
    regression_weight = _check_number(
        name, "regression_weight", regression_weight, minimum=0, strict=False
    )
    classification_weight = _check_number(
        name, "classification_weight", classification_weight, minimum=0, strict=False
    )
    if regression_weight == 0 and classification_weight == 0:
        raise ConfigError(f"loss {name!r}: regression_weight and classification_weight are both 0")
    if regression not in _REGRESSION_KINDS:
        raise ConfigError(
            f"loss {name!r}: unknown regression {regression!r}; allowed: {list(_REGRESSION_KINDS)}"
        )
    beta = _check_number(name, "beta", beta, minimum=0, strict=False)
    class_weight = _check_class_weight(name, class_weight)
    from_returns = _check_flag(name, "from_returns", from_returns)
    threshold = _check_number(name, "threshold", threshold, minimum=-math.inf, strict=False)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        n_reg = 0 if output.regression is None else output.regression.shape[1]
        n_cls = 0 if output.logits is None else output.logits.shape[1]
        reg_cols = regression_columns if regression_columns is not None else list(range(n_reg))
        if class_columns is not None:
            cls_cols = class_columns
        elif from_returns:
            cls_cols = reg_cols
        else:
            cls_cols = list(range(n_reg, n_reg + n_cls))
        for key, cols, width in (("regression", reg_cols, n_reg), ("class", cls_cols, n_cls)):
            if len(cols) != width:
                raise ConfigError(
                    f"loss {name!r}: {len(cols)} {key} column(s) {cols} for a head with "
                    f"{width} output(s)"
                )
            if cols and max(cols) >= batch.target.shape[1]:
                raise ConfigError(
                    f"loss {name!r}: {key} column {max(cols)} is out of range for a target "
                    f"with {batch.target.shape[1]} column(s)"
                )
        reg_target = batch.target[:, reg_cols] if reg_cols else None
        cls_target = batch.target[:, cls_cols] if cls_cols else None
        if cls_target is not None:
            cls_target = _class_codes(cls_target, from_returns, threshold)
        return multi_task_loss(
            output,
            reg_target,
            cls_target,
            regression_weight,
            classification_weight,
            regression,  # type: ignore[arg-type]
            batch.weight,
            class_weight,
            beta=beta,
        )

    return loss


def _cross_sectional_inputs(
    name: str, output: ModelOutput, batch: LossBatch, column: int, target_column: int
) -> tuple[Tensor, Tensor, Tensor]:
    group = _need(name, batch, "group")
    pred = _regression_head(name, output)
    if column >= pred.shape[1] or target_column >= batch.target.shape[1]:
        raise ConfigError(
            f"loss {name!r}: column {column} / target_column {target_column} out of range for "
            f"{pred.shape[1]} regression output(s) and {batch.target.shape[1]} target column(s)"
        )
    return pred[:, column], batch.target[:, target_column], group


@register_loss("ic", date_major=True)
def _make_ic(column: int = 0, target_column: int = 0) -> LossFunction:
    """:func:`ic_loss` of regression output ``column`` against ``target_column`` per date."""
    column = _check_column("ic", "column", column)
    target_column = _check_column("ic", "target_column", target_column)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        return ic_loss(*_cross_sectional_inputs("ic", output, batch, column, target_column))

    return loss


@register_loss("sharpe", date_major=True)
def _make_sharpe(
    column: int = 0,
    target_column: int = 0,
    temperature: float = 1.0,
    annualization: float = 1.0,
    eps: float = 1e-8,
) -> LossFunction:
    """:func:`sharpe_loss` of regression output ``column`` with forward returns in
    ``target_column``."""
    name = "sharpe"
    column = _check_column(name, "column", column)
    target_column = _check_column(name, "target_column", target_column)
    temperature = _check_number(name, "temperature", temperature, minimum=0, strict=True)
    annualization = _check_number(name, "annualization", annualization, minimum=0, strict=True)
    eps = _check_number(name, "eps", eps, minimum=0, strict=False)

    def loss(output: ModelOutput, batch: LossBatch) -> Tensor:
        pred, returns, group = _cross_sectional_inputs(name, output, batch, column, target_column)
        return sharpe_loss(pred, returns, group, temperature, annualization, eps)

    return loss
