"""Calibrating the knowledge sentinel: how close a stored edit must be, relative to the sentinel, to be used.

The paper's rule uses an edit when its key is closer to the query than the sentinel is. Trained on a CPU
budget, the sentinel can win too often: the shipped editor ranked the right edit first for 99% of held-out
prompts, yet the sentinel beat it for a third of them (docs/recipe.md). A margin `m` relaxes the rule to
`best key similarity > sentinel similarity - m`, and is chosen on held-out edit records (never the ones
reported on) as the largest margin that keeps a target share of unrelated (locality) prompts retrieving
nothing, with every held-out fact stored:

    calibration = calibrate_sentinel(editor, training.encode_records(encoder, held_out), locality=0.98)
    calibration["sentinel_margin"], calibration["retrieval"]["reliability"]

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


def _stored_keys(editor: RecipeEditor, enc: dict[str, torch.Tensor], distractors: torch.Tensor | None) -> torch.Tensor:
    """Keys of `enc`'s facts (rows 0..N-1, so a query's own fact keeps its index) and of the distractor facts
    after them: other stored edits, as a repository of that size holds."""
    facts = enc["fact"] if distractors is None else torch.cat([enc["fact"], distractors])
    return editor.knowledge(facts)[0]


def retrieval_accuracy(editor: RecipeEditor, enc: dict[str, torch.Tensor], margin: float = 0.0,
                       distractors: torch.Tensor | None = None) -> dict[str, float]:
    """With all of `enc`'s facts stored (and the `distractors`' encodings, other facts): the share of
    reliability/generality/question queries that retrieve their own fact, and of locality queries that
    retrieve nothing (the sentinel wins), under the sentinel rule with `margin` (0: the paper's)."""
    with torch.no_grad():
        keys = _stored_keys(editor, enc, distractors)
        sentinel = editor.sentinel_repr()
        own = torch.arange(enc["fact"].shape[0])
        out = {}
        for name, field in (("reliability", "prompt"), ("generality", "rephrase"), ("question", "question")):
            index, _, _ = sentinel_retrieve(editor.query(enc[field]), keys, sentinel, margin)
            out[name] = (index == own).float().mean().item()
        index, _, _ = sentinel_retrieve(editor.query(enc["locality_prompt"]), keys, sentinel, margin)
        out["locality"] = (index == -1).float().mean().item()
    return out


def locality_gaps(editor: RecipeEditor, enc: dict[str, torch.Tensor],
                  distractors: torch.Tensor | None = None) -> torch.Tensor:
    """For each locality prompt, the sentinel's similarity minus its best key's, with every fact of `enc` (and
    the distractors) stored: the prompt retrieves an edit under margin `m` exactly when its gap is below `m`."""
    with torch.no_grad():
        keys = _stored_keys(editor, enc, distractors)
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
    allowed = math.floor((1.0 - locality) * gaps.numel() + 1e-9)  # prompts that may retrieve: < numel as locality > 0
    return round(float(torch.sort(gaps.float()).values[allowed]), 6)


def calibrate_sentinel(editor: RecipeEditor, enc: dict[str, torch.Tensor], locality: float = 0.98,
                       distractors: torch.Tensor | None = None) -> dict:
    """The margin for `locality` on held-out records, with the retrieval it gives and the paper's rule's.

    `distractors` (encoder outputs of other facts, e.g. training records) are stored beside the held-out
    facts, so the margin holds the locality share in a repository of that size: more stored keys put more
    of them near an unrelated prompt, and a margin calibrated on a small repository retrieves too often in
    a large one (docs/recipe.md)."""
    margin = margin_for_locality(locality_gaps(editor, enc, distractors), locality)
    n_distractors = 0 if distractors is None else int(distractors.shape[0])
    return {"sentinel_margin": margin, "locality_target": locality, "records": int(enc["fact"].shape[0]),
            "distractors": n_distractors, "stored": int(enc["fact"].shape[0]) + n_distractors,
            "retrieval": retrieval_accuracy(editor, enc, margin, distractors),
            "retrieval_without_margin": retrieval_accuracy(editor, enc, 0.0, distractors)}


def calibrate_editor(folder: str | Path, enc: dict[str, torch.Tensor], locality: float = 0.98,
                     data: dict | None = None, distractors: torch.Tensor | None = None) -> dict:
    """Calibrate the editor saved in `folder` on the encodings `enc` of held-out records (never trained on;
    `training.encode_records`), with `distractors` stored beside them, and write the result, with `data`
    (where the records came from), into its `editor.json` atomically; the weights are untouched. Returns the
    calibration."""
    folder = Path(folder)
    calibration = {**calibrate_sentinel(RecipeEditor.load(folder), enc, locality, distractors), "data": data}
    meta = json.loads((folder / EDITOR_META).read_text())
    atomic_write_text(folder / EDITOR_META, json.dumps({**meta, "calibration": calibration}, indent=2))
    return calibration
