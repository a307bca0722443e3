"""The local generator on the real embedded model (SmolLM2-135M-Instruct): usable pairs in one or two rounds."""

from __future__ import annotations

import time

import pytest

from selfparam.targets import FilterConfig, LocalGenerator, lexical_support, normalize_question, select_pairs

CTX = ("Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun, "
       "and the shop closes every Tuesday so the bakers can test new recipes.")


@pytest.mark.slow
def test_local_generator_writes_parseable_unique_supported_pairs(embedded_lm):
    no_support_check = FilterConfig(min_support=0.0, min_question_support=0.0)
    gen = LocalGenerator(embedded_lm, batch_size=16, max_new_tokens=128, max_rounds=2, filter_config=no_support_check)
    start = time.perf_counter()
    raw = gen.generate(CTX, n=10, seed=0)
    elapsed = time.perf_counter() - start
    pairs, dropped = select_pairs(raw, CTX, no_support_check)
    assert len(pairs) >= 10, f"only {len(pairs)} pairs from {len(raw)} raw in {gen.rounds_used} rounds: {dropped}"
    assert len({normalize_question(p.question) for p in pairs}) == len(pairs)
    assert all(p.question.strip() and p.answer.strip() for p in pairs)
    # The support check was off above: most answers should still come from the context.
    supported = [p for p in pairs if lexical_support(p.answer, CTX) >= 0.5]
    assert len(supported) >= 0.6 * len(pairs), [(p.question, p.answer) for p in pairs]
    # No wall-clock assertion: one round took ~35 s on an idle 2-core machine but 467 s with the cores
    # shared four ways; the time is printed for the record instead.
    print(f"{len(pairs)} pairs from {len(raw)} raw in {gen.rounds_used} round(s), {elapsed:.0f} s")
