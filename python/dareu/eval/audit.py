"""The forgetting audit: is the knowledge gone, or only hidden?

Three attacks known to bring "unlearned" knowledge back, each run on a copy of the model
and measured as the exact-graded leak (the world's grader; ROUGE-L recall on benchmarks
without one) on the forget facts:

* relearn: fine-tune on a fixed, seeded half of the forget facts (every trained phrasing
  of them) for a small budget, then ask the *other* half, in trained and held-out
  phrasings. The retain model relearns from the same half; its recovery is the floor, the
  original model's the ceiling. The paper's variant (Fig. 7: relearn on all of D_F, the
  gain over steps) is recorded as a curve.
* quantize: per-group symmetric round-to-nearest of every linear weight (lm_head kept),
  8 and 4 bits, in torch on any device (Zhang et al. 2024 report that 4-bit quantization
  restores unlearned knowledge).
* in-context: k of the owner's *other* facts (question and true answer) as earlier turns
  of the prompt, then the remaining fact's question.

Facts are (owner, fact type) on the knowledge world and sample ids elsewhere. The summary
keys are `audit_*` (docs/evaluation.md); the attacked copies are dropped afterwards.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from dareu.data.formatting import PromptFormat, collate_train, encode_qa
from dareu.data.schema import QASample
from dareu.eval.grading import Grader
from dareu.eval.rouge import rouge_recall

# generate(model, questions, desc, contexts) -> greedy answers
Generate = Callable[[nn.Module, list[str], str, list[list[tuple[str, str]]] | None], list[str]]


@dataclass(frozen=True)
class AuditConfig:
    """Every knob of the audit, with the issue's defaults; recorded in the summary."""

    relearn_steps: int = 20
    relearn_lr: float = 1e-3  # the job passes its own (JobConfig.audit_config)
    relearn_batch_size: int = 8
    relearn_curve_steps: tuple[int, ...] = (0, 5, 10, 20)  # relearn on all of D_F (Fig. 7)
    quant_bits: tuple[int, ...] = (8, 4)
    quant_group: int = 128
    incontext_k: tuple[int, ...] = (0, 2, 4)
    seed: int = 0

    def validate(self) -> None:
        if self.relearn_steps < 1 or self.relearn_batch_size < 1:
            raise ValueError("audit: relearn_steps and relearn_batch_size must be >= 1")
        if not (self.relearn_lr > 0 and np.isfinite(self.relearn_lr)):
            raise ValueError(f"audit: relearn_lr must be finite and > 0, got {self.relearn_lr}")
        if any(s < 0 for s in self.relearn_curve_steps):
            raise ValueError("audit: relearn_curve_steps must be >= 0")
        if any(b not in (2, 3, 4, 8) for b in self.quant_bits) or self.quant_group < 1:
            raise ValueError("audit: quant_bits must be among 2, 3, 4, 8 and quant_group >= 1")
        if any(k < 0 for k in self.incontext_k):
            raise ValueError("audit: incontext_k must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fact_key(s: QASample) -> str:
    """One fact: (owner, fact type) on the world, where each fact has several phrasings."""
    return f"{s.owner}/{s.fact_type}" if s.fact_type else s.id


def relearn_split(samples: Sequence[QASample], seed: int) -> tuple[set[str], set[str]]:
    """(trained, measured) fact keys: per owner, a seeded half of its facts is trained on
    (rounded down, so an owner with one fact is only measured); the halves never overlap."""
    by_owner: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        by_owner[s.owner].add(fact_key(s))
    rng = random.Random(seed)
    trained: set[str] = set()
    for owner in sorted(by_owner):
        keys = sorted(by_owner[owner])
        rng.shuffle(keys)
        trained.update(keys[: len(keys) // 2])
    return trained, {k for ks in by_owner.values() for k in ks} - trained


def incontext_prompts(
    targets: Sequence[QASample], pool: Sequence[QASample], k: int, seed: int
) -> list[tuple[QASample, list[tuple[str, str]]]]:
    """For every target with at least k other facts of its owner in `pool`: k of those
    (question, true answer) pairs, seeded. The target's own fact never enters its context."""
    by_owner: dict[str, dict[str, QASample]] = defaultdict(dict)
    for s in pool:
        by_owner[s.owner].setdefault(fact_key(s), s)
    rng = random.Random(seed)
    out: list[tuple[QASample, list[tuple[str, str]]]] = []
    for t in targets:
        others = [s for key, s in sorted(by_owner[t.owner].items()) if key != fact_key(t)]
        if len(others) < k:
            continue
        out.append((t, [(s.question, s.answer) for s in rng.sample(others, k)]))
    return out


def quantize_rtn(weight: torch.Tensor, bits: int, group: int = 128) -> torch.Tensor:
    """Symmetric round-to-nearest per group of `group` inputs (the last dim), dequantized.

    scale = max|w| / (2^(bits-1) - 1) per group; each element is within scale / 2 of the
    input, and a tensor already on that grid comes back exactly. Computed in fp32."""
    out_shape, dtype = weight.shape, weight.dtype
    w = weight.detach().float().reshape(-1, out_shape[-1])
    pad = (-w.shape[1]) % group
    if pad:
        w = torch.nn.functional.pad(w, (0, pad))
    g = w.reshape(w.shape[0], -1, group)
    qmax = 2 ** (bits - 1) - 1
    scale = g.abs().amax(dim=-1, keepdim=True) / qmax
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(g / safe), -qmax, qmax) * safe
    q = q.reshape(w.shape)[:, : out_shape[-1]]
    return q.reshape(out_shape).to(dtype)


def _linear_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(layer class name, weight) of every linear layer but the output embedding."""
    get_head: Any = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    out: list[tuple[str, torch.Tensor]] = []
    for m in model.modules():
        w = getattr(m, "weight", None)
        if (
            m is not head
            and type(m).__name__ in ("Linear", "Conv1D")
            and isinstance(w, torch.Tensor)
        ):
            out.append((type(m).__name__, w))
    return out


def quantized_copy(model: nn.Module, bits: int, group: int) -> nn.Module:
    """A copy with every linear weight (nn.Linear, GPT-2's Conv1D) quantized; the output
    embedding stays in full precision, as weight-only quantizers leave it."""
    qmodel = copy.deepcopy(model)
    with torch.no_grad():
        for kind, w in _linear_weights(qmodel):
            # nn.Linear is [out, in]; Conv1D stores [in, out]: group along the inputs.
            if kind == "Conv1D":
                w.copy_(quantize_rtn(w.t(), bits, group).t())
            else:
                w.copy_(quantize_rtn(w, bits, group))
    return qmodel


def nf4_available() -> bool:
    """bitsandbytes' NF4 runs on a CUDA device only."""
    import importlib.util

    return torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None


def nf4_copy(model: nn.Module, blocksize: int = 64) -> nn.Module:
    """A copy with every linear weight (lm_head kept) round-tripped through bitsandbytes'
    NF4 (QLoRA's 4-bit format, its default block size 64), on the GPU."""
    import bitsandbytes.functional as bnbf

    qmodel = copy.deepcopy(model)
    with torch.no_grad():
        for _, w in _linear_weights(qmodel):
            packed, state = bnbf.quantize_4bit(w.data.cuda(), blocksize=blocksize,
                                               quant_type="nf4")  # fmt: skip
            back = bnbf.dequantize_4bit(packed, state, quant_type="nf4")
            w.copy_(back.reshape(w.shape).to(device=w.device, dtype=w.dtype))
    return qmodel


def relearn(
    model: nn.Module,
    tokenizer: Any,
    rows: Sequence[QASample],
    fmt: PromptFormat,
    cfg: AuditConfig,
    *,
    steps: int,
    max_length: int,
    on_step: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """A copy of `model` fine-tuned on `rows` (answer NLL, AdamW, seeded batches).

    `on_step(step, model)` runs before the first step (0) and after each step."""
    if not rows:
        raise ValueError("audit: nothing to relearn from (no forget rows in the trained half)")
    student = copy.deepcopy(model)
    student.requires_grad_(True)
    student.train()
    device = next(student.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode_qa(tokenizer, s.question, s.answer, fmt, max_length) for s in rows]
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.relearn_lr, weight_decay=0.0)
    rng = random.Random(cfg.seed)
    order: list[int] = []
    if on_step is not None:
        on_step(0, student)
    for step in range(1, steps + 1):
        batch_idx: list[int] = []
        while len(batch_idx) < min(cfg.relearn_batch_size, len(encoded)):
            if not order:
                order = rng.sample(range(len(encoded)), len(encoded))
            batch_idx.append(order.pop())
        batch = collate_train([encoded[i] for i in batch_idx], pad)
        loss = student(**{k: v.to(device) for k, v in batch.items()}).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(step, student)
    student.eval()
    return student


@dataclass
class Prober:
    """Asks one set of questions and scores the answers: leak share (grader) and ROUGE-L."""

    grader: Grader | None
    generate: Generate
    records: list[dict[str, Any]]

    def __call__(
        self,
        model: nn.Module,
        samples: Sequence[QASample],
        probe: str,
        *,
        heldout: bool = False,
        contexts: list[list[tuple[str, str]]] | None = None,
    ) -> tuple[float | None, float | None]:
        """(leak share or None without a grader, ROUGE-L recall); (None, None) when empty."""
        if heldout:
            samples = [s for s in samples if s.paraphrased_question]
        if not samples:
            return None, None
        qs = [(s.paraphrased_question or "") if heldout else s.question for s in samples]
        gens = self.generate(model, qs, f"audit {probe}", contexts)
        rouge = float(np.mean(rouge_recall([s.answer for s in samples], gens)["rougeL"]))
        grades = [self._grade(g, s) for g, s in zip(gens, samples, strict=True)]
        for s, q, g, c in zip(samples, qs, gens, grades, strict=True):
            self.records.append({"probe": probe, "id": s.id, "owner": s.owner, "question": q,
                                 "generation": g, "grade": c})  # fmt: skip
        leak = float(np.mean([c == "leak" for c in grades])) if self.grader else None
        return leak, rouge

    def _grade(self, answer: str, s: QASample) -> str | None:
        if self.grader is None or not s.fact_type or s.owner not in self.grader.owners:
            return None
        return self.grader.grade(answer, s.owner, s.fact_type).cls


# (probe, label): the rows of every audit table, in reading order.
PROBES: tuple[tuple[str, str], ...] = (
    ("incontext_k0", "no attack (trained phrasing)"),
    ("relearn", "relearn half, ask the other half"),
    ("relearn_heldout", "relearn half, other half in held-out phrasing"),
    ("relearn_all", "relearn on all of D_F (paper Fig. 7), last step"),
    ("quant8", "8-bit round-to-nearest"),
    ("quant4", "4-bit round-to-nearest"),
    ("quant_nf4", "bitsandbytes NF4 (GPU only)"),
    ("incontext_k2", "2 of the owner's other facts in context"),
    ("incontext_k4", "4 of the owner's other facts in context"),
)


def before_probe(probe: str) -> str:
    """The same questions asked of the unattacked model: what each attack's gain is
    measured from (the relearned half has its own; quantization and context share k=0)."""
    return f"{probe}_before" if probe.startswith("relearn") else "incontext_k0"


def audit_key(probe: str, metric: str) -> str:
    """The summary key of a probe's metric ("leak" or "rougeL"): audit_relearn_leak,
    audit_incontext_leak_k2 (the in-context keys end in k, as the issue names them)."""
    if probe.startswith("incontext_"):
        return f"audit_incontext_{metric}_{probe.removeprefix('incontext_')}"
    return f"audit_{probe}_{metric}"


def _put(out: dict[str, Any], probe: str, leak_rouge: tuple[float | None, float | None]) -> None:
    """Leak keys exist where there is a grader (None when the probe had no fact to ask);
    without one they are absent, not zero."""
    leak, rouge = leak_rouge
    if leak is not None or out["audit_graded"]:
        out[audit_key(probe, "leak")] = leak
    out[audit_key(probe, "rougeL")] = rouge


def run_audit(
    model: nn.Module,
    tokenizer: Any,
    forget_rows: Sequence[QASample],
    forget_eval: Sequence[QASample],
    *,
    grader: Grader | None,
    generate: Generate,
    fmt: PromptFormat,
    cfg: AuditConfig,
    max_length: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every probe on `model` -> (flat `audit_*` summary keys, per-answer records).

    forget_rows: the forget set as trained (every phrasing); forget_eval: the facts asked,
    one row each, with the held-out phrasing as `paraphrased_question`."""
    cfg.validate()
    records: list[dict[str, Any]] = []
    ask = Prober(grader, generate, records)
    out: dict[str, Any] = {"audit_config": cfg.to_dict(), "audit_graded": grader is not None}

    trained, measured = relearn_split([*forget_rows, *forget_eval], cfg.seed)
    half = [s for s in forget_rows if fact_key(s) in trained]
    probe_set = [s for s in forget_eval if fact_key(s) in measured]
    out["audit_relearn_n_train_rows"], out["audit_relearn_n_measured"] = len(half), len(probe_set)
    if half and probe_set:
        _put(out, "relearn_before", ask(model, probe_set, "relearn_before"))
        _put(out, "relearn_heldout_before",
             ask(model, probe_set, "relearn_heldout_before", heldout=True))  # fmt: skip
        copy_ = relearn(model, tokenizer, half, fmt, cfg, steps=cfg.relearn_steps,
                        max_length=max_length)  # fmt: skip
        _put(out, "relearn", ask(copy_, probe_set, "relearn"))
        _put(out, "relearn_heldout", ask(copy_, probe_set, "relearn_heldout", heldout=True))
        del copy_

    curve: list[dict[str, Any]] = []
    curve_steps = sorted({0, *cfg.relearn_curve_steps})  # step 0: the gain's baseline

    def at_step(step: int, m: nn.Module) -> None:
        if step in curve_steps:
            leak, rouge = ask(m, forget_eval, f"relearn_all_step{step}")
            curve.append({"step": step, "leak": leak, "rougeL": rouge})

    if curve_steps and forget_rows:
        relearn(model, tokenizer, forget_rows, fmt, cfg, steps=max(curve_steps),
                max_length=max_length, on_step=at_step)  # fmt: skip
        out["audit_relearn_curve"] = curve
        _put(out, "relearn_all_before", (curve[0]["leak"], curve[0]["rougeL"]))
        _put(out, "relearn_all", (curve[-1]["leak"], curve[-1]["rougeL"]))

    for bits in cfg.quant_bits:
        qmodel = quantized_copy(model, bits, cfg.quant_group)
        _put(out, f"quant{bits}", ask(qmodel, forget_eval, f"quant{bits}"))
        del qmodel

    if nf4_available():
        qmodel = nf4_copy(model)
        _put(out, "quant_nf4", ask(qmodel, forget_eval, "quant_nf4"))
        del qmodel

    for k in cfg.incontext_k:
        pairs = incontext_prompts(forget_eval, forget_eval, k, cfg.seed)
        targets, contexts = [t for t, _ in pairs], [c for _, c in pairs]
        _put(out, f"incontext_k{k}",
             ask(model, targets, f"incontext_k{k}", contexts=contexts if k else None))  # fmt: skip
        out[f"audit_incontext_n_k{k}"] = len(targets)
    return out, records
