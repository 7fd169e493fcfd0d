"""Search spaces of hyper-parameter tuning, read from YAML and checked against the config.

A search space file maps a model name to the parameters tuned for it; each parameter is
a dotted key of the experiment config (the same keys as ``alphaseq run --set``)::

    lstm:
      model.params.hidden_size: {type: categorical, choices: [16, 32, 64, 128]}
      model.params.num_layers: {type: int, low: 1, high: 3}
      training.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}

``type`` is ``int``, ``float`` (both need ``low`` and ``high``, optionally ``log`` or
``step``) or ``categorical`` (needs ``choices``: numbers, strings, booleans or null).
Every error names the model and the key. :func:`check_space` also tries each bound and
each choice on the experiment config, so that a misspelt key or an impossible value is
reported before the first trial rather than as a failed trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from alphaseq.config import json_copy, parse_config
from alphaseq.errors import ConfigError
from alphaseq.losses import make_loss

__all__ = [
    "ParamSpec",
    "apply_params",
    "check_space",
    "default_space_path",
    "load_search_space",
    "parse_search_space",
    "space_for_model",
]

ParamType = Literal["int", "float", "categorical"]
_TYPES = ("int", "float", "categorical")
_FIELDS = ("type", "low", "high", "log", "step", "choices")
#: Keys a search space may not tune: the panel is loaded once per study, and the
#: space itself is chosen by the model's name.
_FIXED_PREFIXES = ("data.",)
_FIXED_KEYS = ("model.name",)


@dataclass(frozen=True)
class ParamSpec:
    """One tuned parameter.

    Parameters
    ----------
    key : str
        Dotted key of the experiment config, e.g. ``model.params.hidden_size``.
    type : {"int", "float", "categorical"}
        How the value is drawn.
    low, high : int or float, optional
        Inclusive bounds (``int`` and ``float``).
    log : bool, default False
        Draw on a log scale (needs ``low > 0``; not with ``step``).
    step : int or float, optional
        Spacing of the values (``int``: default 1).
    choices : tuple, optional
        The values of a ``categorical`` parameter.
    """

    key: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter's value for an Optuna trial (its name is the dotted key)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices or ()))
        if self.type == "int":
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def distribution(self) -> Any:
        """The Optuna distribution :meth:`suggest` draws from."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.type == "categorical":
            return CategoricalDistribution(list(self.choices or ()))
        if self.type == "int":
            return IntDistribution(
                int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return FloatDistribution(float(self.low), float(self.high), step=self.step, log=self.log)

    def probes(self) -> list[Any]:
        """Values that must all be accepted by the config: both bounds, or every choice."""
        if self.type == "categorical":
            return list(self.choices or ())
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]


def default_space_path() -> Path:
    """Path of the packaged default search space (``alphaseq/configs/search_space.yaml``)."""
    return Path(str(resources.files("alphaseq") / "configs" / "search_space.yaml"))


def load_search_space(
    space: str | Path | Mapping[str, Any] | None = None,
) -> dict[str, dict[str, ParamSpec]]:
    """Read and validate a search space.

    Parameters
    ----------
    space : str, Path, mapping or None
        A YAML file, an already-read mapping ``{model: {key: spec}}``, or None for the
        packaged default.

    Returns
    -------
    dict
        ``{model_name: {dotted_key: ParamSpec}}``.

    Raises
    ------
    ConfigError
        For an unreadable file or any invalid entry (the message names model and key).
    """
    if space is None:
        space = default_space_path()
    if isinstance(space, Mapping):
        return parse_search_space(space)
    path = Path(space)
    if not path.is_file():
        raise ConfigError(f"search space file not found: '{path}'")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"search space '{path}' is not valid YAML: {exc}") from None
    return parse_search_space(values, source=f"search space '{path}'")


def parse_search_space(
    values: Any, *, source: str = "search space"
) -> dict[str, dict[str, ParamSpec]]:
    """Validate ``{model_name: {dotted_key: {type, low, high, log, step, choices}}}``.

    Raises
    ------
    ConfigError
        Naming ``model.key`` and what is wrong with it.
    """
    from alphaseq.models import MODELS

    if not isinstance(values, Mapping) or not values:
        raise ConfigError(f"{source}: expected a mapping of model names to parameters")
    spaces: dict[str, dict[str, ParamSpec]] = {}
    for model, params in values.items():
        if model not in MODELS:
            raise ConfigError(f"{source}: unknown model {model!r}; allowed: {sorted(MODELS)}")
        if not isinstance(params, Mapping) or not params:
            raise ConfigError(
                f"{source}: {model}: expected a mapping of dotted config keys to parameter specs"
            )
        spaces[str(model)] = {
            str(key): _parse_param(str(key), spec, f"{source}: {model}.{key}")
            for key, spec in params.items()
        }
    return spaces


def space_for_model(
    spaces: Mapping[str, Mapping[str, ParamSpec]], model: str
) -> dict[str, ParamSpec]:
    """The parameters tuned for ``model``; a :class:`ConfigError` when it has none."""
    if model not in spaces:
        raise ConfigError(
            f"the search space has no entry for model {model!r}; it has {sorted(spaces)}"
        )
    return dict(spaces[model])


def apply_params(values: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the config dict with each ``dotted.key: value`` set (values kept as given).

    Unlike :func:`alphaseq.config.apply_overrides`, the values are Python objects, not
    YAML text, so ``1e-05`` stays a float.
    """
    result = json_copy(dict(values))
    for key, value in params.items():
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:  # an absent (or null) section: create it
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"{key}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def check_space(
    space: Mapping[str, ParamSpec], values: Mapping[str, Any], *, source: str = "search space"
) -> None:
    """Check every bound and choice of ``space`` on the experiment config ``values``.

    Each value is set alone on the base config and the result validated with
    :func:`alphaseq.config.parse_config` (and the loss built), so an unknown key
    (``model.params.hiden_size``) or a value the config refuses (``training.loss: nope``)
    stops the study up front. Constraints between parameters (attention heads dividing
    the hidden size) are checked per trial instead.

    Raises
    ------
    ConfigError
        Naming the key and the value.
    """
    for key, spec in space.items():
        for value in spec.probes():
            try:
                config = parse_config(apply_params(values, {key: value}), source="config")
                make_loss(config.training.loss, **dict(config.training.loss_params))
            except ConfigError as exc:
                raise ConfigError(
                    f"{source}: {key}: the value {value!r} is not accepted by the experiment "
                    f"config ({exc})"
                ) from None


def _parse_param(key: str, spec: Any, where: str) -> ParamSpec:
    parts = key.split(".")
    if not key or any(not part for part in parts) or len(parts) < 2:
        raise ConfigError(f"{where}: expected a dotted config key such as 'training.loss'")
    if key in _FIXED_KEYS or key.startswith(_FIXED_PREFIXES):
        raise ConfigError(f"{where}: data.* and model.name cannot be tuned")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'type' and its settings")
    unknown = sorted(set(spec) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; allowed: {list(_FIELDS)}")
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigError(f"{where}: type must be one of {list(_TYPES)}, got {kind!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")

    if kind == "categorical":
        extra = sorted(k for k in ("low", "high", "step") if k in spec) + (["log"] if log else [])
        if extra:
            raise ConfigError(f"{where}: a categorical parameter takes only choices, not {extra}")
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: categorical needs a non-empty list of choices")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ConfigError(
                    f"{where}: choices must be numbers, strings, booleans or null, got {choice!r}"
                )
        if len({repr(c) for c in choices}) != len(choices):
            raise ConfigError(f"{where}: choices repeat a value: {choices}")
        return ParamSpec(key, "categorical", choices=tuple(choices))

    if "choices" in spec:
        raise ConfigError(f"{where}: choices belong to a categorical parameter, not {kind}")
    numbers = {}
    for name in ("low", "high", "step"):
        value = spec.get(name)
        if value is None:
            if name != "step":
                raise ConfigError(f"{where}: {kind} needs '{name}'")
            numbers[name] = None
            continue
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
        if kind == "int" and not float(value).is_integer():
            raise ConfigError(f"{where}: {name} of an int parameter must be whole, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {name} must be finite, got {value!r}")
        numbers[name] = int(value) if kind == "int" else float(value)
    low, high, step = numbers["low"], numbers["high"], numbers["step"]
    if low > high:
        raise ConfigError(f"{where}: low ({low}) must not exceed high ({high})")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: step must be positive, got {step}")
    if log and step is not None and not (kind == "int" and step == 1):
        raise ConfigError(f"{where}: log and step cannot be combined")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    return ParamSpec(key, kind, low=low, high=high, log=log, step=step)
