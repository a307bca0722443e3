"""The one table from method names (as the CLI and reports spell them) to their classes.

Classes are imported lazily so that naming one method does not import every method's dependencies.
Each class is built as `cls(lm, config, resources)`: `config` is that method's own config dataclass
(None for its defaults), `resources` what the harness shares between methods (see `Resources`).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..lm import LM
from .base import KnowledgeMethod, Resources

METHODS: dict[str, str] = {
    "base": "selfparam.methods.incontext:BaseQ",
    "base-cq": "selfparam.methods.incontext:BaseCQ",
    "ft-c": "selfparam.methods.finetune:FineTuneContext",
    "ft-s": "selfparam.methods.finetune:FineTuneTargets",
    "selfparam": "selfparam.methods.selfparam:SelfParam",
    "rag-bm25": "selfparam.methods.rag:BM25RAG",
    "rag-dense": "selfparam.methods.rag:DenseRAG",
    "recipe": "selfparam.methods.recipe:Recipe",
}


def method_class(name: str) -> type:
    """The class behind a method name, with a clear error listing the known names."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    module, attr = METHODS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def build_method(name: str, lm: LM, config: Any = None, resources: Resources | None = None) -> KnowledgeMethod:
    """Instantiate the method `name` on `lm` with its config (None for the defaults)."""
    return method_class(name)(lm, config, resources or Resources())
