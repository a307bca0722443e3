"""The question-answer half of the target set: the paper's prompt, parsing, cleaning, filtering, de-duplication.

Everything here is a pure function of strings, so each rule is tested on hand-written model output.

The prompt is the paper's (appendix A.3): the instruction "Given a context, please generate related
questions and answers as comprehensively as possible, as a bulleted list" and its worked example (a
seaside town with a sea-glass beach, 5 pairs). The example is written in one fixed bullet format
(`- Question: ... Answer: ...`) because a small model imitates the format it is shown; the parser still
accepts the other formats instruct models like to use.

Filtering follows §3.3.3 (hallucination mitigation), with these decisions:
- "According to the passage, who ...?" is *rewritten* (the phrase stripped): the fact asked about stands
  without the text, and the paper's teacher still sees x when it scores the answer.
- Questions that only make sense with the text in view (summarise it, its title, its main idea, "in the
  passage", "the author", "this text") are *dropped*: no rewrite makes them answerable without x.
- Bare "yes"/"no" answers are dropped by default: they carry none of the context's facts.
- Answers whose content words do not appear in the context ("no lexical support") are dropped by
  default. On SmolLM2-135M the generator often answers from its own knowledge or copies the worked
  example; training the student to say those things would inject hallucinations, which is exactly what
  §3.3.3 warns against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .types import QAPair

GENERATION_INSTRUCTION = (
    "Given a context, please generate related questions and answers as comprehensively as possible, "
    "as a bulleted list."
)
EXAMPLE_CONTEXT = (
    "A small seaside town is famous for its colorful sea-glass beach and hosts an annual art and "
    "environmental festival celebrating this unique feature."
)
EXAMPLE_PAIRS: tuple[QAPair, ...] = (
    QAPair("What feature attracts visitors every year?", "The unique sea-glass beach."),
    QAPair("What does the town's annual festival celebrate?", "The natural phenomenon of sea glass."),
    QAPair("What activities are held at the festival?",
           "Glass art exhibitions, environmental workshops and local music performances."),
    QAPair("What is the purpose of the workshops at the festival?", "To raise visitors' environmental awareness."),
    QAPair("How does the festival affect the local economy?", "It boosts local business by attracting tourists."),
)
# The assistant turn is opened with this text so even a 135M model starts in the example's format;
# `parse_pairs` is given the completion with this prefix put back in front of it.
RESPONSE_PREFIX = "- Question:"


def format_pair(pair: QAPair) -> str:
    """One bullet in the format the prompt teaches: `- Question: ... Answer: ...`."""
    return f"- Question: {pair.question} Answer: {pair.answer}"


def generation_user_text(context: str, n: int | None = None) -> str:
    """The user turn asking for pairs about `context`; `n` adds how many to write (for capable models)."""
    example = "\n".join(format_pair(p) for p in EXAMPLE_PAIRS)
    ask = f"\nWrite at least {n} question-answer pairs." if n else ""
    return (f"{GENERATION_INSTRUCTION}\n\nExample:\nContext: {EXAMPLE_CONTEXT}\n{example}\n\n"
            f"Now the real context.\nContext: {context.strip()}{ask}")


# ---------------------------------------------------------------------------------------------- parsing

_BULLET = re.compile(r"^\s*(?:[-*•‣◦·–—+]|\(?\d{1,3}[.)]|\(?[a-z][.)](?=\s))\s*")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_Q_LABEL = re.compile(r"^(?:q|question)\s*\d{0,3}\s*[:：]\s*", re.IGNORECASE)
_A_LABEL = re.compile(r"^(?:a|answer)\s*\d{0,3}\s*[:：]\s*", re.IGNORECASE)
_INLINE_A_LABEL = re.compile(r"\s(?:a|answer)\s*\d{0,3}\s*[:：]\s*", re.IGNORECASE)
# A line starting like this means the model has moved on (a new example, a note): stop reading.
_STOP = re.compile(r"^(?:context|example|note|passage|text)\s*[:：]", re.IGNORECASE)


def _strip_line(line: str) -> str:
    """Drop markdown emphasis and a leading bullet or number; what is left is the line's text."""
    text = _EMPHASIS.sub("", line).strip()
    previous = None
    while previous != text:  # "- 1. Q: ..." has two bullet markers
        previous, text = text, _BULLET.sub("", text, count=1).strip()
    return text


def _clean_field(text: str) -> str:
    """Trim whitespace, stray separators and unbalanced quotes around a question or an answer."""
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip(" -–—|:;\"'“”")
    return text.strip()


def _split_inline(text: str) -> tuple[str, str | None]:
    """'What ...? Answer: X' -> ('What ...?', 'X'); also 'What ...? X' when the question ends with '?'."""
    labelled = _INLINE_A_LABEL.search(text)
    if labelled:
        return text[:labelled.start()], text[labelled.end():]
    mark = text.find("?")
    if 0 < mark < len(text) - 1:
        rest = text[mark + 1:].strip()
        if rest:
            return text[:mark + 1], rest.lstrip("-–—:→=> ")
    return text, None


def parse_pairs(text: str, truncated: bool = False) -> list[QAPair]:
    """Question-answer pairs from an instruct model's bulleted list, in order.

    Accepts bullets (`-`, `*`, `•`, `1.`, `1)`), `Q:`/`A:` or `Question:`/`Answer:` labels on one line or
    two, bold markdown, and unlabelled "question? answer" lines. A question with no answer is skipped;
    lines that are neither (preambles, closing remarks) are ignored; a line such as `Context:` ends the
    list (the model has started another example). With `truncated` (the generation hit its token limit)
    the last pair is dropped, since its answer may be cut mid-sentence.

    >>> parse_pairs("1. **Q:** Who wrote it? **A:** Ann.")
    [QAPair(question='Who wrote it?', answer='Ann.', generator_answer=None)]
    """
    pairs: list[QAPair] = []
    pending: str | None = None  # a question whose answer is expected on a later line

    def emit(question: str, answer: str) -> None:
        q, a = _clean_field(question), _clean_field(answer)
        if q and a:
            pairs.append(QAPair(q, a))

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = _strip_line(raw)
        if not line:
            continue
        if _STOP.match(line):
            break
        if _Q_LABEL.match(line):
            question, answer = _split_inline(_Q_LABEL.sub("", line, count=1))
            pending = None
            if answer is None:
                pending = question
            else:
                emit(question, answer)
        elif _A_LABEL.match(line):
            if pending is not None:
                emit(pending, _A_LABEL.sub("", line, count=1))
                pending = None
        elif pending is not None and not line.endswith("?"):
            emit(pending, line)  # "Question: X" then an unlabelled answer line
            pending = None
        elif "?" in line:
            question, answer = _split_inline(line)
            if answer is None:
                pending = question
            else:
                emit(question, answer)
    if truncated and pairs:
        pairs.pop()
    return pairs


def complete_lines(text: str) -> str:
    """The part of a completion still being written that is finished: everything up to its last line break."""
    return text[:text.rfind("\n") + 1]


def list_ended(text: str) -> bool:
    """Whether a line of `text` ends the list for `parse_pairs` (`Context:`, `Example:`...: the model has moved
    on), so nothing written after it can become a pair."""
    return any(_STOP.match(_strip_line(line)) for line in text.split("\n"))


# -------------------------------------------------------------------------------- normalising, support

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her him we our you your i me my not no yes do does did "
    "has have had will would can could should may might must shall which who whom whose what when where why "
    "how than then so such into about over under after before during while also very more most some any all "
    "each both other only same just up out if because through between s".split()
)


def normalize_question(question: str) -> str:
    """The key two questions are duplicates under: lower case, no punctuation or articles, single spaces.

    >>> normalize_question("What is the Capital of France?")
    'what is capital of france'
    """
    text = re.sub(r"[^\w\s]", " ", question.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def content_words(text: str) -> list[str]:
    """Lower-cased words of `text` minus stop words: what an answer actually claims."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def _stem(word: str) -> str:
    """A crude stem (the first 5 letters) so 'celebrates' is supported by 'celebrating'."""
    return word if word.isdigit() else word[:5]


def lexical_support(text: str, context: str) -> float:
    """Share of the content words of `text` (an answer or a question) found in the context, by crude stem.

    0 when `text` has no content words at all ("It is.").

    >>> lexical_support("The sea-glass beach", "famous for its colorful sea-glass beach")
    1.0
    """
    words = content_words(text)
    if not words:
        return 0.0
    stems = {_stem(w) for w in content_words(context)}
    return sum(_stem(w) in stems for w in words) / len(words)


# ------------------------------------------------------------------------------------------- filtering

_TEXT_NOUN = r"(?:passage|text|context|article|paragraph|excerpt|document|story|extract|reading)"
# Phrases that are stripped (the fact stands without them).
_REWRITES = (
    re.compile(rf"^\s*(?:according to|based on|as (?:stated|mentioned|described) in|from) "
               rf"(?:the|this) {_TEXT_NOUN}\s*,?\s*",
               re.IGNORECASE),
    re.compile(rf",?\s*(?:according to|based on|as (?:stated|mentioned|described) in) "
               rf"(?:the|this) {_TEXT_NOUN}(?=\s*\??\s*$)",
               re.IGNORECASE),
)
# Questions that need the text in view.
_NEEDS_TEXT = re.compile(
    rf"\bsummari[sz]e\b|\bsummary\b|\btitle (?:of|for) (?:the|this) {_TEXT_NOUN}\b|^\s*what is the title\s*\??\s*$"
    rf"|\bmain (?:idea|point|topic|theme|message|purpose)\b"
    rf"|\b(?:the|this|that|given) (?:passage|context|paragraph|excerpt)\b"
    rf"|\b(?:this|given) {_TEXT_NOUN}\b|\bthe author\b"
    rf"|\bthe writer\b|\bmentioned above\b|\bgiven (?:above|below)\b",
    re.IGNORECASE,
)
# Answers that say the text does not tell.
_NON_ANSWER = re.compile(
    rf"\b(?:not (?:mentioned|stated|specified|provided|given|clear)|no information|does not (?:say|mention|specify)"
    rf"|doesn't (?:say|mention|specify)|unknown|n/a)\b|\bthe {_TEXT_NOUN}\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(r"^\s*(?:yes|no)\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FilterConfig:
    """Which generated pairs are kept (see the module docstring for why each rule exists)."""

    max_question_words: int = field(default=40, metadata={"help": "longer questions are dropped (runaway generations)"})
    max_answer_words: int = field(default=30, metadata={"help": "longer answers are dropped (lists, rambling)"})
    drop_yes_no: bool = field(default=True, metadata={"help": "drop bare yes/no answers"})
    min_support: float = field(default=0.5, metadata={
        "help": "minimum share of the answer's content words found in the context; 0 disables the check"})
    min_question_support: float = field(default=0.34, metadata={
        "help": "minimum share of the question's content words found in the context (drops questions about "
                "things the context never mentions); 0 disables the check"})

    def __post_init__(self) -> None:
        if self.max_question_words < 1:
            raise ValueError(f"max_question_words must be >= 1, got {self.max_question_words}")
        if self.max_answer_words < 1:
            raise ValueError(f"max_answer_words must be >= 1, got {self.max_answer_words}")
        for name in ("min_support", "min_question_support"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def rewrite_question(question: str) -> str:
    """Strip "according to the passage"-style phrases and re-capitalise; other questions are unchanged.

    >>> rewrite_question("According to the passage, who founded the town?")
    'Who founded the town?'
    """
    text = question
    for pattern in _REWRITES:
        text = pattern.sub("", text)
    text = text.strip()
    if text and text != question and not text.endswith("?") and question.rstrip().endswith("?"):
        text += "?"
    return text[:1].upper() + text[1:] if text else text


_EXAMPLE_KEYS = frozenset(normalize_question(p.question) for p in EXAMPLE_PAIRS)


def rejection_reason(pair: QAPair, context: str, config: FilterConfig) -> str | None:
    """Why `pair` is not a usable target (a short reason name), or None to keep it."""
    question, answer = pair.question.strip(), pair.answer.strip()
    if not question or len(content_words(question)) == 0:
        return "empty_question"
    if not answer:
        return "empty_answer"
    if normalize_question(question) in _EXAMPLE_KEYS:
        return "copied_example"
    if len(question.split()) < 3:
        return "short_question"  # "What game?": too vague to teach anything
    if len(question.split()) > config.max_question_words:
        return "long_question"
    if len(answer.split()) > config.max_answer_words:
        return "long_answer"
    if _NEEDS_TEXT.search(question):
        return "needs_context"
    if _NON_ANSWER.search(answer):
        return "non_answer"
    if config.drop_yes_no and _YES_NO.match(answer):
        return "yes_no"
    if config.min_support > 0 and lexical_support(answer, context) < config.min_support:
        return "no_support"
    if config.min_question_support > 0 and lexical_support(question, context) < config.min_question_support:
        return "off_topic_question"
    return None


def trailing_unusable(pairs: list[QAPair], context: str, config: FilterConfig | None = None) -> int:
    """How many pairs at the end of `pairs` (one completion's, in order) are unusable, as `select_pairs`
    judges them: rejected by the filters, or asking again a question kept earlier in the list. A completion
    whose last few pairs are all unusable has drifted (copying the prompt's example, looping, off the
    context's topic) and rarely recovers.

    >>> trailing_unusable([QAPair("Who founded Rome?", "Romulus."), QAPair("Who founded Rome?", "Remus.")],
    ...                   "Romulus founded Rome.")
    1
    """
    count = 0
    for _, reason in reversed(_verdicts(pairs, context, config or FilterConfig())):
        if reason is None:
            break
        count += 1
    return count


def _verdicts(pairs: list[QAPair], context: str, config: FilterConfig) -> list[tuple[QAPair, str | None]]:
    """Each pair rewritten, with why it is not kept (a `rejection_reason`, or `duplicate` for a question
    already kept earlier in the list), or None to keep it."""
    out: list[tuple[QAPair, str | None]] = []
    seen: set[str] = set()
    for pair in pairs:
        pair = QAPair(rewrite_question(pair.question), pair.answer.strip())
        reason = rejection_reason(pair, context, config)
        key = normalize_question(pair.question)
        if reason is None and key in seen:
            reason = "duplicate"
        if reason is None:
            seen.add(key)
        out.append((pair, reason))
    return out


def select_pairs(pairs: list[QAPair], context: str, config: FilterConfig | None = None
                 ) -> tuple[list[QAPair], dict[str, int]]:
    """Rewrite, filter and de-duplicate raw pairs, keeping the first of each question.

    Returns the kept pairs in order and how many were dropped per reason (`duplicate` included).
    """
    kept: list[QAPair] = []
    dropped: dict[str, int] = {}
    for pair, reason in _verdicts(pairs, context, config or FilterConfig()):
        if reason is None:
            kept.append(pair)
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    return kept, dropped
