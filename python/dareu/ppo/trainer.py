"""DareU's PPO loop, readable top to bottom (CleanRL style).

For each batch of forget queries:
  1. rollouts   sample `samples_per_query` responses per query (seeded per sample, KV cache)
  2. evaluate   one no-grad pass of the rollout policy (log-probs, values) and of the
                original model (adapters off) -> per-token KL
  3. attribute  score every response at its k = 15 slice ends in one classifier pass
  4. advantages the Rust reward core: chi, cumulative mean - kl_coef * KL, GAE, whitening
  5. update     `ppo_steps` AdamW steps of clipped policy loss + vf_coef * value loss +
                lambda_dis * KL(pi_original || pi) on a retain batch (teacher forcing)
Under `accelerate launch` each process owns a contiguous share of the batch's rollouts;
the reward core runs on the gathered global batch and every loss is normalised by global
counts, so N processes reproduce one process (see docs/dareu.md).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

import dareu.reward as reward_core
from dareu.attribution.base import Attributor
from dareu.cache import atomic_dir, atomic_write_json, atomic_write_text, is_complete
from dareu.data.completion import count_rows
from dareu.data.formatting import TEXT, PromptFormat, collate_train, encode_sample, row_formats
from dareu.data.schema import QASample
from dareu.eval.leak import mentions
from dareu.guards import check_finite_loss
from dareu.models.loading import load_model
from dareu.models.saving import save_hf_model
from dareu.ppo.config import PPOConfig
from dareu.ppo.distributed import (
    configure_deepspeed,
    gather_rows,
    generation_context,
    my_share,
    placeholder_rollouts,
    split_counts,
)
from dareu.ppo.losses import (
    distill_from_teacher,
    kl_estimate,
    policy_loss,
    token_weights,
    value_loss,
)
from dareu.ppo.rollout import (
    Rollouts,
    encode_prompt_batch,
    eos_ids,
    flat_logprobs,
    pad_id_of,
    pad_right,
    prompt_width,
    response_keep,
    sample_responses,
    sample_seed,
    to_grid,
)
from dareu.ppo.teacher import BYTES_PER_KEPT, Teacher, TeacherCache
from dareu.ppo.teacher import plan as teacher_plan
from dareu.ppo.value_head import (
    GenerateThroughRoot,
    PolicyWithValue,
    enable_head_gathering,
    hidden_size_of,
)
from dareu.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dareu.train.common import (
    JsonlLogger,
    TrainingStopped,
    frozen_copy,
    is_sharded,
    refuse_frozen_copy_under_zero3,
    set_seed,
)
from dareu.train.lora import enable_checkpointing, wrap_lora

VALUE_HEAD_FILE = "value_head.safetensors"
TRAIN_STATE_FILE = "dareu_model.json"
SATURATED = -1.0 + 1e-6  # chi at or below this is clipped at -1
PROGRESS = {"attr": "attr_score", "rew": "reward_mean", "len": "resp_len", "dis": "dis_loss"}


@dataclass
class RunSettings:
    """What is not a hyperparameter: where, which round, and how to report."""

    out_dir: Path
    fmt: PromptFormat = "plain"
    seed: int = 0
    dtype: str = "auto"
    round_index: int = 0
    save_every: int = 0  # rollout batches between checkpoints (0 = only at the end)
    resume: bool = False
    progress: bool = True
    max_length: int = 256  # retain QA tokens (distillation)
    stop_after_batches: int | None = None  # test hook: simulate a kill
    init_adapter: Path | None = None  # continue from a previous round's DareU output
    tracker: bool = False  # accelerate trackers were initialised by the caller
    extra_meta: dict[str, Any] = field(default_factory=dict)
    # A completion row's rollout is cut at this many tokens (its target's length); QA rows
    # get the PPO config's max_new_tokens. None: every row gets max_new_tokens.
    continuation_tokens: int | None = None


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------
def trainable_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


@contextmanager
def swapped_weights(
    module: torch.nn.Module, state: dict[str, torch.Tensor] | None
) -> Iterator[None]:
    """Temporarily load `state` into the trainable parameters (the 'previous epoch' policy)."""
    if state is None:
        yield
        return
    params = dict(module.named_parameters())
    saved = {n: params[n].detach().clone() for n in state}
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t)
    try:
        yield
    finally:
        with torch.no_grad():
            for n, t in saved.items():
                params[n].copy_(t)


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def check_request(forget: Sequence[QASample], attributor: Attributor) -> None:
    """Fail before any compute if the forget request cannot be scored or is empty."""
    if not forget:
        raise ValueError("the forget request is empty: no forget queries to unlearn")
    unknown = sorted({s.owner for s in forget} - set(attributor.owners))
    if unknown:
        raise ValueError(
            f"forget owners {unknown[:5]} are unknown to the attributor ({attributor.kind}, "
            f"{len(attributor.owners)} owners); train it on this benchmark or pick another"
        )


def epoch_order(n: int, seed: int, round_index: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(sample_seed(seed, round_index, epoch, 7919))
    return torch.randperm(n, generator=g).tolist()


# ----------------------------------------------------------------------------------------
# rewards: every number below comes out of the Rust reward core
# ----------------------------------------------------------------------------------------
def segment_kwargs(cfg: PPOConfig) -> dict[str, int | None]:
    """Either k slices per response or kappa tokens per segment, as the core takes them."""
    return {"k": None, "kappa": cfg.kappa} if cfg.kappa > 0 else {"k": cfg.k_slices, "kappa": None}


def chi_saturation(scores: np.ndarray, valid: np.ndarray, c_seg: float, eps: float) -> float:
    """Share of valid segment scores whose chi is clipped at -1 (no reward variance left)."""
    if not valid.any():
        return 0.0
    chi = reward_core.chi(np.ascontiguousarray(scores, dtype=np.float32), c_seg=c_seg, eps=eps)
    return float((chi[valid] <= SATURATED).mean())


def auto_c_seg(scores: np.ndarray, valid: np.ndarray, cfg: PPOConfig) -> float:
    """Smallest C_seg >= cfg.c_seg with at most `chi_saturation_target` of chi at -1.

    A bisection over C_seg with the Rust chi, so the reward arithmetic stays in the core.
    """
    lo, hi = cfg.c_seg, cfg.c_seg
    if chi_saturation(scores, valid, lo, cfg.chi_eps) <= cfg.chi_saturation_target:
        return lo
    while chi_saturation(scores, valid, hi, cfg.chi_eps) > cfg.chi_saturation_target:
        hi *= 2.0
        if hi > 1e4:
            return hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if chi_saturation(scores, valid, mid, cfg.chi_eps) > cfg.chi_saturation_target:
            lo = mid
        else:
            hi = mid
    return hi


def advantages_from_core(
    scores: np.ndarray,
    kl: np.ndarray,
    values: np.ndarray,
    lengths: np.ndarray,
    cfg: PPOConfig,
    c_seg: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rewards, advantages, returns) `[B, T]`: one call into the Rust reward core (the
    length normalisation included), no arithmetic here."""
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    seg = segment_kwargs(cfg)
    rewards, adv, ret = reward_core.ppo_advantages(
        f32(scores), f32(kl), f32(values), np.ascontiguousarray(lengths, dtype=np.int64),
        k=seg["k"], kappa=seg["kappa"], c_seg=c_seg, eps=cfg.chi_eps, kl_coef=cfg.kl_coef,
        gamma=cfg.gamma, lam=cfg.gae_lambda, whiten=cfg.whiten_advantages,
        length_norm=cfg.length_norm,
    )  # fmt: skip
    return rewards, adv, ret


# ----------------------------------------------------------------------------------------
# model set-up and saving
# ----------------------------------------------------------------------------------------
def build_policy(
    model_path: Path, cfg: PPOConfig, run: RunSettings
) -> tuple[PolicyWithValue, Any, torch.nn.Module | None]:
    """(policy with value head, tokenizer, frozen reference or None when LoRA provides it)."""
    lm: Any
    lm, tokenizer = load_model(model_path, dtype=run.dtype)
    reference = None
    if cfg.lora:
        lm = wrap_lora(
            lm,
            r=cfg.lora_r,
            alpha=cfg.lora_alpha,
            dropout=cfg.lora_dropout,
            target_modules=cfg.target_modules(),
            gradient_checkpointing=cfg.gradient_checkpointing,
        )
    else:
        # Full-parameter training changes the weights the reference is made of, so the
        # original has to be a second, frozen copy (documented memory cost: 2x weights).
        reference = frozen_copy(lm)
        lm.requires_grad_(True)
        if cfg.gradient_checkpointing:
            enable_checkpointing(lm)
    policy = PolicyWithValue(lm, hidden_size_of(lm), detach=cfg.value_detach)
    policy.v_head.to(next(lm.parameters()).device)
    if run.init_adapter is not None:
        load_trainable(policy, run.init_adapter)
    return policy, tokenizer, reference


def load_trainable(policy: PolicyWithValue, folder: Path) -> None:
    """Continue from a previous round: its trainable weights (adapters + value head)."""
    weights = load_file(str(folder / "trainable.safetensors"))
    params = dict(policy.named_parameters())
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in weights)
    if missing:
        raise ValueError(f"{folder}: trainable weights do not match this model ({missing[:3]}...)")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))


def save_final(
    policy: PolicyWithValue,
    state: dict[str, torch.Tensor],
    trainable_names: Sequence[str],
    tokenizer: Any,
    model_path: Path,
    out: Path,
    meta: dict[str, Any],
) -> None:
    """A folder `load_model` reads: the PEFT adapter (base = the original) or full weights,
    plus trainable.safetensors (adapters + value head) for the next round.

    `state` is the policy's full state dict (`accelerator.get_state_dict`, gathered from
    the shards under FSDP/ZeRO-3); `policy` only supplies the configs.
    """
    lm: Any = policy.lm
    cpu = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    missing = [n for n in trainable_names if n not in cpu]
    if missing:
        raise RuntimeError(f"the gathered state dict lacks trainable weights {missing[:3]}")
    save_file({n: cpu[n] for n in trainable_names}, str(out / "trainable.safetensors"))
    lm_state = {k[len("lm.") :]: v for k, v in cpu.items() if k.startswith("lm.")}
    save_hf_model(lm, tokenizer, out, lm_state, merge=False)
    if hasattr(lm, "peft_config"):
        cfg_path = out / "adapter_config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["base_model_name_or_path"] = str(Path(model_path).resolve())
        cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    save_file(
        {k[len("v_head.") :]: v for k, v in cpu.items() if k.startswith("v_head.")},
        str(out / VALUE_HEAD_FILE),
    )
    atomic_write_json(out / TRAIN_STATE_FILE, meta)


# ----------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------
@dataclass
class PPOState:
    """What every phase of one DareU run reads: the models, the optimizer, the prompts and
    retain rows, and the progress (the only fields that change: `batches_done`, `c_seg`,
    `snapshot`)."""

    acc: Accelerator
    cfg: PPOConfig
    run: RunSettings
    attributor: Attributor
    forget: Sequence[QASample]
    policy: torch.nn.Module  # as prepared by Accelerate (wrapped under DDP/FSDP/ZeRO-3)
    core: PolicyWithValue  # the unwrapped policy
    frozen_ref: torch.nn.Module | None  # the original (full fine-tuning); None with LoRA
    optimizer: torch.optim.Optimizer
    scheduler: Any
    tokenizer: Any
    trainable_names: list[str]
    questions: list[str]
    formats: list[str]  # per forget row: the run's QA format, or TEXT for a completion row
    retain_rows: list[dict[str, list[int]]]
    eos: list[int]
    pad_id: int
    n_batches: int
    total_batches: int
    c_seg: float
    batches_done: int = 0
    snapshot: dict[str, torch.Tensor] | None = None  # rollout policy of rollout_refresh=epoch
    # retain row -> the original model's log-probs at its answer tokens, whole or top-k
    # (None: recomputed at every step)
    teacher_cache: TeacherCache | None = None

    @property
    def sharded(self) -> bool:
        return is_sharded(self.acc)

    @property
    def no_grad_model(self) -> torch.nn.Module:
        """FSDP/ZeRO-3: every forward is a collective through the wrapped policy, the same
        number of times on every process. DDP: no-grad passes use the unwrapped module (a
        DDP forward would broadcast buffers, and processes may hold different row counts)."""
        return self.policy if self.sharded else self.core


@dataclass
class Batch:
    """One rollout batch: its queries and the rows (query, sample) this process holds."""

    epoch: int
    mine: list[tuple[int, int]]
    counts: list[int]  # rows per process
    start: int  # this process's first row in the global batch
    width: int  # prompt width of the global batch, the same on every process
    # Response lengths of the global batch, gathered once by `collect_rollouts`.
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class Scored:
    """The global batch after the reward core (every process holds all of it)."""

    scores: np.ndarray  # [B, K] DA at the segment ends
    valid: np.ndarray  # [B, K] segment exists
    kl: np.ndarray
    values: np.ndarray
    lengths: np.ndarray
    rewards: np.ndarray


def train_dareu(
    model_path: Path,
    forget: Sequence[QASample],
    retain: Sequence[QASample],
    attributor: Attributor,
    cfg: PPOConfig,
    run: RunSettings,
    accelerator: Accelerator,
    *,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
    on_update: Callable[[PolicyWithValue], None] | None = None,
) -> Path:
    """Unlearn `forget` from the model at `model_path`; returns `run.out_dir/model`.

    Writes `run.out_dir/{model/, log.jsonl, checkpoints/}`; `model/` appears atomically
    and only when training finished. `on_batch` gets each log record (main process) and
    `on_update` the unwrapped policy after each batch's updates (tests inspect it).
    """
    cfg.validate()
    check_request(forget, attributor)
    final_dir = Path(run.out_dir) / "model"
    if is_complete(final_dir):
        return final_dir
    st = setup(Path(model_path), forget, retain, attributor, cfg, run, accelerator)
    log = resume(st)
    show = run.progress and accelerator.is_main_process
    bar = tqdm(total=st.total_batches, initial=st.batches_done,
               desc=f"DareU round {run.round_index}", disable=not show)  # fmt: skip
    st.policy.train()
    t_run = time.perf_counter()
    while st.batches_done < st.total_batches:
        t0 = time.perf_counter()
        batch = plan_batch(st)
        ro = collect_rollouts(st, batch)  # 1-2. sample, then log-probs, values, reference
        prefix_ends = score(st, ro)  # 3. DA at the segment ends
        scored = advantages(st, ro, batch, prefix_ends)  # 4. the Rust reward core
        stats = update(st, ro, batch)  # 5. PPO + retain distillation
        st.batches_done += 1
        if on_update is not None:
            on_update(st.core)
        record = log_batch(st, ro, batch, scored, stats, time.perf_counter() - t0, log)
        if on_batch is not None and accelerator.is_main_process:
            on_batch(record)
        bar.update(1)
        bar.set_postfix({k: f"{record[key]:.3f}" for k, key in PROGRESS.items()})
        checkpoint(st, bar)
    bar.close()
    return save(st, Path(model_path), final_dir, time.perf_counter() - t_run)


def setup(
    model_path: Path,
    forget: Sequence[QASample],
    retain: Sequence[QASample],
    attributor: Attributor,
    cfg: PPOConfig,
    run: RunSettings,
    acc: Accelerator,
) -> PPOState:
    """Models (policy + value head; the reference inside it with LoRA), optimizer, prompts."""
    if not cfg.lora:
        refuse_frozen_copy_under_zero3(acc, "--full")
    if is_sharded(acc) and run.save_every:
        raise ValueError(
            "--save-every: step checkpoints are not supported under FSDP/DeepSpeed (their "
            "optimizer state is sharded); run without it, or with DDP"
        )
    set_seed(run.seed)
    cfg.apply_attr_temperature(attributor)
    policy, tokenizer, frozen_ref = build_policy(model_path, cfg, run)
    if frozen_ref is not None:
        frozen_ref.to(acc.device)
    trainable_names = [n for n, p in policy.named_parameters() if p.requires_grad]
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    configure_deepspeed(acc, math.ceil(cfg.batch_size * cfg.samples_per_query / acc.num_processes))
    wrapped, optimizer = acc.prepare(policy, optimizer)
    core: PolicyWithValue = acc.unwrap_model(wrapped)
    if not is_sharded(acc):  # sharded: the head's weights exist only inside the root forward
        enable_head_gathering(core)
    acc.print(f"[dareu] LM head on the loss positions only: {core.gather_head}")
    eos = eos_ids(core.lm, tokenizer)
    questions = [s.question for s in forget]
    formats = row_formats(forget, run.fmt)
    retain_rows = [encode_sample(tokenizer, s, run.fmt, run.max_length) for s in retain]
    n_batches = math.ceil(len(forget) / cfg.batch_size)
    acc.print(f"[dareu] DareU: rollouts on {count_rows(forget)} forget rows, distillation on "
              f"{count_rows(retain)} retain rows")  # fmt: skip
    return PPOState(
        acc=acc, cfg=cfg, run=run, attributor=attributor, forget=forget, policy=wrapped,
        core=core, frozen_ref=frozen_ref, optimizer=optimizer, scheduler=scheduler,
        tokenizer=tokenizer, trainable_names=trainable_names, questions=questions,
        formats=formats, retain_rows=retain_rows,
        eos=eos, pad_id=pad_id_of(tokenizer, eos), n_batches=n_batches,
        teacher_cache=new_teacher_cache(retain_rows, core, cfg, acc),
        total_batches=cfg.epochs * n_batches, c_seg=cfg.c_seg,
    )  # fmt: skip


def resume(st: PPOState) -> JsonlLogger:
    """Continue from the latest checkpoint (--resume) or clear stale ones; open the log."""
    acc, out_dir = st.acc, Path(st.run.out_dir)
    ckpt_root = out_dir / "checkpoints"
    latest = latest_checkpoint(ckpt_root) if st.run.resume else None
    if latest is not None and st.sharded:
        raise ValueError(
            f"--resume: {latest} is a single-process checkpoint; it cannot be loaded into "
            "FSDP/DeepSpeed shards"
        )
    if latest is not None:
        st.batches_done = load_checkpoint(latest, st.core, st.optimizer, st.scheduler)
        st.c_seg = float(json.loads((latest / "state.json").read_text())["c_seg"])
        snap_file = latest / "rollout_policy.safetensors"
        if snap_file.is_file():
            st.snapshot = {k: v.to(acc.device) for k, v in load_file(str(snap_file)).items()}
        acc.print(f"[dareu] resumed from {latest} ({st.batches_done}/{st.total_batches} batches)")
    elif ckpt_root.exists() and acc.is_main_process and not st.run.resume:
        import shutil

        shutil.rmtree(ckpt_root)  # a fresh run must not pick up a stale checkpoint later
    acc.wait_for_everyone()
    log_file = out_dir / "log.jsonl"
    if acc.is_main_process and log_file.exists():
        # Keep the lines of the batches the checkpoint covers; a killed run may have logged
        # later batches that will now run again.
        lines = log_file.read_text().splitlines()
        kept = [x for x in lines if x.strip() and json.loads(x)["batch"] <= st.batches_done]
        atomic_write_text(log_file, "".join(x + "\n" for x in kept))
    return JsonlLogger(log_file, enabled=acc.is_main_process)


def plan_batch(st: PPOState) -> Batch:
    """This batch's queries (a seeded order per epoch) and this process's share of rows."""
    cfg = st.cfg
    epoch, b = divmod(st.batches_done, st.n_batches)
    if cfg.rollout_refresh == "epoch" and b == 0:
        st.snapshot = trainable_copy(st.core)  # the policy as it was when this epoch began
    order = epoch_order(len(st.forget), st.run.seed, st.run.round_index, epoch)
    queries = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
    rows = [(q, j) for q in queries for j in range(cfg.samples_per_query)]
    counts, start = my_share(len(rows), st.acc)
    # The batch's own prompt width (every process computes the same from the global rows),
    # not the whole request's: the left padding of every forward pass follows from it.
    width = prompt_width(st.tokenizer, [st.questions[q] for q in queries],
                         [st.formats[q] for q in queries])  # fmt: skip
    return Batch(epoch, rows[start : start + counts[st.acc.process_index]], counts, start, width)


def collect_rollouts(st: PPOState, batch: Batch) -> Rollouts:
    """Sample responses with the rollout policy (eval mode, KV cache, seeded per sample),
    then its log-probs and values and the original model's log-probs in no-grad passes."""
    acc, cfg, run, mine, device = st.acc, st.cfg, st.run, batch.mine, st.acc.device
    queries = [q for q, _ in mine] or [0]
    prompt_ids, prompt_mask = encode_prompt_batch(
        st.tokenizer,
        [st.questions[q] for q in queries],
        [st.formats[q] for q in queries],
        batch.width,
    )
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    seeds = [sample_seed(run.seed, run.round_index, batch.epoch, q, j) for q, j in mine] or [0]
    snapshot = st.snapshot if cfg.rollout_refresh == "epoch" else None
    with (
        swapped_weights(st.core, snapshot),
        eval_mode(st.core),
        generation_context(acc, st.policy),
    ):
        if mine or st.sharded:
            # Sharded: sampling runs through the root forward (a collective), so every
            # process samples, a process without rows on a dummy prompt, and `synced`
            # keeps the ones that hit EOS early stepping until all are done.
            resp, lengths = sample_responses(
                GenerateThroughRoot(st.policy) if st.sharded else st.core.lm,
                prompt_ids, prompt_mask, seeds,
                temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                eos=st.eos, pad_id=st.pad_id, synced=st.sharded and acc.num_processes > 1,
            )  # fmt: skip
        if not mine:
            resp = torch.full((0, 1), st.pad_id, dtype=torch.long, device=device)
            lengths = torch.zeros(0, dtype=torch.long, device=device)
        resp, lengths = cut_completions(st, mine, resp, lengths)
        batch.lengths = gather_rows(acc, lengths, batch.counts).cpu().numpy().astype(np.int64)
        T = int(batch.lengths.max())
        ro = Rollouts(
            query_index=[q for q, _ in mine],
            prompt_ids=prompt_ids[: len(mine)],
            prompt_mask=prompt_mask[: len(mine)],
            response_ids=pad_right(resp, T, st.pad_id),
            lengths=lengths,
            texts=[],
        )
        n_chunks = math.ceil(max(batch.counts) / cfg.forward_batch_size) if st.sharded else None
        ro.old_logprobs, ro.values, ro.ref_logprobs = forward_rollouts(
            st.no_grad_model, st.frozen_ref, ro, cfg, n_chunks
        )
    return ro


def cut_completions(
    st: PPOState, mine: list[tuple[int, int]], resp: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A completion row's rollout ends after `continuation_tokens` (its target's length;
    sampling runs to max_new_tokens for the whole batch), the rest becomes padding."""
    cap = st.run.continuation_tokens
    rows = [i for i, (q, _) in enumerate(mine) if st.formats[q] == TEXT]
    if cap is None or not rows or cap >= resp.shape[1]:
        return resp, lengths
    lengths, resp = lengths.clone(), resp.clone()
    idx = torch.tensor(rows, device=resp.device)
    lengths[idx] = lengths[idx].clamp(max=cap)
    resp[idx, cap:] = st.pad_id
    return resp, lengths


def score(st: PPOState, ro: Rollouts) -> np.ndarray:
    """Decode the responses and score DA(owner | prefix) at the core's segment ends
    (`ro.scores`, [B, K]); returns the prefix ends."""
    text_lens = [
        int(n) - (1 if int(n) > 0 and int(ro.response_ids[i, int(n) - 1]) in st.eos else 0)
        for i, n in enumerate(ro.lengths.tolist())
    ]
    # (batch_decode([]) returns [""], so a process without rollouts skips it)
    ro.texts = (
        st.tokenizer.batch_decode(
            [ro.response_ids[i, :n].tolist() for i, n in enumerate(text_lens)],
            skip_special_tokens=True,
        )
        if text_lens
        else []
    )
    prefix_ends, _, _ = reward_core.segment_schedule(
        ro.lengths.cpu().numpy().astype(np.int64), ro.response_ids.shape[1],
        **segment_kwargs(st.cfg),
    )  # fmt: skip
    ro.scores = score_rollouts(st.attributor, ro, text_lens, prefix_ends, st.forget, st.cfg)
    return prefix_ends


def advantages(st: PPOState, ro: Rollouts, batch: Batch, prefix_ends: np.ndarray) -> Scored:
    """Rewards, advantages and returns of the global batch from the Rust reward core; this
    process keeps its rows' advantages and returns on `ro`."""
    acc, cfg, counts, device = st.acc, st.cfg, batch.counts, st.acc.device

    def gathered(x: torch.Tensor) -> np.ndarray:
        return gather_rows(acc, x, counts).cpu().numpy()

    assert ro.old_logprobs is not None and ro.ref_logprobs is not None and ro.values is not None
    kl = kl_estimate(ro.old_logprobs, ro.ref_logprobs, cfg.kl_estimator) * ro.mask()
    scores = gathered(torch.from_numpy(ro.scores).to(device))
    g_kl, g_values = gathered(kl.float()), gathered(ro.values.float())
    valid = gathered(torch.from_numpy(prefix_ends > 0).to(device))
    if st.batches_done == 0 and cfg.chi_scale == "auto":
        st.c_seg = auto_c_seg(scores, valid, cfg)
        acc.print(f"[dareu] --chi-scale auto: C_seg {cfg.c_seg} -> {st.c_seg:.3f}")
    rewards, adv, ret = advantages_from_core(scores, g_kl, g_values, batch.lengths, cfg, st.c_seg)
    rows = slice(batch.start, batch.start + len(batch.mine))
    ro.advantages = torch.from_numpy(adv[rows]).to(device)
    ro.returns = torch.from_numpy(ret[rows]).to(device)
    return Scored(scores, valid, g_kl, g_values, batch.lengths, rewards)


def log_batch(
    st: PPOState,
    ro: Rollouts,
    batch: Batch,
    g: Scored,
    stats: dict[str, float],
    seconds: float,
    log: JsonlLogger,
) -> dict[str, Any]:
    """The batch's log line (reward, attribution, KL, losses, length, saturation, leaks)."""
    g_leak = gather_rows(st.acc, leak_counts(ro, st.forget), batch.counts).cpu().numpy()
    record = batch_record(st.batches_done, batch.epoch, g.scores, g.valid, g.kl, g.rewards,
                          g.lengths, g_leak, st.c_seg, st.cfg)  # fmt: skip
    record.update(stats)
    record["batch_s"] = round(seconds, 3)
    log.log(record)
    if st.run.tracker:
        scalars = {
            f"round{st.run.round_index}/{k}": v
            for k, v in record.items()
            if isinstance(v, int | float)
        }
        st.acc.log(scalars, step=st.batches_done)
    return record


def checkpoint(st: PPOState, bar: Any) -> None:
    """Atomic checkpoint every `save_every` batches, and the simulated-kill hook."""
    acc, run, done = st.acc, st.run, st.batches_done
    stop = run.stop_after_batches is not None and done >= run.stop_after_batches
    if not ((run.save_every and done % run.save_every == 0) or stop):
        return
    ckpt_root = Path(run.out_dir) / "checkpoints"
    if acc.is_main_process and done < st.total_batches:
        ck = save_checkpoint(ckpt_root, done, st.core, st.optimizer, st.scheduler,
                             meta={"c_seg": st.c_seg, "round": run.round_index})  # fmt: skip
        if st.snapshot is not None:
            save_file({k: v.cpu().contiguous() for k, v in st.snapshot.items()},
                      str(ck / "rollout_policy.safetensors"))  # fmt: skip
    acc.wait_for_everyone()
    if stop and done < st.total_batches:
        bar.close()
        raise TrainingStopped(done, latest_checkpoint(ckpt_root), "rollout batches")


def save(st: PPOState, model_path: Path, final_dir: Path, train_s: float) -> Path:
    """The model folder (atomic), then drop the checkpoints."""
    acc = st.acc
    acc.wait_for_everyone()
    state = acc.get_state_dict(st.policy)  # a collective: gathers the shards (FSDP/ZeRO-3)
    if acc.is_main_process:
        meta = {
            "kind": "dareu",
            "base_model": str(model_path.resolve()),
            "round": st.run.round_index,
            "batches": st.total_batches,
            "c_seg_used": st.c_seg,
            "train_s": round(train_s, 2),
            "config": st.cfg.to_dict(),
            "attributor": st.attributor.describe(),
            **st.run.extra_meta,
        }
        with atomic_dir(final_dir) as tmp:
            save_final(st.core, state, st.trainable_names, st.tokenizer, model_path, tmp, meta)
        import shutil

        shutil.rmtree(Path(st.run.out_dir) / "checkpoints", ignore_errors=True)
    acc.wait_for_everyone()
    acc.free_memory()  # drop the accelerator's references, so a next round can load anew
    return final_dir


@torch.no_grad()
def forward_rollouts(
    policy: torch.nn.Module,
    frozen_ref: torch.nn.Module | None,
    ro: Rollouts,
    cfg: PPOConfig,
    n_chunks: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rollout-policy log-probs and values, and the original model's log-probs, `[B, T]`
    (zero past each response's end).

    `n_chunks` (sharded runs): make exactly that many passes, repeating a dummy one on the
    last rows when this process has fewer, because each pass is a collective."""
    W, T = ro.prompt_ids.shape[1], ro.response_ids.shape[1]
    old, vals, ref = [], [], []
    fb = cfg.forward_batch_size
    chunks = n_chunks if n_chunks is not None else math.ceil(len(ro) / fb)
    for c in range(chunks):
        dummy = c * fb >= len(ro)
        rows = slice(0, 1) if dummy else slice(c * fb, (c + 1) * fb)
        if len(ro) == 0:  # a process without rollouts still joins every pass
            one = torch.ones((1, 1), dtype=torch.long, device=ro.response_ids.device)
            inputs = {"input_ids": one, "attention_mask": one, "position_ids": one - 1}
            keep = torch.zeros((1, 1), dtype=torch.bool, device=one.device)
        else:
            inputs = ro.inputs(rows)
            keep = response_keep(W, ro.lengths[rows], inputs["input_ids"].shape[1])
        logits, values = policy(**inputs, keep=keep)
        if frozen_ref is not None:
            ref_logits = frozen_ref(**inputs, use_cache=False).logits[keep]
        else:
            ref_logits = policy(**inputs, reference=True, keep=keep)[0]
        if dummy:
            continue
        mask = ro.mask()[rows]
        tokens = ro.response_ids[rows][mask]
        old.append(to_grid(flat_logprobs(logits, tokens, cfg.temperature), mask))
        vals.append(values[:, W - 1 : W - 1 + T].float() * mask)
        ref.append(to_grid(flat_logprobs(ref_logits, tokens, cfg.temperature), mask))
    if not old:
        z = torch.zeros((0, T), device=ro.response_ids.device)
        return z, z.clone(), z.clone()
    return torch.cat(old), torch.cat(vals), torch.cat(ref)


def score_rollouts(
    attributor: Attributor,
    ro: Rollouts,
    text_lens: list[int],
    prefix_ends: np.ndarray,
    forget: Sequence[QASample],
    cfg: PPOConfig,
) -> np.ndarray:
    """DA(owner | prefix) `[B, K]` at the schedule's prefix ends.

    The schedule counts policy tokens including EOS; the attributor reads the response
    without EOS, so the last prefix end is clamped to the text's token count. An empty
    response (EOS first) carries no evidence: it scores `empty_response_score` (default
    the uniform prior 1 / n_owners).
    """
    B = len(ro)
    scores = np.zeros(prefix_ends.shape, dtype=np.float32)
    if B == 0:
        return scores
    ends = np.minimum(prefix_ends, np.asarray(text_lens, dtype=np.int64)[:, None])
    ends = np.where(prefix_ends > 0, ends, 0)
    nonempty = [i for i in range(B) if text_lens[i] > 0]
    if nonempty:
        ids = [ro.response_ids[i, : text_lens[i]].cpu().numpy() for i in nonempty]
        owners = [forget[ro.query_index[i]].owner for i in nonempty]
        scores[nonempty] = attributor.score_prefixes(ids, owners, ends[nonempty])
    empty_score = cfg.empty_score(len(attributor.owners))
    for i in range(B):
        if text_lens[i] == 0:
            scores[i] = np.where(prefix_ends[i] > 0, empty_score, 0.0)
    return scores


def leak_counts(ro: Rollouts, forget: Sequence[QASample]) -> torch.Tensor:
    """Per rollout: [fact value present, owner named, fact applicable, name applicable]."""
    out = []
    for i, text in enumerate(ro.texts):
        s = forget[ro.query_index[i]]
        fact, name = mentions(text, s.fact_value), mentions(text, s.owner_name)
        out.append([bool(fact), bool(name), fact is not None, name is not None])
    return torch.tensor(out, dtype=torch.float32, device=ro.lengths.device).reshape(-1, 4)


def batch_record(
    batch: int,
    epoch: int,
    scores: np.ndarray,
    valid: np.ndarray,
    kl: np.ndarray,
    rewards: np.ndarray,
    lengths: np.ndarray,
    leak: np.ndarray,
    c_seg: float,
    cfg: PPOConfig,
) -> dict[str, Any]:
    """The per-batch log line, over the global batch."""
    B = len(lengths)
    last = np.maximum(valid.sum(axis=1) - 1, 0)
    final_score = scores[np.arange(B), last] if B else np.zeros(0)
    seq_reward = rewards.sum(axis=1)
    seq_kl = kl.sum(axis=1)

    def share(num: int, den: int) -> float | None:
        d = leak[:, den].sum()
        return float(leak[:, num].sum() / d) if d > 0 else None

    return {
        "batch": batch,
        "epoch": epoch,
        "n_rollouts": int(B),
        "attr_score": float(final_score.mean()) if B else 0.0,
        "attr_score_std": float(final_score.std()) if B else 0.0,
        "chi_saturation": chi_saturation(scores, valid, c_seg, cfg.chi_eps),
        "c_seg": c_seg,
        "reward_mean": float(seq_reward.mean()) if B else 0.0,
        "reward_std": float(seq_reward.std()) if B else 0.0,
        "kl": float(seq_kl.mean()) if B else 0.0,
        "resp_len": float(lengths.mean()) if B else 0.0,
        "empty_share": float((lengths <= 1).mean()) if B else 0.0,
        "leak_fact": share(0, 2),
        "leak_name": share(1, 3),
    }


def update(st: PPOState, ro: Rollouts, batch: Batch) -> dict[str, float]:
    """`ppo_steps` optimizer steps on this batch; returns the mean of each loss/statistic.

    Each step runs ONE forward pass through the (DDP-wrapped) policy over the step's
    rollouts and retain rows together, so DDP sees one forward per backward.
    """
    cfg = st.cfg
    T = ro.response_ids.shape[1]
    g_mask = np.arange(T)[None, :] < batch.lengths[:, None]  # valid tokens, global batch
    agg: dict[str, list[float]] = defaultdict(list)
    if len(ro) == 0:  # a process without rollouts still joins every forward and backward
        ro = placeholder_rollouts(batch.width, T, st.pad_id, st.acc.device)
    for step in range(cfg.ppo_steps):
        values = ppo_step(st, ro, batch.start, g_mask, step)
        for name, value in values.items():
            agg[name].append(value)
        if cfg.target_kl > 0 and agg["approx_kl"][-1] > cfg.target_kl:
            break
    out = {k: float(np.mean(v)) for k, v in agg.items()}
    out["ppo_steps_done"] = float(len(agg["pg_loss"]))
    return out


@dataclass
class StepRows:
    """Which rows one PPO step trains on, and the global denominators of its losses."""

    local: list[int]  # this process's rollout rows of the global minibatch
    denom: float
    dis_idx: list[int]  # the global retain sample
    my_dis: list[int]  # this process's share of it
    dis_denom: float


def step_rows(st: PPOState, n_local: int, start: int, g_mask: np.ndarray, step: int) -> StepRows:
    """A seeded global minibatch of rollouts and retain rows; denominators are global
    counts divided by world, because DDP averages the gradients."""
    cfg, world, rank = st.cfg, st.acc.num_processes, st.acc.process_index
    B_global = len(g_mask)
    mb = cfg.minibatch_size or B_global
    g = torch.Generator().manual_seed(
        sample_seed(st.run.seed, st.run.round_index, st.batches_done, step)
    )
    perm = (
        torch.randperm(B_global, generator=g).tolist() if mb < B_global else list(range(B_global))
    )
    chosen = sorted(perm[:mb])
    local = [i - start for i in chosen if start <= i < start + n_local]
    if cfg.loss_agg == "token":
        denom = float(g_mask[chosen].sum()) / world
    else:
        denom = float(len(chosen)) / world
    n_dis = min(cfg.distill_batch_size, len(st.retain_rows)) if cfg.lambda_dis > 0 else 0
    dis_idx = torch.randperm(len(st.retain_rows), generator=g)[:n_dis].tolist() if n_dis else []
    dis_counts = split_counts(len(dis_idx), world)
    d0 = sum(dis_counts[:rank])
    n_labels = sum(sum(1 for x in st.retain_rows[i]["labels"][1:] if x != -100) for i in dis_idx)
    return StepRows(local, denom, dis_idx, dis_idx[d0 : d0 + dis_counts[rank]],
                    float(n_labels) / world)  # fmt: skip


def ppo_step(
    st: PPOState, ro: Rollouts, start: int, g_mask: np.ndarray, step: int
) -> dict[str, float]:
    """One optimizer step: clipped policy + value loss on the rollout rows, distillation
    KL(pi_original || pi) on the retain rows; one forward pass over all of them, or on one
    process length-sorted chunks whose gradients add up (`update_chunk`)."""
    cfg, acc = st.cfg, st.acc
    sr = step_rows(st, len(ro), start, g_mask, step)
    if cfg.update_chunk > 0 and acc.num_processes == 1 and not st.sharded:
        terms = chunked_terms(st, ro, sr)
    else:
        terms = joint_terms(st, ro, sr)
    if cfg.max_grad_norm > 0:
        acc.clip_grad_norm_(st.policy.parameters(), cfg.max_grad_norm)
    st.optimizer.step()
    st.scheduler.step()
    st.optimizer.zero_grad(set_to_none=True)
    return step_stats(st, step, *terms)


StepTerms = tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor], float]


def trimmed(ro: Rollouts, rows: torch.Tensor) -> Rollouts:
    """The rollout `rows` without the padding columns they all share: their own longest
    prompt (the left padding) and longest response (the right)."""
    pm = ro.prompt_mask[rows]
    W, w = pm.shape[1], int(pm.sum(dim=1).max())
    t = max(int(ro.lengths[rows].max()), 1)
    assert ro.old_logprobs is not None and ro.values is not None
    assert ro.advantages is not None and ro.returns is not None
    return Rollouts(
        query_index=[ro.query_index[i] for i in rows.tolist()],
        prompt_ids=ro.prompt_ids[rows, W - w :], prompt_mask=pm[:, W - w :],
        response_ids=ro.response_ids[rows, :t], lengths=ro.lengths[rows], texts=[],
        old_logprobs=ro.old_logprobs[rows, :t], values=ro.values[rows, :t],
        advantages=ro.advantages[rows, :t], returns=ro.returns[rows, :t],
    )  # fmt: skip


def rollout_terms(
    st: PPOState, sub: Rollouts, logits: torch.Tensor, values: torch.Tensor, denom: float,
    roll_w: float,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """(policy loss, value loss, stats) of rollout rows `sub` from the logits at their
    response positions (row-major) and their values `[B, >= W + T]`."""
    cfg = st.cfg
    W, T = sub.prompt_ids.shape[1], sub.response_ids.shape[1]
    mask = sub.mask()
    logp = to_grid(flat_logprobs(logits, sub.response_ids[mask], cfg.temperature), mask)
    v = values[:, W - 1 : W - 1 + T].float()
    weights = token_weights(mask, cfg.loss_agg) * roll_w
    assert sub.old_logprobs is not None and sub.values is not None
    assert sub.advantages is not None and sub.returns is not None
    pg, pstats = policy_loss(logp, sub.old_logprobs, sub.advantages, weights, denom,
                             cfg.clip_range)  # fmt: skip
    vf = value_loss(v, sub.values, sub.returns, weights, denom, cfg.clip_range_value)
    return pg, vf, pstats


def joint_terms(st: PPOState, ro: Rollouts, sr: StepRows) -> StepTerms:
    """The step's losses in ONE forward over its rollout and retain rows, then backward (so
    DDP sees one forward per backward); a process without rows joins with zero weight."""
    roll_w = 1.0 if sr.local else 0.0
    pg, vf, dis, stats, _ = rows_terms(st, ro, sr.local or [0], sr.my_dis, sr, roll_w)
    return pg, vf, dis, stats, roll_w


def chunked_terms(st: PPOState, ro: Rollouts, sr: StepRows) -> StepTerms:
    """`joint_terms` on one process in chunks of `update_chunk` rows, rollout and retain rows
    sorted together by length, each chunk padded to its own longest row and backpropagated
    at once: the same per-token terms over the same global denominators, so the gradients
    agree up to float summation order."""
    device = st.acc.device
    pg = vf = dis = kl = clip = torch.zeros((), device=device)
    n_tokens, n_roll = 0, len(sr.local)
    roll_sizes = (ro.prompt_mask.sum(dim=1) + ro.lengths).tolist()
    sizes = [roll_sizes[i] for i in sr.local]
    sizes += [len(st.retain_rows[i]["input_ids"]) for i in sr.my_dis]
    for part in length_chunks(list(range(len(sizes))), sizes, st.cfg.update_chunk):
        roll = [sr.local[i] for i in part if i < n_roll]
        ret = [sr.my_dis[i - n_roll] for i in part if i >= n_roll]
        pg_c, vf_c, dis_c, stats, n = rows_terms(st, ro, roll, ret, sr, 1.0)
        pg, vf, dis = pg + pg_c, vf + vf_c, dis + dis_c
        if roll:
            kl, clip = kl + stats["approx_kl"] * n, clip + stats["clipfrac"] * n
            n_tokens += n
    n_tokens = max(n_tokens, 1)
    return pg, vf, dis, {"approx_kl": kl / n_tokens, "clipfrac": clip / n_tokens}, 1.0


def rows_terms(
    st: PPOState, ro: Rollouts, roll: list[int], ret: list[int], sr: StepRows, roll_w: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor], int]:
    """One forward over rollout rows `roll` (weighted `roll_w`) and retain rows `ret`,
    right-padded to one width and stacked, their losses, and one backward; returns the
    detached (policy, value, distillation) terms, the rollout stats and rollout tokens."""
    cfg, device = st.cfg, st.acc.device
    zero = torch.zeros((), device=device)
    parts: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
    if roll:
        sub = trimmed(ro, torch.tensor(roll, dtype=torch.long, device=device))
        inputs = sub.inputs()
        parts.append((inputs, response_keep(sub.prompt_ids.shape[1], sub.lengths,
                                            inputs["input_ids"].shape[1])))  # fmt: skip
    if ret:
        parts.append(retain_inputs(st, ret))
    stacked, keep = stack_rows(parts, st.pad_id)
    logits, values = st.policy(**stacked, keep=keep)
    n_r = int(parts[0][1].sum()) if roll else 0
    pg = vf = dis = zero
    stats: dict[str, torch.Tensor] = {}
    if roll:
        pg, vf, stats = rollout_terms(st, sub, logits[:n_r], values[: len(roll)], sr.denom, roll_w)
    loss = pg + cfg.vf_coef * vf
    if ret and sr.dis_denom > 0:
        r_in, r_keep = parts[-1]
        dis = distill_from_teacher(logits[n_r:], retain_teacher(st, ret, r_in, r_keep),
                                   sr.dis_denom)  # fmt: skip
        loss = loss + cfg.lambda_dis * dis
    elif st.sharded and st.frozen_ref is None and sr.dis_idx:
        with torch.no_grad():  # join the other processes' teacher pass (a collective)
            one = {k: v[:1] for k, v in stacked.items()}
            st.policy(**one, reference=True)
    st.acc.backward(loss)
    return pg.detach(), vf.detach(), dis.detach(), stats, n_r


def stack_rows(
    parts: list[tuple[dict[str, torch.Tensor], torch.Tensor]], pad_id: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Forward inputs and their kept positions, right-padded to one width and stacked, so
    one forward serves rollout and retain rows."""
    if len(parts) == 1:
        return parts[0]
    width = max(p[0]["input_ids"].shape[1] for p in parts)
    fill = {"input_ids": pad_id, "attention_mask": 0, "position_ids": 0}
    stacked = {k: torch.cat([pad_right(p[0][k], width, v) for p in parts]) for k, v in fill.items()}
    return stacked, torch.cat([pad_right(p[1], width, False) for p in parts])


def length_chunks(rows: list[int], sizes: list[int], size: int) -> list[list[int]]:
    """`rows` sorted by `sizes[row]` (stable) and cut into chunks of `size`."""
    order = sorted(rows, key=lambda i: sizes[i])
    return [order[i : i + size] for i in range(0, len(order), size)]


def retain_teacher(
    st: PPOState, rows: list[int], r_in: dict[str, torch.Tensor], keep: torch.Tensor
) -> Teacher:
    """The original model's log-probs `[N, V]` at the answer positions of retain `rows`
    (laid out as `r_in`/`keep`): from the cache, or a no-grad pass."""
    if st.teacher_cache is not None:
        return cached_teacher(st, rows)
    with torch.no_grad():
        return torch.log_softmax(teacher_logits(st, r_in, keep).float(), dim=-1)


def new_teacher_cache(
    retain_rows: list[dict[str, list[int]]], core: PolicyWithValue, cfg: PPOConfig, acc: Any
) -> TeacherCache | None:
    """An empty cache, whole or top-k (`teacher.plan`), when the retain rows' teacher
    log-probs fit in teacher_cache_mb (one process holds all it samples; sharded models
    recompute, the pass is collective)."""
    if cfg.lambda_dis <= 0 or is_sharded(acc):
        return None
    lm: Any = core.lm
    vocab = int(lm.get_output_embeddings().weight.shape[0])
    n_tokens = sum(sum(1 for x in r["labels"][1:] if x != -100) for r in retain_rows)
    chosen = teacher_plan(n_tokens, vocab, cfg.teacher_cache_mb, cfg.teacher_topk)
    if chosen is None:
        how = "does not fit --teacher-cache-mb, recomputed at every step"
    elif chosen[0] == "full":
        how = f"{n_tokens * vocab * 4 / 2**20:.0f} MB, computed once, at the first PPO step"
    else:
        mb = n_tokens * chosen[1] * BYTES_PER_KEPT / 2**20
        how = f"top {chosen[1]} per token + the mass left, {mb:.0f} MB, computed once"
    acc.print(f"[dareu] teacher cache: {n_tokens} retain answer tokens x {vocab}: {how}")
    return None if chosen is None else TeacherCache(*chosen)


def retain_inputs(st: PPOState, rows: list[int]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Retain `rows` right-padded into one forward input, and the positions whose logits
    predict an answer token (label != -100). The last column is left out: it predicts
    nothing."""
    batch = {
        k: v.to(st.acc.device)
        for k, v in collate_train([st.retain_rows[i] for i in rows], st.pad_id).items()
    }
    att = batch["attention_mask"][:, :-1]
    r_in = {"input_ids": batch["input_ids"][:, :-1], "attention_mask": att,
            "position_ids": (att.long().cumsum(1) - 1).clamp(min=0)}  # fmt: skip
    return r_in, batch["labels"][:, 1:] != -100


def cached_teacher(st: PPOState, rows: list[int]) -> Teacher:
    """The original model's log-probs at the answer tokens of retain `rows` (row-major, as
    `distill_from_teacher` wants). The first call fills the cache for every retain row, in
    length-sorted passes of `forward_batch_size` rows (less padding than the steps' random
    samples; nearly every row is sampled in a run anyway)."""
    assert st.teacher_cache is not None
    if not st.teacher_cache.rows:
        sizes = [len(r["input_ids"]) for r in st.retain_rows]
        all_rows = list(range(len(st.retain_rows)))
        for part in length_chunks(all_rows, sizes, st.cfg.forward_batch_size):
            r_in, keep = retain_inputs(st, part)
            with torch.no_grad():
                t = torch.log_softmax(teacher_logits(st, r_in, keep).float(), dim=-1)
            for i, block in zip(part, t.split(keep.sum(dim=1).tolist()), strict=True):
                st.teacher_cache.put(i, block)
    return st.teacher_cache.get(rows)


def teacher_logits(st: PPOState, r_in: dict[str, torch.Tensor], keep: torch.Tensor) -> torch.Tensor:
    """The original model's logits `[N, V]` at the `keep` positions of the retain rows: the
    frozen copy (full fine-tuning) or the policy with its adapters switched off (LoRA)."""
    if st.frozen_ref is not None:
        return st.frozen_ref(**r_in, use_cache=False).logits[keep]
    return st.no_grad_model(**r_in, reference=True, keep=keep)[0]


def step_stats(
    st: PPOState, step: int, pg: torch.Tensor, vf: torch.Tensor, dis: torch.Tensor,
    pstats: dict[str, torch.Tensor], roll_w: float,
) -> dict[str, float]:  # fmt: skip
    """The step's losses and statistics, summed over processes so the log is the global
    batch's; a non-finite loss stops the run here."""
    world = st.acc.num_processes
    parts = [pg, vf, dis, pstats["approx_kl"] * roll_w, pstats["clipfrac"] * roll_w]
    stacked = torch.stack([x.detach() for x in parts]).float()
    # Each process's loss is world * (its share of the global mean), so the sum over
    # processes / world is the global value; approx_kl and clipfrac are local means.
    stacked = (st.acc.reduce(stacked, reduction="sum") if world > 1 else stacked) / world
    names = ("pg_loss", "vf_loss", "dis_loss", "approx_kl", "clipfrac")
    values = dict(zip(names, stacked.tolist(), strict=True))
    check_finite_loss(  # the values are already on the host: no extra sync
        f"PPO step {step + 1} of batch {st.batches_done}",
        **{k: values[k] for k in names[:3]},
    )
    return values
