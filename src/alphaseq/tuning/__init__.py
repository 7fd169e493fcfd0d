"""Hyper-parameter search with Optuna over the validation windows only (never the test
windows), with pruning, YAML search spaces and SQLite or PostgreSQL storage."""

from alphaseq.tuning.search import METRICS, TuningResult, ValidationObjective, make_pruner, tune
from alphaseq.tuning.space import (
    ParamSpec,
    apply_params,
    check_space,
    default_space_path,
    load_search_space,
    parse_search_space,
    space_for_model,
)

__all__ = [
    "METRICS",
    "ParamSpec",
    "TuningResult",
    "ValidationObjective",
    "apply_params",
    "check_space",
    "default_space_path",
    "load_search_space",
    "make_pruner",
    "parse_search_space",
    "space_for_model",
    "tune",
]
