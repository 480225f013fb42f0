"""What multi-process DareU needs beyond the algorithm: which rows each process holds,
gathering them in rank order, and placeholders for a process that holds none (under
DDP/FSDP/ZeRO-3 every forward and backward is a collective that all processes join).

With one process every helper is the identity, so `trainer.py` reads as the algorithm.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from accelerate import Accelerator

from dareu.ppo.rollout import Rollouts


def my_share(n: int, acc: Accelerator) -> tuple[list[int], int]:
    """(rows per process, first row of this process) for a contiguous split of n rows."""
    counts = split_counts(n, acc.num_processes)
    return counts, sum(counts[: acc.process_index])


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
