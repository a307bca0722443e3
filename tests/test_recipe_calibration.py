"""The knowledge sentinel's calibrated margin: the rule, the choice on held-out records, where it is kept
and who uses it (tiny random model, hashing encoder)."""

from __future__ import annotations

import json

import pytest
import torch
from test_recipe_training import HashingEncoder, records
from typer.testing import CliRunner

from selfparam.methods.base import Context
from selfparam.methods.recipe import EditorConfig, Recipe, RecipeConfig, RecipeEditor, TrainConfig
from selfparam.methods.recipe import calibration as calibration_module
from selfparam.methods.recipe.calibration import (
    calibrate_editor,
    calibrate_sentinel,
    locality_gaps,
    margin_at,
    margin_for_locality,
    retrieval_accuracy,
)
from selfparam.methods.recipe.repository import sentinel_retrieve
from selfparam.methods.recipe.training import encode_records, train_recipe

CFG = EditorConfig(encoder="hashing", repr_dim=16, head_hidden=32, prompt_hidden=32)


def test_the_margin_relaxes_the_sentinel_rule():
    e = torch.eye(3)
    queries = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.0], [0.6, 0.0, 0.8]]), dim=1)
    keys, sentinel = e[:2], e[2]
    index, best, sentinel_sim = sentinel_retrieve(queries, keys, sentinel)
    assert index.tolist() == [0, -1]  # the second query is closer to the sentinel (0.8) than to key 0 (0.6)
    assert sentinel_retrieve(queries, keys, sentinel, margin=0.19)[0].tolist() == [0, -1]
    assert sentinel_retrieve(queries, keys, sentinel, margin=0.21)[0].tolist() == [0, 0]
    assert sentinel_retrieve(queries, keys, sentinel, margin=-2.0)[0].tolist() == [-1, -1]


def test_the_margin_is_the_largest_that_keeps_the_locality_share():
    gaps = torch.tensor([0.30, -0.10, 0.20, 0.50, 0.05, 0.40, 0.35, 0.25, 0.15, 0.45])
    for locality in (0.7, 0.8, 0.9, 0.95, 0.99):
        m = margin_for_locality(gaps, locality)
        assert (gaps >= m).float().mean() >= locality  # the share kept from retrieving
        assert (gaps >= m + 1e-4).float().mean() < locality  # and any larger margin breaks it
    assert margin_for_locality(gaps, 0.99) == pytest.approx(-0.10)  # 1% of ten: none may retrieve
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="locality"):
            margin_for_locality(gaps, bad)
    with pytest.raises(ValueError, match="no locality prompts"):
        margin_for_locality(torch.tensor([]), 0.9)


def test_training_calibrates_on_the_validation_records_and_ships_the_margin(tiny, tmp_path):
    enc, recs = HashingEncoder(), records()
    train = TrainConfig(out=str(tmp_path / "run"), steps=3, batch_size=2, contrastive_batch=8, retrieval_steps=20,
                        save_every=3, seed=0, sentinel_locality=0.75)
    editor = train_recipe(tiny, enc, recs[:8], CFG, train, validation=recs[8:], progress=False)
    val_enc = encode_records(enc, recs[8:], None, progress=False)
    calibration = json.loads((tmp_path / "run" / "editor" / "editor.json").read_text())["calibration"]
    assert calibration == editor.calibration == json.loads((tmp_path / "run" / "validation.json").read_text())[
        "calibration"]
    assert calibration["locality_target"] == 0.75 and calibration["records"] == 4
    assert calibration["data"]["first_id"] == "r8" and calibration["data"]["last_id"] == "r11"
    margin = calibration["sentinel_margin"]
    at_margin = retrieval_accuracy(editor, val_enc, margin)
    assert calibration["retrieval"] == pytest.approx(at_margin) and at_margin["locality"] >= 0.75
    # a margin relaxes the rule, so the own fact is retrieved at least as often as without it
    assert at_margin["reliability"] >= calibration["retrieval_without_margin"]["reliability"] or margin < 0
    assert RecipeEditor.load(tmp_path / "run" / "editor").sentinel_margin == pytest.approx(margin)
    with pytest.raises(ValueError, match="sentinel_locality"):
        TrainConfig(sentinel_locality=1.0)


def test_recipe_uses_the_editors_margin_unless_the_config_names_one(tiny, tmp_path):
    enc = HashingEncoder()
    torch.manual_seed(0)
    editor = RecipeEditor(CFG, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name)
    editor.calibration = {"sentinel_margin": 2.0}  # similarities lie in [-1, 1]: everything retrieves
    editor.save(tmp_path / "editor")
    facts = [Context(r.id, r.fact) for r in records()[:4]]
    unrelated = ["What colour is the sky?", "Who wrote Hamlet?"]

    def hits(**config):
        recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor"), **config), encoder=enc)
        recipe.inject(facts)
        return recipe.retrieved_ids(unrelated), recipe.sentinel_margin

    ids, margin = hits()
    assert margin == 2.0 and None not in ids
    assert hits(sentinel_margin=-2.0) == ([None, None], -2.0)
    with pytest.raises(ValueError, match="sentinel_margin"):
        RecipeConfig(sentinel_margin=3.0)
    # an editor saved without a calibration keeps the paper's rule
    RecipeEditor(CFG, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name).save(tmp_path / "plain")
    assert RecipeEditor.load(tmp_path / "plain").sentinel_margin == 0.0


def write_counterfact(path, recs):
    """`recs` written as CounterFact-style records (what `recipe calibrate --data` reads); returns the path."""
    path.write_text(json.dumps([{"case_id": r.id, "prompt": r.prompt, "target_new": r.target,
                                 "rephrase_prompt": r.rephrase, "locality_prompt": r.locality_prompt,
                                 "locality_ground_truth": r.locality_target} for r in recs]))
    return path


def test_calibrate_cli_writes_the_margin_beside_the_weights_and_refuses_training_records(tiny, tmp_path, monkeypatch):
    import typer

    from selfparam.cli.recipe import recipe_app

    enc, recs = HashingEncoder(), records()
    monkeypatch.setattr("selfparam.methods.recipe.encoder.load_encoder", lambda name, device="cpu": enc)
    data = write_counterfact(tmp_path / "cf.json", recs)
    train = TrainConfig(data=str(data), out=str(tmp_path / "run"), steps=2, batch_size=2, contrastive_batch=8,
                        save_every=2, seed=0)
    from selfparam.eval.editing_data import load_edits

    recs = load_edits(data)  # ids as the command reads them ("cf-r0", ...)
    train_recipe(tiny, enc, recs[:8], CFG, train, progress=False)  # no validation: no calibration yet
    folder = tmp_path / "run" / "editor"
    weights = (folder / "editor.safetensors").read_bytes()
    assert "calibration" not in json.loads((folder / "editor.json").read_text())
    app = typer.Typer()
    app.add_typer(recipe_app, name="recipe")
    runner = CliRunner()
    r = runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--validation", "4",
                            "--locality", "0.75"])
    assert r.exit_code == 0, r.output
    meta = json.loads((folder / "editor.json").read_text())
    calibration = meta["calibration"]
    assert calibration["data"] == {"path": str(data), "first_id": "cf-r8", "last_id": "cf-r11"}
    assert meta["training"]["steps"] == 2  # the rest of the metadata is kept
    assert (folder / "editor.safetensors").read_bytes() == weights
    expected = calibrate_sentinel(RecipeEditor.load(folder), encode_records(enc, recs[8:], None, progress=False), 0.75)
    assert calibration["sentinel_margin"] == pytest.approx(expected["sentinel_margin"])
    # with the facts of 6 other records stored beside the held-out ones: more keys near each unrelated prompt,
    # so the margin that keeps the same locality share can only be smaller
    r = runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--validation", "4",
                            "--locality", "0.75", "--distractors", "6"])
    assert r.exit_code == 0, r.output
    crowded = json.loads((folder / "editor.json").read_text())["calibration"]
    assert crowded["distractors"] == 6 and crowded["stored"] == 10
    assert crowded["sentinel_margin"] <= calibration["sentinel_margin"]
    held_out, others = encode_records(enc, recs[8:], None, progress=False), enc.encode([x.fact for x in recs[:6]])
    expected = calibrate_sentinel(RecipeEditor.load(folder), held_out, 0.75, others)
    assert crowded["sentinel_margin"] == pytest.approx(expected["sentinel_margin"])
    r = runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--validation", "4",
                            "--distractors", "9"])
    assert r.exit_code == 2 and "distractors" in r.output
    # held-out records that overlap the training data, or a bad target: refused, editor.json unchanged
    before = (folder / "editor.json").read_text()
    r = runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--validation", "6"])
    assert r.exit_code == 2 and "trained on" in r.output
    r = runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--locality", "1"])
    assert r.exit_code == 2 and "locality" in r.output
    assert (folder / "editor.json").read_text() == before


# --- a margin that follows the repository's size ---------------------------------------------------------


def _random_editor(tiny, enc, seed=0):
    torch.manual_seed(seed)
    return RecipeEditor(CFG, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name).eval()


def _other_facts(enc, n):
    """Encodings of `n` facts other than the held-out ones (distractors)."""
    return enc.encode([f"Person{i} was born in Town{i % 37} and works as a {('baker', 'pilot', 'judge')[i % 3]}"
                       for i in range(n)])


def test_margin_at_interpolates_in_log_size_and_clamps():
    import doctest

    assert doctest.testmod(calibration_module).failed == 0
    schedule = [{"stored": 10, "sentinel_margin": 0.3}, {"stored": 100, "sentinel_margin": 0.1},
                {"stored": 1000, "sentinel_margin": -0.2}]
    assert margin_at(schedule, 0) == margin_at(schedule, 1) == margin_at(schedule, 10) == 0.3  # clamped below
    assert margin_at(schedule, 1000) == margin_at(schedule, 10 ** 6) == -0.2  # and above
    assert margin_at(schedule, 100) == pytest.approx(0.1)
    assert margin_at(schedule, 316) == pytest.approx(-0.05, abs=1e-3)  # halfway in log size: sqrt(100 * 1000)
    assert margin_at(schedule, 20) == pytest.approx(0.3 - 0.2 * 0.30103, abs=1e-6)  # log10(2) of the way
    margins = [margin_at(schedule, n) for n in range(0, 2000, 7)]
    assert all(a >= b for a, b in zip(margins, margins[1:]))  # a non-increasing schedule gives a non-increasing m
    assert margin_at(schedule[:1], 5000) == 0.3  # one size: one margin
    for bad in ([], [{"stored": 10}], [{"stored": 0, "sentinel_margin": 0.1}],
                [{"stored": 100, "sentinel_margin": 0.1}, {"stored": 10, "sentinel_margin": 0.0}],
                [{"stored": 10, "sentinel_margin": 0.1}, {"stored": 10, "sentinel_margin": 0.0}]):
        with pytest.raises(ValueError, match="schedule"):
            margin_at(bad, 50)


def test_the_schedule_calibrates_each_size_and_never_lets_a_larger_repository_retrieve_more(tiny):
    enc = HashingEncoder()
    editor = _random_editor(tiny, enc)
    held_out = encode_records(enc, records(), None, progress=False)  # 12 held-out facts
    others = _other_facts(enc, 300)
    calibration = calibrate_sentinel(editor, held_out, 0.75, others, sizes=[312, 12, 50, 150])
    schedule = calibration["schedule"]
    assert [e["stored"] for e in schedule] == [12, 50, 150, 312]  # sorted by size
    margins = [e["sentinel_margin"] for e in schedule]
    assert all(a >= b for a, b in zip(margins, margins[1:]))
    running = float("inf")
    for entry in schedule:
        n = entry["stored"]
        extra = others[:n - 12] if n > 12 else None
        single = calibrate_sentinel(editor, held_out, 0.75, extra)  # the raw value is that size's own calibration
        assert entry["raw_sentinel_margin"] == pytest.approx(single["sentinel_margin"])
        running = min(running, entry["raw_sentinel_margin"])
        assert entry["sentinel_margin"] == pytest.approx(running)
        assert entry["retrieval"] == pytest.approx(retrieval_accuracy(editor, held_out, running, extra))
        assert entry["retrieval"]["locality"] >= 0.75
        assert entry["retrieval_without_margin"] == pytest.approx(single["retrieval_without_margin"])
    # the top-level fields are the largest size's: a reader that knows no schedule gets the smallest margin
    assert calibration["sentinel_margin"] == margins[-1] and calibration["stored"] == 312
    assert calibration["distractors"] == 300 and calibration["records"] == 12
    # sizes out of range, or repeated: refused
    for sizes, match in (([0, 50], "1..312"), ([313], "1..312"), ([50, 50], "once"), ([], "at least one"),
                         ([12.5], "integers")):
        with pytest.raises(ValueError, match=match):
            calibrate_sentinel(editor, held_out, 0.75, others, sizes=sizes)
    with pytest.raises(ValueError, match="1..12"):
        calibrate_sentinel(editor, held_out, 0.75, None, sizes=[12, 13])  # no distractors: at most the held-out size


def test_a_size_below_the_held_out_count_stores_that_many_held_out_facts_and_asks_every_locality_prompt(tiny):
    enc = HashingEncoder()
    editor = _random_editor(tiny, enc)
    held_out = encode_records(enc, records(), None, progress=False)  # 12 held-out facts
    schedule = calibrate_sentinel(editor, held_out, 0.75, None, sizes=[4, 12])["schedule"]
    four = {k: (v if k == "locality_prompt" else v[:4]) for k, v in held_out.items()}
    assert four["locality_prompt"].shape[0] == 12 and four["fact"].shape[0] == 4
    assert schedule[0]["stored"] == 4
    assert schedule[0]["raw_sentinel_margin"] == pytest.approx(margin_for_locality(locality_gaps(editor, four), 0.75))
    assert schedule[0]["retrieval"] == pytest.approx(retrieval_accuracy(editor, four, schedule[0]["sentinel_margin"]))
    # fewer stored keys sit near an unrelated prompt, so the smaller repository's own margin is at least as large
    assert schedule[0]["raw_sentinel_margin"] >= schedule[1]["raw_sentinel_margin"]


def test_the_running_minimum_keeps_the_raw_margins(tiny, monkeypatch):
    enc = HashingEncoder()
    editor = _random_editor(tiny, enc)
    raw = iter([0.10, 0.30, -0.20])  # sampling noise: the middle size came out more permissive
    monkeypatch.setattr(calibration_module, "margin_for_locality", lambda gaps, locality: next(raw))
    schedule = calibrate_sentinel(editor, encode_records(enc, records(), None, progress=False), 0.75,
                                  _other_facts(enc, 20), sizes=[12, 20, 32])["schedule"]
    assert [e["raw_sentinel_margin"] for e in schedule] == [0.10, 0.30, -0.20]
    assert [e["sentinel_margin"] for e in schedule] == [0.10, 0.10, -0.20]


def test_recipe_follows_the_schedule_as_edits_are_stored(tiny, tmp_path):
    enc = HashingEncoder()
    editor = _random_editor(tiny, enc)
    # extreme margins, so the outcome is certain: with 2 stored everything retrieves, with 8 nothing does
    editor.calibration = {"sentinel_margin": -2.0, "schedule": [{"stored": 2, "sentinel_margin": 2.0},
                                                                {"stored": 8, "sentinel_margin": -2.0}]}
    editor.save(tmp_path / "editor")
    assert RecipeEditor.load(tmp_path / "editor").sentinel_schedule == editor.calibration["schedule"]
    facts = [Context(r.id, r.fact) for r in records()[:8]]
    unrelated = ["What colour is the sky?", "Who wrote Hamlet?"]
    recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor")), encoder=enc)
    assert recipe.sentinel_margin == 2.0  # empty: the first size's margin
    recipe.inject(facts[:2])
    assert recipe.sentinel_margin == 2.0 and None not in recipe.retrieved_ids(unrelated)
    recipe.inject(facts[2:4])
    assert recipe.sentinel_margin == pytest.approx(0.0, abs=1e-9)  # 4 stored: halfway in log size
    recipe.inject(facts[4:])
    assert recipe.sentinel_margin == -2.0 and recipe.retrieved_ids(unrelated) == [None, None]
    recipe.rollback(4)  # the margin follows the edits stored now
    assert recipe.sentinel_margin == pytest.approx(0.0, abs=1e-9)
    # an explicit margin still wins, at any size (0: the paper's rule)
    fixed = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor"), sentinel_margin=0), encoder=enc)
    fixed.inject(facts)
    assert fixed.sentinel_margin == 0.0
    # a malformed schedule is refused when RECIPE starts, not at the first query
    editor.calibration = {"schedule": [{"stored": 8, "sentinel_margin": 0.1}, {"stored": 2, "sentinel_margin": 0.0}]}
    editor.save(tmp_path / "bad")
    with pytest.raises(ValueError, match="schedule"):
        Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "bad")), encoder=enc)


def test_a_calibrated_schedule_gives_a_larger_repository_a_smaller_or_equal_margin(tiny, tmp_path):
    enc = HashingEncoder()
    _random_editor(tiny, enc).save(tmp_path / "editor")
    held_out = encode_records(enc, records(), None, progress=False)
    calibration = calibrate_editor(tmp_path / "editor", held_out, 0.75, distractors=_other_facts(enc, 100),
                                   sizes=[12, 40, 112])
    recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor")), encoder=enc)
    margins = []
    for start in range(0, 120, 15):  # store more and more edits, reading the margin in use
        recipe.inject([Context(f"f{i}", f"Fact number {i} is about Town{i % 13}") for i in range(start, start + 15)])
        margins.append(recipe.sentinel_margin)
        assert margins[-1] == pytest.approx(margin_at(calibration["schedule"], len(recipe.repository)))
    assert all(a >= b for a, b in zip(margins, margins[1:]))
    assert margins[-1] == calibration["schedule"][-1]["sentinel_margin"]  # beyond the largest size: clamped


def test_an_editor_json_without_a_schedule_keeps_one_margin_at_every_size(tiny, tmp_path):
    enc = HashingEncoder()
    _random_editor(tiny, enc).save(tmp_path / "editor")
    meta = json.loads((tmp_path / "editor" / "editor.json").read_text())
    old = {"sentinel_margin": 2.0, "locality_target": 0.98, "records": 500,  # the format before schedules
           "retrieval": {"reliability": 0.888}, "retrieval_without_margin": {"reliability": 0.66},
           "data": {"path": "x.json", "first_id": "a", "last_id": "b"}}
    (tmp_path / "editor" / "editor.json").write_text(json.dumps({**meta, "calibration": old}))
    loaded = RecipeEditor.load(tmp_path / "editor")
    assert loaded.calibration == old and loaded.sentinel_schedule is None and loaded.sentinel_margin == 2.0
    recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "editor")), encoder=enc)
    unrelated = ["What colour is the sky?", "Who wrote Hamlet?"]
    for r in records()[:8]:
        recipe.inject([Context(r.id, r.fact)])
        assert recipe.sentinel_margin == 2.0 and None not in recipe.retrieved_ids(unrelated)


def test_calibrate_cli_with_sizes_writes_a_schedule_and_refuses_bad_sizes(tiny, tmp_path, monkeypatch):
    import typer

    from selfparam.cli.recipe import recipe_app
    from selfparam.eval.editing_data import load_edits

    enc, recs = HashingEncoder(), records()
    monkeypatch.setattr("selfparam.methods.recipe.encoder.load_encoder", lambda name, device="cpu": enc)
    data = write_counterfact(tmp_path / "cf.json", recs)
    folder = tmp_path / "editor"
    _random_editor(tiny, enc).save(folder)
    app = typer.Typer()
    app.add_typer(recipe_app, name="recipe")
    runner = CliRunner()

    def calibrate(*extra):
        return runner.invoke(app, ["recipe", "calibrate", str(folder), "--data", str(data), "--validation", "4",
                                   "--locality", "0.75", *extra])

    before = (folder / "editor.json").read_text()
    for sizes, expected in (("4,x", "comma-separated integers"), (",", "comma-separated integers"),
                            ("0,8", "1..12"), ("4,13", "1..12"), ("6,6", "once")):
        r = calibrate("--sizes", sizes)
        assert r.exit_code == 2 and "sizes" in r.output and expected in r.output, r.output
    r = calibrate("--sizes", "4,8", "--distractors", "4")
    assert r.exit_code == 2 and "not both" in r.output
    assert (folder / "editor.json").read_text() == before  # nothing written
    r = calibrate("--sizes", "12,4,8")
    assert r.exit_code == 0, r.output
    calibration = json.loads((folder / "editor.json").read_text())["calibration"]
    assert [e["stored"] for e in calibration["schedule"]] == [4, 8, 12] and calibration["distractors"] == 8
    recs = load_edits(data)  # the distractors at size N: the first N - 4 records' facts
    expected = calibrate_sentinel(RecipeEditor.load(folder), encode_records(enc, recs[8:], None, progress=False),
                                  0.75, enc.encode([x.fact for x in recs[:8]]), sizes=[4, 8, 12])
    for got, want in zip(calibration["schedule"], expected["schedule"]):
        assert got["sentinel_margin"] == pytest.approx(want["sentinel_margin"])
        assert got["raw_sentinel_margin"] == pytest.approx(want["raw_sentinel_margin"])
    assert RecipeEditor.load(folder).sentinel_schedule == calibration["schedule"]
