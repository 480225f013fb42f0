"""How one round of a forget request is unlearned: every method behind one interface,
looked up by name, so the job (`dareu.pipeline`) has no method-specific branch.

- "dareu": the PPO loop (`dareu.ppo.trainer.train_dareu`) with its own Accelerator;
- every other name: a loss on the shared trainer (`dareu.methods.run_method`).

A new method (an RL loop, say) is a class with this interface registered in UNLEARNERS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dareu.data.schema import Benchmark, QASample
from dareu.ppo.config import PPOConfig


@dataclass
class Round:
    """One round: what to forget and keep, which model to start from, where to write."""

    index: int
    request: list[QASample]  # the forget rows of this round
    distill: list[QASample]  # the retain rows a method keeps the model close on
    original: Path  # the job's original model (the one evaluated as "original")
    prev: Path | None  # the previous round's output
    retain_model: Path | None
    out_dir: Path
    attributor: Any
    stop_after: int | None  # a simulated kill (tests)


class Unlearner(Protocol):
    def config(self) -> dict[str, Any]:
        """The method's settings, as written to config.json and hashed into the run key."""
        ...

    def validate(self) -> None:
        """Cheap checks before any compute (ValueError names the flag)."""
        ...

    def start(self, out: Path) -> None:
        """Once before the first round (trackers, process groups)."""
        ...

    def train_round(self, bench: Benchmark, rnd: Round) -> Path:
        """Unlearn `rnd.request`; returns the unlearned model's folder."""
        ...

    def finish(self) -> None: ...


class DareU:
    """PPO with de-attribution rewards; a later round continues the previous adapter."""

    def __init__(self, job: Any, ppo: PPOConfig, baseline: dict[str, Any]) -> None:
        self.job, self.ppo = job, ppo
        self.accelerator: Any = None

    def config(self) -> dict[str, Any]:
        return self.ppo.to_dict()

    def validate(self) -> None:
        self.ppo.validate()

    def start(self, out: Path) -> None:
        from dareu.train.common import setup_accelerator

        kwargs: dict[str, Any] = {}
        if self.job.report_to == "tensorboard":
            kwargs = {"log_with": "tensorboard", "project_dir": str(out / "tensorboard")}
        self.accelerator = setup_accelerator(self.job.dtype, **kwargs)
        if self.job.report_to != "none":
            flat = {**dataclasses.asdict(self.job), **self.ppo.to_dict()}
            self.accelerator.init_trackers(
                "dareu",
                config={k: v if isinstance(v, int | float | str | bool) else str(v)
                        for k, v in flat.items()},
            )  # fmt: skip

    def train_round(self, bench: Benchmark, rnd: Round) -> Path:
        from dareu.ppo.trainer import RunSettings, train_dareu

        job = self.job
        settings = RunSettings(
            out_dir=rnd.out_dir, fmt=job.fmt, seed=job.seed, dtype=job.dtype,
            round_index=rnd.index, save_every=job.save_every, resume=job.resume,
            progress=job.progress, max_length=job.max_length,
            stop_after_batches=rnd.stop_after, init_adapter=rnd.prev,
            tracker=job.report_to != "none", continuation_tokens=job.continuation_tokens,
            extra_meta={"forget_owners": sorted({s.owner for s in rnd.request})},
        )  # fmt: skip
        return train_dareu(rnd.original, rnd.request, rnd.distill, rnd.attributor, self.ppo,
                           settings, self.accelerator)  # fmt: skip

    def finish(self) -> None:
        if self.accelerator is not None and self.job.report_to != "none":
            self.accelerator.end_training()


class Baseline:
    """A registered loss on the shared trainer; a later round starts from the previous
    round's model. `baseline` = {"hparams": {...}, "train": {UnlearnConfig overrides}}."""

    def __init__(self, job: Any, ppo: PPOConfig, baseline: dict[str, Any]) -> None:
        self.job, self.baseline = job, baseline

    def config(self) -> dict[str, Any]:
        return self.baseline

    def validate(self) -> None:
        pass  # the CLI checks --hparam and the shared flags (scripts/unlearn.py)

    def start(self, out: Path) -> None:
        pass

    def train_round(self, bench: Benchmark, rnd: Round) -> Path:
        from dareu.data.completion import task_rows
        from dareu.methods.trainer import UnlearnConfig, run_method

        job, owners = self.job, sorted({s.owner for s in rnd.request})
        view = dataclasses.replace(
            bench,
            forget=rnd.request,
            # the task's retain rows; the trainer adds general knowledge itself
            retain=task_rows(bench, "retain", job.retain_doc_share, job.seed),
            forget_eval=[s for s in bench.forget_eval if s.owner in set(owners)],
            forget_owners=owners,
        )
        cfg = UnlearnConfig(
            method=job.method,
            # The job's original (the model its evaluation calls "original", whatever
            # flags built it), or the previous round's output.
            model=str(rnd.prev or rnd.original),
            retain_model=str(rnd.retain_model) if rnd.retain_model else None,
            benchmark=job.benchmark, forget=job.forget, tofu_dir=job.tofu_dir,
            idk_path=job.idk_path, fmt=job.fmt, seed=job.seed, dtype=job.dtype,
            profile=job.resolved_profile, hparams=dict(self.baseline.get("hparams", {})),
            **self.baseline.get("train", {}),
        )  # fmt: skip
        out = run_method(job.method, cfg, out=rnd.out_dir / "model", benchmark=view,
                         force=job.force, resume=job.resume, save_every=job.save_every,
                         stop_after_steps=rnd.stop_after, progress=job.progress)  # fmt: skip
        return Path(out)

    def finish(self) -> None:
        pass


# name -> constructor(job, ppo, baseline); a name not here is a baseline.
UNLEARNERS: dict[str, Callable[[Any, PPOConfig, dict[str, Any]], Unlearner]] = {"dareu": DareU}


def make_unlearner(job: Any, ppo: PPOConfig, baseline: dict[str, Any] | None) -> Unlearner:
    """The registered unlearner of `job.method`; any other name is a baseline."""
    cls = UNLEARNERS.get(job.method.lower(), Baseline)
    return cls(job, ppo, baseline or {"hparams": {}, "train": {}})
