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

import copy
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
from dareu.data.formatting import PromptFormat, collate_train, encode_qa
from dareu.data.schema import QASample
from dareu.eval.leak import mentions
from dareu.guards import check_finite_loss
from dareu.models.loading import load_model
from dareu.models.saving import save_hf_model
from dareu.ppo.config import PPOConfig
from dareu.ppo.losses import distill_loss, kl_estimate, policy_loss, token_weights, value_loss
from dareu.ppo.rollout import (
    Rollouts,
    encode_prompt_batch,
    eos_ids,
    pad_id_of,
    pad_right,
    prompt_width,
    response_logprobs,
    sample_responses,
    sample_seed,
)
from dareu.ppo.value_head import GenerateThroughRoot, PolicyWithValue, hidden_size_of
from dareu.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from dareu.train.common import (
    JsonlLogger,
    is_sharded,
    refuse_frozen_copy_under_zero3,
    set_seed,
)
from dareu.train.lora import enable_checkpointing, wrap_lora

VALUE_HEAD_FILE = "value_head.safetensors"
TRAIN_STATE_FILE = "dareu_model.json"
SATURATED = -1.0 + 1e-6  # chi at or below this is clipped at -1


class TrainingStopped(RuntimeError):
    """Raised by the `stop_after_batches` hook (a simulated kill); resume continues it."""

    def __init__(self, batches: int, checkpoint: Path | None) -> None:
        super().__init__(
            f"stopped after {batches} rollout batches as asked; latest checkpoint: {checkpoint}; "
            "re-run with --resume to continue"
        )
        self.batches, self.checkpoint = batches, checkpoint


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


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------
def split_counts(n: int, world: int) -> list[int]:
    """Rows per process for a contiguous split of n rows (the first n % world get one more)."""
    return [n // world + (1 if r < n % world else 0) for r in range(world)]


def gather_rows(acc: Accelerator, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Concatenate every process's rows in rank order (rows padded to a common count)."""
    if acc.num_processes == 1:
        return x
    m = max(counts)
    if x.shape[0] < m:
        pad = torch.zeros((m - x.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        x = torch.cat([x, pad])
    g = acc.gather(x.contiguous())
    return torch.cat([g[r * m : r * m + c] for r, c in enumerate(counts)])


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


def configure_deepspeed(acc: Accelerator, rows_per_process: int) -> None:
    """DeepSpeed wants a micro-batch size before `prepare`; it is bookkeeping only here
    (the losses are normalised by global counts), so the per-process rollout share is
    given when the config leaves it on "auto"."""
    from accelerate.utils import DistributedType

    if acc.distributed_type != DistributedType.DEEPSPEED:
        return
    ds = acc.state.deepspeed_plugin.deepspeed_config
    if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":
        ds["train_micro_batch_size_per_gpu"] = max(1, rows_per_process)


@contextmanager
def generation_context(acc: Accelerator, policy: torch.nn.Module) -> Iterator[None]:
    """Whole weights at once for token-by-token decoding under ZeRO-3 (as TRL does).

    Sampling itself runs inside the wrapped policy's forward (`GenerateThroughRoot`), so
    FSDP needs nothing here: its root gathers the root's weights and each wrapped decoder
    layer its own, per forward. ZeRO-3 would too, but one gather beats one per token.
    ZeRO-3 has not been run (see docs/dareu.md).
    """
    from accelerate.utils import DistributedType

    if acc.distributed_type == DistributedType.DEEPSPEED:
        plugin = acc.state.deepspeed_plugin
        if plugin is not None and plugin.zero_stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(policy.parameters())):
                yield
            return
    yield


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


def check_request(
    forget: Sequence[QASample], retain: Sequence[QASample], attributor: Attributor
) -> None:
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
    """(rewards, advantages, returns) `[B, T]` from the Rust reward core.

    Default: the fused `ppo_advantages`. With `length_norm` the core's own pieces are
    chained (assemble_rewards -> / length -> gae -> whiten), because the fused call has no
    length normalisation; the division is the only arithmetic done here.
    """
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    lens = np.ascontiguousarray(lengths, dtype=np.int64)
    seg = segment_kwargs(cfg)
    k, kappa = seg["k"], seg["kappa"]
    if not cfg.length_norm:
        rewards, adv, ret = reward_core.ppo_advantages(
            f32(scores), f32(kl), f32(values), lens,
            k=k, kappa=kappa, c_seg=c_seg, eps=cfg.chi_eps, kl_coef=cfg.kl_coef,
            gamma=cfg.gamma, lam=cfg.gae_lambda, whiten=cfg.whiten_advantages,
        )  # fmt: skip
        return rewards, adv, ret
    rewards = reward_core.assemble_rewards(
        f32(scores), f32(kl), lens, k=k, kappa=kappa, c_seg=c_seg, eps=cfg.chi_eps,
        kl_coef=cfg.kl_coef,
    )  # fmt: skip
    rewards = f32(rewards / np.maximum(lens, 1)[:, None])
    adv, ret = reward_core.gae(rewards, f32(values), lens, gamma=cfg.gamma, lam=cfg.gae_lambda)
    if cfg.whiten_advantages:
        adv = reward_core.whiten(f32(adv), lens)
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
        reference = copy.deepcopy(lm).eval().requires_grad_(False)
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
    acc = accelerator
    cfg.validate()
    check_request(forget, retain, attributor)
    if not cfg.lora:
        refuse_frozen_copy_under_zero3(acc, "--full")
    out_dir = Path(run.out_dir)
    final_dir = out_dir / "model"
    if is_complete(final_dir):
        return final_dir
    ckpt_root = out_dir / "checkpoints"
    world, rank = acc.num_processes, acc.process_index
    set_seed(run.seed)
    if cfg.attr_temperature > 0:
        if not hasattr(attributor, "temperature"):
            raise ValueError(f"--attr-temperature: the {attributor.kind} attributor has none")
        attributor.temperature = cfg.attr_temperature

    # ---- models: the policy (+ value head) and, with LoRA, the reference inside it
    policy, tokenizer, frozen_ref = build_policy(Path(model_path), cfg, run)
    device = acc.device
    if frozen_ref is not None:
        frozen_ref.to(device)
    trainable_names = [n for n, p in policy.named_parameters() if p.requires_grad]
    trainable = [p for p in policy.parameters() if p.requires_grad]
    # FSDP/ZeRO-3: every forward is a collective and must go through the wrapped policy, the
    # same number of times on every process. DDP: no-grad passes use the unwrapped module
    # (a DDP forward would broadcast buffers, and processes may hold different row counts).
    sharded = is_sharded(acc)
    if sharded and run.save_every:
        raise ValueError(
            "--save-every: step checkpoints are not supported under FSDP/DeepSpeed (their "
            "optimizer state is sharded); run without it, or with DDP"
        )
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    configure_deepspeed(acc, math.ceil(cfg.batch_size * cfg.samples_per_query / acc.num_processes))
    policy, optimizer = acc.prepare(policy, optimizer)
    core: PolicyWithValue = acc.unwrap_model(policy)
    no_grad_model = policy if sharded else core  # log-probs, values, reference, teacher
    eos = eos_ids(core.lm, tokenizer)
    pad_id = pad_id_of(tokenizer, eos)

    # ---- data: forget prompts (one width for all processes) and encoded retain QA
    questions = [s.question for s in forget]
    W = prompt_width(tokenizer, questions, run.fmt)
    retain_rows = [
        encode_qa(tokenizer, s.question, s.answer, run.fmt, run.max_length) for s in retain
    ]
    n_batches = math.ceil(len(forget) / cfg.batch_size)
    total_batches = cfg.epochs * n_batches

    # ---- resume
    batches_done, c_seg, snapshot = 0, cfg.c_seg, None
    latest = latest_checkpoint(ckpt_root) if run.resume else None
    if latest is not None and sharded:
        raise ValueError(
            f"--resume: {latest} is a single-process checkpoint; it cannot be loaded into "
            "FSDP/DeepSpeed shards"
        )
    if latest is not None:
        batches_done = load_checkpoint(latest, core, optimizer, scheduler)
        state = json.loads((latest / "state.json").read_text())
        c_seg = float(state["c_seg"])
        snap_file = latest / "rollout_policy.safetensors"
        if snap_file.is_file():
            snapshot = {k: v.to(device) for k, v in load_file(str(snap_file)).items()}
        acc.print(f"[dareu] resumed from {latest} ({batches_done}/{total_batches} batches)")
    elif ckpt_root.exists() and acc.is_main_process and not run.resume:
        import shutil

        shutil.rmtree(ckpt_root)  # a fresh run must not pick up a stale checkpoint later
    acc.wait_for_everyone()

    log = JsonlLogger(out_dir / "log.jsonl", enabled=acc.is_main_process)
    if acc.is_main_process and (out_dir / "log.jsonl").exists():
        # Keep the lines of the batches the checkpoint covers; a killed run may have logged
        # later batches that will now run again.
        lines = (out_dir / "log.jsonl").read_text().splitlines()
        kept = [x for x in lines if x.strip() and json.loads(x)["batch"] <= batches_done]
        atomic_write_text(out_dir / "log.jsonl", "".join(x + "\n" for x in kept))
    bar = tqdm(
        total=total_batches,
        initial=batches_done,
        desc=f"DareU round {run.round_index}",
        disable=not (run.progress and acc.is_main_process),
    )
    policy.train()
    t_run = time.perf_counter()

    while batches_done < total_batches:
        t0 = time.perf_counter()
        epoch, b = divmod(batches_done, n_batches)
        if cfg.rollout_refresh == "epoch" and b == 0:
            snapshot = trainable_copy(core)  # the policy as it was when this epoch began
        use_snapshot = snapshot if cfg.rollout_refresh == "epoch" else None
        order = epoch_order(len(forget), run.seed, run.round_index, epoch)
        queries = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        rows = [(q, j) for q in queries for j in range(cfg.samples_per_query)]
        counts = split_counts(len(rows), world)
        start = sum(counts[:rank])
        mine = rows[start : start + counts[rank]]

        # ---- 1. rollouts (rollout policy, eval mode, KV cache)
        prompt_ids, prompt_mask = encode_prompt_batch(
            tokenizer, [questions[q] for q, _ in mine] or [questions[0]], run.fmt, W
        )
        prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
        seeds = [sample_seed(run.seed, run.round_index, epoch, q, j) for q, j in mine] or [0]
        with swapped_weights(core, use_snapshot), eval_mode(core), generation_context(acc, policy):
            if mine or sharded:
                # Sharded: sampling runs through the root forward (a collective), so every
                # process samples, a process without rows on a dummy prompt, and `synced`
                # keeps the ones that hit EOS early stepping until all are done.
                resp, lengths = sample_responses(
                    GenerateThroughRoot(policy) if sharded else core.lm,
                    prompt_ids, prompt_mask, seeds,
                    temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                    eos=eos, pad_id=pad_id, synced=sharded and world > 1,
                )  # fmt: skip
            if not mine:
                resp = torch.full((0, 1), pad_id, dtype=torch.long, device=device)
                lengths = torch.zeros(0, dtype=torch.long, device=device)
            prompt_ids, prompt_mask = prompt_ids[: len(mine)], prompt_mask[: len(mine)]
            all_lengths = gather_rows(acc, lengths, counts)
            T = int(all_lengths.max().item())
            resp = pad_right(resp, T, pad_id)
            ro = Rollouts(
                query_index=[q for q, _ in mine],
                prompt_ids=prompt_ids,
                prompt_mask=prompt_mask,
                response_ids=resp,
                lengths=lengths,
                texts=[],
            )
            # ---- 2. log-probs and values of the rollout policy, log-probs of the original
            n_chunks = math.ceil(max(counts) / cfg.forward_batch_size) if sharded else None
            old_logp, values, ref_logp = forward_rollouts(
                no_grad_model, frozen_ref, ro, W, cfg, n_chunks
            )
        ro.old_logprobs, ro.values, ro.ref_logprobs = old_logp, values, ref_logp
        mask = ro.mask()
        kl = kl_estimate(old_logp, ref_logp, cfg.kl_estimator) * mask

        # ---- 3. attribution scores at the segment ends (one pass per response)
        text_lens = [
            int(n) - (1 if int(n) > 0 and int(ro.response_ids[i, int(n) - 1]) in eos else 0)
            for i, n in enumerate(lengths.tolist())
        ]
        # (batch_decode([]) returns [""], so a process without rollouts skips it)
        ro.texts = (
            tokenizer.batch_decode(
                [ro.response_ids[i, :n].tolist() for i, n in enumerate(text_lens)],
                skip_special_tokens=True,
            )
            if text_lens
            else []
        )
        prefix_ends, _, _ = reward_core.segment_schedule(
            lengths.cpu().numpy().astype(np.int64), T, **segment_kwargs(cfg)
        )
        scores = score_rollouts(attributor, ro, text_lens, prefix_ends, forget, cfg)

        # ---- 4. rewards, advantages, returns on the global batch (Rust reward core)
        g_scores = gather_rows(acc, torch.from_numpy(scores).to(device), counts).cpu().numpy()
        g_kl = gather_rows(acc, kl.float(), counts).cpu().numpy()
        g_values = gather_rows(acc, values.float(), counts).cpu().numpy()
        g_lengths = all_lengths.cpu().numpy().astype(np.int64)
        g_valid = (
            gather_rows(acc, torch.from_numpy(prefix_ends > 0).to(device), counts).cpu().numpy()
        )
        if batches_done == 0 and cfg.chi_scale == "auto":
            c_seg = auto_c_seg(g_scores, g_valid, cfg)
            acc.print(f"[dareu] --chi-scale auto: C_seg {cfg.c_seg} -> {c_seg:.3f}")
        rewards, adv, ret = advantages_from_core(g_scores, g_kl, g_values, g_lengths, cfg, c_seg)
        sl = slice(start, start + len(mine))
        ro.advantages = torch.from_numpy(adv[sl]).to(device)
        ro.returns = torch.from_numpy(ret[sl]).to(device)

        # ---- 5. PPO updates (+ retain distillation)
        stats = ppo_updates(
            acc, policy, no_grad_model, frozen_ref, optimizer, scheduler, ro, retain_rows, W,
            cfg, run, g_lengths, counts, start, pad_id, batches_done, tokenizer,
        )  # fmt: skip
        batches_done += 1
        if on_update is not None:
            on_update(core)

        # ---- logging: reward, attribution, KL, losses, length, saturation, leaks
        leak = leak_counts(ro, forget)
        g_leak = gather_rows(acc, leak, counts).cpu().numpy()
        record = batch_record(
            batches_done, epoch, g_scores, g_valid, g_kl, rewards, g_lengths, g_leak, c_seg, cfg
        )
        record.update(stats)
        record["batch_s"] = round(time.perf_counter() - t0, 3)
        log.log(record)
        if run.tracker:
            scalars = {
                f"round{run.round_index}/{k}": v
                for k, v in record.items()
                if isinstance(v, int | float)
            }
            acc.log(scalars, step=batches_done)
        if on_batch is not None and acc.is_main_process:
            on_batch(record)
        bar.update(1)
        bar.set_postfix(
            attr=f"{record['attr_score']:.3f}", rew=f"{record['reward_mean']:.3f}",
            len=f"{record['resp_len']:.1f}", dis=f"{record['dis_loss']:.3f}",
        )  # fmt: skip

        # ---- checkpoint (atomic) and the simulated-kill hook
        stop = run.stop_after_batches is not None and batches_done >= run.stop_after_batches
        if (run.save_every and batches_done % run.save_every == 0) or stop:
            if acc.is_main_process and batches_done < total_batches:
                ck = save_checkpoint(ckpt_root, batches_done, core, optimizer, scheduler,
                                     meta={"c_seg": c_seg, "round": run.round_index})  # fmt: skip
                if snapshot is not None:
                    save_file({k: v.cpu().contiguous() for k, v in snapshot.items()},
                              str(ck / "rollout_policy.safetensors"))  # fmt: skip
            acc.wait_for_everyone()
            if stop and batches_done < total_batches:
                bar.close()
                raise TrainingStopped(batches_done, latest_checkpoint(ckpt_root))
    bar.close()

    # ---- save: model folder (atomic), then drop the checkpoints
    acc.wait_for_everyone()
    state = acc.get_state_dict(policy)  # a collective: gathers the shards under FSDP/ZeRO-3
    if acc.is_main_process:
        meta = {
            "kind": "dareu",
            "base_model": str(Path(model_path).resolve()),
            "round": run.round_index,
            "batches": total_batches,
            "c_seg_used": c_seg,
            "train_s": round(time.perf_counter() - t_run, 2),
            "config": cfg.to_dict(),
            "attributor": attributor.describe(),
            **run.extra_meta,
        }
        with atomic_dir(final_dir) as tmp:
            save_final(core, state, trainable_names, tokenizer, Path(model_path), tmp, meta)
        import shutil

        shutil.rmtree(ckpt_root, ignore_errors=True)
    acc.wait_for_everyone()
    acc.free_memory()  # drop the accelerator's references, so a next round can load anew
    return final_dir


@torch.no_grad()
def forward_rollouts(
    policy: torch.nn.Module,
    frozen_ref: torch.nn.Module | None,
    ro: Rollouts,
    W: int,
    cfg: PPOConfig,
    n_chunks: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rollout-policy log-probs and values, and the original model's log-probs, `[B, T]`.

    `n_chunks` (sharded runs): make exactly that many passes, repeating a dummy one on the
    last rows when this process has fewer, because each pass is a collective."""
    T = ro.response_ids.shape[1]
    old, vals, ref = [], [], []
    fb = cfg.forward_batch_size
    chunks = n_chunks if n_chunks is not None else math.ceil(len(ro) / fb)
    for c in range(chunks):
        dummy = c * fb >= len(ro)
        rows = slice(0, 1) if dummy else slice(c * fb, (c + 1) * fb)
        if len(ro) == 0:  # a process without rollouts still joins every pass
            one = torch.ones((1, 1), dtype=torch.long, device=ro.response_ids.device)
            inputs = {"input_ids": one, "attention_mask": one, "position_ids": one - 1}
        else:
            inputs = ro.inputs(rows)
        logits, values = policy(**inputs)
        if frozen_ref is not None:
            ref_logits = frozen_ref(**inputs, use_cache=False).logits
        else:
            ref_logits = policy(**inputs, reference=True)[0]
        if dummy:
            continue
        old.append(response_logprobs(logits, ro.response_ids[rows], W, cfg.temperature))
        vals.append(values[:, W - 1 : W - 1 + T].float())
        ref.append(response_logprobs(ref_logits, ro.response_ids[rows], W, cfg.temperature))
    if not old:
        z = torch.zeros((0, T), device=ro.response_ids.device)
        return z, z.clone(), z.clone()
    mask = ro.mask()
    return torch.cat(old) * mask, torch.cat(vals) * mask, torch.cat(ref) * mask


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
    empty_score = (
        1.0 / len(attributor.owners) if cfg.empty_response_score < 0 else cfg.empty_response_score
    )
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


def placeholder_rollouts(W: int, T: int, pad_id: int, device: torch.device) -> Rollouts:
    """One empty (length-0, zero-weight) rollout row, for a process that sampled none."""
    zeros = torch.zeros((1, T), device=device)
    prompt_mask = torch.zeros((1, W), dtype=torch.long, device=device)
    prompt_mask[:, -1] = 1
    return Rollouts(
        query_index=[-1],
        prompt_ids=torch.full((1, W), pad_id, dtype=torch.long, device=device),
        prompt_mask=prompt_mask,
        response_ids=torch.full((1, T), pad_id, dtype=torch.long, device=device),
        lengths=torch.zeros(1, dtype=torch.long, device=device),
        texts=[""],
        old_logprobs=zeros,
        ref_logprobs=zeros.clone(),
        values=zeros.clone(),
        advantages=zeros.clone(),
        returns=zeros.clone(),
    )


def encode_retain_batch(
    retain_rows: list[dict[str, list[int]]], idx: list[int], pad_id: int
) -> dict[str, torch.Tensor]:
    return collate_train([retain_rows[i] for i in idx], pad_id)


def ppo_updates(
    acc: Accelerator,
    policy: torch.nn.Module,
    teacher: torch.nn.Module,
    frozen_ref: torch.nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ro: Rollouts,
    retain_rows: list[dict[str, list[int]]],
    W: int,
    cfg: PPOConfig,
    run: RunSettings,
    g_lengths: np.ndarray,
    counts: list[int],
    start: int,
    pad_id: int,
    batch_index: int,
    tokenizer: Any,
) -> dict[str, float]:
    """`ppo_steps` optimizer steps on this batch; returns the mean of each loss/statistic.

    Each step runs ONE forward pass through the (DDP-wrapped) policy over the step's
    rollouts and retain rows together, so DDP sees one forward per backward.
    """
    world, rank = acc.num_processes, acc.process_index
    device = ro.response_ids.device
    B_global, T = len(g_lengths), ro.response_ids.shape[1]
    mb = cfg.minibatch_size or B_global
    g_mask = np.arange(T)[None, :] < g_lengths[:, None]
    agg: dict[str, list[float]] = defaultdict(list)
    sharded = is_sharded(acc)  # the teacher pass is then a collective every process joins
    if len(ro) == 0:  # a process without rollouts still joins every forward and backward
        ro = placeholder_rollouts(W, T, pad_id, device)
    for step in range(cfg.ppo_steps):
        g = torch.Generator().manual_seed(sample_seed(run.seed, run.round_index, batch_index, step))
        # Global minibatch rows, then the ones this process holds.
        perm = (
            torch.randperm(B_global, generator=g).tolist()
            if mb < B_global
            else list(range(B_global))
        )
        chosen = sorted(perm[:mb])
        local = [i - start for i in chosen if start <= i < start + len(ro)]
        # Denominators over the global minibatch, divided by world because DDP averages.
        if cfg.loss_agg == "token":
            denom = float(g_mask[chosen].sum()) / world
        else:
            denom = float(len(chosen)) / world
        # Retain rows for distillation: a global sample, split across processes.
        n_dis = min(cfg.distill_batch_size, len(retain_rows)) if cfg.lambda_dis > 0 else 0
        dis_idx = torch.randperm(len(retain_rows), generator=g)[:n_dis].tolist() if n_dis else []
        dis_counts = split_counts(len(dis_idx), world)
        d0 = sum(dis_counts[:rank])
        my_dis = dis_idx[d0 : d0 + dis_counts[rank]]
        dis_denom = (
            float(sum(sum(1 for x in retain_rows[i]["labels"][1:] if x != -100) for i in dis_idx))
            / world
        )

        rows = torch.tensor(local or [0], dtype=torch.long, device=device)
        roll_w = 1.0 if local else 0.0  # a process without rows still joins the backward
        inputs = ro.inputs(rows)
        n_roll, width = inputs["input_ids"].shape
        ret_batch = encode_retain_batch(retain_rows, my_dis, pad_id) if my_dis else None
        if ret_batch is not None:
            width = max(width, ret_batch["input_ids"].shape[1])
        ids = pad_right(inputs["input_ids"], width, pad_id)
        att = pad_right(inputs["attention_mask"], width, 0)
        pos = pad_right(inputs["position_ids"], width, 0)
        if ret_batch is not None:
            r_ids = pad_right(ret_batch["input_ids"].to(device), width, pad_id)
            r_att = pad_right(ret_batch["attention_mask"].to(device), width, 0)
            r_pos = (r_att.long().cumsum(1) - 1).clamp(min=0)
            ids, att, pos = (
                torch.cat([ids, r_ids]),
                torch.cat([att, r_att]),
                torch.cat([pos, r_pos]),
            )

        logits, values = policy(input_ids=ids, attention_mask=att, position_ids=pos)
        # Policy and value terms on the rollout rows.
        resp = ro.response_ids[rows]
        logp = response_logprobs(logits[:n_roll], resp, W, cfg.temperature)
        v = values[:n_roll, W - 1 : W - 1 + T].float()
        mask = ro.mask()[rows]
        weights = token_weights(mask, cfg.loss_agg) * roll_w
        assert ro.old_logprobs is not None and ro.values is not None
        assert ro.advantages is not None and ro.returns is not None
        pg, pstats = policy_loss(
            logp, ro.old_logprobs[rows], ro.advantages[rows], weights, denom, cfg.clip_range
        )
        vf = value_loss(v, ro.values[rows], ro.returns[rows], weights, denom, cfg.clip_range_value)
        loss = pg + cfg.vf_coef * vf
        # Distillation on the retain rows: KL(pi_original || pi) at the answer tokens.
        dis = torch.zeros((), device=device)
        if ret_batch is not None and dis_denom > 0:
            r_logits = logits[n_roll:, : r_ids.shape[1]]
            with torch.no_grad():
                r_in = {"input_ids": r_ids, "attention_mask": r_att, "position_ids": r_pos}
                if frozen_ref is not None:
                    t_logits = frozen_ref(**r_in, use_cache=False).logits
                else:
                    t_logits = teacher(**r_in, reference=True)[0]
            labels = pad_right(ret_batch["labels"].to(device), width, -100)
            label_mask = labels[:, 1:] != -100
            dis = distill_loss(r_logits[:, :-1], t_logits[:, :-1], label_mask, dis_denom)
            loss = loss + cfg.lambda_dis * dis
        elif sharded and frozen_ref is None and dis_idx:
            with torch.no_grad():  # join the other processes' teacher pass (a collective)
                teacher(input_ids=ids[:1], attention_mask=att[:1], position_ids=pos[:1],
                        reference=True)  # fmt: skip
        acc.backward(loss)
        if cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        # Statistics, summed over processes so the log is the global batch's.
        st = torch.stack(
            [
                pg.detach(),
                vf.detach(),
                dis.detach(),
                pstats["approx_kl"] * roll_w,
                pstats["clipfrac"] * roll_w,
            ]
        ).float()
        # Each process's loss is world * (its share of the global mean), so the sum over
        # processes / world is the global value; approx_kl and clipfrac are local means.
        st = (acc.reduce(st, reduction="sum") if world > 1 else st) / world
        names = ("pg_loss", "vf_loss", "dis_loss", "approx_kl", "clipfrac")
        values = st.tolist()
        check_finite_loss(  # the values are already on the host: no extra sync
            f"PPO step {step + 1} of batch {batch_index}",
            **dict(zip(names[:3], values[:3], strict=True)),
        )
        for name, value in zip(names, values, strict=True):
            agg[name].append(value)
        if cfg.target_kl > 0 and agg["approx_kl"][-1] > cfg.target_kl:
            break
    out = {k: float(np.mean(v)) for k, v in agg.items()}
    out["ppo_steps_done"] = float(len(agg["pg_loss"]))
    return out
