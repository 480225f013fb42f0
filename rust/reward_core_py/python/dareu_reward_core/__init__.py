"""DareU's reward core over numpy arrays: de-attribution rewards, advantages and returns.

The functions are the compiled Rust core's (`dareu_reward_core._reward_core`, this
distribution's only compiled part; numpy is its only dependency). Layout: right-padded
`[B, T]` arrays plus per-row response lengths `[B]`; float32 in and out (float64 accepted
and converted), int64 for lengths and positions. Formulas and edge cases:
docs/reward_core.md in the DareU repository. `dareu.reward` re-exports these same
functions (and `dareu.reward.torch` takes tensors).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    from dareu_reward_core._reward_core import (
        C_SEG,
        CHI_EPS,
        GAE_LAMBDA,
        GAMMA,
        K_SLICES,
        KL_COEF,
        WHITEN_EPS,
        align_prefix_ends,
        align_prefix_ends_batch,
        assemble_rewards,
        chi,
        gae,
        ppo_advantages,
        segment_schedule,
        whiten,
    )
except ImportError as err:  # pragma: no cover - depends on the build
    raise ImportError(
        "dareu_reward_core._reward_core (the compiled Rust reward core) is missing or broken: "
        "install a dareu_reward_core wheel, or build it from the DareU repo root with "
        f"`pip install ./rust/reward_core_py` (or `make install`). Original error: {err}"
    ) from err

try:
    __version__ = version("dareu-reward-core")
except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
    __version__ = "unknown"

__all__ = [
    "CHI_EPS",
    "C_SEG",
    "GAE_LAMBDA",
    "GAMMA",
    "KL_COEF",
    "K_SLICES",
    "WHITEN_EPS",
    "__version__",
    "align_prefix_ends",
    "align_prefix_ends_batch",
    "assemble_rewards",
    "chi",
    "gae",
    "ppo_advantages",
    "segment_schedule",
    "whiten",
]
