"""Paired comparisons of recorded `eval conflicts` / `eval boundary` runs: one method of one run against a
reference, on the answers both gave to the same questions (the same records, order and question, or the
same item, probe kind and question), with a bootstrap interval over those answers.

A run's answers are its `predictions.jsonl`; two runs with the same data, `--n` and `--seed` ask the same
questions, so a setting turned on in one of them (say `reask`) is compared answer by answer.

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
}


def _key(row: dict) -> tuple:
    return (row["id"], row.get("order", row.get("kind")), row["question"])


def figure_values(rows: Sequence[dict], method: str, figure: str) -> dict[tuple, float]:
    """{question key: value} of `figure` for `method`'s rows."""
    if figure not in FIGURES:
        raise ValueError(f"figure: {figure!r} is not one of {', '.join(FIGURES)}")
    counts, value = FIGURES[figure]
    out = {_key(r): value(r) for r in rows if r.get("method") == method and counts(r)}
    if not out:
        raise ValueError(f"no {figure} answers of method {method!r} in these predictions")
    return out


def load_predictions(run: str | Path) -> list[dict]:
    path = Path(run) / "predictions.jsonl"
    if not path.is_file():
        raise ValueError(f"{run}: no predictions.jsonl (not a recorded conflicts/boundary run)")
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
