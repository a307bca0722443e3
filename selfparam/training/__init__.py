"""Training one weight update: examples, the teacher pass, losses, adapters and the trainer."""

from .adapters import AdapterConfig, UpdateRecord
from .examples import Example
from .trainer import TrainConfig, UpdateStats, run_update

__all__ = ["AdapterConfig", "Example", "TrainConfig", "UpdateRecord", "UpdateStats", "run_update"]
