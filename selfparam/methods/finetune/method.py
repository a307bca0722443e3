"""The papers' fine-tuning baselines, trained and merged like SELF-PARAM but with the next-token loss
(no teacher pass): FT(C) on the context itself, FT(S) on the generated target set.

Each reads as its recipe: examples -> encode -> train -> merge, on the same `WeightUpdates` state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from ...lm import LM
from ...targets import TargetConfig, reanswer, target_set_to_dict
from ...training.examples import context_nwp_examples, repeat_to, target_nwp_examples
from ...training.trainer import encode_share, train_and_merge
from ..base import Context, Resources
from ..selfparam.config import CONTEXT_CHUNK_TOKENS
from ..weight_update import WeightMethod, WeightUpdates, target_source, with_run_seed
from .config import FineTuneContextConfig, FineTuneTargetsConfig

BUDGET_RULE = ("the context's chunks, repeated in order, give as many training sequences per context as "
               "SELF-PARAM trains on (n_pairs + unrelated sentences + budget_context_copies x the "
               "context's chunks of CONTEXT_CHUNK_TOKENS): same epochs and batch size, same steps")
TARGETS_BUDGET_RULE = ("the target set, repeated in order, gives as many training sequences per context as SELF-PARAM "
                       "trains on (the same target set + budget_context_copies x the context's chunks of "
                       "CONTEXT_CHUNK_TOKENS): same epochs and batch size, same steps")


def context_read_sequences(tokenizer, context: str, copies: int) -> int:
    """How many sequences SELF-PARAM's context read adds for `context` at `copies` (its chunks of
    CONTEXT_CHUNK_TOKENS, each that many times): the part of its budget beside the target set."""
    return copies * len(context_nwp_examples(tokenizer, context, CONTEXT_CHUNK_TOKENS)) if copies else 0


class FineTuneContext(WeightMethod):
    """FT(C): learn the context as text (next-token prediction on its chunks), then answer without it."""

    name = "ft-c"

    def __init__(self, lm: LM, config: FineTuneContextConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        resources = resources or Resources()
        self.config = with_run_seed(config or FineTuneContextConfig(), resources)
        self.targets = resources.targets or TargetConfig()  # the budget SELF-PARAM gets
        self.weights = WeightUpdates(lm, self.config.adapter)
        self.progress = progress

    def inject(self, contexts: Sequence[Context]) -> None:
        model = self.weights.begin(contexts)
        per_context = [context_nwp_examples(model.tokenizer, c.text, self.config.chunk_tokens) for c in contexts]
        chunks = sum(len(x) for x in per_context)
        if self.config.match_selfparam_steps:  # SELF-PARAM's context read counts towards its budget
            copies = self.config.budget_context_copies
            per_context = [repeat_to(x, self.targets.sentences_per_context()
                                     + context_read_sequences(model.tokenizer, c.text, copies))
                           for x, c in zip(per_context, contexts)]
        examples = [e for x in per_context for e in x]
        record, stats = train_and_merge(model, encode_share(model, examples), None, self.config.adapter,
                                        self.config.train, progress=self.progress, n_examples=len(examples))
        budget = {"rule": BUDGET_RULE if self.config.match_selfparam_steps else "each chunk once per epoch",
                  "chunks": chunks, "sequences": len(examples), "steps": stats.steps}
        self.weights.add(record, stats, self.name, contexts, self.config_dict(), budget=budget)


class FineTuneTargets(WeightMethod):
    """FT(S) as the paper defines it: next-token training on the generator's own question-answer pairs
    (and the unrelated sentences), the same target set SELF-PARAM distils on."""

    name = "ft-s"
    answers = "generator"  # which answers are learned: see `target_nwp_examples`

    def __init__(self, lm: LM, config: FineTuneTargetsConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        resources = resources or Resources()
        self.config = with_run_seed(config or FineTuneTargetsConfig(), resources)
        self.targets = resources.targets or self.config.targets
        self.weights = WeightUpdates(lm, self.config.adapter)
        self.build_targets = target_source(resources, self.targets, lm, progress=lambda: self.progress)
        self.progress = progress

    def inject(self, contexts: Sequence[Context]) -> None:
        model = self.weights.begin(contexts)
        target_sets = [self.build_targets(c.text) for c in contexts]
        if self.answers == "teacher" and self.targets.questions == "paper":
            target_sets = [reanswer(model, ts) for ts in target_sets]
        per_context = [target_nwp_examples(model.tokenizer, ts, self.answers) for ts in target_sets]
        once = sum(len(x) for x in per_context)
        if self.config.match_selfparam_steps:  # SELF-PARAM also reads the context: as many sequences as it has
            copies = self.config.budget_context_copies
            per_context = [repeat_to(x, len(x) + context_read_sequences(model.tokenizer, ts.context, copies))
                           for x, ts in zip(per_context, target_sets)]
        examples = [e for x in per_context for e in x]
        record, stats = train_and_merge(model, encode_share(model, examples), None, self.config.adapter,
                                        self.config.train, progress=self.progress, n_examples=len(examples))
        budget = {"rule": TARGETS_BUDGET_RULE if self.config.match_selfparam_steps else "the target set once per epoch",
                  "target_sequences": once, "sequences": len(examples), "steps": stats.steps}
        self.weights.add(record, stats, self.name, contexts, self.config_dict(), answers=self.answers,
                         targets=[target_set_to_dict(ts) for ts in target_sets], budget=budget)

    def config_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.config), "targets": dataclasses.asdict(self.targets)}


class FineTuneTeacherTargets(FineTuneTargets):
    """FT(S, teacher answers): next-token training on the answers the teacher of the update (the model as
    it is before it) writes with the context in view: hard-label distillation of SELF-PARAM's teacher,
    not the paper's FT(S). Labelled apart in every table."""

    name = "ft-s-teacher"
    answers = "teacher"
