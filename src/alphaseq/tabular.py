"""Strong simple baselines behind the forecaster's interface: LightGBM and ridge.

A :class:`TabularForecaster` is a :class:`~alphaseq.forecaster.Forecaster` whose model is
not a network but a gradient-boosted tree ensemble (LightGBM) or a ridge regression
(scikit-learn). Everything before the model is the forecaster's own: the same causal
features, the scaler fitted on the training window, the same labels (market-neutral
targets included) and exactly the same purged, strided samples of each fold. Only the
input differs in shape: instead of the whole lookback window, each sample is the
feature vector of a few days of its window (``lags``; the last day is lag 0), flattened
into one row — with ``lags: all``, every day of the window (Qlib's Alpha360 layout).

Selection is made on the validation window only, like the networks' early stopping:
LightGBM stops adding trees when the monitored validation figure (``training.monitor``,
IC by default) has not improved for ``early_stopping_rounds`` rounds; ridge picks its
penalty among ``alpha`` values by the same figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from alphaseq.analysis.scoring import validation_metrics
from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError
from alphaseq.features import FeatureSet
from alphaseq.forecaster import FitInputs, Forecaster
from alphaseq.windows import SampleIndex

__all__ = ["TABULAR_MODELS", "TabularForecaster", "lagged_design"]

#: Model name -> its hyper-parameters and their defaults (``model.params`` in a config).
TABULAR_MODELS: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "lags": [0, 5, 10],
        "n_estimators": 500,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "max_depth": -1,
        "min_child_samples": 200,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_alpha": 0.0,
        "reg_lambda": 1.0,
        "early_stopping_rounds": 50,
    },
    "ridge": {
        "lags": [0, 5, 10],
        "alpha": [1.0, 10.0, 100.0, 1000.0, 10000.0],
    },
}


def lagged_design(values: np.ndarray, samples: SampleIndex, lags: Sequence[int]) -> np.ndarray:
    """One row per sample: the features of the days ``t - lag`` of its window, side by side.

    Parameters
    ----------
    values : numpy.ndarray
        Scaled features (T, N, F).
    samples : SampleIndex
        Samples ``(t, i)`` with complete windows (every lag below the lookback is finite).
    lags : sequence of int
        Days back from the sample's date, each in ``[0, lookback)``.

    Returns
    -------
    numpy.ndarray
        (S, len(lags) * F) float32, lag-major: the F features of ``lags[0]`` first.
    """
    blocks = [values[samples.t - lag, samples.i] for lag in lags]
    return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)


class TabularForecaster(Forecaster):
    """A LightGBM or ridge forecaster on exactly the samples a neural forecaster uses.

    Takes the :class:`~alphaseq.forecaster.Forecaster` arguments; ``model`` is
    ``"lightgbm"`` or ``"ridge"`` and ``model_params`` holds the keys of
    :data:`TABULAR_MODELS` (``lags``: a list of days back within the lookback, or
    ``"all"``). Only regression tasks (forward returns or trend scores, each head fitted
    on its own). From ``trainer`` it reads ``seed`` and ``monitor``.

    Attributes
    ----------
    model_ : list
        One fitted estimator per regression head (a ``lightgbm.Booster`` cut at its best
        iteration, or a ``sklearn.linear_model.Ridge``).
    lags_ : list of int
        The lags used.
    history_ : list of dict
        Validation figures per boosting round (LightGBM) or per penalty tried (ridge),
        for the signal head; ``best_epoch_`` indexes it.
    """

    # ----------------------------------------------------------------- params
    def _hyper(self) -> dict[str, Any]:
        if self.model not in TABULAR_MODELS:
            raise ConfigError(
                f"unknown tabular model {self.model!r}; available: {sorted(TABULAR_MODELS)}"
            )
        defaults = TABULAR_MODELS[self.model]
        given = dict(self.model_params or {})
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ConfigError(
                f"model {self.model!r} has no parameter(s) {unknown}; allowed: {sorted(defaults)}"
            )
        return defaults | given

    def _lags(self, hyper: dict[str, Any]) -> list[int]:
        lags = hyper["lags"]
        if lags == "all":
            return list(range(self.lookback))
        if (
            not isinstance(lags, list | tuple)
            or not lags
            or any(isinstance(x, bool) or not isinstance(x, int) for x in lags)
        ):
            raise ConfigError(
                f"model.params.lags must be a list of integers or 'all', got {lags!r}"
            )
        bad = [x for x in lags if not 0 <= x < self.lookback]
        if bad:
            raise ConfigError(
                f"model.params.lags {bad} fall outside the {self.lookback}-day window "
                f"(each lag must be in 0..{self.lookback - 1}: the model sees no more "
                "history than a network would)"
            )
        return sorted(set(int(x) for x in lags))

    # -------------------------------------------------------------------- fit
    def _train(self, inputs: FitInputs, *, checkpoint: Any, resume: bool) -> None:
        labels = inputs.labels
        if labels.class_names:
            raise ConfigError(
                f"model {self.model!r} fits regression tasks only; task {self._task()!r} "
                "has class heads (use task: regression, or a neural model)"
            )
        hyper = self._hyper()
        lags = self._lags(hyper)
        monitor = inputs.config.monitor
        seed = int(inputs.config.seed)
        x_train = lagged_design(inputs.values, inputs.train, lags)
        valid = inputs.valid if inputs.valid is not None and len(inputs.valid) else None
        x_valid = None if valid is None else lagged_design(inputs.values, valid, lags)
        estimators, signal_history, signal_best = [], [], -1
        for k in range(len(labels.regression_names)):
            y_train = inputs.targets[inputs.train.t, inputs.train.i, k]
            y_valid = None if valid is None else inputs.targets[valid.t, valid.i, k]
            fit = _fit_lightgbm if self.model == "lightgbm" else _fit_ridge
            estimator, history, best = fit(
                hyper, x_train, y_train, x_valid, y_valid, valid, monitor, seed
            )
            estimators.append(estimator)
            if k == inputs.signal.index:
                signal_history, signal_best = history, best
        self.model_ = estimators
        self.lags_ = lags
        self.history_ = signal_history
        self.best_epoch_ = signal_best
        best = signal_history[signal_best] if signal_best >= 0 else {}
        key = "val_loss" if monitor == "loss" else f"val_{monitor}"
        self.best_score_ = best.get(key, float("nan"))
        k = inputs.signal.index
        train_pred = _predict(estimators[k], x_train)
        y_train = inputs.targets[inputs.train.t, inputs.train.i, k]
        self.train_metrics_ = {
            f"train_{name}": value
            for name, value in _scores(train_pred, y_train, inputs.train.t).items()
        }
        self.n_parameters_ = sum(_size(e) for e in estimators)

    # ---------------------------------------------------------------- predict
    def _predict_heads(
        self, values: np.ndarray, samples: SampleIndex, device: str, batch_size: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        design = lagged_design(values, samples, self.lags_)
        regression = np.column_stack([_predict(e, design) for e in self.model_])
        return regression.astype(np.float32), None

    def attention(
        self,
        panel: Panel,
        dates: str | Sequence[str] | None = None,
        *,
        device: str = "cpu",
        feature_set: FeatureSet | None = None,
    ) -> tuple[pd.DataFrame, None]:
        """No temporal attention: the samples forecast on ``dates`` and None."""
        self._check_fitted()
        values = self._scaled_features(panel, feature_set)
        samples = self._prediction_samples(panel, values, dates)
        return pd.DataFrame(
            {"date": panel.dates[samples.t], "ticker": panel.tickers[samples.i]}
        ), None

    def ticker_attention(self, panel: Panel, date: str | None = None) -> None:
        """None: a tabular model has no attention."""
        return None

    # -------------------------------------------------------------- save/load
    def _model_state(self) -> dict[str, Any]:
        return {
            "kind": "tabular_forecaster",
            "model_name": self.model,
            "lags": list(self.lags_),
            "estimators": [_to_text(e) for e in self.model_],
        }

    def _restore_model(self, state: dict[str, Any]) -> int:
        self.lags_ = [int(x) for x in state["lags"]]
        self.model_ = [_from_text(self.model, text) for text in state["estimators"]]
        self.n_parameters_ = sum(_size(e) for e in self.model_)
        widths = {_n_inputs(e) for e in self.model_}
        if len(widths) != 1 or next(iter(widths)) % len(self.lags_):
            raise ValueError(f"estimators take {sorted(widths)} inputs for {len(self.lags_)} lags")
        return next(iter(widths)) // len(self.lags_)


# ----------------------------------------------------------------------------- helpers
def _scores(pred: np.ndarray, target: np.ndarray, dates: np.ndarray) -> dict[str, float]:
    """IC, rank IC and top-quintile Sharpe (the networks' validation figures) and MSE."""
    figures = validation_metrics(
        torch.from_numpy(np.asarray(pred, dtype=np.float32)),
        torch.from_numpy(np.asarray(target, dtype=np.float32)),
        torch.from_numpy(np.asarray(dates, dtype=np.int64)),
    )
    figures["loss"] = float(np.mean((np.asarray(pred, np.float64) - target) ** 2))
    return figures


def _better(monitor: str, score: float, best: float | None) -> bool:
    if not np.isfinite(score):
        return False
    if best is None or not np.isfinite(best):
        return True
    return score < best if monitor == "loss" else score > best


def _fit_lightgbm(hyper, x_train, y_train, x_valid, y_valid, valid, monitor, seed):
    """Boost up to ``n_estimators`` trees; keep the round best on the validation figure."""
    import lightgbm as lgb

    params = {
        "objective": "regression",
        "learning_rate": float(hyper["learning_rate"]),
        "num_leaves": int(hyper["num_leaves"]),
        "max_depth": int(hyper["max_depth"]),
        "min_data_in_leaf": int(hyper["min_child_samples"]),
        "bagging_fraction": float(hyper["subsample"]),
        "bagging_freq": 1 if float(hyper["subsample"]) < 1 else 0,
        "feature_fraction": float(hyper["colsample_bytree"]),
        "lambda_l1": float(hyper["reg_alpha"]),
        "lambda_l2": float(hyper["reg_lambda"]),
        "seed": seed,
        # Same inputs, same trees: needed for bit-identical resumed runs.
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": max(1, torch.get_num_threads()),
        "verbosity": -1,
    }
    train_set = lgb.Dataset(x_train, y_train, free_raw_data=False)
    rounds = int(hyper["n_estimators"])
    if x_valid is None:
        booster = lgb.train(params, train_set, num_boost_round=rounds)
        return _trimmed(booster, rounds), [], -1
    history: list[dict[str, float]] = []

    def score(pred: np.ndarray, data) -> tuple[str, float, bool]:
        # The running validation forecasts of this round, scored exactly as the
        # networks' epochs are (per-date IC, rank IC, top-quintile Sharpe, MSE).
        figures = _scores(pred, y_valid, valid.t)
        history.append({"epoch": len(history)} | {f"val_{k}": v for k, v in figures.items()})
        value = figures[monitor]
        return monitor, value if np.isfinite(value) else -np.inf, monitor != "loss"

    valid_set = lgb.Dataset(x_valid, y_valid, reference=train_set, free_raw_data=False)
    booster = lgb.train(
        params | {"metric": "None"},
        train_set,
        num_boost_round=rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        feval=score,
        callbacks=[
            lgb.early_stopping(
                int(hyper["early_stopping_rounds"]), first_metric_only=True, verbose=False
            )
        ],
    )
    best = max(int(booster.best_iteration), 1) - 1
    return _trimmed(booster, best + 1), history, best


def _trimmed(booster, rounds: int):
    """The booster cut at ``rounds`` trees, rebuilt from its text (what a checkpoint holds)."""
    import lightgbm as lgb

    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def _fit_ridge(hyper, x_train, y_train, x_valid, y_valid, valid, monitor, seed):
    """Ridge for each penalty in ``alpha``; keep the best on the validation figure."""
    from sklearn.linear_model import Ridge

    alphas = hyper["alpha"]
    alphas = [alphas] if isinstance(alphas, int | float) else list(alphas)
    if not alphas or any(isinstance(a, bool) or not a > 0 for a in alphas):
        raise ConfigError(f"model.params.alpha must be > 0 (or a list of them), got {alphas!r}")
    if x_valid is None and len(alphas) > 1:
        raise ConfigError(
            "ridge picks its alpha on the validation window; without one, give a single alpha"
        )
    history, fitted, best, best_score = [], [], 0, None
    for k, alpha in enumerate(alphas):
        # float64 coefficients: a checkpoint stores them as such, so a loaded model
        # predicts bit for bit what the fitted one does.
        model = Ridge(alpha=float(alpha)).fit(x_train.astype(np.float64), y_train)
        fitted.append(model)
        if x_valid is None:
            break
        figures = _scores(model.predict(x_valid), y_valid, valid.t)
        history.append(
            {"epoch": k, "alpha": float(alpha)} | {f"val_{n}": v for n, v in figures.items()}
        )
        if _better(monitor, figures[monitor], best_score):
            best, best_score = k, figures[monitor]
    return fitted[best], history, best if history else -1


def _predict(estimator, design: np.ndarray) -> np.ndarray:
    return np.asarray(estimator.predict(design), dtype=np.float64)


def _size(estimator) -> int:
    """Learned numbers: leaves of every tree, or coefficients and intercept."""
    if hasattr(estimator, "coef_"):
        return int(np.size(estimator.coef_)) + 1
    dump = estimator.dump_model()
    return int(sum(tree["num_leaves"] for tree in dump["tree_info"]))


def _n_inputs(estimator) -> int:
    if hasattr(estimator, "coef_"):
        return int(np.size(estimator.coef_))
    return int(estimator.num_feature())


def _to_text(estimator) -> str:
    """A fitted estimator as plain text (checkpoints never hold pickled objects)."""
    if hasattr(estimator, "coef_"):
        return json.dumps(
            {
                "alpha": float(estimator.alpha),
                "coef": np.asarray(estimator.coef_, dtype=np.float64).tolist(),
                "intercept": float(estimator.intercept_),
            }
        )
    return estimator.model_to_string()


def _from_text(name: str, text: str):
    if name == "ridge":
        from sklearn.linear_model import Ridge

        state = json.loads(text)
        model = Ridge(alpha=state["alpha"])
        model.coef_ = np.asarray(state["coef"], dtype=np.float64)
        model.intercept_ = float(state["intercept"])
        model.n_features_in_ = len(model.coef_)
        return model
    import lightgbm as lgb

    return lgb.Booster(model_str=text)
