"""The one description of how a context's target set is built: `TargetConfig`.

Every route to a target set (a method's own config, the evaluation harness, the lifelong CLI, the demo)
makes one of these and hands it to `make_target_builder`; the defaults below are written nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .qa import FilterConfig

DEFAULT_N_PAIRS = 50  # the paper's setting: 50 pairs x 1 epoch beat 10 pairs x 5 epochs (table 6)
# The paper does not state its mix; half as many unrelated sentences as pairs regularizes without
# doubling the training time (each sentence costs about as much as two pairs). Tune per method.
DEFAULT_UNRELATED_RATIO = 0.5
QUESTION_KINDS = ("facts", "paper")  # fact-covering questions (the local model's default), the paper's prompt
FACT_SPANS = ("rules", "wide")  # the answer spans fact questions ask (`targets.facts.sentence_spans`)
FACT_PRONOUNS = ("drop", "name")  # a cloze whose pronoun has no name before it (`targets.fact_questions.name_pronoun`)
DEFAULT_FACT_PHRASINGS = 3  # questions per fact: the cloze, then two the model writes and the teacher checks


@dataclass
class TargetConfig:
    """How the target sentence set of a context is built."""

    n_pairs: int = field(default=DEFAULT_N_PAIRS, metadata={"help": "question-answer pairs per context (paper: 50)"})
    unrelated_ratio: float = field(default=DEFAULT_UNRELATED_RATIO,
                                   metadata={"help": "unrelated sentences per related pair"})
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
    generator_retire_after: int = field(default=0, metadata={
        "help": "local generator: a completion leaves its round once its last this-many pairs are all unusable "
                "(copies of the prompt's example, repeats, off-topic) or it starts another context; 0 = off"})
    answers: str = field(default="teacher", metadata={
        "help": "generator: keep the generator's answers (paper); teacher: the teacher of the update (the model "
                "as it is before it) answers each generated question with the context in view; this also "
                "switches off the section 3.3.3 filters on the generator's answers (see docs/tuning.md)"})
    seed: int = field(default=0, metadata={"help": "seeds pair sampling and, with each context's digest, the "
                                                   "unrelated sentences drawn for it"})
    questions: str | None = field(default=None, metadata={
        "help": "facts: answer-aware, fact-covering questions (answer spans chosen per sentence first, a cloze "
                "question plus model-written phrasings per span; targets/fact_questions.py); paper: the paper's "
                "whole-context bulleted-QA prompt. None: facts where the local model writes the pairs (measured "
                "better, docs/tuning.md), paper with pairs_file or generator_url"})
    fact_phrasings: int = field(default=DEFAULT_FACT_PHRASINGS, metadata={
        "help": "questions=facts: phrasings per fact (the cloze first; 1: the cloze alone, no model-written ones)"})
    fact_spans: str = field(default="rules", metadata={
        "help": "questions=facts: which answer spans are asked: rules (names, numbers with a unit, dates, "
                "definitions, sentence-final objects; targets/facts.py) or wide (also counts in words with their "
                "noun and each sentence's longest noun phrase after an article)"})
    fact_pronouns: str = field(default="drop", metadata={
        "help": "questions=facts: a cloze question whose pronoun has no name before it (\"It lies how many km from "
                "Warsaw?\"): drop it (unless a context has no other), or name: ask it with the name the pronoun "
                "most likely stands for (the nearest name a sentence opens with that fits it; "
                "targets/fact_questions.py)"})
    fact_cycle: bool = field(default=True, metadata={
        "help": "questions=facts: a set with fewer than n_pairs distinct pairs is repeated in order up to n_pairs (the "
                "paper's training budget, whatever the context's length); False: each distinct pair once, so a "
                "short context trains for fewer steps (and gets unrelated sentences in proportion to its pairs)"})

    def __post_init__(self) -> None:
        if self.n_pairs < 1:
            raise ValueError(f"n_pairs: must be >= 1, got {self.n_pairs}")
        if self.generator_samples < 1 or self.generator_max_new_tokens < 1:
            raise ValueError(f"generator_samples and generator_max_new_tokens: must be >= 1, got "
                             f"{self.generator_samples} and {self.generator_max_new_tokens}")
        if self.generator_retire_after < 0:
            raise ValueError(f"generator_retire_after: must be >= 0 (0 = off), got {self.generator_retire_after}")
        if self.unrelated_ratio < 0:
            raise ValueError(f"unrelated_ratio: must be >= 0, got {self.unrelated_ratio}")
        if self.pairs_file and self.generator_url:
            raise ValueError("pairs_file and generator_url: give one source of pairs, not both")
        if self.answers not in ("generator", "teacher"):
            raise ValueError(f"answers: {self.answers!r} is not 'generator' or 'teacher'")
        if bool(self.generator_url) != bool(self.generator_model):
            raise ValueError("generator_url and generator_model go together")
        if self.questions is None:
            self.questions = "paper" if (self.pairs_file or self.generator_url) else "facts"
        if self.questions not in QUESTION_KINDS:
            raise ValueError(f"questions: {self.questions!r} is not one of {', '.join(QUESTION_KINDS)}")
        if self.questions == "facts" and (self.pairs_file or self.generator_url):
            raise ValueError("questions='facts' writes its own questions with the local model: it does not go with "
                             "pairs_file or generator_url")
        if self.fact_phrasings < 1:
            raise ValueError(f"fact_phrasings: must be >= 1, got {self.fact_phrasings}")
        if self.fact_spans not in FACT_SPANS:
            raise ValueError(f"fact_spans: {self.fact_spans!r} is not one of {', '.join(FACT_SPANS)}")
        if self.fact_pronouns not in FACT_PRONOUNS:
            raise ValueError(f"fact_pronouns: {self.fact_pronouns!r} is not one of {', '.join(FACT_PRONOUNS)}")
        for name, default in (("fact_phrasings", DEFAULT_FACT_PHRASINGS), ("fact_cycle", True),
                              ("fact_spans", "rules"), ("fact_pronouns", "drop")):
            if getattr(self, name) != default and self.questions != "facts":
                raise ValueError(f"{name}: applies to fact-covering questions (questions='facts'), not to "
                                 f"{self.questions!r}")

    @property
    def teacher_rewrites_answers(self) -> bool:
        """Whether the teacher of each update re-answers the questions (`reanswer`): with answers='teacher' on
        the paper's questions; fact questions already carry the teacher's span-checked answers."""
        return self.answers == "teacher" and self.questions == "paper"

    def sentences_per_context(self) -> int:
        """The most training sentences one context's set holds: pairs plus unrelated sentences."""
        unrelated = round(self.unrelated_ratio * self.n_pairs) if self.unrelated_path else 0
        return self.n_pairs + unrelated


def pair_filter(config: TargetConfig) -> FilterConfig:
    """The section 3.3.3 filters, minus the checks on the generator's answers when the teacher re-answers
    every question anyway: more questions survive each sampling round, so fewer rounds are needed."""
    if config.answers == "teacher":
        return FilterConfig(min_support=0.0, max_answer_words=10_000, drop_yes_no=False)
    return FilterConfig()
