"""Which questions a context's target set covers, and how each method answers the two kinds.

A question is *covered* when an answer of the pairs its context was trained on holds one of the question's gold
answers (whole words after SQuAD's normalisation, `metrics.best_contains`): the fact it asks was a training target.
Splitting a recorded single-injection run this way separates two things a method's mean mixes: how well it learns
the facts it was shown, and what it does for a fact no pair names. Next-token fine-tuning on the pairs (FT(S)) and
distillation of a teacher that reads the whole context (SELF-PARAM) differ most on the second.

    >>> records = [{"method": "m", "context_id": "c", "question": "q1", "golds": ["Paris"], "prediction": "Paris",
    ...             "f1": 1.0, "em": 1.0, "logprob": -0.5},
    ...            {"method": "m", "context_id": "c", "question": "q2", "golds": ["1887"], "prediction": "no",
    ...             "f1": 0.0, "em": 0.0, "logprob": -3.0}]
    >>> split = coverage_split(records, {"c": ["The capital is Paris"]})
    >>> split["strata"]["covered"]["methods"]["m"]["contains"], split["strata"]["uncovered"]["n_questions"]
    (1.0, 1)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from .comparison import REFERENCE, statistics
from .metrics import best_contains

STRATA = ("covered", "uncovered")
# the figures of a stratum's table: (name, statistic key, its difference from the reference, digits)
FIGURES = (("contains a gold", "contains", "diff_contains_vs_selfparam", 3), ("F1", "f1", "diff_vs_selfparam", 3),
           ("gold log-prob (nats/token)", "logprob", "diff_logprob_vs_selfparam", 2))


def is_covered(golds: Sequence[str], trained_answers: Iterable[str]) -> bool:
    """Whether some trained answer holds one of `golds` (see the module docstring)."""
    return any(best_contains(answer, golds) for answer in trained_answers)


def coverage_split(records: Iterable[dict], trained_answers: Mapping[str, Sequence[str]],
                   reference: str = REFERENCE) -> dict:
    """Per stratum (covered / uncovered): the report's statistics of each method on the stratum's questions
    (`comparison.statistics`: means, intervals over questions and contexts, paired differences from `reference`).

    `records`: a single run's predictions (`method`, `context_id`, `question`, `golds`, `prediction`, `f1`, `em`
    and, where scored, `logprob`); `trained_answers`: each context id's pair answers. A context without answers is
    an error: its questions could be put in neither stratum."""
    records = list(records)
    if any(r.get("step") is not None for r in records):
        raise ValueError("coverage_split: a single-injection run's records are expected (this one has steps)")
    missing = sorted({r["context_id"] for r in records if r["context_id"] not in trained_answers})
    if missing:
        raise ValueError(f"coverage_split: no target answers for {len(missing)} context(s), e.g. {missing[0]!r}")
    covered = {(r["context_id"], r["question"]): is_covered(r["golds"], trained_answers[r["context_id"]])
               for r in records}
    strata: dict[str, dict] = {}
    for stratum in STRATA:
        by_method: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            if covered[(r["context_id"], r["question"])] == (stratum == "covered"):
                by_method[r["method"]].append(r)
        n = sum(1 for v in covered.values() if v == (stratum == "covered"))
        strata[stratum] = {"n_questions": n, "methods": statistics(dict(sorted(by_method.items())),
                                                                   reference=reference)}
    return {"reference": reference, "n_questions": len(covered), "strata": strata}


def markdown(split: dict) -> str:
    """The split as one table: a row per stratum and method, each figure with its interval over questions and the
    difference from the reference (`level` when that interval holds 0)."""

    def cell(row: dict, key: str, diff: str, digits: int) -> str:
        if row.get(key) is None:
            return "–"
        text = f"{row[key]:.{digits}f}"
        if row.get(key + "_ci"):
            lo, hi = row[key + "_ci"]
            text += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
        if row.get(diff) is not None:
            lo, hi = row.get(diff + "_ci") or (None, None)
            text += f"; {'level ' if lo is not None and lo <= 0 <= hi else ''}{row[diff]:+.{digits}f}"
            if lo is not None:
                text += f" [{lo:+.{digits}f}, {hi:+.{digits}f}]"
        return text

    lines = ["| stratum | method | " + " | ".join(name for name, *_ in FIGURES) + " |", "|---|---|---|---|---|"]
    for stratum in STRATA:
        part = split["strata"][stratum]
        for method, row in part["methods"].items():
            cells = " | ".join(cell(row, key, diff, digits) for _, key, diff, digits in FIGURES)
            lines.append(f"| {stratum} ({part['n_questions']} q) | {method} | {cells} |")
    lines.append("")
    lines.append(f"Covered: an answer of the context's training pairs holds a gold answer. Brackets: 95% bootstrap "
                 f"intervals over questions; after ';' the paired difference from {split['reference']} on the same "
                 f"questions (intervals over contexts in coverage.json).")
    return "\n".join(lines) + "\n"
