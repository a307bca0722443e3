"""RECIPE: lifelong knowledge editing with retrieval-augmented continuous prompts and a knowledge sentinel."""

from .config import EditorConfig, RecipeConfig, TrainConfig, default_checkpoint, default_train_dir, shipped_checkpoint
from .editor import RecipeEditor
from .method import Recipe, fact_text
from .repository import KnowledgeRepository, sentinel_retrieve
from .shipping import ship_editor

__all__ = ["EditorConfig", "KnowledgeRepository", "Recipe", "RecipeConfig", "RecipeEditor", "TrainConfig",
           "default_checkpoint", "default_train_dir", "fact_text", "sentinel_retrieve", "ship_editor",
           "shipped_checkpoint"]
