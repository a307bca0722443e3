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


def model_folder_name(model_name: str) -> str:
    """A model name as one safe folder name ("HuggingFaceTB/SmolLM2" -> "HuggingFaceTB_SmolLM2")."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model_name))


def shipped_editor_root() -> Path:
    """The package-data folder of shipped editors: `selfparam/assets/recipe/` (declared as package data in
    pyproject.toml, so a non-editable install carries it)."""
    return Path(__file__).resolve().parents[2] / "assets" / "recipe"


def shipped_checkpoint(model_name: str) -> Path:
    """Where an editor shipped inside the package for `model_name` lives: `<shipped root>/<model>/`."""
    return shipped_editor_root() / model_folder_name(model_name)


def cache_checkpoint(model_name: str) -> Path:
    """The user cache location of a trained editor: `<cache>/recipe/<model name>/editor`."""
    from ...lm import cache_root

    return cache_root() / "recipe" / model_folder_name(model_name) / "editor"


def has_editor(folder: Path) -> bool:
    from .editor import EDITOR_META, EDITOR_WEIGHTS

    return (Path(folder) / EDITOR_META).is_file() and (Path(folder) / EDITOR_WEIGHTS).is_file()


def default_checkpoint(model_name: str) -> Path:
    """The editor `Recipe` loads for `model_name` when none is named, first match wins:
    `$SELFPARAM_RECIPE_CHECKPOINT`; the editor shipped inside the package (`shipped_checkpoint`), when it
    holds one; the user cache location (`cache_checkpoint`, where `selfparam recipe train` writes)."""
    if os.environ.get("SELFPARAM_RECIPE_CHECKPOINT"):
        return Path(os.environ["SELFPARAM_RECIPE_CHECKPOINT"])
    shipped = shipped_checkpoint(model_name)
    if has_editor(shipped):
        return shipped
    return cache_checkpoint(model_name)


def default_train_dir(model_name: str) -> Path:
    """Where `selfparam recipe train` writes unless told otherwise (never into the package): the parent of
    `$SELFPARAM_RECIPE_CHECKPOINT` when set, else of the cache location."""
    if os.environ.get("SELFPARAM_RECIPE_CHECKPOINT"):
        return Path(os.environ["SELFPARAM_RECIPE_CHECKPOINT"]).parent
    return cache_checkpoint(model_name).parent


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
    read_fact_tokens: bool = field(default=False, metadata={
        "help": "each prompt vector also reads the fact's own tokens: attention from the vector over the LLM's "
                "input embeddings of the fact's last `read_max_tokens` tokens (keyed by content and by distance "
                "from the fact's end) adds their weighted embedding to it, so an object the pooled sentence "
                "encoding blurs can reach the LLM as itself. Not in the paper (False)"})
    read_dim: int = field(default=64, metadata={"help": "width of the attention that reads the fact's tokens"})
    read_max_tokens: int = field(default=32, metadata={"help": "the fact's last tokens that can be read"})

    READ_FIELDS = ("read_dim", "read_max_tokens")  # part of the architecture only when read_fact_tokens is on

    def __post_init__(self):
        if not isinstance(self.read_fact_tokens, bool):
            raise ValueError(f"read_fact_tokens: must be true or false, got {self.read_fact_tokens!r}")
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise ValueError(f"encoder: must name a sentence encoder, got {self.encoder!r}")
        for name in ("repr_dim", "head_hidden", "n_prompt_tokens", "prompt_hidden", *self.READ_FIELDS):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be an integer, got {getattr(self, name)!r}")
        _positive(self, "repr_dim", "head_hidden", "n_prompt_tokens", "prompt_hidden", "temperature",
                  *self.READ_FIELDS)
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
    sentinel_margin: float | None = field(default=None, metadata={
        "help": "retrieve an edit when its key is closer than the sentinel's similarity minus this; None: the "
                "margin calibrated with the editor on held-out records (`selfparam recipe calibrate`; with "
                "--sizes, the margin at the number of edits stored, interpolated in log size; 0 for an editor "
                "never calibrated); 0: the paper's rule"})
    recency_tolerance: float = field(default=0.05, metadata={
        "help": "of the stored edits whose keys are within this similarity of the best, retrieve the latest: a "
                "later edit of the same fact with another object (keys nearly equal) answers instead of the "
                "earlier (0.05: chosen on held-out training records, docs/recipe.md); 0: the best key only, "
                "the paper's rule"})
    refine_steps: int = field(default=0, metadata={
        "help": "beyond the paper: Adam steps that fit each new edit's prompt to the edit's own completion, "
                "starting from the editor's (refine.py; seconds per edit on a CPU instead of milliseconds); 0: the "
                "editor's prompt as written, the paper's method"})
    refine_lr: float = field(default=0.02, metadata={
        "help": "learning rate of those steps (0.02: the setting measured with 20 steps, docs/recipe.md; not tuned)"})
    refine_splits: int = field(default=4, metadata={
        "help": "the fact's last words used as split points of the completion loss (refine.py)"})

    def __post_init__(self):
        if isinstance(self.refine_steps, bool) or not isinstance(self.refine_steps, int) or self.refine_steps < 0:
            raise ValueError(f"refine_steps: must be a whole number >= 0, got {self.refine_steps!r}")
        _positive(self, "refine_lr", "refine_splits")
        if isinstance(self.refine_splits, float):
            raise ValueError(f"refine_splits: must be a whole number, got {self.refine_splits!r}")
        if (isinstance(self.recency_tolerance, bool) or not isinstance(self.recency_tolerance, (int, float))
                or not 0.0 <= self.recency_tolerance <= 2.0):
            raise ValueError(f"recency_tolerance: must be a number in [0, 2] (similarities lie in [-1, 1]), "
                             f"got {self.recency_tolerance!r}")
        if self.sentinel_margin is not None and (isinstance(self.sentinel_margin, bool)
                                                 or not isinstance(self.sentinel_margin, (int, float))
                                                 or not -2.0 <= self.sentinel_margin <= 2.0):
            raise ValueError(f"sentinel_margin: must be a number in [-2, 2] (similarities lie in [-1, 1]) or None, "
                             f"got {self.sentinel_margin!r}")
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
    retrieval_steps: int = field(default=2, metadata={
        "help": "extra InfoNCE-only updates per step (no LLM pass: milliseconds each), so the retrieval heads "
                "see more examples than the LLM-bound prompt generator; 10 overfitted the heads over 1,091 "
                "steps (docs/recipe.md), the paper has none (0)"})
    edit_hinge_scale: float = field(default=1.2, metadata={
        "help": "hinge of the edit loss: a target token counts only while its probability is below this times "
                "the best other token's (paper's code: 1.2; inf: plain cross-entropy)"})
    contrastive_hinge_scale: float = field(default=1.2, metadata={
        "help": "hinge of the sentinel-oriented InfoNCE terms: a query whose sentinel already wins by this "
                "factor stops counting (paper's code: 1.2; inf: no hinge)"})
    question_share: float = field(default=0.5, metadata={
        "help": "share of reliability rows asked as a question built from the record (questions.py) instead "
                "of the statement prompt; questions also join the InfoNCE queries unless 0"})
    sentinel_locality: float = field(default=0.98, metadata={
        "help": "after training, the sentinel's margin is calibrated on the validation records: the largest that "
                "keeps this share of their locality prompts retrieving nothing (calibration.py)"})
    curve_every: int = field(default=50, metadata={
        "help": "steps per point of the loss curve in training.json and loss_curve.png"})
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
        _positive(self, "max_records", "steps", "batch_size", "contrastive_batch", "lr", "save_every", "curve_every")
        for name in ("edit_hinge_scale", "contrastive_hinge_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 1.0:
                raise ValueError(f"{name}: must be a number >= 1 (inf: no hinge), got {value!r}")
        if not isinstance(self.question_share, (int, float)) or not 0.0 <= self.question_share <= 1.0:
            raise ValueError(f"question_share: must be in [0, 1], got {self.question_share!r}")
        if not isinstance(self.sentinel_locality, (int, float)) or not 0.0 < self.sentinel_locality < 1.0:
            raise ValueError(f"sentinel_locality: must be in (0, 1), got {self.sentinel_locality!r}")
        if not isinstance(self.retrieval_steps, int) or self.retrieval_steps < 0:
            raise ValueError(f"retrieval_steps: must be an integer >= 0, got {self.retrieval_steps!r}")
        for name in ("weight_decay", "locality_weight", "contrastive_weight", "max_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        if self.contrastive_batch < self.batch_size:
            raise ValueError(f"contrastive_batch: {self.contrastive_batch} must be >= batch_size {self.batch_size}")


def to_dict(config: Any) -> dict:
    return asdict(config)
