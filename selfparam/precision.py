"""Which dtype the matmuls run in on a CPU: bf16 only where it is really faster than fp32.

oneDNN reports bf16 as supported on any AVX512 CPU (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`),
but without the AVX512-BF16 or AMX instructions it emulates bf16, and a LoRA step of the 135M model
then ran 3.1x *slower* than in fp32 (7.7 s against 2.5 s on a 2-core AVX512 machine). With native bf16
the same step ran about 2.5x faster. So `auto` chooses:

1. bf16 when the CPU flags name native bf16 (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo);
2. otherwise, where oneDNN offers bf16 at all, a short one-off measurement of a model-sized matmul
   (forward and backward, bf16 autocast against fp32), cached per machine, decides;
3. fp32 everywhere else.

The choice comes with a one-line reason that `load_lm` prints, so a slow run is never a mystery.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .atomic import atomic_write_text

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CACHE_FORMAT = 1


@dataclass(frozen=True)
class PrecisionChoice:
    """The compute dtype picked for a device and why."""

    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags (Linux `/proc/cpuinfo`'s `flags` line); empty where the file is absent."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_bf16_native(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU executes bf16 matmuls natively (AVX512-BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def onednn_offers_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU at all (natively or emulated)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def measure_bf16_speedup(rows: int = 512, dim: int = 576, hidden: int = 1536, repeats: int = 3) -> float:
    """fp32 seconds / bf16-autocast seconds for a forward and backward pass of one MLP-sized matmul.

    The default shape is the embedded model's MLP (576 -> 1536) on 512 tokens: a few hundred
    milliseconds in all. Above 1 means bf16 is faster.
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, dim, generator=generator)
    w = torch.randn(hidden, dim, generator=generator, requires_grad=True)

    def step(autocast: bool) -> float:
        best = float("inf")
        for _ in range(repeats + 1):  # the first call pays one-off kernel set-up: not counted
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                y = torch.nn.functional.linear(x, w)
            y.float().square().mean().backward()
            w.grad = None
            best = min(best, time.perf_counter() - start)
        return best

    step(False)
    return step(False) / step(True)


def _machine_key(flags: frozenset[str]) -> str:
    """The same CPU, flags and torch build give the same key: a measurement is valid for them only."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        model = platform.processor()
    raw = json.dumps([model, sorted(flags), torch.__version__, torch.get_num_threads(), CACHE_FORMAT])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def cached_bf16_speedup(cache_file: Path, flags: frozenset[str],
                        measure: Callable[[], float] = measure_bf16_speedup) -> tuple[float, bool]:
    """The measured speed-up for this machine and whether it came from the cache (a corrupt cache is
    measured again and rewritten atomically)."""
    key = _machine_key(flags)
    try:
        cached = json.loads(cache_file.read_text())
        if isinstance(cached, dict) and isinstance(cached.get(key), (int, float)):
            return float(cached[key]), True
    except (OSError, ValueError):
        cached = {}
    speedup = float(measure())
    entries = cached if isinstance(cached, dict) else {}
    entries[key] = round(speedup, 3)
    try:
        atomic_write_text(cache_file, json.dumps(entries, indent=1))
    except OSError:
        pass  # an unwritable cache only means measuring again next time
    return speedup, False


def choose_cpu_dtype(cache_file: Path, flags: frozenset[str] | None = None,
                     offers_bf16: Callable[[], bool] = onednn_offers_bf16,
                     measure: Callable[[], float] = measure_bf16_speedup) -> PrecisionChoice:
    """The faster of bf16 and fp32 on this CPU (see the module docstring for the rule)."""
    flags = cpu_flags() if flags is None else flags
    native = sorted(f for f in NATIVE_BF16_FLAGS if f in flags)
    if native:
        return PrecisionChoice(torch.bfloat16, f"the CPU has native bf16 ({', '.join(native)})")
    if not offers_bf16():
        return PrecisionChoice(torch.float32, "the CPU has no bf16 support")
    speedup, from_cache = cached_bf16_speedup(cache_file, flags, measure)
    how = "measured earlier on this machine" if from_cache else "measured now"
    if speedup > 1.0:
        return PrecisionChoice(torch.bfloat16, f"no native bf16 flag, but emulated bf16 ran {speedup:.2f}x the "
                                               f"speed of fp32 ({how})")
    return PrecisionChoice(torch.float32, f"the CPU emulates bf16 (no {' or '.join(NATIVE_BF16_FLAGS)}): it ran "
                                          f"{speedup:.2f}x the speed of fp32 ({how})")
