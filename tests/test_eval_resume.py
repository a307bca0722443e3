"""Long runs resume: interrupt a fake method after N units, run the same command again, get the whole run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from test_eval_tasks import TableMethod

from selfparam.eval.progress import RunLog, resume_differences
from selfparam.eval.run import EvalSettings, evaluate
from selfparam.eval.tasks import Meter


class Interrupted(BaseException):
    """Stands for Ctrl-C or a killed process: not an error the harness isolates per method."""


class Counting(TableMethod):
    """A table method that reads the gold answers of the drawn SQuAD questions and can be interrupted."""

    def __init__(self, name, golds, interrupt_after=None, memory=None):
        super().__init__(name, memory=memory)
        self.golds, self.interrupt_after, self.asked = golds, interrupt_after, []

    def inject(self, contexts):
        if self.interrupt_after is not None and self.injections == self.interrupt_after:
            raise Interrupted()
        self.injections += 1
        self.known += [c.text for c in contexts]
        if self.memory is not None:
            self.known = self.known[max(0, len(self.known) - self.memory):]

    def answer(self, queries, max_new_tokens=32):
        self.asked += [q.question for q in queries]
        # right on contexts it remembers, and on every other question of the others
        return [self.golds[q.question][0] if (q.context in self.known or len(q.question) % 2) else "nothing"
                for q in queries]

    def logprob(self, queries, targets):
        return [-0.5 if (q.context in self.known or len(q.question) % 2) else -3.0 for q in queries]


def _settings(squad, out, task="single", **kw):
    return EvalSettings(task, squad, out, methods=("base", "selfparam"), n=4, progress=False, **kw)


@pytest.mark.parametrize("task, memory", [("single", None), ("sequential", 2), ("batch", None)])
def test_interrupted_run_resumes_to_the_same_report(task, memory, squad, golds, tmp_path):
    extra = {"k": 2} if task == "batch" else {}
    whole = {n: Counting(n, golds, memory=memory) for n in ("base", "selfparam")}
    reference, _ = evaluate(_settings(squad, tmp_path / "whole", task, **extra), build=lambda n: whole[n])

    first = {"base": Counting("base", golds, memory=memory),
             "selfparam": Counting("selfparam", golds, interrupt_after=1, memory=memory)}
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        evaluate(_settings(squad, out, task, **extra), build=lambda n: first[n])
    log = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    units = {"single": 4, "batch": 2, "sequential": 4}[task]
    assert [e["method"] for e in log if e["kind"] == "method"] == ["base"]
    assert sum(e["kind"] == "unit" and e["method"] == "selfparam" for e in log) == 1
    assert not (out / "summary.json").exists()
    out = out.rename(tmp_path / "moved")  # a run folder moved elsewhere (into docs/results, say) is the same run

    second = {"base": Counting("base", golds, memory=memory), "selfparam": Counting("selfparam", golds, memory=memory)}
    built = []
    result, paths = evaluate(_settings(squad, out, task, **extra), build=lambda n: built.append(n) or second[n])
    assert built == ["selfparam"]  # base finished: restored from the log without being built
    if task == "sequential":  # the logged step is replayed (injected again) but not asked again
        assert second["selfparam"].injections == 4
        assert len(second["selfparam"].asked) == 3 * (2 + 3 + 4)
    else:
        assert second["selfparam"].injections == units - 1
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["resumed_units"] == units + 1
    for name in ("base", "selfparam"):
        want, got = reference.outcome(name), result.outcome(name)
        assert got.status == "ok" and got.metrics == want.metrics
        assert got.retention == want.retention and got.n_questions == want.n_questions
        assert got.n_injections == want.n_injections
    lines = paths["predictions"].read_text().splitlines()
    assert len(lines) == len(reference.records)
    # and once more: everything comes from the log
    again, _ = evaluate(_settings(squad, out, task, **extra), build=lambda n: pytest.fail("nothing left to run"))
    assert again.outcome("selfparam").metrics == reference.outcome("selfparam").metrics


def test_a_failed_method_is_retried_from_its_last_unit(squad, golds, tmp_path):
    class Fails(Counting):
        def inject(self, contexts):
            if self.injections == 2:
                raise RuntimeError("out of memory")
            super().inject(contexts)

    out = tmp_path / "run"
    result, _ = evaluate(_settings(squad, out),
                         build=lambda n: Fails(n, golds) if n == "selfparam" else Counting(n, golds))
    assert result.outcome("selfparam").status == "failed"
    again = Counting("selfparam", golds)
    result, _ = evaluate(_settings(squad, out), build=lambda n: again)
    assert result.outcome("selfparam").status == "ok" and again.injections == 2
    assert result.outcome("selfparam").n_questions == 12


def test_a_changed_setting_refuses_to_resume(squad, golds, tmp_path):
    out = tmp_path / "run"
    first = {"base": Counting("base", golds), "selfparam": Counting("selfparam", golds, interrupt_after=1)}
    with pytest.raises(Interrupted):
        evaluate(_settings(squad, out), build=lambda n: first[n])
    before = (out / "progress.jsonl").read_text()
    with pytest.raises(ValueError, match=r"max_new_tokens: 32 -> 8.*same settings"):
        evaluate(_settings(squad, out, max_new_tokens=8), build=lambda n: Counting(n, golds))
    with pytest.raises(ValueError, match=r"seed: 0 -> 1"):
        evaluate(_settings(squad, out, seed=1), build=lambda n: Counting(n, golds))
    assert (out / "progress.jsonl").read_text() == before  # nothing changed
    # a setting that changes no figure may change
    evaluate(_settings(squad, out, command="again"), build=lambda n: Counting(n, golds))


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "progress.jsonl"
    good = {"kind": "unit", "method": "m", "unit": "c0", "records": [{"f1": 1.0}],
            "costs": {"inject_time": 0, "n_injections": 1, "answer_time": 0, "n_questions": 1, "storage": 0}}
    path.write_text(json.dumps(good) + "\n" + '{"kind": "unit", "meth')
    log = RunLog(path)
    assert list(log.units) == [("m", "c0")] and path.read_text() == json.dumps(good) + "\n"
    path.write_text('{"kind": \n' + json.dumps(good) + "\n")
    with pytest.raises(ValueError, match="damaged"):
        RunLog(path)


def test_resume_differences_name_the_nested_setting():
    assert resume_differences({"seed": 0, "train": {"lr": 1}, "command": "a"},
                              {"seed": 1, "train": {"lr": 2}, "command": "b"}, ignore=("command",)) == \
        ["seed: 0 -> 1", "train.lr: 1 -> 2"]


def test_a_single_run_grows_by_a_larger_n_without_rerunning_its_items(squad, golds, tmp_path):
    out = tmp_path / "run"
    whole = {n: Counting(n, golds) for n in ("base", "selfparam")}
    reference, _ = evaluate(EvalSettings("single", squad, tmp_path / "whole", methods=("base", "selfparam"), n=5,
                                         progress=False), build=lambda n: whole[n])
    evaluate(EvalSettings("single", squad, out, methods=("base", "selfparam"), n=2, progress=False),
             build=lambda n: Counting(n, golds))
    grown = {n: Counting(n, golds) for n in ("base", "selfparam")}
    result, paths = evaluate(EvalSettings("single", squad, out, methods=("base", "selfparam"), n=5, progress=False),
                             build=lambda n: grown[n])
    assert [m.injections for m in grown.values()] == [3, 3]  # only the three new contexts are run
    for name in ("base", "selfparam"):
        assert result.outcome(name).metrics == reference.outcome(name).metrics
        assert result.outcome(name).n_questions == 15
    assert json.loads((out / "config.json").read_text())["settings"]["n"] == 5
    # shrinking, or growing a sequential run, is still a changed setting
    with pytest.raises(ValueError, match=r"n: 5 -> 3"):
        evaluate(EvalSettings("single", squad, out, methods=("base", "selfparam"), n=3, progress=False),
                 build=lambda n: Counting(n, golds))


def test_a_growth_interrupted_and_resumed_with_the_larger_n_runs_the_missing_items(squad, golds, tmp_path):
    """The config of an interrupted growth already says the larger n, so resuming it is not a growth any more; a
    method that finished at the smaller n must still run its new items (it once counted as finished: a report of
    50 contexts held one method's 41 and another's 40)."""
    methods = ("base", "selfparam")
    whole = {n: Counting(n, golds) for n in methods}
    reference, _ = evaluate(EvalSettings("single", squad, tmp_path / "whole", methods=methods, n=4, progress=False),
                            build=lambda n: whole[n])
    out = tmp_path / "run"
    evaluate(EvalSettings("single", squad, out, methods=methods, n=2, progress=False),
             build=lambda n: Counting(n, golds))
    growing = {"base": Counting("base", golds), "selfparam": Counting("selfparam", golds, interrupt_after=1)}
    with pytest.raises(Interrupted):  # base grows to 4; selfparam runs its third context and is stopped
        evaluate(EvalSettings("single", squad, out, methods=methods, n=4, progress=False), build=lambda n: growing[n])
    assert json.loads((out / "config.json").read_text())["settings"]["n"] == 4
    resumed, built = {n: Counting(n, golds) for n in methods}, []
    result, _ = evaluate(EvalSettings("single", squad, out, methods=methods, n=4, progress=False),
                         build=lambda n: built.append(n) or resumed[n])
    assert built == ["selfparam"] and resumed["selfparam"].injections == 1  # only its fourth context
    for name in methods:
        assert result.outcome(name).metrics == reference.outcome(name).metrics
        assert result.outcome(name).n_questions == 12


def test_recommendation_resumes_turn_by_turn(tmp_path):
    """Recall is computed from the records, so turns taken from the log count exactly as turns run now."""
    from test_eval_tasks import Recommender

    from selfparam.eval.loaders import RecData, RecTurn
    from selfparam.eval.tasks import run_recommendation

    class Stops(Recommender):
        def inject(self, contexts):
            if contexts[0].id == "t2":
                raise Interrupted()
            super().inject(contexts)

    data = RecData("toy", (RecTurn("t1", "User: hi", ("Up",), ()),
                           RecTurn("t2", "User: I loved Up", ("Deadpool",), ("Up",))),
                   ("Up", "Deadpool", "Casablanca"))
    whole = run_recommendation(["inject"], lambda n: Recommender(n), data, list(data.turns), progress=False)
    with pytest.raises(Interrupted):
        run_recommendation(["inject"], lambda n: Stops(n), data, list(data.turns), progress=False,
                           log=RunLog(tmp_path / "progress.jsonl"))
    class Records(Recommender):
        injected: list[str] = []

        def inject(self, contexts):
            self.injected.append(contexts[0].id)
            super().inject(contexts)

    fresh = Records("inject")
    resumed = run_recommendation(["inject"], lambda n: fresh, data, list(data.turns), progress=False,
                                 log=RunLog(tmp_path / "progress.jsonl"))
    assert resumed.outcome("inject").metrics == whole.outcome("inject").metrics
    assert fresh.injected == ["t2"]  # only the second turn was run again
    assert len(resumed.records) == 2


def test_settings_added_by_newer_code_do_not_block_a_resume():
    from selfparam.eval.progress import added_settings

    old = {"seed": 0, "cfg": {"lr": 1}}
    new = {"seed": 0, "cfg": {"lr": 1, "rehearsal": 0}, "questions": "paper"}
    assert resume_differences(old, new) == []
    assert added_settings(old, new) == ["cfg.rehearsal=0", "questions='paper'"]
    # a key the old run had, with another value, is still a difference
    assert resume_differences({**old, "questions": "facts"}, new) == ["questions: 'facts' -> 'paper'"]


def test_report_only_writes_what_the_log_holds_and_runs_nothing(squad, golds, tmp_path):
    out = tmp_path / "run"
    first = {"base": Counting("base", golds), "base-cq": Counting("base-cq", golds),
             "selfparam": Counting("selfparam", golds, interrupt_after=2)}
    methods = ("base", "base-cq", "selfparam")
    with pytest.raises(Interrupted):
        evaluate(EvalSettings("single", squad, out, methods=methods, n=4, progress=False), build=lambda n: first[n])
    config_before = (out / "config.json").read_text()
    result, paths = evaluate(EvalSettings("single", squad, out, methods=methods, n=4, progress=False,
                                          command="report"), report_only=True)
    assert [o.status for o in result.outcomes] == ["ok", "ok", "partial"]
    assert result.outcome("selfparam").n_questions == 6  # its two logged contexts, nothing run
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["report_only"] is True and "wall_seconds" not in summary  # nothing ran, so no time to give
    partial = summary["methods"]["selfparam"]
    # its F1 and its comparisons use the six questions it scored
    assert partial["f1"] == pytest.approx(sum(r["f1"] for r in result.records if r["method"] == "selfparam") / 6)
    assert partial["f1_ci"][0] <= partial["f1"] <= partial["f1_ci"][1]
    assert len(summary["methods"]["base"]["diff_vs_selfparam_ci"]) == 2  # paired on the six shared questions
    assert (out / "config.json").read_text() == config_before  # the run's own command is kept
    md = paths["summary_md"].read_text()
    assert "report only" in md and "## Not finished yet" in md and "## Failures" not in md
    assert "- `selfparam`: 2 injections and 6 questions logged; the rest is not run yet" in md
    # the run goes on from where it stopped, with the same command
    rest = Counting("selfparam", golds)
    done, _ = evaluate(EvalSettings("single", squad, out, methods=methods, n=4, progress=False),
                       build=lambda n: rest)
    assert rest.injections == 2 and done.outcome("selfparam").status == "ok"
    with pytest.raises(ValueError, match="holds no run log with finished units yet"):
        evaluate(EvalSettings("sequential", squad, tmp_path / "seq", methods=methods, n=2, progress=False),
                 report_only=True)


def test_units_logged_before_the_logprob_pass_was_timed_still_add_up():
    from selfparam.eval.tasks import Meter

    meter = Meter()
    meter.add({"inject_time": 2.0, "n_injections": 1, "answer_time": 1.0, "n_questions": 4, "storage": 0})
    meter.add({"inject_time": 2.0, "n_injections": 1, "answer_time": 1.0, "n_questions": 4, "logprob_time": 0.8,
               "storage": 0})
    assert (meter.answer_time, meter.n_questions, meter.logprob_time) == (2.0, 8, 0.8)


def test_a_setting_added_with_a_value_that_behaves_otherwise_refuses_the_resume(tmp_path):
    """A run started before `context_copies` existed read no context; today's default reads it 10 times: growing
    that run on today's code would mix two methods in one table, so the resumption is refused until the setting
    is given the value that behaves as the old code (`settings.ABSENT`); the config file's path may differ."""
    import dataclasses as dc

    from selfparam.eval.run import open_run_log
    from selfparam.methods.finetune.config import FineTuneContextConfig
    from selfparam.methods.selfparam import SelfParamConfig

    def config(selfparam: SelfParamConfig, ftc: FineTuneContextConfig, method_config=None) -> dict:
        return {"settings": {"task": "single", "n": 2, "seed": 0, "method_config": method_config},
                "method_configs": {"selfparam": dc.asdict(selfparam), "ft-c": dc.asdict(ftc)}, "items": ["a", "b"]}

    old = config(SelfParamConfig(), FineTuneContextConfig())
    for key in ("context_copies", "kl_span"):           # as recorded before these settings existed
        del old["method_configs"]["selfparam"][key]
    del old["method_configs"]["ft-c"]["budget_context_copies"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "progress.jsonl").write_text("")
    with pytest.raises(ValueError) as err:
        open_run_log(tmp_path, config(SelfParamConfig(), FineTuneContextConfig()))
    for named in ("selfparam.context_copies=10", "selfparam.kl_span='pair'", "ft-c.budget_context_copies=10"):
        assert named in str(err.value)
    as_before = config(SelfParamConfig(context_copies=0, kl_span="answer"),
                       FineTuneContextConfig(budget_context_copies=0), method_config="legacy.json")
    assert open_run_log(tmp_path, as_before) is not None
    # a setting added without a declared old behaviour only warns, as before
    del old["method_configs"]["selfparam"]["rehearsal_limit"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert open_run_log(tmp_path, as_before) is not None


def test_a_setting_removed_from_the_code_resumes_only_at_its_value_that_behaves_as_today(tmp_path):
    """`shots_answers` was removed (off is what the code does without it): a run recorded with it off grows on
    today's code; one recorded with it on cannot be repeated, and the resume check names it."""
    import dataclasses as dc

    from selfparam.eval.run import open_run_log
    from selfparam.methods.selfparam import SelfParamConfig

    def config(**extra) -> dict:
        return {"settings": {"task": "single", "n": 2, "seed": 0},
                "method_configs": {"selfparam": {**dc.asdict(SelfParamConfig()), **extra}}, "items": ["a", "b"]}

    (tmp_path / "progress.jsonl").write_text("")
    for recorded, resumes in ((False, True), (True, False)):
        (tmp_path / "config.json").write_text(json.dumps(config(shots_answers=recorded)))
        if resumes:
            assert open_run_log(tmp_path, config()) is not None
        else:
            with pytest.raises(ValueError, match="selfparam.shots_answers"):
                open_run_log(tmp_path, config())


def test_a_methods_own_targets_neither_recorded_nor_compared(squad, golds, tmp_path):
    """The harness trains every method on the run's shared target sets (the run's `questions`, `n_pairs`,
    `unrelated`); a method config's own `targets` is never used. Runs recorded it at its default of the day, so a
    new default there (fact questions) must not refuse to resume them, and new runs do not record it."""
    from selfparam.eval.run import open_run_log

    out = tmp_path / "run"
    evaluate(_settings(squad, out), build=lambda n: Counting(n, golds))
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["method_configs"] and all("targets" not in c for c in recorded["method_configs"].values())
    stale = json.loads(json.dumps(recorded))  # as a run recorded before: every config with its unused targets
    for values in stale["method_configs"].values():
        values["targets"] = {"n_pairs": 50, "unrelated_path": None, "questions": "paper"}
    (out / "config.json").write_text(json.dumps(stale))
    assert open_run_log(out, recorded) is not None
    # the run's own setting is still compared
    other = {**recorded, "settings": {**recorded["settings"], "questions": "other"}}
    with pytest.raises(ValueError, match=r"questions: '\w+' -> 'other'"):
        open_run_log(out, other)


def test_a_unit_logs_the_weight_updates_it_ran(tmp_path):
    class Trained:  # a method that trains says how each update went (`last_stats`), as the weight methods do
        last_stats = None

        def inject(self, contexts):
            self.last_stats = SimpleNamespace(to_dict=lambda: {"steps": 3, "loss_by_group": {"pairs": 0.5}})

        def storage_bytes(self):
            return 0

    class Untrained(Trained):
        def inject(self, contexts):
            pass

    log = RunLog(tmp_path / "progress.jsonl")
    for name, method in (("trained", Trained()), ("retrieval", Untrained())):
        meter, records = Meter(), []
        with log.unit(name, "step 0", meter, records):
            meter.inject(method, [])
            meter.inject(method, [])
    entries = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert entries[0]["updates"] == [{"steps": 3, "loss_by_group": {"pairs": 0.5}}] * 2
    assert "updates" not in entries[1]  # nothing trained: the line is as before


def test_runs_merged_with_their_logs_grow_as_one_run(squad, golds, tmp_path):
    """Methods run apart on the same draw become one run: its log holds each method's units, and the eval command
    with every method grows it, running only the new items, to the figures of a run made whole."""
    from selfparam.eval.report import merge_runs

    methods = ("base", "selfparam")
    whole = {n: Counting(n, golds) for n in methods}
    reference, _ = evaluate(EvalSettings("single", squad, tmp_path / "whole", methods=methods, n=4, progress=False),
                            build=lambda n: whole[n])
    for name in methods:
        evaluate(EvalSettings("single", squad, tmp_path / name, methods=(name,), n=2, progress=False),
                 build=lambda n: Counting(n, golds))
    merge_runs([tmp_path / "base", tmp_path / "selfparam"], tmp_path / "merged")
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["settings"]["methods"] == list(methods) and set(config["method_configs"]) <= set(methods)
    assert json.loads((tmp_path / "merged" / "summary.json").read_text())["growable"] is True

    grown = {n: Counting(n, golds) for n in methods}
    result, _ = evaluate(EvalSettings("single", squad, tmp_path / "merged", methods=methods, n=4, progress=False),
                         build=lambda n: grown[n])
    assert [m.injections for m in grown.values()] == [2, 2]  # the two logged items of each are not run again
    for name in methods:
        assert result.outcome(name).metrics == reference.outcome(name).metrics
    assert set(json.loads((tmp_path / "merged" / "config.json").read_text())["merged_from"]) == \
        {str(tmp_path / "base"), str(tmp_path / "selfparam")}  # kept as the run grows
    with pytest.raises(ValueError, match="already holds a run log"):  # never over a run log
        merge_runs([tmp_path / "base", tmp_path / "selfparam"], tmp_path / "merged")


def test_runs_that_differ_in_a_setting_merge_as_a_report_only_unless_it_is_vouched_for(squad, golds, tmp_path):
    from selfparam.eval.report import merge_runs

    evaluate(EvalSettings("single", squad, tmp_path / "a", methods=("base",), n=2, progress=False),
             build=lambda n: Counting(n, golds))
    evaluate(EvalSettings("single", squad, tmp_path / "b", methods=("selfparam",), n=2, questions="paper",
                          progress=False), build=lambda n: Counting(n, golds))
    merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "report")
    assert not (tmp_path / "report" / "progress.jsonl").exists()
    growable = json.loads((tmp_path / "report" / "summary.json").read_text())["growable"]
    assert "questions" in growable and "--may-differ" in growable
    merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "vouched", may_differ=("questions",))
    assert (tmp_path / "vouched" / "progress.jsonl").is_file()
    assert json.loads((tmp_path / "vouched" / "config.json").read_text())["settings"]["questions"] == "facts"


def test_a_method_left_out_of_a_resumed_run_keeps_its_config_compared(squad, golds, tmp_path):
    """Which methods run may change between a run's commands, but a method's config is still compared when it
    comes back: it stays in config.json while other methods go on without it."""
    out = tmp_path / "run"
    evaluate(EvalSettings("single", squad, out, methods=("base", "selfparam"), n=2, progress=False),
             build=lambda n: Counting(n, golds))
    with pytest.raises(ValueError, match="grows with every method it has; add selfparam"):
        evaluate(EvalSettings("single", squad, out, methods=("base",), n=3, progress=False),
                 build=lambda n: Counting(n, golds))
    evaluate(EvalSettings("single", squad, out, methods=("base",), n=2, progress=False),
             build=lambda n: Counting(n, golds))
    assert "selfparam" in json.loads((out / "config.json").read_text())["method_configs"]
    changed = tmp_path / "rehearsal0.json"
    changed.write_text(json.dumps({"selfparam": {"rehearsal": 0}}))
    with pytest.raises(ValueError, match=r"selfparam\.rehearsal: 10 -> 0"):
        evaluate(EvalSettings("single", squad, out, methods=("selfparam",), n=2, method_config=changed,
                              progress=False), build=lambda n: Counting(n, golds))
    grown = {n: Counting(n, golds) for n in ("base", "selfparam")}
    evaluate(EvalSettings("single", squad, out, methods=("base", "selfparam"), n=3, progress=False),
             build=lambda n: grown[n])
    assert [m.injections for m in grown.values()] == [1, 1]  # the two logged items kept, the third run


def test_a_damaged_run_log_refuses_the_merge_and_names_the_line(squad, golds, tmp_path):
    from selfparam.eval.report import merge_runs

    for name in ("base", "selfparam"):
        evaluate(EvalSettings("single", squad, tmp_path / name, methods=(name,), n=2, progress=False),
                 build=lambda n: Counting(n, golds))
    with open(tmp_path / "selfparam" / "progress.jsonl", "a") as f:
        f.write('{"kind": "unit", "meth')
    with pytest.raises(ValueError, match=r"progress\.jsonl:\d+ is not valid JSON"):
        merge_runs([tmp_path / "base", tmp_path / "selfparam"], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # nothing half-written
