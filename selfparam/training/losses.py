"""Loss functions of the trainers, pure and tested on hand-made tensors.

SELF-PARAM minimises, over the tokens of each target sentence s,

    KL( P_theta(. | x, s_<t) || P_theta'(. | s_<t) )      (paper, eq. 3)

with the teacher theta shown the context x and the student theta' not. The teacher never changes
during one update, so its distributions are computed once and kept compactly: the top-k
log-probabilities at each position plus the log of the mass left over. The KL between the two
distributions collapsed onto {top-k tokens, "everything else"} is a lower bound of the full KL (the
log-sum inequality) and equals it as the left-over mass goes to zero; `tests/test_losses.py` bounds the
gap on real-shaped distributions.

Beside the KL, `hidden_l1` is Deep Context Distillation's hidden-state term (Caccia et al. 2025, "Training
Plug-n-Play Knowledge Modules with Deep Context Distillation"): the student without the context is also
taught the teacher's hidden states, layer by layer, at the same scored tokens (SELF-PARAM's `hidden_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class CompactTeacher:
    """A teacher's distributions at the scored positions of one sequence, in k+1 numbers per token.

    topk_logp:  (n, k) log-probabilities of the teacher's k most likely tokens
    topk_ids:   (n, k) their vocabulary ids
    rest_logp:  (n,)   log of the probability mass outside the top k
    """

    topk_logp: torch.Tensor
    topk_ids: torch.Tensor
    rest_logp: torch.Tensor

    def __len__(self) -> int:
        return self.topk_logp.shape[0]


def _log1mexp(log_p: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(log_p)) for log_p <= 0, stable near both ends."""
    log_p = log_p.clamp(max=-1e-7)
    return torch.where(log_p > -0.6931, torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))


def compact_teacher(teacher_logp: torch.Tensor, k: int) -> CompactTeacher:
    """Keep the top-k of full-vocabulary teacher log-probabilities (..., V) and the left-over mass."""
    k = min(k, teacher_logp.shape[-1])
    topk_logp, topk_ids = teacher_logp.topk(k, dim=-1)
    rest_logp = _log1mexp(torch.logsumexp(topk_logp, dim=-1))
    return CompactTeacher(topk_logp, topk_ids, rest_logp)


def kl_full(teacher_logp: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
    """Exact KL(teacher || student) per position: (..., V), (..., V) -> (...)."""
    return (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)


def kl_compact(topk_logp: torch.Tensor, topk_ids: torch.Tensor, rest_logp: torch.Tensor,
               student_logp: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per position on the collapsed support {top-k, rest}.

    topk_logp, topk_ids: (..., k); rest_logp: (...); student_logp: (..., V) full log-softmax.
    Returns (...). Never exceeds `kl_full` of the uncollapsed distributions.
    """
    student_topk = student_logp.gather(-1, topk_ids)                          # (..., k)
    student_rest = _log1mexp(torch.logsumexp(student_topk, dim=-1))           # (...)
    kl_top = (topk_logp.exp() * (topk_logp - student_topk)).sum(-1)
    kl_rest = rest_logp.exp() * (rest_logp - student_rest)
    return kl_top + kl_rest


def hidden_l1(teacher_hidden: torch.Tensor, student_hidden: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Distance of the student's hidden states to the teacher's per position, each layer on its own scale:
    (L, ..., D), (L, ..., D) -> (...), L layers of width D.

    At each layer and position, the mean absolute difference over the D dimensions divided by the mean
    absolute value of the teacher's hidden state there (so a layer whose states are ten times larger
    weighs the same, and 1.0 means an error as large as the state itself), averaged over the layers. The
    scale is taken per position (not over a batch) so an example's term does not depend on its batch mates.

    What we followed: DCD trains the student to "simulate hidden states and logits of a teacher that takes
    the document in context" (its abstract), with an L1 distance per layer normalised by the size of the
    teacher's state so that layers of different scale weigh alike. That is the form used here; DCD's exact
    normaliser and its sum (rather than our mean) over layers were not checked against the paper's equation,
    and a constant factor between the two is absorbed by the weight. The teacher's states are stored, so the
    scale gets no gradient.
    `eps` bounds the scale away from 0 (a position whose teacher state is all zeros is a padding slot).
    Computed in fp32 whatever the inputs' dtype.
    """
    teacher = teacher_hidden.float()
    distance = (student_hidden.float() - teacher).abs().mean(-1)      # (L, ...)
    scale = teacher.abs().mean(-1).clamp(min=eps)                     # (L, ...)
    return (distance / scale).mean(0)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of `values` over the positions where `mask` is true (0 when nothing is masked in); with
    `row_weights` (B,), each position of row b counts `row_weights[b]` times (a weighted mean)."""
    mask = mask.to(values.dtype)
    if row_weights is not None:
        mask = mask * row_weights.to(values.device, values.dtype).unsqueeze(1)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def next_token_nll(student_logp: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the gold next tokens per position: (..., V), (...) -> (...)."""
    return -student_logp.gather(-1, target_ids.unsqueeze(-1)).squeeze(-1)


def log_softmax_fp32(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax in fp32 whatever the logits' dtype: bf16 log-probabilities are too coarse for a KL."""
    return F.log_softmax(logits.float(), dim=-1)
