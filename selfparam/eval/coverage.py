"""Which questions a context's target set covers, and how each method answers the two kinds.

A question is *covered* when an answer of the pairs its context was trained on holds one of the question's gold
answers (whole words after SQuAD's normalisation, `metrics.best_contains`): the fact it asks was a training target.
Splitting a recorded single-injection run this way separates two things a method's mean mixes: how well it learns
the facts it was shown, and what it does for a fact no pair names. Next-token fine-tuning on the pairs (FT(S)) and
distillation of a teacher that reads the whole context (SELF-PARAM) differ most on the second.

    >>> records = [{"method": "m", "context_id": "c", "question": "q1", "golds": ["Paris"], "prediction": "Paris",
    ...             "f1": 1.0, "logprob": -0.5},
    ...            {"method": "m", "context_id": "c", "question": "q2", "golds": ["1887"], "prediction": "no",
    ...             "f1": 0.0, "logprob": -3.0}]
    >>> split = coverage_split(records, {"c": ["The capital is Paris"]})
    >>> split["strata"]["covered"]["methods"]["m"]["contains"]["mean"], split["strata"]["uncovered"]["n_questions"]
    (1.0, 1)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping, Sequence

from .metrics import best_contains
from .stats import mean_ci, paired_difference

FIGURES = ("contains", "f1", "logprob")
STRATA = ("covered", "uncovered")


def is_covered(golds: Sequence[str], trained_answers: Iterable[str]) -> bool:
    """Whether some trained answer holds one of `golds` (see the module docstring)."""
    return any(best_contains(answer, golds) for answer in trained_answers)


def _figure(record: dict, figure: str) -> float | None:
    if figure == "contains":
        return best_contains(record["prediction"], record["golds"])
    value = record.get(figure)
    return None if value is None else float(value)


def coverage_split(records: Iterable[dict], trained_answers: Mapping[str, Sequence[str]],
                   reference: str = "selfparam") -> dict:
    """Per stratum (covered / uncovered) and method: each figure's mean with its bootstrap interval over questions,
    and the paired difference from `reference` (where both answered the stratum's questions), as a JSON object.

    `records`: a single run's predictions (`method`, `context_id`, `question`, `golds`, `prediction`, `f1` and,
    where scored, `logprob`); `trained_answers`: each context id's pair answers. A context without answers is an
    error: its questions could be put in neither stratum."""
    by_question: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for r in records:
        if r.get("step") is not None:
            raise ValueError("coverage_split: a single-injection run's records are expected (this one has steps)")
        by_question[(r["context_id"], r["question"])][r["method"]] = r
    missing = sorted({cid for cid, _ in by_question if cid not in trained_answers})
    if missing:
        raise ValueError(f"coverage_split: no target answers for {len(missing)} context(s), e.g. {missing[0]!r}")
    methods = sorted({m for rows in by_question.values() for m in rows})
    strata: dict[str, dict] = {}
    for stratum in STRATA:
        keys = [k for k, rows in by_question.items()
                if is_covered(next(iter(rows.values()))["golds"], trained_answers[k[0]]) == (stratum == "covered")]
        table: dict[str, dict] = {}
        for method in methods:
            row: dict[str, dict] = {}
            for figure in FIGURES:
                values = [_figure(by_question[k][method], figure) for k in keys if method in by_question[k]]
                values = [v for v in values if v is not None]
                if not values:
                    continue
                estimate = mean_ci(values)
                row[figure] = {"mean": estimate.value, "ci": estimate.ci}
                if method != reference and reference in methods:
                    both = [k for k in keys if method in by_question[k] and reference in by_question[k]]
                    pairs = [(_figure(by_question[k][method], figure), _figure(by_question[k][reference], figure))
                             for k in both]
                    pairs = [p for p in pairs if None not in p]
                    if pairs:
                        diff = paired_difference([a for a, _ in pairs], [b for _, b in pairs])
                        row[figure]["minus_reference"] = {"mean": diff.value, "ci": diff.ci}
            table[method] = row
        strata[stratum] = {"n_questions": len(keys), "methods": table}
    return {"reference": reference, "n_questions": len(by_question), "strata": strata}


def markdown(split: dict) -> str:
    """The split as one table: a row per stratum and method, each figure with its interval and the difference
    from the reference (`level` when that interval holds 0)."""

    def cell(entry: dict | None, digits: int) -> str:
        if entry is None:
            return "–"
        text = f"{entry['mean']:.{digits}f}"
        if entry.get("ci"):
            text += f" [{entry['ci'][0]:.{digits}f}, {entry['ci'][1]:.{digits}f}]"
        diff = entry.get("minus_reference")
        if diff is not None:
            lo, hi = diff["ci"] or (None, None)
            level = lo is not None and lo <= 0 <= hi
            text += f"; {'level ' if level else ''}{diff['mean']:+.{digits}f}"
            if lo is not None:
                text += f" [{lo:+.{digits}f}, {hi:+.{digits}f}]"
        return text

    lines = ["| stratum | method | contains a gold | F1 | gold log-prob (nats/token) |", "|---|---|---|---|---|"]
    for stratum in STRATA:
        part = split["strata"][stratum]
        for method, row in part["methods"].items():
            lines.append(f"| {stratum} ({part['n_questions']} q) | {method} | {cell(row.get('contains'), 3)} | "
                         f"{cell(row.get('f1'), 3)} | {cell(row.get('logprob'), 2)} |")
    lines.append("")
    lines.append(f"Covered: an answer of the context's training pairs holds a gold answer. Brackets: 95% bootstrap "
                 f"intervals over questions; after ';' the paired difference from {split['reference']} on the same "
                 f"questions.")
    return "\n".join(lines) + "\n"
