"""RECIPE's paper losses on hand-made tensors: the hinge edit loss, the sentinel InfoNCE terms; and the
question forms built from CounterFact's statement prompts."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from selfparam.eval.editing_data import EditRecord
from selfparam.methods.recipe import TrainConfig
from selfparam.methods.recipe.losses import (
    IGNORE,
    hinge_target_loss,
    sentinel_info_nce,
    sentinel_over_others_nce,
    target_cross_entropy,
)
from selfparam.methods.recipe.questions import question_from_template, question_prompt, relation_template


def _logits_with_probs(rows: list[list[float]]) -> torch.Tensor:
    """(1, T, V) logits whose softmax at position t is rows[t] (log of the probabilities)."""
    return torch.tensor(rows).log()[None]


# --- hinge edit loss ------------------------------------------------------------------------------------

def test_hinge_counts_only_tokens_below_scale_times_the_runner_up():
    # position 0 predicts label[1] = 0: p=0.5 vs runner-up 0.45 -> 0.5 < 1.2*0.45=0.54: counts
    # position 1 predicts label[2] = 1: p=0.7 vs runner-up 0.2 -> past the margin: does not count
    # position 2 predicts label[3] = 2: p=0.1 (not even the top token) -> counts
    logits = _logits_with_probs([[0.5, 0.45, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    labels = torch.tensor([[IGNORE, 0, 1, 2]])
    want = -(math.log(0.5) + math.log(0.1)) / 2
    assert hinge_target_loss(logits, labels, 1.2).item() == pytest.approx(want, rel=1e-5)
    # scale inf: every labelled token, the plain cross-entropy
    assert hinge_target_loss(logits, labels, math.inf).item() == pytest.approx(
        target_cross_entropy(logits, labels).item(), rel=1e-5)
    # scale 1: a token counts only while it is not the strict favourite (0.5 > 0.45: drops out)
    assert hinge_target_loss(logits, labels, 1.0).item() == pytest.approx(-math.log(0.1), rel=1e-5)


def test_hinge_is_zero_with_a_gradient_path_when_every_token_is_learnt():
    logits = _logits_with_probs([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [1 / 3, 1 / 3, 1 / 3]]).requires_grad_()
    labels = torch.tensor([[IGNORE, 0, 1]])
    loss = hinge_target_loss(logits, labels)
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph
    assert torch.count_nonzero(logits.grad) == 0
    with pytest.raises(ValueError, match="scale"):
        hinge_target_loss(logits, labels, 0.5)


# --- sentinel InfoNCE -----------------------------------------------------------------------------------

def test_sentinel_info_nce_hinges_only_unrelated_queries():
    s = torch.tensor([1.0, 0.0])
    k = torch.tensor([[0.0, 1.0]])
    q = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # related to k0 (clearly), unrelated (clearly at the sentinel)
    pos = torch.tensor([0, -1])
    t = 0.5
    logp = F.log_softmax(q @ torch.cat([s[None], k]).T / t, dim=1)
    plain = sentinel_info_nce(q, k, s, pos, t)
    assert plain.item() == pytest.approx(-(logp[0, 1] + logp[1, 0]).item() / 2, rel=1e-5)
    # hinged at 1.2: the unrelated query is past the margin (p_sentinel = 0.88 > 1.2 * 0.12), so only the
    # related one counts (never hinged), divided by both rows
    hinged = sentinel_info_nce(q, k, s, pos, t, hinge_scale=1.2)
    assert hinged.item() == pytest.approx(-logp[0, 1].item() / 2, rel=1e-5)
    # an unrelated query still nearer a knowledge than the sentinel counts, hinged or not
    q3, pos3 = torch.cat([q, k]), torch.tensor([0, -1, -1])
    logp3 = F.log_softmax(q3 @ torch.cat([s[None], k]).T / t, dim=1)
    assert sentinel_info_nce(q3, k, s, pos3, t, hinge_scale=1.2).item() == pytest.approx(
        -(logp3[0, 1] + logp3[2, 0]).item() / 3, rel=1e-5)


def test_sentinel_over_others_puts_the_sentinel_above_wrong_knowledge_only():
    k = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    s = torch.tensor([0.0, 0.0, 1.0])
    q = F.normalize(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]), dim=1)  # own key, then sentinel, then other
    own = torch.tensor([0, 1])
    t = 0.1
    # candidates of query 0: [sentinel (in place of k0), k1]; the positive is the sentinel
    sims = torch.stack([torch.stack([q[0] @ s, q[0] @ k[1]]), torch.stack([q[1] @ k[0], q[1] @ s])])
    want = -(F.log_softmax(sims / t, dim=1)[[0, 1], [0, 1]]).mean()
    assert sentinel_over_others_nce(q, k, s, own, t).item() == pytest.approx(want.item(), rel=1e-5)
    # the own key does not appear: moving it changes nothing
    k_moved = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert sentinel_over_others_nce(q[:1], k_moved, s, own[:1], t).item() == pytest.approx(
        sentinel_over_others_nce(q[:1], torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), s, own[:1], t).item())
    # past the hinge margin: nothing to learn
    assert sentinel_over_others_nce(q, k, s, own, t, hinge_scale=1.2).item() == 0.0


def test_train_config_hinge_and_question_settings_are_checked():
    cfg = TrainConfig()
    assert (cfg.edit_hinge_scale, cfg.contrastive_hinge_scale, cfg.retrieval_steps) == (1.2, 1.2, 2)
    TrainConfig(edit_hinge_scale=math.inf)
    for bad in (dict(edit_hinge_scale=0.9), dict(contrastive_hinge_scale=-1), dict(question_share=1.5),
                dict(curve_every=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)


# --- question forms -------------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt,subject,question", [
    ("The mother tongue of Danielle Darrieux is", "Danielle Darrieux",
     "What is the mother tongue of Danielle Darrieux?"),
    ("Toko Yasuda is located in", "Toko Yasuda", "Where is Toko Yasuda located?"),
    ("Autonomous University of Madrid, which is located in", "Autonomous University of Madrid",
     "Autonomous University of Madrid, which is located in what?"),
    ("What is the twin city of Lyon? It is", "Lyon", "What is the twin city of Lyon?"),
    ("iPhone 5 is developed by", "iPhone 5", "Who is iPhone 5 developed by?"),
    ("Kyoto is a twin city of", "Kyoto", "What is Kyoto a twin city of?"),
    ("In Belgium, the language spoken is", "Belgium", "In Belgium, what is the language spoken?"),
    ("Apple A5 was created by", "Apple A5", "Who was Apple A5 created by?"),
    ("Which river flows through Paris?", "", "Which river flows through Paris?"),  # zsRE: kept whole
    ("The capital of France is", "", "What is the capital of France?"),  # no subject: whole-prompt rules
])
def test_question_prompt_rules(prompt, subject, question):
    assert question_prompt(prompt, subject) == question


def test_relation_templates_are_shared_by_the_records_of_one_relation():
    records = [EditRecord("a", "The mother tongue of Danielle Darrieux is", "English", "x", "y", "z",
                          subject="Danielle Darrieux"),
               EditRecord("b", "The mother tongue of Jean Reno is", "Dutch", "x", "y", "z", subject="Jean Reno")]
    templates = {relation_template(r.prompt, r.subject) for r in records}
    assert templates == {"The mother tongue of {} is"}
    assert question_from_template("The mother tongue of {} is") == "What is the mother tongue of {}?"
    assert relation_template("Paris is nice", "Rome") is None
    with pytest.raises(ValueError, match="prompt"):
        question_prompt("  ", "x")


def test_training_batch_asks_the_question_form_where_told(tiny):
    from selfparam.methods.recipe.training import build_edit_batch

    rec = EditRecord("a", "The mother tongue of Danielle Darrieux is", "English", "Where she is from, people speak",
                     "Michel Rocard is a native speaker of", "French", subject="Danielle Darrieux")
    stated = build_edit_batch(tiny, [rec], [False])
    asked = build_edit_batch(tiny, [rec], [True])
    text = lambda b: tiny.tokenizer.decode(b["ids"][0][b["mask"][0].bool()])  # noqa: E731
    assert "The mother tongue of Danielle Darrieux is" in text(stated)
    assert "What is the mother tongue of Danielle Darrieux?" in text(asked)
    assert text(asked).endswith("English" + tiny.tokenizer.eos_token)
    # the generality and locality rows do not change
    assert torch.equal(stated["ids"][1:][stated["mask"][1:].bool()], asked["ids"][1:][asked["mask"][1:].bool()])
    with pytest.raises(ValueError, match="as_question"):
        build_edit_batch(tiny, [rec], [True, False])
