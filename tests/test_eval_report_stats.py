"""Reports carry the bootstrap statistics, worked out by hand on fake methods (see test_eval_tasks)."""

from __future__ import annotations

import json

import pytest
from test_eval_tasks import TableMethod, builder, make_contexts

from selfparam.eval.comparison import is_statistic, report_statistics, statistics
from selfparam.eval.metrics import best_em, best_f1
from selfparam.eval.report import summary_dict, summary_markdown, write_report
from selfparam.eval.tasks import run_sequential, run_single


class KnowsFirst(TableMethod):
    """Keeps only contexts 0 and 1: gold answers there, forgotten answers (F1 2/3 and 0) elsewhere."""

    def inject(self, contexts):
        super().inject([c for c in contexts if c.id in ("c0", "c1")])


def fakes():
    return {"base": TableMethod("base", memory=0), "base-cq": TableMethod("base-cq", memory=0, use_gold_context=True),
            "selfparam": KnowsFirst("selfparam"), "ft-s": KnowsFirst("ft-s")}


KEYS = {"f1", "f1_ci", "em", "em_ci", "recovery", "recovery_ci", "in_context_recall", "in_context_recall_ci"}


def test_single_summary_statistics_by_hand():
    methods = fakes()
    result = run_single(list(methods), builder(**methods), make_contexts(), progress=False)
    summary = summary_dict(result)
    rows = summary["methods"]
    assert summary["bootstrap"]["resamples"] == 2000 and summary["bootstrap"]["level"] == 0.95
    for name in methods:
        assert KEYS <= set(rows[name])
        assert rows[name]["f1_ci"][0] <= rows[name]["f1"] <= rows[name]["f1_ci"][1]
    # Base(Q) 1/3, Base(C+Q) 1, SELF-PARAM (1 + 1 + 1/3 + 1/3) / 4 = 2/3: recovery (2/3 - 1/3) / (1 - 1/3) = 1/2
    assert rows["selfparam"]["f1"] == pytest.approx(2 / 3)
    assert rows["selfparam"]["recovery"] == pytest.approx(0.5)
    assert rows["base"]["recovery"] == pytest.approx(0.0) and rows["base-cq"]["recovery"] == pytest.approx(1.0)
    # containment: "red" and "green" hold no gold ("red apple", "blue sky"), the gold answers do: 0, 1/2, 1
    assert [rows[m]["contains"] for m in ("base", "selfparam", "base-cq")] == pytest.approx([0, 0.5, 1])
    assert rows["selfparam"]["contains_recovery"] == pytest.approx(0.5)
    # Base(C+Q) answers all 8 well; SELF-PARAM the 4 of contexts 0-1 and the two "red" (F1 2/3) of contexts 2-3
    assert rows["selfparam"]["in_context_recall"] == pytest.approx(6 / 8)
    assert rows["base"]["in_context_recall"] == pytest.approx(4 / 8)  # the four "red" answers
    # FT(S) answers exactly as SELF-PARAM: a difference of 0 with the interval [0, 0]; Base(Q) is 1/3 behind
    assert "diff_vs_selfparam" not in rows["selfparam"]
    assert rows["ft-s"]["diff_vs_selfparam"] == 0.0 and rows["ft-s"]["diff_vs_selfparam_ci"] == [0.0, 0.0]
    assert rows["base"]["diff_vs_selfparam"] == pytest.approx(-1 / 3) and rows["base"]["diff_vs_selfparam_ci"][1] < 0
    assert rows["base-cq"]["diff_vs_selfparam_ci"][0] > 0
    md = summary_markdown(result)
    ft_row = next(line for line in md.splitlines() if line.startswith("| ft-s |"))
    base_row = next(line for line in md.splitlines() if line.startswith("| base |"))
    assert "level (+0.000 [+0.000, +0.000])" in ft_row
    assert "-0.333 [" in base_row and "level" not in base_row
    assert "0.500 [" in next(line for line in md.splitlines() if line.startswith("| selfparam |"))
    # intervals over contexts: SELF-PARAM's per-context means are 1, 1, 1/3, 1/3 (each context's two questions
    # resampled together): no resample leaves [1/3, 1], and with four contexts the interval is the wider one
    sp = rows["selfparam"]
    assert sp["f1_ci_by_context"][0] >= 1 / 3 - 1e-9 and sp["f1_ci_by_context"][1] <= 1 + 1e-9
    width = {k: sp[k][1] - sp[k][0] for k in ("f1_ci", "f1_ci_by_context")}
    assert width["f1_ci_by_context"] > width["f1_ci"]
    assert rows["ft-s"]["diff_vs_selfparam_ci_by_context"] == [0.0, 0.0] and "recovery_ci_by_context" in sp
    assert "Intervals over contexts" in md and "_ci_by_context" in md


def test_logprob_statistics_by_hand():
    """TableMethod's gold log-prob: -0.5 ("red apple") and -0.25 (best of "blue sky", "sky") on a context it
    knows, -2 on one it does not. Base(Q) -2; Base(C+Q) -0.375; SELF-PARAM knows contexts 0-1:
    (4 * -0.375 + 4 * -2) / 8 = -1.1875, recovering (-1.1875 + 2) / (-0.375 + 2) = 1/2 of the gain."""
    methods = fakes()
    result = run_single(list(methods), builder(**methods), make_contexts(), progress=False)
    rows = summary_dict(result)["methods"]
    assert rows["base"]["logprob"] == -2.0 and rows["base-cq"]["logprob"] == -0.375
    assert rows["selfparam"]["logprob"] == pytest.approx(-1.1875)
    assert rows["selfparam"]["logprob_ci"][0] <= -1.1875 <= rows["selfparam"]["logprob_ci"][1]
    assert rows["selfparam"]["logprob_recovery"] == pytest.approx(0.5)
    assert rows["base"]["logprob_recovery"] == 0.0 and rows["base-cq"]["logprob_recovery"] == 1.0
    assert rows["ft-s"]["diff_logprob_vs_selfparam"] == 0.0 and rows["ft-s"]["diff_logprob_vs_selfparam_ci"] == [0, 0]
    assert rows["base"]["diff_logprob_vs_selfparam"] == pytest.approx(-0.8125)
    assert rows["base"]["diff_logprob_vs_selfparam_ci"][1] < 0
    md = summary_markdown(result)
    header = next(line for line in md.splitlines() if line.startswith("| method |"))
    column = header.split(" | ").index("log-prob recovery")
    selfparam_row = next(line for line in md.splitlines() if line.startswith("| selfparam |"))
    assert selfparam_row.split(" | ")[column].startswith("0.500 [")


def record(method: str, question: str, f1: float, **logprob: float | None) -> dict:
    """A per-question record; `logprob=` left out as in records written before it was recorded."""
    return {"method": method, "context_id": "c", "question": question, "f1": f1, "em": 0, **logprob}


def test_logprob_statistics_use_only_the_questions_every_method_has_it_for():
    """Resumed from an older run log, SELF-PARAM's q1 has no `logprob` (an explicit None counts as missing
    too): its log-prob figures use q2 and q3 only, Base(Q)'s own mean all three; F1 is untouched.
    SELF-PARAM -1.75; on q2-q3 Base(Q) -2.5 and Base(C+Q) -1: recovery 0.75 / 1.5; Base(Q) - SELF-PARAM -0.75."""
    records = {"base": [record("base", q, 0.0, logprob=lp) for q, lp in (("q1", -4.0), ("q2", -3.0), ("q3", -2.0))],
               "base-cq": [record("base-cq", q, 1.0, logprob=-1.0) for q in ("q1", "q2", "q3")],
               "selfparam": [record("selfparam", "q1", 1.0), record("selfparam", "q2", 0.0, logprob=-2.0),
                             record("selfparam", "q3", 0.0, logprob=-1.5)]}
    rows = statistics(records)
    assert rows["selfparam"]["f1"] == pytest.approx(1 / 3) and rows["selfparam"]["recovery"] == pytest.approx(1 / 3)
    assert rows["selfparam"]["logprob"] == pytest.approx(-1.75)
    assert rows["selfparam"]["logprob_recovery"] == pytest.approx(0.5)
    assert rows["base"]["logprob"] == pytest.approx(-3.0)
    assert rows["base"]["diff_logprob_vs_selfparam"] == pytest.approx(-0.75)
    records["selfparam"][0] = record("selfparam", "q1", 1.0, logprob=None)
    assert statistics(records)["selfparam"] == rows["selfparam"]
    # no record has it (a whole run from before): None, not a crash and not a figure from other questions
    old = {m: [{k: v for k, v in r.items() if k != "logprob"} for r in rs] for m, rs in records.items()}
    for row in statistics(old).values():
        assert row["logprob"] is None and row["logprob_ci"] is None
        assert row["logprob_recovery"] is None and row["logprob_recovery_ci"] is None
        assert row.get("diff_logprob_vs_selfparam") is None
    assert statistics(old)["selfparam"]["f1"] == pytest.approx(1 / 3)


def test_contains_credits_an_answer_in_a_sentence_that_f1_marks_down():
    """SELF-PARAM answers in sentences that hold the gold (F1 1/2 each: "answer is 1887" against "1887"); FT(S) with
    bare spans, two right and two wrong (F1 1 and 0). F1 is level; containment is 1 against 1/2."""
    golds = {"q1": "1887", "q2": "781", "q3": "Muybridge", "q4": "Kingston"}
    bare = {"q1": "1887", "q2": "781", "q3": "Stanford", "q4": "London"}

    def rec(method, q, prediction):
        return {"method": method, "context_id": f"c{q[1]}", "question": q, "golds": [golds[q]],
                "prediction": prediction, "f1": best_f1(prediction, [golds[q]]), "em": best_em(prediction, [golds[q]])}

    records = {"selfparam": [rec("selfparam", q, f"The answer is {g}.") for q, g in golds.items()],
               "ft-s": [rec("ft-s", q, p) for q, p in bare.items()]}
    rows = statistics(records)
    assert rows["selfparam"]["f1"] == pytest.approx(0.5) and rows["ft-s"]["f1"] == pytest.approx(0.5)
    assert rows["ft-s"]["diff_vs_selfparam"] == pytest.approx(0.0)
    assert rows["selfparam"]["contains"] == 1.0 and rows["ft-s"]["contains"] == pytest.approx(0.5)
    assert rows["ft-s"]["diff_contains_vs_selfparam"] == pytest.approx(-0.5)
    assert rows["ft-s"]["diff_contains_vs_selfparam_ci"][1] <= 0
    assert "contains_recovery" not in rows["selfparam"]  # no Base(Q) and Base(C+Q) to recover between
    assert len(rows["ft-s"]["diff_contains_vs_selfparam_ci_by_context"]) == 2
    # a record that logged its own figure keeps it; records without prediction or golds get none
    records["ft-s"][0] = {**records["ft-s"][0], "contains": 0.0}
    assert statistics(records)["ft-s"]["contains"] == pytest.approx(0.25)
    bare_records = {m: [{k: v for k, v in r.items() if k != "prediction"} for r in rs] for m, rs in records.items()}
    assert "contains" not in statistics(bare_records)["selfparam"]


def test_statistics_need_their_reference_methods():
    methods = {k: v for k, v in fakes().items() if k in ("selfparam", "ft-s")}
    result = run_single(list(methods), builder(**methods), make_contexts(), progress=False)
    rows = summary_dict(result)["methods"]
    assert "recovery" not in rows["selfparam"] and "in_context_recall" not in rows["selfparam"]
    assert rows["ft-s"]["diff_vs_selfparam"] == 0.0


def test_failed_methods_get_no_statistics():
    methods = fakes()
    methods["ft-s"] = TableMethod("ft-s", fail_on_inject=2)
    result = run_single(list(methods), builder(**methods), make_contexts(), progress=False)
    rows = summary_dict(result)["methods"]
    assert rows["ft-s"]["status"] == "failed" and "f1_ci" not in rows["ft-s"]
    assert rows["selfparam"]["recovery"] == pytest.approx(0.5)


def test_sequential_final_row_and_diagonal():
    """memory=2 forgets all but the last two contexts: after the last step contexts 0-1 are forgotten, while
    every context is known right after its own injection (the diagonal)."""
    methods = {"base": TableMethod("base", memory=0),
               "base-cq": TableMethod("base-cq", memory=0, use_gold_context=True),
               "selfparam": TableMethod("selfparam", memory=2)}
    result = run_sequential(list(methods), builder(**methods), make_contexts(), progress=False)
    rows = report_statistics("sequential", result.records, list(methods))
    assert rows["selfparam"]["f1"] == pytest.approx(2 / 3) and rows["selfparam"]["recovery"] == pytest.approx(0.5)
    assert rows["selfparam"]["f1_diagonal"] == pytest.approx(1.0)
    assert rows["selfparam"]["recovery_diagonal"] == pytest.approx(1.0)
    assert rows["selfparam"]["recovery_diagonal_ci"] == [1.0, 1.0]
    assert rows["base"]["diff_vs_selfparam_diagonal"] == pytest.approx(-2 / 3)
    md = summary_markdown(result)
    assert "## Right after each context's own injection (the diagonal)" in md


def test_merge_recomputes_statistics_from_the_merged_records(tmp_path):
    from selfparam.eval.report import merge_runs, write_config

    methods = fakes()
    for folder, names in (("a", ("base", "base-cq")), ("b", ("selfparam", "ft-s"))):
        part = run_single(list(names), builder(**{n: methods[n] for n in names}), make_contexts(), progress=False)
        write_config(tmp_path / folder, {"settings": {"task": "single", "n": 4}, "items": ["c0", "c1", "c2", "c3"]})
        write_report(tmp_path / folder, part, plots=False)
    alone = json.loads((tmp_path / "b" / "summary.json").read_text())["methods"]["selfparam"]
    assert "recovery" not in alone  # base and base-cq were run apart
    merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    merged = json.loads((tmp_path / "ab" / "summary.json").read_text())["methods"]
    assert merged["selfparam"]["recovery"] == pytest.approx(0.5)
    assert merged["base"]["diff_vs_selfparam"] == pytest.approx(-1 / 3)


def test_is_statistic():
    assert all(is_statistic(k) for k in ("f1_ci", "recovery", "em_diagonal", "diff_vs_selfparam_diagonal_ci",
                                         "logprob", "logprob_recovery_ci", "diff_logprob_vs_selfparam_diagonal",
                                         "f1_ci_by_context", "diff_vs_selfparam_diagonal_ci_by_context", "contains_ci",
                                         "diff_contains_vs_selfparam_diagonal"))
    assert not any(is_statistic(k) for k in ("f1_all", "storage_bytes", "curve", "mmlu_acc", "logprob_seconds"))
