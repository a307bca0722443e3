"""Running a frozen LLM with continuous prompt vectors in front of a sequence's input embeddings
(RECIPE's retrieved knowledge prompts).

The prompt is inserted right before each row's first attended token, so it works with left padding
(generation) and right padding (teacher-forced scoring) alike. A row without a prompt gets the same
number of extra positions with attention mask 0: they act as padding, and since position ids are
counted over attended tokens only, that row's logits equal the plain model's.
"""

from __future__ import annotations

import torch

from .lm import LM


def insert_prompts(embeds: torch.Tensor, mask: torch.Tensor, prompts: torch.Tensor,
                   has_prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Insert `prompts` before the first attended position of each row.

    embeds (B, T, H), mask (B, T) of 0/1, prompts (B, n, H), has_prompt (B,) bool ->
    new embeds (B, T+n, H), new mask (B, T+n), position ids (B, T+n), and `index` (B, T): where each
    original position landed, so `logits.gather` can map outputs back to the input's layout.
    """
    B, T, H = embeds.shape
    n = prompts.shape[1]
    if prompts.shape[0] != B or prompts.shape[2] != H:
        raise ValueError(f"prompts of shape {tuple(prompts.shape)} do not fit embeddings {tuple(embeds.shape)}")
    mask = mask.long()
    start = torch.where(mask.any(1), mask.argmax(1), torch.zeros_like(mask[:, 0]))  # (B,) first attended
    pos = torch.arange(T, device=embeds.device).unsqueeze(0)  # (1, T)
    index = pos + n * (pos >= start.unsqueeze(1)).long()  # (B, T): shifted past the prompt
    out = embeds.new_zeros(B, T + n, H)
    out.scatter_(1, index.unsqueeze(-1).expand(B, T, H), embeds)
    prompt_index = start.unsqueeze(1) + torch.arange(n, device=embeds.device).unsqueeze(0)  # (B, n)
    out.scatter_(1, prompt_index.unsqueeze(-1).expand(B, n, H), prompts.to(embeds.dtype))
    new_mask = mask.new_zeros(B, T + n)
    new_mask.scatter_(1, index, mask)
    new_mask.scatter_(1, prompt_index, has_prompt.long().unsqueeze(1).expand(B, n))
    position_ids = (new_mask.cumsum(1) - 1).clamp(min=0)
    return out, new_mask, position_ids, index


def prompted_logits(lm: LM, input_ids: torch.Tensor, mask: torch.Tensor, prompts: torch.Tensor | None,
                    has_prompt: torch.Tensor | None, keep_last: int = 0) -> torch.Tensor:
    """Logits (B, T, V) of the frozen LLM on `input_ids` with prompts inserted, laid out like `input_ids`.

    prompts (B, n, H) or None (no row has one); gradients flow into `prompts`. With `keep_last` = K > 0
    (left-padded input) only the last K positions' logits are computed and returned, (B, K, V): the
    LM head and the softmax over 49k tokens then cost nothing for the prompt positions.
    """
    if prompts is None:
        position_ids = (mask.long().cumsum(1) - 1).clamp(min=0)
        return lm.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                        logits_to_keep=keep_last).logits
    embeds = lm.model.get_input_embeddings()(input_ids)  # (B, T, H)
    full, full_mask, position_ids, index = insert_prompts(embeds, mask, prompts, has_prompt)
    logits = lm.model(inputs_embeds=full, attention_mask=full_mask, position_ids=position_ids,
                      logits_to_keep=keep_last).logits
    if keep_last:
        return logits  # the prompt sits before the first attended token, so the tail is unmoved
    return logits.gather(1, index.unsqueeze(-1).expand(*index.shape, logits.shape[-1]))  # (B, T, V)
