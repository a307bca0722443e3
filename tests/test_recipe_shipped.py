"""The shipped editor: an editor inside the package (selfparam/assets/recipe/<model>/) is found by default,
by `Recipe`, `selfparam recipe edit` and `eval lifelong --methods recipe`, with no environment variable;
`selfparam recipe train --ship` / `selfparam recipe ship` install one; a non-editable install carries it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import typer
from test_recipe import tiny_encoder
from test_recipe_training import HashingEncoder, records
from typer.testing import CliRunner

from selfparam.methods.recipe import (
    EditorConfig,
    Recipe,
    RecipeConfig,
    RecipeEditor,
    TrainConfig,
    default_checkpoint,
    default_train_dir,
    ship_editor,
    shipped_checkpoint,
)
from selfparam.methods.recipe import config as config_module
from selfparam.methods.recipe.training import train_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def package_data(tmp_path, monkeypatch):
    """A temporary package-data root for shipped editors, an empty user cache, no environment variable."""
    root = tmp_path / "assets" / "recipe"
    monkeypatch.setattr(config_module, "shipped_editor_root", lambda: root)
    monkeypatch.setenv("SELFPARAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SELFPARAM_RECIPE_CHECKPOINT", raising=False)
    return root


def _trained_editor(tiny, tmp_path) -> Path:
    """A tiny editor written by `train_recipe` (so its editor.json carries the training record)."""
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    train = TrainConfig(out=str(tmp_path / "run"), steps=1, batch_size=2, contrastive_batch=8, retrieval_steps=0,
                        save_every=1, seed=0)
    train_recipe(tiny, HashingEncoder(), records(), cfg, train, progress=False)
    return tmp_path / "run" / "editor"


def test_lookup_order_env_then_package_then_cache(tiny, tmp_path, package_data, monkeypatch):
    cache = tmp_path / "cache" / "recipe" / tiny.name / "editor"
    assert default_checkpoint(tiny.name) == cache  # nothing shipped: the user cache
    assert default_train_dir(tiny.name) == cache.parent  # training never writes into the package
    shipped = ship_editor(_trained_editor(tiny, tmp_path), tiny.name)
    assert shipped == package_data / tiny.name == shipped_checkpoint(tiny.name)
    assert default_checkpoint(tiny.name) == shipped
    assert default_train_dir(tiny.name) == cache.parent
    monkeypatch.setenv("SELFPARAM_RECIPE_CHECKPOINT", str(tmp_path / "mine"))
    assert default_checkpoint(tiny.name) == tmp_path / "mine"


def test_recipe_and_lifelong_find_the_shipped_editor_without_configuration(tiny, tmp_path, package_data,
                                                                           monkeypatch):
    from selfparam.cli.lifelong import lifelong
    from selfparam.methods.recipe import method as method_module

    with pytest.raises(ValueError, match="no editor is shipped"):
        Recipe(tiny, RecipeConfig())
    enc = tiny_encoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    editor = RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name)
    editor.save(tmp_path / "trained", extra={"training": {"data": {}, "steps": 1, "seconds": 0.1, "commit": "abc"}})
    ship_editor(tmp_path / "trained", tiny.name)
    monkeypatch.setattr(method_module, "load_encoder", lambda name: enc)
    recipe = Recipe(tiny, RecipeConfig())
    assert recipe.editor.digest() == editor.digest()
    # the lifelong CLI: preflight passes and the method edits with the shipped editor
    monkeypatch.setattr("selfparam.lm.load_lm", lambda *a, **k: tiny)
    rows = [{"case_id": i, "prompt": f"Person {i} lives in", "target_new": f"City{i}", "subject": f"Person {i}",
             "ground_truth": "X", "rephrase_prompt": f"The home of person {i} is",
             "locality_prompt": f"Person {i + 100} works as a", "locality_ground_truth": "baker"} for i in range(3)]
    (tmp_path / "cf.json").write_text(json.dumps(rows))
    app = typer.Typer()
    app.command("lifelong")(lifelong)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,3", "--out", str(tmp_path / "o"), "--max-new-tokens", "2",
                                 "--model", tiny.name])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["methods"]["recipe"]["status"] == "ok" and summary["methods"]["recipe"]["3"]["storage_bytes"] > 0


def test_ship_refuses_what_cannot_be_shipped_and_changes_nothing(tiny, tmp_path, package_data):
    from selfparam.cli.recipe import recipe_app

    with pytest.raises(FileNotFoundError, match="no trained RECIPE editor"):
        ship_editor(tmp_path / "nothing", tiny.name)
    enc = tiny_encoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name).save(tmp_path / "bare")
    with pytest.raises(ValueError, match="no training record"):
        ship_editor(tmp_path / "bare", tiny.name)
    trained = _trained_editor(tiny, tmp_path)
    with pytest.raises(ValueError, match="trained for"):
        ship_editor(trained, "another-model")
    assert not package_data.exists()
    # the CLI command: one error line, then a real install
    app = typer.Typer()
    app.add_typer(recipe_app, name="recipe")
    from selfparam.cli.errors import guard_commands

    guard_commands(app)
    r = CliRunner().invoke(app, ["recipe", "ship", str(tmp_path / "bare"), "--model", tiny.name])
    assert r.exit_code == 2 and "no training record" in r.output and not package_data.exists()
    r = CliRunner().invoke(app, ["recipe", "ship", str(trained), "--model", tiny.name])
    assert r.exit_code == 0, r.output
    meta = json.loads((package_data / tiny.name / "editor.json").read_text())
    assert meta["training"]["steps"] == 1 and meta["training"]["data"]["records"] == len(records())
    assert RecipeEditor.load(package_data / tiny.name).digest() == RecipeEditor.load(trained).digest()


def test_train_cli_ship_installs_the_trained_editor(tiny, tmp_path, package_data, monkeypatch):
    from selfparam.cli.recipe import recipe_app

    rows = [{"case_id": i, "prompt": r.prompt, "target_new": r.target, "subject": "", "ground_truth": "X",
             "rephrase_prompt": r.rephrase, "locality_prompt": r.locality_prompt,
             "locality_ground_truth": r.locality_target} for i, r in enumerate(records())]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    monkeypatch.setattr("selfparam.lm.load_lm", lambda *a, **k: tiny)
    monkeypatch.setattr("selfparam.methods.recipe.encoder.load_encoder", lambda *a, **k: HashingEncoder())
    app = typer.Typer()
    app.add_typer(recipe_app, name="recipe")
    r = CliRunner().invoke(app, ["recipe", "train", "--data", str(tmp_path / "train.json"), "--out",
                                 str(tmp_path / "run"), "--model", tiny.name, "--steps", "2", "--batch-size", "2",
                                 "--contrastive-batch", "8", "--validation", "2", "--ship"])
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["steps"] == 2 and record["data"]["path"] == str(tmp_path / "train.json")
    assert len(record["data"]["sha256"]) == 64 and record["data"]["validation_records"] == 2
    shipped = json.loads((package_data / tiny.name / "editor.json").read_text())
    assert shipped["training"]["steps"] == 2 and shipped["training"]["data"]["sha256"] == record["data"]["sha256"]


@pytest.mark.long
def test_a_wheel_install_carries_and_finds_the_shipped_editor(tmp_path):
    """A wheel built from this tree (a non-editable install) carries selfparam/assets/recipe/<model>/*: built
    from a copy of the tree holding a stand-in editor, so the real package folder is never written."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(ROOT / "selfparam", src / "selfparam", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    (src / "README.md").write_text("x")
    asset = src / "selfparam" / "assets" / "recipe" / "smollm2-135m"
    asset.mkdir(parents=True, exist_ok=True)
    (asset / "editor.json").write_text("{}")
    (asset / "editor.safetensors").write_bytes(b"stand-in")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                        "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    wheel = next((tmp_path / "dist").glob("selfparam-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"selfparam/assets/recipe/smollm2-135m/editor.json",
            "selfparam/assets/recipe/smollm2-135m/editor.safetensors"} <= names
    # installed from the wheel (not editable), the default lookup finds it with no environment variable
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("SELFPARAM_RECIPE_CHECKPOINT", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), SELFPARAM_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", "from selfparam.methods.recipe import default_checkpoint as d; "
                        "print(d('smollm2-135m'))"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == site / "selfparam" / "assets" / "recipe" / "smollm2-135m"
