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
from selfparam.methods.recipe.calibration import calibrate_sentinel, margin_for_locality, retrieval_accuracy
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


def test_calibrate_cli_writes_the_margin_beside_the_weights_and_refuses_training_records(tiny, tmp_path, monkeypatch):
    import typer

    from selfparam.cli.recipe import recipe_app

    enc, recs = HashingEncoder(), records()
    monkeypatch.setattr("selfparam.methods.recipe.encoder.load_encoder", lambda name, device="cpu": enc)
    data = tmp_path / "cf.json"
    data.write_text(json.dumps([{"case_id": r.id, "prompt": r.prompt, "target_new": r.target,
                                 "rephrase_prompt": r.rephrase, "locality_prompt": r.locality_prompt,
                                 "locality_ground_truth": r.locality_target} for r in recs]))
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
