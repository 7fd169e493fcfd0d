"""Risk estimates of a rebalance, computed once and shared by every constructor of a run.

A run trades several risk-based constructors on the same month ends: mean-variance, the
HRP baseline, an HRP-based tilt. Each reads the same window of returns; on its own each
would estimate its covariance, and fit its hierarchy, again. A :class:`RiskEstimates`
given to them all (``make_policy(..., estimates=...)``) computes each estimate once and
hands every constructor the same result.

Estimates are keyed by their inputs' content (a digest of the returns window of the
universe, its shape and the estimator), never by a date or a row: an estimate can only
be served for the very data it was computed from, so a cache hit can neither leak a
later window into an earlier rebalance nor survive a change of the prices. Cached
arrays are read-only.

Linear algebra on a few hundred assets runs on one thread (``threads``: BLAS, and the
factorisations of the Clarabel solver): the eigen-decompositions behind skfolio's
nearest-covariance check took ~40 times longer on two OpenBLAS threads of a loaded
two-core machine than on one, and matrices this size gain little from more threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import sklearn.utils.validation as skv
from skfolio.moments import OAS, BaseCovariance, EmpiricalCovariance, LedoitWolf
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from alphaseq._logging import logger
from alphaseq.errors import ConfigError
from alphaseq.portfolio.hrp import hrp_bisection, hrp_ordering

__all__ = ["PrecomputedCovariance", "RiskEstimates"]


class PrecomputedCovariance(BaseCovariance):
    """skfolio covariance estimator that returns a given matrix.

    Lets an optimiser (e.g. :class:`skfolio.optimization.MeanRisk` through an
    :class:`skfolio.prior.EmpiricalPrior`) use a covariance estimated beforehand, and
    shared, instead of estimating its own from the returns.

    Parameters
    ----------
    covariance : array-like of shape (n_assets, n_assets)
        The covariance, in the periodicity of the returns ``X`` passed to ``fit``. It
        is used as given: no nearest-positive-definite projection (the estimator that
        made it already applied skfolio's).
    """

    def __init__(self, covariance: np.ndarray) -> None:
        super().__init__(nearest=False)
        self.covariance = covariance

    def fit(self, X: np.ndarray, y: None = None) -> PrecomputedCovariance:
        """Check ``X`` against the covariance and set ``covariance_``."""
        X = skv.validate_data(self, X)
        covariance = np.asarray(self.covariance, dtype=np.float64)
        n = X.shape[1]
        if covariance.shape != (n, n):
            raise ValueError(f"covariance has shape {covariance.shape}, expected ({n}, {n})")
        self._set_covariance(covariance)
        return self


@dataclass(eq=False)
class RiskEstimates:
    """Per-rebalance risk estimates shared by the constructors of a run.

    Parameters
    ----------
    max_covariances : int, default=16
        Covariance matrices kept (the most recently used); each is ``n x n``.
    max_allocations : int, default=4096
        HRP allocations kept (``n`` floats each): enough for every rebalance of a run,
        so that the HRP baseline and an HRP tilt fit each hierarchy once.
    threads : int or None, default=1
        Threads of BLAS while estimating and optimising, and of the Clarabel solver
        (None: leave both alone).

    Attributes
    ----------
    hits, misses : int
        Estimates served from the cache, and computed.

    Notes
    -----
    Not thread-safe: give each thread (each run) its own. The BLAS limit is
    process-wide while it holds (threadpoolctl).
    """

    max_covariances: int = 16
    max_allocations: int = 4096
    threads: int | None = 1
    hits: int = field(default=0, init=False)
    misses: int = field(default=0, init=False)
    _covariances: OrderedDict[bytes, np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _allocations: OrderedDict[bytes, np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        for name in ("max_covariances", "max_allocations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ConfigError(f"RiskEstimates {name} must be an integer >= 0, got {value!r}")
        threads = self.threads
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1
        ):
            raise ConfigError(
                f"RiskEstimates threads must be an integer >= 1 or None, got {threads!r}"
            )

    @contextlib.contextmanager
    def limits(self) -> Iterator[None]:
        """Context of estimates and optimisations: the BLAS thread limit, and skfolio's
        warnings (e.g. a covariance made positive definite) sent to the log."""
        with contextlib.ExitStack() as stack:
            if self.threads is not None:
                stack.enter_context(threadpool_limits(limits=int(self.threads), user_api="blas"))
            caught = stack.enter_context(warnings.catch_warnings(record=True))
            warnings.simplefilter("always")
            yield
        for warning in caught:
            # Once per window and estimator, not hundreds of times on the terminal.
            logger.info("risk estimates: %s", warning.message)

    def solver_params(self) -> dict[str, float | int]:
        """Clarabel settings for skfolio's ``MeanRisk``: skfolio's own tolerances (a
        duality gap of 1e-9), and the thread limit."""
        params: dict[str, float | int] = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9}
        if self.threads is not None:
            params["max_threads"] = int(self.threads)
        return params

    def covariance(
        self, returns: np.ndarray, estimator: Callable[[], BaseCovariance], name: str
    ) -> np.ndarray:
        """The covariance of ``returns`` by a skfolio estimator, estimated once.

        Parameters
        ----------
        returns : numpy.ndarray
            Daily returns of the universe, (L, n), finite.
        estimator : callable
            Makes the (unfitted) skfolio covariance estimator.
        name : str
            What the estimator computes (e.g. ``"ledoit_wolf"``): part of the key.

        Returns
        -------
        numpy.ndarray
            ``estimator().fit(returns).covariance_``, (n, n), read-only.
        """
        made = estimator()
        # The estimator's class is part of the key: another implementation under the
        # same name (a subclass, a test double) is another estimate.
        kind = f"{name}|{type(made).__module__}.{type(made).__qualname__}"
        key = _digest(returns, "covariance", kind)
        found = self._covariances.get(key)
        if found is not None:
            self.hits += 1
            # Constructors may trade in threads at once (experiment.strategies): another
            # may have just evicted it; the value found is still the one.
            with contextlib.suppress(KeyError):
                self._covariances.move_to_end(key)
            return found
        self.misses += 1
        with self.limits():
            covariance = np.array(_fit_covariance(made, returns), dtype=np.float64)
        covariance.setflags(write=False)
        _remember(self._covariances, key, covariance, self.max_covariances)
        return covariance

    def hrp_weights(self, returns: np.ndarray, max_weight: float = 1.0) -> np.ndarray:
        """skfolio's default hierarchical risk parity of ``returns``, computed once.

        The empirical covariance (skfolio's, nearest positive definite), the Pearson
        distance, the Ward tree with optimal leaf ordering and the recursive bisection
        of :mod:`alphaseq.portfolio.hrp`: the weights of
        ``HierarchicalRiskParity(max_weights=max_weight).fit(returns)`` to rounding.

        Parameters
        ----------
        returns : numpy.ndarray
            Daily returns of the universe, (L, n), finite, every column varying.
        max_weight : float, default=1.0
            Bound of every weight (``max_weight * n >= 1``).

        Returns
        -------
        numpy.ndarray
            Weights, (n,), summing to 1, read-only.
        """
        key = _digest(returns, "hrp", repr(float(max_weight)))
        found = self._allocations.get(key)
        if found is not None:
            self.hits += 1
            # Constructors may trade in threads at once (experiment.strategies): another
            # may have just evicted it; the value found is still the one.
            with contextlib.suppress(KeyError):
                self._allocations.move_to_end(key)
            return found
        covariance = self.covariance(returns, EmpiricalCovariance, "empirical")
        self.misses += 1
        with self.limits():
            weights = hrp_bisection(covariance, hrp_ordering(returns), float(max_weight))
        weights.setflags(write=False)
        _remember(self._allocations, key, weights, self.max_allocations)
        return weights

    def clear(self) -> None:
        """Forget every estimate (the counters are kept)."""
        self._covariances.clear()
        self._allocations.clear()


def _fit_covariance(estimator: BaseCovariance, returns: np.ndarray) -> np.ndarray:
    """``estimator.fit(returns).covariance_``, skipping skfolio's nearest-PD check where
    the answer is known.

    A shrunk covariance ``(1 - s) S + s mu I`` (Ledoit-Wolf, OAS; ``S`` the sample
    covariance, ``mu`` its mean variance, which is also the shrunk one's) has every
    eigenvalue at least ``s * mu``. When that bound is far above rounding, skfolio's
    check (a Cholesky factorisation and two eigenvalue decompositions, twice per fit)
    can only return the matrix unchanged: it is skipped, and the result is the same.
    """
    if not (isinstance(estimator, LedoitWolf | OAS) and estimator.nearest and not estimator.higham):
        return estimator.fit(returns).covariance_
    quick = clone(estimator).set_params(nearest=False).fit(returns)
    covariance = quick.covariance_
    variances = np.diag(covariance)
    # The check passes when the smallest eigenvalue of the correlation is > 5e-14: here
    # it is >= 1e-8, well clear of the eigen-solver's rounding on any n below ~1e5.
    if (
        np.isfinite(covariance).all()
        and quick.shrinkage_ * variances.mean() > 1e-8 * variances.max()
        and np.array_equal(covariance, covariance.T)
    ):
        return covariance
    return estimator.fit(returns).covariance_


def _digest(returns: np.ndarray, *parts: str) -> bytes:
    """Key of an estimate: the returns' bytes and shape, and what is estimated."""
    returns = np.ascontiguousarray(returns, dtype=np.float64)
    digest = hashlib.blake2b(returns.tobytes(), digest_size=20)
    digest.update(np.asarray(returns.shape, dtype=np.int64).tobytes())
    for part in parts:
        digest.update(b"\x00" + part.encode())
    return digest.digest()


def _remember(store: OrderedDict[bytes, np.ndarray], key: bytes, value, size: int) -> None:
    if size == 0:
        return
    store[key] = value
    while len(store) > size:
        store.popitem(last=False)
