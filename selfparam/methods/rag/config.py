"""Settings of the retrieval baselines (one dataclass for both retrievers)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RAGConfig:
    """How contexts are stored and how many passages go into the prompt."""

    top_k: int = field(default=1, metadata={"help": "passages retrieved per question and put before it"})
    chunk_words: int = field(default=0, metadata={
        "help": "split each context into passages of this many words; 0 stores every context whole "
                "(SQuAD paragraphs fit the prompt, so whole contexts keep the gold passage intact)"})
    chunk_overlap: int = field(default=0, metadata={"help": "words shared by consecutive passages"})
    batch_size: int = field(default=16, metadata={"help": "questions answered per generate call"})
    encoder: str | None = field(default=None, metadata={
        "help": "sentence-transformers model path for dense RAG; None uses the embedded all-MiniLM-L6-v2"})

    def __post_init__(self):
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.chunk_words < 0:
            raise ValueError(f"chunk_words must be >= 0, got {self.chunk_words}")
        if self.chunk_overlap < 0 or (self.chunk_words and self.chunk_overlap >= self.chunk_words):
            raise ValueError(f"chunk_overlap must be >= 0 and < chunk_words ({self.chunk_words}), "
                             f"got {self.chunk_overlap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def chunk_text(text: str, chunk_words: int, overlap: int = 0) -> list[str]:
    """Split `text` into windows of `chunk_words` words advancing by `chunk_words - overlap`; 0 keeps it whole.

    `chunk_text("a b c d e", 2, 1) == ["a b", "b c", "c d", "d e"]`.
    """
    words = text.split()
    if chunk_words == 0 or len(words) <= chunk_words:
        return [" ".join(words)] if words else []
    step = chunk_words - overlap
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start:start + chunk_words]))
        if start + chunk_words >= len(words):
            break
    return chunks
