"""RECIPE training end to end on the tiny random Llama and encoder: it runs, checkpoints, resumes, learns."""

from __future__ import annotations

import json

import pytest
import torch
from test_recipe import tiny_encoder
from typer.testing import CliRunner

from selfparam.eval.editing_data import EditRecord
from selfparam.methods.base import Context
from selfparam.methods.recipe import EditorConfig, KnowledgeRepository, Recipe, RecipeConfig, RecipeEditor, TrainConfig
from selfparam.methods.recipe.calibration import retrieval_accuracy
from selfparam.methods.recipe.training import build_edit_batch, encode_records, train_recipe


class HashingEncoder:
    """Bag of hashed words, normalised: distinct sentences get distinct vectors (a random tiny BERT maps
    all short sentences to nearly one point, which would test the optimiser's patience, not the code)."""

    name, dim = "hashing", 64

    def encode(self, texts):
        import zlib

        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return torch.nn.functional.normalize(out, dim=1)

NAMES = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj"]
CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo"]


def records() -> list[EditRecord]:
    out = []
    for i, n in enumerate(NAMES):
        city = CITIES[i % len(CITIES)]
        out.append(EditRecord(f"r{i}", f"{n} lives in", city, f"The home town of {n} is",
                              f"{NAMES[(i + 5) % len(NAMES)]} likes the colour", "blue"))
    return out


def test_edit_batch_layout(tiny):
    recs = records()[:2]
    batch = build_edit_batch(tiny, recs)
    assert batch["ids"].shape[0] == 6 and bool(batch["mask"][:, -1].all())  # left padded
    keep = int(batch["keep"][0])
    labelled = batch["labels"] != -100
    assert not labelled[:, :-keep].any() and not labelled[4:].any()
    first = tiny.tokenizer.decode(batch["ids"][0][labelled[0]])
    assert first == "Paris" + tiny.tokenizer.eos_token
    assert batch["kl_mask"][4:].sum() > 0 and batch["kl_mask"][:4].sum() == 0


def test_tiny_training_runs_resumes_and_learns_retrieval(tiny, tmp_path):
    enc = HashingEncoder()
    recs = records()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32, temperature=0.1)
    train = TrainConfig(out=str(tmp_path / "run"), steps=4, batch_size=2, contrastive_batch=8, lr=3e-3,
                        retrieval_steps=100, save_every=2, seed=0)
    encoded = encode_records(enc, recs, None, progress=False)
    torch.manual_seed(0)
    untrained = RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size)
    before = retrieval_accuracy(untrained, encoded)
    editor = train_recipe(tiny, enc, recs, cfg, train, validation=recs[:4], progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    after = retrieval_accuracy(editor, encoded)
    validation = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert validation["steps"] == 4
    assert validation["retrieval"] == retrieval_accuracy(editor, encode_records(enc, recs[:4], None, progress=False))
    assert after["reliability"] > before["reliability"] and after["reliability"] >= 0.75
    # the frozen LLM stayed frozen
    assert all(p.requires_grad for p in tiny.model.parameters())
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["versions"]["torch"] == torch.__version__ and "git_revision" in config
    # a run killed after logging steps past its checkpoint (4) logged rows it will redo, the last cut short
    with open(tmp_path / "run" / "train_log.jsonl", "a") as f:
        f.write(json.dumps({"step": 5, "loss": -1.0}) + "\n" + '{"step": 6, "lo')
    first = json.loads((tmp_path / "run" / "training.json").read_text())["invocations"]
    assert [(i["from_step"], i["to_step"], i["train_config"]["retrieval_steps"]) for i in first] == [(0, 4, 100)]
    # resume with another setting: 2 more steps continue the log from step 5
    train.steps, train.retrieval_steps = 6, 20
    train_recipe(tiny, enc, recs, cfg, train, validation=recs[:4], progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6] and all(r["loss"] != -1.0 for r in log)
    # the training record: data, steps, seconds, commit, the loss curve per `curve_every` steps, a PNG
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    assert record["steps"] == 6 and record["seconds"] == log[-1]["seconds"]
    # which settings trained which steps: one entry per invocation, the latest also as `train_config`
    assert [(i["from_step"], i["to_step"], i["train_config"]["retrieval_steps"]) for i in record["invocations"]] \
        == [(0, 4, 100), (4, 6, 20)]
    assert record["train_config"]["retrieval_steps"] == 20 and record["invocations"][0] == first[0]
    assert sum(i["seconds"] for i in record["invocations"]) == pytest.approx(record["seconds"], abs=0.2)
    assert record["data"]["records"] == len(recs) and record["data"]["validation_records"] == 4
    assert record["data"]["first_id"] == "r0" and record["commit"] == config["git_revision"]
    assert record["curve_every"] == 50 and [p["step"] for p in record["loss_curve"]] == [6]
    assert record["loss_curve"][0]["edit_ce"] == pytest.approx(sum(r["edit_ce"] for r in log) / 6, abs=1e-4)
    png = (tmp_path / "run" / "loss_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in (tmp_path / "run").iterdir() if f.name.startswith(".")]  # no temporary left
    # the editor carries the same record (what it was trained on, for how long, at which commit)
    editor_meta = json.loads((tmp_path / "run" / "editor" / "editor.json").read_text())
    assert editor_meta["training"]["steps"] == 6 and editor_meta["training"]["commit"] == record["commit"]
    # the written editor serves the method
    recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "run" / "editor")), encoder=enc)
    recipe.inject([Context(r.id, r.fact) for r in recs])
    hits = recipe.retrieved_ids([r.prompt for r in recs])
    assert sum(h == r.id for h, r in zip(hits, recs)) >= 0.75 * len(recs)


def test_an_editor_that_reads_the_fact_tokens_trains_them_and_serves(tiny, tmp_path):
    enc = HashingEncoder()
    recs = records()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32, read_fact_tokens=True,
                       read_dim=8, read_max_tokens=32)
    train = TrainConfig(out=str(tmp_path / "run"), steps=3, batch_size=2, contrastive_batch=8, lr=3e-3,
                        retrieval_steps=0, save_every=3, seed=0)
    torch.manual_seed(0)
    untrained = RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size)
    editor = train_recipe(tiny, enc, recs, cfg, train, progress=False)
    # the edit loss reached the reading attention; distances no fact reaches (its facts have 17-22 byte tokens)
    # got no gradient and kept their initial values, which shows both editors started the same
    trained, initial = editor.state_dict(), untrained.state_dict()
    for name in ("read_query.weight", "read_key.weight"):
        assert not torch.equal(trained[name], initial[name]), name
    assert not torch.equal(trained["read_position.weight"][:17], initial["read_position.weight"][:17])
    assert torch.equal(trained["read_position.weight"][22:], initial["read_position.weight"][22:])
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(torch.isfinite(torch.tensor(r["edit"])) for r in log)
    assert json.loads((tmp_path / "run" / "editor" / "editor.json").read_text())["config"]["read_fact_tokens"]
    recipe = Recipe(tiny, RecipeConfig(checkpoint=str(tmp_path / "run" / "editor")), encoder=enc)
    recipe.inject([Context(r.id, r.fact) for r in recs[:3]])
    assert recipe.repository.prompts.shape == (3, 3, tiny.model.config.hidden_size)


def test_resumed_run_gets_its_own_time_allowance(tiny, tmp_path):
    """`max_seconds` bounds one invocation: a checkpoint that already holds more training time than the
    allowance still trains on when resumed (it used to stop after a single step)."""
    enc = HashingEncoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    train = TrainConfig(out=str(tmp_path / "run"), steps=1, batch_size=2, contrastive_batch=8, retrieval_steps=0,
                        save_every=1, seed=0)
    train_recipe(tiny, enc, records(), cfg, train, progress=False)
    state_path = tmp_path / "run" / "checkpoint" / "state.pt"
    state = torch.load(state_path, weights_only=True)  # tensors and plain containers only
    state["seconds"] = 1e6  # as if earlier runs had trained for 11 days
    torch.save(state, state_path)
    train.steps, train.max_seconds = 4, 1e5
    train_recipe(tiny, enc, records(), cfg, train, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert log[-1]["seconds"] >= 1e6  # the total still counts every run


def test_a_checkpoint_from_before_invocations_were_kept_resumes_with_its_settings_unknown(tiny, tmp_path):
    enc = HashingEncoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    train = TrainConfig(out=str(tmp_path / "run"), steps=2, batch_size=2, contrastive_batch=8, retrieval_steps=0,
                        save_every=1, seed=0)
    train_recipe(tiny, enc, records(), cfg, train, progress=False)
    (tmp_path / "run" / "checkpoint" / "invocations.json").unlink()  # as an older checkpoint
    train.steps = 3
    train_recipe(tiny, enc, records(), cfg, train, progress=False)
    record = json.loads((tmp_path / "run" / "training.json").read_text())
    earlier, latest = record["invocations"]
    assert (earlier["from_step"], earlier["to_step"], earlier["train_config"]) == (0, 2, None)
    assert "not known" in earlier["note"] and (latest["from_step"], latest["to_step"]) == (2, 3)
    # a history that does not end at the checkpoint's step is refused, naming the file, and nothing is trained
    (tmp_path / "run" / "checkpoint" / "invocations.json").write_text(json.dumps([{"from_step": 0, "to_step": 1}]))
    train.steps = 5
    with pytest.raises(ValueError, match="invocations.json does not end at the checkpoint's step 3"):
        train_recipe(tiny, enc, records(), cfg, train, progress=False)
    assert json.loads((tmp_path / "run" / "training.json").read_text())["steps"] == 3


def test_edit_cli_adds_deletes_and_rolls_back(tiny, tmp_path, monkeypatch):
    import typer

    from selfparam.cli.recipe import recipe_app
    from selfparam.methods.recipe import method as method_module

    enc = tiny_encoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name).save(tmp_path / "editor")
    monkeypatch.setattr("selfparam.lm.load_lm", lambda *a, **k: tiny)
    monkeypatch.setattr(method_module, "load_encoder", lambda name: enc)
    app = typer.Typer()
    app.add_typer(recipe_app, name="recipe")
    runner = CliRunner()
    common = ["--repo", str(tmp_path / "repo"), "--checkpoint", str(tmp_path / "editor")]
    r = runner.invoke(app, ["recipe", "edit", *common, "--prompt", "Alice lives in", "--target", "Paris", "--id", "a"])
    assert r.exit_code == 0, r.output
    assert '"edits": 1' in r.output and "ms" in r.output
    r = runner.invoke(app, ["recipe", "edit", *common, "--prompt", "Alice lives in", "--target", "Paris"])
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "duplicate" in r.stderr
    r = runner.invoke(app, ["recipe", "edit", *common, "--prompt", "Bob lives in", "--target", ""])
    assert r.exit_code == 2 and "target" in r.stderr
    r = runner.invoke(app, ["recipe", "edit", *common, "--delete", "zzz"])
    assert r.exit_code == 2 and "no stored edit with id 'zzz'" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["recipe", "edit", *common, "--delete", "a"])
    assert r.exit_code == 0 and '"edits": 0' in r.output
    r = runner.invoke(app, ["recipe", "edit", *common, "--rollback", "1"])
    assert r.exit_code == 0 and '"edits": 1' in r.output
    # --refine-steps fits the new edit's prompt (refine.py): same editor and fact, another stored prompt, same key
    stored = {}
    for steps in ("0", "3"):
        folder = tmp_path / f"refined-{steps}"
        r = runner.invoke(app, ["recipe", "edit", "--repo", str(folder), "--checkpoint", str(tmp_path / "editor"),
                                "--prompt", "Carol lives in", "--target", "Rome", "--id", "c", "--refine-steps", steps])
        assert r.exit_code == 0, r.output
        stored[steps] = KnowledgeRepository.load(folder / "repository")
    assert torch.equal(stored["0"].keys, stored["3"].keys)
    assert not torch.allclose(stored["0"].prompts, stored["3"].prompts)
    r = runner.invoke(app, ["recipe", "edit", *common, "--prompt", "Dan lives in", "--target", "Oslo",
                            "--refine-steps", "-1"])
    assert r.exit_code == 2 and "refine_steps" in r.stderr
