"""What identifies a model's weights and a data file's content, for cache keys and saved injections."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (16 hex digits) of every parameter rounded to bf16, in name order.

    Rounding first makes the fingerprint independent of the dtype the same weights were loaded in
    (fp32 or bf16); any real difference in the weights changes it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.bfloat16).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 (16 hex digits) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]
