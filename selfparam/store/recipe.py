"""RECIPE repositories in the store's words: `versions()`, `current`, `activate(n)`.

A RECIPE repository already keeps an operation log (`add`/`delete`) and rolls back by undoing its tail;
version k is the state after its first k operations. Undoing drops the tail from the log, so before the
first rollback the whole repository is kept beside it as `repository-head/`: rolling forward again replays
it up to the wanted version. Once a new edit is made after a rollback, the live log no longer starts like
the head's, and the head (a branch nobody can reach with RECIPE's own commands) stops being listed.

    >>> history = RecipeHistory("runs/recipe-repo")   # the folder of `selfparam recipe edit --repo`
    >>> history.activate(3)
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from ..methods.recipe.repository import REPO_META, KnowledgeRepository
from .lock import StoreLock
from .store import Version

REPOSITORY_DIR = "repository"  # where `Recipe.save` puts its repository
HEAD_DIR = "repository-head"


def is_recipe_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / REPOSITORY_DIR / REPO_META).is_file() or (path / REPO_META).is_file()


def _ops(repo: KnowledgeRepository) -> list[tuple]:
    return [(op, e.id, e.text, pos) for op, e, pos in repo.log]


class RecipeHistory:
    """The versions of a saved RECIPE repository (a `Recipe.save` folder or a bare repository folder)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not is_recipe_folder(path):
            raise FileNotFoundError(f"{path} holds no RECIPE repository ({REPOSITORY_DIR}/{REPO_META})")
        self.path = path
        self.live_dir = path / REPOSITORY_DIR if (path / REPOSITORY_DIR / REPO_META).is_file() else path
        self.head_dir = self.live_dir.parent / (HEAD_DIR if self.live_dir != path else f".{path.name}-head")
        self._lock = StoreLock(self.live_dir.parent / ".lock")

    def _head(self, live: KnowledgeRepository) -> KnowledgeRepository:
        """The furthest repository the live one is a rolled-back state of (the live one itself if none)."""
        if (self.head_dir / REPO_META).is_file():
            head = KnowledgeRepository.load(self.head_dir)
            if _ops(head)[:live.version] == _ops(live):
                return head
        return live

    @property
    def current(self) -> int:
        return KnowledgeRepository.load(self.live_dir).version

    def versions(self) -> list[Version]:
        live = KnowledgeRepository.load(self.live_dir)
        head = self._head(live)
        created = datetime.fromtimestamp((self.live_dir / REPO_META).stat().st_mtime, timezone.utc).isoformat(
            timespec="seconds")
        out = [Version(0, None, created, current=live.version == 0)]
        for k, (op, edit_id, text, _) in enumerate(_ops(head), start=1):
            contexts = [{"id": edit_id, "sha256": hashlib.sha256(text.encode()).hexdigest(), "chars": len(text)}]
            out.append(Version(k, k - 1, created, contexts, 0, {}, k == live.version, "" if op == "add" else op))
        return out

    def activate(self, n: int) -> Version:
        """Make the state after `n` operations current: undo later ones, or replay them from the head."""
        with self._lock():
            live = KnowledgeRepository.load(self.live_dir)
            head = self._head(live)
            if not 0 <= n <= head.version:
                raise ValueError(f"RECIPE repository {self.path}: no version {n} (versions 0..{head.version})")
            if head is live and n < live.version:
                live.save(self.head_dir)  # keep the later operations before undoing them
                head = KnowledgeRepository.load(self.head_dir)
            head.rollback_to(n)
            head.save(self.live_dir)  # atomic: the previous state stays whole until this rename
        return self.versions()[n]
