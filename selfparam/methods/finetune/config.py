"""Settings of the fine-tuning baselines: the same adapter and budget as SELF-PARAM by default."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...targets.config import TargetConfig
from ...training.adapters import AdapterConfig
from ...training.trainer import TrainConfig


@dataclass
class FineTuneContextConfig:
    """FT(C): next-token training on the context text, cut into chunks."""

    chunk_tokens: int = field(default=128, metadata={"help": "tokens per training chunk of the context"})
    match_selfparam_steps: bool = field(default=True, metadata={
        "help": "repeat the chunks (in order) until each context gives as many training sequences as "
                "SELF-PARAM's target set would (TargetConfig.sentences_per_context): with the same epochs and "
                "batch size, the same number of optimiser steps. False: each chunk once per epoch"})
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 2:
            raise ValueError(f"chunk_tokens: must be >= 2, got {self.chunk_tokens}")


@dataclass
class FineTuneTargetsConfig:
    """FT(S): next-token training on the target set (answers after their questions)."""

    targets: TargetConfig = field(default_factory=TargetConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
