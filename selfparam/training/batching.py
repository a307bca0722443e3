"""Left-padded batches whose scored spans all end at the last position.

Left padding lines every sequence up at its end, so the positions that predict the scored tokens are
the last ones of every row: the model computes logits only for the last `max n_scored + 1` positions
(`logits_to_keep`) instead of the whole sequence, which saves most of the output-layer work (the 135M
model's output layer has 28M of its parameters). Position ids count from each row's first real token.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from ..lm import LM
from ..padding import pad_tokens
from .losses import log_softmax_fp32


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids (B, T) for left-padded `sequences`."""
    return pad_tokens(sequences, pad_id, side="left")


def span_mask(n_scored: Sequence[int]) -> torch.Tensor:
    """(B, N) mask of the scored positions, right-aligned, N = max(n_scored)."""
    n = torch.tensor(list(n_scored))
    width = int(n.max())
    return torch.arange(width).unsqueeze(0) >= (width - n).unsqueeze(1)


@contextlib.contextmanager
def fp32_output_layer(model: torch.nn.Module) -> Iterator[None]:
    """Run the model's output layer in fp32 (autocast off) while inside: bf16 logits round the small
    differences a KL or a log-likelihood is made of. Only the kept positions pass through it."""
    head = getattr(model, "module", model).get_output_embeddings()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            bias = None if head.bias is None else head.bias.float()
            return F.linear(hidden.float(), head.weight.float(), bias)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward


def scored_logprobs(model: torch.nn.Module, lm: LM, sequences: Sequence[Sequence[int]],
                    n_scored: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 log-probabilities (B, N, V) at the positions predicting each row's last `n_scored` tokens,
    right-aligned, with the (B, N) mask of the real ones. The body runs under the LM's autocast, the
    output layer in fp32."""
    batch = {k: v.to(lm.device) for k, v in left_pad(sequences, lm.tokenizer.pad_token_id).items()}
    width = max(n_scored)
    with lm.autocast(), fp32_output_layer(model):
        logits = model(**batch, logits_to_keep=width + 1, use_cache=False).logits  # (B, N+1, V)
    return log_softmax_fp32(logits[:, :-1]), span_mask(n_scored).to(lm.device)


def scored_targets(sequences: Sequence[Sequence[int]], n_scored: Sequence[int]) -> torch.Tensor:
    """(B, N) gold token ids of the scored spans, right-aligned (0 where masked out)."""
    width = max(n_scored)
    out = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (seq, n) in enumerate(zip(sequences, n_scored)):
        out[row, width - n:] = torch.tensor(seq[len(seq) - n:], dtype=torch.long)
    return out
