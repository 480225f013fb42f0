"""The one training loop every baseline and ATWU runs on (CleanRL style: read top to bottom).

    batch (forget + a sampled retain batch [+ IdK answers]) -> method.loss -> backward
    -> clip -> AdamW step -> linear schedule -> JSONL log -> atomic checkpoint

LoRA or full parameters, Accelerate (single device, DDP; `accelerate launch`), resumable
checkpoints, and a final output folder that is a complete HF checkpoint written atomically,
so `dareu.models.load_model(path)` and the evaluation take it like any other model.
"""

from __future__ import annotations

import copy
import math
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from torch.utils.data import DataLoader, Dataset
from transformers import get_scheduler

from dareu.cache import (
    atomic_dir,
    atomic_write_json,
    build_once,
    content_hash,
    output_root,
)
from dareu.data.completion import count_rows
from dareu.data.formatting import (
    PROMPT_FORMATS,
    TEXT,
    check_format,
    collate_train,
    encode_qa,
    encode_sample,
    row_format,
)
from dareu.data.schema import Benchmark, QASample
from dareu.guards import check_finite_fields
from dareu.methods.base import Method, TrainContext, get_method
from dareu.methods.common import Inputs, Reference
from dareu.methods.defaults import PROFILES, Profile, merge_hparams, method_defaults, train_defaults
from dareu.train.common import TrainingStopped, is_sharded, refuse_frozen_copy_under_zero3
from dareu.train.data import EpochShuffleSampler

METHODS_VERSION = 1  # bump when the loop changes what a given config produces


# --------------------------------------------------------------------------- configuration
@dataclass
class UnlearnConfig:
    """Everything that decides the weights an unlearning run produces (and its cache key).

    `None` means "the method's default for this profile" (see `dareu.methods.defaults`).
    """

    method: str = "graddiff"
    model: str | None = None  # original model folder; None: the cached tiny original
    retain_model: str | None = None  # for "retrain"; None: the cached tiny retain model
    benchmark: str = "synthetic"
    forget: str | None = None  # TOFU split (forget10) or comma-separated owners / ids
    tofu_dir: str | None = None
    idk_path: str | None = None
    fmt: str = "plain"
    profile: str | None = None  # "paper" | "tiny"; None: tiny iff model is None
    seed: int = 0
    lr: float | None = None
    epochs: float | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    warmup_epochs: float | None = None
    weight_decay: float | None = None
    max_length: int | None = None
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    lora: bool | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] | None = None  # None: PEFT's all-linear
    gradient_checkpointing: bool = False
    dtype: str = "auto"
    merge: str = "auto"  # merge LoRA into the base on save: auto (tiny only) | yes | no
    retain_general: bool = True  # the retain loss also sees general_train (synthetic)
    hparams: dict[str, Any] = field(default_factory=dict)

    def resolved_profile(self) -> Profile:
        if self.profile is not None:
            if self.profile not in PROFILES:
                raise ValueError(
                    f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}"
                )
            return self.profile  # type: ignore[return-value]
        return "tiny" if self.model is None else "paper"

    def resolved(self) -> dict[str, Any]:
        """Defaults filled in: what actually runs, and what the cache key hashes."""
        d = train_defaults(self.method, self.resolved_profile())
        out = asdict(self)
        for k in ("lr", "epochs", "batch_size", "grad_accum", "warmup_epochs", "weight_decay",
                  "max_length", "lora"):  # fmt: skip
            if out[k] is None:
                out[k] = getattr(d, k)
        out["profile"] = self.resolved_profile()
        out["method"] = self.method.lower()
        out["hparams"] = merge_hparams(self.method, self.hparams)
        if out["lora_targets"] is not None:
            out["lora_targets"] = list(out["lora_targets"])
        return out

    def validate(self) -> None:
        """Raise ValueError naming the bad setting; cheap, so it runs before any compute."""
        check_finite_fields(self)  # NaN would pass the range checks below
        get_method(self.method)
        check_format(self.fmt)
        r = self.resolved()
        for name in ("batch_size", "grad_accum", "max_length", "lora_r"):
            if r[name] < 1:
                raise ValueError(f"{name} must be >= 1, got {r[name]}")
        if not r["lr"] > 0:
            raise ValueError(f"lr must be > 0, got {r['lr']}")
        if not r["epochs"] > 0:
            raise ValueError(f"epochs must be > 0, got {r['epochs']}")
        if r["warmup_epochs"] < 0 or r["weight_decay"] < 0:
            raise ValueError("warmup_epochs and weight_decay must be >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.merge not in ("auto", "yes", "no"):
            raise ValueError(f"merge must be one of auto, yes, no; got {self.merge!r}")
        if self.dtype not in ("auto", "bf16", "fp16", "fp32"):
            raise ValueError(f"dtype must be one of auto, bf16, fp16, fp32; got {self.dtype!r}")
        from dareu.models.loading import check_model_path

        for key in ("model", "retain_model"):
            path = getattr(self, key)
            if path is not None:
                check_model_path(path)
        for key in ("tofu_dir", "idk_path"):
            path = getattr(self, key)
            if path is not None and not Path(path).exists():
                raise ValueError(f"{key} {path} does not exist")


def load_run_benchmark(cfg: UnlearnConfig) -> Benchmark:
    from dareu.data.loader import load_request

    return load_request(cfg.benchmark, cfg.forget, tofu_dir=cfg.tofu_dir,
                        idk_path=cfg.idk_path, seed=cfg.seed)  # fmt: skip


def finetune_config(cfg: UnlearnConfig, bench: Benchmark) -> Any:
    """The fine-tuning recipe of the cached tiny original/retain models (shared by all runs)."""
    from dareu.train.finetune import default_config

    return default_config(bench, fmt=cfg.fmt, dtype=cfg.dtype, seed=cfg.seed)  # as run_job


def original_model_path(cfg: UnlearnConfig, bench: Benchmark) -> Path:
    if cfg.model is not None:
        return Path(cfg.model)
    from dareu.train.finetune import ensure_finetuned

    return ensure_finetuned(bench, "original", finetune_config(cfg, bench))


def retain_model_path(cfg: UnlearnConfig, bench: Benchmark) -> Path:
    if cfg.retain_model is not None:
        return Path(cfg.retain_model)
    if cfg.model is not None:
        raise ValueError(
            "method 'retrain' with a user model needs retain_model (--retain-model PATH): the "
            "model fine-tuned without the forget set"
        )
    from dareu.train.finetune import ensure_finetuned

    return ensure_finetuned(bench, "retain", finetune_config(cfg, bench))


# --------------------------------------------------------------------------- data
def pick_idk(idk_answers: list[str], seed: int, index: int) -> str:
    """One refusal per forget sample, a pure function of (seed, sample index)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return idk_answers[int(torch.randint(len(idk_answers), (1,), generator=g))]


def idk_target(s: QASample, idk: str, fmt: str) -> str:
    """A refusal as the target of `s`: after a document prefix it is a new sentence."""
    return " " + idk if row_format(s, fmt) == TEXT else idk


class PairedQA(Dataset[dict[str, Any]]):
    """Anchor rows (one epoch = one pass over them) each paired with a sampled other row.

    As open-unlearning's ForgetRetainDataset, but the partner of anchor i in epoch e is a
    pure function of (seed, e, i), so a resumed run sees the same pairs.
    """

    def __init__(
        self,
        anchor: list[dict[str, list[int]]],
        other: list[dict[str, list[int]]],
        idk: list[dict[str, list[int]]] | None,
        seed: int,
    ) -> None:
        if not anchor or not other:
            raise ValueError("PairedQA needs non-empty anchor and partner sets")
        self.anchor, self.other, self.idk, self.seed = anchor, other, idk, seed

    def __len__(self) -> int:
        return len(self.anchor)

    def partner(self, epoch: int, i: int) -> int:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + i)
        return int(torch.randint(len(self.other), (1,), generator=g))

    def __getitem__(self, k: int) -> dict[str, Any]:
        epoch, i = divmod(k, len(self.anchor))
        row: dict[str, Any] = {
            "anchor": self.anchor[i],
            "other": self.other[self.partner(epoch, i)],
        }
        row["index"] = i
        if self.idk is not None:
            row["idk"] = self.idk[i]
        return row


class EpochIndexSampler(EpochShuffleSampler):
    """The seeded per-epoch permutation, offset by epoch * n so items know their epoch."""

    def __iter__(self) -> Any:
        base = self.epoch * self.n
        return iter(base + i for i in super().__iter__())


def collate_paired(rows: list[dict[str, Any]], pad_id: int, anchor: str) -> dict[str, Any]:
    other = "retain" if anchor == "forget" else "forget"
    batch: dict[str, Any] = {
        anchor: collate_train([r["anchor"] for r in rows], pad_id),
        other: collate_train([r["other"] for r in rows], pad_id),
        "index": torch.tensor([r["index"] for r in rows], dtype=torch.long),
    }
    if "idk" in rows[0]:
        batch["idk"] = collate_train([r["idk"] for r in rows], pad_id)
    return batch


def encode(
    tokenizer: Any, samples: list[QASample], fmt: Any, max_length: int
) -> list[dict[str, list[int]]]:
    return [encode_sample(tokenizer, s, fmt, max_length) for s in samples]


def build_loader(
    method: Method, bench: Benchmark, tokenizer: Any, cfg: dict[str, Any]
) -> DataLoader[dict[str, Any]]:
    fmt = check_format(cfg["fmt"])
    forget_rows = encode(tokenizer, bench.forget, fmt, cfg["max_length"])
    retain_samples = [*bench.retain, *(bench.general_train if cfg["retain_general"] else [])]
    if not bench.forget:
        raise ValueError(f"benchmark {bench.name!r} has an empty forget set")
    if not retain_samples:
        raise ValueError(f"benchmark {bench.name!r} has an empty retain set")
    retain_rows = encode(tokenizer, retain_samples, fmt, cfg["max_length"])
    idk_rows = None
    if method.needs_idk:
        if not bench.idk_answers:
            raise ValueError(
                f"method {method.name!r} needs refusal answers but benchmark {bench.name!r} has "
                "none (TOFU: pass --idk-path to idontknow.jsonl)"
            )
        idk_rows = [
            encode_qa(tokenizer, s.question, idk_target(s, pick_idk(bench.idk_answers,
                      cfg["seed"], i), fmt), row_format(s, fmt), cfg["max_length"])
            for i, s in enumerate(bench.forget)
        ]  # fmt: skip
    if method.anchor == "forget":
        ds = PairedQA(forget_rows, retain_rows, idk_rows, cfg["seed"])
    else:
        ds = PairedQA(retain_rows, forget_rows, None, cfg["seed"])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataLoader(
        ds,
        batch_size=cfg["batch_size"],
        sampler=EpochIndexSampler(len(ds), cfg["seed"]),
        collate_fn=partial(collate_paired, pad_id=pad, anchor=method.anchor),
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )


# --------------------------------------------------------------------------- model
def build_model(method: Method, model_path: Path, cfg: dict[str, Any]) -> tuple[Any, Any]:
    """Load the original model, wrap LoRA if asked, and let the method pick what trains."""
    from dareu.models.loading import load_model
    from dareu.train.lora import ALL_LINEAR, enable_checkpointing, wrap_lora

    model: Any
    model, tokenizer = load_model(model_path, dtype=cfg["dtype"] if cfg["lora"] else "fp32")
    model.config.use_cache = False
    if cfg["lora"]:
        model = wrap_lora(
            model,
            r=cfg["lora_r"],
            alpha=cfg["lora_alpha"],
            dropout=cfg["lora_dropout"],
            target_modules=tuple(cfg["lora_targets"] or (ALL_LINEAR,)),
            gradient_checkpointing=cfg["gradient_checkpointing"],
        )
    elif cfg["gradient_checkpointing"]:
        enable_checkpointing(model)
    method.select_trainable(model)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"method {method.name!r} left no trainable parameters")
    return model, tokenizer


def peak_memory_mb(device: torch.device) -> float:
    """GPU: peak allocated by torch; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


# --------------------------------------------------------------------------- the loop
def train(
    method: Method,
    model: Any,
    tokenizer: Any,
    bench: Benchmark,
    cfg: dict[str, Any],
    accelerator: Accelerator,
    *,
    work: Path,
    save_every: int = 0,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
) -> tuple[Any, TrainContext, dict[str, Any]]:
    """Run `method` on `model`; returns the prepared model, the context and a summary."""
    from dareu.train.common import JsonlLogger, frozen_copy, set_seed
    from dareu.train.loop import LoopPosition, LoopSettings, run_loop
    from dareu.train.lora import is_peft

    set_seed(cfg["seed"])
    loader = build_loader(method, bench, tokenizer, cfg)
    retained = [*bench.retain, *(bench.general_train if cfg["retain_general"] else [])]
    accelerator.print(f"[dareu] {method.name}: forget loss on {count_rows(bench.forget)} rows, "
                      f"retain loss on {count_rows(retained)} rows")  # fmt: skip

    # The reference (original) model: LoRA -> the policy with adapters off; full -> a frozen copy.
    frozen = None
    if method.wants_reference() and not is_peft(model):
        refuse_frozen_copy_under_zero3(accelerator, f"{method.name} without LoRA")
        # it only runs forward passes: in the compute dtype under mixed precision
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision)
        frozen = frozen_copy(model, accelerator.device, half)

    params = [p for p in model.parameters() if p.requires_grad]
    torch_optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    model, optimizer, loader = accelerator.prepare(model, torch_optimizer, loader)
    reference = Reference(policy=model, frozen=frozen) if method.wants_reference() else None

    ga = cfg["grad_accum"]
    steps_per_epoch = math.ceil(len(loader) / ga)
    total = cfg["max_steps"] or max(1, math.ceil(cfg["epochs"] * steps_per_epoch))
    # Stepped by hand once per optimizer step (a prepared scheduler steps once per process);
    # it drives the torch optimizer, which DeepSpeed's wraps and reads.
    scheduler = get_scheduler(
        "linear",
        torch_optimizer,
        num_warmup_steps=min(total - 1, round(cfg["warmup_epochs"] * steps_per_epoch)),
        num_training_steps=total,
    )
    ctx = TrainContext(
        model=model,
        reference=reference,
        device=accelerator.device,
        grad_accum=ga,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        extra={"tokenizer": tokenizer},
    )
    method.setup(ctx)

    state_dir = work / "method_state"

    def save_state(name: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{name}.pt.tmp"
        torch.save(method.state_dict(), tmp)
        tmp.replace(state_dir / f"{name}.pt")

    def load_state(ckpt: Path) -> None:
        if (state_dir / f"{ckpt.name}.pt").exists():
            method.load_state_dict(torch.load(state_dir / f"{ckpt.name}.pt", weights_only=True))

    def loss_fn(batch: Any, pos: LoopPosition) -> tuple[torch.Tensor, dict[str, float]]:
        ctx.epoch, ctx.global_step, ctx.micro_step, ctx.sync = (
            pos.epoch, pos.step, pos.micro_step, pos.sync,
        )  # fmt: skip
        return method.loss(ctx, batch)

    settings = LoopSettings(
        total=total, steps_per_epoch=steps_per_epoch, grad_accum=ga,
        max_grad_norm=cfg["max_grad_norm"], ckpt_dir=work / "checkpoints",
        logger=JsonlLogger(work / "train_log.jsonl", enabled=accelerator.is_main_process),
        save_every=save_every, resume=resume, stop_after_steps=stop_after_steps,
        progress=progress, desc=f"unlearn {method.name}", on_save=save_state,
        on_resume=load_state,
    )  # fmt: skip
    res = run_loop(model, loader, optimizer, scheduler, accelerator, loss_fn, settings)
    ctx.global_step = total
    summary = {
        "steps": total,
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": res.resumed_from_step,
        "n_forget": len(bench.forget),
        "n_retain": len(bench.retain) + (len(bench.general_train) if cfg["retain_general"] else 0),
        "first": res.first,
        "last": res.last,
        "train_time_s": res.train_time_s,
    }
    return model, ctx, summary


# --------------------------------------------------------------------------- entry point
def run_key(cfg: UnlearnConfig, bench: Benchmark, model_path: Path, root: Path) -> str:
    from dareu.models.loading import model_fingerprint

    data = content_hash(
        [(s.id, s.owner, s.question, s.answer, s.kind) for s in [*bench.forget, *bench.retain]],
        [(s.id, s.question, s.answer) for s in bench.general_train],
        bench.idk_answers,
    )
    weights = model_fingerprint(model_path, memo=root / "cache" / "fingerprints.json")
    resolved = {k: v for k, v in cfg.resolved().items() if k not in ("model", "retain_model")}
    return content_hash("unlearn", METHODS_VERSION, data, weights, resolved)


def save_unlearned(
    model: Any, tokenizer: Any, cfg: dict[str, Any], out: Path, state: Any, *, sharded: bool
) -> dict[str, Any]:
    """A complete HF checkpoint: LoRA is merged for the tiny default (or merge="yes")."""
    from dareu.models.saving import save_hf_model

    merges = cfg["merge"] == "yes" or (cfg["merge"] == "auto" and cfg["profile"] == "tiny")
    info = save_hf_model(model, tokenizer, out, state, merge=merges, sharded=sharded)
    return {"lora": bool(cfg["lora"]), **info}


def run_method(
    name: str | None = None,
    config: UnlearnConfig | None = None,
    *,
    out: Path | None = None,
    benchmark: Benchmark | None = None,
    root: Path | None = None,
    force: bool = False,
    resume: bool = False,
    save_every: int = 0,
    stop_after_steps: int | None = None,
    progress: bool = True,
    accelerator: Accelerator | None = None,
) -> Path:
    """Unlearn with method `name` and return the folder of the resulting HF checkpoint.

    Cached: a finished run with the same resolved config, data and original weights is
    reused (prints "cached: PATH"). For "retrain" the retain model's folder is returned.
    """
    cfg = copy.deepcopy(config) if config is not None else UnlearnConfig()
    if name is not None:
        cfg.method = name
    cfg.validate()
    method = get_method(cfg.method)(merge_hparams(cfg.method, cfg.hparams), seed=cfg.seed)
    # cpu=True lets `torchrun --nproc_per_node N` on a CPU-only host form a gloo group
    # (Accelerate only does so when asked for the CPU); a no-op when a state exists already.
    state = PartialState(cpu=not torch.cuda.is_available())
    root = Path(root) if root is not None else output_root()
    if benchmark is None:
        with state.main_process_first():
            benchmark = load_run_benchmark(cfg)
    if not method.trains:
        path = retain_model_path(cfg, benchmark)
        state.print(f"retrain: the retain model {path}")
        return path

    model_path = original_model_path(cfg, benchmark)
    key = run_key(cfg, benchmark, model_path, root)
    out = Path(out) if out is not None else root / "unlearn" / f"{method.name}-{key}"
    # One run per work folder at a time: a second run of the same method waits, then finds
    # the output (without the lock both appended to, and deleted, one work folder).
    return build_once(
        out, root / "work" / f"unlearn-{method.name}-{key}",
        lambda: _run_locked(
            method, cfg, benchmark, model_path, key, out, root, state,
            resume=resume, save_every=save_every, stop_after_steps=stop_after_steps,
            progress=progress, accelerator=accelerator,
        ),
        force=force, state=state,
    )  # fmt: skip


def _run_locked(
    method: Method,
    cfg: UnlearnConfig,
    benchmark: Benchmark,
    model_path: Path,
    key: str,
    out: Path,
    root: Path,
    state: PartialState,
    *,
    resume: bool,
    save_every: int,
    stop_after_steps: int | None,
    progress: bool,
    accelerator: Accelerator | None,
) -> Path:
    """The training part of `run_method`, under the work folder's lock."""
    r = {**cfg.resolved(), "model": str(model_path)}
    accelerator = accelerator or _accelerator(r)
    work = root / "work" / f"unlearn-{method.name}-{key}"
    if accelerator.is_main_process and not resume and work.exists():
        shutil.rmtree(work)  # a fresh run ignores checkpoints of an earlier attempt
    accelerator.wait_for_everyone()
    if accelerator.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(accelerator.device)

    t0 = time.perf_counter()
    model, tokenizer = build_model(method, model_path, r)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model, ctx, summary = train(
        method, model, tokenizer, benchmark, r, accelerator, work=work, save_every=save_every,
        resume=resume, stop_after_steps=stop_after_steps, progress=progress,
    )  # fmt: skip
    accelerator.wait_for_everyone()
    sd = accelerator.get_state_dict(model)
    sharded = is_sharded(accelerator)
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    examples = forget_examples(benchmark, tokenizer, r, accelerator.device)
    if accelerator.is_main_process:
        if out.exists():  # force=True: atomic_dir would keep the old complete folder
            shutil.rmtree(out)
        with atomic_dir(out) as tmp:
            method.finalize(ctx, tmp, examples)
            info = save_unlearned(unwrapped, tokenizer, r, tmp, sd, sharded=sharded)
            if (work / "train_log.jsonl").exists():
                shutil.copy(work / "train_log.jsonl", tmp / "train_log.jsonl")
            d = method_defaults(method.name)
            atomic_write_json(
                tmp / "dareu_model.json",
                {
                    "kind": "unlearned",
                    "method": method.name,
                    "benchmark": benchmark.name,
                    "forget_owners": sorted(benchmark.forget_owners),
                    "format": r["fmt"],
                    "original_model": str(model_path),
                    "key": key,
                    **info,
                    "n_trainable_params": n_trainable,
                    "config": r,
                    "hparam_sources": d.sources,
                    "summary": summary,
                    "wall_time_s": round(time.perf_counter() - t0, 2),
                    "peak_memory_mb": round(peak_memory_mb(accelerator.device), 1),
                    "peak_memory_kind": "cuda_allocated" if accelerator.device.type == "cuda"
                    else "process_max_rss",
                },
            )  # fmt: skip
    elif sharded:
        # Under FSDP/ZeRO-3 a forward pass is a collective: join the main process's
        # finalize passes (e.g. ATWU's token-score export) and discard the files.
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            method.finalize(ctx, Path(scratch), examples)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(work, ignore_errors=True)
    # Forget the prepared model/optimizer: a later stage may prepare new ones on this
    # accelerator, and FSDP's clip_grad_norm_ compares against every model it holds.
    accelerator.free_memory()
    state.print(f"saved: {out}")
    return out


def _accelerator(r: dict[str, Any]) -> Accelerator:
    from dareu.train.common import setup_accelerator

    return setup_accelerator(
        r["dtype"], gradient_accumulation_steps=r["grad_accum"], cpu=not torch.cuda.is_available()
    )


def forget_examples(
    bench: Benchmark, tokenizer: Any, r: dict[str, Any], device: torch.device
) -> list[tuple[dict[str, Any], Inputs]]:
    """Each forget sample alone (no padding), for per-token exports such as ATWU's scores."""
    fmt = check_format(r["fmt"])
    rows = []
    for s in bench.forget:
        enc = encode_sample(tokenizer, s, fmt, r["max_length"])
        t = {k: torch.tensor([v], dtype=torch.long, device=device) for k, v in enc.items()}
        rows.append(({"id": s.id, "owner": s.owner, "question": s.question, "answer": s.answer}, t))
    return rows


__all__ = [
    "PROMPT_FORMATS",
    "TrainingStopped",
    "UnlearnConfig",
    "run_method",
    "train",
]
