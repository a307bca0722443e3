"""One weight update: encode the examples, run the teacher once, train the adapter, merge it.

Written on `accelerate`, so the same code runs in one process or data-parallel under
`accelerate launch --num_processes N` (each process takes every N-th example, computes the teacher for
its own share only, and gradients are averaged across processes by DDP). Mixed precision is the LM's
own autocast (bf16 where it pays), with fp32 master weights: trainable parameters in another dtype are
refused, and the weight-update methods train a private fp32 copy of the model (`methods/weight_update.py`).

The steps of one update are separate functions so a method reads as its recipe:
`encode_share` -> `teacher_pass` (distillation only) -> `train_and_merge`; `run_update` chains them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from accelerate import Accelerator, PartialState
from tqdm.auto import tqdm

from ..lm import LM, frozen_linears_in
from .adapters import AdapterConfig, UpdateRecord, _is_mlp_param, attach, finalize
from .batching import scored_slots, scored_targets, unflatten_slots
from .examples import Encoded, Example, encode
from .losses import CompactTeacher, hidden_l1, kl_compact, masked_mean, next_token_nll
from .teacher import stack_hidden, stack_right_aligned, teacher_pass


@dataclass
class TrainConfig:
    """Optimisation settings of one update."""

    lr: float = field(default=2e-3, metadata={"help": "AdamW learning rate (paper: 2e-5 on 3-8B models)"})
    epochs: int = field(default=3, metadata={"help": "passes over the target set"})
    batch_size: int = field(default=4, metadata={"help": "sequences per step and process"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps with linear warm-up"})
    weight_decay: float = 0.0
    top_k: int = field(default=64, metadata={"help": "teacher log-probabilities kept per token"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.epochs < 1:
            raise ValueError(f"epochs: must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        if self.top_k < 1:
            raise ValueError(f"top_k: must be >= 1, got {self.top_k}")


@dataclass
class UpdateStats:
    """What one update cost and how its loss went."""

    examples: int
    steps: int
    train_tokens: int
    seconds_teacher: float
    seconds_train: float
    first_loss: float
    last_loss: float
    loss_by_group: dict[str, float] = field(default_factory=dict)
    """With `groups` given to `train_and_merge`: each group's mean loss per scored token over the last epoch
    (where the training left each kind of example: the pairs, the unrelated sentences, the context read...);
    under data parallelism, of this process's share."""

    @property
    def train_tokens_per_s(self) -> float:
        return self.train_tokens / self.seconds_train if self.seconds_train > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "train_tokens_per_s": self.train_tokens_per_s}


def shard(items: Sequence, rank: int, world: int) -> list:
    """Every `world`-th item from `rank`, padded by wrapping so every process gets as many (DDP needs
    the same number of steps everywhere)."""
    per_rank = math.ceil(len(items) / world)
    padded = list(items) + list(items)[: per_rank * world - len(items)]
    return padded[rank::world]


def step_plan(n: int, batch_size: int, epochs: int, generator: torch.Generator,
              riders: Sequence[bool] | None = None, riders_per_step: int = 0) -> list[list[list[int]]]:
    """The examples of every step of every epoch, as indices: each epoch a seeded permutation of the examples
    cut into batches of `batch_size`. With `riders_per_step` > 0, the examples flagged in `riders` leave that
    permutation and ride along instead: every step adds the next `riders_per_step` of them, taken in turn from a
    seeded order of the riders (a fresh order each time they are used up, carried across epochs), so each step
    holds some of them however few there are; the number of steps is set by the other examples."""
    if riders is not None and len(riders) != n:
        raise ValueError(f"riders: one flag per example, got {len(riders)} for {n} examples")
    ride = [i for i in range(n) if riders is not None and riders[i]] if riders_per_step > 0 else []
    if ride and len(ride) == n:
        raise ValueError("every example rides along (riders_per_step): at least one must make up the batches")
    plan: list[list[list[int]]] = []
    queue: list[int] = []
    for _ in range(epochs):
        order = [i for i in torch.randperm(n, generator=generator).tolist() if not ride or not riders[i]]
        steps = []
        for start in range(0, len(order), batch_size):
            step = order[start:start + batch_size]
            for _ in range(min(riders_per_step, len(ride)) if ride else 0):
                if not queue:
                    queue = [ride[j] for j in torch.randperm(len(ride), generator=generator).tolist()]
                step.append(queue.pop(0))
            steps.append(step)
        plan.append(steps)
    return plan


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


def batch_loss(model: torch.nn.Module, lm: LM, batch: Sequence[Encoded],
               teachers: Sequence[CompactTeacher] | None, hidden: Sequence[torch.Tensor | None] | None = None,
               hidden_weight: float = 0.0, nll_weight: float = 0.0,
               hard: Sequence[bool] | None = None) -> torch.Tensor:
    """Mean per-token loss of a batch: the compact KL to the teacher, or the next-token NLL
    (`token_losses`, averaged over the scored tokens)."""
    return masked_mean(*token_losses(model, lm, batch, teachers, hidden, hidden_weight, nll_weight, hard))


def token_losses(model: torch.nn.Module, lm: LM, batch: Sequence[Encoded],
                 teachers: Sequence[CompactTeacher] | None, hidden: Sequence[torch.Tensor | None] | None = None,
                 hidden_weight: float = 0.0, nll_weight: float = 0.0,
                 hard: Sequence[bool] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of every scored token of a batch, (B, N), with the (B, N) mask of the real ones:
    the compact KL to the teacher, or the next-token NLL without teachers.

    With `nll_weight` > 0 and teachers, each scored token also adds `nll_weight` times the next-token NLL of its
    own token (the hard label beside the teacher's distribution): of every example, or with `hard` of those
    examples whose flag is true (the others keep the KL alone).

    With `hidden_weight` > 0 and `hidden` (the teacher's hidden states of each example, `teacher_hidden`;
    None for an example that has none, e.g. a replayed pair), each token of an example that has them adds
    `hidden_weight` times `hidden_l1` of the student's hidden states to the teacher's there; the others keep
    the KL alone."""
    sequences = [e.student_ids for e in batch]
    n_scored = [e.n_scored for e in batch]
    use_hidden = teachers is not None and hidden_weight > 0 and hidden is not None \
        and any(h is not None for h in hidden)
    # the loss of the real scored slots alone, (M,), then placed into (B, N): no full-vocabulary empty slots
    student_logp, mask, student_hidden = scored_slots(model, lm, sequences, n_scored, hidden=use_hidden)  # (M, V)
    if teachers is None:
        gold = scored_targets(sequences, n_scored).to(lm.device)[mask]
        return unflatten_slots(next_token_nll(student_logp, gold), mask), mask
    t_logp, t_ids, t_rest = (x.to(lm.device)[mask] for x in stack_right_aligned(teachers))
    per_token = kl_compact(t_logp, t_ids, t_rest, student_logp)                      # (M,)
    if nll_weight > 0 and (hard is None or any(hard)):
        gold = scored_targets(sequences, n_scored).to(lm.device)[mask]
        nll = next_token_nll(student_logp, gold)
        if hard is not None:
            rows = torch.tensor(list(hard), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
            nll = torch.where(rows, nll, 0.0)
        per_token = per_token + nll_weight * nll
    per_token = unflatten_slots(per_token, mask)                                     # (B, N)
    if use_hidden:
        t_hidden, has = stack_hidden(hidden, like=student_hidden)                    # (L, B, N, D), (B,)
        term = hidden_l1(t_hidden, student_hidden)                                   # (B, N)
        per_token = per_token + hidden_weight * torch.where(mask & has.unsqueeze(1), term, 0.0)
    return per_token, mask


def process_share(items: Sequence) -> list:
    """This process's share of an update's per-example items (all of them in one process): the share
    `encode_share` keeps, so per-example flags and labels line up with the encoded examples."""
    state = PartialState()
    return shard(items, state.process_index, state.num_processes)


def encode_share(lm: LM, examples: Sequence[Example]) -> list[Encoded]:
    """Tokenize an update's examples and keep this process's share (all of them in one process)."""
    if not examples:
        raise ValueError("an update needs at least one training example")
    distill = examples[0].teacher_prefix is not None
    if any((e.teacher_prefix is not None) != distill for e in examples):
        raise ValueError("an update's examples must all have a teacher prefix or none")
    return process_share([encode(lm.tokenizer, e, lm.max_length) for e in examples])


def train_and_merge(lm: LM, encoded: Sequence[Encoded], teachers: Sequence[CompactTeacher] | None,
                    adapter: AdapterConfig, train: TrainConfig, progress: bool = True,
                    n_examples: int | None = None, seconds_teacher: float = 0.0,
                    hidden: Sequence[torch.Tensor | None] | None = None,
                    hidden_weight: float = 0.0, nll_weight: float = 0.0,
                    hard: Sequence[bool] | None = None,
                    groups: Sequence[str] | None = None,
                    weights: Sequence[float] | None = None,
                    riders: Sequence[bool] | None = None,
                    riders_per_step: int = 0) -> tuple[UpdateRecord, UpdateStats]:
    """Train one update on `encoded` (KL to `teachers`, or next-token NLL without) and merge it into
    `lm.model` (replaced in place on the LM); returns the update's record and its stats. With
    `hidden_weight` > 0, `hidden[i]` (the teacher's hidden states of example i, or None) adds the hidden-state
    term to its KL; with `nll_weight` > 0 every scored token adds its hard-label NLL (`batch_loss`), or with
    `hard` only those of example i where `hard[i]`. With `groups` (a label per example, e.g. its kind), the
    stats say each group's mean loss per scored token over the last epoch (`UpdateStats.loss_by_group`). With
    `weights`, each token of example i counts `weights[i]` times in its batch's mean loss. With `riders` and
    `riders_per_step` > 0, the flagged examples ride along in every step instead of taking their own place in
    the batches (`step_plan`).

    `train.seed` alone decides the adapter's initialisation, the order of the examples and the dropout
    masks; the caller's random streams are left as they were (`fork_rng`). An interrupted update leaves
    the model as it found it: an unfinished LoRA is removed, MLP weights are restored.
    """
    if hard is not None and len(hard) != len(encoded):
        raise ValueError(f"hard: one flag per example, got {len(hard)} for {len(encoded)} examples")
    if groups is not None and len(groups) != len(encoded):
        raise ValueError(f"groups: one label per example, got {len(groups)} for {len(encoded)} examples")
    if weights is not None and (len(weights) != len(encoded) or not all(w > 0 for w in weights)):
        raise ValueError(f"weights: one weight > 0 per example, got {len(weights)} for {len(encoded)} examples")
    if riders_per_step and riders is not None and any(riders) and PartialState().num_processes > 1:
        raise ValueError("riders_per_step (SELF-PARAM's anchor_per_step) runs in one process only: each process's "
                         "share of riders and others differs, and so would its number of steps")
    accelerator = Accelerator(cpu=lm.device.type == "cpu")
    show = progress and accelerator.is_local_main_process
    with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
        torch.manual_seed(train.seed)
        snapshot = mlp_snapshot(lm.model) if adapter.kind == "mlp" else None
        model = attach(lm.model, adapter)
        params = [p for p in model.parameters() if p.requires_grad]
        low = sorted({str(p.dtype) for p in params if p.dtype != torch.float32})
        if low:
            _discard(model, adapter, snapshot)
            raise ValueError(f"trainable parameters in {', '.join(low)}: AdamW needs fp32 master weights "
                             f"(own the model in fp32 and let autocast compute in bf16)")
        model.train()
        optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
        generator = torch.Generator().manual_seed(train.seed)
        plan = step_plan(len(encoded), train.batch_size, train.epochs, generator, riders, riders_per_step)
        total = sum(len(steps) for steps in plan)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                      _lr_lambda(total, max(1, int(train.warmup_ratio * total))))
        model, optimizer = accelerator.prepare(model, optimizer)
        losses: list[float] = []
        tokens = 0
        group_sums: dict[str, list[float]] = {}  # group -> [loss summed over its scored tokens, tokens]
        t0 = time.perf_counter()
        try:
            with tqdm(total=total, desc="train", unit="step", disable=not show, leave=False) as bar, \
                    frozen_linears_in(lm.model, lm.compute_dtype, lm.autocasts):
                for epoch, steps in enumerate(plan):
                    for idx in steps:
                        per_token, mask = token_losses(
                            model, lm, [encoded[i] for i in idx],
                            [teachers[i] for i in idx] if teachers is not None else None,
                            [hidden[i] for i in idx] if hidden is not None else None, hidden_weight,
                            nll_weight, [hard[i] for i in idx] if hard is not None else None)
                        loss = masked_mean(per_token, mask, torch.tensor([weights[i] for i in idx])
                                           if weights is not None else None)
                        if groups is not None and epoch == train.epochs - 1:
                            _add_to_groups(group_sums, [groups[i] for i in idx], per_token.detach(), mask)
                        accelerator.backward(loss)
                        accelerator.clip_grad_norm_(params, train.max_grad_norm)
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        losses.append(loss.item())
                        tokens += sum(encoded[i].n_scored for i in idx)
                        bar.set_postfix(loss=f"{losses[-1]:.4f}")
                        bar.update(1)
        except BaseException:
            _discard(accelerator.unwrap_model(model), adapter, snapshot)
            raise
    seconds_train = time.perf_counter() - t0
    model = accelerator.unwrap_model(model)
    model.eval()
    merged, record = finalize(model, adapter)
    lm.model = merged
    stats = UpdateStats(examples=n_examples if n_examples is not None else len(encoded), steps=total,
                        train_tokens=tokens, seconds_teacher=seconds_teacher, seconds_train=seconds_train,
                        first_loss=losses[0], last_loss=losses[-1],
                        loss_by_group={g: total / n for g, (total, n) in sorted(group_sums.items()) if n})
    return record, stats


def _add_to_groups(sums: dict[str, list[float]], labels: Sequence[str], per_token: torch.Tensor,
                   mask: torch.Tensor) -> None:
    """Add each row's summed loss and scored-token count to its label's running totals (in place)."""
    row_loss = (per_token * mask).sum(1).tolist()
    row_tokens = mask.sum(1).tolist()
    for label, total, n in zip(labels, row_loss, row_tokens):
        entry = sums.setdefault(label, [0.0, 0])
        entry[0] += total
        entry[1] += int(n)


def run_update(lm: LM, examples: Sequence[Example], adapter: AdapterConfig, train: TrainConfig,
               progress: bool = True) -> tuple[UpdateRecord, UpdateStats]:
    """Encode, run the teacher once (when the examples carry a teacher prefix), train, merge.

    The teacher is `lm.model` as it is when called (for sequential injection: the model after the
    previous update).
    """
    encoded = encode_share(lm, examples)
    t0 = time.perf_counter()
    teachers = teacher_pass(lm, encoded, train.top_k, batch_size=train.batch_size, progress=progress) \
        if examples[0].teacher_prefix is not None else None
    return train_and_merge(lm, encoded, teachers, adapter, train, progress=progress, n_examples=len(examples),
                           seconds_teacher=time.perf_counter() - t0)


def mlp_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the MLP weights an MLP-only update is about to change in place."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if _is_mlp_param(n)}


def _discard(model: torch.nn.Module, adapter: AdapterConfig, snapshot: dict[str, torch.Tensor] | None) -> None:
    """Undo an unfinished update: remove the LoRA, or put the MLP weights back as they were."""
    if adapter.kind == "lora" and hasattr(model, "unload"):
        model.unload()
    if snapshot is not None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in snapshot.items():
                params[name].copy_(value)
        model.requires_grad_(False)
