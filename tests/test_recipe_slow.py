"""RECIPE on the real embedded model and encoder (slow tier): the plumbing holds at full size."""

from __future__ import annotations

import json

import pytest
import torch

from selfparam.generation import generate, target_token_accuracy
from selfparam.methods.base import Context, Query
from selfparam.methods.recipe import EditorConfig, Recipe, RecipeConfig, RecipeEditor
from selfparam.methods.recipe.encoder import load_encoder
from selfparam.prompt_vectors import prompted_logits
from selfparam.prompts import answer_prompt


@pytest.mark.slow
def test_recipe_on_smollm2_matches_base_until_retrieval(embedded_lm):
    encoder = load_encoder("all-minilm-l6-v2")
    torch.manual_seed(0)
    editor = RecipeEditor(EditorConfig(), encoder.dim, 576, prompt_scale=0.5, llm_name=embedded_lm.name).eval()
    recipe = Recipe(embedded_lm, RecipeConfig(), editor=editor, encoder=encoder)
    q = [Query("The mother tongue of Danielle Darrieux is")]
    prompt = answer_prompt(embedded_lm.tokenizer, q[0].question)
    base = generate(embedded_lm, [prompt], max_new_tokens=6)
    assert recipe.answer(q, max_new_tokens=6) == base
    assert recipe.score(q, ["English"]) == target_token_accuracy(embedded_lm, [prompt], ["English"])
    recipe.inject([Context("e1", "The mother tongue of Danielle Darrieux is English")])
    with torch.no_grad():  # make the sentinel lose for this query: its prompt is used
        r = recipe.editor.query(encoder.encode([q[0].question]))[0]
        recipe.editor.sentinel.copy_(-r)
    assert recipe.retrieved_ids([q[0].question]) == ["e1"]
    # the retrieved prompt reaches the model: the next-token distribution after the question moves
    prompts, index = recipe.retrieve([q[0].question])
    enc = embedded_lm.tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.no_grad(), embedded_lm.autocast():
        plain = prompted_logits(embedded_lm, ids, mask, None, None)[0, -1].float()
        edited = prompted_logits(embedded_lm, ids, mask, prompts, index >= 0)[0, -1].float()
    assert (plain.softmax(-1) - edited.softmax(-1)).abs().sum() > 1e-3
    with pytest.raises(ValueError, match="hidden size 576"):
        Recipe(embedded_lm, RecipeConfig(), editor=RecipeEditor(EditorConfig(), encoder.dim, 32), encoder=encoder)


@pytest.mark.slow
def test_the_shipped_editor_is_found_by_default_and_carries_held_out_edits(embedded_lm, shared_data, monkeypatch):
    """A fresh install edits with no training: the editor inside the package is the default, and on
    CounterFact edits it never saw in training it retrieves most edits for their own prompts, nothing for
    unrelated ones, and a retrieved edit makes its new object more likely than the unedited model does."""
    from selfparam.eval.editing_data import load_edits
    from selfparam.methods.recipe import default_checkpoint, shipped_checkpoint

    monkeypatch.delenv("SELFPARAM_RECIPE_CHECKPOINT", raising=False)
    shipped = shipped_checkpoint(embedded_lm.name)
    assert default_checkpoint(embedded_lm.name) == shipped
    training = json.loads((shipped / "editor.json").read_text())["training"]
    assert training["steps"] > 0 and training["data"]["records"] > 0 and training["commit"]

    edits = load_edits(shared_data / "counterfact_recipe/counterfact-edit-public.json", limit=20)
    recipe = Recipe(embedded_lm, RecipeConfig())
    queries = [Query(e.prompt) for e in edits]
    before = recipe.logprob(queries, [e.target for e in edits])
    recipe.inject([Context(e.id, e.fact) for e in edits])
    own = recipe.retrieved_ids([e.prompt for e in edits])
    unrelated = recipe.retrieved_ids([e.locality_prompt for e in edits])
    after = recipe.logprob(queries, [e.target for e in edits])
    hits = [i == e.id for i, e in zip(own, edits)]
    # the editor carries its calibrated sentinel margins (0.102 for up to 100 stored, under which held-out retrieval
    # is 95%, 64% under the paper's rule; docs/recipe.md); with the margin of 500 stored (0.049) it retrieved 16 of
    # these 20, the paper's rule 14
    assert recipe.sentinel_margin > 0 and sum(hits) >= 12
    assert sum(i is None for i in unrelated) >= 18  # the sentinel wins for unrelated prompts (98% held out)
    # where its own edit is retrieved, the prompt makes the new object more likely, almost every time (16 of 16
    # here, by 6.3 nats/token on average; 15 of 16 by 4.9 with the editor shipped before); where nothing is
    # retrieved, the model is the plain model
    gains = [a - b for a, b, hit in zip(after, before, hits) if hit]
    assert sum(g > 0 for g in gains) >= 0.9 * len(gains) and sum(gains) / len(gains) > 2.0
    assert all(a == pytest.approx(b, abs=1e-4) for a, b, i in zip(after, before, own) if i is None)
