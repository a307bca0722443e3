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

More stored keys put more of them near an unrelated prompt, so the margin that keeps the locality share
shrinks as the repository grows (docs/recipe.md: 0.052 with 500 facts stored, -0.028 with 8,000). With
`sizes`, the margin is calibrated at several repository sizes (the held-out facts plus the first
N - len(held_out) distractors) into a `schedule`, and `Recipe` uses `margin_at(schedule, edits stored)`:

    calibration = calibrate_sentinel(editor, held_out_enc, 0.98, distractors, sizes=[500, 1000, 2500, 8000])
    margin_at(calibration["schedule"], 4000)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch

from ...atomic import atomic_write_text
from .editor import EDITOR_META, RecipeEditor
from .repository import sentinel_retrieve


def _stored_keys(editor: RecipeEditor, enc: dict[str, torch.Tensor], distractors: torch.Tensor | None) -> torch.Tensor:
    """Keys of `enc`'s facts (rows 0..N-1, so a query's own fact keeps its index) and of the distractor facts
    after them: other stored edits, as a repository of that size holds."""
    facts = enc["fact"] if distractors is None else torch.cat([enc["fact"], distractors])
    return editor.keys(facts)


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


def check_sizes(sizes: Sequence[int], records: int, available: int) -> list[int]:
    """`sizes` (repository sizes to calibrate at) sorted, or a ValueError naming the bad one: each must be at
    least 1 and at most the `records` held-out facts plus `available` distractors, and appear once (a size below
    `records` stores that many of the held-out facts: `calibrate_sentinel`).

    >>> check_sizes([2000, 100, 500], records=500, available=7500)
    [100, 500, 2000]
    """
    if isinstance(sizes, (str, bytes)) or not sizes:
        raise ValueError(f"sizes: give at least one repository size, got {sizes!r}")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"sizes: repository sizes must be integers, got {n!r}")
        if not 1 <= n <= records + available:
            raise ValueError(f"sizes: {n} facts stored must be in 1..{records + available} (some or all of the "
                             f"{records} held-out facts, plus up to {available} distractors)")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes: each size once, got {list(sizes)}")
    return sorted(sizes)


def margin_at(schedule: Sequence[dict], n_stored: int) -> float:
    """The sentinel margin for a repository of `n_stored` edits from a calibration `schedule` (entries
    {"stored": N, "sentinel_margin": m} with N increasing): piecewise linear in log(N) between the calibrated
    sizes, the first margin below the first size and the last above the last (no extrapolation).

    >>> schedule = [{"stored": 500, "sentinel_margin": 0.05}, {"stored": 5000, "sentinel_margin": -0.01}]
    >>> margin_at(schedule, 0), margin_at(schedule, 500), margin_at(schedule, 5000), margin_at(schedule, 9000)
    (0.05, 0.05, -0.01, -0.01)
    >>> round(margin_at(schedule, 1581), 4)   # about halfway in log size (sqrt(500 * 5000) = 1581.1)
    0.02
    """
    if not schedule:
        raise ValueError("sentinel schedule: empty")
    points = []
    for entry in schedule:
        n, m = entry.get("stored"), entry.get("sentinel_margin")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or isinstance(m, bool) \
                or not isinstance(m, (int, float)):
            raise ValueError(f"sentinel schedule: each entry needs a positive int 'stored' and a number "
                             f"'sentinel_margin', got {entry!r}")
        if points and n <= points[-1][0]:
            raise ValueError(f"sentinel schedule: sizes must increase, got {n} after {points[-1][0]}")
        points.append((n, float(m)))
    if n_stored <= points[0][0]:
        return points[0][1]
    for (n0, m0), (n1, m1) in zip(points, points[1:]):
        if n_stored < n1:  # a calibrated size itself gets its margin exactly (t = 0 on the next segment)
            t = (math.log(n_stored) - math.log(n0)) / (math.log(n1) - math.log(n0))
            return m0 + t * (m1 - m0)
    return points[-1][1]


def first_facts(enc: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """`enc` with only its first `n` records' facts and fact queries (their own-fact retrieval is what is
    measured), every record's locality prompt kept: a repository of `n` held-out facts, asked all the unrelated
    prompts."""
    return {k: (v if k == "locality_prompt" else v[:n]) for k, v in enc.items()}


def _single_size(editor: RecipeEditor, enc: dict[str, torch.Tensor], locality: float,
                 distractors: torch.Tensor | None) -> dict:
    margin = margin_for_locality(locality_gaps(editor, enc, distractors), locality)
    n_distractors = 0 if distractors is None else int(distractors.shape[0])
    return {"sentinel_margin": margin, "locality_target": locality, "records": int(enc["fact"].shape[0]),
            "distractors": n_distractors, "stored": int(enc["fact"].shape[0]) + n_distractors,
            "retrieval": retrieval_accuracy(editor, enc, margin, distractors),
            "retrieval_without_margin": retrieval_accuracy(editor, enc, 0.0, distractors)}


def calibrate_sentinel(editor: RecipeEditor, enc: dict[str, torch.Tensor], locality: float = 0.98,
                       distractors: torch.Tensor | None = None, sizes: Sequence[int] | None = None) -> dict:
    """The margin for `locality` on held-out records, with the retrieval it gives and the paper's rule's.

    `distractors` (encoder outputs of other facts, e.g. training records) are stored beside the held-out
    facts, so the margin holds the locality share in a repository of that size: more stored keys put more
    of them near an unrelated prompt, and a margin calibrated on a small repository retrieves too often in
    a large one (docs/recipe.md).

    With `sizes` (e.g. [100, 500, 1000, 2500, 8000]), the margin is calibrated at each repository size N, with the
    held-out facts and the first N - len(held-out) distractors stored, or, for N below the held-out count, the
    first N held-out facts alone, every held-out locality prompt still asked (a size above held-out +
    distractors is a ValueError), into `schedule`: [{"stored": N, "sentinel_margin": m,
    "raw_sentinel_margin": ..., "retrieval": {...}, "retrieval_without_margin": {...}}, ...] sorted by N, for
    `margin_at`. A margin can only shrink as keys are added (a prompt's best key only gets closer), so the
    margins are made non-increasing in N by a running minimum: the locality gaps are sampled on a few
    hundred prompts, and that noise could otherwise make a larger repository more permissive than a smaller
    one. Each entry keeps the raw value, and its retrieval is measured at the margin used. The top-level
    fields are the largest size's, so a reader that knows no schedule uses the most conservative margin."""
    if sizes is None:
        return _single_size(editor, enc, locality, distractors)
    records = int(enc["fact"].shape[0])
    available = 0 if distractors is None else int(distractors.shape[0])
    schedule, floor = [], math.inf
    for n in check_sizes(sizes, records, available):
        extra = distractors[:n - records] if n > records else None
        stored = enc if n >= records else first_facts(enc, n)
        raw = margin_for_locality(locality_gaps(editor, stored, extra), locality)
        floor = min(floor, raw)
        schedule.append({"stored": n, "sentinel_margin": floor, "raw_sentinel_margin": raw,
                         "retrieval": retrieval_accuracy(editor, stored, floor, extra),
                         "retrieval_without_margin": retrieval_accuracy(editor, stored, 0.0, extra)})
    last = schedule[-1]
    return {"sentinel_margin": last["sentinel_margin"], "locality_target": locality, "records": records,
            "distractors": last["stored"] - records, "stored": last["stored"], "retrieval": last["retrieval"],
            "retrieval_without_margin": last["retrieval_without_margin"], "schedule": schedule}


def calibrate_editor(folder: str | Path, enc: dict[str, torch.Tensor], locality: float = 0.98,
                     data: dict | None = None, distractors: torch.Tensor | None = None,
                     sizes: Sequence[int] | None = None) -> dict:
    """Calibrate the editor saved in `folder` on the encodings `enc` of held-out records (never trained on;
    `training.encode_records`), with `distractors` stored beside them (at each of `sizes`, if given:
    `calibrate_sentinel`), and write the result, with `data` (where the records came from), into its
    `editor.json` atomically; the weights are untouched, and a bad size writes nothing. Returns the
    calibration."""
    folder = Path(folder)
    calibration = {**calibrate_sentinel(RecipeEditor.load(folder), enc, locality, distractors, sizes), "data": data}
    meta = json.loads((folder / EDITOR_META).read_text())
    atomic_write_text(folder / EDITOR_META, json.dumps({**meta, "calibration": calibration}, indent=2))
    return calibration
