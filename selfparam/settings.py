"""Settings dataclasses from plain dicts (JSON files, saved configs): the one implementation.

Nested dataclass fields are built from nested objects, tuples from lists; an unknown field is an error
naming where it was found and the known fields (a typo must not silently run the defaults).

>>> build_dataclass(TrainConfig, {"epochs": 2}, "method.json:selfparam.train")
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any


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


ABSENT = "absent"
"""Field metadata key: the value of a setting that behaves as the code did before the setting existed.

A recorded run started before a setting was added resumes only if that setting now has this value
(`absent_values`): a new default that changes what a method does would otherwise mix two behaviours in one
run's figures. A setting added without it only gets a warning on resumption."""


def retired_values(cls: type) -> dict[str, Any]:
    """`{"setting": value}`: settings removed from the config class `cls` (its `RETIRED` class attribute), each
    with the value that behaves as the code does without it. A recorded run whose config holds a removed setting
    at that value resumes (the setting was off, so nothing it did is missing); at another value it does not.

    >>> retired_values(SelfParamConfig)["shots_answers"]
    False
    """
    return dict(getattr(cls, "RETIRED", {}))


def absent_values(cls: type, where: str = "") -> dict[str, Any]:
    """`{"field.path": value}` for every (nested) field of the dataclass `cls` that declares, in its metadata
    under `ABSENT`, the value that behaves as the code before it existed.

    >>> absent_values(SelfParamConfig)["context_copies"]
    0
    """
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = f"{where}.{f.name}" if where else f.name
        if ABSENT in f.metadata:
            out[path] = f.metadata[ABSENT]
        if dataclasses.is_dataclass(hints.get(f.name)):
            out.update(absent_values(hints[f.name], path))
    return out
