"""Per-token quantities every unlearning loss is built from.

The losses are written against logits and labels (not `model(...).loss`) so that each one
can be checked by hand on a tiny batch, and so that one forward pass can feed several terms.
Conventions (as HF causal LMs and open-unlearning): the logit at position t predicts the
token at t+1; labels are -100 outside the answer, so only answer tokens and EOS count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dareu.data.formatting import IGNORE_INDEX

Inputs = dict[str, torch.Tensor]


def model_inputs(batch: Inputs) -> Inputs:
    """The keys a causal LM forward takes (labels are used by our losses, not by the model)."""
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL [B, T-1] of the shifted labels and the mask of answer tokens.

    Masked positions hold 0 so sums over a row are sums over the answer.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    mask = shift_labels != IGNORE_INDEX
    nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view_as(shift_labels)
    return nll * mask, mask


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL over all answer tokens of the batch: what `model(..., labels=...).loss` gives."""
    nll, mask = token_nll(logits, labels)
    return nll.sum() / mask.sum().clamp(min=1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL per sequence [B] and the answer length per sequence [B]."""
    nll, mask = token_nll(logits, labels)
    return nll.sum(dim=-1), mask.sum(dim=-1)


def kl_ref_to_model(
    logits: torch.Tensor, ref_logits: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """KL(p_ref || p_model) per position, averaged over the attended positions.

    open-unlearning (`compute_kl_divergence`) takes the same direction with
    `kl_div(log p, log p_ref, log_target=True, reduction="batchmean")` over every position of
    the flattened batch, padding included; we average over attended positions only, so the
    value does not depend on how much padding a batch happens to carry.
    """
    logp = F.log_softmax(logits.float(), dim=-1)
    logq = F.log_softmax(ref_logits.float(), dim=-1)
    kl = (logq.exp() * (logq - logp)).sum(dim=-1)
    m = attention_mask.to(kl.dtype)
    return (kl * m).sum() / m.sum().clamp(min=1)


def npo_loss(nll_seq: torch.Tensor, ref_nll_seq: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO: -(2/beta) * mean log sigmoid(beta * (nll - nll_ref)) over sequences.

    This is DPO with only a losing answer (open-unlearning `compute_dpo_loss(win=None)`):
    the log ratio log pi/pi_ref of the forget answer is pushed down, but the push fades
    once the answer is already unlikely, which is what keeps NPO from collapsing like GA.
    """
    return -(2.0 / beta) * F.logsigmoid(beta * (nll_seq - ref_nll_seq)).mean()


def dpo_loss(
    win_nll: torch.Tensor,
    win_ref_nll: torch.Tensor,
    lose_nll: torch.Tensor,
    lose_ref_nll: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO as open-unlearning writes it: -(2/beta) * mean log sigmoid(beta * (r_win - r_lose)).

    r = log pi(answer) - log pi_ref(answer) = -(nll - nll_ref), on summed sequence NLLs.
    """
    win_ratio = -(win_nll - win_ref_nll)
    lose_ratio = -(lose_nll - lose_ref_nll)
    return -(2.0 / beta) * F.logsigmoid(beta * (win_ratio - lose_ratio)).mean()


def unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP/accelerate wrappers (PEFT models are kept as they are)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


@dataclass
class Reference:
    """The frozen original model that NPO, KL, UNDIAL, SCRUB, RMU... compare against.

    With LoRA it is the policy with its adapters switched off (no second copy in memory);
    for full-parameter training it has to be a frozen copy taken before the first update.
    """

    policy: nn.Module
    frozen: nn.Module | None = None

    @contextmanager
    def as_model(self) -> Iterator[nn.Module]:
        """The reference as a module (for hooks); only valid inside the `with` block."""
        if self.frozen is not None:
            yield self.frozen
            return
        base = unwrap(self.policy)
        with base.disable_adapter():  # type: ignore[operator]
            yield base

    @torch.no_grad()
    def forward(self, batch: Inputs, **kwargs: Any) -> Any:
        with self.as_model() as ref:
            was_training = ref.training
            ref.eval()
            try:
                return ref(**model_inputs(batch), **kwargs)
            finally:
                if was_training:
                    ref.train()

    def logits(self, batch: Inputs) -> torch.Tensor:
        logits: torch.Tensor = self.forward(batch).logits
        return logits


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a causal LM (Llama/Mistral/Qwen `layers`, GPT-2 `h`).

    Found by structure rather than by a fixed attribute path, so PEFT and other wrappers work.
    """
    best: nn.ModuleList | None = None
    for name, module in unwrap(model).named_modules():
        leaf = name.rsplit(".", 1)[-1]
        is_stack = isinstance(module, nn.ModuleList) and leaf in {"layers", "h", "blocks"}
        if is_stack and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise ValueError(
            f"cannot find the decoder layers of {type(unwrap(model)).__name__} "
            "(looked for a ModuleList named layers, h or blocks)"
        )
    return best


def forward_with_activation(
    model: nn.Module, layer: nn.Module, batch: Inputs
) -> tuple[torch.Tensor, Any]:
    """Run the model and return (output of `layer`, model outputs); grads flow as usual."""
    cache: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inp: Any, out: Any) -> None:
        cache.append(out[0] if isinstance(out, tuple) else out)

    handle = layer.register_forward_hook(hook)
    try:
        outputs = model(**model_inputs(batch))
    finally:
        handle.remove()
    if not cache:
        raise RuntimeError("the hooked layer did not run in the forward pass")
    return cache[0], outputs
