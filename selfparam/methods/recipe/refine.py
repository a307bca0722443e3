"""Refining an edit's prompt at edit time (beyond the paper; off by default: `RecipeConfig.refine_steps` 0).

The editor writes an edit's prompt vectors in one forward pass (milliseconds), and on the embedded model it
under-fits: `scripts/recipe_prompt_ceiling.py` on 30 held-out CounterFact edits found the shipped editor's own
prompt reaching reliability 0.74, and the same three vectors fitted to the edit 0.99 (0.99 on the rephrase too),
so the prompt mechanism can carry an edit and the amortised generator is what falls short. With `refine_steps`
= S > 0, `Recipe.inject` starts from the editor's prompt and takes S Adam steps on the edit's own completion:
for each of the fact's last `refine_splits` words as the split point, the cross-entropy of the words after it
as the answer to the words before it (asked with the shared answer prompt, the prompt in front, the LLM
frozen), averaged over those splits:

    "The mother tongue of Danielle Darrieux is English" ->  ("... Darrieux is", "English"),
                                                            ("... Darrieux", "is English"), ...

Keys (retrieval) are untouched. An edit then costs seconds on a CPU instead of milliseconds.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F

from ...generation import encode_with_target
from ...lm import LM
from ...padding import pad_tokens
from ...prompt_vectors import prompted_logits
from ...prompts import answer_prompt
from .losses import IGNORE


def fact_splits(fact: str, max_splits: int) -> list[tuple[str, str]]:
    """(question, answer) pairs that split `fact` before each of its last `max_splits` words, the question
    never empty.

    >>> fact_splits("Paris is in France", 2)
    [('Paris is in', 'France'), ('Paris is', 'in France')]
    """
    words = fact.split()
    return [(" ".join(words[:-k]), " ".join(words[-k:])) for k in range(1, min(max_splits, len(words) - 1) + 1)]


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """The model's parameters with `requires_grad` off inside, their own flags restored after."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def refine_prompt(lm: LM, fact: str, prompt: torch.Tensor, steps: int, lr: float, max_splits: int) -> torch.Tensor:
    """`prompt` (n, H) after `steps` Adam steps on the completion loss of `fact` (module docstring); the same
    prompt, unchanged, when the fact has a single word or `steps` is 0."""
    splits = fact_splits(fact, max_splits)
    if steps <= 0 or not splits:
        return prompt
    return fit_prompt(lm, splits, prompt, steps, lr)


def fit_prompt(lm: LM, pairs: list[tuple[str, str]], prompt: torch.Tensor, steps: int, lr: float) -> torch.Tensor:
    """`prompt` (n, H) after `steps` Adam steps on the mean over `pairs` of each answer's mean token
    cross-entropy after its question's answer prompt, with the prompt in front; the LLM frozen."""
    encoded = [encode_with_target(lm, answer_prompt(lm.tokenizer, q), a) for q, a in pairs]
    batch = pad_tokens([ids for ids, _ in encoded], lm.tokenizer.pad_token_id, side="right")
    input_ids, mask = batch["input_ids"].to(lm.device), batch["attention_mask"].to(lm.device)
    labels = torch.full_like(input_ids, IGNORE)
    for row, (ids, start) in enumerate(encoded):
        labels[row, start:len(ids)] = input_ids[row, start:len(ids)]
    has_prompt = torch.ones(len(encoded), dtype=torch.bool, device=lm.device)
    vectors = prompt.detach().float().clone().to(lm.device).requires_grad_(True)
    opt = torch.optim.Adam([vectors], lr=lr)
    was_training = lm.model.training
    lm.model.eval()
    try:
        with frozen(lm.model), torch.enable_grad():
            for _ in range(steps):
                with lm.autocast():
                    logits = prompted_logits(lm, input_ids, mask, vectors.expand(len(encoded), -1, -1), has_prompt)
                # position t predicts token t+1; mean over each pair's answer tokens, then over the pairs
                nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:], ignore_index=IGNORE,
                                      reduction="none")
                counted = (labels[:, 1:] != IGNORE).float()
                loss = ((nll * counted).sum(1) / counted.sum(1)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        lm.model.train(was_training)
    return vectors.detach().to(device=prompt.device, dtype=prompt.dtype)
