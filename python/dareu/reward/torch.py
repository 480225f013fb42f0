"""The Rust reward core for torch pipelines: the same functions as `dareu.reward`, over
tensors.

- lengths or a mask: every `lengths` argument also takes a right-padded `[B, T]`
  attention mask (1 on the response tokens), as a trainer usually holds it;
- any float dtype (fp16, bf16, fp32, fp64): computed in fp32, returned in fp32;
- inputs that require grad are detached (rewards and advantages are constants to PPO);
- contiguous fp32 CPU tensors reach the core without a copy; results come back on the
  input's device (a CUDA tensor makes one host round trip).

`dareu.reward.torch_impl` is a different thing: a pure-torch re-implementation kept as the
benchmark competitor of the core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

import dareu.reward as core

__all__ = ["assemble_rewards", "chi", "gae", "lengths_of", "ppo_advantages", "whiten"]


def lengths_of(lengths_or_mask: Tensor) -> Tensor:
    """int64 lengths `[B]` from lengths `[B]` or a right-padded mask `[B, T]` (ones, then
    zeros); a mask with a hole or left padding is rejected: its lengths would be wrong."""
    x = lengths_or_mask.detach()
    if x.ndim == 1:
        if x.is_floating_point():
            raise ValueError("lengths: expected an integer tensor, got a float one")
        return x.to(torch.int64)
    if x.ndim != 2:
        raise ValueError(f"lengths: expected lengths [B] or a mask [B, T], got {tuple(x.shape)}")
    m = x != 0
    n = m.sum(dim=1)
    right_padded = torch.arange(m.shape[1], device=m.device)[None, :] < n[:, None]
    if not bool((m == right_padded).all()):
        raise ValueError("lengths: the attention mask is not right-padded (ones, then zeros)")
    return n.to(torch.int64)


def _np_f32(name: str, x: Tensor) -> np.ndarray:
    """A float32 numpy view of `x` (no copy when it is a contiguous fp32 CPU tensor)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    return x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()


def _np_lengths(lengths_or_mask: Tensor) -> np.ndarray:
    return lengths_of(lengths_or_mask).cpu().contiguous().numpy()


def _back(a: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(like.device)


def chi(scores: Tensor, **kw: Any) -> Tensor:
    """chi(b) = clip(ln(1 - b) / c_seg, -1, 0), elementwise."""
    return _back(core.chi(_np_f32("scores", scores), **kw), scores)


def assemble_rewards(scores: Tensor, kl: Tensor, lengths: Tensor, **kw: Any) -> Tensor:
    """Per-token rewards `[B, T]`: the cumulative mean of chi over segment prefixes minus
    kl_coef * KL (keywords as `dareu.reward.assemble_rewards`)."""
    out = core.assemble_rewards(_np_f32("scores", scores), _np_f32("kl", kl),
                                _np_lengths(lengths), **kw)  # fmt: skip
    return _back(out, kl)


def gae(rewards: Tensor, values: Tensor, lengths: Tensor, **kw: Any) -> tuple[Tensor, Tensor]:
    """(advantages, returns) `[B, T]` by masked GAE."""
    adv, ret = core.gae(_np_f32("rewards", rewards), _np_f32("values", values),
                        _np_lengths(lengths), **kw)  # fmt: skip
    return _back(adv, values), _back(ret, values)


def whiten(x: Tensor, lengths: Tensor, **kw: Any) -> Tensor:
    """Masked whitening over the valid tokens of the whole batch."""
    return _back(core.whiten(_np_f32("x", x), _np_lengths(lengths), **kw), x)


def ppo_advantages(
    scores: Tensor, kl: Tensor, values: Tensor, lengths: Tensor, **kw: Any
) -> tuple[Tensor, Tensor, Tensor]:
    """(rewards, advantages, returns) `[B, T]` in one call into the core."""
    r, a, ret = core.ppo_advantages(
        _np_f32("scores", scores), _np_f32("kl", kl), _np_f32("values", values),
        _np_lengths(lengths), **kw,
    )  # fmt: skip
    return _back(r, values), _back(a, values), _back(ret, values)
