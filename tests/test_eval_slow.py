"""The harness on the real embedded model (slow tier): with the paragraph in the prompt the model answers
what it cannot answer bare, and BM25 RAG holding only the gold paragraph builds the very prompt of
Base(C+Q). The paragraph and its three questions are drawn as in the recorded run
(docs/results/single-squad-n20-baselines, Base(C+Q) F1 0.46 there against 0.08 for Base(Q)); the three
questions are answered in one batch, as there, because left-padded bf16 batches can change a greedy answer."""

from __future__ import annotations

import pytest

from selfparam.eval.loaders import load_qa, sample_contexts
from selfparam.eval.tasks import run_single
from selfparam.methods.registry import build_method


@pytest.mark.slow
def test_single_injection_on_squad(embedded_lm, shared_data):
    drawn = sample_contexts(load_qa(shared_data / "squad_v1.1/dev-v1.1-public.json"), 20, seed=0,
                            questions_per_context=3)
    item = next(c for c in drawn if c.context.id == "Nikola_Tesla/44")
    result = run_single(["base", "base-cq", "rag-bm25"], lambda n: build_method(n, embedded_lm), [item],
                        max_new_tokens=16, progress=False)
    assert all(o.status == "ok" for o in result.outcomes)
    f1 = {o.name: o.metrics["f1"] for o in result.outcomes}
    assert f1["base-cq"] >= f1["base"] + 0.2
    answers = {m: [r["prediction"] for r in result.records if r["method"] == m] for m in f1}
    assert "1900" in answers["base-cq"][0] and "1900" not in answers["base"][0]
    assert answers["rag-bm25"] == answers["base-cq"]  # one stored paragraph: the same prompt, same answers
