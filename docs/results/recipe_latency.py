"""Answer latency with and without the RECIPE editor, interleaved so load swings hit both alike.

HF_HUB_OFFLINE=1 .venv/bin/python docs/results/recipe_latency.py runs/recipe-smollm2/editor > docs/results/recipe_latency.json
"""
import json
import sys
import time

from selfparam.eval.editing_data import load_edits
from selfparam.generation import generate
from selfparam.lm import load_lm
from selfparam.methods.base import Context, Query
from selfparam.methods.recipe import Recipe, RecipeConfig
from selfparam.prompts import answer_prompt

lm = load_lm("smollm2-135m", device="cpu")
edits = load_edits("../shared/data/counterfact_recipe/counterfact-edit-public.json", limit=1000)
recipe = Recipe(lm, RecipeConfig(checkpoint=sys.argv[1]))
t = time.perf_counter()
recipe.inject([Context(e.id, e.fact) for e in edits])
batch_ms = (time.perf_counter() - t) * 1000 / len(edits)
queries = [Query(e.prompt) for e in edits[:16]]
texts = [answer_prompt(lm.tokenizer, q.question) for q in queries]
plain, edited = [], []
for _ in range(3):
    t = time.perf_counter(); generate(lm, texts, max_new_tokens=8); plain.append((time.perf_counter() - t) * 1000 / 16)
    t = time.perf_counter(); recipe.answer(queries, max_new_tokens=8); edited.append((time.perf_counter() - t) * 1000 / 16)
t = time.perf_counter(); recipe.retrieve([q.question for q in queries]); retrieve_ms = (time.perf_counter() - t) * 1000 / 16
print(json.dumps({"edits_stored": len(recipe.repository), "edit_ms_batched_1000": batch_ms,
                  "answer_ms_per_query_plain": min(plain), "answer_ms_per_query_recipe": min(edited),
                  "retrieve_ms_per_query": retrieve_ms, "runs": {"plain": plain, "recipe": edited},
                  "queries": 16, "max_new_tokens": 8, "batch_size": 16}, indent=2))
