"""The honest baseline: a linear model on the last day's features."""

from __future__ import annotations

import torch

from alphaseq.models.base import ForecastModel, ModelOutput, check_int, register_model

__all__ = ["LinearBaseline"]


@register_model("linear")
class LinearBaseline(ForecastModel):
    """Linear regression / multinomial logistic regression on the last day of the window.

    The features already summarise the past (returns and volatilities over 1 to 252
    days), so this baseline is what a sequence model has to beat to show that the
    window's order carries information.

    Parameters
    ----------
    n_features : int
        Number of input features F.
    n_regression : int, default 1
        Regression outputs (one per regression horizon); 0 for none.
    n_classification : int, default 0
        Classification horizons; 0 for none.
    n_classes : int, default 3
        Classes per classification horizon.

    Attributes
    ----------
    config : dict
        The hyper-parameters above, JSON-ready.
    regression, classifier : torch.nn.Linear or None
        The output heads, reading the F features of the last day directly.

    Examples
    --------
    >>> import torch
    >>> from alphaseq.models import LinearBaseline
    >>> LinearBaseline(5)(torch.randn(8, 30, 5)).regression.shape
    torch.Size([8, 1])
    """

    def __init__(
        self,
        n_features: int,
        *,
        n_regression: int = 1,
        n_classification: int = 0,
        n_classes: int = 3,
    ) -> None:
        super().__init__()
        self.config = {
            "n_features": check_int("n_features", n_features, 1),
            "n_regression": check_int("n_regression", n_regression, 0),
            "n_classification": check_int("n_classification", n_classification, 0),
            "n_classes": check_int("n_classes", n_classes, 2),
        }
        self.n_features = int(n_features)
        self._init_heads(self.n_features, int(n_regression), int(n_classification), int(n_classes))

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> ModelOutput:
        """Forecast from a batch of (B, L, F) windows; ``attention`` is always None."""
        regression, logits = self._apply_heads(self._check_input(x)[:, -1])
        return ModelOutput(regression=regression, logits=logits)

    def estimate_training_memory(
        self,
        batch_size: int,
        lookback: int,
        dtype_bytes: int = 4,
        *,
        param_bytes: int | None = None,
    ) -> int:
        """Estimate the peak memory of one Adam training step, in bytes (linear in B).

        Parameters, gradients and Adam's moments, plus the (B, L, F) input windows and
        the (B, outputs) head activations. Same signature as
        :meth:`AttentionLSTM.estimate_training_memory`.
        """
        batch_size = check_int("batch_size", batch_size, 1)
        lookback = check_int("lookback", lookback, 1)
        _, fixed = self._parameter_state_bytes(param_bytes)
        outputs = self.n_regression + self.n_classification * self.n_classes
        per_window = lookback * self.n_features + 2 * outputs
        return fixed + batch_size * per_window * dtype_bytes
