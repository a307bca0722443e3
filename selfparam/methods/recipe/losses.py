"""RECIPE's training losses as pure functions (shapes in the docstrings, tested on hand-made tensors).

L_total = L_edit + L_pl (paper, eq. for the total loss):
- L_edit: cross-entropy of the edited target on reliability and generality queries with the knowledge's
  prompt, plus KL(P_base || P_prompted) on locality queries (the prompt must not disturb them);
- L_pl: InfoNCE over [sentinel, k_1..k_B] per query: a related query's positive is its knowledge
  (neighbour-oriented), an unrelated query's positive is the sentinel (sentinel-oriented). Because the
  sentinel is one of the candidates of every related query too, minimising it pushes each related query
  closer to its knowledge than to the sentinel, which is exactly the retrieval rule at inference.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE = -100


def target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions.

    logits (B, T, V), labels (B, T) with IGNORE where there is no target; the logit at t predicts
    labels[t+1]. Returns a scalar.
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def masked_kl(base_logits: torch.Tensor, edited_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of KL(P_base || P_edited), summed over the vocabulary.

    base_logits, edited_logits (B, T, V); mask (B, T) of 0/1. Identical logits give 0.
    """
    base_logp = F.log_softmax(base_logits.float(), dim=-1)
    edited_logp = F.log_softmax(edited_logits.float(), dim=-1)
    kl = (base_logp.exp() * (base_logp - edited_logp)).sum(-1)  # (B, T)
    m = mask.float()
    return (kl * m).sum() / m.sum().clamp(min=1.0)


def sentinel_info_nce(queries: torch.Tensor, keys: torch.Tensor, sentinel: torch.Tensor, positives: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """InfoNCE over the candidates [sentinel, keys...] for each query.

    queries (Q, R) and keys (K, R) unit vectors, sentinel (R,) unit vector, positives (Q,) long: the index
    of the query's knowledge in `keys`, or -1 for an unrelated query (whose positive is the sentinel).
    Returns the mean cross-entropy (a scalar).
    """
    candidates = torch.cat([sentinel[None], keys])  # (1 + K, R)
    logits = queries @ candidates.T / temperature  # (Q, 1 + K)
    return F.cross_entropy(logits, positives + 1)
