"""Training loop, checkpoints and validation figures."""

from alphaseq._lazy import lazy_exports

_LAZY = {
    "CheckpointError": "alphaseq.training.checkpoint",
    "load_checkpoint": "alphaseq.training.checkpoint",
    "save_checkpoint": "alphaseq.training.checkpoint",
    "Trainer": "alphaseq.training.trainer",
    "TrainingResult": "alphaseq.training.trainer",
    # The settings alone: reading a config must not import torch.
    "TrainerConfig": "alphaseq.training.config",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
