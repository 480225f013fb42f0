"""RMU: steer the forget activations of one layer to a fixed random direction.

Forget loss: per-token MSE between the policy's layer-l output on forget answer tokens and
c * u (u a random unit vector, drawn once); retain loss: MSE between the policy's and the
original model's layer-l outputs on retain answer tokens ("EMBED_DIFF"). Only the MLP
down-projections of layers l-2..l train (full-parameter runs), as in open-unlearning
src/trainer/unlearn/rmu.py (from the WMDP code).

Shallow models: l = min(layer, n_layers - 1), so the tiny default (fewer than 8 layers)
steers its last block; the trainable layers are clamped at 0 the same way. With LoRA the
adapters are what trains (their placement is the LoRA config's), since freezing all but
down_proj would leave nothing trainable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dareu.methods.base import Batch, Method, TrainContext, register
from dareu.methods.common import decoder_layers, forward_with_activation
from dareu.train.lora import is_peft


def activation_mse(act: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over hidden dims, summed over masked tokens / their count, mean over sequences."""
    sq = (act.float() - target.float()) ** 2
    per_tok = sq.mean(dim=-1) * mask
    n = mask.sum(dim=-1).clamp(min=1)
    return (per_tok.sum(dim=-1) / n).mean()


def resolve_layer(requested: int, n_layers: int) -> int:
    """Clamp the steered layer into the model (shallow models steer their last block)."""
    if requested < 0:
        raise ValueError(f"RMU layer must be >= 0, got {requested}")
    return min(requested, n_layers - 1)


@register
class RMU(Method):
    """L = gamma * MSE(h_l(forget), c u) + alpha * MSE(h_l(retain), h_l^orig(retain))."""

    name = "rmu"
    needs_reference = True

    def __init__(self, hparams: Mapping[str, Any], seed: int = 0) -> None:
        super().__init__(hparams, seed)
        self.control: torch.Tensor | None = None
        self.layer_index: int | None = None

    def _layer_index(self, model: nn.Module) -> int:
        n = len(decoder_layers(model))
        return resolve_layer(int(self.hp["layer"]), n)

    def select_trainable(self, model: nn.Module) -> None:
        if is_peft(model):
            return
        layers = decoder_layers(model)
        top = self._layer_index(model)
        low = max(0, top - int(self.hp["trainable_layers_below"]))
        for p in model.parameters():
            p.requires_grad_(False)
        chosen = 0
        for i in range(low, top + 1):
            for name, p in layers[i].named_parameters():
                if re.search(r"(^|\.)down_proj\.weight$", name):
                    p.requires_grad_(True)
                    chosen += 1
        if chosen == 0:  # not a Llama-style MLP: train those blocks whole
            for i in range(low, top + 1):
                layers[i].requires_grad_(True)

    def setup(self, ctx: TrainContext) -> None:
        self.layer_index = self._layer_index(ctx.model)
        ctx.extra["rmu_layer"] = self.layer_index

    def control_vector(self, hidden: int) -> torch.Tensor:
        """c * u with u uniform in [0,1)^d normalised, drawn once from the run's seed."""
        if self.control is None:
            g = torch.Generator().manual_seed(self.seed)
            u = torch.rand(1, 1, hidden, generator=g)
            self.control = u / u.norm() * float(self.hp["steering_coeff"])
        return self.control

    def loss(self, ctx: TrainContext, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.layer_index is not None, "setup() was not called"
        layer = decoder_layers(ctx.model)[self.layer_index]
        forget, retain = batch["forget"], batch["retain"]
        act_f, _ = forward_with_activation(ctx.model, layer, forget)
        control = self.control_vector(act_f.size(-1))
        target = control.to(act_f.device, act_f.dtype).expand_as(act_f)
        f = activation_mse(act_f, target, (forget["labels"] != -100).to(act_f.dtype))
        act_r, _ = forward_with_activation(ctx.model, layer, retain)
        with ctx.ref().as_model() as ref, torch.no_grad():
            ref_layer = decoder_layers(ref)[self.layer_index]
            was = ref.training
            ref.eval()
            ref_r, _ = forward_with_activation(ref, ref_layer, retain)
            if was:
                ref.train()
        r = activation_mse(act_r, ref_r.detach(), (retain["labels"] != -100).to(act_r.dtype))
        loss = self.hp["gamma"] * f + self.hp["alpha"] * r
        return loss, {"forget_loss": float(f.detach()), "retain_loss": float(r.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"control": self.control} if self.control is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "control" in state:
            self.control = state["control"]
