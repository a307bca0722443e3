"""The frozen sentence encoder under RECIPE's heads.

The encoder itself is frozen: its sentence embeddings are computed once per text (and cached during
training), and only the small knowledge/query heads above it learn. On 2 CPU cores this makes an
InfoNCE step over hundreds of examples cost milliseconds instead of a transformer backward pass; the
retrieval accuracy this reaches is measured and reported in docs/recipe.md.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from ...sentence_encoder import DEFAULT_ENCODER, embedding_dim, load_sentence_transformer


class TextEncoder(Protocol):
    """Maps texts to fixed-size sentence embeddings (no gradient)."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N,) texts -> (N, dim) float32 embeddings on the CPU."""
        ...


class SentenceTransformerEncoder:
    """Any sentence-transformers model; `all-minilm-l6-v2` resolves to the embedded copy."""

    def __init__(self, name: str = DEFAULT_ENCODER, device: str | torch.device = "cpu", batch_size: int = 64):
        self.model = load_sentence_transformer(name, device)
        self.name = name
        self.dim = embedding_dim(self.model)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        if not texts:
            return torch.zeros(0, self.dim)
        with torch.no_grad():
            if len(texts) <= self.batch_size:
                out = self.encode_batch(texts)
            else:  # `encode` sorts many texts by length into batches, so they pad less
                out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                        show_progress_bar=False)
        return out.float().cpu()

    def encode_batch(self, texts: Sequence[str]) -> torch.Tensor:
        """One batch through the model's modules (tokenize, transformer, pooling, ...): what `encode` computes
        for it, without `encode`'s per-call work (length sorting, batching, conversions), about a tenth of a
        one-sentence RECIPE edit on 2 CPU cores (`scripts/recipe_edit_bench.py`)."""
        # `tokenize` is `preprocess` since sentence-transformers 6
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        features = {k: v.to(self.model.device) if isinstance(v, torch.Tensor) else v
                    for k, v in preprocess(list(texts)).items()}
        return self.model(features)["sentence_embedding"]


class MeanPoolEncoder:
    """A Hugging Face encoder model + tokenizer with mean pooling and L2 normalisation.

    The same pooling as all-MiniLM-L6-v2; the tests build it on a tiny random BertModel so they need no
    weights.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, name: str = "mean-pool", batch_size: int = 64,
                 max_length: int = 128):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.dim = int(model.config.hidden_size)
        self.batch_size = batch_size
        self.max_length = max_length

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(list(texts[start:start + self.batch_size]), return_tensors="pt",
                                     padding=True, truncation=True, max_length=self.max_length)
                hidden = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, D)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(chunks).float() if chunks else torch.zeros(0, self.dim)


def load_encoder(name: str = DEFAULT_ENCODER, device: str | torch.device = "cpu") -> TextEncoder:
    return SentenceTransformerEncoder(name, device=device)
