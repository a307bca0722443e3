"""`auto` precision on a CPU: bf16 where it is native or measured faster, fp32 where it is emulated."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from selfparam.lm import resolve_precision
from selfparam.precision import choose_cpu_dtype, cpu_bf16_native, cpu_flags

AVX512_ONLY = frozenset({"sse4_2", "avx2", "avx512f", "avx512bw"})


def test_native_flags_choose_bf16_without_measuring(tmp_path):
    def measure():
        raise AssertionError("a CPU with native bf16 must not be measured")

    choice = choose_cpu_dtype(tmp_path / "c.json", AVX512_ONLY | {"avx512_bf16"}, lambda: True, measure)
    assert choice.dtype == torch.bfloat16
    assert "avx512_bf16" in choice.reason
    assert not (tmp_path / "c.json").exists()


def test_emulated_bf16_that_measures_slower_chooses_fp32_and_caches_it(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return 0.32  # bf16 at a third of fp32's speed, as measured on an AVX512 CPU without AVX512-BF16

    cache = tmp_path / "c.json"
    first = choose_cpu_dtype(cache, AVX512_ONLY, lambda: True, measure)
    second = choose_cpu_dtype(cache, AVX512_ONLY, lambda: True, measure)
    assert first.dtype == second.dtype == torch.float32
    assert "0.32x" in first.reason and "measured now" in first.reason
    assert "measured earlier" in second.reason
    assert calls == [1]  # measured once per machine
    assert list(json.loads(cache.read_text()).values()) == [0.32]


def test_emulated_bf16_that_measures_faster_chooses_bf16(tmp_path):
    choice = choose_cpu_dtype(tmp_path / "c.json", AVX512_ONLY, lambda: True, lambda: 1.4)
    assert choice.dtype == torch.bfloat16 and "1.40x" in choice.reason


def test_no_bf16_at_all_is_fp32_without_measuring(tmp_path):
    choice = choose_cpu_dtype(tmp_path / "c.json", frozenset({"sse2"}), lambda: False,
                              lambda: pytest.fail("nothing to measure"))
    assert choice.dtype == torch.float32 and "no bf16" in choice.reason


def test_corrupt_cache_is_measured_again(tmp_path):
    cache = tmp_path / "c.json"
    cache.write_text("{not json")
    choice = choose_cpu_dtype(cache, AVX512_ONLY, lambda: True, lambda: 0.5)
    assert choice.dtype == torch.float32
    assert list(json.loads(cache.read_text()).values()) == [0.5]


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx512f avx512_bf16\n")
    flags = cpu_flags(info)
    assert flags == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_bf16_native(flags) and not cpu_bf16_native(AVX512_ONLY)
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_explicit_dtypes_pass_through():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu).dtype == torch.float32
    assert resolve_precision("bf16", cpu).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_precision("fp8", cpu)


def _bf16(lm):
    """The tiny fp32 model computing under bf16 autocast, its weights frozen as after an update."""
    import dataclasses

    lm = dataclasses.replace(lm, compute_dtype=torch.bfloat16)
    lm.model.requires_grad_(False)
    return lm


def _weight_casts(lm, run) -> int:
    """How many fp32 -> bf16 copies `run` makes (autocast's casts, among others)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")


def test_inference_casts_each_frozen_weight_once_and_answers_the_same(monkeypatch):
    from selfparam import lm as lm_module
    from selfparam.generation import generate
    from selfparam.testing import tiny_lm

    lm = _bf16(tiny_lm(seed=0))
    prompts = ["Q: where is the castle?\nA:", "Q: who?\nA:"]
    answer = lambda: generate(lm, prompts, max_new_tokens=12)  # noqa: E731
    cached = answer()
    cached_casts = _weight_casts(lm, answer)
    with monkeypatch.context() as m:  # autocast as it was: every frozen weight cast again at every call
        m.setattr(lm_module, "cached_casts", lambda model, enabled=True: contextlib.nullcontext())
        uncached = answer()
        uncached_casts = _weight_casts(lm, answer)
    assert cached == uncached  # the same numbers: only the repeated casts go
    # uncached, every linear layer's weight is cast again for each of the 11 tokens after the first
    linears = sum(isinstance(m, torch.nn.Linear) for m in lm.model.modules())
    assert uncached_casts - cached_casts >= 10 * linears, (cached_casts, uncached_casts, linears)
    assert not any(p.requires_grad for p in lm.model.parameters())  # frozen again afterwards


def test_inference_leaves_every_grad_flag_as_it_was_even_when_the_block_fails():
    from selfparam.lm import inference_mode
    from selfparam.testing import tiny_lm

    lm = _bf16(tiny_lm(seed=0))
    trainable = dict(lm.model.named_parameters())["model.norm.weight"]
    trainable.requires_grad_(True)
    before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
    with pytest.raises(RuntimeError, match="inside"):
        with inference_mode(lm):
            assert all(p.requires_grad for p in lm.model.parameters())  # marked, so autocast keeps the casts
            with inference_mode(lm):  # re-entrant: the inner block finds nothing frozen
                pass
            assert all(p.requires_grad for p in lm.model.parameters())
            raise RuntimeError("inside")
    assert {n: p.requires_grad for n, p in lm.model.named_parameters()} == before
    fp32 = tiny_lm(seed=0)  # no autocast (fp32 compute): nothing to cache, nothing marked
    fp32.model.requires_grad_(False)
    with inference_mode(fp32):
        assert not any(p.requires_grad for p in fp32.model.parameters())


def test_training_keeps_frozen_linears_cast_once_with_the_same_update(monkeypatch):
    """Under bf16 autocast an update trains with the frozen Linear weights cast to bf16 once for the update
    (`frozen_linears_in`) and gives the same merged weights as autocast casting them at every step; the fp32
    tensors are back afterwards, also when training fails."""
    import copy

    from selfparam.lm import frozen_linears_in
    from selfparam.testing import tiny_lm
    from selfparam.training import AdapterConfig, TrainConfig
    from selfparam.training import trainer as trainer_module
    from selfparam.training.examples import Example
    from selfparam.training.trainer import encode_share, train_and_merge

    base = _bf16(tiny_lm(seed=0))
    examples = [Example(student_prefix="Q: ", text=t) for t in ("Quenby hosts a festival.", "Rivers flow.")]

    def update(lm):
        encoded = encode_share(lm, examples)
        casts = _weight_casts(lm, lambda: train_and_merge(lm, encoded, None, AdapterConfig(r=2), TrainConfig(
            epochs=2, batch_size=2, lr=1e-2), progress=False))
        return {n: p.detach().clone() for n, p in lm.model.named_parameters()}, casts

    once, once_casts = update(copy.deepcopy(base))
    with monkeypatch.context() as m:      # autocast casting every frozen weight at every step, as before
        m.setattr(trainer_module, "frozen_linears_in", lambda *a, **k: contextlib.nullcontext())
        every, every_casts = update(copy.deepcopy(base))
    assert once.keys() == every.keys() and all(torch.equal(once[n], every[n]) for n in once)
    assert all(p.dtype == torch.float32 for p in once.values())
    linears = sum(isinstance(m, torch.nn.Linear) for m in base.model.modules()) - 1   # less the output layer
    assert every_casts - once_casts >= linears, (once_casts, every_casts, linears)   # 2 steps: 1 cast, not 2
    model = base.model
    weights = {n: (p.data_ptr(), p.dtype) for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="inside"), frozen_linears_in(model, torch.bfloat16):
        assert model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
        assert model.lm_head.weight.dtype == model.model.embed_tokens.weight.dtype == torch.float32
        raise RuntimeError("inside")
    assert {n: (p.data_ptr(), p.dtype) for n, p in model.named_parameters()} == weights   # the fp32 tensors back
