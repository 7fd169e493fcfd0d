"""Ensembles: several seeds and model families trained on the same fold, one forecast.

Every member sees exactly the samples, features and targets a single model of the
fold would (the shared preparation of :meth:`Forecaster.fit` runs once); only its model,
hyper-parameters and seed differ. The ensemble's ranking score is the members' scores
rank-averaged per date: each member's forecasts become ranks within the date
(centred on 0), and the ranks are averaged, so a member with larger numbers does not
outvote the others. A date with a single forecast (single-instrument timing) has no
ranks: there the members' scores are averaged as they are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaseq.analysis.scoring import validation_metrics
from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError
from alphaseq.features.registry import FeatureSet
from alphaseq.forecaster import FitInputs, Forecaster
from alphaseq.training.checkpoint import CheckpointError, save_checkpoint
from alphaseq.windows import SampleIndex

__all__ = ["EnsembleForecaster", "rank_average"]

# What fit() sets on the ensemble that each member needs to predict on its own.
_SHARED_FITTED = (
    "scaler_",
    "feature_names_",
    "label_names_",
    "regression_names_",
    "class_names_",
    "label_scale_",
    "signal_",
    "data_fingerprint_",
    "train_range_",
    "valid_range_",
)


def rank_average(scores: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Combine members' scores ``(S, M)`` into one ``(S,)`` by per-date rank averaging.

    Within each date every member's scores become centred ranks ``(r - 1/2) / n - 1/2``
    (``r`` = 1..n, ties sharing their average rank), symmetric around 0, and the
    members' ranks are averaged; NaN scores are left out of their member's ranking and
    of the average. On a date with one sample, the
    members' raw scores are averaged instead (one forecast has no rank).

    Parameters
    ----------
    scores : numpy.ndarray
        (S, M) scores of M members on S samples.
    dates : numpy.ndarray
        (S,) the date (any hashable code) of each sample.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (samples, members), got shape {scores.shape}")
    frame = pd.DataFrame(scores)
    frame["date"] = np.asarray(dates)
    grouped = frame.groupby("date", sort=False)
    # (rank - 1/2) / n - 1/2: symmetric around 0 on every date, whatever its size.
    counts = grouped.transform("count").to_numpy(dtype=np.float64)
    ranks = (grouped.rank().to_numpy() - 0.5) / counts - 0.5
    alone = (grouped["date"].transform("size") == 1).to_numpy()
    combined = np.where(alone[:, None], scores, ranks)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(combined).sum(axis=1)
        total = np.nansum(combined, axis=1)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


class EnsembleForecaster(Forecaster):
    """Several forecasters on the same fold, reported as one model.

    Takes every :class:`~alphaseq.forecaster.Forecaster` argument (the shared features,
    labels, windows and training loop) plus ``members``.

    Parameters
    ----------
    members : list of dict
        One entry per member: ``{"model": name, "model_params": {...}, "seed": int}``.
        ``model`` is any registered neural model or ``lightgbm``/``ridge``; ``seed``
        replaces the training loop's seed (initial weights, batch order, tree
        sampling). At least two members.
    **params
        The :class:`~alphaseq.forecaster.Forecaster` arguments; ``model`` and
        ``model_params`` are ignored (each member names its own).

    Attributes
    ----------
    members_ : list of Forecaster
        The fitted members, in the order of ``members``.
    history_ : list of dict
        One entry: the ensemble's own validation figures (``val_ic``, ``val_rank_ic``,
        ``val_sharpe`` and their standard errors) of the combined forecast; each
        member's epochs are in its own ``history_``.
    """

    def __init__(self, members: Sequence[dict[str, Any]] | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.members = members

    @classmethod
    def _param_names(cls) -> list[str]:
        return ["members", *Forecaster._param_names()]

    def _json_params(self) -> dict[str, Any]:
        return super()._json_params() | {"members": self._member_specs()}

    def _member_specs(self) -> list[dict[str, Any]]:
        members = list(self.members or [])
        if len(members) < 2:
            raise ConfigError(f"an ensemble needs at least two members, got {len(members)}")
        specs = []
        for k, member in enumerate(members):
            if not isinstance(member, dict) or not isinstance(member.get("model"), str):
                raise ConfigError(f"ensemble member {k} must name its model, got {member!r}")
            unknown = sorted(set(member) - {"model", "model_params", "seed"})
            if unknown:
                raise ConfigError(f"ensemble member {k} has unknown key(s) {unknown}")
            seed = member.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ConfigError(f"ensemble member {k}: seed must be an integer, got {seed!r}")
            specs.append(
                {
                    "model": member["model"],
                    "model_params": dict(member.get("model_params") or {}),
                    "seed": seed,
                }
            )
        return specs

    def _member(self, spec: dict[str, Any]) -> Forecaster:
        from alphaseq.tabular import TABULAR_MODELS, TabularForecaster

        family = TabularForecaster if spec["model"] in TABULAR_MODELS else Forecaster
        params = {k: v for k, v in Forecaster.get_params(self).items() if k in _FORECASTER}
        params |= {"model": spec["model"], "model_params": spec["model_params"]}
        return family(**params)

    # ------------------------------------------------------------------ fit
    def _train(self, inputs: FitInputs, *, checkpoint: str | Path | None, resume: bool) -> None:
        specs = self._member_specs()
        self.members_ = []
        for k, spec in enumerate(specs):
            member = self._member(spec)
            config = inputs.config.model_copy(update={"seed": spec["seed"]})
            path = None if checkpoint is None else Path(f"{checkpoint}.member{k}")
            member._train(
                dataclasses.replace(inputs, config=config), checkpoint=path, resume=resume
            )
            self.members_.append(member)
        figures: dict[str, float] = {}
        if inputs.valid is not None and len(inputs.valid):
            figures = self._scores(inputs, inputs.valid)
        self.history_ = [{"epoch": 0, **{f"val_{k}": v for k, v in figures.items()}}]
        self.best_epoch_ = 0
        monitor = inputs.config.monitor
        self.best_score_ = figures.get("loss" if monitor == "loss" else monitor, float("nan"))
        self.train_metrics_ = {
            f"train_{k}": v for k, v in self._scores(inputs, inputs.train).items()
        }
        self.n_parameters_ = sum(int(m.n_parameters_) for m in self.members_)

    def _scores(self, inputs: FitInputs, samples: SampleIndex) -> dict[str, float]:
        """The combined forecast's IC, rank IC and Sharpe on ``samples`` (validation
        figures with Newey–West errors over the label's overlap)."""
        import torch

        combined = self._combined(inputs.values, samples)
        target = inputs.targets[samples.t, samples.i, inputs.signal.index]
        return validation_metrics(
            torch.from_numpy(combined.astype(np.float32)),
            torch.from_numpy(np.asarray(target, dtype=np.float32)),
            torch.from_numpy(np.asarray(samples.t)),
            lags=max(int(inputs.signal.horizon) - 1, 0),
        )

    def _combined(self, values: np.ndarray, samples: SampleIndex) -> np.ndarray:
        signal = self._signal_index()
        scores = np.column_stack(
            [_member_signal(m, values, samples, signal) for m in self.members_]
        )
        return rank_average(scores, samples.t)

    def _signal_index(self) -> int:
        from alphaseq.forecaster import resolve_signal

        return resolve_signal(self.horizons, self.signal_horizon).index

    def fit(self, panel: Panel, **kwargs: Any) -> EnsembleForecaster:
        """Train every member on the same prepared samples (see :meth:`Forecaster.fit`)."""
        super().fit(panel, **kwargs)
        self._share_fitted()
        return self

    def _after_load(self) -> None:
        self._share_fitted()

    def _share_fitted(self) -> None:
        for member in self.members_:
            for name in _SHARED_FITTED:
                if hasattr(self, name):
                    setattr(member, name, getattr(self, name))

    # -------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise ConfigError("this EnsembleForecaster is not fitted yet: call fit() or load()")

    def predict(
        self,
        panel: Panel,
        dates: str | Sequence[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 8192,
        feature_set: FeatureSet | None = None,
    ) -> pd.DataFrame:
        """The members' forecasts combined: ``prediction`` rank-averaged per date (see
        :func:`rank_average`), every other output column the members' mean."""
        self._check_fitted()
        frames = [
            m.predict(panel, dates, device=device, batch_size=batch_size, feature_set=feature_set)
            for m in self.members_
        ]
        first = frames[0]
        if len(first) == 0:
            return first
        outputs = [c for c in first.columns if c not in ("date", "ticker", "prediction")]
        combined = first[["date", "ticker"]].copy()
        scores = np.column_stack([f["prediction"].to_numpy() for f in frames])
        combined["prediction"] = rank_average(scores, combined["date"].to_numpy())
        for column in outputs:
            shared = [f[column].to_numpy() for f in frames if column in f]
            combined[column] = np.mean(shared, axis=0)
        return combined

    def attention(
        self,
        panel: Panel,
        dates: str | Sequence[str] | None = None,
        *,
        device: str = "cpu",
        feature_set: FeatureSet | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Temporal attention averaged over the members that have it (each member's
        heads averaged first, so members with different head counts combine):
        ``(samples, (S, 1, L) weights)``, None when no member has attention."""
        self._check_fitted()
        frame, profiles = None, []
        for member in self.members_:
            samples, weights = member.attention(
                panel, dates, device=device, feature_set=feature_set
            )
            frame = samples if frame is None else frame
            if weights is not None:
                profiles.append(np.asarray(weights).mean(axis=1, keepdims=True))
        return frame, (np.mean(profiles, axis=0) if profiles else None)

    def ticker_attention(self, panel: Panel, date: str | None = None) -> pd.DataFrame | None:
        """The first member with attention's per-ticker attention (None without any)."""
        self._check_fitted()
        for member in self.members_:
            table = member.ticker_attention(panel, date)
            if table is not None:
                return table
        return None

    # ----------------------------------------------------------- save/load
    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> str:
        """One checkpoint file holding every member (see :meth:`Forecaster.save`)."""
        self._check_fitted()
        return save_checkpoint(path, self._common_state(metadata) | self._model_state())

    def _model_state(self) -> dict[str, Any]:
        return {
            "kind": "ensemble_forecaster",
            "members_state": [
                member._model_state()
                | {
                    "spec": json.dumps(spec),
                    "history": member.history_,
                    "best_epoch": member.best_epoch_,
                    "best_score": member.best_score_,
                }
                for spec, member in zip(self._member_specs(), self.members_, strict=True)
            ],
        }

    def _restore_model(self, state: dict[str, Any]) -> int:
        widths = set()
        self.members_ = []
        for part in state["members_state"]:
            member = self._member(json.loads(part["spec"]))
            widths.add(member._restore_model(part))
            member.history_ = list(part["history"])
            member.best_epoch_ = part["best_epoch"]
            member.best_score_ = part["best_score"]
            self.members_.append(member)
        if len(widths) != 1:
            raise CheckpointError(f"ensemble members take different inputs: {sorted(widths)}")
        self.n_parameters_ = sum(int(m.n_parameters_) for m in self.members_)
        return widths.pop()

    @classmethod
    def load(cls, path: str | Path) -> EnsembleForecaster:
        """Read an ensemble written by :meth:`save` (:meth:`Forecaster.load` does too)."""
        model = Forecaster.load(path)
        if not isinstance(model, EnsembleForecaster):
            raise CheckpointError(f"'{path}' holds a single forecaster, not an ensemble")
        return model

    def member_summary(self) -> list[dict[str, Any]]:
        """Per member: model, seed, kept epoch, epochs run, monitored score, size."""
        self._check_fitted()
        return [
            {
                "model": spec["model"],
                "seed": spec["seed"],
                "best_epoch": member.best_epoch_,
                "epochs": len(member.history_),
                "best_score": member.best_score_,
                "n_parameters": int(member.n_parameters_),
            }
            for spec, member in zip(self._member_specs(), self.members_, strict=True)
        ]


_FORECASTER = set(Forecaster._param_names())


def _member_signal(
    member: Forecaster, values: np.ndarray, samples: SampleIndex, column: int
) -> np.ndarray:
    """A member's ranking score on prepared samples: its signal head's regression
    output, or P(last class) - P(first class)."""
    regression, probs = member._predict_heads(values, samples, "cpu", 8192)
    if regression is not None:
        return regression[:, column].astype(np.float64)
    return (probs[:, column, -1] - probs[:, column, 0]).astype(np.float64)
