"""Method settings from JSON: `{"selfparam": {"train": {"epochs": 2}}, "rag-bm25": {"top_k": 2}}`.

The config class of a method is read from the type hint of its constructor's `config` parameter, so a
new method needs no entry here; nested dataclasses are built from nested objects and unknown fields are
errors naming the method and the field (a typo must not silently run the defaults).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from ..methods.registry import method_class


def config_class(name: str) -> type | None:
    """The dataclass a method takes as `config` (None when it takes none)."""
    cls = method_class(name)
    hint = typing.get_type_hints(cls.__init__).get("config")
    candidates = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    found = [c for c in candidates if dataclasses.is_dataclass(c)]
    return found[0] if found else None


def build_dataclass(cls: type, values: dict[str, Any], where: str) -> Any:
    """`cls(**values)` with nested dataclass fields built from nested dicts and tuples from lists."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected an object of settings, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(fields))}")
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = build_dataclass(hint, value, f"{where}.{key}")
        elif isinstance(value, list) and "tuple" in str(hint):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def method_configs(path: Path | None, names: list[str]) -> dict[str, Any]:
    """Config objects for the methods named in the JSON file at `path` (none: every method's defaults)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"method config file {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"method config file {path}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"method config file {path}: expected an object keyed by method name")
    out = {}
    for name, values in raw.items():
        if name not in names:
            raise ValueError(f"method config file {path}: method {name!r} is not among the methods run ({', '.join(names)})")
        cls = config_class(name)
        if cls is None:
            raise ValueError(f"method config file {path}: method {name!r} takes no settings")
        if isinstance(values, dict) and "targets" in values:
            # the harness builds one target set per context for every method (SELF-PARAM and FT(S) must
            # train on the same one), so a per-method `targets` would be silently ignored
            raise ValueError(f"method config file {path}: {name}.targets is set by the run for all methods; "
                             f"use --n-pairs and --unrelated instead")
        out[name] = build_dataclass(cls, values, f"{path.name}:{name}")
    return out
