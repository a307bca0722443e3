"""The run seed reaches every method's config; `--seeds` sweeps in one command with a combined summary."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import pytest
from typer.testing import CliRunner

from selfparam.cli.eval import eval_app
from selfparam.eval.run import EvalSettings, evaluate_seeds, run_method_configs
from selfparam.eval.seeds import parse_seeds, seed_summary, seeded


def _seed_fields(config, where=""):
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "seed":
            out[where + "seed"] = value
        elif dataclasses.is_dataclass(value):
            out.update(_seed_fields(value, f"{where}{f.name}."))
    return out


@dataclass
class Train:
    seed: int = 0
    lr: float = 1e-3


@dataclass
class Method:
    train: Train = field(default_factory=Train)
    seed: int = 0
    name: str = "x"


def test_seeded_sets_every_nested_seed_and_nothing_else():
    config = Method(Train(seed=1, lr=0.5), seed=2, name="y")
    assert seeded(config, 9) == Method(Train(seed=9, lr=0.5), seed=9, name="y")
    assert config.train.seed == 1  # a copy: the original is unchanged
    assert seeded(None, 3) is None


def test_the_run_seed_reaches_every_method_config(tmp_path):
    settings = EvalSettings("single", tmp_path / "x.json", tmp_path / "out", n=2, seed=7,
                            methods=("base", "base-cq", "ft-c", "ft-s", "selfparam", "rag-bm25", "rag-dense"))
    configs = run_method_configs(settings)
    seeds = {name: _seed_fields(c) for name, c in configs.items()}
    assert seeds["selfparam"] and seeds["ft-s"] and seeds["ft-c"]  # the weight methods train with a seed
    assert all(v == 7 for fields in seeds.values() for v in fields.values()), seeds


def test_a_method_config_file_may_not_set_a_seed(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"selfparam": {"train": {"seed": 3, "epochs": 1}}}))
    settings = EvalSettings("single", tmp_path / "x.json", tmp_path / "out", methods=("selfparam",), method_config=path)
    with pytest.raises(ValueError, match="selfparam.train.seed set a seed"):
        run_method_configs(settings)
    path.write_text(json.dumps({"selfparam": {"train": {"epochs": 1}}}))
    settings.seed = 4
    assert run_method_configs(settings)["selfparam"].train.epochs == 1


def test_parse_seeds():
    assert parse_seeds("0,1,2") == (0, 1, 2)
    for bad in ("0,a", "1,1", ""):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_seed_summary_by_hand():
    summaries = {0: {"task": "single", "methods": {"a": {"status": "ok", "f1": 0.2, "f1_ci": [0.1, 0.3],
                                                         "storage_bytes": 5},
                                                   "b": {"status": "ok", "f1": 0.5, "recovery": None}}},
                 1: {"task": "single", "methods": {"a": {"status": "ok", "f1": 0.4},
                                                   "b": {"status": "failed"}}}}
    s = seed_summary(summaries)
    assert s["seeds"] == [0, 1]
    assert s["methods"]["a"]["f1"] == pytest.approx(0.3) and s["methods"]["a"]["f1_per_seed"] == [0.2, 0.4]
    assert "storage_bytes" not in s["methods"]["a"] and "f1_ci" not in s["methods"]["a"]
    assert s["methods"]["b"]["status"] == "failed" and s["methods"]["b"]["failed_seeds"] == [1]
    assert s["methods"]["b"]["f1"] is None and s["methods"]["b"]["f1_per_seed"] == [0.5, None]


class Seeded:
    """Answers the gold answer of half the questions, which half depending on the torch seed at build;
    with `reads=True` it answers every question right, as Base(C+Q) with the context in view."""

    def __init__(self, name, golds, reads=False):
        import torch

        self.name, self.golds, self.reads, self.flip = name, golds, reads, int(torch.randint(0, 2, (1,)))

    def inject(self, contexts):
        pass

    def answer(self, queries, max_new_tokens=32):
        return [self.golds[q.question] if self.reads or len(q.question) % 2 == self.flip else "nothing"
                for q in queries]

    def logprob(self, queries, targets):
        return [-0.5 if self.reads or len(q.question) % 2 == self.flip else -3.0 for q in queries]

    def reset(self):
        pass

    def storage_bytes(self):
        return 0


def test_sweep_writes_one_folder_per_seed_and_a_combined_summary(shared_data, tmp_path):
    from selfparam.eval.loaders import load_qa

    squad = shared_data / "squad_v1.1/dev-v1.1-public.json"
    golds = {qa.question: qa.answers[0] for c in load_qa(squad) for qa in c.questions}
    settings = EvalSettings("single", squad, tmp_path / "sweep", methods=("base", "base-cq"), n=3, progress=False)
    results, paths = evaluate_seeds(settings, "0,1", build=lambda name: Seeded(name, golds, reads=name == "base-cq"))
    assert set(results) == {0, 1}
    for seed in (0, 1):
        config = json.loads((tmp_path / "sweep" / f"seed-{seed}" / "config.json").read_text())
        assert config["settings"]["seed"] == seed
        assert config["settings"]["targets_dir"].endswith(f"seed-{seed}/targets")
    per_seed = [json.loads((tmp_path / "sweep" / f"seed-{s}" / "summary.json").read_text())["methods"]["base"]["f1"]
                for s in (0, 1)]
    combined = json.loads(paths["summary_json"].read_text())
    assert combined["seeds"] == [0, 1]
    assert combined["methods"]["base"]["f1_per_seed"] == per_seed
    assert combined["methods"]["base"]["f1"] == pytest.approx(sum(per_seed) / 2)
    assert combined["methods"]["base-cq"]["recovery_per_seed"] == [1.0, 1.0]
    md = paths["summary_md"].read_text()
    assert "seeds 0, 1" in md and "| base | ok |" in md


def test_seed_and_seeds_together_are_refused(shared_data, tmp_path):
    result = CliRunner().invoke(eval_app, ["single", "--data", str(shared_data / "squad_v1.1/dev-v1.1-public.json"),
                                           "--methods", "base", "--seed", "3", "--seeds", "0,1",
                                           "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not both" in result.output
    result = CliRunner().invoke(eval_app, ["single", "--data", str(shared_data / "squad_v1.1/dev-v1.1-public.json"),
                                           "--methods", "base", "--seeds", "0,x", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "comma-separated" in result.output and not (tmp_path / "o").exists()
