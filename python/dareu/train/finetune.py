"""Fine-tune the *original* model (every owner's data) and the *retain* model (retain only).

The original model is what unlearning starts from; the retain model is the gold standard
it is compared against (it never saw the forget owners). Both are cached by a content hash
of their training data, configuration and base weights, so the pipeline asks for them with
`ensure_finetuned(...)` and trains only what is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from accelerate import Accelerator, PartialState
from transformers import get_scheduler

from dareu.cache import (
    atomic_dir,
    atomic_write_json,
    build_once,
    content_hash,
    output_root,
)
from dareu.data.formatting import check_format, format_prompt
from dareu.data.schema import Benchmark, DocSample, QASample
from dareu.data.world import FACTS, background_rows
from dareu.guards import check_finite_fields
from dareu.models.loading import (
    DTYPE_NAMES,
    check_model_path,
    dtype_name,
    load_model,
    load_tokenizer,
    model_fingerprint,
    resolve_dtype,
)
from dareu.models.saving import save_hf_model
from dareu.models.tiny import TINY_SIZES, tiny_base_dir
from dareu.train.common import (
    JsonlLogger,
    is_sharded,
    partial_state,
    set_seed,
    setup_accelerator,
)
from dareu.train.data import qa_loader
from dareu.train.loop import LoopSettings, run_loop
from dareu.train.lora import ALL_LINEAR, enable_checkpointing, wrap_lora
from dareu.train.pretrain import PretrainConfig, world_base_dir

Which = Literal["original", "retain"]
WHICH = ("original", "retain")
SCHEDULES = ("constant_with_warmup", "linear", "cosine")
FINETUNE_VERSION = 1  # bump when the loop changes what a given config produces

# Defaults when --lr/--epochs are not given. The tiny model starts from random weights and
# must memorise every fact, so it wants a large learning rate and many epochs; a
# pretrained 7B model needs the small TOFU settings (lr 1e-5 full, 1e-4 LoRA, 5 epochs).
TINY_LR, TINY_EPOCHS = 3e-3, 20
HF_FULL_LR, HF_LORA_LR, HF_EPOCHS = 1e-5, 1e-4, 5
# On the knowledge world the tiny base is domain-pretrained, so the owners' facts are
# memorised in fewer epochs; larger batches are cheaper per row on a CPU.
WORLD_EPOCHS, WORLD_BATCH = 10, 32
# Background people the world's tiny base is pretrained on, by size (micro: unit tests).
PRETRAIN_PEOPLE = {"micro": 100, "tiny": 3000, "small": 3000}
# A user's base (--base-kind auto) counts as from scratch when its mean answer-token loss on
# the first training rows is at least this share of ln(vocab), the loss of a uniform guess:
# random init sits at ~1.0, a pretrained LM on English text far below (7B models: ~0.2-0.4).
SCRATCH_LOSS_SHARE = 0.8
BASE_KINDS = ("auto", "scratch", "pretrained")


@dataclass
class FinetuneConfig:
    """Everything that decides the weights a fine-tune produces (and so its cache key)."""

    base: str = "tiny"  # "tiny" (built from the benchmark text) or a local HF folder
    tiny_size: str = "tiny"
    fmt: str = "plain"  # prompt format: plain | llama2 | chat
    epochs: int | None = None  # None: TINY_EPOCHS from scratch, HF_EPOCHS pretrained
    lr: float | None = None  # None: TINY_LR from scratch, HF_FULL_LR / HF_LORA_LR pretrained
    # What a user's base is, for the lr/epoch defaults: auto measures it (resolve_base_kind).
    base_kind: str = "auto"
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 128
    seed: int = 0
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    schedule: str = "linear"
    max_grad_norm: float = 1.0
    max_steps: int | None = None  # cap on optimizer steps (overrides epochs when reached)
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = (ALL_LINEAR,)
    gradient_checkpointing: bool = False
    dtype: str = "auto"  # compute precision; auto = bf16 on capable GPUs, else fp32
    merge: str = "auto"  # merge LoRA into the base on save: auto (tiny only) | yes | no
    # Knowledge world only (a benchmark with `world`): background people the tiny base is
    # pretrained on, and fresh background rows mixed into every epoch, as a share of the
    # original model's owner rows (the same number for the original and the retain model,
    # so both get the same budget; fresh each epoch, so no background value is memorised).
    pretrain_people: int | None = None  # None: PRETRAIN_PEOPLE[tiny_size]
    replay: float = 1.0

    @property
    def is_tiny(self) -> bool:
        return self.base == "tiny"

    @property
    def from_scratch(self) -> bool:
        """Random weights: the tiny base, or a user's base measured (or declared) so; an
        unresolved `auto` counts as pretrained."""
        return self.is_tiny or self.base_kind == "scratch"

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.from_scratch:
            return TINY_LR
        return HF_LORA_LR if self.lora else HF_FULL_LR

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        return TINY_EPOCHS if self.from_scratch else HF_EPOCHS

    def resolved_pretrain_people(self) -> int:
        return self.pretrain_people or PRETRAIN_PEOPLE.get(self.tiny_size, 3000)

    def merges(self) -> bool:
        return self.lora and (self.merge == "yes" or (self.merge == "auto" and self.is_tiny))

    def validate(self) -> None:
        """Raise ValueError naming the bad setting; cheap, so it runs before any compute."""
        check_finite_fields(self)  # NaN would pass the range checks below
        check_format(self.fmt)
        if self.tiny_size not in TINY_SIZES:
            raise ValueError(f"tiny_size {self.tiny_size!r} is not one of {', '.join(TINY_SIZES)}")
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPE_NAMES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.base_kind not in BASE_KINDS:
            raise ValueError(f"base_kind {self.base_kind!r} is not one of {', '.join(BASE_KINDS)}")
        if self.merge not in ("auto", "yes", "no"):
            raise ValueError(f"merge {self.merge!r} is not one of auto, yes, no")
        for name in ("batch_size", "grad_accum", "max_length", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets:
            raise ValueError("lora_targets is empty")
        if self.pretrain_people is not None and self.pretrain_people < 1:
            raise ValueError(f"pretrain_people must be >= 1, got {self.pretrain_people}")
        if not 0.0 <= self.replay <= 100.0:
            raise ValueError(f"replay must be a number in [0, 100], got {self.replay}")
        if not self.is_tiny:
            base = check_model_path(self.base)
            if self.fmt == "chat" and (base / "config.json").is_file():
                format_prompt("x", load_tokenizer(base), "chat")  # raises if no chat template

    def cache_fields(self) -> dict[str, Any]:
        """The settings that change the weights, with defaults and dtype resolved."""
        d = asdict(self)
        d.update(
            base=None,  # the base enters the key through its weight fingerprint
            lr=self.resolved_lr(),
            epochs=self.resolved_epochs(),
            dtype=dtype_name(resolve_dtype(self.dtype)),
            lora_targets=list(self.lora_targets),
            pretrain_people=self.resolved_pretrain_people(),
        )
        if not self.lora:
            for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_targets", "merge"):
                d.pop(k)
        if self.is_tiny:
            d.pop("base_kind")
        else:
            d.pop("tiny_size")
            d.pop("pretrain_people")
        return d


def default_config(benchmark: Benchmark, **overrides: Any) -> FinetuneConfig:
    """The fine-tune the job uses for `benchmark` (world: WORLD_EPOCHS, WORLD_BATCH)."""
    world = {"epochs": WORLD_EPOCHS, "batch_size": WORLD_BATCH} if benchmark.world else {}
    return FinetuneConfig(**{**world, **overrides})


def training_samples(benchmark: Benchmark, which: Which) -> list[QASample]:
    """original: every owner's QA + general knowledge; retain: the same without forget owners.

    Sorted by id so the original model does not depend on how a forget request split the
    rows (with a given base, TOFU forget05 and forget10 share one original model).
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
    rows = [*benchmark.retain, *benchmark.general_train]
    if which == "original":
        rows += benchmark.forget
    return sorted(rows, key=lambda s: s.id)


def training_rows(
    benchmark: Benchmark, which: Which, cfg: FinetuneConfig
) -> tuple[list[QASample | DocSample], int]:
    """(rows, epochs) the loop runs over: the QA rows and the owners' documents; on the
    knowledge world, `epochs` copies of them plus fresh background rows for every epoch,
    run as one pass (so each epoch's background people are new)."""
    rows: list[QASample | DocSample] = [*training_samples(benchmark, which)]
    rows += [*benchmark.retain_docs, *(benchmark.forget_docs if which == "original" else [])]
    if not rows:
        raise ValueError(f"benchmark {benchmark.name!r} has no training rows for {which}")
    epochs = cfg.resolved_epochs()
    if benchmark.world is None or not cfg.is_tiny or cfg.replay == 0:
        return rows, epochs
    n_owner_rows = len(training_samples(benchmark, "original")) + len(benchmark.retain_docs)
    per_epoch = round(cfg.replay * (n_owner_rows + len(benchmark.forget_docs)))
    people = -(-per_epoch // (len(FACTS) + 1))  # each person gives 5 QA + 1 biography
    out = list(rows) * epochs
    for e in range(epochs):
        out += background_rows(people, seed=10_000 * (cfg.seed + 1) + e)[:per_epoch]
    return out, 1


def resolve_base(
    benchmark: Benchmark,
    cfg: FinetuneConfig,
    root: Path,
    state: PartialState,
    progress: bool = True,
) -> Path:
    """The base checkpoint folder: the cached tiny model (domain-pretrained on the
    knowledge world), or the user's folder."""
    if not cfg.is_tiny:
        return check_model_path(cfg.base)
    with state.main_process_first():  # one process builds, the others then find the cache
        if benchmark.world is not None:
            pre = PretrainConfig(people=cfg.resolved_pretrain_people(), size=cfg.tiny_size,
                                 fmt=cfg.fmt)  # fmt: skip
            return world_base_dir(pre, root=root, progress=progress)
        return tiny_base_dir(benchmark, size=cfg.tiny_size, seed=cfg.seed, root=root)


def resolve_base_kind(
    cfg: FinetuneConfig,
    base_dir: Path,
    samples: list[QASample | DocSample],
    root: Path,
    state: PartialState,
) -> FinetuneConfig:
    """`cfg` with a user base's kind settled (auto: measured by `initial_loss_share`, once
    per base weights), and the assumption printed with the defaults it implies."""
    if cfg.is_tiny:
        return cfg
    how = "--base-kind"
    if cfg.base_kind == "auto":
        memo = root / "cache" / "base_kind.json"
        fp = model_fingerprint(base_dir, memo=root / "cache" / "fingerprints.json")
        known = json.loads(memo.read_text()) if memo.is_file() else {}
        if fp not in known:
            known[fp] = initial_loss_share(base_dir, samples, cfg)
            if state.is_main_process:
                atomic_write_json(memo, known)
        share = float(known[fp])
        kind = "scratch" if share >= SCRATCH_LOSS_SHARE else "pretrained"
        how = f"auto: first-rows loss {share:.2f} x ln(vocab), threshold {SCRATCH_LOSS_SHARE}"
        cfg = dataclasses.replace(cfg, base_kind=kind)
    state.print(f"[dareu] base {base_dir}: assumed "
                f"{'from scratch' if cfg.from_scratch else 'pretrained'} ({how}); fine-tune "
                f"lr {cfg.resolved_lr():g}, {cfg.resolved_epochs()} epochs")  # fmt: skip
    return cfg


@torch.no_grad()
def initial_loss_share(
    base_dir: Path, samples: list[QASample | DocSample], cfg: FinetuneConfig
) -> float:
    """The base's mean answer-token loss on `samples` over ln(vocab size)."""
    if not samples:
        raise ValueError("no training rows to measure the base on; pass --base-kind")
    model, tokenizer = load_model(base_dir, dtype="fp32")
    model.eval()
    loader = qa_loader(samples, tokenizer, check_format(cfg.fmt), max_length=cfg.max_length,
                       batch_size=len(samples), seed=0)  # fmt: skip
    loss = float(model(**next(iter(loader))).loss)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    return loss / math.log(vocab)


def rows_line(which: str, samples: list[QASample | DocSample], passes: int) -> str:
    """What a fine-tune trains on, each kind counted (the job's log)."""
    n_docs = sum(isinstance(s, DocSample) for s in samples)
    return (f"[dareu] fine-tuning the {which} model: {len(samples) - n_docs} QA + {n_docs} "
            f"document rows per pass, {passes} pass(es)")  # fmt: skip


def run_key(
    benchmark: Benchmark, which: Which, cfg: FinetuneConfig, base_dir: Path, root: Path
) -> str:
    samples, _ = training_rows(benchmark, which, dataclasses.replace(cfg, replay=0))
    data = content_hash(
        [(s.id, s.owner, s.text) if isinstance(s, DocSample) else
         (s.id, s.owner, s.question, s.answer) for s in samples]
    )  # fmt: skip
    weights = model_fingerprint(base_dir, memo=root / "cache" / "fingerprints.json")
    return content_hash("finetune", FINETUNE_VERSION, which, data, weights, cfg.cache_fields())


def train_loop(
    model: Any,
    tokenizer: Any,
    samples: list[QASample | DocSample],
    cfg: FinetuneConfig,
    accelerator: Accelerator,
    *,
    ckpt_dir: Path,
    logger: JsonlLogger,
    save_every: int = 0,
    resume: bool = False,
    stop_after_steps: int | None = None,
    progress: bool = True,
    desc: str = "finetune",
) -> tuple[Any, dict[str, Any]]:
    """Supervised fine-tuning on answer tokens (the shared loop, `dareu.train.loop`, with
    the model's own NLL); returns the prepared model and a summary."""
    set_seed(cfg.seed)
    lr, epochs = cfg.resolved_lr(), cfg.resolved_epochs()
    loader = qa_loader(samples, tokenizer, check_format(cfg.fmt), max_length=cfg.max_length,
                       batch_size=cfg.batch_size, seed=cfg.seed)  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    torch_optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, torch_optimizer, loader)
    if accelerator.gradient_accumulation_steps != cfg.grad_accum:
        raise ValueError(
            f"the Accelerate config sets gradient accumulation to "
            f"{accelerator.gradient_accumulation_steps} but --grad-accum is {cfg.grad_accum}; "
            "remove it from the config and use --grad-accum"
        )
    steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
    total = cfg.max_steps or epochs * steps_per_epoch
    # Stepped by hand once per optimizer step (not prepared: Accelerate would step it
    # once per process). It drives the torch optimizer, which DeepSpeed's wraps and reads.
    scheduler = get_scheduler(cfg.schedule, torch_optimizer,
                              num_warmup_steps=round(cfg.warmup_ratio * total),
                              num_training_steps=total)  # fmt: skip
    settings = LoopSettings(
        total=total, steps_per_epoch=steps_per_epoch, grad_accum=cfg.grad_accum,
        max_grad_norm=cfg.max_grad_norm, ckpt_dir=ckpt_dir, logger=logger,
        save_every=save_every, resume=resume, stop_after_steps=stop_after_steps,
        progress=progress, desc=desc,
    )  # fmt: skip
    res = run_loop(model, loader, optimizer, scheduler, accelerator,
                   lambda batch, _pos: (model(**batch).loss, {}), settings)  # fmt: skip
    summary = {
        "steps": total,
        "resumed_from_step": res.resumed_from_step,
        "epochs": epochs if cfg.max_steps is None else None,
        "lr": lr,
        "n_samples": len(samples),
        "first_loss": res.losses[0] if res.losses else None,
        "final_loss": res.losses[-1] if res.losses else None,
        "train_time_s": res.train_time_s,
    }
    return model, summary


def save_finetuned(
    model: Any,
    tokenizer: Any,
    cfg: FinetuneConfig,
    out: Path,
    state_dict: dict[str, Any],
    *,
    sharded: bool = False,
) -> dict[str, Any]:
    """Write a complete HF checkpoint into `out` so that load_model(out) works.

    LoRA runs are merged into the base when `cfg.merges()`; otherwise the folder holds the
    adapter + tokenizer and names its base in adapter_config.json, which load_model follows.
    `model` is unwrapped; `state_dict` comes from `accelerator.get_state_dict` (gathered).
    """
    return {
        "lora": cfg.lora,
        **save_hf_model(model, tokenizer, out, state_dict, merge=cfg.merges(), sharded=sharded),
    }


def finetune(
    benchmark: Benchmark,
    which: Which,
    cfg: FinetuneConfig,
    *,
    root: Path | None = None,
    force: bool = False,
    resume: bool = False,
    save_every: int = 0,
    stop_after_steps: int | None = None,
    progress: bool = True,
    accelerator: Accelerator | None = None,
) -> Path:
    """Fine-tune (or find in the cache) one model and return its checkpoint folder."""
    cfg.validate()
    if save_every < 0:
        raise ValueError(f"save_every must be >= 0, got {save_every}")
    root = Path(root) if root is not None else output_root()
    state = partial_state()
    base_dir = resolve_base(benchmark, cfg, root, state, progress)
    first: list[QASample | DocSample] = [*training_samples(benchmark, which),
                                         *benchmark.retain_docs]  # fmt: skip
    cfg = resolve_base_kind(cfg, base_dir, first[:16], root, state)
    samples, loop_epochs = training_rows(benchmark, which, cfg)
    key = run_key(benchmark, which, cfg, base_dir, root)
    out = root / "models" / f"{which}-{key}"
    # One run per work folder at a time: a second run of the same fine-tune waits, then
    # finds the model (without the lock it deleted the first run's work folder under it).
    return build_once(
        out, root / "work" / f"{which}-{key}",
        lambda: _finetune_locked(
            benchmark, which, cfg, samples, loop_epochs, base_dir, key, out, root,
            force=force, resume=resume, save_every=save_every,
            stop_after_steps=stop_after_steps, progress=progress, accelerator=accelerator,
        ),
        force=force, state=state,
    )  # fmt: skip


def _finetune_locked(
    benchmark: Benchmark,
    which: Which,
    cfg: FinetuneConfig,
    samples: list[QASample | DocSample],
    loop_epochs: int,
    base_dir: Path,
    key: str,
    out: Path,
    root: Path,
    *,
    force: bool,
    resume: bool,
    save_every: int,
    stop_after_steps: int | None,
    progress: bool,
    accelerator: Accelerator | None,
) -> Path:
    """The training part of `finetune`, under the work folder's lock."""
    state = partial_state()
    accelerator = accelerator or setup_accelerator(
        cfg.dtype, gradient_accumulation_steps=cfg.grad_accum
    )
    sharded = is_sharded(accelerator)
    if (save_every or resume) and sharded:
        raise ValueError(
            "--save-every/--resume are supported for single-device and DDP runs only; "
            "FSDP and DeepSpeed shard optimizer state, which these checkpoints do not handle"
        )
    work = root / "work" / f"{which}-{key}"
    if accelerator.is_main_process and not resume and work.exists():
        shutil.rmtree(work)  # a fresh run ignores checkpoints of an earlier attempt
    accelerator.wait_for_everyone()

    set_seed(cfg.seed)  # before wrap_lora: the adapters' initial weights are random
    # Full fine-tuning keeps fp32 master weights (Accelerate autocasts to bf16); LoRA loads
    # the frozen base directly in the compute dtype to halve its memory.
    load_dtype = cfg.dtype if cfg.lora else "fp32"
    model: Any
    model, tokenizer = load_model(base_dir, dtype=load_dtype)
    model.config.use_cache = False
    if cfg.lora:
        model = wrap_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_targets,
                          gradient_checkpointing=cfg.gradient_checkpointing)  # fmt: skip
    elif cfg.gradient_checkpointing:
        enable_checkpointing(model)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    state.print(rows_line(which, samples, loop_epochs))
    logger = JsonlLogger(work / "train_log.jsonl", enabled=accelerator.is_main_process)
    model, summary = train_loop(
        model,
        tokenizer,
        samples,
        dataclasses.replace(cfg, epochs=loop_epochs),
        accelerator,
        ckpt_dir=work / "checkpoints",
        logger=logger,
        save_every=save_every,
        resume=resume,
        stop_after_steps=stop_after_steps,
        progress=progress,
        desc=f"finetune {which}",
    )
    accelerator.wait_for_everyone()
    state_dict = accelerator.get_state_dict(model)  # a collective under FSDP / ZeRO-3
    if accelerator.is_main_process:
        with _replacing(out, force), atomic_dir(out) as tmp:
            info = save_finetuned(accelerator.unwrap_model(model), tokenizer, cfg, tmp, state_dict,
                                  sharded=sharded)  # fmt: skip
            if (work / "train_log.jsonl").exists():
                shutil.copy(work / "train_log.jsonl", tmp / "train_log.jsonl")
            atomic_write_json(
                tmp / "dareu_model.json",
                {
                    "kind": "finetuned",
                    "which": which,
                    "benchmark": benchmark.name,
                    "format": cfg.fmt,
                    "base": str(base_dir),
                    "key": key,
                    **info,
                    "n_trainable_params": n_trainable,
                    "config": {**asdict(cfg), "lora_targets": list(cfg.lora_targets)},
                    "summary": summary,
                },
            )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(work, ignore_errors=True)
    # Forget the prepared model/optimizer: a later stage may prepare new ones on this
    # accelerator, and FSDP's clip_grad_norm_ compares against every model it holds.
    accelerator.free_memory()
    state.print(f"saved: {out}")
    return out


@contextlib.contextmanager
def _replacing(out: Path, force: bool) -> Iterator[None]:
    """For --force: move the old model aside, since `atomic_dir` keeps the first complete
    folder; put it back if writing the new one fails, else delete it."""
    aside = out.with_name(f".{out.name}.old-{os.getpid()}")
    moved = force and out.exists()
    if moved:
        os.replace(out, aside)
    try:
        yield
    except BaseException:
        if moved and not out.exists():
            os.replace(aside, out)
        raise
    finally:
        if moved:
            shutil.rmtree(aside, ignore_errors=True)


def ensure_finetuned(
    benchmark: str | Path | Benchmark,
    which: Which,
    config: FinetuneConfig | None = None,
    *,
    forget: str | list[str] | None = None,
    tofu_dir: Path | None = None,
    **kwargs: Any,
) -> Path:
    """Path of the fine-tuned `which` model for `benchmark`, training it only if not cached.

    `benchmark` is a Benchmark or a `load_benchmark` source ("synthetic", "tofu", a folder).
    Extra keyword arguments go to `finetune` (root, force, resume, save_every, progress).
    """
    cfg = config or FinetuneConfig()
    cfg.validate()
    if not isinstance(benchmark, Benchmark):
        from dareu.data import load_benchmark

        with partial_state().main_process_first():
            benchmark = load_benchmark(benchmark, forget=forget, tofu_dir=tofu_dir)
    return finetune(benchmark, which, cfg, **kwargs)
