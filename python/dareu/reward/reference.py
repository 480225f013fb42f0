"""Plain-numpy reference of the reward core: the specification, written for clarity.

Every function mirrors one in `dareu.reward` (the Rust core) and computes in float64
with explicit loops, so that the tests can check the fast paths against something a
reader can verify line by line against docs/reward_core.md.

Layout: ragged batches are right-padded `[B, T]` arrays plus `lengths [B]`; row i's
valid tokens are `0..lengths[i]`. Padding is never read and is written as 0
(index arrays: `prefix_ends` 0, `token_segment` -1).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The paper's constants, defined once (in the Rust core) and read from it.
from dareu._reward_core import C_SEG, CHI_EPS, GAE_LAMBDA, GAMMA, K_SLICES, KL_COEF, WHITEN_EPS

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def _slices(k: int | None, kappa: int | None) -> tuple[int | None, int | None]:
    if k is None and kappa is None:
        return K_SLICES, None
    return k, kappa


def kappa_for(length: int, k: int | None = None, kappa: int | None = None) -> int:
    """Tokens per segment of a row: ceil(L / k), or the fixed kappa; 0 for an empty row."""
    k, kappa = _slices(k, kappa)
    if length == 0:
        return 0
    if kappa is not None:
        return kappa
    assert k is not None
    return math.ceil(length / k)


def n_segments(length: int, k: int | None = None, kappa: int | None = None) -> int:
    """ceil(L / kappa_L): at most k, fewer when k does not divide L evenly."""
    kap = kappa_for(length, k, kappa)
    return 0 if kap == 0 else math.ceil(length / kap)


def max_segments(max_len: int, k: int | None = None, kappa: int | None = None) -> int:
    """Schedule width K: the most segments any row of at most max_len tokens can have."""
    k, kappa = _slices(k, kappa)
    if kappa is not None:
        return math.ceil(max_len / kappa)
    assert k is not None
    return min(k, max_len)


def segment_schedule(
    lengths: ArrayLike, max_len: int, *, k: int | None = None, kappa: int | None = None
) -> tuple[I64, I64, I64]:
    """(prefix_ends [B, K], n_segments [B], token_segment [B, max_len])."""
    lens = [int(v) for v in np.asarray(lengths)]
    width = max_segments(max_len, k, kappa)
    prefix_ends = np.zeros((len(lens), width), dtype=np.int64)
    n_seg = np.zeros(len(lens), dtype=np.int64)
    token_segment = np.full((len(lens), max_len), -1, dtype=np.int64)
    for i, length in enumerate(lens):
        kap = kappa_for(length, k, kappa)
        n_seg[i] = n_segments(length, k, kappa)
        for j in range(n_seg[i]):
            prefix_ends[i, j] = min((j + 1) * kap, length)  # the last one is the whole response
        for t in range(length):
            token_segment[i, t] = t // kap
    return prefix_ends, n_seg, token_segment


def chi(scores: ArrayLike, *, c_seg: float = C_SEG, eps: float = CHI_EPS) -> F64:
    """chi(b) = clip(ln(1 - clip(b, eps, 1 - eps)) / c_seg, -1, 0)."""
    b = np.clip(np.asarray(scores, dtype=np.float64), eps, 1.0 - eps)
    return np.clip(np.log1p(-b) / c_seg, -1.0, 0.0)


def assemble_rewards(
    scores: ArrayLike,
    kl: ArrayLike,
    lengths: ArrayLike,
    *,
    k: int | None = None,
    kappa: int | None = None,
    c_seg: float = C_SEG,
    eps: float = CHI_EPS,
    kl_coef: float = KL_COEF,
) -> F64:
    """r_t = (1 / (t + 1)) * sum_{t' <= t} chi(score of segment(t')) - kl_coef * kl_t."""
    s = np.asarray(scores, dtype=np.float64)
    kl_ = np.asarray(kl, dtype=np.float64)
    lens = np.asarray(lengths)
    batch, max_len = kl_.shape
    _, _, token_segment = segment_schedule(lens, max_len, k=k, kappa=kappa)
    rewards = np.zeros((batch, max_len))
    for i in range(batch):
        running = 0.0
        for t in range(int(lens[i])):
            running += float(chi(s[i, token_segment[i, t]], c_seg=c_seg, eps=eps))
            rewards[i, t] = running / (t + 1) - kl_coef * kl_[i, t]
    return rewards


def gae(
    rewards: ArrayLike,
    values: ArrayLike,
    lengths: ArrayLike,
    *,
    gamma: float = GAMMA,
    lam: float = GAE_LAMBDA,
) -> tuple[F64, F64]:
    """Masked GAE; the value after the last valid token is 0. Returns (adv, adv + values)."""
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    lens = np.asarray(lengths)
    adv = np.zeros_like(r)
    ret = np.zeros_like(r)
    for i in range(r.shape[0]):
        n = int(lens[i])
        last = 0.0
        for t in reversed(range(n)):
            next_value = v[i, t + 1] if t + 1 < n else 0.0
            delta = r[i, t] + gamma * next_value - v[i, t]
            last = delta + gamma * lam * last
            adv[i, t] = last
            ret[i, t] = last + v[i, t]
    return adv, ret


def whiten(
    x: ArrayLike,
    lengths: ArrayLike,
    *,
    shift_mean: bool = True,
    whiten_eps: float = WHITEN_EPS,
) -> F64:
    """TRL-style masked whitening over all valid tokens of the batch (unbiased variance).

    No valid token: all zeros. One valid token: the variance is taken as 0.
    """
    a = np.asarray(x, dtype=np.float64)
    lens = np.asarray(lengths)
    valid = [a[i, t] for i in range(a.shape[0]) for t in range(int(lens[i]))]
    out = np.zeros_like(a)
    if not valid:
        return out
    n = len(valid)
    mean = sum(valid) / n
    var = sum((v - mean) ** 2 for v in valid) / (n - 1) if n > 1 else 0.0
    for i in range(a.shape[0]):
        for t in range(int(lens[i])):
            w = (a[i, t] - mean) / math.sqrt(var + whiten_eps)
            out[i, t] = w if shift_mean else w + mean
    return out


_whiten = whiten  # `ppo_advantages` has a flag of the same name


def ppo_advantages(
    scores: ArrayLike,
    kl: ArrayLike,
    values: ArrayLike,
    lengths: ArrayLike,
    *,
    k: int | None = None,
    kappa: int | None = None,
    c_seg: float = C_SEG,
    eps: float = CHI_EPS,
    kl_coef: float = KL_COEF,
    gamma: float = GAMMA,
    lam: float = GAE_LAMBDA,
    whiten: bool = True,
    shift_mean: bool = True,
    whiten_eps: float = WHITEN_EPS,
    length_norm: bool = False,
) -> tuple[F64, F64, F64]:
    """schedule -> chi -> rewards (/ length) -> GAE -> whitening; returns use unwhitened
    advantages."""
    rewards = assemble_rewards(
        scores, kl, lengths, k=k, kappa=kappa, c_seg=c_seg, eps=eps, kl_coef=kl_coef
    )
    if length_norm:
        lens = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)
        rewards = rewards / lens[:, None]
    adv, ret = gae(rewards, values, lengths, gamma=gamma, lam=lam)
    if whiten:
        adv = _whiten(adv, lengths, shift_mean=shift_mean, whiten_eps=whiten_eps)
    return rewards, adv, ret


def align_prefix_ends(
    policy_offsets: ArrayLike, attribution_offsets: ArrayLike, prefix_ends: ArrayLike
) -> I64:
    """Attribution-token count covering the same text as each policy prefix, never more.

    A policy prefix of e tokens covers chars [0, c) with c = policy_offsets[e - 1, 1];
    the answer is the number of attribution tokens whose char end is <= c (0 if e = 0).
    """
    pol = np.asarray(policy_offsets).reshape(-1, 2)
    att = np.asarray(attribution_offsets).reshape(-1, 2)
    out = np.zeros(len(np.asarray(prefix_ends)), dtype=np.int64)
    for j, e in enumerate(np.asarray(prefix_ends)):
        if e == 0:
            continue
        c = pol[int(e) - 1, 1]
        out[j] = sum(1 for end in att[:, 1] if end <= c)
    return out


def align_prefix_ends_batch(
    policy_offsets: ArrayLike,
    policy_lengths: ArrayLike,
    attribution_offsets: ArrayLike,
    attribution_lengths: ArrayLike,
    prefix_ends: ArrayLike,
) -> I64:
    """Row-wise `align_prefix_ends` over right-padded offsets [B, T, 2]."""
    pol, att = np.asarray(policy_offsets), np.asarray(attribution_offsets)
    pl, al = np.asarray(policy_lengths), np.asarray(attribution_lengths)
    pe = np.asarray(prefix_ends)
    out = np.zeros(pe.shape, dtype=np.int64)
    for i in range(pe.shape[0]):
        out[i] = align_prefix_ends(pol[i, : int(pl[i])], att[i, : int(al[i])], pe[i])
    return out
