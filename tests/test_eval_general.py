"""General ability: MMLU letter scoring and perplexity, checked exactly on a model with uniform logits."""

from __future__ import annotations

import csv
import random

import pytest
import torch

from selfparam.eval.general import (
    GeneralConfig,
    general_ability,
    letter_token_ids,
    load_mmlu,
    mmlu_accuracy,
    mmlu_prompt,
    perplexity,
)
from selfparam.testing import tiny_lm


@pytest.fixture
def uniform():
    """The tiny model with all-zero embeddings (tied to the output head): every logit is 0."""
    lm = tiny_lm(seed=0)
    with torch.no_grad():
        lm.model.get_input_embeddings().weight.zero_()
    return lm


def test_perplexity_of_uniform_logits_is_the_vocabulary_size(uniform):
    vocab = uniform.model.config.vocab_size
    assert perplexity(uniform, "The quick brown fox jumps over the lazy dog. " * 4, max_tokens=100, window=32) == \
        pytest.approx(vocab, rel=1e-4)


def test_perplexity_needs_two_tokens(tiny):
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        perplexity(tiny, "a")


def test_mmlu_prompt_format():
    from selfparam.eval.general import MCQuestion

    q = MCQuestion("college_biology", "What is DNA?", ("a", "b", "c", "d"), 2)
    shot = MCQuestion("college_biology", "What is RNA?", ("w", "x", "y", "z"), 0)
    text = mmlu_prompt(q, [shot])
    assert text.startswith("The following are multiple choice questions (with answers) about college biology.")
    assert "What is RNA?\nA. w\nB. x\nC. y\nD. z\nAnswer: A\n\nWhat is DNA?\nA. a" in text
    assert text.endswith("D. d\nAnswer:")


def test_mmlu_on_real_files_with_uniform_logits(shared_data, uniform):
    folder = shared_data / "mmlu"
    assert len(set(letter_token_ids(uniform))) == 4
    # uniform logits: argmax over the four letters picks the first, "A"; accuracy = share of answer 0
    acc = mmlu_accuracy(uniform, folder, ["anatomy", "astronomy"], per_subject=6, seed=3)
    for subject in ("anatomy", "astronomy"):
        with open(folder / "test" / f"{subject}_test.csv", newline="") as f:
            answers = [int(r["answer"]) for r in csv.DictReader(f)]
        drawn = random.Random(3).sample(range(len(answers)), 6)
        assert acc[subject] == pytest.approx(sum(answers[i] == 0 for i in drawn) / 6)
    assert acc["all"] == pytest.approx((acc["anatomy"] + acc["astronomy"]) / 2)


def test_mmlu_unknown_subject_lists_known(shared_data):
    with pytest.raises(ValueError, match="not found.*known subjects: abstract_algebra"):
        load_mmlu(shared_data / "mmlu", "underwater_basketry")


def test_general_ability_keys(shared_data, tiny):
    cfg = GeneralConfig(mmlu_dir=shared_data / "mmlu", subjects=("anatomy",), per_subject=4,
                        wikitext=shared_data / "wikitext2/wiki.test.raw", ppl_tokens=64, ppl_window=32)
    out = general_ability(tiny, cfg)
    assert set(out) == {"mmlu_acc", "mmlu/anatomy", "wikitext_ppl"}
    assert 0 <= out["mmlu_acc"] <= 1 and out["wikitext_ppl"] > 1
    with pytest.raises(ValueError, match="give an MMLU folder"):
        GeneralConfig()
