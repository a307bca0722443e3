"""Saved injections: read them back onto their base model, and export them as plain HF models.

A saved injection is a folder written by a weight-update method's `save`: `injection.json` (method,
base model, resolved config, versions, git revision) and `updates/NNNN/` (a PEFT adapter folder or MLP
weights, `manifest.json` with the contexts' digests, the target sets and the timings).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .atomic import atomic_folder
from .lm import LM, load_lm
from .methods.base import KnowledgeMethod
from .methods.registry import build_method
from .methods.weight_update import WeightUpdates, saved_updates


def read_index(path: Path) -> dict:
    """`injection.json` of a saved injection, checked."""
    saved_updates(Path(path))  # raises a clear error when the folder is not a complete injection
    return json.loads((Path(path) / "injection.json").read_text())


def load_injection(path: str | Path, lm: LM | None = None, device: str | torch.device = "auto",
                   dtype: str | torch.dtype = "auto", version: int | None = None) -> tuple[LM, KnowledgeMethod]:
    """The base LM (loaded from the name the injection records, unless given) and the method with the
    injection replayed onto its own copy of the model: the store's current version, or `version` (refused
    when `lm` is not the model it was saved from)."""
    from .store import KnowledgeStore

    path = Path(path)
    store = KnowledgeStore.open(path)  # a saved injection opens as a store of its updates
    base = lm or load_lm(store.base_model, device=device, dtype=dtype)
    method = build_method(store.method_name, base, progress=False)
    if not isinstance(getattr(method, "weights", None), WeightUpdates):
        raise ValueError(f"{path}: method {store.method_name!r} does not store its knowledge in the weights")
    store.materialize(method, version)
    return base, method


def export_merged(path: str | Path, out: str | Path, lm: LM | None = None, device: str | torch.device = "cpu",
                  version: int | None = None) -> Path:
    """Write the injected model (the current version, or `version`) as a Hugging Face folder that plain
    `transformers` loads (no selfparam code needed), with the injection's index beside the weights.
    Atomic: all or nothing at `out`."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"export: {out} already exists; choose a new folder")
    _, method = load_injection(path, lm=lm, device=device, dtype="fp32", version=version)
    with atomic_folder(out, overwrite=False) as tmp:
        method.lm.model.save_pretrained(tmp)
        method.lm.tokenizer.save_pretrained(tmp)
        shutil.copy(Path(path) / "injection.json", tmp / "selfparam_injection.json")
    return out
