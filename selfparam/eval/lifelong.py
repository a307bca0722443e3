"""Lifelong (sequential) knowledge editing: edits arrive one by one; after 1, 10, 100, 1000... of them every
method is scored on the edits so far, as in RECIPE's table 1.

Per method and edit count T:
- reliability / generality: teacher-forced token accuracy of the new target after the edit prompt / its
  rephrase (the papers' metric), and `greedy_reliability` / `greedy_generality`: the share whose greedy
  answer (16 new tokens by default) contains the target (teacher forcing flatters editors);
- locality: teacher-forced agreement with the unedited method on the locality prompt: the target is the
  method's own greedy answer before any edit, so the unedited model scores (about) 1; `greedy_locality`:
  the share of greedy answers unchanged from the unedited method's;
- edit_ms: mean wall time of one `inject` over the first T edits; storage_bytes after T edits;
- for a method that retrieves (`RetrievingMethod`: RAG, RECIPE), where its shortfall lies
  (`retrieval_figures`): how often the edit prompt / its rephrase retrieves its own edit first, how often a
  locality prompt retrieves nothing, and reliability among the prompts that did and did not retrieve their edit.
Beyond T = `eval_sample` the scores are over a seeded sample of the edits so far (all T are injected).
Methods are built with `build_method` and run by the shared harness (`tasks.run_methods`: failure isolation,
timing) and reported by the shared writer (`report.write_report`), so `selfparam eval merge` merges
lifelong reports like any other.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from ..lm import LM
from ..methods.base import Context, Query, Resources, RetrievingMethod
from ..methods.registry import build_method
from . import tasks
from .editing_data import EditRecord
from .report import plots_wanted, summary_dict, write_config, write_report

METRICS = ("reliability", "generality", "locality", "greedy_reliability", "greedy_generality", "greedy_locality")


@dataclass
class LifelongConfig:
    edits: tuple[int, ...] = field(default=(1, 10, 100, 1000), metadata={"help": "edit counts to score at"})
    max_edits: dict[str, int] = field(default_factory=dict, metadata={"help": "per-method cap on the edit count"})
    eval_sample: int = field(default=200, metadata={"help": "score at most this many of the edits so far"})
    gen_sample: int = field(default=100, metadata={"help": "of those, this many also by greedy generation"})
    max_new_tokens: int = field(default=16, metadata={"help": "greedy answer length"})
    latency_queries: int = field(default=16, metadata={"help": "queries timed for answer latency"})
    mmlu_dir: str | None = field(default=None, metadata={"help": "MMLU folder: accuracy before/after the last count"})
    mmlu_questions: int = field(default=50, metadata={"help": "MMLU questions (10 per default subject)"})
    seed: int = 0

    def __post_init__(self):
        self.edits = tuple(sorted(set(int(e) for e in self.edits)))
        if not self.edits or self.edits[0] < 1:
            raise ValueError(f"edits: need positive edit counts, got {self.edits}")
        for name in ("eval_sample", "gen_sample", "max_new_tokens", "latency_queries", "mmlu_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for m, n in self.max_edits.items():
            if n < 1:
                raise ValueError(f"max_edits: {m}={n} must be >= 1")


def contains_answer(answer: str, target: str) -> bool:
    """Whether the greedy `answer` contains `target`, ignoring case and punctuation spacing.

    >>> contains_answer("The mother tongue is English.", "English")
    True
    """
    from .metrics import normalize_answer

    a, t = f" {normalize_answer(answer)} ", f" {normalize_answer(target)} "
    return t.strip() != "" and t in a


def retrieval_figures(reliability: Sequence[float], own_prompt: Sequence[bool], own_rephrase: Sequence[bool],
                      locality_none: Sequence[bool]) -> dict[str, float | None]:
    """Where a retrieving method's reliability is lost, from per-edit figures over the same scored edits:
    `retrieval_reliability` / `retrieval_generality`, the share of edit prompts / rephrases whose first
    retrieval is their own edit; `retrieval_locality`, the share of locality prompts that retrieve nothing;
    `reliability_when_retrieved` / `reliability_when_missed`, mean reliability over the edit prompts that did /
    did not retrieve their own edit (None where there are none).

    >>> retrieval_figures([1.0, 0.5, 0.0], [True, True, False], [True, False, False], [True, True, True])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'retrieval_reliability': 0.666..., 'retrieval_generality': 0.333..., 'retrieval_locality': 1.0,
     'reliability_when_retrieved': 0.75, 'reliability_when_missed': 0.0}
    """
    if not len(reliability) == len(own_prompt) == len(own_rephrase) == len(locality_none):
        raise ValueError("retrieval_figures: the per-edit lists differ in length")
    hit = [r for r, own in zip(reliability, own_prompt) if own]
    miss = [r for r, own in zip(reliability, own_prompt) if not own]
    return {"retrieval_reliability": _mean([float(x) for x in own_prompt]),
            "retrieval_generality": _mean([float(x) for x in own_rephrase]),
            "retrieval_locality": _mean([float(x) for x in locality_none]),
            "reliability_when_retrieved": _mean(hit) if hit else None,
            "reliability_when_missed": _mean(miss) if miss else None}


def _sample(n: int, k: int, seed: int) -> list[int]:
    return list(range(n)) if n <= k else sorted(random.Random(seed + n).sample(range(n), k))


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def mmlu_by_protocol(method: Any, folder: Path, n: int, seed: int) -> float:
    """MMLU accuracy through the method's own `score`: the standard prompt as the question, the gold letter
    as the target, counted right when it is the model's argmax over the whole vocabulary (so a retrieval
    method answers with whatever its retriever adds)."""
    from .general import DEFAULT_SUBJECTS, LETTERS, load_mmlu, mmlu_prompt

    per = max(1, n // len(DEFAULT_SUBJECTS))
    questions = []
    for subject in DEFAULT_SUBJECTS:
        qs = load_mmlu(folder, subject, "test")
        questions += random.Random(seed).sample(qs, min(per, len(qs)))
    scores = method.score([Query(mmlu_prompt(q)) for q in questions], [LETTERS[q.answer] for q in questions])
    return _mean(scores)


def _answers(method: Any, queries: Sequence[Query], max_new_tokens: int) -> list[str]:
    """Greedy answers, one query per call: a query's answer must not depend on which other queries share
    its batch (left padding changes bf16 argmaxes), or the unedited model would seem to drift between
    edit counts. Latency is timed on batches elsewhere."""
    return [method.answer([q], max_new_tokens)[0] for q in queries]


def _scores(method: Any, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
    """Teacher-forced target accuracy, one query per call (see `_answers`)."""
    return [method.score([q], [t])[0] for q, t in zip(queries, targets)]


def _time_answers(fn, queries: Sequence[Query], max_new_tokens: int) -> float:
    started = time.perf_counter()
    fn(queries, max_new_tokens)
    return (time.perf_counter() - started) * 1000 / len(queries)


def edit_counts(name: str, cfg: LifelongConfig, n_records: int) -> list[int]:
    """The edit counts `name` is scored at: those of `cfg.edits` within the records and its cap."""
    counts = [t for t in cfg.edits if t <= min(n_records, cfg.max_edits.get(name, cfg.edits[-1]))]
    if not counts:
        raise ValueError(f"{name}: no edit count of {cfg.edits} fits {n_records} records "
                         f"(cap {cfg.max_edits.get(name)})")
    return counts


def lifelong_body(lm: LM, records: Sequence[EditRecord], cfg: LifelongConfig, progress: bool = True) -> tasks.Body:
    """The lifelong task as a `tasks.run_methods` body: edits injected one by one (timed by the meter), the
    figures at each count in `outcome.extra[str(T)]`, those at the last count as the method's metrics, and
    one record per scored edit and count."""
    from ..generation import generate
    from ..prompts import answer_prompt

    def body(name: str, method: Any, meter: tasks.Meter, out_records: list[dict], outcome: tasks.MethodOutcome,
             log: Any) -> None:
        counts = edit_counts(name, cfg, len(records))
        method.reset()
        samples = {t: _sample(t, cfg.eval_sample, cfg.seed) for t in counts}
        needed = sorted(set().union(*samples.values()))
        # the unedited method's greedy answers on the locality prompts: the locality reference
        loc_queries = {i: Query(records[i].locality_prompt) for i in needed}
        base_answers = dict(zip(needed, _answers(method, [loc_queries[i] for i in needed], cfg.max_new_tokens)))
        latency_q = [Query(records[i].prompt) for i in range(min(cfg.latency_queries, len(records)))]
        plain = lambda qs, k: generate(lm, [answer_prompt(lm.tokenizer, q.question) for q in qs],  # noqa: E731
                                       max_new_tokens=k)
        plain(latency_q, 1), method.answer(latency_q, 1)  # warm-up: the first calls pay one-off allocation costs
        extra = outcome.extra
        extra["latency_ms"] = {"base_model": _time_answers(plain, latency_q, cfg.max_new_tokens),
                               "method_0_edits": _time_answers(method.answer, latency_q, cfg.max_new_tokens)}
        if cfg.mmlu_dir:
            extra["mmlu_before"] = mmlu_by_protocol(method, Path(cfg.mmlu_dir), cfg.mmlu_questions, cfg.seed)
        edit_ms: list[float] = []
        bar = tqdm(total=counts[-1], desc=f"{name}: editing", disable=not progress)
        for t in counts:
            while len(edit_ms) < t:
                rec = records[len(edit_ms)]
                started = time.perf_counter()
                meter.inject(method, [Context(rec.id, rec.fact)])
                edit_ms.append((time.perf_counter() - started) * 1000)
                bar.update(1)
            idx = samples[t]
            gen_idx = idx[:cfg.gen_sample]
            rel = _scores(method, [Query(records[i].prompt) for i in idx], [records[i].target for i in idx])
            gen = _scores(method, [Query(records[i].rephrase) for i in idx], [records[i].target for i in idx])
            loc_targets = [base_answers[i] or records[i].locality_target for i in idx]
            loc = _scores(method, [loc_queries[i] for i in idx], loc_targets)
            ask = lambda qs: [meter.answer(method, [q], cfg.max_new_tokens)[0] for q in qs]  # noqa: E731
            ans_rel = ask([Query(records[i].prompt) for i in gen_idx])
            ans_gen = ask([Query(records[i].rephrase) for i in gen_idx])
            ans_loc = ask([loc_queries[i] for i in gen_idx])
            extra[str(t)] = {
                "reliability": _mean(rel), "generality": _mean(gen), "locality": _mean(loc),
                "greedy_reliability": _mean([contains_answer(a, records[i].target) for a, i in zip(ans_rel, gen_idx)]),
                "greedy_generality": _mean([contains_answer(a, records[i].target) for a, i in zip(ans_gen, gen_idx)]),
                "greedy_locality": _mean([a == base_answers[i] for a, i in zip(ans_loc, gen_idx)]),
                "edit_ms": _mean(edit_ms[:t]), "storage_bytes": method.storage_bytes(),
                "scored": len(idx), "generated": len(gen_idx),
                "examples": [{"id": records[i].id, "target": records[i].target, "answer": a}
                             for a, i in list(zip(ans_rel, gen_idx))[:3]],
            }
            retrieved: dict[int, dict[str, bool]] = {}
            if isinstance(method, RetrievingMethod):
                ids = [records[i].id for i in idx]
                own_rel = [r == e for r, e in zip(method.retrieved_ids([records[i].prompt for i in idx]), ids)]
                own_gen = [r == e for r, e in zip(method.retrieved_ids([records[i].rephrase for i in idx]), ids)]
                loc_none = [r is None for r in method.retrieved_ids([records[i].locality_prompt for i in idx])]
                extra[str(t)].update(retrieval_figures(rel, own_rel, own_gen, loc_none))
                retrieved = {i: {"retrieved_own": a, "retrieved_own_rephrase": b, "locality_retrieved_none": c}
                             for i, a, b, c in zip(idx, own_rel, own_gen, loc_none)}
            greedy = {i: {"greedy_reliability": contains_answer(a, records[i].target),
                          "greedy_generality": contains_answer(b, records[i].target),
                          "greedy_locality": c == base_answers[i]}
                      for a, b, c, i in zip(ans_rel, ans_gen, ans_loc, gen_idx)}
            out_records += [{"method": name, "edits": t, "id": records[i].id, "reliability": r, "generality": g,
                             "locality": lo, **greedy.get(i, {}), **retrieved.get(i, {})}
                            for i, r, g, lo in zip(idx, rel, gen, loc)]
            outcome.metrics = {k: extra[str(t)][k] for k in METRICS}  # the latest count's figures
            bar.set_postfix(T=t, rel=f"{extra[str(t)]['reliability']:.2f}", loc=f"{extra[str(t)]['locality']:.2f}")
        bar.close()
        extra["latency_ms"][f"method_{counts[-1]}_edits"] = _time_answers(method.answer, latency_q, cfg.max_new_tokens)
        if cfg.mmlu_dir:
            extra["mmlu_after"] = mmlu_by_protocol(method, Path(cfg.mmlu_dir), cfg.mmlu_questions, cfg.seed)
            extra["mmlu_after_edits"] = counts[-1]

    return body


def run_lifelong(lm: LM, methods: dict[str, Any], records: Sequence[EditRecord], cfg: LifelongConfig, out: Path,
                 data_name: str = "", command: str = "", resources: Resources | None = None,
                 progress: bool = True) -> dict:
    """Run every method (name -> its config, None for defaults) on the same edits through the shared harness
    (`tasks.run_methods`: a method that raises is reported as failed and the others go on); the report
    (`report.write_report`) is rewritten after each method, so a long run leaves its finished part behind.
    Returns the summary."""
    for name in methods:
        edit_counts(name, cfg, len(records))  # a cap that leaves nothing to score fails before any work
    plots_wanted()
    settings = {"task": "lifelong", "data": data_name, "model": lm.name, **asdict(cfg), "edits": list(cfg.edits)}
    write_config(Path(out), {"settings": settings,
                             "method_configs": {k: asdict(v) for k, v in methods.items() if v is not None}})
    body = lifelong_body(lm, records, cfg, progress)
    extra = {"data": data_name, "model": lm.name, "command": command, "config": settings, "n_edits": len(records)}
    result = tasks.TaskResult("lifelong", [], [], extra)
    for name, config in methods.items():
        part = tasks.run_methods("lifelong", [name], lambda n: build_method(n, lm, config, resources, progress), body,
                                 seed=cfg.seed)
        result.outcomes += part.outcomes
        result.records += part.records
        write_report(Path(out), result, f"Lifelong editing on {data_name}")
    return summary_dict(result)
