"""Non-finite numbers stop a run early, with a message naming the setting or the step.

NaN passes every `x < 0` check and turns `x > 0` checks off silently, and a NaN loss
trains a NaN model that would otherwise be saved as complete; these helpers are what
the config validators and the training loops share to refuse both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or inf: the run stops before anything is saved complete."""

    def __init__(self, where: str, losses: dict[str, float]) -> None:
        bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
        super().__init__(
            f"non-finite loss at {where} ({bad}); stopping before the model is saved. "
            "Lower the learning rate or the loss coefficients, or check the data"
        )
        self.where = where
        self.losses = dict(losses)


def check_finite_loss(where: str, **losses: float) -> None:
    """Raise NonFiniteLossError if any loss is NaN or inf.

    Takes Python floats the loop already has (after its `.item()` for logging), so the
    check adds no device sync; every process sees the same reduced values and so all
    raise together (no process is left waiting in a collective).
    """
    if not all(math.isfinite(v) for v in losses.values()):
        raise NonFiniteLossError(where, losses)


def check_finite_fields(config: Any, *, flags: bool = False) -> None:
    """Raise ValueError naming the first float field of a dataclass that is NaN or inf.

    With `flags`, the name is given as the CLI flag (`--max-grad-norm`), else as the
    field name followed by its flag.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            flag = "--" + f.name.replace("_", "-")
            name = flag if flags else f"{f.name} ({flag})"
            raise ValueError(f"{name} must be a finite number, got {value}")
