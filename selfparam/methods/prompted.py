"""The shared half of every method that answers by prompting an LM: only the prompt differs.

Subclasses say how a query becomes prompt text (`prompt_for`) and which model answers; decoding and
teacher-forced scoring are the same for all of them, as the harness requires.
"""

from __future__ import annotations

from typing import Sequence

from ..generation import generate, target_token_accuracy
from ..lm import LM
from ..prompts import answer_prompt
from .base import Query


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
