"""Conflicting updates: does a later context that contradicts an earlier one win?

From each CounterFact record two fact sentences are made, one with the true object and one with
`target_new` ("The mother tongue of Danielle Darrieux is French." / "... is English."). For each order
(true then new, new then true) a fresh method is given the earlier sentence, asked the record's prompt and
rephrase, given the later sentence as a second update, and asked again. Each answer after the second
update is one of:

- `later_wins`: it carries the later object and not the earlier one;
- `earlier_kept`: it carries the earlier object and not the later one;
- `both`: it carries both (a retriever that shows both facts may say either);
- `neither`: it carries neither.

The four shares sum to 1. `first_learned` is the share of answers after the first update carrying the
earlier object: a method that never learned the first fact cannot show whether the second one overrides
it, so `later_wins_if_learned` counts `later_wins` among those answers only. "Carries" is `contains_answer`
(normalised containment), as in the lifelong evaluation.

A method whose model can read a context (`ReadsContext`) is also asked, between the two updates, with the
later sentence in the prompt: what it says then (`reading_outcome`) is, for SELF-PARAM, what the teacher of
the contradicting update says, what that update distils. `reading_later_wins` is that share,
`later_wins_minus_reading` the paired difference (the same answers resampled together), and
`later_wins_if_read` counts `later_wins` among the answers whose reading carried the later fact alone.

    >>> classify("It is English.", earlier="French", later="English")
    'later_wins'
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..jsonl import read_json, read_jsonl
from ..methods.base import Context, Query, ReadsContext
from ..provenance import provenance
from .editing_data import counterfact_record
from .lifelong import contains_answer
from .stats import mean_ci, paired_difference

OUTCOMES = ("later_wins", "earlier_kept", "both", "neither")
ORDERS = ("true_then_new", "new_then_true")


@dataclass(frozen=True)
class FactCase:
    """A CounterFact record as the two facts it contradicts itself with, and the questions about them."""

    id: str
    prompt: str
    subject: str
    true_object: str
    new_object: str
    rephrase: str
    locality_prompt: str
    locality_target: str

    def sentence(self, obj: str) -> str:
        """The fact as a context: "The mother tongue of Danielle Darrieux is French."."""
        return f"{self.prompt.strip()} {obj.strip()}."

    def questions(self) -> list[str]:
        return [self.prompt, self.rephrase]


def load_fact_cases(path: str | Path) -> list[FactCase]:
    """CounterFact (RECIPE release) records with their true object (`ground_truth`); records whose two
    objects are the same after normalisation are left out (they contradict nothing)."""
    from .metrics import normalize_answer

    path = Path(path)
    raw = read_json(path, "CounterFact data")
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], dict):
        raise ValueError(f"CounterFact data {path}: expected a non-empty JSON list of records")
    cases = []
    for i, r in enumerate(raw):
        try:
            rec = counterfact_record(r, i)  # the shared checks: every field present and non-empty
            truth = r["ground_truth"]
        except KeyError as e:
            raise ValueError(f"CounterFact data {path}: record {i} lacks field {e} (conflicts need CounterFact "
                             f"records with ground_truth)") from None
        except ValueError as e:
            raise ValueError(f"CounterFact data {path}: record {i}: {e}") from None
        if not isinstance(truth, str) or not truth.strip():
            raise ValueError(f"CounterFact data {path}: record {i}: empty ground_truth")
        if normalize_answer(truth) == normalize_answer(rec.target):
            continue
        cases.append(FactCase(rec.id, rec.prompt, rec.subject, truth, rec.target, rec.rephrase,
                              rec.locality_prompt, rec.locality_target))
    return cases


def draw(cases: Sequence[Any], n: int, seed: int) -> list[Any]:
    """The first `n` of a seeded shuffle of `cases`: a smaller `n` draws a prefix of what a larger one draws
    with the same seed (the QA tasks' rule), so runs of different sizes share records."""
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    if n > len(cases):
        raise ValueError(f"n: {n} asked for, but the data holds {len(cases)} usable records")
    order = list(range(len(cases)))
    random.Random(seed).shuffle(order)
    return [cases[i] for i in order[:n]]


def classify(answer: str, earlier: str, later: str) -> str:
    """Which fact an answer given after both updates carries: one of `OUTCOMES`."""
    has_earlier, has_later = contains_answer(answer, earlier), contains_answer(answer, later)
    if has_later and not has_earlier:
        return "later_wins"
    if has_earlier and not has_later:
        return "earlier_kept"
    return "both" if has_later else "neither"


def shares(labels: Sequence[str]) -> dict[str, float]:
    """Share of each outcome; `shares(["later_wins", "neither"])["later_wins"] == 0.5`."""
    if not labels:
        raise ValueError("shares: no answers to count")
    unknown = set(labels) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"shares: unknown outcomes {sorted(unknown)}")
    return {o: sum(label == o for label in labels) / len(labels) for o in OUTCOMES}


@dataclass
class ConflictConfig:
    max_new_tokens: int = field(default=16, metadata={"help": "greedy answer length "
                                                              "(the small model often repeats the prompt first)"})
    seed: int = 0

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")


def ask(method: Any, questions: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy answers, one question per call: an answer must not depend on its batch neighbours."""
    return [method.answer([Query(q)], max_new_tokens)[0] for q in questions]


def read_in_context(method: Any, questions: Sequence[str], context: str, max_new_tokens: int) -> list[str] | None:
    """The method's current model answering each question with `context` in the prompt, one per call (as `ask`);
    None for a method that cannot read one (not `ReadsContext`)."""
    if not isinstance(method, ReadsContext):
        return None
    return [method.answer_in_context([Query(q, context)], max_new_tokens)[0] for q in questions]


def last_replay(method: Any) -> dict | None:
    """What the method's latest update replayed of earlier ones (the `rehearsal` part of its manifest:
    `replayed_pairs`, `superseded_pairs`, `replaced_by_reask`, ...), for methods that keep update records (the
    weight methods) with rehearsal on; None otherwise. It shows whether a replay lever acted on the contradicting
    update."""
    records = getattr(method, "records", None)
    return records[-1].manifest.get("rehearsal") if records else None


def run_method(method: Any, cases: Sequence[FactCase], cfg: ConflictConfig, progress: bool = True) -> dict:
    """Both orders of every case with one method; per-answer rows and the shares over them."""
    rows = []
    for case in tqdm(cases, desc=f"{getattr(method, 'name', 'method')}: conflicts", disable=not progress):
        for order in ORDERS:
            earlier, later = ((case.true_object, case.new_object) if order == "true_then_new"
                              else (case.new_object, case.true_object))
            method.reset()
            method.inject([Context(f"{case.id}/earlier", case.sentence(earlier))])
            first = ask(method, case.questions(), cfg.max_new_tokens)
            reading = read_in_context(method, case.questions(), case.sentence(later), cfg.max_new_tokens)
            method.inject([Context(f"{case.id}/later", case.sentence(later))])
            second = ask(method, case.questions(), cfg.max_new_tokens)
            replay = last_replay(method)
            for i, (question, a1, a2) in enumerate(zip(case.questions(), first, second)):
                rows.append({"id": case.id, "order": order, "question": question, "earlier": earlier, "later": later,
                             "answer_after_first": a1, "answer_after_second": a2,
                             "first_learned": contains_answer(a1, earlier), "outcome": classify(a2, earlier, later),
                             **({"reading": reading[i], "reading_outcome": classify(reading[i], earlier, later)}
                                if reading is not None else {}),
                             **({"replay": replay} if replay is not None else {})})
    method.reset()
    return summarize(rows)


def summarize(rows: Sequence[dict]) -> dict:
    """Shares over all answers, per order, and `first_learned`; the rows kept for the predictions file."""
    result: dict[str, Any] = {**shares([r["outcome"] for r in rows]), "answers": len(rows),
                              "first_learned": sum(r["first_learned"] for r in rows) / len(rows)}
    for o in OUTCOMES:  # 95% bootstrap interval over answers
        result[f"{o}_ci"] = mean_ci([float(r["outcome"] == o) for r in rows]).ci
    learned = [r for r in rows if r["first_learned"]]  # where the earlier fact had been written in
    result["learned_answers"] = len(learned)
    result["later_wins_if_learned"] = (sum(r["outcome"] == "later_wins" for r in learned) / len(learned)
                                       if learned else float("nan"))
    result["by_order"] = {o: shares([r["outcome"] for r in rows if r["order"] == o])
                          for o in ORDERS if any(r["order"] == o for r in rows)}
    read = [r for r in rows if "reading_outcome" in r]
    if read:  # the method's model with the later fact in view, before the update that injects it
        wins = [float(r["outcome"] == "later_wins") for r in read]
        said = [float(r["reading_outcome"] == "later_wins") for r in read]
        difference = paired_difference(wins, said)
        taught = [r for r in read if r["reading_outcome"] == "later_wins"]
        result.update({"read_answers": len(read), "reading": shares([r["reading_outcome"] for r in read]),
                       "reading_later_wins": sum(said) / len(said), "reading_later_wins_ci": mean_ci(said).ci,
                       "later_wins_minus_reading": difference.value, "later_wins_minus_reading_ci": difference.ci,
                       "read_later_answers": len(taught),
                       "later_wins_if_read": (sum(r["outcome"] == "later_wins" for r in taught) / len(taught)
                                              if taught else float("nan"))})
    updates = {(r["id"], r["order"]): r["replay"] for r in rows if "replay" in r}  # one per second update
    if updates:  # earlier pairs replayed by the contradicting updates, and how many a lever left out
        result["replayed_pairs"] = sum(u.get("replayed_pairs", 0) for u in updates.values())
        result["superseded_pairs"] = sum(u.get("superseded_pairs", 0) for u in updates.values())
        result["replaced_by_reask"] = sum(u.get("replaced_by_reask", 0) for u in updates.values())
    result["rows"] = list(rows)
    return result


def with_ci(value: float, ci: list[float] | None) -> str:
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{value:.3f}"


def signed_with_ci(value: float, ci: list[float] | None) -> str:
    """A difference with its interval, signs shown: "-0.500 [-0.83, -0.17]"."""
    return f"{value:+.3f} [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else f"{value:+.3f}"


def write_rows_and_summary(summary: dict, out: Path) -> dict[str, dict]:
    """summary.json (each method without its per-answer rows) and predictions.jsonl (the rows), each
    written atomically; returns the methods' figures without the rows, for the table."""
    out = Path(out)
    methods = {m: {k: v for k, v in r.items() if k != "rows"} for m, r in summary["methods"].items()}
    atomic_write_text(out / "summary.json", json.dumps({**summary, "methods": methods}, indent=2))
    atomic_write_text(out / "predictions.jsonl", "".join(
        json.dumps({"method": m, **row}) + "\n" for m, r in summary["methods"].items() for row in r["rows"]))
    return methods


def method_settings(method: Any) -> dict[str, Any] | None:
    """The settings a method ran with (its `config` dataclass, defaults and `--method-config` alike, as JSON
    values), without the target settings the run sets for every method; None for a method without one."""
    config = getattr(method, "config", None)
    if config is None or not is_dataclass(config):
        return None
    values = json.loads(json.dumps(asdict(config), default=str))  # paths and the like as text
    return {k: v for k, v in values.items() if k != "targets"}


def run_each(task: str, names: Sequence[str], build: Callable[[str], Any], run: Callable[[Any], dict],
             summary: dict, out: Path, write: Callable[[dict, Path], None]) -> dict:
    """Every named method through the shared harness (`tasks.run_methods`: failure isolation, reset): its
    figures `run(method)` under `summary["methods"][name]`, a failed method's error under
    `summary["failed"][name]` (the others go on), the report rewritten after each."""
    from .tasks import run_methods

    def body(name, method, meter, records, outcome, log):
        outcome.extra["config"] = method_settings(method)
        outcome.extra["figures"] = run(method)

    for name in names:
        started = time.perf_counter()
        outcome = run_methods(task, [name], build, body).outcomes[0]
        if outcome.status == "ok":
            summary["methods"][name] = {**outcome.extra["figures"], "seconds": round(time.perf_counter() - started, 1),
                                        **({"config": outcome.extra["config"]} if outcome.extra["config"] else {})}
        else:
            summary.setdefault("failed", {})[name] = outcome.error
        write(summary, out)
    return summary


def rewrite_report(out: Path, summarize: Callable[[Sequence[dict]], dict],
                   write: Callable[[dict, Path], None]) -> dict:
    """A recorded run's report written again from its predictions.jsonl with today's `summarize` and
    `write` (no model: the figures come from the answers kept); settings, seconds and failures stay as
    recorded. Raises ValueError when `out` holds no finished run."""
    out = Path(out)
    if not (out / "summary.json").is_file() or not (out / "predictions.jsonl").is_file():
        raise ValueError(f"--report-only: {out} holds no summary.json and predictions.jsonl of a finished method")
    summary = read_json(out / "summary.json", "run summary", ValueError)
    rows: dict[str, list[dict]] = {}
    for _, row in read_jsonl(out / "predictions.jsonl"):
        rows.setdefault(row.pop("method"), []).append(row)
    summary["methods"] = {name: {**summarize(rows[name]), "seconds": figures.get("seconds"),
                                 **({"config": figures["config"]} if "config" in figures else {})}
                          for name, figures in summary.get("methods", {}).items() if name in rows}
    write(summary, out)
    return summary


def failure_lines(summary: dict) -> list[str]:
    """The report's list of methods that failed, with their errors (none: nothing)."""
    failed = summary.get("failed") or {}
    return ["## Failures", "", *(f"- `{name}`: {error}" for name, error in failed.items()), ""] if failed else []


def write_report(summary: dict, out: Path) -> None:
    """summary.json, predictions.jsonl and summary.md, each written atomically."""
    out = Path(out)
    methods = write_rows_and_summary(summary, out)
    lines = ["| method | answers | later_wins | earlier_kept | both | neither | first_learned | later_wins (true→new) "
             "| later_wins (new→true) | later_wins if first learned |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in methods.items():
        by = r["by_order"]
        true_then_new = by.get("true_then_new", {}).get("later_wins", float("nan"))
        new_then_true = by.get("new_then_true", {}).get("later_wins", float("nan"))
        lines.append(f"| {name} | {r['answers']} | " + " | ".join(with_ci(r[o], r.get(f"{o}_ci")) for o in OUTCOMES)
                     + f" | {r['first_learned']:.3f} | {true_then_new:.3f} | {new_then_true:.3f} | "
                     + f"{r['later_wins_if_learned']:.3f} ({r['learned_answers']}) |")
    md = [f"# Conflicting updates on {summary['data']}", "",
          f"Model {summary['model']}; {summary['cases']} records x 2 orders x 2 questions; command: "
          f"`{summary['command']}`", "", *lines, "",
          "Shares of the answers after the second (contradicting) update; first_learned: answers after the "
          "first update that carry its object; later_wins if first learned: the share among those answers whose "
          "question had been answered with the earlier object after the first update (their number in brackets): "
          "whether a fact that was written in is overwritten.", "", *reading_lines(methods), *failure_lines(summary)]
    atomic_write_text(out / "summary.md", "\n".join(md))


def reading_lines(methods: dict[str, dict]) -> list[str]:
    """The table of what each method's model said with the later fact in the prompt (methods that read one)."""
    read = {name: r for name, r in methods.items() if "reading_later_wins" in r}
    if not read:
        return []
    lines = ["## With the later fact in the prompt, before the update that injects it", "",
             "| method | answers | reading: later / earlier / neither | later_wins after the update | "
             "later_wins − reading | later_wins where the reading said the later fact |", "|---|---|---|---|---|---|"]
    for name, r in read.items():
        shares_read = r["reading"]
        lines.append(f"| {name} | {r['read_answers']} | {with_ci(r['reading_later_wins'], r['reading_later_wins_ci'])}"
                     f" / {shares_read['earlier_kept']:.3f} / {shares_read['neither']:.3f} | {r['later_wins']:.3f} | "
                     f"{signed_with_ci(r['later_wins_minus_reading'], r['later_wins_minus_reading_ci'])} | "
                     f"{r['later_wins_if_read']:.3f} ({r['read_later_answers']}) |")
    return [*lines, "", "The method's own model (for SELF-PARAM: the teacher of the contradicting update) asked the "
            "same questions with the later sentence before them, between the two updates; the difference is paired "
            "over answers. SELF-PARAM's contradicting update distils these answers' distributions: where its "
            "reading keeps the earlier fact, that is what the update teaches.", ""]


def run_conflicts(cases: Sequence[FactCase], names: Sequence[str], build: Callable[[str], Any], cfg: ConflictConfig,
                  out: Path, data_name: str = "", model_name: str = "", command: str = "",
                  progress: bool = True) -> dict:
    """Every named method (built by `build(name)`) on the same cases; the report is rewritten after each."""
    summary: dict[str, Any] = {"data": data_name, "model": model_name, "command": command, "cases": len(cases),
                               "case_ids": [c.id for c in cases], "config": asdict(cfg), **provenance(),
                               "methods": {}}
    return run_each("conflicts", names, build, lambda method: run_method(method, cases, cfg, progress), summary,
                    out, write_report)
