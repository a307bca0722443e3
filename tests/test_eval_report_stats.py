"""Reports carry the bootstrap statistics, worked out by hand on fake methods (see test_eval_tasks)."""

from __future__ import annotations

import json

import pytest
from test_eval_tasks import TableMethod, builder, make_contexts

from selfparam.eval.comparison import is_statistic, report_statistics
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
    assert all(is_statistic(k) for k in ("f1_ci", "recovery", "em_diagonal", "diff_vs_selfparam_diagonal_ci"))
    assert not any(is_statistic(k) for k in ("f1_all", "storage_bytes", "curve", "mmlu_acc"))
