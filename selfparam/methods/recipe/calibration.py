"""Calibrating the knowledge sentinel: how close a stored edit must be, relative to the sentinel, to be used.

The paper's rule uses an edit when its key is closer to the query than the sentinel is. Trained on a CPU
budget, the sentinel can win too often: the shipped editor ranked the right edit first for 99% of held-out
prompts, yet the sentinel beat it for a third of them (docs/recipe.md). A margin `m` relaxes the rule to
`best key similarity > sentinel similarity - m`, and is chosen on held-out edit records (never the ones
reported on) as the largest margin that keeps a target share of unrelated (locality) prompts retrieving
nothing, with every held-out fact stored:

    >>> calibration = calibrate_sentinel(editor, training.encode_records(encoder, held_out), locality=0.98)
    >>> calibration["sentinel_margin"], calibration["retrieval"]["reliability"]

The result travels with the editor (`editor.json`, `calibration`), and `Recipe` uses it unless
`RecipeConfig.sentinel_margin` says otherwise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ...atomic import atomic_write_text
from .editor import EDITOR_META, RecipeEditor
from .repository import sentinel_retrieve


def retrieval_accuracy(editor: RecipeEditor, enc: dict[str, torch.Tensor], margin: float = 0.0) -> dict[str, float]:
    """With all of `enc`'s facts stored: the share of reliability/generality/question queries that retrieve
    their own fact, and of locality queries that retrieve nothing (the sentinel wins), under the sentinel rule
    with `margin` (0: the paper's)."""
    with torch.no_grad():
        keys, _ = editor.knowledge(enc["fact"])
        sentinel = editor.sentinel_repr()
        own = torch.arange(keys.shape[0])
        out = {}
        for name, field in (("reliability", "prompt"), ("generality", "rephrase"), ("question", "question")):
            index, _, _ = sentinel_retrieve(editor.query(enc[field]), keys, sentinel, margin)
            out[name] = (index == own).float().mean().item()
        index, _, _ = sentinel_retrieve(editor.query(enc["locality_prompt"]), keys, sentinel, margin)
        out["locality"] = (index == -1).float().mean().item()
    return out


def locality_gaps(editor: RecipeEditor, enc: dict[str, torch.Tensor]) -> torch.Tensor:
    """For each locality prompt, the sentinel's similarity minus its best key's, with every fact of `enc`
    stored: the prompt retrieves an edit under margin `m` exactly when its gap is below `m`."""
    with torch.no_grad():
        keys, _ = editor.knowledge(enc["fact"])
        _, best, sentinel = sentinel_retrieve(editor.query(enc["locality_prompt"]), keys, editor.sentinel_repr())
    return sentinel - best


def margin_for_locality(gaps: torch.Tensor, locality: float) -> float:
    """The largest margin under which at least a `locality` share of the prompts with these gaps retrieves
    nothing (ties can only make fewer retrieve).

    >>> margin_for_locality(torch.tensor([0.3, -0.1, 0.2, 0.5]), 0.75)   # one of four may retrieve
    0.2
    """
    if not 0.0 < locality <= 1.0:
        raise ValueError(f"locality: must be in (0, 1], got {locality}")
    if gaps.numel() == 0:
        raise ValueError("no locality prompts to calibrate on")
    allowed = math.floor((1.0 - locality) * gaps.numel() + 1e-9)  # prompts that may retrieve something
    ordered = torch.sort(gaps.float()).values
    return round(float(ordered[allowed]), 6) if allowed < ordered.numel() else float("inf")


def calibrate_sentinel(editor: RecipeEditor, enc: dict[str, torch.Tensor], locality: float = 0.98) -> dict:
    """The margin for `locality` on held-out records, with the retrieval it gives and the paper's rule's."""
    margin = margin_for_locality(locality_gaps(editor, enc), locality)
    if not math.isfinite(margin):
        raise ValueError(f"locality {locality}: every prompt may retrieve; choose a target below 1 - 1/N")
    return {"sentinel_margin": margin, "locality_target": locality, "records": int(enc["fact"].shape[0]),
            "retrieval": retrieval_accuracy(editor, enc, margin),
            "retrieval_without_margin": retrieval_accuracy(editor, enc, 0.0)}


def calibrate_editor(folder: str | Path, enc: dict[str, torch.Tensor], locality: float = 0.98,
                     data: dict | None = None) -> dict:
    """Calibrate the editor saved in `folder` on the encodings `enc` of held-out records (never trained on;
    `training.encode_records`) and write the result, with `data` (where the records came from), into its
    `editor.json` atomically; the weights are untouched. Returns the calibration."""
    folder = Path(folder)
    calibration = {**calibrate_sentinel(RecipeEditor.load(folder), enc, locality), "data": data}
    meta = json.loads((folder / EDITOR_META).read_text())
    atomic_write_text(folder / EDITOR_META, json.dumps({**meta, "calibration": calibration}, indent=2))
    return calibration
