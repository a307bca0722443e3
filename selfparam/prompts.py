"""The one answer prompt every method uses, so that methods differ only in what they know.

A question is asked as a single chat turn. With a context (the in-context upper bound, RAG, and the
SELF-PARAM teacher), the context stands before the question in the same turn; without one, the turn is
the question alone. SELF-PARAM trains on exactly these two renderings of each generated question, so the
injected model is asked in the same words at test time as it was trained on. SELF-PARAM's teacher may
also be shown a few worked examples first (`answer_prompt_after_examples`, `teacher_shots`): the question
is then the last turn of a conversation about the context, asked in the same words.
"""

from __future__ import annotations

from typing import Sequence

from transformers import PreTrainedTokenizerBase

ANSWER_INSTRUCTION = "Answer the question with a short phrase."


def question_line(question: str) -> str:
    """The line of a user message that asks the question: every question turn ends with it."""
    return f"Question: {question.strip()}"


def question_turn(question: str, context: str | None = None) -> str:
    """The user message for a question, with the context before it when one is given."""
    if context:
        return f"{context.strip()}\n\n{ANSWER_INSTRUCTION}\n{question_line(question)}"
    return f"{ANSWER_INSTRUCTION}\n{question_line(question)}"


def chat_prompt(tokenizer: PreTrainedTokenizerBase, user: str) -> str:
    """Render one user turn and open the assistant turn, with the model's chat template when it has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                             add_generation_prompt=True)
    return f"{user}\nAnswer:"


def answer_prompt(tokenizer: PreTrainedTokenizerBase, question: str, context: str | None = None) -> str:
    """The full prompt text for answering `question`, optionally with `context` in view."""
    return chat_prompt(tokenizer, question_turn(question, context))


def answer_prompt_after_examples(tokenizer: PreTrainedTokenizerBase, question: str, context: str,
                                 examples: Sequence[tuple[str, str]]) -> str:
    """`question` asked at the end of a worked conversation about `context`: the first user turn holds the
    context and the first example's question, the assistant answers it, each later example is asked (without
    the context again) and answered in turn, then `question` is asked alone. The last turn is the one the
    model without the context is asked (`answer_prompt(tokenizer, question)` ends with the same words), so
    a question and what follows it read the same in both. No examples: `answer_prompt(tokenizer, question,
    context)`."""
    if not examples:
        return answer_prompt(tokenizer, question, context)
    turns = [(question_turn(q, context if i == 0 else None), a.strip()) for i, (q, a) in enumerate(examples)]
    last = question_turn(question)
    if getattr(tokenizer, "chat_template", None):
        messages = [m for user, answer in turns
                    for m in ({"role": "user", "content": user}, {"role": "assistant", "content": answer})]
        return tokenizer.apply_chat_template(messages + [{"role": "user", "content": last}], tokenize=False,
                                             add_generation_prompt=True)
    return "".join(f"{user}\nAnswer: {answer}\n\n" for user, answer in turns) + chat_prompt(tokenizer, last)


def after_question(tokenizer: PreTrainedTokenizerBase) -> str:
    """What an answer prompt holds after its question, up to where the answer starts (the end of the user turn
    and the opening of the assistant turn): where a stored question-and-answer text splits into the two."""
    question = "Is it?"
    prompt = answer_prompt(tokenizer, question)
    return prompt[prompt.rfind(question) + len(question):]


def answer_suffix(tokenizer: PreTrainedTokenizerBase) -> str:
    """What closes an assistant answer in the chat format (the EOS/end-of-turn token)."""
    return tokenizer.eos_token or ""
