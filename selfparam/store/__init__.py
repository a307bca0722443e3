"""Versioned knowledge: a store of versions with rollback (`store.py`), its writer lock (`lock.py`), and
the same words over RECIPE's repositories (`recipe.py`)."""

from __future__ import annotations

from pathlib import Path

from .lock import StoreLockedError
from .store import KnowledgeStore, Version, is_store

__all__ = ["KnowledgeStore", "StoreLockedError", "Version", "is_store", "open_versions"]


def open_versions(path: str | Path):
    """What `selfparam versions/rollback` work on: a RECIPE repository folder as a `RecipeHistory`, anything
    else (a store or a saved injection) as a `KnowledgeStore`; both offer versions(), current, activate(n)."""
    from .recipe import RecipeHistory, is_recipe_folder

    return RecipeHistory(path) if is_recipe_folder(path) else KnowledgeStore.open(path)
