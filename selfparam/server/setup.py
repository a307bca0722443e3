"""What `selfparam serve` opens before serving: the store (created on first use) and the method's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..eval.configs import build_dataclass, config_class
from ..jsonl import read_json
from ..methods.registry import method_class
from ..store import KnowledgeStore, is_store


def open_or_create_store(path: Path, method: str, model: str, explicit_model: str | None = None) -> KnowledgeStore:
    """The store at `path`; a missing or empty folder becomes a new store of `method` on `model`.
    An existing store keeps its method and model; naming another model is an error, not a silent switch."""
    path = Path(path)
    if is_store(path):
        store = KnowledgeStore.open(path)
        if explicit_model and explicit_model != store.base_model:
            raise ValueError(f"--model {explicit_model}: the store {path} holds knowledge for {store.base_model!r}; "
                             f"drop --model or choose another --store")
        return store
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"--store {path}: exists and is not a knowledge store; choose a new or empty folder")
    method_class(method)  # an unknown method name fails here, before a folder is made
    return KnowledgeStore.create(path, method, model)


def method_settings(method: str, path: Path | None) -> Any:
    """The method's config dataclass from a JSON object of its fields (None: the defaults)."""
    if path is None:
        return None
    path = Path(path)
    values = read_json(path, "--method-config")
    cls = config_class(method)
    if cls is None:
        raise ValueError(f"--method-config: method {method!r} takes no settings")
    return build_dataclass(cls, values, f"{path.name}")
