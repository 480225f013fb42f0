"""Every hyperparameter default of every method, with where it comes from. One place.

Two profiles:
- "paper": the published settings (open-unlearning's TOFU configs, the method papers, the
  ATWU authors' code). Use these for a real model (Llama-2-7b, Llama-3.2-1B, ...).
- "tiny": the embedded synthetic default (a from-scratch tiny Llama on a 2-core CPU). The
  loss hyperparameters stay the paper's; only the optimisation budget (lr, epochs, batch)
  changes, because a tiny model trained from scratch needs a larger step size to move in a
  few dozen steps, and the whole comparison has to fit in 30 CPU minutes. The measured
  effect of each choice is in docs/methods.md.

Sources (OU = github.com/locuslab/open-unlearning, read at commit 56b662e / 7fa0b55):
- OU-TOFU: configs/experiment/unlearn/tofu/default.yaml (warmup_epochs 1, weight_decay
  0.01, 10 epochs) + configs/trainer/finetune.yaml (lr 1e-5, batch 8 x grad-accum 4).
- OU-<X>: configs/trainer/<X>.yaml and src/trainer/unlearn/<x>.py; formulas in
  src/trainer/utils.py (compute_dpo_loss, compute_undial_loss, compute_wga_loss,
  compute_satimp_loss, compute_kl_divergence).
- TOFU: Maini et al. 2024, the "IDK" baseline (NLL on refusal answers + retain NLL).
- SCRUB: Kurmanji et al. 2023, github.com/meghdadk/SCRUB (gamma 0.99, alpha 0.001,
  kd_T 4, msteps 2).
- RMU: Li et al. 2024 (WMDP); layer 7, params layers 5-7 mlp.down_proj as OU-RMU; the
  steering coefficient 2 is the DareU paper's setting for TOFU.
- ATWU: arXiv 2606.06320 and the authors' trainer `SelfBalancingGradDiff`
  (trainer/unlearn/sb.py, trainer/unlearn/Scorer.py, trainer/utils.py:reweighted_NLL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Profile = Literal["paper", "tiny"]
PROFILES: tuple[str, ...] = ("paper", "tiny")


@dataclass(frozen=True)
class TrainDefaults:
    """The optimisation budget: what the shared loop needs besides the loss."""

    lr: float = 1e-5
    epochs: float = 10.0
    batch_size: int = 8
    grad_accum: int = 4
    warmup_epochs: float = 1.0
    weight_decay: float = 0.01
    lora: bool = False  # open-unlearning's TOFU runs train all parameters
    max_length: int = 256


@dataclass(frozen=True)
class MethodDefaults:
    hparams: dict[str, Any]
    paper: TrainDefaults
    tiny: TrainDefaults
    sources: dict[str, str] = field(default_factory=dict)


OU_TOFU = "OU-TOFU (lr 1e-5, 10 epochs, batch 8x4, warmup 1 epoch, wd 0.01)"
PAPER = TrainDefaults()
# Tiny profile: one budget for every method (so the table compares losses, not tuning):
# full-parameter AdamW on the tiny Llama, lr 1e-3, batch 8 x 1, no warm-up. lr and the
# budget come from the sweep in docs/methods.md on the earlier benchmark (48 forget QA,
# 10 epochs = 60 steps: the best mean ToW over the 13 forgetting methods). The knowledge
# world has 160 forget QA (8 owners x 5 facts x 4 phrasings), so 3 epochs keep about the
# same number of optimizer steps (60); not re-tuned on the world (no sweep yet).
TINY = TrainDefaults(lr=1e-3, epochs=3.0, batch_size=8, grad_accum=1, warmup_epochs=0.0)

DEFAULTS: dict[str, MethodDefaults] = {
    "ga": MethodDefaults(
        hparams={},
        paper=PAPER,
        tiny=TINY,
        sources={"loss": "OU-GradAscent: -NLL(forget)", "train": OU_TOFU},
    ),
    "graddiff": MethodDefaults(
        hparams={"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
        paper=PAPER,
        tiny=TINY,
        sources={"gamma/alpha/retain_loss_type": "OU-GradDiff.yaml", "train": OU_TOFU},
    ),
    "kl": MethodDefaults(
        hparams={"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "KL"},
        paper=PAPER,
        tiny=TINY,
        sources={
            "loss": "TOFU 'KL' = OU-GradDiff with retain_loss_type KL",
            "train": OU_TOFU,
        },
    ),
    "npo": MethodDefaults(
        hparams={"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
        paper=PAPER,
        tiny=TINY,
        sources={"beta/alpha/gamma": "OU-NPO.yaml (beta 0.1)", "train": OU_TOFU},
    ),
    "simnpo": MethodDefaults(
        hparams={
            "beta": 4.5,
            "delta": 0.0,
            "gamma": 0.125,
            "alpha": 1.0,
            "retain_loss_type": "NLL",
        },
        paper=PAPER,
        tiny=TINY,
        sources={
            "beta/delta/gamma/alpha": "OU-SimNPO.yaml (from OPTML-Group/Unlearn-Simple TOFU)",
            "train": OU_TOFU,
        },
    ),
    "idknll": MethodDefaults(
        hparams={"gamma": 1.0, "alpha": 1.0},
        paper=PAPER,
        tiny=TINY,
        sources={"loss": "TOFU IDK: NLL(forget q, IdK answer) + NLL(retain)", "train": OU_TOFU},
    ),
    "idkdpo": MethodDefaults(
        hparams={"beta": 0.1, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
        paper=PAPER,
        tiny=TINY,
        sources={
            "beta/alpha/gamma": "OU-DPO.yaml with IdK answers as the preferred answer",
            "train": OU_TOFU,
        },
    ),
    "rmu": MethodDefaults(
        hparams={
            "layer": 7,
            "steering_coeff": 2.0,
            "alpha": 1000.0,
            "gamma": 1.0,
            "trainable_layers_below": 2,
        },
        paper=PAPER,
        tiny=TINY,
        sources={
            "layer/trainable": "OU-RMU (model.layers.7; layers 5,6,7 mlp.down_proj)",
            "alpha/gamma": "OU-RMU.yaml (alpha 1000, gamma 1)",
            "steering_coeff": "DareU paper TOFU setting (OU-RMU.yaml uses 300, WMDP 6.5)",
            "train": OU_TOFU,
        },
    ),
    "undial": MethodDefaults(
        hparams={"beta": 10.0, "gamma": 1.0, "alpha": 0.0, "retain_loss_type": "NLL"},
        paper=TrainDefaults(lr=1e-4, epochs=10.0, batch_size=2, grad_accum=8),
        tiny=TINY,
        sources={"all": "OU-UNDIAL.yaml (beta 10, alpha 0, lr 1e-4, batch 2x8, 10 epochs)"},
    ),
    "wga": MethodDefaults(
        hparams={"beta": 1.0, "gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"},
        paper=TrainDefaults(lr=1e-5, epochs=5.0),
        tiny=TINY,
        sources={"all": "OU-WGA.yaml (beta 1, lr 1e-5, 5 epochs)"},
    ),
    "satimp": MethodDefaults(
        hparams={
            "beta1": 5.0,
            "beta2": 1.0,
            "gamma": 0.1,
            "alpha": 1.0,
            "retain_loss_type": "NLL",
        },
        paper=TrainDefaults(lr=1e-5, epochs=5.0),
        tiny=TINY,
        sources={"all": "OU-SatImp.yaml (beta1 5, beta2 1, gamma 0.1, alpha 1, 5 epochs)"},
    ),
    "scrub": MethodDefaults(
        hparams={"gamma": 0.99, "alpha": 0.001, "kd_T": 4.0, "max_epochs": 2.0},
        paper=PAPER,
        tiny=TINY,
        sources={
            "gamma/alpha/kd_T/max_epochs": "SCRUB repo (gamma 0.99, alpha 0.001, kd_T 4, msteps 2)",
            "train": OU_TOFU,
        },
    ),
    "finetune": MethodDefaults(
        hparams={},
        paper=TrainDefaults(epochs=1.0),
        tiny=TrainDefaults(lr=1e-3, epochs=1.0, batch_size=8, grad_accum=1, warmup_epochs=0.0),
        sources={"epochs": "issue 7: retain only, 1 epoch", "lr": OU_TOFU},
    ),
    "retrain": MethodDefaults(
        hparams={},
        paper=PAPER,
        tiny=TINY,
        sources={"model": "the retain model from dareu.train.ensure_finetuned (no training)"},
    ),
    "atwu": MethodDefaults(
        hparams={
            "variant": "code",  # "code" = SelfBalancingGradDiff; "paper" = Eq. 8
            "alpha": 0.5,
            "gamma": 3.0,
            "beta": 7.0,
            "scorer_lr": 0.05,
            "scorer_momentum": 0.9,
            "scorer_weight_decay": 1e-4,
            "scorer_grad_clip": 1.0,
            "scorer_update_every": 5,
            "lambda_entropy": 1.0,
            "lambda_budget": 15.0,
            "lambda_l2": 1.0,
            "budget": 0.2,
        },
        paper=TrainDefaults(lr=1.5e-5, epochs=10.0, batch_size=8, grad_accum=4),
        tiny=TINY,
        sources={
            "alpha/gamma/beta/lr": "ATWU TOFU Llama-3.1-8B (lr 2e-5 for Llama-3.2-1B)",
            "scorer_*": "ATWU code: SGD momentum 0.9, wd 1e-4, clip 1, lr 0.05 linear to 0",
            "scorer_update_every": "ATWU code: update_every_n_steps 5",
            "lambda_*/budget": "ATWU code (lambda_H 1, lambda_rho 15, lambda_l2 1, rho 0.2)",
            "train": "ATWU: 10 epochs, effective batch 32, full fine-tuning",
        },
    ),
}


def method_defaults(name: str) -> MethodDefaults:
    key = name.lower()
    if key not in DEFAULTS:
        raise ValueError(f"no defaults for method {name!r}; known: {', '.join(sorted(DEFAULTS))}")
    return DEFAULTS[key]


def train_defaults(name: str, profile: Profile) -> TrainDefaults:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    d = method_defaults(name)
    return d.tiny if profile == "tiny" else d.paper


def merge_hparams(name: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults updated with user overrides; an unknown key is an error, not a silent no-op."""
    hp = dict(method_defaults(name).hparams)
    for k, v in (overrides or {}).items():
        if k not in hp:
            known = ", ".join(sorted(hp)) or "(none)"
            raise ValueError(f"method {name!r} has no hyperparameter {k!r}; known: {known}")
        default = hp[k]
        if isinstance(default, str):
            hp[k] = str(v)
        elif isinstance(default, bool):
            hp[k] = v if isinstance(v, bool) else str(v).lower() in {"1", "true", "yes"}
        else:
            kind = "an integer" if isinstance(default, int) else "a finite number"
            try:
                hp[k] = int(v) if isinstance(default, int) else float(v)
            except (TypeError, ValueError, OverflowError):
                hp[k] = None
            # NaN or inf would train silently (e.g. npo beta=nan gives an all-NaN model).
            if hp[k] is None or not math.isfinite(hp[k]):
                raise ValueError(
                    f"method {name!r} hyperparameter {k!r} (--hparam {k}=...) must be {kind}, "
                    f"got {v!r}"
                )
    return hp
