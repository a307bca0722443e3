"""The teacher pass: the frozen model reads each sentence with the context before it, once.

Its distributions over the scored tokens are kept as `CompactTeacher` (top-k log-probabilities plus the
left-over mass), so training never runs the teacher again and memory stays at k+1 numbers per token
instead of a vocabulary's worth (49,152 for SmolLM2).
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..lm import LM, inference_mode
from .batching import scored_logprobs
from .examples import Encoded
from .losses import CompactTeacher, compact_teacher


def teacher_pass(lm: LM, encoded: Sequence[Encoded], top_k: int, batch_size: int = 8,
                 progress: bool = True) -> list[CompactTeacher]:
    """Compact teacher distributions for every example, in the order given (sorted by length inside)."""
    if any(e.teacher_ids is None for e in encoded):
        raise ValueError("teacher_pass needs examples with a teacher prefix")
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].teacher_ids))
    result: list[CompactTeacher | None] = [None] * len(encoded)
    with inference_mode(lm), tqdm(total=len(order), desc="teacher", unit="seq", disable=not progress,
                                  leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logp, mask = scored_logprobs(lm.model, lm, [encoded[i].teacher_ids for i in idx],
                                         [encoded[i].n_scored for i in idx])
            compact = compact_teacher(logp, top_k)
            for row, i in enumerate(idx):
                keep = mask[row]
                result[i] = CompactTeacher(compact.topk_logp[row, keep].cpu(), compact.topk_ids[row, keep].cpu(),
                                           compact.rest_logp[row, keep].cpu())
            bar.update(len(idx))
    return result  # type: ignore[return-value]


def stack_right_aligned(teachers: Sequence[CompactTeacher]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad per-example teachers into (B, N, k), (B, N, k), (B, N), right-aligned like `span_mask`."""
    width = max(len(t) for t in teachers)
    k = teachers[0].topk_logp.shape[-1]
    logp = torch.zeros((len(teachers), width, k))
    ids = torch.zeros((len(teachers), width, k), dtype=torch.long)
    rest = torch.zeros((len(teachers), width))
    for row, t in enumerate(teachers):
        n = len(t)
        logp[row, width - n:] = t.topk_logp
        ids[row, width - n:] = t.topk_ids
        rest[row, width - n:] = t.rest_logp
    return logp, ids, rest
