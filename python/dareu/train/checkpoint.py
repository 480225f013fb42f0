"""Atomic training checkpoints that a resumed run continues from bit for bit.

A checkpoint holds the trainable weights (safetensors), the optimizer and scheduler state,
every RNG state and the step count (torch.save, read back with weights_only=True, so no
pickle is ever executed). Each one is written with `atomic_dir`, so a run killed while
saving leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dareu.cache import atomic_dir, atomic_write_json, is_complete

PREFIX = "step-"
TORCH_FILES = ("optimizer.pt", "scheduler.pt", "rng.pt")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file."""


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights that change during training (all of them, or only the LoRA adapters).

    `named_parameters` lists a tied tensor once, which safetensors requires.
    """
    return {
        n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad
    }


def rng_state() -> dict[str, Any]:
    np_state: Any = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy arrays are not in weights_only's allow-list; a tensor is.
        "numpy": (
            np_state[0],
            torch.from_numpy(np_state[1].astype(np.int64)),
            *np_state[2:],
        ),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    ckpt_root: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    *,
    meta: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write `ckpt_root/step-XXXXXXXX` atomically and drop all but the newest `keep`.

    `model` is the unwrapped model; call on the main process only.
    """
    target = Path(ckpt_root) / f"{PREFIX}{step:08d}"
    with atomic_dir(target) as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        atomic_write_json(tmp / "state.json", {"step": step, **(meta or {})})
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written temp folders are ignored)."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(PREFIX) and is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def checkpoint_problem(ckpt: Path) -> str | None:
    """None if `ckpt` looks resumable, else what is wrong, naming the file. Cheap: reads
    safetensors headers, zip directories and state.json, not the tensors."""
    from dareu.models.loading import safetensors_problem

    try:
        int(json.loads((ckpt / "state.json").read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{ckpt / 'state.json'}: unreadable ({err})"
    for f in [ckpt / "trainable.safetensors", *ckpt.glob("*.safetensors")]:
        problem = safetensors_problem(f)
        if problem is not None:
            return f"{f}: {problem}"
    for name in TORCH_FILES:
        # torch.save writes a zip archive; anything else (a bare pickle, a truncated file)
        # would fail in torch.load, or worse
        if not zipfile.is_zipfile(ckpt / name):
            return f"{ckpt / name}: not a torch.save archive (missing, truncated or a pickle)"
    return None


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    """The newest checkpoint that passes `checkpoint_problem`; each newer one that does
    not is named on stderr, so a corrupt last save does not block --resume."""
    for ckpt in reversed(list_checkpoints(ckpt_root)):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        print(f"[dareu] skipping checkpoint {ckpt.name}: {problem}", file=sys.stderr, flush=True)
    return None


def load_checkpoint(
    ckpt: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
) -> int:
    """Restore weights, optimizer, scheduler and RNG from `ckpt`; return the step count.

    Everything is read before anything is restored, so a CheckpointError (a tampered or
    unreadable file) leaves the model and optimizer untouched.
    """
    try:
        weights = load_file(str(ckpt / "trainable.safetensors"))
        saved = {n: torch.load(ckpt / n, weights_only=True) for n in TORCH_FILES}
        step = int(json.loads((ckpt / "state.json").read_text())["step"])
    except Exception as err:  # SafetensorError, UnpicklingError, OSError, ...
        raise CheckpointError(
            f"--resume: checkpoint {ckpt} cannot be loaded: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}"
        ) from err
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != expected:
        diff = sorted(set(weights) ^ expected)[:5]
        raise ValueError(
            f"checkpoint {ckpt} does not match this model's trainable weights "
            f"(first differences: {diff}); was it written by a different configuration?"
        )
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
    optimizer.load_state_dict(saved["optimizer.pt"])
    scheduler.load_state_dict(saved["scheduler.pt"])
    set_rng_state(saved["rng.pt"])
    return step
