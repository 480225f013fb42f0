"""The original model's distribution on the retain rows' answer tokens, kept across steps.

The original model never changes, so the distillation target of a retain row is the same at
every PPO step. It is kept whole (`[tokens, vocab]` float32 log-probs) when every retain
row's fits in `--teacher-cache-mb`; otherwise as its top k log-probs per token plus the log
of the mass outside them (k as large as the budget allows, or `--teacher-topk`), from which
`losses.topk_kl` computes the KL between the two distributions coarsened to those k tokens
and one "rest" bucket. That KL is a lower bound of the full one: the gap is the rest mass
times the KL between the two tails, which the coarse form cannot see (docs/dareu.md
measures it on the default job).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

TeacherForm = Literal["full", "topk"]
# Below this many tokens per position a top-k cache is too coarse to stand in for the
# distribution: the teacher is recomputed instead.
MIN_TOPK = 16
BYTES_PER_KEPT = 8  # float32 log-prob + int32 token id


@dataclass
class TopKTeacher:
    """Top-k log-probs `[N, k]`, their token ids `[N, k]` and log(1 - their mass) `[N]`."""

    logp: torch.Tensor
    ids: torch.Tensor
    rest: torch.Tensor


Teacher = torch.Tensor | TopKTeacher


def plan(n_tokens: int, vocab: int, budget_mb: int, topk: int) -> tuple[TeacherForm, int] | None:
    """(form, k) of a cache of `n_tokens` answer tokens in `budget_mb`, or None when neither
    the full log-probs nor at least MIN_TOPK tokens per position fit (recompute)."""
    budget = budget_mb * 2**20
    if budget <= 0:
        return None
    if topk <= 0 and n_tokens * vocab * 4 <= budget:
        return "full", vocab
    k = topk if topk > 0 else budget // max(n_tokens * BYTES_PER_KEPT, 1)
    if k >= vocab:
        return "full", vocab
    if k < MIN_TOPK or n_tokens * k * BYTES_PER_KEPT > budget:
        return None
    return "topk", int(k)


def compress(logp: torch.Tensor, k: int) -> TopKTeacher:
    """The top-k form of full teacher log-probs `[N, V]`."""
    top, ids = logp.topk(k, dim=-1)
    # log(1 - sum of the kept probabilities), without cancellation near 0 mass left.
    rest = torch.log(-torch.expm1(torch.logsumexp(top, dim=-1).clamp(max=0.0)))
    return TopKTeacher(top.contiguous(), ids.to(torch.int32), rest)


@dataclass
class TeacherCache:
    """Per retain row, its teacher block (full `[n, V]` or top-k), filled once."""

    form: TeacherForm
    k: int
    rows: dict[int, Teacher] = field(default_factory=dict)

    def put(self, row: int, logp: torch.Tensor) -> None:
        self.rows[row] = logp if self.form == "full" else compress(logp, self.k)

    def get(self, rows: list[int]) -> Teacher:
        """The blocks of `rows`, concatenated row-major."""
        blocks = [self.rows[i] for i in rows]
        if self.form == "full":
            return torch.cat([b for b in blocks if isinstance(b, torch.Tensor)])
        tk = [b for b in blocks if isinstance(b, TopKTeacher)]
        return TopKTeacher(torch.cat([b.logp for b in tk]), torch.cat([b.ids for b in tk]),
                           torch.cat([b.rest for b in tk]))  # fmt: skip
