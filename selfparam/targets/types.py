"""The target sentence set of one injection: generated question-answer pairs plus unrelated text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class QAPair:
    """A question about the context and its answer.

    `answer` is what the student learns: the generator's answer, or the teacher's when the teacher
    re-answered the question (`answers="teacher"`); then `generator_answer` keeps the generator's.
    """

    question: str
    answer: str
    generator_answer: str | None = None

    @property
    def generators_answer(self) -> str:
        """The generator's own answer, whoever wrote `answer`."""
        return self.answer if self.generator_answer is None else self.generator_answer


@dataclass
class TargetSet:
    """Everything SELF-PARAM trains on for one context: related pairs and unrelated sentences.

    `generator` describes where the pairs came from (for the manifest); `dropped` counts what the
    filters removed, by reason, so a thin set can be explained.
    """

    context: str
    pairs: list[QAPair]
    unrelated: list[str] = field(default_factory=list)
    generator: str = ""
    dropped: dict[str, int] = field(default_factory=dict)


class GeneratorError(ValueError):
    """A generator could not produce pairs (server down, junk output, a bad pairs file); the message
    names the endpoint or file and what to do about it."""


class TooFewPairsError(ValueError):
    """The generator ran and its pairs were filtered, but too few usable ones were left. The outcome of the
    same settings, model and seed on the same context, so a cache may keep it (a `GeneratorError` may
    pass: a server that was down)."""


class PairGenerator(Protocol):
    """Writes question-answer pairs about a context (a local model, an HTTP endpoint, a file)."""

    description: str  # where the pairs come from, written into the target set and the manifest
    # A generator that drops candidates itself before returning (FactGenerator's teacher check) may also
    # expose `dropped: dict[str, int]`, counts per reason of its last call; `build_target_set` adds them in.

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        """Up to about `n` raw pairs (before de-duplication and filtering)."""
        ...
