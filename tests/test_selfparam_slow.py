"""SELF-PARAM on the real embedded model: the injected facts are answered, the unrelated prompt is not moved."""

from __future__ import annotations

import pytest
from rich.console import Console

from selfparam.demo import run_demo

# Stated bound for the five unrelated prompts of the demo ("The capital of France is", ...): their mean
# next-token KL (nats) between the base and the injected model. Measured 0.328 with the defaults of 2026-12-05
# (the context read and the paper's KL span on; 0.105-0.111 before them; 0.61-0.65 with the paper's objective;
# `selfparam demo`, seed 0; docs/tuning.md): this bound
# catches a model that collapses (KL of several nats), not a fine regression.
UNRELATED_KL_BOUND = 1.0


@pytest.mark.slow
def test_demo_injection_raises_f1_without_the_context_and_keeps_the_unrelated_prompt(shared_data, tmp_path):
    summary = run_demo(Console(file=open(tmp_path / "demo.log", "w"), width=200),
                       unrelated=str(shared_data / "wikitext2" / "wiki.test.raw"), out=tmp_path / "inj")
    print(summary)
    # measured: 0.08 before -> 0.34 after (the in-context upper bound scored 0.21: it answers less to the point)
    assert summary["f1_after"] > summary["f1_before"] + 0.1, summary
    assert summary["unrelated_probe_kl"] < UNRELATED_KL_BOUND, summary
    assert (tmp_path / "inj" / "updates" / "0001" / "adapter_model.safetensors").is_file()
