"""Validated configuration of an experiment (the YAML file's schema).

So far: the data, feature, label and window sections. Unknown keys are errors, and
every error names the dotted key, the bad value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alphaseq.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where prices come from and how the universe is filtered."""

    source: str = Field("sp500", description="A file path or a built-in data set name.")
    min_history: int = Field(0, ge=0, description="Exclude tickers with fewer valid closes.")
    benchmark: str | None = Field(None, description="Ticker of the input used as benchmark.")
    start: str | None = Field(None, description="First date to keep (YYYY-MM-DD).")
    end: str | None = Field(None, description="Last date to keep (YYYY-MM-DD).")


class FeatureConfig(_Section):
    """Which features to compute and how to normalise them."""

    names: list[str] | None = Field(
        None, description="Feature names; default: the default set the data supports."
    )
    cross_section: Literal["rank", "robust_zscore"] | None = None
    scaler: Literal["robust", "standard"] | None = "robust"
    clip: float | None = Field(3.0, gt=0)

    @field_validator("names")
    @classmethod
    def _known_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        from alphaseq.features.registry import resolve_feature

        if not names:
            raise ValueError("the feature list is empty")
        for name in names:
            try:
                resolve_feature(name)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return names


class LabelConfig(_Section):
    """What to predict."""

    kind: Literal["forward_return", "trend", "direction", "three_class"] = "forward_return"
    horizons: list[int] = Field(default_factory=lambda: [21], min_length=1)
    flat_band: float = Field(0.01, ge=0)
    vol_window: int = Field(63, ge=2)

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


class ExperimentConfig(_Section):
    """A whole experiment."""

    data: DataConfig = Field(default_factory=DataConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    windows: WindowConfig = Field(default_factory=WindowConfig)


def parse_config(values: dict[str, Any], *, source: str = "config") -> ExperimentConfig:
    """Validate a nested dictionary; raise one :class:`ConfigError` listing every problem."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(values).__name__}")
    try:
        return ExperimentConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML experiment file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: '{path}'")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"'{path}' is not valid YAML: {exc}") from None
    return parse_config(values, source=f"'{path}'")


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
            message = f"got {value!r}; allowed: {allowed}"
        elif error["type"] == "value_error":
            message = str(error.get("ctx", {}).get("error", message))
        elif value is not None and not isinstance(value, dict):
            message = f"{message} (got {value!r})"
        lines.append(f"{key}: {message}")
    return f"{source}: " + "; ".join(lines)


def _section_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = ExperimentConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model
