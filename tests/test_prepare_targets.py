"""`--targets-only` / `prepare_targets`: the drawn contexts' target sets built once, ahead of the runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfparam.cli import app
from selfparam.eval.run import EvalSettings, prepare_targets
from selfparam.testing import tiny_lm


def _settings(squad, tmp_path, questions="facts", **kw):
    # fact questions: the rule-built cloze questions give a tiny random model usable pairs
    return EvalSettings("single", squad, tmp_path / "run", methods=("selfparam", "ft-s"), n=2, progress=False,
                        n_pairs=2, questions=questions, articles="1-16", targets_dir=tmp_path / "targets", **kw)


def _one_context_sets(squad, tmp_path, lm, n_pairs, **kw):
    """Builds the target set of one drawn context with a 200-sentence unrelated corpus; every set in the cache so
    far, by its key folder."""
    unrelated = tmp_path / "unrelated.txt"
    unrelated.write_text("\n".join(f"Sentence number {i} is about nothing in particular." for i in range(200)))
    settings = EvalSettings("single", squad, tmp_path / "run", methods=("selfparam",), n=1, progress=False,
                            n_pairs=n_pairs, fact_phrasings=1, articles="1-16", unrelated=unrelated,
                            targets_dir=tmp_path / "targets", **kw)
    prepare_targets(settings, lm)
    return {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "targets").glob("*/*.json")
            if p.name != "key.json"}


def test_each_drawn_context_is_built_once_then_reused(squad, tmp_path):
    lm = tiny_lm(max_position_embeddings=2048)  # byte tokens: a fact prompt is ~600 of them
    first = prepare_targets(_settings(squad, tmp_path), lm)
    assert (first["contexts"], first["built"], first["cached"]) == (2, 2, 0)
    sets = [json.loads(p.read_text()) for p in sorted((tmp_path / "targets").glob("*/*.json")) if p.name != "key.json"]
    assert len(sets) == 2 and all(1 <= len(s["pairs"]) <= 2 for s in sets)
    again = prepare_targets(_settings(squad, tmp_path), lm)
    assert (again["contexts"], again["built"], again["cached"]) == (2, 0, 2)
    assert not (tmp_path / "run").exists()  # no method ran, no report was written


def test_fact_phrasings_reach_the_sets_and_their_cache_key(squad, tmp_path):
    """--fact-phrasings 1: the clozes alone, cached apart from the default's sets (another key)."""
    lm = tiny_lm(max_position_embeddings=2048)
    prepare_targets(_settings(squad, tmp_path, fact_phrasings=1), lm)
    prepare_targets(_settings(squad, tmp_path), lm)
    folders = {p.parent.name: json.loads(p.read_text())["generator"]
               for p in (tmp_path / "targets").glob("*/*.json") if p.name != "key.json"}
    assert len(folders) == 2
    assert sorted(" phrasings=1 " in g for g in folders.values()) == [False, True]


def test_fact_spans_reach_the_sets_and_their_cache_key(squad, tmp_path):
    """--fact-spans wide: sets built with the wider spans, cached apart from the default's (another key)."""
    lm = tiny_lm(max_position_embeddings=2048)
    prepare_targets(_settings(squad, tmp_path, fact_spans="wide"), lm)
    prepare_targets(_settings(squad, tmp_path), lm)
    folders = {p.parent.name: json.loads(p.read_text())["generator"]
               for p in (tmp_path / "targets").glob("*/*.json") if p.name != "key.json"}
    assert len(folders) == 2
    assert sorted(g.endswith(" spans=wide") for g in folders.values()) == [False, True]


def test_without_fact_cycle_each_distinct_pair_is_trained_once(squad, tmp_path):
    """--no-fact-cycle: a set keeps its distinct pairs (fewer than n_pairs), with unrelated sentences in proportion;
    the default repeats them up to n_pairs. Cached apart (another key)."""
    lm = tiny_lm(max_position_embeddings=2048)
    (folder, full), = _one_context_sets(squad, tmp_path, lm, 200).items()
    once = {k: v for k, v in _one_context_sets(squad, tmp_path, lm, 200, fact_cycle=False).items() if k != folder}
    (short,) = once.values()
    distinct = {(p["question"], p["answer"]) for p in full["pairs"]}
    assert len(full["pairs"]) == 200 and len(distinct) < 200
    assert [(p["question"], p["answer"]) for p in short["pairs"]] == [(p["question"], p["answer"])
                                                                      for p in full["pairs"][:len(distinct)]]
    assert len(short["unrelated"]) == round(0.5 * len(distinct)) and len(full["unrelated"]) == 100


def test_unrelated_ratio_sets_the_unrelated_sentences_per_pair_and_is_cached_apart(squad, tmp_path):
    """--unrelated-ratio: round(ratio * pairs) unrelated sentences in each set (default 0.5), under another key."""
    lm = tiny_lm(max_position_embeddings=2048)
    (folder, default), = _one_context_sets(squad, tmp_path, lm, 20).items()
    (doubled,) = [v for k, v in _one_context_sets(squad, tmp_path, lm, 20, unrelated_ratio=1.0).items() if k != folder]
    assert (len(default["unrelated"]), len(doubled["unrelated"])) == (10, 20)
    assert doubled["pairs"] == default["pairs"]


@pytest.mark.parametrize("kw, message", [({"unrelated_ratio": -0.5}, "must be >= 0"),
                                         ({"unrelated_ratio": 1.0, "unrelated": None}, "needs an unrelated corpus")])
def test_a_bad_unrelated_ratio_is_refused_by_the_settings(squad, tmp_path, kw, message):
    unrelated = tmp_path / "unrelated.txt"
    unrelated.write_text("One sentence about nothing.\n")
    with pytest.raises(ValueError, match=message):
        EvalSettings("single", squad, tmp_path / "run", **{"unrelated": unrelated, **kw})


def test_a_context_with_too_few_pairs_is_listed_cached_and_does_not_stop_the_others(squad, tmp_path, monkeypatch):
    from selfparam.targets.generators import LocalGenerator
    from selfparam.targets.types import QAPair

    lm = tiny_lm(max_position_embeddings=2048)
    # the paper's prompt, and a generator that writes only the prompt's own example: every context fails
    junk = [QAPair("What feature attracts visitors every year?", "The unique sea-glass beach.")]
    monkeypatch.setattr(LocalGenerator, "generate", lambda self, context, n, seed: junk)
    settings = _settings(squad, tmp_path, questions="paper")
    first = prepare_targets(settings, lm)
    assert (first["contexts"], first["built"], first["cached"], len(first["failed"])) == (2, 0, 0, 2)
    assert all("usable question-answer pairs" in f["error"] for f in first["failed"])
    assert len(list((tmp_path / "targets").glob("*/*.failed.json"))) == 2
    monkeypatch.setattr(LocalGenerator, "generate", lambda *a: pytest.fail("the outcome is cached"))
    again = prepare_targets(settings, lm)
    assert [f["context"] for f in again["failed"]] == [f["context"] for f in first["failed"]]
    assert all("delete it to generate again" in f["error"] for f in again["failed"])


def test_recommendation_and_bad_combinations_are_refused(squad, shared_data, tmp_path):
    rec = EvalSettings("recommendation", shared_data / "crs_selfparam", tmp_path / "r", methods=("base",), n=1,
                       dataset="inspired", progress=False)
    with pytest.raises(ValueError, match="QA tasks"):
        prepare_targets(rec, tiny_lm())
    result = CliRunner().invoke(app, ["eval", "single", "--data", str(squad), "--out", str(tmp_path / "o"),
                                      "--targets-only", "--report-only"])
    assert result.exit_code == 2 and "--targets-only" in result.output
    assert not (tmp_path / "o").exists()
