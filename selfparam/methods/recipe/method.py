"""`Recipe`: RECIPE as a `KnowledgeMethod`: edits go into the prompt repository, queries retrieve with the
knowledge sentinel and the frozen LLM answers with the retrieved prompt in front of its input embeddings.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Sequence

import torch

from ...atomic import atomic_folder
from ...generation import target_logprob, target_token_accuracy
from ...lm import LM
from ...prompts import answer_prompt
from ..base import Context, Query, Resources
from .calibration import margin_at
from .config import RecipeConfig, default_checkpoint, shipped_checkpoint
from .editor import RecipeEditor
from .encoder import TextEncoder, load_encoder
from .prompting import fact_token_embeddings, prompted_generate
from .refine import refine_prompt
from .repository import KnowledgeRepository

REPOSITORY_DIR = "repository"
RECIPE_META = "recipe.json"


def llm_hidden_size(lm: LM) -> int:
    return int(lm.model.get_input_embeddings().weight.shape[1])


def fact_text(prompt: str, target: str) -> str:
    """The knowledge sentence of an edit ("The mother tongue of X is" + "English"), rejecting empty parts."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"edit prompt: must be non-empty, got {prompt!r}")
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"edit target: must be non-empty, got {target!r} (for prompt {prompt!r})")
    return f"{prompt.strip()} {target.strip()}"


class Recipe:
    """RECIPE (retrieval-augmented continuous prompt learning) over a frozen LM.

    >>> recipe = Recipe(lm, RecipeConfig(checkpoint="runs/recipe/editor"))
    >>> recipe.inject([Context("e1", "The mother tongue of Danielle Darrieux is English")])
    >>> recipe.answer([Query("The mother tongue of Danielle Darrieux is")])
    """

    name = "recipe"

    def __init__(self, lm: LM, config: RecipeConfig | dict | None = None, resources: Resources | None = None,
                 *, editor: RecipeEditor | None = None, encoder: TextEncoder | None = None):
        self.lm = lm
        self.config = RecipeConfig.from_dict(config) if isinstance(config, dict) else (config or RecipeConfig())
        if editor is None:
            type(self).preflight(self.config, lm.name)
            editor = RecipeEditor.load(_editor_path(self.config, lm.name), device="cpu")
        hidden = llm_hidden_size(lm)
        if editor.llm_hidden != hidden:
            raise ValueError(f"the RECIPE editor was trained for an LLM of hidden size {editor.llm_hidden} "
                             f"({editor.llm_name or 'unknown model'}); {lm.name} has hidden size {hidden}")
        self.editor = editor.eval()
        self.encoder = encoder if encoder is not None else load_encoder(editor.config.encoder)
        if self.encoder.dim != editor.encoder_dim:
            raise ValueError(f"encoder {self.encoder.name!r} gives {self.encoder.dim}-d embeddings; the editor "
                             f"expects {editor.encoder_dim}-d ({editor.config.encoder!r})")
        self.repository = self._empty_repository()
        if self.editor.sentinel_schedule:  # a malformed schedule in editor.json fails here, not at the first query
            margin_at(self.editor.sentinel_schedule, 0)

    @staticmethod
    def preflight(config: RecipeConfig | None, model_name: str) -> None:
        """Refuse, before any model loads, to run without a trained editor (ValueError saying how to get one)."""
        try:
            RecipeEditor.require(_editor_path(config or RecipeConfig(), model_name))
        except FileNotFoundError as e:
            raise ValueError(f"RECIPE needs a trained editor: {e}. Or point RecipeConfig(checkpoint=...) "
                             f"(or $SELFPARAM_RECIPE_CHECKPOINT) at one; no editor is shipped for {model_name!r} "
                             f"in {shipped_checkpoint(model_name)}.") from None

    def _empty_repository(self) -> KnowledgeRepository:
        config = self.editor.config
        return KnowledgeRepository(self.editor.llm_hidden, config.n_prompt_tokens, config.repr_dim)

    # --- editing ----------------------------------------------------------------------------------
    def inject(self, contexts: Sequence[Context]) -> None:
        """Encode each context (a fact sentence) and store its key and prompt: no gradient step.
        All or nothing: an empty or duplicate context raises ValueError and stores none of them."""
        ids, texts = [c.id for c in contexts], [c.text for c in contexts]
        for i, t in zip(ids, texts):
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"context {i!r}: empty text")
        if not contexts:
            return
        texts = [t.strip() for t in texts]
        with torch.no_grad():
            fact_tokens = None
            if self.editor.reads_fact_tokens:
                embeds, mask = fact_token_embeddings(self.lm, texts, self.editor.config.read_max_tokens)
                device = next(self.editor.parameters()).device
                fact_tokens = (embeds.to(device), mask.to(device))
            keys, prompts = self.editor.knowledge(self.encoder.encode(texts), fact_tokens)
        if self.config.refine_steps:  # beyond the paper: fit each prompt to its edit (refine.py)
            self.repository.check_new(ids, texts, keys, prompts)  # refuse duplicates before seconds of work
            prompts = torch.stack([refine_prompt(self.lm, text, prompt, self.config.refine_steps,
                                                 self.config.refine_lr, self.config.refine_splits)
                                   for text, prompt in zip(texts, prompts)])
        self.repository.add(ids, texts, keys, prompts)

    def edit(self, prompt: str, target: str, edit_id: str | None = None) -> str:
        """Store the edit "`prompt` `target`" and return its id."""
        edit_id = edit_id or uuid.uuid4().hex[:12]
        self.inject([Context(edit_id, fact_text(prompt, target))])
        return edit_id

    def delete(self, edit_id: str) -> None:
        self.repository.delete(edit_id)

    def rollback(self, steps: int = 1) -> None:
        self.repository.rollback(steps)

    # --- answering --------------------------------------------------------------------------------
    def retrieve(self, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts (Q, n, H) and index (Q,) of the retrieved edit (-1: the sentinel won, no prompt)."""
        with torch.no_grad():
            reprs = self.editor.query(self.encoder.encode(list(questions)))
            return self.repository.retrieve(reprs, self.editor.sentinel_repr(), self.sentinel_margin,
                                            self.config.recency_tolerance)

    @property
    def sentinel_margin(self) -> float:
        """The margin of the sentinel rule in use now: the config's (0: the paper's rule); else, for an editor
        calibrated at several repository sizes, its schedule's at the number of edits stored now (`margin_at`:
        it shrinks as the repository grows); else the editor's one calibrated margin (0 if never calibrated)."""
        margin = self.config.sentinel_margin
        if margin is not None:
            return float(margin)
        schedule = self.editor.sentinel_schedule
        return margin_at(schedule, len(self.repository)) if schedule else self.editor.sentinel_margin

    def retrieved_ids(self, questions: Sequence[str]) -> list[str | None]:
        _, index = self.retrieve(questions)
        return [self.repository.ids[i] if i >= 0 else None for i in index.tolist()]

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        if not queries:
            return []
        prompts, index = self.retrieve([q.question for q in queries])
        texts = [answer_prompt(self.lm.tokenizer, q.question) for q in queries]
        return prompted_generate(self.lm, texts, prompts, index >= 0, max_new_tokens=max_new_tokens,
                                 batch_size=self.config.batch_size)

    def score(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return self._teacher_forced(target_token_accuracy, queries, targets)

    def logprob(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return self._teacher_forced(target_logprob, queries, targets)

    def _teacher_forced(self, figure, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        """`figure` (a `generation` teacher-forced function) of each target after its answer prompt, with
        the prompt the query retrieves in front (none where the sentinel wins), as `answer` asks."""
        if len(queries) != len(targets):
            raise ValueError(f"{len(queries)} queries but {len(targets)} targets")
        if not queries:
            return []
        prompts, index = self.retrieve([q.question for q in queries])
        texts = [answer_prompt(self.lm.tokenizer, q.question) for q in queries]
        return figure(self.lm, texts, [t.strip() for t in targets], self.config.batch_size,
                      prompts=prompts, has_prompt=index >= 0)

    # --- state ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.repository = self._empty_repository()

    def save(self, path: Path) -> None:
        """Write the repository (safetensors + JSON, with its operation log) and `recipe.json` (the model,
        the editor and its digest) to `path`, replaced whole."""
        meta = {"method": self.name, "llm": self.lm.name, "llm_hidden": self.editor.llm_hidden,
                "editor": self.editor.meta(), "editor_digest": self.editor.digest(),
                "checkpoint": self.config.checkpoint}
        with atomic_folder(path) as tmp:
            (tmp / REPOSITORY_DIR).mkdir()
            self.repository.write(tmp / REPOSITORY_DIR)
            (tmp / RECIPE_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def load(self, path: Path) -> None:
        """Restore a saved repository. One built for another hidden size or prompt shape, or by another
        editor (its keys and prompts mean nothing to this one), is refused and the current one is kept."""
        path = Path(path)
        if not (path / RECIPE_META).is_file():
            raise FileNotFoundError(f"{path}: no {RECIPE_META}; not a folder saved by RECIPE")
        meta = json.loads((path / RECIPE_META).read_text(encoding="utf-8"))
        repo = KnowledgeRepository.load(path / REPOSITORY_DIR)
        want = (self.editor.llm_hidden, self.editor.config.n_prompt_tokens, self.editor.config.repr_dim)
        got = (repo.hidden_size, repo.n_prompt_tokens, repo.repr_dim)
        if got[0] != want[0]:
            raise ValueError(f"repository {path} was built for an LLM of hidden size {got[0]}; "
                             f"{self.lm.name} has hidden size {want[0]}")
        if got != want:
            raise ValueError(f"repository {path} has (hidden, prompt tokens, repr dim) = {got}; this editor "
                             f"needs {want}")
        digest, saved = self.editor.digest(), meta.get("editor_digest")
        if saved is None:
            raise ValueError(f"repository {path} records no editor digest (saved by an older selfparam), so "
                             f"whether this editor built it cannot be checked; re-create it with this editor")
        if saved != digest:
            theirs, ours = meta.get("checkpoint") or "default location", self.config.checkpoint or "default location"
            raise ValueError(
                f"repository {path} was built by another RECIPE editor ({theirs}, digest {saved[:12]}) than this "
                f"one ({ours}, digest {digest[:12]}): its keys and prompts only work with the editor that wrote "
                f"them; load it with that editor (--checkpoint) or start a new repository")
        self.repository = repo

    def storage_bytes(self) -> int:
        """The prompt repository (keys and prompts); the editor's own weights are fixed-size."""
        return self.repository.nbytes()


def _editor_path(config: RecipeConfig, model_name: str) -> Path:
    """The editor folder a config names, or the default one for the model."""
    return Path(config.checkpoint) if config.checkpoint else default_checkpoint(model_name)
