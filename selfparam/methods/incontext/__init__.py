"""The two reference rows of every table: Base(Q), the unchanged model asked the question alone, and
Base(C+Q), the unchanged model with the gold context in the prompt (the upper bound injection aims at)."""

from .method import BaseCQ, BaseQ

__all__ = ["BaseQ", "BaseCQ"]
