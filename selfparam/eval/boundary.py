"""Near-miss pollution: does an injected fact leak into questions that only look like it?

For each injected fact, probes are built automatically:

- `other_entity`: the same question with another entity of the same type. CounterFact: the record's
  prompt template (the prompt with its subject cut out) filled with the subject of another record of the
  same relation (same template); SQuAD: the question with one of the context's own entities (capitalised
  spans) swapped for another entity of the context of the same shape (numbers for numbers, names of as
  many words first: there is no entity tagger).
- `other_relation` (CounterFact): the same subject in the template of another relation.
- `neighbourhood` (CounterFact): the record's locality prompt (another subject, same relation).

Probes whose own true answer is the injected object are left out (answering it there is right). After the
fact is injected into a fresh method, `pollution` is the share of probes whose answer carries the injected
object (`contains_answer`), beside `efficacy`, the share of the true questions (CounterFact: prompt and
rephrase; SQuAD: the context's questions) answered with it. `pollution_before` is the same share before
injection: the base rate the injection adds to.

A method whose model can read a context (`ReadsContext`) is also asked every question and probe before the
injection with the fact in the prompt: `reading_efficacy` and `reading_pollution` are what its model says with
the fact in view, for SELF-PARAM what the teacher of the injection says (the answers it distils), and
`pollution_minus_reading` / `efficacy_minus_reading` the paired differences.

    >>> pollution_share(["It is English.", "French"], [("English",), ("English",)])
    0.5
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..atomic import atomic_write_text
from ..methods.base import Context
from ..provenance import provenance
from ..targets.entities import entities, other_entity_questions
from .conflicts import (
    FactCase,
    ask,
    failure_lines,
    read_in_context,
    run_each,
    signed_with_ci,
    with_ci,
    write_rows_and_summary,
)
from .lifelong import contains_answer
from .loaders import ContextQA
from .metrics import normalize_answer
from .stats import mean_ci, paired_difference

PROBE_KINDS = ("other_entity", "other_relation", "neighbourhood")


@dataclass(frozen=True)
class Probe:
    """A near-miss question; an answer carrying any of `carried` (the injected object) is pollution."""

    kind: str
    question: str
    carried: tuple[str, ...]


@dataclass(frozen=True)
class BoundaryItem:
    """One context to inject, the true questions about it (with accepted answers) and its near misses."""

    id: str
    context: Context
    questions: tuple[tuple[str, tuple[str, ...]], ...]
    probes: tuple[Probe, ...]


def any_carries(answer: str, objects: Sequence[str]) -> bool:
    return any(contains_answer(answer, o) for o in objects)


def pollution_share(answers: Sequence[str], carried: Sequence[Sequence[str]]) -> float:
    """Share of probe answers carrying their injected object."""
    if len(answers) != len(carried):
        raise ValueError(f"{len(answers)} answers but {len(carried)} probes")
    if not answers:
        raise ValueError("pollution_share: no probes")
    return sum(any_carries(a, c) for a, c in zip(answers, carried)) / len(answers)


# -- CounterFact ------------------------------------------------------------------------------------

def template(case: FactCase) -> str | None:
    """The prompt with its subject as `{}` ("The mother tongue of {} is"); None when the subject is not in
    the prompt exactly once."""
    if not case.subject or case.prompt.count(case.subject) != 1 or "{" in case.prompt or "}" in case.prompt:
        return None
    return case.prompt.replace(case.subject, "{}")


def counterfact_items(cases: Sequence[FactCase], pool: Sequence[FactCase], per_kind: int,
                      seed: int) -> list[BoundaryItem]:
    """Items for the drawn `cases`, with near misses taken from the whole `pool` (the data file)."""
    by_template: dict[str, list[FactCase]] = defaultdict(list)
    for c in pool:
        t = template(c)
        if t is not None:
            by_template[t].append(c)
    templates = sorted(by_template)
    items = []
    for case in cases:
        rng = random.Random(f"{seed}/{case.id}")
        obj = normalize_answer(case.new_object)
        own = template(case)
        probes: list[Probe] = []
        if own is not None:
            others = [c for c in by_template[own]
                      if c.subject != case.subject and normalize_answer(c.true_object) != obj]
            for other in rng.sample(others, min(per_kind, len(others))):
                probes.append(Probe("other_entity", own.format(other.subject), (case.new_object,)))
            relations = [t for t in templates if t != own]
            for t in rng.sample(relations, min(per_kind, len(relations))):
                probes.append(Probe("other_relation", t.format(case.subject), (case.new_object,)))
        if normalize_answer(case.locality_target) != obj:
            probes.append(Probe("neighbourhood", case.locality_prompt, (case.new_object,)))
        items.append(BoundaryItem(case.id, Context(case.id, case.sentence(case.new_object)),
                                  ((case.prompt, (case.new_object,)), (case.rephrase, (case.new_object,))),
                                  tuple(probes)))
    return items


# -- SQuAD-style contexts ------------------------------------------------------------------------------

def squad_items(contexts: Sequence[ContextQA], per_kind: int, seed: int,
                questions_per_context: int = 3) -> list[BoundaryItem]:
    """Items for SQuAD contexts: each question whose text names an entity of the context gets near misses
    with that entity swapped for other entities of the same context."""
    items = []
    for cqa in contexts:
        rng = random.Random(f"{seed}/{cqa.context.id}")
        ents = entities(cqa.context.text)
        questions = list(cqa.questions[:questions_per_context])
        probes = []
        for qa in questions:
            answers = {normalize_answer(a) for a in qa.answers}

            def is_answer(e: str) -> bool:
                return normalize_answer(e) in answers or any(a and a in normalize_answer(e) for a in answers)

            for question in other_entity_questions(qa.question, ents, per_kind, rng, avoid=is_answer):
                probes.append(Probe("other_entity", question, qa.answers))
        items.append(BoundaryItem(cqa.context.id, cqa.context, tuple((q.question, q.answers) for q in questions),
                                  tuple(probes)))
    return items


def load_items(path: str | Path, n: int, seed: int, per_kind: int, questions_per_context: int = 3,
               articles: tuple[int, ...] | None = None) -> list[BoundaryItem]:
    """`n` items drawn with `seed` from CounterFact (a JSON list of edit records) or SQuAD/PwC QA data;
    `articles` (SQuAD only, 1-based) draws from those articles, e.g. the report split 17-32."""
    from .conflicts import draw, load_fact_cases
    from .loaders import load_qa, sample_contexts

    path = Path(path)
    head = path.read_text(encoding="utf-8", errors="replace").lstrip()[:1] if path.is_file() else ""
    if head == "[":
        if articles is not None:
            raise ValueError(f"articles: apply to SQuAD JSON only, not to the CounterFact records in {path}")
        pool = load_fact_cases(path)
        return counterfact_items(draw(pool, n, seed), pool, per_kind, seed)
    return squad_items(sample_contexts(load_qa(path, articles), n, seed, questions_per_context), per_kind, seed,
                       questions_per_context)


# -- the run ---------------------------------------------------------------------------------------------

@dataclass
class BoundaryConfig:
    per_kind: int = field(default=2, metadata={"help": "near misses of each kind per fact"})
    max_new_tokens: int = field(default=16, metadata={"help": "greedy answer length "
                                                              "(the small model often repeats the prompt first)"})
    seed: int = 0

    def __post_init__(self):
        for name in ("per_kind", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")


def run_method(method: Any, items: Sequence[BoundaryItem], cfg: BoundaryConfig, progress: bool = True) -> dict:
    """Each item into a fresh method: probes before, then the true questions and the probes after."""
    rows = []
    for item in tqdm(items, desc=f"{getattr(method, 'name', 'method')}: boundary", disable=not progress):
        method.reset()
        before = ask(method, [p.question for p in item.probes], cfg.max_new_tokens)
        questions = [q for q, _ in item.questions] + [p.question for p in item.probes]
        read = read_in_context(method, questions, item.context.text, cfg.max_new_tokens)  # the teacher's view
        method.inject([item.context])
        true_answers = ask(method, [q for q, _ in item.questions], cfg.max_new_tokens)
        after = ask(method, [p.question for p in item.probes], cfg.max_new_tokens)
        objects = [answers for _, answers in item.questions] + [p.carried for p in item.probes]
        readings = ([{"reading": r, "reading_carries": any_carries(r, o)} for r, o in zip(read, objects)]
                    if read is not None else [{} for _ in objects])
        for (question, answers), a, r in zip(item.questions, true_answers, readings):
            rows.append({"id": item.id, "kind": "true", "question": question, "objects": list(answers), "answer": a,
                         "carries": any_carries(a, answers), **r})
        for probe, b, a, r in zip(item.probes, before, after, readings[len(item.questions):]):
            rows.append({"id": item.id, "kind": probe.kind, "question": probe.question, "objects": list(probe.carried),
                         "answer_before": b, "answer": a, "carried_before": any_carries(b, probe.carried),
                         "carries": any_carries(a, probe.carried), **r})
    method.reset()
    return summarize(rows)


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def summarize(rows: Sequence[dict]) -> dict:
    """efficacy, pollution (and before injection), pollution per probe kind, counts; the rows kept."""
    true = [r for r in rows if r["kind"] == "true"]
    probes = [r for r in rows if r["kind"] != "true"]
    return {**reading_figures(true, probes), "efficacy": _share([r["carries"] for r in true]),
            "efficacy_ci": mean_ci([float(r["carries"]) for r in true]).ci if true else None,
            "pollution": _share([r["carries"] for r in probes]),
            "pollution_ci": mean_ci([float(r["carries"]) for r in probes]).ci if probes else None,
            "pollution_before": _share([r["carried_before"] for r in probes]),
            "by_kind": {k: {"probes": sum(r["kind"] == k for r in probes),
                            "pollution": _share([r["carries"] for r in probes if r["kind"] == k]),
                            "pollution_before": _share([r["carried_before"] for r in probes if r["kind"] == k])}
                        for k in PROBE_KINDS if any(r["kind"] == k for r in probes)},
            "questions": len(true), "probes": len(probes), "rows": list(rows)}


def reading_figures(true: Sequence[dict], probes: Sequence[dict]) -> dict:
    """Efficacy and pollution of the method's model reading the fact (rows that carry a reading), and the paired
    differences of the injected method from them; {} when no row does."""
    figures: dict[str, Any] = {}
    for name, group in (("efficacy", true), ("pollution", probes)):
        read = [r for r in group if "reading_carries" in r]
        if read:
            said, after = [float(r["reading_carries"]) for r in read], [float(r["carries"]) for r in read]
            difference = paired_difference(after, said)
            figures.update({f"reading_{name}": sum(said) / len(said), f"reading_{name}_ci": mean_ci(said).ci,
                            f"{name}_minus_reading": difference.value, f"{name}_minus_reading_ci": difference.ci})
    return figures


def reading_lines(methods: dict[str, dict]) -> list[str]:
    """The table of what each method's model said with the fact in the prompt (methods that read one)."""
    read = {name: r for name, r in methods.items() if "reading_pollution" in r}
    if not read:
        return []
    lines = ["## With the fact in the prompt, before it is injected", "",
             "| method | reading: efficacy | reading: pollution | efficacy − reading | pollution − reading |",
             "|---|---|---|---|---|"]
    for name, r in read.items():
        lines.append(f"| {name} | {with_ci(r['reading_efficacy'], r.get('reading_efficacy_ci'))} | "
                     f"{with_ci(r['reading_pollution'], r.get('reading_pollution_ci'))} | "
                     f"{signed_with_ci(r['efficacy_minus_reading'], r.get('efficacy_minus_reading_ci'))} | "
                     f"{signed_with_ci(r['pollution_minus_reading'], r.get('pollution_minus_reading_ci'))} |")
    return [*lines, "", "The method's own model asked the true questions and the probes with the injected fact "
            "before them, before the injection: for SELF-PARAM, the teacher of that injection, whose answers it "
            "distils. The differences are paired over questions and over probes.", ""]


def write_report(summary: dict, out: Path) -> None:
    out = Path(out)
    methods = write_rows_and_summary(summary, out)
    kinds = [k for k in PROBE_KINDS if any(k in r["by_kind"] for r in methods.values())]
    lines = ["| method | efficacy | pollution | pollution before | " + " | ".join(f"{k}" for k in kinds)
             + " | questions | probes |", "|---|---|---|---|" + "---|" * len(kinds) + "---|---|"]
    for name, r in methods.items():
        lines.append(f"| {name} | {with_ci(r['efficacy'], r.get('efficacy_ci'))} | "
                     f"{with_ci(r['pollution'], r.get('pollution_ci'))} | {r['pollution_before']:.3f} | "
                     + " | ".join(f"{r['by_kind'][k]['pollution']:.3f}" if k in r["by_kind"] else "-" for k in kinds)
                     + f" | {r['questions']} | {r['probes']} |")
    md = [f"# Near-miss pollution on {summary['data']}", "",
          f"Model {summary['model']}; {summary['items']} injected contexts; command: `{summary['command']}`", "",
          *lines, "", "efficacy: true questions answered with the injected object; pollution: near-miss probes "
          "answered with it after injection (before: the same probes before injection); per-kind columns: "
          "pollution after injection.", "", *reading_lines(methods), *failure_lines(summary)]
    atomic_write_text(out / "summary.md", "\n".join(md))


def run_boundary(items: Sequence[BoundaryItem], names: Sequence[str], build: Callable[[str], Any],
                 cfg: BoundaryConfig, out: Path, data_name: str = "", model_name: str = "", command: str = "",
                 progress: bool = True) -> dict:
    """Every named method (built by `build(name)`) on the same items; the report is rewritten after each."""
    if not any(item.probes for item in items):
        raise ValueError("boundary: no near-miss probe could be built for the drawn contexts; draw more (--n)")
    summary: dict[str, Any] = {"data": data_name, "model": model_name, "command": command, "items": len(items),
                               "item_ids": [i.id for i in items], "config": asdict(cfg), **provenance(), "methods": {}}
    return run_each("boundary", names, build, lambda method: run_method(method, items, cfg, progress), summary,
                    out, write_report)
