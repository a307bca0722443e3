"""`selfparam eval ablate`: labelled runs of the same draw in one table, figures worked out by hand on fake
methods (see test_eval_tasks and test_eval_report_stats)."""

from __future__ import annotations

import json
import math

import pytest
from test_cli import assert_one_error_line
from test_eval_report_stats import KnowsFirst
from test_eval_tasks import TableMethod, builder, make_contexts
from typer.testing import CliRunner

from selfparam.eval.ablation import ablate, differing_settings, parse_run_spec
from selfparam.eval.report import write_config, write_report
from selfparam.eval.tasks import run_sequential, run_single

ITEMS = ["c0", "c1", "c2", "c3"]


def make_run(folder, methods, questions="paper", items=ITEMS, method_configs=None):
    """A run folder as `selfparam eval single` writes it, from fake methods on the four table contexts."""
    result = run_single(list(methods), builder(**methods), make_contexts(), progress=False)
    write_config(folder, {"settings": {"task": "single", "data": "squad.json", "n": 4, "seed": 0,
                                       "max_new_tokens": 32, "questions": questions, "out": str(folder),
                                       "methods": list(methods)},
                          "method_configs": method_configs or {}, "items": items})
    write_report(folder, result, plots=False)
    return folder


def baselines():
    return {"base": TableMethod("base", memory=0), "base-cq": TableMethod("base-cq", memory=0, use_gold_context=True)}


@pytest.fixture
def runs(tmp_path):
    # paper: SELF-PARAM keeps contexts 0-1 only (F1 2/3); facts: it keeps all four (F1 1)
    paper = make_run(tmp_path / "paper", {**baselines(), "selfparam": KnowsFirst("selfparam")},
                     method_configs={"selfparam": {"train": {"epochs": 1}, "rank": 8}})
    facts = make_run(tmp_path / "facts", {**baselines(), "selfparam": TableMethod("selfparam")}, questions="facts",
                     method_configs={"selfparam": {"train": {"epochs": 3}, "rank": 8}})
    return paper, facts


def test_labelled_rows_and_the_difference_against_the_reference(runs, tmp_path):
    paper, facts = runs
    paths = ablate([(paper, "paper"), (facts, "facts")], tmp_path / "out", reference="selfparam[paper]")
    table = json.loads(paths["ablation_json"].read_text())
    rows = table["methods"]
    # the reference first, then the other labelled methods, then the baselines taken once
    assert list(rows) == ["selfparam[paper]", "selfparam[facts]", "base", "base-cq"]
    assert rows["selfparam[paper]"]["f1"] == pytest.approx(2 / 3)
    assert rows["selfparam[facts]"]["f1"] == pytest.approx(1.0)
    # recovery (F1 - 1/3) / (1 - 1/3): 1/2 for paper, 1 for facts; in-context recall 6/8 and 8/8
    assert rows["selfparam[paper]"]["recovery"] == pytest.approx(0.5)
    assert rows["selfparam[facts]"]["recovery"] == pytest.approx(1.0)
    assert rows["selfparam[paper]"]["in_context_recall"] == pytest.approx(6 / 8)
    assert rows["selfparam[facts]"]["in_context_recall"] == pytest.approx(1.0)
    # per question facts - paper: 0 on the four of contexts 0-1, 1/3 on the two "red", 1 on the two "green":
    # (2/3 + 2) / 8 = 1/3; every paired difference is >= 0 and some > 0, so the interval excludes 0
    facts_row = rows["selfparam[facts]"]
    assert facts_row["diff_vs_reference"] == pytest.approx(1 / 3)
    assert facts_row["diff_vs_reference_ci"][0] > 0 and facts_row["level"] is False
    assert rows["base"]["diff_vs_reference"] == pytest.approx(1 / 3 - 2 / 3)
    assert rows["selfparam[paper]"]["diff_vs_reference"] is None
    assert all(r["n_questions"] == 8 for r in rows.values())
    # the gold log-prob: the fakes give Base(C+Q)'s value wherever they know the context, Base(Q)'s elsewhere
    assert facts_row["logprob_recovery"] == pytest.approx(1.0)
    assert 0 < rows["selfparam[paper]"]["logprob_recovery"] < 1
    assert facts_row["diff_logprob_vs_reference_ci"][0] > 0 and facts_row["logprob_level"] is False
    seconds = json.loads((facts / "summary.json").read_text())["methods"]["selfparam"]["inject_seconds"]
    assert facts_row["inject_seconds_per_context"] == pytest.approx(seconds)  # one injection per context
    # what each lever is: the settings that differ, per label
    assert table["runs"]["paper"]["differs"] == {"questions": "paper", "method_configs.selfparam.train.epochs": 1}
    assert table["runs"]["facts"]["differs"] == {"questions": "facts", "method_configs.selfparam.train.epochs": 3}
    assert table["reference"] == "selfparam[paper]" and "git_revision" in table
    md = paths["ablation_md"].read_text()
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| selfparam[paper] |") and "| reference |" in lines[1]
    header, cells = lines[0].split(" | "), lines[2].split(" | ")
    column = {name: header.index(name) for name in ("F1 − reference", "contains − reference",
                                                     "log-prob − reference", "… over contexts")}
    assert cells[0] == "| selfparam[facts]" and cells[column["F1 − reference"]].startswith("+0.333 [")  # not level
    # the log-prob difference: beyond the noise over questions, level over the two contexts' clusters
    assert cells[column["log-prob − reference"]].startswith("+0.812 [")
    assert cells[column["… over contexts"]].startswith("level (+0.812 [")
    contains = table["methods"]["selfparam[facts]"]["diff_contains_vs_reference"]
    assert cells[column["contains − reference"]].removeprefix("level (").startswith(f"{contains:+.3f} [")
    assert table["methods"]["selfparam[facts]"]["diff_logprob_vs_reference_ci_by_context"][0] <= 0
    assert "`questions` = \"facts\"" in md


def test_a_level_difference_reads_level(runs, tmp_path):
    paper, _ = runs
    same = make_run(tmp_path / "same", {"selfparam": KnowsFirst("selfparam")})
    rows = json.loads(ablate([(paper, "paper"), (same, "again")], tmp_path / "out",
                             reference="selfparam[paper]")["ablation_json"].read_text())["methods"]
    assert rows["selfparam[again]"]["diff_vs_reference_ci"] == [0.0, 0.0] and rows["selfparam[again]"]["level"]
    # the baselines came from the one run that had them; the other's rows still get recovery
    assert rows["selfparam[again]"]["recovery"] == pytest.approx(0.5)
    md = (tmp_path / "out/ablation.md").read_text()
    assert "level (+0.000 [+0.000, +0.000])" in md


def test_runs_of_another_draw_are_refused(runs, tmp_path):
    paper, _ = runs
    other = make_run(tmp_path / "other", {"selfparam": TableMethod("selfparam")}, items=["c0", "c1", "c2", "c9"])
    with pytest.raises(ValueError, match=r"other differs from .*paper in items"):
        ablate([(paper, "paper"), (other, "other")], tmp_path / "out", reference="selfparam[paper]")
    assert not (tmp_path / "out").exists()


def test_baselines_that_score_differently_are_refused(runs, tmp_path):
    paper, _ = runs
    odd = make_run(tmp_path / "odd", {"base": KnowsFirst("base"), "selfparam": TableMethod("selfparam")})  # 0-1 differ
    with pytest.raises(ValueError, match=r"'base' scores differently in .*odd and .*paper on 4 question"):
        ablate([(paper, "paper"), (odd, "odd")], tmp_path / "out", reference="selfparam[paper]")
    assert not (tmp_path / "out").exists()


def test_unknown_reference_and_bad_labels(runs, tmp_path):
    paper, facts = runs
    with pytest.raises(ValueError, match=r"unknown reference 'selfparam'.*selfparam\[paper\]"):
        ablate([(paper, "paper"), (facts, "facts")], tmp_path / "out", reference="selfparam")
    with pytest.raises(ValueError, match="its own label"):
        ablate([(paper, "x"), (facts, "x")], tmp_path / "out", reference="selfparam[x]")
    assert parse_run_spec("runs/a:b:facts") == (parse_run_spec("runs/a:b:x")[0], "facts")
    for spec in ("runs/facts", "runs/facts:", ":facts", "runs/facts:a[1]"):
        with pytest.raises(ValueError, match="ablate"):
            parse_run_spec(spec)


@pytest.mark.plots  # asserts the PNG files
def sequential_runs(tmp_path) -> list:
    """Two sequential runs of the four table contexts, labelled by SELF-PARAM's memory: m2 keeps the last two
    contexts (with Base(Q) and Base(C+Q) beside it), m3 the last three."""
    folders = []
    for label, memory, extra in (("m2", 2, baselines()), ("m3", 3, {})):
        methods = {**extra, "selfparam": TableMethod("selfparam", memory=memory)}
        result = run_sequential(list(methods), builder(**methods), make_contexts(), progress=False)
        write_config(tmp_path / label, {"settings": {"task": "sequential", "n": 4, "seed": 0, "memory": memory},
                                        "items": ITEMS})
        write_report(tmp_path / label, result, plots=False)
        folders.append((tmp_path / label, label))
    return folders


def test_sequential_runs_give_the_last_step(tmp_path):
    """After the last step memory=2 keeps the last two of four contexts (F1 2/3), memory=3 the last three:
    6 gold answers, one "red" (F1 2/3) and one "green" (0), so (6 + 2/3) / 8 = 5/6."""
    folders = sequential_runs(tmp_path)
    table = json.loads(ablate(folders, tmp_path / "out", reference="selfparam[m2]")["ablation_json"].read_text())
    rows = table["methods"]
    assert rows["selfparam[m2]"]["f1"] == pytest.approx(2 / 3) and rows["selfparam[m3]"]["f1"] == pytest.approx(5 / 6)
    assert rows["selfparam[m3]"]["diff_vs_reference"] == pytest.approx(1 / 6)
    assert rows["selfparam[m3]"]["n_questions"] == 8  # the last step's questions, not all 4 steps' 20
    assert table["runs"]["m3"]["differs"] == {"memory": 3}
    # the gold log-prob: a known context's questions -0.375 on average, a forgotten one's -2.0 (Base(Q) knows
    # none, Base(C+Q) all); right after its own injection every context is known (recovery 1), after the last
    # m2 knows half the questions' contexts: (-1.1875 + 2) / (-0.375 + 2) = 0.5; m3: (-0.78125 + 2) / 1.625 = 0.75
    k = -0.375
    assert rows["selfparam[m2]"]["retention_logprob"] == [[k, None, None, None], [k, k, None, None],
                                                           [-2.0, k, k, None], [-2.0, -2.0, k, k]]
    assert rows["selfparam[m3]"]["retention"][3] == [pytest.approx(1 / 3), 1.0, 1.0, 1.0]
    assert rows["selfparam[m2]"]["logprob_recovery_diagonal"] == pytest.approx(1.0)
    assert rows["selfparam[m2]"]["logprob_recovery"] == pytest.approx(0.5)
    assert rows["selfparam[m3]"]["logprob_recovery"] == pytest.approx(0.75)
    md = (tmp_path / "out" / "ablation.md").read_text()
    assert "| selfparam[m2] | 1.000 [1.000, 1.000] | 0.500 [" in md and "| 0.50 |" in md and "| 0.75 |" in md
    for name in ("retention.png", "retention_logprob.png"):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_at_step_compares_sequential_runs_after_that_many_updates(tmp_path, runs):
    folders = sequential_runs(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "m2" / "predictions.jsonl").read_text().splitlines()]
    third = [r["f1"] for r in records if r["method"] == "selfparam" and r["step"] == 2]
    table = json.loads(ablate(folders, tmp_path / "out", reference="selfparam[m2]", at_step=3)["ablation_json"]
                       .read_text())
    rows = table["methods"]
    assert table["at_step"] == 3 and rows["selfparam[m2]"]["n_questions"] == len(third) == 6
    assert rows["selfparam[m2]"]["f1"] == pytest.approx(sum(third) / 6)  # after the third update, not the fourth
    assert rows["selfparam[m3]"]["f1"] == pytest.approx(1.0)  # three contexts, all three remembered
    assert len(rows["selfparam[m2]"]["retention"]) == 3 and rows["selfparam[m2]"]["retention"][2][0] < 1.0
    assert "after update 3" in (tmp_path / "out" / "ablation.md").read_text()
    with pytest.raises(ValueError, match="selfparam in .*m2 did not reach update 5"):
        ablate(folders, tmp_path / "out5", reference="selfparam[m2]", at_step=5)
    with pytest.raises(ValueError, match="counts updates from 1"):
        ablate(folders, tmp_path / "out0", reference="selfparam[m2]", at_step=0)
    with pytest.raises(ValueError, match="these are single"):
        ablate([(runs[0], "paper"), (runs[1], "facts")], tmp_path / "single", reference="selfparam[paper]",
               at_step=1)
    assert not (tmp_path / "out5").exists() and not (tmp_path / "single").exists()


def test_retention_from_records_orders_contexts_by_their_injection():
    from selfparam.eval.tasks import retention_from_records

    records = [{"step": 0, "context_id": "b", "f1": 1.0, "logprob": -1.0},
               {"step": 1, "context_id": "b", "f1": 0.5, "logprob": None},
               {"step": 1, "context_id": "a", "f1": 1.0, "logprob": -0.5},
               {"step": 1, "context_id": "a", "f1": 0.0, "logprob": -1.5}]
    assert retention_from_records(records) == [[1.0, None], [0.5, 0.5]]
    assert retention_from_records(records, "logprob") == [[-1.0, None], [None, -1.0]]
    assert retention_from_records([]) == []


def test_method_configs_compare_among_the_runs_that_ran_the_method():
    configs = [{"settings": {"task": "single", "out": "a"}, "method_configs": {"selfparam": {"rank": 8},
                                                                              "ft-s": {"lr": 1}}},
               {"settings": {"task": "single", "out": "b"}, "method_configs": {"selfparam": {"rank": 16}}}]
    assert differing_settings(configs) == [{"method_configs.selfparam.rank": 8}, {"method_configs.selfparam.rank": 16}]


def test_cli_writes_the_table_and_refuses_in_one_line(runs, tmp_path):
    from selfparam.cli import app

    paper, facts = runs
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "ablate", f"{paper}:paper", f"{facts}:facts", "--reference", "selfparam[paper]",
                             "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert "| selfparam[facts] |" in ok.stdout and (tmp_path / "out/ablation.json").is_file()
    no_label = runner.invoke(app, ["eval", "ablate", str(paper), f"{facts}:facts", "--out", str(tmp_path / "o2")])
    assert_one_error_line(no_label, "needs a label")
    unknown = runner.invoke(app, ["eval", "ablate", f"{paper}:paper", f"{facts}:facts", "--reference", "rag[paper]",
                                  "--out", str(tmp_path / "o3")])
    assert_one_error_line(unknown, "unknown reference 'rag[paper]'")
    at_step = runner.invoke(app, ["eval", "ablate", f"{paper}:paper", f"{facts}:facts", "--reference",
                                  "selfparam[paper]", "--at-step", "2", "--out", str(tmp_path / "o4")])
    assert_one_error_line(at_step, "--at-step compares sequential runs")
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()


def test_a_method_that_failed_part_way_is_compared_on_the_questions_it_scored(tmp_path):
    # paper's SELF-PARAM fails at its fourth context (a generator that wrote too few pairs): its three
    # contexts count, and every row is taken on those six questions, the baselines' too
    paper = make_run(tmp_path / "paper", {**baselines(), "selfparam": TableMethod("selfparam", fail_on_inject=4)})
    facts = make_run(tmp_path / "facts", {"selfparam": TableMethod("selfparam")}, questions="facts")
    paths = ablate([(paper, "paper"), (facts, "facts")], tmp_path / "out", reference="selfparam[paper]")
    table = json.loads(paths["ablation_json"].read_text())
    rows = table["methods"]
    assert rows["selfparam[paper]"]["status"] == "failed" and "error" in rows["selfparam[paper]"]
    assert table["questions"] == {"scored": 6, "left_out": 2}
    assert all(r["n_questions"] == 6 for r in rows.values())
    assert rows["selfparam[facts]"]["diff_vs_reference"] == pytest.approx(0.0)  # both know c0-c2
    assert rows["selfparam[paper]"]["recovery"] == pytest.approx(1.0)
    assert "6 questions every method scored (2 left out" in paths["ablation_md"].read_text()


def _with_general(folder, before, after):
    """The run's summary as `--general` writes it: the base model's figures and SELF-PARAM's after injection."""
    path = folder / "summary.json"
    summary = json.loads(path.read_text())
    summary["general_before"] = before
    summary["methods"]["selfparam"].update(after)
    path.write_text(json.dumps(summary))


def _figures(hits, nll):
    return {"mmlu_acc": sum(hits) / len(hits), "wikitext_ppl": math.exp(sum(nll) / 8), "mmlu_hits": hits,
            "wikitext_block_nll": nll, "wikitext_block_tokens": [4, 4]}


def test_general_ability_against_the_base_model_and_the_reference_paired(runs, tmp_path):
    paper, facts = runs
    base = _figures([1.0, 1.0, 0.0, 0.0], [8.0, 8.0])
    _with_general(paper, base, _figures([1.0, 0.0, 0.0, 0.0], [8.4, 8.4]))  # one question lost, +0.1 nats/token
    _with_general(facts, base, _figures([1.0, 1.0, 0.0, 0.0], [8.0, 8.0]))  # nothing moved
    table = json.loads(ablate([(paper, "paper"), (facts, "facts")], tmp_path / "out",
                              reference="selfparam[paper]")["ablation_json"].read_text())
    rows = table["methods"]
    paper_row, facts_row = rows["selfparam[paper]"]["general"], rows["selfparam[facts]"]["general"]
    assert paper_row["vs_base"]["mmlu_change"] == pytest.approx(-0.25)
    assert paper_row["vs_base"]["wikitext_ppl_change"] == pytest.approx(math.exp(0.1) - 1)
    assert "vs_reference" not in paper_row  # the reference itself
    assert facts_row["vs_base"]["mmlu_change"] == 0 and facts_row["vs_base"]["wikitext_ppl_change"] == 0
    assert facts_row["vs_reference"]["mmlu_change"] == pytest.approx(0.25)  # paired on the same questions
    assert facts_row["vs_reference"]["wikitext_ppl_change"] == pytest.approx(math.exp(-0.1) - 1)
    assert "general" not in table["methods"]["base"]  # measured for SELF-PARAM alone here
    md = (tmp_path / "out" / "ablation.md").read_text()
    assert "## General ability after the last injection" in md
    assert "| selfparam[facts] | 7.39 | level (+0.000 [+0.000, +0.000]) | -0.095 [-0.095, -0.095] | 0.500 |" in md
