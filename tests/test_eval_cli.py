"""`selfparam eval ...` end to end on the tiny model saved as a folder, and its bad-input errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfparam.cli.eval import eval_app
from selfparam.eval.run import EvalSettings, evaluate

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from selfparam.testing import tiny_lm

    lm = tiny_lm(seed=0)
    folder = tmp_path_factory.mktemp("tiny-model")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def test_a_bad_selfparam_plots_is_refused_before_the_run(tiny_folder, squad, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPARAM_PLOTS", "yes")
    result = runner.invoke(eval_app, ["single", "--data", str(squad), "--methods", "base", "--n", "1",
                                      "--out", str(tmp_path / "run"), "--model", str(tiny_folder), "--device", "cpu",
                                      "--no-progress"])
    assert result.exit_code != 0 and "SELFPARAM_PLOTS" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.plots  # asserts the PNG files
def test_single_run_writes_the_report(tiny_folder, squad, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(eval_app, ["single", "--data", str(squad), "--methods", "base,base-cq,rag-bm25",
                                      "--n", "2", "--seed", "0", "--out", str(out), "--model", str(tiny_folder),
                                      "--device", "cpu", "--max-new-tokens", "4", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["base", "base-cq", "rag-bm25"]
    for entry in summary["methods"].values():
        assert entry["status"] == "ok" and entry["n_questions"] == 6 and 0 <= entry["f1"] <= 1
    assert summary["methods"]["base"]["storage_bytes"] == 0
    assert summary["methods"]["rag-bm25"]["storage_bytes"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["n"] == 2 and "git_revision" in config and "versions" in config
    assert len(config["items"]) == 2
    assert (out / "scores.png").is_file() and (out / "summary.md").is_file()
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 18
    # every record carries the teacher-forced log-prob of its best gold, asked as the method asks: by hand
    # for Base(Q) (the question alone) and Base(C+Q) (with its context)
    from selfparam.eval.loaders import load_qa
    from selfparam.generation import target_logprob
    from selfparam.prompts import answer_prompt
    from selfparam.testing import tiny_lm

    lm, contexts = tiny_lm(seed=0), {c.context.id: c.context.text for c in load_qa(squad)}
    for r in records:
        context = contexts[r["context_id"]] if r["method"] == "base-cq" else None
        prompt = answer_prompt(lm.tokenizer, r["question"], context)
        if r["method"] != "rag-bm25":
            assert r["logprob"] == pytest.approx(max(target_logprob(lm, [prompt] * len(r["golds"]), r["golds"])),
                                                 abs=1e-3)  # batched apart: fp32 sums differ
        assert r["logprob"] < 0
    assert {"logprob", "logprob_ci", "logprob_recovery", "logprob_recovery_ci"} <= set(summary["methods"]["base"])
    assert summary["methods"]["base"]["logprob"] == pytest.approx(
        sum(r["logprob"] for r in records if r["method"] == "base") / 6)


@pytest.mark.parametrize("args, message", [
    (["nonsense", "--data", "x"], "No such command"),
    (["single", "--data", "{squad}", "--methods", "base,magic", "--out", "{out}"], "unknown method(s) 'magic'"),
    (["single", "--data", "{tmp}/missing.json", "--methods", "base", "--out", "{out}"], "does not exist"),
    (["batch", "--data", "{squad}", "--methods", "base", "--n", "5", "--k", "2", "--out", "{out}"], "divide"),
    (["recommendation", "--data", "{tmp}", "--dataset", "netflix", "--methods", "base", "--out", "{out}"],
     "unknown dataset"),
    (["single", "--data", "{squad}", "--methods", "selfparam", "--questions", "trivia", "--out", "{out}"],
     "questions: 'trivia' is not one of facts, paper"),
    (["single", "--data", "{squad}", "--methods", "selfparam", "--fact-phrasings", "0", "--out", "{out}"],
     "fact_phrasings: must be >= 1"),
    (["single", "--data", "{squad}", "--methods", "selfparam", "--questions", "paper", "--fact-phrasings", "1",
      "--out", "{out}"], "fact_phrasings: applies to fact-covering questions"),
    (["single", "--data", "{squad}", "--methods", "selfparam", "--questions", "paper", "--no-fact-cycle",
      "--out", "{out}"], "fact_cycle: applies to fact-covering questions"),
    (["single", "--data", "{squad}", "--methods", "selfparam", "--fact-spans", "all", "--out", "{out}"],
     "fact_spans: 'all' is not one of rules, wide"),
    (["sequential", "--data", "{squad}", "--methods", "selfparam", "--questions", "paper", "--fact-pronouns", "name",
      "--out", "{out}"], "fact_pronouns: applies to fact-covering questions"),
])
def test_bad_input_fails_fast_and_writes_nothing(args, message, squad, tmp_path):
    out = tmp_path / "out"
    args = [a.format(squad=squad, out=out, tmp=tmp_path) for a in args]
    result = runner.invoke(eval_app, args)
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()


def test_unknown_task_in_the_library():
    with pytest.raises(ValueError, match="unknown task 'joint'"):
        EvalSettings("joint", "x.json", "out")


def test_failing_method_through_evaluate(squad, tmp_path):
    """A method that raises mid-run: reported as failed in every file, the others' results kept."""
    class Constant:
        """Answers every question with the same word; injects nothing."""

        def __init__(self, name, explode=False):
            self.name, self.explode = name, explode

        def inject(self, contexts):
            pass

        def answer(self, queries, max_new_tokens=32):
            if self.explode:
                raise RuntimeError("generation blew up")
            return ["1989"] * len(queries)

        def logprob(self, queries, targets):
            return [-1.0] * len(queries)

        def reset(self):
            pass

        def storage_bytes(self):
            return 0

    made = {"base": Constant("base"), "rag-bm25": Constant("rag-bm25", explode=True)}
    settings = EvalSettings("single", squad, tmp_path / "run", methods=("rag-bm25", "base"), n=2, progress=False)
    result, paths = evaluate(settings, build=lambda name: made[name])
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["methods"]["rag-bm25"]["status"] == "failed"
    assert "generation blew up" in summary["methods"]["rag-bm25"]["error"]
    assert summary["methods"]["base"]["status"] == "ok" and summary["methods"]["base"]["n_questions"] == 6
    assert "generation blew up" in paths["summary_md"].read_text()


def test_method_config_file(tmp_path):
    from selfparam.eval.configs import method_configs
    from selfparam.methods.rag import RAGConfig

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"rag-bm25": {"top_k": 2}}))
    assert method_configs(path, ["rag-bm25"]) == {"rag-bm25": RAGConfig(top_k=2)}
    path.write_text(json.dumps({"rag-bm25": {"topk": 2}}))
    with pytest.raises(ValueError, match="unknown setting 'topk'"):
        method_configs(path, ["rag-bm25"])
    path.write_text(json.dumps({"base": {}}))
    with pytest.raises(ValueError, match="takes no settings"):
        method_configs(path, ["base"])


def test_merge_runs_of_the_same_draw(squad, tmp_path):
    """Baselines and another method run apart become one table; runs of another draw are refused."""

    class Constant:
        def __init__(self, name, word):
            self.name, self.word = name, word

        def inject(self, contexts):
            pass

        def answer(self, queries, max_new_tokens=32):
            return [self.word] * len(queries)

        def logprob(self, queries, targets):
            return [-1.0] * len(queries)

        def reset(self):
            pass

        def storage_bytes(self):
            return 0

    def run(out, methods, seed=0):
        made = {m: Constant(m, "1989" if m == "base" else "Denver Broncos") for m in methods}
        settings = EvalSettings("single", squad, out, methods=methods, n=2, seed=seed, progress=False)
        return evaluate(settings, build=lambda name: made[name])[0]

    a = run(tmp_path / "a", ("base",))
    b = run(tmp_path / "b", ("base-cq", "rag-bm25"))
    result = runner.invoke(eval_app, ["merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                      str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "merged/summary.json").read_text())
    assert list(summary["methods"]) == ["base", "base-cq", "rag-bm25"]
    assert summary["methods"]["base-cq"]["f1"] == b.outcome("base-cq").metrics["f1"]
    assert summary["methods"]["base"]["f1"] == a.outcome("base").metrics["f1"]
    assert len((tmp_path / "merged/predictions.jsonl").read_text().splitlines()) == 18
    run(tmp_path / "c", ("rag-dense",), seed=1)
    bad = runner.invoke(eval_app, ["merge", str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "m2")])
    assert bad.exit_code == 2 and "differs" in bad.output and "seed" in bad.output
    twice = runner.invoke(eval_app, ["merge", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "m3")])
    assert twice.exit_code == 2 and "more than one run" in twice.output


def test_general_ability_before_and_after(tiny_folder, squad, shared_data, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(eval_app, ["batch", "--data", str(squad), "--methods", "base,rag-bm25", "--n", "2",
                                      "--k", "2", "--out", str(out), "--model", str(tiny_folder), "--device", "cpu",
                                      "--max-new-tokens", "2", "--no-progress", "--general",
                                      "--mmlu", str(shared_data / "mmlu"), "--mmlu-subjects", "anatomy",
                                      "--mmlu-per-subject", "3", "--wikitext",
                                      str(shared_data / "wikitext2/wiki.test.raw"), "--ppl-tokens", "64"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    before = summary["general_before"]
    assert set(before) == {"mmlu_acc", "mmlu/anatomy", "wikitext_ppl", "mmlu_hits", "wikitext_block_nll",
                           "wikitext_block_tokens"}
    assert len(before["mmlu_hits"]) == 3 and sum(before["wikitext_block_tokens"]) == 63  # 64 tokens, one window
    for name in ("base", "rag-bm25"):  # neither changes the weights: the same figures after injection
        row = summary["methods"][name]
        assert row["mmlu_acc"] == before["mmlu_acc"]
        assert row["wikitext_ppl"] == pytest.approx(before["wikitext_ppl"])
        change = row["general_change"]  # against the base model, paired: nothing moved
        assert change["mmlu_change"] == 0 and change["mmlu_change_ci"] == [0, 0]
        assert change["wikitext_ppl_change"] == pytest.approx(0, abs=1e-4)
    table = (out / "summary.md").read_text()
    assert "wikitext_ppl" in table and "| base | level (+0.000 [+0.000, +0.000]) | level (+0.000" in table


def test_articles_split_is_drawn_from_and_recorded(squad, tmp_path):
    class Constant:
        name = "base"

        def inject(self, contexts):
            pass

        def answer(self, queries, max_new_tokens=32):
            return ["1989"] * len(queries)

        def logprob(self, queries, targets):
            return [-1.0] * len(queries)

        def reset(self):
            pass

        def storage_bytes(self):
            return 0

    settings = EvalSettings("single", squad, tmp_path / "run", methods=("base",), n=5, articles="17-32",
                            progress=False)
    evaluate(settings, build=lambda name: Constant())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["settings"]["articles"] == list(range(17, 33))
    titles = [a["title"] for a in json.loads(squad.read_text())["data"]][16:32]
    assert all(item.rsplit("/", 1)[0] in titles for item in config["items"])
    with pytest.raises(ValueError, match="SQuAD JSON data only"):
        EvalSettings("recommendation", tmp_path, tmp_path / "r", methods=("base",), articles="1")

    dropped = config["items"][1]
    settings = EvalSettings("single", squad, tmp_path / "run-x", methods=("base",), n=5, articles="17-32",
                            exclude=(dropped,), progress=False)
    evaluate(settings, build=lambda name: Constant())
    excluded = json.loads((tmp_path / "run-x" / "config.json").read_text())
    assert excluded["settings"]["exclude"] == [dropped]
    assert dropped not in excluded["items"]
    assert excluded["items"][:4] == config["items"][:1] + config["items"][2:]  # the rest keep their order


@pytest.mark.parametrize("articles, message", [("32-17", "1 <= FIRST <= LAST"), ("x", "not a number"),
                                               ("17-9999", "do not exist")])
def test_bad_articles_fail_fast(articles, message, squad, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(eval_app, ["single", "--data", str(squad), "--methods", "base", "--articles", articles,
                                      "--out", str(out)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_unknown_excluded_context_fails_fast(squad, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(eval_app, ["single", "--data", str(squad), "--methods", "base", "--articles", "1-16",
                                      "--exclude", "Steam_engine/34", "--exclude", "Nowhere/3", "--out", str(out)])
    assert result.exit_code == 2 and "Nowhere/3" in result.output and "Steam_engine" not in result.output
    assert "Traceback" not in result.output and not out.exists()
