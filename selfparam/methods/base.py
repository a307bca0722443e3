"""The protocol every knowledge method implements, so the evaluation harness never branches on names.

A method is given knowledge with `inject` (one call per update: a list of several contexts is one batch
update, repeated calls are sequential updates), is asked with `answer`, and can be scored
teacher-forced with `score` (token accuracy) and `logprob` (mean log-probability of a target).
`reset` returns it to the unchanged base model. `save`/`load` persist whatever it learned or stored.
`storage_bytes` is what it keeps beside the base model at inference (0 for methods that write the
knowledge into the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from ..targets.config import TargetConfig
    from ..targets.types import TargetSet


@dataclass(frozen=True)
class Context:
    """A piece of knowledge to inject: a document, a dialogue so far, or a single fact."""

    id: str
    text: str


@dataclass(frozen=True)
class Query:
    """A question to answer. `context` is the gold context; only the in-context upper bound reads it."""

    question: str
    context: str | None = None


@dataclass
class Resources:
    """What the harness shares between methods of one run.

    `target_builder` turns a context into its target sentence set; sharing one (cached) builder is how
    SELF-PARAM and FT(S) train on exactly the same generated set. `targets` is the one `TargetConfig` it
    was made from: methods follow it (and record it) instead of their own config's. `seed` is the run's
    seed: methods that train use it for their initialisation, shuffling and dropout (None: their own).
    """

    target_builder: Callable[[str], "TargetSet"] | None = None
    targets: "TargetConfig | None" = None
    seed: int | None = None


@runtime_checkable
class KnowledgeMethod(Protocol):
    """What the harness needs from a method. Implementations live one per folder under `methods/`."""

    name: str
    # Optional, read with getattr (default False): True for a method whose answers never depend on what
    # was injected (Base(Q), Base(C+Q)); the sequential harness then asks each question once.
    # static_answers: bool

    def inject(self, contexts: Sequence[Context]) -> None:
        """Add the knowledge in `contexts` as one update."""
        ...

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        """Greedy answers, one per query, with the shared answer prompt."""
        ...

    def score(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        """Teacher-forced token accuracy of each target after its query's answer prompt (0..1)."""
        ...

    def logprob(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        """Mean per-token log-probability of each target after its query's answer prompt (<= 0), teacher-forced
        and asked the way `answer` asks (with whatever the method puts in the prompt)."""
        ...

    def reset(self) -> None:
        """Forget everything injected: back to the base model."""
        ...

    def save(self, path: Path) -> None:
        """Write what the method learned or stored to the folder `path` (atomically)."""
        ...

    def load(self, path: Path) -> None:
        """Restore what `save` wrote."""
        ...

    def storage_bytes(self) -> int:
        """Bytes kept beside the base model's weights at inference time."""
        ...


@runtime_checkable
class RetrievingMethod(Protocol):
    """Optional, beside `KnowledgeMethod`: a method that answers from stored knowledge it retrieves (RAG, RECIPE)
    says which stored context each question retrieves, so an evaluation can tell a retrieval miss from a
    retrieved fact the model did not use. The harness checks it with `isinstance`, never by name."""

    def retrieved_ids(self, questions: Sequence[str]) -> list[str | None]:
        """The id of the context each question retrieves first (None where it retrieves nothing)."""
        ...


@runtime_checkable
class ReadsContext(Protocol):
    """Optional, beside `KnowledgeMethod`: a method whose own model can also read a context in the prompt says
    what it answers then. For SELF-PARAM that is its teacher: its next update distils the answers the model
    that teaches it gives with the new context in view (the same model and prompt), so an evaluation can tell a
    fact the method failed to learn from one its teacher never said. The harness checks it with `isinstance`."""

    def answer_in_context(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        """Greedy answers of the method's reading model (its current model; for SELF-PARAM the teacher of its
        next update) with each query's `context` in view (every query must carry one)."""
        ...
