"""RECIPE: lifelong knowledge editing with retrieval-augmented continuous prompts and a knowledge sentinel."""

from .config import EditorConfig, RecipeConfig, TrainConfig, default_checkpoint
from .editor import RecipeEditor
from .method import Recipe, fact_text
from .repository import KnowledgeRepository, sentinel_retrieve

__all__ = ["EditorConfig", "KnowledgeRepository", "Recipe", "RecipeConfig", "RecipeEditor", "TrainConfig",
           "default_checkpoint", "fact_text", "sentinel_retrieve"]
