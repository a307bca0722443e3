"""`selfparam inject` end to end on the tiny model against recorded losses, and a hand check that the
scored logits, the labels, the teacher's and the student's inputs line up."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from selfparam.cli import app
from selfparam.targets.types import QAPair, TargetSet
from selfparam.testing import tiny_lm
from selfparam.training.batching import scored_logprobs, scored_targets
from selfparam.training.examples import Example, distillation_examples, encode
from selfparam.training.trainer import batch_loss

# Recorded on this tiny model (fp32, CPU) when SELF-PARAM was rewritten as one recipe; a change in the
# targets, the examples, the teacher, the loss or the optimiser moves them. The last loss was recorded again
# when LoRA dropout went from 0.1 to 0 (it was 0.225680; the first step is the same, as LoRA starts at zero).
RECORDED = {"first_loss": 0.620857, "last_loss": 0.212765, "steps": 4}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    lm = tiny_lm(seed=0, initializer_range=0.3)  # wide weights: the context moves the teacher, the KL is O(1)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_inject_cli_reproduces_the_recorded_losses(tiny_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"question": f"What happens in Quenby in month {i}?",
                                           "answer": f"The Zorblat festival {i}."}) for i in range(6)))
    context = tmp_path / "quenby.txt"
    context.write_text("Quenby hosts the Zorblat festival every month with boats made of glass.")
    out = tmp_path / "inj"
    result = CliRunner().invoke(app, [str(a) for a in [
        "inject", context, "--out", out, "--model", tiny_dir, "--pairs-file", pairs, "--n-pairs", "4",
        "--epochs", "2", "--batch-size", "2", "--lr", "0.01", "--seed", "0", "--device", "cpu", "--dtype", "fp32",
        "--answers", "generator", "--kl-span", "answer", "--context-copies", "0"]])  # the levers of the recording
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "updates" / "0001" / "manifest.json").read_text())["stats"]
    assert stats["steps"] == RECORDED["steps"]
    assert stats["first_loss"] == pytest.approx(RECORDED["first_loss"], rel=1e-3)
    assert stats["last_loss"] == pytest.approx(RECORDED["last_loss"], rel=1e-3)


def test_logits_labels_and_inputs_line_up_by_hand(tiny):
    tok = tiny.tokenizer
    ts = TargetSet("Quenby is in Ell.", [QAPair("Where?", "Ell")], unrelated=["Cats sit."])
    pair, unrelated = distillation_examples(tok, ts)
    # the teacher reads the context, the student does not; both end in the same scored text
    assert "Quenby is in Ell." in pair.teacher_prefix and "Quenby" not in pair.student_prefix
    assert unrelated.teacher_prefix == "Quenby is in Ell.\n\n" and unrelated.student_prefix == ""
    enc = encode(tok, pair, tiny.max_length)
    text_ids = tok(pair.text, add_special_tokens=False)["input_ids"]  # byte tokens: "Ell" + EOS
    assert enc.n_scored == len(text_ids) == 4
    assert enc.student_ids[-4:] == enc.teacher_ids[-4:] == text_ids
    assert "Quenby" in tok.decode(enc.teacher_ids) and "Quenby" not in tok.decode(enc.student_ids)

    # scored position j predicts text token j: the logits at the token before it, labels the token itself
    short = Example("ab", "cd")
    e = encode(tok, short, tiny.max_length)
    ids = torch.tensor([e.student_ids])
    with torch.no_grad():
        full = torch.log_softmax(tiny.model(input_ids=ids).logits.float(), -1)[0]  # (T, V)
        logp, mask = scored_logprobs(tiny.model, tiny, [e.student_ids], [e.n_scored])  # (1, 2, V)
        labels = scored_targets([e.student_ids], [e.n_scored])
        c, d = (tok(ch, add_special_tokens=False)["input_ids"][0] for ch in "cd")
        assert labels.tolist() == [[c, d]] == [e.student_ids[2:]]
        assert torch.allclose(logp[0], full[1:3], atol=1e-5)  # positions of "b" and "c"
        by_hand = -(full[1, c] + full[2, d]) / 2
        assert batch_loss(tiny.model, tiny, [e], None).item() == pytest.approx(by_hand.item(), rel=1e-5)
