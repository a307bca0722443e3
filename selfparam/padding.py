"""Padding token id lists into one batch: the single padding function every batch builder uses.

    >>> pad_tokens([[5, 6, 7], [8]], pad_id=0, side="left")["input_ids"]
    tensor([[5, 6, 7],
            [0, 0, 8]])

Left padding lines every sequence up at its end (generation, and scoring only the last positions);
right padding keeps each row's positions 0..len-1 in place (teacher-forced scoring of whole rows).
Position ids count from each row's first real token either way.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch


def pad_tokens(sequences: Sequence[Sequence[int]], pad_id: int,
               side: Literal["left", "right"] = "left") -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids, each (B, T) with T the longest sequence."""
    if side not in ("left", "right"):
        raise ValueError(f"side: must be 'left' or 'right', got {side!r}")
    if not sequences:
        raise ValueError("pad_tokens needs at least one sequence")
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        input_ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        attention_mask[row, span] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
