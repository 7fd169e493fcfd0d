"""The typed configuration of portfolio constructors (``portfolio.constructors`` entries).

Kept apart from the constructors themselves so that reading and checking a config needs
neither skfolio nor cvxpy: each spec imports its constructor only when it builds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from alphaseq._config_base import SettingsSection

if TYPE_CHECKING:
    from alphaseq.portfolio.constraints import PortfolioConstraints
    from alphaseq.portfolio.constructors import (
        HRP,
        EqualWeight,
        MeanVariance,
        PortfolioConstructor,
        Tilt,
        TopK,
    )


class ConstructorSpec(SettingsSection):
    """Base of the typed config of one constructor (an entry of ``portfolio.constructors``).

    Each subclass names its ``type``, holds only the keys that constructor reads, and
    builds it: adding a constructor means adding its class to ``constructors`` and its
    spec here.
    """

    name: str = Field(min_length=1, description="Strategy name in the outputs, e.g. 'tilt_hrp'.")

    #: Whether the run's top-k applies to this constructor's positions.
    limits_positions: ClassVar[bool] = False
    #: Whether the constructor reads forecasts as expected returns (their size, not only
    #: their order): scores of a model trained on normalised targets are converted first.
    reads_returns: ClassVar[bool] = False

    def build(
        self, constraints: PortfolioConstraints, *, top_k: int, cost_bps: float, horizon: int
    ) -> PortfolioConstructor:
        """The constructor, under ``constraints``, for a run with these settings."""
        raise NotImplementedError


class TopKSpec(ConstructorSpec):
    """``type: topk``: the ``top_k`` best forecasts, weighted equally or by forecast."""

    type: Literal["topk"]
    weighting: Literal["equal", "forecast"] = Field(
        "equal", description="equal weights, or weights proportional to the forecasts' ranks."
    )
    limits_positions: ClassVar[bool] = True

    def build(self, constraints, *, top_k, cost_bps, horizon) -> TopK:
        from alphaseq.portfolio.constructors import TopK

        return TopK(top_k, weighting=self.weighting, constraints=constraints, name=self.name)


class TiltSpec(ConstructorSpec):
    """``type: tilt``: equal weight or HRP tilted toward the forecasts."""

    type: Literal["tilt"]
    base: Literal["equal", "hrp"] = Field(
        "equal", description="Weights tilted toward the forecasts: equal or HRP."
    )
    strength: float = Field(1.0, ge=0, description="Size of the tilt (0: the base itself).")
    lookback: int = Field(252, ge=20, description="Days of returns for the HRP base.")

    def build(self, constraints, *, top_k, cost_bps, horizon) -> Tilt:
        from alphaseq.portfolio.constructors import Tilt

        return Tilt(
            base=self.base,
            strength=self.strength,
            lookback=self.lookback,
            constraints=constraints,
            name=self.name,
        )


class MeanVarianceSpec(ConstructorSpec):
    """``type: mean_variance``: Markowitz on the forecasts with a shrunk covariance."""

    type: Literal["mean_variance"]
    reads_returns: ClassVar[bool] = True
    risk_aversion: float = Field(
        1.0, gt=0, description="Penalty on variance against the forecast return."
    )
    covariance: Literal["ledoit_wolf", "oas", "empirical"] = Field(
        "ledoit_wolf",
        description="Covariance estimator: Ledoit-Wolf, OAS or the sample covariance.",
    )
    lookback: int = Field(252, ge=20, description="Days of returns for the covariance.")

    def build(self, constraints, *, top_k, cost_bps, horizon) -> MeanVariance:
        from alphaseq.portfolio.constructors import MeanVariance

        return MeanVariance(
            risk_aversion=self.risk_aversion,
            covariance=self.covariance,
            lookback=self.lookback,
            cost_bps=cost_bps,
            horizon=horizon,
            constraints=constraints,
            name=self.name,
        )


class HRPSpec(ConstructorSpec):
    """``type: hrp``: hierarchical risk parity (ignores the forecasts)."""

    type: Literal["hrp"]
    lookback: int = Field(252, ge=20, description="Days of returns for the risk model.")

    def build(self, constraints, *, top_k, cost_bps, horizon) -> HRP:
        from alphaseq.portfolio.constructors import HRP

        return HRP(lookback=self.lookback, constraints=constraints, name=self.name)


class EqualWeightSpec(ConstructorSpec):
    """``type: equal_weight``: every tradable ticker alike (ignores the forecasts)."""

    type: Literal["equal_weight"]

    def build(self, constraints, *, top_k, cost_bps, horizon) -> EqualWeight:
        from alphaseq.portfolio.constructors import EqualWeight

        return EqualWeight(constraints=constraints, name=self.name)


#: Constructor specs by their ``type``.
CONSTRUCTOR_SPECS: dict[str, type[ConstructorSpec]] = {
    "topk": TopKSpec,
    "tilt": TiltSpec,
    "mean_variance": MeanVarianceSpec,
    "hrp": HRPSpec,
    "equal_weight": EqualWeightSpec,
}

#: One entry of ``portfolio.constructors``: the spec is chosen by its ``type``.
ConstructorConfig = Annotated[
    TopKSpec | TiltSpec | MeanVarianceSpec | HRPSpec | EqualWeightSpec,
    Field(discriminator="type"),
]
