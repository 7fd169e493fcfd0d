"""An experiment as stages with artifacts, recorded in one run directory.

``walk_forward`` (fit and forecast every fold, each stored as soon as it ends) ->
``strategies`` (every strategy from the stored forecasts) -> ``summarize``
(``metrics.json``, written last) -> the report. :class:`RunRecord` is the only reader
and writer of a run directory; :func:`run` resumes interrupted runs and
:func:`rebacktest` re-trades stored forecasts without retraining.
"""

from alphaseq.experiment.build import (
    ExperimentData,
    check_universe,
    fit_fold,
    load_run_panel,
    make_forecaster,
    make_splitter,
    prepare,
    resolve_config,
    timing_setup,
)
from alphaseq.experiment.configs import experiment_config, packaged_configs
from alphaseq.experiment.record import (
    RETRAIN_FREE_KEYS,
    SCHEMA_VERSION,
    FoldResult,
    RunRecord,
    RunRecordError,
    forecast_digest,
    retraining_keys,
)
from alphaseq.experiment.results import RunResults, load_run
from alphaseq.experiment.runner import RunResult, StageFailed, rebacktest, run
from alphaseq.experiment.strategies import STRATEGIES

__all__ = [
    "RETRAIN_FREE_KEYS",
    "SCHEMA_VERSION",
    "STRATEGIES",
    "ExperimentData",
    "FoldResult",
    "RunRecord",
    "RunRecordError",
    "RunResult",
    "RunResults",
    "StageFailed",
    "check_universe",
    "experiment_config",
    "fit_fold",
    "forecast_digest",
    "load_run",
    "load_run_panel",
    "make_forecaster",
    "make_splitter",
    "packaged_configs",
    "prepare",
    "rebacktest",
    "resolve_config",
    "retraining_keys",
    "run",
    "timing_setup",
]
