"""Near-miss questions for a target set: where an injected fact stops (issue 11 §3 defence).

An injected fact leaks into questions that only look like it ("what share of banks disclose fees?" taught,
"what share of credit unions disclose fees?" then answered the same). Adding such questions to the target
set, answered by the teacher *with the context in view*, teaches the student the teacher's answer there
too (usually not the injected object), so the update learns the fact's edge as well as the fact. The
questions are built from the target set's own questions and the context's own entities, as the boundary
evaluation builds its probes (`eval/boundary.py`), so no tagger or other data is needed:

- other entity: a question with its entity swapped for another entity of the context of the same kind;
- other relation: the entity of one question put into another question's wording (same entity, the
  relation asked about by the other question).

    >>> near_miss_questions(["Where was Ada Lovelace born?", "Who taught Charles Babbage?"],
    ...                     "Ada Lovelace met Charles Babbage.", 2, seed=0)
    ['Where was Charles Babbage born?', 'Who taught Ada Lovelace?']
"""

from __future__ import annotations

import random
from typing import Sequence

from .entities import entities, other_entity_questions
from .qa import normalize_question


def other_relation_questions(questions: Sequence[str], ents: Sequence[str]) -> list[str]:
    """Every question's longest entity put into every other question's wording in place of its own."""
    named = [(q, max((e for e in ents if e in q), key=len)) for q in questions if any(e in q for e in ents)]
    return [q2.replace(e2, e1) for q1, e1 in named for q2, e2 in named if e1 != e2 and e1 not in q2]


def near_miss_questions(questions: Sequence[str], context: str, n: int, seed: int) -> list[str]:
    """Up to `n` near-miss questions of a context, other-entity and other-relation ones in turn, each kind in a
    seeded order; none repeats a question of `questions` or another near miss."""
    if n < 1:
        return []
    ents = entities(context)
    rng = random.Random(f"{seed}/{context}")
    by_entity = [m for q in questions for m in other_entity_questions(q, ents, 1, rng)]
    by_relation = other_relation_questions(questions, ents)
    rng.shuffle(by_relation)
    seen = {normalize_question(q) for q in questions}
    out: list[str] = []
    for i in range(max(len(by_entity), len(by_relation))):
        for kind in (by_entity, by_relation):
            if i < len(kind) and normalize_question(kind[i]) not in seen and len(out) < n:
                seen.add(normalize_question(kind[i]))
                out.append(kind[i])
    return out
