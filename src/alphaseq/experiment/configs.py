"""Where an experiment config comes from: a YAML file, a packaged name, a dict or a model.

One resolution for the Python API (:func:`alphaseq.run`); the command line resolves
names the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from alphaseq.config import (
    ExperimentConfig,
    apply_overrides,
    json_copy,
    parse_config,
    read_config_values,
)
from alphaseq.errors import ConfigError

__all__ = ["experiment_config", "packaged_configs", "read_experiment_values"]

#: Packaged YAML files that are not experiments.
_NOT_EXPERIMENTS = ("search_space",)


def packaged_configs() -> list[str]:
    """Names of the experiment configs shipped in ``alphaseq/configs`` (``ci``, ...)."""
    folder = resources.files("alphaseq") / "configs"
    return sorted(
        p.name[: -len(".yaml")]
        for p in folder.iterdir()
        if p.name.endswith(".yaml") and p.name[: -len(".yaml")] not in _NOT_EXPERIMENTS
    )


def read_experiment_values(config: str | Path) -> tuple[dict[str, Any], str]:
    """Read a config by path, or by the name of a packaged config.

    An existing file wins over a packaged name.

    Parameters
    ----------
    config : str or Path
        A YAML file, or a name of :func:`packaged_configs` (``quickstart``, ``ci``, ...).

    Returns
    -------
    (dict, str)
        The unvalidated values, and a description of the source for messages.

    Raises
    ------
    ConfigError
        When it is neither a file nor a packaged name (the names are listed).
    """
    path = Path(config)
    if path.is_file():
        return read_config_values(path), f"'{path}'"
    packaged = resources.files("alphaseq") / "configs" / f"{config}.yaml"
    if isinstance(config, str) and config not in _NOT_EXPERIMENTS and packaged.is_file():
        with resources.as_file(packaged) as file:
            return read_config_values(file), f"packaged config {config!r}"
    available = packaged_configs()
    if path.is_dir():
        raise ConfigError(f"'{path}' is a directory, not a config file (packaged: {available})")
    raise ConfigError(f"config {str(config)!r} is neither a file nor a packaged config {available}")


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".") if isinstance(key, str) else []
    if not parts or any(not part for part in parts):
        raise ConfigError(f"override keys are dotted.key strings, got {key!r}")
    node = values
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def experiment_config(
    config: ExperimentConfig | Mapping[str, Any] | str | Path,
    overrides: Mapping[str, Any] | Sequence[str] = (),
) -> ExperimentConfig:
    """A validated experiment from any of the forms a user may hold.

    Parameters
    ----------
    config : ExperimentConfig, dict, str or Path
        A validated config; a nested dict of sections (as in the YAML files); a YAML
        path; or a packaged config name (see :func:`packaged_configs`).
    overrides : dict or sequence of str, optional
        Changes: ``{"training.epochs": 2}`` (values used as they are) or
        ``["training.epochs=2"]`` (values read as YAML, like ``--set``).

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        For an unknown name or file, a bad override, or an invalid value (one message
        listing every problem).
    """
    if isinstance(config, ExperimentConfig):
        if not overrides:
            return config
        values, source = config.model_dump(mode="json", exclude_unset=True), "the given config"
    elif isinstance(config, Mapping):
        values, source = json_copy(dict(config)), "the given dict"
    elif isinstance(config, str | Path):
        values, source = read_experiment_values(config)
    else:
        raise ConfigError(
            "config must be an ExperimentConfig, a dict, a YAML path or a packaged config "
            f"name {packaged_configs()}, got {type(config).__name__}"
        )
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            _set_dotted(values, key, value)
    elif isinstance(overrides, str):
        raise ConfigError(f"overrides must be a dict or a list of 'key=value', got {overrides!r}")
    else:
        values = apply_overrides(values, list(overrides))
    suffix = " with overrides" if overrides else ""
    return parse_config(values, source=f"{source}{suffix}")
