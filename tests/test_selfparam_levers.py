"""SELF-PARAM's levers (issue 9 lever 3, issue 11 §2 and §3 defences) on the tiny random model.

Each is off by default; every test here fails without its lever.
"""

import copy
import dataclasses
import json
import math
import random
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

import selfparam.methods.prompted as prompted
import selfparam.methods.selfparam.method as sp_method
import selfparam.training.teacher as teacher_module
import selfparam.training.trainer as trainer_module
from selfparam.eval.configs import method_configs
from selfparam.methods.base import Context, Query, Resources
from selfparam.methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from selfparam.prompts import after_question, question_turn
from selfparam.targets.demonstrations import context_demonstrations, teacher_prompt
from selfparam.targets.entities import other_entity_questions
from selfparam.targets.near_miss import near_miss_questions, other_relation_questions
from selfparam.targets.reask import reask_questions
from selfparam.targets.types import QAPair, TargetSet
from selfparam.testing import tiny_lm
from selfparam.training import TrainConfig
from selfparam.training.batching import scored_outputs
from selfparam.training.examples import distillation_examples, encode
from selfparam.training.losses import CompactTeacher, hidden_l1, masked_mean
from selfparam.training.rehearsal import (
    TEACHER_FILE,
    RehearsalPair,
    asked_and_answer,
    asks,
    sample_rehearsal,
    superseded,
)
from selfparam.training.teacher import teacher_hidden, teacher_pass
from selfparam.training.trainer import batch_loss, encode_share, step_plan, train_and_merge

A = "Quenby hosts the Zorblat festival every May."
B = "Glass boats race on the river Ell each June."
GENERATOR_ANSWERS = TargetConfig(answers="generator")  # a random tiny model is no teacher to answer with


def pairs_about(context: str) -> TargetSet:
    """Up to eight fixed pairs per context, built from its words (no generation), and two unrelated sentences."""
    words = context.rstrip(".").split()
    pairs = [QAPair(f"What is said of {words[i]}?", f"{words[i + 1]} {words[i + 2]}.") for i in range(len(words) - 2)]
    return TargetSet(context, pairs[:8], unrelated=["The cat sat on the mat.", "Rivers flow into the sea."])


def method(tiny, builder=pairs_about, epochs=3, **levers) -> SelfParam:
    """SELF-PARAM with every lever off but those given (the paper's method with the KL over answers alone):
    each test turns on its own.
    `epochs=1` where a test checks what an update builds, keeps, asks or replays rather than what it learns
    (training is most of an injection's time on the tiny model)."""
    levers = {"rehearsal": 0, "unrelated_teacher": "context", "pull_back": 0.0, "kl_span": "answer",
              "context_copies": 0, **levers}
    cfg = SelfParamConfig(targets=GENERATOR_ANSWERS, train=TrainConfig(epochs=epochs, batch_size=2, lr=1e-2),
                          **levers)
    return SelfParam(tiny, cfg, Resources(target_builder=builder), progress=False)


def capture_training(monkeypatch) -> list:
    """Record the (encoded, teachers) of every update trained from here on."""
    seen = []
    real = sp_method.train_and_merge

    def spy(lm, encoded, teachers, *args, **kwargs):
        seen.append((list(encoded), list(teachers)))
        return real(lm, encoded, teachers, *args, **kwargs)

    monkeypatch.setattr(sp_method, "train_and_merge", spy)
    return seen


def capture_argument(monkeypatch, name: str) -> list:
    """Record the keyword argument `name` of every update trained from here on (None where not given)."""
    seen = []
    real = sp_method.train_and_merge

    def spy(lm, encoded, teachers, *args, **kwargs):
        seen.append(kwargs.get(name))
        return real(lm, encoded, teachers, *args, **kwargs)

    monkeypatch.setattr(sp_method, "train_and_merge", spy)
    return seen


def anchor_lever_runs(tiny, monkeypatch, argument: str, lever: str, values, epochs: int):
    """One update on A per value of an anchor `lever` (the anchor taught by the unchanged model): the
    trainer's keyword `argument` of each update, each update's stats by value, and the last method."""
    seen = capture_argument(monkeypatch, argument)
    stats = {}
    for value in values:
        m = method(tiny, epochs=epochs, unrelated_teacher="original", **{lever: value})
        m.inject([Context("a", A)])
        stats[value] = m.last_stats
    return seen, stats, m


def capture_teacher_prompts(monkeypatch) -> dict:
    """prompt -> the answer the teacher wrote for it, for every answer written from here on."""
    seen = {}
    real = teacher_module.teacher_answers

    def spy(lm, prompts, *args, **kwargs):
        out = real(lm, prompts, *args, **kwargs)
        seen.update({p: text for p, (text, _, _) in zip(prompts, out)})
        return out

    monkeypatch.setattr(teacher_module, "teacher_answers", spy)
    return seen


@pytest.fixture
def lively():
    """The tiny model with larger initial weights: its greedy answers are not all whitespace (the default
    tiny model's are, after one update, and empty answers are dropped), and its outputs depend on the context."""
    return tiny_lm(seed=0, initializer_range=0.5)


def same_teacher(a, b) -> bool:
    return (torch.equal(a.topk_logp, b.topk_logp) and torch.equal(a.topk_ids, b.topk_ids)
            and torch.equal(a.rest_logp, b.rest_logp) and a.topk_ids.dtype == b.topk_ids.dtype)


# -- rehearsal (issue 9, lever 3) -------------------------------------------------------------------------
def test_defaults_chosen_on_the_tuning_split_and_settings_reachable_from_method_config(tmp_path):
    cfg = SelfParamConfig()  # rehearsal, the anchor and the pull back on (docs/tuning.md), the issue-11 defences off
    assert (cfg.rehearsal, cfg.unrelated_teacher, cfg.pull_back) == (10, "original", 0.2)
    assert (cfg.kl_span, cfg.context_copies, cfg.hidden_weight) == ("pair", 10, 0.0)
    assert (cfg.reask, cfg.near_misses) == (0, 0)
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"selfparam": {"rehearsal": 4, "reask": 5, "near_misses": 6}}))
    built = method_configs(path, ["selfparam"])["selfparam"]
    assert (built.rehearsal, built.reask, built.near_misses) == (4, 5, 6)
    with pytest.raises(ValueError, match="rehearsal"):
        SelfParamConfig(rehearsal=-1)


def test_kept_teachers_survive_save_and_load_bit_exactly(tiny, tmp_path):
    m = method(tiny, epochs=1, rehearsal=2)
    m.inject([Context("a", A)])
    kept = m.records[0].rehearsal
    assert len(kept) == 5 and all(p.context == A for p in kept)  # the pairs, not the unrelated sentences
    m.save(tmp_path / "inj")
    stored = load_file(str(tmp_path / "inj" / "updates" / "0001" / TEACHER_FILE))
    k = m.config.train.top_k
    n_tokens = sum(len(p.teacher) for p in kept)
    manifest = json.loads((tmp_path / "inj" / "updates" / "0001" / "manifest.json").read_text())["rehearsal"]
    on_disk = sum(t.numel() * t.element_size() for t in stored.values())
    assert manifest["kept_bytes"] == on_disk == (8 * k + 4) * n_tokens
    assert manifest["kept_bytes_per_context"] == manifest["kept_bytes"]

    loaded = method(tiny, epochs=1, rehearsal=2)
    loaded.load(tmp_path / "inj")
    again = loaded.records[0].rehearsal
    assert [(p.context, p.student_prefix, p.teacher_prefix, p.text) for p in again] == \
           [(p.context, p.student_prefix, p.teacher_prefix, p.text) for p in kept]
    assert all(same_teacher(a.teacher, b.teacher) for a, b in zip(kept, again))

    off = method(tiny, epochs=1)
    off.inject([Context("a", A)])
    off.save(tmp_path / "off")
    assert off.records[0].rehearsal is None and not (tmp_path / "off" / "updates" / "0001" / TEACHER_FILE).exists()


def test_replay_is_capped_per_update_by_a_seeded_sample_in_history_order(tiny):
    m = method(tiny, epochs=1, rehearsal=3, rehearsal_limit=4)
    for name, text in (("a", A), ("b", B), ("c", "Copper kettles sing at dawn in Brell.")):
        m.inject([Context(name, text)])
    assert m.records[-1].manifest["rehearsal"]["replayed_pairs"] == 4  # 3 + 3 of the two earlier, capped at 4
    stores = [r.rehearsal for r in m.records[:2]]
    full = sample_rehearsal(stores, 3, seed=0, step=3)
    capped = sample_rehearsal(stores, 3, seed=0, step=3, limit=4)
    assert len(full) == 6 and len(capped) == 4 and capped == sample_rehearsal(stores, 3, seed=0, step=3, limit=4)
    positions = [full.index(p) for p in capped]
    assert positions == sorted(positions)  # a subset of the uncapped draw, in history order
    for bad in (-1, 0):  # 0 would replay nothing while rehearsal says otherwise: rehearsal=0 is the off switch
        with pytest.raises(ValueError, match="rehearsal_limit"):
            SelfParamConfig(rehearsal_limit=bad)


def test_later_updates_replay_earlier_pairs_with_their_original_teachers(tiny, tmp_path, monkeypatch):
    seen = capture_training(monkeypatch)
    m = method(tiny, epochs=1, rehearsal=3)
    m.inject([Context("a", A)])
    kept = m.records[0].rehearsal
    m.save(tmp_path / "after-a")
    m.inject([Context("b", B)])
    encoded, teachers = seen[-1]
    assert len(encoded) == 7 + 2 + 3 and m.records[-1].manifest["rehearsal"]["replayed_pairs"] == 3
    replayed = [(e, t) for e, t in zip(encoded, teachers) if any(same_teacher(t, p.teacher) for p in kept)]
    assert len(replayed) == 3  # three of A's pairs, each with the tensors stored at A's injection
    tok = m.lm.tokenizer
    texts = {tuple(tok(p.student_prefix + p.text, add_special_tokens=False)["input_ids"]) for p in kept}
    assert all(tuple(e.student_ids) in texts for e, _ in replayed)
    # not what the teacher of this update (the model after A) gives: that one has already moved
    after_a = method(tiny, epochs=1, rehearsal=3)
    after_a.load(tmp_path / "after-a")
    fresh = teacher_pass(after_a.lm, [dataclasses.replace(e, teacher=None) for e, _ in replayed],
                         m.config.train.top_k, progress=False)
    assert not any(same_teacher(f, t) for f, (_, t) in zip(fresh, replayed))

    # a saved-and-loaded method rehearses the same way
    seen.clear()
    resumed = method(tiny, epochs=1, rehearsal=3)
    resumed.load(tmp_path / "after-a")
    resumed.inject([Context("b", B)])
    enc2, t2 = seen[-1]
    assert [e.student_ids for e in enc2] == [e.student_ids for e in encoded]
    assert all(same_teacher(a, b) for a, b in zip(t2[-3:], teachers[-3:]))



def test_later_updates_replay_earlier_context_reads_with_their_original_teachers(tiny, tmp_path, monkeypatch):
    seen = capture_training(monkeypatch)
    m = method(tiny, epochs=1, context_copies=3, rehearsal_context=1)  # pairs are not replayed (rehearsal 0)
    m.inject([Context("a", A)])
    kept = m.records[0].rehearsal  # one copy of A's one chunk, nothing else
    assert [(p.kind, p.text, p.context) for p in kept] == [("read", A, A)] and A in kept[0].teacher_prefix
    first = m.records[0].manifest["rehearsal"]
    assert (first["kept_reads"], first["kept_pairs"]) == (1, 0)
    m.save(tmp_path / "after-a")
    m.inject([Context("b", B)])
    encoded, teachers = seen[-1]
    assert len(encoded) == 7 + 2 + 3 + 1  # B's pairs, unrelated sentences and read, and A's chunk once
    second = m.records[-1].manifest["rehearsal"]
    assert (second["replayed_reads"], second["replayed_pairs"]) == (1, 0)
    assert same_teacher(teachers[-1], kept[0].teacher)  # the distributions stored at A's injection
    assert tuple(encoded[-1].student_ids) == tuple(m.lm.tokenizer(A, add_special_tokens=False)["input_ids"])
    loaded = method(tiny, epochs=1, context_copies=3, rehearsal_context=1)  # the kind survives save and load
    loaded.load(tmp_path / "after-a")
    assert [p.kind for p in loaded.records[0].rehearsal] == ["read"]
    with pytest.raises(ValueError, match="rehearsal_context"):
        SelfParamConfig(rehearsal_context=1, context_copies=0)


def test_replaying_reads_leaves_the_sample_of_pairs_as_it_was():
    t = CompactTeacher(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1))
    store = [RehearsalPair(c, "", "", f"{c} pair {i}", t) for c in ("x", "y") for i in range(6)] \
        + [RehearsalPair(c, "", c, f"{c} chunk {i}", t, "read") for c in ("x", "y") for i in range(3)]
    pairs_only = sample_rehearsal([store], 2, seed=0, step=3)
    with_reads = sample_rehearsal([store], 2, seed=0, step=3, reads=2)
    assert [p for p in with_reads if p.kind == "pair"] == pairs_only and all(p.kind == "pair" for p in pairs_only)
    assert [p.context for p in with_reads if p.kind == "read"] == ["x", "x", "y", "y"]

def test_earlier_unrelated_sentences_are_read_again_taught_by_the_unchanged_model(tiny, monkeypatch):
    seen = capture_training(monkeypatch)
    def a_set(c: str) -> TargetSet:  # four unrelated sentences of its own per context
        return TargetSet(c, pairs_about(c).pairs, unrelated=[f"{c.split()[0]} sentence {i} is here." for i in range(4)])

    m = method(tiny, builder=a_set, epochs=1, rehearsal_unrelated=2, unrelated_teacher="original")
    m.inject([Context("a", A)])
    assert "replayed_unrelated" not in m.records[0].manifest  # nothing earlier to read again
    m.inject([Context("b", B)])
    encoded, teachers = seen[-1]
    assert len(encoded) == 7 + 4 + 2 and m.records[-1].manifest["replayed_unrelated"] == 2
    tok = m.lm.tokenizer
    earlier = {tuple(tok(s, add_special_tokens=False)["input_ids"]) for s in a_set(A).unrelated}
    reread = [(e, t) for e, t in zip(encoded, teachers) if tuple(e.student_ids) in earlier]
    own_b = {tuple(tok(s, add_special_tokens=False)["input_ids"]) for s in a_set(B).unrelated}
    assert len(reread) == 2 and not earlier & own_b  # two of A's sentences, beside B's own four
    # taught by the model before any update, not by a model the updates have moved
    unchanged = teacher_pass(tiny, [dataclasses.replace(e, teacher=None) for e, _ in reread], m.config.train.top_k,
                             progress=False)
    assert all(torch.allclose(u.topk_logp, t.topk_logp, atol=1e-5) for u, (_, t) in zip(unchanged, reread))
    moved = teacher_pass(m.lm, [dataclasses.replace(e, teacher=None) for e, _ in reread], m.config.train.top_k,
                         progress=False)  # the model after the updates reads them otherwise
    assert not all(torch.allclose(a.topk_logp, t.topk_logp, atol=1e-5) for a, (_, t) in zip(moved, reread))
    with pytest.raises(ValueError, match="rehearsal_unrelated"):
        SelfParamConfig(rehearsal_unrelated=1, unrelated_teacher="context")


def kl_on(m: SelfParam, pairs) -> float:
    """Mean compact KL of `m`'s model (no context) to the teachers the pairs were kept with."""
    encoded = encode_share(m.lm, [p.example() for p in pairs])
    with torch.no_grad():
        return batch_loss(m.lm.model, m.lm, encoded, [p.teacher for p in pairs]).item()


def test_rehearsal_keeps_an_earlier_context_closer_to_its_teacher(lively):
    # the default tiny model's outputs barely depend on the context; with `lively` the teacher (context in
    # view) differs from the student, update 1 learns A and update 2 forgets part of it
    on, off = method(lively, rehearsal=8), method(lively)
    for m in (on, off):
        m.inject([Context("a", A)])
    a_pairs = on.records[0].rehearsal  # A's pairs with their teachers (update 1 is the same in both runs)
    right_after = kl_on(on, a_pairs)
    assert kl_on(off, a_pairs) == pytest.approx(right_after, rel=1e-5)  # same seeds, same first update
    for m in (on, off):
        m.inject([Context("b", B)])
    kl_with, kl_without = kl_on(on, a_pairs), kl_on(off, a_pairs)  # measured: 1.14 and 1.82 (1.45 right after A)
    assert kl_without > right_after  # B made the model forget part of A ...
    assert kl_with < 0.8 * kl_without  # ... and replaying A's pairs with their own teachers kept more of it


# -- pull back: a bound on the drift of many updates (issue 9, perplexity) --------------------------------
def weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_pull_back_shrinks_earlier_updates_before_the_next_and_load_does_the_same(tiny, tmp_path, monkeypatch):
    base = weights(tiny.model)
    m = method(tiny, epochs=1, pull_back=0.25)
    m.inject([Context("a", A)])
    after_a = weights(m.lm.model)
    assert "pulled_back" not in m.records[0].manifest  # nothing to pull back before the first update
    trained_from = []
    real = sp_method.train_and_merge
    monkeypatch.setattr(sp_method, "train_and_merge",
                        lambda lm, *a, **k: (trained_from.append(weights(lm.model)), real(lm, *a, **k))[1])
    m.inject([Context("b", B)])
    assert m.records[1].manifest["pulled_back"] == 0.25
    changed = [n for n in base if not torch.equal(base[n], after_a[n])]
    assert changed  # update a moved the LoRA targets; update b started from 3/4 of that move
    for n in changed:
        assert torch.allclose(trained_from[0][n] - base[n], 0.75 * (after_a[n] - base[n]), atol=1e-6)
    m.save(tmp_path / "inj")
    loaded = method(tiny, epochs=1, pull_back=0.25)
    loaded.load(tmp_path / "inj")
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(loaded.lm.model.parameters(), m.lm.model.parameters()))
    with pytest.raises(ValueError, match="pull_back"):
        SelfParamConfig(pull_back=1.0)
    manifest = tmp_path / "inj" / "updates" / "0002" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "pulled_back": 1.5}))
    kept = weights(loaded.lm.model)
    with pytest.raises(ValueError, match="pulled_back=1.5"):
        loaded.load(tmp_path / "inj")
    assert len(loaded.records) == 2  # refused before the loaded updates were touched
    assert all(torch.equal(kept[n], p) for n, p in loaded.lm.model.named_parameters())


def test_a_failed_update_with_pull_back_leaves_the_model_as_it_was(tiny):
    def second_fails(context: str) -> TargetSet:
        if context == B:
            raise RuntimeError("the generator went away")
        return pairs_about(context)

    m = method(tiny, builder=second_fails, epochs=1, pull_back=0.5)
    m.inject([Context("a", A)])
    before = weights(m.lm.model)
    with pytest.raises(RuntimeError, match="went away"):
        m.inject([Context("b", B)])
    assert len(m.records) == 1
    assert all(torch.allclose(before[n], p, atol=1e-6) for n, p in m.lm.model.named_parameters())


# -- hidden-state term beside the KL (issue 9 lever 5; Deep Context Distillation) --------------------------
def hidden_distance(student, teacher, encoded) -> float:
    """Mean `hidden_l1` over the scored tokens of `encoded`: `student` reading each without its teacher prefix
    against `teacher` reading it with it."""
    with torch.no_grad():
        taught = teacher_hidden(teacher, encoded, progress=False)
        _, mask, states = scored_outputs(student.model, student, [e.student_ids for e in encoded],
                                         [e.n_scored for e in encoded], hidden=True)
        terms = [hidden_l1(t, states[:, row][:, mask[row]]) for row, t in enumerate(taught)]
    return torch.cat(terms).mean().item()


def test_hidden_weight_brings_the_students_hidden_states_closer_to_the_teachers(tiny):
    with pytest.raises(ValueError, match="hidden_weight: must be >= 0"):
        SelfParamConfig(hidden_weight=-0.5)
    with pytest.raises(ValueError, match="hidden_weight"):
        SelfParamConfig(hidden_weight=float("nan"))
    assert SelfParamConfig().hidden_weight == 0.0  # off by default
    on, off = method(tiny, epochs=6, hidden_weight=1.0), method(tiny, epochs=6)
    for m in (on, off):
        m.inject([Context("a", A)])
    assert on.records[0].manifest["config"]["hidden_weight"] == 1.0
    # the update's examples, each read by its teacher (the unchanged `tiny`: the methods train copies)
    encoded = encode_share(tiny, distillation_examples(tiny.tokenizer, pairs_about(A), "context"))
    before = hidden_distance(tiny, tiny, encoded)
    with_term, without = hidden_distance(on.lm, tiny, encoded), hidden_distance(off.lm, tiny, encoded)
    # measured: 0.061 with the term, 0.131 without (the KL alone lets the states drift), 0.106 before training;
    # with train seeds 1 and 2 (and the tiny model seeded alike): 0.062 against 0.181, 0.060 against 0.123
    assert with_term < 0.7 * without
    assert with_term < before


def test_with_the_hidden_term_the_teacher_reads_each_example_once(tiny, monkeypatch):
    """The distributions and the hidden states of what the update's teacher teaches come from one forward
    (they were two passes over the same sequences); the anchor's sentences are read by the unchanged model."""
    m = method(tiny, epochs=1, rehearsal=2, unrelated_teacher="original", hidden_weight=0.5, context_copies=1,
               kl_span="pair")
    m.inject([Context("a", A)])
    reads = []
    real = teacher_module.scored_slots

    def spy(model, lm, sequences, *args, **kwargs):
        reads.extend((model, tuple(s)) for s in sequences)
        return real(model, lm, sequences, *args, **kwargs)

    monkeypatch.setattr(teacher_module, "scored_slots", spy)
    seen = capture_training(monkeypatch)
    m.inject([Context("b", B)])
    encoded, _ = seen[0]
    n_own = len(pairs_about(B).pairs)
    by_teacher = [s for model, s in reads if model is not tiny.model]
    by_original = [s for model, s in reads if model is tiny.model]
    # own pairs and the context read: once each by the model before this update; unrelated: once by the anchor
    assert sorted(by_teacher) == sorted(tuple(e.teacher_ids) for e in encoded[:n_own] + [encoded[n_own + 2]])
    assert sorted(by_original) == sorted(tuple(e.teacher_ids) for e in encoded[n_own:n_own + 2])


def test_context_teacher_original_has_the_unchanged_model_read_every_context(lively, monkeypatch):
    """With `context_teacher="original"` the model before any update writes the re-asked answers and teaches
    everything read with the context; the model after earlier updates reads nothing (replayed pairs keep their
    stored teachers). The paper's `current` reads with the model before this update."""
    for which in ("current", "original"):
        m = method(lively, builder=hand_made, epochs=1, rehearsal=2, unrelated_teacher="original",
                   context_teacher=which, context_copies=1, kl_span="pair", reask=3)
        m.inject([Context("old", OLD_FACT)])
        before = m.lm.model
        reads, writers = [], []
        real_outputs, real_answers = teacher_module.scored_slots, teacher_module.teacher_answers

        def spy(model, lm, sequences, *args, **kwargs):
            reads.extend((model, tuple(s)) for s in sequences)
            return real_outputs(model, lm, sequences, *args, **kwargs)

        def spy_answers(lm, prompts, *args, **kwargs):
            writers.append(lm.model)
            return real_answers(lm, prompts, *args, **kwargs)

        monkeypatch.setattr(teacher_module, "scored_slots", spy)
        monkeypatch.setattr(teacher_module, "teacher_answers", spy_answers)
        m.inject([Context("new", NEW_FACT)])
        monkeypatch.undo()
        reader = lively.model if which == "original" else before
        assert before is not lively.model and writers and all(w is reader for w in writers)  # the re-asked answer
        by_before = [s for model, s in reads if model is before]
        by_original = [s for model, s in reads if model is lively.model]
        with_context = len(m.last_targets[0].pairs) + 1  # its pairs (the re-asked one among them), one chunk read
        unrelated = len(m.last_targets[0].unrelated)      # read by the anchor either way
        assert any(e["kind"] == "reasked" for e in m.records[-1].manifest["extra_questions"][0])
        if which == "current":
            assert (len(by_before), len(by_original)) == (with_context, unrelated)
        else:
            assert (len(by_before), len(by_original)) == (0, with_context + unrelated)
    with pytest.raises(ValueError, match="context_teacher"):
        SelfParamConfig(context_teacher="base")


def test_hidden_states_come_from_each_examples_own_teacher_and_replayed_pairs_have_none(tiny, monkeypatch):
    m = method(tiny, epochs=1, rehearsal=2, unrelated_teacher="original", hidden_weight=0.5, context_copies=1)
    m.inject([Context("a", A)])
    seen = []
    real = sp_method.train_and_merge

    def spy(lm, encoded, teachers, *args, **kwargs):
        seen.append((list(encoded), list(teachers), kwargs["hidden"], kwargs["hidden_weight"]))
        return real(lm, encoded, teachers, *args, **kwargs)

    monkeypatch.setattr(sp_method, "train_and_merge", spy)
    before_b = weights(m.lm.model)
    m.inject([Context("b", B)])
    encoded, teachers, hidden, weight = seen[0]
    n_own = len(pairs_about(B).pairs)
    # own pairs, 2 unrelated, the context read once (one chunk), 2 replayed
    assert weight == 0.5 and len(hidden) == len(encoded) == n_own + 2 + 1 + 2
    assert all(h is None for h in hidden[-2:])                            # replayed: a stored teacher, no states
    n_layers, dim = tiny.model.config.num_hidden_layers, tiny.model.config.hidden_size
    assert all(h.shape == (n_layers, e.n_scored, dim) for h, e in zip(hidden[:-2], encoded))
    # own pairs: the model before this update (after A) with B in view; unrelated: the unchanged model (the
    # same batches as the update's passes, so the same numbers)
    teacher = dataclasses.replace(m.lm, model=copy_with(m.lm.model, before_b))
    own = teacher_hidden(teacher, encoded[:n_own], batch_size=2, progress=False)
    assert all(torch.equal(h, t) for h, t in zip(hidden[:n_own], own))
    read = teacher_hidden(teacher, [encoded[n_own + 2]], batch_size=2, progress=False)[0]  # the context read: the
    assert torch.allclose(hidden[n_own + 2].float(), read.float(), atol=1e-2)             # teacher, not the anchor
    original = teacher_hidden(tiny, encoded[n_own:n_own + 2], batch_size=2, progress=False)
    assert all(torch.equal(h, t) for h, t in zip(hidden[n_own:n_own + 2], original))
    assert not torch.equal(original[0], teacher_hidden(teacher, encoded[n_own:n_own + 2], batch_size=2,
                                                       progress=False)[0])
    # a batch of replayed pairs alone trains on the KL alone; another adds the weighted hidden term
    replayed = encoded[-2:]
    with torch.no_grad():
        assert batch_loss(tiny.model, tiny, replayed, teachers[-2:], hidden[-2:], 0.5).item() == \
            batch_loss(tiny.model, tiny, replayed, teachers[-2:]).item()
        own, own_teachers, own_hidden = encoded[:2], teachers[:2], hidden[:2]
        kl = batch_loss(tiny.model, tiny, own, own_teachers).item()
        _, mask, states = scored_outputs(tiny.model, tiny, [e.student_ids for e in own],
                                         [e.n_scored for e in own], hidden=True)
        term = torch.cat([hidden_l1(h, states[:, row][:, mask[row]]) for row, h in enumerate(own_hidden)]).mean()
        assert batch_loss(tiny.model, tiny, own, own_teachers, own_hidden, 0.5).item() == \
            pytest.approx(kl + 0.5 * term.item(), rel=1e-4)


def copy_with(model, state: dict[str, torch.Tensor]):
    """A copy of `model` with the parameters `state` holds."""
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in clone.named_parameters():
            p.copy_(state[n])
    return clone


# -- conflicting updates: re-ask earlier questions with the new context (issue 11 §2) ----------------------
OLD_FACT = "Danielle Darrieux speaks English at home."
NEW_FACT = "Danielle Darrieux speaks French at home."
UNRELATED_FACT = "Quenby hosts the Zorblat festival every May."


def hand_made(context: str) -> TargetSet:
    own = {OLD_FACT: [QAPair("What language does Danielle Darrieux speak?", "English.")],
           UNRELATED_FACT: [QAPair("Which festival does Quenby host?", "The Zorblat festival.")],
           NEW_FACT: [QAPair("Where does Darrieux speak French?", "At home.")]}
    return TargetSet(context, own[context])


def test_reask_rule_on_hand_made_histories():
    history = [(OLD_FACT, ["What language does Danielle Darrieux speak?", "Who was Danielle Darrieux?",
                           "What is English?"]),
               (UNRELATED_FACT, ["Which festival does Quenby host?"]),
               (NEW_FACT, ["What language does Danielle Darrieux speak?"])]
    assert reask_questions(history, NEW_FACT, 5) == [
        ("What language does Danielle Darrieux speak?", OLD_FACT), ("Who was Danielle Darrieux?", OLD_FACT)]
    assert reask_questions(history, NEW_FACT, 1) == [("What language does Danielle Darrieux speak?", OLD_FACT)]
    assert reask_questions(history, NEW_FACT, 0) == []
    # case-blind; a question stored twice is re-asked once, from the newest context that holds it
    assert reask_questions(history, "The DANIELLE DARRIEUX archive opened.", 5) == [
        ("What language does Danielle Darrieux speak?", NEW_FACT), ("Who was Danielle Darrieux?", OLD_FACT)]


@pytest.mark.parametrize("reask", [0, 3])
def test_a_contradicting_context_reasks_the_earlier_questions_with_itself_in_view(lively, monkeypatch, reask):
    m = method(lively, builder=hand_made, epochs=1, reask=reask)
    m.inject([Context("old", OLD_FACT)])
    m.inject([Context("other", UNRELATED_FACT)])
    prompts = capture_teacher_prompts(monkeypatch)
    m.inject([Context("new", NEW_FACT)])
    questions = {p.question: p.answer for p in m.last_targets[0].pairs}
    assert "Which festival does Quenby host?" not in questions  # no entity in common: not re-asked
    asked = "What language does Danielle Darrieux speak?"
    if not reask:
        assert asked not in questions and not prompts and "extra_questions" not in m.records[-1].manifest
        return
    assert asked in questions
    (prompt,) = [p for p in prompts if asked in p]
    assert NEW_FACT in prompt and OLD_FACT not in prompt  # the teacher answered with the NEW context in view
    assert questions[asked] == prompts[prompt].strip() != "English."
    (extra,) = m.records[-1].manifest["extra_questions"]
    assert [e["question"] for e in extra] == [asked] and extra[0]["kind"] == "reasked"



def replay_pair(context: str, question: str, answer: str, kl_span: str = "answer") -> RehearsalPair:
    """A stored pair as `distillation_examples` cuts it: under "pair" the question and the rest of the prompt
    (here "\nA: ") open the scored text."""
    none = torch.zeros(1, 1)
    if kl_span == "pair":
        return RehearsalPair(context, "Q: ", f"{context}\nQ: ", f"{question}\nA: {answer}",
                             CompactTeacher(none, none.long(), none[:, 0]))
    return RehearsalPair(context, question_turn(question), question_turn(question, context), answer,
                         CompactTeacher(none, none.long(), none[:, 0]))


@pytest.mark.parametrize("kl_span", ["answer", "pair"])
def test_superseded_pairs_are_those_the_new_context_speaks_against(kl_span):
    calls = []

    def token_logprobs(prefixes, texts):  # the new context makes "English" 6 nats less likely, nothing else
        calls.extend(zip(prefixes, texts))
        return [torch.tensor([0.0, -6.0 if "French" in p and t.startswith("English") else -0.5, 0.0])
                for p, t in zip(prefixes, texts)]

    pairs = [replay_pair(OLD_FACT, "What language does Danielle Darrieux speak?", "English.", kl_span),
             replay_pair(OLD_FACT, "Who was Danielle Darrieux?", "An actress.", kl_span),
             replay_pair(UNRELATED_FACT, "Which festival does Quenby host?", "The Zorblat festival.", kl_span),
             replay_pair(NEW_FACT, "What language does Danielle Darrieux speak?", "English.", kl_span)]
    assert superseded(pairs, NEW_FACT, 3.0, token_logprobs, "\nA: ") == [True, False, False, False]
    assert not any("Quenby" in p for p, _ in calls)  # no entity in common: never scored
    assert not any(NEW_FACT in p and OLD_FACT in p for p, _ in calls)  # the new context replaces the old one
    # only the answers are scored, the question stands in both prompts whichever span stored the pair
    assert {t for _, t in calls} == {"English.", "An actress."}
    assert all("Danielle Darrieux" in p for p, _ in calls)
    assert superseded(pairs, NEW_FACT, 7.0, token_logprobs, "\nA: ") == [False] * 4  # 6 nats: under the bar
    with pytest.raises(ValueError, match="nats"):
        superseded(pairs, NEW_FACT, 0.0, token_logprobs, "\nA: ")


@pytest.mark.parametrize("nats,kl_span", [(0.0, "answer"), (3.0, "answer"), (3.0, "pair")])
def test_rehearsal_leaves_out_the_pairs_a_later_context_contradicts(lively, monkeypatch, nats, kl_span):
    def token_logprobs(lm, prefixes, texts, batch_size):
        assert lm is m.lm  # scored by the model before the update
        return [torch.tensor([-9.0 if NEW_FACT in p and t.startswith("English") else -1.0])
                for p, t in zip(prefixes, texts)]

    monkeypatch.setattr(sp_method, "target_token_logprobs", token_logprobs)
    m = method(lively, builder=hand_made, epochs=1, rehearsal=5, rehearsal_superseded=nats, kl_span=kl_span)
    for name, fact in (("old", OLD_FACT), ("other", UNRELATED_FACT), ("new", NEW_FACT)):
        m.inject([Context(name, fact)])
    replay = m.records[-1].manifest["rehearsal"]
    digest = sp_method._digest
    if not nats:
        assert replay["replayed_pairs"] == 2 and replay["superseded_pairs"] == 0
        return
    # the English pair is contradicted by the new context and left out; Quenby's pair is replayed
    assert replay["replayed_pairs"] == 1 and replay["superseded_pairs"] == 1
    assert replay["replayed_from"] == [digest(UNRELATED_FACT)]
    with pytest.raises(ValueError, match="rehearsal_superseded"):
        SelfParamConfig(rehearsal_superseded=-1.0)


@pytest.mark.parametrize("replaces,kl_span", [(False, "answer"), (True, "answer"), (True, "pair")])
def test_a_reasked_question_replaces_its_replayed_pair(lively, replaces, kl_span):
    m = method(lively, builder=hand_made, epochs=1, rehearsal=5, reask=3, reask_replaces=replaces, kl_span=kl_span)
    for name, fact in (("old", OLD_FACT), ("other", UNRELATED_FACT), ("new", NEW_FACT)):
        m.inject([Context(name, fact)])
    asked = "What language does Danielle Darrieux speak?"
    assert asked in {p.question for p in m.last_targets[0].pairs}  # re-asked with the new context in view
    replay = m.records[-1].manifest["rehearsal"]
    if not replaces:  # the old answer to the same question is replayed beside the new one
        assert replay["replayed_pairs"] == 2 and replay["replaced_by_reask"] == 0
        return
    assert replay["replayed_pairs"] == 1 and replay["replaced_by_reask"] == 1  # Quenby's pair is still replayed
    assert replay["replayed_from"] == [sp_method._digest(UNRELATED_FACT)]
    assert SelfParamConfig().reask_replaces  # on by default (acts only with reask and rehearsal on)

@pytest.mark.parametrize("kl_span", ["answer", "pair"])
def test_a_replayed_pair_is_replaced_only_by_its_whole_question(tiny, kl_span):
    questions = ["Who wrote it?", "Who wrote it first?", "Tell me: Who wrote it?"]
    ts = TargetSet(A, [QAPair(q, "Ann.") for q in questions])
    stored = [RehearsalPair(A, e.student_prefix, e.teacher_prefix, e.text, None)
              for e in distillation_examples(tiny.tokenizer, ts, "context", kl_span=kl_span)]
    answer_after = after_question(tiny.tokenizer)
    assert [asks(p, ["Who wrote it?"], answer_after) for p in stored] == [True, False, False]
    assert [asks(p, ["  Who wrote it first? "], answer_after) for p in stored] == [False, True, False]
    assert not any(asks(p, ["wrote it"], answer_after) for p in stored)
    read = dataclasses.replace(stored[0], kind="read")  # a chunk of a context read asks nothing
    assert not asks(read, ["Who wrote it?"], answer_after)


# -- near misses (issue 11 §3) ------------------------------------------------------------------------------
LOVELACE = "Ada Lovelace worked with Charles Babbage in London in 1843."


def lovelace(context: str) -> TargetSet:
    return TargetSet(context, [QAPair("Where did Ada Lovelace work?", "In London."),
                               QAPair("When did Charles Babbage work in London?", "In 1843.")])


def test_near_miss_questions_swap_entities_and_relations():
    questions = [p.question for p in lovelace(LOVELACE).pairs]
    assert other_entity_questions(questions[0], ["Ada Lovelace", "Charles Babbage", "London", "1843"], 3,
                                  random.Random(0)) == ["Where did Charles Babbage work?", "Where did London work?"]
    assert other_relation_questions(questions, ["Ada Lovelace", "Charles Babbage", "London"]) == [
        "When did Ada Lovelace work in London?", "Where did Charles Babbage work?"]
    made = near_miss_questions(questions, LOVELACE, 10, seed=0)
    assert "When did Ada Lovelace work in London?" in made and "Where did Charles Babbage work?" in made
    assert len(made) == len(set(made)) and not set(made) & set(questions)
    assert near_miss_questions(questions, LOVELACE, 10, seed=0) == made  # seeded
    assert len(near_miss_questions(questions, LOVELACE, 2, seed=0)) == 2


@pytest.mark.parametrize("near_misses", [0, 2])
def test_near_misses_join_the_target_set_answered_with_the_context_in_view(lively, monkeypatch, near_misses):
    prompts = capture_teacher_prompts(monkeypatch)
    m = method(lively, builder=lovelace, epochs=1, near_misses=near_misses)
    m.inject([Context("l", LOVELACE)])
    pairs = {p.question: p.answer for p in m.last_targets[0].pairs}
    expected = near_miss_questions(list(lovelace(LOVELACE).pairs[i].question for i in range(2)), LOVELACE,
                                   near_misses, seed=m.targets.seed)
    assert len(pairs) == 2 + len(expected) and len(expected) == near_misses
    for q in expected:
        (prompt,) = [p for p in prompts if q in p]
        assert LOVELACE in prompt and pairs[q] == prompts[prompt].strip()
    if near_misses:
        assert [e["question"] for e in m.records[-1].manifest["extra_questions"][0]] == expected
        assert m.records[-1].manifest["targets"][0]["pairs"][2]["question"] == expected[0]


DARRIEUX = "The mother tongue of Danielle Darrieux is English."


def darrieux(context: str) -> TargetSet:
    return TargetSet(context, [QAPair("What is the mother tongue of Danielle Darrieux?", "English.")],
                     unrelated=["Robert Boulter is an English film actor.", "Du Fu lived in Chengdu in 759."])


def test_near_misses_of_a_one_sentence_fact_ask_about_entities_from_other_text():
    questions = [p.question for p in darrieux(DARRIEUX).pairs]
    assert near_miss_questions(questions, DARRIEUX, 10, seed=0) == [
        "What is the mother tongue of English?"]  # the context's own entities only: its object as a subject
    made = near_miss_questions(questions, DARRIEUX, 10, seed=0, outside=darrieux(DARRIEUX).unrelated)
    others = ("Robert Boulter", "Du Fu", "Chengdu", "English")
    assert set(made) == {f"What is the mother tongue of {e}?" for e in others}
    assert made[1] == "What is the mother tongue of English?"  # outside and own entities in turn, outside first
    assert not any("759" in q for q in made)  # a number never stands in for a name
    assert near_miss_questions(questions, DARRIEUX, 10, seed=0, outside=["English is spoken by Danielle."]) == [
        "What is the mother tongue of English?"]  # entities the context names are not outside ones


def test_near_misses_draw_other_entities_from_unrelated_sentences_and_earlier_contexts(lively):
    m = method(lively, builder=darrieux, epochs=1, near_misses=4)
    m.inject([Context("d", DARRIEUX)])
    asked = {p.question for p in m.last_targets[0].pairs}
    assert {"What is the mother tongue of Robert Boulter?", "What is the mother tongue of Du Fu?"} <= asked
    m.inject([Context("l", "The mother tongue of Ada Lovelace is Latin.")])
    later = {p.question for p in m.last_targets[0].pairs}
    assert "What is the mother tongue of Danielle Darrieux?" in later  # the earlier context's subject


def test_near_misses_taught_by_the_base_keep_its_answer_without_the_context(lively, monkeypatch):
    prompts = capture_teacher_prompts(monkeypatch)
    seen = capture_training(monkeypatch)
    m = method(lively, builder=darrieux, epochs=1, near_misses=2, near_miss_teacher="base")
    m.inject([Context("d", DARRIEUX)])
    anchors = m.records[-1].manifest["near_miss_anchors"][0]
    assert [a["question"] for a in anchors] == near_miss_questions(
        ["What is the mother tongue of Danielle Darrieux?"], DARRIEUX, 2, m.targets.seed,
        outside=darrieux(DARRIEUX).unrelated)
    assert [p.question for p in m.last_targets[0].pairs] == ["What is the mother tongue of Danielle Darrieux?"]
    for a in anchors:  # answered by the model before the update, the context not in view
        (prompt,) = [p for p in prompts if a["question"] in p]
        assert DARRIEUX not in prompt and a["answer"] == prompts[prompt].strip()
    encoded, teachers = seen[-1]
    assert len(encoded) == 1 + 2 + len(anchors)  # the pair, the unrelated sentences, the anchors
    for e in encoded[-len(anchors):]:  # the teacher reads what the student reads: an anchor, not the fact
        assert e.teacher_ids == e.student_ids
    with pytest.raises(ValueError, match="near_miss_teacher"):
        SelfParamConfig(near_miss_teacher="oracle")


# -- the CLI: `selfparam inject --rehearsal/--reask/--near-misses` -----------------------------------------
def test_inject_flags_reach_the_method_and_a_bad_value_changes_nothing(tmp_path):
    from typer.testing import CliRunner

    from selfparam.cli import app

    folder = tmp_path / "tiny"
    lm = tiny_lm(seed=0)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"context": ts.context, "question": p.question, "answer": p.answer})
                               for ts in (pairs_about(A), pairs_about(B)) for p in ts.pairs))
    files = []
    for name, text in (("a", A), ("b", B)):
        files.append(tmp_path / f"{name}.txt")
        files[-1].write_text(text)

    def inject(out, *flags):
        return CliRunner().invoke(app, [str(a) for a in [
            "inject", *files, "--out", out, "--model", folder, "--pairs-file", pairs, "--n-pairs", "4", "--epochs", "1",
            "--device", "cpu", "--dtype", "fp32", "--answers", "generator", "--mode", "sequential", *flags]])

    result = inject(tmp_path / "bad", "--rehearsal", "-1")
    assert result.exit_code == 2 and "rehearsal" in result.output and not (tmp_path / "bad").exists()
    result = inject(tmp_path / "bad", "--hidden-weight", "-0.5")
    assert result.exit_code == 2 and "hidden_weight: must be >= 0" in result.output
    assert not (tmp_path / "bad").exists()
    result = inject(tmp_path / "bad", "--rehearsal-unrelated", "1", "--unrelated-teacher", "context")
    assert result.exit_code == 2 and "rehearsal_unrelated" in result.output and not (tmp_path / "bad").exists()
    out = tmp_path / "run"
    result = inject(out, "--rehearsal", "2", "--reask", "3", "--near-misses", "1", "--near-miss-teacher", "base",
                    "--rehearsal-unrelated", "1", "--unrelated-teacher", "base", "--pull-back", "0.1",
                    "--hidden-weight", "0.5", "--nll-weight", "0.25", "--no-reask-replaces", "--teacher-shots", "2")
    assert result.exit_code == 0, result.output
    second = json.loads((out / "updates" / "0002" / "manifest.json").read_text())
    assert (second["config"]["rehearsal"], second["config"]["reask"], second["config"]["near_misses"]) == (2, 3, 1)
    assert second["config"]["unrelated_teacher"] == "base" and second["config"]["rehearsal_unrelated"] == 1
    assert second["config"]["near_miss_teacher"] == "base" and second["pulled_back"] == 0.1
    assert second["config"]["hidden_weight"] == 0.5 and second["config"]["nll_weight"] == 0.25
    assert second["config"]["reask_replaces"] is False and second["rehearsal"]["replaced_by_reask"] == 0
    assert second["config"]["teacher_shots"] == 2
    assert second["rehearsal"]["replayed_pairs"] == 2 and (out / "updates" / "0001" / TEACHER_FILE).is_file()


# -- worked examples for the teacher (issue 9: the student learns to answer with the words that answer) -----
TWO = "Ann came in 1990. Bo left Rome."  # two short sentences (the tiny model reads 512 bytes): a cloze each


def test_teacher_shots_show_the_teacher_the_contexts_facts_and_the_student_the_question_alone(lively, monkeypatch):
    written = capture_teacher_prompts(monkeypatch)
    seen = capture_training(monkeypatch)
    # the paper's questions, re-answered by the teacher at inject time (fact sets carry answers from their building)
    cfg = SelfParamConfig(targets=TargetConfig(answers="teacher", questions="paper"),
                          train=TrainConfig(epochs=1, batch_size=2), rehearsal=0, context_copies=0, kl_span="pair",
                          teacher_shots=2)
    m = SelfParam(lively, cfg, Resources(target_builder=pairs_about), progress=False)
    m.inject([Context("two", TWO)])
    tok, shown = lively.tokenizer, context_demonstrations(TWO, 2)
    questions = [p.question for p in pairs_about(TWO).pairs]
    assert len(shown) == 2
    assert set(written) == {teacher_prompt(tok, q, TWO, 2) for q in questions}  # it wrote every answer after them
    encoded, _ = seen[0]
    pairs = encoded[:len(m.last_targets[0].pairs)]
    assert pairs and len(m.last_targets[0].pairs) == len(questions)
    for e in pairs:
        teacher_text, student_text = tok.decode(e.teacher_ids), tok.decode(e.student_ids)
        assert shown[0][0] in teacher_text and shown[1][1] in teacher_text and TWO in teacher_text
        assert TWO not in student_text and shown[0][0] not in student_text
    assert m.records[-1].manifest["config"]["teacher_shots"] == 2
    with pytest.raises(ValueError, match="teacher_shots"):
        SelfParamConfig(teacher_shots=-1)


def test_reading_a_context_is_what_the_next_updates_teacher_would_say(lively, monkeypatch):
    """`answer_in_context` (the conflict and boundary evaluations' reading) asks the model that would teach the
    next update, with the prompt it would teach with."""
    asked = []
    monkeypatch.setattr(prompted, "generate", lambda lm, prompts, **kw: (asked.append((lm, list(prompts))),
                                                                         ["x"] * len(prompts))[1])
    for which, shots in (("current", 0), ("original", 2)):
        m = method(lively, epochs=1, context_teacher=which, teacher_shots=shots)
        m.inject([Context("a", A)])
        assert m.answer_in_context([Query("Where?", TWO)]) == ["x"]
        lm, prompts = asked[-1]
        assert (lm is lively) == (which == "original") and (lm is m.lm) == (which == "current")
        assert prompts == [teacher_prompt(lively.tokenizer, "Where?", TWO, shots)]
        with pytest.raises(ValueError, match="no context"):
            m.answer_in_context([Query("Where?")])


# -- the context read (issue 9, lever 1 beside the pairs: the facts stated as well as asked) ---------------
def text_nll(lm, text: str) -> float:
    """Mean next-token NLL of `text` read alone (every token after the first)."""
    ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return -logp.gather(-1, ids[0, 1:].unsqueeze(-1)).mean().item()


def test_context_copies_add_the_context_taught_by_the_model_reading_it(tiny, monkeypatch):
    seen = capture_training(monkeypatch)
    m = method(tiny, epochs=1, context_copies=3, rehearsal=2)
    m.inject([Context("a", A)])
    encoded, _ = seen[0]
    tok = m.lm.tokenizer
    text_ids = tok(A, add_special_tokens=False)["input_ids"]
    read = [e for e in encoded if e.student_ids == text_ids]
    assert len(read) == 3 and len(encoded) == 5 + 2 + 3       # pairs, unrelated sentences, the context 3 times
    block = tok(A + "\n\n", add_special_tokens=False)["input_ids"]
    assert all(e.teacher_ids == block + text_ids and e.n_scored == len(text_ids) - 1 for e in read)
    assert len(m.records[0].rehearsal) == 5                    # rehearsal keeps the pairs alone
    assert m.records[0].manifest["context_read"] == {"copies": 3, "chunk_tokens": 128}
    with pytest.raises(ValueError, match="context_copies"):
        SelfParamConfig(context_copies=-1)


def test_context_copies_teach_the_context_text_without_it(lively):
    nll = {}
    for copies in (0, 4):
        m = method(lively, context_copies=copies)
        m.inject([Context("a", A)])
        nll[copies] = text_nll(m.lm, A)
    assert nll[4] < nll[0] - 0.1, nll


# -- the KL's span (the paper's: the whole target sentence) -------------------------------------------------
def test_kl_span_pair_scores_the_question_and_answer_after_the_same_prompts(tiny):
    ts = pairs_about(A)
    tok = tiny.tokenizer
    by_answer = distillation_examples(tok, ts, kl_span="answer")
    by_pair = distillation_examples(tok, ts, kl_span="pair")
    for a, p, pair in zip(by_answer, by_pair, ts.pairs):
        assert p.text.startswith(pair.question) and p.text.endswith(a.text)
        assert p.student_prefix + p.text == a.student_prefix + a.text        # the same strings are read ...
        assert p.teacher_prefix + p.text == a.teacher_prefix + a.text
        assert A in p.teacher_prefix and A not in p.student_prefix
        assert encode(tok, p, 512).n_scored > encode(tok, a, 512).n_scored  # ... more of them are scored
        # a stored pair of either span cuts back into the same prompts and answer (the superseded filter)
        stored = [RehearsalPair(A, e.student_prefix, e.teacher_prefix, e.text, None) for e in (a, p)]
        cuts = [asked_and_answer(r, after_question(tok)) for r in stored]
        assert cuts[0] == cuts[1] == (a.student_prefix, a.teacher_prefix, a.text)
    assert by_pair[len(ts.pairs):] == by_answer[len(ts.pairs):]             # unrelated sentences as before
    with pytest.raises(ValueError, match="kl_span"):
        SelfParamConfig(kl_span="sentence")


def test_nll_on_answers_puts_the_hard_label_on_the_pairs_alone(tiny, monkeypatch):
    with pytest.raises(ValueError, match="nll_on: 'pairs' is not one of all, answers"):
        SelfParamConfig(nll_on="pairs")
    assert SelfParamConfig().nll_on == "answers"  # measured better than "all" (docs/tuning.md)
    encoded = encode_share(tiny, distillation_examples(tiny.tokenizer, pairs_about(A), "context"))
    teachers = teacher_pass(tiny, encoded, 16, progress=False)
    n = len(encoded)
    with torch.no_grad():
        kl = batch_loss(tiny.model, tiny, encoded, teachers).item()
        every = batch_loss(tiny.model, tiny, encoded, teachers, nll_weight=0.5).item()
        none = batch_loss(tiny.model, tiny, encoded, teachers, nll_weight=0.5, hard=[False] * n).item()
        flagged = batch_loss(tiny.model, tiny, encoded, teachers, nll_weight=0.5, hard=[True] * n).item()
        some = batch_loss(tiny.model, tiny, encoded, teachers, nll_weight=0.5, hard=[True] + [False] * (n - 1)).item()
    assert none == pytest.approx(kl, rel=1e-5) and flagged == pytest.approx(every, rel=1e-5)
    assert kl < some < every
    # in an update: the flags mark this context's pairs and the replayed pairs; not its unrelated sentences nor its read
    real = sp_method.train_and_merge
    seen = []

    def spy(lm, encoded, teachers, *args, **kwargs):
        seen.append((len(encoded), kwargs.get("hard")))
        return real(lm, encoded, teachers, *args, **kwargs)

    monkeypatch.setattr(sp_method, "train_and_merge", spy)
    m = method(tiny, epochs=1, nll_weight=1.0, rehearsal=3, context_copies=2)  # nll_on="answers", the default
    m.inject([Context("a", A)])
    m.inject([Context("b", B)])
    n_pairs, n_then = len(pairs_about(A).pairs), len(pairs_about(B).pairs)
    (n1, first), (n2, second) = seen
    assert len(first) == n1 and sum(first) == n_pairs and first[:n_pairs] == [True] * n_pairs
    assert not any(first[n_pairs:])  # the 2 unrelated sentences and the read that follow
    assert len(second) == n2 and sum(second) == n_then + 3 and second[-3:] == [True] * 3  # + the 3 replayed
    assert m.records[0].manifest["config"]["nll_on"] == "answers"
    method(tiny, epochs=1, nll_weight=1.0, nll_on="all").inject([Context("a", A)])  # no flags: every token
    assert seen[-1][1] is None
    with pytest.raises(ValueError, match="hard: one flag per example, got 1"):
        real(tiny, encoded, teachers, m.config.adapter, m.config.train, progress=False, nll_weight=1.0, hard=[True])


def test_each_update_says_the_loss_left_per_kind_of_example(tiny, monkeypatch):
    seen = capture_argument(monkeypatch, "groups")
    m = method(tiny, epochs=1, rehearsal=3, context_copies=2, unrelated_teacher="original")
    m.inject([Context("a", A)])
    m.inject([Context("b", B)])
    n_a, n_b = len(pairs_about(A).pairs), len(pairs_about(B).pairs)
    first, second = seen
    n_read = len(first) - n_a - 2
    assert n_read > 0 and first == ["pairs"] * n_a + ["unrelated"] * 2 + ["read"] * n_read
    assert second[:n_b + 2] == ["pairs"] * n_b + ["unrelated"] * 2 and second[-3:] == ["replayed_pairs"] * 3
    for record, groups in zip(m.records, seen):  # the manifest says each kind's loss, and only the kinds trained
        by_group = record.manifest["stats"]["loss_by_group"]
        assert set(by_group) == set(groups) and all(v >= 0 for v in by_group.values())
    assert m.last_stats.loss_by_group == m.records[-1].manifest["stats"]["loss_by_group"]


def test_loss_by_group_is_each_groups_mean_token_loss_over_the_last_epoch(lively):
    examples = distillation_examples(lively.tokenizer, pairs_about(A), "context")
    encoded = encode_share(lively, examples)
    teachers = teacher_pass(lively, encoded, 16, progress=False)
    groups = ["pairs" if i < len(pairs_about(A).pairs) else "unrelated" for i in range(len(encoded))]
    expected = {}
    with torch.no_grad():  # an lr too small to move the weights: the last epoch sees the model as it is now
        for g in set(groups):
            idx = [i for i, x in enumerate(groups) if x == g]
            tokens = sum(encoded[i].n_scored for i in idx)
            expected[g] = sum(batch_loss(lively.model, lively, [encoded[i]], [teachers[i]]).item()
                              * encoded[i].n_scored for i in idx) / tokens
    _, stats = train_and_merge(lively, encoded, teachers, SelfParamConfig().adapter,
                               TrainConfig(epochs=2, batch_size=3, lr=1e-12), progress=False, groups=groups)
    assert stats.loss_by_group == pytest.approx(expected, rel=1e-3)
    assert abs(expected["pairs"] - expected["unrelated"]) > 0.05 * max(expected.values())  # the labels matter
    with pytest.raises(ValueError, match="groups: one label per example, got 1"):
        train_and_merge(lively, encoded, teachers, SelfParamConfig().adapter, TrainConfig(epochs=1),
                        progress=False, groups=["pairs"])


def test_unrelated_weight_counts_the_anchors_tokens_more_and_keeps_them_closer(lively, monkeypatch):
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="unrelated_weight: must be > 0"):
            SelfParamConfig(unrelated_weight=bad)
    assert SelfParamConfig().unrelated_weight == 1.0  # the paper's: every token counts the same
    values, mask = torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[True, True], [False, True]])
    assert masked_mean(values, mask, torch.tensor([1.0, 4.0])).item() == pytest.approx((1 + 2 + 4 * 5) / 6)
    seen, stats, m = anchor_lever_runs(lively, monkeypatch, "weights", "unrelated_weight", (1.0, 8.0), epochs=4)
    left = {weight: s.loss_by_group for weight, s in stats.items()}
    n_pairs = len(pairs_about(A).pairs)
    assert seen[0] is None and seen[1] == [1.0] * n_pairs + [8.0] * 2  # the pairs, then the two sentences
    # on this tiny model, weighted up, the anchor's sentences end closer to the unchanged model than at weight 1
    # (on the embedded model they did not: docs/results/tuning/sequential-t5-unrelated-weight/)
    assert left[8.0]["unrelated"] < 0.85 * left[1.0]["unrelated"], left
    encoded = encode_share(lively, distillation_examples(lively.tokenizer, pairs_about(A), "context"))
    teachers = teacher_pass(lively, encoded, 16, progress=False)
    with pytest.raises(ValueError, match="weights: one weight > 0 per example"):
        train_and_merge(lively, encoded, teachers, m.config.adapter, m.config.train, progress=False, weights=[1.0])


def test_step_plan_rides_the_flagged_examples_along_in_every_step():
    plain = step_plan(10, 4, 2, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # off: each epoch a seeded permutation cut into batches, as always
    expected = []
    for _ in range(2):
        order = torch.randperm(10, generator=g).tolist()
        expected.append([order[i:i + 4] for i in range(0, 10, 4)])
    assert plain == expected
    riders = [i in (2, 5, 7) for i in range(10)]
    assert step_plan(10, 4, 2, torch.Generator().manual_seed(3), riders) == plain  # flags alone change nothing
    plan = step_plan(10, 4, 3, torch.Generator().manual_seed(3), riders, riders_per_step=2)
    steps = [s for epoch in plan for s in epoch]
    assert len(steps) == 3 * 2  # the 7 others make up the steps: two per epoch
    for epoch in plan:  # every other example once per epoch
        assert sorted(i for s in epoch for i in s if not riders[i]) == [i for i in range(10) if not riders[i]]
    for s in steps:  # every step: its batch of others, then two riders, two different ones
        assert [riders[i] for i in s][-2:] == [True, True] and s[-1] != s[-2] and sum(riders[i] for i in s) == 2
    used = [i for s in steps for i in s if riders[i]]
    assert sorted(used.count(i) for i in (2, 5, 7)) == [4, 4, 4]  # taken in turn: each as often
    assert [len(s) for s in step_plan(6, 4, 1, torch.Generator(), [i == 0 for i in range(6)], 3)[0]] == [5, 2]
    with pytest.raises(ValueError, match="riders: one flag per example, got 2 for 10"):
        step_plan(10, 4, 1, torch.Generator(), [True, False], 1)
    with pytest.raises(ValueError, match="every example rides along"):
        step_plan(3, 4, 1, torch.Generator(), [True] * 3, 1)


def test_anchor_per_step_puts_the_anchors_sentences_in_every_step(lively, monkeypatch):
    with pytest.raises(ValueError, match="anchor_per_step: must be >= 0"):
        SelfParamConfig(anchor_per_step=-1)
    assert SelfParamConfig().anchor_per_step == 0  # the paper's: each sentence takes a place in a random batch
    seen, stats, m = anchor_lever_runs(lively, monkeypatch, "riders", "anchor_per_step", (0, 1), epochs=2)
    n_pairs = len(pairs_about(A).pairs)
    assert seen[0] is None and seen[1] == [False] * n_pairs + [True] * 2  # the pairs, then the anchor's two sentences
    assert stats[0].steps == 2 * math.ceil((n_pairs + 2) / 2) and stats[1].steps == 2 * math.ceil(n_pairs / 2)
    assert m.records[-1].manifest["config"]["anchor_per_step"] == 1
    # in every step, the anchor's sentences end closer to the unchanged model than with a place in two of them
    left = {per_step: s.loss_by_group["unrelated"] for per_step, s in stats.items()}
    assert left[1] < 0.85 * left[0], left
    # each process would make up its own steps from its own share: refused under data parallelism
    monkeypatch.setattr(trainer_module, "PartialState", lambda: SimpleNamespace(num_processes=2, process_index=0))
    with pytest.raises(ValueError, match="riders_per_step .* one process only"):
        train_and_merge(lively, [], None, m.config.adapter, m.config.train, riders=[True], riders_per_step=1)


def test_kl_span_pair_brings_the_student_closer_to_the_teacher_on_the_questions(lively):
    pair_examples = distillation_examples(lively.tokenizer, pairs_about(A), kl_span="pair")[:5]
    encoded = [encode(lively.tokenizer, e, 512) for e in pair_examples]
    teachers = teacher_pass(lively, encoded, top_k=64, progress=False)  # the unchanged model: the update's teacher
    kl = {}
    for span in ("answer", "pair"):
        m = method(lively, kl_span=span)
        m.inject([Context("a", A)])
        with torch.no_grad():
            kl[span] = batch_loss(m.lm.model, m.lm, encoded, teachers).item()
    assert kl["pair"] < kl["answer"], kl


def test_nll_weight_adds_each_tokens_hard_label_to_the_kl(tiny):
    with pytest.raises(ValueError, match="nll_weight: must be >= 0"):
        SelfParamConfig(nll_weight=-1.0)
    assert SelfParamConfig().nll_weight == 0.0  # off by default: the paper's KL alone
    encoded = encode_share(tiny, distillation_examples(tiny.tokenizer, pairs_about(A), "context"))
    teachers = teacher_pass(tiny, encoded, 16, progress=False)
    with torch.no_grad():
        kl = batch_loss(tiny.model, tiny, encoded, teachers).item()
        nll = batch_loss(tiny.model, tiny, encoded, None).item()  # FT's next-token loss on the same tokens
        both = batch_loss(tiny.model, tiny, encoded, teachers, nll_weight=0.5).item()
    assert both == pytest.approx(kl + 0.5 * nll, rel=1e-4)
    # trained with it, the student gives the pairs' own tokens more probability than the KL alone teaches
    on, off = method(tiny, nll_weight=1.0), method(tiny)
    for m in (on, off):
        m.inject([Context("a", A)])
    assert on.records[0].manifest["config"]["nll_weight"] == 1.0
    with torch.no_grad():
        nll_on, nll_off = (batch_loss(m.lm.model, m.lm, encoded, None).item() for m in (on, off))
    assert nll_on < nll_off
