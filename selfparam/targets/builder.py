"""The one factory from a `TargetConfig` to a `context -> TargetSet` builder, cached under a full key.

The builder writes what does not depend on the update being trained: the generated pairs (with the
generator's own answers) and the unrelated sentences. Re-answering the questions with the teacher of an
update (`answers="teacher"`) depends on the model as it is before that update, so it happens at inject
time (`reanswer`), the same way for `selfparam inject --mode sequential` and `selfparam eval sequential`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable

from ..fingerprint import file_digest, model_fingerprint
from ..generation import generate
from ..lm import LM
from ..prompts import answer_prompt
from .build import FORMAT_VERSION, CachedTargetBuilder, answer_in_context, build_target_set
from .config import DEFAULT_FACT_PHRASINGS, TargetConfig, pair_filter
from .corpus import UnrelatedCorpus
from .fact_questions import FactGenerator
from .facts import RULES_VERSION as FACT_RULES_VERSION
from .generators import JsonlGenerator, LocalGenerator, OpenAIGenerator
from .qa import generation_user_text
from .types import PairGenerator, TargetSet

TEACHER_ANSWER_TOKENS = 48
# Settings added after format version 2 are left out of the cache key while at the value that reproduces the
# earlier behaviour (for `questions`, no longer the default), so adding a setting never invalidates the sets
# already built (they are expensive).
KEY_OMITTED_AT_DEFAULT = {"questions": "paper", "fact_phrasings": DEFAULT_FACT_PHRASINGS, "fact_cycle": True,
                          "fact_spans": "rules", "fact_pronouns": "drop",
                          "generator_retire_after": 0}


def make_generator(config: TargetConfig, generator_lm: LM, progress: bool = False) -> PairGenerator:
    """The pair generator the config names: a file, an HTTP endpoint, or `generator_lm` itself (with
    `progress`, a bar of the usable pairs found so far)."""
    if config.pairs_file:
        return JsonlGenerator(config.pairs_file)
    if config.questions == "facts":
        return FactGenerator(generator_lm, phrasings=config.fact_phrasings, teacher_answers=config.answers == "teacher",
                             filter_config=pair_filter(config), spans=config.fact_spans,
                             pronouns=config.fact_pronouns)
    if config.generator_url:
        return OpenAIGenerator(config.generator_url, config.generator_model, api_key_env=config.generator_api_key_env,
                               filter_config=pair_filter(config))
    return LocalGenerator(generator_lm, batch_size=config.generator_samples,
                          max_new_tokens=config.generator_max_new_tokens, filter_config=pair_filter(config),
                          retire_after=config.generator_retire_after, progress=progress)


def cache_key(config: TargetConfig, generator_lm: LM) -> dict:
    """Everything a cached set depends on: the settings, the content of the pairs file and the corpus, the
    generation prompt and filters, the file format, (when it writes the pairs) the generating model and (for
    fact questions) the version of the span rules."""
    local = not (config.pairs_file or config.generator_url)
    facts = {"fact_rules": FACT_RULES_VERSION} if config.questions == "facts" else {}  # paper sets: key unchanged
    return {
        "format_version": FORMAT_VERSION,
        "config": {k: v for k, v in dataclasses.asdict(config).items()
                   if k != "answers" and not (k in KEY_OMITTED_AT_DEFAULT and v == KEY_OMITTED_AT_DEFAULT[k])},
        "pairs_file_sha256": file_digest(config.pairs_file) if config.pairs_file else None,
        "unrelated_sha256": file_digest(config.unrelated_path) if config.unrelated_path else None,
        "prompt_sha256": hashlib.sha256(generation_user_text("").encode()).hexdigest()[:16],
        "filter": dataclasses.asdict(pair_filter(config)),
        "model": {"name": generator_lm.name, "fingerprint": model_fingerprint(generator_lm.model)} if local else None,
        **facts,
    }


def pair_budget(config: TargetConfig) -> dict:
    """How a set reaches `n_pairs` (`build_target_set`'s `min_pairs` and `cycle`): fact questions ask every fact
    the context has, once per phrasing, so a short context has fewer than n_pairs of them; one is enough, and they
    are cycled to n_pairs so the training budget is the paper's (unless `fact_cycle` is off). The paper's prompt
    needs half of n_pairs."""
    facts = config.questions == "facts"
    return {"min_pairs": 1 if facts else None, "cycle": facts and config.fact_cycle}


def make_target_builder(config: TargetConfig, generator_lm: LM, cache_dir: str | Path | None = None,
                        progress: bool = False) -> Callable[[str], TargetSet]:
    """context -> TargetSet (generated pairs + unrelated sentences); cached on disk when `cache_dir` is given.

    `generator_lm` writes the pairs when neither a pairs file nor an endpoint is configured: the model the
    method was given (the unchanged base model), like the paper's fixed generator.
    """
    corpus = UnrelatedCorpus.from_path(config.unrelated_path) if config.unrelated_path else None
    generator = make_generator(config, generator_lm, progress=progress)

    def build(context: str) -> TargetSet:
        return build_target_set(context, generator, corpus, n_pairs=config.n_pairs,
                                unrelated_ratio=config.unrelated_ratio if corpus else 0.0, seed=config.seed,
                                filter_config=pair_filter(config), **pair_budget(config))

    if not cache_dir:
        return build
    key = cache_key(config, generator_lm)
    # one sub-folder per key without the model: a set built by another model is refused, not rebuilt beside it
    without_model = json.dumps({k: v for k, v in key.items() if k != "model"}, sort_keys=True, default=str)
    digest = hashlib.sha256(without_model.encode()).hexdigest()[:12]
    return CachedTargetBuilder(build, Path(cache_dir) / f"targets-{digest}", key=key)


def reanswer(teacher: LM, ts: TargetSet) -> TargetSet:
    """`ts` with every question answered by `teacher` with the context in view; the generator's answers
    are kept beside the teacher's (`QAPair.generator_answer`), so FT(S) can still train on them."""

    def answer(questions: list[str], context: str) -> list[str]:
        return generate(teacher, [answer_prompt(teacher.tokenizer, q, context) for q in questions],
                        max_new_tokens=TEACHER_ANSWER_TOKENS)

    return answer_in_context(ts, answer)
