"""The target sentence set of SELF-PARAM: generated question-answer pairs about a context plus unrelated text.

>>> from selfparam.targets import LocalGenerator, UnrelatedCorpus, build_target_set
>>> ts = build_target_set(context, LocalGenerator(lm), UnrelatedCorpus.from_path("wiki.test.raw"))
"""

from .build import (
                    CachedTargetBuilder,
                    answer_in_context,
                    build_target_set,
                    context_key,
                    load_target_set,
                    save_target_set,
                    target_set_from_dict,
                    target_set_to_dict,
                    unrelated_seed,
)
from .builder import cache_key, make_generator, make_target_builder, pair_budget, reanswer
from .config import DEFAULT_N_PAIRS, DEFAULT_UNRELATED_RATIO, TargetConfig, pair_filter
from .corpus import UnrelatedCorpus, detokenize, split_sentences
from .fact_questions import FactGenerator
from .facts import Coverage, coverage, extract_facts
from .generators import JsonlGenerator, LocalGenerator, OpenAIGenerator, read_pairs_file
from .qa import (
                    EXAMPLE_CONTEXT,
                    EXAMPLE_PAIRS,
                    GENERATION_INSTRUCTION,
                    FilterConfig,
                    generation_user_text,
                    lexical_support,
                    normalize_question,
                    parse_pairs,
                    rejection_reason,
                    rewrite_question,
                    select_pairs,
)
from .types import GeneratorError, PairGenerator, QAPair, TargetSet, TooFewPairsError

__all__ = [
    "DEFAULT_N_PAIRS", "DEFAULT_UNRELATED_RATIO", "CachedTargetBuilder", "answer_in_context", "build_target_set",
    "context_key", "unrelated_seed", "cache_key", "make_generator", "make_target_builder", "pair_budget", "reanswer",
    "TargetConfig", "pair_filter",
    "load_target_set", "save_target_set", "target_set_from_dict", "target_set_to_dict",
    "UnrelatedCorpus", "detokenize", "split_sentences",
    "FactGenerator", "Coverage", "coverage", "extract_facts",
    "JsonlGenerator", "LocalGenerator", "OpenAIGenerator", "read_pairs_file",
    "EXAMPLE_CONTEXT", "EXAMPLE_PAIRS", "GENERATION_INSTRUCTION", "FilterConfig", "generation_user_text",
    "lexical_support", "normalize_question", "parse_pairs", "rejection_reason", "rewrite_question", "select_pairs",
    "GeneratorError", "PairGenerator", "QAPair", "TargetSet", "TooFewPairsError",
]
