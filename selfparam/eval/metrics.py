"""The papers' metrics as pure functions: SQuAD QA-F1 / EM and conversational-recommendation Recall@k.

QA follows the official SQuAD v1.1 script (and the SELF-PARAM repository's `metrics.py`): lower-case,
strip punctuation and the articles a/an/the, fold white space, then token-overlap F1 or exact match,
taking the best score over the gold answers.

Recommendation follows He et al. 2023 (LLMs as zero-shot conversational recommenders), whose evaluation
SELF-PARAM reuses (appendix A.1): every predicted title is mapped to its nearest catalogue title by
edit distance (case-insensitive); the four settings r1-r4 are {keep, drop} out-of-catalogue predictions
(nearest distance above a threshold, 2 in their code) x {keep, drop} items already mentioned in the
dialogue, and Recall@k is averaged over (turn, gold item) pairs.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation. `normalize_answer("The  Denver-Broncos!") == "denverbroncos"`."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 after normalisation. `f1_score("Denver Broncos won", "the Denver Broncos") == 0.8`."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal. `exact_match("The Broncos.", "broncos") == 1.0`."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    """The best F1 over the gold answers (SQuAD lists several annotators' spans)."""
    if not golds:
        raise ValueError("best_f1: no gold answers given")
    return max(f1_score(prediction, g) for g in golds)


def best_em(prediction: str, golds: Sequence[str]) -> float:
    """The best exact match over the gold answers."""
    if not golds:
        raise ValueError("best_em: no gold answers given")
    return max(exact_match(prediction, g) for g in golds)


def contains_answer(prediction: str, gold: str) -> float:
    """1.0 when the normalised gold answer occurs, as whole words in order, in the normalised prediction: the
    lenient "answer containment" that credits an answer given in a sentence as well as a bare span (F1 punishes
    the sentence's other words). `contains_answer("It was built in the year 1887.", "1887") == 1.0`;
    `contains_answer("18870 bricks", "1887") == 0.0`; an empty gold is never contained."""
    pred, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not wanted:
        return 0.0
    return float(any(pred[i:i + len(wanted)] == wanted for i in range(len(pred) - len(wanted) + 1)))


def best_contains(prediction: str, golds: Sequence[str]) -> float:
    """Whether the prediction contains any of the gold answers (see `contains_answer`)."""
    if not golds:
        raise ValueError("best_contains: no gold answers given")
    return max(contains_answer(prediction, g) for g in golds)


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, or None for no values (an empty cell stays visibly empty in reports)."""
    values = list(values)
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------- recommendation


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Levenshtein distance (insert, delete, substitute all cost 1).

    With `limit`, returns early with a value > limit as soon as the distance must exceed it; the
    nearest-title search uses this to skip most of a catalogue cheaply.
    `edit_distance("kitten", "sitting") == 3`.
    """
    if len(a) < len(b):
        a, b = b, a
    if limit is not None and len(a) - len(b) > limit:
        return len(a) - len(b)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if limit is not None and min(current) > limit:
            return min(current)
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class TitleMatch:
    """A predicted title, the catalogue title nearest to it and their (case-insensitive) edit distance."""

    predicted: str
    nearest: str
    distance: int


def nearest_title(predicted: str, catalogue: Sequence[str]) -> TitleMatch:
    """The catalogue title with the smallest case-insensitive edit distance (first one on ties)."""
    if not catalogue:
        raise ValueError("nearest_title: empty catalogue")
    query = predicted.lower()
    best_title, best = catalogue[0], edit_distance(query, catalogue[0].lower())
    for title in catalogue[1:]:
        if best == 0:
            break
        d = edit_distance(query, title.lower(), limit=best - 1)
        if d < best:
            best_title, best = title, d
    return TitleMatch(predicted, best_title, best)


_PARENS = re.compile(r"\([^()]*\)")
_NUMBERING = re.compile(r"^(?:\d+[\.\)、:]?\s*[\-\—\–]?\s*|[\-\*•]\s*)")


def clean_title(text: str) -> str:
    """Drop parentheses (years, "(film)"), list numbering/bullets, quotes and extra white space.

    `clean_title('2. "Deadpool" (2016)') == "Deadpool"`.
    """
    text = _PARENS.sub("", text)
    text = " ".join(text.split())
    text = _NUMBERING.sub("", text)
    return text.strip().strip("\"'“”*").strip().rstrip(".").strip()


def parse_titles(text: str) -> list[str]:
    """Split a generated recommendation into titles: one per line, or comma-separated on a single line.

    `parse_titles("1. Deadpool (2016)\\n2. Zombieland") == ["Deadpool", "Zombieland"]`.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = lines[0].split(",")
    titles = [clean_title(line) for line in lines]
    return [t for t in titles if t]


def catalogue_name(uri: str) -> str:
    """The readable title of a DBpedia URI, as He et al. derive it: last path segment, `_`/`-` as spaces,
    parentheses removed. `catalogue_name("<http://dbpedia.org/resource/Hoffa_(film)>") == "Hoffa"`."""
    text = uri.split("/")[-1]
    text = text.replace("_", " ").replace("-", " ").replace(">", " ")
    return " ".join(_PARENS.sub("", text).split())


RECALL_FILTERS: dict[str, tuple[bool, bool]] = {
    # name: (drop out-of-catalogue predictions, drop items already mentioned in the dialogue)
    "r1": (False, False),
    "r2": (False, True),
    "r3": (True, False),
    "r4": (True, True),
}


def filtered_predictions(matches: Sequence[TitleMatch], seen: Iterable[str], drop_oov: bool,
                         drop_seen: bool, threshold: int = 2) -> list[str]:
    """The ranked catalogue titles a setting keeps: nearest titles, minus far matches and/or seen items."""
    seen = set(seen)
    kept = [m.nearest for m in matches if not drop_oov or m.distance <= threshold]
    if drop_seen:
        kept = [t for t in kept if t not in seen]
    return kept


def recall_at_k(matches_per_turn: Sequence[Sequence[TitleMatch]], golds_per_turn: Sequence[Sequence[str]],
                seen_per_turn: Sequence[Iterable[str]], k: int = 1, threshold: int = 2) -> dict[str, float | None]:
    """Recall@k under r1-r4, averaged over (turn, gold item) pairs as in He et al.

    Each turn gives its predictions already matched to the catalogue, its gold titles and the titles
    mentioned earlier in the dialogue. A gold item counts as recalled when it is among the first k
    predictions left after the setting's filters.
    """
    if not len(matches_per_turn) == len(golds_per_turn) == len(seen_per_turn):
        raise ValueError("recall_at_k: predictions, golds and seen lists differ in length")
    if k < 1:
        raise ValueError(f"recall_at_k: k must be >= 1, got {k}")
    out: dict[str, float | None] = {}
    for name, (drop_oov, drop_seen) in RECALL_FILTERS.items():
        hits = []
        for matches, golds, seen in zip(matches_per_turn, golds_per_turn, seen_per_turn):
            top = filtered_predictions(matches, seen, drop_oov, drop_seen, threshold)[:k]
            hits.extend(float(g in top) for g in golds)
        out[name] = mean(hits)
    return out
