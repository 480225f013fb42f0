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

import inspect
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
        # Set by `enable_head_gathering` once a probe shows the output head applied to the
        # last hidden state reproduces the model's logits (no softcapping or scaling).
        self.gather_head = False
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
        keep: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, values).

        `reference=True`: the original model's logits (adapters off) and zero values, for
        no-grad KL and distillation targets. `generate=kwargs`: `lm.generate` runs inside
        this forward and its token ids come first (values empty); under FSDP the root's
        weights are gathered only while the root runs, so sampling must happen in here.
        `keep` ([B, S] bool): only the logits of those positions, `[N, V]` row-major. The
        losses read the response and answer tokens only, and on a small model the LM head
        and its softmax over the padded grid cost as much as the layers.
        """
        if generate is not None:
            lm: Any = self.lm
            ids = lm.generate(input_ids=input_ids, attention_mask=attention_mask, **generate)
            return ids, ids.new_zeros(0)
        if reference:
            with self.reference_mode():
                logits, _ = self.run_lm(input_ids, attention_mask, position_ids, keep)
            return logits, logits.new_zeros(input_ids.shape[:2])
        logits, hidden = self.run_lm(input_ids, attention_mask, position_ids, keep, values=True)
        assert hidden is not None
        if self.detach:
            hidden = hidden.detach()
        values = self.v_head(hidden.to(self.v_head.weight.dtype)).squeeze(-1)
        return logits, values

    def run_lm(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None,
        keep: torch.Tensor | None,
        values: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, last hidden state if `values`). With `keep` and `gather_head`, the LM
        computes the logits of one position (`logits_to_keep=1`, its own mechanism) and the
        output head runs on the kept positions' last hidden states."""
        gather = keep is not None and self.gather_head
        out = self.lm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=values or gather,
            use_cache=False,
            **({"logits_to_keep": 1} if gather else {}),
        )
        hidden = out.hidden_states[-1] if values or gather else None
        if keep is None:
            return out.logits, hidden
        if not gather:
            return out.logits[keep], hidden
        lm: Any = self.lm
        assert hidden is not None
        return lm.get_output_embeddings()(hidden[keep]), hidden

    def reference_mode(self) -> AbstractContextManager[Any]:
        """Context in which `lm` computes the original model: LoRA adapters switched off."""
        lm: Any = self.lm
        if hasattr(lm, "disable_adapter"):
            ctx: AbstractContextManager[Any] = lm.disable_adapter()
            return ctx
        return nullcontext()


@torch.no_grad()
def enable_head_gathering(policy: PolicyWithValue, tol: float = 1e-5) -> bool:
    """Turn on `keep`'s cheap path when the model supports `logits_to_keep` and its output
    head on the last hidden state gives its logits on a probe (a model that scales or caps
    its logits after the head keeps the full path: same numbers, no saving)."""
    lm: Any = policy.lm
    causal = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    head = lm.get_output_embeddings()
    params = inspect.signature(causal.forward).parameters
    if head is None or "logits_to_keep" not in params:
        policy.gather_head = False
        return False
    device = next(policy.parameters()).device
    vocab = int(head.weight.shape[0])
    ids = (torch.arange(8, device=device) * 7919 % vocab)[None, :]
    was_training = policy.training
    policy.eval()
    out = lm(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True,
             use_cache=False)  # fmt: skip
    mine = head(out.hidden_states[-1]).float()
    policy.train(was_training)
    scale = float(out.logits.float().abs().max().clamp(min=1.0))
    policy.gather_head = bool(((mine - out.logits.float()).abs().max() <= tol * scale).item())
    return policy.gather_head


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
