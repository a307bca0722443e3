"""Base(Q) and Base(C+Q): the model is never changed, so injecting is a no-op and there is nothing to store.

Both answer through `PromptedMethod`, so their prompts are exactly what every other method sees; the only
difference is that Base(C+Q) puts the query's gold context before the question.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ...atomic import atomic_folder
from ...lm import LM
from ...prompts import answer_prompt
from ..base import Context, Query, Resources
from ..prompted import PromptedMethod, answer_in_context


class BaseQ(PromptedMethod):
    """The base model, question only: what the model knows without any injection (the floor)."""

    name = "base"
    static_answers = True  # injecting changes nothing: a sequential run asks each question once

    def __init__(self, lm: LM, config: Any = None, resources: Resources | None = None):
        if config is not None:
            raise ValueError(f"{self.name}: takes no config, got {config!r}")
        super().__init__(lm)
        self.n_injected = 0  # counted only so save/load round-trip something checkable

    def inject(self, contexts: Sequence[Context]) -> None:
        """Nothing to learn: the base model stays as it is."""
        self.n_injected += len(contexts)

    def answer_in_context(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        """The unchanged model with each query's context in the prompt (`ReadsContext`)."""
        return answer_in_context(self.lm, queries, max_new_tokens, self.batch_size)

    def reset(self) -> None:
        self.n_injected = 0

    def storage_bytes(self) -> int:
        return 0

    def save(self, path: Path) -> None:
        """A manifest naming the method, so `load` can refuse a folder written by another method."""
        _write_manifest(Path(path), {"method": self.name, "n_injected": self.n_injected})

    def load(self, path: Path) -> None:
        manifest = _read_manifest(Path(path), self.name)
        self.n_injected = int(manifest["n_injected"])


class BaseCQ(BaseQ):
    """The base model with the gold context before the question: the upper bound for injection."""

    name = "base-cq"

    def prompt_for(self, query: Query) -> str:
        if not query.context:
            raise ValueError(f"{self.name}: query {query.question!r} has no gold context to put in the prompt")
        return answer_prompt(self.lm.tokenizer, query.question, query.context)


def _write_manifest(path: Path, manifest: dict) -> None:
    """Write `path/manifest.json` inside a fresh folder swapped in whole, so a crash leaves no half folder."""
    with atomic_folder(path) as tmp:
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _read_manifest(path: Path, expected: str) -> dict:
    file = path / "manifest.json"
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no manifest.json; not a folder saved by method {expected!r}")
    manifest = json.loads(file.read_text(encoding="utf-8"))
    if manifest.get("method") != expected:
        raise ValueError(f"{path}: saved by method {manifest.get('method')!r}, not {expected!r}")
    return manifest
