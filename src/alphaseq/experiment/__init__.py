"""An experiment as stages with artifacts, recorded in one run directory.

``walk_forward`` (fit and forecast every fold, each stored as soon as it ends) ->
``strategies`` (every strategy from the stored forecasts) -> ``summarize``
(``metrics.json``, written last) -> the report. :class:`RunRecord` is the only reader
and writer of a run directory; :func:`run` resumes interrupted runs and
:func:`rebacktest` re-trades stored forecasts without retraining.
"""

from alphaseq._lazy import lazy_exports

# Imported on first use: reading a run directory (the report) needs neither torch nor
# the optimisers, and the command line resolves configs before anything heavy loads.
_LAZY = {
    "ExperimentData": "alphaseq.experiment.build",
    "FoldResult": "alphaseq.experiment.record",
    "RETRAIN_FREE_KEYS": "alphaseq.experiment.record",
    "RunRecord": "alphaseq.experiment.record",
    "RunRecordError": "alphaseq.experiment.record",
    "RunResult": "alphaseq.experiment.runner",
    "RunResults": "alphaseq.experiment.results",
    "SCHEMA_VERSION": "alphaseq.experiment.record",
    "STRATEGIES": "alphaseq.experiment.strategies",
    "StageFailed": "alphaseq.experiment.runner",
    "check_universe": "alphaseq.experiment.build",
    "experiment_config": "alphaseq.experiment.configs",
    "fit_fold": "alphaseq.experiment.build",
    "forecast_digest": "alphaseq.experiment.record",
    "load_run": "alphaseq.experiment.results",
    "load_run_panel": "alphaseq.experiment.build",
    "make_forecaster": "alphaseq.experiment.build",
    "make_splitter": "alphaseq.experiment.build",
    "packaged_configs": "alphaseq.experiment.configs",
    "prepare": "alphaseq.experiment.build",
    "rebacktest": "alphaseq.experiment.runner",
    "resolve_config": "alphaseq.experiment.build",
    "retraining_keys": "alphaseq.experiment.record",
    "run": "alphaseq.experiment.runner",
    "timing_setup": "alphaseq.experiment.build",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
