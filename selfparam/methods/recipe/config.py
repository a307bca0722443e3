"""RECIPE's configuration: the editor's architecture and where its trained weights live, and training.

Every field has a `help`; `__post_init__` rejects bad values naming the field, so a typo fails at
construction rather than hours into a run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...sentence_encoder import DEFAULT_ENCODER
from ...settings import build_dataclass


def default_checkpoint(model_name: str) -> Path:
    """Where `selfparam recipe train` writes the editor for `model_name` unless told otherwise:
    `$SELFPARAM_RECIPE_CHECKPOINT` when set, else `<cache>/recipe/<model name>/editor`."""
    from ...lm import cache_root

    if os.environ.get("SELFPARAM_RECIPE_CHECKPOINT"):
        return Path(os.environ["SELFPARAM_RECIPE_CHECKPOINT"])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model_name))
    return cache_root() / "recipe" / safe / "editor"


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}: must be a positive number, got {value!r}")


@dataclass
class EditorConfig:
    """The editor's architecture (saved beside its weights; a checkpoint's own copy wins on load)."""

    encoder: str = field(default=DEFAULT_ENCODER, metadata={
        "help": "sentence encoder: 'all-minilm-l6-v2' (embedded), any sentence-transformers name or folder"})
    repr_dim: int = field(default=256, metadata={"help": "size of the shared knowledge/query retrieval space"})
    head_hidden: int = field(default=512, metadata={"help": "hidden width of the knowledge and query heads"})
    n_prompt_tokens: int = field(default=3, metadata={"help": "continuous prompt vectors per knowledge (paper: 3)"})
    prompt_hidden: int = field(default=1024, metadata={"help": "hidden width of the prompt-generator MLP"})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature on cosine similarities"})

    def __post_init__(self):
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise ValueError(f"encoder: must name a sentence encoder, got {self.encoder!r}")
        for name in ("repr_dim", "head_hidden", "n_prompt_tokens", "prompt_hidden"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be an integer, got {getattr(self, name)!r}")
        _positive(self, "repr_dim", "head_hidden", "n_prompt_tokens", "prompt_hidden", "temperature")
        if self.n_prompt_tokens > 64:
            raise ValueError(f"n_prompt_tokens: {self.n_prompt_tokens} is too many (at most 64; paper: 3)")


@dataclass
class RecipeConfig:
    """How the `Recipe` method runs: which trained editor, and batching."""

    checkpoint: str | None = field(default=None, metadata={
        "help": "folder of a trained editor (`selfparam recipe train --out`); None: the default location "
                "for the model, see `default_checkpoint`"})
    batch_size: int = field(default=16, metadata={"help": "queries per forward pass"})
    encode_batch_size: int = field(default=64, metadata={"help": "texts per sentence-encoder pass"})

    def __post_init__(self):
        if self.checkpoint is not None and (not isinstance(self.checkpoint, (str, Path))
                                            or not str(self.checkpoint).strip()):
            raise ValueError(f"checkpoint: must be a folder path or None, got {self.checkpoint!r}")
        if self.checkpoint is not None:
            self.checkpoint = str(self.checkpoint)
        _positive(self, "batch_size", "encode_batch_size")

    @classmethod
    def from_dict(cls, values: dict) -> "RecipeConfig":
        return build_dataclass(cls, values, "RecipeConfig")


@dataclass
class TrainConfig:
    """Training the editor with the LLM frozen (edit loss + InfoNCE retrieval losses)."""

    data: str = field(default="", metadata={"help": "CounterFact-style training JSON (counterfact-train.json)"})
    out: str = field(default="", metadata={"help": "output folder: checkpoints, log, final editor"})
    max_records: int = field(default=10000, metadata={"help": "use at most this many training records"})
    steps: int = field(default=300, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=8, metadata={"help": "edit records per step through the LLM (x3 sequences)"})
    contrastive_batch: int = field(default=128, metadata={
        "help": "records per step in the InfoNCE losses (cheap: encoder outputs are cached)"})
    retrieval_steps: int = field(default=10, metadata={
        "help": "extra InfoNCE-only updates per step (no LLM pass: milliseconds each), so the retrieval heads "
                "see many more examples than the LLM-bound prompt generator"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    locality_weight: float = field(default=1.0, metadata={"help": "weight of the locality KL in the edit loss"})
    contrastive_weight: float = field(default=1.0, metadata={"help": "weight of the InfoNCE losses"})
    max_seconds: float = field(default=0.0, metadata={
        "help": "stop (after a checkpoint) once this invocation has run this many seconds (a resumed run gets "
                "its own allowance); 0: no limit"})
    save_every: int = field(default=25, metadata={"help": "checkpoint every this many steps"})
    seed: int = field(default=0, metadata={"help": "seed for initialisation and sampling"})
    device: str = field(default="cpu", metadata={"help": "device of the LLM and editor"})

    def __post_init__(self):
        _positive(self, "max_records", "steps", "batch_size", "contrastive_batch", "lr", "save_every")
        if not isinstance(self.retrieval_steps, int) or self.retrieval_steps < 0:
            raise ValueError(f"retrieval_steps: must be an integer >= 0, got {self.retrieval_steps!r}")
        for name in ("weight_decay", "locality_weight", "contrastive_weight", "max_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        if self.contrastive_batch < self.batch_size:
            raise ValueError(f"contrastive_batch: {self.contrastive_batch} must be >= batch_size {self.batch_size}")


def to_dict(config: Any) -> dict:
    return asdict(config)
