"""The three loss terms of a DareU update, and the per-token KL estimators.

Every mean is a sum divided by a count the caller passes in: under data parallelism the
count is the *global* number of tokens (or rows), multiplied by the number of processes
because DDP averages gradients, so that N processes compute exactly the gradient of one
process holding the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dareu.ppo.config import KLEstimator
from dareu.ppo.teacher import Teacher, TopKTeacher


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: KLEstimator) -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the sampled token's log-probs.

    k1 = log pi - log pi_ref (unbiased, can be negative; TRL's default), k2 = (k1)^2 / 2,
    k3 = exp(-k1) - 1 + k1 (unbiased and >= 0; Schulman's "approximating KL").
    """
    d = logp - ref_logp
    if estimator == "k1":
        return d
    if estimator == "k2":
        return 0.5 * d * d
    if estimator == "k3":
        return torch.expm1(-d) + d
    raise ValueError(f"unknown KL estimator {estimator!r}")


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum()


def token_weights(mask: torch.Tensor, how: str) -> torch.Tensor:
    """Weights whose sum over a batch is the count the loss is averaged by.

    'token': every valid token weighs 1 (TRL). 'sequence': each row's tokens share weight
    1, so a long response counts as much as a short one, not more.
    """
    m = mask.float()
    if how == "token":
        return m
    if how == "sequence":
        return m / m.sum(dim=1, keepdim=True).clamp(min=1)
    raise ValueError(f"unknown loss aggregation {how!r}")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    weights: torch.Tensor,
    denom: float,
    clip_range: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, -min(r A, clip(r, 1 -+ eps) A), weighted and summed / denom."""
    ratio = torch.exp(logp - old_logp)
    pg1 = -advantages * ratio
    pg2 = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_sum(torch.maximum(pg1, pg2), weights) / denom
    with torch.no_grad():
        valid = weights > 0
        n = valid.sum().clamp(min=1)
        stats = {
            "clipfrac": ((pg2 > pg1) & valid).sum() / n,
            # k3 estimate of KL(old || new): what target_kl and the logs read.
            "approx_kl": masked_sum(torch.expm1(logp - old_logp) - (logp - old_logp), valid) / n,
            "ratio_mean": masked_sum(ratio, valid) / n,
        }
    return loss, stats


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    weights: torch.Tensor,
    denom: float,
    clip_range_value: float,
) -> torch.Tensor:
    """0.5 * max((V - R)^2, (V_clipped - R)^2): PPO2/TRL's clipped value loss (no clip if 0)."""
    err = (values - returns) ** 2
    if clip_range_value > 0:
        clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
        err = torch.maximum(err, (clipped - returns) ** 2)
    return 0.5 * masked_sum(err, weights) / denom


def distill_from_teacher(logits: torch.Tensor, teacher: Teacher, denom: float) -> torch.Tensor:
    """L_dis = KL(pi_original || pi) over the full vocabulary at the N retain answer tokens
    (teacher forcing on the ground-truth answer): the student's logits `[N, V]` and the
    teacher's log-probs `[N, V]`, both row-major (the PPO loop computes the student's head
    on those positions only, and caches the teacher's: the original model never changes).
    Forward KL is mass-covering: the policy must keep putting probability wherever the
    original did. A top-k teacher gives the KL of the coarsened distributions (`topk_kl`)."""
    logq = F.log_softmax(logits.float(), dim=-1)
    if isinstance(teacher, TopKTeacher):
        kl = topk_kl(logq, teacher)
    else:
        kl = (teacher.exp() * (teacher - logq)).sum(dim=-1)
    return kl.sum() / denom


def topk_kl(logq: torch.Tensor, teacher: TopKTeacher) -> torch.Tensor:
    """Per row, KL between teacher and student coarsened to the teacher's k tokens and one
    bucket for the rest of the vocabulary (a lower bound of the full KL)."""
    ids = teacher.ids.long()
    q_top = logq.gather(-1, ids)
    q_rest = torch.logsumexp(logq.scatter(-1, ids, float("-inf")), dim=-1)
    kl = (teacher.logp.exp() * (teacher.logp - q_top)).sum(dim=-1)
    p_rest = teacher.rest.exp()
    p_log = torch.where(p_rest > 0, teacher.rest, q_rest)  # no mass left: the term is 0
    return kl + p_rest * (p_log - q_rest)
