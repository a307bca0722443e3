"""`--general-every N`: general ability after every N-th sequential injection, kept in the run log so a
resumed run keeps the figures of its replayed steps instead of measuring them again."""

from __future__ import annotations

import json
import math

import pytest
from test_eval_resume import Counting, Interrupted
from typer.testing import CliRunner

import selfparam.eval.run as run_module
from selfparam.cli.eval import eval_app
from selfparam.eval.general import GeneralConfig
from selfparam.eval.run import EvalSettings, evaluate

runner = CliRunner()


class Injected:
    """Stands in for a model whose general ability depends on how many contexts it was given."""

    def __init__(self, owner=None):
        self.owner = owner

    @property
    def injections(self) -> int:
        return self.owner.injections if self.owner is not None else 0


class WithLM(Counting):
    """A fake weight method: it answers with its own `lm`, which changes with every injection."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.lm = Injected(self)


@pytest.fixture
def measured(monkeypatch):
    """`general_ability` replaced by a step-dependent fake that records the injection count it saw."""
    calls: list[int] = []

    def fake(lm, config):
        calls.append(lm.injections)
        return {"mmlu_acc": 0.5 - 0.01 * lm.injections, "wikitext_ppl": 10.0 + lm.injections}

    monkeypatch.setattr(run_module, "general_ability", fake)
    return calls


GENERAL = GeneralConfig(wikitext="unused: general_ability is replaced")


def _settings(squad, out, methods=("base", "selfparam"), general_every=2, **kw):
    return EvalSettings("sequential", squad, out, methods=methods, n=5, progress=False, general=GENERAL,
                        general_every=general_every, **kw)


def _figures(injections: int) -> dict[str, float]:
    return {"mmlu_acc": pytest.approx(0.5 - 0.01 * injections), "wikitext_ppl": pytest.approx(10.0 + injections)}


@pytest.mark.plots  # asserts the PNG files
def test_general_ability_after_every_second_step_and_the_last(measured, squad, golds, tmp_path):
    methods = {"base": Counting("base", golds), "selfparam": WithLM("selfparam", golds)}
    out = tmp_path / "run"
    _, paths = evaluate(_settings(squad, out), lm=Injected(), build=methods.__getitem__)
    summary = json.loads(paths["summary_json"].read_text())
    assert summary["general_before"] == _figures(0)
    steps = summary["methods"]["selfparam"]["general_by_step"]
    assert list(steps) == ["0", "2", "4", "5"]
    assert steps == {s: _figures(int(s)) for s in ("0", "2", "4", "5")}
    # the final figures are the last step's, as without the option, and were measured once
    assert summary["methods"]["selfparam"]["wikitext_ppl"] == pytest.approx(15.0)
    assert measured == [0, 2, 4, 5]  # before, then selfparam; base has no `lm` to measure
    base = summary["methods"]["base"]
    assert list(base["general_by_step"]) == ["0", "2", "4", "5"]
    assert "exposes no `lm`" in base["general_by_step"]["4"]["general_error"]
    assert "exposes no `lm`" in base["general_error"]
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["general_every"] == 2
    table = (out / "summary.md").read_text()
    assert "## General ability by number of injections" in table
    assert "| selfparam | 4 | 14.000 | 0.460 |" in table
    assert (out / "general_by_step.png").stat().st_size > 0
    log = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    logged = {e["unit"]: e.get("figures") for e in log if e.get("method") == "selfparam" and e["kind"] == "unit"}
    assert logged["step 1"] == {"after": {"mmlu_acc": pytest.approx(0.48), "wikitext_ppl": 12.0}}
    assert logged["step 0"] is None and logged["step 2"] is None


@pytest.mark.plots  # asserts the PNG files
def test_without_the_option_nothing_changes(measured, squad, golds, tmp_path):
    method = WithLM("selfparam", golds)
    _, paths = evaluate(_settings(squad, tmp_path / "run", methods=("selfparam",), general_every=0),
                        lm=Injected(), build=lambda n: method)
    entry = json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]
    assert "general_by_step" not in entry and entry["wikitext_ppl"] == pytest.approx(15.0)
    assert measured == [0, 5]
    assert not (tmp_path / "run" / "general_by_step.png").exists()
    assert "figures" not in (tmp_path / "run" / "progress.jsonl").read_text()


def test_a_resumed_run_keeps_the_logged_steps_figures(measured, squad, golds, tmp_path):
    whole = {"base": Counting("base", golds), "selfparam": WithLM("selfparam", golds)}
    _, paths = evaluate(_settings(squad, tmp_path / "whole"), lm=Injected(), build=whole.__getitem__)
    reference = json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]

    out = tmp_path / "run"
    first = {"base": Counting("base", golds), "selfparam": WithLM("selfparam", golds, interrupt_after=3)}
    measured.clear()
    with pytest.raises(Interrupted):  # steps 0-2 of selfparam logged, step 3 interrupted
        evaluate(_settings(squad, out), lm=Injected(), build=first.__getitem__)
    assert measured == [0, 2]

    measured.clear()
    second = {"base": Counting("base", golds), "selfparam": WithLM("selfparam", golds)}
    _, paths = evaluate(_settings(squad, out), lm=Injected(), build=second.__getitem__)
    assert measured == [0, 4, 5]  # before, then only the steps run now: step 2 comes from the log
    assert second["selfparam"].injections == 5  # three replayed, two run
    entry = json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]
    assert entry["general_by_step"] == reference["general_by_step"]
    assert entry["wikitext_ppl"] == reference["wikitext_ppl"]

    measured.clear()  # once more: every figure comes from the log, only the base model is measured
    _, paths = evaluate(_settings(squad, out), lm=Injected(), build=lambda n: pytest.fail("nothing left to run"))
    assert measured == [0]
    assert json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]["general_by_step"] \
        == reference["general_by_step"]
    with pytest.raises(ValueError, match=r"general_every: 2 -> 1"):  # a changed N is a changed setting
        evaluate(_settings(squad, out, general_every=1), lm=Injected(), build=second.__getitem__)


def test_report_only_on_a_stopped_sequential_run_reports_its_last_logged_step(measured, squad, golds, tmp_path):
    out = tmp_path / "run"
    first = {"base": Counting("base", golds), "selfparam": WithLM("selfparam", golds, interrupt_after=3)}
    with pytest.raises(Interrupted):  # steps 0-2 of selfparam logged (general ability after step 2), step 3 stopped
        evaluate(_settings(squad, out), lm=Injected(), build=first.__getitem__)
    logged = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    measured.clear()
    result, paths = evaluate(_settings(squad, out), report_only=True)  # no model, nothing injected or measured
    assert measured == []
    assert [o.status for o in result.outcomes] == ["ok", "partial"]
    own = [r for r in result.records if r["method"] == "selfparam"]
    assert max(r["step"] for r in own) == 2 and len(own) == 3 + 6 + 9  # 3 questions per context, asked after each step
    entry = json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]
    final = [r for r in own if r["step"] == 2]
    assert entry["f1"] == pytest.approx(sum(r["f1"] for r in final) / len(final))  # after its last logged step
    assert entry["general_by_step"] == {"2": _figures(2)}  # from the log; the base model's were not logged
    assert len(result.outcome("selfparam").extra["curve"]) == 3  # F1 against injections, the steps so far
    assert "## Not finished yet" in paths["summary_md"].read_text()
    assert [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()] == logged  # untouched


@pytest.mark.parametrize("task, kw, message", [
    ("sequential", {"general_every": -1}, "must be >= 1"),
    ("single", {"general_every": 2}, "sequential task only"),
    ("sequential", {"general_every": 2, "general": None}, "needs --general"),
])
def test_bad_general_every_is_refused(task, kw, message, squad, tmp_path):
    settings = {"general": GENERAL, **kw}
    with pytest.raises(ValueError, match=message):
        EvalSettings(task, squad, tmp_path / "out", methods=("base",), **settings)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["sequential", "--general-every", "2"], "needs --general"),
    (["sequential", "--general-every", "-1", "--general", "--wikitext", "{squad}"], "must be >= 1"),
    (["single", "--general-every", "2", "--general", "--wikitext", "{squad}"], "No such option"),
])
def test_bad_general_every_on_the_command_line(args, message, squad, tmp_path):
    out = tmp_path / "out"
    args = [a.format(squad=squad) for a in args] + ["--data", str(squad), "--methods", "base", "--out", str(out)]
    result = runner.invoke(eval_app, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_real_weights_real_figures(tiny, shared_data):
    """A weight method on the tiny model: perplexity moves with the injections, and the last step's figures
    are the final ones (measured once, inside the step's unit)."""
    from test_eval_tasks import make_contexts

    from selfparam.eval.general import general_ability
    from selfparam.eval.progress import RunLog
    from selfparam.eval.run import _general_after
    from selfparam.eval.tasks import run_sequential
    from selfparam.methods.finetune import FineTuneContextConfig
    from selfparam.methods.registry import build_method
    from selfparam.training.trainer import TrainConfig

    config = GeneralConfig(wikitext=shared_data / "wikitext2/wiki.test.raw", ppl_tokens=64, ppl_window=32)
    before = general_ability(tiny, config)["wikitext_ppl"]
    method = build_method("ft-c", tiny, FineTuneContextConfig(train=TrainConfig(epochs=2, batch_size=2, lr=5e-2)))
    method.progress = False
    log = RunLog()
    result = run_sequential(["ft-c"], lambda n: method, make_contexts(3), max_new_tokens=2, progress=False,
                            after=_general_after(config), log=log, after_every=2)
    outcome = result.outcome("ft-c")
    assert outcome.status == "ok", outcome.error
    steps = outcome.extra["general_by_step"]
    assert list(steps) == ["2", "3"]
    ppl = [before, steps["2"]["wikitext_ppl"], steps["3"]["wikitext_ppl"]]
    assert len(set(ppl)) == 3  # every measured point saw other weights
    assert outcome.extra["wikitext_ppl"] == ppl[2]
    assert log.figures("ft-c", "step 1") == {"after": steps["2"]} and log.figures("ft-c", "step 0") == {}


def test_each_measured_step_against_the_base_model_with_paired_intervals(monkeypatch, squad, golds, tmp_path):
    """With the per-item figures (`mmlu_hits`, WikiText-2 blocks) each step's change from the base model comes
    with a paired interval, in summary.json and in the by-step table."""

    def fake(lm, config):  # each injection costs one of ten MMLU questions and 0.1 nats/token on every block
        k = lm.injections
        return {"mmlu_acc": (10 - k) / 10, "wikitext_ppl": 10.0, "mmlu_hits": [1.0] * (10 - k) + [0.0] * k,
                "wikitext_block_nll": [0.1 * k * 4] * 3, "wikitext_block_tokens": [4, 4, 4]}

    monkeypatch.setattr(run_module, "general_ability", fake)
    method = WithLM("selfparam", golds)
    _, paths = evaluate(_settings(squad, tmp_path / "run", methods=("selfparam",)), lm=Injected(),
                        build=lambda n: method)
    change = json.loads(paths["summary_json"].read_text())["methods"]["selfparam"]["general_change"]
    assert change["mmlu_change"] == pytest.approx(-0.5) and change["wikitext_ppl_change"] == pytest.approx(
        math.exp(0.5) - 1)  # after the last (fifth) injection
    assert list(change["by_step"]) == ["2", "4", "5"]
    assert change["by_step"]["2"]["mmlu_change"] == pytest.approx(-0.2)
    lo, hi = change["by_step"]["2"]["mmlu_change_ci"]
    assert -1 <= lo < -0.2 < hi <= 0  # the two lost questions drawn more or less often, never a gain
    assert change["by_step"]["4"]["wikitext_ppl_change_ci"] == pytest.approx([math.exp(0.4) - 1] * 2)
    table = (tmp_path / "run" / "summary.md").read_text()
    assert "| method | injections | wikitext_ppl | mmlu_acc | perplexity change vs base [95% CI] | MMLU − base" in table
    assert "| selfparam | 4 | 10.000 | 0.600 | +0.492 [+0.492, +0.492] | -0.400 [" in table
    assert "| selfparam | 0 | 10.000 | 1.000 | – | – |" in table  # the base model itself
    assert "| selfparam | +0.649 [+0.649, +0.649] | -0.500 [" in table  # after the last injection
