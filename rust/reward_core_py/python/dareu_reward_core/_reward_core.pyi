"""Type stubs of the compiled reward core `dareu_reward_core._reward_core` (rust/reward_core_py,
over rust/reward_core); `dareu._reward_core` is the same module."""

import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]

C_SEG: float
K_SLICES: int
CHI_EPS: float
KL_COEF: float
GAMMA: float
GAE_LAMBDA: float
WHITEN_EPS: float

def segment_schedule(
    lengths: NDArray[np.integer], max_len: int, *, k: int | None = None, kappa: int | None = None
) -> tuple[I64, I64, I64]:
    """(prefix_ends [B, K], n_segments [B], token_segment [B, max_len])."""

def chi(scores: NDArray[np.floating], *, c_seg: float = ..., eps: float = ...) -> F32: ...
def assemble_rewards(
    scores: NDArray[np.floating],
    kl: NDArray[np.floating],
    lengths: NDArray[np.integer],
    *,
    k: int | None = None,
    kappa: int | None = None,
    c_seg: float = ...,
    eps: float = ...,
    kl_coef: float = ...,
) -> F32: ...
def gae(
    rewards: NDArray[np.floating],
    values: NDArray[np.floating],
    lengths: NDArray[np.integer],
    *,
    gamma: float = ...,
    lam: float = ...,
) -> tuple[F32, F32]: ...
def whiten(
    x: NDArray[np.floating],
    lengths: NDArray[np.integer],
    *,
    shift_mean: bool = True,
    whiten_eps: float = ...,
) -> F32: ...
def ppo_advantages(
    scores: NDArray[np.floating],
    kl: NDArray[np.floating],
    values: NDArray[np.floating],
    lengths: NDArray[np.integer],
    *,
    k: int | None = None,
    kappa: int | None = None,
    c_seg: float = ...,
    eps: float = ...,
    kl_coef: float = ...,
    gamma: float = ...,
    lam: float = ...,
    whiten: bool = True,
    shift_mean: bool = True,
    whiten_eps: float = ...,
    length_norm: bool = False,
) -> tuple[F32, F32, F32]:
    """(rewards, advantages, returns), each [B, T]; with `length_norm` each row's rewards
    are divided by its length before GAE."""

def align_prefix_ends(
    policy_offsets: NDArray[np.integer],
    attribution_offsets: NDArray[np.integer],
    prefix_ends: NDArray[np.integer],
) -> I64: ...
def align_prefix_ends_batch(
    policy_offsets: NDArray[np.integer],
    policy_lengths: NDArray[np.integer],
    attribution_offsets: NDArray[np.integer],
    attribution_lengths: NDArray[np.integer],
    prefix_ends: NDArray[np.integer],
) -> I64: ...
