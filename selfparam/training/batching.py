"""Training batches whose scored spans are the last tokens of each sequence, packed without padding.

Each sequence's scored tokens are its last `n_scored` ones, so only the positions that predict them need
logits: the output layer (28M of the 135M model's parameters) runs on those positions alone, in fp32.

Sequences are *packed* when the model keeps packed sequences apart: several sequences share one row of the
batch, each with position ids counting from 0 (`pack_rows`), and the attention mask is left to the model,
which reads the restarts of the position ids as sequence boundaries (transformers' packed-sequence
format). A left-padded batch computes every row to the longest sequence's length: on SELF-PARAM's mix of
questions with answers and short unrelated sentences that was 30% padding. A row holds at most the
longest sequence or `PACK_WIDTH` tokens, whichever is more, so attention (computed across a row, masked
between its sequences) stays cheap; and a batch is packed only where that computes fewer tokens than
padding it would. Whether a model keeps packed sequences apart is checked once per model, on a two-sequence probe
(`packs_sequences`); a model that does not is given left-padded batches, as before.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from ..lm import LM
from ..padding import pad_tokens
from .losses import log_softmax_fp32

PACK_WIDTH = 256
"""Tokens per packed row at least: wide enough that short sequences share rows, narrow enough that
attention across a row (quadratic in its width, masked between sequences) stays cheap next to the layers."""


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids (B, T) for left-padded `sequences`."""
    return pad_tokens(sequences, pad_id, side="left")


def pack_rows(sequences: Sequence[Sequence[int]], pad_id: int,
              capacity: int | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """`sequences` packed into rows of at most `capacity` tokens, first fit by decreasing length, as wide as the
    fullest row (default: rows of up to the longest sequence or `PACK_WIDTH`, whichever is more, or of up to the
    longest sequence, whichever computes fewer slots, rows x width; a tie goes to the narrower rows, whose
    attention costs less; over one default injection this cut the slots 6% and attention's width-squared 17%):
    input_ids and position_ids (R, W), each sequence's positions counting from 0 and a row's unused tail a
    padding sequence of its own; and the flat index (row * W + column) just past each sequence's end, in
    the order given.

        >>> batch, ends = pack_rows([[5, 6, 7], [8], [9, 9]], pad_id=0, capacity=4)
        >>> batch["input_ids"].tolist(), batch["position_ids"].tolist(), ends.tolist()
        ([[5, 6, 7, 8], [9, 9, 0, 0]], [[0, 1, 2, 0], [0, 1, 0, 1]], [3, 4, 6])
    """
    if not sequences:
        raise ValueError("pack_rows needs at least one sequence")
    longest = max(len(s) for s in sequences)
    if capacity is None:
        wide, narrow = (pack_rows(sequences, pad_id, c) for c in (max(longest, PACK_WIDTH), longest))
        return narrow if narrow[0]["input_ids"].numel() <= wide[0]["input_ids"].numel() else wide
    if capacity < longest:
        raise ValueError(f"capacity: {capacity} is less than the longest sequence ({longest} tokens)")
    rows: list[list[int]] = []                     # the sequence indices in each row
    fill: list[int] = []
    for i in sorted(range(len(sequences)), key=lambda i: -len(sequences[i])):
        row = next((r for r, used in enumerate(fill) if used + len(sequences[i]) <= capacity), len(rows))
        if row == len(rows):
            rows.append([])
            fill.append(0)
        rows[row].append(i)
        fill[row] += len(sequences[i])
    width = max(fill)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    ends = torch.zeros(len(sequences), dtype=torch.long)
    for r, members in enumerate(rows):
        at = 0
        for i in members:
            n = len(sequences[i])
            input_ids[r, at:at + n] = torch.tensor(list(sequences[i]), dtype=torch.long)
            position_ids[r, at:at + n] = torch.arange(n)
            at += n
            ends[i] = r * width + at
        position_ids[r, at:] = torch.arange(width - at)
    return {"input_ids": input_ids, "position_ids": position_ids}, ends


def span_mask(n_scored: Sequence[int]) -> torch.Tensor:
    """(B, N) mask of the scored positions, right-aligned, N = max(n_scored)."""
    n = torch.tensor(list(n_scored))
    width = int(n.max())
    return torch.arange(width).unsqueeze(0) >= (width - n).unsqueeze(1)


@contextlib.contextmanager
def fp32_output_layer(model: torch.nn.Module, positions: torch.Tensor | None = None) -> Iterator[None]:
    """Run the model's output layer in fp32 (autocast off) while inside: bf16 logits round the small
    differences a KL or a log-likelihood is made of. With `positions`, it reads only the hidden states at
    those flat indices (row * length + column) and returns their logits, (len(positions), V)."""
    head = getattr(model, "module", model).get_output_embeddings()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        if positions is not None:
            hidden = hidden.reshape(-1, hidden.shape[-1])[positions.to(hidden.device)]
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            bias = None if head.bias is None else head.bias.float()
            return F.linear(hidden.float(), head.weight.float(), bias)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward


def scored_logprobs(model: torch.nn.Module, lm: LM, sequences: Sequence[Sequence[int]],
                    n_scored: Sequence[int], pack: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 log-probabilities (B, N, V) at the positions predicting each row's last `n_scored` tokens,
    right-aligned, with the (B, N) mask of the real ones. The body runs under the LM's autocast, the
    output layer in fp32. `pack` (default: whether `lm.model` keeps packed sequences apart,
    `packs_sequences`) packs the sequences into shared rows where that computes fewer tokens than left
    padding; else they are left-padded. Both give the same log-probabilities where the mask is true (packed:
    the output layer runs on those slots alone, the others hold the uniform distribution; `spread_rows`)."""
    logp, mask, _ = scored_outputs(model, lm, sequences, n_scored, pack)
    return logp, mask


def scored_outputs(model: torch.nn.Module, lm: LM, sequences: Sequence[Sequence[int]], n_scored: Sequence[int],
                   pack: bool | None = None,
                   hidden: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`scored_logprobs`, and with `hidden` the hidden states at the same positions: every layer's output
    (the model's `hidden_states[1:]`; in transformers the last is after the final norm), (L, B, N, D) in the
    dtype the body computes them in, packed or padded alike; arbitrary where the mask is false. Without
    `hidden`, None and the model is run exactly as `scored_logprobs` runs it. The (B, N, V) log-probabilities
    are `scored_slots`' spread into every slot: for a loss, use `scored_slots` and leave the empty slots out."""
    logp, mask, states = scored_slots(model, lm, sequences, n_scored, pack, hidden)
    return spread_rows(logp, mask.flatten()).reshape(*mask.shape, -1), mask, states


def scored_slots(model: torch.nn.Module, lm: LM, sequences: Sequence[Sequence[int]], n_scored: Sequence[int],
                 pack: bool | None = None,
                 hidden: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The fp32 log-probabilities of the real scored slots alone, (M, V) in the row-major order of the
    (B, N) mask (`logp[j]` is the j-th true slot of `mask`), the mask, and with `hidden` the states of
    `scored_outputs`. What a loss needs: spreading M rows into B x N full-vocabulary slots (`spread_rows`)
    filled and copied about 230 MB per training step of the embedded model (4 sequences, 170 scored tokens in
    100-token-wide rows), a third of the step on a 2-core Xeon (`docs/benchmarks.md`)."""
    mask = span_mask(n_scored)
    width = mask.shape[1]
    extra = {"output_hidden_states": True} if hidden else {}
    if pack is None:
        pack = packs_sequences(lm)
    if pack:
        batch, ends = pack_rows(sequences, lm.tokenizer.pad_token_id)
        pack = batch["input_ids"].numel() < len(sequences) * max(len(s) for s in sequences)
    if not pack:
        batch = {k: v.to(lm.device) for k, v in left_pad(sequences, lm.tokenizer.pad_token_id).items()}
        with lm.autocast(), fp32_output_layer(model):
            out = model(**batch, logits_to_keep=width + 1, use_cache=False, **extra)
        states = torch.stack([h[:, -width - 1:-1] for h in out.hidden_states[1:]]) if hidden else None
        mask = mask.to(lm.device)
        return log_softmax_fp32(out.logits[:, :-1][mask]), mask, states     # (M, V), (B, N), (L, B, N, D)
    # slot j of sequence i predicts its token at end - width + j from the position before it
    at = ends.unsqueeze(1) - width - 1 + torch.arange(width).unsqueeze(0)            # (B, N)
    starts = (ends - torch.tensor([len(s) for s in sequences])).unsqueeze(1)
    at = torch.where(mask, at, starts)            # slots left of a shorter span: any position of its own
    real = mask.flatten()
    with lm.autocast(), fp32_output_layer(model, at.flatten()[real]):
        out = model(**{k: v.to(lm.device) for k, v in batch.items()}, attention_mask=None,
                    logits_to_keep=0, use_cache=False, **extra)                          # logits (M, V)
    states = None
    if hidden:
        flat = at.flatten().to(lm.device)
        states = torch.stack([h.reshape(-1, h.shape[-1])[flat].reshape(len(sequences), width, -1)
                              for h in out.hidden_states[1:]])                           # (L, B, N, D)
    return log_softmax_fp32(out.logits), mask.to(lm.device), states


def unflatten_slots(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-slot values of the real slots, (M,) in the row-major order of the (B, N) `mask`, placed into
    (B, N) with 0 in the empty slots (differentiable in `values`).

        >>> unflatten_slots(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([[False, True], [True, True]])).tolist()
        [[0.0, 1.0], [2.0, 3.0]]
    """
    return values.new_zeros(mask.shape).masked_scatter(mask, values)


def spread_rows(logp: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The log-probabilities of the real slots only, (M, V), spread into all slots, (S, V), in the order of the
    (S,) flags `real` (M of them true); every other slot gets the uniform distribution (finite, so masked
    losses stay finite). The output layer and the log-softmax thus run on the real slots alone: right-aligned
    spans of unequal length leave many slots empty (40% of the output rows of SELF-PARAM's mix)."""
    vocab = logp.shape[-1]
    full = logp.new_full((real.shape[0], vocab), -math.log(vocab))
    return full.index_copy(0, real.nonzero().squeeze(1), logp)


def packs_sequences(lm: LM) -> bool:
    """Whether `lm.model` keeps sequences packed into one row apart: two probe sequences get the same
    next-token distributions packed as padded (total variation at most 1e-4 in fp32, 0.05 under a
    lower-precision autocast, where one sequence leaking into another moves them far more). Checked once
    per model, in eval mode."""
    base = lm.model
    verdict = getattr(base, "_selfparam_packs", None)
    if verdict is None:
        vocab = int(base.config.vocab_size)
        probe = [[(7 * i + 3) % vocab for i in range(6)], [(5 * i + 11) % vocab for i in range(4)]]
        modes = {m: m.training for m in base.modules()}
        base.eval()
        try:
            with torch.no_grad():
                packed, mask = scored_logprobs(base, lm, probe, [3, 3], pack=True)
                padded, _ = scored_logprobs(base, lm, probe, [3, 3], pack=False)
        finally:
            for m, training in modes.items():
                m.training = training
        total_variation = 0.5 * (packed.exp() - padded.exp()).abs().sum(-1)[mask].max()
        verdict = bool(total_variation <= (1e-4 if lm.compute_dtype == torch.float32 else 5e-2))
        base._selfparam_packs = verdict
    return verdict


def use_packing(lm: LM, enabled: bool) -> None:
    """Pack (where `lm.model` keeps packed sequences apart) or always left-pad from now on; for comparing
    the two, and as a way out should a model mis-handle packed rows in a way the probe does not see."""
    vars(lm.model).pop("_selfparam_packs", None)
    if enabled:
        packs_sequences(lm)          # probed again: packed only where the model keeps sequences apart
    else:
        lm.model._selfparam_packs = False


def scored_targets(sequences: Sequence[Sequence[int]], n_scored: Sequence[int]) -> torch.Tensor:
    """(B, N) gold token ids of the scored spans, right-aligned (0 where masked out)."""
    width = max(n_scored)
    out = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (seq, n) in enumerate(zip(sequences, n_scored)):
        out[row, width - n:] = torch.tensor(seq[len(seq) - n:], dtype=torch.long)
    return out
