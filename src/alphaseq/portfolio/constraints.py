"""Portfolio constraints shared by every constructor: one projection, one checker.

A constructor proposes *target* weights; :meth:`PortfolioConstraints.apply` projects
them onto the constraint set given the weights the portfolio drifted to since the last
rebalance, and :meth:`PortfolioConstraints.check` lists every violation of the same,
documented definitions, so that a backtest can assert the constraints after each trade.

Definitions
-----------
All weights are fractions of NAV; ``1 - sum(w)`` is cash. With ``d`` the drifted weights
and ``tradable`` the tickers with a price on the rebalance row:

* ``d'`` = ``d`` on tradable tickers, 0 elsewhere. A ticker that cannot trade any more is
  sold at its last price by the backtest (a *forced sale*): it is never part of a target
  and its sale never counts as turnover.
* ``h`` = ``clip(d', 0, max_weight)``, the *hold point*: the drifted tradable holdings
  with positions that drifted above ``max_weight`` trimmed to it (and, defensively, any
  short position closed). The trims ``E = sum |d' - h|`` are *mandatory* turnover.
* the amount traded ``T(w) = sum over tradable i of |w_i - d_i|`` (forced sales
  excluded); the (one-way) turnover is ``T(w) / 2``, as everywhere in alphaseq.

Precedence, strongest first, when constraints cannot all hold at once:

1. tradability, long-only and ``sum(w) <= 1`` always hold (the backtest requires them);
2. ``max_weight`` always holds: a position that drifted above the cap is trimmed even
   when the trim takes more than ``max_turnover`` (the trim ``E`` is exempt from the cap);
3. ``max_turnover`` caps the discretionary one-way turnover: ``T(w) / 2 <=
   max_turnover + E / 2``. The
   cap does not apply to a build from cash (no tradable holding, e.g. the first
   rebalance), nor to forced sales;
4. ``top_k`` and ``fully_invested`` give way to the turnover cap. While the cap binds the
   portfolio moves only part of the way to its target, so it may still hold names it is
   selling (more than k positions) and cash it is investing. Both are then required to
   move the right way: see :meth:`PortfolioConstraints.check`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from alphaseq.errors import ConfigError

#: Absolute slack used by :meth:`PortfolioConstraints.check` for rounding (the same as
#: the backtest's slack on ``sum(w) <= 1``).
CHECK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PortfolioConstraints:
    """Limits every constructor's weights must satisfy after each rebalance.

    Parameters
    ----------
    long_only : bool, default=True
        No short positions. Only ``True`` is supported: every constructor builds
        long-only portfolios.
    top_k : int or None, default=None
        Most positions held (non-zero weights); no limit when None. While the turnover
        cap binds, names being sold down may exceed it (see :meth:`check`).
    max_weight : float or None, default=None
        Largest weight of one position, in (0, 1]; no limit when None.
    max_turnover : float or None, default=0.1
        Cap on the one-way turnover ``1/2 sum_i |w_new_i - w_drifted_i|`` per rebalance,
        over tradable tickers (1 = the whole of a fully invested book replaced).
        Exempt: the build from cash (no tradable holding, e.g. the first rebalance),
        forced sales of tickers that cannot trade any more, and trims of positions that
        drifted above ``max_weight``. No cap when None.
    fully_invested : bool, default=True
        Weights sum to 1 (no cash). When False, cash is allowed (``sum(w) <= 1``).

    Raises
    ------
    ConfigError
        On out-of-range values, or when ``top_k * max_weight < 1`` makes a fully
        invested portfolio impossible.

    Notes
    -----
    :meth:`apply` projects target weights in this order:

    1. **tradable** - weights of tickers without a price (and NaN weights) become 0;
    2. **long-only** - negative weights become 0;
    3. **top-k** - only the ``top_k`` largest weights are kept (ties: higher
       ``preference``, then lower column);
    4. **budget and max weight** - fully invested: weights are scaled to sum to 1 and
       capped at ``max_weight``, the excess going to the uncapped positions in
       proportion to their weights (repeated until none exceeds the cap); if the
       positions cannot absorb the budget (fewer than ``1 / max_weight`` of them) all
       sit at the cap and the rest stays in cash. An empty target means *no view*: the
       hold point ``h`` (scaled to sum 1, steps 3-4 applied) is the target, and the
       portfolio stays in cash only when nothing tradable is held. Not fully invested:
       weights are clipped at ``max_weight`` and scaled down if they sum above 1;
    5. **turnover** - with ``t`` the result of 1-4 and ``D = sum |t - h|``: the weights
       are ``t`` when the cap is exempt or ``D <= 2 * max_turnover``; otherwise they
       are ``h + lam * (t - h)`` with ``lam = 2 * max_turnover / D``, the largest move
       towards ``t`` the cap allows. Then ``T(w) = E + lam * D``: a one-way turnover of
       exactly the cap plus half the trims.

    Steps 1-4 give weights satisfying every constraint but turnover. In step 5 both
    ``h`` and ``t`` are tradable, long-only, within ``max_weight`` and sum to at most 1,
    and so is every point between them; only the support (up to the names of ``h`` and
    ``t`` together) and the invested fraction (between ``sum(h)`` and ``sum(t)``) are in
    between, which is what :meth:`check` allows while the cap binds.
    """

    long_only: bool = True
    top_k: int | None = None
    max_weight: float | None = None
    max_turnover: float | None = 0.1
    fully_invested: bool = True

    def __post_init__(self) -> None:
        if self.long_only is not True:
            raise ConfigError(
                f"long_only={self.long_only!r} is not supported: every portfolio "
                "constructor builds long-only portfolios (use long_only=True)"
            )
        if self.top_k is not None and (
            isinstance(self.top_k, bool)
            or not isinstance(self.top_k, numbers.Integral)
            or self.top_k < 1
        ):
            raise ConfigError(f"top_k must be an integer >= 1 or None, got {self.top_k!r}")
        if self.max_weight is not None and not (
            _is_real(self.max_weight) and 0.0 < self.max_weight <= 1.0
        ):
            raise ConfigError(
                f"max_weight must be a number in (0, 1] or None, got {self.max_weight!r}"
            )
        if self.max_turnover is not None and not (
            _is_real(self.max_turnover) and 0.0 < self.max_turnover < np.inf
        ):
            raise ConfigError(
                "max_turnover must be a finite number > 0 or None (no cap), got "
                f"{self.max_turnover!r}; the one-way turnover 1/2 sum |w_new - w_drifted| ranges "
                "over [0, 1]"
            )
        if not isinstance(self.fully_invested, bool | np.bool_):
            raise ConfigError(f"fully_invested must be true or false, got {self.fully_invested!r}")
        if (
            self.fully_invested
            and self.top_k is not None
            and self.max_weight is not None
            and self.top_k * self.max_weight < 1.0 - CHECK_TOLERANCE
        ):
            raise ConfigError(
                f"top_k={self.top_k} positions of at most max_weight={self.max_weight} "
                "cannot be fully invested (top_k * max_weight < 1); raise one of them or "
                "set fully_invested=false"
            )

    # ----------------------------------------------------------------- projection
    def apply(
        self,
        target: np.ndarray,
        drifted: np.ndarray,
        tradable: np.ndarray,
        *,
        preference: np.ndarray | None = None,
    ) -> np.ndarray:
        """Project target weights onto the constraint set (see the class notes).

        Parameters
        ----------
        target : numpy.ndarray
            Desired weights, (N,); NaN and negative values are allowed (they become 0).
        drifted : numpy.ndarray
            Weights the portfolio drifted to since the last rebalance, (N,); zeros
            before the first trade.
        tradable : numpy.ndarray
            Boolean mask of tickers with a price on the rebalance row, (N,).
        preference : numpy.ndarray or None, default=None
            Tie-break for the top-k cut, (N,): among equal weights, higher preference
            (e.g. the forecast) wins, then the lower column. NaN ranks last.

        Returns
        -------
        numpy.ndarray
            Weights, (N,), for which :meth:`check` reports no violation.
        """
        target, drifted, tradable = _validated(target, drifted, tradable)
        n = len(target)
        preference = np.zeros(n) if preference is None else np.asarray(preference, dtype=np.float64)
        if preference.shape != (n,):
            raise ValueError(f"preference has shape {preference.shape}, expected ({n},)")
        held, _ = self._hold_point(drifted, tradable)

        # Steps 1-2: tradable, long-only.
        t = np.where(tradable & np.isfinite(target), np.maximum(target, 0.0), 0.0)
        if self.fully_invested and not t.any():
            # No view: keep what is held (a build from cash stays in cash).
            t = held.copy()
        # Steps 3-4: top-k support, then budget and max weight.
        t = self._budget(self._top_k(t, preference))

        # Step 5: turnover, measured from the hold point (trims are mandatory).
        if self.max_turnover is None or not held.any():
            return t
        distance = float(np.abs(t - held).sum())
        if distance <= 2.0 * self.max_turnover:  # the cap is one-way, T / 2
            return t
        lam = 2.0 * self.max_turnover / distance
        return held + lam * (t - held)

    def _hold_point(self, drifted: np.ndarray, tradable: np.ndarray) -> tuple[np.ndarray, float]:
        """``h = clip(d', 0, max_weight)`` and the mandatory trims ``E = sum |d' - h|``."""
        on_tradable = np.where(tradable, drifted, 0.0)
        cap = np.inf if self.max_weight is None else self.max_weight
        held = np.clip(on_tradable, 0.0, cap)
        return held, float(np.abs(on_tradable - held).sum())

    def _top_k(self, weights: np.ndarray, preference: np.ndarray) -> np.ndarray:
        positions = np.flatnonzero(weights)
        if self.top_k is None or len(positions) <= self.top_k:
            return weights
        # lexsort sorts by the last key first: weight desc, preference desc (NaN last),
        # column asc.
        pref = np.where(np.isfinite(preference), -preference, np.inf)
        order = np.lexsort((positions, pref[positions], -weights[positions]))
        out = np.zeros_like(weights)
        keep = positions[order[: self.top_k]]
        out[keep] = weights[keep]
        return out

    def _budget(self, weights: np.ndarray) -> np.ndarray:
        cap = np.inf if self.max_weight is None else self.max_weight
        total = weights.sum()
        if not self.fully_invested:
            weights = np.minimum(weights, cap)
            total = weights.sum()
            return weights / total if total > 1.0 else weights
        if total <= 0.0:
            return weights
        weights = weights / total
        # Water-filling: cap the largest, spread their excess over the others in
        # proportion; each pass caps at least one more name, so it ends within N passes.
        capped = np.zeros(len(weights), dtype=bool)
        while True:
            over = (weights > cap) & ~capped
            if not over.any():
                return weights
            capped |= over
            free = ~capped & (weights > 0)
            room = 1.0 - cap * capped.sum()
            weights = np.where(capped, cap, weights)
            if not free.any() or room <= 0.0:
                return weights  # too few positions to be fully invested: rest in cash
            # Shares first, then the room: room / sum overflows for subnormal weights.
            weights[free] = room * (weights[free] / weights[free].sum())

    # ----------------------------------------------------------------- checking
    def check(self, weights: np.ndarray, drifted: np.ndarray, tradable: np.ndarray) -> list[str]:
        """Every violation of the constraints by weights held after a rebalance.

        Parameters
        ----------
        weights : numpy.ndarray
            Weights right after the trade, (N,).
        drifted : numpy.ndarray
            Weights just before it, (N,).
        tradable : numpy.ndarray
            Boolean mask of tickers with a price on the rebalance row, (N,).

        Returns
        -------
        list of str
            One message per violated constraint; empty when all hold.

        Notes
        -----
        With ``h``, ``E`` and ``T`` as in the module notes, ``tol`` =
        :data:`CHECK_TOLERANCE`, *positions* the non-zero weights, and the cap *binding*
        when ``T(w) >= 2 * max_turnover + E - tol``:

        * **finite**, **tradable** (0 where not tradable), **long-only** (``w >= 0``)
          and **budget** (``sum(w) <= 1 + tol``): always;
        * **max_weight**: ``w_i <= max_weight + tol``, always;
        * **max_turnover**: ``T(w) <= 2 * max_turnover + E + tol`` unless nothing tradable
          was held (a build from cash);
        * **top_k**: at most ``top_k`` positions; or, while the cap binds, at most
          ``top_k`` positions that are not being sold down (``w_i >= h_i``): the others
          are names the portfolio is leaving;
        * **fully_invested**: ``sum(w) >= 1 - tol``; or all cash with nothing tradable
          held (no eligible ticker and nothing to keep); or ``sum(w) >= max_weight * n``
          with ``n`` the positions not being sold down (max weight leaves the rest in
          cash); or, while the cap binds, ``sum(w) >= sum(h) - tol`` (investment only
          rises towards the target).
        """
        weights, drifted, tradable = _validated(weights, drifted, tradable, name="weights")
        tol = CHECK_TOLERANCE
        problems: list[str] = []
        if not np.isfinite(weights).all():
            return [f"finite: weights at columns {_cols(~np.isfinite(weights))} are not finite"]

        if (weights[~tradable] != 0).any():
            problems.append(
                f"tradable: non-zero weight on columns {_cols((weights != 0) & ~tradable)} "
                "without a price"
            )
        if (weights < 0).any():
            problems.append(f"long_only: negative weight on columns {_cols(weights < 0)}")
        total = float(weights.sum())
        if total > 1.0 + tol:
            problems.append(f"budget: weights sum to {total:.12g} > 1")
        if self.max_weight is not None and (weights > self.max_weight + tol).any():
            worst = int(np.argmax(weights))
            problems.append(
                f"max_weight: columns {_cols(weights > self.max_weight + tol)} exceed "
                f"{self.max_weight:g} (largest {weights[worst]:.6g} at column {worst})"
            )

        held, trims = self._hold_point(drifted, tradable)
        turnover = float(np.abs(np.where(tradable, weights - drifted, 0.0)).sum())
        capped = self.max_turnover is not None and held.any()
        binding = capped and turnover >= 2.0 * self.max_turnover + trims - tol
        if capped and turnover > 2.0 * self.max_turnover + trims + tol:
            problems.append(
                f"max_turnover: one-way turnover {turnover / 2:.9g} > cap "
                f"{self.max_turnover:g}"
                + (f" + half the mandatory trims {trims / 2:.9g}" if trims else "")
            )

        positions = weights != 0
        staying = positions & (weights >= held)  # positions not being sold down
        if self.top_k is not None and positions.sum() > self.top_k:
            if not binding:
                problems.append(f"top_k: {positions.sum()} positions > top_k={self.top_k}")
            elif staying.sum() > self.top_k:
                problems.append(
                    f"top_k: {staying.sum()} positions not being sold down > "
                    f"top_k={self.top_k} while the turnover cap binds"
                )

        if self.fully_invested and total < 1.0 - tol:
            allowed = (
                (not positions.any() and not held.any())
                or (
                    self.max_weight is not None
                    and total >= self.max_weight * staying.sum() - tol
                    and staying.any()
                )
                or (binding and total >= held.sum() - tol)
            )
            if not allowed:
                problems.append(
                    f"fully_invested: weights sum to {total:.12g} < 1"
                    + (f" (hold point sums to {held.sum():.12g})" if binding else "")
                )
        return problems


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _cols(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")


def _validated(
    weights: np.ndarray, drifted: np.ndarray, tradable: np.ndarray, name: str = "target"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = np.asarray(weights, dtype=np.float64)
    drifted = np.asarray(drifted, dtype=np.float64)
    tradable = np.asarray(tradable)
    if weights.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of weights, got shape {weights.shape}")
    for label, array in (("drifted", drifted), ("tradable", tradable)):
        if array.shape != weights.shape:
            raise ValueError(f"{label} has shape {array.shape}, expected {weights.shape}")
    if tradable.dtype != bool:
        raise ValueError(f"tradable must be a boolean mask, got dtype {tradable.dtype}")
    if not np.isfinite(drifted).all():
        raise ValueError("drifted weights must be finite")
    return weights, drifted, tradable
