"""Batched greedy answering, sampling many continuations of one prompt, and teacher-forced scoring:
the decoding every method shares."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from transformers import DynamicCache, StoppingCriteria, StoppingCriteriaList

from .lm import LM, inference_mode
from .padding import pad_tokens
from .prompt_vectors import prompted_logits


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def generate(lm: LM, prompts: Sequence[str], max_new_tokens: int = 32, batch_size: int = 16,
             do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
             seed: int | None = None, stop: Sequence[str] = (),
             max_words: Sequence[int] | None = None) -> list[str]:
    """Continue each prompt (left-padded batches, KV cache) and return only the new text, stripped.

    Greedy by default; with `do_sample` the draw is seeded by `seed` for reproducibility. With `stop`, a row
    ends once its text ends with one of those strings (transformers' stop strings; the rest of its batch goes on).
    With `max_words` (one limit per prompt), a row ends once its text has more words than its limit: for callers
    that cannot use a longer text, which must treat a text over its limit as cut. The other rows of its batch
    run exactly as they would have (a finished row is padded, not removed), so they come out the same.
    """
    if max_words is not None and len(max_words) != len(prompts):
        raise ValueError(f"max_words: one limit per prompt, got {len(max_words)} for {len(prompts)} prompts")
    if not prompts:
        return []
    tok = lm.tokenizer
    outputs: list[str] = []
    if seed is not None:
        torch.manual_seed(seed)
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if do_sample else \
        dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    stopping = dict(stop_strings=list(stop), tokenizer=tok) if stop else {}
    with inference_mode(lm):
        for start, batch in _batches(list(prompts), batch_size):
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
            limits = {} if max_words is None else {"stopping_criteria": StoppingCriteriaList([_WordLimit(
                tok, enc["input_ids"].shape[1], max_words[start:start + len(batch)])])}
            out = lm.model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                    eos_token_id=tok.eos_token_id, **sampling, **stopping, **limits)
            new = out[:, enc["input_ids"].shape[1]:]
            outputs.extend(text.strip() for text in tok.batch_decode(new, skip_special_tokens=True))
    return outputs


class _WordLimit(StoppingCriteria):
    """Ends each row of a `generate` batch once its new text has more words than its limit."""

    def __init__(self, tokenizer, prompt_width: int, limits: Sequence[int]):
        self.tokenizer, self.prompt_width, self.limits = tokenizer, prompt_width, list(limits)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        return torch.tensor([len(t.split()) > n for t, n in zip(texts, self.limits)], device=input_ids.device)


def sample_each(lm: LM, prompts: Sequence[str], max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                seed: int = 0, stop: Sequence[str] = (), batch_size: int = 32) -> list[str]:
    """One sampled continuation of each prompt (temperature, then nucleus filtering, no top-k), different prompts
    decoded together in left-padded batches of `batch_size`, each row ending at its first `stop` string. Seeded by
    `seed` on a forked stream: torch's global random stream is left as it was. Where many short prompts each want
    a few samples this is the fast way on a CPU: on the embedded model, 16 facts' prompts x 2 samples took 11 s in
    batches of 32 rows against 27 s one prompt at a time on its cache (`sample_continuations`; docs/benchmarks.md)."""
    with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
        return generate(lm, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, do_sample=True,
                        temperature=temperature, top_p=top_p, seed=seed, stop=stop)


@dataclass
class EncodedPrompt:
    """A prompt read once: its token ids, its KV cache and the logits of the token after it.

    The cache holds every prompt token (batch 1); `sample_continuations` copies it over the batch, so the
    prompt is never computed again however many continuations or rounds are drawn from it.
    """

    ids: list[int]
    cache: DynamicCache
    next_logits: torch.Tensor  # (1, V) float32: the distribution of the first new token


@dataclass(frozen=True)
class Completion:
    """One sampled continuation: its text, its token ids, and whether the model ended it (EOS) itself;
    False means it was cut by `max_new_tokens` or by an early stop, so its last line may be unfinished."""

    text: str
    ids: tuple[int, ...]
    ended: bool


def encode_prompt(lm: LM, prompt: str, prefix: EncodedPrompt | None = None) -> EncodedPrompt:
    """Run `prompt` through the model once (one forward pass, logits for its last position only).

    With `prefix` (an encoded earlier part, e.g. an instruction many prompts share), `prompt` is the text
    that follows it, tokenized on its own (so split at a line break), and only it is computed.
    """
    ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("encode_prompt: empty prompt")
    cache = copy.deepcopy(prefix.cache) if prefix is not None else DynamicCache()
    with inference_mode(lm):
        out = lm.model(input_ids=torch.tensor([ids], device=lm.device), cache=cache, use_cache=True, logits_to_keep=1)
    return EncodedPrompt(ids=(prefix.ids if prefix is not None else []) + ids, cache=cache,  # grown in place
                         next_logits=out.logits[:, -1].float())


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering as transformers' `TopPLogitsWarper` does it: keep the smallest set of most likely
    tokens whose probability reaches `top_p` (at least one); the rest get -inf. (B, V) -> (B, V)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_indices = torch.sort(logits, descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - top_p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def _eos_ids(lm: LM) -> set[int]:
    ids = {lm.tokenizer.eos_token_id}
    configured = getattr(lm.model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids if i is not None}


def _narrow(cache: DynamicCache, active: list[int], chosen: torch.Tensor, keep: list[int]
            ) -> tuple[list[int], torch.Tensor]:
    """Keep only the batch positions `keep` of the running rows: their ids, their cache rows, their tokens."""
    if len(keep) == len(active):
        return active, chosen
    if keep:
        index = torch.tensor(keep, device=chosen.device)
        cache.batch_select_indices(index)
        chosen = chosen[index]
    return [active[i] for i in keep], chosen


def sample_continuations(lm: LM, prompt: EncodedPrompt, n: int, max_new_tokens: int, do_sample: bool = True,
                         temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                         enough: Callable[[list[Completion]], bool] | None = None,
                         retire: Callable[[str], bool] | None = None, check_every: int = 8) -> list[Completion]:
    """`n` continuations of one encoded prompt, decoded together on copies of its KV cache.

    Same distribution as `generate(lm, [prompt] * n, do_sample=True, temperature, top_p)` (temperature,
    then nucleus filtering, no top-k), without recomputing the prompt n times. The draw uses its own
    generator seeded by `seed`, so it is reproducible and leaves torch's global RNG alone. Rows that end
    (EOS) leave the batch. Every `check_every` steps `enough(partial completions)` is asked, and a True
    stops all rows at once (for callers that need a certain amount of usable text, not a length); then
    `retire(text so far)` is asked of every row still running, and a True takes that row out of the batch,
    cut like a row that hit `max_new_tokens` (`ended` False), so a wide batch narrows as its rows stop
    being useful and the rest decode faster. Greedy with `do_sample=False`.
    """
    if n < 1 or max_new_tokens < 1:
        raise ValueError(f"sample_continuations: n and max_new_tokens must be >= 1, got {n} and {max_new_tokens}")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    generator = torch.Generator(device=lm.device)
    if seed is not None:
        generator.manual_seed(seed)
    eos = _eos_ids(lm)
    tokens: list[list[int]] = [[] for _ in range(n)]
    ended = [False] * n
    active = list(range(n))  # rows still being decoded, in cache order
    cache = copy.deepcopy(prompt.cache)
    cache.batch_repeat_interleave(n)
    logits = prompt.next_logits.expand(n, -1)  # (n, V)

    def completions() -> list[Completion]:
        texts = lm.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [Completion(text, tuple(ids), done) for text, ids, done in zip(texts, tokens, ended)]

    with inference_mode(lm):
        for step in range(max_new_tokens):
            if do_sample:
                probs = torch.softmax(top_p_filter(logits / temperature, top_p), dim=-1)
                chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            else:
                chosen = logits.argmax(-1)
            keep = []
            for position, (row, token) in enumerate(zip(active, chosen.tolist())):
                if token in eos:
                    ended[row] = True
                else:
                    tokens[row].append(token)
                    keep.append(position)
            active, chosen = _narrow(cache, active, chosen, keep)
            if not active or step == max_new_tokens - 1:
                break
            if (step + 1) % check_every == 0:
                if enough is not None and enough(completions()):
                    break
                if retire is not None:
                    texts = lm.tokenizer.batch_decode([tokens[row] for row in active], skip_special_tokens=True)
                    active, chosen = _narrow(cache, active, chosen,
                                             [i for i, text in enumerate(texts) if not retire(text)])
                    if not active:
                        break
            out = lm.model(input_ids=chosen.unsqueeze(1), cache=cache, use_cache=True)
            logits = out.logits[:, -1].float()
    return completions()


def encode_with_target(lm: LM, prefix: str, target: str) -> tuple[list[int], int]:
    """Token ids of `prefix` followed by `target`, tokenized apart so the target's ids never depend on
    the prefix; returns the ids and where the target starts."""
    tok = lm.tokenizer
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    target_ids = tok(target, add_special_tokens=False)["input_ids"]
    return prefix_ids + target_ids, len(prefix_ids)


def _teacher_forced(lm: LM, prefixes: Sequence[str], targets: Sequence[str], batch_size: int,
                    model: torch.nn.Module | None, prompts: torch.Tensor | None, has_prompt: torch.Tensor | None,
                    caller: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """For each (prefix, target) in order: the logits that predict the target's tokens, (T_target, V) in the
    model's dtype, and the target's ids (T_target,), both on the model's device.

    Batches are right-padded, so a row's positions stay 0..len-1 and its logits do not depend on its
    neighbours. Only the target positions are handed out: the caller takes what it needs per row (an
    argmax, a log-softmax in fp32) without materialising anything batch-wide beyond the forward pass."""
    if len(prefixes) != len(targets):
        raise ValueError(f"{caller}: {len(prefixes)} prefixes but {len(targets)} targets")
    if (prompts is None) != (has_prompt is None):
        raise ValueError(f"{caller}: prompts and has_prompt go together")
    if prompts is not None and (model is not None or prompts.shape[0] != len(prefixes)):
        raise ValueError(f"{caller}: prompts: one row per prefix ({len(prefixes)}) on lm.model, "
                         f"got {tuple(prompts.shape)}")
    net = model if model is not None else lm.model
    pad = lm.tokenizer.pad_token_id
    with inference_mode(lm):
        for start, _ in _batches(list(prefixes), batch_size):
            encoded = [encode_with_target(lm, p, t) for p, t in
                       zip(prefixes[start:start + batch_size], targets[start:start + batch_size])]
            if any(start_t == 0 or start_t == len(ids) for ids, start_t in encoded):
                raise ValueError(f"{caller} needs a non-empty prefix and target")
            batch = pad_tokens([ids for ids, _ in encoded], pad, side="right")  # positions stay 0..len-1
            input_ids, mask = batch["input_ids"].to(lm.device), batch["attention_mask"].to(lm.device)
            if prompts is None:
                logits = net(input_ids=input_ids, attention_mask=mask).logits  # (B, T, V)
            else:
                rows = slice(start, start + batch_size)
                logits = prompted_logits(lm, input_ids, mask, prompts[rows].to(lm.device),
                                         has_prompt[rows].to(lm.device))
            for row, (ids, start_t) in enumerate(encoded):
                # position t predicts token t+1: the target's tokens are predicted from start_t-1 on
                yield logits[row, start_t - 1:len(ids) - 1], input_ids[row, start_t:len(ids)]


def target_token_accuracy(lm: LM, prefixes: Sequence[str], targets: Sequence[str],
                          batch_size: int = 16, model: torch.nn.Module | None = None,
                          prompts: torch.Tensor | None = None, has_prompt: torch.Tensor | None = None) -> list[float]:
    """For each (prefix, target): the share of target tokens the model predicts as its argmax when fed
    the gold tokens before them (the editing papers' teacher-forced accuracy). `model` overrides
    `lm.model`. With `prompts` (N, n, H) and `has_prompt` (N,) bool, row i is run with its n prompt
    vectors before its first token where has_prompt[i] (RECIPE; see `prompt_vectors.insert_prompts`)."""
    rows = _teacher_forced(lm, prefixes, targets, batch_size, model, prompts, has_prompt, "target_token_accuracy")
    return [(logits.argmax(-1) == gold).float().mean().item() for logits, gold in rows]


def target_logprob(lm: LM, prefixes: Sequence[str], targets: Sequence[str], batch_size: int = 16,
                   model: torch.nn.Module | None = None, prompts: torch.Tensor | None = None,
                   has_prompt: torch.Tensor | None = None) -> list[float]:
    """For each (prefix, target): the mean over the target's tokens of log p(token | prefix, target tokens
    before it), teacher-forced (<= 0; 0 = certain). A continuous figure of how much the model believes the
    target, whatever it would generate. Same arguments as `target_token_accuracy`; the log-softmax is
    taken in fp32 over the target positions only.

        mean_t log_softmax(logits[start + t - 1])[target_t]
    """
    return [t.mean().item() for t in target_token_logprobs(lm, prefixes, targets, batch_size, model, prompts,
                                                             has_prompt)]


def target_token_logprobs(lm: LM, prefixes: Sequence[str], targets: Sequence[str], batch_size: int = 16,
                          model: torch.nn.Module | None = None, prompts: torch.Tensor | None = None,
                          has_prompt: torch.Tensor | None = None) -> list[torch.Tensor]:
    """For each (prefix, target): log p(token | prefix, target tokens before it) of every target token, a
    float32 tensor (T_target,) on the CPU, teacher-forced. `target_logprob` is its mean; the tokens apart
    show where one token alone became unlikely (a contradicted object). Same arguments as
    `target_token_accuracy`."""
    rows = _teacher_forced(lm, prefixes, targets, batch_size, model, prompts, has_prompt, "target_token_logprobs")
    return [torch.log_softmax(logits.float(), dim=-1).gather(-1, gold.unsqueeze(-1)).squeeze(-1).cpu()
            for logits, gold in rows]
