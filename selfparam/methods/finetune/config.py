"""Settings of the fine-tuning baselines: the same adapter and budget as SELF-PARAM by default."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field

from ...settings import ABSENT
from ...targets.config import TargetConfig
from ...training.adapters import AdapterConfig
from ...training.trainer import TrainConfig
from ..selfparam.config import SelfParamConfig

SELFPARAM_CONTEXT_COPIES = SelfParamConfig().context_copies


def follow_budget(config, selfparam: SelfParamConfig, explicit: Collection[str] = ()):
    """`config` with the settings that fix its optimiser steps under `match_selfparam_steps` taken from
    `selfparam`'s (`budget_context_copies` from its `context_copies`, `train.epochs`, `train.batch_size`), so
    that a run which changes SELF-PARAM's epochs, batch size or context read gives its baselines the same
    optimiser steps; a path in `explicit` (set for this baseline on purpose, e.g. in a `--method-config`
    file) is kept. Unchanged when the baseline does not match SELF-PARAM's steps."""
    if not config.match_selfparam_steps:
        return config
    train = {k: getattr(selfparam.train, k) for k in ("epochs", "batch_size") if f"train.{k}" not in explicit}
    changes: dict = {"train": dataclasses.replace(config.train, **train)}
    if "budget_context_copies" not in explicit:
        changes["budget_context_copies"] = selfparam.context_copies
    return dataclasses.replace(config, **changes)


@dataclass
class FineTuneContextConfig:
    """FT(C): next-token training on the context text, cut into chunks."""

    chunk_tokens: int = field(default=128, metadata={"help": "tokens per training chunk of the context"})
    match_selfparam_steps: bool = field(default=True, metadata={
        "help": "repeat the chunks (in order) until each context gives as many training sequences as "
                "SELF-PARAM trains on (its target set, TargetConfig.sentences_per_context, plus its context read, "
                "budget_context_copies): with the same epochs and batch size, the same number of optimiser steps. "
                "False: each chunk once per epoch"})
    budget_context_copies: int = field(default=SELFPARAM_CONTEXT_COPIES, metadata={ABSENT: 0,
        "help": "with match_selfparam_steps, the copies of the context read SELF-PARAM's budget counts (its "
                "context_copies: each context adds that many times its chunks to SELF-PARAM's sequences). The "
                "default is SELF-PARAM's, and a run that configures SELF-PARAM sets it to SELF-PARAM's context_copies "
                "(`follow_budget`) unless its method config sets it"})
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 2:
            raise ValueError(f"chunk_tokens: must be >= 2, got {self.chunk_tokens}")
        if self.budget_context_copies < 0:
            raise ValueError(f"budget_context_copies: must be >= 0, got {self.budget_context_copies}")

    follow_budget = follow_budget


@dataclass
class FineTuneTargetsConfig:
    """FT(S): next-token training on the target set (answers after their questions)."""

    match_selfparam_steps: bool = field(default=True, metadata={
        "help": "repeat each context's target set (in order) until it gives as many training sequences as "
                "SELF-PARAM trains on (the same target set plus its context read, budget_context_copies): with "
                "the same epochs and batch size, the same number of optimiser steps. False: the target set once "
                "per epoch (fewer steps than SELF-PARAM whenever it reads the context)"})
    budget_context_copies: int = field(default=SELFPARAM_CONTEXT_COPIES, metadata={ABSENT: 0,
        "help": "with match_selfparam_steps, the copies of the context read SELF-PARAM's budget counts (its "
                "context_copies, in chunks of its CONTEXT_CHUNK_TOKENS). The default is SELF-PARAM's, and a "
                "run that configures SELF-PARAM sets it to SELF-PARAM's context_copies (`follow_budget`) unless "
                "its method config sets it (0 behaves as FT(S) did before it)"})
    targets: TargetConfig = field(default_factory=TargetConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.budget_context_copies < 0:
            raise ValueError(f"budget_context_copies: must be >= 0, got {self.budget_context_copies}")

    follow_budget = follow_budget
