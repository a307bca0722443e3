"""Worked examples for SELF-PARAM's teacher: the context's own clozes, and the prompt they lead to."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from selfparam.prompts import answer_prompt, answer_prompt_after_examples
from selfparam.targets.demonstrations import context_demonstrations, teacher_prompt
from selfparam.targets.fact_questions import cloze_question
from selfparam.targets.facts import context_sentences, extract_facts
from selfparam.testing import byte_tokenizer

CTX = ("Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun. "
       "Dr. Lindqvist trained in Paris for 3 years. However, the bakery closes every August.")


def test_demonstrations_are_the_contexts_own_first_clozes_in_reading_order():
    shown = context_demonstrations(CTX, 3)
    clozes = [(cloze_question(f), f.answer) for f in extract_facts(CTX) if cloze_question(f)]
    assert len(clozes) > 3 and list(shown) == clozes[:3]
    sentences = context_sentences(CTX)
    for question, span in shown:
        assert span not in question and any(span in s for s in sentences)
    assert context_demonstrations(CTX, 0) == ()
    assert list(context_demonstrations(CTX, 50)) == clozes  # no more than the context gives
    with pytest.raises(ValueError, match="k"):
        context_demonstrations(CTX, -1)


def test_the_teachers_last_turn_is_the_students_prompt_and_no_shots_is_the_shared_prompt():
    tok = byte_tokenizer()
    q = "Where did Dr. Lindqvist train?"
    prompt = teacher_prompt(tok, q, CTX, 2)
    student = answer_prompt(tok, q)
    (q1, a1), (q2, a2) = context_demonstrations(CTX, 2)
    # the context once, in the first turn; each example answered with its span; the question asked last, alone
    assert prompt.count(CTX) == 1 and prompt.index(CTX) < prompt.index(q1) < prompt.index(a1, prompt.index(q1)) \
        < prompt.index(q2) < prompt.rindex(q)
    tail = student[student.rindex("Answer the question"):]
    assert prompt.endswith(tail) and not tail.count(CTX)
    assert teacher_prompt(tok, q, CTX, 0) == answer_prompt(tok, q, CTX)
    assert teacher_prompt(tok, q, None, 3) == teacher_prompt(tok, q, "", 3) == student  # no context: nothing shown
    assert answer_prompt_after_examples(tok, q, CTX, []) == answer_prompt(tok, q, CTX)


def test_a_tokenizer_without_a_chat_template_gets_the_same_conversation_in_plain_text():
    plain = SimpleNamespace(chat_template=None)
    prompt = answer_prompt_after_examples(plain, "Who?", "Ann came.", [("Ann did what?", "came")])
    assert prompt == ("Ann came.\n\nAnswer the question with a short phrase.\nQuestion: Ann did what?\nAnswer: came\n\n"
                      "Answer the question with a short phrase.\nQuestion: Who?\nAnswer:")
    assert prompt.endswith(answer_prompt(plain, "Who?"))
