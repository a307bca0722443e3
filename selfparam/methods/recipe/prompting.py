"""Running the frozen LLM with continuous prompt vectors in front of the query's input embeddings.

The prompt is inserted right before each row's first attended token, so it works with left padding
(generation) and right padding (teacher-forced scoring) alike. A row without a prompt gets the same
number of extra positions with attention mask 0: they act as padding, and since position ids are
counted over attended tokens only, that row's logits equal the plain model's.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...generation import encode_with_target
from ...lm import LM, inference_mode


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


def pad_right(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists -> ids (B, T), mask (B, T)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def prompted_token_accuracy(lm: LM, prefixes: Sequence[str], targets: Sequence[str], prompts: torch.Tensor | None,
                            has_prompt: torch.Tensor | None, batch_size: int = 16) -> list[float]:
    """`generation.target_token_accuracy` with prompt vectors: per row, the share of target tokens that are
    the argmax given the gold tokens before them. prompts (N, n, H) aligned with the rows, or None."""
    if len(prefixes) != len(targets):
        raise ValueError(f"{len(prefixes)} prefixes but {len(targets)} targets")
    scores: list[float] = []
    pad = lm.tokenizer.pad_token_id
    with inference_mode(lm):
        for s in range(0, len(prefixes), batch_size):
            encoded = [encode_with_target(lm, p, t) for p, t in zip(prefixes[s:s + batch_size], targets[s:s + batch_size])]
            for ids, start in encoded:
                if start == 0 or start == len(ids):
                    raise ValueError("prompted_token_accuracy needs a non-empty prefix and target")
            ids, mask = pad_right([e[0] for e in encoded], pad)
            p = None if prompts is None else prompts[s:s + batch_size].to(lm.device)
            h = None if has_prompt is None else has_prompt[s:s + batch_size].to(lm.device)
            predicted = prompted_logits(lm, ids.to(lm.device), mask.to(lm.device), p, h).argmax(-1).cpu()
            for row, (row_ids, start) in enumerate(encoded):
                gold = torch.tensor(row_ids[start:])
                scores.append((predicted[row, start - 1:len(row_ids) - 1] == gold).float().mean().item())
    return scores


def prompted_generate(lm: LM, texts: Sequence[str], prompts: torch.Tensor | None, has_prompt: torch.Tensor | None,
                      max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
    """Greedy continuation of each text with its prompt vectors (left padding, `inputs_embeds`, KV cache)."""
    tok = lm.tokenizer
    outputs: list[str] = []
    with inference_mode(lm):
        for s in range(0, len(texts), batch_size):
            enc = tok(list(texts[s:s + batch_size]), return_tensors="pt", padding=True, add_special_tokens=False)
            ids, mask = enc["input_ids"].to(lm.device), enc["attention_mask"].to(lm.device)
            if prompts is None or not bool(has_prompt[s:s + batch_size].any()):
                out = lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                        do_sample=False, temperature=None, top_p=None, top_k=None,
                                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                new = out[:, ids.shape[1]:]
            else:
                embeds = lm.model.get_input_embeddings()(ids)
                full, full_mask, _, _ = insert_prompts(embeds, mask, prompts[s:s + batch_size].to(lm.device),
                                                       has_prompt[s:s + batch_size].to(lm.device))
                # with inputs_embeds alone, generate returns only the new tokens; position ids come from
                # the attention mask (cumsum), the same rule insert_prompts uses
                new = lm.model.generate(inputs_embeds=full, attention_mask=full_mask, max_new_tokens=max_new_tokens,
                                        do_sample=False, temperature=None, top_p=None, top_k=None,
                                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            outputs.extend(t.strip() for t in tok.batch_decode(new, skip_special_tokens=True))
    return outputs
