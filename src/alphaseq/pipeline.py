"""``run(config)``: one walk-forward experiment, from prices to a run directory.

Kept as the short import path of :mod:`alphaseq.experiment`, where the stages live.
"""

from alphaseq.experiment import STRATEGIES, RunResult, load_run_panel, rebacktest, run

__all__ = ["STRATEGIES", "RunResult", "load_run_panel", "rebacktest", "run"]
