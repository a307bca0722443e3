"""Retrieval-augmented baselines: contexts are stored as passages (storage grows with what was injected),
and the best-matching passages are put before each question in the shared answer prompt."""

from .config import RAGConfig, chunk_text
from .method import BM25RAG, DenseRAG, RetrievalMethod

__all__ = ["RAGConfig", "chunk_text", "RetrievalMethod", "BM25RAG", "DenseRAG"]
