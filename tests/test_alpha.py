"""Scores in return units (Grinold's rule) for constructors that read forecasts as returns."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ci_config

from alphaseq.experiment import load_run_panel
from alphaseq.experiment.strategies import build_strategies
from alphaseq.portfolio.alpha import grinold_alpha, return_dispersion


def test_grinold_alpha_by_hand():
    scores = np.array([[1.0, 2.0, 3.0, np.nan], [5.0, 5.0, 5.0, 5.0], [0.0, 1.0, 2.0, 3.0]])
    skill = np.array([0.05, 0.05, -0.02])
    dispersion = np.array([0.08, 0.08, 0.08])
    alpha = grinold_alpha(scores, skill, dispersion)
    z = (np.array([1.0, 2.0, 3.0]) - 2.0) / np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(alpha[0, :3], 0.05 * 0.08 * z)
    assert np.isnan(alpha[0, 3])  # no forecast, no alpha
    assert (alpha[1] == 0).all()  # scores that do not vary say nothing
    assert (alpha[2] == 0).all()  # negative validation skill is not trusted
    # The order of the forecasts is kept: only their units change.
    assert (np.argsort(alpha[0, :3]) == np.argsort(scores[0, :3])).all()


def test_return_dispersion_reads_the_returns_that_ended_at_the_row():
    close = np.array([[100.0, 50.0, 20.0], [110.0, 50.0, np.nan], [121.0, 45.0, 22.0]])
    out = return_dispersion(close, np.array([0, 1, 2]), horizon=1)
    assert np.isnan(out[0])  # no history yet
    assert out[1] == pytest.approx(np.std([0.10, 0.0]))
    assert out[2] == pytest.approx(np.std([0.10, -0.10]))  # ticker 2 lacks row 1's close


MEAN_VARIANCE = "portfolio.constructors=[{name: mv, type: mean_variance}]"


def test_mean_variance_reads_grinold_alpha_of_rank_forecasts(ci_run):
    config = ci_config("labels.cross_section=rank", MEAN_VARIANCE)
    panel = load_run_panel(config)
    predictions = ci_run.predictions
    rows = np.searchsorted(panel.dates, predictions["date"].to_numpy())
    kwargs = {"first_row": int(rows.min()), "last_row": int(rows.max()), "horizon": 21}
    folds = sorted(predictions["fold"].unique())
    skilled, _ = build_strategies(
        config, panel, predictions, fold_skill=dict.fromkeys(folds, 0.05), **kwargs
    )
    unskilled, _ = build_strategies(
        config, panel, predictions, fold_skill=dict.fromkeys(folds, -0.01), **kwargs
    )
    assert skilled["mv"]["construction"]["forecasts"] == "grinold_alpha"
    # With no trusted skill the alpha is 0: mean-variance becomes minimum variance.
    assert not skilled["mv"]["weights"].equals(unskilled["mv"]["weights"])
    raw, _ = build_strategies(ci_config(MEAN_VARIANCE), panel, predictions, **kwargs)
    assert "forecasts" not in raw["mv"]["construction"]  # raw targets: forecasts are returns
