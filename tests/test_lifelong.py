"""The lifelong task on the tiny model: every method through the registry and the protocol."""

from __future__ import annotations

import json
import re

import pytest
import typer
from test_recipe import tiny_encoder
from typer.testing import CliRunner

from selfparam.eval.lifelong import LifelongConfig, contains_answer, run_lifelong
from selfparam.methods.recipe import EditorConfig, RecipeEditor


def _write_data(path, n=12):
    rows = [{"case_id": i, "prompt": f"Person {i} lives in", "target_new": f"City{i}", "subject": f"P{i}",
             "ground_truth": "X", "rephrase_prompt": f"The home of person {i} is",
             "locality_prompt": f"Person {i + 100} works as a", "locality_ground_truth": "baker"} for i in range(n)]
    path.write_text(json.dumps(rows))


@pytest.fixture
def recipe_ready(tiny, tmp_path, monkeypatch):
    from selfparam.methods.recipe import method as method_module

    enc = tiny_encoder()
    cfg = EditorConfig(encoder="tiny-bert", repr_dim=16, head_hidden=32, prompt_hidden=32)
    RecipeEditor(cfg, enc.dim, tiny.model.config.hidden_size, llm_name=tiny.name).save(tmp_path / "editor")
    monkeypatch.setattr(method_module, "load_encoder", lambda name: enc)
    monkeypatch.setenv("SELFPARAM_RECIPE_CHECKPOINT", str(tmp_path / "editor"))
    return tmp_path / "editor"


def test_contains_answer():
    assert contains_answer("The mother tongue is English.", "English")
    assert not contains_answer("Englishman", "English")
    assert not contains_answer("anything", "")


@pytest.mark.plots  # asserts the PNG files
def test_lifelong_summary_per_method_and_count(tiny, tmp_path, recipe_ready):
    from selfparam.eval.editing_data import load_edits

    _write_data(tmp_path / "cf.json")
    records = load_edits(tmp_path / "cf.json")
    cfg = LifelongConfig(edits=(1, 4, 10), max_edits={"base": 4}, eval_sample=5, gen_sample=3, max_new_tokens=4,
                         latency_queries=2)
    summary = run_lifelong(tiny, {"recipe": None, "base": None}, records, cfg, tmp_path / "out", progress=False)
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(saved["methods"]) == {"recipe", "base"}
    assert sorted(k for k in saved["methods"]["recipe"] if k.isdigit()) == ["1", "10", "4"]
    assert sorted(k for k in saved["methods"]["base"] if k.isdigit()) == ["1", "4"]  # capped
    for res in summary["methods"].values():
        for t in (k for k in res if k.isdigit()):
            m = res[t]
            for key in ("reliability", "generality", "locality"):
                assert 0.0 <= m[key] <= 1.0
            assert m["edit_ms"] > 0 and m["scored"] == min(int(t), 5)  # every edit was timed
    # the base model never changes: its locality against its own answers is (about) perfect
    assert saved["methods"]["base"]["4"]["greedy_locality"] == 1.0
    assert saved["methods"]["recipe"]["10"]["storage_bytes"] > saved["methods"]["recipe"]["1"]["storage_bytes"]
    # RECIPE retrieves (`RetrievingMethod`), so it says where its misses come from; the base model does not
    assert 0.0 <= saved["methods"]["recipe"]["10"]["retrieval_reliability"] <= 1.0
    assert "retrieval_reliability" not in saved["methods"]["base"]["4"]
    assert (tmp_path / "out" / "summary.md").is_file() and (tmp_path / "out" / "lifelong.png").is_file()


def test_lifelong_cli(tiny, tmp_path, recipe_ready, monkeypatch):
    from selfparam.cli.lifelong import lifelong

    monkeypatch.setattr("selfparam.lm.load_lm", lambda *a, **k: tiny)
    _write_data(tmp_path / "cf.json", n=3)
    app = typer.Typer()
    app.command("lifelong")(lifelong)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,3", "--out", str(tmp_path / "o"), "--max-new-tokens", "3"])
    assert r.exit_code == 0, r.output
    assert "| recipe | 3 |" in r.output and "recipe: editing" in r.output  # the progress bar, on by default
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,3", "--out", str(tmp_path / "quiet"), "--max-new-tokens", "3",
                                 "--no-progress"])
    assert r.exit_code == 0 and "| recipe | 3 |" in r.output and "recipe: editing" not in r.output, r.output
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe,nope"])
    assert r.exit_code == 2 and "unknown method 'nope'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "selfparam",
                                 "--unrelated", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "missing.txt" in r.output and not (tmp_path / "o2").exists()
    (tmp_path / "m.json").write_text(json.dumps({"selfparam": {"train": {"seed": 5}}}))
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "selfparam",
                                 "--method-config", str(tmp_path / "m.json"), "--out", str(tmp_path / "o3")])
    assert r.exit_code == 2 and "selfparam.train.seed set a seed" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o3").exists()


def test_lifelong_weight_methods_share_one_target_set_per_edit(tiny, tmp_path, capsys):
    """SELF-PARAM and FT(S) each inject every edit as a context, through the run's one builder: each edit's
    text is asked for once per method; FT(S), trained on the pairs' answers, then scores the targets higher
    than the unedited model does."""
    from selfparam.eval.editing_data import load_edits
    from selfparam.methods.base import Resources
    from selfparam.methods.finetune import FineTuneTargetsConfig
    from selfparam.methods.selfparam import SelfParamConfig
    from selfparam.targets import TargetConfig
    from selfparam.targets.types import QAPair, TargetSet
    from selfparam.training.trainer import TrainConfig

    _write_data(tmp_path / "cf.json", n=2)
    records = load_edits(tmp_path / "cf.json")
    asked: list[str] = []

    def build(context: str) -> TargetSet:
        asked.append(context)
        rec = next(r for r in records if r.fact == context)
        return TargetSet(context=context, pairs=[QAPair(rec.prompt, rec.target)] * 4)

    train = TrainConfig(epochs=4, lr=1e-2, batch_size=4)
    methods = {"base": None, "selfparam": SelfParamConfig(train=train), "ft-s": FineTuneTargetsConfig(train=train)}
    cfg = LifelongConfig(edits=(1, 2), eval_sample=2, gen_sample=1, max_new_tokens=2, latency_queries=1)
    resources = Resources(target_builder=build, targets=TargetConfig(answers="generator"))  # a random model: no teacher
    summary = run_lifelong(tiny, methods, records, cfg, tmp_path / "out", resources=resources, progress=False)
    assert "train:" not in capsys.readouterr().err  # progress=False reaches the methods' own bars
    assert sorted(asked) == sorted([r.fact for r in records] * 2)
    results = summary["methods"]
    for name in ("selfparam", "ft-s"):
        assert results[name]["2"]["edit_ms"] > 0
        assert results[name]["2"]["storage_bytes"] == 0  # merged: nothing kept beside the model
    assert results["ft-s"]["2"]["reliability"] > results["base"]["2"]["reliability"]


def test_method_config_cannot_set_per_method_targets(tmp_path):
    from selfparam.eval.configs import method_configs

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"selfparam": {"targets": {"n_pairs": 3}}}))
    with pytest.raises(ValueError, match="--n-pairs"):
        method_configs(path, ["selfparam"])
    path.write_text(json.dumps({"selfparam": {"train": {"epochs": 1}}}))
    assert method_configs(path, ["selfparam"])["selfparam"].train.epochs == 1


@pytest.mark.plots  # asserts the PNG files
def test_merge_lifelong_reports(tiny, tmp_path, recipe_ready):
    from selfparam.eval.editing_data import load_edits
    from selfparam.eval.report import merge_runs

    _write_data(tmp_path / "cf.json", n=4)
    records = load_edits(tmp_path / "cf.json")
    cfg = LifelongConfig(edits=(1, 4), eval_sample=4, gen_sample=2, max_new_tokens=2, latency_queries=1)
    run_lifelong(tiny, {"recipe": None}, records, cfg, tmp_path / "a", data_name="cf", progress=False)
    run_lifelong(tiny, {"base": None}, records, LifelongConfig(edits=(1,), eval_sample=4, gen_sample=2,
                 max_new_tokens=2, latency_queries=1), tmp_path / "b", data_name="cf", progress=False)
    merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    saved = json.loads((tmp_path / "ab" / "summary.json").read_text())
    assert list(saved["methods"]) == ["recipe", "base"]
    first = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert saved["methods"]["recipe"]["4"] == first["methods"]["recipe"]["4"]
    md = (tmp_path / "ab" / "summary.md").read_text()
    assert "| recipe | 4 |" in md and "| base | 1 |" in md and (tmp_path / "ab" / "lifelong.png").is_file()
    with pytest.raises(ValueError, match="more than one"):
        merge_runs([tmp_path / "a", tmp_path / "ab"], tmp_path / "x")
    run_lifelong(tiny, {"base": None}, records, LifelongConfig(edits=(1,), max_new_tokens=3, latency_queries=1),
                 tmp_path / "c", data_name="cf", progress=False)
    with pytest.raises(ValueError, match="max_new_tokens"):
        merge_runs([tmp_path / "a", tmp_path / "c"], tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


class BatchSensitive:
    """A method whose outputs depend on how many queries share a call, as bf16 greedy decoding of padded
    batches can: the task must ask one query per call to score it."""

    name = "sensitive"

    def reset(self):
        pass

    def inject(self, contexts):
        pass

    def answer(self, queries, max_new_tokens=32):
        return [f"batch of {len(queries)}"] * len(queries)

    def score(self, queries, targets):
        return [1.0 if len(queries) == 1 else 0.0] * len(queries)

    def storage_bytes(self):
        return 0


def test_scores_do_not_depend_on_batching(tiny, tmp_path, monkeypatch):
    from selfparam.eval import lifelong as lifelong_module
    from selfparam.eval.editing_data import load_edits

    monkeypatch.setattr(lifelong_module, "build_method", lambda *a, **k: BatchSensitive())
    _write_data(tmp_path / "cf.json", n=10)
    records = load_edits(tmp_path / "cf.json")
    cfg = LifelongConfig(edits=(1, 10), eval_sample=10, gen_sample=5, max_new_tokens=2, latency_queries=2)
    summary = lifelong_module.run_lifelong(tiny, {"sensitive": None}, records, cfg, tmp_path / "out", progress=False)
    res = summary["methods"]["sensitive"]
    for t in ("1", "10"):
        assert res[t]["reliability"] == res[t]["locality"] == 1.0
        assert res[t]["greedy_locality"] == 1.0  # the same answer as before any edit, whatever the sample size


def test_repeated_edits_are_dropped_and_too_many_edits_refused(tiny, tmp_path, recipe_ready, monkeypatch):
    from selfparam.cli.lifelong import lifelong
    from selfparam.eval.editing_data import distinct_edits, load_edits

    _write_data(tmp_path / "cf.json", n=4)
    rows = json.loads((tmp_path / "cf.json").read_text())
    rows.append({**rows[1], "case_id": 99, "prompt": "PERSON 1  lives in"})  # the same fact, other spacing/case
    (tmp_path / "cf.json").write_text(json.dumps(rows))
    records, dropped = distinct_edits(load_edits(tmp_path / "cf.json"))
    assert dropped == 1 and [r.id for r in records] == ["cf-0", "cf-1", "cf-2", "cf-3"]
    monkeypatch.setattr("selfparam.lm.load_lm", lambda *a, **k: tiny)
    app = typer.Typer()
    app.command("lifelong")(lifelong)
    app.command("noop")(lambda: None)
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,5", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "4 distinct edits" in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,4", "--out", str(tmp_path / "o"), "--max-new-tokens", "2"])
    assert r.exit_code == 0, r.output
    assert "1 repeated edits dropped" in r.output and "| recipe | 4 |" in r.output
    # 'all' scores at every distinct edit (public CounterFact: 7,998 of its 8,000 records); the refusal says so
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,all", "--out", str(tmp_path / "all"), "--max-new-tokens", "2"])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert sorted(k for k in saved["methods"]["recipe"] if k.isdigit()) == ["1", "4"]
    r = CliRunner().invoke(app, ["lifelong", "--data", str(tmp_path / "cf.json"), "--methods", "recipe",
                                 "--edits", "1,5", "--out", str(tmp_path / "o5")])
    assert r.exit_code == 2 and "ask for 4 or 'all'" in r.output


class Explodes(BatchSensitive):
    """Fails at its third edit."""

    def __init__(self):
        self.edits = 0

    def inject(self, contexts):
        self.edits += 1
        if self.edits == 3:
            raise RuntimeError("editor blew up at edit 3")


def _run_fakes(tiny, tmp_path, monkeypatch, made: dict) -> dict:
    """The lifelong task at 1 and 4 edits (4 records, 2 of them also greedy) on the fake methods `made`."""
    from selfparam.eval import lifelong as lifelong_module
    from selfparam.eval.editing_data import load_edits

    monkeypatch.setattr(lifelong_module, "build_method", lambda name, *a, **k: made[name]())
    _write_data(tmp_path / "cf.json", n=4)
    cfg = LifelongConfig(edits=(1, 4), eval_sample=4, gen_sample=2, max_new_tokens=2, latency_queries=1)
    return lifelong_module.run_lifelong(tiny, {name: None for name in made}, load_edits(tmp_path / "cf.json"), cfg,
                                        tmp_path / "out", progress=False)


def test_a_failing_method_is_isolated_and_timed_by_the_shared_harness(tiny, tmp_path, monkeypatch):
    summary = _run_fakes(tiny, tmp_path, monkeypatch, {"boom": Explodes, "sensitive": BatchSensitive})
    boom, ok = summary["methods"]["boom"], summary["methods"]["sensitive"]
    assert boom["status"] == "failed" and "editor blew up at edit 3" in boom["error"]
    assert boom["1"]["reliability"] == 1.0 and "4" not in boom  # the finished count is kept
    assert ok["status"] == "ok" and ok["4"]["reliability"] == 1.0 and ok["reliability"] == 1.0
    assert ok["n_injections"] == 4 and ok["inject_seconds"] >= 0 and ok["answer_latency"] > 0
    saved = tmp_path / "out"
    assert "editor blew up at edit 3" in (saved / "summary.md").read_text()
    config = json.loads((saved / "config.json").read_text())
    assert config["settings"]["task"] == "lifelong" and "git_revision" in config
    lines = (saved / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 1 + 4  # boom: 1 edit scored at T=1; sensitive: 1 at T=1, 4 at T=4
    at4 = [json.loads(line) for line in lines[2:]]
    # greedy figures on the first gen_sample=2 of the scored edits, beside the teacher-forced ones
    assert [("greedy_reliability" in r, r["reliability"]) for r in at4] == [(True, 1.0), (True, 1.0), (False, 1.0),
                                                                             (False, 1.0)]
    assert at4[0]["greedy_locality"] is True and at4[0]["greedy_reliability"] is False  # "batch of 1" != "City0"
    assert LifelongConfig().max_new_tokens == 16
    md = (saved / "summary.md").read_text()
    assert "| greedy_reliability | greedy_generality | greedy_locality |" in md


class HalfRetriever(BatchSensitive):
    """Retrieves its own edit for even-numbered persons only (the first edit for the odd ones, nothing for a
    locality prompt, whose person number is 100 or more) and is right exactly when it retrieved its own edit."""

    name = "half"

    def reset(self):
        self.ids = []

    def inject(self, contexts):
        self.ids += [c.id for c in contexts]

    def retrieved_ids(self, questions):
        numbers = [int(re.search(r"\d+", q).group()) for q in questions]
        return [None if n >= 100 else f"cf-{n}" if f"cf-{n}" in self.ids and n % 2 == 0 else self.ids[0]
                for n in numbers]

    def score(self, queries, targets):
        own = ["cf-" + re.search(r"\d+", q.question).group() for q in queries]
        return [1.0 if got in (mine, None) else 0.0
                for mine, got in zip(own, self.retrieved_ids([q.question for q in queries]))]


def test_retrieving_methods_say_whether_a_miss_was_retrieval_or_reading(tiny, tmp_path, monkeypatch):
    from selfparam.methods.base import RetrievingMethod

    summary = _run_fakes(tiny, tmp_path, monkeypatch, {"half": HalfRetriever, "sensitive": BatchSensitive})
    assert isinstance(HalfRetriever(), RetrievingMethod) and not isinstance(BatchSensitive(), RetrievingMethod)
    half = summary["methods"]["half"]
    assert half["1"]["retrieval_reliability"] == 1.0 and half["1"]["reliability_when_missed"] is None  # person 0
    at4 = half["4"]  # persons 0 and 2 retrieve their own edit, 1 and 3 the first edit
    assert (at4["retrieval_reliability"], at4["retrieval_generality"], at4["retrieval_locality"]) == (0.5, 0.5, 1.0)
    assert (at4["reliability"], at4["reliability_when_retrieved"], at4["reliability_when_missed"]) == (0.5, 1.0, 0.0)
    assert "retrieval_reliability" not in summary["methods"]["sensitive"]["4"]  # no retrieval to report
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["retrieved_own"] for r in rows if r["method"] == "half" and r["edits"] == 4] == [True, False, True, False]
    assert not any("retrieved_own" in r for r in rows if r["method"] == "sensitive")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| half | 4 | 0.500 | 0.500 | 1.000 | 1.000 | 0.000 |" in md and "| sensitive | 4 | 0." not in md.split(
        "Where a retrieving method")[1]


def test_old_lifelong_reports_are_refused_with_a_reason(tmp_path):
    from selfparam.eval.report import merge_runs

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"methods": {}}))
    with pytest.raises(ValueError, match="before the shared harness"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "ab")
    assert not (tmp_path / "ab").exists()
