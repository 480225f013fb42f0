"""The critic: a scalar head on the policy's last hidden state, sharing its trunk.

Sharing the trunk (as TRL's AutoModelForCausalLMWithValueHead does) costs one extra
linear layer instead of a second LLM; the value loss then also shapes the LoRA adapters,
which `vf_coef` keeps small. The head lives in the same nn.Module as the LM, so DDP/FSDP
wrap and synchronise both, and one forward pass yields logits and values.

Every forward, the reference's included, goes through this module's `forward` (the
wrapped root under DDP/FSDP/DeepSpeed): FSDP gathers the root's parameters (embeddings,
final norm, LM head, value head) only when the root itself runs.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn


class PolicyWithValue(nn.Module):
    """`forward` -> (logits [B, S, V], values [B, S]); `lm` is the (PEFT-wrapped) causal LM."""

    def __init__(self, lm: nn.Module, hidden_size: int, *, detach: bool = False) -> None:
        super().__init__()
        self.lm = lm
        self.detach = detach
        self.v_head = nn.Linear(hidden_size, 1)
        # Small init: early value estimates near 0 keep the first advantages ~ the returns.
        nn.init.normal_(self.v_head.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.v_head.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        reference: bool = False,
        generate: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values).

        `reference=True`: the original model's logits (adapters off) and zero values, for
        no-grad KL and distillation targets. `generate=kwargs`: `lm.generate` runs inside
        this forward and its token ids come first (values empty); under FSDP the root's
        weights are gathered only while the root runs, so sampling must happen in here.
        """
        if generate is not None:
            lm: Any = self.lm
            ids = lm.generate(input_ids=input_ids, attention_mask=attention_mask, **generate)
            return ids, ids.new_zeros(0)
        if reference:
            with self.reference_mode():
                logits = self.lm(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=False,
                ).logits
            return logits, logits.new_zeros(logits.shape[:2])
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=True,
            use_cache=False,
        )
        hidden = out.hidden_states[-1]
        if self.detach:
            hidden = hidden.detach()
        values = self.v_head(hidden.to(self.v_head.weight.dtype)).squeeze(-1)
        return out.logits, values

    def reference_mode(self) -> AbstractContextManager[Any]:
        """Context in which `lm` computes the original model: LoRA adapters switched off."""
        lm: Any = self.lm
        if hasattr(lm, "disable_adapter"):
            ctx: AbstractContextManager[Any] = lm.disable_adapter()
            return ctx
        return nullcontext()


class GenerateThroughRoot:
    """What `sample_responses` needs (`.generate`), routed through the wrapped policy's
    forward so DDP, FSDP1/2 and ZeRO-3 all see an ordinary root forward."""

    def __init__(self, policy: nn.Module) -> None:
        self.policy = policy

    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        ids, _ = self.policy(input_ids=input_ids, attention_mask=attention_mask, generate=kwargs)
        return ids


def hidden_size_of(lm: nn.Module) -> int:
    """The width of the last hidden state, from the config of any HF causal LM."""
    cfg = lm.config
    for name in ("hidden_size", "n_embd", "d_model"):
        size = getattr(cfg, name, None)
        if isinstance(size, int):
            return size
    text_cfg = getattr(cfg, "text_config", None)
    if text_cfg is not None and isinstance(getattr(text_cfg, "hidden_size", None), int):
        return int(text_cfg.hidden_size)
    raise ValueError(f"cannot find the hidden size in the config of {type(lm).__name__}")
