"""Training loop, checkpoints and validation figures."""

from alphaseq.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from alphaseq.training.trainer import Trainer, TrainerConfig, TrainingResult

__all__ = [
    "CheckpointError",
    "Trainer",
    "TrainerConfig",
    "TrainingResult",
    "load_checkpoint",
    "save_checkpoint",
]
