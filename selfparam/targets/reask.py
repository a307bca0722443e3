"""Re-asked questions: a later context that contradicts an earlier one must win (issue 11 §2 defence).

When a new context is injected, the questions stored for earlier contexts of the same method that are about
the same thing are asked again, answered by the teacher with the NEW context in view, and trained with the
new context's pairs: the student is taught the new answer exactly where the old one was written in.

The rule (lexical, no tagger): an earlier question is "about the same thing" when it names an entity (a
capitalised span, `entities`) that the new context names too, compared without case. Questions naming more
shared entities come first, then newer contexts first; an earlier context identical to the new one is
skipped (nothing to contradict); each question is re-asked once.

    >>> reask_questions([("Danielle Darrieux speaks English.", ["What language does Danielle Darrieux speak?",
    ...                                                         "What is English?"])],
    ...                 "Danielle Darrieux speaks French.", 5)
    [('What language does Danielle Darrieux speak?', 'Danielle Darrieux speaks English.')]
"""

from __future__ import annotations

from typing import Sequence

from .entities import entities, named_in
from .qa import normalize_question


def reask_questions(history: Sequence[tuple[str, Sequence[str]]], context: str, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (question, earlier context) of `history` (each earlier context with its stored questions,
    oldest first) to ask again about `context`, by the rule above."""
    if limit < 1:
        return []
    shared = entities(context)
    scored: list[tuple[int, int, str, str]] = []
    for age, (earlier, questions) in enumerate(reversed(history)):
        if earlier.strip() == context.strip():
            continue
        for q in questions:
            n = len(named_in(q, shared))
            if n:
                scored.append((-n, age, q, earlier))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _, _, q, earlier in sorted(scored, key=lambda s: (s[0], s[1])):
        if normalize_question(q) not in seen and len(out) < limit:
            seen.add(normalize_question(q))
            out.append((q, earlier))
    return out
