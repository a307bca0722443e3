"""`selfparam versions | rollback | export --version` on a saved injection (tiny model) and on a RECIPE
repository, and the RECIPE repository's versions through the store's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from selfparam.cli import app
from selfparam.methods.recipe.repository import KnowledgeRepository
from selfparam.store import KnowledgeStore, open_versions
from selfparam.store.recipe import RecipeHistory
from selfparam.testing import tiny_lm

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def injected(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model folder and a sequential injection of two contexts into it (two updates)."""
    root = tmp_path_factory.mktemp("cli-store")
    model = root / "tiny"
    lm = tiny_lm(seed=0)
    lm.model.save_pretrained(model)
    lm.tokenizer.save_pretrained(model)
    pairs = root / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"question": f"What does Quenby have ({i})?",
                                           "answer": "the Zorblat festival"})
                               for i in range(4)))
    contexts = []
    for name, text in (("one", "Quenby hosts the Zorblat festival."),
                       ("two", "Quenby sails glass boats at the Zorblat festival.")):
        (root / f"{name}.txt").write_text(text)
        contexts.append(root / f"{name}.txt")
    result = run("inject", *contexts, "--out", root / "run", "--model", model, "--mode", "sequential",
                 "--pairs-file", pairs, "--n-pairs", "4", "--epochs", "3", "--batch-size", "2", "--lr", "0.05",
                 "--device", "cpu", "--dtype", "fp32", "--answers", "generator")
    assert result.exit_code == 0, result.output
    return model, root / "run"


def test_versions_rollback_and_export_a_version(injected, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM

    _, saved = injected
    run_dir = tmp_path / "run"
    shutil.copytree(saved, run_dir)
    result = run("versions", run_dir, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["number"], r["parent"], r["current"]) for r in rows] == [(0, None, False), (1, 0, False), (2, 1, True)]
    assert rows[1]["contexts"][0]["id"] == "one" and rows[2]["contexts"][0]["id"] == "two"
    assert rows[1]["pairs"] == 4
    table = run("versions", run_dir)
    assert table.exit_code == 0 and "one (" in table.output

    result = run("rollback", run_dir, "--to", "1")
    assert result.exit_code == 0, result.output
    assert "version 1 is current (was 2)" in result.output
    assert KnowledgeStore.open(run_dir).current == 1

    assert run("export", run_dir, "--out", tmp_path / "v1").exit_code == 0  # the current version: 1
    result = run("export", run_dir, "--out", tmp_path / "v2", "--version", "2")
    assert result.exit_code == 0, result.output
    v1 = AutoModelForCausalLM.from_pretrained(tmp_path / "v1").state_dict()
    v2 = AutoModelForCausalLM.from_pretrained(tmp_path / "v2").state_dict()
    assert any(not torch.equal(v1[k], v2[k]) for k in v1)

    result = run("rollback", run_dir, "--to", "2")  # later versions were kept
    assert result.exit_code == 0 and KnowledgeStore.open(run_dir).current == 2
    assert run("export", run_dir, "--out", tmp_path / "v2b").exit_code == 0
    v2b = AutoModelForCausalLM.from_pretrained(tmp_path / "v2b").state_dict()
    assert all(torch.equal(v2[k], v2b[k]) for k in v2)


def test_bad_versions_and_a_locked_store(injected, tmp_path):
    _, saved = injected
    result = run("rollback", saved, "--to", "9")
    assert result.exit_code == 2 and "no version 9" in result.output
    assert KnowledgeStore.open(saved).current == 2
    result = run("versions", tmp_path)
    assert result.exit_code == 2 and "not a saved injection" in result.output
    result = run("export", saved, "--out", tmp_path / "x", "--version", "5")
    assert result.exit_code == 2 and "no version 5" in result.output and not (tmp_path / "x").exists()
    with KnowledgeStore.open(saved):
        result = run("rollback", saved, "--to", "1")
    assert result.exit_code == 2 and "another writer" in result.output
    assert KnowledgeStore.open(saved).current == 2


def _repo_with_ops(folder: Path) -> KnowledgeRepository:
    repo = KnowledgeRepository(hidden_size=4, n_prompt_tokens=2, repr_dim=3)
    for i in range(3):
        repo.add([f"e{i}"], [f"fact {i}"], torch.nn.functional.normalize(torch.randn(1, 3), dim=-1),
                 torch.randn(1, 2, 4))
    repo.delete("e0")
    repo.save(folder / "repository")
    return repo


def test_recipe_repository_rolls_back_and_forward_in_the_store_words(tmp_path):
    torch.manual_seed(0)
    original = _repo_with_ops(tmp_path / "rec")
    history = open_versions(tmp_path / "rec")
    assert isinstance(history, RecipeHistory) and history.current == 4
    vs = history.versions()
    assert [v.number for v in vs] == [0, 1, 2, 3, 4] and vs[4].note == "delete" and vs[4].current
    assert vs[1].contexts[0]["id"] == "e0" and vs[1].contexts[0]["chars"] == len("fact 0")

    history.activate(2)  # undo the delete and the third edit
    live = KnowledgeRepository.load(tmp_path / "rec" / "repository")
    assert live.ids == ["e0", "e1"] and history.current == 2
    assert [v.number for v in history.versions()] == [0, 1, 2, 3, 4]  # later versions still listed

    result = run("rollback", tmp_path / "rec", "--to", "4")  # roll forward from the CLI
    assert result.exit_code == 0, result.output
    live = KnowledgeRepository.load(tmp_path / "rec" / "repository")
    assert live.ids == original.ids and torch.equal(live.keys, original.keys)
    result = run("versions", tmp_path / "rec", "--json")
    assert [r["current"] for r in json.loads(result.output)] == [False, False, False, False, True]

    with pytest.raises(ValueError, match="no version 5"):
        history.activate(5)

    # an edit after a rollback starts a new history: the old tail is no longer reachable nor listed
    history.activate(1)
    live = KnowledgeRepository.load(tmp_path / "rec" / "repository")
    live.add(["new"], ["a new fact"], torch.nn.functional.normalize(torch.randn(1, 3), dim=-1), torch.randn(1, 2, 4))
    live.save(tmp_path / "rec" / "repository")
    assert [v.contexts[0]["id"] for v in history.versions()[1:]] == ["e0", "new"]


def test_inject_from_a_rolled_back_run_continues_its_current_version(injected, tmp_path):
    import shutil

    model, saved = injected
    run_dir = tmp_path / "run"
    shutil.copytree(saved, run_dir)
    assert run("rollback", run_dir, "--to", "1").exit_code == 0
    pairs = saved.parent / "pairs.jsonl"
    result = run("inject", saved.parent / "two.txt", "--from", run_dir, "--out", tmp_path / "next", "--model", model,
                 "--pairs-file", pairs, "--n-pairs", "4", "--epochs", "1", "--batch-size", "2", "--device", "cpu",
                 "--dtype", "fp32", "--answers", "generator")
    assert result.exit_code == 0, result.output
    # version 1 and the new update; version 2 of the source (rolled back) is not carried over
    assert [v.number for v in KnowledgeStore.open(tmp_path / "next").versions()] == [0, 1, 2]
    assert (tmp_path / "next" / "updates" / "0001" / "adapter_model.safetensors").read_bytes() == \
        (run_dir / "updates" / "0001" / "adapter_model.safetensors").read_bytes()
    assert json.loads((tmp_path / "next" / "updates" / "0002" / "manifest.json").read_text())["step"] == 2
