"""Domain pretraining: the tiny base model learns the knowledge world before any owner.

A from-scratch model that meets the owners' facts first would memorise question strings
(measured: 0% of forget facts stated under a paraphrased question). Pretraining it on a
background population who are never owners, each person drawn fresh, teaches the
phrasings, the value grammar and copying an unseen name, but no value; the original and
retain models then start from one shared, fluent base. The base depends on the world
and the size alone (not on the run seed), so it is built once per machine and cached by
content hash.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dareu.cache import atomic_dir, atomic_write_json, content_hash, is_complete, output_root
from dareu.data.formatting import check_format, format_prompt
from dareu.data.synthetic_text import IDK_ANSWERS
from dareu.data.world import WORLD_VERSION, background_rows

PRETRAIN_VERSION = 1


@dataclass(frozen=True)
class PretrainConfig:
    """The base's recipe; every field enters its cache key."""

    people: int = 3000  # background people, each read once (5 QA + 1 biography)
    size: str = "tiny"
    fmt: str = "plain"
    lr: float = 3e-3
    batch_size: int = 32
    init_seed: int = 0
    data_seed: int = 0

    def validate(self) -> None:
        from dareu.models.tiny import check_size

        check_size(self.size)
        check_format(self.fmt)
        if self.people < 1:
            raise ValueError(f"pretrain people must be >= 1, got {self.people}")
        if self.batch_size < 1:
            raise ValueError(f"pretrain batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and self.lr < float("inf")):
            raise ValueError(f"pretrain lr must be a finite number > 0, got {self.lr}")


def corpus_texts(rows: list[Any], fmt: str) -> list[str]:
    """The text the tokenizer is fitted to: QA as the model will read it, documents, and
    the refusals (IdK baselines train on them)."""
    from dareu.data.schema import DocSample

    texts = [
        r.text
        if isinstance(r, DocSample)
        else f"{format_prompt(r.question, None, 'plain')} {r.answer}"
        for r in rows
    ]
    if fmt == "llama2":
        texts += [f"{format_prompt(r.question, None, 'llama2')} {r.answer}" for r in rows[:2000]
                  if not isinstance(r, DocSample)]  # fmt: skip
    return [*texts, *IDK_ANSWERS]


def world_base_dir(cfg: PretrainConfig, *, root: Path | None = None, progress: bool = True) -> Path:
    """The cached pretrained base for `cfg`, building it on first use."""
    cfg.validate()
    key = content_hash("world-base", PRETRAIN_VERSION, WORLD_VERSION, dataclasses.asdict(cfg))
    target = (root or output_root()) / "models" / f"world-base-{key}"
    if is_complete(target):
        return target
    with atomic_dir(target) as tmp:
        _build(cfg, tmp, progress)
    return target


def _build(cfg: PretrainConfig, out: Path, progress: bool) -> None:
    from dareu.models.tiny import TINY_SIZES, init_tiny_model, train_tokenizer

    t0 = time.perf_counter()
    rows = background_rows(cfg.people, cfg.data_seed)
    tokenizer = train_tokenizer(corpus_texts(rows, cfg.fmt), TINY_SIZES[cfg.size].vocab_size)
    model = init_tiny_model(tokenizer, size=cfg.size, seed=cfg.init_seed)
    summary = _train(model, tokenizer, rows, cfg, out / "train_log.jsonl", progress)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    atomic_write_json(
        out / "dareu_model.json",
        {
            "kind": "world-base",
            "pretrain": dataclasses.asdict(cfg),
            "world_version": WORLD_VERSION,
            "n_params": sum(p.numel() for p in model.parameters()),
            "summary": summary,
            "build_s": round(time.perf_counter() - t0, 1),
        },
    )


def _train(
    model: Any, tokenizer: Any, rows: list[Any], cfg: PretrainConfig, log: Path, progress: bool
) -> dict[str, Any]:
    """One pass over the rows on one device. A plain loop on purpose: the base is built by
    one process (the others wait on the cache), so no process group may be touched here."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    from dareu.train.common import JsonlLogger, set_seed
    from dareu.train.data import qa_loader

    set_seed(cfg.data_seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    loader = qa_loader(rows, tokenizer, check_format(cfg.fmt), max_length=256,
                       batch_size=cfg.batch_size, seed=cfg.data_seed)  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = get_scheduler("linear", opt, num_warmup_steps=round(0.05 * len(loader)),
                          num_training_steps=len(loader))  # fmt: skip
    logger = JsonlLogger(log)
    print(
        f"[dareu] pretraining the {cfg.size} base on {cfg.people} background people: "
        f"{len(rows)} rows, {len(loader)} steps (cached once per machine)",
        flush=True,
    )
    t0, loss_value = time.perf_counter(), float("nan")
    for step, batch in enumerate(tqdm(loader, desc="pretrain base", disable=not progress), 1):
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining: non-finite loss at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        loss_value = loss.item()
        logger.log({"step": step, "loss": loss_value, "lr": sched.get_last_lr()[0]})
    model.to("cpu").eval()
    return {"steps": len(loader), "n_rows": len(rows), "final_loss": loss_value,
            "train_time_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
