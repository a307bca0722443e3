"""Method settings from JSON: `{"selfparam": {"train": {"epochs": 2}}, "rag-bm25": {"top_k": 2}}`.

The config class of a method is the one the registry lists beside it; nested dataclasses are built from
nested objects and unknown fields are errors naming the method and the field (`selfparam.settings`).
When the file configures SELF-PARAM, the fine-tuning baselines of the same run take its epochs, batch size
and context read (`follow_budget`), so their budget stays SELF-PARAM's optimiser steps; a setting the
file gives a baseline itself is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..jsonl import read_json
from ..methods.registry import BUDGET_REFERENCE, config_class
from ..settings import build_dataclass


def method_configs(path: Path | None, names: list[str]) -> dict[str, Any]:
    """Config objects for the methods named in the JSON file at `path` (none: every method's defaults)."""
    if path is None:
        return {}
    path = Path(path)
    raw = read_json(path, "method config file", missing=ValueError)
    if not isinstance(raw, dict):
        raise ValueError(f"method config file {path}: expected an object keyed by method name")
    out = {}
    for name, values in raw.items():
        if name not in names:
            raise ValueError(f"method config file {path}: method {name!r} is not among the methods run "
                             f"({', '.join(names)})")
        cls = config_class(name)
        if cls is None:
            raise ValueError(f"method config file {path}: method {name!r} takes no settings")
        if isinstance(values, dict) and "targets" in values:
            # the harness builds one target set per context for every method (SELF-PARAM and FT(S) must
            # train on the same one), so a per-method `targets` would be silently ignored
            raise ValueError(f"method config file {path}: {name}.targets is set by the run for all methods; "
                             f"use --n-pairs and --unrelated instead")
        out[name] = build_dataclass(cls, values, f"{path.name}:{name}")
    reference = out.get(BUDGET_REFERENCE)
    if reference is not None:  # the baselines' step budgets follow SELF-PARAM's settings in this run
        for name in names:
            cls = config_class(name)
            if cls is not None and hasattr(cls, "follow_budget"):
                config = out.get(name) or cls()
                out[name] = config.follow_budget(reference, setting_paths(raw.get(name) or {}))
    return out


def setting_paths(raw: dict[str, Any], where: str = "") -> set[str]:
    """Dotted paths of the settings a raw method-config object sets: `{"train": {"epochs": 1}}` ->
    `{"train.epochs"}`."""
    out = set()
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        out |= setting_paths(value, path) if isinstance(value, dict) else {path}
    return out


def recorded_method_configs(configs: dict[str, Any] | None) -> dict[str, Any] | None:
    """Method configs as a run records and compares them: without a method's own `targets`, which the harness
    never uses (every method trains on the run's shared target sets, set by the run's settings: `questions`,
    `n_pairs`, `unrelated`). Runs recorded before this still hold them, at the defaults of their day."""
    if configs is None:
        return None
    return {name: {k: v for k, v in values.items() if k != "targets"} if isinstance(values, dict) else values
            for name, values in configs.items()}
