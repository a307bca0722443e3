"""RECIPE's knowledge repository: one (key, prompt) pair per edit, retrieval with the knowledge sentinel,
deletion and rollback, persisted as safetensors + JSON.

Every change is an operation in a log (`add` or `delete`); `rollback(n)` undoes the last n operations,
so a deleted edit comes back with its exact key and prompt. Retrieval is one matrix product over all
stored keys (no per-edit loop); adding an edit costs the same at 8,000 stored edits as at 10 (capacity-doubling
buffers, and the duplicate check looks ids and facts up in sets kept beside the lists).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ...atomic import atomic_folder

REPO_TENSORS = "repository.safetensors"
REPO_META = "repository.json"


def normalize_fact(text: str) -> str:
    """The form under which two edits count as duplicates: case and spacing ignored."""
    return " ".join(text.lower().split())


def sentinel_retrieve(queries: torch.Tensor, keys: torch.Tensor, sentinel: torch.Tensor, margin: float = 0.0,
                      recency: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The knowledge-sentinel rule, with a calibrated margin and an optional preference for later edits.

    queries (Q, R), keys (K, R) in the order they were stored, sentinel (R,) -> index (Q,) of the retrieved
    key, or -1 where the best key is not closer than the sentinel's similarity minus `margin` (or the
    repository is empty); best similarity (Q,); sentinel similarity (Q,). Similarities are dot products (the
    inputs are unit vectors). `margin` 0 is the paper's rule (the best key must beat the sentinel); a positive
    margin retrieves more (calibration.py). `recency` > 0: of the keys within `recency` of the best
    similarity, the one stored last is retrieved, so a later edit that restates an earlier one with another
    object (nearly the same key) answers in its place; 0 is the paper's rule (the best key).
    """
    sentinel_sim = queries @ sentinel  # (Q,)
    if keys.shape[0] == 0:
        nothing = torch.full((queries.shape[0],), -1, dtype=torch.long)
        return nothing, torch.full_like(sentinel_sim, float("-inf")), sentinel_sim
    sims = queries @ keys.T  # (Q, K)
    best_sim, best = sims.max(dim=1)  # (Q,)
    if recency > 0:
        near = sims >= (best_sim - recency)[:, None]
        positions = torch.arange(keys.shape[0]).expand_as(sims)
        best = torch.where(near, positions, torch.full_like(positions, -1)).max(dim=1).values
    return torch.where(best_sim > sentinel_sim - margin, best, torch.full_like(best, -1)), best_sim, sentinel_sim


@dataclass
class Entry:
    id: str
    text: str
    key: torch.Tensor  # (R,)
    prompt: torch.Tensor  # (n, H)


class KnowledgeRepository:
    """Stored edits for one LLM hidden size, prompt length and representation size."""

    def __init__(self, hidden_size: int, n_prompt_tokens: int, repr_dim: int):
        self.hidden_size = hidden_size
        self.n_prompt_tokens = n_prompt_tokens
        self.repr_dim = repr_dim
        self.ids: list[str] = []
        self.texts: list[str] = []
        self._id_set: set[str] = set()  # mirrors `ids`, so an add checks duplicates in O(1), not O(stored)
        self._facts: set[str] = set()  # normalize_fact of every stored text
        # capacity-doubling buffers: adding one edit to thousands copies nothing
        self._keys = torch.zeros(16, repr_dim)
        self._prompts = torch.zeros(16, n_prompt_tokens, hidden_size)
        self.log: list[tuple[str, Entry, int]] = []  # (op, entry, position) in order

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def keys(self) -> torch.Tensor:
        """(N, R) unit keys of the stored edits."""
        return self._keys[:len(self.ids)]

    @property
    def prompts(self) -> torch.Tensor:
        """(N, n, H) prompt vectors of the stored edits."""
        return self._prompts[:len(self.ids)]

    def _set(self, keys: torch.Tensor, prompts: torch.Tensor) -> None:
        capacity = max(16, keys.shape[0])
        self._keys = torch.zeros(capacity, self.repr_dim)
        self._prompts = torch.zeros(capacity, self.n_prompt_tokens, self.hidden_size)
        self._keys[:keys.shape[0]] = keys
        self._prompts[:keys.shape[0]] = prompts

    def _append(self, keys: torch.Tensor, prompts: torch.Tensor) -> None:
        n, extra = len(self.ids), keys.shape[0]  # self.ids not yet extended
        if n + extra > self._keys.shape[0]:
            capacity = max(2 * self._keys.shape[0], n + extra)
            self._keys = torch.cat([self._keys[:n], torch.zeros(capacity - n, self.repr_dim)])
            more = torch.zeros(capacity - n, self.n_prompt_tokens, self.hidden_size)
            self._prompts = torch.cat([self._prompts[:n], more])
        self._keys[n:n + extra] = keys
        self._prompts[n:n + extra] = prompts

    @property
    def version(self) -> int:
        """How many operations were applied (rollback targets are earlier versions)."""
        return len(self.log)

    def nbytes(self) -> int:
        return self.keys.numel() * self.keys.element_size() + self.prompts.numel() * self.prompts.element_size()

    # --- changes ----------------------------------------------------------------------------------
    def check_new(self, ids: list[str], texts: list[str], keys: torch.Tensor, prompts: torch.Tensor) -> None:
        """Raise ValueError, naming the offending edit, if any of these cannot be added; changes nothing."""
        if keys.shape != (len(ids), self.repr_dim):
            raise ValueError(f"keys of shape {tuple(keys.shape)}; expected ({len(ids)}, {self.repr_dim})")
        if prompts.shape != (len(ids), self.n_prompt_tokens, self.hidden_size):
            raise ValueError(f"prompts of shape {tuple(prompts.shape)} do not fit this repository "
                             f"({len(ids)}, {self.n_prompt_tokens}, {self.hidden_size})")
        new_ids: set[str] = set()
        new_facts: set[str] = set()
        for i, t in zip(ids, texts):
            if not t or not t.strip():
                raise ValueError(f"edit {i!r}: empty text")
            if i in self._id_set or i in new_ids:
                raise ValueError(f"edit {i!r}: an edit with this id is already stored (delete it first)")
            fact = normalize_fact(t)
            if fact in self._facts or fact in new_facts:
                raise ValueError(f"edit {i!r}: duplicate of a stored edit: {t!r}")
            new_ids.add(i)
            new_facts.add(fact)

    def add(self, ids: list[str], texts: list[str], keys: torch.Tensor, prompts: torch.Tensor) -> None:
        """Store edits (all or none): keys (N, R) unit vectors, prompts (N, n, H)."""
        keys, prompts = keys.detach().float().cpu(), prompts.detach().float().cpu()
        self.check_new(ids, texts, keys, prompts)
        for n, (i, t) in enumerate(zip(ids, texts)):
            self.log.append(("add", Entry(i, t, keys[n].clone(), prompts[n].clone()), len(self.ids) + n))
        self._append(keys, prompts)
        self.ids.extend(ids)
        self.texts.extend(texts)
        self._id_set.update(ids)
        self._facts.update(normalize_fact(t) for t in texts)

    def _remove_at(self, pos: int) -> Entry:
        entry = Entry(self.ids[pos], self.texts[pos], self.keys[pos].clone(), self.prompts[pos].clone())
        keys = torch.cat([self.keys[:pos], self.keys[pos + 1:]])
        prompts = torch.cat([self.prompts[:pos], self.prompts[pos + 1:]])
        del self.ids[pos]
        del self.texts[pos]
        self._id_set.discard(entry.id)
        self._facts.discard(normalize_fact(entry.text))
        self._set(keys, prompts)
        return entry

    def _insert_at(self, pos: int, e: Entry) -> None:
        keys = torch.cat([self.keys[:pos], e.key[None], self.keys[pos:]])
        prompts = torch.cat([self.prompts[:pos], e.prompt[None], self.prompts[pos:]])
        self.ids.insert(pos, e.id)
        self.texts.insert(pos, e.text)
        self._id_set.add(e.id)
        self._facts.add(normalize_fact(e.text))
        self._set(keys, prompts)

    def delete(self, edit_id: str) -> None:
        """Remove one stored edit (undoable with `rollback`)."""
        if edit_id not in self._id_set:
            raise KeyError(f"no stored edit with id {edit_id!r} ({len(self)} stored)")
        pos = self.ids.index(edit_id)
        self.log.append(("delete", self._remove_at(pos), pos))

    def rollback(self, steps: int = 1) -> None:
        """Undo the last `steps` operations (adds are removed, deletes restored)."""
        if not 0 <= steps <= len(self.log):
            raise ValueError(f"steps: can roll back 0..{len(self.log)} operations, got {steps}")
        for _ in range(steps):
            op, entry, pos = self.log.pop()
            if op == "add":
                self._remove_at(pos)
            else:
                self._insert_at(pos, entry)

    def rollback_to(self, version: int) -> None:
        """Return to the state after the first `version` operations."""
        if not 0 <= version <= self.version:
            raise ValueError(f"version: must be in 0..{self.version}, got {version}")
        self.rollback(self.version - version)

    def clear(self) -> None:
        self.__init__(self.hidden_size, self.n_prompt_tokens, self.repr_dim)

    # --- retrieval --------------------------------------------------------------------------------
    def retrieve(self, queries: torch.Tensor, sentinel: torch.Tensor, margin: float = 0.0,
                 recency: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (Q, R) -> prompts (Q, n, H) (zeros where nothing is retrieved) and index (Q,) (-1: none);
        `margin` and `recency` as in `sentinel_retrieve` (stored order is edit order: a restored delete goes
        back to its place)."""
        index, _, _ = sentinel_retrieve(queries.float().cpu(), self.keys, sentinel.float().cpu(), margin, recency)
        prompts = torch.zeros(queries.shape[0], self.n_prompt_tokens, self.hidden_size)
        hit = index >= 0
        prompts[hit] = self.prompts[index[hit]]
        return prompts, index

    # --- persistence -----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the repository and its operation log to `folder` atomically."""
        with atomic_folder(folder) as tmp:
            self.write(tmp)

    def write(self, folder: Path) -> None:
        """Write the repository's files into the existing folder `folder` (a caller's atomic folder)."""
        folder = Path(folder)
        tensors = {"keys": self.keys.contiguous(), "prompts": self.prompts.contiguous()}
        log = []
        for n, (op, e, pos) in enumerate(self.log):
            log.append({"op": op, "id": e.id, "text": e.text, "position": pos})
            tensors[f"log.{n}.key"] = e.key.contiguous()
            tensors[f"log.{n}.prompt"] = e.prompt.contiguous()
        meta = {"hidden_size": self.hidden_size, "n_prompt_tokens": self.n_prompt_tokens, "repr_dim": self.repr_dim,
                "ids": self.ids, "texts": self.texts, "log": log}
        save_file(tensors, folder / REPO_TENSORS)
        (folder / REPO_META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "KnowledgeRepository":
        folder = Path(folder)
        if not (folder / REPO_META).is_file() or not (folder / REPO_TENSORS).is_file():
            raise FileNotFoundError(f"no RECIPE repository in {folder} (expected {REPO_META} and {REPO_TENSORS})")
        meta = json.loads((folder / REPO_META).read_text(encoding="utf-8"))
        tensors = load_file(folder / REPO_TENSORS)
        repo = cls(meta["hidden_size"], meta["n_prompt_tokens"], meta["repr_dim"])
        if tensors["keys"].shape[0] != len(meta["ids"]) or tensors["prompts"].shape[0] != len(meta["ids"]):
            raise ValueError(f"repository {folder} is inconsistent: {len(meta['ids'])} ids, "
                             f"{tensors['keys'].shape[0]} keys, {tensors['prompts'].shape[0]} prompts")
        repo._set(tensors["keys"], tensors["prompts"])
        repo.ids, repo.texts = list(meta["ids"]), list(meta["texts"])
        repo._id_set, repo._facts = set(repo.ids), {normalize_fact(t) for t in repo.texts}
        repo.log = [(e["op"], Entry(e["id"], e["text"], tensors[f"log.{n}.key"], tensors[f"log.{n}.prompt"]),
                     e["position"]) for n, e in enumerate(meta["log"])]
        return repo
