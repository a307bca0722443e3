"""The unrelated corpus, building a target set, saving/loading it and the per-context cache."""

from __future__ import annotations

import json

import pytest

from selfparam.targets import (
    CachedTargetBuilder,
    JsonlGenerator,
    QAPair,
    TargetSet,
    UnrelatedCorpus,
    build_target_set,
    context_key,
    detokenize,
    load_target_set,
    save_target_set,
    split_sentences,
)
from selfparam.targets.build import target_set_to_dict
from selfparam.targets.builder import make_target_builder
from selfparam.targets.config import TargetConfig
from selfparam.testing import tiny_lm

CTX = "Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun."
SENTENCES = [f"Sentence number {i} talks about rivers, mountains and the weather in the north." for i in range(40)]


class ListGenerator:
    """A generator that returns fixed pairs and counts its calls."""

    description = "list"

    def __init__(self, pairs: list[QAPair]):
        self.pairs, self.calls = pairs, 0

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        self.calls += 1
        return list(self.pairs)


GOOD = [QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist."),
        QAPair("When did the Blue Heron bakery open?", "In 2019."),
        QAPair("Where is the Blue Heron bakery?", "In Tromsø."),
        QAPair("What is the best seller of the Blue Heron bakery?", "A cardamom bun.")]
JUNK = [QAPair("Summarize the passage.", "A bakery."), QAPair("Who opened the Blue Heron bakery?", "Mara"),
        QAPair("Who was the bakery's first customer?", "Jean Dupont")]


def corpus() -> UnrelatedCorpus:
    return UnrelatedCorpus.from_texts([" ".join(SENTENCES)])


def test_detokenize_and_split_wikitext_style_text():
    assert detokenize('He had a guest @-@ starring role , in " Teddy \'s Story " ( 2004 ) .') == \
        'He had a guest-starring role, in "Teddy\'s Story" (2004).'
    text = "Short one. " + "This sentence has exactly enough words to be kept by the splitter here. " + \
        "It mentions an <unk> token and has enough words to pass the length filter."
    assert split_sentences(text) == ["This sentence has exactly enough words to be kept by the splitter here."]


def test_corpus_from_wikitext_raw_skips_headings_and_is_deterministic(shared_data):
    c = UnrelatedCorpus.from_path(shared_data / "wikitext2" / "wiki.test.raw")
    assert len(c) > 1000
    assert not any(s.startswith("=") or "\r" in s or " @-@ " in s or " , " in s for s in c.sentences)
    assert all(8 <= len(s.split()) <= 60 for s in c.sentences)
    assert c.sample(5, seed=1) == c.sample(5, seed=1) != c.sample(5, seed=2)
    assert len(set(c.sample(50, seed=0))) == 50


def test_corpus_from_jsonl_and_bad_files(tmp_path):
    good = tmp_path / "c.jsonl"
    good.write_text(json.dumps({"text": " ".join(SENTENCES[:3])}) + "\n", encoding="utf-8")
    assert len(UnrelatedCorpus.from_path(good)) == 3
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "ok ok ok ok ok ok ok ok."}\n{"txt": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2: expected a JSON object with a string field 'text'"):
        UnrelatedCorpus.from_path(bad_json)
    undecodable = tmp_path / "latin1.txt"
    undecodable.write_bytes(b"line one is fine\nsecond caf\xe9 line\n")
    with pytest.raises(ValueError, match="latin1.txt:2: not valid UTF-8"):
        UnrelatedCorpus.from_path(undecodable)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        UnrelatedCorpus.from_path(empty)
    with pytest.raises(ValueError, match="does not exist"):
        UnrelatedCorpus.from_path(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="has only 40"):
        corpus().sample(41, seed=0)


def test_build_filters_truncates_and_samples_unrelated():
    ts = build_target_set(CTX, ListGenerator(GOOD + JUNK), corpus(), n_pairs=3, unrelated_ratio=1.0, min_pairs=2)
    assert ts.pairs == GOOD[:3] and ts.generator == "list"
    assert ts.dropped == {"needs_context": 1, "duplicate": 1, "no_support": 1, "over_n_pairs": 1}
    assert len(ts.unrelated) == 3 and set(ts.unrelated) <= set(SENTENCES)
    again = build_target_set(CTX, ListGenerator(GOOD), corpus(), n_pairs=3, unrelated_ratio=1.0)
    assert again.unrelated == ts.unrelated  # same seed, same sentences
    assert len(build_target_set(CTX, ListGenerator(GOOD), corpus(), unrelated_ratio=0.5, min_pairs=4).unrelated) == 2


def test_build_counts_what_the_generator_dropped_itself():
    gen = ListGenerator(GOOD + JUNK[:1])
    gen.dropped = {"teacher_disagrees": 2, "needs_context": 1}
    ts = build_target_set(CTX, gen, corpus(), n_pairs=4, min_pairs=4)
    assert ts.dropped == {"teacher_disagrees": 2, "needs_context": 2}
    with pytest.raises(ValueError, match="teacher_disagrees: 2"):
        build_target_set(CTX, gen, corpus(), n_pairs=50, min_pairs=10)


def test_build_errors_say_what_went_wrong():
    with pytest.raises(ValueError, match="context is empty"):
        build_target_set("  \n", ListGenerator(GOOD), corpus())
    with pytest.raises(ValueError, match=r"only 1 usable .* \(need at least 3\).*3 generated.*needs_context: 1"):
        build_target_set(CTX, ListGenerator(JUNK), corpus(), n_pairs=6, min_pairs=3)
    with pytest.raises(ValueError, match="needs an unrelated corpus"):
        build_target_set(CTX, ListGenerator(GOOD), None, unrelated_ratio=0.5)
    assert build_target_set(CTX, ListGenerator(GOOD), None, unrelated_ratio=0, min_pairs=4).unrelated == []


def test_build_from_a_jsonl_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"question": p.question, "answer": p.answer}) + "\n" for p in GOOD),
                    encoding="utf-8")
    ts = build_target_set(CTX, JsonlGenerator(path), corpus(), n_pairs=50, min_pairs=4)
    assert ts.pairs == GOOD and ts.generator == f"jsonl:{path}"


def test_save_load_round_trip_is_atomic(tmp_path):
    ts = TargetSet(context=CTX, pairs=GOOD, unrelated=SENTENCES[:2], generator="g", dropped={"duplicate": 2})
    path = save_target_set(ts, tmp_path / "sets" / "t.json")
    assert load_target_set(path) == ts
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]  # no temporary file left behind
    (tmp_path / "bad.json").write_text('{"context": "x"}', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.json is not a target set file"):
        load_target_set(tmp_path / "bad.json")


def test_cached_builder_builds_once_per_context(tmp_path):
    gen = ListGenerator(GOOD)
    builder = CachedTargetBuilder(lambda c: build_target_set(c, gen, corpus(), min_pairs=4), tmp_path / "cache")
    first = builder(CTX)
    assert builder(CTX + "\n") == first and gen.calls == 1 and (builder.hits, builder.misses) == (1, 1)
    assert builder.path_for(CTX).name == f"{context_key(CTX)}.json"
    rerun = CachedTargetBuilder(lambda c: pytest.fail("should reuse the stored set"), tmp_path / "cache")
    assert rerun(CTX) == first


def test_cached_builder_keeps_a_too_few_pairs_outcome_and_fails_fast_on_it(tmp_path):
    from selfparam.targets import GeneratorError, TooFewPairsError

    gen = ListGenerator(JUNK)
    builder = CachedTargetBuilder(lambda c: build_target_set(c, gen, corpus(), n_pairs=6, min_pairs=3), tmp_path)
    with pytest.raises(TooFewPairsError, match="only 1 usable") as first:
        builder(CTX)
    failed = tmp_path / f"{context_key(CTX)}.failed.json"
    assert failed.is_file() and not builder.path_for(CTX).exists() and gen.calls == 1
    rerun = CachedTargetBuilder(lambda c: pytest.fail("should not generate again"), tmp_path)
    with pytest.raises(TooFewPairsError, match="only 1 usable.*cached in .*failed.json: delete it") as again:
        rerun(CTX)
    assert str(first.value) in str(again.value)
    failed.unlink()  # deleting the outcome retries
    assert CachedTargetBuilder(lambda c: build_target_set(c, ListGenerator(GOOD), corpus(), min_pairs=4),
                               tmp_path)(CTX).pairs == GOOD

    def server_down(context):
        raise GeneratorError("could not reach http://localhost:1/v1")

    with pytest.raises(GeneratorError):  # a passing failure is never kept
        CachedTargetBuilder(server_down, tmp_path / "other")(CTX)
    assert not (tmp_path / "other" / f"{context_key(CTX)}.failed.json").exists()
    other = "Another context entirely, about rivers."
    (tmp_path / f"{context_key(other)}.failed.json").write_text('{"context_sha256": "x", "error": "e"}')
    with pytest.raises(ValueError, match="for a different context"):
        CachedTargetBuilder(lambda c: pytest.fail("no"), tmp_path)(other)


def test_answer_in_context_reanswers_every_question_with_the_context():
    from selfparam.targets import answer_in_context

    ts = TargetSet(context="Quenby hosts the Zorblat festival.",
                   pairs=[QAPair("Where?", "wrong"), QAPair("What?", "x")],
                   unrelated=["Rivers flow."], generator="g", dropped={"duplicate": 1})
    seen = []

    def answer(questions, context):
        seen.append((questions, context))
        return ["In Quenby.", "  "]

    out = answer_in_context(ts, answer)
    assert seen == [(["Where?", "What?"], ts.context)]
    assert out.pairs == [QAPair("Where?", "In Quenby.", generator_answer="wrong")]  # the generator's kept beside
    assert out.dropped == {"duplicate": 1, "empty_teacher_answer": 1}
    assert out.unrelated == ts.unrelated and "teacher" in out.generator


def test_answer_in_context_with_no_answer_at_all_is_an_error():
    from selfparam.targets import answer_in_context

    ts = TargetSet(context="c", pairs=[QAPair("Where?", "x")])
    with pytest.raises(ValueError, match="empty answer to all 1"):
        answer_in_context(ts, lambda questions, context: [""])


def test_cycle_repeats_the_pairs_in_order_up_to_n_pairs():
    ts = build_target_set(CTX, ListGenerator(GOOD[:3]), corpus(), n_pairs=8, unrelated_ratio=0.5, min_pairs=1,
                          cycle=True)
    assert ts.pairs == [GOOD[i % 3] for i in range(8)]
    assert len(ts.unrelated) == 4  # the share of unrelated sentences of 8 pairs, not of 3
    assert build_target_set(CTX, ListGenerator(GOOD[:3]), corpus(), n_pairs=8, min_pairs=1).pairs == GOOD[:3]
    saved = target_set_to_dict(ts)
    assert sum(saved["coverage"]["pairs_per_sentence"]) + saved["coverage"]["unplaced"] == 3  # each pair once


def test_fact_settings_go_with_fact_questions_only():
    for setting in ({"fact_cycle": False}, {"fact_phrasings": 1}):
        with pytest.raises(ValueError, match=f"{next(iter(setting))}: applies to fact-covering questions"):
            TargetConfig(questions="paper", **setting)


def test_fact_questions_are_cycled_to_n_pairs_by_the_builder(monkeypatch):
    from selfparam.targets import builder as builder_module

    monkeypatch.setattr(builder_module, "make_generator", lambda config, lm, **_: ListGenerator(GOOD[:2]))
    lm = tiny_lm()
    facts = make_target_builder(TargetConfig(n_pairs=6, questions="facts"), lm)(CTX)
    assert facts.pairs == [GOOD[i % 2] for i in range(6)]
    once = make_target_builder(TargetConfig(n_pairs=6, questions="facts", fact_cycle=False), lm)(CTX)
    assert once.pairs == GOOD[:2]  # --no-fact-cycle: each distinct pair once
    with pytest.raises(ValueError, match="only 2 usable"):  # the paper's questions: at least half of n_pairs
        make_target_builder(TargetConfig(n_pairs=6, questions="paper"), lm)(CTX)
