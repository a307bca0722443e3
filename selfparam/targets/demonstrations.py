"""Worked examples for SELF-PARAM's teacher: a few of the context's own facts, asked and answered with the span.

Shown a paragraph and a question, the 135M teacher mostly answers in a sentence that restates the question
("The Diet of Worms was a gathering of the Holy Roman Empire's estates, ..."), and the student distils that
habit with the knowledge. Shown first three of the paragraph's own facts asked as cloze questions
(`fact_questions.cloze_question`), each answered with its bare span, it answers the next question far more
often with the words that answer it: on the first 30 tuning-split paragraphs (90 questions) its greedy F1 went
from 0.159 to 0.308 (+0.149 [+0.073, +0.231]) and the gold answer's log-probability rose 1.26 nats/token [0.92,
1.65] (`scripts/teacher_prompt_probe.py`; docs/results/tuning/README.md, "worked examples for the teacher"). The
examples come from the context itself, so nothing outside it leaks into the answers (a made-up example paragraph
did: "The Zorblat Festival of Quenby was ..." to a question on Luther).

`teacher_prompt` is the prompt the teacher answers and teaches with; with no examples it is the shared answer
prompt (`prompts.answer_prompt`), the paper's teacher.
"""

from __future__ import annotations

from functools import lru_cache

from transformers import PreTrainedTokenizerBase

from ..prompts import answer_prompt, answer_prompt_after_examples
from .fact_questions import cloze_question
from .facts import extract_facts


@lru_cache(maxsize=256)
def context_demonstrations(context: str, k: int) -> tuple[tuple[str, str], ...]:
    """The first `k` (cloze question, answer span) pairs of `context` in reading order (fewer where fewer facts
    give a cloze). Taking one fact per sentence instead measured worse on the tuning split (greedy F1 -0.08
    [-0.16, -0.01], gold log-prob -0.20 [-0.41, +0.00] nats/token, 90 questions)."""
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    out: list[tuple[str, str]] = []
    for fact in extract_facts(context) if k else []:
        if len(out) == k:
            break
        question = cloze_question(fact)
        if question:
            out.append((question, fact.answer))
    return tuple(out)


def teacher_prompt(tokenizer: PreTrainedTokenizerBase, question: str, context: str | None, shots: int = 0) -> str:
    """The prompt SELF-PARAM's teacher answers `question` with, `context` in view: after `shots` worked examples
    of the context's own facts (`context_demonstrations`), or the shared answer prompt at 0 (or with no
    context, e.g. a near-miss anchor read without it)."""
    if not shots or not context:
        return answer_prompt(tokenizer, question, context)
    return answer_prompt_after_examples(tokenizer, question, context, context_demonstrations(context, shots))
