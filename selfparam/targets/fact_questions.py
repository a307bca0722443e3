"""Fact-covering target sets: one question per answer span of every sentence, written by the model.

A small model asked for free questions about a whole paragraph mostly misses its facts ("What is the
Sun's mass?" for a paragraph on the gravitational constant). Answer-aware generation suits it better:
`extract_facts` picks the answer spans of each sentence first (names, numbers, dates, definitions,
objects), then the model is shown the sentence (with the one before it, so "it" can be resolved) and the
span, and asked for a self-contained question whose answer is that span — several phrasings per fact (Physics of
LMs 3.1: facts seen in one phrasing only are stored but not extractable).

SmolLM2-135M does not follow that request well: for Warsaw's paragraph it wrote "When did Frédéric
Chopin move to Warsaw?" for the span "60 km" (docs/benchmarks.md). So the first phrasing of every fact
is a *cloze question* built by rule — the sentence with the span replaced by a wh-phrase ("Maria
Skłodowska-Curie was the first female recipient of what?"), exact by construction — and the model's
phrasings are kept only when the teacher (the model with the whole context in view) answers them with
the span. The target answer is the teacher's answer where it gives the span (`holds_span`), else the span.

The phrasings of many facts are sampled in one batch (`generation.sample_each`), each row stopping at its
first '?' (`PHRASING_ROWS`: 16 facts x 2 phrasings in 11 s, against 27 s one fact at a time).
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from ..generation import generate, sample_each
from ..lm import LM
from ..prompts import answer_prompt, chat_prompt
from .config import FACT_PRONOUNS, FACT_SPANS
from .facts import Fact, context_sentences, extract_facts, opening_names
from .qa import FilterConfig, normalize_question, select_pairs
from .types import GeneratorError, QAPair

FACT_INSTRUCTION = (
    "Write one question whose answer is the given answer, using the given text. The question must make sense "
    "on its own: name the people, places and things it is about, and never say \"the passage\", \"the text\" "
    "or \"the sentence\"."
)
FACT_EXAMPLE = ("Quenby is a harbour town on Varnholm. Its Zorblat Festival was founded in 1987 by a fisherwoman "
                "named Edda Lunsk.", "1987", "In what year was the Zorblat Festival of Quenby founded?")
RESPONSE_PREFIX = "Question:"
PHRASING_ROWS = 32
"""Rows of one batch of the model's phrasings: the facts of a round are sampled together, each row to its first
'?'. On the embedded model and a 2-core Xeon, 16 facts x 2 phrasings took 11 s in batches of 32 rows (12 s in 16)
against 27 s one fact at a time on its cached prompt (docs/benchmarks.md)."""
# A question that leans on a word only the text in view resolves ("When was it founded?").
_PRONOUN = re.compile(r"\b(?:it|its|he|she|his|her|hers|they|their|them|this|these|those|there)\b", re.IGNORECASE)


def fact_user_text(window: str, answer: str) -> str:
    """The user turn asking for a question about `window` whose answer is `answer`."""
    text, ans, question = FACT_EXAMPLE
    return (f"{FACT_INSTRUCTION}\n\nExample:\nText: {text}\nAnswer: {ans}\nQuestion: {question}\n\n"
            f"Text: {window.strip()}\nAnswer: {answer.strip()}")


def first_question(completion: str) -> str:
    """The question a completion starts with: its first line, up to and including the first '?'."""
    line = completion.strip().split("\n", 1)[0].strip()
    mark = line.find("?")
    return line[:mark + 1].strip() if mark >= 0 else ""


def _unresolved_pronoun(question: str) -> bool:
    """A pronoun with no name before it in the question ("When was it founded?"); one after a name refers
    to it ("Though Chopin was born in Żelazowa Wola, when did he move?")."""
    pronoun = _PRONOUN.search(question)
    if pronoun is None:
        return False
    words_before = question[:pronoun.start()].split()[1:]  # the first word is capitalised anyway
    return not any(w[:1].isupper() for w in words_before)


# The pronouns a cloze may name, and what they stand for: a person's name or a thing's (a one-word name may be either).
_NAMEABLE = {"it": "thing", "its": "thing", "he": "person", "she": "person", "his": "person"}


def _kind_fits(name: str, kind: str) -> bool:
    """Whether `name` may stand for a pronoun of `kind`: two or three capitalised words without a word of an
    institution or place ("Mara Lindqvist") name a person, a name with such a word or an article a thing, and one
    word either ("Fresno ... It", "Chopin ... He")."""
    words = name.split()
    if len(words) == 1:
        return True
    person = (name[:1].isupper() and len(words) <= 3 and all(w[:1].isupper() for w in words)
              and not _NAME_WORDS.search(name))
    return person == (kind == "person")


# "there" that only says something exists ("There were how many ..."): it stands for nothing.
_EXISTENTIAL = re.compile(r"there (?:is|are|was|were|has been|have been|had been)\b", re.IGNORECASE)
# Words that ask for what a later pronoun of that kind stands for ("Who won in his first season?").
_WH_OF_KIND = {"person": ("who", "whom", "whose"), "thing": ("what", "which")}


def _antecedent_before(before: str, kind: str, opening: str | None) -> bool:
    """Whether the words before a pronoun of `kind` give what it stands for: the name its sentence opens with
    (`opening`; "CBS broadcast its shows when?": `_unresolved_pronoun` does not look at the first word), or a wh-word
    of its kind that asks for it ("What broadcast its shows?", "Who won in his first season?")."""
    if opening and before.startswith(opening[:1].upper() + opening[1:]):
        return True
    words = [w.strip(".,;:'’\"“”()").lower() for w in before.split()] + [""]
    # a cloze's "what year", "what date", "what percentage" (`_wh_phrase`) asks for a figure, not the pronoun's thing
    return any(w in _WH_OF_KIND[kind] and nxt not in ("year", "date", "percentage") for w, nxt in zip(words, words[1:]))


def name_pronoun(question: str, openings: list[str | None], index: int) -> str | None:
    """A cloze whose first pronoun has no name after the first word before it, made to say what the pronoun stands
    for: kept as it is when the words before it give that (`_antecedent_before`: "CBS broadcast its shows when?",
    where the sentence opens with CBS; "Who won in his first season?"); else asked with the nearest name a sentence
    opens with, this fact's sentence (index) or an earlier one (`facts.opening_names`), that fits the pronoun ("it":
    a thing, "he": a person), with "its"/"his" as the name's genitive ("It lies how many km from Warsaw?": "Fresno
    lies ..."). None when the pronoun is not one of it/its/he/she/his or no name fits; the question itself when it
    has no unresolved pronoun (an existential "there" is none).

    >>> name_pronoun("It lies how many km from Warsaw?", ["Fresno", None], 1)
    'Fresno lies how many km from Warsaw?'
    >>> name_pronoun("Its best seller is what?", ["Mara Lindqvist", None], 1) is None  # a person is not an "it"
    True
    """
    if not _unresolved_pronoun(question):
        return question
    pronoun = _PRONOUN.search(question)
    if _EXISTENTIAL.match(question, pronoun.start()):  # "There were how many casualties in the Battle of Wagram?"
        return question
    kind = _NAMEABLE.get(pronoun.group().lower())
    if kind is None:
        return None
    if _antecedent_before(question[:pronoun.start()], kind, openings[index]):
        return question
    name = next((n for n in reversed(openings[:index + 1]) if n and _kind_fits(n, kind)), None)
    if name is None:
        return None
    if pronoun.start() == 0:
        name = name[:1].upper() + name[1:]
    named = question[:pronoun.start()] + name + ("'s" if pronoun.group().lower() in ("its", "his") else "")
    return named + question[pronoun.end():]


def question_problem(question: str, answer: str, pronoun_checked: bool = False) -> str | None:
    """Why a question written for `answer` is unusable (a short reason name), or None (`pronoun_checked`: its
    pronouns are known to be resolved, by `name_pronoun`).

    >>> question_problem("When was it founded?", "1987")
    'pronoun'
    """
    if not question:
        return "no_question"
    if not pronoun_checked and _unresolved_pronoun(question):
        return "pronoun"
    if normalize_question(answer) and normalize_question(answer) in normalize_question(question):
        return "answer_in_question"
    return None


SPAN_SLACK = 6
"""Words an answer may have beyond its span and still give it (`holds_span`)."""


def holds_span(answer: str, span: str, slack: int = SPAN_SLACK) -> bool:
    """Whether a teacher's answer gives the span: it contains it and is at most `slack` words longer (a long
    answer that merely mentions the span, "Władysław Szpilman, a Polish general ..." for "Polish", does not).

    >>> holds_span("In 1745.", "1745"), holds_span("He was a Polish general born in Warsaw in 1745 or so", "Polish")
    (True, False)
    """
    return (bool(normalize_question(span)) and normalize_question(span) in normalize_question(answer)
            and len(answer.split()) <= len(span.split()) + slack)


_NAME_WORDS = re.compile(r"\b(?:University|College|School|War|Prize|Award|Stadium|League|Conference|Company|"
                         r"Church|River|Mountains?|Island|Ocean|Sea|Bay|Area|Park|Street|City|County|State|Republic|"
                         r"Kingdom|Empire|Party|Museum|Bowl|Cup|Act|Treaty|Festival)\b")


def _wh_phrase(span: str, at_start: bool) -> str:
    """The wh-phrase a span is asked with: year, date, amount, person or thing."""
    if re.fullmatch(r"\d{3,4}", span):
        return "what year"
    if re.search(r"[A-Za-z]+\.? \d", span) and re.search(r"\d{3,4}$", span):
        return "what date"
    if span.endswith("%") or "percent" in span:
        return "what percentage"
    amount = re.fullmatch(r"(?:\d[\d,.]*|[a-z]+) ([A-Za-z]+)", span)
    if amount and span[0].isdigit():
        return f"how many {amount.group(1)}"
    words = span.split()
    if at_start and 2 <= len(words) <= 3 and all(w[:1].isupper() for w in words) and not _NAME_WORDS.search(span):
        return "who"
    return "what"


CLOZE_MAX_WORDS = 30
"""A cloze question of a longer sentence asks the span's clause (or the words around the span) instead: the
whole sentence would exceed the filter's question length (FilterConfig.max_question_words, 40), and a
paragraph of one long sentence would give no usable pair at all."""
_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:()\u2013\u2014]|\s-\s)\s*")


def _near_span(sentence: str, start: int, end: int, max_words: int) -> tuple[str, int, int]:
    """The part of `sentence` a cloze asks when the whole is longer than `max_words` words: the clause holding
    the span [start, end) (cut at commas, semicolons, colons, brackets and dashes), or, where that clause is
    still too long or under four words, the words around the span. Returns it with the span's new offsets."""
    if len(sentence.split()) <= max_words:
        return sentence, start, end
    breaks = list(_CLAUSE_BREAK.finditer(sentence))
    left = max((m.end() for m in breaks if m.end() <= start), default=0)
    right = min((m.start() for m in breaks if m.start() >= end), default=len(sentence))
    if 4 <= len(sentence[left:right].split()) <= max_words:
        return sentence[left:right], start - left, end - left
    side = max(2, (max_words - len(sentence[start:end].split())) // 2)
    words_before = [m.start() for m in re.finditer(r"\S+", sentence[:start])]
    words_after = [m.end() for m in re.finditer(r"\S+", sentence[end:])]
    first = words_before[-side] if len(words_before) >= side else 0
    last = end + words_after[side - 1] if len(words_after) >= side else len(sentence)
    return sentence[first:last], start - first, end - first


def cloze_question(fact: Fact, max_words: int = CLOZE_MAX_WORDS) -> str | None:
    """The fact's sentence asked as a question: the span replaced by a wh-phrase (None if the span is the
    whole sentence). Clumsy at times, but its answer is the span by construction. A sentence longer than
    `max_words` words is asked by the span's clause, or the words around it (`_near_span`).

    >>> cloze_question(Fact(0, "Casimir Pulaski was born in Warsaw in 1745.", "1745"))
    'Casimir Pulaski was born in Warsaw in what year?'
    """
    sentence = fact.sentence.strip()
    found = re.search(rf"(?<!\w){re.escape(fact.answer)}(?!\w)", sentence)  # "O", not the O of "Oxygen"
    if found is None:
        return None
    sentence, start, end = _near_span(sentence, found.start(), found.end(), max_words)
    before, after = sentence[:start], sentence[end:]
    question = (before + _wh_phrase(fact.answer, start == 0) + after).strip().rstrip(".!?;:, ") + "?"
    if not re.search(r"[A-Za-z]{3,}", before + after):
        return None
    return question[:1].upper() + question[1:]


def fact_cloze(fact: Fact, openings: list[str | None] | None = None) -> tuple[str | None, str | None, bool]:
    """A fact's cloze question, why it is unusable (`question_problem`; None: usable) and whether its pronoun was
    resolved. With `openings` (`facts.opening_names` of the fact's context: `pronouns="name"`), a cloze whose pronoun
    has no name before it is kept or asked with a name instead (`name_pronoun`), where that gives a usable question."""
    cloze = cloze_question(fact)
    problem = question_problem(cloze, fact.answer) if cloze is not None else None
    if problem == "pronoun" and openings is not None:
        named = name_pronoun(cloze, openings, fact.sentence_index)
        if named is not None and question_problem(named, fact.answer, pronoun_checked=True) is None:
            return named, None, True
    return cloze, problem, False


def _round_robin(facts: list[Fact]) -> list[Fact]:
    """Facts reordered so every sentence's first fact comes before any sentence's second: when only some
    facts are needed, each sentence still gets its questions."""
    by_sentence: dict[int, list[Fact]] = {}
    for fact in facts:
        by_sentence.setdefault(fact.sentence_index, []).append(fact)
    ordered, depth = [], 0
    while len(ordered) < len(facts):
        ordered += [group[depth] for group in by_sentence.values() if depth < len(group)]
        depth += 1
    return ordered


class FactGenerator:
    """Writes `phrasings` questions per fact of the context (see the module docstring): the cloze question,
    then model-written ones that the teacher answers with the span.

    `extract` maps a context to its facts (default: the rule-based `extract_facts`; a spaCy-based one can
    be passed, indexing sentences as `context_sentences` does). With `teacher_answers` the target is the
    teacher's answer where it contains the span; otherwise the span. Pairs come back ordered phrasing by
    phrasing over the facts, so truncating to `n` keeps the coverage. `dropped` counts, per reason, the
    questions this generator threw away in its last call (and, kept instead: `cloze_pronoun_resolved`, clozes whose
    pronoun `name_pronoun` resolved; `vague_clozes_kept`). `pronouns="name"` keeps a cloze whose pronoun has no name
    before it where the words before it say what it stands for, or asks it with the name instead (`name_pronoun`);
    "drop" drops it (unless the context has no other).
    """

    def __init__(self, lm: LM, phrasings: int = 3, window: int = 1, temperature: float = 0.7, top_p: float = 0.95,
                 max_new_tokens: int = 40, teacher_answers: bool = True, filter_config: FilterConfig | None = None,
                 extract: Callable[[str], list[Fact]] | None = None, reuse_prompt_cache: bool = True,
                 spans: str = "rules", pronouns: str = "drop"):
        if phrasings < 1 or max_new_tokens < 1 or window < 0:
            raise ValueError(f"phrasings and max_new_tokens must be >= 1 and window >= 0, got {phrasings}, "
                             f"{max_new_tokens} and {window}")
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be > 0 and top_p in (0, 1], got {temperature} and {top_p}")
        self.lm, self.phrasings, self.window = lm, phrasings, window
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        if spans not in FACT_SPANS:
            raise ValueError(f"spans: {spans!r} is not one of {', '.join(FACT_SPANS)}")
        if pronouns not in FACT_PRONOUNS:
            raise ValueError(f"pronouns: {pronouns!r} is not one of {', '.join(FACT_PRONOUNS)}")
        self.pronouns = pronouns
        # `extract` (tests: any extractor) or the span rules `spans` names (`facts.sentence_spans`)
        self.extract = extract or functools.partial(extract_facts, wide=spans == "wide")
        self.teacher_answers, self.filter_config = teacher_answers, filter_config
        # False: the plain path `selfparam bench` compares against: one fact's phrasings at a time, every row to
        # max_new_tokens, and the teacher answers one question at a time (True: many facts' rows in one batch,
        # each to its first '?'; the name is shared with the paper's generator, whose fast path reuses a cache)
        self.reuse_prompt_cache = reuse_prompt_cache
        answers = "the teacher's answer where it contains the span, else the span" if teacher_answers else "the span"
        self.description = (f"facts:{lm.name} phrasings={phrasings} (cloze + model-written, teacher-checked) "
                            f"window={window} temperature={temperature} top_p={top_p} answers={answers}"
                            + (f" spans={spans}" if spans != "rules" else "")
                            + (f" pronouns={pronouns}" if pronouns != "drop" else ""))
        self.dropped: dict[str, int] = {}

    def _window(self, fact: Fact, sentences: list[str]) -> str:
        """The fact's sentence with the `window` sentences before it."""
        first = max(0, fact.sentence_index - self.window)
        return " ".join(sentences[first:fact.sentence_index] + [fact.sentence])

    def _prompt_parts(self, window: str, answer: str) -> tuple[str, str]:
        """(shared prefix, fact-specific rest) of the chat prompt; the split is just before 'Text:'."""
        full = chat_prompt(self.lm.tokenizer, fact_user_text(window, answer)) + RESPONSE_PREFIX
        cut = full.rindex("Text: ")
        return full[:cut], full[cut:]

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _model_questions(self, asks: list[tuple[Fact, int]], sentences: list[str], seed: int) -> list[list[str]]:
        """For each (fact, count): `count` questions the model writes for the fact (the unusable ones dropped
        and counted). The fast path samples every fact's rows in one batch, each row stopping at its first '?'
        (`first_question` reads no further); the plain path samples one fact at a time, every row to its end."""
        prompts: list[str] = []
        owners: list[int] = []
        for j, (fact, count) in enumerate(asks):
            prompt = "".join(self._prompt_parts(self._window(fact, sentences), fact.answer))
            n_prompt = len(self.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            if n_prompt + self.max_new_tokens > self.lm.max_length:
                raise GeneratorError(f"a fact prompt is {n_prompt} tokens, too long for {self.lm.name}'s "
                                     f"window of {self.lm.max_length}: lower `window`")
            prompts += [prompt] * count
            owners += [j] * count
        if not prompts:
            return [[] for _ in asks]
        if self.reuse_prompt_cache:
            texts = sample_each(self.lm, prompts, self.max_new_tokens, temperature=self.temperature,
                                top_p=self.top_p, seed=seed, stop=("?",), batch_size=PHRASING_ROWS)
        else:  # a fact's rows are consecutive in `prompts`
            texts, at = [], 0
            for j, (_, count) in enumerate(asks):
                texts += generate(self.lm, prompts[at:at + count], max_new_tokens=self.max_new_tokens,
                                  batch_size=count, do_sample=True, temperature=self.temperature, top_p=self.top_p,
                                  seed=seed + j) if count else []
                at += count
        questions: list[list[str]] = [[] for _ in asks]
        for j, text in zip(owners, texts):
            question = first_question(text)
            reason = question_problem(question, asks[j][0].answer)
            if reason:
                self._drop(reason)
            else:
                questions[j].append(question)
        return questions

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        facts = _round_robin(self.extract(context))
        if not facts:
            raise GeneratorError(f"no facts (names, numbers, dates, definitions, objects) found in the context to ask "
                                 f"about: {context[:80]!r}; use the paper's questions instead (questions='paper')")
        sentences = context_sentences(context)
        openings = opening_names(context) if self.pronouns == "name" else None
        self.dropped = {}
        per_fact: list[tuple[Fact, str | None, list[str]]] = []  # (fact, cloze question, model questions)
        vague: list[tuple[Fact, str | None, list[str]]] = []  # clozes dropped only for an unresolved pronoun
        start, have = 0, 0
        while start < len(facts) and have < n:
            # a round: as many facts as could still be needed if every phrasing were kept (so no fact is asked
            # that asking them one at a time, stopping when enough, would not have asked), at most a batch's worth
            size = min(-(-(n - have) // self.phrasings), max(1, PHRASING_ROWS // max(1, self.phrasings - 1)))
            round_facts = facts[start:start + size]
            clozes = []
            for fact in round_facts:
                cloze, problem, was_named = fact_cloze(fact, openings)
                if was_named:
                    self._drop("cloze_pronoun_resolved")  # a count kept beside the drops (class docstring)
                if problem:
                    self._drop(f"cloze_{problem}")
                    if problem == "pronoun":
                        vague.append((fact, cloze, []))
                    cloze = None
                clozes.append(cloze)
            asks = [(fact, self.phrasings - (cloze is not None)) for fact, cloze in zip(round_facts, clozes)]
            written = self._model_questions(asks, sentences, seed * 100_003 + start)
            per_fact += list(zip(round_facts, clozes, written))
            start += len(round_facts)
            candidates = [QAPair(q, f.answer) for f, c, w in per_fact for q in ([c] if c else []) + w]
            have = len(select_pairs(candidates, context, self.filter_config)[0])
        pairs = self._answer(per_fact, context)
        if not pairs and vague:  # rather a vague cloze ("It lies how many km from Warsaw?") than no pair at all
            self.dropped["vague_clozes_kept"] = len(vague)
            pairs = self._answer(vague, context)
        return pairs

    def _answer(self, per_fact: list[tuple[Fact, str | None, list[str]]], context: str) -> list[QAPair]:
        """The teacher (the model with the context in view) answers every question. A model-written question
        is kept only when that answer gives the span (`holds_span`: it asks for the fact); the target is the
        teacher's answer where it gives the span (its own wording), else the span. Ordered phrasing by phrasing."""
        asked = [(k, fact, question, cloze is not None and k == 0)
                 for fact, cloze, written in per_fact
                 for k, question in enumerate(([cloze] if cloze else []) + written)]
        if not asked:
            return []
        prompts = [answer_prompt(self.lm.tokenizer, question, context) for _, _, question, _ in asked]
        # an answer longer than its span and SPAN_SLACK words cannot give it: its row stops there (fast path)
        limits = [len(fact.answer.split()) + SPAN_SLACK for _, fact, _, _ in asked] if self.reuse_prompt_cache else None
        answers = generate(self.lm, prompts, max_new_tokens=48, batch_size=16 if self.reuse_prompt_cache else 1,
                           max_words=limits)
        kept: list[tuple[int, QAPair]] = []
        for (k, fact, question, is_cloze), answer in zip(asked, answers):
            contains = holds_span(answer, fact.answer)
            if not is_cloze and not contains:
                self._drop("teacher_disagrees")
                continue
            target = answer.strip() if contains and self.teacher_answers else fact.answer
            kept.append((k, QAPair(question, target)))
        return [pair for _, pair in sorted(kept, key=lambda kp: kp[0])]  # stable: facts keep their order
