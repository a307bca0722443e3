"""Milliseconds of one RECIPE edit (`Recipe.inject` of one fact sentence, as `eval lifelong` times it) with the
shipped editor, the sentence encoder's one-batch path (`SentenceTransformerEncoder.encode_batch`, the default)
against sentence-transformers' `encode` (as before), in one process, alternately.

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/recipe_edit_bench.py --edits 200 --repeats 3

Edits the first `--edits` public CounterFact edit records one by one into an empty repository each run. Prints one
JSON line per run and a last line with the median milliseconds per edit each way, `speedup` (encode / batch path),
and the largest difference between the keys and prompts the two ways stored (they must agree: the same modules
run on the same tokens).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from selfparam.lm import load_lm
from selfparam.methods.base import Context
from selfparam.methods.recipe import Recipe
from selfparam.methods.recipe.encoder import SentenceTransformerEncoder
from selfparam.methods.recipe.method import fact_text

COUNTERFACT = Path("../shared/data/counterfact_recipe/counterfact-edit-public.json")


def edit_all(recipe: Recipe, facts: list[str]) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean ms per one-fact inject into an empty repository, and the keys and prompts it stored."""
    recipe.reset()
    seconds = 0.0
    for i, fact in enumerate(facts):
        t0 = time.perf_counter()
        recipe.inject([Context(f"e{i}", fact)])
        seconds += time.perf_counter() - t0
    repo = recipe.repository
    return seconds / len(facts) * 1000, repo.keys.clone(), repo.prompts.clone()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", type=Path, default=COUNTERFACT)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lm = load_lm(args.model, device="cpu", dtype="auto")
    recipe = Recipe(lm)
    if not isinstance(recipe.encoder, SentenceTransformerEncoder):
        raise SystemExit(f"the editor's encoder is not a sentence-transformers model: {recipe.encoder.name}")
    records = json.loads(args.data.read_text(encoding="utf-8"))[:args.edits]
    facts = [fact_text(r["prompt"], r["target_new"]) for r in records]
    edit_all(recipe, facts[:20])                                      # warm-up
    ms: dict[str, list[float]] = {"encode": [], "batch": []}
    stored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for _ in range(args.repeats):
        for way in ("encode", "batch"):
            if way == "encode":  # every call through sentence-transformers' encode, as before
                recipe.encoder.encode_batch = lambda texts: recipe.encoder.model.encode(
                    list(texts), batch_size=recipe.encoder.batch_size, convert_to_tensor=True,
                    show_progress_bar=False)
            else:  # the class's own one-batch path
                vars(recipe.encoder).pop("encode_batch", None)
            mean_ms, keys, prompts = edit_all(recipe, facts)
            ms[way].append(mean_ms)
            stored[way] = (keys, prompts)
            print(json.dumps({"way": way, "edits": len(facts), "ms_per_edit": round(mean_ms, 2)}), flush=True)
    med = {w: statistics.median(v) for w, v in ms.items()}
    print(json.dumps({
        "model": lm.name, "threads": torch.get_num_threads(), "edits": len(facts), "repeats": args.repeats,
        "encode_ms_per_edit": round(med["encode"], 2), "batch_ms_per_edit": round(med["batch"], 2),
        "speedup": round(med["encode"] / med["batch"], 2),
        "max_key_difference": float((stored["encode"][0] - stored["batch"][0]).abs().max()),
        "max_prompt_difference": float((stored["encode"][1] - stored["batch"][1]).abs().max()),
    }))


if __name__ == "__main__":
    main()
