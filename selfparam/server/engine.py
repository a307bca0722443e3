"""The model behind the API: the store's current version answers, new versions are swapped in whole.

Chat reads one `Serving` (a version number and the method brought to it) per request; a new version is
built on a separate method object (brought to the current version, then injected) and only assigned to
`serving` when the store has written it, so a request never sees a half-trained model and chat keeps
answering from the previous version while an injection runs. Store writes (injections and activations)
take `_writing`, one at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..lm import LM
from ..methods.base import Context, KnowledgeMethod, Query
from ..methods.registry import build_method
from ..methods.weight_update import PROMPT_MARGIN_TOKENS
from ..store import KnowledgeStore, Version


class BusyError(RuntimeError):
    """The store is being written (an injection or an activation is running)."""


@dataclass(frozen=True)
class Serving:
    """What answers chat now: version `version` of the store, as a built method."""

    version: int
    method: KnowledgeMethod


def version_id(n: int) -> str:
    """The model id a version is listed under in `/v1/models` (the base model is `v0`)."""
    return f"v{n}"


class Engine:
    """Answers questions with the current version and writes new versions with the store's method.

    >>> engine = Engine(KnowledgeStore.open("kb"), load_lm("smollm2-135m"))
    >>> engine.answer("Where is the Zorblat festival?")            # (version, answer)
    >>> engine.inject([Context("doc", "The Zorblat festival is held in Quenby.")])
    """

    def __init__(self, store: KnowledgeStore, lm: LM, method_config: Any = None):
        if store.base_model != lm.name:
            raise ValueError(f"store {store.path} holds knowledge for model {store.base_model!r}, but the server "
                             f"loaded {lm.name!r}; start it with --model {store.base_model}")
        self.store = store
        self.lm = lm
        self.method_config = method_config
        self._writing = threading.Lock()
        self._answering = threading.Lock()  # one generation at a time: they share the same cores
        self.serving = Serving(store.current, self._method_at(store.current))

    # -- reading ----------------------------------------------------------------------------------
    @property
    def method_name(self) -> str:
        return self.store.method_name

    @property
    def max_context_tokens(self) -> int:
        """The longest context (in tokens) an injection can take on this model."""
        return self.lm.max_length - PROMPT_MARGIN_TOKENS

    def count_tokens(self, text: str) -> int:
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    def versions(self) -> list[Version]:
        return self.store.versions()

    @property
    def busy(self) -> bool:
        return self._writing.locked()

    def answer(self, question: str, max_new_tokens: int, serving: Serving | None = None) -> tuple[int, str]:
        """The greedy answer of the current version (or of `serving`, a snapshot taken earlier) to
        `question`, with the number of the version that gave it."""
        serving = serving or self.serving  # one read: a swap during generation does not mix two versions
        with self._answering:
            text = serving.method.answer([Query(question)], max_new_tokens=max_new_tokens)[0]
        return serving.version, text

    # -- writing ----------------------------------------------------------------------------------
    def inject(self, contexts: Sequence[Context], progress: Callable[[str], None] | None = None) -> Version:
        """Inject `contexts` on top of the current version; the new version serves once it is written.
        Waits for another write to finish first (the worker runs one job at a time anyway)."""
        with self._writing:
            method = self._build()
            version = self.store.add(method, contexts, progress=progress)
            self.serving = Serving(version.number, method)
        return version

    def activate(self, n: int) -> Version:
        """Make version `n` current and serve it (rollback). Refused while another write runs."""
        if not self._writing.acquire(blocking=False):
            raise BusyError("an injection is running; activate a version when it has finished "
                            "(chat keeps answering from the current version meanwhile)")
        try:
            self.store.version(n)  # unknown version: a clear ValueError before any work
            method = self._build()
            version = self.store.activate(n, method)
            self.serving = Serving(n, method)
            return version
        finally:
            self._writing.release()

    # -- helpers ----------------------------------------------------------------------------------
    def _build(self) -> KnowledgeMethod:
        # no progress bars in the server's log; jobs report their stage
        return build_method(self.method_name, self.lm, self.method_config, progress=False)

    def _method_at(self, n: int) -> KnowledgeMethod:
        method = self._build()
        self.store.materialize(method, n)
        return method
