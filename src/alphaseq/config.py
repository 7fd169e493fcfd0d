"""Validated configuration of an experiment (the YAML file's schema).

One YAML file is one experiment: data, features, labels, windows, model, training,
validation (walk-forward) and portfolio sections. Unknown keys are errors, and every
error names the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

import datetime as _dt
import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from alphaseq._config_base import SettingsSection, check_iso_date, short_repr
from alphaseq.errors import ConfigError
from alphaseq.portfolio.constructors import CONSTRUCTOR_SPECS, ConstructorConfig
from alphaseq.training.trainer import TrainerConfig

#: Model arguments the pipeline sets itself from the labels.
_PIPELINE_MODEL_ARGS = {"n_features", "n_regression", "n_classification", "n_classes"}


class _Section(SettingsSection):
    pass


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
    cross_section: Literal["rank", "robust_zscore"] | None = None
    scaler: Literal["robust", "standard"] | None = "robust"
    clip: float | None = Field(3.0, gt=0)

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

    kind: Literal["forward_return", "trend", "direction", "three_class"] = "forward_return"
    horizons: list[int] = Field(default_factory=lambda: [21], min_length=1)
    flat_band: float = Field(0.01, ge=0)
    vol_window: int = Field(63, ge=2)
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

    lookback: int = Field(60, ge=1)
    stride: int = Field(1, ge=1)


def _check_model(name: str, params: dict[str, Any]) -> None:
    """A registered model name and parameters its constructor takes."""
    from alphaseq.models import MODELS
    from alphaseq.tabular import TABULAR_MODELS

    if name in TABULAR_MODELS:
        accepted = set(TABULAR_MODELS[name])
    elif name in MODELS:
        accepted = set(inspect.signature(MODELS[name].__init__).parameters) - {"self"}
        accepted -= _PIPELINE_MODEL_ARGS
    else:
        allowed = sorted([*MODELS, *TABULAR_MODELS])
        raise ValueError(f"unknown model {name!r}; allowed: {allowed}")
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"model {name!r} has no parameter(s) {unknown}; allowed: {sorted(accepted)}"
        )


class EnsembleMemberConfig(_Section):
    """A model family of an ensemble, beside ``model.name``."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> EnsembleMemberConfig:
        _check_model(self.name, self.params)
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

    name: str = "lstm"
    params: dict[str, Any] = Field(default_factory=dict)
    ensemble: EnsembleConfig | None = Field(
        None,
        description="Members: model.name and ensemble.members, each trained with every "
        "seed of ensemble.seeds; at least two in all.",
    )

    @model_validator(mode="after")
    def _known(self) -> ModelConfig:
        _check_model(self.name, self.params)
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

    scheme: Literal["walk_forward", "fixed"] = "walk_forward"
    train_months: int = Field(36, ge=1)
    valid_months: int = Field(12, ge=0)
    test_months: int = Field(12, ge=1)
    step_months: int = Field(12, ge=1)
    expanding: bool = False
    embargo_days: int = Field(0, ge=0)
    fractions: list[float] = Field(default_factory=lambda: [0.6, 0.2, 0.2])

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
    max_weight: float | None = Field(None, gt=0, le=1)
    max_turnover: float | None = Field(
        0.1,
        gt=0,
        description="Cap on the one-way turnover 1/2 sum |w_new - w_drifted| per rebalance "
        "(constructors); 1 replaces a whole fully invested book.",
    )
    fully_invested: bool = True
    constructors: list[ConstructorConfig] = Field(
        default_factory=list,
        description="Extra model strategies, each {name, type, ...}; see alphaseq.portfolio.",
    )
    hrp_baseline: bool = Field(False, description="Add HRP (no forecasts) as a baseline.")
    rebalance: Literal["monthly"] = "monthly"
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
    mode: Literal["long_flat", "long_short"] = "long_flat"
    cap: float = Field(1.0, gt=0, le=1, description="Largest absolute position (no borrowing).")
    threshold: float = Field(0.0, ge=0, description="Stay flat when |signal| <= threshold.")


class ExperimentConfig(_Section):
    """A whole experiment."""

    name: str = "experiment"
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


def parse_config(values: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
    """Validate a nested dictionary; raise one :class:`ConfigError` listing every problem."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(values).__name__}")
    try:
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
            message = f"unknown key; allowed: {allowed}"
        elif error["type"] == "literal_error":
            allowed = error.get("ctx", {}).get("expected", "")
            message = f"got {short_repr(value)}; allowed: {allowed}"
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
        annotation = getattr(field, "annotation", None)
        if str(part) == "constructors" and model is PortfolioConfig:
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
