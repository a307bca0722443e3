"""RECIPE: lifelong knowledge editing with retrieval-augmented continuous prompts and a knowledge sentinel.

The names below are imported on first use (PEP 562, as in `selfparam/__init__.py`), so that finding an
editor (`default_checkpoint`, `shipped_checkpoint`) does not pay for transformers and the model code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_WHERE = {"EditorConfig": ".config", "RecipeConfig": ".config", "TrainConfig": ".config",
          "default_checkpoint": ".config", "default_train_dir": ".config", "shipped_checkpoint": ".config",
          "RecipeEditor": ".editor", "Recipe": ".method", "fact_text": ".method",
          "KnowledgeRepository": ".repository", "sentinel_retrieve": ".repository", "ship_editor": ".shipping"}

__all__ = ["EditorConfig", "KnowledgeRepository", "Recipe", "RecipeConfig", "RecipeEditor", "TrainConfig",
           "default_checkpoint", "default_train_dir", "fact_text", "sentinel_retrieve", "ship_editor",
           "shipped_checkpoint"]

if TYPE_CHECKING:
    from .config import (
        EditorConfig,
        RecipeConfig,
        TrainConfig,
        default_checkpoint,
        default_train_dir,
        shipped_checkpoint,
    )
    from .editor import RecipeEditor
    from .method import Recipe, fact_text
    from .repository import KnowledgeRepository, sentinel_retrieve
    from .shipping import ship_editor


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
