"""RECIPE: lifelong knowledge editing with retrieval-augmented continuous prompts and a knowledge sentinel.

The names below are imported on first use (PEP 562, as in `selfparam/__init__.py`), so that finding an
editor (`default_checkpoint`, `shipped_checkpoint`) does not pay for transformers and the model code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
