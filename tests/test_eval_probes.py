"""Conflicting updates and near-miss pollution: the scoring arithmetic on hand-made answers and fake methods
whose answers are known in advance, the probe builders, and both CLI commands on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from selfparam.eval.boundary import (
    BoundaryConfig,
    BoundaryItem,
    counterfact_items,
    entities,
    pollution_share,
    run_boundary,
    squad_items,
    template,
)
from selfparam.eval.conflicts import ConflictConfig, classify, draw, load_fact_cases, run_conflicts, shares
from selfparam.eval.loaders import ContextQA, QuestionAnswers
from selfparam.methods.base import Context
from selfparam.methods.rag.config import RAGConfig

RECORDS = [
    {"case_id": 0, "prompt": "The mother tongue of Danielle Darrieux is", "target_new": "English",
     "subject": "Danielle Darrieux", "ground_truth": "French",
     "rephrase_prompt": "Danielle Darrieux speaks the language of",
     "locality_prompt": "Michel Rocard is a native speaker of", "locality_ground_truth": "French"},
    {"case_id": 1, "prompt": "The mother tongue of Michel Rocard is", "target_new": "Dutch", "subject": "Michel Rocard",
     "ground_truth": "French", "rephrase_prompt": "Michel Rocard grew up speaking", "locality_prompt":
     "Ségolène Royal is a native speaker of", "locality_ground_truth": "French"},
    {"case_id": 2, "prompt": "The mother tongue of Tony Blair is", "target_new": "English", "subject": "Tony Blair",
     "ground_truth": "English", "rephrase_prompt": "Tony Blair grew up speaking", "locality_prompt":
     "Gordon Brown is a native speaker of", "locality_ground_truth": "English"},
    {"case_id": 3, "prompt": "Toko Yasuda plays the", "target_new": "piano", "subject": "Toko Yasuda",
     "ground_truth": "guitar", "rephrase_prompt": "Toko Yasuda is known for playing the",
     "locality_prompt": "Jimi Hendrix plays the", "locality_ground_truth": "guitar"},
]


@pytest.fixture
def cf_file(tmp_path) -> Path:
    path = tmp_path / "cf.json"
    path.write_text(json.dumps(RECORDS))
    return path


class Memo:
    """Keeps injected fact sentences; answers a question with the object of the first or last sentence that
    starts with it (so rephrased questions, which no sentence starts with, get "no idea")."""

    def __init__(self, name: str = "memo", latest: bool = True, leak: bool = False):
        self.name, self.latest, self.leak = name, latest, leak
        self.facts: list[str] = []

    def inject(self, contexts):
        self.facts += [c.text for c in contexts]

    def answer(self, queries, max_new_tokens=32):
        out = []
        for q in queries:
            hits = [f[len(q.question):].strip(" .") for f in self.facts if f.startswith(q.question)]
            if self.leak and self.facts:  # answers every question with the newest object
                hits = [self.facts[-1].rsplit(" ", 1)[-1].strip(".")]
            out.append((hits[-1] if self.latest else hits[0]) if hits else "no idea")
        return out

    def reset(self):
        self.facts = []


def test_classify_and_shares_by_hand():
    assert classify("It is English.", earlier="French", later="English") == "later_wins"
    assert classify("french", earlier="French", later="English") == "earlier_kept"
    assert classify("French or English", earlier="French", later="English") == "both"
    assert classify("Spanish", earlier="French", later="English") == "neither"
    assert shares(["later_wins", "later_wins", "neither", "both"]) == {"later_wins": 0.5, "earlier_kept": 0.0,
                                                                      "both": 0.25, "neither": 0.25}
    with pytest.raises(ValueError):
        shares([])
    with pytest.raises(ValueError, match="unknown outcomes"):
        shares(["won"])


def test_fact_cases_skip_records_that_contradict_nothing(cf_file):
    cases = load_fact_cases(cf_file)
    assert [c.id for c in cases] == ["cf-0", "cf-1", "cf-3"]  # Tony Blair: English -> English
    assert cases[0].sentence(cases[0].true_object) == "The mother tongue of Danielle Darrieux is French."
    assert draw(cases, 2, 0) == draw(cases, 3, 0)[:2]  # a smaller n draws a prefix
    with pytest.raises(ValueError, match="holds 3 usable"):
        draw(cases, 4, 0)
    bad = cf_file.parent / "bad.json"
    bad.write_text(json.dumps([{k: v for k, v in RECORDS[0].items() if k != "ground_truth"}]))
    with pytest.raises(ValueError, match="ground_truth"):
        load_fact_cases(bad)


def test_conflict_shares_from_fake_methods(cf_file, tmp_path):
    cases = load_fact_cases(cf_file)
    methods = {"latest": Memo("latest", latest=True), "earliest": Memo("earliest", latest=False)}
    summary = run_conflicts(cases, list(methods), methods.__getitem__, ConflictConfig(), tmp_path / "out",
                            data_name="cf", progress=False)
    latest, earliest = summary["methods"]["latest"], summary["methods"]["earliest"]
    # 3 cases x 2 orders x 2 questions = 12 answers; the prompt (6 of them) is answered from the facts,
    # the rephrase (6) never: "no idea" -> neither
    assert latest["answers"] == 12 and latest["first_learned"] == 0.5
    assert (latest["later_wins"], latest["earlier_kept"], latest["both"], latest["neither"]) == (0.5, 0, 0, 0.5)
    assert (earliest["later_wins"], earliest["earlier_kept"], earliest["neither"]) == (0, 0.5, 0.5)
    assert latest["by_order"]["true_then_new"]["later_wins"] == 0.5
    # the 6 prompts learned the first fact; "latest" overwrote all 6, "earliest" none
    assert (latest["learned_answers"], latest["later_wins_if_learned"]) == (6, 1.0)
    assert earliest["later_wins_if_learned"] == 0.0
    lo, hi = latest["later_wins_ci"]  # 6 of 12 answers: the interval lies around 0.5, inside (0, 1)
    assert 0.0 < lo < 0.5 < hi < 1.0 and earliest["later_wins_ci"] == [0.0, 0.0]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "rows" not in written["methods"]["latest"] and written["case_ids"] == ["cf-0", "cf-1", "cf-3"]
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and rows[0]["answer_after_second"] == "English" and rows[0]["outcome"] == "later_wins"
    summary_md = (tmp_path / "out" / "summary.md").read_text()
    assert f"| latest | 12 | 0.500 [{lo:.2f}, {hi:.2f}] | 0.000 [0.00, 0.00] |" in summary_md


class Reading(Memo):
    """A Memo whose model can read a context (`ReadsContext`): with a fact sentence in the prompt it answers that
    sentence's object to the question the sentence starts with, "no idea" to any other."""

    def answer_in_context(self, queries, max_new_tokens=32):
        return [q.context[len(q.question):].strip(" .") if q.context.startswith(q.question) else "no idea"
                for q in queries]


def test_conflicts_compare_each_method_with_its_own_reading_of_the_later_fact(cf_file, tmp_path):
    from selfparam.methods.base import ReadsContext

    cases = load_fact_cases(cf_file)
    methods = {"learns": Reading("learns", latest=True), "keeps": Reading("keeps", latest=False), "plain": Memo()}
    assert isinstance(methods["learns"], ReadsContext) and not isinstance(methods["plain"], ReadsContext)
    summary = run_conflicts(cases, list(methods), methods.__getitem__, ConflictConfig(), tmp_path / "out",
                            progress=False)
    learns, keeps = summary["methods"]["learns"], summary["methods"]["keeps"]
    # read between the updates: the prompt (6 of 12 answers) gets the later object, the rephrase "no idea"
    assert learns["read_answers"] == 12 and learns["reading_later_wins"] == 0.5
    assert learns["reading"] == {"later_wins": 0.5, "earlier_kept": 0.0, "both": 0.0, "neither": 0.5}
    # "learns" answers the later object exactly where its reading did; "keeps" never does
    assert (learns["later_wins_minus_reading"], learns["later_wins_minus_reading_ci"]) == (0.0, [0.0, 0.0])
    assert (learns["read_later_answers"], learns["later_wins_if_read"]) == (6, 1.0)
    assert keeps["later_wins_minus_reading"] == -0.5 and keeps["later_wins_if_read"] == 0.0
    lo, hi = keeps["later_wins_minus_reading_ci"]
    assert -1.0 < lo < -0.5 < hi < 0.0
    assert "reading_later_wins" not in summary["methods"]["plain"]
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["method"] == "keeps" and r["order"] == "true_then_new")
    assert (first["reading"], first["reading_outcome"], first["outcome"]) == ("English", "later_wins", "earlier_kept")
    assert not any("reading" in r for r in rows if r["method"] == "plain")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## With the later fact in the prompt" in md and "| plain |" not in md.split("## With the later")[1]
    assert "| keeps | 12 | 0.500 [" in md and f"| -0.500 [{lo:+.2f}, {hi:+.2f}] | 0.000 (6) |" in md


def test_reading_in_context_refuses_a_query_without_one():
    from selfparam.methods.base import Query
    from selfparam.methods.prompted import answer_in_context

    with pytest.raises(ValueError, match=r"1 queries carry no context, e\.g\. 'Who\?'"):
        answer_in_context(None, [Query("Where?", "It is here."), Query("Who?")])  # refused before the model is used


class Replaying(Memo):
    """A Memo that keeps update records as the weight methods do: each update after the first replays the
    earlier facts' two pairs, and leaves out one of them when the new fact contradicts an earlier one."""

    def __init__(self, name: str):
        super().__init__(name)
        self.records = []

    def inject(self, contexts):
        replay = None
        if self.facts:
            stem = contexts[0].text.rsplit(" ", 1)[0]
            contradicted = any(f.rsplit(" ", 1)[0] == stem and f != contexts[0].text for f in self.facts)
            replay = {"replayed_pairs": 2 * len(self.facts) - contradicted, "superseded_pairs": int(contradicted)}
        super().inject(contexts)
        self.records.append(SimpleNamespace(manifest={} if replay is None else {"rehearsal": replay}))

    def reset(self):
        super().reset()
        self.records = []


def test_conflicts_record_what_the_contradicting_update_replayed(cf_file, tmp_path):
    cases = load_fact_cases(cf_file)
    methods = {"replaying": Replaying("replaying"), "plain": Memo("plain")}
    summary = run_conflicts(cases, list(methods), methods.__getitem__, ConflictConfig(), tmp_path / "out",
                            progress=False)
    # 3 cases x 2 orders: each second update replays 1 of the earlier fact's 2 pairs and leaves out 1,
    # counted once per update, not once per question asked after it
    replaying = summary["methods"]["replaying"]
    assert (replaying["replayed_pairs"], replaying["superseded_pairs"]) == (6, 6)
    assert "replayed_pairs" not in summary["methods"]["plain"]  # no update records: nothing to count
    rows = [json.loads(x) for x in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert {json.dumps(r.get("replay")) for r in rows if r["method"] == "replaying"} == \
        {json.dumps({"replayed_pairs": 1, "superseded_pairs": 1})}
    assert not any("replay" in r for r in rows if r["method"] == "plain")


def test_counterfact_probes(cf_file):
    pool = load_fact_cases(cf_file)
    assert template(pool[0]) == "The mother tongue of {} is"
    items = counterfact_items(pool[:1], pool, per_kind=2, seed=0)
    probes = {(p.kind, p.question) for p in items[0].probes}
    # Michel Rocard's true tongue is French, not the injected English: a fair near miss; the other relation
    # ("{} plays the") with the same subject; the neighbourhood prompt (its truth French is not English)
    assert probes == {("other_entity", "The mother tongue of Michel Rocard is"),
                      ("other_relation", "Danielle Darrieux plays the"),
                      ("neighbourhood", "Michel Rocard is a native speaker of")}
    assert all(p.carried == ("English",) for p in items[0].probes)
    assert items[0].context.text == "The mother tongue of Danielle Darrieux is English."
    # Dutch for Michel Rocard: Danielle Darrieux (truth French) is a near miss too
    rocard = counterfact_items(pool[1:2], pool, per_kind=2, seed=0)[0]
    probes = {(p.kind, p.question) for p in rocard.probes}
    assert ("other_entity", "The mother tongue of Danielle Darrieux is") in probes


def test_squad_probes_swap_entities_of_the_same_shape():
    assert entities("The Denver Broncos beat the Carolina Panthers in Santa Clara in 2016.") == \
        ["Denver Broncos", "Carolina Panthers", "Santa Clara"]
    cqa = ContextQA(Context("sb/0", "The Panthers practiced at San Jose State. The Broncos practiced at Stanford."),
                    (QuestionAnswers("Where did the Panthers practice?", ("San Jose State",)),))
    item = squad_items([cqa], per_kind=2, seed=0)[0]
    assert [(p.question, p.carried) for p in item.probes] == \
        [("Where did the Broncos practice?", ("San Jose State",)),
         ("Where did the Stanford practice?", ("San Jose State",))]


def test_pollution_arithmetic_from_fake_methods(cf_file, tmp_path):
    pool = load_fact_cases(cf_file)
    items = counterfact_items(pool, pool, per_kind=2, seed=0)
    n_probes = sum(len(i.probes) for i in items)
    methods = {"leaky": Memo("leaky", leak=True), "exact": Memo("exact")}
    summary = run_boundary(items, list(methods), methods.__getitem__, BoundaryConfig(), tmp_path / "b",
                           data_name="cf", progress=False)
    leaky, exact = summary["methods"]["leaky"], summary["methods"]["exact"]
    assert leaky["probes"] == exact["probes"] == n_probes and leaky["questions"] == 6
    assert (leaky["efficacy"], leaky["pollution"], leaky["pollution_before"]) == (1.0, 1.0, 0.0)
    assert (exact["efficacy"], exact["pollution"], exact["pollution_before"]) == (0.5, 0.0, 0.0)
    assert leaky["pollution_ci"] == [1.0, 1.0] and exact["pollution_ci"] == [0.0, 0.0]
    assert exact["efficacy_ci"][0] < 0.5 < exact["efficacy_ci"][1]
    assert set(leaky["by_kind"]) == {"other_entity", "other_relation", "neighbourhood"}
    assert pollution_share(["It is English.", "French"], [("English",), ("English",)]) == 0.5
    with pytest.raises(ValueError):
        pollution_share(["a"], [])
    with pytest.raises(ValueError, match="no near-miss probe"):
        run_boundary([BoundaryItem("x", Context("x", "t"), (), ())], ["exact"], methods.__getitem__,
                     BoundaryConfig(), tmp_path / "c", progress=False)
    lo, hi = exact["efficacy_ci"]
    summary_md = (tmp_path / "b" / "summary.md").read_text()
    assert f"| exact | 0.500 [{lo:.2f}, {hi:.2f}] | 0.000 [0.00, 0.00] | 0.000 |" in summary_md


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from selfparam.testing import tiny_lm

    folder = tmp_path_factory.mktemp("tiny")
    lm = tiny_lm(seed=0)
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


class Gullible(Memo):
    """A Memo whose model, reading a fact sentence, answers every question with that sentence's object."""

    def answer_in_context(self, queries, max_new_tokens=32):
        return [q.context.rsplit(" ", 1)[-1].strip(".") for q in queries]


def test_boundary_compares_each_method_with_its_own_reading_of_the_fact(cf_file, tmp_path):
    pool = load_fact_cases(cf_file)
    items = counterfact_items(pool, pool, per_kind=2, seed=0)
    methods = {"careful": Reading("careful"), "gullible": Gullible("gullible"), "plain": Memo("plain")}
    summary = run_boundary(items, list(methods), methods.__getitem__, BoundaryConfig(), tmp_path / "b",
                           progress=False)
    careful, gullible = summary["methods"]["careful"], summary["methods"]["gullible"]
    # reading the fact, "careful" answers the prompt (1 of each item's 2 true questions) and no probe;
    # "gullible" answers everything with the injected object; after injection both answer as the exact Memo
    assert (careful["reading_efficacy"], careful["reading_pollution"]) == (0.5, 0.0)
    assert (careful["efficacy_minus_reading"], careful["pollution_minus_reading"]) == (0.0, 0.0)
    assert (gullible["reading_efficacy"], gullible["reading_pollution"]) == (1.0, 1.0)
    assert (gullible["efficacy_minus_reading"], gullible["pollution_minus_reading"]) == (-0.5, -1.0)
    assert gullible["pollution_minus_reading_ci"] == [-1.0, -1.0]
    assert "reading_pollution" not in summary["methods"]["plain"]
    rows = [json.loads(x) for x in (tmp_path / "b" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["reading"] == r["objects"][0] and r["reading_carries"] for r in rows if r["method"] == "gullible")
    md = (tmp_path / "b" / "summary.md").read_text().split("## With the fact in the prompt")[1]
    assert "| gullible | 1.000 [1.00, 1.00] | 1.000 [1.00, 1.00] | -0.500 [" in md and "| plain |" not in md


def test_report_only_writes_the_report_again_from_the_predictions(cf_file, tmp_path):
    from selfparam.cli import app

    out = tmp_path / "out"
    methods = {"latest": Memo("latest", latest=True)}
    run_conflicts(load_fact_cases(cf_file), list(methods), methods.__getitem__, ConflictConfig(), out,
                  data_name="cf", progress=False)
    recorded = json.loads((out / "summary.json").read_text())
    # a report from before `later_wins_if_learned` existed: the key and its column are missing
    del recorded["methods"]["latest"]["later_wins_if_learned"]
    (out / "summary.json").write_text(json.dumps(recorded))
    (out / "summary.md").write_text("old")
    result = CliRunner().invoke(app, ["eval", "conflicts", "--data", str(cf_file), "--out", str(out), "--report-only"])
    assert result.exit_code == 0, result.output
    again = json.loads((out / "summary.json").read_text())["methods"]["latest"]
    assert again["later_wins_if_learned"] == 1.0 and again["seconds"] == recorded["methods"]["latest"]["seconds"]
    assert "| latest | 12 |" in (out / "summary.md").read_text()

    empty = tmp_path / "empty"
    result = CliRunner().invoke(app, ["eval", "boundary", "--data", str(cf_file), "--out", str(empty), "--report-only"])
    assert result.exit_code == 2 and "holds no summary.json" in result.output and not empty.exists()


def test_boundary_draws_squad_contexts_from_the_articles_named(cf_file, tmp_path):
    from selfparam.eval.boundary import load_items

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": [
        {"title": f"art{a}", "paragraphs": [
            {"context": f"Quenby{a} hosts the Zorblat festival in {1900 + a}. Marlow hosts the Fennick fair.",
             "qas": [{"question": f"What does Quenby{a} host?", "answers": [{"text": "the Zorblat festival"}]}]}]}
        for a in (1, 2, 3)]}))
    items = load_items(squad, 2, 0, per_kind=1, questions_per_context=1, articles=(2, 3))
    assert sorted(i.id.split("/")[0] for i in items) == ["art2", "art3"]
    with pytest.raises(ValueError, match="SQuAD JSON only"):
        load_items(cf_file, 1, 0, per_kind=1, articles=(1,))


def test_cli_conflicts_and_boundary_on_the_tiny_model(tiny_dir, cf_file, tmp_path):
    from selfparam.cli import app

    runner = CliRunner()
    common = ["--methods", "base,rag-bm25", "--n", "2", "--seed", "0", "--model", str(tiny_dir), "--device", "cpu",
              "--dtype", "fp32", "--max-new-tokens", "2", "--no-progress"]
    result = runner.invoke(app, ["eval", "conflicts", "--data", str(cf_file), "--out", str(tmp_path / "c"), *common])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    for name in ("base", "rag-bm25"):
        r = summary["methods"][name]
        assert r["answers"] == 8 and sum(r[o] for o in ("later_wins", "earlier_kept", "both", "neither")) == 1.0
    # the unchanged model reads the later fact in its prompt; a retriever has no model of its own to ask
    assert summary["methods"]["base"]["read_answers"] == 8 and "reading" not in summary["methods"]["rag-bm25"]
    # each method's settings are recorded with its figures (the retriever's defaults here; base has none)
    assert summary["methods"]["rag-bm25"]["config"]["top_k"] == RAGConfig().top_k
    assert "config" not in summary["methods"]["base"]

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": [{"title": "sb", "paragraphs": [
        {"context": "The Panthers practiced at San Jose State. The Broncos practiced at Stanford.",
         "qas": [{"question": "Where did the Panthers practice?", "answers": [{"text": "San Jose State"}]}]},
        {"context": "Quenby hosts the Zorblat festival. Marlow hosts the Fennick fair.",
         "qas": [{"question": "What does Quenby host?", "answers": [{"text": "the Zorblat festival"}]}]}]}]}))
    for data in (cf_file, squad):
        out = tmp_path / f"b-{data.stem}"
        result = runner.invoke(app, ["eval", "boundary", "--data", str(data), "--out", str(out),
                                     "--questions-per-context", "1", *common])
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "summary.json").read_text())
        assert summary["items"] == 2 and summary["methods"]["base"]["probes"] > 0
        assert 0.0 <= summary["methods"]["rag-bm25"]["pollution"] <= 1.0
        assert 0.0 <= summary["methods"]["base"]["reading_pollution"] <= 1.0  # the unchanged model read the fact

    result = runner.invoke(app, ["eval", "conflicts", "--data", str(cf_file), "--out", str(tmp_path / "x"),
                                 *common[:2], "--n", "9"])
    assert result.exit_code == 2 and "holds 3 usable" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["eval", "boundary", "--data", str(cf_file), "--out", str(tmp_path / "y"),
                                 "--methods", "nonsense", "--n", "1", "--model", str(tiny_dir)])
    assert result.exit_code == 2 and "unknown method" in result.output
    result = runner.invoke(app, ["eval", "conflicts", "--data", str(cf_file), "--out", str(tmp_path / "z"),
                                 "--methods", "base", "--n", "1", "--questions", "riddles", "--model", "no/such-model"])
    assert result.exit_code == 2 and "riddles" in result.output and not (tmp_path / "z").exists()


def test_cli_conflicts_builds_fact_questions_when_asked(cf_file, tmp_path):
    from selfparam.cli import app
    from selfparam.testing import tiny_lm

    model = tmp_path / "tiny"  # with room for the fact prompts (byte tokens)
    lm = tiny_lm(seed=0, max_position_embeddings=2048)
    lm.model.save_pretrained(model)
    lm.tokenizer.save_pretrained(model)
    out = tmp_path / "c"
    result = CliRunner().invoke(app, [
        "eval", "conflicts", "--data", str(cf_file), "--out", str(out), "--methods", "ft-s", "--n", "1", "--seed", "0",
        "--model", str(model), "--device", "cpu", "--dtype", "fp32", "--max-new-tokens", "2", "--n-pairs", "2",
        "--questions", "facts", "--no-progress"])
    assert result.exit_code == 0, result.output
    sets = [json.loads(f.read_text()) for f in (out / "targets").glob("targets-*/*.json") if f.name != "key.json"]
    assert len(sets) == 2 and all(s["generator"].startswith("facts") for s in sets)  # both facts of the case
    # a weight method's model read the later fact between the two updates, on every answer
    ft_s = json.loads((out / "summary.json").read_text())["methods"]["ft-s"]
    assert ft_s["read_answers"] == ft_s["answers"] == 4 and 0.0 <= ft_s["reading_later_wins"] <= 1.0
    assert "step/s" not in result.output and "train:" not in result.output  # --no-progress reaches the method


def test_a_failing_method_is_reported_and_the_others_still_run(cf_file, tmp_path):
    class Broken(Memo):
        def inject(self, contexts):
            raise RuntimeError("out of memory")

    cases = load_fact_cases(cf_file)
    methods = {"broken": Broken("broken"), "latest": Memo("latest", latest=True)}
    summary = run_conflicts(cases, list(methods), methods.__getitem__, ConflictConfig(), tmp_path / "out",
                            data_name="cf", progress=False)
    assert summary["failed"] == {"broken": "RuntimeError: out of memory"}
    assert list(summary["methods"]) == ["latest"] and summary["methods"]["latest"]["answers"] == 12
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "## Failures" in md and "`broken`: RuntimeError: out of memory" in md


def test_paired_comparison_of_two_recorded_runs(cf_file, tmp_path):
    from selfparam.eval.probe_compare import compare, figure_values, load_predictions

    cases = load_fact_cases(cf_file)
    for out, memo in (("a", Memo("m", latest=True)), ("b", Memo("m", latest=False))):
        run_conflicts(cases, ["m"], lambda name, memo=memo: memo, ConflictConfig(), tmp_path / out, progress=False)
    later = figure_values(load_predictions(tmp_path / "a"), "m", "later_wins")
    earlier = figure_values(load_predictions(tmp_path / "b"), "m", "later_wins")
    c = compare(earlier, later)
    # the same 12 answers; "latest" wins on the 6 prompts it learned, "earliest" on none: +0.5
    assert c["questions"] == 12 and c["value"] == 0.5 and c["reference"] == 0.0 and c["difference"] == 0.5
    lo, hi = c["difference_ci"]
    assert 0.0 < lo < 0.5 < hi <= 1.0
    with pytest.raises(ValueError, match="no pollution answers"):
        figure_values(load_predictions(tmp_path / "a"), "m", "pollution")
    with pytest.raises(ValueError, match="share no question"):
        compare(later, {("x", "y", "z"): 1.0})
    # a method's answers against what another method's model said reading the later fact, question by question
    methods = {"keeps": Reading("keeps", latest=False)}
    run_conflicts(cases, ["keeps"], methods.__getitem__, ConflictConfig(), tmp_path / "c", progress=False)
    reading = figure_values(load_predictions(tmp_path / "c"), "keeps", "reading_later_wins")
    c = compare(reading, later)  # "latest" wins exactly where "keeps"'s reading said the later fact
    assert (c["questions"], c["reference"], c["difference"], c["difference_ci"]) == (12, 0.5, 0.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="no reading_later_wins answers"):
        figure_values(load_predictions(tmp_path / "a"), "m", "reading_later_wins")  # Memo reads nothing


def test_the_compare_script_takes_the_references_value_from_another_figure(cf_file, tmp_path, capsys):
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("probe_compare_script",
                                                  Path(__file__).parents[1] / "scripts" / "probe_compare.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pool = load_fact_cases(cf_file)
    items = counterfact_items(pool, pool, per_kind=2, seed=0)
    methods = {"gullible": Gullible("gullible"), "exact": Memo("exact")}
    run_boundary(items, list(methods), methods.__getitem__, BoundaryConfig(), tmp_path / "b", progress=False)
    run = tmp_path / "b"
    # the exact Memo's pollution (none) against what the gullible model said reading each fact (every probe)
    script.table(argparse.Namespace(figure="pollution", reference_figure="reading_pollution", edits=None,
                                    reference=f"{run}:gullible", others=[f"{run}:exact"]))
    out = capsys.readouterr().out
    probes = json.loads((run / "summary.json").read_text())["methods"]["exact"]["probes"]
    assert "| pollution (reference: reading_pollution): RUN:METHOD |" in out
    assert f"| {run}:exact | {probes} | 0.000 [0.00, 0.00] | 1.000 | -1.000 [-1.00, -1.00] |" in out


def test_lifelong_runs_are_compared_edit_by_edit_at_one_count(tmp_path):
    from selfparam.eval.probe_compare import compare, figure_values, load_predictions

    def run(name, hits_at_2):  # edits a, b scored after 1 and 2 edits; greedy scored only on a
        rows = [{"method": "m", "edits": 1, "id": "a", "reliability": 0.0, "greedy_reliability": False},
                *({"method": "m", "edits": 2, "id": i, "reliability": h, "greedy_reliability": bool(h) if i == "a"
                   else None} for i, h in zip("ab", hits_at_2))]
        (tmp_path / name).mkdir()
        (tmp_path / name / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return load_predictions(tmp_path / name)

    old, new = run("old", (0.0, 0.5)), run("new", (1.0, 1.0))
    assert figure_values(new, "m", "reliability", edits=2) == {("a", 2): 1.0, ("b", 2): 1.0}
    c = compare(figure_values(old, "m", "reliability", edits=2), figure_values(new, "m", "reliability", edits=2))
    assert c["questions"] == 2 and c["reference"] == 0.25 and c["difference"] == 0.75
    assert figure_values(new, "m", "greedy_reliability", edits=2) == {("a", 2): 1.0}  # b has no greedy score
    with pytest.raises(ValueError, match="one edit count"):
        figure_values(new, "m", "reliability")
    with pytest.raises(ValueError, match="only to lifelong"):
        figure_values(new, "m", "later_wins", edits=2)
    with pytest.raises(ValueError, match="after 5 edits"):
        figure_values(new, "m", "reliability", edits=5)
