"""Train the classifier DA(owner | response): data, loop, temperature, metrics, cache.

Input is the response text alone (the answer, no question), label is its owner. The
loss is read at every prefix end from one forward pass (the head sees each position),
so the classifier learns calibrated uncertainty on short prefixes, which is where the
PPO reward reads it (the k = 15 slice ends). A temperature fitted on held-out
paraphrases then softens the remaining over-confidence. See docs/attribution.md.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from dareu.attribution.base import AttributionError
from dareu.attribution.calibration import (
    SATURATION,
    expected_calibration_error,
    fit_temperature,
    nll,
    saturation_stats,
)
from dareu.attribution.classifier import (
    ATTRIBUTION_JSON,
    ClassifierAttributor,
    classifier_inputs,
    find_head,
    position_logits,
    softmax,
)
from dareu.cache import (
    atomic_dir,
    atomic_write_json,
    content_hash,
    hash_files,
    is_complete,
    output_root,
)
from dareu.data.schema import Benchmark
from dareu.reward import K_SLICES, segment_schedule

ECE_BINS = 15  # calibration-error bins (not the reward's slice count)

# Bump when the training recipe changes so old cached attributors are not reused.
RECIPE_VERSION = 2  # 2: held-out text never overlaps training text


@dataclass
class AttributorConfig:
    """Hyperparameters of the classifier DA (paper: LoRA r=16, alpha=32, dropout 0.1,
    lr 1e-4, 5 epochs, batch 16).

    base: "tiny" (the benchmark's tiny Llama base from dareu.models.tiny, same tokenizer
        as the policy) or a local Hugging Face causal-LM folder.
    finetune: "lora", "full", or "auto" = full for the from-scratch tiny base (LoRA on a
        random backbone cannot learn the task in a few epochs), LoRA otherwise.
    lr: None = 1e-4 for LoRA (paper), 1e-3 for full fine-tuning of the tiny base.
    full_weight: share of each row's loss on the whole response; the rest is the mean
        over its proper prefixes.
    name_swaps: extra copies of each training answer with the owner's name replaced by
        another owner's name, still labelled with the true owner (needs `owner_name`, i.e.
        the synthetic benchmark; a no-op elsewhere). Without them the classifier is a name
        detector: the facts of a forget owner under another name score ~0.1, so PPO could
        keep the facts and change the name. 0 turns this off.
    """

    base: str = "tiny"
    tiny_size: str = "tiny"
    finetune: str = "auto"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lr: float | None = None
    epochs: int = 5
    batch_size: int = 16
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    full_weight: float = 0.5
    name_swaps: int = 1
    max_length: int = 256
    calib_share: float = 0.5
    k_slices: int = K_SLICES
    seed: int = 0
    dtype: str = "auto"

    def validate(self) -> None:
        if self.finetune not in ("lora", "full", "auto"):
            raise AttributionError(f"finetune must be lora, full or auto, got {self.finetune!r}")
        if self.name_swaps < 0:
            raise AttributionError(f"name_swaps must be >= 0, got {self.name_swaps}")
        for name in ("epochs", "batch_size", "lora_r", "max_length", "k_slices"):
            if getattr(self, name) < 1:
                raise AttributionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            raise AttributionError(f"lr must be > 0, got {self.lr}")
        for name in ("full_weight", "lora_dropout", "warmup_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise AttributionError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.calib_share < 1.0:
            raise AttributionError(f"calib_share must be in (0, 1), got {self.calib_share}")

    def resolved_mode(self) -> str:
        if self.finetune != "auto":
            return self.finetune
        return "full" if self.base == "tiny" else "lora"

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-3 if self.resolved_mode() == "full" else 1e-4


@dataclass
class AttributionData:
    """Owner-labelled texts: train on answers, calibrate and test on held-out text."""

    owners: list[str]
    train: list[tuple[str, int]]
    calib: list[tuple[str, int]]
    test: list[tuple[str, int]]
    # Forget owners' answers: what the original model says, i.e. what PPO scores first.
    forget: list[tuple[str, int]]
    heldout_source: str = "paraphrased_answer"
    notes: list[str] = field(default_factory=list)
    # Diagnostics (not used for training): forget answers with wrong facts but the true
    # name ("perturbed"), and with the true facts under another owner's name
    # ("name_swapped", synthetic data only), each labelled with the true owner.
    probes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


def attribution_data(
    benchmark: Benchmark, *, calib_share: float = 0.5, seed: int = 0
) -> AttributionData:
    """Texts and labels for the classifier, held-out paraphrases split per owner.

    Held-out text is every distinct paraphrased answer in the benchmark (TOFU keeps them in
    the *_perturbed files). Without paraphrases, a share of each owner's answers is held
    out instead (and said so in `notes`).
    """
    owners = list(benchmark.owners)
    if len(owners) < 2:
        raise AttributionError(f"an attribution classifier needs >= 2 owners, got {len(owners)}")
    idx = {o: i for i, o in enumerate(owners)}
    train_rows = [s for s in [*benchmark.forget, *benchmark.retain] if s.owner in idx]
    train = [(s.answer, idx[s.owner]) for s in train_rows if s.answer.strip()]
    train += document_texts(benchmark, idx)
    missing = sorted(set(owners) - {owners[y] for _, y in train})
    if missing:
        raise AttributionError(f"owners without any training answer: {missing[:5]}")

    # A paraphrase that is also some training answer (the knowledge world answers every
    # question phrasing with one of a few answer phrasings) is not held out.
    trained = {t for t, _ in train}
    seen: set[tuple[str, str]] = set()
    held: dict[int, list[str]] = defaultdict(list)
    for s in [*benchmark.forget, *benchmark.retain, *benchmark.forget_eval, *benchmark.retain_eval]:
        p = s.paraphrased_answer
        if s.owner in idx and p and p.strip() and (s.owner, p) not in seen and p not in trained:
            seen.add((s.owner, p))
            held[idx[s.owner]].append(p)
    notes: list[str] = []
    source = "paraphrased_answer"
    rng = random.Random(seed)
    bare = {y for y in range(len(owners)) if not held.get(y)}
    if bare:
        if len(bare) == len(owners):
            source = "answers held out (no paraphrase outside the training answers)"
        notes.append(
            f"{len(bare)} owner(s) without a held-out paraphrase: 20% of their distinct "
            "training answers are held out instead"
        )
        train, extra = _hold_out_answers(train, bare, rng)
        held.update(extra)
    calib: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for y in sorted(held):
        texts = sorted(held[y])
        rng.shuffle(texts)
        n_cal = max(1, round(len(texts) * calib_share)) if len(texts) > 1 else 0
        calib += [(t, y) for t in texts[:n_cal]]
        test += [(t, y) for t in texts[n_cal:]]
    if not calib or not test:
        raise AttributionError("too little held-out text to calibrate and test the attributor")
    forget_set = set(benchmark.forget_owners)
    forget_rows = [
        s for s in [*benchmark.forget, *benchmark.forget_completion] if s.owner in forget_set
    ]
    forget = [(s.answer, idx[s.owner]) for s in forget_rows]
    probes: dict[str, list[tuple[str, int]]] = {}
    perturbed = [
        (p, idx[s.owner])
        for s in benchmark.forget_eval
        if s.owner in forget_set
        for p in s.perturbed_answers
    ]
    if perturbed:
        probes["perturbed"] = perturbed
    names = sorted({s.owner_name for s in train_rows if s.owner_name})
    swapped = []
    for s in forget_rows:
        if s.owner_name and s.owner_name in s.answer and len(names) > 1:
            other = names[(names.index(s.owner_name) + 1) % len(names)]
            swapped.append((s.answer.replace(s.owner_name, other), idx[s.owner]))
    if swapped:
        probes["name_swapped"] = swapped
    return AttributionData(owners, train, calib, test, forget, source, notes, probes)


def document_texts(benchmark: Benchmark, idx: dict[str, int]) -> list[tuple[str, int]]:
    """Owner-labelled document text: every whole document, and every completion target
    (what a DareU rollout on the completion task is scored against, prefix by prefix)."""
    docs = [*benchmark.forget_docs, *benchmark.retain_docs]
    rows = [(d.text, d.owner) for d in docs]
    rows += [(s.answer.strip(), s.owner) for s in
             [*benchmark.forget_completion, *benchmark.retain_completion]]  # fmt: skip
    return [(t, idx[o]) for t, o in rows if o in idx and t.strip()]


def _hold_out_answers(
    train: list[tuple[str, int]], owners: set[int], rng: random.Random
) -> tuple[list[tuple[str, int]], dict[int, list[str]]]:
    """Hold out 20% (at least 2: one to calibrate, one to test) of each of `owners'`
    distinct texts that contain none of its other texts (answers and continuation targets,
    not the documents they come from), when it has 4 or more. Every row of a held-out text
    leaves training, and so does every text that contains one (a document holding a
    held-out continuation), so no held-out text is seen in training."""
    by_owner: dict[int, list[str]] = defaultdict(list)
    for t, y in train:
        if y in owners and t not in by_owner[y]:
            by_owner[y].append(t)
    held: dict[int, list[str]] = {}
    dropped: set[tuple[str, int]] = set()
    for y, texts in sorted(by_owner.items()):
        atomic = [t for t in texts if not any(o != t and o in t for o in texts)]
        rng.shuffle(atomic)
        held[y] = atomic[: max(2, len(atomic) // 5)] if len(atomic) >= 4 else []
        dropped |= {(t, y) for t in texts if any(h in t for h in held[y])}
    return [r for r in train if r not in dropped], {y: t for y, t in held.items() if t}


def name_swap_rows(
    benchmark: Benchmark, owners: list[str], copies: int, seed: int = 0
) -> list[tuple[str, int]]:
    """Training answers restated under other owners' names, labelled with the true owner.

    Why: attribution is about whose *data* a response reveals. Teaching the classifier that
    a name is not enough makes it read the fact values, so a response that keeps the facts
    under another name is still attributed, and a name with wrong facts is less so.
    """
    if copies <= 0:
        return []
    idx = {o: i for i, o in enumerate(owners)}
    rows = [s for s in [*benchmark.forget, *benchmark.retain] if s.owner in idx]
    names = sorted({s.owner_name for s in rows if s.owner_name})
    if len(names) < 2:
        return []
    rng = random.Random(f"name-swap-{seed}")
    out = []
    for s in rows:
        if not s.owner_name or s.owner_name not in s.answer:
            continue
        others = [n for n in names if n != s.owner_name]
        for other in rng.sample(others, min(copies, len(others))):
            out.append((s.answer.replace(s.owner_name, other), idx[s.owner]))
    return out


def slice_ends(n: int, k: int = K_SLICES) -> list[int]:
    """The prefix ends the PPO reward scores on a response of n tokens: the Rust core's
    k-slice schedule (kappa = ceil(n / k), ends at kappa, 2 kappa, ..., n)."""
    if n <= 0:
        return []
    ends, n_seg, _ = segment_schedule(np.array([n], dtype=np.int64), n, k=k)
    return [int(e) for e in ends[0, : int(n_seg[0])]]


def prefix_loss(
    logits: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, *, skip: int, full_weight: float
) -> torch.Tensor:
    """Cross-entropy at every prefix end of right-padded rows (one forward, all prefixes).

    logits [B, T, C]; mask [B, T]; `skip` leading positions (BOS) are not a prefix end.
    Row loss = full_weight * CE(whole response) + (1 - full_weight) * mean CE(proper prefixes).
    """
    B, T, C = logits.shape
    ce = F.cross_entropy(
        logits.float().reshape(B * T, C), labels.repeat_interleave(T), reduction="none"
    ).view(B, T)
    lengths = mask.sum(dim=1)
    pos = torch.arange(T, device=logits.device).unsqueeze(0)
    last = lengths - 1
    full = ce.gather(1, last.unsqueeze(1)).squeeze(1)
    pref_mask = ((pos >= skip) & (pos < last.unsqueeze(1))).float()
    n_pref = pref_mask.sum(dim=1)
    pref = (ce * pref_mask).sum(dim=1) / n_pref.clamp(min=1)
    w = torch.where(n_pref > 0, torch.full_like(full, full_weight), torch.ones_like(full))
    return (w * full + (1 - w) * pref).mean()


def _encode(
    tokenizer: Any, rows: Sequence[tuple[str, int]], max_length: int
) -> list[tuple[list[int], int]]:
    ids = tokenizer([t for t, _ in rows], add_special_tokens=False)["input_ids"]
    return [
        (classifier_inputs(tokenizer, x)[:max_length], y)
        for x, (_, y) in zip(ids, rows, strict=True)
    ]


def _collate(batch: list[tuple[list[int], int]], pad: int) -> dict[str, torch.Tensor]:
    T = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), T), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    for i, (x, _) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in batch])}


def resolve_base(benchmark: Benchmark, config: AttributorConfig, root: Path | None = None) -> Path:
    """The backbone folder: the benchmark's tiny base, or a user's local checkpoint."""
    from dareu.models.loading import check_model_path

    if config.base == "tiny":
        from dareu.models.tiny import tiny_base_dir

        return tiny_base_dir(benchmark, size=config.tiny_size, seed=config.seed, root=root)
    return check_model_path(config.base)


def build_classifier(base: Path, owners: list[str], config: AttributorConfig) -> tuple[Any, Any]:
    """A fresh `AutoModelForSequenceClassification` over `owners` on the base, LoRA if asked."""
    from transformers import AutoModelForSequenceClassification

    from dareu.models.loading import load_tokenizer, resolve_dtype

    tokenizer = load_tokenizer(base)
    mode = config.resolved_mode()
    # Full fine-tuning keeps fp32 master weights; mixed precision comes from Accelerate.
    dtype = torch.float32 if mode == "full" else resolve_dtype(config.dtype)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(owners),
            id2label=dict(enumerate(owners)),
            label2id={o: i for i, o in enumerate(owners)},
            dtype=dtype,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError, KeyError) as err:
        raise AttributionError(f"cannot build a sequence classifier on {base}: {err}") from err
    model.config.pad_token_id = tokenizer.pad_token_id
    find_head(model)
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            task_type="SEQ_CLS",  # also trains the new `score` head (modules_to_save)
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules="all-linear",
            bias="none",
        )
        model = get_peft_model(model, lcfg)
        for p in model.parameters():  # adapters and head train in fp32
            if p.requires_grad:
                p.data = p.data.float()
    return model, tokenizer


def train_classifier(
    benchmark: Benchmark,
    config: AttributorConfig,
    out_dir: Path,
    *,
    accelerator: Any | None = None,
    progress: bool = True,
    log_path: Path | None = None,
    base: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune, fit the temperature, evaluate, and save a complete attributor into out_dir.

    With an `accelerator` every process trains (DDP etc. from `accelerate launch`) and only
    the main process writes. Without one, this process trains alone on its device (what a
    larger distributed job needs when it builds its attributor on the main process only).
    Returns the metrics written to attribution.json.
    """
    from dareu.train.common import JsonlLogger, set_seed

    config.validate()
    data = attribution_data(benchmark, calib_share=config.calib_share, seed=config.seed)
    base = base or resolve_base(benchmark, config)
    acc = accelerator
    is_main = acc.is_main_process if acc is not None else True
    set_seed(config.seed)
    model, tokenizer = build_classifier(base, data.owners, config)
    swapped = name_swap_rows(benchmark, data.owners, config.name_swaps, config.seed)
    n_doc = len(document_texts(benchmark, {o: i for i, o in enumerate(data.owners)}))
    if is_main:
        print(f"[dareu] attributor: training on {len(data.train) - n_doc} answers + {n_doc} "
              f"document texts (+ {len(swapped)} name swaps) of {len(data.owners)} owners",
              flush=True)  # fmt: skip
    train_rows = _encode(tokenizer, data.train + swapped, config.max_length)
    model = _train_epochs(model, tokenizer, train_rows, config, acc,
                          JsonlLogger(log_path, enabled=is_main), progress)  # fmt: skip
    if config.resolved_mode() == "lora":
        model = model.merge_and_unload()
    model = model.float().eval()
    metrics: dict[str, Any] = {}
    if is_main:
        attr = ClassifierAttributor(model, tokenizer, data.owners, max_length=config.max_length)
        temperature, metrics = evaluate_and_calibrate(attr, data, k=config.k_slices)
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        meta = {
            "kind": "classifier",
            "owners": data.owners,
            "temperature": temperature,
            "max_length": config.max_length,
            "base": str(base),
            "config": asdict(config),
            "finetune": config.resolved_mode(),
            "lr": config.resolved_lr(),
            "recipe_version": RECIPE_VERSION,
            "data": {
                "train": len(data.train),
                "document_texts": n_doc,
                "name_swapped_train": len(swapped),
                "calib": len(data.calib),
                "test": len(data.test),
                "forget_responses": len(data.forget),
                "heldout_source": data.heldout_source,
                "notes": data.notes,
            },
            "metrics": metrics,
        }
        atomic_write_json(out_dir / ATTRIBUTION_JSON, meta)
    if acc is not None:
        acc.wait_for_everyone()
    return metrics


def _train_epochs(
    model: Any, tokenizer: Any, train_rows: Any, config: AttributorConfig, acc: Any,
    log: Any, progress: bool,
) -> Any:  # fmt: skip
    """The prefix-loss epochs (AdamW, linear warm-up then cosine to 10%); returns the
    trained (unwrapped) model."""
    from dareu.models.loading import resolve_dtype
    from dareu.train.common import partial_state

    is_main = acc.is_main_process if acc is not None else True
    n_proc = acc.num_processes if acc is not None else 1
    pad, skip = tokenizer.pad_token_id, 1 if tokenizer.bos_token_id is not None else 0
    gen = torch.Generator().manual_seed(config.seed)
    loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
        train_rows, batch_size=config.batch_size, shuffle=True, generator=gen,
        collate_fn=lambda b: _collate(b, pad),
    )  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    lr = config.resolved_lr()
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    total = config.epochs * math.ceil(len(train_rows) / (config.batch_size * n_proc))
    warm = int(config.warmup_ratio * total)

    def schedule(step: int) -> float:  # linear warmup, then cosine decay to 10%
        if step < warm:
            return (step + 1) / warm
        prog = (step - warm) / max(1, total - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    if acc is not None:
        model, optimizer, loader, scheduler = acc.prepare(model, optimizer, loader, scheduler)
        device, autocast = acc.device, acc.autocast
    else:
        device, half = partial_state().device, resolve_dtype(config.dtype)
        model.to(device)

        def autocast() -> Any:
            return torch.autocast(device.type, dtype=half, enabled=half != torch.float32)

    model.train()
    step = 0
    bar = tqdm(total=total, desc="train attributor", disable=not (progress and is_main))
    for epoch in range(config.epochs):
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast():
                logits = position_logits(model, batch["input_ids"], batch["attention_mask"])
            loss = prefix_loss(logits, batch["attention_mask"], batch["labels"],
                               skip=skip, full_weight=config.full_weight)  # fmt: skip
            if acc is not None:
                acc.backward(loss)
                acc.clip_grad_norm_(params, 1.0)
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)
            log.log({"step": step, "epoch": epoch, "loss": loss.item(),
                     "lr": scheduler.get_last_lr()[0]})  # fmt: skip
    bar.close()
    if acc is not None:
        acc.wait_for_everyone()
        model = acc.unwrap_model(model)
    return model


def _prefix_logits(
    attr: ClassifierAttributor, rows: Sequence[tuple[str, int]], k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Raw logits at the k-slice ends of each row (full response last); labels; is_full; counts."""
    units = attr.units([t for t, _ in rows])
    ends = [slice_ends(len(u), k) or [0] for u in units]
    lg = attr.logits_at([u.ids or [] for u in units], ends)
    labels = np.concatenate([[y] * len(e) for (_, y), e in zip(rows, ends, strict=True)])
    is_full = np.concatenate([np.arange(len(e)) == len(e) - 1 for e in ends])
    return np.concatenate(lg), labels.astype(np.int64), is_full, [len(e) for e in ends]


def _set_metrics(
    logits: np.ndarray, labels: np.ndarray, is_full: np.ndarray, T: float
) -> dict[str, float]:
    p = softmax(logits / T)
    pf, yf = p[is_full], labels[is_full]
    return {
        "accuracy": float((pf.argmax(1) == yf).mean()),
        "nll": nll(logits[is_full], yf, T),
        "ece": expected_calibration_error(pf, yf, ECE_BINS),
        "prefix_accuracy": float((p.argmax(1) == labels).mean()),
        "prefix_nll": nll(logits, labels, T),
        "prefix_ece": expected_calibration_error(p, labels, ECE_BINS),
        "mean_true_owner_prob": float(pf[np.arange(len(yf)), yf].mean()),
    }


def evaluate_and_calibrate(
    attr: ClassifierAttributor, data: AttributionData, *, k: int = K_SLICES
) -> tuple[float, dict[str, Any]]:
    """Fit T on the calibration half (all slice ends), then report metrics at T = 1 and T.

    "test" = held-out paraphrases (top-1 accuracy of the whole response is the headline
    figure); "forget" = DA of the true owner at every slice end of the forget owners'
    answers: the share above the chi saturation point and the chi spread. The same for
    the probes: "forget_perturbed" (wrong facts, true name) and "forget_name_swapped"
    (true facts, another owner's name), which show whether DA follows names or facts.
    """
    cal_lg, cal_y, _, _ = _prefix_logits(attr, data.calib, k)
    T = fit_temperature(cal_lg, cal_y)
    out: dict[str, Any] = {"temperature": T, "saturation_threshold": SATURATION, "k_slices": k}
    sets = {"test": data.test, "train": data.train}
    for name, rows in sets.items():
        lg, y, full, _ = _prefix_logits(attr, rows, k)
        out[name] = {
            "raw": _set_metrics(lg, y, full, 1.0),
            "calibrated": _set_metrics(lg, y, full, T),
        }
    probes = {"forget": data.forget, **{f"forget_{k_}": v for k_, v in data.probes.items()}}
    for name, rows in probes.items():
        if not rows:
            continue
        lg, y, full, _ = _prefix_logits(attr, rows, k)
        res: dict[str, Any] = {}
        for tag, temp in (("raw", 1.0), ("calibrated", T)):
            p = softmax(lg / temp)
            b = p[np.arange(len(y)), y]
            res[tag] = {
                "all_slices": saturation_stats(b),
                "whole_response": saturation_stats(b[full]),
                "top1_is_owner": float((p[full].argmax(1) == y[full]).mean()),
            }
        out[name] = res
    return T, out


def cache_key(benchmark: Benchmark, config: AttributorConfig, base: Path) -> str:
    """Hash of everything the attributor depends on: texts, owners, config, base weights."""
    data = attribution_data(benchmark, calib_share=config.calib_share, seed=config.seed)
    weights = sorted(base.glob("*.safetensors")) + sorted(
        p for p in base.glob("tokenizer*.json") if p.is_file()
    )
    cfg = asdict(config)
    cfg.pop("dtype")  # precision is a hardware choice, not part of the result's identity
    return content_hash(
        data.owners, data.train, data.calib, data.test, cfg, hash_files(weights), RECIPE_VERSION
    )


def ensure_attributor(
    benchmark_source: Benchmark | str | Path,
    config: AttributorConfig | None = None,
    *,
    forget: str | list[str] | None = None,
    tofu_dir: Path | None = None,
    force: bool = False,
    progress: bool = True,
    root: Path | None = None,
    distributed: bool = False,
) -> Path:
    """The cached classifier folder for this benchmark and config, training it if absent.

    Key = content hash of the owner-labelled texts, the config and the base weights, under
    `output_root()/attributors/` (or `root`). The folder is written atomically (a killed
    run leaves no folder that looks finished) and is a standard HF sequence-classification
    checkpoint plus attribution.json (owners, temperature, metrics).

    distributed=False (for library callers such as the unlearning job, on any number of
    processes): the main process trains alone while the others wait, then all read the
    cache. distributed=True (scripts/train_attributor.py under `accelerate launch`): every
    process must call this; they train together with Accelerate.
    """
    from dareu.train.common import partial_state

    config = config or AttributorConfig()
    config.validate()
    state = partial_state()
    if isinstance(benchmark_source, Benchmark):
        benchmark = benchmark_source
    else:
        from dareu.data import load_benchmark

        with state.main_process_first():
            benchmark = load_benchmark(benchmark_source, forget=forget, tofu_dir=tofu_dir)
    with state.main_process_first():
        base = resolve_base(benchmark, config, root)
    key = cache_key(benchmark, config, base)
    target = (root or output_root()) / "attributors" / f"classifier-{key}"

    def train(acc: Any) -> None:
        if acc is None or acc.is_main_process:
            with atomic_dir(target) as tmp:
                log = tmp / "train_log.jsonl"
                train_classifier(
                    benchmark,
                    config,
                    tmp,
                    accelerator=acc,
                    progress=progress,
                    log_path=log,
                    base=base,
                )
        else:
            train_classifier(benchmark, config, target, accelerator=acc, progress=False, base=base)

    # Every process passes the same barriers whether or not the cache is hit (a process
    # that skipped one would deadlock the others).
    if distributed:
        from accelerate.utils import broadcast_object_list

        need = [force or not is_complete(target)]
        if state.num_processes > 1:
            broadcast_object_list(need, from_process=0)  # the main process decides
        if need[0]:
            from dareu.train.common import setup_accelerator

            acc = setup_accelerator(config.dtype)
            train(acc)
            acc.wait_for_everyone()
    else:
        with state.main_process_first():
            if state.is_main_process and (force or not is_complete(target)):
                train(None)
    if not is_complete(target):
        raise AttributionError(f"attributor training did not complete {target}")
    return target


def is_cached(benchmark: Benchmark, config: AttributorConfig, root: Path | None = None) -> bool:
    """Whether ensure_attributor would reuse a folder (for "cached:" messages)."""
    key = cache_key(benchmark, config, resolve_base(benchmark, config, root))
    return is_complete((root or output_root()) / "attributors" / f"classifier-{key}")
