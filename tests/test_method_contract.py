"""The protocol every registered method keeps, on the tiny model: reset restores the base model, save -> load
gives the same answers and gold log-probabilities, and `storage_bytes` says where the knowledge lives."""

import pytest
import torch

from selfparam.methods.base import Context, KnowledgeMethod, Query, Resources
from selfparam.methods.registry import METHODS, build_method, config_class
from selfparam.targets import TargetConfig
from selfparam.targets.types import QAPair, TargetSet
from selfparam.training import TrainConfig

CONTEXTS = [Context("a", "Quenby hosts the Zorblat festival every May."),
            Context("b", "Glass boats race on the river Ell each June.")]
QUERIES = [Query("When is the Zorblat festival?", CONTEXTS[0].text),
           Query("Where do glass boats race?", CONTEXTS[1].text)]
GOLDS = ["Every May.", "On the river Ell."]


def targets(context: str) -> TargetSet:
    return TargetSet(context, [QAPair("When is the festival?", "Every May."), QAPair("Which river?", "The Ell.")],
                     unrelated=["The cat sat on the mat."])


def make(name, tiny):
    if name == "recipe":  # needs a trained editor: the tiny one the RECIPE tests build
        from test_recipe import tiny_editor, tiny_encoder

        from selfparam.methods.recipe import Recipe, RecipeConfig

        enc = tiny_encoder()
        return Recipe(tiny, RecipeConfig(batch_size=4), editor=tiny_editor(tiny, enc), encoder=enc)
    cls = config_class(name)
    config = cls(train=TrainConfig(epochs=2, batch_size=2, lr=5e-2)) if cls and "train" in cls.__dataclass_fields__ \
        else None
    # n_pairs: the 2 pairs `targets` gives; FT(C) repeats each context to that many sequences (its SELF-PARAM
    # step budget), where the default 50 would train it for 100 steps to show what 4 show
    resources = Resources(target_builder=targets, targets=TargetConfig(n_pairs=2, answers="generator"), seed=0)
    return build_method(name, tiny, config, resources, progress=False)


def base_logits(model, tiny) -> torch.Tensor:
    ids = tiny.tokenizer("Question: When is the festival?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("name", list(METHODS))
def test_protocol(name, tiny, tmp_path, monkeypatch):
    import selfparam.methods.finetune.method as finetune

    # the random tiny model answers nothing: ft-s-teacher's teacher writes fixed answers instead
    monkeypatch.setattr(finetune, "reanswer", lambda teacher, ts: TargetSet(
        ts.context, [QAPair(p.question, "Taught answer.", p.answer) for p in ts.pairs], list(ts.unrelated)))
    method = make(name, tiny)
    assert isinstance(method, KnowledgeMethod)
    before = method.answer(QUERIES, max_new_tokens=4)
    logprob_before = method.logprob(QUERIES, GOLDS)
    assert len(logprob_before) == 2 and all(-100 < v < 0 for v in logprob_before)
    method.inject(CONTEXTS)
    weights = getattr(method, "weights", None)
    if weights is not None:  # the knowledge is in the weights: they changed, and nothing is kept beside them
        assert not torch.equal(base_logits(method.lm.model, tiny), base_logits(tiny.model, tiny))
        assert method.storage_bytes() == 0
    elif name.startswith("base"):
        assert method.storage_bytes() == 0
    else:
        assert method.storage_bytes() > 0  # retrieval and RECIPE keep what they stored beside the model
    injected = method.answer(QUERIES, max_new_tokens=4)
    logprob_injected = method.logprob(QUERIES, GOLDS)
    if weights is not None:  # asked the way it answers: with the changed weights
        assert logprob_injected != pytest.approx(logprob_before, abs=1e-4)
    method.save(tmp_path / name)

    loaded = make(name, tiny)
    loaded.load(tmp_path / name)
    assert loaded.answer(QUERIES, max_new_tokens=4) == injected
    assert loaded.logprob(QUERIES, GOLDS) == pytest.approx(logprob_injected, abs=1e-4)
    if weights is not None:
        assert torch.allclose(base_logits(loaded.lm.model, tiny), base_logits(method.lm.model, tiny), atol=1e-5)

    method.reset()
    assert method.answer(QUERIES, max_new_tokens=4) == before
    assert method.logprob(QUERIES, GOLDS) == pytest.approx(logprob_before, abs=1e-5)
    assert method.storage_bytes() == 0
    if weights is not None:
        assert torch.equal(base_logits(method.lm.model, tiny), base_logits(tiny.model, tiny))


@pytest.mark.parametrize("progress", [False, True])
def test_built_quiet_a_weight_method_draws_no_bars(progress, tiny, capsys):
    """`--no-progress` reaches the bars a method draws itself (teacher, training steps), not only the harness's."""
    cls = config_class("selfparam")
    resources = Resources(target_builder=targets, targets=TargetConfig(n_pairs=2, answers="generator"), seed=0)
    method = build_method("selfparam", tiny, cls(train=TrainConfig(epochs=1, batch_size=2)), resources,
                          progress=progress)
    method.inject(CONTEXTS[:1])
    err = capsys.readouterr().err
    assert ("train:" in err) == progress and ("teacher:" in err) == progress
