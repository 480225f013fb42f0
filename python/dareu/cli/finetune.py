"""Fine-tune the original and/or retain model for a benchmark (cached by content hash).

    dareu finetune                                               # synthetic, tiny, both
    accelerate launch --config_file "$(dareu config path ddp)" -m dareu.cli finetune \\
        --benchmark tofu --tofu-dir ../shared/data/tofu --forget forget10 \\
        --base /models/llama2-7b-chat --format llama2 --lora --which original

`scripts/finetune.py` is the same command. Prints "<which>: <path>" for each model (cached
or trained). Exit codes: 0 done, 2 bad arguments or input, 3 stopped early by
--stop-after-steps.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from dareu.cache import check_output_dir, output_root
from dareu.data.formatting import PROMPT_FORMATS
from dareu.models.loading import DTYPE_NAMES
from dareu.models.tiny import TINY_SIZES
from dareu.train.common import TrainingStopped, partial_state
from dareu.train.finetune import (
    BASE_KINDS,
    HF_EPOCHS,
    HF_FULL_LR,
    HF_LORA_LR,
    SCHEDULES,
    TINY_EPOCHS,
    TINY_LR,
    FinetuneConfig,
    ensure_finetuned,
)
from dareu.train.lora import ALL_LINEAR

DEFAULTS = FinetuneConfig()


def build_parser(prog: str = "dareu finetune") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("--which", choices=["original", "retain", "both"], default="both",
        help="which model: original (every owner), retain (without the forget owners) or both "
        "(default)")  # fmt: skip
    add("--benchmark", default="synthetic",
        help="'synthetic' (default), 'tofu', or a benchmark folder / user JSONL path")  # fmt: skip
    add("--tofu-dir", type=Path, help="local folder with the TOFU json files")
    add("--forget", default=None,
        help="TOFU split (forget01|forget05|forget10) or, for user data, comma-separated "
        "owners / sample ids; synthetic default: the manifest's forget owners")  # fmt: skip
    add("--base", default="tiny", help="'tiny' (default) or a local Hugging Face model folder")
    add("--tiny-size", default=DEFAULTS.tiny_size, choices=sorted(TINY_SIZES),
        help="size of the tiny base (default: %(default)s)")  # fmt: skip
    add("--format", dest="fmt", default=DEFAULTS.fmt, choices=PROMPT_FORMATS,
        help="prompt format (default: %(default)s)")  # fmt: skip
    add("--base-kind", default=DEFAULTS.base_kind, choices=BASE_KINDS,
        help="a --base folder's weights: scratch (random init) or pretrained; auto (default) "
        "measures its loss on the first training rows against ln(vocab) and says what it "
        "assumed. It picks the --lr/--epochs defaults")  # fmt: skip
    add("--epochs", type=int,
        help=f"default: {TINY_EPOCHS} from scratch (the tiny base), {HF_EPOCHS} for a "
        "pretrained base")  # fmt: skip
    add("--lr", type=float,
        help=f"default: {TINY_LR} from scratch (the tiny base); pretrained: {HF_FULL_LR} "
        f"full, {HF_LORA_LR} LoRA")  # fmt: skip
    add("--batch-size", type=int, default=DEFAULTS.batch_size,
        help="rows per device and step (default: %(default)s)")  # fmt: skip
    add("--grad-accum", type=int, default=DEFAULTS.grad_accum,
        help="gradient accumulation steps (default: %(default)s)")  # fmt: skip
    add("--max-length", type=int, default=DEFAULTS.max_length,
        help="tokens per training row (default: %(default)s)")  # fmt: skip
    add("--max-steps", type=int, help="cap on optimizer steps (overrides --epochs)")
    add("--seed", type=int, default=DEFAULTS.seed, help="training seed (default: %(default)s)")
    add("--weight-decay", type=float, default=DEFAULTS.weight_decay,
        help="AdamW weight decay (default: %(default)s)")  # fmt: skip
    add("--warmup-ratio", type=float, default=DEFAULTS.warmup_ratio,
        help="share of the steps spent warming up the lr (default: %(default)s)")  # fmt: skip
    add("--schedule", default=DEFAULTS.schedule, choices=SCHEDULES,
        help="lr schedule (default: %(default)s)")  # fmt: skip
    add_lora(p)
    add("--dtype", default=DEFAULTS.dtype, choices=DTYPE_NAMES,
        help="compute precision; auto: bf16 on capable GPUs, else fp32 "
        "(default: %(default)s)")  # fmt: skip
    add("--out", type=Path, help="output root (default $DAREU_HOME or ./runs)")
    add("--save-every", type=int, default=0, help="checkpoint every N steps (0: off)")
    add("--resume", action="store_true", help="continue from the latest checkpoint")
    add("--force", action="store_true", help="retrain even if cached")
    add("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    add("--no-progress", action="store_true", help="no progress bars")
    add("--stop-after-steps", type=int, help=argparse.SUPPRESS)  # test hook: a "kill"
    return p


def add_lora(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    add("--lora-r", type=int, default=DEFAULTS.lora_r, help="LoRA rank (default: %(default)s)")
    add("--lora-alpha", type=int, default=DEFAULTS.lora_alpha,
        help="LoRA alpha (default: %(default)s)")  # fmt: skip
    add("--lora-dropout", type=float, default=DEFAULTS.lora_dropout,
        help="LoRA dropout (default: %(default)s)")  # fmt: skip
    add("--lora-targets", default=ALL_LINEAR,
        help="comma-separated module names to adapt, or all-linear: every linear layer but "
        "the head, as PEFT resolves it for the architecture (default: %(default)s)")  # fmt: skip
    add("--merge", default=DEFAULTS.merge, choices=["auto", "yes", "no"],
        help="merge LoRA into the saved model (auto, the default: only for the tiny "
        "base)")  # fmt: skip
    add("--gradient-checkpointing", action="store_true",
        help="recompute activations in the backward pass (less memory, more time)")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    names = {f.name for f in fields(FinetuneConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["lora_targets"] = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    return FinetuneConfig(**values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
        cfg.validate()  # before loading any data or model
        if args.save_every < 0:
            raise ValueError(f"--save-every must be >= 0, got {args.save_every}")
        if args.tofu_dir is not None and not args.tofu_dir.is_dir():
            raise ValueError(f"--tofu-dir {args.tofu_dir} is not a folder")
        check_output_dir(args.out or output_root(), "--out" if args.out else "DAREU_HOME")
        from dareu.train.common import set_threads

        set_threads(args.threads)
        # User data: several owners / sample ids to forget, comma-separated.
        forget = args.forget.split(",") if args.forget and "," in args.forget else args.forget
        whiches = ["original", "retain"] if args.which == "both" else [args.which]
        for which in whiches:
            path = ensure_finetuned(
                args.benchmark,
                which,  # type: ignore[arg-type]
                cfg,
                forget=forget,
                tofu_dir=args.tofu_dir,
                root=args.out,
                force=args.force,
                resume=args.resume,
                save_every=args.save_every,
                stop_after_steps=args.stop_after_steps,
                progress=not args.no_progress,
            )
            partial_state().print(f"{which}: {path}")
    except TrainingStopped as err:
        print(f"finetune: {err}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError) as err:
        print(f"finetune: error: {err}", file=sys.stderr)
        return 2
    return 0
