"""The papers' four tasks, run the same way for every method through the `KnowledgeMethod` protocol.

A task takes method names and a `build(name) -> method` callable (the CLI passes `build_method` on a
loaded model; tests pass a fake), so nothing here branches on a method's name. Methods run one after the
other on the same data; one that raises (while being built, injecting or answering) is reported as
failed with its error and the run goes on with the others. Every method is `reset()` when its turn ends,
so the next one starts from the unchanged base model.

Each unit of work (a context, a batch group, a sequential step, a dialogue turn) is logged as it ends
(`progress.RunLog`), so a run interrupted part-way resumes where it stopped.

Protocol use per task:
- single: per context, reset, inject([c]), answer that context's questions.
- batch: per group of K contexts, reset, inject(group) as one update, answer all their questions.
- sequential: reset once, then for t = 1..T inject([c_t]) and answer the questions of contexts 1..t,
  giving the retention matrix F1[t][i] (row t: after step t; column i: context i <= t) and the same
  matrix of the gold answers' mean log-probability (`retention_logprob`, nats per token); with
  `after_every` N, general ability also after every N-th step (`general_by_step`).
- recommendation: per dialogue turn, reset, inject([dialogue so far]), ask for movies without it
  (Base(C+Q) gets the dialogue in the prompt), Recall@k under r1-r4.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from tqdm.auto import tqdm

from ..methods.base import Context, KnowledgeMethod, Query
from .loaders import ContextQA, RecData, RecTurn
from .metrics import TitleMatch, best_em, best_f1, mean, nearest_title, parse_titles, recall_at_k
from .progress import RunLog

Builder = Callable[[str], KnowledgeMethod]
# called after a method's last injection, before its reset: extra figures for the summary (general ability)
AfterHook = Callable[[str, KnowledgeMethod], dict[str, Any]]

REC_QUESTION = ("In the conversation between the user and the movie recommender system, which movies should "
                "the system recommend to the user next? Reply with 5 movie titles, one per line.")
REC_KS = (1, 5)


class NotRunYet(RuntimeError):
    """Work a report-only run was asked for that its run log does not hold: the method is `partial`."""


def measured_only(name: str, method: Any) -> dict[str, Any]:
    """The `after` hook of a report-only run: general ability is measured with the model, so a figure the run
    log does not hold ends the method as `partial` (logged figures are taken from the log)."""
    raise NotRunYet("general ability not measured yet: the figures cover the steps in the run log")


class LoggedOnly:
    """Stands in for every method of a report-only run (`evaluate(report_only=True)`): the units in the run
    log are taken from it as usual (a sequential run's logged steps are not injected again), and the first
    unit it does not hold ends the method as `partial`."""

    def __init__(self, name: str):
        self.name = name

    def inject(self, contexts: Sequence[Context]) -> None:
        raise NotRunYet("the rest is not run yet: the figures cover the units in the run log (the same command "
                        "without --report-only goes on)")

    answer = score = logprob = save = load = inject  # none of them can be answered from the log

    def reset(self) -> None:
        pass

    def storage_bytes(self) -> int:
        return 0


@dataclass
class MethodOutcome:
    """One method's row of a report: its scores, costs, and whether it finished."""

    name: str
    status: str = "ok"  # "ok", "failed", or "partial" (a report-only run: only part of it is in the run log)
    error: str | None = None
    traceback: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    storage_bytes: int | None = None  # the most it kept beside the base model at inference
    inject_seconds: float | None = None  # mean wall seconds per inject() call
    answer_latency: float | None = None  # mean wall seconds per question answered
    n_injections: int = 0
    n_questions: int = 0
    retention: list[list[float | None]] | None = None  # sequential only: F1[t][i], None above the diagonal
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskResult:
    """Everything a report needs: per-method outcomes and per-example records."""

    task: str
    outcomes: list[MethodOutcome]
    records: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    def outcome(self, name: str) -> MethodOutcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(f"no method {name!r} in this result; have {[o.name for o in self.outcomes]}")


class Meter:
    """Times injections, answers and the teacher-forced log-prob pass (apart, so the answer latency stays
    what answering costs) and keeps the largest storage seen, for one method. A method that trains says
    how each update went (`last_stats`: steps, seconds, losses, the loss left per kind of example); those
    are kept in order in `updates`, for the run log."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.inject_time = 0.0
        self.n_injections = 0
        self.answer_time = 0.0
        self.n_questions = 0
        self.logprob_time = 0.0
        self.storage = 0

    def inject(self, method: KnowledgeMethod, contexts: Sequence[Context]) -> None:
        start = time.perf_counter()
        method.inject(list(contexts))
        self.inject_time += time.perf_counter() - start
        self.n_injections += 1
        stats = getattr(method, "last_stats", None)  # weight methods only; None before their first update
        if stats is not None:
            self.updates.append(stats.to_dict())
        self.storage = max(self.storage, int(method.storage_bytes()))

    def answer(self, method: KnowledgeMethod, queries: Sequence[Query], max_new_tokens: int) -> list[str]:
        start = time.perf_counter()
        answers = method.answer(list(queries), max_new_tokens=max_new_tokens)
        self.answer_time += time.perf_counter() - start
        self.n_questions += len(queries)
        if len(answers) != len(queries):
            raise RuntimeError(f"answer() returned {len(answers)} answers for {len(queries)} questions")
        return answers

    def logprob(self, method: KnowledgeMethod, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        start = time.perf_counter()
        values = method.logprob(list(queries), list(targets))
        self.logprob_time += time.perf_counter() - start
        if len(values) != len(queries):
            raise RuntimeError(f"logprob() returned {len(values)} values for {len(queries)} targets")
        return values

    def costs(self) -> dict[str, float]:
        return {"inject_time": self.inject_time, "n_injections": self.n_injections, "answer_time": self.answer_time,
                "n_questions": self.n_questions, "logprob_time": self.logprob_time, "storage": self.storage}

    def add(self, costs: dict[str, float]) -> None:
        """Add the costs of a unit run earlier (a resumed run reports the whole run's costs)."""
        self.inject_time += costs["inject_time"]
        self.n_injections += int(costs["n_injections"])
        self.answer_time += costs["answer_time"]
        self.n_questions += int(costs["n_questions"])
        self.logprob_time += costs.get("logprob_time", 0.0)  # absent from units logged before it was measured
        self.storage = max(self.storage, int(costs["storage"]))

    def fill(self, outcome: MethodOutcome) -> None:
        outcome.storage_bytes = self.storage
        outcome.inject_seconds = self.inject_time / self.n_injections if self.n_injections else None
        outcome.answer_latency = self.answer_time / self.n_questions if self.n_questions else None
        outcome.n_injections, outcome.n_questions = self.n_injections, self.n_questions
        if self.logprob_time and self.n_questions:
            outcome.extra["logprob_seconds"] = self.logprob_time / self.n_questions


Body = Callable[[str, KnowledgeMethod, Meter, list[dict], MethodOutcome, RunLog], None]


def run_methods(task: str, names: Sequence[str], build: Builder, body: Body, seed: int = 0,
                after: AfterHook | None = None, log: RunLog | None = None) -> TaskResult:
    """Run `body` once per method, isolating failures: a failed method keeps its partial records and error.

    `log` holds the units finished by an earlier, interrupted run of the same settings: a method it lists
    as finished is restored without being built; the others skip (or replay) their logged units."""
    log = log if log is not None else RunLog()
    outcomes, records = [], []
    for name in names:
        done = log.finished(name)
        if done is not None:
            outcomes.append(MethodOutcome(**done["outcome"]))
            records.extend(log.records(name))
            continue
        outcome, meter, method_records = MethodOutcome(name), Meter(), []
        method = None
        torch.manual_seed(seed)  # each method sees the same random stream (LoRA init, dropout, sampling)
        try:
            method = build(name)
            body(name, method, meter, method_records, outcome, log)
            if after is not None:
                outcome.extra.update(after(name, method))
        except NotRunYet as e:  # a report-only run: what the log holds is reported, marked partial
            outcome.status, outcome.error = "partial", str(e)
        except Exception as e:  # noqa: BLE001 - reported per method, the run goes on
            outcome.status = "failed"
            outcome.error = f"{type(e).__name__}: {e}"
            outcome.traceback = traceback.format_exc(limit=8)
            tqdm.write(f"[{task}] method {name!r} failed: {outcome.error}")
        finally:
            if method is not None:
                try:
                    method.reset()
                except Exception as e:  # noqa: BLE001
                    tqdm.write(f"[{task}] method {name!r} could not be reset: {type(e).__name__}: {e}")
        meter.fill(outcome)
        if outcome.status == "ok":
            log.finish(outcome)
        outcomes.append(outcome)
        records.extend(method_records)
    return TaskResult(task, outcomes, records)


def _queries(items: Iterable[ContextQA]) -> tuple[list[Query], list[tuple[ContextQA, int]]]:
    """All questions of `items` (with their gold context) and where each came from."""
    queries, origin = [], []
    for item in items:
        for j, qa in enumerate(item.questions):
            queries.append(Query(qa.question, item.context.text))
            origin.append((item, j))
    return queries, origin


def _gold_logprobs(method: KnowledgeMethod, meter: Meter, queries: Sequence[Query],
                   origin: Sequence[tuple[ContextQA, int]]) -> list[float]:
    """Per question, the mean per-token log-probability of its best gold answer (the highest over its golds),
    asked the way the method answers; every (question, gold) pair goes in one call."""
    golds = [item.questions[j].answers for item, j in origin]
    flat = meter.logprob(method, [q for q, gs in zip(queries, golds) for _ in gs], [g for gs in golds for g in gs])
    out, at = [], 0
    for gs in golds:
        out.append(max(flat[at:at + len(gs)]))
        at += len(gs)
    return out


def _score(name: str, answers: Sequence[str], logprobs: Sequence[float], origin: Sequence[tuple[ContextQA, int]],
           step: int | None, records: list[dict]) -> None:
    for answer, logprob, (item, j) in zip(answers, logprobs, origin):
        qa = item.questions[j]
        records.append({"method": name, "step": step, "context_id": item.context.id, "question": qa.question,
                        "golds": list(qa.answers), "prediction": answer,
                        "f1": best_f1(answer, qa.answers), "em": best_em(answer, qa.answers), "logprob": logprob})


def _ask(name: str, method: KnowledgeMethod, meter: Meter, items: Iterable[ContextQA], max_new_tokens: int,
         step: int | None, records: list[dict]) -> None:
    """Ask every item's questions and score them: one call per context, so a context's questions are
    always batched (padded) together and alone, in every task and at every step (batched bf16 greedy
    decoding depends on padding; a question must not get another answer because its neighbours changed).
    Each question also gets the teacher-forced log-probability of its gold answers (one call per context
    too): a continuous figure that does not depend on how the model phrases its answers."""
    for item in items:
        queries, origin = _queries([item])
        answers = meter.answer(method, queries, max_new_tokens)
        _score(name, answers, _gold_logprobs(method, meter, queries, origin), origin, step, records)


def _qa_metrics(records: Sequence[dict]) -> dict[str, float | None]:
    return {"f1": mean(r["f1"] for r in records), "em": mean(r["em"] for r in records)}


def _progress(items: Sequence, name: str, task: str, progress: bool):
    return tqdm(items, desc=f"{task} {name}", unit="ctx", disable=not progress, leave=False)


def run_single(names: Sequence[str], build: Builder, contexts: Sequence[ContextQA], max_new_tokens: int = 32,
               seed: int = 0, progress: bool = True, after: AfterHook | None = None,
               log: RunLog | None = None) -> TaskResult:
    """Single-context injection: each context injected alone into a fresh model, then its questions."""

    def body(name, method, meter, records, outcome, log):
        for item in _progress(contexts, name, "single", progress):
            if log.replay(name, item.context.id, meter, records):
                continue
            with log.unit(name, item.context.id, meter, records):
                method.reset()
                meter.inject(method, [item.context])
                _ask(name, method, meter, [item], max_new_tokens, None, records)
        outcome.metrics = _qa_metrics(records)

    result = run_methods("single", names, build, body, seed, after, log)
    result.extra["n_contexts"] = len(contexts)
    return result


def run_batch(names: Sequence[str], build: Builder, contexts: Sequence[ContextQA], k: int,
              max_new_tokens: int = 32, seed: int = 0, progress: bool = True,
              after: AfterHook | None = None, log: RunLog | None = None) -> TaskResult:
    """Batch injection: the contexts in groups of `k`, each group one update on a fresh model."""
    if k < 1 or len(contexts) % k:
        raise ValueError(f"batch: k={k} must be >= 1 and divide the number of contexts ({len(contexts)})")
    groups = [list(contexts[i:i + k]) for i in range(0, len(contexts), k)]

    def body(name, method, meter, records, outcome, log):
        for g, group in enumerate(_progress(groups, name, f"batch(K={k})", progress)):
            if log.replay(name, f"group {g}", meter, records):
                continue
            with log.unit(name, f"group {g}", meter, records):
                method.reset()
                meter.inject(method, [item.context for item in group])
                _ask(name, method, meter, group, max_new_tokens, g, records)
        outcome.metrics = _qa_metrics(records)

    result = run_methods("batch", names, build, body, seed, after, log)
    result.extra.update(n_contexts=len(contexts), k=k)
    return result


def retention_summary(matrix: Sequence[Sequence[float | None]]) -> dict[str, Any]:
    """Averages of a retention matrix F1[t][i] (defined for i <= t).

    - `f1_final`: mean over all contexts after the last step (what the model keeps in the end);
    - `f1_diagonal`: mean of F1[t][t], each context right after its own injection (efficacy);
    - `f1_first`: the first context after each step (how the oldest knowledge decays);
    - `curve`: per step t, the mean over contexts 1..t (F1 versus number of injections);
    - `f1_all`: the mean of every defined cell.
    """
    rows = [[v for v in row[: t + 1]] for t, row in enumerate(matrix)]
    return {
        "f1_final": mean(rows[-1]) if rows else None,
        "f1_diagonal": mean(row[t] for t, row in enumerate(rows)),
        "f1_all": mean(v for row in rows for v in row),
        "curve": [mean(row) for row in rows],
        "first_context": [row[0] for row in rows],
    }


def retention_from_records(records: Sequence[dict], key: str = "f1", size: int | None = None
                           ) -> list[list[float | None]]:
    """The retention matrix of one method's sequential records: cell [t][i] is the mean `key` of context i's
    questions asked after step t, the contexts in the order they were injected (the step each was first asked
    at). Records without `key` are left out; a cell with none stays None (so does every cell above the
    diagonal). `size`: a `size` x `size` matrix however few steps the records hold (a run cut short)."""
    first: dict[str, int] = {}
    for r in records:
        first[r["context_id"]] = min(r["step"], first.get(r["context_id"], r["step"]))
    column = {c: i for i, c in enumerate(sorted(first, key=first.__getitem__))}
    cells: dict[tuple[int, int], list[float]] = {}
    for r in records:
        if r.get(key) is not None:
            cells.setdefault((r["step"], column[r["context_id"]]), []).append(r[key])
    steps = max((r["step"] for r in records), default=-1) + 1
    rows, columns = (size, size) if size is not None else (steps, len(column))
    return [[mean(cells.get((t, i), [])) for i in range(columns)] for t in range(rows)]


# the figures of `general_by_step` that the summary table and the plot show, with their labels
GENERAL_FIGURES = (("wikitext_ppl", "WikiText-2 perplexity"), ("mmlu_acc", "MMLU accuracy"))


def run_sequential(names: Sequence[str], build: Builder, contexts: Sequence[ContextQA], max_new_tokens: int = 32,
                   seed: int = 0, progress: bool = True, after: AfterHook | None = None,
                   log: RunLog | None = None, after_every: int = 0) -> TaskResult:
    """Sequential injection of T contexts with the retention matrix (T x T, lower triangle filled).
    A resumed run replays the logged steps' injections (unmetered) and asks only the remaining steps.
    A method with `static_answers` (its answers never depend on what was injected: Base(Q), Base(C+Q)) is
    asked only the new context's questions at each step; its earlier records are carried over.

    `after_every` N >= 1: `after` (general ability) is measured also after every N-th step and after the last,
    inside that step's logged unit, so a resumed run takes a replayed step's figures from the run log and
    measures nothing again. They are kept per method in `extra["general_by_step"]`, keyed by the number of
    contexts injected ("2", "4", "5" for N=2, T=5); the last step's figures are the final `after` figures
    too (not measured twice). 0: `after` only once, after the last step, as before."""
    if after_every < 0:
        raise ValueError(f"after_every must be >= 1 (0: off), got {after_every}")
    if after_every and after is None:
        raise ValueError("after_every: needs an `after` hook to measure")
    t_total = len(contexts)
    last: dict[str, dict[str, Any]] = {}  # per method, the last step's figures: the final `after` reuses them

    def measured_after(t: int) -> bool:
        return bool(after_every) and ((t + 1) % after_every == 0 or t == t_total - 1)

    def body(name, method, meter, records, outcome, log):
        def matrices() -> None:  # after every step, so the rows so far stay visible if a later step fails
            outcome.retention = retention_from_records(records, "f1", size=t_total)
            outcome.extra["retention_logprob"] = retention_from_records(records, "logprob", size=t_total)
            steps = max((r["step"] for r in records), default=-1) + 1  # the curve so far, too
            if steps:
                summary = retention_summary(outcome.retention[:steps])
                outcome.extra.update(curve=summary["curve"], first_context=summary["first_context"])

        matrices()
        by_step: dict[str, dict[str, Any]] = {}
        method.reset()
        for t, item in enumerate(_progress(contexts, name, "sequential", progress)):
            figures = None
            if log.replay(name, f"step {t}", meter, records):
                if not isinstance(method, LoggedOnly):  # a report-only run has no model to inject into
                    method.inject([item.context])  # the weights are not saved between steps: inject again
                figures = log.figures(name, f"step {t}").get("after")  # absent from logs written without it
            else:
                with log.unit(name, f"step {t}", meter, records) as logged:
                    meter.inject(method, [item.context])
                    if getattr(method, "static_answers", False):  # the earlier answers cannot have changed
                        records += [{**r, "step": t} for r in records if r["step"] == t - 1]
                        _ask(name, method, meter, [item], max_new_tokens, t, records)
                    else:
                        _ask(name, method, meter, contexts[: t + 1], max_new_tokens, t, records)
                    if measured_after(t):
                        figures = logged["after"] = after(name, method)
            matrices()
            if measured_after(t) and figures is not None:
                by_step[str(t + 1)] = figures
                outcome.extra["general_by_step"] = by_step  # as it grows: a later failure keeps the steps so far
                if t == t_total - 1:
                    last[name] = figures
        final = [r for r in records if r["step"] == t_total - 1]
        summary = retention_summary(outcome.retention)
        outcome.metrics = {**_qa_metrics(final), "f1_diagonal": summary["f1_diagonal"],
                           "f1_all": summary["f1_all"]}  # the curve: `matrices()`, after every step

    def after_last(name: str, method: KnowledgeMethod) -> dict[str, Any]:
        return last.pop(name) if name in last else after(name, method)

    result = run_methods("sequential", names, build, body, seed, after_last if after_every else after, log)
    result.extra["n_contexts"] = t_total
    return result


def run_recommendation(names: Sequence[str], build: Builder, data: RecData, turns: Sequence[RecTurn],
                       max_new_tokens: int = 64, seed: int = 0, progress: bool = True, threshold: int = 2,
                       question: str = REC_QUESTION, after: AfterHook | None = None,
                       log: RunLog | None = None) -> TaskResult:
    """Conversational recommendation: inject the dialogue so far, ask for movies without it. Each turn is
    scored by recall of the gold titles among the answer's (the paper's r1-r4) and by the mean per-token
    log-probability of the best gold title as the answer (teacher-forced, `logprob`), a continuous figure for a
    model too small to list titles."""
    matched_cache: dict[str, Any] = {}

    def match(title: str):
        if title not in matched_cache:
            matched_cache[title] = nearest_title(title, data.catalogue)
        return matched_cache[title]

    def body(name, method, meter, records, outcome, log):
        for i, turn in enumerate(_progress(turns, name, f"recommendation({data.name})", progress)):
            key = f"turn {i}: {turn.id}"
            if log.replay(name, key, meter, records):
                continue
            with log.unit(name, key, meter, records):
                method.reset()
                meter.inject(method, [Context(turn.id, turn.dialogue)])
                query = Query(question, turn.dialogue)
                answer = meter.answer(method, [query], max_new_tokens)[0]
                matches = [match(t) for t in parse_titles(answer)]
                golds = list(turn.gold)  # the best gold title's log-probability as the answer (see `_gold_logprobs`)
                logprob = max(meter.logprob(method, [query] * len(golds), golds)) if golds else None
                records.append({"method": name, "turn_id": turn.id, "prediction": answer,
                                "titles": [{"predicted": m.predicted, "nearest": m.nearest, "distance": m.distance}
                                           for m in matches],
                                "gold": golds, "seen": list(turn.seen), "logprob": logprob})
        # from the records, so turns taken from the run log count the same as turns run now
        per_turn = [([TitleMatch(**m) for m in r["titles"]], r["gold"], r["seen"]) for r in records]
        metrics: dict[str, float | None] = {}
        for k in REC_KS:
            scores = recall_at_k([p[0] for p in per_turn], [p[1] for p in per_turn], [p[2] for p in per_turn],
                                 k=k, threshold=threshold)
            for filt, value in scores.items():
                metrics[filt if k == 1 else f"{filt}@{k}"] = value
        outcome.metrics = metrics

    result = run_methods("recommendation", names, build, body, seed, after, log)
    result.extra.update(dataset=data.name, n_turns=len(turns), catalogue_size=len(data.catalogue),
                        question=question, edit_distance_threshold=threshold)
    return result
