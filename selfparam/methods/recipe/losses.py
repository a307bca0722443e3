"""RECIPE's training losses as pure functions (shapes in the docstrings, tested on hand-made tensors).

L_total = L_edit + L_pl (paper, §3.4; the forms below follow the authors' released code, qizhou000/RECIPE,
`editors/recipe/recipe.py`, with the hinge scales of its `configs/recipe/*.yaml`, 1.2):
- L_edit: `hinge_target_loss` of the edited target on reliability and generality queries with the
  knowledge's prompt (only tokens the model does not yet prefer by the hinge margin contribute), plus
  `masked_kl` = KL(P_base || P_prompted) on locality queries (the prompt must not disturb them);
- L_pl: InfoNCE losses over the knowledge sentinel and the batch's knowledge (`sentinel_info_nce`):
  neighbour-oriented (a related query's positive is its knowledge, the sentinel among the negatives) and
  sentinel-oriented (an unrelated query's positive is the sentinel; a related query ranks the sentinel
  above every *other* knowledge, `sentinel_over_others_nce`), so the sentinel sits between a query's own
  knowledge and the rest: exactly the retrieval rule at inference.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

IGNORE = -100


def target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions.

    logits (B, T, V), labels (B, T) with IGNORE where there is no target; the logit at t predicts
    labels[t+1]. Returns a scalar.
    """
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE)


def _hinged_nll(logp: torch.Tensor, target: torch.Tensor, active: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean of -log p(target) over the rows of `logp` (N, C) that are `active` (N,) and whose target is not
    yet ahead of the best other class by the factor `scale`: p_t < scale * max_{c != t} p_c. Rows past the
    margin contribute nothing (the hinge); no contributing row gives 0 (still attached to the graph)."""
    lp_target = logp.gather(1, target[:, None]).squeeze(1)  # (N,)
    others = logp.scatter(1, target[:, None], float("-inf"))
    lp_other = others.max(dim=1).values  # (N,)
    hinge = math.log(scale) if math.isfinite(scale) else float("inf")
    keep = active & (lp_target < lp_other + hinge)
    if not bool(keep.any()):
        return logp.sum() * 0.0
    return -(lp_target[keep]).mean()


def hinge_target_loss(logits: torch.Tensor, labels: torch.Tensor, scale: float = 1.2) -> torch.Tensor:
    """RECIPE's edit loss: next-token NLL of the target, counted only at labelled positions where the
    target's probability is below `scale` times the best other token's,

        L = mean_{t in A} -log p(y_t),   A = {t labelled : p(y_t) < scale * max_{v != y_t} p(v)},

    (the authors' `hinge_label_loss`, `edit_hinge_scale: 1.2`): a token the prompt already makes the
    model prefer by that margin stops pulling, so the prompt generator spends its capacity on the tokens
    still wrong instead of driving easy ones towards probability 1. `scale=math.inf` is plain
    `target_cross_entropy`. logits (B, T, V), labels (B, T) with IGNORE; the logit at t predicts
    labels[t+1]. Returns a scalar (0 when every target token is past the margin).
    """
    if not scale >= 1.0:
        raise ValueError(f"scale: the hinge scale must be >= 1, got {scale!r}")
    labels = labels[:, 1:].flatten()
    logp = F.log_softmax(logits[:, :-1].flatten(0, 1).float(), dim=-1)  # (B*(T-1), V)
    active = labels != IGNORE
    return _hinged_nll(logp, labels.clamp(min=0), active, scale)


def masked_kl(base_logits: torch.Tensor, edited_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of KL(P_base || P_edited), summed over the vocabulary (RECIPE's locality
    loss, the authors' `logit_KL_loss`: the mask covers the answer positions of the locality query).

    base_logits, edited_logits (B, T, V); mask (B, T) of 0/1. Identical logits give 0.
    """
    base_logp = F.log_softmax(base_logits.float(), dim=-1)
    edited_logp = F.log_softmax(edited_logits.float(), dim=-1)
    kl = (base_logp.exp() * (base_logp - edited_logp)).sum(-1)  # (B, T)
    m = mask.float()
    return (kl * m).sum() / m.sum().clamp(min=1.0)


def sentinel_info_nce(queries: torch.Tensor, keys: torch.Tensor, sentinel: torch.Tensor, positives: torch.Tensor,
                      temperature: float, hinge_scale: float = math.inf) -> torch.Tensor:
    """InfoNCE over the candidates [sentinel, keys...] for each query (neighbour-oriented for related
    queries, sentinel-oriented for unrelated ones).

    queries (Q, R) and keys (K, R) unit vectors, sentinel (R,) unit vector, positives (Q,) long: the index
    of the query's knowledge in `keys`, or -1 for an unrelated query (whose positive is the sentinel).
    With `hinge_scale` finite, an unrelated query whose sentinel probability is already `hinge_scale`
    times its best knowledge's contributes 0 (the authors' `constra_hinge_scale`, 1.2; they hinge the
    sentinel-oriented terms only, so related queries always count). Returns the mean over all queries.
    """
    if not hinge_scale >= 1.0:
        raise ValueError(f"hinge_scale: must be >= 1, got {hinge_scale!r}")
    candidates = torch.cat([sentinel[None], keys])  # (1 + K, R)
    logp = F.log_softmax(queries @ candidates.T / temperature, dim=1)  # (Q, 1 + K)
    target = positives + 1
    lp_target = logp.gather(1, target[:, None]).squeeze(1)  # (Q,)
    if not math.isfinite(hinge_scale):
        return -lp_target.mean()
    lp_other = logp.scatter(1, target[:, None], float("-inf")).max(dim=1).values  # (Q,)
    # related rows always count; an unrelated row past the margin counts as 0 (the mean stays over all rows)
    counts = (positives >= 0) | (lp_target < lp_other + math.log(hinge_scale))
    return -(lp_target * counts).sum() / max(1, queries.shape[0])


def sentinel_over_others_nce(queries: torch.Tensor, keys: torch.Tensor, sentinel: torch.Tensor, own: torch.Tensor,
                             temperature: float, hinge_scale: float = math.inf) -> torch.Tensor:
    """Sentinel-oriented InfoNCE for related queries: each query's own knowledge is replaced by the
    sentinel among the candidates, and the sentinel is the positive, so the sentinel ranks above every
    knowledge that is *not* the query's (the authors' `loss_contra_q2`). Together with the
    neighbour-oriented loss (own knowledge above the sentinel) this puts the sentinel between the right
    knowledge and the wrong ones.

    queries (Q, R), keys (K, R), sentinel (R,) unit vectors; own (Q,) long in [0, K). Rows whose sentinel
    probability is already `hinge_scale` times the best other's contribute nothing. Returns a scalar.
    """
    if not hinge_scale >= 1.0:
        raise ValueError(f"hinge_scale: must be >= 1, got {hinge_scale!r}")
    sims = queries @ keys.T  # (Q, K)
    rows = torch.arange(queries.shape[0], device=queries.device)
    sims = sims.index_put((rows, own), queries @ sentinel)  # own knowledge -> the sentinel
    logp = F.log_softmax(sims / temperature, dim=1)
    return _hinged_nll(logp, own, torch.ones_like(own, dtype=torch.bool), hinge_scale)
