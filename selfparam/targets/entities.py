"""Entities of a text without a tagger: capitalised spans, and their shape (number or name).

Shared by the near-miss questions of a target set (`near_miss.py`), the re-asked questions of earlier
contexts (`reask.py`) and the near-miss probes of the evaluation (`eval/boundary.py`).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Collection

_ENTITY = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of|de|the|and)?\s*[A-Z][\w'’-]*)*")
_NOT_ENTITIES = {"The", "A", "An", "In", "On", "At", "It", "He", "She", "They", "This", "That", "What", "Which", "Who",
                 "When", "Where", "Why", "How", "After", "Before", "During", "However", "His", "Her", "Its", "Their"}


def entities(text: str) -> list[str]:
    """Capitalised spans of `text`, first occurrence order, without sentence-opening function words.

    >>> entities("The Denver Broncos beat the Carolina Panthers in Santa Clara.")
    ['Denver Broncos', 'Carolina Panthers', 'Santa Clara']
    """
    out: list[str] = []
    for m in _ENTITY.finditer(text):
        words = m.group(0).split()
        while words and words[0] in _NOT_ENTITIES:
            words = words[1:]
        span = " ".join(words)
        if len(span) >= 3 and span not in out:
            out.append(span)
    return out


def entity_kind(entity: str) -> str:
    """"number" when the span holds a digit, else "name": the only types told apart without a tagger."""
    return "number" if any(ch.isdigit() for ch in entity) else "name"


def other_entity_questions(question: str, ents: list[str], n: int, rng: random.Random,
                           avoid: Callable[[str], bool] = lambda e: False) -> list[str]:
    """Up to `n` copies of `question` with its longest entity of `ents` swapped for another of `ents` of the same
    kind, closest in word count first (ties in a seeded order); [] when the question names none of `ents`.
    `avoid(e)` leaves out replacements that must not be used (e.g. the question's own answer).

    >>> other_entity_questions("Where did Ada Lovelace work?", ["Ada Lovelace", "Charles Babbage", "1843"], 2,
    ...                        random.Random(0))
    ['Where did Charles Babbage work?']
    """
    named = [e for e in ents if e in question]
    if not named:
        return []
    swap = max(named, key=len)
    others = [e for e in ents if e not in question and not avoid(e) and entity_kind(e) == entity_kind(swap)]
    # without a tagger, "the same type" is approximated by shape: as many words, then a seeded draw
    rng.shuffle(others)
    others.sort(key=lambda e: abs(len(e.split()) - len(swap.split())))
    return [question.replace(swap, other) for other in others[:n]]


def named_in(text: str, ents: Collection[str]) -> list[str]:
    """The entities of `text` that are also among `ents`, compared without case.

    >>> named_in("What is the mother tongue of Danielle Darrieux?", ["Danielle Darrieux", "French"])
    ['Danielle Darrieux']
    """
    wanted = {e.casefold() for e in ents}
    return [e for e in entities(text) if e.casefold() in wanted]
