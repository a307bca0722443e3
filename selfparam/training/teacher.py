"""The teacher's distributions: kept while it writes the answers, or from one pass over each sentence.

They are kept as `CompactTeacher` (top-k log-probabilities plus the left-over mass), so training never
runs the teacher again and memory stays at k+1 numbers per token instead of a vocabulary's worth (49,152
for SmolLM2). When the teacher writes (or re-writes) an answer with the context in view
(`teacher_writes_answers`), the log-probabilities of each generated token are exactly the distributions the
KL needs for that answer: those pairs skip `teacher_pass`; unrelated sentences still go through it.

With SELF-PARAM's `hidden_weight` on, the teacher's hidden states at the scored tokens are needed too:
`teacher_outputs` keeps them from the same forward that gives the distributions, so each example is read
once by the model that teaches it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..lm import LM, inference_mode
from ..targets import answer_in_context
from ..targets.builder import TEACHER_ANSWER_TOKENS
from ..targets.demonstrations import teacher_prompt
from ..targets.types import TargetSet
from .batching import fp32_output_layer, scored_slots
from .examples import Encoded
from .losses import CompactTeacher, compact_teacher, log_softmax_fp32


def teacher_pass(lm: LM, encoded: Sequence[Encoded], top_k: int, batch_size: int = 8,
                 progress: bool = True) -> list[CompactTeacher]:
    """Compact teacher distributions for every example, in the order given (sorted by length inside);
    examples that already carry theirs (`Encoded.teacher`) are not run again."""
    return teacher_outputs(lm, encoded, top_k, batch_size=batch_size, progress=progress)[0]


HIDDEN_DTYPE = torch.bfloat16
"""How the teacher's hidden states are kept between the pass and training: half the bytes of fp32, and
bf16's 3 significant digits are finer than the relative distances the hidden term is trained on."""


def teacher_hidden(lm: LM, encoded: Sequence[Encoded], batch_size: int = 8,
                   progress: bool = True) -> list[torch.Tensor]:
    """The hidden states (L, n_scored, D) of every layer's output at each example's scored positions as
    `lm` reads it with its teacher prefix (`scored_outputs`), on the CPU in `HIDDEN_DTYPE`, in the order
    given (sorted by length inside). Every example is run, whether or not it carries its distributions."""
    return teacher_outputs(lm, encoded, top_k=0, hidden=[True] * len(encoded), distributions=False,
                           batch_size=batch_size, progress=progress)[1]  # type: ignore[return-value]


def teacher_outputs(lm: LM, encoded: Sequence[Encoded], top_k: int, hidden: Sequence[bool] | None = None,
                    distributions: bool = True, batch_size: int = 8,
                    progress: bool = True) -> tuple[list[CompactTeacher], list[torch.Tensor | None]]:
    """One pass of `lm` over the examples (each read with its teacher prefix, sorted by length inside) for
    both things an update may need from it: the compact distributions of every example that does not carry
    its own (with `distributions`), and the hidden states (`teacher_hidden`) of every example `i` with
    `hidden[i]`, in the same forward. An example that carries its distributions is run only when its states
    are wanted; one wanted for both is run once. Returned in the order given; states None where not wanted."""
    if any(e.teacher_ids is None for e in encoded):
        raise ValueError("the teacher pass needs examples with a teacher prefix")
    want = [False] * len(encoded) if hidden is None else list(hidden)
    if len(want) != len(encoded):
        raise ValueError(f"hidden: {len(want)} flags for {len(encoded)} examples")
    teachers: list[CompactTeacher | None] = [e.teacher for e in encoded]
    states: list[torch.Tensor | None] = [None] * len(encoded)
    run = [i for i in range(len(encoded)) if want[i] or (distributions and teachers[i] is None)]
    order = sorted(run, key=lambda i: len(encoded[i].teacher_ids))
    desc = "teacher" if distributions else "teacher hidden"
    with inference_mode(lm), tqdm(total=len(order), desc=desc, unit="seq", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logp, mask, h = scored_slots(lm.model, lm, [encoded[i].teacher_ids for i in idx],
                                         [encoded[i].n_scored for i in idx], hidden=any(want[i] for i in idx))
            # the top-k of the scored slots alone (M, k), row after row; not for states alone
            compact = compact_teacher(logp, top_k) \
                if distributions and any(teachers[i] is None for i in idx) else None
            ends = mask.sum(1).cumsum(0).tolist()
            for row, i in enumerate(idx):
                keep = mask[row]
                if compact is not None and teachers[i] is None:
                    mine = slice(ends[row - 1] if row else 0, ends[row])
                    teachers[i] = CompactTeacher(compact.topk_logp[mine].cpu(), compact.topk_ids[mine].cpu(),
                                                 compact.rest_logp[mine].cpu())
                if want[i]:
                    states[i] = h[:, row][:, keep].to("cpu", HIDDEN_DTYPE)
            bar.update(len(idx))
    return teachers, states  # type: ignore[return-value]


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


def teacher_writes_answers(teacher: LM, ts: TargetSet, top_k: int, batch_size: int = 16, require: bool = True,
                           shots: int = 0) -> tuple[TargetSet, dict[tuple[str, str, str], CompactTeacher]]:
    """`ts` with every question re-answered by `teacher` with the context in view (as `targets.reanswer`),
    and the teacher's distributions over each answer as written, keyed by (context, question, answer + EOS).

    An answer is kept only when the text the student will learn tokenizes back to exactly the generated
    ids (no stripped whitespace, the EOS reached); other answers go through the teacher pass as before.
    `require=False` accepts a set whose every answer came back empty (extra questions it can do without).
    `shots`: worked examples of the context's own facts shown first (`targets.demonstrations.teacher_prompt`).
    """
    tok = teacher.tokenizer
    eos = tok.eos_token or ""
    written: dict[tuple[str, str, str], CompactTeacher] = {}

    def answer(questions: list[str], context: str) -> list[str]:
        results = teacher_answers(teacher, [teacher_prompt(tok, q, context, shots) for q in questions],
                                  TEACHER_ANSWER_TOKENS, top_k, batch_size)
        for q, (text, ids, compact) in zip(questions, results):
            if text and tok(text + eos, add_special_tokens=False)["input_ids"] == ids:
                written[(context, q, text + eos)] = compact
        return [text for text, _, _ in results]

    return answer_in_context(ts, answer, require), written
