"""Answering and scoring with the shared answer prompt: the same for every method, as the harness requires.

`answer_questions` / `score_questions` / `logprob_questions` are what a method whose knowledge is in the
weights calls with its own model; `PromptedMethod` is the shared half of methods whose knowledge is in the prompt
(subclasses say how a query becomes prompt text, `prompt_for`).
"""

from __future__ import annotations

from typing import Callable, Sequence

from transformers import PreTrainedTokenizerBase

from ..generation import generate, target_logprob, target_token_accuracy
from ..lm import LM
from ..prompts import answer_prompt
from .base import Query


def answer_questions(lm: LM, queries: Sequence[Query], max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
    """Greedy answers of `lm` to the questions alone (no context in the prompt)."""
    return generate(lm, [answer_prompt(lm.tokenizer, q.question) for q in queries], max_new_tokens=max_new_tokens,
                    batch_size=batch_size)


def answer_in_context(lm: LM, queries: Sequence[Query], max_new_tokens: int = 32, batch_size: int = 16,
                      prompt: Callable[[PreTrainedTokenizerBase, str, str], str] = answer_prompt) -> list[str]:
    """Greedy answers of `lm` with each query's context in view: by default the prompt Base(C+Q) answers with and
    SELF-PARAM's teacher writes its answers with (`training.teacher`); `prompt(tokenizer, question, context)`
    renders another (SELF-PARAM's teacher with worked examples, `targets.demonstrations.teacher_prompt`)."""
    missing = [q.question for q in queries if not q.context]
    if missing:
        raise ValueError(f"answer_in_context: {len(missing)} queries carry no context, e.g. {missing[0]!r}")
    return generate(lm, [prompt(lm.tokenizer, q.question, q.context) for q in queries],
                    max_new_tokens=max_new_tokens, batch_size=batch_size)


def score_questions(lm: LM, queries: Sequence[Query], targets: Sequence[str], batch_size: int = 16) -> list[float]:
    """Teacher-forced token accuracy of each target after its question's answer prompt."""
    return target_token_accuracy(lm, [answer_prompt(lm.tokenizer, q.question) for q in queries],
                                 [t.strip() for t in targets], batch_size=batch_size)


def logprob_questions(lm: LM, queries: Sequence[Query], targets: Sequence[str], batch_size: int = 16) -> list[float]:
    """Mean per-token log-probability of each target after its question's answer prompt."""
    return target_logprob(lm, [answer_prompt(lm.tokenizer, q.question) for q in queries],
                          [t.strip() for t in targets], batch_size=batch_size)


class PromptedMethod:
    """Answers with `self.lm` and the shared answer prompt; subclasses override `prompt_for`."""

    name = "prompted"

    def __init__(self, lm: LM, batch_size: int = 16):
        self.lm = lm
        self.batch_size = batch_size

    def prompt_for(self, query: Query) -> str:
        """The question alone; methods with knowledge in the prompt put their context here."""
        return answer_prompt(self.lm.tokenizer, query.question)

    def prompts_for(self, queries: Sequence[Query]) -> list[str]:
        """All prompts at once; retrieval methods override this to batch their lookups."""
        return [self.prompt_for(q) for q in queries]

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        return generate(self.lm, self.prompts_for(queries), max_new_tokens=max_new_tokens,
                        batch_size=self.batch_size)

    def score(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return target_token_accuracy(self.lm, self.prompts_for(queries), [t.strip() for t in targets],
                                     batch_size=self.batch_size)

    def logprob(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return target_logprob(self.lm, self.prompts_for(queries), [t.strip() for t in targets],
                              batch_size=self.batch_size)
