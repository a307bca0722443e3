"""Paired comparisons of recorded `eval conflicts` / `eval boundary` / `eval lifelong` runs: one method of one
run against a reference, on the answers both gave to the same questions (the same records, order and
question; the same item, probe kind and question; the same edit after the same number of edits), with a
bootstrap interval over those answers.

A run's answers are its `predictions.jsonl`; two runs with the same data, `--n` and `--seed` ask the same
questions, so a setting turned on in one of them (say `reask`) is compared answer by answer. Lifelong runs
score each edit again after each edit count, so their figures are compared at one count (`edits=100`).

    >>> rows = [{"method": "m", "id": "a", "order": "o", "question": "q", "outcome": "later_wins"}]
    >>> figure_values(rows, "m", "later_wins")
    {('a', 'o', 'q'): 1.0}
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..jsonl import read_jsonl
from .stats import mean_ci, paired_difference

# figure -> (which rows it counts, the value of a row); rows are keyed by what identifies the question
FIGURES: dict[str, tuple[Callable[[dict], bool], Callable[[dict], float]]] = {
    "later_wins": (lambda r: "outcome" in r, lambda r: float(r["outcome"] == "later_wins")),
    "earlier_kept": (lambda r: "outcome" in r, lambda r: float(r["outcome"] == "earlier_kept")),
    "efficacy": (lambda r: r.get("kind") == "true", lambda r: float(r["carries"])),
    "pollution": (lambda r: "kind" in r and r["kind"] != "true", lambda r: float(r["carries"])),
    # what the method's own model said with the fact in the prompt (methods that read a context): compared with
    # another method's figure on the same questions, e.g. SELF-PARAM's pollution against its teacher's reading
    "reading_later_wins": (lambda r: "reading_outcome" in r, lambda r: float(r["reading_outcome"] == "later_wins")),
    "reading_efficacy": (lambda r: r.get("kind") == "true" and "reading_carries" in r,
                         lambda r: float(r["reading_carries"])),
    "reading_pollution": (lambda r: "kind" in r and r["kind"] != "true" and "reading_carries" in r,
                          lambda r: float(r["reading_carries"])),
}
# lifelong runs: a row per edit and edit count, teacher-forced accuracies and greedy hits (bools)
LIFELONG_FIGURES = ("reliability", "generality", "locality",
                    "greedy_reliability", "greedy_generality", "greedy_locality")
FIGURES.update({name: (lambda r, n=name: "edits" in r and r.get(n) is not None, lambda r, n=name: float(r[n]))
                for name in LIFELONG_FIGURES})


def _key(row: dict) -> tuple:
    if "edits" in row:  # lifelong: the edit, scored after `edits` edits
        return (row["id"], row["edits"])
    return (row["id"], row.get("order", row.get("kind")), row["question"])


def figure_values(rows: Sequence[dict], method: str, figure: str, edits: int | None = None) -> dict[tuple, float]:
    """{question key: value} of `figure` for `method`'s rows; `edits` keeps a lifelong run's rows scored after
    that many edits (a lifelong figure needs it: the same edit is scored again at every count)."""
    if figure not in FIGURES:
        raise ValueError(f"figure: {figure!r} is not one of {', '.join(FIGURES)}")
    if (figure in LIFELONG_FIGURES) != (edits is not None):
        raise ValueError(f"{figure}: " + ("a lifelong figure is compared at one edit count (edits=N)"
                                          if edits is None else "edits=N applies only to lifelong figures"))
    counts, value = FIGURES[figure]
    out = {_key(r): value(r) for r in rows
           if r.get("method") == method and counts(r) and (edits is None or r["edits"] == edits)}
    if not out:
        at = "" if edits is None else f" after {edits} edits"
        raise ValueError(f"no {figure} answers of method {method!r}{at} in these predictions")
    return out


def load_predictions(run: str | Path) -> list[dict]:
    path = Path(run) / "predictions.jsonl"
    if not path.is_file():
        raise ValueError(f"{run}: no predictions.jsonl (not a recorded conflicts/boundary/lifelong run)")
    return [row for _, row in read_jsonl(path)]


def compare(reference: dict[tuple, float], other: dict[tuple, float]) -> dict:
    """`other` − `reference` on the questions both answered: means, the paired difference and its interval."""
    shared = sorted(set(reference) & set(other))
    if not shared:
        raise ValueError("the two runs share no question: compare runs with the same data, --n and --seed")
    a, b = [other[k] for k in shared], [reference[k] for k in shared]
    value, diff = mean_ci(a), paired_difference(a, b)
    return {"questions": len(shared), "value": value.value, "value_ci": value.ci,
            "reference": sum(b) / len(b), "difference": diff.value, "difference_ci": diff.ci}
