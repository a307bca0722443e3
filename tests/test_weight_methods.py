"""The weight-update methods' fixes (issue 8) and reliability (issue 14) on the tiny random model.

Each test here failed on the code before the fix it names.
"""

import copy
import json

import pytest
import torch

from selfparam.methods.base import Context, Resources
from selfparam.methods.finetune import (
    FineTuneContext,
    FineTuneContextConfig,
    FineTuneTargets,
    FineTuneTargetsConfig,
    FineTuneTeacherTargets,
)
from selfparam.methods.registry import METHODS
from selfparam.methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from selfparam.redaction import redact
from selfparam.targets import FilterConfig, UnrelatedCorpus, build_target_set, make_target_builder
from selfparam.targets.types import QAPair, TargetSet
from selfparam.testing import tiny_lm
from selfparam.training import AdapterConfig, TrainConfig
from selfparam.training.examples import distillation_examples, encode, target_nwp_examples

CONTEXT = "Quenby hosts the Zorblat festival every May."
OTHER = "Glass boats race on the river Ell each June."


class ListGenerator:
    description = "list"

    def generate(self, context, n, seed):
        words = context.rstrip(".").split()
        return [QAPair(f"What does {words[0]} do with {words[1]} number {i}?", f"{words[2]} {words[3]} {i}.")
                for i in range(n)]


def fixed_targets(context: str) -> TargetSet:
    pairs = [QAPair("When is the festival?", "In May.", generator_answer="Every May."),
             QAPair("Where is the festival?", "Quenby.", generator_answer="In Quenby.")]
    return TargetSet(context=context, pairs=pairs,
                     unrelated=["The cat sat on the mat.", "Rivers flow into the sea."], generator="fixed")


GENERATOR_ANSWERS = TargetConfig(answers="generator")  # a random tiny model is no teacher to answer with


def fast_train(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 2, "lr": 1e-2, **kw})


def lora_state(method) -> dict:
    return {k: v.clone() for k, v in method.records[-1].state.items()}


# -- issue 8.1: unrelated sentences drawn per context -------------------------------------------------
def test_unrelated_sentences_are_drawn_per_context_and_reproducibly():
    corpus = UnrelatedCorpus(tuple(f"Sentence number {i} says something general about the world." for i in range(200)))
    kw = dict(n_pairs=10, unrelated_ratio=1.0, filter_config=FilterConfig(min_support=0.0))
    a = build_target_set(CONTEXT, ListGenerator(), corpus, seed=0, **kw)
    b = build_target_set(OTHER, ListGenerator(), corpus, seed=0, **kw)
    again = build_target_set(CONTEXT, ListGenerator(), corpus, seed=0, **kw)
    other_seed = build_target_set(CONTEXT, ListGenerator(), corpus, seed=1, **kw)
    assert len(a.unrelated) == 10 and a.unrelated == again.unrelated
    assert a.unrelated != b.unrelated and a.unrelated != other_seed.unrelated


# -- issue 8.2: who teaches the unrelated sentences ---------------------------------------------------
def test_unrelated_teacher_base_reads_the_sentence_alone(tiny):
    ts = fixed_targets(CONTEXT)
    context_taught = distillation_examples(tiny.tokenizer, ts, "context")
    base_taught = distillation_examples(tiny.tokenizer, ts, "base")
    assert [e.teacher_prefix for e in context_taught[2:]] == [CONTEXT + "\n\n"] * 2
    assert [e.teacher_prefix for e in base_taught[2:]] == ["", ""]
    assert base_taught[:2] == context_taught[:2]  # the pairs are always taught with the context
    enc = encode(tiny.tokenizer, base_taught[2], tiny.max_length)
    assert enc.teacher_ids == enc.student_ids  # the model before the update, on the same tokens: a KL anchor
    with pytest.raises(ValueError, match="unrelated_teacher"):
        SelfParamConfig(unrelated_teacher="nobody")


def test_selfparam_with_the_base_anchor_starts_at_zero_kl_on_unrelated_text(tiny):
    only_unrelated = lambda c: TargetSet(c, pairs=[], unrelated=["The cat sat on the mat today."])  # noqa: E731
    cfg = SelfParamConfig(targets=GENERATOR_ANSWERS, train=fast_train(epochs=1, batch_size=1), unrelated_teacher="base",
                          context_copies=0)  # the unrelated sentence alone
    method = SelfParam(tiny, cfg, Resources(target_builder=only_unrelated), progress=False)
    method.inject([Context("c", CONTEXT)])
    assert method.last_stats.first_loss == pytest.approx(0.0, abs=1e-5)


def test_the_original_anchor_teaches_unrelated_text_as_the_model_before_any_update(tiny):
    """`unrelated_teacher="original"`: after an update has moved the model, the next update's unrelated
    sentences are still taught by the unchanged model, so its KL starts above 0 (it pulls the drift back),
    where the "base" anchor, taught by the moved model, starts at 0."""
    only_unrelated = TargetSet(OTHER, pairs=[], unrelated=["The cat sat on the mat today."])
    first_loss = {}
    for anchor in ("base", "original"):
        sets = iter([fixed_targets(CONTEXT), only_unrelated])
        cfg = SelfParamConfig(targets=GENERATOR_ANSWERS, train=fast_train(batch_size=1, lr=5e-2),
                              unrelated_teacher=anchor, rehearsal=0, context_copies=0)
        method = SelfParam(tiny, cfg, Resources(target_builder=lambda c: next(sets)), progress=False)
        method.inject([Context("c", CONTEXT)])
        method.inject([Context("o", OTHER)])
        first_loss[anchor] = method.last_stats.first_loss
    assert first_loss["base"] == pytest.approx(0.0, abs=1e-5)
    assert first_loss["original"] > 1e-3, first_loss


# -- issue 8.3: FT(S) learns the generator's answers; the teacher variant is its own method -----------
def test_ft_s_learns_the_generators_answers_and_ft_s_teacher_the_teachers(tiny):
    ts = fixed_targets(CONTEXT)
    assert [e.text for e in target_nwp_examples(tiny.tokenizer, ts)][:2] == ["Every May.<|im_end|>",
                                                                            "In Quenby.<|im_end|>"]
    assert [e.text for e in target_nwp_examples(tiny.tokenizer, ts, "teacher")][:2] == ["In May.<|im_end|>",
                                                                                         "Quenby.<|im_end|>"]
    assert METHODS["ft-s"][1] is FineTuneTargets and METHODS["ft-s-teacher"][1] is FineTuneTeacherTargets
    assert "not the paper's FT(S)" in FineTuneTeacherTargets.__doc__
    # under a run whose targets are re-answered by the teacher, FT(S) still learns the generator's answers
    method = FineTuneTargets(tiny, FineTuneTargetsConfig(train=fast_train()),
                             Resources(target_builder=lambda c: TargetSet(c, [QAPair("When?", "Every May.")]),
                                       targets=TargetConfig(answers="teacher")), progress=False)
    method.inject([Context("c", CONTEXT)])
    manifest = method.records[0].manifest
    assert manifest["answers"] == "generator" and manifest["targets"][0]["pairs"] == [{"question": "When?",
                                                                                       "answer": "Every May."}]


# -- issue 8.4: the fine-tuning baselines get SELF-PARAM's number of optimiser steps ---------------------
@pytest.fixture
def two_pairs(tmp_path) -> Resources:
    """A run's shared target sets: 2 pairs and 2 unrelated sentences per context."""
    corpus = tmp_path / "u.txt"
    corpus.write_text("x")
    targets = TargetConfig(n_pairs=2, unrelated_ratio=1.0, unrelated_path=str(corpus), answers="generator")
    return Resources(target_builder=fixed_targets, targets=targets)


def injected(*methods):
    for m in methods:
        m.inject([Context("c", CONTEXT)])
    return methods


@pytest.mark.parametrize("ft_class, config_class", [(FineTuneContext, FineTuneContextConfig),
                                                     (FineTuneTargets, FineTuneTargetsConfig)])
def test_fine_tuning_trains_as_many_steps_as_selfparam(tiny, two_pairs, ft_class, config_class):
    sp, ft = injected(SelfParam(tiny, SelfParamConfig(train=fast_train()), two_pairs, progress=False),
                      ft_class(tiny, config_class(train=fast_train()), two_pairs, progress=False))
    # SELF-PARAM: 2 pairs + 2 unrelated + the context (one chunk) read 10 times = 14 sequences, 7 steps per epoch;
    # FT(C) repeats its one chunk to 14, FT(S) its 4 target sequences
    assert ft.last_stats.steps == sp.last_stats.steps == 14
    budget = ft.records[0].manifest["budget"]
    assert budget["sequences"] == 14 and "same steps" in budget["rule"]
    # a run whose SELF-PARAM reads no context gives the target set's budget alone: 4 sequences, 4 steps
    (unread,) = injected(ft_class(tiny, config_class(train=fast_train(), budget_context_copies=0), two_pairs,
                                  progress=False))
    assert unread.records[0].manifest["budget"]["sequences"] == 4 and unread.last_stats.steps == 4
    with pytest.raises(ValueError, match="budget_context_copies"):
        config_class(budget_context_copies=-1)
    # matching off: FT(C) reads its chunk once per epoch (2 steps), FT(S) its target set (4, as before the rule)
    (once,) = injected(ft_class(tiny, config_class(train=fast_train(), match_selfparam_steps=False), two_pairs,
                                progress=False))
    assert once.last_stats.steps == (2 if ft_class is FineTuneContext else 4)
    if ft_class is FineTuneContext:  # what each repeats: FT(C) its one chunk, FT(S) its 4 target sequences
        assert budget["chunks"] == 1
    else:
        assert budget["target_sequences"] == 4
    # SELF-PARAM's context read counts in its own 128-token chunks, whatever chunks FT(C) cuts for itself
    if ft_class is FineTuneContext:
        (small,) = injected(FineTuneContext(tiny, FineTuneContextConfig(train=fast_train(), chunk_tokens=16),
                                            two_pairs, progress=False))
        small_budget = small.records[0].manifest["budget"]  # 3 chunks of its own, still SELF-PARAM's 14 (not 4 + 30)
        assert (small_budget["chunks"], small_budget["sequences"]) == (3, 14)



def test_a_run_that_configures_selfparam_gives_the_baselines_its_steps(tiny, two_pairs, tmp_path):
    from selfparam.eval.configs import method_configs

    path = tmp_path / "m.json"  # SELF-PARAM: 1 epoch, batches of 2, 3 context reads; ft-c sets its copies
    path.write_text(json.dumps({"selfparam": {"train": {"epochs": 1, "batch_size": 2, "lr": 1e-2}, "context_copies": 3},
                                "ft-c": {"budget_context_copies": 5, "train": {"lr": 1e-2}}}))
    configs = method_configs(path, ["selfparam", "ft-s", "ft-c", "rag-bm25"])
    assert "rag-bm25" not in configs  # a method without a budget is left to its defaults
    ft_s, ft_c = configs["ft-s"], configs["ft-c"]
    assert (ft_s.train.epochs, ft_s.train.batch_size, ft_s.budget_context_copies) == (1, 2, 3)
    assert (ft_c.train.epochs, ft_c.train.batch_size, ft_c.budget_context_copies) == (1, 2, 5)  # its own copies kept
    assert ft_c.train.lr == 1e-2 and ft_s.train.lr == FineTuneTargetsConfig().train.lr  # lr is not budget
    sp, ft = injected(SelfParam(tiny, configs["selfparam"], two_pairs, progress=False),
                      FineTuneTargets(tiny, ft_s, two_pairs, progress=False))
    assert ft.last_stats.steps == sp.last_stats.steps == 4  # 2 pairs + 2 unrelated + 3 reads = 7 sequences, by 2
    # a baseline that does not match SELF-PARAM's steps is left as configured
    path.write_text(json.dumps({"selfparam": {"train": {"epochs": 1}}, "ft-s": {"match_selfparam_steps": False}}))
    assert method_configs(path, ["selfparam", "ft-s"])["ft-s"].train.epochs == 3
    path.write_text(json.dumps({"ft-s": {"train": {"epochs": 2}}}))  # no SELF-PARAM settings: nothing follows
    assert method_configs(path, ["selfparam", "ft-s"])["ft-s"].train.epochs == 2

# -- issue 8.5: the seed reaches training and leaves other streams alone -------------------------------
def test_run_seed_sets_training_and_does_not_touch_the_global_stream(tiny):
    def trained(seed):
        m = SelfParam(tiny, SelfParamConfig(targets=GENERATOR_ANSWERS, train=fast_train()),
                      Resources(target_builder=fixed_targets, seed=seed), progress=False)
        m.inject([Context("c", CONTEXT)])
        return m

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = trained(1)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's (another method's) stream is untouched
    b, c = trained(1), trained(2)
    assert a.config.train.seed == 1 and a.records[0].manifest["config"]["train"]["seed"] == 1
    assert all(torch.equal(v, lora_state(b)[k]) for k, v in lora_state(a).items())
    assert not all(torch.equal(v, lora_state(c)[k]) for k, v in lora_state(a).items())


# -- issue 8.6: the target-set cache key ---------------------------------------------------------------
def test_target_cache_refuses_sets_built_by_another_model_and_keys_file_contents(tiny, tmp_path):
    cache = tmp_path / "cache"
    config = TargetConfig(n_pairs=2)  # the local generator: the model writes the pairs
    make_target_builder(config, tiny, cache_dir=cache).check_key()
    with pytest.raises(ValueError, match="built by model"):
        make_target_builder(config, tiny_lm(seed=1), cache_dir=cache).check_key()
    key = json.loads(next(cache.iterdir()).joinpath("key.json").read_text())
    assert key["model"]["name"] == tiny.name and len(key["model"]["fingerprint"]) == 16
    assert key["format_version"] == 2 and key["prompt_sha256"] and key["filter"]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"question": "Where is the Zorblat festival?", "answer": "In Quenby."}))
    first = make_target_builder(TargetConfig(n_pairs=1, pairs_file=str(pairs)), tiny, cache_dir=cache)
    pairs.write_text(json.dumps({"question": "When is the Zorblat festival?", "answer": "In May."}))
    second = make_target_builder(TargetConfig(n_pairs=1, pairs_file=str(pairs)), tiny, cache_dir=cache)
    assert first.folder != second.folder  # same settings, other file content: never the stale set


# -- issue 8.7: one target-building path for inject --mode sequential and eval sequential --------------
def test_the_teacher_of_each_update_reanswers_on_both_routes(tiny, tmp_path, monkeypatch):
    import selfparam.methods.selfparam.method as sp_method
    from selfparam.eval.run import shared_target_resources
    from selfparam.fingerprint import model_fingerprint
    from selfparam.methods.weight_update import pull_towards

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"question": f"What is {w}?", "answer": f"{w} is a thing."})
                               for w in ("Quenby", "Zorblat", "Ell", "June")))
    config = TargetConfig(n_pairs=2, pairs_file=str(pairs), answers="teacher")

    def run(resources):
        seen = []

        def reanswer(teacher, ts, top_k, shots=0):
            seen.append(model_fingerprint(teacher.model))
            return TargetSet(ts.context, [QAPair(p.question, "Taught.", p.answer) for p in ts.pairs]), {}

        monkeypatch.setattr(sp_method, "teacher_writes_answers", reanswer)
        m = SelfParam(tiny, SelfParamConfig(targets=config, train=fast_train()), resources, progress=False)
        before = []
        for c in (CONTEXT, OTHER):
            teacher = copy.deepcopy(m.lm.model)
            if m.records:  # from the second update on, the model first moves back towards the base (pull_back)
                pull_towards(teacher, tiny.model, m.config.pull_back)
            before.append(model_fingerprint(teacher))
            m.inject([Context("c", c)])
        return seen, before, [r.manifest["targets"] for r in m.records]

    own = run(None)  # `selfparam inject --mode sequential`
    harness = run(shared_target_resources(tiny, seed=0, unrelated=None, n_pairs=2, targets_dir=tmp_path / "t",
                                          pairs_file=str(pairs), answers="teacher"))  # `selfparam eval sequential`
    for seen, before, _ in (own, harness):
        assert seen == before and seen[0] != seen[1]  # each update's teacher: the model before it, pulled back
    assert own[2] == harness[2]


# -- issue 8.8: precision --------------------------------------------------------------------------------
def test_a_small_lora_delta_survives_the_merge_with_bf16_base_weights(tiny):
    from selfparam.methods.weight_update import WeightUpdates
    from selfparam.training.adapters import attach, finalize

    tiny.model.to(torch.bfloat16)
    tiny.compute_dtype = torch.bfloat16
    base_w = tiny.model.model.layers[0].mlp.up_proj.weight.detach().float().clone()
    delta = torch.full_like(base_w, 1e-4)

    def merged(lm_model):
        peft = attach(lm_model, AdapterConfig(r=1, alpha=1, dropout=0.0, target_modules=("up_proj",)))
        layer = peft.base_model.model.model.layers[0].mlp.up_proj
        with torch.no_grad():  # B @ A = 1e-4 everywhere, the size the paper's learning rate gives
            layer.lora_A["default"].weight.fill_(1e-2)
            layer.lora_B["default"].weight.fill_(1e-2)
        model, _ = finalize(peft, AdapterConfig(r=1, alpha=1, dropout=0.0, target_modules=("up_proj",)))
        return model.model.layers[0].mlp.up_proj.weight.detach().float()

    own = WeightUpdates(tiny).own()  # the private fp32 master copy
    assert own.model.dtype == torch.float32 and tiny.model.dtype == torch.bfloat16
    kept = merged(own.model) - base_w
    assert torch.allclose(kept, delta, rtol=1e-3, atol=1e-8)
    import copy
    rounded = merged(copy.deepcopy(tiny.model)) - base_w  # what merging into bf16 weights did before
    assert (rounded - delta).abs().mean() > 0.2 * 1e-4


def test_mlp_training_refuses_bf16_parameters_and_scoring_logits_are_fp32(tiny):
    from selfparam.training.batching import fp32_output_layer
    from selfparam.training.examples import Example
    from selfparam.training.trainer import encode_share, train_and_merge

    tiny.model.to(torch.bfloat16)
    before = {n: p.clone() for n, p in tiny.model.named_parameters()}
    encoded = encode_share(tiny, [Example("", "The cat sat on the mat.")])
    with pytest.raises(ValueError, match="fp32 master weights"):
        train_and_merge(tiny, encoded, None, AdapterConfig(kind="mlp"), fast_train(), progress=False)
    assert all(torch.equal(p, before[n]) and not p.requires_grad for n, p in tiny.model.named_parameters())
    ids = torch.tensor([[1, 2, 3]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert tiny.model(input_ids=ids).logits.dtype == torch.bfloat16
        with fp32_output_layer(tiny.model):
            assert tiny.model(input_ids=ids).logits.dtype == torch.float32


# -- issue 14: reliability ---------------------------------------------------------------------------------
def test_interrupted_mlp_update_restores_the_weights(tiny, monkeypatch):
    import selfparam.training.trainer as trainer

    method = SelfParam(tiny, SelfParamConfig(targets=GENERATOR_ANSWERS, adapter=AdapterConfig(kind="mlp"),
                                             train=fast_train(batch_size=1)),
                       Resources(target_builder=fixed_targets), progress=False)
    calls = {"n": 0}
    real = trainer.token_losses

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # two optimiser steps have changed the MLP weights
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "token_losses", interrupted)
    with pytest.raises(KeyboardInterrupt):
        method.inject([Context("c", CONTEXT)])
    base = dict(tiny.model.named_parameters())
    assert method.records == []
    assert all(torch.equal(p, base[n]) for n, p in method.lm.model.named_parameters())
    assert not any(p.requires_grad for p in method.lm.model.parameters())


def test_load_onto_another_base_model_is_refused(tiny, tmp_path):
    method = SelfParam(tiny, SelfParamConfig(targets=GENERATOR_ANSWERS, train=fast_train()),
                       Resources(target_builder=fixed_targets), progress=False)
    method.inject([Context("c", CONTEXT)])
    method.save(tmp_path / "inj")
    other = SelfParam(tiny_lm(seed=1), progress=False)
    with pytest.raises(ValueError, match="not into these weights"):
        other.load(tmp_path / "inj")
    assert other.records == [] and other.lm is other.weights.base_lm  # nothing changed
    same = SelfParam(tiny_lm(seed=0), progress=False)
    same.load(tmp_path / "inj")
    assert len(same.records) == 1


def test_generator_credentials_never_reach_disk(tiny, tmp_path):
    url = "https://alice:s3cret@llm.example.com/v1?api_key=abc123&x=1"
    assert redact(url) == "https://***@llm.example.com/v1?api_key=***&x=1"
    method = SelfParam(tiny, SelfParamConfig(targets=TargetConfig(generator_url=url, generator_model="m",
                                                                  answers="generator"), train=fast_train()),
                       Resources(target_builder=lambda c: TargetSet(c, fixed_targets(c).pairs,
                                                                    generator=f"openai:m@{url}")),
                       progress=False)
    method.inject([Context("c", CONTEXT)])
    method.save(tmp_path / "inj")
    written = "".join(p.read_text() for p in (tmp_path / "inj").rglob("*.json"))
    assert "s3cret" not in written and "abc123" not in written and "llm.example.com" in written


# -- issue 10.3: the teacher's distributions kept while it writes the answers -------------------------
def test_distributions_kept_while_writing_equal_the_teacher_pass(tiny):
    from selfparam.prompts import answer_prompt
    from selfparam.training.examples import Encoded
    from selfparam.training.teacher import teacher_answers, teacher_pass

    lm = tiny_lm(seed=0, initializer_range=0.3)  # writes non-empty (random) answers
    prompts = [answer_prompt(lm.tokenizer, q, CONTEXT) for q in ("Where is the festival?", "When?", "Who hosts it?")]
    written = teacher_answers(lm, prompts, max_new_tokens=12, top_k=8)
    encoded = [Encoded(student_ids=ids, teacher_ids=lm.tokenizer(p, add_special_tokens=False)["input_ids"] + ids,
                       n_scored=len(ids)) for p, (_, ids, _) in zip(prompts, written)]
    passed = teacher_pass(lm, encoded, top_k=8, progress=False)
    for (_, ids, kept), ref in zip(written, passed):
        assert len(kept) == len(ids) == 12
        assert torch.equal(kept.topk_ids, ref.topk_ids)
        assert torch.allclose(kept.topk_logp, ref.topk_logp, atol=1e-4)
        assert torch.allclose(kept.rest_logp, ref.rest_logp, atol=1e-4)


def test_examples_that_carry_their_teacher_skip_the_teacher_pass(tiny, monkeypatch):
    import selfparam.training.teacher as teacher_module
    from selfparam.training.examples import Example
    from selfparam.training.losses import CompactTeacher
    from selfparam.training.teacher import teacher_pass

    text = "Ell." + tiny.tokenizer.eos_token
    n = len(tiny.tokenizer(text, add_special_tokens=False)["input_ids"])
    kept = CompactTeacher(torch.zeros(n, 2), torch.zeros(n, 2, dtype=torch.long), torch.zeros(n))
    with_teacher = encode(tiny.tokenizer, Example("Q: where?", text, "C. Q: where?", teacher=kept), tiny.max_length)
    without = encode(tiny.tokenizer, Example("", "Cats sit on mats.", "C.\n\n"), tiny.max_length)
    calls = []
    real = teacher_module.scored_slots
    monkeypatch.setattr(teacher_module, "scored_slots",
                        lambda m, lm, seqs, ns, **kw: calls.append(seqs) or real(m, lm, seqs, ns, **kw))
    out = teacher_pass(tiny, [with_teacher, without], top_k=2, progress=False)
    assert out[0] is kept and len(out[1]) == without.n_scored
    assert calls == [[without.teacher_ids]]  # only the sentence without a kept teacher was run


def test_only_answers_that_tokenize_back_keep_their_written_distributions(tiny, monkeypatch):
    import selfparam.training.teacher as teacher_module
    from selfparam.training.losses import CompactTeacher

    tok, eos = tiny.tokenizer, tiny.tokenizer.eos_token
    ids = tok("In May." + eos, add_special_tokens=False)["input_ids"]
    kept = CompactTeacher(torch.zeros(len(ids), 2), torch.zeros(len(ids), 2, dtype=torch.long), torch.zeros(len(ids)))
    truncated = CompactTeacher(torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.long), torch.zeros(3))
    monkeypatch.setattr(teacher_module, "teacher_answers", lambda lm, prompts, *a, **k: [
        ("In May.", ids, kept), ("Quenby", tok("Quenby", add_special_tokens=False)["input_ids"][:3], truncated)])
    ts = TargetSet(CONTEXT, [QAPair("When?", "x"), QAPair("Where?", "y")])
    out, written = teacher_module.teacher_writes_answers(tiny, ts, top_k=2)
    assert [p.answer for p in out.pairs] == ["In May.", "Quenby"]
    assert written == {(CONTEXT, "When?", "In May." + eos): kept}  # the EOS was never reached for "Quenby"
    examples = distillation_examples(tok, out, written=written)
    assert examples[0].teacher is kept and examples[1].teacher is None
    assert encode(tok, examples[0], tiny.max_length).teacher is kept


def test_wrapping_in_lora_warns_nothing_of_ours():
    """peft reads a property transformers deprecated: one FutureWarning per update flooded every run's log."""
    import warnings

    from selfparam.training.adapters import attach

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        attach(tiny_lm(seed=0).model, AdapterConfig())
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)], [str(w.message) for w in caught]
