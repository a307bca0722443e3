"""RAG with BM25 (`bm25s`) and with a dense sentence encoder (all-MiniLM-L6-v2): the papers' retrieval rows.

Injecting stores the contexts' passages and re-indexes them; answering retrieves the top-k passages for
each question and puts them, best first, where Base(C+Q) puts the gold context. With nothing stored yet
the prompt is the question alone, exactly Base(Q). The model's weights never change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ...atomic import atomic_folder
from ...lm import LM
from ...prompts import answer_prompt
from ...sentence_encoder import embedding_dim, load_sentence_transformer
from ..base import Context, Query, Resources
from ..prompted import PromptedMethod
from .config import RAGConfig, chunk_text


class RetrievalMethod(PromptedMethod):
    """Shared store, prompting, storage accounting and persistence; subclasses build and query an index."""

    name = "rag"

    def __init__(self, lm: LM, config: RAGConfig | None = None, resources: Resources | None = None):
        self.config = config or RAGConfig()
        if not isinstance(self.config, RAGConfig):
            raise TypeError(f"{self.name}: config must be a RAGConfig, got {type(self.config).__name__}")
        super().__init__(lm, batch_size=self.config.batch_size)
        self.passages: list[str] = []
        self.sources: list[str] = []  # the context id each passage came from

    # ---- what subclasses implement
    def _reindex(self) -> None:
        raise NotImplementedError

    def _search(self, questions: Sequence[str], k: int) -> list[list[int]]:
        """Passage indices for each question, best first."""
        raise NotImplementedError

    def _index_bytes(self) -> int:
        raise NotImplementedError

    # ---- the protocol
    def inject(self, contexts: Sequence[Context]) -> None:
        for ctx in contexts:
            for passage in chunk_text(ctx.text, self.config.chunk_words, self.config.chunk_overlap):
                self.passages.append(passage)
                self.sources.append(ctx.id)
        self._reindex()

    def retrieve(self, questions: Sequence[str]) -> list[list[str]]:
        """The top-k stored passages for each question (empty lists while nothing is stored)."""
        if not self.passages:
            return [[] for _ in questions]
        k = min(self.config.top_k, len(self.passages))
        return [[self.passages[i] for i in hits] for hits in self._search(questions, k)]

    def retrieved_ids(self, questions: Sequence[str]) -> list[str | None]:
        """The context id of each question's best passage (`RetrievingMethod`; None while nothing is stored)."""
        if not self.passages:
            return [None for _ in questions]
        return [self.sources[hits[0]] if hits else None for hits in self._search(questions, 1)]

    def prompts_for(self, queries: Sequence[Query]) -> list[str]:
        retrieved = self.retrieve([q.question for q in queries])
        return [answer_prompt(self.lm.tokenizer, q.question, "\n\n".join(passages) or None)
                for q, passages in zip(queries, retrieved)]

    def prompt_for(self, query: Query) -> str:
        return self.prompts_for([query])[0]

    def reset(self) -> None:
        self.passages, self.sources = [], []
        self._reindex()

    def storage_bytes(self) -> int:
        """The stored passage text (UTF-8) plus the index built over it."""
        return sum(len(p.encode("utf-8")) for p in self.passages) + self._index_bytes()

    def save(self, path: Path) -> None:
        """`manifest.json` (method, config) and `passages.jsonl`, written to a temporary folder swapped in whole."""
        path = Path(path)
        with atomic_folder(path) as tmp:
            manifest = {"method": self.name, "config": {k: v for k, v in vars(self.config).items()}}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            with open(tmp / "passages.jsonl", "w", encoding="utf-8") as f:
                for source, passage in zip(self.sources, self.passages):
                    f.write(json.dumps({"context_id": source, "text": passage}) + "\n")
            self._save_index(tmp)

    def load(self, path: Path) -> None:
        path = Path(path)
        manifest_file = path / "manifest.json"
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{path}: no manifest.json; not a folder saved by method {self.name!r}")
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        if manifest.get("method") != self.name:
            raise ValueError(f"{path}: saved by method {manifest.get('method')!r}, not {self.name!r}")
        rows = [json.loads(line) for line in (path / "passages.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()]
        self.passages = [r["text"] for r in rows]
        self.sources = [r["context_id"] for r in rows]
        self._load_index(path)

    def _save_index(self, folder: Path) -> None:
        """Indexes that are cheap to rebuild save nothing."""

    def _load_index(self, folder: Path) -> None:
        self._reindex()


class BM25RAG(RetrievalMethod):
    """Lexical retrieval with BM25 (bm25s, English stop words removed)."""

    name = "rag-bm25"

    def __init__(self, lm: LM, config: RAGConfig | None = None, resources: Resources | None = None):
        super().__init__(lm, config, resources)
        self._index = None

    def _reindex(self) -> None:
        import bm25s

        if not self.passages:
            self._index = None
            return
        self._index = bm25s.BM25()
        tokens = bm25s.tokenize(self.passages, stopwords="en", show_progress=False)
        self._index.index(tokens, show_progress=False)

    def _search(self, questions: Sequence[str], k: int) -> list[list[int]]:
        import bm25s

        tokens = bm25s.tokenize(list(questions), stopwords="en", return_ids=False, show_progress=False)
        n_terms = len(self._index.scores["indptr"]) - 1  # bm25s's vocabulary also holds an unindexed ""
        out = []
        for words in tokens:
            ids = [i for i in self._index.get_tokens_ids(words) if i < n_terms]
            # a query with no indexed word scores every passage 0: ties keep store order
            scores = self._index.get_scores_from_ids(ids) if ids else np.zeros(len(self.passages))
            out.append(list(map(int, np.argsort(-scores, kind="stable")[:k])))
        return out

    def _index_bytes(self) -> int:
        if self._index is None:
            return 0
        arrays = sum(v.nbytes for v in self._index.scores.values() if isinstance(v, np.ndarray))
        vocab = sum(len(w.encode("utf-8")) + 8 for w in self._index.vocab_dict)  # word + its id
        return arrays + vocab


class DenseRAG(RetrievalMethod):
    """Dense retrieval: cosine similarity of all-MiniLM-L6-v2 embeddings (the papers' DPR row)."""

    name = "rag-dense"

    def __init__(self, lm: LM, config: RAGConfig | None = None, resources: Resources | None = None):
        super().__init__(lm, config, resources)
        self.encoder = load_sentence_transformer(self.config.encoder, lm.device)
        self._embeddings = np.zeros((0, embedding_dim(self.encoder)), dtype=np.float32)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False).astype(np.float32)  # (N, D), unit rows

    def inject(self, contexts: Sequence[Context]) -> None:
        before = len(self.passages)
        for ctx in contexts:
            for passage in chunk_text(ctx.text, self.config.chunk_words, self.config.chunk_overlap):
                self.passages.append(passage)
                self.sources.append(ctx.id)
        new = self.passages[before:]
        if new:  # only the new passages are encoded; the store grows by their embeddings
            self._embeddings = np.concatenate([self._embeddings, self._embed(new)])

    def _reindex(self) -> None:
        if len(self._embeddings) != len(self.passages):
            self._embeddings = (self._embed(self.passages) if self.passages else
                                self._embeddings[:0])

    def _search(self, questions: Sequence[str], k: int) -> list[list[int]]:
        scores = self._embed(questions) @ self._embeddings.T  # (Q, N) cosine similarities
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [list(map(int, row)) for row in order]

    def _index_bytes(self) -> int:
        return int(self._embeddings.nbytes)

    def _save_index(self, folder: Path) -> None:
        np.save(folder / "embeddings.npy", self._embeddings)

    def _load_index(self, folder: Path) -> None:
        file = folder / "embeddings.npy"
        self._embeddings = np.load(file) if file.is_file() else self._embeddings[:0]
        if len(self._embeddings) != len(self.passages):
            raise ValueError(f"{folder}: {len(self._embeddings)} embeddings for {len(self.passages)} passages")
