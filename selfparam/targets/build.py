"""Building, saving and caching the target set of one context.

`build_target_set` is the one place where a context becomes training targets: generate, filter,
de-duplicate, truncate, add unrelated sentences. `CachedTargetBuilder` wraps it so every method of an
evaluation run (SELF-PARAM, FT(S)) trains on exactly the same set, and reruns reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .corpus import UnrelatedCorpus
from .qa import FilterConfig, select_pairs
from .types import PairGenerator, QAPair, TargetSet

DEFAULT_N_PAIRS = 50  # the paper's setting: 50 pairs x 1 epoch beat 10 pairs x 5 epochs (table 6)
# The paper does not state its mix; half as many unrelated sentences as pairs regularizes without
# doubling the training time (each sentence costs about as much as two pairs). Tune per method.
DEFAULT_UNRELATED_RATIO = 0.5
FORMAT_VERSION = 1


def build_target_set(context: str, generator: PairGenerator, corpus: UnrelatedCorpus | None = None,
                     n_pairs: int = DEFAULT_N_PAIRS, unrelated_ratio: float = DEFAULT_UNRELATED_RATIO,
                     seed: int = 0, min_pairs: int | None = None,
                     filter_config: FilterConfig | None = None) -> TargetSet:
    """The target set of `context`: up to `n_pairs` filtered unique pairs plus unrelated sentences.

    `min_pairs` (default: half of `n_pairs`, at least 1) is how few usable pairs are still acceptable;
    fewer raise a `ValueError` that says how many were generated and why the rest were dropped.
    `round(unrelated_ratio * len(pairs))` unrelated sentences are sampled from `corpus` (none without one).
    """
    if not isinstance(context, str) or not context.strip():
        raise ValueError("context is empty: there is nothing to inject")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    if unrelated_ratio < 0:
        raise ValueError(f"unrelated_ratio must be >= 0, got {unrelated_ratio}")
    min_pairs = max(1, n_pairs // 2) if min_pairs is None else min_pairs
    if not 1 <= min_pairs <= n_pairs:
        raise ValueError(f"min_pairs must be in [1, n_pairs={n_pairs}], got {min_pairs}")
    if unrelated_ratio > 0 and corpus is None:
        raise ValueError(f"unrelated_ratio={unrelated_ratio} needs an unrelated corpus (or pass unrelated_ratio=0)")
    context = context.strip()
    raw = generator.generate(context, n_pairs, seed)
    pairs, dropped = select_pairs(raw, context, filter_config)
    if len(pairs) < min_pairs:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1])) or "none"
        raise ValueError(
            f"only {len(pairs)} usable question-answer pairs (need at least {min_pairs}) from {generator.description}: "
            f"{len(raw)} generated, dropped by reason: {reasons}. Use a stronger generator, allow more rounds, "
            f"relax the filter (FilterConfig) or lower min_pairs"
        )
    if len(pairs) > n_pairs:
        dropped["over_n_pairs"] = len(pairs) - n_pairs
        pairs = pairs[:n_pairs]
    n_unrelated = round(unrelated_ratio * len(pairs))
    unrelated = corpus.sample(n_unrelated, seed) if corpus is not None and n_unrelated else []
    return TargetSet(context=context, pairs=pairs, unrelated=unrelated, generator=generator.description,
                     dropped=dropped)


def answer_in_context(ts: TargetSet, answer: Callable[[list[str], str], list[str]]) -> TargetSet:
    """The same questions, each answered anew by `answer(questions, context)` with the context in view.

    With `answer` the teacher itself (the model being updated, shown the context), every target sentence
    lies on the teacher's own likely path: the KL then teaches the student what the teacher would say,
    rather than matching the teacher's distributions along another model's (possibly wrong) wording.
    Empty answers are dropped and counted.
    """
    answers = answer([p.question for p in ts.pairs], ts.context)
    if len(answers) != len(ts.pairs):
        raise ValueError(f"answer_in_context: {len(answers)} answers for {len(ts.pairs)} questions")
    pairs = [QAPair(p.question, a.strip()) for p, a in zip(ts.pairs, answers) if a.strip()]
    if not pairs:
        raise ValueError(f"the teacher gave an empty answer to all {len(ts.pairs)} questions; keep the "
                         f"generator's answers instead (answers='generator', CLI --answers generator)")
    dropped = dict(ts.dropped)
    if len(pairs) < len(ts.pairs):
        dropped["empty_teacher_answer"] = len(ts.pairs) - len(pairs)
    return TargetSet(context=ts.context, pairs=pairs, unrelated=list(ts.unrelated),
                     generator=f"{ts.generator} + answers by the teacher in context", dropped=dropped)


def target_set_to_dict(ts: TargetSet) -> dict:
    """The JSON form of a target set (also what the knowledge registry stores)."""
    return {"format_version": FORMAT_VERSION, "context": ts.context, "generator": ts.generator,
            "dropped": dict(ts.dropped), "pairs": [asdict(p) for p in ts.pairs], "unrelated": list(ts.unrelated)}


def target_set_from_dict(data: dict, source: str = "(dict)") -> TargetSet:
    """Inverse of `target_set_to_dict`, with errors naming `source` and the bad field."""
    try:
        pairs = [QAPair(str(p["question"]), str(p["answer"])) for p in data["pairs"]]
        return TargetSet(context=str(data["context"]), pairs=pairs, unrelated=[str(s) for s in data["unrelated"]],
                         generator=str(data.get("generator", "")), dropped={str(k): int(v) for k, v in
                                                                              data.get("dropped", {}).items()})
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{source} is not a target set file ({type(e).__name__}: {e})") from None


def save_target_set(ts: TargetSet, path: str | Path) -> Path:
    """Write `ts` as one JSON file, atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(target_set_to_dict(ts), f, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_target_set(path: str | Path) -> TargetSet:
    """Read a file written by `save_target_set`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"target set file {path} does not exist")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"target set file {path} is not valid UTF-8 JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"target set file {path} holds a {type(data).__name__}, not an object")
    return target_set_from_dict(data, str(path))


def context_key(context: str) -> str:
    """The cache key of a context: sha256 of its stripped UTF-8 text."""
    return hashlib.sha256(context.strip().encode("utf-8")).hexdigest()


class CachedTargetBuilder:
    """A `context -> TargetSet` callable that builds each context's set once and keeps it in `folder`.

    Sets are stored as `<sha256 of the context>.json`; a stored set whose context differs from the one
    asked for (a hash collision or a hand-edited file) is an error rather than silently reused.

    >>> builder = CachedTargetBuilder(lambda c: build_target_set(c, generator, corpus), "runs/x/targets")
    """

    def __init__(self, build: Callable[[str], TargetSet], folder: str | Path):
        self.build = build
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def path_for(self, context: str) -> Path:
        return self.folder / f"{context_key(context)}.json"

    def __call__(self, context: str) -> TargetSet:
        path = self.path_for(context)
        if path.is_file():
            ts = load_target_set(path)
            if ts.context.strip() != context.strip():
                raise ValueError(f"cached target set {path} is for a different context; delete it to rebuild")
            self.hits += 1
            return ts
        ts = self.build(context)
        save_target_set(ts, path)
        self.misses += 1
        return ts
