"""Shipping a trained editor inside the package, so a fresh install edits with no training and no
environment variable: `ship_editor` copies `editor.json` + `editor.safetensors` into
`selfparam/assets/recipe/<model>/` (package data, see pyproject.toml), where `default_checkpoint` finds it
before the user cache.

    >>> ship_editor("runs/recipe-smollm2/editor", "smollm2-135m")   # or: selfparam recipe train ... --ship
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ...atomic import atomic_folder
from .config import shipped_checkpoint
from .editor import EDITOR_META, EDITOR_WEIGHTS, RecipeEditor


def ship_editor(source: str | Path, model_name: str) -> Path:
    """Install the trained editor in `source` as the shipped editor for `model_name` (replacing any, whole and
    atomically) and return its folder. Refused, changing nothing, when `source` holds no editor, one
    trained for another model, or one whose `editor.json` lacks its training record (a shipped editor must
    say what it was trained on, for how long, at which commit: `selfparam recipe train` writes that)."""
    source = Path(source)
    RecipeEditor.require(source)
    meta = json.loads((source / EDITOR_META).read_text())
    if meta.get("llm_name") and meta["llm_name"] != model_name:
        raise ValueError(f"{source} holds an editor trained for {meta['llm_name']!r}, not {model_name!r}")
    training = meta.get("training")
    if not isinstance(training, dict) or not all(k in training for k in ("data", "steps", "seconds", "commit")):
        raise ValueError(f"{source}/{EDITOR_META} has no training record (data, steps, seconds, commit); only an "
                         f"editor written by `selfparam recipe train` can be shipped")
    RecipeEditor.load(source)  # the weights load under the recorded architecture
    target = shipped_checkpoint(model_name)
    with atomic_folder(target) as tmp:
        for name in (EDITOR_META, EDITOR_WEIGHTS):
            shutil.copyfile(source / name, tmp / name)
    return target
