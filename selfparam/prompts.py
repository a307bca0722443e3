"""The one answer prompt every method uses, so that methods differ only in what they know.

A question is asked as a single chat turn. With a context (the in-context upper bound, RAG, and the
SELF-PARAM teacher), the context stands before the question in the same turn; without one, the turn is
the question alone. SELF-PARAM trains on exactly these two renderings of each generated question, so the
injected model is asked in the same words at test time as it was trained on.
"""

from __future__ import annotations

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


def after_question(tokenizer: PreTrainedTokenizerBase) -> str:
    """What an answer prompt holds after its question, up to where the answer starts (the end of the user turn
    and the opening of the assistant turn): where a stored question-and-answer text splits into the two."""
    question = "Is it?"
    prompt = answer_prompt(tokenizer, question)
    return prompt[prompt.rfind(question) + len(question):]


def answer_suffix(tokenizer: PreTrainedTokenizerBase) -> str:
    """What closes an assistant answer in the chat format (the EOS/end-of-turn token)."""
    return tokenizer.eos_token or ""
