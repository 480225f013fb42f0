"""Rollouts: sample responses to forget queries, seeded per sample, with the KV cache on.

Every response is drawn from its own `torch.Generator` seeded by (run seed, round, epoch,
query index, sample number). Which process generates a row, and which other rows share its
batch, then cannot change what it samples, so a 2-process run draws exactly the responses
a 1-process run draws. Sampling happens inside Hugging Face `generate` (so the KV cache and
every architecture's cache layout are HF's), through a logits processor that draws the
token by inverse-CDF with the row's own uniform and hands `generate` a one-hot choice.

Layout used by the trainer: prompts left-padded to a common width W, responses
right-padded to T; a response's length counts its tokens up to and including EOS (EOS is
an action the policy takes), so a row that stops at once has length 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from dareu.data.formatting import PromptFormat, encode_prompts
from dareu.models.loading import eos_ids


def sample_seed(*parts: int) -> int:
    """A 63-bit seed from integers (run seed, round, epoch, query, sample), stable everywhere."""
    h = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class SeededSampler(LogitsProcessor):
    """Temperature sampling with one generator per row; returns a one-hot (0 / -inf) score.

    Inverse CDF in float64 with the row's uniform scaled by the row's total mass: a token of
    probability 0 is never chosen, and the choice depends only on that row's logits.
    """

    def __init__(self, seeds: Sequence[int], temperature: float) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature = float(temperature)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise RuntimeError(
                f"SeededSampler has {len(self.generators)} generators for {scores.shape[0]} rows "
                "(beam search and num_return_sequences are not supported)"
            )
        probs = torch.softmax(scores.double() / self.temperature, dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators])
        u = u.to(scores.device) * cdf[:, -1]
        choice = torch.searchsorted(cdf, u[:, None], right=True).clamp(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, choice, 0.0)
        return out  # type: ignore[return-value]


def pad_id_of(tokenizer: Any, eos: list[int]) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else eos[0]


def encode_prompt_batch(
    tokenizer: Any,
    questions: Sequence[str],
    fmt: PromptFormat | Sequence[str],
    width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and mask, widened to `width` (a width shared by all processes);
    `fmt`: one format or one per row (`dareu.data.formatting.row_formats`)."""
    enc = encode_prompts(tokenizer, list(questions), fmt)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if width is not None and width > ids.shape[1]:
        extra = width - ids.shape[1]
        pad = pad_id_of(tokenizer, eos_ids(None, tokenizer))
        ids = torch.cat([torch.full((ids.shape[0], extra), pad, dtype=ids.dtype), ids], dim=1)
        mask = torch.cat([torch.zeros((mask.shape[0], extra), dtype=mask.dtype), mask], dim=1)
    return ids, mask


def prompt_width(
    tokenizer: Any, questions: Sequence[str], fmt: PromptFormat | Sequence[str]
) -> int:
    return int(encode_prompts(tokenizer, list(questions), fmt)["input_ids"].shape[1])


@torch.no_grad()
def sample_responses(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    seeds: Sequence[int],
    *,
    temperature: float,
    max_new_tokens: int,
    eos: list[int],
    pad_id: int,
    synced: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Responses `[B, T]` (right-padded with pad_id, T <= max_new_tokens) and lengths `[B]`.

    `synced`: transformers' `synced_gpus`, for sharded models whose every forward is a
    collective: a process that is done keeps stepping until all are."""
    if prompt_ids.shape[0] != len(seeds):
        raise ValueError(f"{prompt_ids.shape[0]} prompts but {len(seeds)} seeds")
    device = prompt_ids.device
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=pad_id,
        eos_token_id=eos,
    )
    out = model.generate(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        generation_config=cfg,
        logits_processor=LogitsProcessorList([SeededSampler(seeds, temperature)]),
        synced_gpus=synced,
    )
    resp = out[:, prompt_ids.shape[1] :]
    lengths = response_lengths(resp, eos)
    pos = torch.arange(resp.shape[1], device=device)[None, :]
    resp = torch.where(pos < lengths[:, None], resp, torch.full_like(resp, pad_id))
    return resp, lengths


def response_lengths(resp: torch.Tensor, eos: list[int]) -> torch.Tensor:
    """Tokens per sampled response `[B]`, up to and including the first EOS (all of them
    when there is none)."""
    is_eos = torch.zeros_like(resp, dtype=torch.bool)
    for e in eos:
        is_eos |= resp == e
    has_eos = is_eos.any(dim=1)
    first = torch.where(has_eos, is_eos.float().argmax(dim=1), torch.full_like(has_eos, 0).long())
    return torch.where(has_eos, first + 1, torch.full_like(first, resp.shape[1]))


def pad_right(x: torch.Tensor, width: int, value: float | int) -> torch.Tensor:
    if x.shape[1] >= width:
        return x[:, :width]
    pad = torch.full((x.shape[0], width - x.shape[1]), value, dtype=x.dtype, device=x.device)
    return torch.cat([x, pad], dim=1)


def sequence_inputs(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    response_ids: torch.Tensor,
    lengths: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Prompt + response as one forward input `[B, W + T - 1]`, with position ids that skip
    left padding. The last response column is left out: its logits would predict a token
    past the response and, attention being causal, no kept position reads it."""
    T = response_ids.shape[1]
    resp_mask = (torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]).to(
        prompt_mask.dtype
    )
    mask = torch.cat([prompt_mask, resp_mask[:, : max(T - 1, 0)]], dim=1)
    position_ids = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
    return {
        "input_ids": torch.cat([prompt_ids, response_ids[:, : max(T - 1, 0)]], dim=1),
        "attention_mask": mask,
        "position_ids": position_ids,
    }


def response_keep(prompt_width: int, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """`[B, width]` bool: the positions whose logits predict a response token (the logit
    at p predicts the token at p + 1, so the response's start at the last prompt position)."""
    t = torch.arange(width, device=lengths.device)[None, :] - (prompt_width - 1)
    return (t >= 0) & (t < lengths[:, None])


def flat_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    """log pi(token) `[N]` from the logits `[N, V]` that predict `tokens` `[N]`."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens[:, None]).squeeze(-1)


def to_grid(flat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Values `[N]` of the True cells of `mask` `[B, T]` (row-major) as a `[B, T]` grid with
    zeros elsewhere (differentiable)."""
    return torch.zeros(mask.shape, dtype=flat.dtype, device=flat.device).masked_scatter(mask, flat)


@dataclass
class Rollouts:
    """One process's share of a rollout batch, everything right-padded to the global T."""

    query_index: list[int]  # index into the round's forget list
    prompt_ids: torch.Tensor  # [B, W] left-padded
    prompt_mask: torch.Tensor  # [B, W]
    response_ids: torch.Tensor  # [B, T]
    lengths: torch.Tensor  # [B] tokens incl. EOS
    texts: list[str]  # decoded responses (no special tokens)
    old_logprobs: torch.Tensor | None = None  # [B, T] of the rollout policy
    ref_logprobs: torch.Tensor | None = None  # [B, T] of the original model
    values: torch.Tensor | None = None  # [B, T] of the rollout critic
    advantages: torch.Tensor | None = None  # [B, T]
    returns: torch.Tensor | None = None  # [B, T]
    scores: Any = None  # [B, K] numpy float32: DA(owner | prefix) at the segment ends

    def __len__(self) -> int:
        return len(self.query_index)

    def mask(self) -> torch.Tensor:
        T = self.response_ids.shape[1]
        return torch.arange(T, device=self.lengths.device)[None, :] < self.lengths[:, None]

    def inputs(self, rows: torch.Tensor | slice | None = None) -> dict[str, torch.Tensor]:
        sel = slice(None) if rows is None else rows
        return sequence_inputs(
            self.prompt_ids[sel], self.prompt_mask[sel], self.response_ids[sel], self.lengths[sel]
        )
