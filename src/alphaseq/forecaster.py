"""A forecaster with a scikit-learn-like API: ``fit`` a panel, ``predict`` dates, ``save``/``load``.

It wires the pieces together: causal features, a scaler fitted on the training dates
only, labels purged at the training window's end, a registered model and the
:class:`~alphaseq.training.trainer.Trainer`.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError

from alphaseq._config_base import did_you_mean, short_repr
from alphaseq.analysis.scoring import SignalScorer
from alphaseq.data.panel import Panel
from alphaseq.errors import ConfigError, DataError
from alphaseq.features import FeatureScaler, FeatureSet, compute_features, make_labels
from alphaseq.features.labels import cross_section_targets, excess_targets
from alphaseq.models import build_model, count_parameters
from alphaseq.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from alphaseq.training.trainer import Trainer, TrainerConfig, TrainingResult, predict_outputs
from alphaseq.validation.splits import Fold, LeakageError, Segment
from alphaseq.windows import SampleIndex, WindowDataset, valid_samples

_CLASS_LABELS = {"direction": 2, "three_class": 3}
TASKS = ("regression", "trend", "classification")


@dataclass(frozen=True, eq=False)
class TaskLabels:
    """The label columns a task trains on: regression columns first, then class columns.

    Attributes
    ----------
    values : numpy.ndarray
        (T, N, H_reg + H_cls) labels (class codes as floats), NaN where unknown.
    regression_names, class_names : tuple of str
        Column names of each part.
    n_classes : int
        Classes per classification column (0 without classification).
    horizon : int
        The furthest any column looks ahead (what purging must cover).
    targets : numpy.ndarray or None
        What the model learns, when it differs from ``values``: the regression columns
        made market-neutral (in excess of the benchmark, normalised per date; see
        :func:`alphaseq.features.labels.cross_section_targets`). ``values`` stay the raw
        labels that forecasts are evaluated and traded against.
    """

    values: np.ndarray
    regression_names: tuple[str, ...]
    class_names: tuple[str, ...]
    n_classes: int
    horizon: int
    targets: np.ndarray | None = None

    @property
    def training_values(self) -> np.ndarray:
        """The (T, N, H) array the model is trained and validated on."""
        return self.values if self.targets is None else self.targets

    @property
    def names(self) -> tuple[str, ...]:
        """Every column name, regression first."""
        return (*self.regression_names, *self.class_names)

    @property
    def horizons(self) -> tuple[int, ...]:
        """The horizon of each head (the same for the regression and the class heads)."""
        names = self.regression_names or self.class_names
        return tuple(int(name.rsplit("_", 1)[1]) for name in names)

    def signal(self, signal_horizon: int | None = None) -> Signal:
        """The head that drives the portfolio: see :class:`Signal`."""
        return resolve_signal(self.horizons, signal_horizon, self.names)


@dataclass(frozen=True)
class Signal:
    """The one forecast that ranks assets: the same head for early stopping, the tuning
    objective and the portfolio (resolved once per task by :func:`resolve_signal`).

    Attributes
    ----------
    horizon : int
        Its horizon in trading days.
    index : int
        Column of the model's outputs (regression head, or class head for a classifier)
        and of the label array whose truth it is scored against: heads and label
        columns come in the same horizon order, regression first.
    label : str
        Name of that label column (e.g. ``trend_30``).
    """

    horizon: int
    index: int
    label: str


def resolve_signal(
    horizons: Sequence[int], signal_horizon: int | None = None, names: Sequence[str] = ()
) -> Signal:
    """The signal head of a task with these horizons: ``signal_horizon``, or the longest.

    Raises
    ------
    ConfigError
        When ``signal_horizon`` is not one of ``horizons``.
    """
    horizons = [int(h) for h in horizons]
    wanted = int(signal_horizon) if signal_horizon is not None else max(horizons)
    if wanted not in horizons:
        raise ConfigError(f"signal_horizon {wanted} is not one of the horizons {horizons}")
    index = horizons.index(wanted)
    return Signal(wanted, index, str(names[index]) if len(names) > index else "")


def task_labels(
    panel: Panel,
    task: str = "regression",
    label: str = "forward_return",
    horizons: Sequence[int] = (21,),
    *,
    flat_band: float = 0.01,
    vol_window: int = 63,
    cross_section: str | None = None,
    excess: str | None = None,
) -> TaskLabels:
    """Labels of a forecasting task.

    ``regression``: ``label`` (forward_return or trend) per horizon. ``trend``: a bounded
    trend score and an up/down direction per horizon (multi-task: one model, two heads
    per horizon). ``classification``: ``label`` (direction, or three_class UP/DOWN/FLAT
    with ``flat_band``) per horizon.

    ``excess`` (``benchmark`` or ``mean``, forward returns only) and then
    ``cross_section`` (``rank``, ``zscore`` or ``demean``) turn the regression columns
    into market-neutral training targets (:attr:`TaskLabels.targets`); the raw labels
    stay in :attr:`TaskLabels.values`.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; allowed: {list(TASKS)}")
    if task == "regression":
        if label not in ("forward_return", "trend"):
            raise ConfigError(
                f"task 'regression' predicts forward_return or trend, not {label!r} "
                f"(use task 'classification' for direction or three_class)"
            )
        made = make_labels(panel, label, horizons, vol_window=vol_window)
        labels = TaskLabels(made.values, made.names, (), 0, made.horizon)
    elif task == "trend":
        score = make_labels(panel, "trend", horizons, vol_window=vol_window)
        direction = make_labels(panel, "direction", horizons)
        values = np.concatenate([score.values, direction.values], axis=-1)
        labels = TaskLabels(values, score.names, direction.names, 2, score.horizon)
    else:
        if label not in _CLASS_LABELS:
            raise ConfigError(
                f"task 'classification' predicts direction or three_class, not {label!r}"
            )
        made = make_labels(panel, label, horizons, flat_band=flat_band)
        labels = TaskLabels(made.values, (), made.names, _CLASS_LABELS[label], made.horizon)
    return _market_neutral(labels, panel, label, cross_section, excess)


def _market_neutral(
    labels: TaskLabels, panel: Panel, label: str, cross_section: str | None, excess: str | None
) -> TaskLabels:
    """``labels`` with market-neutral training targets for their regression columns."""
    if cross_section is None and excess is None:
        return labels
    n_reg = len(labels.regression_names)
    if n_reg == 0:
        raise ConfigError(
            "labels.cross_section and labels.excess apply to regression targets; this "
            "task only has classes (set them to null)"
        )
    if excess is not None and label != "forward_return":
        raise ConfigError(f"labels.excess needs forward_return labels, not {label!r}")
    targets = labels.values.copy()
    part = targets[..., :n_reg]
    if excess is not None:
        part = excess_targets(part, labels.horizons, excess, panel.benchmark)
    if cross_section is not None:
        if panel.n_tickers < 2:
            raise ConfigError(
                f"labels.cross_section {cross_section!r} ranks tickers against each other; "
                f"{panel.name!r} has one ticker (set it to null)"
            )
        part = cross_section_targets(part, cross_section)
    targets[..., :n_reg] = part
    return replace(labels, targets=targets)


@dataclass(frozen=True, eq=False)
class FitInputs:
    """What :meth:`Forecaster.fit` prepares for the model: the same for every family.

    Attributes
    ----------
    panel : Panel
        The prices.
    values : numpy.ndarray
        Scaled features (T, N, F), the scaler fitted on the training window only.
    names : list of str
        Feature names, in the order of ``values``' last axis.
    labels : TaskLabels
        The task's labels (raw values and training targets).
    targets : numpy.ndarray
        (T, N, H) what the model learns: the training targets, regression columns
        divided by ``label_scale``.
    label_scale : numpy.ndarray or None
        Per regression column, the training samples' standard deviation.
    signal : Signal
        The head that drives early stopping and the portfolio.
    train, valid : SampleIndex
        Purged training samples (strided) and validation samples (every date; None
        without a validation window).
    config : TrainerConfig
        Training loop settings (seed, monitor, ...).
    scaler : FeatureScaler or None
        The fitted scaler.
    """

    panel: Panel
    values: np.ndarray
    names: list
    labels: TaskLabels
    targets: np.ndarray
    label_scale: np.ndarray | None
    signal: Signal
    train: SampleIndex
    valid: SampleIndex | None
    config: TrainerConfig
    scaler: FeatureScaler | None


class Forecaster:
    """Forecast a label of every ticker from lookback windows of causal features.

    Constructor arguments are only stored; everything learned lives in attributes
    ending in ``_``.

    Parameters
    ----------
    model : str, default "lstm"
        Registered model name (``lstm``, ``gru``, ``linear``).
    model_params : dict, optional
        Hyper-parameters of the model (hidden_size, num_layers, dropout, ...).
    features : list of str, optional
        Feature names; default: the default set the data supports.
    cross_section : {None, "rank", "robust_zscore"}
        Per-date normalisation of the features across tickers.
    scaler : {"robust", "standard", None}, default "robust"
        Per-feature scaling fitted on the training dates only.
    scaler_clip : float or None, default 3.0
        Clip scaled features to ``+-scaler_clip``.
    label : {"forward_return", "trend", "direction", "three_class"}
        What to predict; ``direction`` and ``three_class`` train a classifier.
    horizons : sequence of int, default (21,)
        Label horizons in trading days.
    flat_band : float
        FLAT band of the ``three_class`` label.
    label_cross_section : {None, "rank", "zscore", "demean"}
        Train on the regression label normalised across tickers per date (see
        :func:`task_labels`); forecasts are still evaluated against the raw label.
    label_excess : {None, "benchmark", "mean"}
        Train on the forward return in excess of the benchmark's (or the date's mean).
    task : {"regression", "trend", "classification"}, optional
        What the model learns (see :func:`task_labels`): regression of ``label``; trend
        scores with direction classifiers per horizon (multi-task); or classes of
        ``label`` (direction, three_class). Default: classification for a class label,
        else regression.
    class_weights : {None, "balanced"}
        Weight classes by inverse frequency in the training samples (imbalance).
    signal_horizon : int, optional
        The horizon whose output becomes ``prediction`` (default: the longest).
    vol_window : int
        Volatility window of the trend score.
    lookback : int, default 60
        Window length in trading days.
    stride : int, default 1
        Use every ``stride``-th training date (validation uses every date).
    valid_fraction : float, default 0.2
        Share of the dates used for validation when :meth:`fit` gets no ranges.
    trainer : TrainerConfig or dict, optional
        Training loop settings.

    Attributes
    ----------
    model_ : torch.nn.Module
    scaler_ : FeatureScaler or None
    feature_names_ : list of str
    label_names_ : list of str
    label_scale_ : list of float or None
        Standard deviation of each regression label over the training samples; the
        model learns labels divided by it, and :meth:`predict` multiplies it back.
    history_ : list of dict
    best_epoch_ : int
    data_fingerprint_ : str
    train_range_, valid_range_ : tuple of str
    """

    def __init__(
        self,
        model: str = "lstm",
        model_params: dict[str, Any] | None = None,
        features: Sequence[str] | None = None,
        cross_section: str | None = None,
        scaler: str | None = "robust",
        scaler_clip: float | None = 3.0,
        label: str = "forward_return",
        horizons: Sequence[int] = (21,),
        flat_band: float = 0.01,
        label_cross_section: str | None = None,
        label_excess: str | None = None,
        task: str | None = None,
        class_weights: str | None = None,
        signal_horizon: int | None = None,
        vol_window: int = 63,
        lookback: int = 60,
        stride: int = 1,
        valid_fraction: float = 0.2,
        trainer: TrainerConfig | dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.model_params = model_params
        self.features = features
        self.cross_section = cross_section
        self.scaler = scaler
        self.scaler_clip = scaler_clip
        self.label = label
        self.horizons = horizons
        self.flat_band = flat_band
        self.label_cross_section = label_cross_section
        self.label_excess = label_excess
        self.task = task
        self.class_weights = class_weights
        self.signal_horizon = signal_horizon
        self.vol_window = vol_window
        self.lookback = lookback
        self.stride = stride
        self.valid_fraction = valid_fraction
        self.trainer = trainer

    # --------------------------------------------------------------- params
    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's parameters: the one list get/set_params and clone use."""
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments as stored (scikit-learn's estimator API; ``deep`` is
        accepted for compatibility: no parameter is itself an estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Forecaster:
        """Set constructor arguments by name; return ``self``.

        ``model_params__<key>`` and ``trainer__<key>`` (scikit-learn's nested syntax)
        change one entry of those two parameters, e.g. ``set_params(
        model_params__hidden_size=64, trainer__epochs=5)``; the other entries are kept
        and the dict or config held before is not modified.

        Raises
        ------
        ConfigError
            For a name that is not a constructor argument (the closest is suggested),
            or a ``trainer__`` key that is not a training setting.
        """
        names = self._param_names()
        for key, value in params.items():
            name, _, entry = key.partition("__")
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {name!r}{hint}; parameters: {names}"
                )
            if entry:
                value = self._nested(name, entry, value)
            setattr(self, name, value)
        return self

    def _nested(self, name: str, entry: str, value: Any) -> Any:
        """``name`` (a dict-like parameter) with its ``entry`` set to ``value``: a copy."""
        if name == "model_params":
            # The model's own arguments are checked by the model when fit() builds it.
            return {**(self.model_params or {}), entry: value}
        if name != "trainer":
            raise ConfigError(
                f"{name}__{entry}: {name!r} has no nested parameters; nested keys are "
                f"model_params__<name> and trainer__<name>"
            )
        fields = list(TrainerConfig.model_fields)
        if entry not in fields:
            hint = did_you_mean(entry, fields)
            raise ConfigError(f"trainer has no setting {entry!r}{hint}; settings: {fields}")
        if not isinstance(self.trainer, TrainerConfig):
            return {**(self.trainer or {}), entry: value}
        # Re-validated from the keys it was given, so the defaults it never set (the
        # task's loss) stay unset.
        given = self.trainer.model_dump(exclude_unset=True)
        try:
            return TrainerConfig.model_validate({**given, entry: value})
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ConfigError(f"trainer__{entry}={short_repr(value)}: {message}") from None

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` or :meth:`load` ran (for ``check_is_fitted``)."""
        return hasattr(self, "model_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags: fitted on a :class:`Panel`, not on arrays."""
        from sklearn.utils import InputTags, Tags, TargetTags

        # Inputs are panels that fit() checks itself: scikit-learn must not validate them.
        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(two_d_array=False),
            no_validation=True,
        )

    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        """Each parameter's default (``inspect.Parameter.empty`` for none), subclasses
        that forward ``**params`` included."""
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for name, parameter in inspect.signature(init).parameters.items():
                if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                    defaults[name] = parameter.default
        return defaults

    def __repr__(self) -> str:
        defaults = self._param_defaults()
        empty = inspect.Parameter.empty
        changed = []
        for name, value in self.get_params().items():
            default = defaults.get(name, empty)
            try:
                same = default is not empty and bool(value == default)
            except (TypeError, ValueError):  # e.g. arrays: an ambiguous truth value
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _json_params(self) -> dict[str, Any]:
        """Constructor arguments, JSON-ready (what checkpoints store)."""
        params = self.get_params()
        trainer = params["trainer"]
        params["trainer"] = trainer.model_dump() if isinstance(trainer, TrainerConfig) else trainer
        params["model_params"] = dict(params["model_params"] or {})
        if params["features"] is not None:
            params["features"] = list(params["features"])
        params["horizons"] = [int(h) for h in params["horizons"]]
        return params

    def _task(self) -> str:
        if self.task is not None:
            return self.task
        return "classification" if self.label in _CLASS_LABELS else "regression"

    def _trainer_config(self) -> TrainerConfig:
        if isinstance(self.trainer, TrainerConfig):
            config = self.trainer
            # A config that never named a loss gets the task's default one.
            if "loss" not in config.model_fields_set and self._task() != "regression":
                loss = "multi_task" if self._task() == "trend" else "direction_ce"
                config = config.model_copy(update={"loss": loss})
        else:
            values = dict(self.trainer or {})
            if "loss" not in values and self._task() != "regression":
                values["loss"] = "multi_task" if self._task() == "trend" else "direction_ce"
            config = TrainerConfig(**values)
        return config

    # ---------------------------------------------------------------- data
    def _features(
        self, panel: Panel, names: Sequence[str] | None, given: FeatureSet | None
    ) -> tuple[np.ndarray, list]:
        if given is not None:
            # Computed by the caller once for many folds; it must be this panel's.
            if given.values.shape[:2] != panel.shape or (
                names is not None and list(given.names) != list(names)
            ):
                raise ConfigError(
                    "the given feature set does not match the panel or the feature names"
                )
            return given.values, list(given.names)
        feature_set = compute_features(panel, names, cross_section=self.cross_section)
        return feature_set.values, list(feature_set.names)

    def _rows(self, panel: Panel, start: str | None, end: str | None) -> tuple[int, int]:
        dates = panel.dates
        first = 0 if start is None else int(np.searchsorted(dates, np.datetime64(start, "ns")))
        last = (
            len(dates) - 1
            if end is None
            else int(np.searchsorted(dates, np.datetime64(end, "ns"), side="right")) - 1
        )
        if first > last:
            raise ConfigError(f"the date range {start}..{end} holds no date of the panel")
        return first, last

    def task_labels(self, panel: Panel) -> TaskLabels:
        """The labels this forecaster trains on, built on ``panel`` (see :func:`task_labels`).

        Build them once per panel and pass them to every :meth:`fit` (``labels=``).
        """
        return task_labels(
            panel,
            self._task(),
            self.label,
            self.horizons,
            flat_band=self.flat_band,
            vol_window=self.vol_window,
            cross_section=self.label_cross_section,
            excess=self.label_excess,
        )

    def _given_labels(self, panel: Panel, labels: TaskLabels | None) -> TaskLabels:
        if labels is None:
            return self.task_labels(panel)
        horizons = tuple(int(h) for h in self.horizons)
        if labels.values.shape[:2] != panel.shape or labels.horizons != horizons:
            raise ConfigError(
                f"the given labels (horizons {list(labels.horizons)}, shape "
                f"{labels.values.shape[:2]}) do not match this forecaster (horizons "
                f"{list(horizons)}) or the panel {panel.shape}: build them with task_labels()"
            )
        neutral = self.label_cross_section is not None or self.label_excess is not None
        if neutral != (labels.targets is not None):
            raise ConfigError(
                "the given labels were built with other label_cross_section/label_excess "
                "settings than this forecaster's: build them with its task_labels()"
            )
        return labels

    def _sample_ranges(
        self,
        panel: Panel,
        train: tuple[str | None, str | None] | None,
        valid: tuple[str | None, str | None] | None,
        fold: Fold | None,
        horizon: int,
        embargo: int,
    ) -> tuple[tuple[Segment, Segment | None], tuple[Segment, Segment | None]]:
        """(train window, valid window) and their purged sample ranges.

        Purging itself is :meth:`Segment.purged`, the one place that decides it.
        """
        if fold is not None:
            if train is not None or valid is not None:
                raise ConfigError("give fit() either a fold or train/valid ranges, not both")
            if fold.label_horizon < horizon or fold.embargo < embargo:
                raise LeakageError(
                    f"fold {fold.index} was purged for a {fold.label_horizon}-day label and a "
                    f"{fold.embargo}-day embargo; these labels reach {horizon} days ahead"
                )
            return (fold.train, fold.valid), (fold.train_samples, fold.valid_samples)
        if train is None:
            split = int(panel.n_dates * (1 - self.valid_fraction))
            train_rows = (0, split - 1)
            valid_rows = (split, panel.n_dates - 1) if self.valid_fraction > 0 else None
        else:
            train_rows = self._rows(panel, *train)
            valid_rows = None if valid is None else self._rows(panel, *valid)
        if valid_rows is not None and valid_rows[0] <= train_rows[1]:
            raise ConfigError("the validation range must start after the training range ends")
        windows = [
            None if rows is None else Segment.from_rows(panel.dates, *rows)
            for rows in (train_rows, valid_rows)
        ]
        purged = []
        for name, window in zip(("training", "validation"), windows, strict=True):
            if window is not None and window.last_sample(horizon, embargo) < window.start:
                raise DataError(
                    f"no {name} sample: the {name} range {window.start_date}.."
                    f"{window.end_date} has no complete {self.lookback}-day window with a "
                    f"known {horizon}-day label"
                )
            purged.append(None if window is None else window.purged(panel.dates, horizon, embargo))
        return (windows[0], windows[1]), (purged[0], purged[1])

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        panel: Panel,
        *,
        train: tuple[str | None, str | None] | None = None,
        valid: tuple[str | None, str | None] | None = None,
        fold: Fold | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
        embargo: int = 0,
        feature_set: FeatureSet | None = None,
        labels: TaskLabels | None = None,
        universe: np.ndarray | None = None,
    ) -> Forecaster:
        """Train on ``panel``.

        Parameters
        ----------
        panel : Panel
            Prices; features and labels are computed from it.
        train, valid : (start, end) date strings, optional
            Date ranges (inclusive). Default: the first ``1 - valid_fraction`` of the
            dates to train, the rest to validate. Labels of training samples end by the
            training range's end (purge), and the same for validation.
        fold : Fold, optional
            A walk-forward fold instead of ``train``/``valid``: its purged sample ranges
            (``fold.train_samples``, ``fold.valid_samples``) are used as they are.
        checkpoint : path, optional
            Training checkpoint written after every epoch; with ``resume=True``
            training continues from it after a crash.
        embargo : int, default 0
            Extra trading days between a sample's label end and its range's end.
        feature_set : FeatureSet, optional
            Features already computed on ``panel`` (with this forecaster's names and
            cross-section setting), to share one computation across folds.
        labels : TaskLabels, optional
            Labels already built on ``panel`` by :meth:`task_labels` (once per run).
        universe : numpy.ndarray, optional
            Boolean (N,): train and validate on these tickers' samples only (e.g. the
            universe selected at the training start); features and labels still come
            from the whole panel.
        """
        config = self._trainer_config()
        sample_mask = panel.mask
        if universe is not None:
            universe = np.asarray(universe, dtype=bool)
            if universe.shape != (panel.n_tickers,):
                raise ValueError(f"universe must be ({panel.n_tickers},) booleans")
            sample_mask = sample_mask & universe[None, :]
        labels = self._given_labels(panel, labels)
        values, names = self._features(panel, self.features, feature_set)
        horizon = labels.horizon
        signal = labels.signal(self.signal_horizon)
        windows, purged = self._sample_ranges(panel, train, valid, fold, horizon, embargo)
        train_window, valid_window = windows
        train_seg, valid_seg = purged
        train_rows = (train_window.start, train_window.end)
        valid_rows = None if valid_window is None else (valid_window.start, valid_window.end)

        scaler = None
        if self.scaler is not None:
            # Fitted on the whole training window (features at t read data <= t only).
            scaler = FeatureScaler(self.scaler, clip=self.scaler_clip).fit(
                values, slice(train_rows[0], train_rows[1] + 1)
            )
            values = scaler.transform(values)

        def samples(segment: Segment, stride: int):
            # The segment is already purged: its last row's label ends inside the window.
            return valid_samples(
                values,
                self.lookback,
                labels=labels.training_values,
                mask=sample_mask,
                start=segment.start,
                end=segment.end,
                stride=stride,
            )

        train_samples = samples(train_seg, self.stride)
        label_values = labels.training_values
        label_scale = None
        n_reg = len(labels.regression_names)
        if n_reg and len(train_samples):
            # Returns are ~1e-2: unit-scale targets keep gradients and learning rates sane.
            # The scale comes from training samples only and is undone in predict();
            # class columns hold codes and are left alone.
            train_labels = label_values[train_samples.t, train_samples.i, :n_reg]
            spread = np.nanstd(train_labels, axis=0)
            label_scale = np.where(spread > 0, spread, 1.0).astype(np.float32)
            label_values = label_values.copy()
            label_values[..., :n_reg] /= label_scale
        if self.class_weights not in (None, "balanced"):
            raise ConfigError(
                f"class_weights must be null or 'balanced', got {self.class_weights!r}"
            )
        if self.class_weights == "balanced" and labels.class_names and len(train_samples):
            codes = labels.values[train_samples.t, train_samples.i, n_reg]
            codes = codes[np.isfinite(codes)].astype(np.int64)
            counts = np.bincount(codes, minlength=labels.n_classes).astype(np.float64)
            # sklearn's "balanced": n / (C * count); an absent class keeps weight 1
            balanced = np.where(counts > 0, len(codes) / (labels.n_classes * counts), 1.0)
            params = dict(config.loss_params) | {"class_weight": balanced.tolist()}
            config = config.model_copy(update={"loss_params": params})
        if len(train_samples) == 0:
            raise DataError(
                f"no training sample: the training range {self._day(panel, train_rows[0])}.."
                f"{self._day(panel, train_rows[1])} has no complete {self.lookback}-day window "
                f"with a known {horizon}-day label"
            )
        valid_index = None if valid_seg is None else samples(valid_seg, 1)
        inputs = FitInputs(
            panel=panel,
            values=values,
            names=names,
            labels=labels,
            targets=label_values,
            label_scale=label_scale,
            signal=signal,
            train=train_samples,
            valid=valid_index,
            config=config,
            scaler=scaler,
        )
        self._train(inputs, checkpoint=checkpoint, resume=resume)

        self.scaler_ = scaler
        self.feature_names_ = names
        self.label_names_ = list(labels.names)
        self.regression_names_ = list(labels.regression_names)
        self.class_names_ = list(labels.class_names)
        self.label_scale_ = None if label_scale is None else label_scale.tolist()
        self.signal_ = signal
        self.data_fingerprint_ = panel.fingerprint()
        self.train_range_ = (self._day(panel, train_rows[0]), self._day(panel, train_rows[1]))
        self.valid_range_ = (
            None
            if valid_rows is None
            else (self._day(panel, valid_rows[0]), self._day(panel, valid_rows[1]))
        )
        return self

    def _train(self, inputs: FitInputs, *, checkpoint: str | Path | None, resume: bool) -> None:
        """Train the model on prepared samples; set ``model_``, ``history_``,
        ``best_epoch_``, ``best_score_``, ``train_metrics_`` and ``n_parameters_``.

        The one step a forecaster of another model family (see
        :class:`alphaseq.tabular.TabularForecaster`) replaces: everything before it
        (features, scaling, labels, purged samples) is shared.
        """
        config, labels, signal = inputs.config, inputs.labels, inputs.signal
        trainer = Trainer(
            config,
            checkpoint_path=checkpoint,
            # Early stopping (and the tuning objective reading the history) score the
            # very head that the portfolio trades.
            scorer=SignalScorer(signal.index, signal.index, overlap=signal.horizon),
            metadata={
                "forecaster": self._json_params(),
                "feature_names": inputs.names,
                "label_names": list(labels.names),
                "task": self._task(),
                "scaler": None if inputs.scaler is None else inputs.scaler.state_dict(),
                "data_fingerprint": inputs.panel.fingerprint(),
            },
        )
        device = trainer.device
        train_data = WindowDataset(inputs.values, inputs.train, inputs.targets, device=device)
        valid_data = None
        if inputs.valid is not None:
            valid_data = WindowDataset(inputs.values, inputs.valid, inputs.targets, device=device)

        model_params = dict(self.model_params or {})
        torch.manual_seed(config.seed)  # the initial weights are part of the result
        model = build_model(
            self.model,
            len(inputs.names),
            **model_params,
            n_regression=len(labels.regression_names),
            n_classification=len(labels.class_names),
            n_classes=labels.n_classes or 3,
        )
        if getattr(model, "neighbours", 0):
            model.set_neighbourhood(list(inputs.panel.tickers), self._neighbourhood(inputs, model))
        result: TrainingResult = trainer.fit(model, train_data, valid_data, resume=resume)
        # The same figures on the training samples: the gap to validation shows overfitting.
        self.train_metrics_ = {
            k.replace("val_", "train_"): v for k, v in trainer.evaluate(model, train_data).items()
        }
        self.model_ = model.eval()
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.best_score_ = result.best_score
        self.n_parameters_ = count_parameters(model)

    @staticmethod
    def _neighbourhood(inputs: FitInputs, model: torch.nn.Module) -> np.ndarray:
        """Peers by return correlation over the training samples' own rows: the first
        window's first day to the last sample's date (nothing later is read)."""
        from alphaseq.models.graph_attention import correlation_neighbours

        t = inputs.train.t
        first = max(int(t.min()) - inputs.train.lookback + 1, 0)
        close = inputs.panel.close[first : int(t.max()) + 1]
        return correlation_neighbours(close, model.neighbours)

    def _align_model(self, panel: Panel) -> None:
        """Point a neighbourhood-restricted model at ``panel``'s tickers (see
        :meth:`GraphAttentionLSTM.align_assets`)."""
        align = getattr(self.model_, "align_assets", None)
        if align is not None:
            align(list(panel.tickers))

    @staticmethod
    def _day(panel: Panel, row: int) -> str:
        return str(np.datetime_as_string(panel.dates[row], unit="D"))

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this Forecaster is not fitted yet: call fit() or load()")

    def predict(
        self,
        panel: Panel,
        dates: str | Sequence[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 8192,
        feature_set: FeatureSet | None = None,
    ) -> pd.DataFrame:
        """Forecast every ticker with a complete window on the given dates.

        Parameters
        ----------
        panel : Panel
            Prices up to (at least) the dates to forecast; only data up to each date is used.
        dates : str or list of str, optional
            Dates to forecast (default: the panel's last date).
        device : str
            Where to run the model.
        feature_set : FeatureSet, optional
            Features already computed on ``panel`` (see :meth:`fit`).

        Returns
        -------
        pandas.DataFrame
            ``date, ticker, prediction`` (the ranking score) and one column per model
            output (``<label>`` for regression, ``<label>_p<k>`` for class probabilities).
        """
        self._check_fitted()
        self._align_model(panel)
        values = self._scaled_features(panel, feature_set)
        samples = self._prediction_samples(panel, values, dates)
        if len(samples) == 0:
            return pd.DataFrame(columns=["date", "ticker", "prediction"])
        regression, probs = self._predict_heads(values, samples, device, batch_size)
        frame = pd.DataFrame(
            {
                "date": panel.dates[samples.t],
                "ticker": panel.tickers[samples.i],
                "prediction": np.nan,  # filled from the signal head below
            }
        )
        regression_names, class_names = self._head_names()
        if regression is not None:
            scale = self.label_scale_ or [1.0] * len(regression_names)
            for k, name in enumerate(regression_names):
                frame[name] = regression[:, k] * scale[k]
        if probs is not None:
            for k, name in enumerate(class_names):
                for c in range(probs.shape[-1]):
                    frame[f"{name}_p{c}"] = probs[:, k, c]
        frame["prediction"] = self._signal(frame, regression_names, class_names)
        return frame

    def attention(
        self,
        panel: Panel,
        dates: str | Sequence[str] | None = None,
        *,
        device: str = "cpu",
        feature_set: FeatureSet | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Temporal attention of every sample forecast on ``dates``.

        Returns
        -------
        samples : pandas.DataFrame
            ``date, ticker`` of each sample, in the order of the weights.
        weights : numpy.ndarray or None
            (S, heads, L) attention weights, oldest day first (None without attention).
        """
        from alphaseq.analysis.attention import attention_weights

        data, samples = self._prediction_data(panel, dates, device, feature_set)
        frame = pd.DataFrame({"date": panel.dates[samples.t], "ticker": panel.tickers[samples.i]})
        if data is None:
            return frame, None
        return frame, attention_weights(self.model_.to(device), data)

    def ticker_attention(self, panel: Panel, date: str | None = None) -> pd.DataFrame | None:
        """Attention by lag (``lag_0`` = the most recent day) of every ticker on one date,
        averaged over heads; None for a model without attention."""
        from alphaseq.analysis.attention import ticker_attention

        self._check_fitted()
        values = self._scaled_features(panel, None)
        row = self._date_rows(panel, date)[0]
        return ticker_attention(
            self.model_.cpu(), values, panel.mask, self.lookback, row, list(panel.tickers)
        )

    def _scaled_features(self, panel: Panel, feature_set: FeatureSet | None) -> np.ndarray:
        values, _ = self._features(panel, self.feature_names_, feature_set)
        return values if self.scaler_ is None else self.scaler_.transform(values)

    def _date_rows(self, panel: Panel, dates: str | Sequence[str] | None) -> list[int]:
        if dates is None:
            return [panel.n_dates - 1]
        wanted = [dates] if isinstance(dates, str) else list(dates)
        index = {d: k for k, d in enumerate(panel.dates.astype("datetime64[D]").astype(str))}
        missing = [d for d in wanted if str(pd.Timestamp(d).date()) not in index]
        if missing:
            raise DataError(
                f"dates not in panel {panel.name!r}: {missing[:5]} (it spans "
                f"{self._day(panel, 0)}..{self._day(panel, panel.n_dates - 1)})"
            )
        return sorted(index[str(pd.Timestamp(d).date())] for d in wanted)

    def _prediction_samples(
        self, panel: Panel, values: np.ndarray, dates: str | Sequence[str] | None
    ) -> SampleIndex:
        """The samples with a complete window on ``dates`` (scaled ``values``)."""
        keep = np.zeros(panel.n_dates, dtype=bool)
        keep[self._date_rows(panel, dates)] = True
        return valid_samples(values, self.lookback, mask=panel.mask & keep[:, None])

    def _prediction_data(self, panel, dates, device, feature_set):
        """Scaled features and the samples with a complete window on ``dates``."""
        self._check_fitted()
        values = self._scaled_features(panel, feature_set)
        samples = self._prediction_samples(panel, values, dates)
        if len(samples) == 0:
            return None, samples
        return WindowDataset(values, samples, device=device), samples

    def _predict_heads(
        self, values: np.ndarray, samples: SampleIndex, device: str, batch_size: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The model's outputs on ``samples``: regression (S, H_reg) in the scaled
        target's units and class probabilities (S, H_cls, C); None for an absent head."""
        data = WindowDataset(values, samples, device=device)
        output = predict_outputs(self.model_.to(device), data, batch_size)
        regression = None
        if output.regression is not None:
            regression = output.regression.float().cpu().numpy()
        probs = None
        if output.logits is not None:
            probs = torch.softmax(output.logits.float(), dim=-1).cpu().numpy()
        return regression, probs

    def _head_names(self) -> tuple[list[str], list[str]]:
        # Checkpoints from before tasks existed hold regression or class names only.
        if hasattr(self, "regression_names_"):
            return self.regression_names_, self.class_names_
        if self.label in _CLASS_LABELS:
            return [], list(self.label_names_)
        return list(self.label_names_), []

    def _signal(self, frame: pd.DataFrame, regression: list[str], classes: list[str]):
        """The ranking score: the signal horizon's regression output (in the label's own
        units), or for a classifier P(up) - P(down)."""
        k = resolve_signal(self.horizons, self.signal_horizon).index
        if regression:
            return frame[regression[k]]
        name = classes[k]
        last = max(int(c.rsplit("_p", 1)[1]) for c in frame.columns if c.startswith(f"{name}_p"))
        return frame[f"{name}_p{last}"] - frame[f"{name}_p0"]

    # ----------------------------------------------------------- save/load
    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> str:
        """Write the fitted forecaster to one checkpoint file; return its SHA-256.

        ``metadata`` (JSON-ready: the run's config, data source, fold) is stored with it
        and comes back as ``metadata_`` after :meth:`load`.
        """
        self._check_fitted()
        return save_checkpoint(path, self._common_state(metadata) | self._model_state())

    def _common_state(self, metadata: dict[str, Any] | None) -> dict[str, Any]:
        """Everything but the model itself: features, scaler, labels, history, ranges."""
        return {
            "params": json.dumps(self._json_params()),
            "feature_names": list(self.feature_names_),
            "label_names": list(self.label_names_),
            "regression_names": list(self._head_names()[0]),
            "class_names": list(self._head_names()[1]),
            "label_scale": self.label_scale_,
            "scaler": None if self.scaler_ is None else json.dumps(self.scaler_.state_dict()),
            "data_fingerprint": self.data_fingerprint_,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "best_score": self.best_score_,
            "train_range": list(self.train_range_),
            "valid_range": None if self.valid_range_ is None else list(self.valid_range_),
            "train_metrics": getattr(self, "train_metrics_", {}),
            "metadata": json.dumps(metadata or {}, default=str),
        }

    def _model_state(self) -> dict[str, Any]:
        """The model's part of the checkpoint (its ``kind`` names the family)."""
        return {
            "kind": "forecaster",
            "model_name": getattr(type(self.model_), "registry_name", self.model),
            "model_config": json.dumps(self.model_.config),
            "model_state": {k: v.cpu() for k, v in self.model_.state_dict().items()},
        }

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Read a forecaster written by :meth:`save` (verified, never unpickles code).

        A checkpoint of a tabular baseline comes back as a
        :class:`alphaseq.tabular.TabularForecaster`, one of an ensemble as an
        :class:`alphaseq.ensemble.EnsembleForecaster`.
        """
        from alphaseq.ensemble import EnsembleForecaster
        from alphaseq.tabular import TabularForecaster

        state = load_checkpoint(path)
        kind = state.get("kind")
        families = {
            "forecaster": Forecaster,
            "tabular_forecaster": TabularForecaster,
            "ensemble_forecaster": EnsembleForecaster,
        }
        if kind not in families:
            raise CheckpointError(
                f"'{path}' holds a {kind or 'unknown'!r} checkpoint, not a forecaster"
            )
        try:
            forecaster = families[kind](**json.loads(state["params"]))
            n_features = forecaster._restore_model(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"'{path}' does not fit this alphaseq version: {exc}") from None
        try:
            forecaster._restore_fitted(state, n_features, path)
        except KeyError as exc:  # signed, but written without a field every version writes
            raise CheckpointError(f"'{path}' lacks the entry {exc} of a forecaster") from None
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"'{path}' holds a malformed entry: {exc}") from None
        forecaster._after_load()
        return forecaster

    def _restore_fitted(self, state: dict[str, Any], n_features: int, path: str | Path) -> None:
        """The fitted attributes besides the model, from a checkpoint's entries."""
        self.feature_names_ = list(state["feature_names"])
        if len(self.feature_names_) != n_features:
            raise CheckpointError(
                f"'{path}' lists {len(self.feature_names_)} features but its model "
                f"takes {n_features}"
            )
        scaler = state.get("scaler")
        self.scaler_ = None if scaler is None else FeatureScaler.from_state_dict(json.loads(scaler))
        self.label_names_ = list(state["label_names"])
        if "regression_names" in state:
            self.regression_names_ = list(state["regression_names"])
            self.class_names_ = list(state["class_names"])
        self.label_scale_ = state.get("label_scale")
        self.data_fingerprint_ = state["data_fingerprint"]
        self.history_ = list(state["history"])
        self.best_epoch_ = state["best_epoch"]
        self.best_score_ = state["best_score"]
        self.train_range_ = tuple(state["train_range"])
        self.valid_range_ = None if state["valid_range"] is None else tuple(state["valid_range"])
        self.train_metrics_ = dict(state.get("train_metrics", {}))
        self.metadata_ = json.loads(state.get("metadata", "{}"))

    def _after_load(self) -> None:
        """Called once :meth:`load` has restored every fitted attribute (a hook)."""

    def _restore_model(self, state: dict[str, Any]) -> int:
        """Rebuild ``model_`` (and ``n_parameters_``) from a checkpoint; return the
        number of input features it takes."""
        config = json.loads(state["model_config"])
        n_features = config.pop("n_features")
        model = build_model(state["model_name"], n_features, **config)
        model.load_state_dict(state["model_state"])
        self.model_ = model.eval()
        self.n_parameters_ = count_parameters(model)
        return n_features
