"""The one supervised training loop: gradient accumulation, clipping, a scheduler stepped
once per optimizer step, resume with the exact data position, atomic checkpoints, a
non-finite-loss stop and the simulated-kill hook.

Fine-tuning the original and retain models and every loss-based unlearning method run
on it; they differ only in the loss (`LossFn`) and in what they save beside a checkpoint.
DareU's PPO loop is not a supervised loop and has its own (`dareu.ppo.trainer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from dareu.guards import check_finite_loss
from dareu.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dareu.train.common import JsonlLogger, TrainingStopped
from dareu.train.data import set_loader_epoch


@dataclass
class LoopPosition:
    """Where the loop is, as the loss sees it (methods read the epoch and step)."""

    epoch: int = 0
    step: int = 0  # optimizer steps done
    micro_step: int = 0  # micro-batches in the current accumulation window
    sync: bool = True  # this micro-batch ends the window (gradients are synchronised)


# loss(batch, position) -> (loss tensor, extra floats to log)
LossFn = Callable[[Any, LoopPosition], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class LoopResult:
    steps: int
    resumed_from_step: int
    first: dict[str, float] | None
    last: dict[str, float]
    losses: list[float] = field(default_factory=list)
    train_time_s: float = 0.0


@dataclass
class LoopSettings:
    total: int  # optimizer steps
    steps_per_epoch: int
    grad_accum: int
    max_grad_norm: float
    ckpt_dir: Path
    logger: JsonlLogger
    save_every: int = 0
    resume: bool = False
    stop_after_steps: int | None = None
    progress: bool = True
    desc: str = "train"
    # extra state saved beside a checkpoint / restored on resume (a method's own state)
    on_save: Callable[[str], None] | None = None
    on_resume: Callable[[Path], None] | None = None


def run_loop(
    model: Any,
    loader: Any,
    optimizer: Any,
    scheduler: Any,
    accelerator: Accelerator,
    loss_fn: LossFn,
    s: LoopSettings,
) -> LoopResult:
    """Train `model` (already prepared by Accelerate) for `s.total` optimizer steps."""
    step, ckpt = 0, latest_checkpoint(s.ckpt_dir) if s.resume else None
    if ckpt is not None:
        step = load_checkpoint(ckpt, accelerator.unwrap_model(model), optimizer, scheduler)
        if s.on_resume is not None:
            s.on_resume(ckpt)
        accelerator.print(f"resumed from {ckpt} (step {step}/{s.total})")
    elif s.resume:
        accelerator.print(f"no checkpoint in {s.ckpt_dir}; starting from step 0")
    start_epoch, skip = step // s.steps_per_epoch, (step % s.steps_per_epoch) * s.grad_accum
    bar = tqdm(total=s.total, initial=step, desc=s.desc, dynamic_ncols=True,
               disable=not (s.progress and accelerator.is_local_main_process))  # fmt: skip
    result = LoopResult(s.total, int(ckpt.name.split("-")[-1]) if ckpt else 0, None, {})
    accelerator.print(f"[dareu] {s.desc}: {s.total} optimizer steps" +
                      (f", resuming at step {step}" if step else ""))  # fmt: skip
    t0, pos = time.perf_counter(), LoopPosition(epoch=start_epoch, step=step)
    sums: dict[str, float] = {}
    model.train()
    while pos.step < s.total:
        set_loader_epoch(loader, pos.epoch)
        for i, batch in enumerate(loader):
            if pos.epoch == start_epoch and i < skip:
                continue  # trained on before the checkpoint
            with accelerator.accumulate(model):
                pos.sync = accelerator.sync_gradients
                loss, logs = loss_fn(batch, pos)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), s.max_grad_norm)
                optimizer.step()  # a no-op until the last micro-batch of the window
                optimizer.zero_grad()
            for k, v in {"loss": float(loss.detach()), **logs}.items():
                sums[k] = sums.get(k, 0.0) + v
            pos.micro_step += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            pos.step += 1
            record = _step_record(sums, pos.micro_step, accelerator)
            sums, pos.micro_step = {}, 0
            check_finite_loss(f"step {pos.step}", loss=record["loss"])  # before any save
            result.first, result.last = result.first or record, record
            result.losses.append(record["loss"])
            s.logger.log({"step": pos.step, "epoch": pos.epoch,
                          "lr": scheduler.get_last_lr()[0], **record})  # fmt: skip
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", epoch=pos.epoch)
            if pos.step - step == PACE_STEPS and s.total - pos.step > PACE_STEPS:
                _print_estimate(accelerator, s, pos.step - step, time.perf_counter() - t0)
            _maybe_checkpoint(model, optimizer, scheduler, accelerator, pos, s, bar)
            if pos.step >= s.total:
                break
        pos.epoch += 1
    bar.close()
    result.train_time_s = round(time.perf_counter() - t0, 2)
    return result


# Steps timed before a long loop prints how long the rest will take.
PACE_STEPS = 10


def _print_estimate(acc: Accelerator, s: LoopSettings, done: int, seconds: float) -> None:
    """The remaining time at the pace of the first steps (a long stage says what it costs
    before most of it has run)."""
    left = (s.total - done) * seconds / done
    acc.print(f"[dareu] {s.desc}: about {left / 60:.1f} min left for {s.total - done} steps "
              f"(at {seconds / done:.2f} s/step over the first {done})")  # fmt: skip


def _step_record(sums: dict[str, float], n_micro: int, acc: Accelerator) -> dict[str, float]:
    """Means over the window's micro-batches; the loss averaged over processes."""
    record = {k: v / n_micro for k, v in sums.items()}
    record["loss"] = acc.reduce(torch.tensor(record["loss"], device=acc.device), "mean").item()
    return record


def _maybe_checkpoint(
    model: Any, optimizer: Any, scheduler: Any, acc: Accelerator, pos: LoopPosition,
    s: LoopSettings, bar: Any,
) -> None:  # fmt: skip
    """Every `save_every` steps an atomic checkpoint; then the simulated-kill hook."""
    if s.save_every and pos.step % s.save_every == 0 and pos.step < s.total:
        if acc.is_main_process:
            if s.on_save is not None:
                s.on_save(f"step-{pos.step:08d}")
            save_checkpoint(s.ckpt_dir, pos.step, acc.unwrap_model(model), optimizer, scheduler,
                            meta={"epoch": pos.epoch, "total": s.total})  # fmt: skip
        acc.wait_for_everyone()
    if s.stop_after_steps is not None and s.stop_after_steps <= pos.step < s.total:
        bar.close()
        raise TrainingStopped(pos.step, latest_checkpoint(s.ckpt_dir), "optimizer steps")
