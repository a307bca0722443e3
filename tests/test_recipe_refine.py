"""Refining an edit's prompt at edit time (`RecipeConfig.refine_steps`, recipe/refine.py) on the tiny model."""

from __future__ import annotations

import pytest
import torch
from test_recipe import tiny_editor, tiny_encoder

from selfparam.generation import target_logprob
from selfparam.methods.base import Context
from selfparam.methods.recipe import Recipe, RecipeConfig
from selfparam.methods.recipe.refine import fact_splits, refine_prompt
from selfparam.prompts import answer_prompt

FACT = "The mother tongue of Danielle Darrieux is English"


def _completion_logprob(lm, fact: str, prompt: torch.Tensor, splits: int) -> float:
    pairs = fact_splits(fact, splits)
    return sum(target_logprob(lm, [answer_prompt(lm.tokenizer, q)], [a], prompts=prompt.unsqueeze(0),
                              has_prompt=torch.tensor([True]))[0] for q, a in pairs) / len(pairs)


def test_fact_splits():
    assert fact_splits("Paris is in France", 2) == [("Paris is in", "France"), ("Paris is", "in France")]
    assert fact_splits("Paris is in France", 9) == fact_splits("Paris is in France", 3)  # the question never empty
    assert fact_splits("Paris", 4) == []


def test_refined_prompt_completes_its_fact_better_and_leaves_the_model_as_it_was(tiny):
    torch.manual_seed(0)
    start = 0.02 * torch.randn(3, tiny.model.config.hidden_size)
    flags = [p.requires_grad for p in tiny.model.parameters()]
    weights = [p.detach().clone() for p in tiny.model.parameters()]
    refined = refine_prompt(tiny, FACT, start, steps=30, lr=0.05, max_splits=2)
    assert refined.shape == start.shape and refined.dtype == start.dtype and not refined.requires_grad
    # the random tiny model barely listens to its input, so the gain is small, but it is there
    assert _completion_logprob(tiny, FACT, refined, 2) > _completion_logprob(tiny, FACT, start, 2) + 1e-3
    assert [p.requires_grad for p in tiny.model.parameters()] == flags
    assert all(torch.equal(p, w) for p, w in zip(tiny.model.parameters(), weights))  # only the prompt moved
    assert torch.equal(refine_prompt(tiny, FACT, start, steps=0, lr=0.05, max_splits=2), start)
    assert torch.equal(refine_prompt(tiny, "English", start, steps=5, lr=0.05, max_splits=2), start)  # no split


def test_recipe_refines_the_stored_prompt_and_not_the_key(tiny):
    enc = tiny_encoder()
    stored = {}
    for steps in (0, 10):
        r = Recipe(tiny, RecipeConfig(refine_steps=steps, refine_lr=0.05), editor=tiny_editor(tiny, enc), encoder=enc)
        r.inject([Context("e1", FACT)])
        stored[steps] = (r.repository.keys.clone(), r.repository.prompts.clone())
    assert torch.equal(stored[0][0], stored[10][0])  # retrieval is untouched
    assert not torch.allclose(stored[0][1], stored[10][1])
    assert (_completion_logprob(tiny, FACT, stored[10][1][0], 4) > _completion_logprob(tiny, FACT, stored[0][1][0], 4))


def test_a_duplicate_edit_is_refused_before_any_refining(tiny, monkeypatch):
    enc = tiny_encoder()
    r = Recipe(tiny, RecipeConfig(refine_steps=1), editor=tiny_editor(tiny, enc), encoder=enc)
    r.inject([Context("e1", FACT)])
    from selfparam.methods.recipe import method as method_module

    def no_refining(*args, **kwargs):
        raise AssertionError("refined a duplicate")

    monkeypatch.setattr(method_module, "refine_prompt", no_refining)
    with pytest.raises(ValueError, match="duplicate"):
        r.inject([Context("e2", FACT)])
    assert r.repository.ids == ["e1"]


@pytest.mark.parametrize("field, value", [("refine_steps", -1), ("refine_steps", True), ("refine_steps", 1.5),
                                          ("refine_lr", 0), ("refine_splits", 0), ("refine_splits", 2.0)])
def test_refine_settings_are_validated(field, value):
    with pytest.raises(ValueError, match=field):
        RecipeConfig(**{field: value})
