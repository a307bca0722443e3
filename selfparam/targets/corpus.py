"""The context-unrelated half of the target set: general sentences that keep the model as it was.

The paper samples SlimPajama; here any plain text file (WikiText-2 raw by default in the harness) or a
JSONL file with a "text" field will do. Text is split into sentences of a useful length (too short says
nothing about the model's general behaviour, too long costs training time); WikiText section headings
(" = Robert Boulter = ") and its tokenization artefacts (" @-@ ", " , ") are undone so the sentences read
like ordinary text, which is what the model is asked to keep producing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import read_jsonl

_HEADING = re.compile(r"^\s*(=+)\s.*\s\1\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_WIKITEXT_JOINERS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def detokenize(text: str) -> str:
    """Undo WikiText-style spacing: 'a @-@ b , c .' -> 'a-b, c.'; ordinary text passes unchanged.

    >>> detokenize("It is 60 @,@ 000 km long , he said .")
    'It is 60,000 km long, he said.'
    """
    for spaced, joined in _WIKITEXT_JOINERS:
        text = text.replace(spaced, joined)
    text = re.sub(r"\s+([.,;:!?%)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$])\s+", r"\1", text)
    text = re.sub(r"\s+('s|'re|'ve|'ll|'d|n't)\b", r"\1", text)
    text = re.sub(r'"\s+([^"]*?)\s+"', r'"\1"', text)
    return " ".join(text.split())


def split_sentences(text: str, min_words: int = 8, max_words: int = 60) -> list[str]:
    """Sentences of `text` with `min_words`..`max_words` words; ones with WikiText's `<unk>` are skipped."""
    sentences = []
    for sentence in _SENTENCE_END.split(detokenize(text)):
        sentence = sentence.strip()
        if "<unk>" in sentence or not sentence:
            continue
        if min_words <= len(sentence.split()) <= max_words:
            sentences.append(sentence)
    return sentences


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 (byte offset {e.start}); save the corpus as UTF-8") from None


def _paragraphs(path: Path, text: str) -> list[str]:
    """The text blocks of a corpus file: non-heading lines of a text file, or "text" fields of a JSONL file."""
    if path.suffix == ".jsonl":
        blocks = []
        for lineno, row in read_jsonl(path):
            if not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{lineno}: expected a JSON object with a string field 'text'")
            blocks.append(row["text"])
        return blocks
    return [line for line in text.splitlines() if line.strip() and not _HEADING.match(line)]


@dataclass(frozen=True)
class UnrelatedCorpus:
    """A pool of general sentences to sample regularization targets from."""

    sentences: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.sentences:
            raise ValueError(f"unrelated corpus {self.source or '(in memory)'} has no usable sentences")

    @classmethod
    def from_texts(cls, texts: list[str], min_words: int = 8, max_words: int = 60,
                   source: str = "(in memory)") -> "UnrelatedCorpus":
        """Split each text into sentences of `min_words`..`max_words` words."""
        sentences = [s for text in texts for s in split_sentences(text, min_words, max_words)]
        return cls(tuple(sentences), source)

    @classmethod
    def from_path(cls, path: str | Path, min_words: int = 8, max_words: int = 60) -> "UnrelatedCorpus":
        """Sentences from a plain text file (`.txt`, `.raw`, ...) or a JSONL file with a "text" field.

        >>> UnrelatedCorpus.from_path("../shared/data/wikitext2/wiki.test.raw").sample(2, seed=0)
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"unrelated corpus {path} does not exist")
        text = _read_text(path)
        if not text.strip():
            raise ValueError(f"unrelated corpus {path} is empty")
        blocks = _paragraphs(path, text)
        corpus_sentences = tuple(s for block in blocks for s in split_sentences(block, min_words, max_words))
        if not corpus_sentences:
            raise ValueError(f"unrelated corpus {path} has no sentences of {min_words}-{max_words} words")
        return cls(corpus_sentences, str(path))

    def __len__(self) -> int:
        return len(self.sentences)

    def sample(self, n: int, seed: int) -> list[str]:
        """`n` distinct sentences, the same ones for the same seed."""
        if n < 0:
            raise ValueError(f"cannot sample {n} sentences")
        if n > len(self.sentences):
            raise ValueError(f"asked for {n} unrelated sentences but {self.source} has only {len(self.sentences)}")
        return random.Random(seed).sample(self.sentences, n)
