"""LoRA wrapping and activation checkpointing, shared by fine-tuning, PPO and the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

# The default targets: PEFT's own "all-linear", every linear layer of every block (GPT-2's
# Conv1D included) but the output head, resolved by PEFT for whatever architecture it is
# given. LoRA on all of them learns facts far better than on attention alone, at the same
# rank; on a Llama it is exactly these seven projections.
ALL_LINEAR = "all-linear"
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def resolve_targets(model: Any, target_modules: str | Sequence[str]) -> str | list[str]:
    """PEFT's "all-linear", or explicit module names checked against the model (so a typo
    is an error naming the model, not a silent run without adapters)."""
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if targets == [ALL_LINEAR]:
        return ALL_LINEAR
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ValueError(
            f"LoRA target modules {missing} are not in this model "
            f"({type(model).__name__}); pass --lora-targets with names of its linear layers, "
            f"or {ALL_LINEAR} (the default)"
        )
    return targets


def is_peft(model: Any) -> bool:
    """A PEFT model, also under DDP/Accelerate wrappers (`.module`)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return isinstance(model, PeftModel)


def enable_checkpointing(model: Any, *, reentrant: bool = False) -> None:
    """Recompute activations in the backward pass to trade compute for memory.

    With reentrant checkpointing, a block whose inputs do not require grad returns outputs
    that do not either, so with a frozen base (LoRA) nothing upstream of the last block
    would get a gradient; `enable_input_require_grads` makes the embedding output require
    grad so every adapter trains. Harmless for the non-reentrant variant.
    """
    kwargs = {"use_reentrant": reentrant}
    base = model.get_base_model() if is_peft(model) else model
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    base.config.use_cache = False
    if not getattr(base, "_require_grads_hooks", None):  # transformers >= 5 already did it
        base.enable_input_require_grads()


def wrap_lora(
    model: PreTrainedModel,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: str | Sequence[str] = ALL_LINEAR,
    gradient_checkpointing: bool = False,
    reentrant: bool = False,
) -> PeftModel:
    """Freeze `model` and add LoRA adapters; only the adapters train.

    Adapter weights stay fp32 even on a bf16 base (PEFT's autocast_adapter_dtype), so
    small updates are not rounded away.
    """
    if r < 1:
        raise ValueError(f"LoRA rank r must be >= 1, got {r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=resolve_targets(model, target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    if gradient_checkpointing:
        enable_checkpointing(peft_model, reentrant=reentrant)
    return peft_model
