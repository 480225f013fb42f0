"""Seeding, the Accelerator, and a JSONL metrics log: plumbing every trainer shares."""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, PartialState

from dareu.models.loading import resolve_dtype

MIXED_PRECISION = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "no"}


class TrainingStopped(RuntimeError):
    """A run stopped on purpose by a `stop_after_*` hook (a simulated kill, in tests and
    benchmarks) after `step` optimizer steps or rollout batches; resume continues it."""

    def __init__(self, step: int, checkpoint: Path | None = None, unit: str = "steps") -> None:
        where = f"; latest checkpoint: {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"stopped after {step} {unit} as asked{where}; re-run with --resume")
        self.step, self.checkpoint = step, checkpoint


def frozen_copy(
    model: torch.nn.Module, device: Any = None, dtype: torch.dtype | None = None
) -> torch.nn.Module:
    """A frozen copy of `model`: the original that full-parameter training compares
    against (its weights change under training; documented cost: 2x weights)."""
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    if device is not None:
        ref = ref.to(device)
    return ref.to(dtype) if dtype is not None else ref


def set_threads(threads: int | None) -> None:
    """--threads: torch's CPU threads for this process (None: torch's choice). One thread
    per process is what a shared machine wants (docs/dareu.md)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def default_cpu() -> bool:
    # Without a GPU, Accelerate only forms a multi-process (gloo) group when told cpu=True.
    return not torch.cuda.is_available()


def partial_state() -> PartialState:
    """The process-group state (rank, main process), created the same way as the Accelerator."""
    return PartialState(cpu=default_cpu())


def setup_accelerator(
    dtype: str = "auto",
    *,
    gradient_accumulation_steps: int = 1,
    cpu: bool | None = None,
    **kwargs: Any,
) -> Accelerator:
    """An Accelerator whose mixed precision follows `dtype` ("auto": bf16 on capable GPUs).

    Works both under `accelerate launch --config_file configs/accelerate_*.yaml` (DDP,
    FSDP, DeepSpeed come from the launcher's environment) and as plain `python`.
    """
    mixed = MIXED_PRECISION[resolve_dtype(dtype)]
    return Accelerator(
        mixed_precision=mixed,
        gradient_accumulation_steps=gradient_accumulation_steps,
        cpu=default_cpu() if cpu is None else cpu,
        **kwargs,  # e.g. log_with / project_dir for trackers
    )


class JsonlLogger:
    """Append one JSON object per line; only the main process writes.

    Line-at-a-time appends mean a killed run leaves a readable log of every step so far.
    """

    def __init__(self, path: Path | None, *, enabled: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.enabled = enabled and self.path is not None
        self.t0 = time.perf_counter()
        if self.enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled or self.path is None:
            return
        row = {**record, "time_s": round(time.perf_counter() - self.t0, 3)}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def is_sharded(acc: Accelerator) -> bool:
    """FSDP or DeepSpeed: parameters and optimizer state live in per-process shards, and
    every forward pass is a collective that all processes must join."""
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def is_zero3(acc: Accelerator) -> bool:
    """DeepSpeed ZeRO stage 3: every weight is partitioned, even frozen ones."""
    from accelerate.utils import DistributedType

    if acc.distributed_type != DistributedType.DEEPSPEED:
        return False
    plugin = acc.state.deepspeed_plugin
    return plugin is not None and plugin.zero_stage == 3


def refuse_frozen_copy_under_zero3(acc: Accelerator, what: str) -> None:
    """A deep copy of a ZeRO-3 model holds only empty partitions and no gather hooks, so
    it cannot serve as the frozen reference; say so before any training starts."""
    if is_zero3(acc):
        raise ValueError(
            f"{what}: a full-parameter run needs a frozen copy of the original model, which "
            "DeepSpeed ZeRO-3 cannot provide here; use LoRA (the reference is the policy "
            "with adapters off) or FSDP (configs/accelerate_fsdp.yaml)"
        )
