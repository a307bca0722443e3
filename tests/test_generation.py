"""Sampling many continuations of one prompt on its cached KV state, and one of each of many prompts in a batch
(tiny random model)."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from selfparam.generation import (
    encode_prompt,
    generate,
    sample_continuations,
    sample_each,
    target_logprob,
    target_token_logprobs,
    top_p_filter,
)
from selfparam.testing import tiny_lm

PROMPT = "<|im_start|>user\nWho opened the Blue Heron bakery in Tromso?<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cached_greedy_decoding_gives_the_uncached_tokens(seed):
    lm = tiny_lm(seed=seed)
    encoded = encode_prompt(lm, PROMPT)
    cached = sample_continuations(lm, encoded, n=3, max_new_tokens=24, do_sample=False)
    enc = lm.tokenizer([PROMPT], return_tensors="pt", add_special_tokens=False)
    out = lm.model.generate(**enc, max_new_tokens=24, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
    reference = [t for t in out[0, enc["input_ids"].shape[1]:].tolist() if t != lm.tokenizer.eos_token_id]
    assert all(list(c.ids) == reference for c in cached)  # every row of the expanded cache, token for token
    assert cached[0].text.strip() == generate(lm, [PROMPT], max_new_tokens=24)[0]


def test_sampling_is_reproducible_per_seed_and_leaves_the_global_rng_alone():
    lm = tiny_lm(seed=0)
    encoded = encode_prompt(lm, PROMPT)
    torch.manual_seed(123)
    before = torch.rand(1)
    a = sample_continuations(lm, encoded, n=4, max_new_tokens=16, temperature=0.7, top_p=0.9, seed=5)
    torch.manual_seed(123)
    b = sample_continuations(lm, encoded, n=4, max_new_tokens=16, temperature=0.7, top_p=0.9, seed=5)
    assert torch.rand(1) == before  # the draw used its own generator
    c = sample_continuations(lm, encoded, n=4, max_new_tokens=16, temperature=0.7, top_p=0.9, seed=6)
    assert a == b and a != c
    assert len({x.ids for x in a}) == 4  # the rows are distinct samples, not one sample copied


def test_retired_rows_leave_the_batch_cut_and_the_others_run_on():
    lm = tiny_lm(seed=0)
    encoded = encode_prompt(lm, PROMPT)
    asked = []

    def retire_first(text: str) -> bool:  # the first row asked, at the first check, and no other
        asked.append(text)
        return len(asked) == 1

    rows = sample_continuations(lm, encoded, n=3, max_new_tokens=24, do_sample=False, retire=retire_first,
                                check_every=8)
    assert [len(r.ids) for r in rows] == [8, 24, 24] and not rows[0].ended
    assert len(asked) == 3 + 2  # three rows after 8 tokens, the two left after 16; none after the last token
    plain = sample_continuations(lm, encoded, n=3, max_new_tokens=24, do_sample=False)
    assert rows[1:] == plain[1:] and rows[0].ids == plain[0].ids[:8]  # greedy rows do not depend on the batch
    everyone = sample_continuations(lm, encoded, n=2, max_new_tokens=24, do_sample=False, retire=lambda t: True)
    assert [len(r.ids) for r in everyone] == [8, 8]


def test_one_sample_of_each_prompt_is_seeded_stops_at_its_stop_string_and_leaves_the_global_rng_alone():
    lm = tiny_lm(seed=0, initializer_range=0.3)
    prompts = [PROMPT, PROMPT.replace("Tromso", "Oslo"), PROMPT] * 3
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    free = sample_each(lm, prompts, max_new_tokens=30, temperature=1.5, seed=3, batch_size=4)
    assert torch.equal(torch.rand(1), expected_next)  # the global stream is where it was
    assert sample_each(lm, prompts, max_new_tokens=30, temperature=1.5, seed=3, batch_size=4) == free
    assert sample_each(lm, prompts, max_new_tokens=30, temperature=1.5, seed=4, batch_size=4) != free
    stop = next(c for text in free for c in text if c.isalpha())  # a letter some free row writes
    cut = sample_each(lm, prompts, max_new_tokens=30, temperature=1.5, seed=3, batch_size=4, stop=(stop,))
    assert any(stop in text for text in cut)
    for text, whole in zip(cut, free):
        if stop in text:  # a row ends at its first stop string; before it, the free row's own draw
            assert text.endswith(stop) and text.count(stop) == 1 and whole.startswith(text)


def test_a_row_over_its_word_limit_stops_and_the_others_come_out_the_same():
    """`max_words`: a row ends once its text has more words than its limit (callers discard such texts); every
    other row of the batch is exactly what it would have been without limits."""
    lm = tiny_lm(seed=0, initializer_range=0.3)
    prompts = [PROMPT, PROMPT.replace("Tromso", "Oslo"), PROMPT.replace("bakery", "mill"), PROMPT[:-10]]
    free = generate(lm, prompts, max_new_tokens=40, batch_size=4)
    words = [len(t.split()) for t in free]
    assert max(words) >= 2, free   # some row writes words to cut
    limits = [max(0, n - 1) if i % 2 == 0 else n for i, n in enumerate(words)]  # rows 0 and 2 one word short
    cut = generate(lm, prompts, max_new_tokens=40, batch_size=4, max_words=limits)
    for i, (c, f, n) in enumerate(zip(cut, free, limits)):
        if len(f.split()) <= n:
            assert c == f                                              # within its limit: the same text
        else:
            assert len(c.split()) > n and f.startswith(c.rstrip())     # over it: cut, still over, a prefix
    with pytest.raises(ValueError, match="one limit per prompt"):
        generate(lm, prompts, max_words=[3])


def test_top_p_filter_equals_transformers_warper():
    torch.manual_seed(0)
    logits = torch.randn(5, 50) * 3
    for top_p in (0.1, 0.5, 0.9, 0.95):
        expected = TopPLogitsWarper(top_p)(None, logits.clone())
        assert torch.equal(top_p_filter(logits, top_p), expected)
    assert torch.equal(top_p_filter(logits, 1.0), logits)


def test_enough_stops_every_row_early():
    lm = tiny_lm(seed=0)
    encoded = encode_prompt(lm, PROMPT)
    seen = []

    def enough(partial):
        seen.append(max(len(c.ids) for c in partial))
        return seen[-1] >= 16

    out = sample_continuations(lm, encoded, n=3, max_new_tokens=64, seed=0, enough=enough, check_every=8)
    assert seen[:2] == [8, 16] and len(seen) == 2  # asked every 8 tokens, stopped at the first True
    assert all(len(c.ids) <= 16 and not c.ended for c in out)


def test_rows_that_end_leave_the_batch():
    lm = tiny_lm(seed=0)
    lm.model.generation_config.eos_token_id = list(range(len(lm.tokenizer)))  # every token ends a row
    out = sample_continuations(lm, encode_prompt(lm, PROMPT), n=3, max_new_tokens=10, seed=0)
    assert all(c.ended and c.ids == () and c.text == "" for c in out)


def test_bad_arguments_are_refused():
    lm = tiny_lm(seed=0)
    encoded = encode_prompt(lm, PROMPT)
    with pytest.raises(ValueError, match="temperature"):
        sample_continuations(lm, encoded, n=2, max_new_tokens=4, temperature=0)
    with pytest.raises(ValueError, match="n and max_new_tokens"):
        sample_continuations(lm, encoded, n=0, max_new_tokens=4)
    with pytest.raises(ValueError, match="empty prompt"):
        encode_prompt(lm, "")


def test_a_shared_prefix_encoded_once_gives_the_whole_prompts_logits():
    lm = tiny_lm(seed=0)
    head, tail = PROMPT[:30], PROMPT[30:]
    whole = encode_prompt(lm, PROMPT)
    extended = encode_prompt(lm, tail, prefix=encode_prompt(lm, head))
    assert extended.ids == whole.ids
    assert torch.allclose(extended.next_logits, whole.next_logits, atol=1e-5)
    a = sample_continuations(lm, whole, n=2, max_new_tokens=8, seed=1)
    assert a == sample_continuations(lm, extended, n=2, max_new_tokens=8, seed=1)


def test_target_logprob_is_the_mean_log_softmax_of_the_target_tokens_whatever_the_padding(tiny):
    """By hand, one row at a time with no padding: mean over the target's tokens of log_softmax(logits at the
    position before it)[token]. Batched, the shorter row is right-padded: that must change nothing."""
    prefixes = ["Question: Who opened the Blue Heron bakery?\nAnswer:", "Q?"]
    targets = [" Ana Lind of Tromso, in 1989", " Ana"]
    tok = tiny.tokenizer

    def hand(prefix: str, target: str) -> float:
        p = tok(prefix, add_special_tokens=False)["input_ids"]
        t = tok(target, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(tiny.model(input_ids=torch.tensor([p + t])).logits[0].float(), dim=-1)
        return sum(logp[len(p) + i - 1, token].item() for i, token in enumerate(t)) / len(t)

    expected = [hand(p, t) for p, t in zip(prefixes, targets)]
    assert len(tok(targets[0], add_special_tokens=False)["input_ids"]) > 3 * len(tok(targets[1],
                                                                                     add_special_tokens=False)["input_ids"])
    assert expected[0] != pytest.approx(expected[1])
    for batch_size in (1, 2):
        assert target_logprob(tiny, prefixes, targets, batch_size=batch_size) == pytest.approx(expected, abs=1e-5)
    assert all(v < 0 for v in expected)
    with pytest.raises(ValueError, match="non-empty prefix and target"):
        target_logprob(tiny, ["Q?"], [""])
    with pytest.raises(ValueError, match="2 prefixes but 1 targets"):
        target_logprob(tiny, prefixes, targets[:1])
    # per token: one log-prob per target token, whose mean is the figure above
    per_token = target_token_logprobs(tiny, prefixes, targets, batch_size=2)
    assert [len(t) for t in per_token] == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in targets]
    assert [t.mean().item() for t in per_token] == pytest.approx(expected, abs=1e-5)
