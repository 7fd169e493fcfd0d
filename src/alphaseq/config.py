"""Validated configuration of an experiment (the YAML file's schema).

One YAML file is one experiment: data, features, labels, windows, model, training,
validation (walk-forward) and portfolio sections. Unknown keys are errors, and every
error names the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alphaseq._config_base import SettingsSection, check_iso_date, did_you_mean, short_repr
from alphaseq.errors import ConfigError
from alphaseq.portfolio.specs import CONSTRUCTOR_SPECS, ConstructorConfig
from alphaseq.training.config import TrainerConfig

#: Model arguments the pipeline sets itself from the labels.
_PIPELINE_MODEL_ARGS = {"n_features", "n_regression", "n_classification", "n_classes"}


class _Section(SettingsSection):
    pass


class UniverseConfig(_Section):
    """A point-in-time universe: the most liquid tickers, re-selected from past data only."""

    top_n: int = Field(
        ge=1,
        description="Members: the tickers with the highest average daily dollar volume "
        "(close x volume), re-selected at each fold's training start and each rebalance.",
    )
    window: int = Field(63, ge=1, description="Trailing trading days of the average.")
    min_price: float | None = Field(
        None, gt=0, description="Only tickers whose close on the selection day is at least this."
    )
    min_coverage: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Only tickers with a close and a volume on at least this share of the "
        "window's days.",
    )


class DataConfig(_Section):
    """Where prices come from and how the universe is filtered."""

    source: str = Field("sp500", description="A file path or a built-in data set name.")
    min_history: int = Field(0, ge=0, description="Exclude tickers with fewer valid closes.")
    benchmark: str | None = Field(None, description="Ticker of the input used as benchmark.")
    benchmark_source: str | None = Field(
        None, description="A separate file (or built-in name) whose close is the benchmark."
    )
    start: str | None = Field(
        None,
        description="Where the first fold starts (YYYY-MM-DD); earlier prices only warm up "
        "the features.",
    )
    end: str | None = Field(None, description="Last date used (YYYY-MM-DD).")
    exclude_stale: bool = Field(
        False,
        description="Exclude tickers that stop trading for 63+ days in their life (flat "
        "close or zero volume; see alphaseq data check). A universe choice made with "
        "hindsight, like min_history.",
    )
    date_format: str | None = Field(
        None,
        description="strptime format of the file's dates, e.g. '%d/%m/%Y', when day and "
        "month cannot be told apart from the data.",
    )
    timezone: str | None = Field(
        None,
        description="IANA zone (e.g. America/New_York) whose calendar days timestamps with "
        "offsets are read in; default: the day as written.",
    )
    survivorship_bias: str | None = Field(
        None, description="Say why results on this data carry survivorship bias, if they do."
    )
    tickers: list[str] | str | None = Field(
        None,
        description="Only these tickers: a list, or a text file with one ticker per line "
        "(a fixed list chosen today is itself a hindsight choice).",
    )
    universe: UniverseConfig | None = Field(
        None, description="Top N by dollar volume, chosen point in time (see UniverseConfig)."
    )

    @field_validator("tickers", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, value: Any) -> Any:
        # YAML reads unquoted ON, YES, NO, TRUE (real tickers) as booleans.
        if isinstance(value, list):
            read = [v for v in value if isinstance(v, bool)]
            if read:
                raise ValueError(
                    f"YAML read {len(read)} unquoted ticker(s) as {str(read[0]).lower()} "
                    "(ON, YES, NO, TRUE, ...): quote them, e.g. ['ON', 'MSFT']"
                )
        return value

    @field_validator("tickers")
    @classmethod
    def _ticker_list(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("the ticker list is empty")
            repeated = sorted({t for t in value if value.count(t) > 1})
            if repeated:
                raise ValueError(f"tickers listed twice: {repeated[:5]}")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # YAML reads an unquoted 2014-01-01 as a date object: accept it as written.
        if isinstance(value, (_dt.date, _dt.datetime)):
            value = value.isoformat()[:10]
        return check_iso_date(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        import zoneinfo

        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {short_repr(value)}; use an IANA name such as 'America/New_York'"
            ) from None
        return value


class FeatureConfig(_Section):
    """Which features to compute and how to normalise them."""

    names: list[str] | None = Field(
        None,
        description="Feature names and group names (alpha158, alpha158_close, ...); "
        "default: the default set the data supports.",
    )
    cross_section: Literal["rank", "robust_zscore"] | None = Field(
        None,
        description="Normalise each feature across tickers per date (rank or median/MAD "
        "z-score) before scaling.",
    )
    scaler: Literal["robust", "standard"] | None = Field(
        "robust", description="Per-feature scaling fitted on each fold's training rows only."
    )
    clip: float | None = Field(
        3.0, gt=0, description="Clip scaled features to +/- this many units."
    )

    @field_validator("names")
    @classmethod
    def _known_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        from alphaseq.features.registry import expand_feature_names

        if not names:
            raise ValueError("the feature list is empty")
        try:
            # Groups (alpha158, ...) become their feature names here, so that every
            # stage downstream sees the same explicit list.
            return expand_feature_names(names)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class LabelConfig(_Section):
    """What to predict."""

    kind: Literal["forward_return", "trend", "direction", "three_class"] = Field(
        "forward_return",
        description="Target: forward_return, trend (volatility-scaled), direction (up/down) "
        "or three_class (UP/DOWN/FLAT).",
    )
    horizons: list[int] = Field(
        default_factory=lambda: [21],
        min_length=1,
        description="Forecast horizons in trading days (one output head per horizon).",
    )
    flat_band: float = Field(
        0.01, ge=0, description="three_class: |forward return| below this is FLAT."
    )
    vol_window: int = Field(
        63, ge=2, description="trend: trailing days of the volatility that scales the trend score."
    )
    class_weights: Literal["balanced"] | None = Field(
        None, description="Weight classes by inverse training frequency (imbalance)."
    )
    signal_horizon: int | None = Field(
        None, ge=1, description="Horizon whose forecast drives the portfolio (default: longest)."
    )
    cross_section: Literal["rank", "zscore", "demean"] | None = Field(
        None,
        description="Train on the regression label normalised across tickers per date "
        "(rank: Qlib's CSRankNorm); evaluation and backtests use the raw label.",
    )
    excess: Literal["benchmark", "mean"] | None = Field(
        None,
        description="Train on the forward return in excess of the benchmark's (or the "
        "cross-section's mean), before any cross_section normalisation.",
    )

    @model_validator(mode="after")
    def _signal_in_horizons(self) -> LabelConfig:
        if self.signal_horizon is not None and self.signal_horizon not in self.horizons:
            raise ValueError(
                f"signal_horizon {self.signal_horizon} must be one of horizons {self.horizons}"
            )
        return self

    @field_validator("horizons")
    @classmethod
    def _positive(cls, horizons: list[int]) -> list[int]:
        if any(h < 1 for h in horizons):
            raise ValueError(f"every horizon must be >= 1, got {horizons}")
        return horizons


class WindowConfig(_Section):
    """Lookback windows and the stride over training dates."""

    lookback: int = Field(60, ge=1, description="Days of history in each input window.")
    stride: int = Field(
        1,
        ge=1,
        description="Use every stride-th training date (neighbouring windows overlap "
        "lookback-1 days).",
    )


#: Models that ship with alphaseq (``alphaseq.models`` registers them, ``alphaseq.tabular``
#: defines the tabular ones): their names can be checked without importing torch.
BUILTIN_MODELS = ("gat", "gat_transformer", "gru", "linear", "lstm", "transformer")
TABULAR_MODEL_NAMES = ("lightgbm", "ridge")


def _check_model(name: str, params: dict[str, Any], info: ValidationInfo) -> None:
    """A registered model name and parameters its constructor takes.

    With ``names_only`` in the validation context, only the name is checked, against the
    built-in names (and any registered since ``alphaseq.models`` was imported): the
    parameters need the model classes, so torch.
    """
    if (info.context or {}).get("names_only"):
        known = {*BUILTIN_MODELS, *TABULAR_MODEL_NAMES}
        if "alphaseq.models" in sys.modules:
            known |= set(sys.modules["alphaseq.models"].MODELS)
        if name not in known:
            hint = did_you_mean(name, known)
            raise ValueError(f"unknown model {name!r}{hint}; allowed: {sorted(known)}")
        return
    from alphaseq.models import MODELS
    from alphaseq.tabular import TABULAR_MODELS

    if name in TABULAR_MODELS:
        accepted = set(TABULAR_MODELS[name])
    elif name in MODELS:
        accepted = set(inspect.signature(MODELS[name].__init__).parameters) - {"self"}
        accepted -= _PIPELINE_MODEL_ARGS
    else:
        allowed = sorted([*MODELS, *TABULAR_MODELS])
        raise ValueError(f"unknown model {name!r}{did_you_mean(name, allowed)}; allowed: {allowed}")
    unknown = sorted(set(params) - accepted)
    if unknown:
        hint = did_you_mean(unknown[0], accepted) if len(unknown) == 1 else ""
        raise ValueError(
            f"model {name!r} has no parameter(s) {unknown}{hint}; allowed: {sorted(accepted)}"
        )


class EnsembleMemberConfig(_Section):
    """A model family of an ensemble, beside ``model.name``."""

    name: str = Field(description="Registered model of this member.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The member model's own arguments."
    )

    @model_validator(mode="after")
    def _known(self, info: ValidationInfo) -> EnsembleMemberConfig:
        _check_model(self.name, self.params, info)
        return self


class EnsembleConfig(_Section):
    """Several models trained on each fold, rank-averaged per date into one forecast."""

    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="Train every member with each of these seeds; default [training.seed].",
    )
    members: list[EnsembleMemberConfig] = Field(
        default_factory=list,
        description="Model families beside model.name, each {name, params}.",
    )


class ModelConfig(_Section):
    """Which registered model and its hyper-parameters (and, optionally, an ensemble)."""

    name: str = Field(
        "lstm",
        description="Registered model: lstm, gru, transformer, gat, gat_transformer, "
        "linear, lightgbm, ridge.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The model's own arguments (alphaseq config keys --model NAME lists them).",
    )
    ensemble: EnsembleConfig | None = Field(
        None,
        description="Members: model.name and ensemble.members, each trained with every "
        "seed of ensemble.seeds; at least two in all.",
    )

    @model_validator(mode="after")
    def _known(self, info: ValidationInfo) -> ModelConfig:
        _check_model(self.name, self.params, info)
        if self.ensemble is not None:
            n_seeds = len(self.ensemble.seeds or [0])
            if (1 + len(self.ensemble.members)) * n_seeds < 2:
                raise ValueError(
                    "an ensemble needs at least two members: give ensemble.seeds two or "
                    "more seeds, or ensemble.members another model"
                )
        return self


class ValidationConfig(_Section):
    """How dates are split into training, validation and test windows."""

    scheme: Literal["walk_forward", "fixed"] = Field(
        "walk_forward",
        description="walk_forward: rolling folds by months; fixed: one train/valid/test "
        "split by fractions.",
    )
    train_months: int = Field(36, ge=1, description="Months of training dates per fold.")
    valid_months: int = Field(
        12,
        ge=0,
        description="Months of validation dates (early stopping) after each training window.",
    )
    test_months: int = Field(12, ge=1, description="Months of out-of-sample test dates per fold.")
    step_months: int = Field(12, ge=1, description="Months between consecutive fold starts.")
    expanding: bool = Field(
        False, description="Grow the training window from the first date instead of rolling it."
    )
    embargo_days: int = Field(
        0,
        ge=0,
        description="Extra trading days dropped between windows, beyond the label horizon's purge.",
    )
    fractions: list[float] = Field(
        default_factory=lambda: [0.6, 0.2, 0.2],
        description="fixed scheme: train, valid and test shares of the dates.",
    )

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, fractions: list[float]) -> list[float]:
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-9:
            raise ValueError(
                f"fractions must be three non-negative numbers (train, valid, test) summing "
                f"to 1, got {fractions}"
            )
        return fractions


class PortfolioConfig(_Section):
    """How forecasts become positions, and what it costs."""

    top_k: int | None = Field(
        None, ge=1, description="Positions of the top-k strategies; default max(5, N // 10)."
    )
    cost_bps: float = Field(10.0, ge=0, description="Cost per unit of notional traded.")
    max_weight: float | None = Field(
        None, gt=0, le=1, description="Largest weight of one ticker (constructors); default: none."
    )
    max_turnover: float | None = Field(
        0.1,
        gt=0,
        description="Cap on the one-way turnover 1/2 sum |w_new - w_drifted| per rebalance "
        "(constructors); 1 replaces a whole fully invested book.",
    )
    fully_invested: bool = Field(
        True, description="Constructors' weights sum to one (otherwise at most one)."
    )
    constructors: list[ConstructorConfig] = Field(
        default_factory=list,
        description="Extra model strategies, each {name, type, ...}; see alphaseq.portfolio.",
    )
    hrp_baseline: bool = Field(False, description="Add HRP (no forecasts) as a baseline.")
    rebalance: Literal["monthly"] = Field(
        "monthly", description="Rebalance calendar: the last trading day of each month."
    )
    momentum_lookback: int = Field(252, ge=2, description="12-1 momentum: days back ...")
    momentum_skip: int = Field(21, ge=0, description="... and the most recent days skipped.")

    @model_validator(mode="after")
    def _momentum(self) -> PortfolioConfig:
        if self.momentum_skip >= self.momentum_lookback:
            raise ValueError("momentum_skip must be smaller than momentum_lookback")
        return self


class TimingConfig(_Section):
    """Single-instrument timing: long/flat or long/short from the model's signal."""

    ticker: str | None = Field(None, description="Instrument; default: the panel's only one.")
    mode: Literal["long_flat", "long_short"] = Field(
        "long_flat", description="long_flat: long or out; long_short: long or short."
    )
    cap: float = Field(1.0, gt=0, le=1, description="Largest absolute position (no borrowing).")
    threshold: float = Field(0.0, ge=0, description="Stay flat when |signal| <= threshold.")


class ExperimentConfig(_Section):
    """A whole experiment."""

    name: str = Field(
        "experiment",
        description="Experiment name: the run directory's prefix and the report's title.",
    )
    configurations_tried: int = Field(
        1,
        ge=1,
        description="Configurations tried to find this one (alphaseq tune sets it); "
        "the deflated Sharpe ratio uses it.",
    )
    task: Literal["regression", "trend", "classification"] = Field(
        "regression",
        description="regression of labels.kind; trend: trend score + direction heads per "
        "horizon; classification: direction or three_class (UP/DOWN/FLAT).",
    )
    mode: Literal["cross_section", "timing"] = Field(
        "cross_section",
        description="cross_section: portfolios over the universe; timing: one instrument.",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    windows: WindowConfig = Field(default_factory=WindowConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainerConfig = Field(default_factory=TrainerConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    timing: TimingConfig = Field(default_factory=TimingConfig)


#: The training target of cross-sectional return forecasts when the config does not
#: say: per-date ranks (the forecast study of benchmarks/README.md chose it on the
#: validation windows of the 600-stock panel).
DEFAULT_TARGET_NORMALIZATION = "rank"


def resolve_config(config: ExperimentConfig) -> ExperimentConfig:
    """The config with every default the experiment decides made explicit, so that
    ``config.yaml`` records what really ran (the task's default loss, the training
    target's normalisation)."""
    if config.task != "regression" and "loss" not in config.training.model_fields_set:
        loss = "multi_task" if config.task == "trend" else "direction_ce"
        training = config.training.model_copy(update={"loss": loss})
        config = config.model_copy(update={"training": training})
    labels = config.labels
    if (
        config.mode == "cross_section"
        and config.task == "regression"
        and labels.kind == "forward_return"
        and "cross_section" not in labels.model_fields_set
    ):
        labels = labels.model_copy(update={"cross_section": DEFAULT_TARGET_NORMALIZATION})
        # Marked as set, so that config.yaml (and a resumed run) keeps the decision.
        labels.model_fields_set.add("cross_section")
        config = config.model_copy(update={"labels": labels})
    return config


def parse_config(values: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
    """Validate a nested dictionary; raise one :class:`ConfigError` listing every problem."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(values).__name__}")
    try:
        # First without the model parameters (they need torch): a mistake anywhere else
        # is reported in well under a second.
        ExperimentConfig.model_validate(values, context={"names_only": True})
        return ExperimentConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a nested dict."""
    result = json_copy(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects dotted.key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            # Unquoted text YAML cannot read (%d/%m/%Y, @x) is the string as typed; a
            # broken list, mapping or quote is an error, not silently a string.
            if raw.lstrip()[:1] in ("[", "{", '"', "'"):
                raise ConfigError(f"--set {key}: cannot read the value {short_repr(raw)}") from None
            value = raw.strip()
        except ValueError as exc:  # YAML reads 2014-02-30 as a date, which fails
            raise ConfigError(f"--set {key}: {short_repr(raw)} is not valid: {exc}") from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def json_copy(values: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of nested dicts (lists and scalars shared: they are replaced, not edited)."""
    return {k: json_copy(v) if isinstance(v, dict) else v for k, v in values.items()}


#: Largest experiment file read: configs are a few KB; anything this big is a mistake.
MAX_CONFIG_BYTES = 1 << 20


def read_config_values(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a dict (not yet validated)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: '{path}'")
    if not path.is_file():
        raise ConfigError(f"'{path}' is not a file")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"'{path}' is {size / 2**20:.1f} MiB; experiment files are limited to "
            f"{MAX_CONFIG_BYTES >> 20} MiB (is this the right file?)"
        )
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"'{path}' is not valid YAML: {exc}") from None
    except ValueError as exc:  # e.g. an impossible date such as 2014-02-30
        raise ConfigError(f"'{path}' holds a value YAML cannot read: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"'{path}': expected a mapping of sections at the top level")
    return values


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML experiment file."""
    return parse_config(read_config_values(path), source=f"'{path}'")


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        value = error.get("input")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            section = _section_at(error["loc"][:-1])
            allowed = sorted(section.model_fields) if section else []
            hint = did_you_mean(str(error["loc"][-1]), allowed)
            message = f"unknown key{hint}; allowed: {allowed}"
        elif error["type"] == "literal_error":
            allowed = error.get("ctx", {}).get("expected", "")
            hint = did_you_mean(value, re.findall(r"'([^']*)'", str(allowed)))
            message = f"got {short_repr(value)}{hint}; allowed: {allowed}"
        elif error["type"] == "value_error":
            message = str(error.get("ctx", {}).get("error", message))
        elif value is not None and not isinstance(value, dict):
            message = f"{message} (got {short_repr(value)})"
        lines.append(f"{key}: {message}")
    return f"{source}: " + "; ".join(lines)


def _section_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = ExperimentConfig
    for part in loc:
        if isinstance(part, int):  # an entry of a list section
            continue
        if model is PortfolioConfig and part in CONSTRUCTOR_SPECS:
            model = CONSTRUCTOR_SPECS[part]  # a constructor, by its type tag
            continue
        field = model.model_fields.get(str(part))
        if str(part) == "constructors" and model is PortfolioConfig:
            continue
        # Section, Section | None or list[Section]
        section = _section_type(getattr(field, "annotation", None))
        if section is None:
            return None
        model = section
    return model


# ------------------------------------------------------------------------ key listing
@dataclass(frozen=True)
class ConfigKey:
    """One key of the experiment schema, as ``alphaseq config keys`` lists it.

    Attributes
    ----------
    key : str
        Dotted path, e.g. ``training.epochs``; ``[]`` marks the entries of a list, and a
        constructor's own keys read ``portfolio.constructors[type=tilt].strength``.
    type : str
        The accepted values, e.g. ``int >= 1`` or ``'adam' | 'adamw'``.
    default : str
        The default as YAML would write it; ``required`` when there is none.
    description : str
        What the key does.
    """

    key: str
    type: str
    default: str
    description: str


def config_keys() -> list[ConfigKey]:
    """Every key of the experiment schema, in the order of the YAML sections.

    Read from the pydantic models, so that the listing cannot drift from what a config
    accepts; sections themselves are not listed, their keys are.
    """
    keys: list[ConfigKey] = []
    _collect_keys(ExperimentConfig, "", keys)
    return keys


def _collect_keys(model: type[BaseModel], prefix: str, keys: list[ConfigKey]) -> None:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if name == "constructors" and model is PortfolioConfig:
            for tag, spec in CONSTRUCTOR_SPECS.items():
                _collect_keys(spec, f"{key}[type={tag}].", keys)
            continue
        if name == "type" and model in CONSTRUCTOR_SPECS.values():
            tags = ", ".join(CONSTRUCTOR_SPECS)
            keys.append(
                ConfigKey(
                    key,
                    repr(typing.get_args(annotation)[0]),
                    "required",
                    f"The constructor of this entry, one of {tags}.",
                )
            )
            continue
        section = _section_type(annotation)
        if section is not None:
            entries = typing.get_origin(annotation) is list
            _collect_keys(section, f"{key}[]." if entries else f"{key}.", keys)
            continue
        keys.append(
            ConfigKey(key, _type_text(annotation, field), _default_text(field), _description(field))
        )


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The section model behind ``Section``, ``Section | None`` or ``list[Section]``."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_text(annotation: Any, field: Any) -> str:
    text = _annotation_text(annotation)
    bounds = []
    for rule in field.metadata:
        for attribute, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(rule, attribute, None)
            if value is not None:
                bounds.append(f"{sign} {value}")
        if getattr(rule, "min_length", None):
            bounds.append(f"at least {rule.min_length}")
    return f"{text} {', '.join(bounds)}" if bounds else text


def _annotation_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation_text(a) for a in typing.get_args(annotation))
    if origin in (list, dict):
        inner = ", ".join(_annotation_text(a) for a in typing.get_args(annotation))
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    return _yaml_text(field.get_default(call_default_factory=True))


def _description(field: Any) -> str:
    return " ".join((field.description or "").split())


def model_parameters(name: str) -> list[ConfigKey]:
    """The ``model.params`` a registered model accepts, with defaults and descriptions.

    Neural models are read from their constructor's signature and numpy-style docstring
    (so this imports torch); tabular models from :data:`alphaseq.tabular.TABULAR_MODELS`.
    """
    from alphaseq.models import MODELS
    from alphaseq.tabular import TABULAR_MODELS

    if name in TABULAR_MODELS:
        return [
            ConfigKey(f"model.params.{key}", type(value).__name__, _yaml_text(value), "")
            for key, value in TABULAR_MODELS[name].items()
        ]
    if name not in MODELS:
        allowed = sorted([*MODELS, *TABULAR_MODELS])
        raise ConfigError(
            f"unknown model {name!r}{did_you_mean(name, allowed)}; allowed: {allowed}"
        )
    cls = MODELS[name]
    described: dict[str, tuple[str, str]] = {}
    for base in reversed(cls.__mro__):  # a subclass's docstring may only add parameters
        described |= _docstring_parameters(inspect.getdoc(base) or "")
    keys = []
    for key, parameter in inspect.signature(cls.__init__).parameters.items():
        if key == "self" or key in _PIPELINE_MODEL_ARGS or parameter.kind is parameter.VAR_KEYWORD:
            continue
        kind, text = described.get(key, ("", ""))
        if parameter.default is parameter.empty:
            default = "required"
        else:
            default = _yaml_text(parameter.default)
            kind = kind or type(parameter.default).__name__
        keys.append(ConfigKey(f"model.params.{key}", kind, default, text))
    return keys


def _docstring_parameters(doc: str) -> dict[str, tuple[str, str]]:
    """``name -> (type, description)`` from a numpy-style ``Parameters`` section."""
    match = re.search(r"Parameters\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S)
    out: dict[str, tuple[str, str]] = {}
    if match is None:
        return out
    name = None
    for line in match.group(1).splitlines():
        head = re.match(r"(\w+) : (.+?)(?:, default\b.*|, optional)?$", line)
        if head and not line.startswith(" "):
            name = head.group(1)
            out[name] = (head.group(2).strip(), "")
        elif name is not None and line.strip():
            kind, text = out[name]
            out[name] = (kind, f"{text} {line.strip()}".strip())
    return out


def _yaml_text(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("...").strip()
