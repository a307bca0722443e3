"""Versioned knowledge: a store of versions with rollback (`store.py`), its writer lock (`lock.py`), and
the same words over RECIPE's repositories (`recipe.py`)."""

from .lock import StoreLockedError
from .store import KnowledgeStore, Version, is_store

__all__ = ["KnowledgeStore", "StoreLockedError", "Version", "is_store"]
