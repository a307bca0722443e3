"""Batched greedy answering and teacher-forced scoring: the decoding every method shares."""

from __future__ import annotations

from typing import Sequence

import torch

from .lm import LM, inference_mode
from .padding import pad_tokens
from .prompt_vectors import prompted_logits


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def generate(lm: LM, prompts: Sequence[str], max_new_tokens: int = 32, batch_size: int = 16,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
             seed: int | None = None) -> list[str]:
    """Continue each prompt (left-padded batches, KV cache) and return only the new text, stripped.

    Greedy by default; with `do_sample` the draw is seeded by `seed` for reproducibility.
    """
    if not prompts:
        return []
    tok = lm.tokenizer
    outputs: list[str] = []
    if seed is not None:
        torch.manual_seed(seed)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if do_sample else \
        dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    with inference_mode(lm):
        for _, batch in _batches(list(prompts), batch_size):
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
            out = lm.model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                    eos_token_id=tok.eos_token_id, **sampling)
            new = out[:, enc["input_ids"].shape[1]:]
            outputs.extend(text.strip() for text in tok.batch_decode(new, skip_special_tokens=True))
    return outputs


def encode_with_target(lm: LM, prefix: str, target: str) -> tuple[list[int], int]:
    """Token ids of `prefix` followed by `target`, tokenized apart so the target's ids never depend on
    the prefix; returns the ids and where the target starts."""
    tok = lm.tokenizer
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    target_ids = tok(target, add_special_tokens=False)["input_ids"]
    return prefix_ids + target_ids, len(prefix_ids)


def target_token_accuracy(lm: LM, prefixes: Sequence[str], targets: Sequence[str],
                          batch_size: int = 16, model: torch.nn.Module | None = None,
                          prompts: torch.Tensor | None = None, has_prompt: torch.Tensor | None = None) -> list[float]:
    """For each (prefix, target): the share of target tokens the model predicts as its argmax when fed
    the gold tokens before them (the editing papers' teacher-forced accuracy). `model` overrides
    `lm.model`. With `prompts` (N, n, H) and `has_prompt` (N,) bool, row i is run with its n prompt
    vectors before its first token where has_prompt[i] (RECIPE; see `prompt_vectors.insert_prompts`)."""
    if len(prefixes) != len(targets):
        raise ValueError(f"{len(prefixes)} prefixes but {len(targets)} targets")
    if (prompts is None) != (has_prompt is None):
        raise ValueError("prompts and has_prompt go together")
    if prompts is not None and (model is not None or prompts.shape[0] != len(prefixes)):
        raise ValueError(f"prompts: one row per prefix ({len(prefixes)}) on lm.model, got {tuple(prompts.shape)}")
    net = model if model is not None else lm.model
    pad = lm.tokenizer.pad_token_id
    scores: list[float] = []
    with inference_mode(lm):
        for start, _ in _batches(list(prefixes), batch_size):
            encoded = [encode_with_target(lm, p, t) for p, t in
                       zip(prefixes[start:start + batch_size], targets[start:start + batch_size])]
            if any(start_t == 0 or start_t == len(ids) for ids, start_t in encoded):
                raise ValueError("target_token_accuracy needs a non-empty prefix and target")
            batch = pad_tokens([ids for ids, _ in encoded], pad, side="right")  # positions stay 0..len-1
            input_ids, mask = batch["input_ids"].to(lm.device), batch["attention_mask"].to(lm.device)
            if prompts is None:
                logits = net(input_ids=input_ids, attention_mask=mask).logits
            else:
                rows = slice(start, start + batch_size)
                logits = prompted_logits(lm, input_ids, mask, prompts[rows].to(lm.device),
                                         has_prompt[rows].to(lm.device))
            predicted = logits.argmax(-1).cpu()  # (B, T): prediction for the token at t+1
            for row, (ids, start_t) in enumerate(encoded):
                gold = torch.tensor(ids[start_t:])
                pred = predicted[row, start_t - 1:len(ids) - 1]
                scores.append((pred == gold).float().mean().item())
    return scores
