"""The CLI end to end on a tiny model saved to a folder: the happy path and every bad input."""

import json
from pathlib import Path

import pytest
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
    result = run("ask", out, "What happens in Quenby?", "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "4")
    assert result.exit_code == 0, result.output
    assert "with injection" in result.output
    result = run("export", out, "--out", tmp_path / "hf")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hf" / "config.json").is_file()


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
