"""What every method that writes knowledge into the weights holds: `WeightUpdates`.

SELF-PARAM, FT(C) and FT(S) each train updates their own way; what they share is the state around
them, kept here once: the private copy of the model that updates are merged into, the record of each
update (so `save` can write it and `load` can replay it), and reset/save/load themselves.

The copy is made at the first update, in fp32 (master weights: a merged delta of 1e-4 survives, which
bf16 weights would round away; the LM's autocast still computes in its compute dtype). The `LM` the
method was given stays the unchanged base model, which the harness shares with other methods.

Saved layout (another tool builds a store on it; keep it): `injection.json` (method, base model and its
weight fingerprint, resolved config, versions, git revision) and `updates/NNNN/` (a PEFT adapter folder
or MLP weights, `manifest.json`, and `teacher.safetensors` when the update kept its teachers for rehearsal).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from ..atomic import atomic_folder
from ..fingerprint import model_fingerprint
from ..lm import LM
from ..provenance import provenance
from ..redaction import redact
from ..targets import TargetConfig, make_target_builder
from ..targets.types import TargetSet
from ..training.adapters import AdapterConfig, UpdateRecord, replay, trained_layers
from ..training.trainer import UpdateStats
from .base import Context, Query, Resources
from .prompted import answer_in_context, answer_questions, logprob_questions, score_questions


class WeightUpdates:
    """The base model, the private model updates are merged into, and the record of every update."""

    def __init__(self, base_lm: LM, adapter: AdapterConfig | None = None):
        if adapter is not None:  # an adapter that does not fit the model fails here, before targets are built
            trained_layers(base_lm.model, adapter)
        self.base_lm = base_lm
        self.lm = base_lm
        self.records: list[UpdateRecord] = []
        self.last_stats: UpdateStats | None = None

    def begin(self, contexts: Sequence[Context]) -> LM:
        """Check the contexts of an update and return the model to train: the model as it is now,
        which is also the teacher of this update."""
        validate_contexts(contexts, self.lm)
        return self.own()

    def own(self) -> LM:
        """The private fp32 copy of the model, made on first use."""
        if self.lm is self.base_lm:
            model = copy.deepcopy(self.base_lm.model).to(torch.float32)
            self.lm = dataclasses.replace(self.base_lm, model=model)
        return self.lm

    @contextmanager
    def pulled_back(self, share: float) -> Iterator[float]:
        """Pull the merged model `share` of the way back to the base model's weights for the update made
        inside the block (W <- W + share * (W_base - W): every earlier update's change shrinks by that share;
        nothing happens before the first update or at 0). Undone, to fp32 rounding, if the block fails, so a
        failed update leaves the model as it was. Yields the share applied (0.0 when none), which the update's
        manifest records as `pulled_back` for `load` to do the same."""
        if not share or not self.records:
            yield 0.0
            return
        pull_towards(self.lm.model, self.base_lm.model, share)
        try:
            yield share
        except BaseException:
            pull_towards(self.lm.model, self.base_lm.model, share, undo=True)
            raise

    def add(self, record: UpdateRecord, stats: UpdateStats, method: str, contexts: Sequence[Context],
            config: dict[str, Any], **about: Any) -> None:
        """Keep a finished (merged) update with its manifest."""
        record.manifest = redact({
            "method": method,
            "step": len(self.records) + 1,
            "base_model": self.base_lm.name,
            "contexts": [{"id": c.id, "sha256": hashlib.sha256(c.text.encode()).hexdigest(), "chars": len(c.text)}
                         for c in contexts],
            "config": config,
            "stats": stats.to_dict(),
            **about,
            **provenance(),
        })
        self.records.append(record)
        self.last_stats = stats

    def reset(self) -> None:
        self.lm = self.base_lm
        self.records = []
        self.last_stats = None

    def save(self, path: Path, method: str, config: dict[str, Any]) -> None:
        """Write every update as `updates/NNNN/` (a PEFT adapter folder + manifest), atomically."""
        with atomic_folder(path) as tmp:
            for i, record in enumerate(self.records, start=1):
                record.save(tmp / "updates" / f"{i:04d}")
            index = {"method": method, "base_model": self.base_lm.name,
                     "base_fingerprint": model_fingerprint(self.base_lm.model), "updates": len(self.records),
                     "config": config, **provenance()}
            (tmp / "injection.json").write_text(json.dumps(redact(index), indent=2, default=str))

    def load(self, path: Path) -> None:
        """Replay the saved updates, in order, onto a fresh copy of the base model; an injection saved
        on another base model, or an update whose manifest records an impossible pull back, is refused
        before anything changes."""
        path = Path(path)
        folders = saved_updates(path)
        check_base_model(path, self.base_lm)
        records = [UpdateRecord.read(folder) for folder in folders]
        for folder, record in zip(folders, records):
            share = record.manifest.get("pulled_back", 0.0)
            if not isinstance(share, (int, float)) or not 0.0 <= share < 1.0:
                raise ValueError(f"{folder}: manifest.json records pulled_back={share!r}; it must be a share "
                                 f"in [0, 1)")
        self.reset()
        lm = self.own()
        for folder, record in zip(folders, records):
            if record.manifest.get("pulled_back"):  # the update was made on a model pulled back this far
                pull_towards(lm.model, self.base_lm.model, record.manifest["pulled_back"])
            lm.model = replay(lm.model, record, folder)
            self.records.append(record)


def pull_towards(model: torch.nn.Module, base: torch.nn.Module, share: float, undo: bool = False) -> None:
    """Move every parameter of `model` `share` of the way to `base`'s (same architecture), in place:
    p <- p + share * (p_base - p); `undo` inverts it (exact up to fp32 rounding)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"pull back: the share must be in (0, 1), got {share}")
    base_params = dict(base.named_parameters())
    with torch.no_grad():
        for name, param in model.named_parameters():
            target = base_params[name].to(param.device, param.dtype)
            if undo:
                param.sub_(target, alpha=share).div_(1.0 - share)
            else:
                param.lerp_(target, share)


def with_run_seed(config: Any, resources: Resources) -> Any:
    """A method config (with a `train` field) whose training seed is the run's, when the run sets one."""
    if resources.seed is None:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=resources.seed))


def target_source(resources: Resources, targets: TargetConfig, base_lm: LM,
                  progress: Callable[[], bool] = lambda: False) -> Callable[[str], TargetSet]:
    """context -> TargetSet: the run's shared (cached) builder when there is one, else one made from
    `targets` on first use, whose pairs the base model writes (as under the harness), with a progress bar
    of the pairs found when `progress()` says so then (a method's `progress` may be switched off after it
    is built, as the server does)."""
    if resources.target_builder is not None:
        return resources.target_builder
    made: list[Callable[[str], TargetSet]] = []

    def build(context: str) -> TargetSet:
        if not made:
            made.append(make_target_builder(targets, base_lm, progress=progress()))
        return made[0](context)

    return build


def check_base_model(path: Path, base_lm: LM) -> None:
    """Refuse to replay an injection onto a model other than the one it was trained on."""
    index = json.loads((path / "injection.json").read_text())
    saved = index.get("base_fingerprint")
    if saved is not None:
        if saved != model_fingerprint(base_lm.model):
            raise ValueError(f"{path} was injected into {index.get('base_model')!r} (weights {saved}), not into "
                             f"these weights ({base_lm.name!r}): load it onto the model it was saved from")
    elif index.get("base_model") != base_lm.name:
        raise ValueError(f"{path} was injected into {index.get('base_model')!r}, not {base_lm.name!r}: load it "
                         f"onto the model it was saved from")


def saved_updates(path: Path) -> list[Path]:
    """The update folders of a saved injection, in order; a clear error when it is not one."""
    if not (path / "injection.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved injection (no injection.json)")
    folders = sorted((path / "updates").glob("[0-9][0-9][0-9][0-9]")) if (path / "updates").is_dir() else []
    expected = json.loads((path / "injection.json").read_text()).get("updates")
    if expected != len(folders):
        raise ValueError(f"{path}: injection.json lists {expected} updates but {len(folders)} are present")
    return folders


# Room left in the window after the context for the answer prompt, a question and its answer.
PROMPT_MARGIN_TOKENS = 192


def validate_contexts(contexts: Sequence[Context], lm: LM) -> None:
    """Empty updates, empty contexts and contexts too long for the teacher's window are errors before
    any work (pair generation takes minutes) starts."""
    if not contexts:
        raise ValueError("inject: no contexts given")
    for c in contexts:
        if not c.text or not c.text.strip():
            raise ValueError(f"inject: context {c.id!r} is empty")
        n_tokens = len(lm.tokenizer(c.text, add_special_tokens=False)["input_ids"])
        if n_tokens + PROMPT_MARGIN_TOKENS > lm.max_length:
            raise ValueError(f"inject: context {c.id!r} has {n_tokens} tokens; with the prompt it must fit the "
                             f"model's window of {lm.max_length} tokens (at most {lm.max_length - PROMPT_MARGIN_TOKENS}"
                             f" for the context): split it into several contexts")


class WeightMethod:
    """The protocol's persistence and answering half, delegated to the method's `WeightUpdates` (SELF-PARAM
    and the FT baselines hold one each); a method defines `inject` and, where it records more, `config_dict`."""

    name: str
    weights: WeightUpdates
    config: Any

    @property
    def lm(self) -> LM:
        return self.weights.lm

    @property
    def records(self):
        return self.weights.records

    @property
    def last_stats(self):
        return self.weights.last_stats

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def answer(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        return answer_questions(self.lm, queries, max_new_tokens)

    def answer_in_context(self, queries: Sequence[Query], max_new_tokens: int = 32) -> list[str]:
        """The current model with each query's context in the prompt (`ReadsContext`; SELF-PARAM overrides it
        with the teacher of its next update)."""
        return answer_in_context(self.lm, queries, max_new_tokens)

    def score(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return score_questions(self.lm, queries, targets)

    def logprob(self, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
        return logprob_questions(self.lm, queries, targets)

    def reset(self) -> None:
        self.weights.reset()

    def save(self, path: Path) -> None:
        self.weights.save(path, self.name, self.config_dict())

    def load(self, path: Path) -> None:
        self.weights.load(path)

    def storage_bytes(self) -> int:
        return 0  # merged into the weights
