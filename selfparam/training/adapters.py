"""What an update trains (LoRA through peft, or the MLP weights in place) and how it is kept.

Every update ends merged into the model, so the updated model has the base architecture and parameter
count (zero extra storage at inference). Before merging, the update is captured as an `UpdateRecord`:
for LoRA a genuine PEFT adapter (config + state dict, saved as a PEFT adapter folder), for MLP training
the new values of the MLP weights. Replaying the records in order onto the base model rebuilds it.
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from .rehearsal import RehearsalPair, read_pairs, save_pairs

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj", "gate_proj")


@dataclass
class AdapterConfig:
    """Which parameters an update trains. Paper: LoRA r=8, alpha=32, dropout=0.1 on q,k,v and the three MLP
    projections; the OpenLLaMA-3B setting trains the MLP layers instead (`kind="mlp"`). Our one difference is
    dropout 0 (docs/tuning.md): on the CPU its masks are drawn serially, about a quarter of a training step, and
    the tuning split measured the injected facts level without it. Every weight method shares this default."""

    kind: Literal["lora", "mlp"] = "lora"
    r: int = 8
    alpha: int = 32
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (paper: 0.1)"})
    target_modules: tuple[str, ...] = LORA_TARGETS
    top_layers: int = field(default=0, metadata={
        "help": "train only the top N decoder layers (LoRA or MLP weights there); 0 = every layer (paper). Below "
                "the lowest trained layer nothing needs a gradient, so the backward pass stops there"})

    def __post_init__(self) -> None:
        if self.kind not in ("lora", "mlp"):
            raise ValueError(f"adapter kind: {self.kind!r} is not one of 'lora', 'mlp'")
        if self.r < 1:
            raise ValueError(f"adapter r: must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"adapter dropout: must be in [0, 1), got {self.dropout}")
        if self.top_layers < 0:
            raise ValueError(f"adapter top_layers: must be >= 0 (0 = every layer), got {self.top_layers}")
        self.target_modules = tuple(self.target_modules)


@contextmanager
def _peft_wrapping():
    """peft (0.21) reads the model's `is_gradient_checkpointing`, which transformers 5.25 deprecated: a
    FutureWarning on every update that says nothing about ours. Silenced here only, while peft wraps."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def _is_mlp_param(name: str) -> bool:
    return ".mlp." in name


def trained_layers(model: torch.nn.Module, config: AdapterConfig) -> list[int] | None:
    """The decoder layers an update trains (`config.top_layers`), or None for all of them."""
    if not config.top_layers:
        return None
    n_layers = model.config.num_hidden_layers
    if config.top_layers > n_layers:
        raise ValueError(f"adapter top_layers: {config.top_layers} is more than the model's {n_layers} layers")
    return list(range(n_layers - config.top_layers, n_layers))


def attach(model: torch.nn.Module, config: AdapterConfig) -> torch.nn.Module:
    """Make the update's parameters trainable: wrap in a fresh LoRA, or unfreeze the MLP weights (of every layer,
    or of the top `config.top_layers`)."""
    layers = trained_layers(model, config)
    if config.kind == "lora":
        lora = LoraConfig(task_type="CAUSAL_LM", r=config.r, lora_alpha=config.alpha,
                          lora_dropout=config.dropout, target_modules=list(config.target_modules),
                          layers_to_transform=layers, layers_pattern="layers" if layers else None)
        with _peft_wrapping():
            return get_peft_model(model, lora)
    model.requires_grad_(False)
    for name, param in model.named_parameters():
        if _is_mlp_param(name) and (layers is None or any(f".layers.{i}." in name for i in layers)):
            param.requires_grad_(True)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("adapter kind 'mlp': this model has no parameters under a '.mlp.' module")
    return model


@dataclass
class UpdateRecord:
    """One merged update: enough to replay it onto the model it was trained on, plus its manifest.

    `rehearsal` holds the update's own pairs with the teacher distributions they were trained on, kept only
    when rehearsal is on (`training/rehearsal.py`); later updates replay them.
    """

    kind: str
    state: dict[str, torch.Tensor]
    peft_config: dict | None = None
    manifest: dict = field(default_factory=dict)
    rehearsal: list[RehearsalPair] | None = None

    def save(self, folder: Path) -> None:
        """Write a PEFT adapter folder (LoRA) or the new MLP weights, and `manifest.json`."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.kind == "lora":
            with open(folder / "adapter_config.json", "w") as f:
                json.dump(self.peft_config, f, indent=2)
            save_file(self.state, str(folder / "adapter_model.safetensors"))
        else:
            save_file(self.state, str(folder / "mlp_weights.safetensors"))
        if self.rehearsal is not None:
            save_pairs(self.rehearsal, folder)
        with open(folder / "manifest.json", "w") as f:
            json.dump(self.manifest, f, indent=2, default=str)

    @classmethod
    def read(cls, folder: Path) -> "UpdateRecord":
        manifest = json.loads((folder / "manifest.json").read_text())
        if (folder / "adapter_config.json").is_file():
            return cls("lora", load_file(str(folder / "adapter_model.safetensors")),
                       json.loads((folder / "adapter_config.json").read_text()), manifest, read_pairs(folder))
        if (folder / "mlp_weights.safetensors").is_file():
            return cls("mlp", load_file(str(folder / "mlp_weights.safetensors")), None, manifest, read_pairs(folder))
        raise ValueError(f"{folder} holds neither a PEFT adapter nor MLP weights")


def finalize(model: torch.nn.Module, config: AdapterConfig) -> tuple[torch.nn.Module, UpdateRecord]:
    """Capture the trained update and merge it: returns the plain model (base architecture) and the record."""
    if config.kind == "lora":
        assert isinstance(model, PeftModel)
        state = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}
        peft_config = model.peft_config["default"].to_dict()
        peft_config = json.loads(json.dumps(peft_config, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
        merged = model.merge_and_unload()
        merged.requires_grad_(False)
        return merged, UpdateRecord("lora", state, peft_config)
    state = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if _is_mlp_param(n)}
    model.requires_grad_(False)
    return model, UpdateRecord("mlp", state)


def replay(model: torch.nn.Module, record: UpdateRecord, folder: Path | None = None) -> torch.nn.Module:
    """Apply a saved update to `model` (which must be the model it was trained on) and merge it."""
    if record.kind == "lora":
        if folder is None:
            raise ValueError("replaying a LoRA update needs its adapter folder")
        with _peft_wrapping():
            peft_model = PeftModel.from_pretrained(model, str(folder))
        merged = peft_model.merge_and_unload()
        merged.requires_grad_(False)
        return merged
    missing = [n for n in record.state if n not in dict(model.named_parameters())]
    if missing:
        raise ValueError(f"MLP update does not fit this model: unknown parameters {missing[:3]}")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in record.state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    return model


def config_dict(config: AdapterConfig) -> dict:
    return asdict(config)
