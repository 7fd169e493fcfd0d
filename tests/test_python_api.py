"""The pandas-first Python API: ``alphaseq.backtest``, ``run``/``load_run``, and the
scikit-learn conventions of forecasters and constructors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import alphaseq
from alphaseq.backtest.engine import backtest as engine_backtest
from alphaseq.backtest.engine import month_end_rows
from alphaseq.errors import ConfigError, DataError
from alphaseq.forecaster import Forecaster
from alphaseq.portfolio import HRP, EqualWeight, PortfolioConstraints, TopK, make_policy

NAN = float("nan")
DATES = pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"], name="date")


@pytest.fixture
def three():
    """Three tickers, C listed on the second day; weights on days 0 and 2."""
    prices = pd.DataFrame(
        {"A": [10.0, 11.0, 12.0, 12.0], "B": [20.0, 20.0, 18.0, 18.0], "C": [NAN, 5.0, 5.0, 6.0]},
        index=DATES,
    )
    weights = pd.DataFrame(
        {"A": [0.5, 0.25], "B": [0.5, 0.0], "C": [0.0, 0.5]}, index=DATES[[0, 2]]
    )
    return prices, weights


# ------------------------------------------------------------------------ backtest
def test_hand_computed_three_tickers(three):
    prices, weights = three
    result = alphaseq.backtest(prices, weights, cost_bps=10.0)
    # Day 0: buy 1.0 of NAV (cost 10 bps). Day 1: 0.5*1.1 + 0.5*1.0 = 1.05. Day 2:
    # 0.5*1.2 + 0.5*0.9 = 1.05 (flat), drifted to (4/7, 3/7, 0); traded
    # |1/4 - 4/7| + 3/7 + 1/2 = 1.25. Day 3: 1/4 cash + 1/4 * 1 + 1/2 * 6/5 = 1.1.
    expected = [-0.001, 0.05, (1 - 0.00125) - 1, 0.1]
    np.testing.assert_allclose(result.returns.to_numpy(), expected, rtol=0, atol=1e-15)
    assert result.returns.name == "net_return"
    assert list(result.returns.index) == list(DATES)
    np.testing.assert_allclose(result.turnover.to_numpy(), [0.5, 0.625], atol=1e-15)
    np.testing.assert_allclose(result.costs.to_numpy(), [0.001, 0.00125], atol=1e-15)
    np.testing.assert_allclose(result.equity.to_numpy(), np.cumprod(1 + np.array(expected)))
    np.testing.assert_allclose(result.drifted_weights.iloc[1].to_numpy(), [4 / 7, 3 / 7, 0])
    pd.testing.assert_frame_equal(result.weights, weights, check_names=False)
    figures = result.metrics()
    assert figures["total_return"] == pytest.approx(result.equity.iloc[-1] - 1)
    assert figures["turnover"] == pytest.approx(0.625)
    text = repr(result)
    assert "2021-01-04..2021-01-07" in text and "2 rebalances" in text and "3 tickers" in text


def test_frame_equals_engine_on_arrays():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2020-01-01", periods=90, name="date")
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, (90, 6)), axis=0)
    close[:10, 4] = NAN  # a late listing
    prices = pd.DataFrame(close, index=dates, columns=[f"T{i}" for i in range(6)])
    rows = month_end_rows(dates, start_row=10)
    targets = rng.dirichlet(np.ones(6), len(rows)) * 0.95
    weights = pd.DataFrame(targets, index=dates[rows], columns=prices.columns)
    framed = alphaseq.backtest(prices, weights, cost_bps=7.5)
    arrays = engine_backtest(close, rows, targets, cost_bps=7.5)
    np.testing.assert_array_equal(framed.returns.to_numpy(), arrays.returns)
    np.testing.assert_array_equal(framed.turnover.to_numpy(), arrays.turnover)
    np.testing.assert_array_equal(framed.costs.to_numpy(), arrays.costs)
    np.testing.assert_array_equal(framed.weights.to_numpy(), arrays.weights_after)
    pd.testing.assert_series_equal(framed.returns, arrays.to_series(dates))


def test_missing_tickers_weigh_zero_and_end_cuts(three):
    prices, weights = three
    some = weights[["A"]]
    result = alphaseq.backtest(prices, some, cost_bps=0, end="2021-01-06")
    assert list(result.weights.columns) == ["A", "B", "C"]
    assert (result.weights[["B", "C"]] == 0).all().all()
    assert result.returns.index[-1] == pd.Timestamp("2021-01-06")


def _reindexed(frame, index):
    frame.index = index
    return frame


BAD_INPUTS = {
    "prices must be a pandas DataFrame": lambda p, w: (p.to_numpy(), w, 10),
    "weights must be a pandas DataFrame": lambda p, w: (p, w.to_dict(), 10),
    "prices must be indexed by dates": lambda p, w: (p.reset_index(drop=True), w, 10),
    "prices dates are not sorted: 2021-01-06 comes after 2021-01-07": lambda p, w: (
        p.iloc[::-1],
        w,
        10,
    ),
    "prices has the date 2021-01-05 more than once": lambda p, w: (
        _reindexed(p, DATES[[0, 1, 1, 3]]),
        w,
        10,
    ),
    "weights has the date 2021-01-04 more than once": lambda p, w: (
        p,
        _reindexed(w, DATES[[0, 0]]),
        10,
    ),
    "prices of 'B' on 2021-01-06 is -1.0": lambda p, w: (p.replace(18.0, -1.0), w, 10),
    "prices column 'A' is not numeric": lambda p, w: (p.astype({"A": str}), w, 10),
    "weights date 2021-01-09 is not a date of prices": lambda p, w: (
        p,
        _reindexed(w, pd.DatetimeIndex(["2021-01-04", "2021-01-09"])),
        10,
    ),
    "ticker(s) that prices lack: ['ZZZ']": lambda p, w: (p, w.assign(ZZZ=0.1), 10),
    "weight of 'B' on 2021-01-04 is nan": lambda p, w: (p, w.assign(B=[NAN, 0.0]), 10),
    "weight of 'A' on 2021-01-06 is inf": lambda p, w: (p, w.replace(0.25, np.inf), 10),
    "weight 0.3 on 'C' on 2021-01-04, which has no price that day": lambda p, w: (
        p,
        w.assign(A=[0.2, 0.25], C=[0.3, 0.5]),
        10,
    ),
    "weights on 2021-01-04 sum to 1.5 > 1": lambda p, w: (p, w.assign(C=[0.5, 0.5]), 10),
    "prices is empty": lambda p, w: (p.iloc[:0], w, 10),
}


@pytest.mark.parametrize("message", list(BAD_INPUTS))
def test_bad_inputs_name_what_and_where(three, message):
    prices, weights, cost = BAD_INPUTS[message](three[0].copy(), three[1].copy())
    with pytest.raises(DataError) as caught:
        alphaseq.backtest(prices, weights, cost_bps=cost)
    assert message in str(caught.value)


@pytest.mark.parametrize("cost", [-1.0, NAN, "10", True])
def test_bad_cost_is_a_config_error(three, cost):
    with pytest.raises(ConfigError, match="cost_bps must be a finite number >= 0"):
        alphaseq.backtest(*three, cost_bps=cost)


def test_end_before_the_last_rebalance(three):
    with pytest.raises(ConfigError, match="before the last rebalance date 2021-01-06"):
        alphaseq.backtest(*three, end="2021-01-05")


def test_backtest_is_callable_before_and_after_engine_import():
    """A fresh interpreter: the package is callable whichever import comes first."""
    script = textwrap.dedent(
        """
        import sys, types
        import pandas as pd
        import alphaseq
        assert "alphaseq.backtest" not in sys.modules
        dates = pd.bdate_range("2021-01-04", periods=5)
        prices = pd.DataFrame({"A": [1.0, 1.1, 1.2, 1.1, 1.3]}, index=dates)
        weights = pd.DataFrame({"A": [1.0]}, index=dates[:1])
        first = alphaseq.backtest(prices, weights).returns
        import alphaseq.backtest.engine
        assert isinstance(alphaseq.backtest, types.ModuleType)
        second = alphaseq.backtest(prices, weights).returns
        assert first.equals(second)
        from alphaseq.backtest import backtest, backtest_frame
        assert backtest is alphaseq.backtest.engine.backtest  # the array engine stays
        assert alphaseq.backtest_frame is backtest_frame
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# ------------------------------------------------------------------- constructors
@pytest.fixture(scope="module")
def market():
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2019-01-01", periods=160, name="date")
    close = 50 * np.cumprod(1 + rng.normal(0.0005, 0.015, (160, 5)), axis=0)
    prices = pd.DataFrame(close, index=dates, columns=list("VWXYZ"))
    scores = pd.DataFrame(rng.normal(size=(160, 5)), index=dates, columns=prices.columns)
    return prices, scores


def test_constructor_fit_gives_wide_weights_at_month_ends(market):
    prices, scores = market
    constructor = TopK(1, constraints=PortfolioConstraints(max_turnover=None))
    assert constructor.fit(prices, scores, rebalance="month_end") is constructor
    weights = constructor.weights_
    ends = prices.index[month_end_rows(prices.index)]
    assert list(weights.index) == list(ends) and list(weights.columns) == list(prices.columns)
    best = scores.loc[ends].idxmax(axis=1)
    assert (weights.idxmax(axis=1) == best).all()
    np.testing.assert_allclose(weights.max(axis=1), 1.0)


def test_constructor_fit_matches_the_policy_backtest(market):
    """Turnover caps read the drifted weights: fit runs the same per-date logic."""
    prices, scores = market
    constructor = TopK(2)  # default constraints: one-way turnover cap 0.1
    weights = constructor.fit(prices, scores, rebalance="month_end").weights_
    close = prices.to_numpy()
    rows = prices.index.get_indexer(weights.index)
    policy = make_policy(TopK(2), close, scores.to_numpy()[rows])
    reference = engine_backtest(close, rows, policy, cost_bps=10.0)
    np.testing.assert_allclose(weights.to_numpy(), reference.weights_after, atol=1e-12)
    replayed = alphaseq.backtest(prices, weights, cost_bps=10.0)
    np.testing.assert_allclose(replayed.returns.to_numpy(), reference.returns, atol=1e-12)


def test_constructor_fit_without_scores(market):
    prices, scores = market
    assert HRP(lookback=20).fit(prices, rebalance="month_end").weights_.sum(axis=1).gt(0.99).all()
    dates = prices.index[[30, 60]]
    equal = EqualWeight().fit(prices, rebalance=list(dates)).weights_
    np.testing.assert_allclose(equal.to_numpy(), 0.2)
    with pytest.raises(ConfigError, match="TopK ranks forecasts: pass forecasts="):
        TopK(2).fit(prices)
    with pytest.raises(DataError, match="rebalance date 2030-01-01 is not a date of prices"):
        EqualWeight().fit(prices, rebalance=["2030-01-01"])
    with pytest.raises(DataError, match="forecasts name 1 ticker"):
        TopK(2).fit(prices, scores.assign(Q=1.0))


# ------------------------------------------------------------------- run results
@pytest.fixture(scope="module")
def results(ci_run):
    return alphaseq.load_run(ci_run.run_dir)


def test_load_run_tidy_and_wide(results, ci_run):
    tidy = results.forecasts()
    assert {"date", "ticker", "fold", "prediction", "label"} <= set(tidy.columns)
    assert len(tidy) == len(ci_run.predictions)
    wide = results.forecasts(wide=True)
    assert isinstance(wide.index, pd.DatetimeIndex) and wide.index.is_monotonic_increasing
    assert wide.shape == (tidy["date"].nunique(), tidy["ticker"].nunique())
    labels = results.forecasts(wide=True, values="label")
    assert labels.shape == wide.shape

    returns = results.returns(wide=True)
    assert list(returns.columns) == results.strategies
    assert returns.notna().sum().sum() == len(results.returns())
    one = results.returns().query("strategy == 'model_topk'").set_index("date")["net_return"]
    np.testing.assert_array_equal(returns["model_topk"].dropna().to_numpy(), one.to_numpy())

    weights = results.weights("model_topk", wide=True)
    assert isinstance(weights.index, pd.DatetimeIndex)
    assert (weights.sum(axis=1) <= 1 + 1e-9).all() and not weights.isna().any().any()
    assert set(results.weights()["strategy"]) >= {"model_topk", "equal_weight"}
    assert results.metrics["strategies"].keys() == set(results.strategies)
    assert results.config.name == "ci"
    assert list(results.performance().index) == results.strategies
    assert "strategies=" in repr(results)


def test_load_run_weights_replay_the_run(results):
    """The stored weights of a strategy backtest to the run's own returns."""
    from alphaseq.experiment import load_run_panel

    panel = load_run_panel(results.config)
    prices = pd.DataFrame(panel.close, index=pd.DatetimeIndex(panel.dates), columns=panel.tickers)
    weights = results.weights("model_topk", wide=True)
    end = results.returns(wide=True)["model_topk"].dropna().index[-1]
    replay = alphaseq.backtest(prices, weights, results.config.portfolio.cost_bps, end=end)
    stored = results.returns(wide=True)["model_topk"].dropna()
    np.testing.assert_allclose(replay.returns.to_numpy(), stored.to_numpy(), atol=1e-12)


def test_load_run_errors(results, tmp_path):
    with pytest.raises(ConfigError, match="needs a strategy"):
        results.weights(wide=True)
    with pytest.raises(ConfigError, match="no weights for strategy 'nope'"):
        results.weights("nope")
    with pytest.raises(ConfigError, match="no column 'nope'"):
        results.forecasts(wide=True, values="nope")
    with pytest.raises(alphaseq.AlphaseqError, match="not an alphaseq run directory"):
        alphaseq.load_run(tmp_path)


def test_experiment_config_forms(tmp_path):
    from alphaseq.experiment import experiment_config, packaged_configs

    assert "ci" in packaged_configs() and "search_space" not in packaged_configs()
    named = experiment_config("ci", {"training.epochs": 1})
    assert named.name == "ci" and named.training.epochs == 1
    assert experiment_config(named) is named
    assert experiment_config(named, ["portfolio.top_k=3"]).portfolio.top_k == 3
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndata: {source: sp500}\n")
    assert experiment_config(path).name == "mine"
    assert experiment_config({"name": "d", "data": {"source": "sp500"}}).name == "d"
    with pytest.raises(ConfigError, match="neither a file nor a packaged config"):
        experiment_config("no_such_config")
    with pytest.raises(ConfigError, match="must be an ExperimentConfig"):
        experiment_config(42)


# ------------------------------------------------------------------ scikit-learn
def test_forecaster_clone_unfitted():
    forecaster = Forecaster(horizons=(5, 21), trainer={"epochs": 2}, model_params={"hidden": 8})
    copy = clone(forecaster)
    assert copy is not forecaster and copy.get_params() == forecaster.get_params()
    assert copy.trainer is not forecaster.trainer  # parameters are copied, not shared


def test_forecaster_clone_fitted(ci_run):
    from sklearn.utils.validation import check_is_fitted

    fitted = Forecaster.load(ci_run.run_dir / "folds" / "00" / "model.ckpt")
    check_is_fitted(fitted)
    copy = clone(fitted)
    assert not hasattr(copy, "model_") and not copy.__sklearn_is_fitted__()
    assert copy.get_params() == fitted.get_params()


def test_forecaster_params_round_trip():
    forecaster = Forecaster()
    assert forecaster.set_params(lookback=30, horizons=(5,)) is forecaster
    assert forecaster.get_params()["lookback"] == 30
    other = Forecaster().set_params(**forecaster.get_params())
    assert other.get_params() == forecaster.get_params()
    assert repr(other) == "Forecaster(horizons=(5,), lookback=30)"
    with pytest.raises(ConfigError, match="no parameter 'lookbak' \\(did you mean 'lookback'"):
        forecaster.set_params(lookbak=3)


def test_forecaster_nested_params():
    from alphaseq.training import TrainerConfig

    given = {"hidden_size": 8}
    forecaster = Forecaster(model_params=given, trainer={"epochs": 2})
    assert forecaster.set_params(model_params__num_layers=2, trainer__epochs=3) is forecaster
    assert forecaster.model_params == {"hidden_size": 8, "num_layers": 2}
    assert given == {"hidden_size": 8}  # the caller's dict is not modified
    assert forecaster.trainer == {"epochs": 3}
    assert clone(forecaster).get_params() == forecaster.get_params()
    # A TrainerConfig stays one, and keys it never set (the task's loss) stay unset.
    configured = Forecaster(trainer=TrainerConfig(epochs=2)).set_params(trainer__batch_size=64)
    assert configured.trainer.model_fields_set == {"epochs", "batch_size"}
    with pytest.raises(ConfigError, match="trainer__epochs='x'"):
        configured.set_params(trainer__epochs="x")
    with pytest.raises(ConfigError, match="no setting 'epoch' \\(did you mean 'epochs'"):
        forecaster.set_params(trainer__epoch=3)
    with pytest.raises(ConfigError, match="'lookback' has no nested parameters"):
        forecaster.set_params(lookback__x=3)


def test_subpackages_are_lazy_top_level_names():
    from alphaseq.report import build_report

    assert alphaseq.report.build_report is build_report
    assert alphaseq.portfolio.TopK is TopK
    assert {"backtest", "portfolio", "report", "run", "load_run"} <= set(dir(alphaseq))
    script = "import alphaseq, sys; alphaseq.portfolio; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr  # still nothing heavy imported


def test_other_forecasters_clone():
    from alphaseq.ensemble import EnsembleForecaster
    from alphaseq.tabular import TabularForecaster

    members = [{"model": "lstm"}, {"model": "ridge"}]
    for estimator in (TabularForecaster(model="ridge"), EnsembleForecaster(members, lookback=9)):
        copy = clone(estimator)
        assert type(copy) is type(estimator) and copy.get_params() == estimator.get_params()
        assert type(estimator).__name__ in repr(copy)
