"""The shared half of methods that write knowledge into the weights (SELF-PARAM, FT(C), FT(S)).

Each `inject` call is one update: the subclass turns the contexts into training examples, the update
is trained and merged (zero extra storage at inference), and its record is kept so `save` can write
it and `load` can replay it. Sequential injection is repeated `inject` calls: the model after update
t-1 is both the starting point and (for SELF-PARAM) the teacher of update t.

The method trains a private copy of the model, made at the first update: the `LM` it was given stays
the unchanged base model, which the harness shares with other methods and `ask` shows side by side.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_folder
from ..lm import LM
from ..training.adapters import AdapterConfig, UpdateRecord, replay
from ..training.examples import Example
from ..training.trainer import TrainConfig, UpdateStats, run_update
from .base import Context, Resources
from .prompted import PromptedMethod
from ..provenance import provenance


class WeightUpdateMethod(PromptedMethod):
    """Subclasses implement `examples_for(contexts)` and set `adapter` and `train` configs."""

    name = "weight-update"

    def __init__(self, lm: LM, adapter: AdapterConfig, train: TrainConfig, resources: Resources | None = None,
                 progress: bool = True):
        super().__init__(lm)
        self.base_lm = lm
        self.adapter = adapter
        self.train = train
        self.resources = resources or Resources()
        self.progress = progress
        self.records: list[UpdateRecord] = []
        self.last_stats: UpdateStats | None = None

    # -- what subclasses say ------------------------------------------------------------------
    def examples_for(self, contexts: Sequence[Context]) -> tuple[list[Example], dict[str, Any]]:
        """Training examples for one update and what to record about them in the manifest."""
        raise NotImplementedError

    def config_dict(self) -> dict[str, Any]:
        return {"adapter": dataclasses.asdict(self.adapter), "train": dataclasses.asdict(self.train)}

    # -- the protocol -------------------------------------------------------------------------
    def inject(self, contexts: Sequence[Context]) -> None:
        validate_contexts(contexts, self.lm)
        examples, about = self.examples_for(contexts)
        self._own_model()
        record, stats = run_update(self.lm, examples, self.adapter, self.train, progress=self.progress)
        record.manifest = {
            "method": self.name,
            "step": len(self.records) + 1,
            "base_model": self.base_lm.name,
            "contexts": [{"id": c.id, "sha256": _sha256(c.text), "chars": len(c.text)} for c in contexts],
            "config": self.config_dict(),
            "stats": stats.to_dict(),
            **about,
            **provenance(),
        }
        self.records.append(record)
        self.last_stats = stats

    def reset(self) -> None:
        self.lm = self.base_lm
        self.records = []
        self.last_stats = None

    def storage_bytes(self) -> int:
        return 0  # every update is merged: the model keeps the base architecture and size

    def save(self, path: Path) -> None:
        """Write every update as `updates/NNNN/` (a PEFT adapter folder + manifest), atomically."""
        with atomic_folder(path) as tmp:
            for i, record in enumerate(self.records, start=1):
                record.save(tmp / "updates" / f"{i:04d}")
            index = {"method": self.name, "base_model": self.base_lm.name, "updates": len(self.records),
                     "config": self.config_dict(), **provenance()}
            (tmp / "injection.json").write_text(json.dumps(index, indent=2, default=str))

    def load(self, path: Path) -> None:
        """Replay the saved updates, in order, onto a fresh copy of the base model."""
        folders = saved_updates(Path(path))
        self.reset()
        self._own_model()
        for folder in folders:
            record = UpdateRecord.read(folder)
            self.lm.model = replay(self.lm.model, record, folder)
            self.records.append(record)

    # -- helpers ------------------------------------------------------------------------------
    def _own_model(self) -> None:
        if self.lm is self.base_lm:
            self.lm = dataclasses.replace(self.base_lm, model=copy.deepcopy(self.base_lm.model))


def saved_updates(path: Path) -> list[Path]:
    """The update folders of a saved injection, in order; a clear error when it is not one."""
    if not (path / "injection.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved injection (no injection.json)")
    folders = sorted((path / "updates").glob("[0-9][0-9][0-9][0-9]")) if (path / "updates").is_dir() else []
    expected = json.loads((path / "injection.json").read_text()).get("updates")
    if expected != len(folders):
        raise ValueError(f"{path}: injection.json lists {expected} updates but {len(folders)} are present")
    return folders


# Room left in the window after the context for the answer prompt, a question and its answer.
PROMPT_MARGIN_TOKENS = 192


def validate_contexts(contexts: Sequence[Context], lm: LM) -> None:
    """Empty updates, empty contexts and contexts too long for the teacher's window are errors before
    any work (pair generation takes minutes) starts."""
    if not contexts:
        raise ValueError("inject: no contexts given")
    for c in contexts:
        if not c.text or not c.text.strip():
            raise ValueError(f"inject: context {c.id!r} is empty")
        n_tokens = len(lm.tokenizer(c.text, add_special_tokens=False)["input_ids"])
        if n_tokens + PROMPT_MARGIN_TOKENS > lm.max_length:
            raise ValueError(f"inject: context {c.id!r} has {n_tokens} tokens; with the prompt it must fit the "
                             f"model's window of {lm.max_length} tokens (at most {lm.max_length - PROMPT_MARGIN_TOKENS}"
                             f" for the context): split it into several contexts")


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()
