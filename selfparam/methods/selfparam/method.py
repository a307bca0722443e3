"""SELF-PARAM: distil the model-with-context into the model-without-context (paper, eq. 3).

One `inject` call is one update (several contexts: a batch update; successive calls: sequential
updates, each merged before the next). It reads as the recipe:

0. pull_back  (on by default, 0.2) from the second update on, the merged model first moves that share of the
              way back to the unchanged model's weights (earlier updates shrink; rehearsal teaches them again);
1. targets    generated question-answer pairs about each context plus unrelated sentences (the run's
              shared, cached builder, or one from this method's `TargetConfig`);
   levers     (off by default) `reask`: stored questions of earlier contexts that the new one may
              contradict (with rehearsal on, a replayed pair whose question is re-asked is left out:
              `reask_replaces`); `near_misses`: questions that only look like the context's own;
              `context_copies`: the context's own text, taught by the model reading it (step 2);
   answers    with `answers="teacher"` the teacher re-answers every question with the context in view,
              keeping its top-k log-probabilities of each written token; the levers' questions are always
              answered that way, except near misses with `near_miss_teacher="base"`: those the model
              answers without the context, and the student learns to keep that answer (an anchor);
2. examples   each pair asked with the context (teacher) and without it (student); each unrelated
              sentence read by the student alone, taught by the model with or without the context, or
              (`unrelated_teacher="original"`) by the model before any update, which teaches them here;
   rehearsal  (on by default) a seeded sample of earlier contexts' pairs, each with the teacher
              distributions stored at its own injection; with `rehearsal_context`, chunks of their context
              reads too, stored the same way; with `rehearsal_unrelated`, earlier contexts' unrelated
              sentences, taught by the anchor as this update's own are;
3. teacher    each example whose distributions are not yet known (answers the teacher did not write) is read
              once by the model that teaches it: the model as it is before this update, or the unchanged
              model for what the anchor "original" teaches (and, with `context_teacher="original"`, for
              everything read with the context, whose answers it then writes too); top-k distributions are kept;
   hidden     (off by default) with `hidden_weight`, the hidden states at the scored tokens from the same
              forward; replayed pairs have none;
4. train      a LoRA (or the MLP weights) learns to match them without the context: compact KL (plus
              `hidden_weight` times the hidden-state distance, Deep Context Distillation's second term, and
              `nll_weight` times the hard label's NLL, on the pairs alone or with `nll_on="all"` every example);
5. merge      the update is merged into the method's private model copy and recorded for save/load
              (with its pairs' teacher distributions when rehearsal is on, for later updates to replay).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from typing import Any, Sequence

import torch
from accelerate import PartialState

from ...generation import target_token_logprobs
from ...lm import LM
from ...prompts import after_question
from ...targets import make_generator, make_target_builder, target_set_to_dict  # noqa: F401 (re-exported)
from ...targets.demonstrations import teacher_prompt
from ...targets.near_miss import near_miss_questions
from ...targets.reask import reask_questions
from ...targets.types import QAPair, TargetSet
from ...training.examples import Example, context_read_examples, distillation_examples
from ...training.rehearsal import (
    RehearsalPair,
    asks,
    check_replayed,
    keep_pairs,
    sample_rehearsal,
    store_bytes,
    superseded,
)
from ...training.teacher import teacher_outputs, teacher_writes_answers
from ...training.trainer import encode_share, process_share, train_and_merge
from ..base import Context, Query, Resources
from ..prompted import answer_in_context
from ..weight_update import WeightMethod, WeightUpdates, target_source, with_run_seed
from .config import CONTEXT_CHUNK_TOKENS, SelfParamConfig

__all__ = ["SelfParam", "context_examples", "make_generator", "make_target_builder"]

Written = dict  # (context, question, answer + EOS) -> CompactTeacher kept while the teacher wrote that answer


def context_examples(tokenizer, ts: TargetSet, config: SelfParamConfig,
                     written: Written | None = None) -> list[Example]:
    """One context's examples as SELF-PARAM trains on them: its pairs, then its unrelated sentences
    (`distillation_examples`), then the context read (`context_read_examples`, taught by the update's teacher
    with the context in view). `written`: distributions kept while the teacher wrote answers."""
    return distillation_examples(tokenizer, ts, config.unrelated_teacher, written, kl_span=config.kl_span,
                                 teacher_shots=config.teacher_shots) \
        + context_read_examples(tokenizer, ts.context, CONTEXT_CHUNK_TOKENS, config.context_copies)


# What an update's examples are, in `inject`'s order (`example_groups`): the label of each in the update's
# stats (`loss_by_group`), and the groups of question-answer pairs the hard label trains under nll_on="answers"
QUESTION_GROUPS = ("pairs", "near_miss", "replayed_pairs")
UNRELATED_GROUPS = ("unrelated", "unrelated_reread")  # what `unrelated_weight` weighs, `anchor_per_step` spreads


def example_groups(kinds: Sequence[str], anchored: Sequence[bool], n_anchors: int, n_reread: int,
                   replayed: Sequence[RehearsalPair]) -> list[str]:
    """What each of an update's examples is, in `inject`'s order: its own ("pairs", "unrelated" for the
    sentences the anchor teaches, "read" for the context read), the near-miss anchors ("near_miss"), the
    re-read unrelated sentences ("unrelated_reread") and the replayed ones ("replayed_pairs",
    "replayed_read")."""
    own = ["read" if k == "read" else "unrelated" if a else "pairs" for k, a in zip(kinds, anchored)]
    return own + ["near_miss"] * n_anchors + ["unrelated_reread"] * n_reread \
        + [f"replayed_{'pairs' if p.kind == 'pair' else p.kind}" for p in replayed]


class SelfParam(WeightMethod):
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
        self.weights = WeightUpdates(lm, self.config.adapter)
        self.build_targets = target_source(resources, self.targets, lm, progress=lambda: self.progress)
        self.progress = progress
        self.last_targets: list[TargetSet] = []

    def inject(self, contexts: Sequence[Context]) -> None:
        marks = [time.perf_counter()]  # stage boundaries, for the manifest's `seconds`
        teacher = self.weights.begin(contexts)  # the model as it is now: trained below, and its own teacher
        with self.weights.pulled_back(self.config.pull_back) as pulled:  # 0. pull_back: earlier updates shrink
            marks.append(time.perf_counter())
            target_sets = [self.build_targets(c.text) for c in contexts]                               # 1. targets
            marks.append(time.perf_counter())
            near = [self.near_misses(ts) for ts in target_sets]                                         #    levers
            in_context = self.config.near_miss_teacher == "context"
            extra = [self.reasked(ts.context) + (n if in_context else []) for ts, n in zip(target_sets, near)]
            target_sets, written = self.write_answers(self.reader(teacher), target_sets, extra)  # answers
            anchors, anchored = ([], []) if in_context else self.near_miss_anchors(teacher, near)
            marks.append(time.perf_counter())
            examples, own, kinds, anchored_now = self.examples(target_sets, written)                   # 2. examples
            replayed, n_superseded = self.without_superseded(teacher, self.rehearsal(), contexts)      #    rehearsal
            replayed, n_replaced = self.without_reasked(teacher, replayed, target_sets, extra)
            reread = self.reread_unrelated()
            anchor = "original" if self.config.unrelated_teacher == "original" else "teacher"
            reads = "original" if self.config.context_teacher == "original" else "teacher"
            taught = [anchor if a else reads for a in anchored_now] + ["teacher"] * len(anchors) \
                + [anchor] * len(reread) + [None] * len(replayed)   # who teaches each example (None: stored)
            groups = example_groups(kinds, anchored_now, len(anchors), len(reread), replayed)
            hard = self.hard_labelled(groups)
            examples += anchors + reread + [p.example() for p in replayed]
            own += [None] * (len(anchors) + len(reread) + len(replayed))
            kinds += ["pair"] * (len(anchors) + len(reread) + len(replayed))
            encoded = encode_share(teacher, examples)
            check_replayed(encoded[len(encoded) - len(replayed):], self.config.train.top_k)
            t0 = time.perf_counter()
            teachers, hidden = self.teacher_pass(teacher, encoded, taught)                               # 3. teacher
            record, stats = train_and_merge(teacher, encoded, teachers, self.config.adapter,              # 4. train
                                            self.config.train, progress=self.progress, n_examples=len(examples),
                                            seconds_teacher=time.perf_counter() - t0, hidden=hidden,
                                            hidden_weight=self.config.hidden_weight,
                                            nll_weight=self.config.nll_weight, hard=hard,
                                            groups=process_share(groups), weights=self.example_weights(groups),
                                            riders=self.anchor_riders(groups),
                                            riders_per_step=self.config.anchor_per_step)
            if self.config.rehearsal or self.config.rehearsal_context:  # this update's own pairs (and chunks of
                record.rehearsal = keep_pairs(examples, teachers, own, kinds)  # its read), for later ones to replay
            seconds = stage_seconds(marks + [t0, time.perf_counter()], stats.seconds_teacher)
            self.weights.add(record, stats, self.name, contexts, self.config_dict(),                     # 5. merged
                             targets=[target_set_to_dict(ts) for ts in target_sets], seconds=seconds,
                             **self.levers_manifest(target_sets, extra, replayed, record.rehearsal, len(contexts),
                                                    anchored, len(reread), pulled, n_superseded, n_replaced))
            self.last_targets = target_sets

    # -- the steps of `inject` ------------------------------------------------------------------------
    def reasked(self, context: str) -> list[dict]:
        """`reask`: the stored questions of earlier contexts in this method's history that name an entity of
        `context` (`targets/reask.py`), to be answered with `context` in view."""
        history = [(ts["context"], [p["question"] for p in ts["pairs"]])
                   for r in self.weights.records for ts in r.manifest.get("targets", [])]
        return [{"question": q, "kind": "reasked", "from": _digest(earlier)}
                for q, earlier in reask_questions(history, context, self.config.reask)]

    def near_misses(self, ts: TargetSet) -> list[dict]:
        """`near_misses`: questions that only look like the context's own (`targets/near_miss.py`), other
        entities drawn also from the set's unrelated sentences and the earlier contexts of this method."""
        if not self.config.near_misses:
            return []
        earlier = [t["context"] for r in self.weights.records for t in r.manifest.get("targets", [])]
        return [{"question": q, "kind": "near_miss"}
                for q in near_miss_questions([p.question for p in ts.pairs], ts.context, self.config.near_misses,
                                             self.targets.seed, outside=[*ts.unrelated, *earlier])]

    def near_miss_anchors(self, teacher: LM, near: list[list[dict]]) -> tuple[list[Example], list[list[dict]]]:
        """`near_miss_teacher="base"`: every near-miss question answered by the model as it is before this
        update, without the context, as a distillation example whose teacher reads it without the context
        too: the student learns to keep its old answer where the fact does not reach. Returned with the
        (question, answer) of each context's anchors for the manifest."""
        examples: list[Example] = []
        anchored: list[list[dict]] = []
        for questions in near:
            asked = TargetSet("", [QAPair(e["question"], "") for e in questions])  # "": no context in view
            answered, written = teacher_writes_answers(teacher, asked, self.config.train.top_k, require=False) \
                if asked.pairs else (asked, {})
            # a set with no context: teacher and student read the same prompt, the model before the update teaches
            examples += distillation_examples(teacher.tokenizer, answered, written=written)
            anchored.append([{"question": p.question, "answer": p.answer} for p in answered.pairs])
        return examples, anchored

    def write_answers(self, teacher: LM, target_sets: list[TargetSet],
                      extra: list[list[dict]]) -> tuple[list[TargetSet], Written]:
        """The teacher (context in view) writes the answers it is asked for: every pair's with
        `answers="teacher"`, and always the levers' extra questions, which join the pairs they were asked
        for; the distributions kept while it wrote are returned beside the sets."""
        top_k = self.config.train.top_k
        written: Written = {}
        out = []
        for ts, questions in zip(target_sets, extra):
            if self.targets.teacher_rewrites_answers:
                ts, kept = teacher_writes_answers(teacher, ts, top_k, shots=self.config.teacher_shots)
                written.update(kept)
            asked = {p.question for p in ts.pairs}
            questions = [e["question"] for e in questions if e["question"] not in asked]
            if questions:
                more, kept = teacher_writes_answers(teacher, TargetSet(ts.context, [QAPair(q, "") for q in questions]),
                                                    top_k, require=False, shots=self.config.teacher_shots)
                written.update(kept)
                dropped = {**ts.dropped, "empty_extra_answer": len(questions) - len(more.pairs)}
                ts = dataclasses.replace(ts, pairs=ts.pairs + [QAPair(p.question, p.answer) for p in more.pairs],
                                         dropped={k: v for k, v in dropped.items() if v})
            out.append(ts)
        return out, written

    def examples(self, target_sets: list[TargetSet],
                 written: Written) -> tuple[list[Example], list[str | None], list[str], list[bool]]:
        """Every set's distillation examples, and for each the context whose own example rehearsal keeps (None:
        not kept) with what it is ("pair" or "read"): with `rehearsal` the pairs, with `rehearsal_context` the
        first copy of each chunk of the context read (`context_copies`: the context's own chunks follow the
        unrelated sentences, taught by the update's teacher). The last list says which examples the anchor
        teaches (the unrelated sentences: the unchanged model under `unrelated_teacher="original"`), for the
        teacher pass."""
        examples: list[Example] = []
        own: list[str | None] = []
        kinds: list[str] = []
        anchored: list[bool] = []  # taught by the anchor (the unrelated sentences), not by the update's teacher
        for ts in target_sets:
            built = context_examples(self.lm.tokenizer, ts, self.config, written)
            n_read = len(built) - len(ts.pairs) - len(ts.unrelated)
            n_chunks = n_read // self.config.context_copies if self.config.rehearsal_context else 0
            examples += built
            n_pairs = len(ts.pairs) if self.config.rehearsal else 0
            own += [ts.context] * n_pairs + [None] * (len(ts.pairs) - n_pairs + len(ts.unrelated)) \
                + [ts.context] * n_chunks + [None] * (n_read - n_chunks)  # the read's first copy of each chunk
            kinds += ["pair"] * (len(ts.pairs) + len(ts.unrelated)) + ["read"] * n_read
            anchored += [False] * len(ts.pairs) + [True] * len(ts.unrelated) + [False] * n_read
        return examples, own, kinds, anchored

    def example_weights(self, groups: list[str]) -> list[float] | None:
        """`unrelated_weight`: how much each example's tokens count in the loss (this process's share): the
        unrelated sentences (the anchor's, and re-read ones) that weight, every other example 1. None at 1."""
        if self.config.unrelated_weight == 1.0:
            return None
        return process_share([self.config.unrelated_weight if g in UNRELATED_GROUPS else 1.0 for g in groups])

    def anchor_riders(self, groups: list[str]) -> list[bool] | None:
        """`anchor_per_step`: which of the update's examples (this process's share) ride along in every step, the
        unrelated sentences (the anchor's, and re-read ones). None when off."""
        if not self.config.anchor_per_step:
            return None
        return process_share([g in UNRELATED_GROUPS for g in groups])

    def hard_labelled(self, groups: list[str]) -> list[bool] | None:
        """`nll_on="answers"`: which of the update's examples (`example_groups`; this process's share) the hard
        label trains: the question-answer pairs (its own, the near-miss anchors, the replayed ones), not the
        unrelated sentences nor the context read. None (every example) under "all" or with the hard label off."""
        if not self.config.nll_weight or self.config.nll_on == "all":
            return None
        return process_share([g in QUESTION_GROUPS for g in groups])

    def teacher_pass(self, teacher: LM, encoded: list,
                     taught: list[str | None]) -> tuple[list, list[torch.Tensor | None] | None]:
        """Every example's teacher distributions (`training/teacher.py`) from the model that teaches it:
        `taught[i]` "teacher" the model before this update, "original" the unchanged model (the anchor
        `unrelated_teacher="original"`, which stays put along a sequence of updates); None (replayed pairs)
        carries its stored distributions. With `hidden_weight`, each example's hidden states at its scored
        tokens too, from the same forward as its distributions (None for replayed pairs, stored without
        them: those train on the KL alone); hidden states None when off."""
        top_k, batch_size, want = self.config.train.top_k, self.config.train.batch_size, bool(self.config.hidden_weight)
        taught = process_share(taught)
        teachers = [e.teacher for e in encoded]
        hidden: list[torch.Tensor | None] = [None] * len(encoded)
        for source, lm in (("teacher", teacher), ("original", self.weights.base_lm)):
            idx = [i for i, s in enumerate(taught) if s == source]
            if idx:
                got = teacher_outputs(lm, [encoded[i] for i in idx], top_k, hidden=[want] * len(idx),
                                      batch_size=batch_size, progress=self.progress)
                for i, t, h in zip(idx, *got):
                    teachers[i], hidden[i] = t, h
        return teachers, hidden if want else None

    def rehearsal(self) -> list[RehearsalPair]:
        """`rehearsal`: up to that many kept pairs of every earlier context, and `rehearsal_context` up to that
        many chunks of its context read, each with its stored teacher."""
        if not (self.config.rehearsal or self.config.rehearsal_context):
            return []
        if PartialState().num_processes > 1:
            raise ValueError(f"rehearsal (on by default: {self.config.rehearsal} pairs per earlier context; "
                             f"rehearsal_context {self.config.rehearsal_context} chunks) keeps every replayed "
                             f"teacher in one process: run without `accelerate launch`, or set rehearsal and "
                             f"rehearsal_context to 0 (`--rehearsal 0 --rehearsal-context 0`)")
        return sample_rehearsal([r.rehearsal for r in self.weights.records], self.config.rehearsal,
                                self.config.train.seed, step=len(self.weights.records) + 1,
                                limit=self.config.rehearsal_limit, reads=self.config.rehearsal_context)

    def without_superseded(self, teacher: LM, replayed: list[RehearsalPair],
                           contexts: Sequence[Context]) -> tuple[list[RehearsalPair], int]:
        """`rehearsal_superseded`: the replayed pairs less those a context of this update contradicts (scored by
        `teacher`, the model before this update), and how many were left out."""
        nats = self.config.rehearsal_superseded
        if not nats or not replayed:
            return replayed, 0

        def token_logprobs(prefixes: list[str], texts: list[str]):
            return target_token_logprobs(teacher, prefixes, texts, batch_size=self.config.train.batch_size)

        answer_after = after_question(teacher.tokenizer)
        drop = [False] * len(replayed)
        for c in contexts:
            drop = [a or b for a, b in zip(drop, superseded(replayed, c.text, nats, token_logprobs, answer_after))]
        return [p for p, d in zip(replayed, drop) if not d], sum(drop)

    def without_reasked(self, teacher: LM, replayed: list[RehearsalPair], target_sets: list[TargetSet],
                        extra: list[list[dict]]) -> tuple[list[RehearsalPair], int]:
        """`reask_replaces`: the replayed pairs less those whose question this update re-asks (`reask`) and
        answers with its own context in view, and how many were left out (`replaced_by_reask` in the manifest)."""
        if not (self.config.reask and self.config.reask_replaces and replayed):
            return replayed, 0
        questions = [e["question"] for ex in answered_extra(target_sets, extra) for e in ex if e["kind"] == "reasked"]
        if not questions:
            return replayed, 0
        answer_after = after_question(teacher.tokenizer)
        drop = [asks(p, questions, answer_after) for p in replayed]
        return [p for p, d in zip(replayed, drop) if not d], sum(drop)

    def reread_unrelated(self) -> list[Example]:
        """`rehearsal_unrelated`: up to that many unrelated sentences of every earlier context (from the update
        manifests, so a loaded injection does the same), drawn with `train.seed`, the update's step and the
        context, as examples of this update's anchor (taught by the unchanged model under "original", by the
        teacher pass under "base")."""
        if not self.config.rehearsal_unrelated:
            return []
        step = len(self.weights.records) + 1
        n = self.config.rehearsal_unrelated
        sentences: list[str] = []
        for ts in (ts for r in self.weights.records for ts in r.manifest.get("targets", [])):
            rng = random.Random(f"{self.config.train.seed}/{step}/unrelated/{_digest(ts['context'])}")
            sentences += rng.sample(ts["unrelated"], min(n, len(ts["unrelated"])))
        return distillation_examples(self.lm.tokenizer, TargetSet("", [], unrelated=sentences),
                                     self.config.unrelated_teacher)

    def levers_manifest(self, target_sets: list[TargetSet], extra: list[list[dict]], replayed: list[RehearsalPair],
                        kept: list[RehearsalPair] | None, n_contexts: int,
                        anchored: list[list[dict]], n_reread: int = 0, pulled: float = 0.0,
                        n_superseded: int = 0, n_replaced: int = 0) -> dict[str, Any]:
        """What the levers added to this update, for its manifest (nothing when they are off)."""
        out: dict[str, Any] = {}
        if self.config.context_copies:
            out["context_read"] = {"copies": self.config.context_copies, "chunk_tokens": CONTEXT_CHUNK_TOKENS}
        if pulled:
            out["pulled_back"] = pulled
        if any(anchored):
            out["near_miss_anchors"] = anchored
        if n_reread:
            out["replayed_unrelated"] = n_reread
        if any(extra):
            out["extra_questions"] = answered_extra(target_sets, extra)
        if self.config.rehearsal or self.config.rehearsal_context:
            n_bytes = store_bytes(kept or [])
            reads = sum(p.kind == "read" for p in replayed)
            out["rehearsal"] = {"replayed_pairs": len(replayed) - reads, "replayed_reads": reads,
                                "superseded_pairs": n_superseded, "replaced_by_reask": n_replaced,
                                "replayed_from": sorted({_digest(p.context) for p in replayed}),
                                "kept_pairs": sum(p.kind == "pair" for p in kept or []),
                                "kept_reads": sum(p.kind == "read" for p in kept or []),
                                "kept_tokens": sum(len(p.teacher) for p in kept or []),
                                "kept_bytes": n_bytes, "kept_bytes_per_context": n_bytes / n_contexts}
        return out

    def config_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.config), "targets": dataclasses.asdict(self.targets)}

    def answer_in_context(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        """The teacher of the next update reading each query's context (`ReadsContext`): the model it would be
        (the current one, or the unchanged one under `context_teacher="original"`) with the prompt it would
        answer with (`teacher_shots` worked examples first)."""
        shots = self.config.teacher_shots
        return answer_in_context(self.reader(self.lm), queries, max_new_tokens,
                                 prompt=lambda tok, question, context: teacher_prompt(tok, question, context, shots))

    def reader(self, current: LM) -> LM:
        """The model that reads a new context and teaches from it: `current` (the model before the update), or
        the unchanged one under `context_teacher="original"`."""
        return self.weights.base_lm if self.config.context_teacher == "original" else current

    def reset(self) -> None:
        super().reset()
        self.last_targets = []


def answered_extra(target_sets: Sequence[TargetSet], extra: Sequence[Sequence[dict]]) -> list[list[dict]]:
    """Each context's lever questions (`extra`: re-asked, near misses) that joined its target set: a question the
    teacher answered with nothing was dropped."""
    return [[e for e in questions if e["question"] in {p.question for p in ts.pairs}]
            for ts, questions in zip(target_sets, extra)]


def stage_seconds(marks: list[float], seconds_teacher: float) -> dict[str, float]:
    """Where one update's wall seconds went, from `inject`'s stage boundaries (start, model ready, targets
    built, answers written, teacher pass begun, merged) and the teacher pass's own seconds: `setup` (the
    private model copy on the first update, the pull back on later ones), `targets` (generation and
    filters, or the cache), `answers` (the teacher writing answers with the context in view, and the
    levers' questions), `examples` (the anchor's distributions, rehearsal), `teacher` (the pass over
    examples whose distributions were not yet known), `train` (training and merge), `total`."""
    names = ("setup", "targets", "answers", "examples")
    out = {n: b - a for n, a, b in zip(names, marks, marks[1:])}
    out["teacher"] = seconds_teacher
    out["train"] = marks[5] - marks[4] - seconds_teacher
    out["total"] = marks[5] - marks[0]
    return {k: round(v, 3) for k, v in out.items()}


def _digest(context: str) -> str:
    """How a manifest names a context: the sha256 of its text as the target set keeps it (stripped)."""
    return hashlib.sha256(context.encode()).hexdigest()
