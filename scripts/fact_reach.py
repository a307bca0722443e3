"""How far the fact questions' rules reach on SQuAD, text only (no model): for each question, whether an answer span
of its paragraph holds a gold answer, and whether such a span's cloze question is usable.

    PYTHONPATH=. python scripts/fact_reach.py ../shared/data/squad_v1.1/dev-v1.1-public.json --articles 1-16 \
        [--spans wide] [--pronouns name] [--out runs/reach.json]

Each question falls in the first of: `cloze passes` (a span holding a gold has a cloze with no problem, the pair a
fact set asks first), `only pronoun clozes` (every such span's cloze leans on a pronoun with no name before it:
dropped under `--pronouns drop`, the default), `other drops` (the clozes have another problem, or none can be
built), `no span` (no span holds a gold). The model's own phrasings are not counted: they rarely pass the teacher.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from selfparam.atomic import atomic_write_text
from selfparam.eval.loaders import load_squad, parse_articles
from selfparam.eval.metrics import best_contains
from selfparam.targets.config import FACT_PRONOUNS, FACT_SPANS
from selfparam.targets.fact_questions import fact_cloze
from selfparam.targets.facts import extract_facts, opening_names

CATEGORIES = ("cloze passes", "only pronoun clozes", "other drops", "no span")


def reach(data: Path, articles: tuple[int, ...] | None, spans: str = "rules", pronouns: str = "drop") -> dict:
    """Questions per category (`CATEGORIES`), with the paragraphs' mean span count."""
    counts: Counter = Counter()
    n_spans = n_paragraphs = 0
    for item in load_squad(data, articles):
        facts = extract_facts(item.context.text, wide=spans == "wide")
        openings = opening_names(item.context.text) if pronouns == "name" else None
        clozes = [(fact, *fact_cloze(fact, openings)[:2]) for fact in facts]
        n_spans, n_paragraphs = n_spans + len(facts), n_paragraphs + 1
        for qa in item.questions:
            holding = [(q, problem) for fact, q, problem in clozes if best_contains(fact.answer, qa.answers)]
            if not holding:
                counts["no span"] += 1
            elif any(q is not None and problem is None for q, problem in holding):
                counts["cloze passes"] += 1
            elif any(problem == "pronoun" for _, problem in holding):
                counts["only pronoun clozes"] += 1
            else:
                counts["other drops"] += 1
    total = sum(counts.values())
    return {"data": str(data), "articles": list(articles) if articles else None, "spans": spans, "pronouns": pronouns,
            "questions": total, "paragraphs": n_paragraphs, "spans_per_paragraph": round(n_spans / n_paragraphs, 2),
            "counts": {c: counts[c] for c in CATEGORIES},
            "shares": {c: round(counts[c] / total, 4) for c in CATEGORIES}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="SQuAD v1.1 JSON")
    parser.add_argument("--articles", help="article numbers, e.g. 1-16 (default: all)")
    parser.add_argument("--spans", choices=FACT_SPANS, default="rules")
    parser.add_argument("--pronouns", choices=FACT_PRONOUNS, default="drop")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    result = reach(args.data, parse_articles(args.articles) if args.articles else None, args.spans, args.pronouns)
    print(f"{result['questions']} questions, {result['paragraphs']} paragraphs, {result['spans_per_paragraph']} spans "
          f"each (spans={args.spans}, pronouns={args.pronouns})")
    for c in CATEGORIES:
        print(f"  {c:<20} {result['counts'][c]:>6}  {100 * result['shares'][c]:5.1f}%")
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
