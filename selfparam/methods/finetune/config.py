"""Settings of the fine-tuning baselines: the same adapter and budget as SELF-PARAM by default."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...training.adapters import AdapterConfig
from ...training.trainer import TrainConfig
from ..selfparam.config import TargetConfig


@dataclass
class FineTuneContextConfig:
    """FT(C): next-token training on the context text, cut into chunks."""

    chunk_tokens: int = field(default=128, metadata={"help": "tokens per training chunk of the context"})
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 2:
            raise ValueError(f"chunk_tokens: must be >= 2, got {self.chunk_tokens}")


@dataclass
class FineTuneTargetsConfig:
    """FT(S): next-token training on SELF-PARAM's target set (answers after their questions)."""

    targets: TargetConfig = field(default_factory=TargetConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
