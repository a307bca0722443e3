"""How close are the retrieval scores of two contradicting RECIPE edits, against the margin by which a question's
own edit beats every other stored edit? The figures behind `RecipeConfig.recency_tolerance` (docs/recipe.md).

    PYTHONPATH=. python scripts/recipe_recency_gaps.py                      # the editor RECIPE loads by default
    PYTHONPATH=. python scripts/recipe_recency_gaps.py --editor runs/recipe-read/editor --records 100

On the last `--records` CounterFact training records (the ones `recipe train` holds out: tuning data, never the
edit records reported on), for each record's questions (prompt and rephrase):
- conflict gap: |similarity to the fact with the new object − similarity to the fact with the true object|, the
  two facts a conflicting update stores;
- own-edit gap: similarity to the question's own fact (new object) − the best other record's fact, with all
  `--records` facts stored (positive: retrieved right);
and, for each tolerance, the share of conflicts within it (the later edit would answer) and of right
retrievals with another fact within it (a later unrelated edit would take over). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from selfparam.eval.conflicts import load_fact_cases
from selfparam.lm import load_lm
from selfparam.methods.recipe import Recipe, RecipeConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editor", help="trained editor folder (default: the one RECIPE loads)")
    parser.add_argument("--data", default="../shared/data/counterfact_recipe/counterfact-train.json")
    parser.add_argument("--records", type=int, default=100, help="the last N records of --data")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tolerances", default="0.005,0.01,0.02,0.05,0.1")
    args = parser.parse_args()
    if args.records < 2:
        raise SystemExit("--records: at least 2 (the own-edit gap needs another fact)")
    tolerances = [float(t) for t in args.tolerances.split(",")]

    recipe = Recipe(load_lm(args.model, device="cpu"), RecipeConfig(checkpoint=args.editor))
    cases = load_fact_cases(args.data)[-args.records:]

    def stored_keys(texts: list[str]) -> torch.Tensor:  # the keys `inject` stores; retrieval needs no prompts
        return recipe.editor.keys(recipe.encoder.encode(texts)).float()

    questions = [q for c in cases for q in c.questions()]
    owner = torch.tensor([i for i, c in enumerate(cases) for _ in c.questions()])
    with torch.no_grad():
        queries = recipe.editor.query(recipe.encoder.encode(questions)).float()
        new = stored_keys([c.sentence(c.new_object) for c in cases])
        true = stored_keys([c.sentence(c.true_object) for c in cases])
        conflict = ((queries * new[owner]).sum(1) - (queries * true[owner]).sum(1)).abs().numpy()
        sims = queries @ new.T
        rows = torch.arange(len(questions))
        own = sims[rows, owner]
        sims[rows, owner] = float("-inf")
        gap = (own - sims.max(dim=1).values).numpy()
    right = gap > 0
    print(json.dumps({
        "editor": args.editor or "default", "records": len(cases), "questions": len(questions),
        "conflict_gap_quantiles": dict(zip(("50", "90", "99", "max"), np.quantile(conflict, [.5, .9, .99, 1])
                                           .round(4).tolist())),
        "retrieved_right": round(float(right.mean()), 3),
        "own_gap_quantiles_when_right": dict(zip(("1", "5", "10", "50"), np.quantile(gap[right], [.01, .05, .1, .5])
                                                 .round(4).tolist())),
        "by_tolerance": {str(t): {"conflicts_within": round(float((conflict <= t).mean()), 3),
                                  "right_with_another_within": round(float((gap[right] <= t).mean()), 3)}
                         for t in tolerances},
    }, indent=1))


if __name__ == "__main__":
    main()
