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
from .methods.registry import build_method
from .methods.weight_update import WeightUpdateMethod, saved_updates


def read_index(path: Path) -> dict:
    """`injection.json` of a saved injection, checked."""
    saved_updates(Path(path))  # raises a clear error when the folder is not a complete injection
    return json.loads((Path(path) / "injection.json").read_text())


def load_injection(path: str | Path, lm: LM | None = None, device: str | torch.device = "auto",
                   dtype: str | torch.dtype = "auto") -> tuple[LM, WeightUpdateMethod]:
    """The base LM (loaded from the name the injection records, unless given) and the method with the
    injection replayed onto its own copy of the model."""
    path = Path(path)
    index = read_index(path)
    base = lm or load_lm(index["base_model"], device=device, dtype=dtype)
    method = build_method(index["method"], base)
    if not isinstance(method, WeightUpdateMethod):
        raise ValueError(f"{path}: method {index['method']!r} does not store its knowledge in the weights")
    method.progress = False
    _open_store(path).materialize(method)  # the current version: a rolled-back store holds later updates too
    return base, method


def load_version(path: str | Path, version: int | None = None, lm: LM | None = None,
                 device: str | torch.device = "auto", dtype: str | torch.dtype = "auto"):
    """`load_injection` for any version of a store or saved injection (default: the current one):
    the base LM and the method brought to that version. See `selfparam.store`."""
    store = _open_store(path)
    if store.layout not in ("updates", None):
        raise ValueError(f"{path}: method {store.method_name!r} does not store its knowledge in the weights")
    base = lm or load_lm(store.base_model, device=device, dtype=dtype)
    method = build_method(store.method_name, base)
    method.progress = False
    store.materialize(method, version)
    return base, method


def _open_store(path: str | Path):
    from .store import KnowledgeStore

    return KnowledgeStore.open(path)


def export_merged(path: str | Path, out: str | Path, lm: LM | None = None, device: str | torch.device = "cpu",
                  version: int | None = None) -> Path:
    """Write the injected model (the current version, or `version`) as a Hugging Face folder that plain
    `transformers` loads (no selfparam code needed), with the injection's index beside the weights.
    Atomic: all or nothing at `out`."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"export: {out} already exists; choose a new folder")
    _, method = load_version(path, version, lm=lm, device=device, dtype="fp32")
    with atomic_folder(out, overwrite=False) as tmp:
        method.lm.model.save_pretrained(tmp)
        method.lm.tokenizer.save_pretrained(tmp)
        shutil.copy(Path(path) / "injection.json", tmp / "selfparam_injection.json")
    return out
