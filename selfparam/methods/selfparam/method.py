"""SELF-PARAM: distil the model-with-context into the model-without-context.

For each context x a target set is built (generated question-answer pairs about x plus unrelated
sentences); the teacher is the current model reading x before each sentence, the student the same
model without x, trained to match the teacher's next-token distributions over the sentence (paper,
eq. 3). Several contexts in one `inject` call are one batch update; successive calls are sequential
updates, each merged before the next.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

from ...lm import LM
from ...generation import generate
from ...prompts import answer_prompt
from ...targets import (CachedTargetBuilder, FilterConfig, JsonlGenerator, LocalGenerator, OpenAIGenerator, UnrelatedCorpus,
                        answer_in_context, build_target_set, target_set_to_dict)
from ...targets.types import PairGenerator, TargetSet
from ...training.examples import Example, distillation_examples
from ..base import Context, Resources
from ..weight_update import WeightUpdateMethod
from .config import SelfParamConfig, TargetConfig


class SelfParam(WeightUpdateMethod):
    """Context injection by KL distillation (the paper's method).

    >>> sp = SelfParam(load_lm("smollm2-135m"))
    >>> sp.inject([Context("doc", "The Zorblat festival takes place every May in Quenby.")])
    >>> sp.answer([Query("When does the Zorblat festival take place?")])
    """

    name = "selfparam"

    def __init__(self, lm: LM, config: SelfParamConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        self.config = config or SelfParamConfig()
        super().__init__(lm, self.config.adapter, self.config.train, resources, progress)
        self.last_targets: list[TargetSet] = []

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def target_builder(self) -> Callable[[str], TargetSet]:
        """The shared builder of the run when there is one, else one from this method's config."""
        if self.resources.target_builder is not None:
            return self.resources.target_builder
        return make_target_builder(self.config.targets, lambda: self.lm)

    def examples_for(self, contexts: Sequence[Context]) -> tuple[list[Example], dict[str, Any]]:
        build = self.target_builder()
        target_sets = [build(c.text) for c in contexts]
        self.last_targets = target_sets
        examples = [e for ts in target_sets for e in distillation_examples(self.lm.tokenizer, ts)]
        return examples, {"targets": [target_set_to_dict(ts) for ts in target_sets]}


def pair_filter(config: TargetConfig) -> FilterConfig:
    """The §3.3.3 filters, minus the checks on the generator's answers when the teacher re-answers every
    question anyway: more questions survive each sampling round, so fewer rounds are needed."""
    if config.answers == "teacher":
        return FilterConfig(min_support=0.0, max_answer_words=10_000, drop_yes_no=False)
    return FilterConfig()


def make_generator(config: TargetConfig, current_lm: Callable[[], LM]) -> PairGenerator:
    """The pair generator the config names: a file, an HTTP endpoint, or the model being updated."""
    if config.pairs_file:
        return JsonlGenerator(config.pairs_file)
    if config.generator_url:
        return OpenAIGenerator(config.generator_url, config.generator_model, api_key_env=config.generator_api_key_env,
                               filter_config=pair_filter(config))
    return LocalGenerator(current_lm(), batch_size=config.generator_samples,
                          max_new_tokens=config.generator_max_new_tokens, filter_config=pair_filter(config))


def make_target_builder(config: TargetConfig, current_lm: Callable[[], LM],
                        cache_dir: str | None = None) -> Callable[[str], TargetSet]:
    """context -> TargetSet from a `TargetConfig`; cached on disk when `cache_dir` is given."""
    corpus = UnrelatedCorpus.from_path(config.unrelated_path) if config.unrelated_path else None

    def teacher_answer(questions: list[str], context: str) -> list[str]:
        lm = current_lm()
        return generate(lm, [answer_prompt(lm.tokenizer, q, context) for q in questions], max_new_tokens=48)

    def build(context: str) -> TargetSet:
        ts = build_target_set(context, make_generator(config, current_lm), corpus, n_pairs=config.n_pairs,
                              unrelated_ratio=config.unrelated_ratio if corpus else 0.0, seed=config.seed,
                              filter_config=pair_filter(config))
        return answer_in_context(ts, teacher_answer) if config.answers == "teacher" else ts

    if not cache_dir:
        return build
    # one sub-folder per target config: sets built with other settings are never reused by mistake
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    return CachedTargetBuilder(build, Path(cache_dir) / f"targets-{digest}")
