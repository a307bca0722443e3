"""Readers for the evaluation data: SQuAD JSON, PwC-style JSONL and the INSPIRED / ReDial test sets.

Every QA reader returns the same shape, a list of `ContextQA` (a context and its questions with their gold
answers), so the tasks never care which file format a run came from. Malformed input raises a
`DataError` naming the file and the record, before any model is loaded.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import read_jsonl
from ..methods.base import Context
from .metrics import catalogue_name


class DataError(ValueError):
    """An evaluation file is missing or not in the expected format; the message names it."""


@dataclass(frozen=True)
class QuestionAnswers:
    """A question and every gold answer accepted for it."""

    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class ContextQA:
    """A context to inject and the questions asked about it afterwards."""

    context: Context
    questions: tuple[QuestionAnswers, ...]


def _read_text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"data file {path} is not UTF-8 text ({e})") from None


def parse_articles(spec: str) -> tuple[int, ...]:
    """1-based article numbers from ranges and lists, sorted and distinct.

    >>> parse_articles("17-19,25")
    (17, 18, 19, 25)
    """
    numbers: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi if dash else lo)
        except ValueError:
            raise ValueError(f"articles: {part!r} in {spec!r} is not a number or a range like 17-32") from None
        if first < 1 or last < first:
            raise ValueError(f"articles: {part!r} in {spec!r} must be a number >= 1 or a range FIRST-LAST with "
                             f"1 <= FIRST <= LAST")
        numbers.update(range(first, last + 1))
    return tuple(sorted(numbers))


def load_squad(path: Path, articles: tuple[int, ...] | None = None) -> list[ContextQA]:
    """SQuAD v1.1 JSON: every paragraph is one context (id `<title>/<paragraph index>`).

    `articles`: keep only these articles (1-based, in the file's order), e.g. the report split 17-32.
    The parsed file is kept while its size and modification time stay the same (the dev file takes a
    noticeable fraction of a second to parse, and a seed sweep or a test suite reads it many times); the
    items are frozen, so every caller gets its own list of the same items.
    """
    path = Path(path)
    if not path.is_file():
        _read_text(path)  # the error that says so
    stat = path.stat()
    return list(_parsed_squad(str(path), stat.st_mtime_ns, stat.st_size,
                              None if articles is None else tuple(articles)))


@functools.lru_cache(maxsize=8)
def _parsed_squad(path_text: str, mtime_ns: int, size: int, articles: tuple[int, ...] | None) -> tuple[ContextQA, ...]:
    """`load_squad`'s parse, keyed by the file's identity and state (the arguments after the path)."""
    path = Path(path_text)
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    if articles is not None:
        beyond = [a for a in articles if a > len(doc["data"])]
        if beyond:
            raise DataError(f"{path}: has {len(doc['data'])} articles; article(s) {beyond[:5]} do not exist")
    keep = set(articles) if articles is not None else None
    out: list[ContextQA] = []
    for a, article in enumerate(doc["data"]):
        if keep is not None and a + 1 not in keep:
            continue
        title = article.get("title", f"article{a}")
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: article {title!r} paragraph {p}"
            if "context" not in paragraph or "qas" not in paragraph:
                raise DataError(f"{where}: missing 'context' or 'qas'")
            questions = []
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(ans["text"] for ans in qa.get("answers", [])))
                if not answers:
                    continue  # SQuAD 2.0 unanswerable questions: nothing to score against
                questions.append(QuestionAnswers(qa["question"], answers))
            if questions:
                out.append(ContextQA(Context(f"{title}/{p}", paragraph["context"]), tuple(questions)))
    if not out:
        raise DataError(f"{path}: no paragraphs with answerable questions")
    return tuple(out)


def load_pwc_jsonl(path: Path) -> list[ContextQA]:
    """JSONL with one `{context, question, answer}` per line (the PwC set); rows sharing a context are
    grouped into one context, in order of first appearance. `answer` may be a string or a list."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    grouped: dict[str, list[QuestionAnswers]] = {}
    for n, row in read_jsonl(path, DataError):
        if not all(k in row for k in ("context", "question", "answer")):
            raise DataError(f"{path}:{n}: expected an object with 'context', 'question' and 'answer'")
        answers = row["answer"] if isinstance(row["answer"], list) else [row["answer"]]
        answers = tuple(str(a) for a in answers if str(a).strip())
        if not answers or not str(row["context"]).strip() or not str(row["question"]).strip():
            raise DataError(f"{path}:{n}: empty context, question or answer")
        grouped.setdefault(row["context"], []).append(QuestionAnswers(row["question"], answers))
    if not grouped:
        raise DataError(f"{path}: no rows")
    return [ContextQA(Context(f"{path.stem}/{i}", text), tuple(qs)) for i, (text, qs) in enumerate(grouped.items())]


def load_qa(path: Path, articles: tuple[int, ...] | None = None) -> list[ContextQA]:
    """SQuAD JSON (`.json`) or PwC JSONL (`.jsonl`), chosen by the file's suffix; `articles` (SQuAD only)
    keeps those articles (1-based)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    if path.suffix == ".json":
        return load_squad(path, articles)
    if articles is not None:
        raise DataError(f"{path}: articles apply to SQuAD JSON only (a .json file of articles)")
    if path.suffix == ".jsonl":
        return load_pwc_jsonl(path)
    raise DataError(f"{path}: unknown data format {path.suffix!r}; give SQuAD JSON (.json) or PwC JSONL (.jsonl)")


def sample_contexts(contexts: list[ContextQA], n: int, seed: int, questions_per_context: int,
                    exclude: tuple[str, ...] = ()) -> list[ContextQA]:
    """Draw `n` contexts with `seed` among those with at least `questions_per_context` questions, and
    keep their first `questions_per_context` questions, so every context weighs the same. Draws are
    prefixes of one seeded order: a smaller `n` gives the first contexts of a larger one.

    `exclude`: context ids passed over where the seeded order reaches them (the next one takes their place;
    every other context keeps its position), e.g. a paragraph no target set can be built for. An id that
    is not among the eligible contexts is an error, so a typo never goes unnoticed."""
    if n < 1 or questions_per_context < 1:
        raise ValueError(f"n and questions_per_context must be >= 1, got n={n}, "
                         f"questions_per_context={questions_per_context}")
    eligible = [c for c in contexts if len(c.questions) >= questions_per_context]
    excluded = set(exclude)
    unknown = sorted(excluded - {c.context.id for c in eligible})
    if unknown:
        raise DataError(f"exclude: no eligible context (>= {questions_per_context} questions) has the id(s) "
                        f"{', '.join(unknown)}")
    if len(eligible) - len(excluded) < n:
        raise DataError(f"asked for {n} contexts with >= {questions_per_context} questions each, "
                        f"but the data has only {len(eligible) - len(excluded)}"
                        + (f" once {len(excluded)} are excluded" if excluded else ""))
    kept = [c for c in _seeded_order(eligible, seed) if c.context.id not in excluded]
    return [ContextQA(c.context, c.questions[:questions_per_context]) for c in kept[:n]]


def _seeded_order(items: list, seed: int) -> list:
    """A seeded shuffle whose prefixes are the draws: `--n 10` draws the first ten of what `--n 20` draws
    with the same seed, so runs of different sizes share contexts (and their cached target sets)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [items[i] for i in order]


# ---------------------------------------------------------------- conversational recommendation


@dataclass(frozen=True)
class RecTurn:
    """One system turn to recommend at: the dialogue so far, the gold titles, titles already mentioned."""

    id: str
    dialogue: str
    gold: tuple[str, ...]
    seen: tuple[str, ...]


@dataclass(frozen=True)
class RecData:
    """A recommendation test set with its item catalogue (readable titles)."""

    name: str
    turns: tuple[RecTurn, ...]
    catalogue: tuple[str, ...]


CRS_DATASETS = ("inspired", "redial")


def load_crs(folder: Path) -> RecData:
    """A SELF-PARAM CRS folder (`test.jsonl`, `item_ids.json`, `entity2id.json`).

    Titles come from the DBpedia URIs as He et al. derive them; the catalogue is the item set (movies),
    and `seen` keeps the previously mentioned entities that are catalogue items. The dialogue is the
    `input` field without its trailing open "System:" turn.
    """
    folder = Path(folder)
    for name in ("test.jsonl", "item_ids.json", "entity2id.json"):
        if not (folder / name).is_file():
            raise DataError(f"{folder}: missing {name} (expected a SELF-PARAM CRS folder such as "
                            f"crs_selfparam/inspired)")
    try:
        entity2id: dict[str, int] = json.loads(_read_text(folder / "entity2id.json"))
        item_ids: list[int] = json.loads(_read_text(folder / "item_ids.json"))
    except json.JSONDecodeError as e:
        raise DataError(f"{folder}: entity2id.json or item_ids.json is not valid JSON ({e})") from None
    id2name = {i: catalogue_name(uri) for uri, i in entity2id.items()}
    items = set(item_ids)
    missing = [i for i in item_ids if i not in id2name]
    if missing:
        raise DataError(f"{folder}: item ids {missing[:5]} have no entry in entity2id.json")
    catalogue = tuple(dict.fromkeys(id2name[i] for i in item_ids))
    turns = []
    if not (folder / "test.jsonl").is_file():
        raise DataError(f"data file {folder / 'test.jsonl'} does not exist")
    for n, row in read_jsonl(folder / "test.jsonl", DataError):
        if not all(k in row for k in ("input", "rec", "prev_entity")):
            raise DataError(f"{folder / 'test.jsonl'}:{n}: expected fields 'input', 'rec' and 'prev_entity'")
        gold = tuple(dict.fromkeys(id2name[i] for i in row["rec"] if i in id2name))
        if not gold:
            continue
        seen = tuple(dict.fromkeys(id2name[i] for i in row["prev_entity"] if i in items))
        dialogue = row["input"].strip()
        if dialogue.endswith("System:"):
            dialogue = dialogue[: -len("System:")].rstrip()
        turns.append(RecTurn(str(row.get("turn_id", n)), dialogue, gold, seen))
    if not turns:
        raise DataError(f"{folder / 'test.jsonl'}: no turns with a gold recommendation")
    return RecData(folder.name, tuple(turns), catalogue)


def sample_turns(data: RecData, n: int, seed: int) -> list[RecTurn]:
    """Draw `n` turns with `seed`; asking for more turns than the set holds is an error, not a silent cap."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n > len(data.turns):
        raise DataError(f"asked for {n} turns but {data.name} has only {len(data.turns)}")
    return _seeded_order(list(data.turns), seed)[:n]
