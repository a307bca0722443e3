"""Building, saving and caching the target set of one context.

`build_target_set` is the one place where a context becomes training targets: generate, filter,
de-duplicate, truncate, add unrelated sentences. `CachedTargetBuilder` wraps it so every method of an
evaluation run (SELF-PARAM, FT(S)) trains on exactly the same set, and reruns reuse it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from ..atomic import atomic_write_text
from ..redaction import redact
from .config import DEFAULT_N_PAIRS, DEFAULT_UNRELATED_RATIO
from .corpus import UnrelatedCorpus
from .facts import coverage
from .qa import FilterConfig, select_pairs
from .types import PairGenerator, QAPair, TargetSet, TooFewPairsError

# 2: unrelated sentences drawn per context; pairs re-answered by a teacher keep the generator's answer
FORMAT_VERSION = 2


def build_target_set(context: str, generator: PairGenerator, corpus: UnrelatedCorpus | None = None,
                     n_pairs: int = DEFAULT_N_PAIRS, unrelated_ratio: float = DEFAULT_UNRELATED_RATIO,
                     seed: int = 0, min_pairs: int | None = None,
                     filter_config: FilterConfig | None = None, cycle: bool = False) -> TargetSet:
    """The target set of `context`: up to `n_pairs` filtered unique pairs plus unrelated sentences.

    `min_pairs` (default: half of `n_pairs`, at least 1) is how few usable pairs are still acceptable;
    fewer raise a `TooFewPairsError` that says how many were generated and why the rest were dropped.
    `cycle`: fewer than `n_pairs` usable pairs are repeated in order until there are `n_pairs`, so a
    generator that asks each fact of a short context once still gives the training budget of `n_pairs`
    pairs (the same steps, and the same share of unrelated sentences) that the paper's generator gives.
    `round(unrelated_ratio * len(pairs))` unrelated sentences are sampled from `corpus` (none without one),
    drawn for this context (`unrelated_seed`): a batch or a sequence of contexts never repeats one draw.
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
    for reason, count in getattr(generator, "dropped", {}).items():  # what a generator dropped before returning
        dropped[reason] = dropped.get(reason, 0) + count
    if len(pairs) < min_pairs:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(dropped.items(), key=lambda kv: -kv[1])) or "none"
        raise TooFewPairsError(
            f"only {len(pairs)} usable question-answer pairs (need at least {min_pairs}) from {generator.description}: "
            f"{len(raw)} generated, dropped by reason: {reasons}. Use a stronger generator, allow more rounds, "
            f"relax the filter (FilterConfig) or lower min_pairs"
        )
    if len(pairs) > n_pairs:
        dropped["over_n_pairs"] = len(pairs) - n_pairs
        pairs = pairs[:n_pairs]
    if cycle:
        pairs = [pairs[i % len(pairs)] for i in range(n_pairs)]
    n_unrelated = round(unrelated_ratio * len(pairs))
    unrelated = corpus.sample(n_unrelated, unrelated_seed(seed, context)) if corpus is not None and n_unrelated else []
    return TargetSet(context=context, pairs=pairs, unrelated=unrelated, generator=generator.description,
                     dropped=dropped)


def unrelated_seed(seed: int, context: str) -> int:
    """The seed of one context's unrelated sentences: the run seed and the context's digest together."""
    return int(hashlib.sha256(f"{seed}:{context_key(context)}".encode()).hexdigest()[:16], 16)


def answer_in_context(ts: TargetSet, answer: Callable[[list[str], str], list[str]], require: bool = True) -> TargetSet:
    """The same questions, each answered anew by `answer(questions, context)` with the context in view.

    With `answer` the teacher itself (the model being updated, shown the context), every target sentence
    lies on the teacher's own likely path: the KL then teaches the student what the teacher would say,
    rather than matching the teacher's distributions along another model's (possibly wrong) wording.
    Empty answers are dropped and counted (all of them empty is an error unless `require` is False: extra
    questions a set can do without). Each pair keeps the generator's answer in `generator_answer`.
    """
    answers = answer([p.question for p in ts.pairs], ts.context)
    if len(answers) != len(ts.pairs):
        raise ValueError(f"answer_in_context: {len(answers)} answers for {len(ts.pairs)} questions")
    pairs = [QAPair(p.question, a.strip(), p.generators_answer) for p, a in zip(ts.pairs, answers) if a.strip()]
    if not pairs and require:
        raise ValueError(f"the teacher gave an empty answer to all {len(ts.pairs)} questions; keep the "
                         f"generator's answers instead (answers='generator', CLI --answers generator)")
    dropped = dict(ts.dropped)
    if len(pairs) < len(ts.pairs):
        dropped["empty_teacher_answer"] = len(ts.pairs) - len(pairs)
    return TargetSet(context=ts.context, pairs=pairs, unrelated=list(ts.unrelated),
                     generator=f"{ts.generator} + answers by the teacher in context", dropped=dropped)


def target_set_to_dict(ts: TargetSet) -> dict:
    """The JSON form of a target set (also what the knowledge registry stores); credentials in the
    generator's description (an endpoint URL) are masked."""
    pairs = [{"question": p.question, "answer": p.answer,
              **({"generator_answer": p.generator_answer} if p.generator_answer is not None else {})}
             for p in ts.pairs]
    return {"format_version": FORMAT_VERSION, "context": ts.context, "generator": redact(ts.generator),
            "dropped": dict(ts.dropped), "pairs": pairs, "unrelated": list(ts.unrelated),
            "coverage": coverage(ts.context, list(dict.fromkeys(ts.pairs))).to_dict()}  # derived; cycled pairs once


def target_set_from_dict(data: dict, source: str = "(dict)") -> TargetSet:
    """Inverse of `target_set_to_dict`, with errors naming `source` and the bad field."""
    try:
        pairs = [QAPair(str(p["question"]), str(p["answer"]),
                        None if p.get("generator_answer") is None else str(p["generator_answer"]))
                 for p in data["pairs"]]
        return TargetSet(context=str(data["context"]), pairs=pairs, unrelated=[str(s) for s in data["unrelated"]],
                         generator=str(data.get("generator", "")), dropped={str(k): int(v) for k, v in
                                                                              data.get("dropped", {}).items()})
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{source} is not a target set file ({type(e).__name__}: {e})") from None


def save_target_set(ts: TargetSet, path: str | Path) -> Path:
    """Write `ts` as one JSON file, atomically."""
    return atomic_write_text(path, json.dumps(target_set_to_dict(ts), ensure_ascii=False, indent=1))


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
    asked for (a hash collision or a hand-edited file) is an error rather than silently reused. A context
    whose build ended in `TooFewPairsError` keeps that outcome as `<sha256>.failed.json`, so a run asked
    again fails at once with the same message instead of spending the generation again (delete the file
    to retry, e.g. after changing a setting that is not in the key). `key`
    (what the sets depend on, see `targets.builder.cache_key`) is kept as `key.json`: a folder written
    under another key (another model above all) is refused with a message naming the difference.

    >>> builder = CachedTargetBuilder(lambda c: build_target_set(c, generator, corpus), "runs/x/targets")
    """

    def __init__(self, build: Callable[[str], TargetSet], folder: str | Path, key: dict | None = None):
        self.build = build
        self.folder = Path(folder)
        self.key = json.loads(json.dumps(redact(key), default=str)) if key is not None else None
        self.hits = 0
        self.misses = 0
        self._checked = False

    def check_key(self) -> None:
        """Refuse a folder whose sets were built under another key; write the key into a new folder."""
        if self._checked or self.key is None:
            return
        stored_path = self.folder / "key.json"
        if stored_path.is_file():
            stored = json.loads(stored_path.read_text(encoding="utf-8"))
            if stored.get("model") != self.key.get("model"):
                raise ValueError(f"the target sets cached in {self.folder} were built by model {stored.get('model')}, "
                                 f"not {self.key.get('model')}: "
                                 f"use another targets folder (--targets-dir) or delete it")
            different = sorted(k for k in set(stored) | set(self.key) if stored.get(k) != self.key.get(k))
            if different:
                raise ValueError(f"the target sets cached in {self.folder} were built with other "
                                 f"{', '.join(different)}: use another targets folder or delete it")
        else:
            atomic_write_text(stored_path, json.dumps(self.key, indent=1, sort_keys=True))
        self._checked = True

    def path_for(self, context: str) -> Path:
        return self.folder / f"{context_key(context)}.json"

    def failure_path_for(self, context: str) -> Path:
        return self.folder / f"{context_key(context)}.failed.json"

    def __call__(self, context: str) -> TargetSet:
        self.check_key()
        path, failed = self.path_for(context), self.failure_path_for(context)
        if path.is_file():
            ts = load_target_set(path)
            if ts.context.strip() != context.strip():
                raise ValueError(f"cached target set {path} is for a different context; delete it to rebuild")
            self.hits += 1
            return ts
        if failed.is_file():
            self.hits += 1
            raise TooFewPairsError(f"{_stored_failure(failed, context)} (the outcome cached in {failed}: "
                                   f"delete it to generate again)")
        try:
            ts = self.build(context)
        except TooFewPairsError as e:
            atomic_write_text(failed, json.dumps({"context_sha256": context_key(context), "error": str(e)}, indent=1))
            self.misses += 1
            raise
        save_target_set(ts, path)
        self.misses += 1
        return ts


def _stored_failure(path: Path, context: str) -> str:
    """The message of a cached build failure, checked to be this context's."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        stored, message = data["context_sha256"], str(data["error"])
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: not a cached build failure written by selfparam; delete it") from None
    if stored != context_key(context):
        raise ValueError(f"cached build failure {path} is for a different context; delete it")
    return message
