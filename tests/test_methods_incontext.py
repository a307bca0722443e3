"""Base(Q) and Base(C+Q): the shared prompt with and without the gold context, nothing stored."""

from __future__ import annotations

import pytest

from selfparam.methods.base import Context, KnowledgeMethod, Query
from selfparam.methods.incontext import BaseCQ, BaseQ
from selfparam.methods.registry import build_method
from selfparam.prompts import answer_prompt


def test_registry_builds_both_and_they_follow_the_protocol(tiny):
    for name, cls in (("base", BaseQ), ("base-cq", BaseCQ)):
        method = build_method(name, tiny)
        assert isinstance(method, cls) and isinstance(method, KnowledgeMethod)
        assert method.name == name


def test_prompts_are_the_shared_answer_prompt(tiny):
    q = Query("Who won?", context="The Broncos won the game.")
    assert BaseQ(tiny).prompt_for(q) == answer_prompt(tiny.tokenizer, "Who won?")
    assert BaseCQ(tiny).prompt_for(q) == answer_prompt(tiny.tokenizer, "Who won?", "The Broncos won the game.")
    assert "Broncos" not in BaseQ(tiny).prompt_for(q)


def test_logprob_is_asked_with_the_prompt_each_answers_with(tiny):
    """Base(Q) scores the gold after the question alone, Base(C+Q) after the question with its context."""
    from selfparam.generation import target_logprob

    q = Query("Who won?", context="The Broncos won the game.")
    alone = target_logprob(tiny, [answer_prompt(tiny.tokenizer, "Who won?")], ["The Broncos"])
    with_context = target_logprob(tiny, [answer_prompt(tiny.tokenizer, "Who won?", q.context)], ["The Broncos"])
    assert alone != pytest.approx(with_context, abs=1e-4)
    assert BaseQ(tiny).logprob([q], [" The Broncos "]) == pytest.approx(alone, abs=1e-6)  # the target is stripped
    assert BaseCQ(tiny).logprob([q], ["The Broncos"]) == pytest.approx(with_context, abs=1e-6)


def test_base_cq_needs_the_gold_context(tiny):
    with pytest.raises(ValueError, match="no gold context"):
        BaseCQ(tiny).prompt_for(Query("Who won?"))


def test_injecting_changes_nothing(tiny):
    method = BaseQ(tiny)
    q = [Query("Who won?")]
    before = method.answer(q, max_new_tokens=5)
    weights = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    method.inject([Context("c", "The Broncos won the game.")])
    assert method.answer(q, max_new_tokens=5) == before
    assert all((v == tiny.model.state_dict()[k]).all() for k, v in weights.items())
    assert method.storage_bytes() == 0


def test_save_load_round_trip_and_wrong_folder(tiny, tmp_path):
    method = BaseCQ(tiny)
    method.inject([Context("a", "x"), Context("b", "y")])
    method.save(tmp_path / "saved")
    fresh = BaseCQ(tiny)
    fresh.load(tmp_path / "saved")
    assert fresh.n_injected == 2
    with pytest.raises(ValueError, match="not 'base'"):
        BaseQ(tiny).load(tmp_path / "saved")
    with pytest.raises(FileNotFoundError):
        BaseQ(tiny).load(tmp_path / "nothing")


def test_config_is_refused(tiny):
    with pytest.raises(ValueError, match="takes no config"):
        BaseQ(tiny, config={"x": 1})
