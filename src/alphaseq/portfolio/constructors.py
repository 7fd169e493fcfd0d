"""Portfolio constructors: forecasts (and a window of returns) to constrained weights.

Every constructor is a small object with ``weights(scores, history, drifted, tradable)``
returning target weights that already satisfy its :class:`PortfolioConstraints` (all
output goes through :meth:`PortfolioConstraints.apply`). The optimisers are skfolio's
(hierarchical risk parity, mean-risk on cvxpy/Clarabel, shrunk covariances); a failed
optimisation never raises: the constructor keeps the drifted weights (see
:meth:`PortfolioConstructor.on_failure`).

:func:`make_policy` turns a constructor into a policy for :func:`alphaseq.backtest.backtest`,
which calls it at each rebalance with the weights the portfolio drifted to.

Constructors given one :class:`~alphaseq.portfolio.estimates.RiskEstimates` (a run gives
all of its constructors the same) share each rebalance's covariance and HRP allocation
instead of fitting skfolio's estimators each on its own; the weights are the same to
rounding (mean-variance solves the very same problem; HRP's bisection is computed from
the shared covariance, see :mod:`alphaseq.portfolio.hrp`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import cvxpy as cp
import numpy as np
import pandas as pd
import sklearn.utils.validation as skv
from skfolio.measures import RiskMeasure
from skfolio.moments import OAS, BaseMu, EmpiricalCovariance, LedoitWolf
from skfolio.optimization import HierarchicalRiskParity, MeanRisk, ObjectiveFunction
from skfolio.prior import EmpiricalPrior

from alphaseq._logging import logger
from alphaseq.backtest.engine import tradable as tradable_at
from alphaseq.errors import ConfigError
from alphaseq.portfolio.constraints import PortfolioConstraints
from alphaseq.portfolio.estimates import PrecomputedCovariance, RiskEstimates
from alphaseq.portfolio.topk import top_k_weights

#: Covariance estimators of :class:`MeanVariance` (skfolio's, fitted on daily returns).
COVARIANCES = ("ledoit_wolf", "oas", "empirical")


class OptimizationFailed(RuntimeError):
    """An optimiser could not produce weights (solver error, infeasible, bad inputs)."""


@dataclass(eq=False)
class PortfolioConstructor(ABC):
    """Base class: turns forecasts into weights that satisfy ``constraints``.

    Parameters
    ----------
    constraints : PortfolioConstraints, default=PortfolioConstraints()
        Limits applied to every output (keyword only).
    name : str
        Strategy name in outputs (keyword only); each constructor has a default.
    estimates : RiskEstimates or None, default=None
        Risk estimates shared with the other constructors of a run (keyword only): the
        covariance and the HRP allocation of a returns window are then computed once
        for all of them (see :mod:`alphaseq.portfolio.estimates`). None: the
        constructor fits skfolio's estimators itself at every rebalance.

    Attributes
    ----------
    n_failures : int
        Optimisations that failed and fell back to the drifted weights.
    weights_ : pandas.DataFrame
        After :meth:`fit`: the weights at each rebalance date (dates x tickers).
    """

    constraints: PortfolioConstraints = field(default_factory=PortfolioConstraints, kw_only=True)
    name: str = field(default="constructor", kw_only=True)
    estimates: RiskEstimates | None = field(default=None, kw_only=True, repr=False)
    n_failures: int = field(default=0, init=False, repr=False)

    #: Whether ``scores`` drive the weights (they also break ties in the top-k cut).
    uses_scores: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not isinstance(self.constraints, PortfolioConstraints):
            raise ConfigError(
                f"constraints must be a PortfolioConstraints, got {type(self.constraints).__name__}"
            )
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        if self.estimates is not None and not isinstance(self.estimates, RiskEstimates):
            raise ConfigError(
                f"estimates must be a RiskEstimates or None, got {type(self.estimates).__name__}"
            )

    @property
    def history_days(self) -> int:
        """Rows of daily returns the constructor reads from ``history`` (0: none)."""
        return 0

    def weights(
        self,
        scores: np.ndarray,
        history: np.ndarray | None,
        drifted: np.ndarray,
        tradable: np.ndarray,
    ) -> np.ndarray:
        """Target weights at one rebalance.

        Parameters
        ----------
        scores : numpy.ndarray
            Forecasts at the rebalance date, (N,); NaN means no forecast.
        history : numpy.ndarray or None
            Daily returns up to and including the rebalance date, (L, N), oldest first;
            NaN where a return is missing. Only risk models read it (None is fine for
            the others).
        drifted : numpy.ndarray
            Weights the portfolio drifted to since the last rebalance, (N,).
        tradable : numpy.ndarray
            Boolean mask of tickers with a price on the rebalance row, (N,).

        Returns
        -------
        numpy.ndarray
            Weights, (N,), satisfying ``self.constraints`` (see
            :meth:`PortfolioConstraints.check`).
        """
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1:
            raise ValueError(f"scores must be 1-D (one per ticker), got shape {scores.shape}")
        n = scores.shape[0]
        drifted = np.asarray(drifted, dtype=np.float64)
        tradable = np.asarray(tradable, dtype=bool)
        if drifted.shape != (n,) or tradable.shape != (n,):
            raise ValueError(
                f"drifted {drifted.shape} and tradable {tradable.shape} must match scores ({n},)"
            )
        history = np.empty((0, n)) if history is None else np.asarray(history, dtype=np.float64)
        if history.ndim != 2 or history.shape[1] != n:
            raise ValueError(f"history must be (L, {n}) daily returns, got shape {history.shape}")
        try:
            target = self._target(scores, history, drifted, tradable)
        except OptimizationFailed as error:
            return self.on_failure(drifted, tradable, error)
        preference = scores if self.uses_scores else None
        return self.constraints.apply(target, drifted, tradable, preference=preference)

    def fit(
        self,
        prices: pd.DataFrame,
        forecasts: pd.DataFrame | None = None,
        *,
        rebalance: str | Sequence[Any] | None = None,
    ) -> PortfolioConstructor:
        """Weights at each rebalance date from pandas tables; sets :attr:`weights_`.

        Runs :meth:`weights` date by date on the weights the portfolio drifted to, as a
        backtest does (see :func:`alphaseq.portfolio.frame.constructor_weights`).

        Parameters
        ----------
        prices : pandas.DataFrame
            Close prices, dates by tickers (NaN: no price).
        forecasts : pandas.DataFrame, optional
            Scores, dates by tickers, or tidy ``date, ticker, prediction``; needed when
            the constructor uses scores.
        rebalance : None, "month_end" or sequence of dates
            The forecasts' dates (default), month ends, or these dates.

        Returns
        -------
        self
        """
        from alphaseq.portfolio.frame import constructor_weights

        self.weights_ = constructor_weights(self, prices, forecasts, rebalance=rebalance)
        return self

    def on_failure(self, drifted: np.ndarray, tradable: np.ndarray, error: Exception) -> np.ndarray:
        """Fallback when the optimisation fails: keep the drifted weights.

        The drifted weights on tradable tickers (forced sales dropped) are projected
        with :meth:`PortfolioConstraints.apply`, which reinvests the cash of forced
        sales pro rata and trims positions above the maximum weight. Logs a warning and
        counts the failure in :attr:`n_failures`; never raises.
        """
        self.n_failures += 1
        logger.warning(
            "%s: optimisation failed (%s); keeping the drifted weights (failure %d)",
            self.name,
            error,
            self.n_failures,
        )
        hold = np.where(tradable, drifted, 0.0)
        return self.constraints.apply(hold, drifted, tradable)

    @abstractmethod
    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        """Unconstrained target weights, (N,); raise OptimizationFailed on failure."""


# --------------------------------------------------------------------------- helpers
def _check_lookback(lookback: object) -> None:
    if isinstance(lookback, bool) or not isinstance(lookback, int | np.integer) or lookback < 2:
        raise ConfigError(f"lookback must be an integer >= 2 (days of returns), got {lookback!r}")


def _risk_universe(
    history: np.ndarray, tradable: np.ndarray, lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last ``lookback`` returns and the tickers with every one of them, a price and
    some movement.

    Tickers without a full history are left out of the risk model (weight 0), and so
    are tickers whose returns are all equal over the window (a suspended stock with a
    constant price): a zero-variance asset makes the hierarchy's distances and the
    covariance degenerate, and it cannot be traded anyway.
    """
    window = history[-lookback:]
    if window.shape[0] < 2:
        raise OptimizationFailed(
            f"only {window.shape[0]} day(s) of returns before the rebalance; a risk model "
            "needs at least 2"
        )
    complete = tradable & np.isfinite(window).all(axis=0)
    moving = np.zeros_like(complete)
    moving[complete] = np.ptp(window[:, complete], axis=0) > 0
    return window, complete & moving


def _fit(estimator: HierarchicalRiskParity | MeanRisk, returns: np.ndarray) -> np.ndarray:
    """Fit a skfolio optimiser; any failure becomes :class:`OptimizationFailed`."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            weights = np.asarray(estimator.fit(returns).weights_, dtype=np.float64)
    except Exception as error:  # skfolio re-raises whatever failed inside fit
        raise OptimizationFailed(f"{type(error).__name__}: {error}") from error
    if weights.shape != (returns.shape[1],) or not np.isfinite(weights).all():
        raise OptimizationFailed(f"{type(estimator).__name__} returned non-finite weights")
    for warning in caught:
        # A solver's "may be inaccurate" at one rebalance goes to the run's log, not to
        # the user's terminal hundreds of times; the constraints are checked afterwards.
        logger.info("%s: %s", type(estimator).__name__, warning.message)
    return weights


#: Recent HRP allocations by (returns window, universe, cap) digest. The HRP baseline
#: and an HRP-based tilt fit the very same hierarchy at every rebalance, and a
#: re-backtest fits it again; HRP is deterministic, so one fit serves them all.
_HRP_CACHE: OrderedDict[bytes, np.ndarray] = OrderedDict()
_HRP_CACHE_SIZE = 1024


def _hrp_start(universe: np.ndarray, max_weight: float | None) -> tuple[np.ndarray, float | None]:
    """``(weights, cap)`` before an HRP fit: zeros and the cap to fit with, or the final
    weights and None when there is nothing to fit (no member, or one)."""
    out = np.zeros(len(universe))
    n = int(universe.sum())
    if n <= 1:
        out[universe] = 1.0  # nothing when n == 0
        return out, None
    # skfolio's own cap keeps the hierarchy's allocation within max_weight when feasible;
    # otherwise apply() caps and leaves the rest in cash.
    return out, (max_weight if max_weight is not None and max_weight * n >= 1.0 else 1.0)


def _hrp_target(
    window: np.ndarray,
    universe: np.ndarray,
    max_weight: float | None,
    estimates: RiskEstimates | None,
) -> np.ndarray:
    """HRP weights of ``universe`` (0 elsewhere): shared when ``estimates`` is given."""
    if estimates is None:
        return _hrp_weights(window, universe, max_weight)
    out, cap = _hrp_start(universe, max_weight)
    if cap is None:
        return out
    try:
        weights = estimates.hrp_weights(window[:, universe], cap)
    except Exception as error:  # a degenerate window: the constructor falls back
        raise OptimizationFailed(f"{type(error).__name__}: {error}") from error
    if not np.isfinite(weights).all():
        raise OptimizationFailed("hierarchical risk parity returned non-finite weights")
    out[universe] = weights
    return out


def _hrp_weights(window: np.ndarray, universe: np.ndarray, max_weight: float | None) -> np.ndarray:
    """skfolio's HierarchicalRiskParity fitted on ``universe`` (memoised)."""
    out, cap = _hrp_start(universe, max_weight)
    if cap is None:
        return out
    returns = window[:, universe]  # its memory layout is kept: it changes skfolio's rounding
    digest = hashlib.blake2b(np.ascontiguousarray(returns).tobytes(), digest_size=20)
    digest.update(np.packbits(universe).tobytes() + np.float64(cap).tobytes())
    digest.update(np.int64(returns.shape[0]).tobytes() + np.int64(len(universe)).tobytes())
    key = digest.digest()
    weights = _HRP_CACHE.get(key)
    if weights is None:
        weights = _fit(HierarchicalRiskParity(max_weights=cap), returns)
        _HRP_CACHE[key] = weights
        if len(_HRP_CACHE) > _HRP_CACHE_SIZE:
            _HRP_CACHE.popitem(last=False)
    else:
        _HRP_CACHE.move_to_end(key)
    out[universe] = weights
    return out


# ---------------------------------------------------------------------- constructors
@dataclass(eq=False)
class EqualWeight(PortfolioConstructor):
    """Equal weight over every tradable ticker (a baseline; ignores the scores)."""

    name: str = field(default="equal_weight", kw_only=True)
    uses_scores: ClassVar[bool] = False

    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        return tradable.astype(np.float64)


@dataclass(eq=False)
class TopK(PortfolioConstructor):
    """The ``k`` best forecasts, weighted equally or by forecast.

    Parameters
    ----------
    k : int
        Names selected: the ``k`` highest finite scores among tradable tickers (ties by
        column order). ``constraints.top_k``, when smaller, cuts further.
    weighting : {"equal", "forecast"}, default="equal"
        ``"equal"``: ``1 / k`` each. ``"forecast"``: proportional to the positive part of
        the scores among the selected names, ``w_i ∝ max(s_i, 0)``; equal weight when
        none is positive.
    """

    k: int
    weighting: Literal["equal", "forecast"] = "equal"
    name: str = field(default="topk", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ConfigError(f"TopK k must be an integer >= 1, got {self.k!r}")
        if self.weighting not in ("equal", "forecast"):
            raise ConfigError(
                f"TopK weighting must be 'equal' or 'forecast', got {self.weighting!r}"
            )

    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        eligible = np.where(tradable, scores, np.nan)
        chosen = top_k_weights(eligible[None, :], int(self.k))[0]
        if self.weighting == "forecast":
            positive = np.where(chosen > 0, np.maximum(eligible, 0.0), 0.0)
            if positive.sum() > 0:
                return positive
        return chosen


@dataclass(eq=False)
class Tilt(PortfolioConstructor):
    """A base portfolio tilted toward the predicted outperformers.

    ``w_i ∝ b_i * exp(strength * z_i)``, then constrained, where ``b`` is the base
    portfolio and ``z_i = (s_i - mean(s)) / std(s)`` is the cross-sectional z-score of
    the forecasts (population std, over the base's names with a forecast), clipped to
    ``[-clip, clip]``. Names without a forecast, or every name when the forecasts do not
    vary, get ``z = 0`` (their base weight). ``strength = 0`` gives the base itself.

    Parameters
    ----------
    base : {"equal", "hrp"}, default="equal"
        Equal weight over tradable tickers, or skfolio's hierarchical risk parity on
        the last ``lookback`` daily returns (tickers without a full window left out).
    strength : float, default=1.0
        Tilt per unit of z-score (>= 0).
    lookback : int, default=252
        Days of returns for the HRP base.
    clip : float or None, default=3.0
        Bound on ``|z|`` so that one outlier forecast cannot take the whole portfolio;
        None for no bound.
    """

    base: Literal["equal", "hrp"] = "equal"
    strength: float = 1.0
    lookback: int = 252
    clip: float | None = 3.0
    name: str = field(default="tilt", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.base not in ("equal", "hrp"):
            raise ConfigError(f"Tilt base must be 'equal' or 'hrp', got {self.base!r}")
        if not _finite_at_least(self.strength, 0.0):
            raise ConfigError(f"Tilt strength must be a finite number >= 0, got {self.strength!r}")
        if self.clip is not None and not (_finite_at_least(self.clip, 0.0) and self.clip > 0):
            raise ConfigError(f"Tilt clip must be a number > 0 or None, got {self.clip!r}")
        _check_lookback(self.lookback)

    @property
    def history_days(self) -> int:
        return int(self.lookback) if self.base == "hrp" else 0

    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        if self.base == "equal":
            base = tradable.astype(np.float64)
        else:
            window, universe = _risk_universe(history, tradable, int(self.lookback))
            base = _hrp_target(window, universe, self.constraints.max_weight, self.estimates)
        return base * np.exp(self.strength * self._z_scores(scores, base > 0))

    def _z_scores(self, scores: np.ndarray, members: np.ndarray) -> np.ndarray:
        z = np.zeros(len(scores))
        known = members & np.isfinite(scores)
        if known.sum() < 2:
            return z
        values = scores[known]
        spread = values.std()
        if not spread > 0:
            return z
        z[known] = (values - values.mean()) / spread
        return z if self.clip is None else np.clip(z, -self.clip, self.clip)


@dataclass(eq=False)
class HRP(PortfolioConstructor):
    """skfolio's hierarchical risk parity on daily returns (a baseline; ignores scores).

    Parameters
    ----------
    lookback : int, default=252
        Days of returns; tickers without a full window get weight 0.
    """

    lookback: int = 252
    name: str = field(default="hrp", kw_only=True)
    uses_scores: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_lookback(self.lookback)

    @property
    def history_days(self) -> int:
        return int(self.lookback)

    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        window, universe = _risk_universe(history, tradable, int(self.lookback))
        return _hrp_target(window, universe, self.constraints.max_weight, self.estimates)


class ForecastMu(BaseMu):
    """skfolio expected-returns estimator that returns given forecasts.

    Lets an :class:`skfolio.prior.EmpiricalPrior` pair model forecasts with a shrunk
    covariance estimated from the returns.

    Parameters
    ----------
    mu : array-like of shape (n_assets,)
        Expected returns, in the periodicity of the returns ``X`` passed to ``fit``.
    """

    def __init__(self, mu: np.ndarray) -> None:
        self.mu = mu

    def fit(self, X: np.ndarray, y: None = None) -> ForecastMu:
        """Check ``X`` against ``mu`` and set ``mu_``."""
        X = skv.validate_data(self, X)
        mu = np.asarray(self.mu, dtype=np.float64)
        if mu.shape != (X.shape[1],):
            raise ValueError(f"mu has shape {mu.shape}, expected ({X.shape[1]},)")
        self.mu_ = mu
        return self


@dataclass(eq=False)
class MeanVariance(PortfolioConstructor):
    r"""Markowitz on the forecasts with a shrunk covariance (skfolio ``MeanRisk``).

    Maximises the utility over one forecast horizon of ``h`` days

    .. math:: \mu^\top w - c \, \lVert w - w_{prev} \rVert_1
              - \frac{\lambda}{2} \, w^\top (h \Sigma) w

    where :math:`\mu` are the forecasts (``h``-day returns), :math:`\Sigma` the shrunk
    covariance of daily returns (so :math:`h\Sigma` is the ``h``-day covariance under
    independent days), :math:`c` = ``cost_bps / 1e4`` paid once per rebalance (the
    holding period taken as ``h`` days) and :math:`w_{prev}` the drifted weights, subject
    to ``w >= 0``, ``w <= max_weight``, ``sum(w) = 1`` (``<= 1`` when not fully invested)
    and, when ``max_turnover`` is set, ``sum |w - h_prev| <= 2 * max_turnover`` (the cap
    is one-way) minus the
    turnover taken by names leaving the universe (``h_prev``: the drifted weights trimmed
    to ``max_weight``; see :mod:`alphaseq.portfolio.constraints`).

    skfolio's utility is ``mu' w - risk_aversion * w' S w`` in the periodicity of its
    returns, so it is solved in daily units: everything above divided by ``h``
    (``mu / h``, ``c / h`` as skfolio advises for costs, daily :math:`\Sigma`, and
    ``risk_aversion = lambda / 2``) — the same optimum. skfolio's own ``max_turnover``
    bounds each asset's change, not the sum, so the portfolio cap is passed as a custom
    constraint. ``top_k`` would need a mixed-integer solver: it is applied afterwards
    by :meth:`PortfolioConstraints.apply`.

    The universe is the tradable tickers with a forecast and a full ``lookback`` window
    of returns; the others get weight 0. When the turnover budget cannot be met inside
    the optimisation (names leaving the universe take it all), the cap is left to
    :meth:`PortfolioConstraints.apply` instead of making the problem infeasible.

    Parameters
    ----------
    risk_aversion : float, default=1.0
        :math:`\lambda` (> 0) for ``h``-day returns.
    covariance : {"ledoit_wolf", "oas", "empirical"}, default="ledoit_wolf"
        skfolio covariance estimator of the daily returns.
    lookback : int, default=252
        Days of returns for the covariance.
    cost_bps : float, default=10.0
        Transaction cost per unit traded, in basis points (>= 0).
    horizon : int, default=21
        Forecast horizon ``h`` in trading days.
    """

    risk_aversion: float = 1.0
    covariance: Literal["ledoit_wolf", "oas", "empirical"] = "ledoit_wolf"
    lookback: int = 252
    cost_bps: float = 10.0
    horizon: int = 21
    name: str = field(default="mean_variance", kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (_finite_at_least(self.risk_aversion, 0.0) and self.risk_aversion > 0):
            raise ConfigError(
                "MeanVariance risk_aversion must be a finite number > 0, got "
                f"{self.risk_aversion!r}"
            )
        if self.covariance not in COVARIANCES:
            raise ConfigError(
                f"MeanVariance covariance must be one of {', '.join(COVARIANCES)}, "
                f"got {self.covariance!r}"
            )
        _check_lookback(self.lookback)
        if not _finite_at_least(self.cost_bps, 0.0):
            raise ConfigError(f"MeanVariance cost_bps must be a number >= 0, got {self.cost_bps!r}")
        if (
            isinstance(self.horizon, bool)
            or not isinstance(self.horizon, int | np.integer)
            or self.horizon < 1
        ):
            raise ConfigError(
                f"MeanVariance horizon must be an integer >= 1 (days), got {self.horizon!r}"
            )

    @property
    def history_days(self) -> int:
        return int(self.lookback)

    def _covariance_estimator(self) -> LedoitWolf | OAS | EmpiricalCovariance:
        if self.covariance == "ledoit_wolf":
            return LedoitWolf()
        if self.covariance == "oas":
            return OAS()
        return EmpiricalCovariance()

    def _target(
        self, scores: np.ndarray, history: np.ndarray, drifted: np.ndarray, tradable: np.ndarray
    ) -> np.ndarray:
        window, universe = _risk_universe(history, tradable, int(self.lookback))
        universe &= np.isfinite(scores)
        out = np.zeros(len(scores))
        n = int(universe.sum())
        if n == 0:
            return out  # no view: apply() keeps the holdings
        c = self.constraints
        cap = 1.0 if c.max_weight is None else c.max_weight
        invest = min(1.0, cap * n) if c.fully_invested else None
        # Exact budget when reachable; with too few names for max_weight invest what fits.
        budget = {"budget": 1.0} if invest == 1.0 else {"budget": None, "max_budget": 1.0}

        previous = np.where(tradable, drifted, 0.0)
        returns = window[:, universe]
        if self.estimates is None:
            covariance = self._covariance_estimator()
        else:
            try:
                shared = self.estimates.covariance(
                    returns, self._covariance_estimator, self.covariance
                )
            except Exception as error:  # e.g. a degenerate window
                raise OptimizationFailed(f"{type(error).__name__}: {error}") from error
            covariance = PrecomputedCovariance(shared)
        prior = EmpiricalPrior(
            mu_estimator=ForecastMu(scores[universe] / self.horizon),
            covariance_estimator=covariance,
        )
        # In daily units the utility is ~1e-4, near Clarabel's absolute tolerance: scale
        # it so that the risk term is of order 1 (the optimum is unchanged).
        variance = float(returns.var(axis=0).mean()) * self.risk_aversion / 2.0
        scale = 1.0 / variance if np.isfinite(variance) and variance > 0 else None
        model = MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_measure=RiskMeasure.VARIANCE,
            risk_aversion=self.risk_aversion / 2.0,
            prior_estimator=prior,
            min_weights=0.0,
            max_weights=cap,
            previous_weights=previous[universe],
            transaction_costs=self.cost_bps / 1e4 / self.horizon,
            add_constraints=self._turnover_constraint(previous, tradable, universe, invest),
            scale_objective=scale,
            solver_params=None if self.estimates is None else self.estimates.solver_params(),
            **budget,
        )
        if self.estimates is None:
            out[universe] = _fit(model, returns)
            return out
        with self.estimates.limits():
            out[universe] = _fit(model, returns)
        return out

    def _turnover_constraint(
        self,
        previous: np.ndarray,
        tradable: np.ndarray,
        universe: np.ndarray,
        invest: float | None,
    ) -> Callable[[cp.Variable], cp.Constraint] | None:
        """``sum |w - h_U| <= budget`` for skfolio, or None when exempt or unreachable."""
        c = self.constraints
        cap = np.inf if c.max_weight is None else c.max_weight
        held = np.clip(previous, 0.0, cap)
        if c.max_turnover is None or not held.any():
            return None
        # Names leaving the universe are sold: their (trimmed) weight uses the cap first.
        budget = 2.0 * c.max_turnover - held[tradable & ~universe].sum()  # one-way cap
        reference = held[universe]
        needed = abs(invest - reference.sum()) if invest is not None else 0.0
        if budget < needed + 1e-6:
            logger.debug(
                "%s: turnover budget %.4g cannot reach the budget constraint (needs %.4g); "
                "the cap is applied after the optimisation",
                self.name,
                budget,
                needed,
            )
            return None
        return lambda w: cp.sum(cp.abs(w - reference)) <= budget


def _finite_at_least(value: object, low: float) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and value >= low
    )


#: Constructor classes by the ``type`` used in experiment configs.
CONSTRUCTORS: dict[str, type[PortfolioConstructor]] = {
    "topk": TopK,
    "tilt": Tilt,
    "mean_variance": MeanVariance,
    "hrp": HRP,
    "equal_weight": EqualWeight,
}


# ---------------------------------------------------------------------------- policy
@dataclass(eq=False)
class ConstructorPolicy:
    """A :data:`alphaseq.backtest.engine.WeightPolicy` running one constructor.

    Called as ``policy(r, row, drifted)`` by :func:`alphaseq.backtest.backtest`; see
    :func:`make_policy`.
    """

    constructor: PortfolioConstructor
    close: np.ndarray
    scores_by_row: np.ndarray | Mapping[int, np.ndarray]
    history_days: int
    eligible: np.ndarray | None = None

    def scores_at(self, r: int, row: int) -> np.ndarray:
        """Forecasts of rebalance ``r`` (at panel row ``row``), (N,); NaN when none."""
        n = self.close.shape[1]
        if isinstance(self.scores_by_row, Mapping):
            found = self.scores_by_row.get(row)
            scores = np.full(n, np.nan) if found is None else np.asarray(found, np.float64)
        else:
            if r >= len(self.scores_by_row):
                raise ValueError(
                    f"scores_by_row has {len(self.scores_by_row)} rows but rebalance {r} "
                    f"(row {row}) was asked for"
                )
            scores = np.asarray(self.scores_by_row[r], dtype=np.float64)
        if scores.shape != (n,):
            raise ValueError(f"scores at row {row} have shape {scores.shape}, expected ({n},)")
        return scores

    def history_at(self, row: int) -> np.ndarray:
        """Daily simple returns of the last ``history_days`` rows up to ``row``, (L, N).

        Reads ``close[row - history_days : row + 1]`` only; fewer rows near the start of
        the panel. NaN where either close is missing.
        """
        if self.history_days == 0:
            return np.empty((0, self.close.shape[1]))
        prices = self.close[max(0, row - self.history_days) : row + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return prices[1:] / prices[:-1] - 1.0

    def __call__(self, r: int, row: int, drifted: np.ndarray) -> np.ndarray:
        tradable = tradable_at(self.close, row)
        if self.eligible is not None:
            # Outside the universe of this rebalance: not bought, and sold if held.
            tradable &= self.eligible[r]
        return self.constructor.weights(
            self.scores_at(r, row), self.history_at(row), drifted, tradable
        )


def make_policy(
    constructor: PortfolioConstructor,
    close: np.ndarray,
    scores_by_row: np.ndarray | Mapping[int, np.ndarray],
    constraints: PortfolioConstraints | None = None,
    history_days: int | None = None,
    eligible: np.ndarray | None = None,
    estimates: RiskEstimates | None = None,
) -> ConstructorPolicy:
    """Wrap a constructor as a policy for :func:`alphaseq.backtest.backtest`.

    At rebalance ``r`` on panel row ``row`` the policy passes the constructor the
    forecasts of that rebalance, the daily returns of the last ``history_days`` rows up
    to ``row`` (never later rows), the drifted weights and the tradable mask
    (:func:`alphaseq.backtest.tradable`). Tickers without a full window of returns are
    left out of the risk models (weight 0).

    Parameters
    ----------
    constructor : PortfolioConstructor
        The constructor; its :attr:`~PortfolioConstructor.n_failures` counts failures.
    close : numpy.ndarray
        Close prices (T, N), NaN where missing; the same array given to the backtest.
    scores_by_row : numpy.ndarray or Mapping[int, numpy.ndarray]
        Forecasts: an (R, N) array aligned with the rebalances (row ``r`` for rebalance
        ``r``), or a mapping from panel row to (N,) scores (a missing row: no forecast).
    constraints : PortfolioConstraints or None, default=None
        When given, a copy of the constructor with these constraints is used (the
        original is left alone); the copy is :attr:`ConstructorPolicy.constructor`.
    history_days : int or None, default=None
        Rows of returns in ``history``; the constructor's
        :attr:`~PortfolioConstructor.history_days` when None.
    eligible : numpy.ndarray or None, default=None
        (R, N) booleans aligned with the rebalances: the universe at each one. Other
        tickers count as untradable there (never bought; a holding is sold).
    estimates : RiskEstimates or None, default=None
        When given, a copy of the constructor sharing these risk estimates (give every
        constructor of a run the same one; see :mod:`alphaseq.portfolio.estimates`)
        is used, as with ``constraints``.

    Returns
    -------
    ConstructorPolicy
        Callable ``policy(r, row, drifted) -> weights``.
    """
    if not isinstance(constructor, PortfolioConstructor):
        raise ConfigError(
            f"constructor must be a PortfolioConstructor, got {type(constructor).__name__}"
        )
    if constraints is not None:
        constructor = dataclasses.replace(constructor, constraints=constraints)
    if estimates is not None:
        if not isinstance(estimates, RiskEstimates):
            raise ConfigError(
                f"estimates must be a RiskEstimates or None, got {type(estimates).__name__}"
            )
        constructor = dataclasses.replace(constructor, estimates=estimates)
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 2:
        raise ValueError(f"close must be a (T, N) array, got shape {close.shape}")
    if history_days is None:
        history_days = constructor.history_days
    if isinstance(history_days, bool) or not isinstance(history_days, int | np.integer):
        raise ConfigError(f"history_days must be an integer >= 0, got {history_days!r}")
    if history_days < constructor.history_days:
        raise ConfigError(
            f"history_days={history_days} is shorter than the {constructor.history_days} "
            f"days {constructor.name} reads"
        )
    if not isinstance(scores_by_row, Mapping):
        scores_by_row = np.asarray(scores_by_row, dtype=np.float64)
        if scores_by_row.ndim != 2 or scores_by_row.shape[1] != close.shape[1]:
            raise ValueError(
                f"scores_by_row has shape {scores_by_row.shape}, expected (R, {close.shape[1]})"
            )
    if eligible is not None:
        eligible = np.asarray(eligible, dtype=bool)
        if eligible.ndim != 2 or eligible.shape[1] != close.shape[1]:
            raise ValueError(f"eligible has shape {eligible.shape}, expected (R, {close.shape[1]})")
    return ConstructorPolicy(constructor, close, scores_by_row, int(history_days), eligible)
