"""The one table from method names (as the CLI and reports spell them) to their config and class.

Every list of method names (help texts, the harness's QA methods) is derived from `METHODS`. Each class
is built as `cls(lm, config, resources)`: `config` an instance of the method's config class (None for
its defaults; methods that take no settings have `None` as their config class), `resources` what the
harness shares between methods (see `Resources`).
"""

from __future__ import annotations

from typing import Any

from ..lm import LM
from .base import KnowledgeMethod, Resources
from .finetune import (
    FineTuneContext,
    FineTuneContextConfig,
    FineTuneTargets,
    FineTuneTargetsConfig,
    FineTuneTeacherTargets,
)
from .incontext import BaseCQ, BaseQ
from .rag import BM25RAG, DenseRAG, RAGConfig
from .recipe import Recipe, RecipeConfig
from .selfparam import SelfParam, SelfParamConfig

METHODS: dict[str, tuple[type | None, type]] = {
    "base": (None, BaseQ),
    "base-cq": (None, BaseCQ),
    "ft-c": (FineTuneContextConfig, FineTuneContext),
    "ft-s": (FineTuneTargetsConfig, FineTuneTargets),
    "ft-s-teacher": (FineTuneTargetsConfig, FineTuneTeacherTargets),
    "selfparam": (SelfParamConfig, SelfParam),
    "rag-bm25": (RAGConfig, BM25RAG),
    "rag-dense": (RAGConfig, DenseRAG),
    "recipe": (RecipeConfig, Recipe),
}

# The method whose optimiser steps the fine-tuning baselines match (a config class with `follow_budget` takes
# this method's epochs, batch size and context read in the same run; see finetune/config.py).
BUDGET_REFERENCE = "selfparam"

# Methods the QA tasks (single, batch, sequential) run by default: all but the CounterFact editor.
QA_METHODS: tuple[str, ...] = tuple(name for name in METHODS if name != "recipe")


def method_class(name: str) -> type:
    """The class behind a method name, with a clear error listing the known names."""
    return _entry(name)[1]


def config_class(name: str) -> type | None:
    """The config dataclass a method takes (None when it takes no settings)."""
    return _entry(name)[0]


def _entry(name: str) -> tuple[type | None, type]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def preflight(name: str, config: Any, model_name: str) -> None:
    """What can be checked before the model loads (a method class may define `preflight(config,
    model_name)`, e.g. RECIPE's trained editor): a ValueError that says what is missing."""
    check = getattr(method_class(name), "preflight", None)
    if check is not None:
        check(config, model_name)


def build_method(name: str, lm: LM, config: Any = None, resources: Resources | None = None,
                 progress: bool = True) -> KnowledgeMethod:
    """Instantiate the method `name` on `lm` with its config (None for the defaults). `progress=False`
    silences the bars of a method that draws its own (generation, teacher, training steps)."""
    method = method_class(name)(lm, config, resources or Resources())
    if hasattr(method, "progress"):
        method.progress = progress
    return method
