"""The teacher's distributions: kept while it writes the answers, or from one pass over each sentence.

They are kept as `CompactTeacher` (top-k log-probabilities plus the left-over mass), so training never
runs the teacher again and memory stays at k+1 numbers per token instead of a vocabulary's worth (49,152
for SmolLM2). When the teacher writes (or re-writes) an answer with the context in view
(`teacher_writes_answers`), the log-probabilities of each generated token are exactly the distributions the
KL needs for that answer: those pairs skip `teacher_pass`; unrelated sentences still go through it.

With SELF-PARAM's `hidden_weight` on, the teacher's hidden states at the scored tokens are needed too
(`teacher_hidden`): one more pass over the examples, apart from `teacher_pass`, so the distributions are
computed as before whether or not the hidden states are wanted.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..lm import LM, inference_mode
from ..prompts import answer_prompt
from ..targets import answer_in_context
from ..targets.builder import TEACHER_ANSWER_TOKENS
from ..targets.types import TargetSet
from .batching import fp32_output_layer, scored_logprobs, scored_outputs
from .examples import Encoded, Example, encode
from .losses import CompactTeacher, compact_teacher, log_softmax_fp32


def teacher_pass(lm: LM, encoded: Sequence[Encoded], top_k: int, batch_size: int = 8,
                 progress: bool = True) -> list[CompactTeacher]:
    """Compact teacher distributions for every example, in the order given (sorted by length inside);
    examples that already carry theirs (`Encoded.teacher`) are not run again."""
    if any(e.teacher_ids is None for e in encoded):
        raise ValueError("teacher_pass needs examples with a teacher prefix")
    result: list[CompactTeacher | None] = [e.teacher for e in encoded]
    order = sorted((i for i, e in enumerate(encoded) if e.teacher is None), key=lambda i: len(encoded[i].teacher_ids))
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


HIDDEN_DTYPE = torch.bfloat16
"""How the teacher's hidden states are kept between the pass and training: half the bytes of fp32, and
bf16's 3 significant digits are finer than the relative distances the hidden term is trained on."""


def teacher_hidden(lm: LM, encoded: Sequence[Encoded], batch_size: int = 8,
                   progress: bool = True) -> list[torch.Tensor]:
    """The hidden states (L, n_scored, D) of every layer's output at each example's scored positions as
    `lm` reads it with its teacher prefix (`scored_outputs`), on the CPU in `HIDDEN_DTYPE`, in the order
    given (sorted by length inside). Every example is run, whether or not it carries its distributions."""
    if any(e.teacher_ids is None for e in encoded):
        raise ValueError("teacher_hidden needs examples with a teacher prefix")
    result: list[torch.Tensor | None] = [None] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].teacher_ids))
    with inference_mode(lm), tqdm(total=len(order), desc="teacher hidden", unit="seq", disable=not progress,
                                  leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            _, mask, states = scored_outputs(lm.model, lm, [encoded[i].teacher_ids for i in idx],
                                             [encoded[i].n_scored for i in idx], hidden=True)
            for row, i in enumerate(idx):
                result[i] = states[:, row][:, mask[row]].to("cpu", HIDDEN_DTYPE)
            bar.update(len(idx))
    return result  # type: ignore[return-value]


def stack_hidden(hidden: Sequence[torch.Tensor | None], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example teacher hidden states (L, n, D), or None, padded into (L, B, N, D) right-aligned like
    `span_mask` (zeros elsewhere), on `like`'s device (`like` is the student's (L, B, N, D)); with the (B,)
    mask of the examples that have them."""
    stacked = torch.zeros(like.shape, dtype=torch.float32, device=like.device)
    width = like.shape[2]
    for row, h in enumerate(hidden):
        if h is not None:
            stacked[:, row, width - h.shape[1]:] = h.to(like.device, torch.float32)
    return stacked, torch.tensor([h is not None for h in hidden], device=like.device)


def taught_by(lm: LM, examples: Sequence[Example], top_k: int, batch_size: int = 8,
              progress: bool = True) -> list[Example]:
    """`examples` carrying the distributions `lm` gives them now (each read with its teacher prefix), so the
    update's teacher pass, run by another model, keeps these rather than computing its own."""
    encoded = [encode(lm.tokenizer, e, lm.max_length) for e in examples]
    teachers = teacher_pass(lm, encoded, top_k, batch_size=batch_size, progress=progress) if encoded else []
    return [dataclasses.replace(e, teacher=t) for e, t in zip(examples, teachers)]


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


def teacher_answers(lm: LM, prompts: Sequence[str], max_new_tokens: int, top_k: int,
                    batch_size: int = 16) -> list[tuple[str, list[int], CompactTeacher]]:
    """Greedy answers to `prompts` with, for each, the generated token ids (up to and including EOS) and
    the compact distributions the model gave each of them (fp32 output layer, as in `teacher_pass`)."""
    tok = lm.tokenizer
    out: list[tuple[str, list[int], CompactTeacher]] = []
    with inference_mode(lm), fp32_output_layer(lm.model):
        for start in range(0, len(prompts), batch_size):
            enc = tok(list(prompts[start:start + batch_size]), return_tensors="pt", padding=True,
                      add_special_tokens=False).to(lm.device)
            gen = lm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                    top_p=None, top_k=None, pad_token_id=tok.pad_token_id,
                                    eos_token_id=tok.eos_token_id, output_logits=True, return_dict_in_generate=True)
            new = gen.sequences[:, enc["input_ids"].shape[1]:].cpu()   # (B, n)
            logits = torch.stack(gen.logits, dim=1)                    # (B, n, V)
            for row in range(new.shape[0]):
                ids = new[row].tolist()
                if tok.eos_token_id in ids:
                    ids = ids[:ids.index(tok.eos_token_id) + 1]
                compact = compact_teacher(log_softmax_fp32(logits[row, :len(ids)]), top_k)
                out.append((tok.decode(ids, skip_special_tokens=True).strip(), ids,
                            CompactTeacher(compact.topk_logp.cpu(), compact.topk_ids.cpu(), compact.rest_logp.cpu())))
    return out


def teacher_writes_answers(teacher: LM, ts: TargetSet, top_k: int, batch_size: int = 16,
                           require: bool = True) -> tuple[TargetSet, dict[tuple[str, str, str], CompactTeacher]]:
    """`ts` with every question re-answered by `teacher` with the context in view (as `targets.reanswer`),
    and the teacher's distributions over each answer as written, keyed by (context, question, answer + EOS).

    An answer is kept only when the text the student will learn tokenizes back to exactly the generated
    ids (no stripped whitespace, the EOS reached); other answers go through the teacher pass as before.
    `require=False` accepts a set whose every answer came back empty (extra questions it can do without).
    """
    tok = teacher.tokenizer
    eos = tok.eos_token or ""
    written: dict[tuple[str, str, str], CompactTeacher] = {}

    def answer(questions: list[str], context: str) -> list[str]:
        results = teacher_answers(teacher, [answer_prompt(tok, q, context) for q in questions],
                                  TEACHER_ANSWER_TOKENS, top_k, batch_size)
        for q, (text, ids, compact) in zip(questions, results):
            if text and tok(text + eos, add_special_tokens=False)["input_ids"] == ids:
                written[(context, q, text + eos)] = compact
        return [text for text, _, _ in results]

    return answer_in_context(ts, answer, require), written
