"""The trainer and the weight-update methods on the tiny random model: batching, persistence, merging."""


import pytest
import torch
from transformers import AutoModelForCausalLM

from selfparam.injections import export_merged, load_injection
from selfparam.lm import LM
from selfparam.methods.base import Context, Resources
from selfparam.methods.finetune import FineTuneContext, FineTuneContextConfig, FineTuneTargets, FineTuneTargetsConfig
from selfparam.methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from selfparam.methods.selfparam.method import context_examples
from selfparam.targets.types import QAPair, TargetSet
from selfparam.testing import tiny_lm
from selfparam.training import AdapterConfig, TrainConfig
from selfparam.training.batching import scored_logprobs
from selfparam.training.examples import Example, distillation_examples, encode
from selfparam.training.losses import kl_compact
from selfparam.training.teacher import teacher_pass

CONTEXT = "Quenby hosts the Zorblat festival every May."


def fixed_targets(context: str) -> TargetSet:
    return TargetSet(context=context, pairs=[QAPair("When is the festival?", "Every May."),
                                             QAPair("Where is the Zorblat festival?", "In Quenby.")],
                     unrelated=["The cat sat on the mat.", "Rivers flow into the sea."], generator="fixed")


def fast_config(**train) -> SelfParamConfig:
    cfg = SelfParamConfig(targets=TargetConfig(answers="generator"))  # a random model is no teacher to answer with
    cfg.train = TrainConfig(**{"epochs": 2, "batch_size": 2, "lr": 1e-2, **train})
    return cfg


def make_selfparam(tiny, **train) -> SelfParam:
    return SelfParam(tiny, fast_config(**train), Resources(target_builder=fixed_targets), progress=False)


def logits(lm_or_model, tokenizer, text="Question: When is the festival?") -> torch.Tensor:
    model = lm_or_model.model if isinstance(lm_or_model, LM) else lm_or_model
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return model(**ids).logits.float()


def test_left_padded_batch_scores_like_single_sequences(tiny):
    examples = [Example("abc", "de"), Example("a much longer prefix here", "xyz!"), Example("", "hello")]
    encoded = [encode(tiny.tokenizer, e, tiny.max_length) for e in examples]
    with torch.no_grad():
        batch_logp, mask = scored_logprobs(tiny.model, tiny, [e.student_ids for e in encoded],
                                           [e.n_scored for e in encoded])
        for row, e in enumerate(encoded):
            alone, _ = scored_logprobs(tiny.model, tiny, [e.student_ids], [e.n_scored])
            assert mask[row].sum() == e.n_scored
            assert torch.allclose(batch_logp[row, mask[row]], alone[0], atol=1e-4)


def test_empty_student_prefix_scores_all_but_the_first_token(tiny):
    e = encode(tiny.tokenizer, Example("", "hello"), tiny.max_length)
    assert e.n_scored == len("hello") - 1
    assert encode(tiny.tokenizer, Example("x", "hello"), tiny.max_length).n_scored == len("hello")


def test_too_long_example_is_rejected(tiny):
    with pytest.raises(ValueError, match="window"):
        encode(tiny.tokenizer, Example("p", "x" * 600), tiny.max_length)


def test_teacher_pass_keeps_topk_of_the_context_conditioned_model(tiny):
    ex = distillation_examples(tiny.tokenizer, fixed_targets(CONTEXT))
    encoded = [encode(tiny.tokenizer, e, tiny.max_length) for e in ex]
    teachers = teacher_pass(tiny, encoded, top_k=5, batch_size=3, progress=False)
    for e, t in zip(encoded, teachers):
        assert t.topk_logp.shape == (e.n_scored, 5)
        full, _ = scored_logprobs(tiny.model, tiny, [e.teacher_ids], [e.n_scored])
        assert torch.allclose(t.topk_logp, full[0].topk(5).values, atol=1e-4)


def test_distillation_lowers_the_kl_to_the_teacher():
    # larger random weights than the default, so the context really changes the next-token distributions
    tiny = tiny_lm(seed=0, initializer_range=0.3)
    # the method's own objective: its default teacher of the unrelated sentences
    cfg = fast_config()
    ex = context_examples(tiny.tokenizer, fixed_targets(CONTEXT), cfg)
    encoded = [encode(tiny.tokenizer, e, tiny.max_length) for e in ex]
    teachers = teacher_pass(tiny, encoded, top_k=16, progress=False)

    def kl_now(model) -> float:
        total = 0.0
        with torch.no_grad():
            for e, t in zip(encoded, teachers):
                logp, _ = scored_logprobs(model, tiny, [e.student_ids], [e.n_scored])
                total += kl_compact(t.topk_logp, t.topk_ids, t.rest_logp, logp[0]).mean().item()
        return total / len(encoded)

    before = kl_now(tiny.model)
    method = make_selfparam(tiny, epochs=8)
    method.inject([Context("c", CONTEXT)])
    assert kl_now(method.lm.model) < 0.5 * before


def test_inject_leaves_the_shared_base_model_untouched_and_reset_restores_it(tiny):
    reference = logits(tiny, tiny.tokenizer)
    method = make_selfparam(tiny)
    method.inject([Context("c", CONTEXT)])
    assert not torch.allclose(logits(method.lm, tiny.tokenizer), reference)
    assert torch.equal(logits(tiny, tiny.tokenizer), reference)
    method.reset()
    assert torch.equal(logits(method.lm, tiny.tokenizer), reference)
    assert method.storage_bytes() == 0


def test_merged_model_keeps_the_base_architecture(tiny):
    method = make_selfparam(tiny)
    method.inject([Context("c", CONTEXT)])
    assert type(method.lm.model) is type(tiny.model)
    assert sum(p.numel() for p in method.lm.model.parameters()) == sum(p.numel() for p in tiny.model.parameters())


def test_same_seed_same_weights(tiny):
    a, b = make_selfparam(tiny), make_selfparam(tiny)
    a.inject([Context("c", CONTEXT)])
    b.inject([Context("c", CONTEXT)])
    assert torch.equal(logits(a.lm, tiny.tokenizer), logits(b.lm, tiny.tokenizer))


def test_save_then_load_gives_identical_logits(tiny, tmp_path):
    method = make_selfparam(tiny)
    method.inject([Context("c", CONTEXT)])
    method.save(tmp_path / "inj")
    assert (tmp_path / "inj" / "updates" / "0001" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "inj" / "updates" / "0001" / "adapter_config.json").is_file()
    _, loaded = load_injection(tmp_path / "inj", lm=tiny)
    assert torch.allclose(logits(loaded.lm, tiny.tokenizer), logits(method.lm, tiny.tokenizer), atol=1e-5)


def test_sequential_updates_merge_and_replay_in_order(tiny, tmp_path):
    method = make_selfparam(tiny)
    method.inject([Context("c1", CONTEXT)])
    after_one = logits(method.lm, tiny.tokenizer)
    method.inject([Context("c2", "The Silver Gull trophy goes to the winning crew.")])
    assert len(method.records) == 2
    assert not torch.allclose(logits(method.lm, tiny.tokenizer), after_one)
    method.save(tmp_path / "seq")
    _, loaded = load_injection(tmp_path / "seq", lm=tiny)
    assert [r.manifest["step"] for r in loaded.records] == [1, 2]
    assert torch.allclose(logits(loaded.lm, tiny.tokenizer), logits(method.lm, tiny.tokenizer), atol=1e-5)


def test_export_loads_in_plain_transformers_with_identical_logits(tiny, tmp_path):
    method = make_selfparam(tiny)
    method.inject([Context("c", CONTEXT)])
    method.save(tmp_path / "inj")
    export_merged(tmp_path / "inj", tmp_path / "hf", lm=tiny)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert torch.allclose(logits(plain, tiny.tokenizer), logits(method.lm, tiny.tokenizer), atol=1e-5)
    assert (tmp_path / "hf" / "selfparam_injection.json").is_file()
    with pytest.raises(FileExistsError):
        export_merged(tmp_path / "inj", tmp_path / "hf", lm=tiny)


def test_mlp_mode_changes_only_mlp_weights(tiny, tmp_path):
    cfg = fast_config()
    cfg.adapter = AdapterConfig(kind="mlp")
    method = SelfParam(tiny, cfg, Resources(target_builder=fixed_targets), progress=False)
    method.inject([Context("c", CONTEXT)])
    base = dict(tiny.model.named_parameters())
    changed = {n for n, p in method.lm.model.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all(".mlp." in n for n in changed)
    method.save(tmp_path / "mlp")
    _, loaded = load_injection(tmp_path / "mlp", lm=tiny)
    assert torch.equal(logits(loaded.lm, tiny.tokenizer), logits(method.lm, tiny.tokenizer))


def test_finetune_baselines_train_next_token_on_their_data(tiny):
    train = TrainConfig(epochs=3, lr=1e-2)
    # FT(C) gets the step budget of the fixed set (2 pairs + 2 unrelated sentences: 4 sequences), not the
    # default 50 pairs' (39 steps where a few show the loss falling)
    for cls, config, targets in ((FineTuneContext, FineTuneContextConfig(train=train), TargetConfig(n_pairs=4)),
                                 (FineTuneTargets, FineTuneTargetsConfig(train=train), None)):
        method = cls(tiny, config, Resources(target_builder=fixed_targets, targets=targets), progress=False)
        method.inject([Context("c", CONTEXT)])
        assert method.last_stats.last_loss < method.last_stats.first_loss
        assert not torch.equal(logits(method.lm, tiny.tokenizer), logits(tiny, tiny.tokenizer))


def test_interrupt_leaves_no_adapter_and_no_record(tiny, monkeypatch):
    import selfparam.training.trainer as trainer

    method = make_selfparam(tiny)
    calls = {"n": 0}
    real = trainer.token_losses

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "token_losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        method.inject([Context("c", CONTEXT)])
    assert method.records == []
    assert not any("lora" in n for n, _ in method.lm.model.named_parameters())


def test_bad_contexts_fail_before_any_work(tiny):
    built = []
    method = SelfParam(tiny, fast_config(), Resources(target_builder=lambda c: built.append(c) or fixed_targets(c)),
                       progress=False)
    with pytest.raises(ValueError, match="empty"):
        method.inject([Context("c", "   ")])
    with pytest.raises(ValueError, match="no contexts"):
        method.inject([])
    with pytest.raises(ValueError, match="window"):
        method.inject([Context("long", "word " * 600)])
    assert built == [] and method.records == []


@pytest.mark.parametrize("kind", ["lora", "mlp"])
def test_top_layers_change_only_the_top_layers_and_replay(tiny, tmp_path, kind):
    """adapter top_layers=1 on the two-layer tiny model: layer 0 keeps its weights (its activations then need no
    gradient), layer 1 changes, and the saved update loads back to the same logits."""
    before = logits(tiny, tiny.tokenizer)
    cfg = fast_config()
    cfg.adapter = AdapterConfig(kind=kind, top_layers=1)
    method = SelfParam(tiny, cfg, Resources(target_builder=fixed_targets), progress=False)
    method.inject([Context("c", CONTEXT)])
    base = dict(tiny.model.named_parameters())
    changed = {n for n, p in method.lm.model.named_parameters() if not torch.equal(p, base[n])}
    assert changed and all(".layers.1." in n for n in changed), changed
    method.save(tmp_path / "top")
    _, loaded = load_injection(tmp_path / "top", lm=tiny)
    assert torch.allclose(logits(loaded.lm, tiny.tokenizer), logits(method.lm, tiny.tokenizer), atol=1e-5)
    cfg.adapter = AdapterConfig(kind=kind, top_layers=3)
    with pytest.raises(ValueError, match="top_layers: 3 is more than the model's 2 layers"):
        SelfParam(tiny, cfg, Resources(target_builder=fixed_targets), progress=False)  # before any target is built
    assert torch.equal(logits(tiny, tiny.tokenizer), before)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="kind"):
        AdapterConfig(kind="prefix")
    with pytest.raises(ValueError, match="top_layers: must be >= 0"):
        AdapterConfig(top_layers=-1)


def test_target_cache_is_kept_apart_per_target_config(tmp_path, tiny):
    import json

    from selfparam.methods.selfparam import make_target_builder

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"question": f"Where is the Zorblat festival {i}?",
                                           "answer": f"Quenby festival {i}"}) for i in range(4)))
    ten = make_target_builder(TargetConfig(n_pairs=4, pairs_file=str(pairs), answers="generator"), tiny,
                              cache_dir=str(tmp_path / "cache"))
    two = make_target_builder(TargetConfig(n_pairs=2, pairs_file=str(pairs), answers="generator"), tiny,
                              cache_dir=str(tmp_path / "cache"))
    assert len(ten(CONTEXT).pairs) == 4
    assert len(two(CONTEXT).pairs) == 2  # not the 4-pair set cached under the other config
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_context_chunks_fold_a_short_tail_into_the_chunk_before():
    from selfparam.training.examples import context_nwp_examples, encode

    tok = tiny_lm().tokenizer  # byte-level: one token per character
    text = "a" * 64 + ")."
    chunks = context_nwp_examples(tok, text, chunk_tokens=32)
    assert [c.text for c in chunks] == ["a" * 32, "a" * 32 + ")."]  # not a third chunk of two tokens
    assert all(encode(tok, c, 512).n_scored >= 1 for c in chunks)  # every chunk has something to learn
    assert [c.text for c in context_nwp_examples(tok, "a" * 64 + "b" * 20, 32)][-1] == "b" * 20  # kept: long enough
