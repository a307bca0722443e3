"""Rehearsal for sequential injection: replay earlier contexts' pairs with their ORIGINAL teachers.

Each update made with rehearsal on keeps, beside its record, the compact teacher distributions of its own
pairs as they were at its own injection (`RehearsalPair`; with `rehearsal_context`, also of its context read,
each chunk once: kind "read"), written into the saved injection as
`updates/NNNN/teacher.safetensors`. At update t a seeded sample of every earlier context's kept pairs is
added to the update's examples, each carrying its stored teacher: the teacher pass skips them, so the
student is distilled again towards what the model *with that context* said back then, not towards the
current model (which has already drifted). This is experience replay (Rolnick et al. 2019, "Experience
Replay for Continual Learning"; Knowledge Modules / Cartridges distil from a fixed teacher the same way).

Nothing here is used at inference: the merged model keeps its size. The training-time cost is
`store_bytes`: k+1 numbers per answer token (top-k log-probs in fp32, top-k ids in int32, the left-over mass
in fp32), i.e. 8k+4 bytes per token (516 at k=64).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file, save_file

from ..prompts import question_line
from ..targets.entities import entities, named_in
from .examples import Encoded, Example
from .losses import CompactTeacher

TEACHER_FILE = "teacher.safetensors"


@dataclass(frozen=True)
class RehearsalPair:
    """One distillation example of an earlier update, as it was trained then.

    `context` is the context the teacher read (its digest keys the seeded sample); `student_prefix` and
    `text` are what the student reads and learns; `teacher` the distributions the teacher gave `text`;
    `kind` "pair" (a question and its answer) or "read" (a chunk of the context's own text).
    """

    context: str
    student_prefix: str
    teacher_prefix: str
    text: str
    teacher: CompactTeacher
    kind: str = "pair"

    def example(self) -> Example:
        """The example to train again; it carries its teacher, so the teacher pass never recomputes it."""
        return Example(student_prefix=self.student_prefix, text=self.text, teacher_prefix=self.teacher_prefix,
                       teacher=self.teacher)


def keep_pairs(examples: Sequence[Example], teachers: Sequence[CompactTeacher],
               contexts: Sequence[str | None], kinds: Sequence[str] | None = None) -> list[RehearsalPair]:
    """The examples of an update to keep, with their teachers: `contexts[i]` is the context of `examples[i]`,
    None for examples not kept (unrelated sentences, replayed ones, repeated copies); `kinds[i]` what it is
    ("pair", the default, or "read")."""
    kinds = kinds if kinds is not None else ["pair"] * len(examples)
    if not len(examples) == len(teachers) == len(contexts) == len(kinds):
        raise ValueError(f"keep_pairs: {len(examples)} examples, {len(teachers)} teachers, {len(contexts)} contexts, "
                         f"{len(kinds)} kinds")
    return [RehearsalPair(c, e.student_prefix, e.teacher_prefix or "", e.text, t, k)
            for e, t, c, k in zip(examples, teachers, contexts, kinds) if c is not None]


def store_bytes(pairs: Sequence[RehearsalPair]) -> int:
    """Bytes of the stored teacher tensors (as written: fp32 log-probs, int32 ids, fp32 left-over mass)."""
    return sum(p.teacher.topk_logp.numel() * 4 + p.teacher.topk_ids.numel() * 4 + p.teacher.rest_logp.numel() * 4
               for p in pairs)


def save_pairs(pairs: Sequence[RehearsalPair], folder: Path) -> None:
    """Write `folder/teacher.safetensors`: three tensors per pair, the texts in the file's metadata."""
    tensors: dict[str, torch.Tensor] = {}
    for i, p in enumerate(pairs):
        tensors[f"{i}.topk_logp"] = p.teacher.topk_logp.to(torch.float32).contiguous()
        tensors[f"{i}.topk_ids"] = p.teacher.topk_ids.to(torch.int32).contiguous()
        tensors[f"{i}.rest_logp"] = p.teacher.rest_logp.to(torch.float32).contiguous()
    contexts = sorted({p.context for p in pairs})
    meta = [{"context": contexts.index(p.context), "student_prefix": p.student_prefix,
             "teacher_prefix": p.teacher_prefix, "text": p.text, "kind": p.kind} for p in pairs]
    metadata = {"pairs": json.dumps(meta, ensure_ascii=False), "contexts": json.dumps(contexts, ensure_ascii=False)}
    save_file(tensors, str(folder / TEACHER_FILE), metadata=metadata)


def read_pairs(folder: Path) -> list[RehearsalPair] | None:
    """The pairs kept in `folder/teacher.safetensors`; None when the update kept none."""
    file = folder / TEACHER_FILE
    if not file.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as f:
        meta = f.metadata() or {}
    try:
        pairs, contexts = json.loads(meta["pairs"]), json.loads(meta["contexts"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{file}: not a rehearsal store written by selfparam ({type(e).__name__}: {e})") from None
    tensors = load_file(str(file))
    return [RehearsalPair(contexts[m["context"]], m["student_prefix"], m["teacher_prefix"], m["text"],
                          CompactTeacher(tensors[f"{i}.topk_logp"], tensors[f"{i}.topk_ids"].to(torch.long),
                                         tensors[f"{i}.rest_logp"]), m.get("kind", "pair"))  # stores before kinds
            for i, m in enumerate(pairs)]


def sample_rehearsal(stores: Sequence[Sequence[RehearsalPair] | None], per_context: int, seed: int,
                     step: int, limit: int | None = None, reads: int = 0) -> list[RehearsalPair]:
    """Up to `per_context` kept pairs of every earlier context, drawn with `seed`, the update's `step` and the
    context's text (a fresh sample at each update, the same one on every rerun), then up to `reads` of its kept
    context-read chunks (drawn the same way), in history order; at most `limit` in all (a seeded sample of them,
    still in history order), so a long history (a server that keeps learning, a lifelong run) does not make
    every update train on all of it."""
    out: list[RehearsalPair] = []
    for store in stores:
        by_context: dict[str, list[RehearsalPair]] = {}
        for p in store or []:
            by_context.setdefault(p.context, []).append(p)
        for context, kept in by_context.items():
            pairs = [p for p in kept if p.kind == "pair"]
            chunks = [p for p in kept if p.kind == "read"]
            rng = random.Random(f"{seed}/{step}/{context}")
            out += rng.sample(pairs, min(per_context, len(pairs)))
            if reads and chunks:
                out += random.Random(f"{seed}/{step}/{context}/read").sample(chunks, min(reads, len(chunks)))
    if limit is not None and len(out) > limit:
        keep = sorted(random.Random(f"{seed}/{step}/limit").sample(range(len(out)), limit))
        out = [out[i] for i in keep]
    return out


TokenLogprobs = Callable[[list[str], list[str]], list[torch.Tensor]]


def asked_and_answer(pair: RehearsalPair, answer_after: str) -> tuple[str, str, str]:
    """A stored pair cut where its answer starts: (the student's prompt up to the answer, the teacher's, the
    answer). `answer_after` is what an answer prompt holds after its question (`prompts.after_question`):
    under `kl_span="pair"` the question and that rest of the prompt open `text`, so the answer follows its last
    occurrence there; under "answer" `text` holds no such prompt and is the answer itself."""
    at = pair.text.rfind(answer_after) if answer_after else -1
    cut = at + len(answer_after) if at >= 0 else 0
    return pair.student_prefix + pair.text[:cut], pair.teacher_prefix + pair.text[:cut], pair.text[cut:]


def asks(pair: RehearsalPair, questions: Sequence[str], answer_after: str) -> bool:
    """Whether a stored question-answer pair asks one of `questions`, the whole question: its prompt up to the
    answer (`asked_and_answer`) ends with that question's line (`prompts.question_line`) and `answer_after`, so
    "Who wrote it?" does not match a stored "Who wrote it first?" nor "Tell me: Who wrote it?". A chunk of a context
    read asks nothing."""
    if pair.kind != "pair":
        return False
    asked = asked_and_answer(pair, answer_after)[0]
    return any(asked.endswith(question_line(q) + answer_after) for q in questions)


def superseded(pairs: Sequence[RehearsalPair], context: str, nats: float, token_logprobs: TokenLogprobs,
               answer_after: str) -> list[bool]:
    """Which replayed pairs the new `context` contradicts, so that replaying them would fight the later fact.

    A pair is superseded when (1) its question names an entity that `context` names too (`targets.entities`;
    a cheap lexical screen, so text about other things is never scored) and (2) some token of its stored
    answer is at least `nats` less likely when the model reads `context` before the question than when it
    reads the question alone: the new context speaks against that answer ("Pius III ... pope" once the new
    context says "bishop"). Each pair is cut at its answer with `asked_and_answer(pair, answer_after)`, so
    that only answer tokens are compared, whichever `kl_span` stored it. `token_logprobs(prefixes, texts)`
    gives each text's per-token log-probabilities after its prefix (`generation.target_token_logprobs` on the
    model before the update). A pair of the same context, or whose stored prompt does not hold its context
    verbatim, is kept.
    """
    if nats <= 0:
        raise ValueError(f"superseded: nats must be > 0, got {nats}")
    shared = entities(context)
    cut = [asked_and_answer(p, answer_after) for p in pairs]
    candidates = [i for i, (p, (asked, _, _)) in enumerate(zip(pairs, cut))
                  if shared and p.context.strip() and p.context.strip() != context.strip()
                  and p.context.strip() in p.teacher_prefix and named_in(asked, shared)]
    out = [False] * len(pairs)
    if not candidates:
        return out
    answers = [cut[i][2] for i in candidates]
    with_new = token_logprobs([cut[i][1].replace(pairs[i].context.strip(), context.strip(), 1) for i in candidates],
                              answers)
    alone = token_logprobs([cut[i][0] for i in candidates], answers)
    for i, new, old in zip(candidates, with_new, alone):
        out[i] = bool((new - old).min() <= -nats)
    return out


def check_replayed(encoded: Sequence[Encoded], top_k: int) -> None:
    """Replayed examples must keep their stored teachers (never recomputed by the current model) and stack
    with this update's: the same tokenization and the same top-k."""
    for e in encoded:
        if e.teacher is None:
            raise ValueError("a replayed pair no longer tokenizes as it did at its own injection (another "
                             "tokenizer?): its stored teacher does not line up; set rehearsal to 0")
        if e.teacher.topk_logp.shape[-1] != top_k:
            raise ValueError(f"a replayed pair kept its teacher's top-{e.teacher.topk_logp.shape[-1]} but this "
                             f"update keeps top-{top_k}: use the same train.top_k as the earlier updates")
