"""The DareU reward: de-attribution rewards, advantages and returns for PPO.

These are the Rust core's functions, from the torch-free distribution `dareu-reward-core`
(`dareu_reward_core`, also importable as `dareu._reward_core`; built by `make install` or
`pip install ./rust/reward_core_py`). Layout: right-padded `[B, T]` arrays plus per-row
response lengths `[B]`; float32 in and out (float64 accepted and converted), int64
for lengths and positions. See docs/reward_core.md for formulas and edge cases.

`dareu.reward.reference` is the readable numpy specification and
`dareu.reward.torch_impl` a vectorized torch version; neither is a fallback.
"""

from __future__ import annotations

try:
    from dareu_reward_core import *  # noqa: F403 - the core's API, defined once there
    from dareu_reward_core import __all__ as _core_names
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "dareu_reward_core (the compiled Rust reward core, distribution dareu-reward-core) "
        "is missing or broken: build it with `pip install ./rust/reward_core_py` (or "
        "`make install`) from the repo root, or install a dareu_reward_core wheel. "
        f"Original error: {err}"
    ) from err

__all__ = [name for name in _core_names if name != "__version__"]
