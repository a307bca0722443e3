"""SELF-PARAM's settings: where the target set comes from, what is trained, how.

Paper values are given in each field's help; where our default differs it was measured better on the
embedded 135M model (see docs/tuning.md). `TargetConfig` lives in `selfparam.targets` (every route to a
target set uses it) and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...settings import ABSENT
from ...targets.config import TargetConfig
from ...training.adapters import AdapterConfig
from ...training.examples import KL_SPANS, UNRELATED_TEACHERS
from ...training.trainer import TrainConfig

__all__ = ["CONTEXT_CHUNK_TOKENS", "CONTEXT_TEACHERS", "NEAR_MISS_TEACHERS", "NLL_ON", "SelfParamConfig",
           "TargetConfig"]

NEAR_MISS_TEACHERS = ("context", "base")
NLL_ON = ("all", "answers")
CONTEXT_TEACHERS = ("current", "original")
CONTEXT_CHUNK_TOKENS = 128
"""Tokens per chunk when `context_copies` reads the context itself: FT(C)'s default chunk."""


@dataclass
class SelfParamConfig:
    """Everything one SELF-PARAM injection depends on; written into every manifest.

    `targets` is used when the method builds its own target sets; under the evaluation harness the run's
    one `TargetConfig` (shared with FT(S)) takes its place and is what the manifest records.
    """

    RETIRED: ClassVar[dict[str, Any]] = {
        "shots_answers": False,  # removed in 7e77cfc (measured a no-op); off is what the code does without it
    }

    targets: TargetConfig = field(default_factory=TargetConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    unrelated_teacher: str = field(default="original", metadata={
        "help": "who teaches the unrelated sentences: original (default, chosen on the tuning split) = the model "
                "before any update, read without the context (a KL anchor that does not drift along a sequence "
                "of updates); base = the model as it was before this update, without the context (an anchor "
                "that moves with the model); context = the model reading the context first (the paper's "
                "objective)"})
    unrelated_weight: float = field(default=1.0, metadata={ABSENT: 1.0,
        "help": "how much each token of the unrelated sentences (the anchor) counts in the loss against the other "
                "tokens of its batch: 1 = the same (the paper); 4 = four times. After training the anchor's KL is "
                "the largest left (0.10-0.14 nats/token against 0.02-0.06 for the pairs and the read, tuning split); "
                "weights 4 and 10 did not lower it and left perplexity level (docs/tuning.md), so 1 stays"})
    anchor_per_step: int = field(default=0, metadata={ABSENT: 0,
        "help": "unrelated sentences (the anchor's) added to every training step, taken in turn from the update's "
                "own, instead of each taking one place in a random batch: the anchor pulls at every step, not only "
                "at the few that happen to hold one of its sentences (with batch_size 4 and a quarter of the "
                "examples anchors, about a third of the steps hold none). The steps are then made up by the other "
                "examples alone (fewer, each longer); the FT baselines' budget is unchanged; one process only. "
                "0 = off (the paper). At 2 the anchor's loss left halved (0.12 -> 0.06 nats/token, tuning split, "
                "T=5) and perplexity did not move (+3.9% against +3.3%, docs/tuning.md), so 0 stays"})
    context_teacher: str = field(default="current", metadata={ABSENT: "current",
        "help": "which model reads the context to teach this update (writes the answers it is asked for, gives the "
                "distributions of the pairs, of the re-asked questions and of the context read): current (the "
                "paper) = the model as it is before this update, with every earlier update in it; original = the "
                "unchanged model, so that a fact an earlier update wrote in cannot colour what the new context "
                "teaches (a later contradicting fact is taught as the context says it)"})
    teacher_shots: int = field(default=0, metadata={ABSENT: 0,
        "help": "worked examples the teacher is shown before each question: that many of the context's own facts, "
                "asked as cloze questions and answered with their bare span (targets/demonstrations.py), so it "
                "answers with the words that answer the question rather than a sentence restating it, and the "
                "student learns that as well; applies where the teacher answers and teaches the pairs (the "
                "context read, the anchor and the target set's building are unchanged); 0 = off (the paper)"})
    rehearsal: int = field(default=10, metadata={
        "help": "pairs of every earlier context replayed at each update with the teacher distributions stored at "
                "their own injection (a sample seeded by train.seed and the update's step); 0 = off (the "
                "paper), 10 = default (chosen on the tuning split). Keeps 8k+4 bytes per answer token of each "
                "update's pairs for training (none at inference); one process only"})
    rehearsal_limit: int = field(default=200, metadata={
        "help": "at most this many replayed pairs per update in all (a seeded sample of them when the history "
                "holds more), so a long history does not make every update train on all of it; 200 is above "
                "what 20 sequential updates with rehearsal=10 replay (190), so no measured run was capped. At "
                "least 1: rehearsal=0 is what turns rehearsal off"})
    rehearsal_context: int = field(default=0, metadata={ABSENT: 0,
        "help": "chunks of every earlier context's read (context_copies) replayed at each update with the teacher "
                "distributions stored at its own injection (a seeded sample, each chunk at most once; the update "
                "keeps one copy of each of its chunks for this), so the facts stated, not only those asked, are "
                "taught again; needs context_copies. 0 = off. Keeps 8k+4 bytes per chunk token for training "
                "(about 66 KB per 128-token chunk at k=64); one process only; the superseded filter "
                "(rehearsal_superseded) scores pairs only"})
    rehearsal_superseded: float = field(default=0.0, metadata={ABSENT: 0.0,
        "help": "leave out of the replay the earlier pairs the new context contradicts: a pair whose question names "
                "an entity of the new context and one of whose answer tokens is at least this many nats less "
                "likely with the new context in view than without it (training/rehearsal.py `superseded`), so "
                "rehearsal does not teach back a fact a later update replaced; 0 = off"})
    rehearsal_unrelated: int = field(default=0, metadata={ABSENT: 0,
        "help": "unrelated sentences of every earlier context read again at each update, taught by the anchor "
                "(unrelated_teacher original or base), so the anchor keeps its share of an update as the "
                "replayed pairs grow with the history (a seeded sample per earlier context); 0 = off"})
    pull_back: float = field(default=0.2, metadata={ABSENT: 0.0,
        "help": "before each update after the first, move the model's weights this share of the way back to the "
                "unchanged model's (weight-space interpolation towards the base, as WiSE-FT; every earlier "
                "update's change shrinks by it, the new one is learned in full), so the drift of many updates "
                "stays bounded while rehearsal teaches earlier contexts again; in [0, 1), 0 = off (the paper), "
                "0.2 = default (chosen on the tuning split: perplexity after 5 updates +3.7% against +8.9%, "
                "the injected paragraphs level)"})
    kl_span: str = field(default="pair", metadata={ABSENT: "answer",
        "help": "the tokens of each pair the KL is taken over: pair (default, the paper's KL over the whole target "
                "sentence) the question, the rest of the prompt and the answer; answer the answer alone, after "
                "the shared answer prompt. Chosen on the tuning split: +0.34 nats/token on the gold answers"})
    context_copies: int = field(default=10, metadata={ABSENT: 0,
        "help": "the context's own text, in chunks of CONTEXT_CHUNK_TOKENS, added this many times to its target "
                "set, taught by the model reading the whole context first (it predicts the text nearly as "
                "written): the facts stated as well as asked, the mixed training of Physics of LMs 3.1; 0 = off "
                "(the paper), 10 = default (chosen on the tuning split, with kl_span=pair: gold-answer "
                "log-prob recovery 0.79 against 0.55 without either)"})
    reask: int = field(default=0, metadata={ABSENT: 0,
        "help": "stored questions of earlier contexts that name an entity of the new context, asked again with "
                "the new context in view and added to its target set (a later contradicting fact wins); "
                "at most this many per context, 0 = off"})
    reask_replaces: bool = field(default=True, metadata={ABSENT: False,
        "help": "with reask and rehearsal on, a replayed pair whose question is re-asked in this update is left out of "
                "the replay: the re-asked question is trained with the new context's answer, and replaying the "
                "earlier answer to the same question would teach the fact it replaces back in (where the new "
                "context agrees, the re-asked pair teaches the same answer with a fresh teacher); false = replay "
                "it too (as before 2026-12-06)"})
    near_misses: int = field(default=0, metadata={ABSENT: 0,
        "help": "near-miss questions (the question about another entity: one of text the method already holds, "
                "i.e. the set's unrelated sentences and earlier contexts, or of the context; or the same entity "
                "asked another question) added to each context's target set; 0 = off"})
    near_miss_teacher: str = field(default="context", metadata={
        "help": "who answers the near-miss questions: context = the teacher with the context in view (its answer "
                "joins the pairs); base = the model as it was before this update, without the context (a KL "
                "anchor at the fact's edge: the student keeps its old answer there)"})
    nll_weight: float = field(default=0.0, metadata={ABSENT: 0.0,
        "help": "weight of the hard-label term beside the KL: every scored token (pairs, unrelated sentences, the "
                "context read, replayed pairs; `nll_on` narrows it to the pairs) also adds this times the "
                "student's next-token NLL of the token itself, FT(S)'s and FT(C)'s loss on the same examples. "
                "Fact sets' answers are bare spans, which FT(S) learns to give and SELF-PARAM's teacher, "
                "answering in sentences, does not; 0 = off (the paper)"})
    nll_on: str = field(default="answers", metadata={ABSENT: "all",
        "help": "which examples the hard label (nll_weight) trains: answers = the question-answer pairs alone "
                "(this update's, near-miss anchors', replayed ones), so the unrelated sentences and the context read "
                "keep the KL alone and the text they hold is not learnt by heart (measured: the same gain on the "
                "injected facts at about half the perplexity cost, docs/tuning.md); all = every scored token"})
    hidden_weight: float = field(default=0.0, metadata={ABSENT: 0.0,
        "help": "weight of a hidden-state term beside the KL (Deep Context Distillation, Caccia et al. 2025): "
                "each distillation example taught by a model here (pairs and unrelated sentences) also matches "
                "the student's hidden states at every layer's output to its teacher's at the scored tokens, an "
                "L1 distance relative to the teacher's state (training/losses.py `hidden_l1`); replayed pairs, "
                "whose teacher is stored without hidden states, keep the KL alone. The states come from the teacher "
                "pass's own forward (no extra pass) and take L x D bf16 numbers per scored token in memory "
                "during the update; 0 = off (the paper)"})

    def __post_init__(self) -> None:
        for name in ("rehearsal", "rehearsal_context", "rehearsal_unrelated", "reask", "near_misses",
                     "context_copies", "anchor_per_step", "teacher_shots"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.rehearsal_superseded < 0:
            raise ValueError(f"rehearsal_superseded: must be >= 0 nats (0 = off), got {self.rehearsal_superseded}")
        if not self.hidden_weight >= 0:  # NaN too
            raise ValueError(f"hidden_weight: must be >= 0 (0 = off), got {self.hidden_weight}")
        if not self.unrelated_weight > 0:  # NaN too
            raise ValueError(f"unrelated_weight: must be > 0 (1 = as every other token), got {self.unrelated_weight}")
        if not self.nll_weight >= 0:  # NaN too
            raise ValueError(f"nll_weight: must be >= 0 (0 = off), got {self.nll_weight}")
        if self.nll_on not in NLL_ON:
            raise ValueError(f"nll_on: {self.nll_on!r} is not one of {', '.join(NLL_ON)}")
        if not 0.0 <= self.pull_back < 1.0:
            raise ValueError(f"pull_back: must be in [0, 1) (0 = off), got {self.pull_back}")
        if self.rehearsal_limit < 1:
            raise ValueError(f"rehearsal_limit: must be >= 1 (to replay nothing, set rehearsal to 0), "
                             f"got {self.rehearsal_limit}")
        if self.rehearsal_context and not self.context_copies:
            raise ValueError("rehearsal_context: replays chunks of earlier context reads, but context_copies is 0 "
                             "(no context is read); set context_copies, or rehearsal_context to 0")
        if self.rehearsal_unrelated and self.unrelated_teacher == "context":
            raise ValueError("rehearsal_unrelated: an earlier sentence has no teacher under unrelated_teacher="
                             "'context' (which context would it read?); use 'original' or 'base', or set "
                             "rehearsal_unrelated to 0")
        if self.context_teacher not in CONTEXT_TEACHERS:
            raise ValueError(f"context_teacher: {self.context_teacher!r} is not one of {', '.join(CONTEXT_TEACHERS)}")
        if self.near_miss_teacher not in NEAR_MISS_TEACHERS:
            raise ValueError(f"near_miss_teacher: {self.near_miss_teacher!r} is not one of "
                             f"{', '.join(NEAR_MISS_TEACHERS)}")
        if self.kl_span not in KL_SPANS:
            raise ValueError(f"kl_span: {self.kl_span!r} is not one of {', '.join(KL_SPANS)}")
        if self.unrelated_teacher not in UNRELATED_TEACHERS:
            raise ValueError(f"unrelated_teacher: {self.unrelated_teacher!r} is not one of "
                             f"{', '.join(UNRELATED_TEACHERS)}")
