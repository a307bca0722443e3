"""General ability: MMLU letter scoring and perplexity, checked exactly on a model with uniform logits."""

from __future__ import annotations

import csv
import math
import random

import pytest
import torch

from selfparam.eval.general import (
    GeneralConfig,
    general_ability,
    general_change,
    letter_token_ids,
    load_mmlu,
    mmlu_accuracy,
    mmlu_prompt,
    nll_blocks,
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
    assert set(out) == {"mmlu_acc", "mmlu/anatomy", "wikitext_ppl", "mmlu_hits", "wikitext_block_nll",
                        "wikitext_block_tokens"}
    assert 0 <= out["mmlu_acc"] <= 1 and out["wikitext_ppl"] > 1
    # the per-item figures the paired intervals are computed from give the figures themselves
    assert len(out["mmlu_hits"]) == 4 and set(out["mmlu_hits"]) <= {0.0, 1.0}
    assert out["mmlu_acc"] == sum(out["mmlu_hits"]) / 4
    assert out["wikitext_block_tokens"] == [31, 31]  # two windows of 32 tokens, each a block of 31 scored
    assert math.exp(sum(out["wikitext_block_nll"]) / 62) == pytest.approx(out["wikitext_ppl"])
    with pytest.raises(ValueError, match="give an MMLU folder"):
        GeneralConfig()


def test_nll_blocks_split_each_window_and_sum_to_the_perplexity(tiny):
    text = "The quick brown fox jumps over the lazy dog. " * 8
    sums, counts = nll_blocks(tiny, text, max_tokens=64, window=32, block=8)
    assert counts == [8, 8, 8, 7] * 2  # each window of 32 tokens scores 31, in blocks of 8 from its start
    assert math.exp(sum(sums) / sum(counts)) == pytest.approx(perplexity(tiny, text, max_tokens=64, window=32))
    with pytest.raises(ValueError, match="block must be >= 1"):
        nll_blocks(tiny, text, block=0)


def test_general_change_is_paired_and_needs_the_same_items():
    before = {"mmlu_hits": [1.0, 0.0, 1.0, 0.0], "wikitext_block_nll": [10.0, 20.0], "wikitext_block_tokens": [5, 5]}
    after = {"mmlu_hits": [1.0, 1.0, 1.0, 0.0], "wikitext_block_nll": [11.0, 22.0], "wikitext_block_tokens": [5, 5]}
    change = general_change(before, after, resamples=500)
    assert change["mmlu_change"] == pytest.approx(0.25)  # one question of four gained
    lo, hi = change["mmlu_change_ci"]
    assert 0 <= lo <= 0.25 <= hi <= 1  # never below 0: no question was lost
    assert change["wikitext_ppl_change"] == pytest.approx(math.exp(3 / 10) - 1)  # 0.3 nats/token more
    lo, hi = change["wikitext_ppl_change_ci"]
    assert math.exp(1 / 5) - 1 - 1e-9 <= lo <= hi <= math.exp(2 / 5) - 1 + 1e-9  # between the blocks' own changes
    assert general_change(before, before)["wikitext_ppl_change_ci"] == [0.0, 0.0]
    # other items (another MMLU draw, another text or window) or figures recorded without them: left out
    assert general_change(before, {**after, "mmlu_hits": [1.0], "wikitext_block_tokens": [4, 6]}) == {}
    assert general_change({"mmlu_acc": 0.5, "wikitext_ppl": 20.0}, after) == {}
