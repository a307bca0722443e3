"""SELF-PARAM on the real embedded model: the injected facts are answered, the unrelated prompt is not moved."""

from __future__ import annotations

import pytest
from rich.console import Console

from selfparam.demo import run_demo

# Stated bound for the unrelated prompt ("The capital of France is"): the next-token distribution after
# injection stays within this KL (nats) of the base model's. Measured: see docs/tuning.md.
UNRELATED_KL_BOUND = 0.25


@pytest.mark.slow
def test_demo_injection_raises_f1_without_the_context_and_keeps_the_unrelated_prompt(shared_data, tmp_path):
    summary = run_demo(Console(file=open(tmp_path / "demo.log", "w"), width=200),
                       unrelated=str(shared_data / "wikitext2" / "wiki.test.raw"), out=tmp_path / "inj")
    print(summary)
    assert summary["f1_after"] > summary["f1_before"] + 0.1, summary
    assert summary["unrelated_probe_kl"] < UNRELATED_KL_BOUND, summary
    assert (tmp_path / "inj" / "updates" / "0001" / "adapter_model.safetensors").is_file()
