"""SELF-PARAM: distil the model-with-context into the model-without-context (paper, eq. 3).

One `inject` call is one update (several contexts: a batch update; successive calls: sequential
updates, each merged before the next). It reads as the recipe:

1. targets   generated question-answer pairs about each context plus unrelated sentences (the run's
             shared, cached builder, or one from this method's `TargetConfig`); with `answers="teacher"`
             the teacher re-answers every question with the context in view, keeping its top-k
             log-probabilities of each written token;
2. examples  each pair asked with the context (teacher) and without it (student); each unrelated
             sentence read by the student alone, taught by the model with or without the context;
3. teacher   the model as it is before this update reads each example whose distributions are not yet
             known (unrelated sentences; answers it did not write) once; top-k distributions are kept;
4. train     a LoRA (or the MLP weights) learns to match them without the context: compact KL;
5. merge     the update is merged into the method's private model copy and recorded for save/load.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from ...lm import LM
from ...targets import make_generator, make_target_builder, target_set_to_dict  # noqa: F401 (re-exported)
from ...targets.types import TargetSet
from ...training.examples import distillation_examples
from ...training.teacher import teacher_pass, teacher_writes_answers
from ...training.trainer import encode_share, train_and_merge
from ..base import Context, Query, Resources
from ..prompted import answer_questions, score_questions
from ..weight_update import WeightUpdates, target_source, with_run_seed
from .config import SelfParamConfig

__all__ = ["SelfParam", "make_generator", "make_target_builder"]


class SelfParam:
    """Context injection by KL distillation (the paper's method).

    >>> sp = SelfParam(load_lm("smollm2-135m"))
    >>> sp.inject([Context("doc", "The Zorblat festival takes place every May in Quenby.")])
    >>> sp.answer([Query("When does the Zorblat festival take place?")])
    """

    name = "selfparam"

    def __init__(self, lm: LM, config: SelfParamConfig | None = None, resources: Resources | None = None,
                 progress: bool = True):
        resources = resources or Resources()
        self.config = with_run_seed(config or SelfParamConfig(), resources)
        self.targets = resources.targets or self.config.targets  # the one TargetConfig this method follows
        self.weights = WeightUpdates(lm)
        self.build_targets = target_source(resources, self.targets, lm)
        self.progress = progress
        self.last_targets: list[TargetSet] = []

    def inject(self, contexts: Sequence[Context]) -> None:
        teacher = self.weights.begin(contexts)  # the model as it is now: trained below, and its own teacher
        target_sets = [self.build_targets(c.text) for c in contexts]                               # 1. targets
        written: dict = {}  # the teacher's distributions kept while it re-wrote the answers
        if self.targets.teacher_rewrites_answers:
            rewritten = [teacher_writes_answers(teacher, ts, self.config.train.top_k) for ts in target_sets]
            target_sets = [ts for ts, _ in rewritten]
            written = {key: t for _, kept in rewritten for key, t in kept.items()}
        examples = [e for ts in target_sets                                                          # 2. examples
                    for e in distillation_examples(teacher.tokenizer, ts, self.config.unrelated_teacher, written)]
        encoded = encode_share(teacher, examples)
        t0 = time.perf_counter()
        teachers = teacher_pass(teacher, encoded, self.config.train.top_k,                           # 3. teacher
                                batch_size=self.config.train.batch_size, progress=self.progress)
        record, stats = train_and_merge(teacher, encoded, teachers, self.config.adapter,              # 4. train
                                        self.config.train, progress=self.progress, n_examples=len(examples),
                                        seconds_teacher=time.perf_counter() - t0)
        self.weights.add(record, stats, self.name, contexts, self.config_dict(),                     # 5. merged
                         targets=[target_set_to_dict(ts) for ts in target_sets])
        self.last_targets = target_sets

    def config_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.config), "targets": dataclasses.asdict(self.targets)}

    # -- the rest of the protocol: the shared weight-update state ------------------------------------
    @property
    def lm(self) -> LM:
        return self.weights.lm

    @property
    def records(self):
        return self.weights.records

    @property
    def last_stats(self):
        return self.weights.last_stats

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        return answer_questions(self.lm, queries, max_new_tokens)

    def score(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return score_questions(self.lm, queries, targets)

    def reset(self) -> None:
        self.weights.reset()
        self.last_targets = []

    def save(self, path: Path) -> None:
        self.weights.save(path, self.name, self.config_dict())

    def load(self, path: Path) -> None:
        self.weights.load(path)

    def storage_bytes(self) -> int:
        return 0  # every update is merged: the model keeps the base architecture and size
