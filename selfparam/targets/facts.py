"""The facts of a context, as answer spans per sentence, and how much of a context a target set covers.

Pure functions of strings (no model, no spaCy), so every rule is tested on hand-written text.

Answer-aware question writing (Physics of LMs 3.1; the SQuAD answer-span style) starts from the answers:
each sentence's names, numbers, dates and the noun phrase after a copula ("X is *a colorless gas*").
The extractor is rule-based and documented here rule by rule:

- **names**: runs of capitalised words, joined through "of", "de", "the", "and", "von", "van", "al"
  inside the run ("University of Warsaw", "Frédéric Chopin"); a sentence's first word counts only when
  the run goes on past it ("Maria Skłodowska-Curie was ...") or the word is capitalised elsewhere in the
  context, mid-sentence (so "However" or "Many" are not names, "Warsaw" is);
- **numbers and dates**: "20.8%", "60 km", "1745", "seven months", "September 14, 2019", "the 1980s",
  an ordinal ("third-most"), with the unit or month that belongs to them;
- **definitions**: the noun phrase after "is/are/was/were (a|an|the)", "are/were" (two words or more),
  "called", "known as", "named", "such as" or "include(s)", up to a comma, a clause word (that, which,
  who, where, with, because, a preposition ...) or 6 words;
- **objects**: the words that end a sentence after its last function word (article, preposition,
  copula, pronoun: `qa.STOPWORDS`), one to three of them: "Pius III holds the position of *bishop*",
  "The profession of Marpessa Dawn is *politician*" (a knowledge edit's object is where the sentence ends;
  names miss it when it is not capitalised), unless they overlap a span found above;
- **fallback**: a sentence with none of those gets its longest noun phrase after an article.

`wide=True` (`TargetConfig.fact_spans="wide"`, off by default until an ablation says otherwise) adds, to every
sentence, a bare number word with the word after it ("*seven universities*", "*two atoms*"; the number word alone
when that word is a function word) and its longest noun phrase after an article, not only as the fallback, each cut
before the first span found above it holds ("the *condenser* of Tom's engine"): on the SQuAD tuning split (articles
1–16, 4,306 questions) the spans then hold a gold answer for 65.5% of the questions against 59.0%, at 19.5 spans per
paragraph against 16.6 (docs/tuning.md).

Spans are kept in sentence order, without duplicates or spans inside a longer span of the same
sentence. spaCy's small English pipeline would find more noun phrases; it is not a dependency (the
copy on PyPI is an unofficial re-upload), and `FactGenerator` takes any `extract` callable instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .qa import STOPWORDS, lexical_support
from .types import QAPair

# Bumped whenever a rule changes which spans a sentence gives or how they are asked: cached fact-question sets
# depend on it. 2: sentence-final objects ("... the position of bishop"). 3: a cloze of a sentence longer than
# 30 words asks the span's clause (`fact_questions.cloze_question`). 4: a paragraph whose only clozes lean on a
# pronoun keeps them rather than failing (a failure is cached too, so a failed set must be tried again).
RULES_VERSION = 4

# Abbreviations after which a period does not end a sentence.
_ABBREVIATIONS = frozenset("mr mrs ms dr st mt jr sr prof gen col lt sgt rev inc co ltd corp vs etc al no fig "
                           "e.g i.e u.s u.k a.m p.m approx jan feb mar apr jun jul aug sep sept oct nov dec".split())
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”')\]]*\s+(?=[\"“(\[]?[A-Z0-9À-Ý])")


def context_sentences(text: str) -> list[str]:
    """The sentences of a context, in order (abbreviations, initials and decimals do not split).

    >>> context_sentences("Dr. Ann Lee came in 2019. She left. It was 20.8 km away.")
    ['Dr. Ann Lee came in 2019.', 'She left.', 'It was 20.8 km away.']
    """
    text = re.sub(r"\s+", " ", text).strip()
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        before = text[start:match.start()].rstrip("\"”')]")
        last_word = before.split()[-1].rstrip(".").lower() if before.split() else ""
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue  # "Dr. Ann", "J. R. R. Tolkien"
        sentences.append(text[start:match.start()].strip())
        start = match.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


_CONNECTORS = frozenset("of de du la le the von van der al da di y".split())
# Capitalised only because they open the sentence: never the start of a name.
_OPENERS = frozenset("the a an this that these those it its one many most some several famous though although however "
                     "after before during in on at as since while when where if by for from with without between "
                     "among under over about around until unlike like despite both each every other another such "
                     "there here today later early then thus also often".split())
_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           "Jan\\.|Feb\\.|Mar\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sept?\\.|Oct\\.|Nov\\.|Dec\\.")
_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
                 "hundred|thousand|million|billion|dozen|half")
_UNITS = (r"%|percent|per cent|km|kilometres|kilometers|miles?|mi|m|metres|meters|feet|ft|kg|tonnes|tons|"
          r"pounds|lb|years?|months?|weeks?|days?|hours?|minutes?|seconds?|centuries|century|decades?|"
          r"people|inhabitants|residents|students|members|dollars|euros|degrees|°C|°F|K|million|billion|"
          r"thousand|hundred")
_DATE = re.compile(rf"\b(?:(?:\d{{1,2}} )?(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?,? \d{{3,4}}"
                   rf"|(?:\d{{1,2}} )?(?:{_MONTHS}) \d{{3,4}}|(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?"
                   rf"|(?:the )?\d{{3,4}}s|\d{{3,4}}(?:\s?(?:BC|AD|BCE|CE))?)\b")
_QUANTITY = re.compile(rf"(?:\$|£|€)?\b\d[\d,]*(?:\.\d+)?(?:\s?(?:{_UNITS})\b|%)?|"
                       rf"\b(?:{_NUMBER_WORDS})(?:[ -](?:{_NUMBER_WORDS}))* (?:{_UNITS})\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\d+(?:st|nd|rd|th))"
                      r"(?:-(?:most|largest|highest|oldest|biggest))?\b", re.IGNORECASE)
# A count in words with the word it counts ("seven universities"), for `wide` spans: _QUANTITY needs a unit after it.
_COUNT = re.compile(rf"\b(?:{_NUMBER_WORDS})(?:[ -](?:{_NUMBER_WORDS}))*(?: [a-z][\w-]*)?\b", re.IGNORECASE)
_DEFINITION = re.compile(r"\b(?:is|are|was|were)\s+(?:an?|the)\s+"
                         r"|\b(?:called|known as|named|such as|include|includes)\s+"
                         r"|\b(?:are|were)\s+(?=\w+\s+\w+)", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;:()\"“”]|\s(?:is|are|was|were|has|have|had|that|which|who|whom|whose|where|when|while|"
                         r"with|because|after|before|and|but|or|by|from|in|on|at|for|to|as|since|until|if)\s",
                         re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’.-]*|\d[\w.,%-]*", re.UNICODE)


def _is_capitalised(word: str) -> bool:
    return word[:1].isupper()


def _names(sentence: str, capitalised_elsewhere: set[str]) -> list[str]:
    """Runs of capitalised words (with connectors inside) — the proper names of a sentence."""
    words = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(sentence)]
    spans: list[str] = []
    i = 0
    while i < len(words):
        word, start, end = words[i]
        if not _is_capitalised(word) or word.isdigit():
            i += 1
            continue
        if i == 0 and (word.lower() in _OPENERS or word.lower() in STOPWORDS):
            i += 1  # "The", "Though", "However": capitalised by position only
            continue
        j, last_end = i + 1, end
        while j < len(words) and sentence[words[j - 1][2]:words[j][1]] == " ":  # a comma or "(" ends the name
            nxt = words[j][0]
            if _is_capitalised(nxt):
                last_end, j = words[j][2], j + 1
            elif (nxt.lower() in _CONNECTORS and j + 1 < len(words) and _is_capitalised(words[j + 1][0])
                  and sentence[words[j][2]:words[j + 1][1]] == " "):
                j += 1
            else:
                break
        run = re.sub(r"['’]s$", "", sentence[start:last_end].rstrip(".,;:’'"))
        first_word_only = i == 0 and last_end == end
        if not (first_word_only and word.strip(".,") not in capitalised_elsewhere):
            spans.append(run)
        i = max(j, i + 1)
    return spans


def _definitions(sentence: str) -> list[str]:
    """The noun phrase after a copula or a naming verb, up to a clause boundary or 6 words."""
    spans = []
    for m in _DEFINITION.finditer(sentence):
        rest = sentence[m.end():]
        stop = _CLAUSE_END.search(rest)
        phrase = (rest[:stop.start()] if stop else rest).strip().rstrip(".!?")
        words = phrase.split()
        if 1 <= len(words) <= 6:
            spans.append(" ".join(words))
    return spans


def _object(sentence: str) -> list[str]:
    """The last words of a sentence after its last function word, 1 to 3 of them; none when no function word
    comes before them ("Ann baked bread.") or a comma, colon or bracket cuts them off."""
    words = sentence.strip().rstrip(".!?\"”')]").split()
    tail: list[str] = []
    for word in reversed(words):
        if word.lower() in STOPWORDS:
            return [" ".join(reversed(tail))] if 1 <= len(tail) <= 3 else []
        if re.search(r"[,;:()\"“”]", word):
            return []
        tail.append(word)
    return []


_ARTICLE_PHRASE = re.compile(r"\b(?:an?|the)\s+", re.IGNORECASE)


def _article_phrases(sentence: str) -> list[str]:
    """The noun phrases that follow an article, up to a clause boundary or 6 words (the fallback for
    sentences without names, numbers or definitions)."""
    spans = []
    for m in _ARTICLE_PHRASE.finditer(sentence):
        rest = sentence[m.end():]
        stop = _CLAUSE_END.search(rest)
        words = (rest[:stop.start()] if stop else rest).strip().rstrip(".!?").split()
        if 1 <= len(words) <= 6:
            spans.append(" ".join(words))
    return sorted(spans, key=lambda p: -len(p.split()))[:1]


def _before_spans(phrase: str, spans: list[str]) -> str:
    """`phrase` up to the first of `spans` it holds, without the function words before it ("condenser of Tom's
    engine" with "Tom": "condenser"); '' when nothing is left."""
    cut = min((phrase.find(s) for s in spans if s and s in phrase), default=-1)
    if cut < 0:
        return phrase
    words = phrase[:cut].split()
    while words and words[-1].lower() in STOPWORDS:
        words.pop()
    return " ".join(words)


def _inside(span: str, others: list[str]) -> bool:
    return any(span != other and span.lower() in other.lower() for other in others)


def _counts(sentence: str) -> list[str]:
    """Number words with the word they count ("seven universities"); the number word alone before a function
    word ("one of the ...": "one")."""
    spans = []
    for m in _COUNT.finditer(sentence):
        words = m.group().split()
        if len(words) > 1 and words[-1].lower() in STOPWORDS:
            words = words[:-1]
        spans.append(" ".join(words))
    return spans


def sentence_spans(sentence: str, capitalised_elsewhere: set[str] | None = None, wide: bool = False) -> list[str]:
    """The answer spans of one sentence: names, dates and numbers, then definitions; each occurs verbatim
    in `sentence`. `wide`: also counts in words and the longest noun phrase after an article (module docstring).

    >>> sentence_spans("Casimir Pulaski, a Polish general, was born here in 1745.")
    ['Casimir Pulaski', 'Polish', '1745']
    >>> sentence_spans("Pius III, who holds the position of bishop.")
    ['Pius III', 'bishop']
    >>> sentence_spans("Seven universities in Scotland offer the teacher education program.", wide=True)
    ['Seven universities', 'Scotland', 'teacher education program']
    """
    found: list[str] = []
    found += _names(sentence, capitalised_elsewhere or set())
    found += [m.group().strip() for m in _DATE.finditer(sentence)]
    found += [m.group().strip() for m in _QUANTITY.finditer(sentence)]
    found += [m.group() for m in _ORDINAL.finditer(sentence)]
    found += _definitions(sentence)
    # an object that holds a span found above ("understand English") would hide it: the span is the fact
    found += [o for o in _object(sentence) if not any(f.lower() in o.lower() or o.lower() in f.lower() for f in found)]
    if wide:  # never over a span above (a longer span would hide it, below): a phrase ends before the first
        for extra in _counts(sentence) + _article_phrases(sentence):
            extra = _before_spans(extra, found)
            if extra and not any(extra.lower() in f.lower() for f in found):
                found.append(extra)
    if not found:
        found = _article_phrases(sentence)
    spans: list[str] = []
    for span in found:
        span = span.strip(" ,;:")
        if span and span in sentence and span.lower() not in (s.lower() for s in spans):
            spans.append(span)
    spans = [s for s in spans if not _inside(s, spans)]
    return sorted(spans, key=sentence.index)


def _capitalised_mid_sentence(sentences: list[str]) -> set[str]:
    words: set[str] = set()
    for sentence in sentences:
        for match in list(_WORD.finditer(sentence))[1:]:
            if _is_capitalised(match.group()):
                words.add(match.group().strip(".,"))
    return words


def opening_names(context: str) -> list[str | None]:
    """The name each sentence of a context opens with ("Fresno is ...": "Fresno"; "The Blue Heron sells ...": "the
    Blue Heron"), or None: what a pronoun in a later sentence most likely stands for (`fact_questions.name_pronoun`).

    >>> opening_names("Fresno lies in the valley. It grew fast. The Tower Theatre stands in Fresno.")
    ['Fresno', None, 'the Tower Theatre']
    """
    sentences = context_sentences(context)
    elsewhere = _capitalised_mid_sentence(sentences)
    openings: list[str | None] = []
    for sentence in sentences:
        names = _names(sentence, elsewhere)
        first = names[0] if names else None
        if first and sentence.startswith(first):
            openings.append(first)
        elif first and re.match(rf"The {re.escape(first)}\b", sentence):
            openings.append(f"the {first}")
        else:
            openings.append(None)
    return openings


@dataclass(frozen=True)
class Fact:
    """One answer span and the sentence it comes from (its index among the context's sentences)."""

    sentence_index: int
    sentence: str
    answer: str


def extract_facts(context: str, wide: bool = False) -> list[Fact]:
    """Every (sentence, answer span) of a context, in reading order (`wide`: see `sentence_spans`)."""
    sentences = context_sentences(context)
    elsewhere = _capitalised_mid_sentence(sentences)
    return [Fact(i, s, span) for i, s in enumerate(sentences) for span in sentence_spans(s, elsewhere, wide)]


# ------------------------------------------------------------------------------------------------ coverage

@dataclass(frozen=True)
class Coverage:
    """How many of a context's sentences some kept pair is about.

    `pairs_per_sentence[i]` counts the pairs about sentence i; `unplaced` the pairs about none of them.
    """

    sentences: int
    covered: int
    pairs_per_sentence: tuple[int, ...]
    unplaced: int

    @property
    def share(self) -> float:
        return self.covered / self.sentences if self.sentences else 0.0

    def to_dict(self) -> dict:
        return {"sentences": self.sentences, "covered": self.covered, "share": round(self.share, 4),
                "pairs_per_sentence": list(self.pairs_per_sentence), "unplaced": self.unplaced}


def pair_sentence(pair: QAPair, sentences: list[str], min_support: float = 0.5) -> int | None:
    """The sentence a pair is about: the one holding the largest share of the content words of its question
    and answer (by crude stem, `lexical_support`), if that share reaches `min_support`; ties go to the
    earlier sentence. An answer found verbatim in a sentence breaks ties towards that sentence."""
    text = f"{pair.question} {pair.answer}"
    best, best_score = None, min_support
    for i, sentence in enumerate(sentences):
        score = lexical_support(text, sentence) + (1e-3 if pair.answer.strip(" .").lower() in sentence.lower() else 0)
        if score >= best_score and (best is None or score > best_score):
            best, best_score = i, score
    return best


def coverage(context: str, pairs: list[QAPair], min_support: float = 0.5) -> Coverage:
    """The share of `context`'s sentences that some pair is about (see `pair_sentence`).

    >>> coverage("Ann baked bread. Bob sold fish.", [QAPair("Who baked bread?", "Ann")]).share
    0.5
    """
    sentences = context_sentences(context)
    counts = [0] * len(sentences)
    unplaced = 0
    for pair in pairs:
        index = pair_sentence(pair, sentences, min_support)
        if index is None:
            unplaced += 1
        else:
            counts[index] += 1
    return Coverage(sentences=len(sentences), covered=sum(c > 0 for c in counts), pairs_per_sentence=tuple(counts),
                    unplaced=unplaced)
