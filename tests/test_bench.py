"""`selfparam bench`'s figures on the tiny model: every key, and the arithmetic between them."""

from __future__ import annotations

import pytest
import torch

from selfparam.bench import DEFAULT_UNRELATED, bench_config, bench_context, bench_injection
from selfparam.methods.selfparam import SelfParamConfig, TargetConfig
from selfparam.precision import cpu_bf16_native
from selfparam.targets import FactGenerator, LocalGenerator
from selfparam.targets.types import QAPair
from selfparam.testing import tiny_lm
from selfparam.training.trainer import TrainConfig

CTX = "Mara Lindqvist opened the Blue Heron bakery in Tromso in 2019. Its best seller is a cardamom bun."
PAIRS = [QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist"),
         QAPair("When did the Blue Heron bakery open?", "In 2019"),
         QAPair("What is the best seller of the Blue Heron bakery?", "A cardamom bun")]


def test_bench_reports_the_whole_injection_and_the_naive_path(monkeypatch):
    paths = []

    def fixed_pairs(self, context, n, seed):  # a random tiny model writes no usable pairs
        paths.append(self.reuse_prompt_cache)
        return list(PAIRS)

    monkeypatch.setattr(LocalGenerator, "generate", fixed_pairs)
    lm = tiny_lm(seed=0, max_position_embeddings=2048)
    weights = {k: v.clone() for k, v in lm.model.state_dict().items()}
    config = SelfParamConfig(targets=TargetConfig(n_pairs=3, answers="generator", questions="paper"),
                             train=TrainConfig(epochs=1, batch_size=2))
    figures = bench_injection(lm, CTX, config, naive=True, log=lambda *_: None)
    assert paths == [True, False]  # ours samples on the cached prompt, the naive path recomputes it
    assert figures["pairs"] == 3 and figures["unrelated"] == 0 and figures["epochs"] == 1
    # 3 pairs and the context read 10 times (one chunk) in batches of 2, one epoch: SELF-PARAM's own training ran
    assert figures["steps"] == 7
    assert figures["compute_dtype"] == "float32" and figures["cpu_bf16_native"] == cpu_bf16_native()
    stages = ("setup", "generation", "answers", "examples", "teacher", "train")
    assert figures["seconds_total"] == pytest.approx(sum(figures[f"seconds_{k}"] for k in stages), abs=0.004)
    naive_total = figures["naive_seconds_generation"] + figures["naive_seconds_train"]
    assert figures["naive_seconds_total"] == pytest.approx(naive_total, abs=0.003)
    assert figures["naive_seconds_train"] > 0 and figures["seconds_train"] > 0
    assert _ratio_of_rounded(figures["speedup_vs_naive"], figures["naive_seconds_total"], figures["seconds_total"], 1)
    assert _ratio_of_rounded(figures["speedup_train_vs_naive"], figures["naive_seconds_train"],
                             figures["seconds_examples"] + figures["seconds_teacher"] + figures["seconds_train"], 3)
    assert all(torch.equal(v, weights[k]) for k, v in lm.model.state_dict().items())  # the model is left as it was


def _ratio_of_rounded(ratio: float, num: float, den: float, n_den: int) -> bool:
    """Whether `ratio` (rounded to 0.01) can be num/den for seconds that were each rounded to 0.01
    (`n_den` rounded terms in the denominator): the tiny model's steps take centiseconds."""
    lo = (num - 0.005) / (den + 0.005 * n_den)
    hi = (num + 0.005) / max(den - 0.005 * n_den, 1e-9)
    return lo - 0.005 <= ratio <= hi + 0.005


def test_bench_without_naive_has_no_naive_keys(monkeypatch):
    monkeypatch.setattr(FactGenerator, "generate", lambda self, context, n, seed: list(PAIRS))  # the default
    config = SelfParamConfig(targets=TargetConfig(n_pairs=3, answers="generator"), train=TrainConfig(epochs=1))
    figures = bench_injection(tiny_lm(seed=0, max_position_embeddings=2048), CTX, config, naive=False,
                              log=lambda *_: None)
    assert not any(k.startswith(("naive", "speedup")) for k in figures) and figures["seconds_total"] > 0


def test_bench_context_is_a_squad_length_tuning_paragraph():
    data = bench_context()
    assert 100 <= len(data["context"].split()) <= 200 and "Oxygen" in data["source"]
    assert all(any(a in data["context"] for a in q["answers"]) for q in data["questions"])


def test_bench_config_times_a_file_of_selfparam_settings_with_the_command_line_on_top(tmp_path):
    assert bench_config().targets.unrelated_path == DEFAULT_UNRELATED and bench_config().train.epochs == 3
    path = tmp_path / "method.json"
    path.write_text('{"selfparam": {"targets": {"generator_samples": 32, "generator_retire_after": 2}, '
                    '"train": {"epochs": 2}, "pull_back": 0.5}}')
    assert bench_config(path).targets.unrelated_path == DEFAULT_UNRELATED  # as without a file
    config = bench_config(path, n_pairs=20, unrelated="none")
    assert (config.targets.generator_samples, config.targets.generator_retire_after) == (32, 2)
    assert config.targets.n_pairs == 20 and config.targets.unrelated_path is None
    assert config.train.epochs == 2 and config.pull_back == 0.5  # the file's, where the command line is silent
    assert bench_config(path, epochs=1).train.epochs == 1


@pytest.mark.parametrize("text, message", [
    ('{"ft-s": {}}', "one key, 'selfparam'"),
    ('{"selfparam": {"rehersal": 3}}', "unknown setting 'rehersal'"),
    ('{"selfparam": {"pull_back": 1.5}}', "pull_back"),
])
def test_bench_config_refuses_a_bad_file_before_any_model_loads(tmp_path, text, message):
    path = tmp_path / "method.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        bench_config(path)


def test_inject_records_where_its_seconds_went():
    from selfparam.methods.base import Context
    from selfparam.methods.selfparam import SelfParam
    from selfparam.targets.types import TargetSet

    lm = tiny_lm(seed=0)
    config = SelfParamConfig(targets=TargetConfig(answers="generator"), train=TrainConfig(epochs=1))
    method = SelfParam(lm, config, progress=False)
    method.build_targets = lambda context: TargetSet(context, list(PAIRS), unrelated=["Rain fell on the hills."])
    method.inject([Context("c", CTX)])
    seconds = method.records[-1].manifest["seconds"]
    assert set(seconds) == {"setup", "targets", "answers", "examples", "teacher", "train", "total"}
    assert all(v >= 0 for v in seconds.values()) and seconds["train"] > 0
    assert seconds["examples"] > 0  # the unchanged model teaches the unrelated sentence (the default anchor)
    parts = sum(v for k, v in seconds.items() if k != "total")
    assert seconds["total"] == pytest.approx(parts, abs=0.004)
    assert seconds["teacher"] == round(method.last_stats.seconds_teacher, 3)


def test_the_naive_path_of_fact_questions_is_the_fact_generator_without_its_caches(monkeypatch):
    """With fact questions (the default) the naive generation is the same generator on its plain path, and the
    pairs are not answered a second time (the generator's teacher already answered them)."""
    paths = []

    def fixed_pairs(self, context, n, seed):
        paths.append(self.reuse_prompt_cache)
        return list(PAIRS)

    monkeypatch.setattr(FactGenerator, "generate", fixed_pairs)
    monkeypatch.setattr("selfparam.bench.answer_in_context", lambda *a: pytest.fail("answered twice"))
    config = SelfParamConfig(targets=TargetConfig(n_pairs=6), train=TrainConfig(epochs=1, batch_size=2))
    assert config.targets.questions == "facts"
    figures = bench_injection(tiny_lm(seed=0, max_position_embeddings=2048), CTX, config, naive=True,
                              log=lambda *_: None)
    assert paths == [True, False] and figures["pairs"] == 6  # 3 distinct pairs cycled to n_pairs on both paths
