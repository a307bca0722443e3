"""The harness arithmetic proven exactly with a fake method (a question -> answer table).

The fake remembers the last `memory` contexts it was given; it answers a remembered context's questions
with the gold answer and a forgotten one's with a fixed wrong-ish answer whose F1 is worked out by hand:
question 1 gold "red apple", forgotten answer "red" (P = 1, R = 1/2, F1 = 2/3); question 2 gold
"blue sky", forgotten answer "green" (F1 = 0). A forgotten context therefore scores exactly 1/3.
Its log-probability of a gold answer is -0.25 per word of the gold when it knows the context (question 2:
best of "blue sky" -0.5 and "sky" -0.25 = -0.25) and -2 when it does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pytest

from selfparam.eval.loaders import ContextQA, QuestionAnswers, RecData, RecTurn
from selfparam.eval.report import summary_markdown, write_report
from selfparam.eval.tasks import (
    REC_QUESTION,
    retention_summary,
    run_batch,
    run_recommendation,
    run_sequential,
    run_single,
)
from selfparam.methods.base import Context, Query

T = 4


def make_contexts(t: int = T) -> list[ContextQA]:
    return [ContextQA(Context(f"c{i}", f"Context number {i}."),
                      (QuestionAnswers(f"q{i}a", ("red apple",)), QuestionAnswers(f"q{i}b", ("blue sky", "sky"))))
            for i in range(t)]


FORGOTTEN = {"a": "red", "b": "green"}
GOLD = {"a": "red apple", "b": "blue sky"}


class TableMethod:
    """Answers from a table, knowing only the contexts it still remembers."""

    def __init__(self, name: str, memory: int | None = None, fail_on_inject: int | None = None,
                 use_gold_context: bool = False):
        self.name = name
        self.memory = memory
        self.fail_on_inject = fail_on_inject
        self.use_gold_context = use_gold_context
        self.known: list[str] = []
        self.injections = 0
        self.resets = 0
        self.calls: list[list[str]] = []  # the questions of every `answer` call
        self.logprob_calls: list[list[str]] = []  # the questions of every `logprob` call (once per gold)

    def inject(self, contexts: Sequence[Context]) -> None:
        self.injections += 1
        if self.fail_on_inject is not None and self.injections == self.fail_on_inject:
            raise RuntimeError(f"out of memory at injection {self.injections}")
        self.known += [c.text for c in contexts]
        if self.memory is not None:
            self.known = self.known[max(0, len(self.known) - self.memory):]

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        out = []
        self.calls.append([q.question for q in queries])
        for q in queries:
            out.append(GOLD[q.question[-1]] if self._knows(q) else FORGOTTEN[q.question[-1]])
        return out

    def _knows(self, q: Query) -> bool:
        return f"Context number {int(q.question[1:-1])}." in self.known or (self.use_gold_context and
                                                                          q.context is not None)

    def score(self, queries, targets):
        raise NotImplementedError

    def logprob(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        self.logprob_calls.append([q.question for q in queries])
        return [-0.25 * len(t.split()) if self._knows(q) else -2.0 for q, t in zip(queries, targets)]

    def reset(self) -> None:
        self.known = []
        self.resets += 1

    def save(self, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path) -> None:
        raise NotImplementedError

    def storage_bytes(self) -> int:
        return 10 * len(self.known)


def builder(**methods: TableMethod):
    def build(name: str):
        if name not in methods:
            raise ValueError(f"cannot build {name}")
        return methods[name]
    return build


def test_sequential_retention_matrix_exact():
    fake = TableMethod("fake", memory=2)
    result = run_sequential(["fake"], builder(fake=fake), make_contexts(), progress=False)
    o = result.outcome("fake")
    third = pytest.approx(1 / 3)
    assert o.status == "ok"
    assert o.retention == [[1.0, None, None, None],
                           [1.0, 1.0, None, None],
                           [third, 1.0, 1.0, None],
                           [third, third, 1.0, 1.0]]
    # after the last step: (1/3 + 1/3 + 1 + 1) / 4 = 2/3; EM: 4 of 8 questions exact = 0.5
    assert o.metrics["f1"] == pytest.approx(2 / 3)
    assert o.metrics["em"] == pytest.approx(0.5)
    assert o.metrics["f1_diagonal"] == pytest.approx(1.0)
    # all ten cells: 1 + 2 + (2 + 1/3) + (2 + 2/3) = 8 -> 0.8
    assert o.metrics["f1_all"] == pytest.approx(0.8)
    assert o.extra["curve"] == pytest.approx([1.0, 1.0, 7 / 9, 2 / 3])
    assert o.extra["first_context"] == pytest.approx([1.0, 1.0, 1 / 3, 1 / 3])
    # the gold log-prob beside it: a known context's two questions -0.5 ("red apple") and -0.25 (the best of
    # "blue sky" and "sky"), a forgotten one's -2.0 each
    k = -0.375
    assert o.extra["retention_logprob"] == [[k, None, None, None], [k, k, None, None], [-2.0, k, k, None],
                                            [-2.0, -2.0, k, k]]
    # T injections, 2 * (1 + 2 + 3 + 4) answers, at most 2 contexts stored
    assert (o.n_injections, o.n_questions, o.storage_bytes) == (4, 20, 20)
    assert fake.resets >= 2  # once before the run, once after (the next method starts clean)
    steps = [r["step"] for r in result.records]
    assert steps.count(0) == 2 and steps.count(3) == 8


def test_a_method_whose_answers_never_change_is_asked_each_question_once():
    class Static(TableMethod):
        static_answers = True

    plain = TableMethod("cq", use_gold_context=True)     # answers from the gold context: never changes
    static = Static("cq", use_gold_context=True)
    records = {}
    for method in (plain, static):
        result = run_sequential(["cq"], builder(cq=method), make_contexts(), progress=False)
        records[method] = result.records
        assert result.outcome("cq").retention[3] == [1.0, 1.0, 1.0, 1.0]
    assert records[static] == records[plain]             # the same records, step by step
    assert len(plain.calls) == 1 + 2 + 3 + 4 and len(static.calls) == 4   # one call per context asked
    assert static.calls == [["q0a", "q0b"], ["q1a", "q1b"], ["q2a", "q2b"], ["q3a", "q3b"]]


@pytest.mark.parametrize("task", ["single", "batch", "sequential"])
def test_each_context_is_asked_in_its_own_call(task):
    """A context's questions go to the method together and alone in every task and at every step, so a
    question is always padded the same way: a retention column changes only when the method does, and
    Base(Q) scores the same in single and batch runs."""
    fake = TableMethod("fake")
    run = {"single": run_single, "sequential": run_sequential,
           "batch": lambda names, build, contexts, **kw: run_batch(names, build, contexts, 2, **kw)}[task]
    run(["fake"], builder(fake=fake), make_contexts(), progress=False)
    assert len(fake.calls) == {"single": T, "batch": T, "sequential": 1 + 2 + 3 + 4}[task]
    assert all(call in ([f"q{i}a", f"q{i}b"] for i in range(T)) for call in fake.calls)
    # the log-prob pass too: one call per context, each question once per gold answer
    assert len(fake.logprob_calls) == len(fake.calls)
    assert all(call in ([f"q{i}a", f"q{i}b", f"q{i}b"] for i in range(T)) for call in fake.logprob_calls)


def test_retention_summary_by_hand():
    s = retention_summary([[0.5, None], [0.25, 0.75]])
    assert s["f1_final"] == pytest.approx(0.5)
    assert s["f1_diagonal"] == pytest.approx(0.625)
    assert s["f1_all"] == pytest.approx(0.5)
    assert s["curve"] == pytest.approx([0.5, 0.5])


def test_single_and_batch_scores_and_costs():
    contexts = make_contexts()
    knows = TableMethod("knows", memory=1)
    never = TableMethod("never", memory=0)
    result = run_single(["knows", "never"], builder(knows=knows, never=never), contexts, progress=False)
    assert result.outcome("knows").metrics == {"f1": 1.0, "em": 1.0}
    # never knows: every context scores (2/3 + 0) / 2
    assert result.outcome("never").metrics["f1"] == pytest.approx(1 / 3)
    assert result.outcome("never").metrics["em"] == 0.0
    assert result.outcome("knows").n_injections == 4 and result.outcome("knows").n_questions == 8
    assert result.outcome("knows").storage_bytes == 10
    assert result.outcome("knows").inject_seconds > 0 and result.outcome("knows").answer_latency > 0  # timed
    assert result.outcome("knows").extra["logprob_seconds"] > 0  # the log-prob pass, timed apart
    # each record carries the best gold's log-prob: -0.25 per gold word when known ("sky" beats "blue sky")
    logprobs = {(r["method"], r["question"][-1]): r["logprob"] for r in result.records}
    assert logprobs == {("knows", "a"): -0.5, ("knows", "b"): -0.25, ("never", "a"): -2.0, ("never", "b"): -2.0}
    # batch of K=2 with room for one context only: each batch keeps its second context
    forgetful = TableMethod("forgetful", memory=1)
    batch = run_batch(["forgetful"], builder(forgetful=forgetful), contexts, k=2, progress=False)
    o = batch.outcome("forgetful")
    assert o.n_injections == 2 and o.n_questions == 8
    assert o.metrics["f1"] == pytest.approx((1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="divide"):
        run_batch(["forgetful"], builder(forgetful=forgetful), contexts, k=3, progress=False)


def test_base_cq_style_method_reads_the_gold_context():
    upper = TableMethod("upper", memory=0, use_gold_context=True)
    result = run_single(["upper"], builder(upper=upper), make_contexts(), progress=False)
    assert result.outcome("upper").metrics["f1"] == 1.0


def test_a_failing_method_is_reported_and_the_others_keep_their_results():
    ok = TableMethod("ok", memory=2)
    crashes = TableMethod("crashes", memory=2, fail_on_inject=3)
    result = run_sequential(["crashes", "unbuildable", "ok"], builder(ok=ok, crashes=crashes), make_contexts(),
                            progress=False)
    c = result.outcome("crashes")
    assert c.status == "failed" and "out of memory at injection 3" in c.error
    assert c.retention[1] == [1.0, 1.0, None, None] and c.retention[2] == [None] * 4  # partial rows kept
    assert crashes.resets >= 1  # reset even after failing
    u = result.outcome("unbuildable")
    assert u.status == "failed" and "cannot build unbuildable" in u.error
    assert result.outcome("ok").status == "ok" and result.outcome("ok").metrics["f1"] == pytest.approx(2 / 3)
    md = summary_markdown(result)
    assert "## Failures" in md and "out of memory at injection 3" in md


class Recommender:
    """Recommends "Up" then "Deadpool" once a dialogue is injected (or in the prompt); else an unknown title."""

    def __init__(self, name: str, in_prompt: bool = False, learns: bool = True):
        self.name, self.in_prompt, self.learns, self.known = name, in_prompt, learns, []

    def inject(self, contexts):
        if self.learns:
            self.known += list(contexts)

    def answer(self, queries, max_new_tokens=32):
        assert all(q.question == REC_QUESTION for q in queries)
        knows = self.known or (self.in_prompt and queries[0].context)
        return ["1. Up (2009)\n2. Deadpool" if knows else "1. Casablanca Forever"] * len(queries)

    def logprob(self, queries, targets):
        knows = self.known or (self.in_prompt and queries[0].context)
        return [(-0.5 if t == "Up" else -1.0) if knows else -3.0 for t in targets]

    def reset(self):
        self.known = []

    def storage_bytes(self):
        return 0


def test_recommendation_recall_by_hand():
    data = RecData("toy", (RecTurn("t1", "User: hi", ("Up",), ()),
                           RecTurn("t2", "User: I loved Up", ("Deadpool",), ("Up",))),
                   ("Up", "Deadpool", "Casablanca"))
    methods = {"inject": Recommender("inject"), "cq": Recommender("cq", in_prompt=True, learns=False),
               "none": Recommender("none", learns=False)}
    m = {k: v for k, v in methods.items()}
    result = run_recommendation(list(m), lambda n: m[n], data, list(data.turns), progress=False)
    # turn 1: top Up = gold (hit everywhere); turn 2: top Up is seen -> hit only when seen items are dropped
    for name in ("inject", "cq"):
        r = result.outcome(name).metrics
        assert (r["r1"], r["r2"], r["r3"], r["r4"]) == (0.5, 1.0, 0.5, 1.0)
        assert r["r1@5"] == 1.0
    # "Casablanca Forever" maps to Casablanca, 8 edits away: r1/r2 keep it (a miss), r3/r4 drop it
    none = result.outcome("none").metrics
    assert (none["r1"], none["r2"], none["r3"], none["r4"]) == (0.0, 0.0, 0.0, 0.0)
    record = next(r for r in result.records if r["method"] == "inject")
    assert record["titles"][0] == {"predicted": "Up", "nearest": "Up", "distance": 0}


def test_recommendation_scores_the_gold_titles_log_probability_with_intervals(tmp_path):
    """A model too small to list titles still moves the gold titles' likelihood: each turn records the best gold
    title's log-probability, and the report gives its recovery and difference from SELF-PARAM over turns."""
    # t1 twice: the datasets' turn ids repeat across dialogues, and every turn counts
    turns = (RecTurn("t1", "User: hi", ("Up",), ()), RecTurn("t2", "User: I loved Up", ("Deadpool",), ()),
             RecTurn("t3", "User: funny ones", ("Deadpool", "Up"), ()), RecTurn("t4", "User: no", (), ()),
             RecTurn("t1", "User: I loved Up again", ("Deadpool",), ()))
    data = RecData("toy", turns, ("Up", "Deadpool", "Casablanca"))
    m = {"base": Recommender("base", learns=False), "base-cq": Recommender("base-cq", in_prompt=True, learns=False),
         "selfparam": Recommender("selfparam")}
    result = run_recommendation(list(m), lambda n: m[n], data, list(data.turns), progress=False)
    by_turn = [(r["turn_id"], r["logprob"]) for r in result.records if r["method"] == "selfparam"]
    # the best gold title; no gold, no figure
    assert by_turn == [("t1", -0.5), ("t2", -1.0), ("t3", -0.5), ("t4", None), ("t1", -1.0)]
    paths = write_report(tmp_path, result, plots=False)
    summary = json.loads(paths["summary_json"].read_text())["methods"]
    assert summary["base"]["logprob"] == pytest.approx(-3.0)
    assert summary["selfparam"]["logprob"] == pytest.approx(-3.0 / 4)  # all four scored turns, both t1 among them
    assert summary["selfparam"]["logprob_recovery"] == pytest.approx(1.0)
    assert summary["base"]["diff_logprob_vs_selfparam"] == pytest.approx(-3.0 + 3.0 / 4)
    assert summary["base"]["diff_logprob_vs_selfparam_ci"] is not None
    assert "f1" not in summary["selfparam"]  # recall is the task's own figure
    assert "gold-title log-prob" in paths["summary_md"].read_text()


@pytest.mark.plots  # asserts the PNG files
def test_report_folder(tmp_path):
    fake = TableMethod("fake", memory=2)
    broken = TableMethod("broken", fail_on_inject=1)
    seq = run_sequential(["fake", "broken"], builder(fake=fake, broken=broken), make_contexts(), progress=False)
    paths = write_report(tmp_path / "seq", seq)
    summary = json.loads(paths["summary_json"].read_text())
    entry = summary["methods"]["fake"]
    assert entry["f1"] == pytest.approx(2 / 3) and entry["storage_bytes"] == 20
    assert entry["retention"][3][0] == pytest.approx(1 / 3)
    assert {"inject_seconds", "answer_latency", "em", "curve"} <= set(entry)
    assert summary["methods"]["broken"]["status"] == "failed"
    md = paths["summary_md"].read_text()
    assert "Retention F1[t][i]: fake" in md and "| 4 | 0.33 | 0.33 | 1.00 | 1.00 |" in md
    lines = paths["predictions"].read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])["method"] == "fake"
    assert "log-probability (nats/token) LP[t][i]: fake" in md and "| 4 | -2.00 | -2.00 | -0.38 | -0.38 |" in md
    for key in ("retention_png", "curve_png", "retention_logprob_png"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    single = run_single(["fake"], builder(fake=TableMethod("fake")), make_contexts(), progress=False)
    paths = write_report(tmp_path / "single", single)
    assert paths["bars_png"].read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "single").glob(".*"))  # no temporary files left behind


def test_selfparam_plots_0_writes_the_tables_without_plots_and_a_bad_value_is_refused(tmp_path, monkeypatch):
    single = run_single(["fake"], builder(fake=TableMethod("fake")), make_contexts(), progress=False)
    monkeypatch.setenv("SELFPARAM_PLOTS", "0")
    paths = write_report(tmp_path / "tables", single)
    assert {p.name for p in (tmp_path / "tables").iterdir()} == {"predictions.jsonl", "summary.json", "summary.md"}
    assert set(paths) == {"predictions", "summary_json", "summary_md"}
    assert "bars_png" in write_report(tmp_path / "asked", single, plots=True)  # the argument wins
    monkeypatch.setenv("SELFPARAM_PLOTS", "yes")
    with pytest.raises(ValueError, match="SELFPARAM_PLOTS"):
        write_report(tmp_path / "bad", single)
    assert not (tmp_path / "bad").exists()
