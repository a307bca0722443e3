"""The CLI end to end on a tiny model saved to a folder: the happy path and every bad input."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from selfparam.cli import app
from selfparam.testing import tiny_lm

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    lm = tiny_lm(seed=0)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    path = tmp_path / "pairs.jsonl"
    rows = [{"question": f"What happens in Quenby in month {i}?", "answer": f"The Zorblat festival {i}."}
            for i in range(6)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.fixture
def context_file(tmp_path) -> Path:
    path = tmp_path / "quenby.txt"
    path.write_text("Quenby hosts the Zorblat festival every month with boats made of glass.")
    return path


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def inject_args(tiny_dir, pairs_file, out, *contexts):
    return ["inject", *contexts, "--out", out, "--model", tiny_dir, "--pairs-file", pairs_file, "--epochs", "1",
            "--batch-size", "4", "--n-pairs", "4", "--device", "cpu", "--dtype", "fp32",
            "--answers", "generator"]  # a random tiny model is no teacher to answer with


def test_inject_ask_export_round_trip(tiny_dir, pairs_file, context_file, tmp_path):
    out = tmp_path / "inj"
    result = run(*inject_args(tiny_dir, pairs_file, out, context_file))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "updates" / "0001" / "manifest.json").read_text())
    assert manifest["targets"][0]["pairs"] and manifest["contexts"][0]["id"] == "quenby"
    assert manifest["config"]["adapter"]["r"] == 8 and manifest["versions"]["torch"]
    left = manifest["stats"]["loss_by_group"]  # printed too: where the training left each kind of example
    printed = " ".join(result.output.split())
    assert "loss left per kind (last epoch): pairs " in printed and f"pairs {left['pairs']:.4f}" in printed
    result = run("ask", out, "What happens in Quenby?", "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "4")
    assert result.exit_code == 0, result.output
    assert "with injection" in result.output and "What happens in Quenby?" in result.output
    result = run("export", out, "--out", tmp_path / "hf")
    assert result.exit_code == 0, result.output
    # a plain transformers folder: the base architecture and parameter names, with the update merged in
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").state_dict()
    assert merged.keys() == base.keys()
    assert any(not torch.equal(merged[k], base[k]) for k in base if "q_proj" in k)


def test_sequential_mode_writes_one_update_per_context(tiny_dir, pairs_file, context_file, tmp_path):
    second = tmp_path / "second.txt"
    second.write_text("In Quenby the Zorblat festival winners of each month get a trophy.")
    out = tmp_path / "seq"
    result = run(*inject_args(tiny_dir, pairs_file, out, context_file, second), "--mode", "sequential")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "updates").iterdir()) == ["0001", "0002"]


@pytest.mark.parametrize("content,message", [
    (b"   \n", "empty"),
    (b"\xff\xfe\x00bad bytes \x81", "not UTF-8"),
    (("word " * 600).encode(), "window"),
])
def test_bad_context_files_fail_cleanly(tiny_dir, pairs_file, tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    out = tmp_path / "inj"
    result = run(*inject_args(tiny_dir, pairs_file, out, bad))
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_missing_context_file(tiny_dir, pairs_file, tmp_path):
    result = run(*inject_args(tiny_dir, pairs_file, tmp_path / "inj", tmp_path / "nope.txt"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_unknown_model(pairs_file, context_file, tmp_path):
    result = run("inject", context_file, "--out", tmp_path / "inj", "--model", "no-such-org/no-such-model",
                 "--pairs-file", pairs_file)
    assert result.exit_code == 2
    assert "could not be loaded" in result.output
    assert not (tmp_path / "inj").exists()


def test_generator_endpoint_down(tiny_dir, context_file, tmp_path):
    out = tmp_path / "inj"
    result = run("inject", context_file, "--out", out, "--model", tiny_dir, "--generator-url", "http://127.0.0.1:9/v1",
                 "--generator-model", "m", "--device", "cpu")
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output
    assert not out.exists()


def test_interrupt_writes_nothing(tiny_dir, pairs_file, context_file, tmp_path, monkeypatch):
    from selfparam.methods.selfparam import SelfParam

    def interrupted(self, contexts):
        raise KeyboardInterrupt

    monkeypatch.setattr(SelfParam, "inject", interrupted)
    out = tmp_path / "inj"
    result = run(*inject_args(tiny_dir, pairs_file, out, context_file))
    assert result.exit_code == 130
    assert "nothing was written" in result.output
    assert not out.exists()


def test_existing_output_folder_is_refused(tiny_dir, pairs_file, context_file, tmp_path):
    out = tmp_path / "inj"
    out.mkdir()
    result = run(*inject_args(tiny_dir, pairs_file, out, context_file))
    assert result.exit_code == 2 and "already exists" in result.output


def test_ask_on_a_folder_that_is_not_an_injection(tmp_path):
    result = run("ask", tmp_path, "question?")
    assert result.exit_code == 2 and "not a saved injection" in result.output


# --- every command: a user's mistake is one clear line on stderr and exit code 2 ------------------------

def leaf_commands() -> list[tuple[str, ...]]:
    """Every command of the `selfparam` app, as the words that name it (sub-apps walked)."""
    import typer.main

    def walk(cmd, ctx, path):
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                yield from walk(sub, typer.Context(sub, parent=ctx, info_name=name), path + (name,))
        else:
            yield path

    root = typer.main.get_command(app)
    return list(walk(root, typer.Context(root, info_name="selfparam"), ()))


def _qa_eval(task):
    return lambda t: (["eval", task, "--data", t / "missing.json", "--out", t / "out"], "missing.json")


# one bad input per command (a missing file or a bad value) that fails before any real model loads;
# a new command fails `test_every_command_has_a_bad_input_case` until it gets one here
BAD_INPUTS = {
    ("inject",): lambda t: (["inject", t / "missing.txt", "--out", t / "out"], "missing.txt: no such file"),
    ("ask",): lambda t: (["ask", t / "missing", "What?"], "missing"),
    ("export",): lambda t: (["export", t / "missing", "--out", t / "out"], "missing"),
    ("demo",): lambda t: (["demo", "--unrelated", t / "missing.txt", "--out", t / "out"], "missing.txt"),
    ("bench",): lambda t: (["bench", "--model", "no-such-org/no-such-model"], "no-such-model"),
    ("eval", "single"): _qa_eval("single"),
    ("eval", "batch"): _qa_eval("batch"),
    ("eval", "sequential"): _qa_eval("sequential"),
    ("eval", "recommendation"): _qa_eval("recommendation"),
    ("eval", "merge"): lambda t: (["eval", "merge", t / "missing", t / "missing2", "--out", t / "out"], "missing"),
    ("eval", "ablate"): lambda t: (["eval", "ablate", f"{t / 'missing'}:a", f"{t / 'missing2'}:b", "--out", t / "out"],
                                   "missing"),
    ("eval", "lifelong"): lambda t: (["eval", "lifelong", "--data", t / "missing.json", "--out", t / "out"],
                                     "missing.json"),
    ("recipe", "train"): lambda t: (["recipe", "train", "--data", t / "missing.json", "--out", t / "out"],
                                    "missing.json"),
    ("recipe", "edit"): lambda t: (["recipe", "edit", "--repo", t / "out", "--checkpoint", t / "no-editor"],
                                   "no trained RECIPE editor"),
    ("recipe", "ship"): lambda t: (["recipe", "ship", t / "no-editor"], "no trained RECIPE editor"),
    ("recipe", "calibrate"): lambda t: (["recipe", "calibrate", t / "no-editor"], "no trained RECIPE editor"),
    ("versions",): lambda t: (["versions", t / "missing"], "missing"),
    ("rollback",): lambda t: (["rollback", t / "missing", "--to", "0"], "missing"),
    ("serve",): lambda t: (["serve", "--store", t / "store", "--method", "no-such-method"], "no-such-method"),
    ("eval", "conflicts"): lambda t: (["eval", "conflicts", "--data", t / "missing.json", "--out", t / "out"],
                                      "missing.json"),
    ("eval", "boundary"): lambda t: (["eval", "boundary", "--data", t / "missing.json", "--out", t / "out"],
                                     "missing.json"),
}

BAD_VALUES = [  # values the commands check themselves
    (["inject", "x.txt", "--out", "{t}/out", "--mode", "sideways"], "sideways"),
    (["inject", "x.txt", "--out", "{t}/out", "--hidden-weight", "-1"], "hidden_weight: must be >= 0"),
    (["inject", "x.txt", "--out", "{t}/out", "--nll-weight", "-1"], "nll_weight: must be >= 0"),
    (["inject", "x.txt", "--out", "{t}/out", "--nll-on", "pairs"], "nll_on: 'pairs' is not one of all, answers"),
    (["inject", "x.txt", "--out", "{t}/out", "--unrelated-weight", "0"], "unrelated_weight: must be > 0"),
    (["inject", "x.txt", "--out", "{t}/out", "--anchor-per-step", "-1"], "anchor_per_step: must be >= 0"),
    (["inject", "x.txt", "--out", "{t}/out", "--top-layers", "-1"], "top_layers: must be >= 0"),
    (["eval", "lifelong", "--data", "x.json", "--edits", "1,two", "--out", "{t}/out"], "edits"),
    (["recipe", "edit", "--repo", "{t}/out", "--prompt", "The CEO of Amazon is"], "--target"),
    (["recipe", "train", "--data", "x.json", "--validation", "0", "--steps", "0", "--out", "{t}/out"], "steps"),
    (["recipe", "calibrate", "{t}/out", "--sizes", "500,two"], "sizes"),  # checked before the editor loads
]


def assert_one_error_line(result, *expected: str, after_loading: bool = False) -> str:
    """Exit code 2, no traceback, and stderr is one `error: ...` line holding `expected` (with
    `after_loading`, the model's loading progress and precision lines may come before it)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    if after_loading:
        assert all(line.startswith(("Loading weights", "selfparam: computing")) for line in lines[:-1]), result.stderr
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_every_command_has_a_bad_input_case():
    commands = leaf_commands()
    assert ("eval", "lifelong") in commands and ("recipe", "edit") in commands  # sub-apps are walked
    assert sorted(commands) == sorted(BAD_INPUTS)


@pytest.mark.parametrize("command", sorted(BAD_INPUTS), ids=" ".join)
def test_bad_input_is_one_line_and_exit_2(command, tmp_path):
    args, expected = BAD_INPUTS[command](tmp_path)
    assert_one_error_line(run(*args), expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_unknown_option_is_one_line_and_exit_2(command):
    line = assert_one_error_line(run(*command, "--no-such-option", "1"))
    assert "--no-such-option" in line and f"{' '.join(command)} --help" in line


@pytest.mark.parametrize("args, expected", BAD_VALUES, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_bad_values_are_one_line_and_exit_2(args, expected, tmp_path, context_file):
    (tmp_path / "x.json").write_text(json.dumps([COUNTERFACT_RECORD]))
    args = [a.format(t=tmp_path) for a in args]
    args = [str(tmp_path / a) if a in ("x.json",) else str(context_file) if a == "x.txt" else a for a in args]
    assert_one_error_line(run(*args), expected)
    assert not (tmp_path / "out").exists()


COUNTERFACT_RECORD = {"case_id": 0, "prompt": "Alice lives in", "target_new": "Paris", "subject": "Alice",
                      "ground_truth": "Rome", "rephrase_prompt": "The home town of Alice is",
                      "locality_prompt": "Bob likes the colour", "locality_ground_truth": "blue"}


def test_lifelong_recipe_without_a_trained_editor(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPARAM_RECIPE_CHECKPOINT", str(tmp_path / "no-editor"))
    data = tmp_path / "edits.json"
    data.write_text(json.dumps([COUNTERFACT_RECORD]))
    result = run("eval", "lifelong", "--data", data, "--methods", "recipe", "--edits", "1", "--model", tiny_dir,
                 "--device", "cpu", "--dtype", "fp32", "--out", tmp_path / "out")
    # the registry's preflight finds the missing editor before the model loads
    assert_one_error_line(result, "trained editor", "no-editor")
    assert not (tmp_path / "out").exists()


def test_eval_single_recipe_without_a_trained_editor_fails_before_the_model_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPARAM_RECIPE_CHECKPOINT", str(tmp_path / "no-editor"))
    squad = Path(__file__).resolve().parents[2] / "shared/data/squad_v1.1/dev-v1.1-public.json"
    if not squad.is_file():
        pytest.skip("shared data not found")
    result = run("eval", "single", "--data", squad, "--methods", "base,recipe", "--n", "1", "--model", "no-such-model",
                 "--out", tmp_path / "out")
    assert_one_error_line(result, "trained editor", "no-editor")
    assert not (tmp_path / "out").exists()
