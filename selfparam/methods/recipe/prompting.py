"""Greedy generation by the frozen LLM with RECIPE's retrieved prompt vectors in front of each query
(the vectors are inserted by `selfparam.prompt_vectors`; teacher-forced scoring with them is
`generation.target_token_accuracy(..., prompts=...)`), and the LLM's own embeddings of a fact's tokens, which an
editor with `read_fact_tokens` reads.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...lm import LM, inference_mode
from ...padding import pad_tokens
from ...prompt_vectors import insert_prompts


def fact_token_embeddings(lm: LM, facts: Sequence[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen LLM's input embeddings of each fact's last `max_tokens` tokens, right-aligned (left padding):
    (embeddings (N, T, hidden) in fp32, mask (N, T)), T the longest kept; no gradient reaches the LLM."""
    rows = []
    for fact in facts:
        ids = lm.tokenizer(fact.strip(), add_special_tokens=False)["input_ids"][-max_tokens:]
        if not ids:
            raise ValueError(f"fact {fact!r}: no tokens to read")
        rows.append(ids)
    padded = pad_tokens(rows, lm.tokenizer.pad_token_id, side="left")
    ids, mask = padded["input_ids"].to(lm.device), padded["attention_mask"].to(lm.device)
    with torch.no_grad():
        embeds = lm.model.get_input_embeddings()(ids).float()
    return embeds, mask


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
