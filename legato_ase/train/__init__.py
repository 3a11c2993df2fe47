"""Training Allegro(-Legato) potentials: SAM, losses, the training loop, evaluation."""

from .config import (
    DataConfig,
    LossConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    load_train_config,
)
from .frames import load_frames
from .loss import evaluate_errors
from .sam import SAM
from .sharpness import SharpnessResult, expected_sharpness
from .trainer import TrainResult, train

__all__ = [
    "DataConfig",
    "LossConfig",
    "OptimizerConfig",
    "SAM",
    "ScheduleConfig",
    "SharpnessResult",
    "TrainConfig",
    "TrainResult",
    "evaluate_errors",
    "expected_sharpness",
    "load_frames",
    "load_train_config",
    "train",
]
