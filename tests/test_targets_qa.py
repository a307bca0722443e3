"""Parsing, rewriting, filtering and de-duplication of generated pairs, on hand-written model output."""

from __future__ import annotations

import pytest

from selfparam.targets.qa import (
    EXAMPLE_CONTEXT,
    EXAMPLE_PAIRS,
    GENERATION_INSTRUCTION,
    RESPONSE_PREFIX,
    FilterConfig,
    generation_user_text,
    lexical_support,
    normalize_question,
    parse_pairs,
    rejection_reason,
    rewrite_question,
    select_pairs,
)
from selfparam.targets.types import QAPair

CTX = ("Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun, "
       "and the shop closes every Tuesday so the bakers can test new recipes.")


def qa(text: str, **kw) -> list[tuple[str, str]]:
    return [(p.question, p.answer) for p in parse_pairs(text, **kw)]


def test_prompt_has_the_papers_instruction_example_and_context():
    text = generation_user_text(CTX)
    assert GENERATION_INSTRUCTION in text and EXAMPLE_CONTEXT in text
    assert "- Question: What feature attracts visitors every year? Answer: The unique sea-glass beach." in text
    assert text.rstrip().endswith(CTX) and len(EXAMPLE_PAIRS) == 5
    assert "at least 50" in generation_user_text(CTX, n=50)
    # the example itself parses back to the paper's five pairs
    assert parse_pairs(text.split(EXAMPLE_CONTEXT)[1].split("Now the real")[0]) == list(EXAMPLE_PAIRS)


def test_parse_dash_question_answer_one_line_with_response_prefix():
    out = RESPONSE_PREFIX + " Who opened the bakery? Answer: Mara Lindqvist.\n- Question: When? Answer: 2019"
    assert qa(out) == [("Who opened the bakery?", "Mara Lindqvist."), ("When?", "2019")]


@pytest.mark.parametrize("text", [
    "* Q: Who opened the bakery?\n  A: Mara Lindqvist.",
    "• Question: Who opened the bakery?\n• Answer: Mara Lindqvist.",
    "1. **Q:** Who opened the bakery? **A:** Mara Lindqvist.",
    "1) **Question:** Who opened the bakery?\n   **Answer:** Mara Lindqvist.",
    "- **Who opened the bakery?** Mara Lindqvist.",
    "- Who opened the bakery? - Mara Lindqvist.",
    "Question 1: Who opened the bakery?\nMara Lindqvist.",
    "Sure! Here are some questions:\n\n- Q: Who opened the bakery?\n\n  A: Mara Lindqvist.\n\nI hope this helps!",
])
def test_parse_bullet_and_label_variants(text):
    assert qa(text) == [("Who opened the bakery?", "Mara Lindqvist.")]


def test_parse_skips_unanswered_questions_and_stops_at_a_new_context():
    text = ("- Question: Where is the bakery?\n- Question: Who opened it? Answer: Mara.\n"
            "Context: A new made-up example\n- Question: What else? Answer: Junk.")
    assert qa(text) == [("Who opened it?", "Mara.")]


def test_parse_truncated_output_drops_the_possibly_cut_last_pair():
    text = "- Q: Who opened it? A: Mara.\n- Q: What is the best seller? A: A cardamom b"
    assert qa(text) == [("Who opened it?", "Mara."), ("What is the best seller?", "A cardamom b")]
    assert qa(text, truncated=True) == [("Who opened it?", "Mara.")]
    assert qa("") == [] and qa("no list here at all") == []


def test_rewrite_strips_according_to_the_passage():
    assert rewrite_question("According to the passage, who opened the bakery?") == "Who opened the bakery?"
    assert rewrite_question("Who opened the bakery, according to the text?") == "Who opened the bakery?"
    assert rewrite_question("Based on the context, when did it open?") == "When did it open?"
    assert rewrite_question("Who opened the bakery?") == "Who opened the bakery?"


@pytest.mark.parametrize("question,answer,reason", [
    ("Can you summarize the passage?", "A bakery opened.", "needs_context"),
    ("Summarise this text in one line.", "Mara Lindqvist bakery.", "needs_context"),
    ("What is the title of the passage?", "Blue Heron bakery", "needs_context"),
    ("What is the main idea?", "Blue Heron bakery", "needs_context"),
    ("What is mentioned in the passage?", "Blue Heron bakery", "needs_context"),
    ("Who opened the bakery?", "", "empty_answer"),
    ("Who opened the bakery?", "The passage does not say.", "non_answer"),
    ("Is the shop closed on Tuesday?", "Yes.", "yes_no"),
    ("Who opened the bakery?", "Jean Dupont from Paris", "no_support"),
    ("What is her favourite ice cream flavour?", "Blue Heron bakery", "off_topic_question"),
    ("Who opened the bakery?", " ".join(["Mara"] * 31), "long_answer"),
    ("What game?", "Mara", "short_question"),
    ("What feature attracts visitors every year?", "The unique sea-glass beach.", "copied_example"),
])
def test_rejection_reasons(question, answer, reason):
    assert rejection_reason(QAPair(question, answer), CTX, FilterConfig()) == reason


def test_good_pairs_pass_and_checks_can_be_disabled():
    config = FilterConfig()
    assert rejection_reason(QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist."), CTX, config) is None
    # stem match
    assert rejection_reason(QAPair("What does the bakery sell most?", "Cardamom buns"), CTX, config) is None
    loose = FilterConfig(drop_yes_no=False, min_support=0.0, min_question_support=0.0)
    assert rejection_reason(QAPair("Is the shop closed on Tuesday?", "Yes."), CTX, loose) is None
    with pytest.raises(ValueError, match="min_support"):
        FilterConfig(min_support=1.5)


def test_lexical_support_and_normalisation():
    assert lexical_support("The Blue Heron", CTX) == 1.0
    assert lexical_support("Blue Heron ice cream", CTX) == 0.5
    assert lexical_support("It is.", CTX) == 0.0
    assert normalize_question("  What is THE best-seller?? ") == normalize_question("what is best seller")


def test_select_pairs_rewrites_dedupes_and_counts_drops():
    raw = [QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist."),
           QAPair("According to the passage, who opened the Blue Heron bakery?", "Mara Lindqvist"),
           QAPair("WHO opened the blue heron bakery", "Mara"),
           QAPair("Summarize the context.", "A bakery."),
           QAPair("When did the bakery open?", "In 2019."),
           QAPair("Is it closed on Tuesday?", "No")]
    kept, dropped = select_pairs(raw, CTX)
    assert kept == [QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist."),
                    QAPair("When did the bakery open?", "In 2019.")]
    assert dropped == {"duplicate": 2, "needs_context": 1, "yes_no": 1}


def test_complete_lines_list_ended_and_trailing_unusable():
    from selfparam.targets.qa import complete_lines, list_ended, trailing_unusable

    assert complete_lines("- Question: A? Answer: B.\n- Question: C") == "- Question: A? Answer: B.\n"
    assert complete_lines("no line break yet") == ""
    assert list_ended("- Q: A? A: B.\n**Context:** another one") and not list_ended("- Q: What context? A: B.")
    ctx = "Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019."
    good = QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist.")
    copy = QAPair("What feature attracts visitors every year?", "The unique sea-glass beach.")
    off = QAPair("What is the capital of Peru and its river?", "Lima.")
    assert trailing_unusable([], ctx) == 0 and trailing_unusable([good], ctx) == 0
    assert trailing_unusable([good, copy, off], ctx) == 2
    assert trailing_unusable([copy, good, good], ctx) == 1  # the repeat of a question counts as unusable
