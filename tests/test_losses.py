"""Losses: each one against a hand computation with small explicit numbers, plus the
conventions every loss shares (NaN targets ignored, float32 under bfloat16, weights,
unsorted date ids) and the registry the trainer uses.

Expected values are written out with plain Python arithmetic, never with torch's own
loss functions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from alphaseq.errors import ConfigError
from alphaseq.losses import (
    LOSSES,
    Loss,
    LossBatch,
    direction_cross_entropy,
    direction_from_returns,
    ic_loss,
    make_loss,
    mse,
    multi_task_loss,
    needs_date_major,
    sharpe_loss,
    smooth_l1,
    volatility_weighted,
)
from alphaseq.models.base import ModelOutput


def t(values, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def leaf(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, requires_grad=True)


def close(got: torch.Tensor, want: float, tol: float = 1e-6) -> None:
    assert got.ndim == 0
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(want, rel=tol, abs=tol)


def assert_grad_ok(x: torch.Tensor) -> None:
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


# Two dates, three samples each (used by the IC tests).
# Date 10: p = 1, 2, 3 and y = 1, 3, 2: centred p = -1, 0, 1 and y = -1, 1, 0, so
#   cov = 1, var_p = var_y = 2 and IC = 1 / 2 = 0.5.
# Date 20: y = 2 p exactly, so IC = 1.  Loss = -(0.5 + 1) / 2 = -0.75.
IC_PRED = [1.0, 2.0, 3.0, 3.0, 1.0, 2.0]
IC_TARGET = [1.0, 3.0, 2.0, 6.0, 2.0, 4.0]
IC_GROUP = [10, 10, 10, 20, 20, 20]

# Two dates, two samples each (used by the Sharpe tests), temperature 1.
# Date 0: scores 0 and ln 3 -> softmax weights 1/4 and 3/4; returns 0.04 and 0.08:
#   R_0 = 0.01 + 0.06 = 0.07.
# Date 1: equal scores -> weights 1/2, 1/2; returns 0.02 and -0.04: R_1 = -0.01.
# mean = 0.03, sample std = |0.07 + 0.01| / sqrt(2), Sharpe = 0.03 / (0.08 / sqrt(2)).
SHARPE_PRED = [0.0, math.log(3.0), 0.5, 0.5]
SHARPE_RETURNS = [0.04, 0.08, 0.02, -0.04]
SHARPE_GROUP = [0, 0, 1, 1]
SHARPE = 0.03 / (0.08 / math.sqrt(2.0))


# ------------------------------------------------------------------------- regression
def test_mse_by_hand():
    # errors 1, 0, 3 -> (1 + 0 + 9) / 3
    close(mse(t([[1.0], [2.0], [4.0]]), t([[0.0], [2.0], [1.0]])), 10 / 3)
    # two columns: all four entries count equally
    close(mse(t([[1.0, 0.0], [0.0, 2.0]]), t([[0.0, 0.0], [0.0, 0.0]])), (1 + 0 + 0 + 4) / 4)


def test_mse_sample_weights():
    pred, target = t([[1.0], [2.0], [4.0]]), t([[0.0], [2.0], [1.0]])
    # (1 * 1 + 2 * 0 + 0 * 9) / (1 + 2 + 0)
    close(mse(pred, target, t([1.0, 2.0, 0.0])), 1 / 3)
    # a sample with weight 0 does not change the loss, whatever its error
    moved = pred.clone()
    moved[2] = 1000.0
    assert mse(moved, target, t([1.0, 2.0, 0.0])).item() == pytest.approx(1 / 3)
    # scaling every weight changes nothing
    close(mse(pred, target, t([3.0, 6.0, 0.0])), 1 / 3)
    # all-zero weights: loss 0, not 0 / 0
    close(mse(pred, target, t([0.0, 0.0, 0.0])), 0.0)


def test_smooth_l1_by_hand():
    pred, target = t([0.5, -2.0, 1.0]), t([0.0, 0.0, 1.0])
    # beta 1: d = 0.5 -> 0.5 * 0.25 / 1 = 0.125; d = -2 -> 2 - 0.5 = 1.5; d = 0 -> 0
    close(smooth_l1(pred, target), (0.125 + 1.5 + 0.0) / 3)
    # beta 2: 0.5 * 0.25 / 2 = 0.0625; |d| = 2 is not < 2 -> 2 - 1 = 1
    close(smooth_l1(pred, target, beta=2.0), (0.0625 + 1.0) / 3)
    # beta 0: absolute error
    close(smooth_l1(pred, target, beta=0.0), (0.5 + 2.0) / 3)
    # weights: (1 * 0.125 + 0 * 1.5 + 1 * 0) / 2
    close(smooth_l1(pred, target, weight=t([1.0, 0.0, 1.0])), 0.125 / 2)
    with pytest.raises(ConfigError, match="beta"):
        smooth_l1(pred, target, beta=-1.0)


def test_volatility_weighted_by_hand():
    pred, target = t([[1.0], [2.0]]), t([[0.0], [0.0]])
    vol = t([0.1, 0.2])
    # v = 1/0.01 = 100 and 1/0.04 = 25: (100 * 1 + 25 * 4) / 125 = 1.6
    close(volatility_weighted(pred, target, vol), 1.6)
    # the same through the mean-1 normalisation: w~ = 1.6, 0.4 -> (1.6 * 1 + 0.4 * 4) / 2
    close(volatility_weighted(pred, target, vol), (1.6 * 1 + 0.4 * 4) / 2)
    # multiplying every volatility by a constant changes nothing
    close(volatility_weighted(pred, target, vol * 7.0), 1.6)
    # equal volatilities: plain MSE
    close(volatility_weighted(pred, target, t([0.3, 0.3])), (1 + 4) / 2)
    # the floor: vol 0 counts as eps = 0.1 -> v = 100, 25 again
    close(volatility_weighted(pred, target, t([0.0, 0.2]), eps=0.1), 1.6)
    # smooth_l1 base (beta 1): 0.5 and 1.5 -> (100 * 0.5 + 25 * 1.5) / 125
    close(volatility_weighted(pred, target, vol, base="smooth_l1"), (50 + 37.5) / 125)
    # extra sample weights multiply in: v = 100 * 1, 25 * 4 -> (100 + 100 * 4) / 200
    close(volatility_weighted(pred, target, vol, weight=t([1.0, 4.0])), 500 / 200)
    # NaN volatility: the sample is ignored
    close(volatility_weighted(pred, target, t([float("nan"), 0.2])), 4.0)
    with pytest.raises(ConfigError, match="base"):
        volatility_weighted(pred, target, vol, base="huber")
    with pytest.raises(ConfigError, match="eps"):
        volatility_weighted(pred, target, vol, eps=0.0)


# --------------------------------------------------------------------- classification
def test_direction_from_returns():
    got = direction_from_returns(t([0.1, -0.2, 0.0, float("nan")]))
    assert got[:3].tolist() == [1.0, 0.0, 0.0]
    assert math.isnan(got[3].item())
    assert direction_from_returns(t([0.1, 0.3]), threshold=0.2).tolist() == [0.0, 1.0]


def test_direction_ce_by_hand():
    logits = t([[2.0, 0.0], [0.0, 1.0]])
    # -log(e^2 / (e^2 + 1)) and -log(e / (1 + e))
    l0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    l1 = -math.log(math.e / (1 + math.e))
    close(direction_cross_entropy(logits, t([0, 1], torch.int64)), (l0 + l1) / 2)
    # float codes (as stored in labels) give the same
    close(direction_cross_entropy(logits, t([0.0, 1.0])), (l0 + l1) / 2)
    # three classes: -log(e^3 / (e + e^2 + e^3)) for UP
    three = t([[1.0, 2.0, 3.0]])
    want = -(3 - math.log(math.e + math.e**2 + math.e**3))
    close(direction_cross_entropy(three, t([2.0])), want)


def test_direction_ce_horizons_and_weights():
    e, e2 = math.e, math.exp(2)
    l0 = -math.log(e2 / (e2 + 1))  # logits (2, 0), class 0
    l1 = -math.log(e / (1 + e))  # logits (0, 1), class 1
    l2 = -math.log(1 / (1 + e))  # logits (0, 1), class 0
    # (B=2, H=2, C=2): entries (0,0) -> l0, (0,1) -> l1, (1,0) -> l2, (1,1) -> l0
    logits = t([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [2.0, 0.0]]])
    target = t([[0.0, 1.0], [0.0, 0.0]])
    close(direction_cross_entropy(logits, target), (l0 + l1 + l2 + l0) / 4)
    # class weights c = (1, 3): weighted mean sum c_y l / sum c_y
    close(
        direction_cross_entropy(logits, target, class_weight=[1.0, 3.0]),
        (l0 + 3 * l1 + l2 + l0) / (1 + 3 + 1 + 1),
    )
    # sample weights (2, 0): only sample 0 counts
    close(direction_cross_entropy(logits, target, weight=t([2.0, 0.0])), (l0 + l1) / 2)
    # both: w * c = (2, 6) for sample 0
    close(
        direction_cross_entropy(logits, target, weight=t([2.0, 1.0]), class_weight=t([1.0, 3.0])),
        (2 * l0 + 6 * l1 + l2 + l0) / (2 + 6 + 1 + 1),
    )


def test_direction_ce_rejects_bad_codes_and_shapes():
    logits = t([[2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"0\.\.1"):
        direction_cross_entropy(logits, t([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        direction_cross_entropy(logits, t([0.0, 0.5]))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        direction_cross_entropy(logits, t([-1, 0], torch.int64))
    with pytest.raises(ValueError, match="logits"):
        direction_cross_entropy(logits, t([[0.0], [1.0]]))
    with pytest.raises(ValueError, match="class_weight"):
        direction_cross_entropy(logits, t([0.0, 1.0]), class_weight=[1.0, 2.0, 3.0])


# -------------------------------------------------------------------- cross-sectional
def test_ic_loss_by_hand():
    close(ic_loss(t(IC_PRED), t(IC_TARGET), t(IC_GROUP, torch.int64)), -0.75)
    # (B, 1) inputs are accepted
    close(ic_loss(t(IC_PRED)[:, None], t(IC_TARGET)[:, None], t(IC_GROUP, torch.int64)), -0.75)
    # no group: one cross-section of all six samples
    p, y = IC_PRED, IC_TARGET
    mp, my = sum(p) / 6, sum(y) / 6
    cov = sum((a - mp) * (b - my) for a, b in zip(p, y, strict=True))
    vp = sum((a - mp) ** 2 for a in p)
    vy = sum((b - my) ** 2 for b in y)
    close(ic_loss(t(p), t(y)), -cov / math.sqrt(vp * vy))


def test_ic_loss_perfect_and_anti_correlation():
    group = t([0, 0, 0, 1, 1, 1, 1], torch.int64)
    pred = t([0.1, -0.3, 0.2, 5.0, 1.0, 3.0, 2.0])
    close(ic_loss(pred, 2 * pred + 1, group), -1.0)
    close(ic_loss(pred, -3 * pred, group), 1.0)


def test_ic_loss_skips_degenerate_dates():
    # date 1: a single sample; date 2: constant predictions; date 3: constant targets.
    pred = t([*IC_PRED[:3], 9.0, 4.0, 4.0, 1.0, 2.0])
    target = t([*IC_TARGET[:3], 1.0, 1.0, 2.0, 5.0, 5.0])
    group = t([0, 0, 0, 1, 2, 2, 3, 3], torch.int64)
    close(ic_loss(pred, target, group), -0.5)  # only date 0 (IC 0.5) counts
    # nothing usable: 0, with a zero gradient
    x = leaf([1.0, 1.0, 2.0])
    loss = ic_loss(x, t([1.0, 2.0, 3.0]), t([0, 0, 1], torch.int64))
    close(loss, 0.0)
    loss.backward()
    assert torch.equal(x.grad, torch.zeros(3))


def test_sharpe_loss_by_hand():
    pred, returns = t(SHARPE_PRED), t(SHARPE_RETURNS)
    group = t(SHARPE_GROUP, torch.int64)
    close(sharpe_loss(pred, returns, group, eps=0.0), -SHARPE, 1e-5)
    # the default eps (1e-8 on a variance of 0.0032) barely moves it
    close(sharpe_loss(pred, returns, group), -SHARPE, 1e-5)
    # annualization 4 scales by sqrt(4)
    close(sharpe_loss(pred, returns, group, annualization=4.0, eps=0.0), -2 * SHARPE, 1e-5)
    # temperature 2 halves the scores: date 0 weights softmax(0, ln(3)/2) = 1/(1+√3), √3/(1+√3)
    w1 = math.sqrt(3) / (1 + math.sqrt(3))
    r0 = (1 - w1) * 0.04 + w1 * 0.08
    r1 = -0.01
    want = ((r0 + r1) / 2) / (abs(r0 - r1) / math.sqrt(2))
    close(sharpe_loss(pred, returns, group, temperature=2.0, eps=0.0), -want, 1e-5)


def test_sharpe_three_dates_sample_std():
    # one sample per date: weight 1, R_d = r_d = 0.01, 0.02, 0.06
    r = [0.01, 0.02, 0.06]
    mean = sum(r) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    got = sharpe_loss(t([5.0, -1.0, 0.0]), t(r), t([7, 3, 5], torch.int64), eps=0.0)
    close(got, -mean / std, 1e-5)


def test_sharpe_loss_decreases_when_predictions_align():
    gen = torch.Generator().manual_seed(0)
    returns = torch.randn(40, generator=gen) * 0.05
    group = torch.arange(40) // 10
    aligned = sharpe_loss(returns * 50, returns, group)
    neutral = sharpe_loss(torch.zeros(40), returns, group)
    opposed = sharpe_loss(-returns * 50, returns, group)
    assert aligned < neutral < opposed


def test_sharpe_loss_errors():
    pred, returns = t(SHARPE_PRED), t(SHARPE_RETURNS)
    with pytest.raises(ValueError, match="at least 2 dates"):
        sharpe_loss(pred, returns, t([0, 0, 0, 0], torch.int64))
    with pytest.raises(ValueError, match="at least 2 dates"):
        sharpe_loss(pred, returns)
    # a date whose returns are all unknown does not count
    with pytest.raises(ValueError, match="at least 2 dates"):
        sharpe_loss(pred, t([0.04, 0.08, float("nan"), float("nan")]), t(SHARPE_GROUP, torch.int64))
    with pytest.raises(ConfigError, match="temperature"):
        sharpe_loss(pred, returns, t(SHARPE_GROUP, torch.int64), temperature=0.0)
    with pytest.raises(ConfigError, match="annualization"):
        sharpe_loss(pred, returns, t(SHARPE_GROUP, torch.int64), annualization=-1.0)
    with pytest.raises(ValueError, match="integer"):
        sharpe_loss(pred, returns, t([0.0, 0.0, 1.0, 1.0]))


def test_group_ids_unsorted_and_non_contiguous():
    perm = torch.tensor([4, 0, 5, 2, 1, 3])
    relabel = {10: 1_000_003, 20: -7}
    group = t([relabel[g] for g in IC_GROUP], torch.int64)
    sorted_ic = ic_loss(t(IC_PRED), t(IC_TARGET), t(IC_GROUP, torch.int64))
    shuffled_ic = ic_loss(t(IC_PRED)[perm], t(IC_TARGET)[perm], group[perm])
    assert shuffled_ic.item() == pytest.approx(sorted_ic.item(), abs=1e-6)

    perm = torch.tensor([3, 1, 0, 2])
    group = t([42, 42, 5, 5], torch.int64)
    sorted_sharpe = sharpe_loss(t(SHARPE_PRED), t(SHARPE_RETURNS), t(SHARPE_GROUP, torch.int64))
    shuffled_sharpe = sharpe_loss(t(SHARPE_PRED)[perm], t(SHARPE_RETURNS)[perm], group[perm])
    assert shuffled_sharpe.item() == pytest.approx(sorted_sharpe.item(), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-3, 3),  # date id
            # grid values (many ties, no float32 underflow of squares)
            st.integers(-200, 200).map(lambda k: k / 100),  # prediction
            st.integers(-250, 250).map(lambda k: k / 1000),  # return
        ),
        min_size=2,
        max_size=25,
    )
)
def test_cross_sectional_losses_match_a_per_date_loop(rows):
    """IC and Sharpe equal a plain per-date loop in float64, for any order of the rows."""
    ids = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows], dtype=np.float64)
    y = np.array([r[2] for r in rows], dtype=np.float64)
    ics, portfolio = [], []
    for d in sorted(set(ids.tolist())):
        pd_, yd = p[ids == d], y[ids == d]
        w = np.exp(pd_ - pd_.max())
        portfolio.append(float((w / w.sum() * yd).sum()))
        a, b = pd_ - pd_.mean(), yd - yd.mean()
        ssa, ssb = (a * a).sum(), (b * b).sum()
        if len(pd_) >= 2 and ssa > 1e-6 * (pd_ * pd_).sum() and ssb > 1e-6 * (yd * yd).sum():
            ics.append(float((a * b).sum() / math.sqrt(ssa * ssb)))
    args = (torch.tensor(p, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    group = torch.tensor(ids)
    if ics:  # cross-sections near the zero-variance cut-off are left out of the comparison
        got = ic_loss(*args, group).item()
        if not any(
            0 < ((v - v.mean()) ** 2).sum() <= 1e-6 * (v * v).sum()
            for d in set(ids.tolist())
            for v in (p[ids == d], y[ids == d])
        ):
            assert got == pytest.approx(-sum(ics) / len(ics), abs=1e-4)
    if len(portfolio) >= 2:
        r = np.array(portfolio)
        want = -r.mean() / math.sqrt(r.var(ddof=1) + 1e-8)
        assert sharpe_loss(*args, group).item() == pytest.approx(want, rel=1e-3, abs=1e-3)


# ------------------------------------------------------------------------- multi-task
def test_multi_task_by_hand():
    output = ModelOutput(
        regression=t([[1.0], [2.0]]),
        logits=t([[[2.0, 0.0]], [[0.0, 1.0]]]),
    )
    reg_target = t([[0.0], [0.0]])  # MSE (1 + 4) / 2 = 2.5
    cls_target = t([[0], [1]], torch.int64)
    ce = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    close(multi_task_loss(output, reg_target, cls_target), 2.5 + ce)
    close(
        multi_task_loss(
            output, reg_target, cls_target, regression_weight=0.5, classification_weight=2
        ),
        1.25 + 2 * ce,
    )
    # smooth_l1 part: d = 1 -> 0.5, d = 2 -> 1.5
    close(multi_task_loss(output, reg_target, cls_target, regression="smooth_l1"), 1.0 + ce)
    # a part with weight 0 may lack its head and target
    close(
        multi_task_loss(ModelOutput(regression=output.regression), reg_target, None, 1.0, 0.0), 2.5
    )
    with pytest.raises(ValueError, match="classification head"):
        multi_task_loss(ModelOutput(regression=output.regression), reg_target, cls_target)
    with pytest.raises(ConfigError, match="regression"):
        multi_task_loss(output, reg_target, cls_target, regression="l1")


# ------------------------------------------------------------------ shared conventions
def _all_losses(pred, target, group, weight=None, vol=None):
    """Every functional loss on (B,) predictions and (B,) forward-return targets."""
    logits = torch.stack([-pred, pred], dim=-1)  # (B, 2)
    vol = t(VOL) if vol is None else vol
    weight = t(WEIGHT) if weight is None else weight
    output = ModelOutput(regression=pred[:, None], logits=logits[:, None, :])
    return {
        "mse": mse(pred, target),
        "weighted mse": mse(pred, target, weight),
        "smooth_l1": smooth_l1(pred, target, beta=0.05),
        "volatility_weighted": volatility_weighted(pred, target, vol),
        "direction_ce": direction_cross_entropy(logits, direction_from_returns(target)),
        "ic": ic_loss(pred, target, group),
        "sharpe": sharpe_loss(pred, target, group),
        "multi_task": multi_task_loss(
            output, target[:, None], direction_from_returns(target)[:, None]
        ),
    }


PRED = [0.02, -0.01, 0.05, 0.00, 0.03, -0.04, 0.01, 0.02]
TARGET = [0.01, -0.03, 0.04, 0.02, -0.01, -0.02, 0.03, 0.00]
GROUP = [0, 0, 0, 0, 1, 1, 1, 1]
WEIGHT = [1.0, 2.0, 0.5, 1.0, 1.5, 1.0, 3.0, 1.0]
VOL = [0.1, 0.2, 0.3, 0.1, 0.4, 0.2, 0.25, 0.15]


def test_every_loss_has_finite_nonzero_gradients():
    for name in _all_losses(t(PRED), t(TARGET), t(GROUP, torch.int64)):
        x = leaf(PRED)
        loss = _all_losses(x, t(TARGET), t(GROUP, torch.int64))[name]
        assert torch.isfinite(loss), name
        loss.backward()
        assert_grad_ok(x)


def test_nan_targets_are_ignored_everywhere():
    """A sample with a NaN target gives the loss of the batch without it, and finite grads."""
    nan = float("nan")
    # insert unknown samples (one per date, wild predictions) at positions 1 and 6
    pred = [PRED[0], 9.0, *PRED[1:5], -9.0, *PRED[5:]]
    target = [TARGET[0], nan, *TARGET[1:5], nan, *TARGET[5:]]
    group = [GROUP[0], 0, *GROUP[1:5], 1, *GROUP[5:]]
    weight = [WEIGHT[0], 5.0, *WEIGHT[1:5], 5.0, *WEIGHT[5:]]
    vol = [VOL[0], 0.01, *VOL[1:5], 0.01, *VOL[5:]]
    clean = _all_losses(t(PRED), t(TARGET), t(GROUP, torch.int64))
    for name, want in clean.items():
        x = leaf(pred)
        got = _all_losses(x, t(target), t(group, torch.int64), t(weight), t(vol))[name]
        assert got.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7), name
        got.backward()
        assert torch.isfinite(x.grad).all(), name
        assert x.grad[1] == 0 and x.grad[6] == 0, name
    # every target unknown: 0, not NaN
    x = leaf([1.0, 2.0])
    for loss in (mse(x, t([nan, nan])), ic_loss(x, t([nan, nan]))):
        close(loss, 0.0)
        loss.backward()
        assert torch.isfinite(x.grad).all()


def test_bfloat16_inputs_give_float32_results():
    pred16 = t(PRED).bfloat16()
    reference = _all_losses(pred16.float(), t(TARGET), t(GROUP, torch.int64))
    got = _all_losses(pred16, t(TARGET).bfloat16(), t(GROUP, torch.int64))
    for name, value in got.items():
        assert value.dtype == torch.float32, name
        # targets are rounded to bfloat16 too, so only approximately equal
        assert value.item() == pytest.approx(reference[name].item(), rel=0.05, abs=1e-3), name
    # identical bfloat16 values in both: identical results
    exact = _all_losses(pred16, t(TARGET), t(GROUP, torch.int64))
    for name, value in exact.items():
        assert value.item() == pytest.approx(reference[name].item(), rel=1e-6), name
    # and under autocast, through the registry
    output = ModelOutput(regression=t(PRED)[:, None].bfloat16())
    batch = LossBatch(t(TARGET)[:, None], group=t(GROUP, torch.int64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name in ("mse", "ic", "sharpe"):
            assert make_loss(name)(output, batch).dtype == torch.float32


# -------------------------------------------------------------------------- registry
def _registry_inputs():
    pred = t(PRED)
    logits = torch.stack([-pred, pred], dim=-1)[:, None, :]
    output = ModelOutput(regression=pred[:, None], logits=logits)
    returns = t(TARGET)[:, None]
    codes = direction_from_returns(returns)
    batch = LossBatch(
        target=torch.cat([returns, codes], dim=1),
        group=t(GROUP, torch.int64),
        weight=torch.linspace(1.0, 2.0, 8),
        volatility=torch.linspace(0.1, 0.4, 8),
    )
    return output, batch, returns, codes


def test_make_loss_every_name_matches_the_functional_loss():
    output, batch, returns, codes = _registry_inputs()
    reg, logits, w = output.regression, output.logits, batch.weight
    two_col = ModelOutput(regression=torch.cat([reg, reg], dim=1), logits=logits)
    cases = {
        ("mse", ()): (two_col, mse(two_col.regression, batch.target, w)),
        ("smooth_l1", (("beta", 0.01),)): (
            two_col,
            smooth_l1(two_col.regression, batch.target, 0.01, w),
        ),
        ("weighted_mse", ()): (two_col, mse(two_col.regression, batch.target, w)),
        ("volatility_mse", ()): (
            two_col,
            volatility_weighted(two_col.regression, batch.target, batch.volatility, weight=w),
        ),
        ("direction_ce", (("columns", (1,)), ("class_weight", (1.0, 2.0)))): (
            output,
            direction_cross_entropy(logits, codes, w, [1.0, 2.0]),
        ),
        ("direction_ce", (("columns", (0,)), ("from_returns", True))): (
            output,
            direction_cross_entropy(logits, codes, w),
        ),
        ("multi_task", (("classification_weight", 0.5),)): (
            output,
            multi_task_loss(output, returns, codes, 1.0, 0.5, "mse", w),
        ),
        ("multi_task", (("class_columns", (0,)), ("from_returns", True))): (
            output,
            multi_task_loss(output, returns, codes, weight=w),
        ),
        ("ic", ()): (output, ic_loss(reg[:, 0], returns[:, 0], batch.group)),
        ("sharpe", (("temperature", 0.1), ("annualization", 12.0))): (
            output,
            sharpe_loss(reg[:, 0], returns[:, 0], batch.group, 0.1, 12.0),
        ),
    }
    for (name, params), (out, want) in cases.items():
        loss = make_loss(name, **dict(params))
        assert isinstance(loss, Loss) and loss.name == name
        assert loss(out, batch).item() == pytest.approx(want.item(), rel=1e-6), (name, params)
    assert {name for name, _ in cases} == set(LOSSES)


def test_mse_registry_without_weights_and_weighted_mse_requires_them():
    output, batch, _, _ = _registry_inputs()
    plain = LossBatch(batch.target[:, :1])
    close(make_loss("mse")(output, plain), mse(output.regression, plain.target).item())
    with pytest.raises(ConfigError, match=r"batch\.weight"):
        make_loss("weighted_mse")(output, plain)
    with pytest.raises(ConfigError, match=r"batch\.volatility"):
        make_loss("volatility_mse")(output, plain)


def test_make_loss_errors():
    output, batch, _, _ = _registry_inputs()
    with pytest.raises(ConfigError, match=r"unknown loss 'hinge'.*'ic'.*'sharpe'"):
        make_loss("hinge")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['tau'\].*temperature"):
        make_loss("sharpe", tau=2.0)
    with pytest.raises(ConfigError, match="temperature"):
        make_loss("sharpe", temperature=0)
    with pytest.raises(ConfigError, match="beta"):
        make_loss("smooth_l1", beta="big")
    with pytest.raises(ConfigError, match="class_weight"):
        make_loss("direction_ce", class_weight=[1.0, -1.0])
    with pytest.raises(ConfigError, match="columns"):
        make_loss("multi_task", regression_columns=[-1])
    with pytest.raises(ConfigError, match="regression"):
        make_loss("multi_task", regression="huber")
    with pytest.raises(ConfigError, match="both 0"):
        make_loss("multi_task", regression_weight=0, classification_weight=0)
    with pytest.raises(ConfigError, match="from_returns"):
        make_loss("direction_ce", from_returns="yes")
    no_group = LossBatch(batch.target)
    for name in ("ic", "sharpe"):
        with pytest.raises(ConfigError, match=rf"'{name}' needs batch\.group"):
            make_loss(name)(output, no_group)
    with pytest.raises(ConfigError, match="regression head"):
        make_loss("mse")(ModelOutput(logits=output.logits), batch)
    with pytest.raises(ConfigError, match="classification head"):
        make_loss("direction_ce")(ModelOutput(regression=output.regression), batch)
    with pytest.raises(ConfigError, match="out of range"):
        make_loss("ic", target_column=5)(output, batch)
    with pytest.raises(ConfigError, match="column"):
        make_loss("multi_task", class_columns=[0, 1])(output, batch)


def test_needs_date_major():
    assert needs_date_major("ic") and needs_date_major("sharpe")
    for name in ("mse", "smooth_l1", "weighted_mse", "volatility_mse", "direction_ce"):
        assert not needs_date_major(name)
    assert not needs_date_major("multi_task")
    assert make_loss("ic").date_major and not make_loss("mse").date_major
    with pytest.raises(ConfigError, match="unknown loss"):
        needs_date_major("hinge")


def test_loss_batch_validates_shapes():
    with pytest.raises(ValueError, match=r"\(B, H\)"):
        LossBatch(torch.zeros(4))
    with pytest.raises(ValueError, match="weight"):
        LossBatch(torch.zeros(4, 1), weight=torch.ones(3))
    with pytest.raises(ValueError, match="integer"):
        LossBatch(torch.zeros(4, 1), group=torch.zeros(4))
