"""Near-miss questions for a target set: where an injected fact stops (issue 11 §3 defence).

An injected fact leaks into questions that only look like it ("what share of banks disclose fees?" taught,
"what share of credit unions disclose fees?" then answered the same). Adding such questions to the target
set teaches the update the fact's edge as well as the fact (answered by the teacher with the context in
view, or by the model as it was before the update: `SelfParamConfig.near_miss_teacher`). The questions are
built from the target set's own questions, as the boundary evaluation builds its probes (`eval/boundary.py`),
with no tagger or other data:

- outside entity: a question with its entity swapped for an entity of the same shape from other text the
  method already holds (the target set's unrelated sentences, earlier injected contexts), never one the
  context names. A one-sentence fact names only its subject and its object, so this is the only way it
  gets questions about *another subject* (the context's own swap below asks for "the mother tongue of
  English");
- other entity: the same with another entity of the context;
- other relation: the entity of one question put into another question's wording (same entity, the
  relation asked about by the other question).

    >>> near_miss_questions(["Where was Ada Lovelace born?", "Who taught Charles Babbage?"],
    ...                     "Ada Lovelace met Charles Babbage.", 2, seed=0)
    ['Where was Charles Babbage born?', 'Who taught Ada Lovelace?']
    >>> near_miss_questions(["What is the mother tongue of Danielle Darrieux?"],
    ...                     "The mother tongue of Danielle Darrieux is English.", 2, seed=0,
    ...                     outside=["Robert Boulter is an English actor."])
    ['What is the mother tongue of Robert Boulter?', 'What is the mother tongue of English?']
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


def outside_entities(context: str, outside: Sequence[str]) -> list[str]:
    """Entities of the `outside` texts that the context does not name (compared without case), in order.

    >>> outside_entities("Ada Lovelace met Charles Babbage.", ["Charles Babbage built engines in London."])
    ['London']
    """
    lowered = context.casefold()  # an entity of the context is in its text, so this covers those too
    out: list[str] = []
    for text in outside:
        out += [e for e in entities(text) if e.casefold() not in lowered and e not in out]
    return out


def near_miss_questions(questions: Sequence[str], context: str, n: int, seed: int,
                        outside: Sequence[str] = ()) -> list[str]:
    """Up to `n` near-miss questions of a context: outside-entity (entities of the `outside` texts),
    other-entity and other-relation ones in turn, each kind in a seeded order; none repeats a question of
    `questions` or another near miss."""
    if n < 1:
        return []
    ents = entities(context)
    rng = random.Random(f"{seed}/{context}")
    by_entity = [m for q in questions for m in other_entity_questions(q, ents, 1, rng)]
    strangers = outside_entities(context, outside)
    per_question = -(-n // max(1, len(questions)))  # a one-question set still gets n other subjects
    by_outside = [m for q in questions for m in _swapped_with(q, ents, strangers, per_question, rng)]
    by_relation = other_relation_questions(questions, ents)
    rng.shuffle(by_relation)
    seen = {normalize_question(q) for q in questions}
    out: list[str] = []
    kinds = (by_outside, by_entity, by_relation)
    for i in range(max(map(len, kinds))):
        for kind in kinds:
            if i < len(kind) and normalize_question(kind[i]) not in seen and len(out) < n:
                seen.add(normalize_question(kind[i]))
                out.append(kind[i])
    return out


def _swapped_with(question: str, own: Sequence[str], strangers: Sequence[str], n: int,
                  rng: random.Random) -> list[str]:
    """Up to `n` copies of `question` with its longest entity of the context (`own`) swapped for one of
    `strangers` of the same shape; [] when it names none of `own`."""
    named = [e for e in own if e in question]
    if not named or not strangers:
        return []
    swap = max(named, key=len)
    return other_entity_questions(question, [swap, *strangers], n, rng)
