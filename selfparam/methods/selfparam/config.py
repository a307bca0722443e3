"""SELF-PARAM's settings: where the target set comes from, what is trained, how.

Paper values are given in each field's help; where our default differs it was measured better on the
embedded 135M model (see docs/tuning.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...training.adapters import AdapterConfig
from ...training.trainer import TrainConfig


@dataclass
class TargetConfig:
    """How the target sentence set of a context is built."""

    n_pairs: int = field(default=50, metadata={"help": "question-answer pairs per context (paper: 50)"})
    unrelated_ratio: float = field(default=0.5, metadata={"help": "unrelated sentences per related pair"})
    unrelated_path: str | None = field(default=None, metadata={
        "help": "text or JSONL corpus of unrelated sentences (paper: SlimPajama); None: no unrelated text"})
    pairs_file: str | None = field(default=None, metadata={"help": "JSONL of {question, answer[, context]} pairs"})
    generator_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible base URL for pair generation"})
    generator_model: str | None = field(default=None, metadata={"help": "model name at generator_url"})
    generator_api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "env var holding the API key"})
    generator_samples: int = field(default=16, metadata={
        "help": "local generator: completions sampled per round (more, shorter samples beat fewer long ones)"})
    generator_max_new_tokens: int = field(default=160, metadata={
        "help": "local generator: tokens per completion (a one-sentence edit needs far fewer than a paragraph)"})
    answers: str = field(default="teacher", metadata={
        "help": "generator: keep the generator's answers (paper); teacher: the model answers each generated "
                "question with the context in view (see docs/tuning.md)"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_pairs < 1:
            raise ValueError(f"n_pairs: must be >= 1, got {self.n_pairs}")
        if self.generator_samples < 1 or self.generator_max_new_tokens < 1:
            raise ValueError(f"generator_samples and generator_max_new_tokens: must be >= 1, got "
                             f"{self.generator_samples} and {self.generator_max_new_tokens}")
        if self.unrelated_ratio < 0:
            raise ValueError(f"unrelated_ratio: must be >= 0, got {self.unrelated_ratio}")
        if self.pairs_file and self.generator_url:
            raise ValueError("pairs_file and generator_url: give one source of pairs, not both")
        if self.answers not in ("generator", "teacher"):
            raise ValueError(f"answers: {self.answers!r} is not 'generator' or 'teacher'")
        if bool(self.generator_url) != bool(self.generator_model):
            raise ValueError("generator_url and generator_model go together")


@dataclass
class SelfParamConfig:
    """Everything one SELF-PARAM injection depends on; written into every manifest."""

    targets: TargetConfig = field(default_factory=TargetConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
