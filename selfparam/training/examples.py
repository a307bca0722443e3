"""Training sequences: what the student reads, what the teacher reads, and which tokens are scored.

An `Example` is a piece of text to learn (`text`) after a prefix. For distillation the teacher reads
`teacher_prefix + text` (the context before the sentence) and the student `student_prefix + text`; the
loss compares their next-token distributions at each token of `text`. For plain next-token fine-tuning
(the FT baselines) there is no teacher and the loss is the text's negative log-likelihood.

`text` is tokenized apart from the prefixes, so its token ids are identical in both sequences and the
two distributions line up position by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from transformers import PreTrainedTokenizerBase

from ..prompts import answer_prompt
from ..targets.demonstrations import teacher_prompt
from ..targets.types import TargetSet
from .losses import CompactTeacher


@dataclass(frozen=True)
class Example:
    """One training sequence. `teacher_prefix` None means next-token training on `text`.

    `teacher` holds the teacher's distributions over `text` when they are already known (kept while the
    teacher wrote the answer), so the teacher pass skips this example.
    """

    student_prefix: str
    text: str
    teacher_prefix: str | None = None
    teacher: CompactTeacher | None = None


@dataclass
class Encoded:
    """Token ids of one example and the scored span.

    The scored tokens are the last `n_scored` ids of `student_ids` (and of `teacher_ids`): the text
    tokens that have at least one token before them in the student's sequence.
    """

    student_ids: list[int]
    teacher_ids: list[int] | None
    n_scored: int
    teacher: CompactTeacher | None = None


def encode(tokenizer: PreTrainedTokenizerBase, example: Example, max_length: int) -> Encoded:
    """Tokenize an example; raises ValueError when it does not fit `max_length` tokens."""
    text_ids = tokenizer(example.text, add_special_tokens=False)["input_ids"]
    student_prefix = tokenizer(example.student_prefix, add_special_tokens=False)["input_ids"] \
        if example.student_prefix else []
    n_scored = len(text_ids) if student_prefix else len(text_ids) - 1
    if n_scored < 1:
        raise ValueError(f"nothing to score in example text {example.text[:60]!r}")
    teacher_ids = None
    if example.teacher_prefix is not None:
        teacher_ids = tokenizer(example.teacher_prefix, add_special_tokens=False)["input_ids"] + text_ids
    student_ids = student_prefix + text_ids
    longest = max(len(student_ids), len(teacher_ids or []))
    if longest > max_length:
        raise ValueError(f"a training sequence has {longest} tokens, more than the model's window of "
                         f"{max_length}: shorten the context or split it into several contexts")
    teacher = example.teacher if example.teacher is not None and len(example.teacher) == n_scored else None
    return Encoded(student_ids, teacher_ids, n_scored, teacher)


def context_block(context: str) -> str:
    """How a bare context stands before unrelated text in the teacher's input."""
    return context.strip() + "\n\n"


UNRELATED_TEACHERS = ("context", "base", "original")
KL_SPANS = ("answer", "pair")


def split_at_question(prompt: str, question: str) -> tuple[str, str]:
    """An answer prompt cut just before its question: (what stands before, the question and what follows).

    >>> split_at_question("<u>Ctx\\n\\nQuestion: Who?</u><a>", "Who?")
    ('<u>Ctx\\n\\nQuestion: ', 'Who?</u><a>')
    """
    at = prompt.rfind(question.strip())
    if at < 0:
        raise ValueError(f"the question {question[:60]!r} is not in its answer prompt")
    return prompt[:at], prompt[at:]


def distillation_examples(tokenizer: PreTrainedTokenizerBase, targets: TargetSet,
                          unrelated_teacher: str = "context",
                          written: Mapping[tuple[str, str, str], CompactTeacher] | None = None,
                          kl_span: str = "answer", teacher_shots: int = 0) -> list[Example]:
    """SELF-PARAM's examples for one context: every pair asked with the context in view (teacher) and
    without it (student), and every unrelated sentence read by the student alone.

    `unrelated_teacher` says who teaches the unrelated sentences: "context" (the paper's objective) the
    model reading the context before the sentence; "base" the model reading the sentence alone, i.e. the
    model as it was before this update, a KL anchor that keeps unrelated text unchanged; "original" the
    same examples, to be taught by the model before any update (the caller runs that model as their teacher
    in its teacher pass): an anchor that does not move along a sequence of updates.

    `written` maps (context, question, answer text) to the teacher's distributions kept while it wrote that answer
    (`teacher.teacher_answers`); those pairs need no teacher pass.

    `kl_span` says which tokens of a pair are scored: "answer" the answer alone (after the shared answer
    prompt, what is asked at test time); "pair" the question, the rest of the prompt and the answer (the
    paper's KL over the whole target sentence), so the student also learns what the teacher, context in
    view, expects to be asked. Under "pair" no written distributions apply (they cover the answer alone).

    `teacher_shots`: the teacher reads the context and first that many of its own facts asked and answered with
    their span (`targets.demonstrations.teacher_prompt`); the question is then its last turn, in the student's
    words. 0 = the shared answer prompt with the context (the paper).
    """
    if unrelated_teacher not in UNRELATED_TEACHERS:
        raise ValueError(f"unrelated_teacher: {unrelated_teacher!r} is not one of {', '.join(UNRELATED_TEACHERS)}")
    if kl_span not in KL_SPANS:
        raise ValueError(f"kl_span: {kl_span!r} is not one of {', '.join(KL_SPANS)}")
    eos = tokenizer.eos_token or ""
    examples = []
    for p in targets.pairs:
        answer = p.answer.strip() + eos
        student = answer_prompt(tokenizer, p.question)
        teacher = teacher_prompt(tokenizer, p.question, targets.context, teacher_shots)
        if kl_span == "pair":
            (student, asked), (teacher, asked_too) = split_at_question(student, p.question), \
                split_at_question(teacher, p.question)
            if asked != asked_too:
                raise ValueError(f"the prompts with and without the context differ after the question {p.question!r}")
            examples.append(Example(student_prefix=student, teacher_prefix=teacher, text=asked + answer))
        else:
            examples.append(Example(student_prefix=student, teacher_prefix=teacher, text=answer,
                                    teacher=(written or {}).get((targets.context, p.question, answer))))
    unrelated_prefix = context_block(targets.context) if unrelated_teacher == "context" else ""
    examples += [Example(student_prefix="", teacher_prefix=unrelated_prefix, text=s) for s in targets.unrelated]
    return examples


def context_read_examples(tokenizer: PreTrainedTokenizerBase, context: str, chunk_tokens: int,
                          copies: int) -> list[Example]:
    """The context's own text, cut into chunks of about `chunk_tokens` (as FT(C) cuts it) and each given
    `copies` times, as distillation examples: the teacher reads the whole context and then the chunk, the
    student the chunk alone. The teacher has the text in view and predicts it nearly as written, so the
    student learns to say the context without it, with the teacher's soft labels rather than FT(C)'s one-hot
    ones; beside the pairs this is the mixed training of Physics of LMs 3.1 (the facts stated, and asked)."""
    if copies < 0:
        raise ValueError(f"copies: must be >= 0, got {copies}")
    chunks = context_nwp_examples(tokenizer, context, chunk_tokens) if copies else []
    return [Example(student_prefix="", teacher_prefix=context_block(context), text=c.text)
            for _ in range(copies) for c in chunks]


def target_nwp_examples(tokenizer: PreTrainedTokenizerBase, targets: TargetSet,
                        answers: str = "generator") -> list[Example]:
    """FT(S): next-token training on a target set, answers after their questions, no teacher.

    `answers="generator"` learns the generator's own answers (the paper's FT(S)); "teacher" the answers
    the teacher re-wrote with the context in view (hard-label distillation of that teacher).
    """
    if answers not in ("generator", "teacher"):
        raise ValueError(f"answers: {answers!r} is not 'generator' or 'teacher'")
    eos = tokenizer.eos_token or ""
    examples = [Example(student_prefix=answer_prompt(tokenizer, p.question),
                        text=(p.generators_answer if answers == "generator" else p.answer).strip() + eos)
                for p in targets.pairs]
    examples += [Example(student_prefix="", text=s) for s in targets.unrelated]
    return examples


def repeat_to(examples: list[Example], n: int) -> list[Example]:
    """`examples` cycled in order until there are `n` of them (never fewer than given)."""
    if not examples:
        return []
    return [examples[i % len(examples)] for i in range(max(n, len(examples)))]


def context_nwp_examples(tokenizer: PreTrainedTokenizerBase, context: str, chunk_tokens: int) -> list[Example]:
    """FT(C): next-token training on the context itself, split into chunks of about `chunk_tokens`."""
    ids = tokenizer(context.strip(), add_special_tokens=False)["input_ids"]
    starts = list(range(0, len(ids), chunk_tokens))
    if len(starts) > 1 and len(ids) - starts[-1] < max(2, chunk_tokens // 4):
        starts.pop()  # a short tail (").", one token) has nothing to learn on its own: it ends the chunk before
    bounds = starts[1:] + [len(ids)]
    chunks = [tokenizer.decode(ids[a:b]) for a, b in zip(starts, bounds)]
    return [Example(student_prefix="", text=c) for c in chunks if c.strip()]
