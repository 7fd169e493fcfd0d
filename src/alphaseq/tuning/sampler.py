"""A TPE sampler whose randomness comes from the trial number, so that workers sharing a
study never draw alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState


class TrialSeededSampler(BaseSampler):
    """Optuna's TPE sampler, re-seeded for every trial from ``(seed, trial number)``.

    Workers that share a study get distinct trial numbers from the storage, so their
    random draws differ even when they start at the same moment with the same seed;
    a resumed study continues with new numbers and so with new draws; and a study run
    again from scratch with the same seed draws the same configurations. (Seeding each
    worker once, from its process id or from the trials already stored, lets two
    workers started together collide.) TPE itself keeps no state between trials beyond
    its random generator: it reads the history from the study each time.

    Parameters
    ----------
    seed : int or None, default 0
        Base seed; None draws fresh entropy for every trial.
    **tpe_options
        Passed to :class:`optuna.samplers.TPESampler` (not ``seed``).
    """

    def __init__(self, seed: int | None = 0, **tpe_options: Any) -> None:
        self.seed = seed
        self._options = tpe_options
        self._inner = TPESampler(seed=seed, **tpe_options)

    def trial_seed(self, number: int) -> int | None:
        """The seed of trial ``number`` (None when the base seed is None)."""
        if self.seed is None:
            return None
        return int(np.random.SeedSequence([self.seed, number]).generate_state(1)[0])

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = TPESampler(seed=self.trial_seed(trial.number), **self._options)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()
