"""The main job: data -> original and retain models -> attributor -> DareU -> eval -> report.

`scripts/unlearn.py` with no arguments runs this on the embedded synthetic default. Each
stage is cached by a content hash (data, fine-tuned models, attributor, evaluations of the
original and retain models), so a second run only redoes what changed. The run folder is
printed on the first line of output. With `--rounds N` the forget owners are split into N
sequential requests; each round continues from the previous round's model and is evaluated
on the owners forgotten so far.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dareu.cache import (
    atomic_write_json,
    check_output_dir,
    content_hash,
    is_complete,
    output_root,
    stage_lock,
)
from dareu.data.schema import Benchmark, QASample
from dareu.eval.audit import AuditConfig
from dareu.ppo.config import PPOConfig
from dareu.unlearners import Round, Unlearner, make_unlearner

JOB_VERSION = 1  # bump when the job changes what a given config produces
# TOFU with the tiny from-scratch model: the forget authors plus retain_perturbed's 20
# authors (the retain evaluation's). Measured (docs/data.md, "--tofu-authors"): the whole main
# job on forget01 runs cold in under 4 minutes on 2 idle CPU cores and the original model
# memorises its forget set (ROUGE-L recall 0.99).
TINY_TOFU_AUTHORS = 20


@dataclass
class JobConfig:
    """Settings shared by every unlearning method (the CLI's common flags)."""

    method: str = "dareu"
    benchmark: str = "synthetic"
    forget: str | None = None  # TOFU split (forget10) or comma-separated owners / sample ids
    tofu_dir: str | None = None
    idk_path: str | None = None  # refusal answers (one per line) for the IdK methods
    model: str | None = None  # original model folder; None = the cached tiny original
    retain_model: str | None = None  # for ToW / forget quality; None = the cached tiny retain
    attributor: str = "classifier"  # load_attributor spec
    fmt: str = "plain"
    seed: int = 0
    dtype: str = "auto"
    rounds: int = 1
    output: str | None = None
    resume: bool = False
    force: bool = False
    save_every: int = 0
    report_to: str = "none"
    evaluate: bool = True
    eval_max_new_tokens: int = 200
    eval_batch_size: int = 32
    eval_max_samples: int | None = None
    max_length: int = 256
    distill_general: bool = True  # distil on general_train as well as the retain split
    # Sequential rounds: train round r on every request so far (not only the new one), so
    # later rounds cannot undo earlier ones (measured in docs/dareu.md: they partly do
    # without it); False is the paper's literal setting.
    cumulative_rounds: bool = True
    progress: bool = True
    # Knowledge world, tiny default only: background people the base is pretrained on
    # (None = 3000 for the tiny size; the base is cached once per machine per value).
    pretrain_people: int | None = None
    # Default hyperparameters: "tiny" (the embedded default) or "paper" (a real model);
    # None: tiny without --model. Resolved here once, for DareU and every baseline.
    profile: str | None = None
    # The forgetting audit (relearn, quantize, in-context) on every evaluated model.
    audit: bool = True
    audit_relearn_steps: int = 20
    audit_relearn_lr: float | None = None  # None: paper 1e-5, tiny 1e-4 (see audit_config)
    # What is unlearned: "qa", "completion" (documents' continuations) or "both"; "auto":
    # QA on the knowledge world and TOFU, every kind the forget request holds on user data.
    task: str = "auto"
    prompt_tokens: int = 16  # completion prompt: a document's first N tokens
    continuation_tokens: int = 32  # completion target / most tokens a continuation gets
    retain_doc_share: float | None = None  # documents' share of the retain rows (None: natural)
    # TOFU only: keep the forget authors and this many retain authors (drawn with the seed),
    # so a small machine can run the whole job (0: every author; None: TINY_TOFU_AUTHORS
    # with the tiny model, every author with --model).
    tofu_authors: int | None = None

    @property
    def resolved_tofu_authors(self) -> int | None:
        """Retain authors kept on TOFU (None: every author)."""
        if self.tofu_authors is not None:
            return self.tofu_authors or None
        return TINY_TOFU_AUTHORS if self.benchmark == "tofu" and self.model is None else None

    @property
    def resolved_profile(self) -> str:
        return self.profile or ("tiny" if self.model is None else "paper")

    def audit_config(self) -> AuditConfig | None:
        """The audit's settings: relearning with the profile's unlearning batch, at its
        unlearning lr (paper: 1e-5) or, on the tiny profile, a tenth of it: 20 full-parameter
        steps at the tiny lr 1e-3 make the original itself lose 57% of the measured facts,
        so the probe would measure damage, not recovery (docs/evaluation.md, "Audit")."""
        if not self.audit:
            return None
        from dareu.methods.defaults import PAPER, TINY

        tiny = self.resolved_profile == "tiny"
        train = TINY if tiny else PAPER
        default_lr = train.lr / 10 if tiny else train.lr
        lr = self.audit_relearn_lr if self.audit_relearn_lr is not None else default_lr
        return AuditConfig(relearn_steps=self.audit_relearn_steps, relearn_lr=lr,
                           relearn_batch_size=train.batch_size, seed=self.seed)  # fmt: skip

    def completion_config(self) -> Any:
        from dareu.data.completion import CompletionConfig

        return CompletionConfig(self.prompt_tokens, self.continuation_tokens,
                                self.retain_doc_share)  # fmt: skip

    def validate(self) -> None:
        """Cheap checks before any compute; ValueError names the flag."""
        from dareu.data.completion import check_task
        from dareu.data.formatting import check_format
        from dareu.models.loading import DTYPE_NAMES, check_model_path

        check_task(self.task)
        self.completion_config().validate()
        check_format(self.fmt)
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"--dtype: {self.dtype!r} is not one of {', '.join(DTYPE_NAMES)}")
        if self.rounds < 1:
            raise ValueError(f"--rounds: must be >= 1, got {self.rounds}")
        if self.tofu_authors is not None and self.tofu_authors < 0:
            raise ValueError(f"--tofu-authors: must be >= 1 or 'all', got {self.tofu_authors}")
        if self.save_every < 0:
            raise ValueError(f"--save-every: must be >= 0, got {self.save_every}")
        if self.report_to not in ("none", "tensorboard"):
            raise ValueError(
                f"--report-to: must be 'none' or 'tensorboard', got {self.report_to!r}"
            )
        if self.report_to == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise ValueError(
                    "--report-to tensorboard needs the tensorboard package "
                    "(pip install tensorboard)"
                ) from None
        for name in ("eval_max_new_tokens", "eval_batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: must be >= 1")
        if self.eval_max_samples is not None and self.eval_max_samples < 1:
            raise ValueError("--eval-max-samples: must be >= 1")
        if self.profile not in (None, "tiny", "paper"):
            raise ValueError(f"--profile: must be 'tiny' or 'paper', got {self.profile!r}")
        if self.audit_relearn_lr is not None and not (
            math.isfinite(self.audit_relearn_lr) and self.audit_relearn_lr > 0
        ):
            raise ValueError(f"--audit-relearn-lr: must be > 0, got {self.audit_relearn_lr}")
        if self.audit_relearn_steps < 1:
            raise ValueError(f"--audit-relearn-steps: must be >= 1, got {self.audit_relearn_steps}")
        if self.pretrain_people is not None and self.pretrain_people < 1:
            raise ValueError(f"--pretrain-people: must be >= 1, got {self.pretrain_people}")
        if self.model is not None:
            check_model_path(self.model)
        if self.retain_model is not None:
            check_model_path(self.retain_model)
        if self.tofu_dir is not None and not Path(self.tofu_dir).is_dir():
            raise ValueError(f"--tofu-dir: {self.tofu_dir} is not a folder")
        if self.idk_path is not None and not Path(self.idk_path).is_file():
            raise ValueError(f"--idk-path: {self.idk_path} is not a file")
        if not self.attributor.strip():
            raise ValueError("--attributor: empty spec")
        if self.output is not None:
            check_output_dir(self.output, "--output")
        else:
            check_output_dir(output_root(), "DAREU_HOME")

    @property
    def is_default_model(self) -> bool:
        return self.model is None


def run_dir(job: JobConfig, method_cfg: dict[str, Any], data: str | None = None) -> Path:
    """Where this run writes: --output, or runs/unlearn/<method>-s<seed>-<config hash>.

    `data` names the benchmark's content (its cached folder, whose name is a hash of the
    generator version and sizes), so regenerated data is a new run, not a stale cache hit.
    """
    if job.output:
        return Path(job.output).expanduser().resolve()
    fields = dataclasses.asdict(job)
    for k in ("output", "resume", "force", "save_every", "report_to", "progress"):
        fields.pop(k)
    key = content_hash("unlearn", JOB_VERSION, fields, method_cfg, data)
    return output_root() / "unlearn" / f"{job.method}-s{job.seed}-{key}"


def split_rounds(forget: list[QASample], owners: list[str], rounds: int) -> list[list[QASample]]:
    """N sequential forget requests: the forget owners in order, in N near-equal groups."""
    if rounds > len(owners):
        raise ValueError(
            f"--rounds {rounds}: the forget request has only {len(owners)} owners, so at most "
            f"{len(owners)} rounds"
        )
    groups = np.array_split(np.arange(len(owners)), rounds)
    out = []
    for g in groups:
        names = {owners[i] for i in g}
        out.append([s for s in forget if s.owner in names])
    return out


def round_view(bench: Benchmark, owners: set[str]) -> Benchmark:
    """The benchmark as evaluated after a round: forget = the owners forgotten so far."""
    return dataclasses.replace(
        bench,
        forget=[s for s in bench.forget if s.owner in owners],
        forget_eval=[s for s in bench.forget_eval if s.owner in owners],
        forget_completion=[s for s in bench.forget_completion if s.owner in owners],
        forget_docs=[d for d in bench.forget_docs if d.owner in owners],
        forget_owners=[o for o in bench.forget_owners if o in owners],
    )


def log(msg: str) -> None:
    """One line on the main process only."""
    from dareu.train.common import partial_state

    if partial_state().is_main_process:
        print(f"[dareu] {msg}", flush=True)


# ----------------------------------------------------------------------------------------
# evaluation helpers (attribution score of greedy answers, response length)
# ----------------------------------------------------------------------------------------
def attribution_of(
    attributor: Any, texts: list[str], owners: list[str], empty: float
) -> list[float]:
    """DA(owner | whole greedy answer) per sample; an empty answer scores `empty`."""
    out = [empty] * len(texts)
    idx = [i for i, t in enumerate(texts) if t.strip()]
    if idx:
        s = attributor.score([texts[i] for i in idx], [owners[i] for i in idx])
        for j, i in enumerate(idx):
            out[i] = float(s[j])
    return out


def extra_metrics(
    result: Any, attributor: Any, tokenizer: Any, empty: float
) -> dict[str, float | None]:
    """Forget-set attribution score and mean response length (tokens) of the greedy answers."""
    recs = result.per_sample.get("forget", [])
    texts = [r["generation"] for r in recs]
    owners = [r["owner"] for r in recs]
    if not recs:
        return {"forget_attr_score": None, "forget_resp_len": None}
    known = [i for i, o in enumerate(owners) if o in set(attributor.owners)]
    scores = attribution_of(
        attributor, [texts[i] for i in known], [owners[i] for i in known], empty
    )
    lens = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return {
        "forget_attr_score": float(np.mean(scores)) if scores else None,
        "forget_resp_len": float(np.mean(lens)),
        "forget_empty_share": float(np.mean([not t.strip() for t in texts])),
    }


def evaluate_folder(
    model_path: Path,
    bench: Benchmark,
    job: JobConfig,
    out: Path,
    *,
    retain_eval: Path | None,
    reference: Path | None,
    attributor: Any,
    empty: float,
    run_config: dict[str, Any],
) -> Path:
    """Evaluate a model folder into `out` (cached: a complete folder is reused)."""
    if is_complete(out):
        return out
    from dareu.eval.evaluator import evaluate_model
    from dareu.models.loading import load_model

    model: Any
    model, tok = load_model(model_path, dtype=job.dtype)
    if hasattr(model, "merge_and_unload"):
        # A DareU LoRA output: merging in memory makes greedy decoding several times
        # faster and changes no number (the adapter is folded into the same weights).
        model = model.merge_and_unload()
    ref_model, ref_tok = (
        load_model(reference, dtype=job.dtype) if reference is not None else (None, None)
    )
    res = evaluate_model(
        model,
        tok,
        bench,
        fmt=job.fmt,
        retain_eval=retain_eval,
        reference_model=ref_model,
        reference_tokenizer=ref_tok,
        max_new_tokens=job.eval_max_new_tokens,
        batch_size=job.eval_batch_size,
        max_length=job.max_length,
        max_samples=job.eval_max_samples,
        run_config=run_config,
        progress=job.progress,
        audit=job.audit_config(),
    )
    res.summary.update(extra_metrics(res, attributor, tok, empty))
    res.summary["label"] = run_config.get("label")
    res.save(out)
    return out


def read_summary(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "summary.json").read_text()))


# ----------------------------------------------------------------------------------------
# checks before any compute
# ----------------------------------------------------------------------------------------
def attributor_owners_from_spec(spec: str) -> list[str] | None:
    """The owners a path-based attributor knows, read from its attribution.json (no model
    load); None when the spec trains or builds one from the benchmark (it then knows all)."""
    from dareu.attribution.spec import parse_spec

    how, members = parse_spec(spec)
    if how is not None:
        known: set[str] | None = None
        for part in members:
            owners = attributor_owners_from_spec(part)
            if owners is not None:
                known = set(owners) if known is None else known & set(owners)
        return sorted(known) if known is not None else None
    s = members[0]
    name, _, arg = s.partition(":")
    path = arg if name in ("classifier", "embedding") else (s if name not in ("ngram",) else "")
    if not path or (name == "embedding" and not (Path(path) / "attribution.json").is_file()):
        return None
    from dareu.attribution.classifier import read_meta

    return [str(o) for o in read_meta(Path(path).expanduser())["owners"]]


def preflight(job: JobConfig, unlearner: Unlearner) -> Benchmark:
    """Every check that needs no model: configs, paths, the forget request, rounds and
    the attributor's owners. Raises ValueError (the CLI exits 2)."""
    job.validate()
    unlearner.validate()
    from dareu.data.loader import load_request

    known = attributor_owners_from_spec(job.attributor)  # before the data stage writes
    bench = load_request(job.benchmark, job.forget, tofu_dir=job.tofu_dir,
                         idk_path=job.idk_path, seed=job.seed,
                         tofu_authors=job.resolved_tofu_authors)  # fmt: skip
    if not cuts_after_models(job, bench):
        bench = cut_documents(job, bench, preflight_tokenizer(job, bench))
    split_rounds(bench.forget, bench.forget_owners, job.rounds)
    if known is not None:
        unknown = sorted(set(bench.forget_owners) - set(known))
        if unknown:
            raise ValueError(
                f"--attributor {job.attributor}: forget owners {unknown[:5]} are unknown to it "
                f"(it knows {len(known)} owners); train an attributor on this benchmark"
            )
    return bench


def cuts_after_models(job: JobConfig, bench: Benchmark) -> bool:
    """The knowledge world's biographies are cut with the tokenizer of its pretrained base,
    known once the models exist; they are generated, so nothing about them can be a user
    error found too late. Every other source is cut (and checked) before any compute."""
    return bench.world is not None and job.model is None


def preflight_tokenizer(job: JobConfig, bench: Benchmark) -> Any:
    """The policy's tokenizer before any model is trained: the user's checkpoint's, or the
    tiny default's (the same recipe `dareu.models.tiny` fits to the benchmark's text, a
    second or two); None when there are no documents to cut."""
    if not (bench.forget_docs or bench.retain_docs):
        return None
    if job.model is not None:
        from dareu.models.loading import load_tokenizer

        return load_tokenizer(Path(job.model))
    from dareu.models.tiny import TINY_SIZES, benchmark_corpus, train_tokenizer
    from dareu.train.finetune import default_config

    size = default_config(bench, fmt=job.fmt, dtype=job.dtype, seed=job.seed).tiny_size
    return train_tokenizer(benchmark_corpus(bench), TINY_SIZES[size].vocab_size)


def cut_documents(job: JobConfig, bench: Benchmark, tokenizer: Any) -> Benchmark:
    """Resolve --task and cut the documents into completion rows (`dareu.data.completion`)."""
    from dareu.data.completion import apply_task

    return apply_task(bench, job.task, tokenizer, job.completion_config())


def task_request(job: JobConfig, bench: Benchmark) -> tuple[list[QASample], list[QASample]]:
    """(forget rows, retain rows) the unlearner trains on under the benchmark's task."""
    from dareu.data.completion import task_rows

    share = job.retain_doc_share
    return task_rows(bench, "forget"), task_rows(bench, "retain", share, job.seed)


# ----------------------------------------------------------------------------------------
# the job
# ----------------------------------------------------------------------------------------
def run_job(
    job: JobConfig,
    ppo: PPOConfig,
    *,
    baseline: dict[str, Any] | None = None,
    stop_after_batches: int | None = None,
) -> Path:
    """Run (or reuse) every stage; returns the run folder.

    `job.method` names a registered unlearner (`dareu.unlearners`): "dareu" trains with
    `ppo`, any other name is a baseline with `baseline` = {"hparams": {...}, "train":
    {UnlearnConfig overrides}}, on the same data, models, evaluation and report.
    """
    from dareu.train.common import partial_state

    t_start = time.perf_counter()
    unlearner = make_unlearner(job, ppo, baseline)
    bench = preflight(job, unlearner)
    state = partial_state()  # cpu=True without a GPU, so torchrun forms a gloo group
    out = run_dir(job, unlearner.config(), f"{bench.name}@{bench.root}")
    # The FIRST line of output: where everything goes.
    if state.is_main_process:
        print(f"DareU run folder: {out}", flush=True)
    # One run per folder at a time: a second run of the same job waits, then finds the
    # finished summary (the main rank holds the lock for its group).
    with stage_lock(out, enabled=state.is_main_process):
        state.wait_for_everyone()
        return _run_locked(job, ppo, bench, unlearner, out, stop_after_batches, t_start)


def _run_locked(
    job: JobConfig,
    ppo: PPOConfig,
    bench: Benchmark,
    unlearner: Unlearner,
    out: Path,
    stop_after_batches: int | None,
    t_start: float,
) -> Path:
    """The stages of `run_job`, under the run folder's lock: models, attributor, then each
    round unlearned and evaluated, then the report."""
    from dareu.train.common import partial_state

    state = partial_state()
    if (out / "summary.json").is_file() and not (job.force or job.resume):
        log(f"cached: {out / 'report.md'} (use --force to unlearn again)")
        return out
    original, retain_model = original_and_retain(job, bench)
    if cuts_after_models(job, bench):
        from dareu.models.loading import load_tokenizer

        bench = cut_documents(job, bench, load_tokenizer(original))
    forget_rows, retain_rows = task_request(job, bench)
    rounds = split_rounds(forget_rows, bench.forget_owners, job.rounds)
    log_start(job, bench, unlearner, forget_rows, retain_rows)
    attributor = load_job_attributor(job, ppo, bench, original)
    unlearner.start(out)
    prepare_folder(job, bench, out, unlearner.config(), original, retain_model)

    distill = [*retain_rows, *(bench.general_train if job.distill_general else [])]
    rows: list[dict[str, Any]] = []
    forgotten: set[str] = set()
    prev: Path | None = None
    t_train = 0.0
    for r, new_request in enumerate(rounds):
        forgotten |= {s.owner for s in new_request}
        request = (
            [s for s in forget_rows if s.owner in forgotten]
            if job.cumulative_rounds
            else new_request
        )
        t0 = time.perf_counter()
        prev = unlearner.train_round(
            bench,
            Round(index=r, request=request, distill=distill, original=original, prev=prev,
                  retain_model=retain_model, out_dir=out / f"round-{r}", attributor=attributor,
                  stop_after=stop_after_batches),
        )  # fmt: skip
        t_train += time.perf_counter() - t0
        log(f"round {r}: unlearned model -> {prev}")
        if job.evaluate and state.is_main_process:
            row = evaluate_round(job, ppo, bench, forgotten, r, prev, original, retain_model,
                                 attributor, out, unlearner.config())  # fmt: skip
            rows.append(row)
        state.wait_for_everyone()
    unlearner.finish()
    if state.is_main_process:
        data = task_counts(bench, forget_rows, retain_rows)
        write_summary(job, out, unlearner.config(), original, retain_model, rows, t_train,
                      time.perf_counter() - t_start, data)  # fmt: skip
    state.wait_for_everyone()
    return out


def task_counts(bench: Benchmark, forget: list[QASample], retain: list[QASample]) -> dict[str, Any]:
    """The task and its rows by kind, for summary.json and the report."""

    def kinds(rows: list[QASample]) -> dict[str, int]:
        n = sum(s.kind == "completion" for s in rows)
        return {"qa": len(rows) - n, "completion": n}

    return {
        "task": bench.task,
        "forget": kinds(forget),
        "retain": kinds(retain),
        "documents": {"forget": len(bench.forget_docs), "retain": len(bench.retain_docs)},
    }


def log_start(
    job: JobConfig, bench: Benchmark, unlearner: Unlearner, forget: list[QASample],
    retain: list[QASample],
) -> None:  # fmt: skip
    """The config, what the data holds, and what the task makes of it (each kind counted)."""
    from dareu.data.completion import count_rows

    method = job.method.lower()
    log(f"config: {json.dumps({'job': dataclasses.asdict(job), method: unlearner.config()})}")
    log(
        f"benchmark {bench.name}: {len(bench.forget)} forget QA + {len(bench.forget_docs)} "
        f"documents of {len(bench.forget_owners)} owners, {len(bench.retain)} retain QA + "
        f"{len(bench.retain_docs)} documents; method {method}"
        + ("; exact grading on (knowledge world)" if bench.world else "")
    )
    log(
        f"task {bench.task} (--task {job.task}): unlearning {count_rows(forget)} forget rows "
        f"in {job.rounds} round(s), keeping {count_rows(retain)} retain rows"
    )


def original_and_retain(job: JobConfig, bench: Benchmark) -> tuple[Path, Path | None]:
    """The original model and the retain model (the gold standard): the user's folders, or
    the cached fine-tunes of the embedded default."""
    from dareu.train.finetune import default_config, ensure_finetuned

    ft_cfg = default_config(bench, fmt=job.fmt, dtype=job.dtype, seed=job.seed,
                            pretrain_people=job.pretrain_people)  # fmt: skip
    # --save-every / --resume reach the fine-tunes (their unit: optimizer steps)
    stage: dict[str, Any] = {"progress": job.progress, "resume": job.resume,
                             "save_every": job.save_every}  # fmt: skip
    original = (
        Path(job.model).resolve()
        if job.model is not None
        else ensure_finetuned(bench, "original", ft_cfg, **stage)
    )
    retain_model: Path | None = None
    if job.retain_model is not None:
        retain_model = Path(job.retain_model).resolve()
    elif job.is_default_model:
        retain_model = ensure_finetuned(bench, "retain", ft_cfg, **stage)
    log(f"original model: {original}")
    log(f"retain model:   {retain_model}")
    return original, retain_model


def load_job_attributor(job: JobConfig, ppo: PPOConfig, bench: Benchmark, original: Path) -> Any:
    """The attributor (a cached classifier training by default), decoding with the
    policy's tokenizer; its forget owners were checked in `preflight`."""
    from dareu.attribution import load_attributor
    from dareu.models.loading import load_model, load_tokenizer
    from dareu.train.common import partial_state

    policy_tok = (
        load_tokenizer(original)
        if (original / "config.json").is_file()
        else load_model(original)[1]
    )
    with partial_state().main_process_first():
        attributor = load_attributor(
            job.attributor, benchmark=bench, tokenizer=policy_tok, progress=job.progress
        )
    ppo.apply_attr_temperature(attributor)
    log(f"attributor: {json.dumps(attributor.describe(), default=str)}")
    return attributor


def prepare_folder(
    job: JobConfig, bench: Benchmark, out: Path, method_cfg: dict[str, Any], original: Path,
    retain_model: Path | None,
) -> None:  # fmt: skip
    """--force clears earlier rounds and evaluations; config.json says what runs (with the
    benchmark's name and owners: a TOFU subset's drawn authors are listed)."""
    from dareu.train.common import partial_state

    state = partial_state()
    if job.force and state.is_main_process:
        import shutil

        for p in out.glob("round-*"):
            shutil.rmtree(p)
        shutil.rmtree(out / "eval", ignore_errors=True)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            out / "config.json",
            {"job": dataclasses.asdict(job), "method": method_cfg, "original": str(original),
             "retain_model": str(retain_model) if retain_model else None,
             "benchmark": {"name": bench.name, "tofu_authors": job.resolved_tofu_authors,
                           "forget_owners": bench.forget_owners, "owners": bench.owners}},
        )  # fmt: skip
    state.wait_for_everyone()


def evaluate_round(
    job: JobConfig, ppo: PPOConfig, bench: Benchmark, forgotten: set[str], r: int,
    model_dir: Path, original: Path, retain_model: Path | None, attributor: Any, out: Path,
    method_cfg: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Evaluate the retain, original and unlearned models on the owners forgotten so far
    (main process). The first two are cached across runs: they depend only on the model,
    the benchmark view and the evaluation settings."""
    from dareu.eval.evaluator import EVAL_VERSION

    view = round_view(bench, forgotten)
    empty = ppo.empty_score(len(attributor.owners))
    audit_cfg = job.audit_config()
    ekey = content_hash(
        EVAL_VERSION, bench.name, sorted(forgotten), job.fmt, job.eval_max_new_tokens,
        job.eval_max_samples, job.max_length, job.attributor, empty, job.prompt_tokens,
        job.continuation_tokens,
        *([audit_cfg.to_dict()] if audit_cfg is not None else []),
    )  # fmt: skip
    eval_root = output_root() / "evals"
    common: dict[str, Any] = {"attributor": attributor, "empty": empty, "reference": original}
    ret_eval = None
    if retain_model is not None:
        ret_eval = evaluate_folder(
            retain_model, view, job, eval_root / f"retain-{content_hash(str(retain_model), ekey)}",
            retain_eval=None, run_config={"label": "retain"}, **common,
        )  # fmt: skip
    orig_eval = evaluate_folder(
        original, view, job, eval_root / f"original-{content_hash(str(original), ekey)}",
        retain_eval=ret_eval, run_config={"label": "original"}, **common,
    )  # fmt: skip
    method = job.method.lower()
    label = method if job.rounds == 1 else f"{method} round {r}"
    run_cfg = {"label": label, "method": method, "seed": job.seed, "round": r,
               "config": method_cfg, "model": str(original)}  # fmt: skip
    mine = evaluate_folder(model_dir, view, job, out / "eval" / f"round-{r}",
                           retain_eval=ret_eval, run_config=run_cfg, **common)  # fmt: skip
    return {
        "round": r,
        "forgotten_owners": sorted(forgotten),
        "original": read_summary(orig_eval),
        "retain": read_summary(ret_eval) if ret_eval else None,
        "unlearned": read_summary(mine),
        "eval_dirs": {"original": str(orig_eval), "retain": str(ret_eval), "unlearned": str(mine)},
    }


def write_summary(
    job: JobConfig, out: Path, method_cfg: dict[str, Any], original: Path,
    retain_model: Path | None, rows: list[dict[str, Any]], t_train: float, wall: float,
    data: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """summary.json and the report (main process)."""
    from dareu.report import write_report
    from dareu.train.common import partial_state

    summary = {
        "run_dir": str(out),
        "method": job.method.lower(),
        "job": dataclasses.asdict(job),
        "method_config": method_cfg,
        "original": str(original),
        "retain_model": str(retain_model) if retain_model else None,
        "rounds": rows,
        "train_s": round(t_train, 1),
        "wall_s": round(wall, 1),
        "processes": partial_state().num_processes,
        "data": data,
    }
    write_report(out, summary)
    atomic_write_json(out / "summary.json", summary)
    log(f"report: {out / 'report.md'}  (wall {summary['wall_s']} s)")


def main_process_print_first() -> None:
    """Nothing may be printed before the run folder line: quiet the chatty libraries."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars; our own bars stay
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
