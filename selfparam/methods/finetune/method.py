"""The papers' fine-tuning baselines, trained and merged exactly like SELF-PARAM but with the
next-token loss: FT(C) on the context itself, FT(S) on the generated target set."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ...lm import LM
from ...targets import target_set_to_dict
from ...training.examples import Example, context_nwp_examples, target_nwp_examples
from ..base import Context, Resources
from ..selfparam.method import make_target_builder
from ..weight_update import WeightUpdateMethod
from .config import FineTuneContextConfig, FineTuneTargetsConfig


class FineTuneContext(WeightUpdateMethod):
    """FT(C): learn the context as text, then answer without it."""

    name = "ft-c"

    def __init__(self, lm: LM, config: FineTuneContextConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        self.config = config or FineTuneContextConfig()
        super().__init__(lm, self.config.adapter, self.config.train, resources, progress)

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def examples_for(self, contexts: Sequence[Context]) -> tuple[list[Example], dict[str, Any]]:
        examples = [e for c in contexts for e in context_nwp_examples(self.lm.tokenizer, c.text, self.config.chunk_tokens)]
        return examples, {}


class FineTuneTargets(WeightUpdateMethod):
    """FT(S): learn the generated answers by next-token prediction (no teacher)."""

    name = "ft-s"

    def __init__(self, lm: LM, config: FineTuneTargetsConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        self.config = config or FineTuneTargetsConfig()
        super().__init__(lm, self.config.adapter, self.config.train, resources, progress)

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def examples_for(self, contexts: Sequence[Context]) -> tuple[list[Example], dict[str, Any]]:
        build = self.resources.target_builder or make_target_builder(self.config.targets, lambda: self.lm)
        target_sets = [build(c.text) for c in contexts]
        examples = [e for ts in target_sets for e in target_nwp_examples(self.lm.tokenizer, ts)]
        return examples, {"targets": [target_set_to_dict(ts) for ts in target_sets]}
