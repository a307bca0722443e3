"""Knowledge-editing data sets (CounterFact as released with RECIPE, zsRE from KnowEdit) as `EditRecord`s.

    >>> edits = load_edits("../shared/data/counterfact_recipe/counterfact-edit-public.json", limit=10)
    >>> edits[0].fact
    'The mother tongue of Danielle Darrieux is English'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..jsonl import read_json


@dataclass(frozen=True)
class EditRecord:
    """One edit with its reliability (prompt), generality (rephrase) and locality queries."""

    id: str
    prompt: str
    target: str
    rephrase: str
    locality_prompt: str
    locality_target: str
    subject: str = ""

    def __post_init__(self):
        for name in ("id", "prompt", "target", "rephrase", "locality_prompt", "locality_target"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"edit {self.id!r}: field {name!r} must be a non-empty string, got {value!r}")

    @property
    def fact(self) -> str:
        """The knowledge sentence that is injected: the prompt followed by the new target."""
        return f"{self.prompt.strip()} {self.target.strip()}"


def _first(value) -> str:
    return value[0] if isinstance(value, list) and value else value


def counterfact_record(raw: dict, index: int) -> EditRecord:
    return EditRecord(id=f"cf-{raw.get('case_id', index)}", prompt=raw["prompt"], target=raw["target_new"],
                      rephrase=raw["rephrase_prompt"], locality_prompt=raw["locality_prompt"],
                      locality_target=raw["locality_ground_truth"], subject=raw.get("subject", ""))


def zsre_record(raw: dict, index: int) -> EditRecord:
    loc = raw["locality"]["Relation_Specificity"][0]
    return EditRecord(id=f"zsre-{index}", prompt=raw["prompt"], target=_first(raw["target_new"]),
                      rephrase=raw["rephrase_prompt"], locality_prompt=loc["prompt"],
                      locality_target=str(_first(loc["ground_truth"])), subject=raw.get("subject", ""))


def load_edits(path: str | Path, limit: int | None = None) -> list[EditRecord]:
    """Load a CounterFact (RECIPE release) or zsRE (KnowEdit) JSON list; the format is told by its fields.

    Raises ValueError naming the file and the record when a record lacks a field or has an empty one.
    """
    path = Path(path)
    raw = read_json(path, "edit data")
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], dict):
        raise ValueError(f"edit data {path}: expected a non-empty JSON list of records")
    if "locality_prompt" in raw[0]:
        convert = counterfact_record
    elif "locality" in raw[0]:
        convert = zsre_record
    else:
        raise ValueError(f"edit data {path}: records have neither CounterFact fields (locality_prompt) nor "
                         f"zsRE/KnowEdit fields (locality); first record keys: {sorted(raw[0])}")
    records = []
    for i, r in enumerate(raw[:limit] if limit else raw):
        try:
            records.append(convert(r, i))
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"edit data {path}: record {i} lacks field {e}") from None
        except ValueError as e:
            raise ValueError(f"edit data {path}: record {i}: {e}") from None
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"edit data {path}: duplicate record ids")
    return records


def distinct_edits(records: Sequence[EditRecord]) -> tuple[list[EditRecord], int]:
    """The records with repeated facts (same text up to case and spacing, the rule the RECIPE repository
    refuses duplicates by) dropped, keeping the first; and how many were dropped. zsRE's test set repeats
    5 of its 1,000 edits: a lifelong stream should not edit the same fact twice."""
    from ..methods.recipe.repository import normalize_fact

    seen: set[str] = set()
    out = []
    for r in records:
        key = normalize_fact(r.fact)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out, len(records) - len(out)
